package tufjs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// fixture is a small repository in the tool's layout, built directly with
// package tuf: targets delegates to stable then unstable (both
// non-terminating, the same paths); stable delegates to bins by hex
// path_hash_prefixes, in one level (4 bins of 4 hex digits each) or two
// (2 mid roles of 8 digits, each delegating to 2 leaves of 4).
type fixture struct {
	dir                           string
	snapshot, timestamp, unstable keys.Signer
	// leafOf maps a stable path to the leaf role that lists it; content
	// holds every target's bytes as stable or unstable lists it.
	leafOf        map[string]string
	stableContent map[string][]byte
	unstableOnly  []string
	unstableData  map[string][]byte
	roles         []string // every delegated role under stable
	// takenDown are the stable paths taken down (shape.takedown): no
	// longer in their leaf, stableContent keeps their old bytes.
	takenDown []string
}

type shape struct {
	twoLevel bool
	perRole  bool // each delegated role under stable has its own key
	// layout, if set, gives the roles under stable: tuf.TwoLevel's names
	// and prefixes, a key per role.
	layout *tuf.TwoLevel
	// takedown takes that many stable paths (the first in sorted order)
	// out of their leaves; unless removeOnly, stable then delegates them,
	// first and terminating, to the empty takedown role with its own key.
	takedown   int
	removeOnly bool
	// takedownLists makes the takedown role list the first taken-down
	// path (a layout verify must refuse).
	takedownLists bool
}

func hexOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func gen(t *testing.T) keys.Signer {
	t.Helper()
	s, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// digits returns the single hex digits from lo to hi.
func digits(lo, hi int) []string {
	var out []string
	for d := lo; d <= hi; d++ {
		out = append(out, fmt.Sprintf("%x", d))
	}
	return out
}

func targetEntry(content []byte) tuf.TargetFile {
	return tuf.TargetFile{Length: int64(len(content)), Hashes: map[string]string{"sha256": hexOf(content)}}
}

var fixturePaths = []string{"packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"}

func newFixtureRepo(t *testing.T, sh shape) *fixture {
	t.Helper()
	f := &fixture{
		dir: t.TempDir(), snapshot: gen(t), timestamp: gen(t), unstable: gen(t),
		leafOf: map[string]string{}, stableContent: map[string][]byte{}, unstableData: map[string][]byte{},
	}
	expires := time.Now().Add(30 * 24 * time.Hour)
	rootKey, targetsKey, stableKey := gen(t), gen(t), gen(t)
	shared := gen(t)
	keyFor := func() keys.Signer {
		if sh.perRole {
			return gen(t)
		}
		return shared
	}

	root := tuf.NewRoot(1, expires)
	for role, k := range map[string]keys.Signer{tuf.RoleRoot: rootKey, tuf.RoleTargets: targetsKey, tuf.RoleSnapshot: f.snapshot, tuf.RoleTimestamp: f.timestamp} {
		if err := root.Signed.AddKey(role, k.Key()); err != nil {
			t.Fatal(err)
		}
	}
	targets := tuf.NewTargets(1, expires)
	targets.Signed.AddDelegation(tuf.DelegatedRole{Name: "stable", KeyIDs: []string{stableKey.Key().ID()}, Threshold: 1, Paths: fixturePaths}, stableKey.Key())
	targets.Signed.AddDelegation(tuf.DelegatedRole{Name: "unstable", KeyIDs: []string{f.unstable.Key().ID()}, Threshold: 1, Paths: fixturePaths}, f.unstable.Key())

	type node struct {
		md       *tuf.Metadata[tuf.Targets]
		signer   keys.Signer
		prefixes []string // hex prefixes covered
	}
	nodes := map[string]*node{"stable": {md: tuf.NewTargets(1, expires), signer: stableKey}}
	order := []string{"stable"}
	var leaves []string
	delegateTo := func(parent string, d tuf.DelegatedRole, k keys.Signer) {
		nodes[parent].md.Signed.AddDelegation(d, k.Key())
		nodes[d.Name] = &node{md: tuf.NewTargets(1, expires), signer: k, prefixes: d.PathHashPrefixes}
		order = append(order, d.Name)
		f.roles = append(f.roles, d.Name)
	}
	delegate := func(parent, name string, lo, hi int) {
		k := keyFor()
		delegateTo(parent, tuf.DelegatedRole{Name: name, KeyIDs: []string{k.Key().ID()}, Threshold: 1, PathHashPrefixes: digits(lo, hi)}, k)
	}
	if l := sh.layout; l != nil {
		for i := 0; i < l.NumMids(); i++ {
			k := gen(t)
			delegateTo("stable", l.MidDelegation(i, k.Key()), k)
			for j := 0; j < l.LeavesPerMid(); j++ {
				k := gen(t)
				delegateTo(l.MidName(i), l.LeafDelegation(i, j, k.Key()), k)
				leaves = append(leaves, l.LeafName(i, j))
			}
		}
	} else if sh.twoLevel {
		for m := 0; m < 2; m++ {
			mid := fmt.Sprintf("stable-%x-%x", 8*m, 8*m+7)
			delegate("stable", mid, 8*m, 8*m+7)
			for l := 0; l < 2; l++ {
				lo := 8*m + 4*l
				leaf := fmt.Sprintf("%s.%x-%x", mid, lo, lo+3)
				delegate(mid, leaf, lo, lo+3)
				leaves = append(leaves, leaf)
			}
		}
	} else {
		for b := 0; b < 4; b++ {
			leaf := fmt.Sprintf("stable-%x-%x", 4*b, 4*b+3)
			delegate("stable", leaf, 4*b, 4*b+3)
			leaves = append(leaves, leaf)
		}
	}

	// Stable paths until every leaf holds at least three; the leaf is found
	// by comparing the hex sha256(path), computed here, with its prefixes.
	count := map[string]int{}
	for i := 0; len(count) < len(leaves) || minCount(count) < 3; i++ {
		p := fmt.Sprintf("packages/%02x/%02x/%08x/proj%d-1.0.tar.gz", i%256, (i*7)%256, i*2654435761%(1<<32), i)
		h := hexOf([]byte(p))
		for _, l := range leaves {
			n := nodes[l]
			in := false
			for _, pre := range n.prefixes {
				in = in || strings.HasPrefix(h, pre)
			}
			if in {
				c := []byte("stable bytes of " + p + "\n")
				n.md.Signed.Targets[p] = targetEntry(c)
				f.leafOf[p] = l
				f.stableContent[p] = c
				count[l]++
			}
		}
	}
	if sh.takedown > 0 {
		var all []string
		for p := range f.stableContent {
			all = append(all, p)
		}
		slices.Sort(all)
		f.takenDown = all[:sh.takedown]
		for _, p := range f.takenDown {
			delete(nodes[f.leafOf[p]].md.Signed.Targets, p)
		}
		if !sh.removeOnly {
			k := gen(t)
			st := &nodes["stable"].md.Signed
			st.Delegations.Keys[k.Key().ID()] = k.Key()
			st.Delegations.Roles = slices.Insert(st.Delegations.Roles, 0, tuf.TakedownDelegation(f.takenDown, k.Key()))
			nodes[tuf.TakedownRole] = &node{md: tuf.NewTargets(1, expires), signer: k}
			if sh.takedownLists {
				p := f.takenDown[0]
				nodes[tuf.TakedownRole].md.Signed.Targets[p] = targetEntry(f.stableContent[p])
			}
			order = append(order, tuf.TakedownRole)
			f.roles = append(f.roles, tuf.TakedownRole)
		}
	}
	unstable := tuf.NewTargets(1, expires)
	for p, c := range f.stableContent {
		unstable.Signed.Targets[p] = targetEntry(c) // the repository lists everything
		f.writeTarget(t, p, c)
	}
	for i := 0; i < 3; i++ {
		p := fmt.Sprintf("packages/ff/ee/%08x/young%d-0.1.tar.gz", i, i)
		c := []byte("young file " + p + "\n")
		unstable.Signed.Targets[p] = targetEntry(c)
		f.unstableOnly = append(f.unstableOnly, p)
		f.unstableData[p] = c
		f.writeTarget(t, p, c)
	}

	snap := tuf.NewSnapshot(1, expires)
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(f.dir, "metadata"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.dir, "metadata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(role string, m *tuf.Metadata[tuf.Targets], s keys.Signer) {
		t.Helper()
		if err := m.Sign(s); err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("%d.%s.json", m.Signed.Version, role), b)
		snap.Signed.Meta[role+".json"] = entry(m.Signed.Version, b)
	}
	if err := root.Sign(rootKey); err != nil {
		t.Fatal(err)
	}
	rb, err := root.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	write("1.root.json", rb)
	publish("targets", targets, targetsKey)
	publish("unstable", unstable, f.unstable)
	for _, name := range order {
		publish(name, nodes[name].md, nodes[name].signer)
	}
	if err := snap.Sign(f.snapshot); err != nil {
		t.Fatal(err)
	}
	sb, err := snap.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	write("1.snapshot.json", sb)
	ts := tuf.NewTimestamp(1, expires, entry(1, sb))
	if err := ts.Sign(f.timestamp); err != nil {
		t.Fatal(err)
	}
	tb, err := ts.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	write("timestamp.json", tb)
	return f
}

func minCount(m map[string]int) int {
	lo := -1
	for _, n := range m {
		if lo < 0 || n < lo {
			lo = n
		}
	}
	return lo
}

func (f *fixture) writeTarget(t *testing.T, p string, c []byte) {
	t.Helper()
	file := filepath.Join(f.dir, "targets", filepath.FromSlash(path.Join(path.Dir(p), hexOf(c)+"."+path.Base(p))))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, c, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) root() string { return filepath.Join(f.dir, "metadata", "1.root.json") }

func (f *fixture) attacker() *Attacker {
	return &Attacker{Dir: f.dir, Snapshot: f.snapshot, Timestamp: f.timestamp, Unstable: f.unstable}
}

// pathIn returns a stable path whose leaf is leaf, in sorted order.
func (f *fixture) pathIn(t *testing.T, leaf string) string {
	t.Helper()
	best := ""
	for p, l := range f.leafOf {
		if l == leaf && (best == "" || p < best) {
			best = p
		}
	}
	if best == "" {
		t.Fatalf("no stable path in %s", leaf)
	}
	return best
}
