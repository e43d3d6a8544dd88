package ceremony

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// recoveryFixture: the repository was compromised after the second stable
// ceremony (stable v3). The attacker swapped stable files (new content
// under the same path) and deleted others; the export the repository
// hands the ceremony is theirs. The ceremony rotates the online keys with
// that export.
type recoveryFixture struct {
	published, attacked, media string
	injected                   synth.Injected
	res                        *OnlineRotationResult
}

var (
	recoveryOnce sync.Once
	recoveryFx   *recoveryFixture
	recoveryErr  error
)

func recoveryMedia(t *testing.T) (*auditFixture, *recoveryFixture) {
	t.Helper()
	fx := auditMedia(t)
	recoveryOnce.Do(func() { recoveryFx, recoveryErr = buildRecovery(fx, filepath.Join(caDir, "recovery")) })
	if recoveryErr != nil {
		t.Fatal(recoveryErr)
	}
	return fx, recoveryFx
}

func buildRecovery(fx *auditFixture, dir string) (*recoveryFixture, error) {
	rf := &recoveryFixture{published: filepath.Join(dir, "published"), attacked: filepath.Join(dir, "attacked.jsonl"), media: filepath.Join(dir, "rotate-online")}
	for _, c := range [][2]string{
		{filepath.Join(fx.boot, "metadata"), filepath.Join(rf.published, "metadata")},
		{filepath.Join(fx.boot, "keys"), filepath.Join(rf.published, "keys")},
		{filepath.Join(fx.media2, "stable", "metadata"), filepath.Join(rf.published, "metadata")},
		{filepath.Join(fx.media2, "stable", "ledger"), filepath.Join(rf.published, "ledger")},
	} {
		if err := copyDir(c[0], c[1]); err != nil {
			return nil, err
		}
	}
	in, err := os.Open(fx.export2)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	w, err := os.Create(rf.attacked)
	if err != nil {
		return nil, err
	}
	rf.injected, err = synth.Next(in, w, synth.NextParams{Seed: 11, Period: time.Hour, ChangedHash: 60, Deletions: 60})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	fresh, err := newSimRepo(now)
	if err != nil {
		return nil, err
	}
	cfg := demoConfig(fresh.online())
	cfg.Repository = "pypi"
	pins := func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }
	rot := &OnlineRotation{Root: fx.root, Published: rf.published, Export: rf.attacked, Config: cfg, Reason: "servers compromised", Devices: fx.devices, PIN: pins, Now: now, Version: "test"}
	if rf.res, err = rot.Run(rf.media); err != nil {
		return nil, fmt.Errorf("rotate online: %w", err)
	}
	return rf, nil
}

// stableContents reads a ledger's stable entries (path to length and
// sha256), as an auditor's script would.
func stableContents(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr, err := ledger.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for {
		e, err := lr.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Stable {
			l, s := e.StableContent()
			m[e.Path] = fmt.Sprintf("%d %x", l, s)
		}
	}
}

// exportContents reads an export's records (path to length and sha256).
func exportContents(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := export.NewReader(f, file)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for {
		r, err := x.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		m[r.Path] = fmt.Sprintf("%d %x", r.Length, r.SHA256)
	}
}

// TestRecoveryComparisonNamesSwappedFiles, as the attacker: every stable
// file they swapped in the export and every stable file they deleted is
// named, on the rotation medium, in its checklist and in its transcript;
// nothing else is (the expected list is computed here from the ledger and
// the export with maps, not by the merge under test).
func TestRecoveryComparisonNamesSwappedFiles(t *testing.T) {
	_, rf := recoveryMedia(t)
	stable := stableContents(t, filepath.Join(rf.published, "ledger", "3.ledger"))
	listed := exportContents(t, rf.attacked)
	want := map[string]string{}
	for p, c := range stable {
		switch got, ok := listed[p]; {
		case !ok:
			want[p] = stableset.RecoveryMissing
		case got != c:
			want[p] = stableset.RecoveryChanged
		}
	}
	swapped, deleted := 0, 0
	for _, p := range rf.injected.Changed {
		if _, ok := stable[p]; ok {
			swapped++
			if want[p] != stableset.RecoveryChanged {
				t.Fatalf("oracle: swapped stable file %s not expected as changed", p)
			}
		}
	}
	for _, p := range rf.injected.Deleted {
		if _, ok := stable[p]; ok {
			deleted++
			if want[p] != stableset.RecoveryMissing {
				t.Fatalf("oracle: deleted stable file %s not expected as missing", p)
			}
		}
	}
	if swapped < 5 || deleted < 5 {
		t.Fatalf("the attack touched only %d swapped and %d deleted stable files: the test proves little", swapped, deleted)
	}
	rec := rf.res.Recovery
	if rec == nil || rec.StableVersion != 3 || rec.Stable != int64(len(stable)) {
		t.Fatalf("comparison %+v, want stable v3 with %d paths", rec, len(stable))
	}
	got := map[string]string{}
	for _, f := range rec.Findings {
		got[f.Path] = f.Finding
		if c := fmt.Sprintf("%d %x", f.StableLength, f.StableSHA256); c != stable[f.Path] {
			t.Errorf("%s: stable content %s, the ledger says %s", f.Path, c, stable[f.Path])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d findings, want %d", len(got), len(want))
	}
	for p, k := range want {
		if got[p] != k {
			t.Errorf("%s: finding %q, want %q", p, got[p], k)
		}
	}
	b := mustRead(t, filepath.Join(rf.media, RecoveryComparison))
	parsed, err := stableset.ParseRecovery(b, RecoveryComparison)
	if err != nil || parsed.FirstDifference(rec) != "" {
		t.Fatalf("the medium's comparison: %v %v", err, parsed)
	}
	checklist := string(mustRead(t, filepath.Join(rf.media, RotationChecklist)))
	transcript := string(mustRead(t, filepath.Join(rf.media, "transcript.jsonl")))
	for p, k := range want {
		if !strings.Contains(checklist, "- "+k+" "+p+" ") {
			t.Errorf("the checklist does not list %s %s", k, p)
		}
	}
	if !strings.Contains(transcript, fmt.Sprintf(`"changed":%d`, rec.Count(stableset.RecoveryChanged))) || !strings.Contains(transcript, recoveryStep) || !strings.Contains(transcript, sha256Hex(b)) {
		t.Errorf("the transcript does not record the comparison")
	}
}

// TestAuditRecoveryComparison: verify accepts the rotation medium against
// the repository it started from and recomputes the comparison from the
// export; it refuses a comparison edited to hide a swapped file (even with
// the transcript re-chained to match), another export, and a comparison
// removed.
func TestAuditRecoveryComparison(t *testing.T) {
	fx, rf := recoveryMedia(t)
	base := AuditOptions{Root: fx.rootFile, Previous: rf.published, Export: rf.attacked}
	o := base
	o.Dir = rf.media
	rep, err := Audit(o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.Checks, func(c AuditCheck) bool {
		return c.Check == "recovery comparison recomputed" && c.OK && strings.Contains(c.Detail, "the same")
	}) {
		t.Fatalf("no recomputed comparison in %+v", rep.Checks)
	}
	hidden := rf.res.Recovery.Findings[0]
	hide := func(t *testing.T, dir string, rechain bool) {
		r := *rf.res.Recovery
		r.Findings = slices.Clone(r.Findings[1:])
		b := r.Marshal()
		if err := os.WriteFile(filepath.Join(dir, RecoveryComparison), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if !rechain {
			return
		}
		rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
			switch e.Step {
			case recoveryStep:
				e.Detail["sha256"] = sha256Hex(b)
				e.Detail[hidden.Finding] = float64(r.Count(hidden.Finding))
			case "rotation finished":
				e.Detail["recovery_sha256"] = sha256Hex(b)
			}
		})
	}
	for _, c := range []struct {
		name string
		opts func(o *AuditOptions)
		edit func(t *testing.T, dir string)
		want string
	}{
		{"a swapped file hidden from the comparison", nil, func(t *testing.T, dir string) { hide(t, dir, false) }, RecoveryComparison + " has sha256"},
		{"a swapped file hidden, the transcript re-chained", nil, func(t *testing.T, dir string) { hide(t, dir, true) }, hidden.Finding + " " + hidden.Path},
		{"the comparison removed", nil, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, RecoveryComparison)); err != nil {
				t.Fatal(err)
			}
		}, RecoveryComparison},
		{"a comparison made from another export", func(o *AuditOptions) { o.Export = fx.export2 }, nil, "does not match the comparison of " + fx.export2},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "medium")
			if err := copyDir(rf.media, dir); err != nil {
				t.Fatal(err)
			}
			o := base
			o.Dir = dir
			if c.opts != nil {
				c.opts(&o)
			}
			if c.edit != nil {
				c.edit(t, dir)
			}
			_, err := Audit(o)
			if !errors.Is(err, ErrInvalidMedium) || errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an invalid medium naming %q, got %v", c.want, err)
			}
		})
	}
}
