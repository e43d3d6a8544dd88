package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The example on Wikipedia's "PGP word list" page.
func TestPGPWordsWikipediaVector(t *testing.T) {
	d, _ := hex.DecodeString("E58294F2E9A227486E8B061B31CC528FD7FA3F19")
	want := "topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator goldfish Medusa afflict bravado chatter revolver Dupont midsummer stopwatch whimsical cowbell bottomless"
	if got := strings.Join(PGPWords(d), " "); got != want {
		t.Errorf("PGPWords = %q\nwant       %q", got, want)
	}
}

func TestPGPWordListIntegrity(t *testing.T) {
	seen := map[string]string{}
	for name, list := range map[string]*[256]string{"even": &pgpEven, "odd": &pgpOdd} {
		for i, w := range list {
			if w == "" || strings.TrimSpace(w) != w {
				t.Errorf("%s[%02x] = %q", name, i, w)
			}
			k := strings.ToLower(w)
			if prev, ok := seen[k]; ok {
				t.Errorf("%s[%02x] = %q duplicates %s", name, i, w, prev)
			}
			seen[k] = name
		}
	}
	if len(seen) != 512 {
		t.Errorf("%d distinct words, want 512", len(seen))
	}
	// The lists are in alphabetical order (ignoring case) but for the one
	// inversion every copy of the standard list has: "applicant", "Apollo".
	for name, list := range map[string]*[256]string{"even": &pgpEven, "odd": &pgpOdd} {
		for i := 1; i < 256; i++ {
			if strings.ToLower(list[i-1]) > strings.ToLower(list[i]) && list[i] != "Apollo" {
				t.Errorf("%s list out of order at %02x: %q > %q", name, i, list[i-1], list[i])
			}
		}
	}
	// SHA-256 of the even words then the odd words, joined by newlines, as
	// computed over two independent copies of the list that agree.
	all := strings.Join(pgpEven[:], "\n") + "\n" + strings.Join(pgpOdd[:], "\n")
	sum := sha256.Sum256([]byte(all))
	if got, want := hex.EncodeToString(sum[:]), "e9b7b0052233a74aa56724ed3f79c272036aed68d8f4c0856e833c8043b9ac62"; got != want {
		t.Errorf("word list digest %s, want %s", got, want)
	}
}

func TestPGPWordsParity(t *testing.T) {
	// The same byte reads differently at even and odd positions.
	w := PGPWords([]byte{0x00, 0x00, 0xff, 0xff})
	want := []string{"aardvark", "adroitness", "Zulu", "Yucatan"}
	if strings.Join(w, " ") != strings.Join(want, " ") {
		t.Errorf("PGPWords = %v, want %v", w, want)
	}
	if len(PGPWords(nil)) != 0 {
		t.Error("PGPWords(nil) is not empty")
	}
}

func TestHexGroups(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 17)
		}
		return b
	}
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, ""},
		{[]byte{0xab}, "ab"},
		{[]byte{0xab, 0xcd}, "abcd"},
		{[]byte{0xab, 0xcd, 0xef}, "abcd ef"},
		{seq(16), "0011 2233 4455 6677 8899 aabb ccdd eeff"},
		{seq(17), "0011 2233 4455 6677 8899 aabb ccdd eeff\n10"},
		{seq(32), "0011 2233 4455 6677 8899 aabb ccdd eeff\n1021 3243 5465 7687 98a9 bacb dced fe0f"},
	}
	for _, tt := range tests {
		if got := HexGroups(tt.in); got != tt.want {
			t.Errorf("HexGroups(%x) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzHexGroups(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xa5}, 33))
	f.Fuzz(func(t *testing.T, d []byte) {
		s := HexGroups(d)
		back, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(s))
		if err != nil || !bytes.Equal(back, d) {
			t.Fatalf("HexGroups(%x) = %q does not read back", d, s)
		}
		if len(PGPWords(d)) != len(d) {
			t.Fatal("PGPWords length differs from input")
		}
	})
}
