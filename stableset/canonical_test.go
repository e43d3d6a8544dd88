package stableset

import (
	"errors"
	"os"
	"path/filepath"
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

func TestReadExportTrailer(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	sum := strings.Repeat("ab", 32)
	os.WriteFile(good, []byte("{\"format\":\"x\"}\n{\"trailer\":{\"count\":7,\"sha256\":\""+sum+"\"}}\n"), 0o644)
	tr, err := ReadExportTrailer(good)
	if err != nil || tr.Count != 7 || tr.SHA256[0] != 0xab {
		t.Fatalf("%+v %v", tr, err)
	}
	for name, body := range map[string]string{
		"truncated":     "{\"format\":\"x\"}\n{\"path\":\"a\"}\n",
		"bad hash":      "{\"trailer\":{\"count\":7,\"sha256\":\"zz\"}}\n",
		"unknown field": "{\"trailer\":{\"count\":7,\"sha256\":\"" + sum + "\",\"x\":1}}\n",
		"empty":         "",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		var ee *ExportError
		if _, err := ReadExportTrailer(p); !errors.As(err, &ee) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func FuzzReadExportTrailer(f *testing.F) {
	f.Add([]byte("{\"trailer\":{\"count\":1,\"sha256\":\"" + strings.Repeat("00", 32) + "\"}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "x")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ReadExportTrailer(p)
	})
}
