package hexsum

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestAgainstHex holds Decode to encoding/hex: the same bytes for 64
// digits, and a refusal for a wrong length, a non-digit anywhere, and
// (with Lower) an uppercase digit.
func TestAgainstHex(t *testing.T) {
	good := "00ff10a9b8c7d6e5f4039281706f5e4d3c2b1a0918273645546372819aabbcdd"
	var got [32]byte
	want, _ := hex.DecodeString(good)
	for _, tb := range []*[256]byte{&Lower, &Either} {
		if !Decode(&got, good, tb) || string(got[:]) != string(want) {
			t.Fatalf("%s: %x", good, got)
		}
		if !Decode(&got, []byte(good), tb) || string(got[:]) != string(want) {
			t.Fatalf("%s as bytes: %x", good, got)
		}
	}
	if !Decode(&got, strings.ToUpper(good), &Either) || string(got[:]) != string(want) {
		t.Errorf("uppercase with Either: %x", got)
	}
	if Decode(&got, strings.ToUpper(good), &Lower) {
		t.Error("uppercase accepted by Lower")
	}
	for _, bad := range []string{good[:63], good + "0", ""} {
		if Decode(&got, bad, &Either) {
			t.Errorf("%d digits accepted", len(bad))
		}
	}
	for i := range 64 {
		for _, c := range []byte{'g', 'G', ' ', 0, 0x80, 0xff, '/', ':', '@', '`'} {
			b := []byte(good)
			b[i] = c
			if Decode(&got, b, &Either) {
				t.Errorf("%q at %d accepted", c, i)
			}
		}
	}
	for c := range 256 {
		_, err := hex.DecodeString(string([]byte{byte(c), '0'}))
		if isLower := err == nil && (c < 'A' || c > 'F'); (Lower[c] != 0xff) != isLower {
			t.Errorf("Lower[%q] = %#x", rune(c), Lower[c])
		}
		if (Either[c] != 0xff) != (err == nil) {
			t.Errorf("Either[%q] = %#x", rune(c), Either[c])
		}
	}
}
