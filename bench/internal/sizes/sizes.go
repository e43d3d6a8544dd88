// Package sizes is the size report of a stable medium: what its
// metadata files really weigh, and what one lookup downloads of them
// (docs/tuf-layout.md, "Two-level bins and the metadata budget"), beside
// the layout's estimates. bench/cli prints it over the media the real
// CLI ceremony writes, bench/layout over the layout's metadata built
// from a synthetic export without the rest of a ceremony.
//
// The files a client fetches to resolve one stable target are timestamp,
// snapshot, targets, stable, the target's mid and its leaf (and a 404 for
// the next root). The ceremony writes stable, the mids and the leaves;
// the repository writes the others. The benchmarks have no repository, so
// the report makes the snapshot and the timestamp the repository would
// sign over the media: the fragment's entries, targets.json (the
// bootstrap's) and unstable.json (an entry of the same form), indented as
// python-tuf writes them, signed by a fresh Ed25519 key (the benchmarks'
// online keys are Ed25519; a signature's size does not depend on the key).
package sizes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/tuf"
)

// RoleSize is one metadata file of a lookup.
type RoleSize struct {
	What, File string
	Bytes      int64
	Changed    bool // differs from the previous period's, so a client holding it fetches it again
}

// Report is the size report of a medium.
type Report struct {
	First                  bool // a first ceremony's media: no previous period
	Mode                   policy.TargetMode
	Layout                 tuf.TwoLevel
	Targets                int64 // entries in the leaves
	Stable                 int64 // bytes of stable.json
	MidMax, MidSum         int64
	LeafMax, LeafSum       int64
	LargestLeaf            string
	FragEntries, SnapShare int64  // the fragment's entries, and their bytes in the snapshot
	Snapshot               int64  // the whole snapshot's bytes
	Path                   string // the sampled target path
	Lookup                 []RoleSize
	Est                    tuf.Shape
}

// PrintDir measures the media of both ceremonies under dir (media1,
// media2, as bench/cli lays them out, with boot/metadata/1.targets.json
// and policy.json) and prints the report; first, the first ceremony's
// media alone (no client holds a previous period).
func PrintDir(w io.Writer, dir string, first bool) error {
	pb, err := os.ReadFile(filepath.Join(dir, "policy.json"))
	if err != nil {
		return err
	}
	pol, err := policy.Parse(pb, "policy.json")
	if err != nil {
		return err
	}
	prev, cur := filepath.Join(dir, "media1", "stable"), filepath.Join(dir, "media2", "stable")
	if first {
		prev, cur = "", prev
	}
	s, err := Measure(prev, cur, filepath.Join(dir, "boot", "metadata", "1.targets.json"), pol.TargetMode)
	if err != nil {
		return fmt.Errorf("size report: %w", err)
	}
	s.Print(w)
	return nil
}

func readFragment(stableDir string) (*stableset.Fragment, error) {
	name := filepath.Join(stableDir, stableset.FragmentFile)
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return stableset.ParseFragment(b, name)
}

// Measure reads the previous and the current medium's stable
// directories (each holding metadata/ and the snapshot fragment) and the
// published targets.json; prevDir "" is a first ceremony's (nothing held
// before).
func Measure(prevDir, curDir, targetsFile string, mode policy.TargetMode) (*Report, error) {
	prev := &stableset.Fragment{}
	if prevDir != "" {
		var err error
		if prev, err = readFragment(prevDir); err != nil {
			return nil, err
		}
	}
	cur, err := readFragment(curDir)
	if err != nil {
		return nil, err
	}
	md := filepath.Join(curDir, "metadata")
	file := func(role string) string {
		return fmt.Sprintf("%d.%s.json", cur.Meta[role+".json"].Version, role)
	}
	read := func(role string) (*tuf.Metadata[tuf.Targets], []byte, error) {
		b, err := os.ReadFile(filepath.Join(md, file(role)))
		if err != nil {
			return nil, nil, err
		}
		m, err := tuf.Load[tuf.Targets](b, file(role))
		return m, b, err
	}
	st, stb, err := read(stableset.StableRole)
	if err != nil {
		return nil, err
	}
	// The mids are stable's delegations by hash prefix (path roles, if
	// any, come first and are not part of a lookup of a binned path).
	var mids []string
	if st.Signed.Delegations != nil {
		for _, d := range st.Signed.Delegations.Roles {
			if len(d.PathHashPrefixes) > 0 {
				mids = append(mids, d.Name)
			}
		}
	}
	if len(mids) == 0 {
		return nil, fmt.Errorf("%s delegates to no bin", file(stableset.StableRole))
	}
	mid0, _, err := read(mids[0])
	if err != nil {
		return nil, err
	}
	perMid := 0
	if mid0.Signed.Delegations != nil {
		perMid = len(mid0.Signed.Delegations.Roles)
	}
	if bits.OnesCount(uint(len(mids))) != 1 || bits.OnesCount(uint(perMid)) != 1 {
		return nil, fmt.Errorf("%d mids of %d leaves: not a two-level layout", len(mids), perMid)
	}
	l, err := tuf.NewTwoLevel(stableset.StableRole, bits.TrailingZeros(uint(len(mids))), bits.TrailingZeros(uint(perMid)))
	if err != nil {
		return nil, err
	}
	s := &Report{Mode: mode, Layout: l, Stable: int64(len(stb)), First: prevDir == ""}
	for i := 0; i < l.NumMids(); i++ {
		if mids[i] != l.MidName(i) {
			return nil, fmt.Errorf("stable's mid %d is %s, the layout names it %s", i, mids[i], l.MidName(i))
		}
		n := cur.Meta[l.MidName(i)+".json"].Length
		s.MidMax, s.MidSum = max(s.MidMax, n), s.MidSum+n
		for j := 0; j < l.LeavesPerMid(); j++ {
			m, ok := cur.Meta[l.LeafName(i, j)+".json"]
			if !ok {
				return nil, fmt.Errorf("the fragment lists no %s.json", l.LeafName(i, j))
			}
			if m.Length > s.LeafMax {
				s.LeafMax, s.LargestLeaf = m.Length, l.LeafName(i, j)
			}
			s.LeafSum += m.Length
			// The count of targets, from the files: one "length" per entry.
			b, err := os.ReadFile(filepath.Join(md, file(l.LeafName(i, j))))
			if err != nil {
				return nil, err
			}
			s.Targets += int64(bytes.Count(b, []byte(`"length":`)))
		}
	}
	est := tuf.EstimateFiles
	if !mode.ListsFiles() {
		est = tuf.EstimatePages
	}
	s.Est = tuf.EstimateShape(l, s.Targets, est)

	// The repository's snapshot over the medium, and its timestamp.
	tb, err := os.ReadFile(targetsFile)
	if err != nil {
		return nil, err
	}
	targets, err := tuf.Load[tuf.Targets](tb, filepath.Base(targetsFile))
	if err != nil {
		return nil, err
	}
	own := map[string]tuf.MetaFile{
		"targets.json":  metaFile(targets.Signed.Version, tb),
		"unstable.json": {Version: 1234, Length: 1_234_567, Hashes: map[string]string{"sha256": hex.EncodeToString(make([]byte, 32))}},
	}
	snapVersion := cur.Meta[stableset.StableRole+".json"].Version
	expires := time.Now().UTC().Add(7 * 24 * time.Hour)
	snapOwn, err := signedSnapshot(snapVersion, expires, own, nil)
	if err != nil {
		return nil, err
	}
	snap, err := signedSnapshot(snapVersion, expires, own, cur.Meta)
	if err != nil {
		return nil, err
	}
	s.FragEntries, s.Snapshot, s.SnapShare = int64(len(cur.Meta)), int64(len(snap)), int64(len(snap)-len(snapOwn))
	ts := tuf.NewTimestamp(snapVersion, expires, metaFile(snapVersion, snap))
	tsb, err := signAndMarshal(ts)
	if err != nil {
		return nil, err
	}

	// A sampled path: the first target of the middle leaf, which its hash
	// must route to.
	g := l.NumLeaves() / 2
	mi, lj := g>>l.LeafBits, g&(l.LeavesPerMid()-1)
	lb, err := os.ReadFile(filepath.Join(md, file(l.LeafName(mi, lj))))
	if err != nil {
		return nil, err
	}
	bin, err := tuf.ParseBin(lb, file(l.LeafName(mi, lj)))
	if err != nil {
		return nil, err
	}
	if len(bin.Targets) == 0 {
		return nil, fmt.Errorf("%s lists no target", file(l.LeafName(mi, lj)))
	}
	s.Path = bin.Targets[0].Path
	h := sha256.Sum256([]byte(s.Path))
	if m, j := l.LeafOfHash(&h); m != mi || j != lj {
		return nil, fmt.Errorf("%s routes to %s, but %s lists it", s.Path, l.LeafName(m, j), l.LeafName(mi, lj))
	}
	changed := func(role string) bool {
		p, ok := prev.Meta[role+".json"]
		c := cur.Meta[role+".json"]
		return !ok || p.Version != c.Version || p.Hashes["sha256"] != c.Hashes["sha256"]
	}
	midName, leafName := l.MidName(mi), l.LeafName(mi, lj)
	s.Lookup = []RoleSize{
		{"timestamp", "timestamp.json", int64(len(tsb)), true},
		{"snapshot", fmt.Sprintf("%d.snapshot.json", snapVersion), s.Snapshot, true},
		{"targets", filepath.Base(targetsFile), int64(len(tb)), false},
		{"stable", file(stableset.StableRole), s.Stable, changed(stableset.StableRole)},
		{"its mid", file(midName), cur.Meta[midName+".json"].Length, changed(midName)},
		{"its leaf", file(leafName), cur.Meta[leafName+".json"].Length, changed(leafName)},
	}
	return s, nil
}

func metaFile(version int64, data []byte) tuf.MetaFile {
	sum := sha256.Sum256(data)
	return tuf.MetaFile{Version: version, Length: int64(len(data)), Hashes: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
}

// signedSnapshot is a snapshot listing own and stable's entries, signed
// and in its file form.
func signedSnapshot(version int64, expires time.Time, own, stable map[string]tuf.MetaFile) ([]byte, error) {
	snap := tuf.NewSnapshot(version, expires)
	for _, m := range []map[string]tuf.MetaFile{own, stable} {
		for n, f := range m {
			snap.Signed.Meta[n] = f
		}
	}
	return signAndMarshal(snap)
}

func signAndMarshal[T tuf.Signed](m *tuf.Metadata[T]) ([]byte, error) {
	k, err := keys.GenerateEd25519()
	if err != nil {
		return nil, err
	}
	if err := m.Sign(k); err != nil {
		return nil, err
	}
	return m.MarshalFile()
}

// Print prints the report as two tables.
func (s *Report) Print(w io.Writer) {
	which := "second ceremony's media"
	if s.First {
		which = "first ceremony's media (no previous period: the holding client's column is a fresh one's)"
	}
	fmt.Fprintf(w, "\nmetadata sizes, %s: %s, %d targets, %d mids x %d leaves (estimates: tuf.EstimateShape)\n\n",
		which, s.Mode, s.Targets, s.Layout.NumMids(), s.Layout.LeavesPerMid())
	fmt.Fprintf(w, "| %-44s | %12s | %12s |\n", "file", "measured", "estimate")
	fmt.Fprintf(w, "|%s|%s|%s|\n", dashes(46), dashes(14), dashes(14))
	row := func(what string, n, est int64) {
		e := "-"
		if est > 0 {
			e = fmt.Sprint(est)
		}
		fmt.Fprintf(w, "| %-44s | %12d | %12s |\n", what, n, e)
	}
	row("stable.json", s.Stable, s.Est.StableBytes)
	row("mid, largest", s.MidMax, s.Est.MidBytes)
	row("mid, mean", s.MidSum/int64(s.Layout.NumMids()), 0)
	row("leaf, largest ("+s.LargestLeaf+")", s.LeafMax, s.Est.LeafBytes)
	row("leaf, mean", s.LeafSum/int64(s.Layout.NumLeaves()), 0)
	row(fmt.Sprintf("snapshot share: %d entries, bytes", s.FragEntries), s.SnapShare, s.Est.SnapshotBytes)
	row("snapshot, whole (repository's part included)", s.Snapshot, 0)

	fmt.Fprintf(w, "\none lookup of %s (%s):\n\n", s.Path, s.Lookup[len(s.Lookup)-1].File)
	fmt.Fprintf(w, "| %-44s | %12s | %30s |\n", "file fetched", "fresh client", "client holding previous period")
	fmt.Fprintf(w, "|%s|%s|%s|\n", dashes(46), dashes(14), dashes(32))
	var fresh, again, layout int64
	for _, r := range s.Lookup {
		a := "- (unchanged)"
		if r.Changed {
			a = fmt.Sprint(r.Bytes)
			again += r.Bytes
		}
		fresh += r.Bytes
		fmt.Fprintf(w, "| %-44s | %12d | %30s |\n", r.What+" "+r.File, r.Bytes, a)
	}
	for _, r := range s.Lookup[3:] {
		layout += r.Bytes
	}
	layout += s.SnapShare
	fmt.Fprintf(w, "| %-44s | %12d | %30d |\n", "total (and a 404 for the next root)", fresh, again)
	fmt.Fprintf(w, "\nthe layout's part of the lookup (snapshot share, stable, mid, leaf): %d bytes, estimate %d; through the largest mid and leaf: %d\n",
		layout, s.Est.LookupBytes, s.SnapShare+s.Stable+s.MidMax+s.LeafMax)
}

func dashes(n int) string { return string(bytes.Repeat([]byte("-"), n)) }
