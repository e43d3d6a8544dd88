package ceremony

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

func TestParseMarker(t *testing.T) {
	good := newMarker(RoleOutput, string(MediumStable), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)).Marshal()
	if m, err := ParseMarker(good, MarkerFile); err != nil || m.Role != RoleOutput || m.Ceremony != "stable" || m.Created != "2026-01-02T03:04:05Z" {
		t.Fatalf("good marker: %+v, %v", m, err)
	}
	for _, c := range []struct{ name, data, want string }{
		{"format", `{"format":"x","format_version":1,"role":"output","ceremony":"stable","created":"2026-01-02T03:04:05Z"}`, "format"},
		{"version", `{"format":"keyceremony-medium","format_version":2,"role":"output","ceremony":"stable","created":"2026-01-02T03:04:05Z"}`, "format_version"},
		{"role", `{"format":"keyceremony-medium","format_version":1,"role":"spare","ceremony":"stable","created":"2026-01-02T03:04:05Z"}`, "role"},
		{"ceremony of the role", `{"format":"keyceremony-medium","format_version":1,"role":"backup","ceremony":"stable","created":"2026-01-02T03:04:05Z"}`, "ceremony"},
		{"created", `{"format":"keyceremony-medium","format_version":1,"role":"output","ceremony":"stable","created":"2026-01-02 03:04:05"}`, "created"},
		{"unknown field", `{"format":"keyceremony-medium","format_version":1,"role":"output","ceremony":"stable","created":"2026-01-02T03:04:05Z","x":1}`, "x"},
		{"too large", `{"format":"` + strings.Repeat("a", maxMarkerFile) + `"}`, "more than"},
	} {
		if _, err := ParseMarker([]byte(c.data), MarkerFile); !errors.Is(err, ErrMarker) || !strings.Contains(err.Error(), MarkerFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrMarker naming %s and %q", c.name, err, MarkerFile, c.want)
		}
	}
}

func FuzzParseMarker(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Add(newMarker(RoleOutput, string(MediumBootstrap), now).Marshal())
	f.Add(newMarker(RoleBackup, StateBootstrap, now).Marshal())
	f.Add(newMarker(RoleInput, "export", now).Marshal())
	f.Add([]byte(`{"format":"keyceremony-medium","format_version":1,"role":"backup","ceremony":"stable","created":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMarker(data, MarkerFile)
		if err != nil {
			if !errors.Is(err, ErrMarker) {
				t.Fatalf("error not ErrMarker: %v", err)
			}
			return
		}
		// What parses re-encodes to a marker that parses the same.
		again, err := ParseMarker(m.Marshal(), MarkerFile)
		if err != nil || *again != *m {
			t.Fatalf("re-encoded %+v: %+v, %v", m, again, err)
		}
	})
}

// TestWrongMedium passes each medium where another is asked for, as a
// hurried administrator would: each is refused naming the medium found,
// and nothing is written.
func TestWrongMedium(t *testing.T) {
	h := newHistory(t)
	boot := h.published[0]
	if m, err := readMarker(h.backup); err != nil || m == nil || m.Role != RoleBackup {
		t.Fatalf("the bootstrap's backup medium's marker: %+v, %v", m, err)
	}
	if m, err := readMarker(boot); err != nil || m == nil || m.Role != RoleOutput || m.Ceremony != "bootstrap" {
		t.Fatalf("the bootstrap medium's marker: %+v, %v", m, err)
	}
	h.export(synth.NextParams{})
	backupBefore := snapshotDir(t, h.backup)
	bootBefore := snapshotDir(t, boot)

	// An input medium: an export beside a marker the repository wrote.
	inputDir := t.TempDir()
	export := filepath.Join(inputDir, "export.jsonl")
	copyFile(t, h.exports[0], export)
	mislabeled := t.TempDir()
	copyFile(t, h.exports[0], filepath.Join(mislabeled, "export.jsonl"))
	if err := os.WriteFile(filepath.Join(mislabeled, MarkerFile), newMarker(RoleBackup, StateBootstrap, h.base).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}

	target := filepath.Join(h.dir, "new-media")
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"output medium as --backup", func() error {
			s := h.signing(boot)
			s.Backup = boot
			_, err := s.Diff()
			return err
		}, "the backup medium " + boot + " is the output medium of a bootstrap ceremony"},
		{"backup medium as the published directory", func() error {
			_, err := h.signing(h.backup).Diff()
			return err
		}, "the published directory " + h.backup + " is a backup medium"},
		{"backup medium as the output target", func() error {
			s := h.signing(boot)
			_, err := s.Sign("0000", h.backup)
			return err
		}, "the output directory " + h.backup + " is a backup medium"},
		{"export on a medium marked backup", func() error {
			s := h.signing(boot)
			s.Export = filepath.Join(mislabeled, "export.jsonl")
			_, err := s.Diff()
			return err
		}, "the export's directory " + mislabeled + " is a backup medium"},
		{"output medium as a bootstrap's --backup", func() error {
			b := h.f.bootstrap()
			b.Backup = boot
			_, err := b.Run(target)
			return err
		}, "the backup medium " + boot + " is the output medium of a bootstrap ceremony"},
		{"backup medium as a bootstrap's output", func() error {
			b := h.f.bootstrap()
			b.Backup = t.TempDir()
			_, err := b.Run(h.backup)
			return err
		}, "the output directory " + h.backup + " is a backup medium"},
		{"backup medium as a renewal's published directory", func() error {
			_, err := loadCurrent(h.boot.Root, h.backup)
			return err
		}, "the published directory " + h.backup + " is a backup medium"},
		{"backup medium given to verify", func() error {
			_, err := Audit(AuditOptions{Root: filepath.Join(boot, "metadata", "1.root.json"), Dir: h.backup})
			return err
		}, h.backup + " is a backup medium"},
		{"backup medium as verify's --previous", func() error {
			_, err := Audit(AuditOptions{Root: filepath.Join(boot, "metadata", "1.root.json"), Dir: boot, SoftCA: filepath.Join(caDir, "ca"), Previous: h.backup})
			return err
		}, h.backup + " is a backup medium"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if !errors.Is(err, ErrWrongMedium) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrWrongMedium saying %q", err, c.want)
			}
			if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s was made", target)
			}
			assertSameFiles(t, h.backup, backupBefore)
			assertSameFiles(t, boot, bootBefore)
		})
	}
	// An output medium as the output target: it exists, and says what
	// it holds.
	if _, err := h.signing(boot).Sign("0000", boot); !errors.Is(err, outdir.ErrOutputExists) || !strings.Contains(err.Error(), boot+" already holds the output medium of a bootstrap ceremony") {
		t.Errorf("the bootstrap medium as the output target: %v, want ErrOutputExists naming it", err)
	}
	assertSameFiles(t, boot, bootBefore)
	// The export's own medium, marked input by the repository, is
	// accepted like one without a marker.
	if err := os.WriteFile(filepath.Join(inputDir, MarkerFile), newMarker(RoleInput, "export", h.base).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	s := h.signing(boot)
	s.Export = export
	_, f, _, _, err := s.config()
	if err != nil {
		t.Fatalf("an export medium marked input: %v", err)
	}
	f.Close()
}

// TestMarkerChecked: verify refuses an output medium whose marker names
// another ceremony, or that lost it.
func TestMarkerChecked(t *testing.T) {
	fx := auditMedia(t)
	for _, c := range []struct {
		name, medium string
		opts         AuditOptions
		marker       *MediumMarker // nil: removed
		want         error
		says         string
	}{
		{"bootstrap medium marked stable", fx.boot, AuditOptions{SoftCA: fx.softCA}, newMarker(RoleOutput, string(MediumStable), time.Now()), ErrWrongMedium, "names the output medium of a stable ceremony"},
		{"stable medium marked bootstrap", fx.media1, AuditOptions{Repository: fx.boot}, newMarker(RoleOutput, string(MediumBootstrap), time.Now()), ErrWrongMedium, "the medium holds stable media"},
		{"bootstrap medium without its marker", fx.boot, AuditOptions{SoftCA: fx.softCA}, nil, tuf.ErrMissing, MarkerFile + " is missing"},
		{"stable medium without its marker", fx.media1, AuditOptions{Repository: fx.boot}, nil, tuf.ErrMissing, MarkerFile + " is missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			copyInto(t, c.medium, dir)
			o := c.opts
			o.Root, o.Dir = fx.rootFile, c.medium
			if _, err := Audit(o); err != nil {
				t.Fatalf("the medium as written: %v", err)
			}
			if err := os.Remove(filepath.Join(dir, MarkerFile)); err != nil {
				t.Fatal(err)
			}
			if c.marker != nil {
				if err := os.WriteFile(filepath.Join(dir, MarkerFile), c.marker.Marshal(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			o.Dir = dir
			if _, err := Audit(o); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %v, want %v saying %q", err, c.want, c.says)
			}
		})
	}
}

// TestBackupWithoutMarker: a backup medium made before markers is
// accepted and gets its marker, dated by its bootstrap, with its next
// state.
func TestBackupWithoutMarker(t *testing.T) {
	h := newHistory(t)
	if err := os.Remove(filepath.Join(h.backup, MarkerFile)); err != nil {
		t.Fatal(err)
	}
	h.export(synth.NextParams{})
	h.ceremony()
	m, err := readMarker(h.backup)
	if err != nil || m == nil {
		t.Fatalf("marker after the first ceremony: %+v, %v", m, err)
	}
	b, err := ReadBackup(h.backup)
	if err != nil {
		t.Fatal(err)
	}
	if m.Role != RoleBackup || m.Created != b.States[0].CeremonyTime {
		t.Errorf("marker %+v, want role backup created %s (state 1's ceremony time)", m, b.States[0].CeremonyTime)
	}
}

func assertSameFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := snapshotDir(t, dir)
	if len(got) != len(want) {
		t.Errorf("%s holds %d files, had %d", dir, len(got), len(want))
	}
	for p, b := range want {
		if got[p] != b {
			t.Errorf("%s changed", p)
		}
	}
}
