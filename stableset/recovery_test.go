package stableset

import (
	"bytes"
	"errors"
	"testing"
)

func sampleRecovery() *Recovery {
	r := &Recovery{StableVersion: 3, Stable: 2}
	r.LedgerSHA256[0], r.ExportSHA256[1] = 1, 2
	r.Findings = []RecoveryFinding{
		{Finding: RecoveryChanged, Path: "packages/aa/bb/cc/a-1.0.tar.gz", StableLength: 10, ExportLength: 11, ExportSHA256: [32]byte{9}},
		{Finding: RecoveryMissing, Path: "packages/aa/bb/cd/b-1.0.tar.gz", StableLength: 12, StableSHA256: [32]byte{7}},
	}
	return r
}

// TestParseRecoveryRefuses: the comparison file is read strictly; a
// summary that does not count the findings, an unsorted path or a
// malformed line are refused with the line named.
func TestParseRecoveryRefuses(t *testing.T) {
	good := sampleRecovery().Marshal()
	if r, err := ParseRecovery(good, "c"); err != nil || r.FirstDifference(sampleRecovery()) != "" {
		t.Fatalf("round trip: %v", err)
	}
	lines := bytes.SplitAfter(good, []byte("\n"))
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"a finding dropped, the summary kept", bytes.Join(lines[:len(lines)-2], nil), "c:6: the summary counts 1 changed and 1 missing"},
		{"findings out of order", bytes.Join(append(append(append([][]byte{}, lines[:7]...), lines[8]), lines[7]), nil), "c:9: path"},
		{"a short changed line", bytes.Replace(good, []byte("\t11\t"), []byte("\t"), 1), "c:8: want a changed"},
		{"uppercase hex", bytes.Replace(good, []byte("ledger-sha256: 01"), []byte("ledger-sha256: 0A"), 1), "c:3: ledger-sha256"},
		{"another format", bytes.Replace(good, []byte("comparison 1"), []byte("comparison 2"), 1), "c:1:"},
		{"no final newline", good[:len(good)-1], "c:0:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRecovery(c.b, "c")
			if !errors.Is(err, ErrRecovery) || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("want %q, got %v", c.want, err)
			}
		})
	}
}

// FuzzParseRecovery: ParseRecovery never panics, and what it accepts
// marshals back to the same bytes.
func FuzzParseRecovery(f *testing.F) {
	f.Add(sampleRecovery().Marshal())
	f.Add((&Recovery{}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecovery(b, "fuzz")
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("accepted %q, marshals to %q", b, r.Marshal())
		}
	})
}
