package ceremony

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// TestStableModesWithTufJS runs a stable signing over soft devices in each
// target mode and naming layout (bootstrap, the demo's export, diff,
// review, sign with its read-back), publishes the result as a repository
// whose online keys the test holds, and lists an attacker's file in
// unstable for a stable index page and a distribution file. tuf-js, with
// both hashes in every stable entry, resolves the page to stable's entry
// and downloads it (fetching it under its blake2b-256 name, which in the
// warehouse naming is Warehouse's own <project>/<blake2b-256>.<project>.html);
// in files+pages it does the same for the file; in pages mode stable lists
// no file, so the client gets unstable's entry for it, and what protects
// the file is stable's page, which pins the file's real sha256. verify
// (VerifyStableMedia) then refuses the medium once its signed diff,
// re-signed by the stable keys, names the other target mode.
func TestStableModesWithTufJS(t *testing.T) {
	for _, mode := range []policy.TargetMode{policy.ModeFilesPages, policy.ModePages} {
		for _, naming := range []policy.Naming{policy.NamingPEP458, policy.NamingWarehouse} {
			t.Run(string(mode)+","+string(naming), func(t *testing.T) {
				testStableMode(t, mode, naming)
			})
		}
	}
}

func testStableMode(t *testing.T, mode policy.TargetMode, naming policy.Naming) {
	f := newFixture(t)
	f.cfg.TargetPaths = append([]string{"packages/*/*/*/*"}, simpleindex.Layout(naming).TargetPatterns()...)
	now := time.Now().UTC()
	dir := t.TempDir()
	b := f.bootstrap()
	bk := withBackup(t, b)
	boot, err := b.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	exportFile := filepath.Join(dir, "export.jsonl")
	recs, content, err := writeDemoExport(exportFile, now)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"target_mode": %q, "naming": %q}`, mode, naming)), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	ss := &StableSigning{Root: boot.Root, Published: filepath.Join(dir, "boot"), Export: exportFile, Devices: f.devices, PIN: f.pins, Now: now, Policy: pol, Backup: bk}
	d, err := ss.Diff()
	if err != nil {
		t.Fatal(err)
	}
	var review bytes.Buffer
	if err := d.WriteText(&review); err != nil {
		t.Fatal(err)
	}
	if want := "targets   " + string(mode) + ":"; !strings.Contains(review.String(), want) || !strings.Contains(review.String(), "page naming "+string(naming)) {
		t.Errorf("the review does not show the target mode and naming:\n%s", review.String())
	}
	digest := d.Digest
	d.Close()
	media := filepath.Join(dir, "media")
	sres, err := ss.Sign(digest, media) // reads everything back
	if err != nil {
		t.Fatal(err)
	}
	sres.Diff.Close()

	// The repository, before the attack: unstable lists nothing yet.
	pristine := filepath.Join(dir, "pristine")
	out, err := outdir.New(pristine)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	unstable, err := f.repo.signUnstable(1, map[string]tuf.TargetFile{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(boot.Targets, unstable, filepath.Join(media, "stable"), sres.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.publish(out, "metadata", boot.Root, files); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	pub := readPublished(t, filepath.Join(pristine, "metadata"))
	pages, err := extractPages(filepath.Join(media, "stable", "pages"))
	if err != nil {
		t.Fatal(err)
	}

	// What stable lists follows the mode and the naming, both hashes each.
	var page, file string
	var stablePaths []string
	for p, tf := range pub.stable {
		if strings.HasPrefix(p, "ledger/") {
			continue // stable's own record (docs/tuf-layout.md): sha256 only, never a repository file
		}
		stablePaths = append(stablePaths, p)
		if len(tf.Hashes) != 2 || tf.Hashes["sha256"] == "" || tf.Hashes["blake2b-256"] == "" {
			t.Errorf("%s: hashes %v, want sha256 and blake2b-256", p, tf.Hashes)
		}
	}
	sort.Strings(stablePaths)
	for _, p := range stablePaths {
		if strings.HasPrefix(p, "simple/") {
			if seg := strings.Split(p, "/"); page == "" && strings.HasSuffix(p, ".html") {
				if hp, _ := simpleindex.Layout(naming).PagePaths(seg[1]); hp != p {
					t.Fatalf("stable lists page %s, the %s naming names it %s", p, naming, hp)
				}
				page = p
			}
		} else if !mode.ListsFiles() {
			t.Fatalf("pages mode, but stable lists %s", p)
		} else if file == "" {
			file = p
		}
	}
	if page == "" {
		t.Fatal("stable lists no HTML page")
	}
	project := strings.Split(page, "/")[1]
	if !mode.ListsFiles() {
		// A file of the page's project: stable's page pins it.
		for _, r := range recs {
			if r.Project == project && strings.Contains(string(pages[page]), hex.EncodeToString(r.SHA256[:])) {
				file = r.Path
				break
			}
		}
	}
	if file == "" {
		t.Fatal("no stable file to attack")
	}

	// The page and the file, published under both their hashes.
	for p, b := range map[string][]byte{page: pages[page], file: content[file]} {
		s, b2 := sha256Hex(b), blake2b.Sum256(b)
		for _, h := range []string{s, hex.EncodeToString(b2[:])} {
			name := filepath.Join(pristine, "targets", filepath.FromSlash(targetFileName(p, h)))
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The attacker, with the online keys, lists its own bytes for both.
	repoDir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(repoDir, os.DirFS(pristine)); err != nil {
		t.Fatal(err)
	}
	a := &tufjs.Attacker{Dir: repoDir, Snapshot: f.repo.snapshot, Timestamp: f.repo.timestamp, Unstable: f.repo.unstable}
	evil := map[string][]byte{}
	for _, p := range []string{page, file} {
		evil[p] = []byte("malicious replacement of " + path.Base(p) + "\n")
		if err := a.ListUnstable(p, evil[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Publish(); err != nil {
		t.Fatal(err)
	}
	run, err := tufjs.ResolveWith(repoDir, filepath.Join(repoDir, "metadata", "1.root.json"), []string{page, file}, tufjs.Options{BLAKE2b256: true})
	if err != nil {
		t.Fatal(err)
	}
	if !run.RefreshOK {
		t.Fatalf("tuf-js refused the repository: %s", run.RefreshError)
	}
	rp, rf := run.Results[0], run.Results[1]
	if !sameEntry(rp, pub.stable[page]) || !rp.Downloaded {
		t.Errorf("page %s: tuf-js returned %+v, want stable's entry %+v, downloaded", page, rp, pub.stable[page])
	}
	b2 := blake2b.Sum256(pages[page])
	want := "/targets/" + path.Dir(page) + "/" + hex.EncodeToString(b2[:]) + "." + path.Base(page)
	if naming == policy.NamingWarehouse && want != "/targets/simple/"+project+"/"+hex.EncodeToString(b2[:])+"."+project+".html" {
		t.Fatalf("the warehouse naming's file name %s is not Warehouse's", want)
	}
	fetched := false
	for _, q := range run.Requests {
		fetched = fetched || q.Path == want && q.Status == 200
	}
	if !fetched {
		t.Errorf("tuf-js did not fetch the page as %s", want)
	}
	if mode.ListsFiles() {
		if !sameEntry(rf, pub.stable[file]) || !rf.Downloaded {
			t.Errorf("file %s: tuf-js returned %+v, want stable's entry, downloaded", file, rf)
		}
	} else if rf.Hashes["sha256"] != sha256Hex(evil[file]) {
		t.Errorf("pages mode: stable lists no file, so tuf-js gets unstable's entry for %s; it returned %+v", file, rf)
	}

	// The signed diff re-signed with the other target mode: verify
	// refuses the medium, whose bins do not follow it.
	other := policy.ModePages
	if !mode.ListsFiles() {
		other = policy.ModeFilesPages
	}
	resignDiff(t, f, boot.Targets, media, func(st *signeddiff.Statement) { st.TargetMode = string(other) })
	err = VerifyStableMedia(media, mustDelegation(t, boot.Targets), boot.Targets.Signed.Delegations.Keys)
	if !errors.Is(err, ErrTargetMode) || !strings.Contains(err.Error(), string(other)) {
		t.Errorf("verify of a medium whose signed diff names target mode %s: %v", other, err)
	}
}

// resignDiff edits the statement of dir's signed diff and signs it again
// with the fixture's stable keys, as the keyholders could.
func resignDiff(t *testing.T, f *fixture, targets *tuf.Metadata[tuf.Targets], dir string, edit func(*signeddiff.Statement)) {
	t.Helper()
	file := filepath.Join(dir, "signed-diff.json")
	b := mustRead(t, file)
	env, err := signeddiff.Load(b, file)
	if err != nil {
		t.Fatal(err)
	}
	d := mustDelegation(t, targets)
	st, err := signeddiff.Verify(env, targets.Signed.Delegations.Keys, d.KeyIDs, d.Threshold)
	if err != nil {
		t.Fatal(err)
	}
	edit(st)
	sess := &session{devices: f.devices, pin: func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }, pins: map[uint32]string{}}
	signers, err := stableSigners(sess, d)
	if err != nil {
		t.Fatal(err)
	}
	if env, err = signeddiff.Sign(st, signers); err != nil {
		t.Fatal(err)
	}
	if b, err = signeddiff.Marshal(env); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
