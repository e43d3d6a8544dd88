package ceremony

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// downloadFiles is the size of the synthetic export TestLookupBytesWithTufJS
// signs: large enough that the pipeline chooses a layout of several mids
// and leaves with hundreds of entries a leaf, small enough for seconds.
const downloadFiles = 20_000

// TestLookupBytesWithTufJS measures what a real client downloads to
// resolve one stable target on what the stable pipeline really writes,
// and holds it against the layout's estimates (tuf.EstimateShape, the
// figures docs/tuf-layout.md reports), in each target mode.
//
// Two ceremonies (bootstrap, a synthetic PyPI-like export, diff, sign with
// its read-back; then the next period's export) are published by a
// simulated repository beside the bootstrap's metadata, period after
// period, on a server that counts the bytes of every response. tuf-js,
// the independent client, resolves and downloads one stable target (a
// distribution file in files+pages, its project's index page in pages):
// first as a fresh client shipped with root v1, then, after the second
// ceremony, as the same client holding what it cached of the first
// period. The test checks, from the metadata files themselves:
//
//   - the fresh client fetches exactly the next root (404), timestamp,
//     snapshot, targets, stable, the mid and the leaf on the target's
//     path, and the target; the returning client fetches exactly the
//     files of that path that changed between the periods (targets.json
//     did not, and is not fetched again);
//   - each byte count the server measured is the file's size;
//   - stable.json, the mid and the leaf each within the estimate for the
//     layout and the count signed (an estimate covers the measure, and by
//     no more than 25 %, the margin TestEstimates states; the leaf's
//     estimate at its own entry count, and no leaf above the largest-leaf
//     estimate), stable's share of the snapshot likewise, and the lookup
//     within the estimated lookup bytes.
//
// So a change that grows the metadata past its estimate fails here.
func TestLookupBytesWithTufJS(t *testing.T) {
	for _, mode := range []policy.TargetMode{policy.ModeFilesPages, policy.ModePages} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testLookupBytes(t, mode)
		})
	}
}

// period is one ceremony's published metadata, as the test reads it.
type period struct {
	dir      string // the medium's stable directory
	pub      *published
	versions map[string]int64 // role -> the version the period's snapshot lists
	layout   tuf.TwoLevel
	targets  int64 // targets in the leaves
	run      *tufjs.Run
}

func testLookupBytes(t *testing.T, mode policy.TargetMode) {
	f := newFixture(t)
	f.cfg.Repository = "pypi" // synth's exports
	dir := t.TempDir()
	b := f.bootstrap()
	bk := withBackup(t, b)
	boot, err := b.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"target_mode": %q}`, mode)), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	est := tuf.EstimateFiles
	if !mode.ListsFiles() {
		est = tuf.EstimatePages
	}
	base := time.Now().UTC().Truncate(time.Second)
	export1 := filepath.Join(dir, "export1.jsonl")
	rec, content := writeDownloadExport(t, export1, base)
	export2 := filepath.Join(dir, "export2.jsonl")
	nextExport(t, export1, export2, synth.NextParams{Seed: 41, NewFiles: 1000})

	// The repository, as clients fetch it: period after period in one
	// directory, old versions kept, timestamp.json replaced.
	repo := filepath.Join(dir, "repo")
	unstable, err := f.repo.signUnstable(1, map[string]tuf.TargetFile{})
	if err != nil {
		t.Fatal(err)
	}
	repoMeta := map[string]*tuf.Metadata[tuf.Targets]{"targets.json": boot.Targets, "unstable.json": unstable}
	work := workTempDir(t)
	published := filepath.Join(dir, "boot")
	state := filepath.Join(dir, "client") // the client's, kept from one period to the next
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	var target string
	var periods []*period
	for k, exp := range []string{export1, export2} {
		ss := &StableSigning{Root: boot.Root, Published: published, Export: exp, Devices: f.devices, PIN: f.pins,
			Now: generated(t, exp).Add(time.Minute), Policy: pol, Backup: bk, TempDir: work}
		d, err := ss.Diff()
		if err != nil {
			t.Fatalf("ceremony %d: %v", k+1, err)
		}
		digest := d.Digest
		d.Close()
		media := filepath.Join(dir, fmt.Sprintf("media%d", k+1))
		sres, err := ss.Sign(digest, media)
		if err != nil {
			t.Fatalf("ceremony %d: %v", k+1, err)
		}
		sres.Diff.Close()
		stableDir := filepath.Join(media, "stable")
		publishPeriod(t, f.repo, repo, int64(k+1), boot.Root, repoMeta, stableDir, sres.Meta)
		// What the next ceremony is handed: the bootstrap's metadata, this
		// medium's and its ledger.
		published = filepath.Join(dir, fmt.Sprintf("published%d", k+1))
		copyInto(t, filepath.Join(dir, "boot", "metadata"), filepath.Join(published, "metadata"))
		copyInto(t, filepath.Join(stableDir, "metadata"), filepath.Join(published, "metadata"))
		copyInto(t, filepath.Join(stableDir, "ledger"), filepath.Join(published, "ledger"))

		p := &period{dir: stableDir, layout: sres.Layout, pub: readPublished(t, filepath.Join(repo, "metadata")), versions: snapshotVersions(t, repo, int64(k+1))}
		for _, l := range p.pub.leaves {
			p.targets += int64(len(p.pub.under[l]))
		}
		// The pipeline sized the layout with the same estimate from the
		// same count.
		if s, err := tuf.SizeTwoLevel("stable", p.targets, est); err != nil || s.Layout != p.layout {
			t.Fatalf("ceremony %d: %d targets in the leaves; SizeTwoLevel gives %+v (%v), the medium has %+v", k+1, p.targets, s.Layout, err, p.layout)
		}
		if p.layout.NumMids() < 4 || p.layout.NumLeaves() < 16 {
			t.Fatalf("ceremony %d: the layout at %d targets is %d x %d: too small to measure", k+1, p.targets, p.layout.NumMids(), p.layout.LeavesPerMid())
		}

		// The stable target: the real file in files+pages, its project's
		// HTML page in pages (where stable lists no file), published
		// where a consistent-snapshot client fetches it, under each hash
		// its entry lists.
		target = rec.Path
		body := content
		if !mode.ListsFiles() {
			if _, ok := p.pub.stable[rec.Path]; ok {
				t.Fatalf("pages mode, but stable lists %s", rec.Path)
			}
			target = "simple/" + rec.Project + "/index.html"
			pages, err := extractPages(filepath.Join(stableDir, "pages"))
			if err != nil {
				t.Fatal(err)
			}
			body = pages[target]
		}
		tf, ok := p.pub.stable[target]
		if !ok || p.pub.stableRole[target] == "stable" {
			t.Fatalf("period %d: no leaf lists %s", k+1, target)
		}
		if tf.Length != int64(len(body)) || tf.Hashes["sha256"] != sha256Hex(body) {
			t.Fatalf("period %d: %s: stable lists %+v, the content has %d bytes", k+1, target, tf, len(body))
		}
		for _, h := range tf.Hashes {
			to := filepath.Join(repo, "targets", path.Dir(target), h+"."+path.Base(target))
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, body, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		// The client resolves and downloads it: fresh with root v1 in
		// period 1, holding what it cached of period 1 in period 2.
		p.run, err = tufjs.ResolveWith(repo, filepath.Join(repo, "metadata", "1.root.json"), []string{target}, tufjs.Options{BLAKE2b256: true, StateDir: state})
		if err != nil {
			t.Fatal(err)
		}
		if r := p.run.Results[0]; !p.run.RefreshOK || !sameEntry(r, tf) || !r.Downloaded {
			t.Fatalf("period %d: tuf-js did not resolve and download stable's entry for %s: %s %+v", k+1, target, p.run.RefreshError, r)
		}
		periods = append(periods, p)
	}

	for k, p := range periods {
		leaf := p.pub.stableRole[target]
		mid := p.pub.leafMid[leaf]
		file := func(role string) string { return fmt.Sprintf("%d.%s.json", p.versions[role], role) }
		lookup := []string{fmt.Sprintf("%d.snapshot.json", k+1), file("stable"), file(mid), file(leaf)}
		want := map[string]bool{"2.root.json": true, "timestamp.json": true}
		for _, n := range lookup {
			want[n] = true
		}
		if k == 0 {
			want[file("targets")] = true
		} else {
			// A client holding period 1 fetches what changed since, read
			// here from the files: targets did not change; stable, the
			// mid and the leaf did.
			prev := periods[k-1]
			for _, role := range []string{"targets", "stable", mid, leaf} {
				v := prev.versions[role]
				changed := v != p.versions[role] || string(readRepo(t, repo, fmt.Sprintf("%d.%s.json", v, role))) != string(readRepo(t, repo, file(role)))
				if changed != want[file(role)] {
					t.Errorf("period %d: %s changed: %v, but the test expects tuf-js to fetch it: %v", k+1, role, changed, want[file(role)])
				}
			}
		}
		got := map[string]int64{}
		var targetBytes int64
		for _, q := range p.run.Requests {
			name, isMeta := strings.CutPrefix(q.Path, "/metadata/")
			switch {
			case !isMeta:
				targetBytes += q.Bytes
				continue
			case name == "2.root.json":
				if q.Status != http.StatusNotFound {
					t.Errorf("period %d: %s answered %d, want 404", k+1, q.Path, q.Status)
				}
			case q.Status != http.StatusOK:
				t.Errorf("period %d: %s answered %d", k+1, q.Path, q.Status)
			case name == "timestamp.json" && q.Bytes != int64(len(readRepo(t, repo, fmt.Sprintf("timestamp.%d.json", k+1)))):
				t.Errorf("period %d: timestamp.json: %d bytes served, not period %d's", k+1, q.Bytes, k+1)
			case name != "timestamp.json" && q.Bytes != int64(len(readRepo(t, repo, name))):
				t.Errorf("period %d: %s: %d bytes served, the file has %d", k+1, name, q.Bytes, len(readRepo(t, repo, name)))
			}
			got[name] += q.Bytes
		}
		for n := range want {
			if _, ok := got[n]; !ok {
				t.Errorf("period %d: tuf-js did not fetch %s", k+1, n)
			}
		}
		for n := range got {
			if !want[n] {
				t.Errorf("period %d: tuf-js fetched %s, which a lookup of %s does not need", k+1, n, target)
			}
		}
		if targetBytes != p.pub.stable[target].Length {
			t.Errorf("period %d: %d bytes of targets served, the target has %d", k+1, targetBytes, p.pub.stable[target].Length)
		}

		s := tuf.EstimateShape(p.layout, p.targets, est)
		// The leaf's estimate at its own entry count, and the largest leaf.
		entries := int64(len(p.pub.under[leaf]))
		var largest int64
		for _, l := range p.pub.leaves {
			largest = max(largest, int64(len(readRepo(t, repo, file(l)))))
		}
		share := snapshotShare(t, readRepo(t, repo, lookup[0]))
		for _, c := range []struct {
			what          string
			measured, est int64
		}{
			{"stable.json", got[file("stable")], s.StableBytes},
			{"the mid " + mid, got[file(mid)], s.MidBytes},
			{fmt.Sprintf("the leaf %s (%d entries)", leaf, entries), got[file(leaf)], est.FileBytes + entries*est.EntryBytes},
			{"stable's share of the snapshot", share, s.SnapshotBytes},
		} {
			t.Logf("period %d, %s: measured %d bytes, estimate %d", k+1, c.what, c.measured, c.est)
			if c.measured > c.est || c.est*4 > c.measured*5 {
				t.Errorf("period %d, %s: estimate %d does not cover the measured %d within 25%%", k+1, c.what, c.est, c.measured)
			}
		}
		if largest > s.LeafBytes {
			t.Errorf("period %d: the largest leaf has %d bytes, over the estimate %d", k+1, largest, s.LeafBytes)
		}
		layoutBytes := share + got[file("stable")] + got[file(mid)] + got[file(leaf)]
		if layoutBytes > s.LookupBytes {
			t.Errorf("period %d: the lookup downloaded %d bytes of the layout's making, over the estimate %d", k+1, layoutBytes, s.LookupBytes)
		}
		var total int64
		for _, n := range got {
			total += n
		}
		client := "fresh client (root v1)"
		if k > 0 {
			client = "client holding period 1"
		}
		t.Logf("period %d, %s, %s, %d targets, %d x %d: %d bytes of metadata (%d of the layout's making, estimate %d; largest leaf %d, estimate %d) and %d of target; fetched %v",
			k+1, mode, client, p.targets, p.layout.NumMids(), p.layout.LeavesPerMid(), total, layoutBytes, s.LookupBytes, largest, s.LeafBytes, targetBytes, got)
	}
}

// workTempDir is a directory for the pipeline's work files: in memory
// (/dev/shm) where the machine has it, since creating the many small work
// files on a shared disk was a third of the test's time; t.TempDir()
// otherwise. Only the speed differs.
func workTempDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "kc-download-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

func readRepo(t *testing.T, repo, name string) []byte {
	t.Helper()
	return mustRead(t, filepath.Join(repo, "metadata", name))
}

// snapshotVersions reads repo's snapshot k: the version it lists for
// each role.
func snapshotVersions(t *testing.T, repo string, k int64) map[string]int64 {
	t.Helper()
	name := fmt.Sprintf("%d.snapshot.json", k)
	snap, err := tuf.Load[tuf.Snapshot](readRepo(t, repo, name), name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for n, m := range snap.Signed.Meta {
		out[strings.TrimSuffix(n, ".json")] = m.Version
	}
	return out
}

// snapshotShare is what stable's entries take in a snapshot file: its
// size less that of the same file holding only the repository's own
// entries (targets.json and unstable.json), same version and expiry.
func snapshotShare(t *testing.T, data []byte) int64 {
	t.Helper()
	snap, err := tuf.Load[tuf.Snapshot](data, "snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	own := tuf.NewSnapshot(snap.Signed.Version, snap.Signed.Expires.Time())
	for _, n := range []string{"targets.json", "unstable.json"} {
		own.Signed.Meta[n] = snap.Signed.Meta[n]
	}
	s, err := keys.GenerateEd25519() // the same size of signature as the repository's
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Sign(s); err != nil {
		t.Fatal(err)
	}
	b, err := own.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(data) - len(b))
}

// publishPeriod publishes period k beside the bootstrap's metadata in
// repo/metadata: root, targets and unstable (version 1, unchanged), the
// medium's stable metadata, snapshot k over all of them and timestamp k,
// (also kept as timestamp.k.json, for the test to read).
func publishPeriod(t *testing.T, r *simRepo, repo string, k int64, root *tuf.Metadata[tuf.Root], own map[string]*tuf.Metadata[tuf.Targets], stableDir string, meta []stableset.MetaEntry) {
	t.Helper()
	md := filepath.Join(repo, "metadata")
	if err := os.MkdirAll(md, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(md, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rb, err := root.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	write("1.root.json", rb)
	snap := tuf.NewSnapshot(k, r.expires)
	for n, m := range own {
		b, err := m.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("%d.%s", m.Signed.Version, n), b)
		snap.Signed.Meta[n] = metaEntry(m.Signed.Version, b)
	}
	for _, m := range meta {
		b := mustRead(t, filepath.Join(stableDir, m.File))
		write(path.Base(m.File), b)
		snap.Signed.Meta[m.Name] = metaEntry(m.Version, b)
	}
	if err := snap.Sign(r.snapshot); err != nil {
		t.Fatal(err)
	}
	sb, err := snap.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	write(fmt.Sprintf("%d.snapshot.json", k), sb)
	ts := tuf.NewTimestamp(k, r.expires, metaEntry(k, sb))
	if err := ts.Sign(r.timestamp); err != nil {
		t.Fatal(err)
	}
	tb, err := ts.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	write(fmt.Sprintf("timestamp.%d.json", k), tb)
	write("timestamp.json", tb)
}

// writeDownloadExport writes a synthetic PyPI-like export of
// downloadFiles files generated at gen, one of which (an old file, stable
// in every period) is made real: its hashes, length and path are those
// of the content returned, so that a client can download it.
func writeDownloadExport(t *testing.T, name string, gen time.Time) (export.Record, []byte) {
	t.Helper()
	syn := filepath.Join(filepath.Dir(name), "synth.jsonl")
	w, err := os.Create(syn)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(w, synth.Params{Seed: 1, Files: downloadFiles, Generated: gen}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(syn)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	x, err := export.NewReader(in, syn)
	if err != nil {
		t.Fatal(err)
	}
	var recs []export.Record
	for {
		r, err := x.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, *r)
	}
	perProject := map[string]int{}
	for _, r := range recs {
		perProject[r.Project]++
	}
	// A file of a small project, whose index page is small too.
	real := -1
	for i, r := range recs {
		if gen.Sub(r.UploadTime) > 365*24*time.Hour && !r.Yanked && perProject[r.Project] <= 30 {
			real = i
			break
		}
	}
	if real < 0 {
		t.Fatal("the synthetic export has no file older than a year in a small project")
	}
	r := &recs[real]
	content := []byte(fmt.Sprintf("the content of %s, %s %s\n", r.Filename, r.Project, r.Version))
	r.Length, r.SHA256, r.BLAKE2b256 = int64(len(content)), sha256.Sum256(content), blake2b.Sum256(content)
	r.Path = export.TargetPath(r.BLAKE2b256, r.Filename)
	rec := *r
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ew, err := export.NewWriter(out, x.Header())
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := ew.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return rec, content
}

// nextExport writes the next period's export from the previous one.
func nextExport(t *testing.T, prev, next string, p synth.NextParams) {
	t.Helper()
	in, err := os.Open(prev)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	w, err := os.Create(next)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := synth.Next(in, w, p); err != nil {
		t.Fatal(err)
	}
}
