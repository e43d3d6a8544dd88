package stableset

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/keyceremony/keyceremony/stableset/export"
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

// TestJSONEntryAsMarshal holds WriteFullJSON's entries (appended, not
// json.Marshal) to json.Marshal of the jsonEntry it replaced: every
// ASCII byte, HTML's characters, invalid UTF-8, U+2028 and U+2029,
// multi-byte runes, each side present or absent, legacy kinds.
func TestJSONEntryAsMarshal(t *testing.T) {
	strs := []string{"", "-", "foo-1.0.tar.gz", "<a href=\"x\">&amp;</a>", "back\\slash", "ünïcödé 版本", "\u2028\u2029x\u2027",
		"\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x7f\x80", "\U0001F600"}
	var ascii []byte
	for c := range 0x80 {
		ascii = append(ascii, byte(c))
	}
	strs = append(strs, string(ascii))
	sum := [32]byte{0x00, 0x9f, 0xff, 31: 0x01}
	n := 0
	for i, s := range strs {
		for _, legacy := range []export.Legacy{0, export.LegacyVersion, export.LegacySpelling | export.LegacyMismatch} {
			e := DiffEntry{Category: Category(strs[(i+1)%len(strs)]), Reason: s, Path: "packages/" + s, Project: s, Version: strs[(i+3)%len(strs)], Legacy: legacy,
				HasOld: i%2 == 0, OldLength: int64(i) << 33, OldSHA256: sum, HasNew: i%3 != 0, NewLength: int64(i), NewSHA256: [32]byte{byte(i)}}
			je := jsonEntry{Category: e.Category, Reason: e.Reason, Path: e.Path, Project: e.Project, Version: e.Version, Legacy: e.Legacy.String()}
			if e.HasOld {
				l := e.OldLength
				je.OldLength, je.OldSHA256 = &l, hex.EncodeToString(e.OldSHA256[:])
			}
			if e.HasNew {
				l := e.NewLength
				je.NewLength, je.NewSHA256 = &l, hex.EncodeToString(e.NewSHA256[:])
			}
			want, err := json.Marshal(je)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendJSONEntry([]byte("x"), &e); string(got) != "x"+string(want) {
				t.Errorf("appendJSONEntry = %s\njson.Marshal gives %s", got[1:], want)
			}
			n++
		}
	}
	if n < 40 {
		t.Fatalf("%d entries compared", n)
	}
}
