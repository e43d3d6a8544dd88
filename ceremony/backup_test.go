package ceremony

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
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

func newHistory(t *testing.T) *history { t.Helper(); return newHistoryWith(t, nil) }

// newHistoryWith is newHistory with the fixture's configuration changed
// by edit before the bootstrap.
func newHistoryWith(t *testing.T, edit func(*fixture)) *history {
	t.Helper()
	f := newFixture(t)
	if edit != nil {
		edit(f)
	}
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
	if len(backup) != 5 {
		t.Fatalf("backup medium holds %d files after a bootstrap and three ceremonies, want its marker and 4 states", len(backup))
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
	// Each backdated file is a red flag, confirmed held back.
	var lines []string
	for _, p := range inj.Backdated {
		lines = append(lines, `{"flag": "backdated", "subject": "`+p+`", "decision": "confirm", "reason": "held back; the repository is asked why"}`+"\n")
	}
	if s.Decisions, err = decisions.Parse([]byte(strings.Join(lines, "")), "decisions.jsonl"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d, err = s.Diff(); err != nil {
		t.Fatal(err)
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

// transcriptStep returns the detail of the transcript's entry named step.
func transcriptStep(t *testing.T, file, step string) map[string]any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e TranscriptEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Step == step {
			return e.Detail
		}
	}
	t.Fatalf("%s has no %q entry", file, step)
	return nil
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(b)
}

// The bootstrap's state and the first ceremony's, as written to the
// backup medium: every digest is the digest of the file it names, each
// state names the one before, and each transcript records the check
// words that the state shows.
func TestBackupStatesRecordTheCeremonies(t *testing.T) {
	h := newHistory(t)
	boot := h.boot
	rd, err := RootDigest(boot.Root)
	if err != nil {
		t.Fatal(err)
	}
	s1 := boot.State
	if boot.StateFile != filepath.Join(h.backup, "state", "1.json") || s1.Repository != "pypi" || s1.RootSHA256 != rd ||
		s1.Ceremony != StateBootstrap || s1.StableVersion != 1 || s1.TranscriptSHA256 != hex.EncodeToString(boot.Transcript[:]) {
		t.Fatalf("bootstrap state %s: %+v", boot.StateFile, s1)
	}
	if d := transcriptStep(t, filepath.Join(h.published[0], "transcript.jsonl"), "backup state"); d["check_words"] != s1.CheckWords() || d["repository"] != "pypi" {
		t.Fatalf("the bootstrap transcript records %v, the state's check words are %q", d, s1.CheckWords())
	}
	h.export(synth.NextParams{})
	r := h.ceremony()
	media := filepath.Join(h.dir, "media1")
	s2 := r.State
	want := BackupState{
		Format: StateFormat, FormatVersion: StateFormatVersion, Repository: "pypi", RootSHA256: rd, Ceremony: StateStable, StableVersion: 2,
		LedgerSHA256: sha256File(t, filepath.Join(media, "stable", "ledger", "2.ledger")), ListingTime: h.base.Format(time.RFC3339),
		CeremonyTime: h.base.Add(time.Hour).Format(time.RFC3339), SignedDiffSHA256: sha256File(t, filepath.Join(media, "signed-diff.json")),
		StableSHA256:        sha256File(t, filepath.Join(media, "stable", "metadata", "2.stable.json")),
		PreviousStateSHA256: sha256File(t, boot.StateFile), TranscriptSHA256: hex.EncodeToString(r.Transcript[:]),
	}
	if *s2 != want {
		t.Fatalf("stable state\n%+v, want\n%+v", *s2, want)
	}
	onDisk, err := os.ReadFile(r.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if parsed, err := ParseState(onDisk, r.StateFile); err != nil || *parsed != want {
		t.Fatalf("%s parses to %+v, %v", r.StateFile, parsed, err)
	}
	d := transcriptStep(t, filepath.Join(media, "transcript.jsonl"), "backup state")
	if d["check_words"] != s2.CheckWords() || d["ledger_sha256"] != want.LedgerSHA256 || d["signed_diff_sha256"] != want.SignedDiffSHA256 {
		t.Fatalf("the transcript records %v", d)
	}
	if d := transcriptStep(t, filepath.Join(media, "transcript.jsonl"), "published state matches the backup medium"); d["check_words"] != s1.CheckWords() || d["state_file"] != "1.json" {
		t.Fatalf("the transcript records the state it started from as %v, want state 1's check words %q", d, s1.CheckWords())
	}
	if s2.CheckWords() == s1.CheckWords() || len(strings.Fields(s2.CheckWords())) != 32 {
		t.Fatalf("check words %q after %q", s2.CheckWords(), s1.CheckWords())
	}
	// A signing without a backup medium is refused before anything.
	s := h.signing(h.published[1])
	s.Backup = ""
	if _, err := s.Sign("x", filepath.Join(h.dir, "nobackup")); !errors.Is(err, ErrBackup) {
		t.Fatalf("signing without a backup medium: %v", err)
	}
	assertNoMedia(t, filepath.Join(h.dir, "nobackup"))
	// A state is never overwritten: a second state 3 is refused and the
	// first kept.
	b, err := ReadBackup(h.backup)
	if err != nil {
		t.Fatal(err)
	}
	s3 := *s2
	s3.StableVersion, s3.PreviousStateSHA256 = 3, sha256File(t, r.StateFile)
	if err := os.WriteFile(filepath.Join(h.backup, "state", "3.json"), []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.append(&s3); !errors.Is(err, os.ErrExist) {
		t.Fatalf("writing over state 3: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(h.backup, "state", "3.json")); string(got) != "first" {
		t.Fatalf("state 3 was overwritten: %q", got)
	}
}

// The export's repository and the backup medium's root are the offline
// side's, not the repository's: an export for another repository, and a
// backup medium of another repository or root, are refused naming both.
func TestBackupIdentity(t *testing.T) {
	h := newHistory(t)
	h.export(synth.NextParams{})
	other := filepath.Join(h.dir, "testpypi.jsonl")
	w, _ := os.Create(other)
	if err := synth.Generate(w, synth.Params{Seed: 11, Files: 200, Generated: h.base, Repository: "testpypi"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	s := h.signing(h.published[0])
	s.Export = other
	_, err := s.Diff()
	if !errors.Is(err, stableset.ErrRepository) || !strings.Contains(err.Error(), `repository "testpypi"`) || !strings.Contains(err.Error(), `is "pypi"`) {
		t.Fatalf("an export for testpypi after a pypi bootstrap: %v", err)
	}
	if _, err := s.Sign("x", filepath.Join(h.dir, "m")); !errors.Is(err, stableset.ErrRepository) {
		t.Fatalf("signing an export for testpypi: %v", err)
	}
	assertNoMedia(t, filepath.Join(h.dir, "m"))

	for _, c := range []struct {
		name string
		edit func(*BackupState)
		is   error
		want string
	}{
		{"another root", func(s *BackupState) { s.RootSHA256 = strings.Repeat("ab", 32) }, ErrBackup, "the trusted root's is"},
		{"another repository", func(s *BackupState) { s.Repository = "testpypi" }, stableset.ErrRepository, `repository "pypi", the backup medium's`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st := *h.boot.State
			c.edit(&st)
			if _, err := WriteBootstrapBackup(dir, &st); err != nil {
				t.Fatal(err)
			}
			s := h.signing(h.published[0])
			s.Backup = dir
			_, err := s.Diff()
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %v naming %q", err, c.is, c.want)
			}
		})
	}
}

// The ceremony's clock: earlier than the backup medium's newest ceremony
// or the published listing, or earlier than the export's generation time
// by more than the tolerance, it is refused with both times named.
func TestCeremonyClock(t *testing.T) {
	h := newHistory(t)
	h.export(synth.NextParams{})
	h.ceremony()
	exp, _ := h.export(synth.NextParams{Seed: 5, Period: 30 * 24 * time.Hour, NewFiles: 10})
	c1 := h.base.Add(time.Hour)
	gen2 := generated(t, exp)
	for _, c := range []struct {
		name string
		now  time.Time
		is   error
		want []string
	}{
		{"before the last ceremony", c1.Add(-24 * time.Hour), ErrClock, []string{
			"clock " + c1.Add(-24*time.Hour).Format(time.RFC3339), "the ceremony time of " + filepath.Join(h.backup, "state", "2.json"), c1.Format(time.RFC3339)}},
		{"before the export", gen2.Add(-time.Hour), stableset.ErrExportTime, []string{
			"generated " + gen2.Format(time.RFC3339), "clock " + gen2.Add(-time.Hour).Format(time.RFC3339)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := h.signing(h.published[1])
			s.Now = c.now
			_, err := s.Diff()
			if !errors.Is(err, c.is) {
				t.Fatalf("want %v, got %v", c.is, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
	// The published listing time alone (no backup medium): a clock earlier
	// than listing 1 is refused too.
	s := h.signing(h.published[1])
	s.Backup, s.Now = "", h.base.Add(-time.Hour)
	if _, err := s.Diff(); !errors.Is(err, ErrClock) || !strings.Contains(err.Error(), "the listing time of "+filepath.Join(h.published[1], "ledger", "2.ledger")) {
		t.Fatalf("a clock before the published listing: %v", err)
	}
	// Within the tolerance, a clock a little behind is accepted.
	s = h.signing(h.published[1])
	s.Now = gen2.Add(-5 * time.Minute)
	d, err := s.Diff()
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// A bootstrap starts a new backup medium: one that already holds a state,
// or that does not exist, is refused before any key is generated.
func TestBootstrapRefusesUsedBackup(t *testing.T) {
	f := newFixture(t)
	used := t.TempDir()
	os.MkdirAll(filepath.Join(used, "state"), 0o755)
	os.WriteFile(filepath.Join(used, "state", "1.json"), []byte("{}"), 0o644)
	for _, c := range []struct{ name, backup, want string }{
		{"holds a state", used, "already holds 1.json"},
		{"missing", filepath.Join(t.TempDir(), "nothing"), "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := f.bootstrap()
			b.Backup = c.backup
			out := filepath.Join(t.TempDir(), "boot")
			_, err := b.Run(out)
			if !errors.Is(err, ErrBackup) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrBackup saying %q", err, c.want)
			}
			assertNothingWritten(t, out)
			assertNoNewKeys(t, f, nil)
		})
	}
	if got, _ := os.ReadFile(filepath.Join(used, "state", "1.json")); string(got) != "{}" {
		t.Fatal("the used backup medium was changed")
	}
}

// goodStates are a bootstrap and a stable state, as files.
func goodStates() (boot, stable *BackupState) {
	boot = &BackupState{Format: StateFormat, FormatVersion: 1, Repository: "pypi", RootSHA256: strings.Repeat("1a", 32), Ceremony: StateBootstrap,
		StableVersion: 1, CeremonyTime: "2026-01-02T03:04:05Z", TranscriptSHA256: strings.Repeat("2b", 32)}
	stable = &BackupState{Format: StateFormat, FormatVersion: 1, Repository: "pypi", RootSHA256: strings.Repeat("1a", 32), Ceremony: StateStable,
		StableVersion: 2, LedgerSHA256: strings.Repeat("3c", 32), ListingTime: "2026-01-03T00:00:00Z", CeremonyTime: "2026-01-03T01:00:00Z",
		SignedDiffSHA256: strings.Repeat("4d", 32), PreviousStateSHA256: strings.Repeat("5e", 32), TranscriptSHA256: strings.Repeat("6f", 32)}
	return boot, stable
}

// rotationState is a stable key rotation's state after stable: the same
// ledger, stable version+1.
func rotationState(stable *BackupState) *BackupState {
	r := *stable
	r.Ceremony, r.StableVersion, r.SignedDiffSHA256, r.StableSHA256 = StateRotation, stable.StableVersion+1, "", strings.Repeat("7a", 32)
	r.CeremonyTime = "2026-01-04T01:00:00Z"
	return &r
}

func TestParseState(t *testing.T) {
	boot, stable := goodStates()
	rot := rotationState(stable)
	withDigest := *stable
	withDigest.StableSHA256 = strings.Repeat("7a", 32)
	// A rotation of the bootstrap's empty stable: no ledger.
	rotBoot := *rot
	rotBoot.StableVersion, rotBoot.LedgerSHA256, rotBoot.ListingTime = 2, "", ""
	for _, s := range []*BackupState{boot, stable, &withDigest, rot, &rotBoot} {
		got, err := ParseState(s.Marshal(), "s.json")
		if err != nil || *got != *s {
			t.Fatalf("%+v: %v", got, err)
		}
	}
	edit := func(s *BackupState, f func(*BackupState)) []byte {
		c := *s
		f(&c)
		return c.Marshal()
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"unknown field", []byte(strings.Replace(string(stable.Marshal()), `"format"`, `"extra": 1, "format"`, 1)), "s.json:2: extra"},
		{"missing field", []byte(strings.Replace(string(boot.Marshal()), `"transcript_sha256": "`+boot.TranscriptSHA256+`"`, `"ceremony_time": "x"`, 1)), "s.json"},
		{"trailing data", append(stable.Marshal(), "{}"...), "s.json"},
		{"format", edit(stable, func(s *BackupState) { s.Format = "other" }), `s.json: format: "other"`},
		{"format version", edit(stable, func(s *BackupState) { s.FormatVersion = 2 }), "s.json: format_version: 2, want 1"},
		{"repository", edit(stable, func(s *BackupState) { s.Repository = "py pi" }), `s.json: repository: "py pi"`},
		{"ceremony", edit(stable, func(s *BackupState) { s.Ceremony = "renewal" }), `s.json: ceremony: "renewal", want "bootstrap", "stable" or "rotation"`},
		{"a stable state as a rotation", edit(stable, func(s *BackupState) { s.Ceremony = StateRotation }), `s.json: signed_diff_sha256: "` + stable.SignedDiffSHA256 + `" in a rotation state`},
		{"rotation without stable digest", edit(rot, func(s *BackupState) { s.StableSHA256 = "" }), `s.json: stable_sha256: "": want 64 lowercase hex digits`},
		{"rotation without previous", edit(rot, func(s *BackupState) { s.PreviousStateSHA256 = "" }), "s.json: previous_state_sha256"},
		{"rotation at version 1", edit(rot, func(s *BackupState) { s.StableVersion = 1 }), "s.json: stable_version: 1 in a rotation state"},
		{"rotation with a ledger but no listing", edit(rot, func(s *BackupState) { s.ListingTime = "" }), "s.json: listing_time"},
		{"rotation with a listing but no ledger", edit(rot, func(s *BackupState) { s.LedgerSHA256 = "" }), "s.json: ledger_sha256"},
		{"bootstrap with a stable digest", edit(boot, func(s *BackupState) { s.StableSHA256 = rot.StableSHA256 }), "s.json: stable_sha256: \"7a7a"},
		{"stable with a short stable digest", edit(stable, func(s *BackupState) { s.StableSHA256 = "7a" }), "s.json: stable_sha256"},
		{"uppercase digest", edit(stable, func(s *BackupState) { s.LedgerSHA256 = strings.ToUpper(s.LedgerSHA256) }), "s.json: ledger_sha256"},
		{"short digest", edit(stable, func(s *BackupState) { s.RootSHA256 = "abcd" }), "s.json: root_sha256"},
		{"stable without previous", edit(stable, func(s *BackupState) { s.PreviousStateSHA256 = "" }), "s.json: previous_state_sha256"},
		{"stable at version 1", edit(stable, func(s *BackupState) { s.StableVersion = 1 }), "s.json: stable_version: 1 in a stable state"},
		{"bootstrap at version 2", edit(boot, func(s *BackupState) { s.StableVersion = 2 }), "s.json: stable_version: 2 in a bootstrap state"},
		{"bootstrap with a ledger", edit(boot, func(s *BackupState) { s.LedgerSHA256 = stable.LedgerSHA256 }), "s.json: ledger_sha256"},
		{"bootstrap with a listing", edit(boot, func(s *BackupState) { s.ListingTime = stable.ListingTime }), "s.json: listing_time"},
		{"time not UTC", edit(stable, func(s *BackupState) { s.CeremonyTime = "2026-01-03T01:00:00+01:00" }), "s.json: ceremony_time"},
		{"time with fraction", edit(stable, func(s *BackupState) { s.ListingTime = "2026-01-03T00:00:00.5Z" }), "s.json: listing_time"},
		{"too large", make([]byte, maxStateFile+1), "s.json: 65537 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseState(c.data, "s.json")
			if !errors.Is(err, ErrBackup) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrBackup naming %q", err, c.want)
			}
		})
	}
}

// ReadBackup refuses a medium whose states are not one history.
func TestReadBackupRefuses(t *testing.T) {
	boot, stable := goodStates()
	rot := rotationState(stable)
	write := func(t *testing.T, files map[string][]byte) string {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "state"), 0o755)
		for n, b := range files {
			if err := os.WriteFile(filepath.Join(dir, "state", n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	chained := func(s *BackupState, prev []byte) []byte {
		c := *s
		c.PreviousStateSHA256 = sha256Hex(prev)
		return c.Marshal()
	}
	b1 := boot.Marshal()
	good := chained(stable, b1)
	if b, err := ReadBackup(write(t, map[string][]byte{"1.json": b1, "2.json": good})); err != nil || b.Newest().StableVersion != 2 {
		t.Fatalf("a good medium: %v", err)
	}
	if b, err := ReadBackup(write(t, map[string][]byte{"1.json": b1, "2.json": good, "3.json": chained(rot, good)})); err != nil || b.Newest().Ceremony != StateRotation {
		t.Fatalf("a good medium with a rotation: %v", err)
	}
	other := *stable
	other.Repository = "testpypi"
	s3 := *stable
	s3.StableVersion = 3
	for _, c := range []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"empty", map[string][]byte{}, "holds no state"},
		{"a gap", map[string][]byte{"1.json": b1, "3.json": chained(&s3, b1)}, "3.json: state 2 is missing"},
		{"another file", map[string][]byte{"1.json": b1, "notes.txt": nil}, "notes.txt: not a state file"},
		{"a leading zero", map[string][]byte{"1.json": b1, "02.json": good}, "02.json: not a state file"},
		{"a broken chain", map[string][]byte{"1.json": b1, "2.json": stable.Marshal()}, "2.json: previous_state_sha256 " + stable.PreviousStateSHA256 + ", state 1 hashes to " + sha256Hex(b1)},
		{"another repository", map[string][]byte{"1.json": b1, "2.json": chained(&other, b1)}, `2.json: repository "testpypi", state 1's is "pypi"`},
		{"a number that is not the version", map[string][]byte{"1.json": b1, "2.json": chained(&s3, b1)}, "2.json: stable_version 3 in state file 2"},
		{"no bootstrap first", map[string][]byte{"1.json": stable.Marshal()}, "1.json: stable_version 2 in state file 1"},
		{"half written", map[string][]byte{"1.json": b1, "2.json": good[:len(good)/2]}, "2.json"},
		{"a rotation with another ledger", map[string][]byte{"1.json": b1, "2.json": good, "3.json": chained(func() *BackupState { r := *rot; r.LedgerSHA256 = strings.Repeat("8b", 32); return &r }(), good)},
			"3.json: a rotation state with ledger_sha256 " + strings.Repeat("8b", 32) + " and listing_time 2026-01-03T00:00:00Z, state 2 names " + stable.LedgerSHA256},
		{"a rotation with a ledger after the bootstrap", map[string][]byte{"1.json": b1, "2.json": chained(func() *BackupState { r := *rot; r.StableVersion = 2; return &r }(), b1)},
			"2.json: a rotation state with ledger_sha256 " + stable.LedgerSHA256 + " and listing_time 2026-01-03T00:00:00Z, state 1 names (none) and (none)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadBackup(write(t, c.files))
			if !errors.Is(err, ErrBackup) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrBackup naming %q", err, c.want)
			}
		})
	}
	if _, err := ReadBackup(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrBackup) {
		t.Fatalf("a missing medium: %v", err)
	}
}

// FuzzParseState: whatever parses re-encodes to a file that parses to the
// same state and encodes to the same bytes.
func FuzzParseState(f *testing.F) {
	boot, stable := goodStates()
	f.Add(boot.Marshal())
	f.Add(stable.Marshal())
	f.Add(rotationState(stable).Marshal())
	f.Add([]byte(`{"format": "keyceremony-backup-state"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseState(data, "fuzz.json")
		if err != nil {
			if !errors.Is(err, ErrBackup) {
				t.Fatalf("error without ErrBackup: %v", err)
			}
			return
		}
		b := s.Marshal()
		s2, err := ParseState(b, "again.json")
		if err != nil || *s2 != *s {
			t.Fatalf("re-encoded state does not parse the same: %v", err)
		}
		if string(s2.Marshal()) != string(b) {
			t.Fatal("encoding is not stable")
		}
	})
}

// runsheet stable --backup prints the newest state's check words and the
// last transcript digest, as the state file gives them; a backup medium of
// another repository than the configuration's is refused.
func TestRunSheetFromBackup(t *testing.T) {
	boot, stable := goodStates()
	dir := t.TempDir()
	b1 := boot.Marshal()
	stable.PreviousStateSHA256 = sha256Hex(b1)
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	os.WriteFile(filepath.Join(dir, "state", "1.json"), b1, 0o644)
	os.WriteFile(filepath.Join(dir, "state", "2.json"), stable.Marshal(), 0o644)
	out := filepath.Join(t.TempDir(), "sheet.html")
	if err := WriteRunSheet(t.Context(), RunSheetOptions{Ceremony: CeremonyStable, Config: runSheetConfig, Backup: dir, Out: out, Now: runSheetTime}); err != nil {
		t.Fatal(err)
	}
	html := string(mustRead(t, out))
	cd := stable.CheckDigest()
	td, _ := hex.DecodeString(stable.TranscriptSHA256)
	for _, want := range []string{
		"check words of " + filepath.Join(dir, "state", "2.json") + " (stable version 2, stable ceremony of 2026-01-03T01:00:00Z)",
		strings.Join(keys.PGPWords(cd[:])[:4], "</td><td>"),
		strings.Join(keys.PGPWords(td)[:4], "</td><td>"),
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the run sheet does not show %q", want)
		}
	}
	other := *boot
	other.Repository = "testpypi"
	od := t.TempDir()
	if _, err := WriteBootstrapBackup(od, &other); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "sheet.html")
	err := WriteRunSheet(t.Context(), RunSheetOptions{Ceremony: CeremonyStable, Config: runSheetConfig, Backup: od, Out: out2, Now: runSheetTime})
	if !errors.Is(err, ErrBackup) || !strings.Contains(err.Error(), `repository "testpypi"`) || !strings.Contains(err.Error(), `names "pypi"`) {
		t.Fatalf("a testpypi backup medium for a pypi sheet: %v", err)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused run sheet was written")
	}
}
