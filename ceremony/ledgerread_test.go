package ceremony

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// TestReadLedgerOnce holds the one read of a medium's ledger (readLedger)
// against the reads it replaced: its length and SHA-256 are the file's,
// its sums and stable count sumLedger's in both target modes, and
// diffMatchesLedger refuses the same statement with the same error from
// it as from reading the ledger itself.
func TestReadLedgerOnce(t *testing.T) {
	fx := auditMedia(t)
	file := filepath.Join(fx.media2, "stable", "ledger", "3.ledger")
	b := mustRead(t, file)
	r, err := readLedger(file)
	if err != nil || r.err != nil || r.headerErr != nil {
		t.Fatalf("readLedger: %v, %v, %v", err, r.err, r.headerErr)
	}
	if r.length != int64(len(b)) || r.sha256 != sha256.Sum256(b) {
		t.Errorf("readLedger: length %d sha256 %x, the file has %d, %x", r.length, r.sha256, len(b), sha256.Sum256(b))
	}
	stmt := signedStatement(t, fx, fx.media2)
	for _, mode := range []policy.TargetMode{policy.ModeFilesPages, policy.ModePages} {
		tc := &targetCheck{mode: mode, naming: simpleindex.Layout(stmt.Naming)}
		var want entrySum
		if err := sumLedger(file, tc, want.add); err != nil {
			t.Fatal(err)
		}
		again := &targetCheck{mode: mode, naming: tc.naming}
		var got entrySum
		if err := r.sum(again, &got); err != nil {
			t.Fatal(err)
		}
		if got != want || again.ledgerFiles != tc.ledgerFiles || tc.ledgerFiles == 0 {
			t.Errorf("mode %s: sum %x and %d stable files, sumLedger %x and %d", mode, got, again.ledgerFiles, want, tc.ledgerFiles)
		}
		if mode == policy.ModeFilesPages && got == r.pages {
			t.Errorf("mode %s: the files are not in the sum", mode)
		}
		other := &targetCheck{mode: mode, naming: "other"}
		if err := r.sum(other, &got); !errors.Is(err, ErrTargetMode) || !strings.Contains(err.Error(), file+" names its pages") {
			t.Errorf("another naming: %v", err)
		}
	}

	st, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(fx.media2, "stable", "metadata", "3.stable.json")), "3.stable.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := diffMatchesLedger(fx.media2, st, stmt, map[string]*ledgerRead{"ledger/3.ledger": r}); err != nil {
		t.Fatal(err)
	}
	stmt.Counts.Added++
	const want = "signed-diff.json says stable files (added + unchanged + changed) "
	e1 := diffMatchesLedger(fx.media2, st, stmt, map[string]*ledgerRead{"ledger/3.ledger": r})
	e2 := diffMatchesLedger(fx.media2, st, stmt, nil)
	if !errors.Is(e1, ErrMediumContent) || e2 == nil || e1.Error() != e2.Error() || !strings.Contains(e1.Error(), want) || !strings.HasSuffix(e1.Error(), "ledger/3.ledger has "+strconv.FormatInt(r.stableFiles, 10)+": "+ErrMediumContent.Error()) {
		t.Errorf("diffMatchesLedger: %v (read) and %v (not read), want %q", e1, e2, want)
	}
}

// TestReadLedgerRefusals: a ledger whose records do not read is still
// hashed (stable's check of it comes first) and its refusal kept for the
// checks that read its records; a file that is no ledger is refused at
// its header.
func TestReadLedgerRefusals(t *testing.T) {
	fx := auditMedia(t)
	b := mustRead(t, filepath.Join(fx.media2, "stable", "ledger", "3.ledger"))
	dir := t.TempDir()
	for _, c := range []struct {
		name   string
		data   []byte
		header bool
	}{
		{"cut", b[:len(b)/2], false},
		{"not a ledger", []byte("not a ledger\n"), true},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := readLedger(p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.length != int64(len(c.data)) || r.sha256 != sha256.Sum256(c.data) {
			t.Errorf("%s: length %d sha256 %x, want the file's", c.name, r.length, r.sha256)
		}
		var le *ledger.Error
		if !errors.As(r.err, &le) || (r.headerErr != nil) != c.header || !strings.HasPrefix(r.err.Error(), p+": ") {
			t.Errorf("%s: err %v, header err %v", c.name, r.err, r.headerErr)
		}
		tc := &targetCheck{mode: policy.ModeFilesPages, naming: simpleindex.Layout(r.header.Naming)}
		var sum entrySum
		if err := r.sum(tc, &sum); err != r.err || tc.ledgerFiles != 0 {
			t.Errorf("%s: sum = %v, want %v, and no stable file counted (%d)", c.name, err, r.err, tc.ledgerFiles)
		}
	}
	if _, err := readLedger(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing ledger: %v", err)
	}
}
