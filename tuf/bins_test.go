package tuf

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestBinLayout(t *testing.T) {
	for _, tc := range []struct {
		bits              int
		first, second     string
		last              string
		prefixes0         string
		prefixLen, perBin int
	}{
		{4, "stable-0", "stable-1", "stable-f", "0", 1, 1},
		{6, "stable-00-03", "stable-04-07", "stable-fc-ff", "00,01,02,03", 2, 4},
		{8, "stable-00", "stable-01", "stable-ff", "00", 2, 1},
		{14, "stable-0000-0003", "stable-0004-0007", "stable-fffc-ffff", "0000,0001,0002,0003", 4, 4},
		{16, "stable-0000", "stable-0001", "stable-ffff", "0000", 4, 1},
	} {
		l, err := NewBinLayout("stable", tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		if l.Name(0) != tc.first || l.Name(1) != tc.second || l.Name(l.NumBins()-1) != tc.last {
			t.Errorf("bits %d: names %s %s %s", tc.bits, l.Name(0), l.Name(1), l.Name(l.NumBins()-1))
		}
		if got := strings.Join(l.Prefixes(0), ","); got != tc.prefixes0 {
			t.Errorf("bits %d: prefixes %s", tc.bits, got)
		}
		if l.PrefixLen() != tc.prefixLen || l.perBin() != tc.perBin {
			t.Errorf("bits %d: prefix len %d per bin %d", tc.bits, l.PrefixLen(), l.perBin())
		}
		for i := 0; i < l.NumBins(); i++ {
			if j, ok := l.Index(l.Name(i)); !ok || j != i {
				t.Fatalf("bits %d: Index(Name(%d)) = %d %v", tc.bits, i, j, ok)
			}
		}
		for _, bad := range []string{"stable", "stable-", "other-00", tc.first + "x", "stable-zz", "stable-" + strings.Repeat("f", 5)} {
			if _, ok := l.Index(bad); ok {
				t.Errorf("bits %d: Index(%q) accepted", tc.bits, bad)
			}
		}
	}
	for _, bits := range []int{0, 3, 17} {
		if _, err := NewBinLayout("stable", bits); err == nil {
			t.Errorf("%d bits accepted", bits)
		}
	}
}

func TestBinBitsFor(t *testing.T) {
	for n, want := range map[int64]int{0: 4, 1000: 4, 10240: 4, 10241: 5, 1_000_000: 11, 10_000_000: 14, 1 << 40: 16} {
		if got := BinBitsFor(n, 640); got != want {
			t.Errorf("BinBitsFor(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestBinRouting proves hex-prefix routing with fixed vectors: the bin a
// path goes to is the one whose path_hash_prefixes include the start of the
// lowercase hex SHA-256 of the path, and only that one.
func TestBinRouting(t *testing.T) {
	vectors := []struct {
		path string
		hash string // hex sha256(path), computed independently with sha256sum
	}{
		{"a", "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
		{"packages/00/01/0203/foo-1.0.tar.gz", "d0b544c362dfda1c315857aba7146927b468c56131d2fad153540a0ca2c72e70"},
		{"simple/foo/index.html", "4cfeb77fbe73834f65aa089546f47274a224a50a9e65621ccbf73adc04449de2"},
	}
	for _, v := range vectors {
		sum := sha256.Sum256([]byte(v.path))
		h := hex.EncodeToString(sum[:])
		if v.hash != "" && h != v.hash {
			t.Fatalf("sha256(%q) = %s, want %s", v.path, h, v.hash)
		}
		for _, bits := range []int{4, 5, 8, 11, 14, 16} {
			l, _ := NewBinLayout("stable", bits)
			i := l.BinOf(v.path)
			found := 0
			for j := 0; j < l.NumBins(); j++ {
				d := l.Delegation(j, []string{"k"})
				if d.Matches(v.path) {
					found++
					if j != i {
						t.Errorf("bits %d: %q matched by bin %d, BinOf says %d", bits, v.path, j, i)
					}
				}
			}
			if found != 1 {
				t.Errorf("bits %d: %q matched by %d bins", bits, v.path, found)
			}
			if !strings.HasPrefix(h, l.Prefixes(i)[0][:1]) {
				t.Errorf("bits %d: %q hash %s in bin %s", bits, v.path, h, l.Name(i))
			}
		}
	}
	// sha256("a") starts ca97: with 14 bits (4-digit prefixes, 4 per bin)
	// it lives in the bin covering ca94..ca97.
	l, _ := NewBinLayout("stable", 14)
	if got := l.Name(l.BinOf("a")); got != "stable-ca94-ca97" {
		t.Errorf("\"a\" routed to %s", got)
	}
	l, _ = NewBinLayout("stable", 8)
	if got := l.Name(l.BinOf("a")); got != "stable-ca" {
		t.Errorf("\"a\" routed to %s", got)
	}
	l, _ = NewBinLayout("stable", 5) // 2-digit prefixes, 8 per bin: d0 is in d0..d7
	if got := l.Name(l.BinOf("packages/00/01/0203/foo-1.0.tar.gz")); got != "stable-d0-d7" {
		t.Errorf("routed to %s", got)
	}
	l, _ = NewBinLayout("stable", 4)
	if got := l.Name(l.BinOf("simple/foo/index.html")); got != "stable-4" {
		t.Errorf("routed to %s", got)
	}
}

func TestLayoutOf(t *testing.T) {
	l, _ := NewBinLayout("stable", 6)
	tg := NewTargets(1, testExpiry)
	for i := 0; i < l.NumBins(); i++ {
		tg.Signed.Delegations = appendRole(tg.Signed.Delegations, l.Delegation(i, nil))
	}
	got, err := LayoutOf(&tg.Signed, "stable")
	if err != nil || got != l {
		t.Fatalf("LayoutOf = %v, %v", got, err)
	}
	tg.Signed.Delegations.Roles[3].Terminating = true
	if _, err := LayoutOf(&tg.Signed, "stable"); err == nil {
		t.Error("terminating bin accepted")
	}
	tg.Signed.Delegations.Roles[3].Terminating = false
	tg.Signed.Delegations.Roles[3].PathHashPrefixes = []string{"0c"}
	if _, err := LayoutOf(&tg.Signed, "stable"); err == nil {
		t.Error("wrong prefixes accepted")
	}
}

func appendRole(d *Delegations, r DelegatedRole) *Delegations {
	if d == nil {
		d = &Delegations{}
	}
	d.Roles = append(d.Roles, r)
	return d
}
