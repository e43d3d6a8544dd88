package stableset

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// secondDiff is the second ceremony of the pipeline test (foo gains foo2,
// bar1 changed and kept old, bar09 removed, baz1 backdated, qux3 young).
func secondDiff(t *testing.T) *Diff {
	t.Helper()
	c := newCeremony(t)
	out1 := filepath.Join(t.TempDir(), "one")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, foo2, bar1, bar09}), ""), out1)
	c.decisions = mustDecisions(t, `{"path": "`+rec(bar1evil).Path+`", "decision": "keep-old", "reason": "PyPI never re-uploads a file"}`)
	d, err := ComputeDiff(c.config(exportOf(t, t2, []file{foo1, foo2, bar1evil, baz1, qux3}), out1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// checkCovers asserts that the review's projects hold every entry of the
// diff exactly once, each as Entries gives it.
func checkCovers(t *testing.T, d *Diff, rv *Review) {
	t.Helper()
	want := map[string]DiffEntry{}
	d.Entries(func(e *DiffEntry) error { want[e.Path] = *e; return nil })
	n := 0
	for _, p := range rv.Projects() {
		v, err := rv.Project(p.Project)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range v.Entries {
			w, ok := want[e.Path]
			if !ok {
				t.Fatalf("%s: %s is no entry of the diff (or is shown twice)", p.Project, e.Path)
			}
			delete(want, e.Path)
			if e.Category != w.Category || e.Reason != w.Reason || e.Project != w.Project || e.HasOld != w.HasOld || e.OldSHA256 != w.OldSHA256 || e.HasNew != w.HasNew || e.NewSHA256 != w.NewSHA256 {
				t.Errorf("%s: review shows %+v, the diff %+v", e.Path, e, w)
			}
			if i > 0 && reviewKey(&v.Entries[i-1], &v.Entries[i]) >= 0 {
				t.Errorf("%s: %s before %s", p.Project, v.Entries[i-1].Path, e.Path)
			}
			n++
		}
	}
	if len(want) > 0 || n == 0 {
		t.Fatalf("%d entries shown, %d of the diff's missing", n, len(want))
	}
}

// TestReviewDrillDown opens each project of a second ceremony through the
// index: the stable view before and after, each file's category and
// reason, the time a backdated file claims; search by project and path.
func TestReviewDrillDown(t *testing.T) {
	d := secondDiff(t)
	rv, err := d.Review()
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	checkCovers(t, d, rv)

	var b bytes.Buffer
	v, err := rv.Project("BAR") // found by its normalized name
	if err != nil {
		t.Fatal(err)
	}
	v.WriteProjectText(&b)
	text := b.String()
	for _, want := range []string{
		"project bar: 2 stable files before, 1 after",
		"! yes    old changed kept-old   1.0", // the change kept: stable before, the old entry after
		"  yes    -   removed            -",   // bar09
		"stable: 7 bytes sha256",              // the two sides of the change
		"listed: 12 bytes sha256",
		"page-changed files",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("bar's drill-down lacks %q:\n%s", want, text)
		}
	}
	b.Reset()
	v, err = rv.Project("baz")
	if err != nil {
		t.Fatal(err)
	}
	v.WriteProjectText(&b)
	if !strings.Contains(b.String(), "held backdated 1.0     2020-05-01T00:00:00Z") || !strings.Contains(b.String(), "0 stable files before, 0 after") {
		t.Errorf("baz's drill-down does not show the claimed upload time:\n%s", b.String())
	}
	b.Reset()
	v.WriteProjectJSON(&b)
	var j struct {
		Project string
		Counts  Counts
		Entries []projectEntryJSON
	}
	if err := json.Unmarshal(b.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if j.Project != "baz" || j.Counts.Backdated != 1 || len(j.Entries) != 1 || j.Entries[0].Uploaded != "2020-05-01T00:00:00Z" || j.Entries[0].Before || j.Entries[0].After || j.Entries[0].Reason != ReasonBackdated {
		t.Errorf("baz in JSON: %+v", j)
	}
	v, _ = rv.Project("foo")
	if got := len(v.Entries); got != 4 || v.Entries[0].Category != Unchanged || v.Entries[1].Category != Added || !v.Entries[0].stableBefore() || v.Entries[1].stableBefore() {
		t.Errorf("foo: %+v", v.Entries)
	}
	if _, err := rv.Project("nonesuch"); !errors.Is(err, ErrNoProject) {
		t.Errorf("unknown project: %v", err)
	}

	// Search: projects by normalized prefix first, then substring.
	var names []string
	for _, p := range rv.FindProjects("A") {
		names = append(names, p.Project)
	}
	if strings.Join(names, " ") != "bar baz" {
		t.Errorf("projects containing A: %v", names)
	}
	names = nil
	for _, p := range rv.FindProjects("b") {
		names = append(names, p.Project)
	}
	if strings.Join(names, " ") != "bar baz" {
		t.Errorf("projects beginning with b: %v", names)
	}
	var found []string
	rv.FindPaths("bar-1.0-py3", func(e *DiffEntry) error { found = append(found, e.label()); return nil })
	if strings.Join(found, ",") != "changed kept-old" {
		t.Errorf("path search: %v", found)
	}
	b.Reset()
	rv.WriteSearchText(&b, "tar.gz", 2)
	if !strings.Contains(b.String(), "… 3 more (5 in all)") {
		t.Errorf("search text:\n%s", b.String())
	}
	b.Reset()
	if err := rv.WriteSearchJSON(&b, "baz"); err != nil {
		t.Fatal(err)
	}
	var sj struct {
		Projects []struct{ Project string }
		Paths    []projectEntryJSON
	}
	if err := json.Unmarshal(b.Bytes(), &sj); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	// baz is held: no stable file, no page; its one path is its file.
	if len(sj.Projects) != 1 || sj.Projects[0].Project != "baz" || len(sj.Paths) != 1 || sj.Paths[0].Uploaded != "2020-05-01T00:00:00Z" {
		t.Errorf("search JSON: %+v", sj)
	}
}

// TestReviewRealSample reviews a first ceremony over the real PyPI sample:
// every entry is in exactly one project's drill-down, and a real project
// is found by a prefix of its name and by its file's name.
func TestReviewRealSample(t *testing.T) {
	f, err := os.Open(filepath.Join("export", "testdata", "pypi-files-sample.jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := export.ReadSample(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	gen := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := newCeremony(t)
	cfg := c.config(exportOfRecords(t, gen, rs), "")
	cfg.Now = gen
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rv, err := d.Review()
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	checkCovers(t, d, rv)
	if len(rv.Projects()) < 100 {
		t.Fatalf("%d projects", len(rv.Projects()))
	}
	r := rs[len(rs)/2]
	hit := false
	for _, p := range rv.FindProjects(strings.ToUpper(r.Project[:len(r.Project)-1])) {
		hit = hit || p.Project == r.Project
	}
	if !hit {
		t.Errorf("%s not found by the prefix of its name", r.Project)
	}
	var paths []string
	rv.FindPaths(r.Filename, func(e *DiffEntry) error { paths = append(paths, e.Path); return nil })
	if len(paths) != 1 || paths[0] != r.Path {
		t.Errorf("%s: found %v", r.Filename, paths)
	}
	v, err := rv.Project(r.Project)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	v.WriteProjectText(&b)
	if !strings.Contains(b.String(), r.Filename) || !strings.Contains(b.String(), r.UploadTime.Format(time.RFC3339)) {
		t.Errorf("drill-down of %s lacks %s or its upload time:\n%s", r.Project, r.Filename, b.String())
	}
}

// checkIndexFromPass asserts that the pass wrote the review index (the
// room opens a project without a walk over the diff) and that it is,
// byte for byte, the index made afterwards from Diff.Entries.
func checkIndexFromPass(t *testing.T, d *Diff) {
	t.Helper()
	if !d.run.reviewBuilt {
		t.Fatal("the pass did not write the review index")
	}
	read := func() (idx, ent []byte) {
		t.Helper()
		var err error
		if idx, err = os.ReadFile(filepath.Join(d.run.work, reviewIndexName)); err != nil {
			t.Fatal(err)
		}
		if ent, err = os.ReadFile(filepath.Join(d.run.work, reviewEntriesName)); err != nil {
			t.Fatal(err)
		}
		return idx, ent
	}
	idx, ent := read()
	if len(ent) == 0 {
		t.Fatal("empty review entries")
	}
	sum, err := d.run.buildReviewIndex(d)
	if err != nil {
		t.Fatal(err)
	}
	idx2, ent2 := read()
	if !bytes.Equal(idx, idx2) || !bytes.Equal(ent, ent2) || sum != d.run.reviewSum {
		t.Errorf("the pass's review index (%d + %d bytes) differs from the one made from the entries (%d + %d)", len(idx), len(ent), len(idx2), len(ent2))
	}
}

// TestReviewIndexFromPass: the second ceremony of the pipeline test and a
// synthetic second period (changed, backdated, removed, legacy names,
// pages changed and removed): the index the pass wrote is the one made
// from the diff's entries.
func TestReviewIndexFromPass(t *testing.T) {
	checkIndexFromPass(t, secondDiff(t))
	var e1, e2 bytes.Buffer
	if err := synth.Generate(&e1, synth.Params{Seed: 5, Files: 3000}); err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Next(bytes.NewReader(e1.Bytes()), &e2, synth.NextParams{Seed: 5, NewFiles: 60, Deletions: 5, ChangedHash: 3, Backdated: 3}); err != nil {
		t.Fatal(err)
	}
	c := newCeremony(t)
	out1 := filepath.Join(t.TempDir(), "one")
	cfg := c.config(e1.Bytes(), "")
	cfg.Now = synth.DefaultGenerated
	d1, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkIndexFromPass(t, d1)
	d1.Close()
	cfg = c.config(e1.Bytes(), "")
	cfg.Now = synth.DefaultGenerated
	c.sign(t, cfg, out1)
	cfg = c.config(e2.Bytes(), out1)
	cfg.Now = synth.DefaultGenerated.Add(90 * 24 * time.Hour)
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkIndexFromPass(t, d)
}

// syntheticPeriods signs a first ceremony over a synthetic export of 3,000
// files (seed), at synth.DefaultGenerated, and returns the ceremony, its
// output and the next period's export, made by synth.Next with np, with
// what it injected.
func syntheticPeriods(t *testing.T, seed uint64, np synth.NextParams) (c *ceremony, out1 string, e2 []byte, inj synth.Injected) {
	t.Helper()
	var b1, b2 bytes.Buffer
	if err := synth.Generate(&b1, synth.Params{Seed: seed, Files: 3000}); err != nil {
		t.Fatal(err)
	}
	inj, err := synth.Next(bytes.NewReader(b1.Bytes()), &b2, np)
	if err != nil {
		t.Fatal(err)
	}
	c = newCeremony(t)
	out1 = filepath.Join(t.TempDir(), "one")
	cfg := c.config(b1.Bytes(), "")
	cfg.Now = synth.DefaultGenerated
	c.sign(t, cfg, out1)
	return c, out1, b2.Bytes(), inj
}

// TestReviewSyntheticNext reviews a synthetic second period with injected
// changes, backdated files and deletions: each is found by its path with
// its category, and a backdated file shows the time it claims.
func TestReviewSyntheticNext(t *testing.T) {
	c, out1, e2, inj := syntheticPeriods(t, 4, synth.NextParams{Seed: 4, NewFiles: 60, Deletions: 5, ChangedHash: 3, Backdated: 3})
	cfg := c.config(e2, out1)
	cfg.Now = synth.DefaultGenerated.Add(90 * 24 * time.Hour)
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rv, err := d.Review()
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	checkCovers(t, d, rv)
	claimed := synth.DefaultGenerated.Add(-synth.BackdatedAge)
	for _, c := range []struct {
		paths []string
		label string
	}{{inj.Changed, "changed kept-old"}, {inj.Backdated, "held backdated"}, {inj.Deleted, "removed"}} {
		if len(c.paths) == 0 {
			t.Fatalf("nothing injected for %s", c.label)
		}
		for _, p := range c.paths {
			var got []*DiffEntry
			rv.FindPaths(p, func(e *DiffEntry) error { e2 := *e; got = append(got, &e2); return nil })
			if len(got) != 1 || got[0].label() != c.label {
				t.Fatalf("%s: found %d, want one %s", p, len(got), c.label)
			}
			if c.label == "held backdated" && !got[0].Uploaded.Equal(claimed) {
				t.Errorf("%s claims %v, want %v", p, got[0].Uploaded, claimed)
			}
			if v, err := rv.Project(got[0].Project); err != nil || len(v.Entries) < 1 {
				t.Errorf("%s: drill-down of %s: %v", p, got[0].Project, err)
			}
		}
	}
}

// TestReviewIndexRefusals edits the work files as an attacker on the
// laptop's disk would, between the pass and the room's drill-down: each
// edit is refused, naming the file and the offset.
func TestReviewIndexRefusals(t *testing.T) {
	d := secondDiff(t)
	rv, err := d.Review()
	if err != nil {
		t.Fatal(err)
	}
	rv.Close()
	idxPath := filepath.Join(d.run.work, reviewIndexName)
	entPath := filepath.Join(d.run.work, reviewEntriesName)
	idx, _ := os.ReadFile(idxPath)
	ent, _ := os.ReadFile(entPath)
	restore := func() {
		os.WriteFile(idxPath, idx, 0o600)
		os.WriteFile(entPath, ent, 0o600)
	}
	// Well formed, trailer made again: only the pass's digest tells.
	reseal := func(b []byte) []byte {
		b = append([]byte(nil), b[:len(b)-32]...)
		s := sha256.Sum256(b)
		return append(b, s[:]...)
	}
	_, ps, _ := parseReviewIndex("x", idx)
	recOff := len(reviewIndexMagic) + 32 // the first record
	for i := range ps[:1] {
		recOff += 2 + len(ps[i].Project)
	}
	// The first record's hash, swapped for another project's bytes' hash.
	edited := append([]byte(nil), idx...)
	copy(edited[recOff+24:], ps[1].SHA256[:])
	edited = reseal(edited)

	// An entry made to read as kept old while its bytes say accepted:
	// the same length, another content.
	entEdited := bytes.Replace(ent, []byte("changed\tkept-old"), []byte("changed\taccepted"), 1)
	if bytes.Equal(entEdited, ent) {
		t.Fatal("no change to edit")
	}
	for _, c := range []struct {
		name         string
		index, entry []byte
		open, read   string
	}{
		{"index truncated", idx[:len(idx)-20], ent, reviewIndexName + ": offset ", ""},
		{"index cut in a record", idx[:recOff+10], ent, "truncated", ""},
		{"index edited", edited, ent, "but the pass wrote", ""},
		{"index one byte more", append(append([]byte(nil), idx...), 0), ent, "1 bytes after the trailer", ""},
		{"entries edited", idx, entEdited, "", reviewEntriesName + ": offset "},
		{"entries truncated", idx, ent[:len(ent)-5], "", "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer restore()
			os.WriteFile(idxPath, c.index, 0o600)
			os.WriteFile(entPath, c.entry, 0o600)
			rv, err := d.Review()
			if c.open != "" {
				if !errors.Is(err, ErrReviewIndex) || !strings.Contains(err.Error(), c.open) || !strings.Contains(err.Error(), idxPath) {
					t.Fatalf("open: %v, want %q naming %s", err, c.open, idxPath)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rv.Close()
			var first error
			for _, p := range rv.Projects() {
				if _, err := rv.Project(p.Project); err != nil {
					first = err
					break
				}
			}
			if !errors.Is(first, ErrReviewIndex) || !strings.Contains(first.Error(), c.read) || !strings.Contains(first.Error(), entPath) {
				t.Fatalf("read: %v, want %q naming %s", first, c.read, entPath)
			}
			if err := rv.FindPaths("x", func(*DiffEntry) error { return nil }); !errors.Is(err, ErrReviewIndex) {
				t.Errorf("path search over the edited entries: %v", err)
			}
		})
	}
	// Restored: accepted again.
	rv, err = d.Review()
	if err != nil {
		t.Fatal(err)
	}
	rv.Close()
}

// FuzzReviewIndex: the parser never panics, and what it accepts encodes
// back to the same bytes.
func FuzzReviewIndex(f *testing.F) {
	dg := sha256.Sum256([]byte("digest"))
	ps := []ReviewProject{{Project: "", Offset: 90, Length: 10, Entries: 1}, {Project: "bar", Offset: 0, Length: 50, Entries: 2}, {Project: "foo", Offset: 50, Length: 40, Entries: 3}}
	good := encodeReviewIndex(dg, ps)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(encodeReviewIndex(dg, nil))
	bad := append([]byte(nil), good...)
	binary.BigEndian.PutUint64(bad[len(reviewIndexMagic)+32+2:], 5)
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		dg, ps, err := parseReviewIndex("fuzz", b)
		if err != nil {
			if !errors.Is(err, ErrReviewIndex) || !strings.HasPrefix(err.Error(), "fuzz: offset ") {
				t.Fatalf("error %v", err)
			}
			return
		}
		if again := encodeReviewIndex(dg, ps); !bytes.Equal(again, b) {
			t.Fatalf("parse then encode differs")
		}
	})
}

// resealReview rewrites a kept pass's review entries as an attacker who
// can run our code would: edit gets each project's lines (nil for a
// project whose record is dropped) and returns them; the records are made
// again and the index encoded with its own digests, naming the diff.
func resealReview(t *testing.T, dir string, edit func(project string, lines []string) []string) {
	t.Helper()
	ib, err := os.ReadFile(filepath.Join(dir, reviewIndexName))
	if err != nil {
		t.Fatal(err)
	}
	digest, ps, err := parseReviewIndex("index", ib)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := os.ReadFile(filepath.Join(dir, reviewEntriesName))
	if err != nil {
		t.Fatal(err)
	}
	// In the entries' order (the pass's buckets).
	slices.SortFunc(ps, func(a, b ReviewProject) int { return cmp.Compare(a.Offset, b.Offset) })
	var entries bytes.Buffer
	var out []ReviewProject
	for _, p := range ps {
		lines := strings.SplitAfter(string(eb[p.Offset:p.Offset+p.Length]), "\n")
		lines = edit(p.Project, lines[:len(lines)-1])
		if lines == nil {
			continue
		}
		np := ReviewProject{Project: p.Project, Offset: int64(entries.Len()), Entries: int64(len(lines))}
		for _, l := range lines {
			entries.WriteString(l)
		}
		np.Length = int64(entries.Len()) - np.Offset
		np.SHA256 = sha256.Sum256(entries.Bytes()[np.Offset:])
		out = append(out, np)
	}
	if err := os.WriteFile(filepath.Join(dir, reviewEntriesName), entries.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b ReviewProject) int { return strings.Compare(a.Project, b.Project) })
	if err := os.WriteFile(filepath.Join(dir, reviewIndexName), encodeReviewIndex(digest, out), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReviewKeptPass: `stable review` over the pass `stable diff` kept
// opens the same projects as the pass that wrote it; the attacker with
// the laptop's disk who edits the kept review (and seals the index again
// with its own digests) is refused when the review opens, naming the
// project: a red flag hidden (a backdated file shown as too young), a
// version changed, a project's row dropped, a project's bytes edited
// under an untouched index, the index naming another diff.
func TestReviewKeptPass(t *testing.T) {
	f := newReviewedFixture(t)
	fresh, err := ComputeDiff(f.config(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	frv, err := fresh.Review()
	if err != nil {
		t.Fatal(err)
	}
	defer frv.Close()

	// With Config.ReviewKept the check's walk spills the review's lines
	// (stable review --pass); without, Review walks the entries again:
	// the same index either way, and the same refusals.
	kept := func(work string, spill bool) Config {
		cfg := f.config(work)
		cfg.ReviewKept = spill
		return cfg
	}
	for _, spill := range []bool{false, true} {
		work, _, digest := f.keep(t)
		d, err := OpenReviewed(kept(work, spill), digest)
		if err != nil {
			t.Fatal(err)
		}
		if d.run.reviewSpilled != spill {
			t.Fatalf("ReviewKept %v: the walk spilled %v", spill, d.run.reviewSpilled)
		}
		rv, err := d.Review()
		if err != nil {
			t.Fatalf("the untouched kept pass (ReviewKept %v): %v", spill, err)
		}
		if !slices.Equal(rv.Projects(), frv.Projects()) {
			t.Errorf("kept review projects %+v, the pass's %+v", rv.Projects(), frv.Projects())
		}
		for _, p := range []string{"foo", "bar", "baz", "qux", "zed"} {
			a, err := rv.Project(p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := frv.Project(p)
			var ta, tb bytes.Buffer
			a.WriteProjectText(&ta)
			b.WriteProjectText(&tb)
			if ta.String() != tb.String() {
				t.Errorf("project %s from the kept pass (ReviewKept %v):\n%s\nfrom the pass:\n%s", p, spill, ta.String(), tb.String())
			}
		}
		rv.Close()
		d.Close()
	}

	field := func(project, path string, i int, value string) func(string, []string) []string {
		return func(p string, lines []string) []string {
			if p != project {
				return lines
			}
			for k, l := range lines {
				fs := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
				if fs[2] == path {
					fs[i] = value
					lines[k] = strings.Join(fs, "\t") + "\n"
				}
			}
			return lines
		}
	}
	for name, tc := range map[string]struct {
		edit func(t *testing.T, dir string)
		want []string
	}{
		"flag hidden": {func(t *testing.T, dir string) {
			resealReview(t, dir, field("baz", rec(baz1).Path, 1, reasonTooYoung))
		}, []string{"project baz: the kept index records 1 entries"}},
		"version changed": {func(t *testing.T, dir string) {
			resealReview(t, dir, field("qux", rec(qux3).Path, 8, "2.9"))
		}, []string{"project qux: the kept index records"}},
		"project row dropped": {func(t *testing.T, dir string) {
			resealReview(t, dir, func(p string, lines []string) []string {
				if p == "zed" {
					return nil
				}
				return lines
			})
		}, []string{"project zed (", "has no record in the kept index"}},
		"entries edited under the index": {func(t *testing.T, dir string) {
			editWorkLine(t, filepath.Join(dir, reviewEntriesName), rec(qux3).Path, 8, "3.1")
		}, []string{"project qux's", "review-entries.kept"}},
		"index names another diff": {func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, reviewIndexName))
			_, ps, _ := parseReviewIndex("index", b)
			os.WriteFile(filepath.Join(dir, reviewIndexName), encodeReviewIndex(sha256.Sum256([]byte("other")), ps), 0o600)
		}, []string{"the kept index names diff"}},
		"index removed": {func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, reviewIndexName))
		}, []string{reviewIndexName}},
	} {
		for _, spill := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ReviewKept=%v", name, spill), func(t *testing.T) {
				work, _, digest := f.keep(t)
				tc.edit(t, ReviewedDir(work, digest))
				d, err := OpenReviewed(kept(work, spill), digest)
				if err != nil {
					t.Fatal(err) // the review files are not what signing checks
				}
				defer d.Close()
				rv, err := d.Review()
				if err == nil {
					rv.Close()
					t.Fatal("the edited review opened")
				}
				if !errors.Is(err, ErrPassEdited) || !errors.Is(err, ErrReviewIndex) {
					t.Fatalf("got %v, want ErrPassEdited and ErrReviewIndex", err)
				}
				if testing.Verbose() {
					t.Log(err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
			})
		}
	}
}

// reviewFields, the reference newReviewItem is held to, returns the path and project (empty for "-") of a review
// line, the third and fourth of its 11 tab-separated fields; as the
// sort once found them.
func reviewFields(line string) (path, project string, err error) {
	var f [4]string
	rest := line
	for i := range f {
		j := strings.IndexByte(rest, '\t')
		if j < 0 {
			return "", "", errSpill
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	if strings.Count(rest, "\t") != 6 {
		return "", "", errSpill
	}
	if f[3] == "-" {
		f[3] = ""
	}
	return f[2], f[3], nil
}

// TestCompareReviewItems: the sort's comparison of items, with their base
// names and page marks found once, orders every pair as reviewPathKey
// does on the paths.
func TestCompareReviewItems(t *testing.T) {
	paths := []string{
		"packages/ab/cd/ef/foo-1.0.tar.gz", "packages/01/cd/ef/foo-1.0.tar.gz", "packages/ab/cd/ef/foo-1.10.tar.gz",
		"packages/ab/cd/ef/foo-1.9.tar.gz", "packages/ab/cd/ef/foo-01.9.tar.gz", "packages/ab/cd/ef/foo-1.9-py3-none-any.whl",
		"packages/ff/cd/ef/Foo-1.9.tar.gz", "packages/ab/cd/ef/foo.tar.gz", "packages/ab/cd/ef/foo-1.0a1.tar.gz",
		"simple/foo/index.html", "simple/foo/index.json", "simple/foo/", "packages/ab/cd/ef/foo-1.0.zip",
		"packages/00/00/00/9", "packages/00/00/00/10", "packages/00/00/01/10",
		"", "/", "simple//", "a/b/", "x",
		"packages/ab/cd/ef/foo-1.0\x01.tar.gz", "packages/ab/cd/ef/foo-1.0.tar.gz\x7f", "packages/ab/cd/ef/foo-" + strings.Repeat("9", 300) + ".tar.gz",
		"packages/ab/cd/ef/foo-" + strings.Repeat("0", 300) + "9.tar.gz", "packages/ab/cd/ef/foo-1.0-\u00e9.tar.gz",
	}
	for _, line := range []string{"x\t-\tsimple/p/index.html\tp\t-\t-\t-\t-\t-\t-\t-\n", "x\t-\tpackages/a/b\t-\t-\t-\t-\t-\t-\t-\t-\n",
		"x\t-\tp\tq\t-\t-\t-\t-\t-\t-\n", "x\t-\tp\tq\t-\t-\t-\t-\t-\t-\t-\t-\n", "x\t-\tp", ""} {
		it, err := newReviewItem(line, &reviewKeys{})
		p, proj, rerr := reviewFields(line)
		if (err != nil) != (rerr != nil) || err == nil && (it.pathOf() != p || it.projectOf() != proj) {
			t.Errorf("%q: item %q %q %v, reviewFields %q %q %v", line, it.pathOf(), it.projectOf(), err, p, proj, rerr)
		}
	}
	var keys reviewKeys
	for _, a := range paths {
		for _, b := range paths {
			ia, err := newReviewItem("x\t-\t"+a+"\tfoo\t-\t-\t-\t-\t-\t-\t-\n", &keys)
			if err != nil {
				t.Fatal(err)
			}
			ib, err := newReviewItem("x\t-\t"+b+"\tfoo\t-\t-\t-\t-\t-\t-\t-\n", &keys)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := compareReviewItems(&ia, &ib), reviewPathKey(a, b); got != want {
				t.Errorf("%s vs %s: %d, reviewPathKey %d", a, b, got, want)
			}
		}
	}
}

// TestVersionKey: the version keys' bytewise order is CompareVersions'
// (and equal keys are names CompareVersions calls equal), on names that
// share prefixes ending in and between runs of digits, leading zeros
// included; a name with a control byte or a run of more than 255
// significant digits has no key.
func TestVersionKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := "0019a.-_!~\u00e9"
	name := func() string {
		b := []byte("foo-")
		for n := rng.IntN(8); n > 0; n-- {
			b = append(b, alpha[rng.IntN(len(alpha))])
		}
		return string(b)
	}
	names := []string{"", "0", "00", "1", "10", "01", "a", "a1", "1a", "!", "~", "1!", "a!", "a.", "a.1", "ab1", "ab.1", "a1b", "a01b",
		"foo-1.10", "foo-1.9", "foo-1.09", "foo-1.9a", "foo-1.9.0", "foo-1.9-", "foo-1.9_", "foo-1.9~", "foo-1.9.tar.gz", "foo-1.9-py3-none-any.whl",
		strings.Repeat("1", 255), "0" + strings.Repeat("1", 255), strings.Repeat("9", 254)}
	for range 3000 {
		names = append(names, name())
	}
	keys := make([][]byte, len(names))
	for i, n := range names {
		k, ok := appendVersionKey(nil, n)
		if !ok {
			t.Fatalf("%q has no key", n)
		}
		keys[i] = k
	}
	for i, a := range names {
		for j := range names {
			if i >= 40 && (j < i-40 || j > i+40) {
				continue
			}
			if got, want := bytes.Compare(keys[i], keys[j]), CompareVersions(a, names[j]); got != want {
				t.Fatalf("%q vs %q: keys %d, CompareVersions %d", a, names[j], got, want)
			}
		}
	}
	for _, n := range []string{"foo\x00", "foo-1.0\t", "\x1f", "1." + strings.Repeat("7", 256), strings.Repeat("0", 9) + strings.Repeat("7", 256)} {
		if _, ok := appendVersionKey(nil, n); ok {
			t.Errorf("%q has a key", n)
		}
	}
}

// TestReviewBucketMerged: a bucket sorted in runs and merged
// (mergeReviewRuns, a bucket over reviewRunMax) gives the bytes and
// project records of the whole sort, page lines included, and leaves no
// run behind; so does the pass's index with every bucket merged.
func TestReviewBucketMerged(t *testing.T) {
	var exp bytes.Buffer
	if err := synth.Generate(&exp, synth.Params{Seed: 6, Files: 3000}); err != nil {
		t.Fatal(err)
	}
	c := newCeremony(t)
	cfg := c.config(exp.Bytes(), "")
	cfg.Now = synth.DefaultGenerated
	prev := reviewRunMax
	defer func() { reviewRunMax = prev }()
	reviewRunMax = 2 << 10
	d, err := ComputeDiff(cfg)
	reviewRunMax = prev
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The pass, every bucket over the limit: the same index as one made
	// from Diff.Entries with every bucket sorted whole.
	checkIndexFromPass(t, d)
	es, err := os.ReadDir(d.run.work)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), reviewPartKind) || strings.HasPrefix(e.Name(), reviewSortedKind) {
			t.Errorf("work file %s left", e.Name())
		}
	}
	// One bucket of every line, in hundreds of runs.
	var data []byte
	var extra []string
	var line []byte
	if err := d.Entries(func(e *DiffEntry) error {
		line = e.appendCanonical(line[:0])
		line = appendWorkLine(line[:0], line, e.Version, e.Legacy, e.Uploaded)
		if strings.HasPrefix(e.Path, pagesPrefix) && len(extra) < 40 {
			extra = append(extra, string(line))
		} else {
			data = append(data, line...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Lines whose file names are another line's, in another directory,
	// at the end: ordered by path within their name.
	for i, l := range strings.SplitAfter(string(data), "\n")[:300] {
		if i%3 == 0 && strings.Contains(l, "\tpackages/") {
			data = append(data, strings.Replace(l, "\tpackages/", fmt.Sprintf("\tpackages/%d/", i%2), 1)...)
		}
	}
	var whole bytes.Buffer
	wps, wn, err := sortReviewBucket(string(data), extra, &whole, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	part := filepath.Join(dir, "reviewpart-000")
	if err := os.WriteFile(part, data, 0o600); err != nil {
		t.Fatal(err)
	}
	reviewRunMax = 2 << 10
	f, err := os.Open(part)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	first, done, err := readLineChunk(br, reviewRunMax, 0)
	if err != nil || done {
		t.Fatalf("first run: done %v, %v", done, err)
	}
	var merged bytes.Buffer
	mps, mn, err := mergeReviewRuns(part, first, br, extra, &merged)
	if err != nil {
		t.Fatal(err)
	}
	if len(wps) < 5 || int(wn) != len(data)+len(strings.Join(extra, "")) {
		t.Fatalf("the whole sort: %d projects, %d bytes", len(wps), wn)
	}
	if !bytes.Equal(merged.Bytes(), whole.Bytes()) || mn != wn || !slices.Equal(mps, wps) {
		t.Errorf("merged: %d bytes, %d projects; the whole sort: %d bytes, %d projects", mn, len(mps), wn, len(wps))
	}
	if es, err = os.ReadDir(dir); err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Errorf("%d files left, want the part only", len(es))
	}
}

// TestReviewBucketLength: a bucket sorted into review-entries must fill
// exactly the bytes its part and page lines were given there; one that
// does not (a part that changed under the pass) is a corrupt work file,
// and its part is kept for the error's sake, not removed.
func TestReviewBucketLength(t *testing.T) {
	d := secondDiff(t)
	r := d.run
	lines := "A\tfoo-1.0.tar.gz\tpackages/aa/foo-1.0.tar.gz\tfoo\t-\t-\t-\t-\t1.0\t-\t-\n" +
		"A\tbar-2.0.tar.gz\tpackages/bb/bar-2.0.tar.gz\tbar\t-\t-\t-\t-\t2.0\t-\t-\n"
	part := r.bucketPath(reviewPartKind, 7)
	for _, tc := range []struct {
		want  int64
		fails bool
	}{{int64(len(lines)), false}, {int64(len(lines)) + 1, true}, {int64(len(lines)) - 1, true}} {
		if err := os.WriteFile(part, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err := r.reviewBucket(7, nil, &out, tc.want)
		if tc.fails {
			if !errors.Is(err, errSpill) {
				t.Errorf("want %d bytes of %d: %v, want a corrupt work file", tc.want, len(lines), err)
			}
			if _, err := os.Stat(part); err != nil {
				t.Errorf("want %d bytes: the part is gone: %v", tc.want, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("want %d bytes: %v", tc.want, err)
		}
		if out.Len() != len(lines) || len(r.reviewParts[7]) != 2 || r.reviewSizes[7] != int64(len(lines)) {
			t.Errorf("%d bytes sorted, %d projects, size %d", out.Len(), len(r.reviewParts[7]), r.reviewSizes[7])
		}
		if !strings.HasPrefix(out.String(), "A\tbar-2.0") {
			t.Errorf("not sorted by project: %q", out.String())
		}
	}
}
