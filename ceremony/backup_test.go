package ceremony

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// withBackup gives b a new backup medium and returns its directory.
func withBackup(t *testing.T, b *Bootstrap) string {
	t.Helper()
	b.Backup = t.TempDir()
	return b.Backup
}

// history is a bootstrap and the stable ceremonies after it, each
// published as the repository would: published[k] is the published
// directory after ceremony k (published[0] the bootstrap media).
type history struct {
	t         *testing.T
	f         *fixture
	dir       string
	backup    string
	boot      *BootstrapResult
	base      time.Time
	exports   []string
	published []string
	results   []*StableResult
}

func newHistory(t *testing.T) *history {
	t.Helper()
	f := newFixture(t)
	f.cfg.Repository = "pypi" // synth's exports
	h := &history{t: t, f: f, dir: t.TempDir(), base: time.Now().UTC().Truncate(time.Second)}
	b := f.bootstrap()
	h.backup = withBackup(t, b)
	boot, err := b.Run(filepath.Join(h.dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	h.boot = boot
	h.published = []string{filepath.Join(h.dir, "boot")}
	return h
}

// export writes the next export: the first from synth.Generate at the
// base time, later ones from synth.Next.
func (h *history) export(p synth.NextParams) (string, synth.Injected) {
	h.t.Helper()
	name := filepath.Join(h.dir, fmt.Sprintf("export%d.jsonl", len(h.exports)+1))
	w, err := os.Create(name)
	if err != nil {
		h.t.Fatal(err)
	}
	defer w.Close()
	var inj synth.Injected
	if len(h.exports) == 0 {
		err = synth.Generate(w, synth.Params{Seed: 11, Files: 1500, Generated: h.base})
	} else {
		in, oerr := os.Open(h.exports[len(h.exports)-1])
		if oerr != nil {
			h.t.Fatal(oerr)
		}
		inj, err = synth.Next(in, w, p)
		in.Close()
	}
	if err != nil {
		h.t.Fatal(err)
	}
	h.exports = append(h.exports, name)
	return name, inj
}

// generated is an export's generation time.
func generated(t *testing.T, export string) time.Time {
	t.Helper()
	f, err := os.Open(export)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr struct {
		Generated time.Time `json:"generated"`
	}
	line, _ := bufio.NewReader(f).ReadBytes('\n')
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Generated.IsZero() {
		t.Fatalf("%s header: %v", export, err)
	}
	return hdr.Generated
}

// signing is the next ceremony against published, an hour after the
// newest export was generated.
func (h *history) signing(published string) *StableSigning {
	export := h.exports[len(h.exports)-1]
	return &StableSigning{Root: h.boot.Root, Published: published, Export: export, Devices: h.f.devices, PIN: h.f.pins,
		Now: generated(h.t, export).Add(time.Hour), Backup: h.backup}
}

// ceremony signs the newest export against the newest published state
// and publishes the result.
func (h *history) ceremony() *StableResult {
	h.t.Helper()
	k := len(h.results) + 1
	s := h.signing(h.published[len(h.published)-1])
	d, err := s.Diff()
	if err != nil {
		h.t.Fatalf("ceremony %d: %v", k, err)
	}
	approve := d.Digest
	d.Close()
	media := filepath.Join(h.dir, fmt.Sprintf("media%d", k))
	r, err := s.Sign(approve, media)
	if err != nil {
		h.t.Fatalf("ceremony %d: %v", k, err)
	}
	r.Diff.Close()
	pub := filepath.Join(h.dir, fmt.Sprintf("published%d", k))
	copyInto(h.t, filepath.Join(h.dir, "boot", "metadata"), filepath.Join(pub, "metadata"))
	copyInto(h.t, filepath.Join(media, "stable", "metadata"), filepath.Join(pub, "metadata"))
	copyInto(h.t, filepath.Join(media, "stable", "ledger"), filepath.Join(pub, "ledger"))
	h.published = append(h.published, pub)
	h.results = append(h.results, r)
	return r
}

// snapshotDir reads every file under dir.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertSameDir(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := snapshotDir(t, dir)
	if len(after) != len(before) {
		t.Fatalf("%s holds %d files, %d before", dir, len(after), len(before))
	}
	for p, b := range before {
		if after[p] != b {
			t.Fatalf("%s changed", p)
		}
	}
}

// assertNoMedia checks that a refused signing left nothing under or
// beside the media's name.
func assertNoMedia(t *testing.T, media string) {
	t.Helper()
	if _, err := os.Stat(media); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists after a refused signing", media)
	}
	ents, _ := os.ReadDir(filepath.Dir(media))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "."+filepath.Base(media)) || strings.Contains(e.Name(), "partial") {
			t.Fatalf("a refused signing left %s", e.Name())
		}
	}
}

// TestRollbackOfThePublishedState is the attack of issue 8, item 3, as the
// repository's servers would mount it after three ceremonies (stable v2,
// v3, v4): the fourth ceremony is handed the second's published state
// (stable v3 and its ledger), then the bootstrap media (a "first
// ceremony" that trusts upload times). Both are refused by the backup
// medium, naming both versions, before any PIN is asked, writing nothing
// and leaving the backup medium as it was. Handed the right state, the
// fourth ceremony holds back the file the repository injected between
// the second and third listings; without the backup medium, the rolled
// back state would have counted it as added.
func TestRollbackOfThePublishedState(t *testing.T) {
	h := newHistory(t)
	h.export(synth.NextParams{})
	h.ceremony() // stable v2
	h.export(synth.NextParams{Seed: 21, Period: 30 * 24 * time.Hour, NewFiles: 50})
	h.ceremony() // stable v3, listing gen2
	// A long period, so that a file claiming an upload 200 days before
	// listing 3 claims one after listing 2.
	h.export(synth.NextParams{Seed: 22, Period: 250 * 24 * time.Hour, NewFiles: 50})
	h.ceremony() // stable v4, listing gen3
	_, inj := h.export(synth.NextParams{Seed: 23, Period: 30 * 24 * time.Hour, NewFiles: 50, Backdated: 2})
	if len(inj.Backdated) != 2 {
		t.Fatalf("%d backdated files injected", len(inj.Backdated))
	}
	if len(h.results) != 3 || h.results[2].StableVersion != 4 {
		t.Fatalf("three ceremonies signed up to stable v%d", h.results[len(h.results)-1].StableVersion)
	}
	backup := snapshotDir(t, h.backup)
	if len(backup) != 4 {
		t.Fatalf("backup medium holds %d states after a bootstrap and three ceremonies, want 4", len(backup))
	}

	// What the attack gains without the backup medium: against stable v3's
	// ledger (listing 2), the injected files are old enough and count as
	// added to the stable set.
	noBackup := h.signing(h.published[2])
	noBackup.Backup = ""
	d, err := noBackup.Diff()
	if err != nil {
		t.Fatal(err)
	}
	if got := categories(t, d, inj.Backdated); got != "added added" {
		t.Fatalf("without the backup medium the rolled-back state gives the injected files %q; the test needs the attack to work there", got)
	}
	d.Close()

	asked := false
	for _, c := range []struct {
		name, published string
		want            []string
	}{
		{"the second's published state", h.published[2], []string{"published state is stable v3", "newest state is stable v4"}},
		{"the bootstrap media", h.published[0], []string{"stable v1, the bootstrap's empty stable", "a first ceremony that would trust upload times", "newest state is stable v4", "the first ceremony exists only directly after bootstrap"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := h.signing(c.published)
			s.PIN = func(hsm.Info, int) (string, error) { asked = true; return "", errors.New("no PIN in this test") }
			for _, run := range []struct {
				what string
				f    func() error
			}{
				{"diff", func() error {
					d, err := s.Diff()
					if err == nil {
						d.Close()
					}
					return err
				}},
				{"sign", func() error { _, err := s.Sign(strings.Repeat("0", 64), filepath.Join(h.dir, "media4")); return err }},
			} {
				err := run.f()
				if !errors.Is(err, ErrRollback) {
					t.Fatalf("%s: want ErrRollback, got %v", run.what, err)
				}
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %q does not say %q", run.what, err, w)
					}
				}
				if !strings.Contains(err.Error(), filepath.Join(h.backup, "state", "4.json")) {
					t.Errorf("%s: %q does not name the backup state file", run.what, err)
				}
			}
			assertNoMedia(t, filepath.Join(h.dir, "media4"))
			assertSameDir(t, h.backup, backup)
		})
	}
	if asked {
		t.Fatal("a refused rollback asked for a PIN")
	}

	// The right state: the injected files claim uploads before listing 3
	// and are not in it; they are held back as backdated.
	s := h.signing(h.published[3])
	d, err = s.Diff()
	if err != nil {
		t.Fatal(err)
	}
	if got := categories(t, d, inj.Backdated); got != "held/backdated held/backdated" {
		t.Fatalf("the injected files are %q against the right state, want held/backdated", got)
	}
	if d.Header.PreviousStableVersion != 4 || d.Header.StableVersion != 5 || d.Header.TrustsUploadTimes {
		t.Fatalf("header %+v", d.Header)
	}
	approve := d.Digest
	d.Close()
	r, err := s.Sign(approve, filepath.Join(h.dir, "media4"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Diff.Close()
	if r.StateFile != filepath.Join(h.backup, "state", "5.json") || r.State.StableVersion != 5 {
		t.Fatalf("new state %s: %+v", r.StateFile, r.State)
	}
	b, err := ReadBackup(h.backup)
	if err != nil {
		t.Fatal(err)
	}
	if n := b.Newest(); *n != *r.State {
		t.Fatalf("the backup medium's newest state %+v, the ceremony's %+v", n, r.State)
	}
	for p, was := range backup {
		if now, _ := os.ReadFile(p); string(now) != was {
			t.Errorf("%s was rewritten", p)
		}
	}
}

// categories is the category (and reason, for held files) of each path
// in the diff, space-separated; "none" for a path not in it.
func categories(t *testing.T, d *stableset.Diff, paths []string) string {
	t.Helper()
	got := map[string]string{}
	if err := d.Entries(func(e *stableset.DiffEntry) error {
		c := string(e.Category)
		if e.Category == stableset.Held {
			c += "/" + e.Reason
		}
		got[e.Path] = c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		c, ok := got[p]
		if !ok {
			c = "none"
		}
		out = append(out, c)
	}
	return strings.Join(out, " ")
}
