package ceremony

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/tuf"
)

// published is what a repository directory's metadata says, read by the
// test itself (no production matcher): every entry stable's roles list,
// by the role that lists it, and every entry unstable lists.
type published struct {
	stable     map[string]tuf.TargetFile
	stableRole map[string]string
	unstable   map[string]tuf.TargetFile
	mids       []string            // stable's delegated roles, in order
	leaves     []string            // the mids' delegated roles, in order
	leafMid    map[string]string   // leaf -> the mid that delegates to it
	under      map[string][]string // role -> the stable paths listed below it
}

func readPublished(t *testing.T, metaDir string) *published {
	t.Helper()
	load := func(name string) *tuf.Metadata[tuf.Targets] {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(metaDir, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := tuf.Load[tuf.Targets](b, name)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	b, err := os.ReadFile(filepath.Join(metaDir, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := tuf.Load[tuf.Timestamp](b, "timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	sname := fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)
	b, err = os.ReadFile(filepath.Join(metaDir, sname))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tuf.Load[tuf.Snapshot](b, sname)
	if err != nil {
		t.Fatal(err)
	}
	file := func(role string) string {
		return fmt.Sprintf("%d.%s.json", snap.Signed.Meta[role+".json"].Version, role)
	}
	p := &published{stable: map[string]tuf.TargetFile{}, stableRole: map[string]string{}, leafMid: map[string]string{}, under: map[string][]string{}}
	p.unstable = load(file("unstable")).Signed.Targets
	var walk func(role string, above []string)
	walk = func(role string, above []string) {
		m := load(file(role))
		for tp, tf := range m.Signed.Targets {
			p.stable[tp] = tf
			p.stableRole[tp] = role
			for _, r := range append(above, role) {
				p.under[r] = append(p.under[r], tp)
			}
		}
		if m.Signed.Delegations == nil {
			return
		}
		for _, d := range m.Signed.Delegations.Roles {
			switch len(above) {
			case 0:
				p.mids = append(p.mids, d.Name)
			case 1:
				p.leaves = append(p.leaves, d.Name)
				p.leafMid[d.Name] = role
			}
			walk(d.Name, append(above[:len(above):len(above)], role))
		}
	}
	walk("stable", nil)
	return p
}

func sameEntry(r tufjs.Result, tf tuf.TargetFile) bool {
	if !r.Found || r.Length != tf.Length || len(r.Hashes) != len(tf.Hashes) {
		return false
	}
	for alg, h := range tf.Hashes {
		if r.Hashes[alg] != h {
			return false
		}
	}
	return true
}

// TestDemoWithTufJS resolves paths on the demo repository with tuf-js,
// which routes hex path_hash_prefixes as the specification says: the path
// the attacker swapped in unstable resolves to stable's entry, paths only
// unstable lists to unstable's, a sample of 200 stable paths, the demo's
// built-in stable files and every stable index page of one project to
// stable's; every one of them downloads and verifies (the demo publishes
// every target, its generated files included).
func TestDemoWithTufJS(t *testing.T) {
	res, dir := runDemo(t)
	md := filepath.Join(dir, "metadata")
	pub := readPublished(t, md)
	if len(pub.stable) < 200 {
		t.Fatalf("stable lists %d targets", len(pub.stable))
	}
	var stablePaths []string
	for p := range pub.stable {
		stablePaths = append(stablePaths, p)
	}
	sort.Strings(stablePaths)
	want := map[string]tuf.TargetFile{}
	for i := 0; i < 200; i++ {
		p := stablePaths[i*len(stablePaths)/200]
		want[p] = pub.stable[p]
	}
	// Every stable index page of one project with several pages.
	project := ""
	for _, p := range stablePaths {
		if strings.HasPrefix(p, "simple/") {
			project = strings.Split(p, "/")[1]
			break
		}
	}
	if project == "" {
		t.Fatal("stable lists no index page")
	}
	pages := 0
	for _, p := range stablePaths {
		if strings.HasPrefix(p, "simple/"+project+"/") {
			want[p] = pub.stable[p]
			pages++
		}
	}
	if pages < 2 {
		t.Fatalf("project %s has %d stable pages", project, pages)
	}
	for _, p := range res.Stable {
		want[p] = pub.stable[p]
	}
	for _, p := range res.Attacked {
		if u, s := pub.unstable[p], pub.stable[p]; u.Hashes["sha256"] == s.Hashes["sha256"] {
			t.Fatalf("%s: unstable does not list a different file", p)
		}
		want[p] = pub.stable[p]
	}
	for _, p := range res.UnstableOnly {
		if _, ok := pub.stable[p]; ok {
			t.Fatalf("%s is unstable-only but stable lists it", p)
		}
		want[p] = pub.unstable[p]
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	run, err := tufjs.ResolveWith(dir, filepath.Join(md, "1.root.json"), paths, tufjs.Options{BLAKE2b256: true})
	if err != nil {
		t.Fatal(err)
	}
	if !run.RefreshOK {
		t.Fatalf("tuf-js refused the demo repository: %s", run.RefreshError)
	}
	for _, r := range run.Results {
		if !sameEntry(r, want[r.Path]) {
			t.Errorf("%s: tuf-js returned %+v, want %+v", r.Path, r, want[r.Path])
			continue
		}
		// The demo publishes every target, generated files included.
		if !r.Downloaded {
			t.Errorf("%s: tuf-js did not download and verify it: %s", r.Path, r.Error)
		}
	}
	t.Logf("tuf-js resolved and downloaded %d paths; %d bytes of metadata fetched", len(paths), run.BytesServed("/metadata/"))
	for _, q := range run.Requests {
		if strings.HasPrefix(q.Path, "/metadata/") && !strings.Contains(q.Path, "stable-") {
			t.Logf("  %s: %d bytes (status %d)", q.Path, q.Bytes, q.Status)
		}
	}
}

// TestPipelineBinSwapWithTufJS runs the attack on what the stable pipeline
// writes: a rehearsal (bootstrap, the demo's export, a stable signing)
// published by a simulated repository whose online keys the test holds,
// as an attacker would. Unstable lists a malicious file for a stable path
// P; the server serves another role's file under the name of the role
// that holds P, with snapshot and timestamp re-signed: a sibling leaf's,
// a leaf under another mid, another mid's. Every role has its own key, so
// tuf-js must refuse, or return stable's entry; it must never return
// unstable's (the attacker's) entry for P.
func TestPipelineBinSwapWithTufJS(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	dir := t.TempDir()
	b := f.bootstrap()
	bk := withBackup(t, b)
	boot, err := b.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(dir, "export.jsonl")
	if _, _, err := writeDemoExport(export, now); err != nil {
		t.Fatal(err)
	}
	ss := &StableSigning{Root: boot.Root, Published: filepath.Join(dir, "boot"), Export: export, Devices: f.devices, PIN: f.pins, Now: now, Backup: bk}
	d, err := ss.Diff()
	if err != nil {
		t.Fatal(err)
	}
	digest := d.Digest
	d.Close()
	sres, err := ss.Sign(digest, filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	sres.Diff.Close()
	// The published repository, before any attack.
	pristine := filepath.Join(dir, "pristine")
	out, err := outdir.New(pristine)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	unstable, err := f.repo.signUnstable(1, map[string]tuf.TargetFile{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(boot.Targets, unstable, filepath.Join(dir, "media", "stable"), sres.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.publish(out, "metadata", boot.Root, files); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	pub := readPublished(t, filepath.Join(pristine, "metadata"))
	if len(pub.mids) < 2 || len(pub.leaves) < 4 {
		t.Fatalf("stable has %d mids and %d leaves", len(pub.mids), len(pub.leaves))
	}
	// A leaf holding a stable path, a sibling of it, a leaf under another
	// mid, and another mid.
	var to string
	for _, l := range pub.leaves {
		if len(pub.under[l]) > 0 {
			to = l
			break
		}
	}
	if to == "" {
		t.Fatal("no leaf lists a stable path")
	}
	mid := pub.leafMid[to]
	var sibling, cousin, otherMid string
	for _, l := range pub.leaves {
		switch {
		case l == to:
		case pub.leafMid[l] == mid && sibling == "":
			sibling = l
		case pub.leafMid[l] != mid && cousin == "":
			cousin = l
		}
	}
	for _, m := range pub.mids {
		if m != mid {
			otherMid = m
			break
		}
	}
	cases := []struct{ what, from, to string }{
		{"a sibling leaf's file as the leaf", sibling, to},
		{"a leaf of another mid as the leaf", cousin, to},
		{"another mid's file as the mid", otherMid, mid},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			if c.from == "" {
				t.Fatal("no role to swap in")
			}
			victim := pub.under[c.to][0]
			repoDir := filepath.Join(t.TempDir(), "repo")
			if err := os.CopyFS(repoDir, os.DirFS(pristine)); err != nil {
				t.Fatal(err)
			}
			md := filepath.Join(repoDir, "metadata")
			evil := []byte("malicious replacement of " + path.Base(victim) + "\n")
			a := &tufjs.Attacker{Dir: repoDir, Snapshot: f.repo.snapshot, Timestamp: f.repo.timestamp, Unstable: f.repo.unstable}
			if err := a.ListUnstable(victim, evil); err != nil {
				t.Fatal(err)
			}
			if err := a.Publish(); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(md, "1.root.json")
			run, err := tufjs.ResolveWith(repoDir, root, []string{victim}, tufjs.Options{BLAKE2b256: true})
			if err != nil {
				t.Fatal(err)
			}
			if r := run.Results[0]; !run.RefreshOK || !sameEntry(r, pub.stable[victim]) {
				t.Fatalf("before the swap tuf-js must return stable's entry for %s: %s %+v", victim, run.RefreshError, r)
			}
			if err := a.SwapRole(c.from, c.to); err != nil {
				t.Fatal(err)
			}
			if err := a.Publish(); err != nil {
				t.Fatal(err)
			}
			run, err = tufjs.ResolveWith(repoDir, root, []string{victim}, tufjs.Options{BLAKE2b256: true})
			if err != nil {
				t.Fatal(err)
			}
			r := run.Results[0]
			switch {
			case r.Found && r.Hashes["sha256"] == sha256Hex(evil):
				t.Fatalf("%s -> %s: tuf-js returned unstable's (the attacker's) entry for stable path %s (downloaded: %v)", c.from, c.to, victim, r.Downloaded)
			case !run.RefreshOK:
				t.Logf("%s -> %s: tuf-js refused at refresh: %s", c.from, c.to, run.RefreshError)
			case sameEntry(r, pub.stable[victim]):
				t.Logf("%s -> %s: tuf-js returned stable's entry", c.from, c.to)
			case !r.Found && r.Error != "":
				t.Logf("%s -> %s: tuf-js refused: %s", c.from, c.to, r.Error)
			default:
				t.Fatalf("%s -> %s: want a refusal or stable's entry, tuf-js said %+v", c.from, c.to, r)
			}
			// keyceremony verify refuses the swapped repository too.
			if _, err := tuf.VerifyRepository(boot.Root, md, tuf.VerifyOptions{At: now}); err == nil {
				t.Error("keyceremony verify accepted the swapped repository")
			}
		})
	}
}
