package tufjs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/tuf"
)

// verify runs keyceremony's own verifier on a fixture.
func verify(t *testing.T, f *fixture, opts tuf.VerifyOptions) error {
	t.Helper()
	b, err := os.ReadFile(f.root())
	if err != nil {
		t.Fatal(err)
	}
	root, err := tuf.Load[tuf.Root](b, "1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tuf.VerifyRepository(root, filepath.Join(f.dir, "metadata"), opts)
	return err
}

// TestVerifyFixtures: keyceremony verify accepts the fixtures' layouts,
// one and two levels, with a key per role, and refuses the shared key.
func TestVerifyFixtures(t *testing.T) {
	for _, two := range []bool{false, true} {
		f := newFixtureRepo(t, shape{twoLevel: two, perRole: true})
		if err := verify(t, f, tuf.VerifyOptions{}); err != nil {
			t.Errorf("two levels %v, key per role: %v", two, err)
		}
		f = newFixtureRepo(t, shape{twoLevel: two})
		if err := verify(t, f, tuf.VerifyOptions{}); !errors.Is(err, tuf.ErrSharedKey) {
			t.Errorf("two levels %v, shared key: %v", two, err)
		}
	}
}

func mustResolve(t *testing.T, dir, root string, paths ...string) *Run {
	t.Helper()
	run, err := Resolve(dir, root, paths)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// TestResolveFixture: the harness reports what tuf-js does: stable's entry
// for a path both roles list, unstable's for an unstable-only path, not
// found for a path nobody lists, and a failed download for a target whose
// bytes were replaced on the server.
func TestResolveFixture(t *testing.T) {
	for _, sh := range []shape{{twoLevel: false, perRole: true}, {twoLevel: true, perRole: true}} {
		f := newFixtureRepo(t, sh)
		var stable []string
		for p := range f.stableContent {
			stable = append(stable, p)
		}
		sort.Strings(stable)
		missing := "packages/00/00/00000000/nobody-1.0.tar.gz"
		paths := append(append(append([]string{}, stable...), f.unstableOnly...), missing)
		run := mustResolve(t, f.dir, f.root(), paths...)
		if !run.RefreshOK {
			t.Fatalf("refresh: %s", run.RefreshError)
		}
		for _, p := range stable {
			r, _ := run.ByPath(p)
			if !r.Found || !r.Downloaded || r.Hashes["sha256"] != hexOf(f.stableContent[p]) || r.Length != int64(len(f.stableContent[p])) {
				t.Errorf("%+v: want stable's entry for %s, downloaded", r, p)
			}
		}
		for _, p := range f.unstableOnly {
			r, _ := run.ByPath(p)
			if !r.Found || !r.Downloaded || r.Hashes["sha256"] != hexOf(f.unstableData[p]) {
				t.Errorf("%+v: want unstable's entry for %s", r, p)
			}
		}
		if r, _ := run.ByPath(missing); r.Found || r.Error != "" {
			t.Errorf("%+v: want not found, no error", r)
		}
		if run.BytesServed("/metadata/") == 0 || run.BytesServed("/targets/") == 0 {
			t.Errorf("no bytes counted: %+v", run.Requests)
		}

		// The server swaps a target's bytes: tuf-js must refuse the download.
		p := stable[0]
		file := filepath.Join(f.dir, "targets", filepath.FromSlash(strings.TrimSuffix(p, filepath.Base(p))), hexOf(f.stableContent[p])+"."+filepath.Base(p))
		if err := os.WriteFile(file, []byte("other bytes of the same length?\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run = mustResolve(t, f.dir, f.root(), p)
		if r, _ := run.ByPath(p); !r.Found || r.Downloaded || r.Error == "" {
			t.Errorf("%+v: tuf-js downloaded replaced bytes", r)
		}
	}
}

// TestRefreshRefusesBadRoot: a trusted root that does not match the
// repository makes tuf-js refuse, and the harness reports it.
func TestRefreshRefusesBadRoot(t *testing.T) {
	a := newFixtureRepo(t, shape{perRole: true})
	b := newFixtureRepo(t, shape{perRole: true})
	run := mustResolve(t, a.dir, b.root(), a.unstableOnly[0])
	if run.RefreshOK || run.RefreshError == "" {
		t.Fatalf("tuf-js accepted another repository's root: %+v", run)
	}
	if r := run.Results[0]; r.Found || r.Error == "" {
		t.Fatalf("%+v", r)
	}
}

// TestBinSwapAttack acts as an attacker who holds only the online keys
// (snapshot, timestamp, unstable): unstable lists a malicious file for a
// stable path that lives in role B; the server serves role A's file under
// B's name and a snapshot and timestamp re-signed to match. With one key
// shared by the roles under stable, tuf-js verifies A's file as B, finds
// no entry, falls through to unstable and returns the attacker's entry:
// the attack works, and this harness sees it. With a key per role, tuf-js
// refuses B (or still returns stable's entry); it never returns
// unstable's.
func TestBinSwapAttack(t *testing.T) {
	cases := []struct {
		name     string
		twoLevel bool
		from, to string // roles swapped: A's file served as B
		victimIn string // the leaf holding the victim path
	}{
		{"one level: bin", false, "stable-0-3", "stable-4-7", "stable-4-7"},
		{"two levels: leaf", true, "stable-0-7.0-3", "stable-0-7.4-7", "stable-0-7.4-7"},
		{"two levels: leaf of another mid", true, "stable-0-7.0-3", "stable-8-f.c-f", "stable-8-f.c-f"},
		{"two levels: mid", true, "stable-0-7", "stable-8-f", "stable-8-f.8-b"},
	}
	for _, c := range cases {
		for _, perRole := range []bool{false, true} {
			name := c.name + ", shared key"
			if perRole {
				name = c.name + ", key per role"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixtureRepo(t, shape{twoLevel: c.twoLevel, perRole: perRole})
				victim := f.pathIn(t, c.victimIn)
				evil := []byte("malicious replacement of " + victim + "\n")
				a := f.attacker()
				if err := a.ListUnstable(victim, evil); err != nil {
					t.Fatal(err)
				}
				if err := a.Publish(); err != nil {
					t.Fatal(err)
				}
				// Control: with unstable alone, stable's entry wins.
				run := mustResolve(t, f.dir, f.root(), victim)
				if r := run.Results[0]; !run.RefreshOK || !r.Found || r.Hashes["sha256"] != hexOf(f.stableContent[victim]) {
					t.Fatalf("before the swap: %+v %+v", run.RefreshError, r)
				}
				if err := a.SwapRole(c.from, c.to); err != nil {
					t.Fatal(err)
				}
				if err := a.Publish(); err != nil {
					t.Fatal(err)
				}
				run = mustResolve(t, f.dir, f.root(), victim)
				if !run.RefreshOK {
					t.Fatalf("refresh: %s", run.RefreshError)
				}
				// keyceremony verify refuses the swapped repository either way.
				if err := verify(t, f, tuf.VerifyOptions{}); err == nil {
					t.Error("keyceremony verify accepted the swapped repository")
				} else {
					t.Logf("keyceremony verify: %v", err)
				}
				r := run.Results[0]
				gotEvil := r.Found && r.Hashes["sha256"] == hexOf(evil)
				gotStable := r.Found && r.Hashes["sha256"] == hexOf(f.stableContent[victim])
				if !perRole {
					if !gotEvil || !r.Downloaded {
						t.Fatalf("the attack should work on a shared key (proving the harness detects it), tuf-js said %+v", r)
					}
					return
				}
				if gotEvil {
					t.Fatalf("tuf-js returned unstable's entry for a stable path: %+v", r)
				}
				if !gotStable && (r.Found || r.Error == "") {
					t.Fatalf("want a refusal or stable's entry, got %+v", r)
				}
				t.Logf("tuf-js: found=%v error=%q", r.Found, r.Error)
			})
		}
	}
}

// TestBlake2bEntries records how tuf-js 5.0.1 treats a target entry that
// carries blake2b-256 beside sha256, as every entry stable lists does:
// getTargetInfo returns it, the consistent-snapshot file it fetches is
// named after the first hash the entry lists (blake2b-256, which sorts
// first), and the download fails because node's crypto has no
// "blake2b-256". The entries the tool writes must take this into account.
func TestBlake2bEntries(t *testing.T) {
	f := newFixtureRepo(t, shape{perRole: true})
	p := "packages/ab/cd/0123456789/both-1.0.tar.gz"
	c := []byte("a file listed with two hashes\n")
	a := f.attacker() // the online key lists it in unstable; no offline key involved
	if err := a.ListUnstable(p, c); err != nil {
		t.Fatal(err)
	}
	b2 := "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8" // a stand-in: the download fails before any hash is compared
	a.unstable.Signed.Targets[p] = tuf.TargetFile{Length: int64(len(c)), Hashes: map[string]string{"sha256": hexOf(c), "blake2b-256": b2}}
	if err := a.Publish(); err != nil {
		t.Fatal(err)
	}
	// Serve the bytes under both names, so only hash support can fail.
	dir := filepath.Join(f.dir, "targets", "packages", "ab", "cd", "0123456789")
	if err := os.WriteFile(filepath.Join(dir, b2+".both-1.0.tar.gz"), c, 0o644); err != nil {
		t.Fatal(err)
	}
	run := mustResolve(t, f.dir, f.root(), p)
	r := run.Results[0]
	if !r.Found || r.Hashes["blake2b-256"] != b2 {
		t.Fatalf("getTargetInfo: %+v", r)
	}
	fetched := false
	for _, q := range run.Requests {
		fetched = fetched || strings.HasSuffix(q.Path, "/"+b2+".both-1.0.tar.gz")
	}
	if !fetched {
		t.Errorf("tuf-js did not fetch the blake2b-256-named file: %+v", run.Requests)
	}
	if r.Downloaded || !strings.Contains(r.Error, "blake2b-256 not supported") {
		t.Errorf("tuf-js now verifies blake2b-256 (update docs/tuf-layout.md): %+v", r)
	}
}

// TestBlake2bShim: with Options.BLAKE2b256 tuf-js downloads entries that
// list sha256 and blake2b-256 and checks both: of each entry (lengths
// around BLAKE2b's 128-byte block), the consistent-snapshot file it
// fetches is <blake2b-256>.<name>; a file whose sha256 is right but whose
// blake2b-256 is not is refused, and so is one whose blake2b-256 is right
// but whose sha256 is not. (tuf-js's TargetFile.verify,
// @tufjs/models/dist/file.js, creates a hash for every name the entry
// lists with crypto.createHash and compares each digest; it refuses a
// name node does not know rather than skipping it, TestBlake2bEntries.)
func TestBlake2bShim(t *testing.T) {
	f := newFixtureRepo(t, shape{perRole: true})
	a := f.attacker()
	dir := filepath.Join(f.dir, "targets", "packages", "ab", "cd", "0123456789")
	type target struct {
		path    string
		content []byte
		served  []byte // what the server holds under the blake2b-256 name
		ok      bool
	}
	var ts []target
	for _, n := range []int{0, 1, 127, 128, 129, 300} {
		c := []byte(strings.Repeat("x", n))
		ts = append(ts, target{fmt.Sprintf("packages/ab/cd/0123456789/len%d-1.0.tar.gz", n), c, c, true})
	}
	// Right sha256, wrong blake2b-256: the entry lists the sha256 of the
	// bytes served and the blake2b-256 of other bytes.
	served := []byte("the bytes served\n")
	ts = append(ts, target{"packages/ab/cd/0123456789/wrongb2-1.0.tar.gz", []byte("the bytes the blake2b-256 names\n"), served, false})
	for _, x := range ts {
		if err := a.ListUnstable(x.path, x.content); err != nil {
			t.Fatal(err)
		}
		b2 := blake2b.Sum256(x.content)
		sha := sha256.Sum256(x.served)
		if x.ok {
			sha = sha256.Sum256(x.content)
		}
		a.unstable.Signed.Targets[x.path] = tuf.TargetFile{Length: int64(len(x.served)), Hashes: map[string]string{"sha256": hex.EncodeToString(sha[:]), "blake2b-256": hex.EncodeToString(b2[:])}}
		if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(b2[:])+"."+path.Base(x.path)), x.served, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Right blake2b-256, wrong sha256.
	wrongSHA := "packages/ab/cd/0123456789/wrongsha-1.0.tar.gz"
	c := []byte("a file whose sha256 entry is wrong\n")
	if err := a.ListUnstable(wrongSHA, c); err != nil {
		t.Fatal(err)
	}
	b2 := blake2b.Sum256(c)
	other := sha256.Sum256([]byte("something else"))
	a.unstable.Signed.Targets[wrongSHA] = tuf.TargetFile{Length: int64(len(c)), Hashes: map[string]string{"sha256": hex.EncodeToString(other[:]), "blake2b-256": hex.EncodeToString(b2[:])}}
	if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(b2[:])+".wrongsha-1.0.tar.gz"), c, 0o644); err != nil {
		t.Fatal(err)
	}
	ts = append(ts, target{wrongSHA, c, c, false})
	if err := a.Publish(); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, x := range ts {
		paths = append(paths, x.path)
	}
	run, err := ResolveWith(f.dir, f.root(), paths, Options{BLAKE2b256: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range run.Results {
		x := ts[i]
		b2 := blake2b.Sum256(x.content)
		if !r.Found || r.Hashes["blake2b-256"] != hex.EncodeToString(b2[:]) {
			t.Errorf("%s: getTargetInfo %+v", x.path, r)
			continue
		}
		if r.Downloaded != x.ok {
			t.Errorf("%s: downloaded %v, want %v (%s)", x.path, r.Downloaded, x.ok, r.Error)
		}
		if !x.ok && !strings.Contains(r.Error, "Expected hash") {
			t.Errorf("%s: refused with %q, want a hash mismatch", x.path, r.Error)
		}
	}
	fetched := 0
	for _, q := range run.Requests {
		for _, x := range ts {
			b2 := blake2b.Sum256(x.content)
			if q.Status == 200 && strings.HasSuffix(q.Path, "/"+hex.EncodeToString(b2[:])+"."+path.Base(x.path)) {
				fetched++
			}
		}
	}
	if fetched != len(ts) {
		t.Errorf("tuf-js fetched %d of %d targets under their blake2b-256 names: %+v", fetched, len(ts), run.Requests)
	}
}

// TestTwoLevelWithTufJS: the tuf package's two-level layout (its names and
// nested hex prefixes, a key per role) routes in tuf-js as intended: every
// stable path, in every leaf, resolves to stable's entry and downloads;
// paths only unstable lists still resolve (nothing terminates); and
// keyceremony verify accepts it.
func TestTwoLevelWithTufJS(t *testing.T) {
	l, err := tuf.NewTwoLevel("stable", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureRepo(t, shape{layout: &l})
	if err := verify(t, f, tuf.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p := range f.stableContent {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	paths = append(paths, f.unstableOnly...)
	run := mustResolve(t, f.dir, f.root(), paths...)
	if !run.RefreshOK {
		t.Fatal(run.RefreshError)
	}
	for _, r := range run.Results {
		want := f.stableContent[r.Path]
		if want == nil {
			want = f.unstableData[r.Path]
		}
		if !r.Found || !r.Downloaded || r.Hashes["sha256"] != hexOf(want) {
			t.Errorf("%s: %+v", r.Path, r)
		}
	}
	// Each lookup fetched stable's chain: some mid and leaf files were
	// fetched, none twice.
	seen := map[string]bool{}
	for _, q := range run.Requests {
		if seen[q.Path] && strings.HasPrefix(q.Path, "/metadata/") {
			t.Errorf("%s fetched twice", q.Path)
		}
		seen[q.Path] = true
	}
	if !seen["/metadata/1."+l.LeafName(3, 7)+".json"] || !seen["/metadata/1."+l.MidName(0)+".json"] {
		t.Errorf("tuf-js did not walk the two levels: %v", run.Files())
	}
}

// TestTakedownWithTufJS: a file taken out of stable (removed from its bin,
// delegated by stable, first and terminating, to the empty takedown role)
// resolves to nothing in tuf-js even when the attacker, holding the
// online keys, lists a different file at that path in unstable; stable's
// other paths still resolve to stable's entries, and keyceremony verify
// accepts the repository. The control, the file only removed from its bin,
// shows the fall-through the takedown role prevents: tuf-js returns the
// attacker's entry.
func TestTakedownWithTufJS(t *testing.T) {
	for _, removeOnly := range []bool{false, true} {
		name := "takedown role"
		if removeOnly {
			name = "removed from its bin only"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixtureRepo(t, shape{twoLevel: true, perRole: true, takedown: 2, removeOnly: removeOnly})
			if err := verify(t, f, tuf.VerifyOptions{}); err != nil {
				t.Fatalf("keyceremony verify: %v", err)
			}
			victim, other := f.takenDown[0], f.takenDown[1]
			evil := []byte("the attacker's file at " + victim + "\n")
			a := f.attacker()
			if err := a.ListUnstable(victim, evil); err != nil {
				t.Fatal(err)
			}
			if err := a.Publish(); err != nil {
				t.Fatal(err)
			}
			if err := verify(t, f, tuf.VerifyOptions{}); err != nil {
				t.Fatalf("keyceremony verify after the attacker's unstable: %v", err)
			}
			var kept []string
			for p := range f.stableContent {
				if p != victim && p != other {
					kept = append(kept, p)
				}
			}
			sort.Strings(kept)
			kept = kept[:8]
			run := mustResolve(t, f.dir, f.root(), append([]string{victim, other}, kept...)...)
			if !run.RefreshOK {
				t.Fatalf("refresh: %s", run.RefreshError)
			}
			r, _ := run.ByPath(victim)
			if removeOnly {
				if !r.Found || r.Hashes["sha256"] != hexOf(evil) || !r.Downloaded {
					t.Fatalf("control: want the attacker's entry (the fall-through), got %+v", r)
				}
				return
			}
			if r.Found || r.Downloaded || r.Error != "" {
				t.Errorf("taken-down path with the attacker's unstable entry: want nothing, got %+v", r)
			}
			// The second taken-down path: unstable still lists its old bytes.
			if r, _ := run.ByPath(other); r.Found || r.Downloaded {
				t.Errorf("taken-down path unstable lists: want nothing, got %+v", r)
			}
			for _, p := range kept {
				r, _ := run.ByPath(p)
				if !r.Found || !r.Downloaded || r.Hashes["sha256"] != hexOf(f.stableContent[p]) {
					t.Errorf("stable path %s: want stable's entry, got %+v", p, r)
				}
			}
			fetched := false
			for _, q := range run.Requests {
				fetched = fetched || strings.HasSuffix(q.Path, "."+tuf.TakedownRole+".json") && q.Status == 200
			}
			if !fetched {
				t.Errorf("tuf-js did not fetch the takedown role's file: %+v", run.Requests)
			}
		})
	}
}

// TestVerifyRefusesTakedownLayouts: keyceremony verify refuses a takedown
// role whose file lists a target (a taken-down path must resolve to
// nothing), naming the file and role.
func TestVerifyRefusesTakedownLayouts(t *testing.T) {
	f := newFixtureRepo(t, shape{twoLevel: true, perRole: true, takedown: 1, takedownLists: true})
	err := verify(t, f, tuf.VerifyOptions{})
	var ve *tuf.VerifyError
	if !errors.Is(err, tuf.ErrLayout) || !errors.As(err, &ve) || ve.File != "1.takedown.json" || ve.Role != tuf.TakedownRole ||
		!strings.Contains(err.Error(), "takedown lists 1 targets (first "+f.takenDown[0]+"), want none") {
		t.Fatalf("verify: %v", err)
	}
}
