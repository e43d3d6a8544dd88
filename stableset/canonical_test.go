package stableset

import (
	"errors"
	"strings"
	"testing"
)

const canonHeader = "keyceremony-stable-diff 2\nrepository demo\nlisting-time 2026-11-25T12:00:00Z\nprevious-stable-version 0\nprevious-ledger-sha256 -\nstable-version 2\n"

func TestCanonicalDigestRefusals(t *testing.T) {
	// Entries come sorted by path.
	ok := canonHeader + "added\t-\ta\tp\t-\t-\t1\t00\nadded\t-\tb\tp\t-\t-\t1\t00\n"
	if _, err := CanonicalDigest(strings.NewReader(ok)); err != nil {
		t.Fatalf("canonical order refused: %v", err)
	}
	for name, in := range map[string]string{
		"short header":   "keyceremony-stable-diff 2\n",
		"out of order":   canonHeader + "added\t-\tb\tp\t-\t-\t1\t00\nadded\t-\ta\tp\t-\t-\t1\t00\n",
		"version 1":      strings.Replace(canonHeader, "diff 2", "diff 1", 1),
		"duplicate":      canonHeader + "added\t-\ta\tp\t-\t-\t1\t00\nadded\t-\ta\tp\t-\t-\t1\t00\n",
		"too few fields": canonHeader + "added\t-\n",
		"empty":          "",
	} {
		if _, err := CanonicalDigest(strings.NewReader(in)); !errors.Is(err, ErrCanonicalDiff) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// The digest depends on every line.
	d1, _ := CanonicalDigest(strings.NewReader(ok))
	d2, _ := CanonicalDigest(strings.NewReader(strings.Replace(ok, "\t1\t00\n", "\t2\t00\n", 1)))
	if d1 == d2 {
		t.Fatal("an edited line kept the digest")
	}
}

func FuzzCanonicalDigest(f *testing.F) {
	f.Add([]byte(canonHeader + "added\t-\tb\tp\t-\t-\t1\t00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := CanonicalDigest(strings.NewReader(string(b)))
		if err == nil && len(d) != 64 {
			t.Fatalf("digest %q", d)
		}
	})
}
