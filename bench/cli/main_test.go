package main

import (
	"strings"
	"testing"
)

// TestParseDigest: the bench takes the digest to approve from `stable
// diff --format json`, and refuses output without a 64-hex-digit one.
func TestParseDigest(t *testing.T) {
	d := strings.Repeat("ab", 32)
	if got, err := parseDigest([]byte(`{"repository": "pypi", "digest": "` + d + `", "counts": {}}`)); err != nil || got != d {
		t.Errorf("parseDigest = %q, %v", got, err)
	}
	for _, bad := range []string{`{"digest": "abcd"}`, `{"digest": "` + strings.Repeat("zz", 32) + `"}`, `{}`, `digest: ` + d, ``} {
		if got, err := parseDigest([]byte(bad)); err == nil {
			t.Errorf("parseDigest(%q) = %q, want an error", bad, got)
		}
	}
}

// TestConfirmFlags: the bench confirms the undecided flags "confirm"
// settles (the synthetic period's backdated files), skips decided ones,
// and refuses a flag that needs another choice.
func TestConfirmFlags(t *testing.T) {
	out := `{"digest": "x", "flags": [
	 {"kind": "backdated", "subject": "packages/aa/f-1.tar.gz", "choices": ["confirm"], "decision": null},
	 {"kind": "project-loss", "subject": "foo", "choices": ["confirm"], "decision": {"decision": "confirm"}},
	 {"kind": "backdated", "subject": "packages/bb/g-1.tar.gz", "choices": ["confirm"]}]}`
	dec, n, err := confirmFlags([]byte(out))
	if err != nil || n != 2 {
		t.Fatalf("confirmFlags = %d, %v", n, err)
	}
	want := `{"decision":"confirm","flag":"backdated","reason":"benchmark: the synthetic period's backdated files","subject":"packages/aa/f-1.tar.gz"}` + "\n" +
		`{"decision":"confirm","flag":"backdated","reason":"benchmark: the synthetic period's backdated files","subject":"packages/bb/g-1.tar.gz"}` + "\n"
	if string(dec) != want {
		t.Errorf("decisions:\n%s\nwant:\n%s", dec, want)
	}
	if _, _, err := confirmFlags([]byte(`{"flags": [{"kind": "changed", "subject": "p", "choices": ["keep-old", "accept-new", "drop"], "decision": null}]}`)); err == nil {
		t.Error("a changed flag was confirmed")
	}
}
