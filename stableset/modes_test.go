package stableset

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// modePolicy is the default policy with another target mode and naming.
func modePolicy(t testing.TB, mode policy.TargetMode, naming policy.Naming) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(fmt.Sprintf(`{"target_mode": %q, "naming": %q}`, mode, naming)), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPipelineTargetModes signs two ceremonies in every target mode and
// naming layout and reads the bins back: in files+pages the stable files
// and their pages are the targets, in pages only the pages; the pages
// have the layout's paths; every entry lists sha256 and blake2b-256, the
// files' as the export gives them and the pages' computed from the bytes
// written to the media, also for the pages the second ceremony lists
// again from the ledger without rendering them. The layout is sized from
// the targets signed, and the diff names the mode and naming.
func TestPipelineTargetModes(t *testing.T) {
	for _, mode := range []policy.TargetMode{policy.ModeFilesPages, policy.ModePages} {
		for _, naming := range []policy.Naming{policy.NamingPEP458, policy.NamingWarehouse} {
			t.Run(string(mode)+","+string(naming), func(t *testing.T) {
				c := newCeremony(t)
				dir := t.TempDir()
				pol := modePolicy(t, mode, naming)
				var counted []int64
				sizeLayout = func(n int64, est tuf.Estimate) (tuf.Shape, error) {
					if want := map[bool]tuf.Estimate{true: tuf.EstimateFiles, false: tuf.EstimatePages}[mode.ListsFiles()]; est != want {
						t.Errorf("sized with %+v, want %+v", est, want)
					}
					counted = append(counted, n)
					return tuf.SizeTwoLevel(StableRole, n, est)
				}
				defer func() {
					sizeLayout = func(n int64, est tuf.Estimate) (tuf.Shape, error) { return tuf.SizeTwoLevel(StableRole, n, est) }
				}()
				pages := map[string][]byte{}
				var byPath map[string]tuf.TargetFile
				for k, e := range []struct {
					export []byte
					stable []file
					pub    string
				}{
					{exportOf(t, t1, []file{foo1, foo2, bar1}), []file{foo1, bar1}, ""},
					// foo's page changes (foo2 is old now), bar's is listed again.
					{exportOf(t, t2, []file{foo1, foo2, bar1}), []file{foo1, foo2, bar1}, "one"},
				} {
					cfg := c.config(e.export, "")
					if e.pub != "" {
						cfg = c.config(e.export, filepath.Join(dir, e.pub))
					}
					cfg.Policy = pol
					out := filepath.Join(dir, []string{"one", "two"}[k])
					res := c.sign(t, cfg, out)
					if res.Diff.Header.TargetMode != string(mode) || res.Diff.Header.Naming != string(naming) {
						t.Fatalf("diff header %+v", res.Diff.Header)
					}
					for p, b := range readTars(t, filepath.Join(out, pagesDir)) {
						pages[p] = b
					}
					_, bins := loadStable(t, c, out, int64(k+1))
					byPath = stableTargets(bins)
					var want []string
					if mode.ListsFiles() {
						for _, f := range e.stable {
							want = append(want, rec(f).Path)
						}
					}
					for _, project := range []string{"bar", "foo"} {
						hp, jp := simpleindex.Layout(naming).PagePaths(project)
						want = append(want, hp, jp)
					}
					var got []string
					for p := range byPath {
						got = append(got, p)
					}
					sort.Strings(got)
					sort.Strings(want)
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Fatalf("ceremony %d targets:\n%s\nwant\n%s", k+1, strings.Join(got, "\n"), strings.Join(want, "\n"))
					}
					if counted[k] != int64(len(want)) {
						t.Errorf("ceremony %d: layout sized for %d targets, %d signed", k+1, counted[k], len(want))
					}
					for _, f := range e.stable {
						r := rec(f)
						if tf, ok := byPath[r.Path]; ok && (tf.Hashes["sha256"] != hex.EncodeToString(r.SHA256[:]) || tf.Hashes["blake2b-256"] != hex.EncodeToString(r.BLAKE2b256[:]) || len(tf.Hashes) != 2) {
							t.Errorf("%s: hashes %v", r.Path, tf.Hashes)
						}
					}
					for p, tf := range byPath {
						if !strings.HasPrefix(p, pagesPrefix) {
							continue
						}
						b, ok := pages[p]
						if !ok {
							t.Fatalf("page %s is on no medium", p)
						}
						sum, b2 := sha256.Sum256(b), blake2b.Sum256(b)
						s := hex.EncodeToString(sum[:])
						if tf.Length != int64(len(b)) || tf.Hashes["sha256"] != s || tf.Hashes["blake2b-256"] != hex.EncodeToString(b2[:]) || len(tf.Hashes) != 2 {
							t.Errorf("ceremony %d: page %s: entry %+v, bytes %d long sha256 %s blake2b-256 %x", k+1, p, tf, len(b), s, b2)
						}
					}
				}
			})
		}
	}
}

// TestDelegationMustCoverTheNaming: a diff is refused, before the export
// is read, when the delegation to stable (from the bootstrap's
// target_paths) does not match the paths the naming layout gives the
// pages, or, in files+pages, the distribution files: no client would ask
// stable for them.
func TestDelegationMustCoverTheNaming(t *testing.T) {
	c := newCeremony(t)
	e := exportOf(t, t1, []file{foo1})
	for _, tc := range []struct {
		paths  []string
		mode   policy.TargetMode
		naming policy.Naming
		ok     bool
	}{
		{[]string{"packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"}, policy.ModeFilesPages, policy.NamingPEP458, true},
		{[]string{"packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"}, policy.ModeFilesPages, policy.NamingWarehouse, false},
		{[]string{"packages/*/*/*/*", "simple/*/*.html", "simple/*/*.json"}, policy.ModePages, policy.NamingWarehouse, true},
		{[]string{"simple/*/*.html", "simple/*/*.json"}, policy.ModePages, policy.NamingWarehouse, true},
		{[]string{"simple/*/*.html", "simple/*/*.json"}, policy.ModeFilesPages, policy.NamingWarehouse, false},
		{[]string{"packages/*/*/*/*", "simple/*/index.html"}, policy.ModeFilesPages, policy.NamingPEP458, false},
	} {
		cfg := c.config(e, "")
		d := *c.deleg
		d.Paths = tc.paths
		cfg.StableDelegation, cfg.Policy = &d, modePolicy(t, tc.mode, tc.naming)
		diff, err := ComputeDiff(cfg)
		if diff != nil {
			diff.Close()
		}
		if tc.ok != (err == nil) || !tc.ok && (!errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), string(tc.naming))) {
			t.Errorf("%v %s %s: %v", tc.paths, tc.mode, tc.naming, err)
		}
	}
}

// TestNamingChangeRefused: the ledger records the naming its pages were
// listed under; a next ceremony whose policy names them otherwise is
// refused, naming both, rather than moving every page and leaving the old
// paths listed nowhere. The target mode may change between ceremonies.
func TestNamingChangeRefused(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	cfg := c.config(exportOf(t, t1, []file{foo1, bar1}), "")
	cfg.Policy = modePolicy(t, policy.ModeFilesPages, policy.NamingPEP458)
	c.sign(t, cfg, filepath.Join(dir, "one"))
	e2 := exportOf(t, t2, []file{foo1, bar1})
	cfg = c.config(e2, filepath.Join(dir, "one"))
	cfg.Policy = modePolicy(t, policy.ModeFilesPages, policy.NamingWarehouse)
	d, err := ComputeDiff(cfg)
	if d != nil {
		d.Close()
	}
	if !errors.Is(err, ErrNamingChanged) || !strings.Contains(err.Error(), `policy naming "warehouse", but stable v1 named its pages "pep458"`) {
		t.Fatalf("naming changed: %v", err)
	}
	cfg = c.config(e2, filepath.Join(dir, "one"))
	cfg.Policy = modePolicy(t, policy.ModePages, policy.NamingPEP458)
	res := c.sign(t, cfg, filepath.Join(dir, "two"))
	_, bins := loadStable(t, c, filepath.Join(dir, "two"), 2)
	for p := range stableTargets(bins) {
		if !strings.HasPrefix(p, pagesPrefix) {
			t.Errorf("pages mode after files+pages lists %s", p)
		}
	}
	if res.Diff.Header.TargetMode != "pages" {
		t.Errorf("header %+v", res.Diff.Header)
	}
}
