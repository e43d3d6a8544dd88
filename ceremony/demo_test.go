package ceremony

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	gotufmeta "github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/tuf"
)

var (
	demoOnce sync.Once
	demoRes  *DemoResult
	demoDir  string
	demoErr  error
)

// runDemo runs the demo once per test binary; the tests below inspect
// the same repository and must not modify it.
func runDemo(t *testing.T) (*DemoResult, string) {
	t.Helper()
	demoOnce.Do(func() {
		base, err := os.MkdirTemp("", "kc-demo-")
		if err != nil {
			demoErr = err
			return
		}
		demoDir = filepath.Join(base, "demo")
		demoRes, demoErr = (&Demo{Out: demoDir, Now: time.Now().UTC(), Version: "test", DeviceKDF: soft.KDFTest}).Run()
	})
	if demoErr != nil {
		t.Fatalf("demo: %v", demoErr)
	}
	return demoRes, demoDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if demoDir != "" {
		os.RemoveAll(filepath.Dir(demoDir))
	}
	if caDir != "" {
		os.RemoveAll(caDir)
	}
	os.Exit(code)
}

// demoUpdater points go-tuf v2's updater, an independent TUF client, at a
// repository directory served over HTTP.
func demoUpdater(t *testing.T, dir string) *updater.Updater {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	rootBytes, err := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/metadata", rootBytes)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = srv.URL + "/targets"
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = t.TempDir()
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refused the repository: %v", err)
	}
	return up
}

// TestDemoResolution: by the TUF specification's routing, a path both
// roles list resolves to stable's entry (so the attacker's swap fails),
// stable's index pages win over the repository's, and paths only unstable
// lists still resolve (stable and its bins do not terminate).
func TestDemoResolution(t *testing.T) {
	res, dir := runDemo(t)
	if len(res.Attacked) == 0 || len(res.UnstableOnly) == 0 || len(res.Stable) < 2 || len(res.StablePages) == 0 {
		t.Fatalf("the demo must exercise both roles: %+v", res)
	}
	r := newResolver(t, filepath.Join(dir, "metadata"), hexPrefixes)
	want := func(p, role string) {
		t.Helper()
		tf, got, err := r.resolve(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, role) {
			t.Errorf("%s resolved by %s, want %s", p, got, role)
		}
		if tf.Hashes["sha256"] != sha256Hex(res.Content[p]) {
			t.Errorf("%s resolves to the wrong content", p)
		}
	}
	for _, p := range append(append([]string{}, res.Stable...), res.StablePages...) {
		want(p, "stable-")
	}
	for _, p := range res.UnstableOnly {
		want(p, "unstable")
	}
}

// TestDemoWithGoTUF: go-tuf v2 accepts every file of the demo repository
// and agrees, on every path, with our resolver run with go-tuf v2.4.2's
// prefix comparison (base64url of the hash, a known go-tuf bug fixed
// upstream but unreleased). That validates the resolver against an
// independent client; TestDemoResolution then applies it with the
// specification's hex comparison. The downloads of paths only unstable
// lists must give the right bytes through go-tuf.
func TestDemoWithGoTUF(t *testing.T) {
	res, dir := runDemo(t)
	up := demoUpdater(t, dir)
	r := newResolver(t, filepath.Join(dir, "metadata"), base64urlPrefixes)
	for p := range res.Content {
		ti, err := up.GetTargetInfo(p)
		if err != nil {
			t.Fatalf("go-tuf cannot resolve %s: %v", p, err)
		}
		tf, _, err := r.resolve(p)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Length != tf.Length || ti.Hashes["sha256"].String() != tf.Hashes["sha256"] {
			t.Errorf("go-tuf and the resolver disagree on %s", p)
		}
	}
	for _, p := range res.UnstableOnly {
		ti, err := up.GetTargetInfo(p)
		if err != nil {
			t.Fatal(err)
		}
		_, data, err := up.DownloadTarget(ti, filepath.Join(t.TempDir(), "f"), "")
		if err != nil {
			t.Fatalf("go-tuf download of %s: %v", p, err)
		}
		if !bytes.Equal(data, res.Content[p]) {
			t.Fatalf("go-tuf delivered the wrong bytes for %s", p)
		}
	}
}

// TestDemoFilesLoadInGoTUF checks that go-tuf's metadata API loads every
// file the demo writes and that each delegation verifies in go-tuf too.
func TestDemoFilesLoadInGoTUF(t *testing.T) {
	_, dir := runDemo(t)
	md := filepath.Join(dir, "metadata")
	root, err := gotufmeta.Root().FromFile(filepath.Join(md, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("root", root); err != nil {
		t.Fatalf("go-tuf: root does not verify itself: %v", err)
	}
	targets, err := gotufmeta.Targets().FromFile(filepath.Join(md, "1.targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("targets", targets); err != nil {
		t.Fatalf("go-tuf: targets: %v", err)
	}
	roles := targets.Signed.Delegations.Roles
	if len(roles) != 2 || roles[0].Name != "stable" || roles[1].Name != "unstable" || roles[0].Terminating || roles[1].Terminating {
		t.Fatalf("targets must delegate to stable then unstable, both non-terminating: %+v", roles)
	}
	st, err := gotufmeta.Targets().FromFile(filepath.Join(md, "2.stable.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := targets.VerifyDelegate("stable", st); err != nil {
		t.Fatalf("go-tuf: 2.stable.json: %v", err)
	}
	// stable -> mids -> leaves, every role non-terminating with hex
	// prefixes and verified by go-tuf against its delegator.
	mids := st.Signed.Delegations.Roles
	if len(mids) < 2 {
		t.Fatalf("stable delegates to %d mid roles", len(mids))
	}
	leaves := 0
	for _, m := range mids {
		if m.Terminating || len(m.PathHashPrefixes) == 0 {
			t.Fatalf("mid %s must be non-terminating with hex prefixes", m.Name)
		}
		mid, err := gotufmeta.Targets().FromFile(filepath.Join(md, "2."+m.Name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.VerifyDelegate(m.Name, mid); err != nil {
			t.Fatalf("go-tuf: mid %s: %v", m.Name, err)
		}
		if len(mid.Signed.Targets) != 0 || mid.Signed.Delegations == nil || len(mid.Signed.Delegations.Roles) < 2 {
			t.Fatalf("mid %s must list no target and delegate to its leaves", m.Name)
		}
		for _, b := range mid.Signed.Delegations.Roles {
			if b.Terminating || len(b.PathHashPrefixes) == 0 {
				t.Fatalf("bin %s must be non-terminating with hex prefixes", b.Name)
			}
			bin, err := gotufmeta.Targets().FromFile(filepath.Join(md, "2."+b.Name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := mid.VerifyDelegate(b.Name, bin); err != nil {
				t.Fatalf("go-tuf: bin %s: %v", b.Name, err)
			}
			// Not as a sibling: each leaf has its own key.
			for _, other := range mid.Signed.Delegations.Roles {
				if other.Name != b.Name && mid.VerifyDelegate(other.Name, bin) == nil {
					t.Fatalf("go-tuf: bin %s verifies as %s", b.Name, other.Name)
				}
			}
			leaves++
		}
	}
	if leaves < 4 {
		t.Fatalf("%d leaf bins", leaves)
	}
	un, err := gotufmeta.Targets().FromFile(filepath.Join(md, "1.unstable.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := targets.VerifyDelegate("unstable", un); err != nil {
		t.Fatalf("go-tuf: unstable: %v", err)
	}
	snap, err := gotufmeta.Snapshot().FromFile(filepath.Join(md, "1.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("snapshot", snap); err != nil {
		t.Fatal(err)
	}
	ts, err := gotufmeta.Timestamp().FromFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("timestamp", ts); err != nil {
		t.Fatal(err)
	}
}

// TestDemoRefusesNonEmptyDir: the demo never writes into a non-empty dir.
func TestDemoRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := (&Demo{Out: dir, Now: time.Now()}).Run()
	if err == nil {
		t.Fatal("demo wrote into a non-empty directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory changed: %v", entries)
	}
	parent, _ := os.ReadDir(filepath.Dir(dir))
	for _, e := range parent {
		if e.Name() != filepath.Base(dir) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestStableFirstWithGoTUF proves the delegation layout bootstrap writes
// with go-tuf's updater end to end, on a repository whose stable role lists
// its targets itself (no hash bins, so go-tuf v2.4.2's prefix bug does not
// apply): the path an attacker with the online key swaps resolves to
// stable's entry and downloads the genuine bytes; a path only unstable
// lists still resolves.
func TestStableFirstWithGoTUF(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	b := f.bootstrap()
	boot, err := b.Run(filepath.Join(t.TempDir(), "boot"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "repo")
	out, err := outdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	content := map[string][]byte{}
	all := map[string]tuf.TargetFile{}
	stable := tuf.NewTargets(2, now.AddDate(0, 0, 30))
	var old, young []string
	for _, df := range demoFiles {
		c, p := df.content(), df.targetPath()
		content[p] = c
		tf := tuf.TargetFile{Length: int64(len(c)), Hashes: map[string]string{"sha256": sha256Hex(c)}}
		all[p] = tf
		if err := out.WriteFile(filepath.Join("targets", targetFileName(p, sha256Hex(c))), c); err != nil {
			t.Fatal(err)
		}
		if df.Age >= 90*day {
			stable.Signed.Targets[p] = tf
			old = append(old, p)
		} else {
			young = append(young, p)
		}
	}
	sess := &session{devices: f.devices, pin: f.pins, pins: map[uint32]string{}}
	deleg, _ := boot.Targets.Signed.Delegation("stable")
	signers, err := stableSigners(sess, deleg)
	if err != nil {
		t.Fatal(err)
	}
	if err := stable.Sign(signers...); err != nil {
		t.Fatal(err)
	}
	evil := []byte("malicious\n")
	all[old[0]] = tuf.TargetFile{Length: int64(len(evil)), Hashes: map[string]string{"sha256": sha256Hex(evil)}}
	if err := out.WriteFile(filepath.Join("targets", targetFileName(old[0], sha256Hex(evil))), evil); err != nil {
		t.Fatal(err)
	}
	unstable, err := f.repo.signUnstable(1, all)
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(boot.Targets, unstable, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sdata, err := stable.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	files["stable.json"] = publishedMeta{version: stable.Signed.Version, data: sdata}
	if err := f.repo.publish(out, "metadata", boot.Root, files); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	up := demoUpdater(t, dir)
	for _, p := range append(old, young...) {
		ti, err := up.GetTargetInfo(p)
		if err != nil {
			t.Fatalf("go-tuf cannot resolve %s: %v", p, err)
		}
		_, data, err := up.DownloadTarget(ti, filepath.Join(t.TempDir(), "f"), "")
		if err != nil {
			t.Fatalf("go-tuf download of %s: %v", p, err)
		}
		if !bytes.Equal(data, content[p]) {
			t.Fatalf("go-tuf delivered %q for %s", data, p)
		}
	}
}

// TestDemoRepositoryComplete is a full client download check: starting
// from targets, it walks every role the metadata delegates to (stable,
// every bin under it, unstable), reading each with go-tuf's metadata
// API at the version snapshot lists, and checks that every target any
// role lists is published where a consistent-snapshot client fetches it
// (targets/<dir>/<hash>.<name>, for every hash listed) with the listed
// length and every listed hash (sha256, blake2b-256).
func TestDemoRepositoryComplete(t *testing.T) {
	_, dir := runDemo(t)
	md := filepath.Join(dir, "metadata")
	root, err := gotufmeta.Root().FromFile(filepath.Join(md, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !root.Signed.ConsistentSnapshot {
		t.Fatal("the demo must use consistent snapshots")
	}
	snap, err := gotufmeta.Snapshot().FromFile(filepath.Join(md, "1.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	visited := map[string]bool{}
	checked := map[string]bool{}
	var walk func(role string)
	walk = func(role string) {
		if visited[role] {
			return
		}
		visited[role] = true
		mf, ok := snap.Signed.Meta[role+".json"]
		if !ok {
			t.Fatalf("snapshot does not list %s", role)
		}
		m, err := gotufmeta.Targets().FromFile(filepath.Join(md, fmt.Sprintf("%d.%s.json", mf.Version, role)))
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		for p, tf := range m.Signed.Targets {
			if len(tf.Hashes) == 0 {
				t.Errorf("%s lists %s without hashes", role, p)
			}
			for alg, h := range tf.Hashes {
				name := filepath.Join(dir, "targets", filepath.FromSlash(path.Dir(p)), h.String()+"."+path.Base(p))
				data, err := os.ReadFile(name)
				if err != nil {
					t.Errorf("%s lists %s (%s), not published: %v", role, p, alg, err)
					continue
				}
				if int64(len(data)) != tf.Length {
					t.Errorf("%s lists %s with length %d, published %d bytes", role, p, tf.Length, len(data))
				}
				for alg2, want := range tf.Hashes {
					var got []byte
					switch alg2 {
					case "sha256":
						s := sha256.Sum256(data)
						got = s[:]
					case "blake2b-256":
						s := blake2b.Sum256(data)
						got = s[:]
					default:
						t.Errorf("%s lists %s with hash %s, which the check does not know", role, p, alg2)
						continue
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s lists %s with %s %x, published %x", role, p, alg2, []byte(want), got)
					}
				}
				checked[p] = true
			}
		}
		if m.Signed.Delegations != nil {
			for _, d := range m.Signed.Delegations.Roles {
				walk(d.Name)
			}
		}
	}
	walk("targets")
	bins := 0
	for r := range visited {
		if strings.HasPrefix(r, "stable-") {
			bins++
		}
	}
	if !visited["stable"] || !visited["unstable"] || bins < 16 {
		t.Fatalf("walked %d roles (%d bins): %v", len(visited), bins, visited)
	}
	if len(checked) < demoGenerated || !checked["ledger/2.ledger"] {
		t.Fatalf("checked %d targets (ledger/2.ledger: %v)", len(checked), checked["ledger/2.ledger"])
	}
}
