package ceremony

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// A process id no process has: above Linux's largest pid_max.
const deadPID = 1<<22 + 1

// readBackFixture is a bootstrap and an export ready for a first stable
// signing.
type readBackFixture struct {
	f        *fixture
	dir      string
	boot     *BootstrapResult
	bootDir  string
	rootFile string
	ss       *StableSigning
	approve  string
}

func newReadBackFixture(t *testing.T) *readBackFixture {
	t.Helper()
	return newReadBackFixtureFrom(t, newFixture(t))
}

// newReadBackFixtureFrom is newReadBackFixture on the devices of f.
func newReadBackFixtureFrom(t *testing.T, f *fixture) *readBackFixture {
	t.Helper()
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	bootDir := filepath.Join(dir, "boot")
	f.cfg.Repository = "pypi" // synth's exports
	b := f.bootstrap()
	backup := withBackup(t, b)
	boot, err := b.Run(bootDir)
	if err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(dir, "export.jsonl")
	w, _ := os.Create(exp)
	if err := synth.Generate(w, synth.Params{Seed: 8, Files: 200, Generated: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	ss := &StableSigning{Root: boot.Root, Published: bootDir, Export: exp, Devices: f.devices, PIN: f.pins, Now: now, TempDir: filepath.Join(dir, "work"), Backup: backup}
	d, err := ss.Diff()
	if err != nil {
		t.Fatal(err)
	}
	approve := d.Digest
	d.Close()
	return &readBackFixture{f: f, dir: dir, boot: boot, bootDir: bootDir, rootFile: filepath.Join(bootDir, "metadata", "1.root.json"), ss: ss, approve: approve}
}

// withNewBackup is fx.ss with a backup medium of its own, a copy of the
// bootstrap's: a successful signing moves a backup medium on, after which
// the bootstrap media are refused.
func (fx *readBackFixture) withNewBackup(t *testing.T) *StableSigning {
	t.Helper()
	dir := t.TempDir()
	copyInto(t, fx.ss.Backup, dir)
	ss := *fx.ss
	ss.Backup = dir
	return &ss
}

// setHook sets the read-back's test hook for the test.
func setHook(t *testing.T, h func(dir string) error) {
	prev := readBackHook
	readBackHook = h
	t.Cleanup(func() { readBackHook = prev })
}

// rewriteTar rewrites one page of the first tar in stable/pages with a
// byte changed, keeping its length, and returns the page's path.
func rewriteTar(dir string) (string, error) { return editTar(dir, false) }

// dropFromTar rewrites the first tar in stable/pages without its first
// page, and returns the page's path.
func dropFromTar(dir string) (string, error) { return editTar(dir, true) }

func editTar(dir string, drop bool) (string, error) {
	tars, err := filepath.Glob(filepath.Join(dir, "stable", "pages", "*.tar"))
	if err != nil || len(tars) == 0 {
		return "", fmt.Errorf("no page tars on the medium (%v)", err)
	}
	b, err := os.ReadFile(tars[0])
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(b)), tar.NewWriter(&out)
	var edited string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		data, _ := io.ReadAll(tr)
		if edited == "" && drop {
			edited = h.Name
			continue
		}
		if edited == "" {
			i := bytes.Index(data, []byte("href"))
			if i < 0 {
				i = len(data) / 2
			}
			data[i] ^= 0x20
			edited = h.Name
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		tw.Write(data)
	}
	tw.Close()
	return edited, rewriteFile(tars[0], out.Bytes())
}

// replaceFile writes data in place of p (the media's files are created
// read-write, but never rewritten by the ceremony).
func rewriteFile(p string, data []byte) error {
	if err := os.Remove(p); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// editFragment changes the sha256 of the first entry of the snapshot
// fragment (by name) to another valid one.
func editFragment(dir string) (string, error) {
	p := filepath.Join(dir, "stable", stableset.FragmentFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	fr, err := stableset.ParseFragment(b, p)
	if err != nil {
		return "", err
	}
	m := fr.Meta["stable.json"]
	h := []byte(m.Hashes["sha256"])
	h[0] = "01"[(h[0]&1)^1]
	m.Hashes["sha256"] = string(h)
	fr.Meta["stable.json"] = m
	out, _ := json.MarshalIndent(fr, "", " ")
	return "stable.json", rewriteFile(p, append(out, '\n'))
}

// rebuildTranscript rewrites transcript.jsonl through edit, with the hash
// chain rebuilt as the ceremony would have written it.
func rebuildTranscript(dir string, edit func([]TranscriptEntry) []TranscriptEntry) error {
	p := filepath.Join(dir, "transcript.jsonl")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var es []TranscriptEntry
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e TranscriptEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return err
		}
		es = append(es, e)
	}
	es = edit(es)
	var buf bytes.Buffer
	var at time.Time
	tr := NewTranscript(&buf, nil, func() time.Time { return at })
	for _, e := range es {
		at, _ = time.Parse(time.RFC3339, e.Time)
		if err := tr.Record(e.Step, e.Detail); err != nil {
			return err
		}
	}
	if _, _, err := VerifyTranscript(bytes.NewReader(buf.Bytes()), "rebuilt"); err != nil {
		return fmt.Errorf("the rebuilt transcript's chain is broken: %w", err)
	}
	return rewriteFile(p, buf.Bytes())
}

func setDetail(step, field string, v any) func([]TranscriptEntry) []TranscriptEntry {
	return func(es []TranscriptEntry) []TranscriptEntry {
		for i := range es {
			if es[i].Step == step {
				es[i].Detail[field] = v
			}
		}
		return es
	}
}

// faults are what a fault (or an attacker with the media) does to a
// written stable medium, and the file the refusal must name.
var faults = []struct {
	name, file, want string
	do               func(dir string) (string, error)
}{
	{"an index page edited in its tar", "stable/pages/", "has length", rewriteTar},
	{"an index page dropped from its tar", "diff.canonical:", "which stable/pages does not hold", dropFromTar},
	{"a page tar removed", "diff.canonical:", "which stable/pages does not hold", func(dir string) (string, error) {
		tars, _ := filepath.Glob(filepath.Join(dir, "stable", "pages", "*.tar"))
		if len(tars) == 0 {
			return "", errors.New("no page tars")
		}
		return "", os.Remove(tars[len(tars)-1])
	}},
	{"the ledger edited", "ledger/2.ledger does not match what", "2.stable.json signed", func(dir string) (string, error) {
		p := filepath.Join(dir, "stable", "ledger", "2.ledger")
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 100 {
			return "", fmt.Errorf("the ledger: %v", err)
		}
		b[len(b)/2] ^= 0x01
		return "", rewriteFile(p, b)
	}},
	{"the snapshot fragment edited", "stable/snapshot-fragment.json", `meta["stable.json"].hashes.sha256`, editFragment},
	{"the transcript's last line removed", "transcript.jsonl", "the transcript is cut", func(dir string) (string, error) {
		return "", rebuildTranscript(dir, func(es []TranscriptEntry) []TranscriptEntry { return es[:len(es)-1] })
	}},
	{"the transcript's count edited, the chain rebuilt", "transcript.jsonl", "added is 7", func(dir string) (string, error) {
		return "", rebuildTranscript(dir, setDetail("diff approved and stable signed", "added", 7))
	}},
	{"the transcript's signed diff digest edited, the chain rebuilt", "transcript.jsonl", "diff_sha256 is 00", func(dir string) (string, error) {
		return "", rebuildTranscript(dir, setDetail("signed diff written", "diff_sha256", strings.Repeat("00", 32)))
	}},
	{"the transcript's layout edited, the chain rebuilt", "transcript.jsonl", "mid_roles is 1", func(dir string) (string, error) {
		return "", rebuildTranscript(dir, setDetail("diff approved and stable signed", "mid_roles", 1))
	}},
	{"the transcript's signers edited, the chain rebuilt", "transcript.jsonl", `signers are ["ab"]`, func(dir string) (string, error) {
		return "", rebuildTranscript(dir, setDetail("diff approved and stable signed", "signers", []any{"ab"}))
	}},
	{"the transcript's bin count edited, the chain rebuilt", "transcript.jsonl", "leaf_bins is 3", func(dir string) (string, error) {
		return "", rebuildTranscript(dir, setDetail("diff approved and stable signed", "leaf_bins", 3))
	}},
	{"a file no ceremony writes", "stable/pages/README", "a file that a stable medium does not hold", func(dir string) (string, error) {
		return "", os.WriteFile(filepath.Join(dir, "stable", "pages", "README"), []byte("x"), 0o644)
	}},
	{"a symbolic link", "stable/ledger/0.ledger", "a symbolic link", func(dir string) (string, error) {
		return "", os.Symlink("/etc/passwd", filepath.Join(dir, "stable", "ledger", "0.ledger"))
	}},
	{"diff.txt missing", "diff.txt is missing", "a stable medium holds", func(dir string) (string, error) {
		return "", os.Remove(filepath.Join(dir, "diff.txt"))
	}},
	{"a second ledger", "stable/ledger/1.ledger", "stable version 2 does not list it", func(dir string) (string, error) {
		return "", os.WriteFile(filepath.Join(dir, "stable", "ledger", "1.ledger"), []byte("x"), 0o644)
	}},
	{"diff.txt edited", "diff.txt hashes to", "records diff_txt_sha256", func(dir string) (string, error) {
		p := filepath.Join(dir, "diff.txt")
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			return "", fmt.Errorf("diff.txt: %v", err)
		}
		b[len(b)/2] ^= 0x01
		return "", rewriteFile(p, b)
	}},
	{"the transcript's diff.canonical digest edited, the chain rebuilt", "transcript.jsonl", "diff_canonical_sha256 is 00", func(dir string) (string, error) {
		return "", rebuildTranscript(dir, setDetail("signed diff written", "diff_canonical_sha256", strings.Repeat("00", 32)))
	}},
	{"a stray metadata file", "stable/metadata/1.unstable.json", "delegates to no role", func(dir string) (string, error) {
		return "", os.WriteFile(filepath.Join(dir, "stable", "metadata", "1.unstable.json"), []byte("{}"), 0o644)
	}},
}

// TestReadBackRejects injects each fault between the writing and the
// read-back of a stable signing: no medium under the success name, the
// written one kept as <target>.rejected-TIME, and the error names the
// file and the rejected directory. verify refuses the same faults on a
// committed medium.
func TestReadBackRejects(t *testing.T) {
	fx := newReadBackFixture(t)
	good := filepath.Join(fx.dir, "good")
	res, err := fx.withNewBackup(t).Sign(fx.approve, good)
	if err != nil {
		t.Fatal(err)
	}
	res.Diff.Close()
	if tars, _ := filepath.Glob(filepath.Join(good, "stable", "pages", "*.tar")); len(tars) == 0 {
		t.Fatal("the medium holds no page tars to tamper with")
	}
	rep, err := Audit(AuditOptions{Root: fx.rootFile, Dir: good, Repository: fx.bootDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"medium files", "snapshot fragment", "transcript"} {
		found := false
		for _, ch := range rep.Checks {
			found = found || (ch.Check == c && ch.OK)
		}
		if !found {
			t.Errorf("verify made no %q check: %+v", c, rep.Checks)
		}
	}
	for i, fc := range faults {
		t.Run(fc.name, func(t *testing.T) {
			target := filepath.Join(fx.dir, fmt.Sprintf("media%d", i))
			var what string
			setHook(t, func(dir string) error {
				var err error
				what, err = fc.do(dir)
				return err
			})
			res, err := fx.ss.Sign(fx.approve, target)
			if res != nil {
				res.Diff.Close()
			}
			var re *outdir.RejectedError
			if !errors.As(err, &re) || !errors.Is(err, outdir.ErrRejected) {
				t.Fatalf("Sign = %v, want a rejected read-back", err)
			}
			// A rejected medium is no state of the backup medium.
			if states, _ := os.ReadDir(filepath.Join(fx.ss.Backup, "state")); len(states) != 1 {
				t.Errorf("the backup medium holds %d states after a rejected read-back, want the bootstrap's alone", len(states))
			}
			msg := err.Error()
			t.Logf("refused: %s", msg)
			if !strings.Contains(msg, fc.file) || !strings.Contains(msg, fc.want) || !strings.Contains(msg, what) {
				t.Errorf("error %q does not name %s, %q and %q", msg, fc.file, fc.want, what)
			}
			if strings.Contains(msg, ".partial-") {
				t.Errorf("error %q names the temporary directory", msg)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after a failed read-back", target)
			}
			rej, _ := filepath.Glob(target + ".rejected-*")
			if len(rej) != 1 || re.Dir != rej[0] || !strings.Contains(msg, rej[0]) {
				t.Errorf("rejected directories %q, error names %q", rej, re.Dir)
			}
			if left, _ := filepath.Glob(filepath.Join(fx.dir, ".*.partial-*")); len(left) != 0 {
				t.Errorf("temporary directories left: %q", left)
			}

			// verify: the same fault on a copy of a committed medium.
			setHook(t, nil)
			bad := filepath.Join(t.TempDir(), "media")
			copyInto(t, good, bad)
			if _, err := fc.do(bad); err != nil {
				t.Fatal(err)
			}
			if _, err := Audit(AuditOptions{Root: fx.rootFile, Dir: bad, Repository: fx.bootDir}); !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), fc.want) {
				t.Errorf("verify: %v, want an invalid medium, %q", err, fc.want)
			}
		})
	}
}

// TestReadBackSweepsDebris leaves what killed runs leave (a partial
// medium beside the target and a work directory, of a process that is
// gone) and what live runs are writing, and runs the ceremony again: the
// dead runs' debris is removed and said, the live runs' kept.
func TestReadBackSweepsDebris(t *testing.T) {
	fx := newReadBackFixture(t)
	work := fx.ss.TempDir
	mk := func(p string) string {
		if err := os.MkdirAll(filepath.Join(p, "stable", "metadata"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "stable", "metadata", "1.stable.json"), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	live := os.Getppid()
	deadMedia := mk(filepath.Join(fx.dir, fmt.Sprintf(".media.partial-%d-11", deadPID)))
	deadWork := mk(filepath.Join(work, fmt.Sprintf("%s%d-12", stableset.WorkPrefix, deadPID)))
	liveMedia := mk(filepath.Join(fx.dir, fmt.Sprintf(".media.partial-%d-13", live)))
	liveWork := mk(filepath.Join(work, fmt.Sprintf("%s%d-14", stableset.WorkPrefix, live)))
	notOurs := mk(filepath.Join(work, "keyceremony-stable-15"))
	var show bytes.Buffer
	ss := *fx.ss
	ss.Show = &show
	res, err := ss.Sign(fx.approve, filepath.Join(fx.dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	res.Diff.Close()
	for _, p := range []string{deadMedia, deadWork} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was not removed", p)
		}
		if !strings.Contains(show.String(), "removed "+p+", left by process "+fmt.Sprint(deadPID)) {
			t.Errorf("the removal of %s was not said:\n%s", p, show.String())
		}
	}
	for _, p := range []string{liveMedia, liveWork, notOurs} {
		if _, err := os.Stat(filepath.Join(p, "stable", "metadata", "1.stable.json")); err != nil {
			t.Errorf("%s was touched: %v", p, err)
		}
		if strings.Contains(show.String(), p) {
			t.Errorf("%s is said removed:\n%s", p, show.String())
		}
	}
	// The ceremony's own work directory is gone, and was named for it.
	es, _ := os.ReadDir(work)
	for _, e := range es {
		if n := e.Name(); strings.HasPrefix(n, fmt.Sprintf("%s%d-", stableset.WorkPrefix, os.Getpid())) {
			t.Errorf("the ceremony left its work directory %s", n)
		}
	}

	// A bootstrap sweeps beside its target too, before anything else
	// (here it then fails: the devices hold keys already).
	deadBoot := mk(filepath.Join(fx.dir, fmt.Sprintf(".boot2.partial-%d-16", deadPID)))
	show.Reset()
	b := fx.f.bootstrap()
	b.Show = &show
	if _, err := b.Run(filepath.Join(fx.dir, "other", "boot2")); err == nil {
		t.Fatal("a second bootstrap on the same devices succeeded")
	}
	if _, err := os.Stat(deadBoot); err != nil {
		t.Errorf("a bootstrap into another directory removed %s: %v", deadBoot, err)
	}
	if _, err := b.Run(filepath.Join(fx.dir, "boot2")); err == nil {
		t.Fatal("a second bootstrap on the same devices succeeded")
	}
	if _, err := os.Stat(deadBoot); !errors.Is(err, os.ErrNotExist) || !strings.Contains(show.String(), "removed "+deadBoot) {
		t.Errorf("bootstrap did not remove and say %s (%v):\n%s", deadBoot, err, show.String())
	}
}

// TestBootstrapReadBackRejects: a bootstrap whose media fail the
// read-back (here, the transcript cut after its last line was written)
// leaves nothing under the success name, keeps the media as
// <target>.rejected-TIME, and reports the keys it generated as orphans.
func TestBootstrapReadBackRejects(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "boot")
	setHook(t, func(d string) error {
		return rebuildTranscript(d, func(es []TranscriptEntry) []TranscriptEntry { return es[:len(es)-1] })
	})
	_, err := f.bootstrap().Run(target)
	var oe *OrphanKeysError
	var re *outdir.RejectedError
	if !errors.As(err, &oe) || !errors.As(err, &re) || !errors.Is(err, ErrTranscript) {
		t.Fatalf("Run = %v, want orphan keys after a rejected read-back of the transcript", err)
	}
	if !strings.Contains(err.Error(), "transcript.jsonl") || !strings.Contains(err.Error(), "bootstrap finished") || !strings.Contains(err.Error(), re.Dir) {
		t.Errorf("error %q names neither the transcript, its missing end nor %s", err, re.Dir)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a failed read-back", target)
	}
	if rej, _ := filepath.Glob(target + ".rejected-*"); len(rej) != 1 || rej[0] != re.Dir {
		t.Errorf("rejected directories %q, error names %q", rej, re.Dir)
	}
	if _, err := os.Stat(filepath.Join(re.Dir, "metadata", "1.root.json")); err != nil {
		t.Errorf("the rejected media lost their root: %v", err)
	}
}

// TestReadPagesInOrder reads 40 tars on every core: the pages and each
// tar's SHA-256 are those of a read in order, and of two broken tars the
// first in order is the one named, every time.
func TestReadPagesInOrder(t *testing.T) {
	dir := t.TempDir()
	pages := filepath.Join(dir, "stable", "pages")
	if err := os.MkdirAll(pages, 0o755); err != nil {
		t.Fatal(err)
	}
	var tars []string
	want := map[string]int{} // page path: its tar's index
	write := func(i int, broken bool) {
		name := fmt.Sprintf("%02x.tar", i)
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for j := 0; j < 1+i%3; j++ {
			p := fmt.Sprintf("simple/p%d-%d/index.html", i, j)
			typ := byte(tar.TypeReg)
			if broken && j == 0 {
				typ = tar.TypeSymlink
			}
			body := bytes.Repeat([]byte{byte(i), byte(j)}, 1000*j)
			if typ != tar.TypeReg {
				body = nil
			}
			if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: typ, Size: int64(len(body)), Mode: 0o644, Linkname: "x"}); err != nil {
				t.Fatal(err)
			}
			if typ == tar.TypeReg {
				tw.Write(body)
				want[p] = i
			}
		}
		tw.Close()
		if err := os.WriteFile(filepath.Join(pages, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		tars = append(tars, name)
	}
	for i := 0; i < 40; i++ {
		write(i, false)
	}
	ps, err := readPages(dir, tars, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.pages) != len(want) {
		t.Fatalf("%d pages read, want %d", len(ps.pages), len(want))
	}
	for p, i := range want {
		k, ok := ps.find(sha256.Sum256([]byte(p)))
		if !ok || ps.pages[k].tar != i {
			t.Fatalf("page %s: found %v in tar %d, want tar %d", p, ok, ps.pages[k].tar, i)
		}
	}
	for i, name := range tars {
		b, _ := os.ReadFile(filepath.Join(pages, name))
		if ps.tarSums[i] != sha256.Sum256(b) {
			t.Errorf("tarSums[%d] is %x, %s hashes to %x", i, ps.tarSums[i], name, sha256.Sum256(b))
		}
	}
	// Without sums (verify, which hashes the medium for SHA256SUMS
	// itself): the same pages, no tar hashed whole.
	if again, err := readPages(dir, tars, false); err != nil || again.tarSums != nil || !slices.Equal(again.pages, ps.pages) {
		t.Errorf("readPages without sums: %v, tarSums %v, the same pages %v", err, again.tarSums != nil, err == nil && slices.Equal(again.pages, ps.pages))
	}
	// Broken: tars 0x1d and 0x05 (the first in order).
	want = map[string]int{}
	tars = tars[:0]
	for i := 0; i < 40; i++ {
		write(i, i == 0x05 || i == 0x1d)
	}
	for range 20 {
		_, err := readPages(dir, tars, false)
		if !errors.Is(err, ErrMediumContent) || !strings.HasPrefix(err.Error(), "stable/pages/05.tar: ") {
			t.Fatalf("readPages = %v, want the first broken tar (05.tar) named", err)
		}
	}
}
