package tuf

import (
	"bufio"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
)

// TestTwoLevelLayout: names say the prefixes; every hash lands, by its hex
// prefix (compared here with strings.HasPrefix), in exactly one leaf, the
// one LeafOfHash names, inside that leaf's mid; verify's layout check
// accepts every level.
func TestTwoLevelLayout(t *testing.T) {
	l, err := NewTwoLevel("stable", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if l.MidName(0) != "stable-0-3" || l.MidName(3) != "stable-c-f" {
		t.Errorf("mid names %s %s", l.MidName(0), l.MidName(3))
	}
	if l.LeafName(0, 0) != "stable-0-3.00-07" || l.LeafName(3, 7) != "stable-c-f.f8-ff" {
		t.Errorf("leaf names %s %s", l.LeafName(0, 0), l.LeafName(3, 7))
	}
	if l8, _ := NewTwoLevel("stable", 4, 4); l8.MidName(10) != "stable-a" || l8.LeafName(10, 11) != "stable-a.ab" {
		t.Errorf("single-prefix names %s %s", l8.MidName(10), l8.LeafName(10, 11))
	}
	for _, shape := range [][2]int{{1, 1}, {2, 3}, {4, 4}, {3, 6}, {6, 6}} {
		l, err := NewTwoLevel("stable", shape[0], shape[1])
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		root := &DelegatedRole{Name: "stable", Paths: []string{"packages/*/*/*/*"}}
		top := &Targets{}
		for i := 0; i < l.NumMids(); i++ {
			k := edSigner(t).Key()
			top.AddDelegation(l.MidDelegation(i, k), k)
			mid := &Targets{}
			for j := 0; j < l.LeavesPerMid(); j++ {
				k := edSigner(t).Key()
				mid.AddDelegation(l.LeafDelegation(i, j, k), k)
				names[l.LeafName(i, j)] = true
			}
			md, _ := top.Delegation(l.MidName(i))
			if err := checkBins(l.MidName(i), md, mid.Delegations.Roles); err != nil {
				t.Errorf("%v: mid %d: %v", shape, i, err)
			}
			names[l.MidName(i)] = true
		}
		if err := CheckStableLayout(root, top); err != nil {
			t.Errorf("%v: %v", shape, err)
		}
		if len(names) != l.NumMids()+l.NumLeaves() {
			t.Errorf("%v: %d distinct names", shape, len(names))
		}
		for n := 0; n < 300; n++ {
			var h [32]byte
			rand.Read(h[:])
			hx := hex.EncodeToString(h[:])
			mi, li := l.LeafOfHash(&h)
			var hits []string
			for i := 0; i < l.NumMids(); i++ {
				for j := 0; j < l.LeavesPerMid(); j++ {
					for _, p := range l.LeafPrefixes(i, j) {
						if strings.HasPrefix(hx, p) {
							hits = append(hits, fmt.Sprint(i, j))
						}
					}
				}
			}
			if len(hits) != 1 || hits[0] != fmt.Sprint(mi, li) {
				t.Fatalf("%v: hash %s in leaves %v, LeafOfHash says %d %d", shape, hx[:8], hits, mi, li)
			}
			in := false
			for _, p := range l.MidPrefixes(mi) {
				in = in || strings.HasPrefix(hx, p)
			}
			if !in {
				t.Fatalf("%v: hash %s not in mid %d", shape, hx[:8], mi)
			}
		}
	}
	for _, bad := range [][2]int{{0, 4}, {4, 0}, {13, 1}, {12, 9}} {
		if _, err := NewTwoLevel("stable", bad[0], bad[1]); !errors.Is(err, ErrBinLayout) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// sampleRecord is one line of the shared PyPI sample.
type sampleRecord struct {
	Project string `json:"project"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	URLPath string `json:"url_path"`
}

// pypiSample reads real PyPI file records: the repository's copy of
// ../shared/data/pypi-files-sample.jsonl (the same bytes, gzipped, in
// stableset/export/testdata), so that a clone alone runs the test.
func pypiSample(t *testing.T) []sampleRecord {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "stableset", "export", "testdata", "pypi-files-sample.jsonl.gz"))
	if err != nil {
		t.Fatalf("the PyPI sample is needed to measure entry sizes: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []sampleRecord
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r sampleRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 1000 {
		t.Fatalf("%d sample records", len(out))
	}
	return out
}

var normalizeRe = regexp.MustCompile(`[-_.]+`)

// fileSize signs a targets file and marshals it as the stable pipeline
// writes stable.json and the mids: compact JSON and a newline.
func fileSize(t *testing.T, m *Metadata[Targets], s ...keys.Signer) int64 {
	t.Helper()
	if err := m.Sign(s...); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b) + 1)
}

// binSize signs a leaf bin listing ts and returns its size as the stable
// pipeline writes it (AppendBinSigned, AppendBinFile).
func binSize(t *testing.T, ts []BinTarget, exp time.Time, s keys.Signer) int64 {
	t.Helper()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Path < ts[j].Path })
	signed, err := AppendBinSigned(nil, 12345, NewExpiry(exp), ts)
	if err != nil {
		t.Fatal(err)
	}
	m := NewTargets(12345, exp)
	if err := m.Sign(s); err != nil { // a signature of the real size
		t.Fatal(err)
	}
	return int64(len(AppendBinFile(nil, signed, m.Signatures)))
}

// TestEstimates measures each estimate on metadata in the form the
// stable pipeline writes it (compact JSON; the leaves by AppendBinFile):
// target entries from real PyPI records (sha256 and blake2b-256, which is
// the path's hash segment), index-page entries for their projects,
// mid-role delegations with their own ECDSA P-256 keys, signatures,
// snapshot entries with the layout's names (indented, as the test
// repositories and many repositories write the snapshot). An estimate
// must cover the measure, and not by more than 25 %.
func TestEstimates(t *testing.T) {
	sample := pypiSample(t)
	s := ecdsaSigner(t)
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	var files, pages []BinTarget
	seen := map[string]bool{}
	for _, r := range sample {
		p := strings.TrimPrefix(r.URLPath, "/")
		segs := strings.Split(p, "/")
		if len(segs) != 5 {
			t.Fatalf("sample path %q", r.URLPath)
		}
		bt := BinTarget{Path: p, Length: r.Size, HasBLAKE2b: true}
		if _, err := hex.Decode(bt.BLAKE2b256[:], []byte(segs[1]+segs[2]+segs[3])); err != nil {
			t.Fatalf("sample path %q: %v", r.URLPath, err)
		}
		if _, err := hex.Decode(bt.SHA256[:], []byte(r.SHA256)); err != nil {
			t.Fatalf("sample sha256 %q: %v", r.SHA256, err)
		}
		files = append(files, bt)
		proj := normalizeRe.ReplaceAllString(strings.ToLower(r.Project), "-")
		for _, page := range []string{"simple/" + proj + "/index.html", "simple/" + proj + "/index.json"} {
			if !seen[page] {
				seen[page] = true
				pages = append(pages, BinTarget{Path: page, Length: 12345, SHA256: sha256.Sum256([]byte(page)), BLAKE2b256: sha256.Sum256([]byte("b2" + page)), HasBLAKE2b: true})
			}
		}
	}
	emptyBin := binSize(t, nil, exp, s)
	perEntry := func(ts []BinTarget) int64 {
		return (binSize(t, ts, exp, s) - emptyBin + int64(len(ts)) - 1) / int64(len(ts))
	}
	l, _ := NewTwoLevel("stable", 6, 6)
	mid := NewTargets(12345, exp)
	for j := 0; j < l.LeavesPerMid(); j++ {
		k := ecdsaSigner(t).Key()
		mid.Signed.AddDelegation(l.LeafDelegation(63, j, k), k)
	}
	withDeleg := fileSize(t, mid, s)
	sharedMid := NewTargets(12345, exp)
	shared := ecdsaSigner(t).Key()
	for j := 0; j < l.LeavesPerMid(); j++ {
		sharedMid.Signed.AddDelegation(l.LeafDelegation(63, j, shared), shared)
	}
	keyBytes := (withDeleg - fileSize(t, sharedMid, s) + int64(l.LeavesPerMid()) - 2) / int64(l.LeavesPerMid()-1)
	emptyDeleg := NewTargets(12345, exp)
	emptyDeleg.Signed.Delegations = &Delegations{Keys: map[string]*keys.Key{}, Roles: []DelegatedRole{}}
	fixed := fileSize(t, emptyDeleg, s)
	sigBytes := fileSize(t, emptyDeleg, s, ecdsaSigner(t), ecdsaSigner(t)) - fixed
	snap := NewSnapshot(12345, exp)
	snapEmpty, err := snap.MarshalFile()
	must(t, err)
	for i := 0; i < l.NumMids(); i++ {
		for j := 0; j < l.LeavesPerMid(); j++ {
			snap.Signed.Meta[l.LeafName(i, j)+".json"] = MetaFile{Version: 12345, Length: 2_345_678, Hashes: map[string]string{"sha256": pathHash(l.LeafName(i, j))}}
		}
	}
	snapFull, err := snap.MarshalFile()
	must(t, err)
	measured := map[string][2]int64{
		"files EntryBytes":        {perEntry(files), EstimateFiles.EntryBytes},
		"pages EntryBytes":        {perEntry(pages), EstimatePages.EntryBytes},
		"DelegationBytes":         {(withDeleg - fixed + int64(l.LeavesPerMid()) - 1) / int64(l.LeavesPerMid()), EstimateFiles.DelegationBytes},
		"SnapshotEntryBytes":      {(int64(len(snapFull)-len(snapEmpty)) + int64(len(snap.Signed.Meta)) - 1) / int64(len(snap.Signed.Meta)), EstimateFiles.SnapshotEntryBytes},
		"FileBytes (with deleg.)": {fixed, EstimateFiles.FileBytes},
		"FileBytes (leaf)":        {emptyBin, EstimateFiles.FileBytes},
		"EstimateKeyBytes":        {keyBytes, EstimateKeyBytes},
		"EstimateSignatureBytes":  {(sigBytes + 1) / 2, EstimateSignatureBytes},
	}
	for name, m := range measured {
		got, est := m[0], m[1]
		t.Logf("%s: measured %d, estimate %d", name, got, est)
		if est < got || est*4 > got*5 {
			t.Errorf("%s: estimate %d does not cover the measured %d within 25%%", name, est, got)
		}
	}
	if EstimatePages.DelegationBytes != EstimateFiles.DelegationBytes || EstimatePages.SnapshotEntryBytes != EstimateFiles.SnapshotEntryBytes || EstimatePages.FileBytes != EstimateFiles.FileBytes {
		t.Error("the modes differ only in target entries")
	}
}

// TestSizeTwoLevel sizes the layout at PyPI's scales in both target modes
// (files+pages: every file plus ~2 pages per project; pages: ~2 pages per
// project, 1 M projects at most) and checks every budget; far past PyPI's
// size it refuses, naming the limit. It logs each shape, the bytes a
// lookup downloads, and today's one-level layout for comparison.
func TestSizeTwoLevel(t *testing.T) {
	type row struct {
		files int64
		mode  string
		n     int64
		est   Estimate
	}
	var rows []row
	for _, files := range []int64{1_000, 1_000_000, 10_000_000, 25_000_000, 30_000_000} {
		projects := min(files/25+1, 1_000_000) // PyPI: ~28 files per project
		rows = append(rows, row{files, "files+pages", files + 2*projects, EstimateFiles}, row{files, "pages", 2 * projects, EstimatePages})
	}
	for _, r := range rows {
		s, err := SizeTwoLevel("stable", r.n, r.est)
		if err != nil {
			t.Errorf("%d files, %s: %v", r.files, r.mode, err)
			continue
		}
		for _, c := range []struct {
			what      string
			got, max_ int64
		}{
			{"stable.json", s.StableBytes, MaxRoleFileBudget},
			{"mid", s.MidBytes, MaxRoleFileBudget},
			{"leaf", s.LeafBytes, MaxRoleFileBudget},
			{"snapshot share", s.SnapshotBytes, MaxSnapshotShareBudget},
			{"roles visited", int64(s.RolesVisited), MaxRolesVisited},
		} {
			if c.got > c.max_ {
				t.Errorf("%d files, %s: %s %d over %d", r.files, r.mode, c.what, c.got, c.max_)
			}
		}
		// The estimate at the chosen shape agrees with EstimateShape.
		if again := EstimateShape(s.Layout, r.n, r.est); again != s {
			t.Errorf("shape not reproducible: %+v %+v", again, s)
		}
		one := EstimateOneLevel(r.n, 640, r.est)
		fits := one.StableBytes <= MaxTargetsBytes && one.SnapshotBytes <= MaxSnapshotBytes
		t.Logf("%11d files %-11s %11d targets: %4d mids x %4d leaves; stable %9d B, mid %9d B, leaf %9d B, snapshot +%6d entries %9d B; lookup %9d B | one level: %6d bins, stable %10d B, snapshot %10d B, leaf %8d B, lookup %10d B, within client limits: %v",
			r.files, r.mode, r.n, s.Layout.NumMids(), s.Layout.LeavesPerMid(), s.StableBytes, s.MidBytes, s.LeafBytes, s.SnapshotEntries, s.SnapshotBytes, s.LookupBytes,
			one.SnapshotEntries-1, one.StableBytes, one.SnapshotBytes, one.LeafBytes, one.LookupBytes, fits)
	}
	_, err := SizeTwoLevel("stable", 200_000_000, EstimateFiles)
	var be *BudgetError
	if !errors.As(err, &be) || !errors.Is(err, ErrBudget) {
		t.Fatalf("200 M targets: %v", err)
	}
	if be.Need <= be.Max || be.Targets != 200_000_000 || !strings.Contains(err.Error(), be.Limit) || !strings.Contains(err.Error(), fmt.Sprint(be.Max)) {
		t.Errorf("refusal does not name the limit and numbers: %v", err)
	}
	t.Logf("200 M targets: %v", err)
	if _, err := SizeTwoLevel("stable", -1, EstimateFiles); !errors.Is(err, ErrBinLayout) {
		t.Errorf("negative count: %v", err)
	}
}
