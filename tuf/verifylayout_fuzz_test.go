package tuf

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzCheckBins: the bin-layout check never panics on any prefixes, and
// when it accepts a set of sibling bins, every sampled hash inside the
// parent's prefixes lies in exactly one bin (compared with
// strings.HasPrefix here) and no hash outside them lies in any.
func FuzzCheckBins(f *testing.F) {
	f.Add("", "0,1,2,3,4,5,6,7", "8,9,a,b,c,d,e,f", uint64(0x1234))
	f.Add("a", "a0,a1,a2,a3", "a4,a5,a6,a7,a8,a9,aa,ab,ac,ad,ae,af", uint64(0xa5))
	f.Add("0,1", "0", "1", uint64(7))
	f.Add("", "0,1,2,3,4,5,6,7", "7f,8,9,a,b,c,d,e,f", uint64(0))
	f.Add("", "0,1,2,3,4,5,6,7", "8,9,a,b,c,d,e,f0", uint64(0))
	f.Add("ffffffffffffffff", "ffffffffffffffff", "", uint64(1))
	f.Fuzz(func(t *testing.T, parent, a, b string, seed uint64) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		pd := &DelegatedRole{Name: "parent", Paths: []string{"*"}}
		if ps := split(parent); len(ps) > 0 {
			pd = &DelegatedRole{Name: "parent", PathHashPrefixes: ps}
		}
		t1 := &Targets{}
		t1.AddDelegation(DelegatedRole{Name: "a", PathHashPrefixes: split(a)})
		t1.AddDelegation(DelegatedRole{Name: "b", PathHashPrefixes: split(b)})
		if err := checkBins("parent", pd, t1.Delegations.Roles); err != nil {
			return
		}
		inAny := func(h string, ps []string) bool {
			for _, p := range ps {
				if strings.HasPrefix(h, p) {
					return true
				}
			}
			return false
		}
		// Sample hashes near each prefix's start and at a pseudo-random spot.
		var hashes []string
		for _, ps := range [][]string{pd.PathHashPrefixes, split(a), split(b)} {
			for _, p := range ps {
				hashes = append(hashes, (p + strings.Repeat("0", 16))[:16], (p + strings.Repeat("f", 16))[:16])
			}
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], seed)
		hashes = append(hashes, hex.EncodeToString(buf[:]))
		for _, h := range hashes {
			inParent := len(pd.PathHashPrefixes) == 0 || inAny(h, pd.PathHashPrefixes)
			n := 0
			for _, d := range t1.Delegations.Roles {
				if inAny(h, d.PathHashPrefixes) {
					n++
				}
			}
			if inParent && n != 1 || !inParent && n != 0 {
				t.Fatalf("accepted bins a=%q b=%q under %q, but hash %s is in %d bins (in parent: %v)", a, b, parent, h, n, inParent)
			}
		}
	})
}
