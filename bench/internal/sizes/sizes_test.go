package sizes

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/tuf"
)

// writeMedium writes a two-level stable medium (2 mids x 2 leaves) of the
// given paths at version v into dir/metadata with its snapshot fragment;
// roles in keep are copied from the previous medium prev instead (the
// same version and bytes).
func writeMedium(t *testing.T, dir, prev string, v int64, paths []string, keep map[string]bool) map[string]int64 {
	t.Helper()
	l, err := tuf.NewTwoLevel(stableset.StableRole, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "metadata")
	if err := os.MkdirAll(md, 0o755); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	frag := stableset.Fragment{Type: stableset.FragmentType, Meta: map[string]tuf.MetaFile{}}
	sizes := map[string]int64{}
	put := func(role string, data []byte, version int64) {
		if keep[role] {
			pf, err := os.ReadFile(filepath.Join(prev, stableset.FragmentFile))
			if err != nil {
				t.Fatal(err)
			}
			var pfr stableset.Fragment
			if err := json.Unmarshal(pf, &pfr); err != nil {
				t.Fatal(err)
			}
			version = pfr.Meta[role+".json"].Version
			if data, err = os.ReadFile(filepath.Join(prev, "metadata", fmt.Sprintf("%d.%s.json", version, role))); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(md, fmt.Sprintf("%d.%s.json", version, role)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		frag.Meta[role+".json"] = metaFile(version, data)
		sizes[role] = int64(len(data))
	}
	signer := func() keys.Signer {
		s, err := keys.GenerateEd25519()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	leaves := make([][]tuf.BinTarget, l.NumLeaves())
	for _, p := range paths {
		h := sha256.Sum256([]byte(p))
		m, j := l.LeafOfHash(&h)
		leaves[m<<l.LeafBits|j] = append(leaves[m<<l.LeafBits|j], tuf.BinTarget{Path: p, Length: 100, SHA256: h, BLAKE2b256: h, HasBLAKE2b: true})
	}
	st := tuf.NewTargets(v, exp)
	st.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{}}
	for i := 0; i < l.NumMids(); i++ {
		mid := tuf.NewTargets(v, exp)
		mid.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{}}
		for j := 0; j < l.LeavesPerMid(); j++ {
			ls := signer()
			mid.Signed.AddDelegation(l.LeafDelegation(i, j, ls.Key()), ls.Key())
			signed, err := tuf.AppendBinSigned(nil, v, tuf.NewExpiry(exp), leaves[i<<l.LeafBits|j])
			if err != nil {
				t.Fatal(err)
			}
			put(l.LeafName(i, j), tuf.AppendBinFile(nil, signed, []tuf.Signature{{KeyID: ls.Key().ID(), Sig: strings.Repeat("ab", 64)}}), v)
		}
		ms := signer()
		b, err := signAndMarshal(mid)
		if err != nil {
			t.Fatal(err)
		}
		put(l.MidName(i), b, v)
		st.Signed.AddDelegation(l.MidDelegation(i, ms.Key()), ms.Key())
	}
	b, err := signAndMarshal(st)
	if err != nil {
		t.Fatal(err)
	}
	put(stableset.StableRole, b, v)
	fb, err := json.Marshal(frag)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stableset.FragmentFile), fb, 0o644); err != nil {
		t.Fatal(err)
	}
	return sizes
}

// TestMeasureSizes: on two media where the second re-signs stable, mid 0
// and its leaves but keeps mid 1 and its leaves, the report counts every
// target, finds the largest leaf, samples a path from the middle leaf
// (under mid 1), and says a client holding the first medium fetches
// timestamp, snapshot and stable again but not targets, the mid or the
// leaf; every byte count is the file's.
func TestMeasureSizes(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range 40 {
		paths = append(paths, fmt.Sprintf("packages/aa/bb/%060d/file-%d.tar.gz", i, i))
	}
	l, err := tuf.NewTwoLevel(stableset.StableRole, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := filepath.Join(dir, "media1"), filepath.Join(dir, "media2")
	writeMedium(t, m1, "", 2, paths, nil)
	keep := map[string]bool{l.MidName(1): true, l.LeafName(1, 0): true, l.LeafName(1, 1): true}
	// A new file, under mid 0 (re-signed).
	added := ""
	for i := 0; added == ""; i++ {
		p := fmt.Sprintf("packages/cc/dd/%060d/new-%d.tar.gz", i, i)
		if h := sha256.Sum256([]byte(p)); h[0]>>7 == 0 {
			added = p
		}
	}
	sz := writeMedium(t, m2, m1, 3, append(paths, added), keep)
	targetsFile := filepath.Join(dir, "1.targets.json")
	tm := tuf.NewTargets(1, time.Now().Add(time.Hour))
	tb, err := signAndMarshal(tm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(targetsFile, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Measure(m1, m2, targetsFile, policy.ModeFilesPages)
	if err != nil {
		t.Fatal(err)
	}
	if s.Targets != 41 || s.FragEntries != 7 || s.Layout.NumMids() != 2 || s.Layout.LeavesPerMid() != 2 {
		t.Errorf("%d targets, %d fragment entries, %d x %d", s.Targets, s.FragEntries, s.Layout.NumMids(), s.Layout.LeavesPerMid())
	}
	var largest int64
	for g := range l.NumLeaves() {
		largest = max(largest, sz[l.LeafName(g>>1, g&1)])
	}
	if s.LeafMax != largest || s.Stable != sz["stable"] || s.SnapShare <= 0 || s.SnapShare >= s.Snapshot {
		t.Errorf("largest leaf %d (want %d), stable %d (want %d), snapshot share %d of %d", s.LeafMax, largest, s.Stable, sz["stable"], s.SnapShare, s.Snapshot)
	}
	if h := sha256.Sum256([]byte(s.Path)); h[0]>>6 != 2 || !strings.HasPrefix(s.Path, "packages/") {
		t.Errorf("sampled %s, not a path of the middle leaf %s", s.Path, l.LeafName(1, 0))
	}
	want := []struct {
		what    string
		bytes   int64
		changed bool
	}{
		{"timestamp", -1, true}, {"snapshot", s.Snapshot, true}, {"targets", int64(len(tb)), false},
		{"stable", sz["stable"], true}, {"its mid", sz[l.MidName(1)], false}, {"its leaf", sz[l.LeafName(1, 0)], false},
	}
	if len(s.Lookup) != len(want) {
		t.Fatalf("lookup %+v", s.Lookup)
	}
	for i, w := range want {
		r := s.Lookup[i]
		if r.What != w.what || w.bytes >= 0 && r.Bytes != w.bytes || r.Bytes <= 0 || r.Changed != w.changed {
			t.Errorf("lookup row %d: %+v, want %+v", i, r, w)
		}
	}
	var out strings.Builder
	s.Print(&out)
	for _, line := range []string{"| stable.json ", "leaf, largest (", "| its leaf 2." + l.LeafName(1, 0) + ".json ", "- (unchanged)", "total (and a 404 for the next root)"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the report lacks %q:\n%s", line, out.String())
		}
	}
	t.Logf("\n%s", out.String())

	// -first: the first ceremony's media alone, every layout file
	// fetched by a client that holds nothing.
	f, err := Measure("", m1, targetsFile, policy.ModeFilesPages)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Lookup {
		if r.Changed != (r.What != "targets") {
			t.Errorf("first ceremony only: lookup row %+v", r)
		}
	}
	out.Reset()
	f.Print(&out)
	if !strings.Contains(out.String(), "first ceremony's media (no previous period") || strings.Contains(out.String(), "- (unchanged)\n| its") {
		t.Errorf("first ceremony only:\n%s", out.String())
	}
}
