package stableset

import (
	"fmt"
	"testing"
)

// TestFullTextLinesAsFmt holds WriteFullText's line formatting (appended,
// not fmt) to the fmt verbs it replaced, with names of multi-byte runes
// and names longer than the column.
func TestFullTextLinesAsFmt(t *testing.T) {
	sum := [32]byte{0x00, 0x9f, 0xff, 31: 0x01}
	for _, s := range []string{"", "-", "1.0", "2.0.0rc1", "123456789012", "1234567890123", "ünïcödé", "版本一二三四五六七八九十一二", "added legacy:no-version", "changed accepted some-long-reason-here"} {
		for _, w := range []int{12, 24} {
			if got, want := string(appendPadded([]byte("x"), s, w)), fmt.Sprintf("x%-*s", w, s); got != want {
				t.Errorf("appendPadded(%q, %d) = %q, fmt gives %q", s, w, got, want)
			}
		}
		for _, n := range []int64{0, 7, 1 << 40} {
			got := string(appendContentLine(nil, s, n, &sum))
			want := fmt.Sprintf("  %-12s %-24s %d bytes sha256 %x\n", "", s, n, sum)
			if got != want {
				t.Errorf("appendContentLine(%q, %d) = %q, fmt gives %q", s, n, got, want)
			}
		}
	}
}
