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
