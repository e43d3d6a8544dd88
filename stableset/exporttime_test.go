package stableset

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// The repository is the attacker here: it controls the export's header.
// These tests act as it would, and the offline side's clock and ledger
// stop it.

// An export dated a year ahead of the ceremony's clock would make a file
// uploaded an hour ago "old enough": refused, naming both times.
func TestExportDatedAheadRefused(t *testing.T) {
	c := newCeremony(t)
	now := time.Now().UTC().Truncate(time.Second)
	young := file{"evil", "1.0", "evil-1.0.tar.gz", "uploaded an hour ago", now.Add(-time.Hour)}
	e := exportOf(t, now.Add(365*24*time.Hour), []file{foo1, young})
	cfg := c.config(e, "")
	cfg.Now = now
	_, err := ComputeDiff(cfg)
	if !errors.Is(err, ErrExportTime) {
		t.Fatalf("export dated a year ahead: %v, want ErrExportTime", err)
	}
	for _, want := range []string{"export.jsonl", now.Add(365 * 24 * time.Hour).Format(time.RFC3339), now.Format(time.RFC3339)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %q: %v", want, err)
		}
	}
	// Signing refuses it too, and writes nothing.
	dir := t.TempDir()
	out := filepath.Join(dir, "media")
	cfg = c.config(e, "")
	cfg.Now = now
	if _, err := Sign(cfg, SignParams{Approve: strings.Repeat("0", 64), Signers: c.stableSigners, BinKeys: c.binKeys, Now: now, OutDir: out}); !errors.Is(err, ErrExportTime) {
		t.Fatalf("sign: %v, want ErrExportTime", err)
	}
	assertNothing(t, dir, out)
}

// Within the clock skew the export is accepted, but ages are counted from
// the ceremony's clock, the earlier of the two: a file 90 days old by the
// export's date and 2 minutes short of it by the ceremony's is held.
func TestAgesCountFromTheEarlierClock(t *testing.T) {
	c := newCeremony(t)
	now := time.Now().UTC().Truncate(time.Second)
	edge := file{"edge", "1.0", "edge-1.0.tar.gz", "just young", now.Add(-90*24*time.Hour + 2*time.Minute)}
	e := exportOf(t, now.Add(5*time.Minute), []file{foo1, edge})
	cfg := c.config(e, "")
	cfg.Now = now
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got *DiffEntry
	if err := d.Entries(func(de *DiffEntry) error {
		if de.Path == rec(edge).Path {
			cp := *de
			got = &cp
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Category != Held || got.Reason != "too-young" {
		t.Fatalf("a file 90 days old only by the export's clock: %+v, want held too-young", got)
	}
	// The same export with the ceremony's clock 5 minutes later admits it.
	cfg = c.config(e, "")
	cfg.Now = now.Add(5 * time.Minute)
	d2, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.Summary.Added != 2 {
		t.Fatalf("with the later clock: %+v, want both added", d2.Summary)
	}
}

// The next ceremony is handed an export older than the listing the last
// one signed (which would move the backdating threshold back), or an
// export of another repository: both refused, naming the values that
// disagree; the previous state is untouched.
func TestExportAgainstPreviousLedger(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1 := filepath.Join(dir, "one")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1}), ""), out1)

	t.Run("older than the previous listing", func(t *testing.T) {
		e := exportOf(t, t1.Add(-24*time.Hour), []file{foo1, bar1, baz1})
		_, err := ComputeDiff(c.config(e, out1))
		if !errors.Is(err, ErrExportTime) || !strings.Contains(err.Error(), t1.Format(time.RFC3339)) || !strings.Contains(err.Error(), t1.Add(-24*time.Hour).Format(time.RFC3339)) {
			t.Fatalf("export older than the previous listing: %v, want ErrExportTime naming both times", err)
		}
	})
	t.Run("another repository", func(t *testing.T) {
		e := exportOfRepository(t, "testpypi", t2, []export.Record{rec(foo1), rec(bar1)})
		_, err := ComputeDiff(c.config(e, out1))
		if !errors.Is(err, ErrRepository) || !strings.Contains(err.Error(), `"testpypi"`) || !strings.Contains(err.Error(), `"pypi"`) {
			t.Fatalf("export of another repository: %v, want ErrRepository naming both", err)
		}
	})
	// The previous media are as they were: a correct next export passes.
	d, err := ComputeDiff(c.config(exportOf(t, t2, []file{foo1, bar1}), out1))
	if err != nil {
		t.Fatalf("the correct next export: %v", err)
	}
	d.Close()
}

// Without a ceremony clock nothing is computed.
func TestNoClockRefused(t *testing.T) {
	c := newCeremony(t)
	cfg := c.config(exportOf(t, t1, []file{foo1}), "")
	cfg.Now = time.Time{}
	if _, err := ComputeDiff(cfg); !errors.Is(err, ErrExportTime) {
		t.Fatalf("no clock: %v, want ErrExportTime", err)
	}
}
