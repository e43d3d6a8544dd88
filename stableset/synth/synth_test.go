package synth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

func generate(t testing.TB, p Params) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Generate(&buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t testing.TB, data []byte) (export.Header, []export.Record) {
	t.Helper()
	x, err := export.NewReader(bytes.NewReader(data), "synth")
	if err != nil {
		t.Fatal(err)
	}
	var rs []export.Record
	for {
		r, err := x.Next()
		if err == io.EOF {
			return x.Header(), rs
		}
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, *r)
	}
}

func TestGenerateDeterministicAndValid(t *testing.T) {
	a := generate(t, Params{Seed: 7, Files: 5000})
	b := generate(t, Params{Seed: 7, Files: 5000})
	c := generate(t, Params{Seed: 8, Files: 5000})
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different exports")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same export")
	}
	h, rs := readAll(t, a)
	if len(rs) != 5000 || h.Generated != DefaultGenerated || h.Repository != "pypi" {
		t.Fatalf("header %+v, %d records", h, len(rs))
	}
	for _, n := range []int64{0, 1, 2, 3} {
		_, rs := readAll(t, generate(t, Params{Seed: 1, Files: n}))
		if int64(len(rs)) != n {
			t.Errorf("Files %d: read %d records", n, len(rs))
		}
	}
}

func TestProjectNamesUnique(t *testing.T) {
	seen := map[string]uint64{}
	for id := uint64(0); id < 500000; id++ { // across the 3- to 4-syllable boundary at 75³
		name, dist := projectName(3, id)
		if other, ok := seen[name]; ok {
			t.Fatalf("ids %d and %d are both %q", other, id, name)
		}
		seen[name] = id
		if export.NormalizeProject(dist) != name || export.NormalizeProject(name) != name {
			t.Fatalf("id %d: name %q, dist %q", id, name, dist)
		}
	}
}

func TestPermutation(t *testing.T) {
	for _, n := range []uint64{1, 2, 5, 1000, 4097} {
		p := newPermutation(n, 9)
		seen := make([]bool, n)
		for i := range n {
			j := p.at(i)
			if j >= n || seen[j] {
				t.Fatalf("n=%d: at(%d) = %d repeats or is out of range", n, i, j)
			}
			seen[j] = true
		}
	}
}

// Filename shapes, as the real sample has them.
var (
	sdistShape = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*-[0-9][A-Za-z0-9.+!]*\.(tar\.gz|zip)$`)
	wheelShape = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._]*-[0-9][A-Za-z0-9.+!]*(-[0-9][^-]*)?-[a-z0-9_.]+-[a-z0-9_.]+-[a-z0-9_.]+\.whl$`)
)

func kind(filename string) string {
	switch {
	case strings.HasSuffix(filename, "-none-any.whl"):
		return "pure wheel"
	case strings.HasSuffix(filename, ".whl"):
		return "binary wheel"
	}
	return "sdist"
}

// logStats returns the median and standard deviation of log sizes.
func logStats(sizes []float64) (median, sigma float64) {
	ls := make([]float64, len(sizes))
	var mean float64
	for i, s := range sizes {
		ls[i] = math.Log(s)
		mean += ls[i]
	}
	mean /= float64(len(ls))
	for _, l := range ls {
		sigma += (l - mean) * (l - mean)
	}
	sort.Float64s(ls)
	return math.Exp(ls[len(ls)/2]), math.Sqrt(sigma / float64(len(ls)))
}

// TestLooksLikePyPI compares a generated export with the real sample in
// ../testdata: every filename has a shape the sample has, the log-normal
// sizes of sdists, pure wheels and binary wheels are close to the sample's,
// and project sizes are long-tailed.
func TestLooksLikePyPI(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "export", "testdata", "pypi-files-sample.jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	real := map[string][]float64{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var s struct {
			Filename string  `json:"filename"`
			Size     float64 `json:"size"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		if !sdistShape.MatchString(s.Filename) && !wheelShape.MatchString(s.Filename) {
			t.Fatalf("the shapes do not cover the real filename %q", s.Filename)
		}
		real[kind(s.Filename)] = append(real[kind(s.Filename)], s.Size)
	}
	_, rs := readAll(t, generate(t, Params{Seed: 11, Files: 50000}))
	synth := map[string][]float64{}
	perProject := map[string]int{}
	years := map[int]int{}
	yanked := 0
	legacy := map[export.Legacy]int{}
	nLegacy := 0
	for _, r := range rs {
		if r.Legacy != 0 {
			// A small share of old sdists have legacy names, as real
			// PyPI's do; the reader flags them.
			nLegacy++
			for _, k := range r.Legacy.Kinds() {
				legacy[k]++
			}
			if r.UploadTime.Year() >= legacyBefore || strings.HasSuffix(r.Filename, ".whl") {
				t.Errorf("legacy name %q (%s) on a wheel or a recent file", r.Filename, r.Legacy)
			}
		} else if !sdistShape.MatchString(r.Filename) && !wheelShape.MatchString(r.Filename) {
			t.Errorf("generated filename %q has no real shape", r.Filename)
		}
		synth[kind(r.Filename)] = append(synth[kind(r.Filename)], float64(r.Length))
		perProject[r.Project]++
		years[r.UploadTime.Year()]++
		if r.Yanked {
			yanked++
		}
	}
	for _, k := range []string{"sdist", "pure wheel", "binary wheel"} {
		rm, rsd := logStats(real[k])
		sm, ssd := logStats(synth[k])
		t.Logf("%-12s real: n=%5d median %9.0f sigma %.2f   synthetic: n=%5d median %9.0f sigma %.2f", k, len(real[k]), rm, rsd, len(synth[k]), sm, ssd)
		if sm/rm > 4 || rm/sm > 4 || math.Abs(ssd-rsd) > 0.7 {
			t.Errorf("%s sizes differ too much from the sample", k)
		}
	}
	counts := make([]int, 0, len(perProject))
	for _, n := range perProject {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	median, top := counts[len(counts)/2], counts[len(counts)-1]
	t.Logf("%d projects, files per project: median %d, max %d; yanked %d; files per year %v", len(counts), median, top, yanked, years)
	if top < 50*median {
		t.Errorf("project sizes are not long-tailed: median %d, max %d", median, top)
	}
	t.Logf("legacy names: %d of %d files, by kind %v", nLegacy, len(rs), legacy)
	if share := float64(nLegacy) / float64(len(rs)); share < 0.0003 || share > 0.005 {
		t.Errorf("legacy names are %.3f %% of the files, want about 0.1 %%", 100*share)
	}
	for _, k := range []export.Legacy{export.LegacyVersion, export.LegacySpelling, export.LegacySeparator, export.LegacyNoVersion, export.LegacyMismatch} {
		if legacy[k] == 0 {
			t.Errorf("no legacy name of kind %s", k)
		}
	}
	if yanked == 0 || len(years) < 15 {
		t.Errorf("yanked %d, %d distinct years", yanked, len(years))
	}
}

func TestNext(t *testing.T) {
	prevData := generate(t, Params{Seed: 5, Files: 20000})
	np := NextParams{Seed: 6, NewFiles: 2000, Deletions: 10, ChangedHash: 3, Backdated: 2}
	var out bytes.Buffer
	inj, err := Next(bytes.NewReader(prevData), &out, np)
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if _, err := Next(bytes.NewReader(prevData), &again, np); err != nil || !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Fatalf("Next is not deterministic (%v)", err)
	}
	ph, prev := readAll(t, prevData)
	nh, next := readAll(t, out.Bytes())
	if nh.Generated != ph.Generated.Add(90*24*time.Hour) {
		t.Errorf("generated %v, want 90 days after %v", nh.Generated, ph.Generated)
	}
	if len(inj.Changed) != 3 || len(inj.Backdated) != 2 || len(inj.Deleted) != 10 {
		t.Fatalf("injected %+v", inj)
	}
	if len(next) != len(prev)-10+2000+2 {
		t.Fatalf("next has %d records, want %d", len(next), len(prev)-10+2000+2)
	}
	byPath := func(rs []export.Record) map[string]export.Record {
		m := make(map[string]export.Record, len(rs))
		for _, r := range rs {
			m[r.Path] = r
		}
		return m
	}
	pm, nm := byPath(prev), byPath(next)
	for _, p := range inj.Changed {
		a, b := pm[p], nm[p]
		if a.Path == "" || b.Path == "" || a.SHA256 == b.SHA256 || a.Length == b.Length {
			t.Errorf("changed %s: before %+v after %+v", p, a, b)
		}
	}
	for _, p := range inj.Deleted {
		if _, ok := nm[p]; ok {
			t.Errorf("deleted %s is still there", p)
		}
	}
	for _, p := range inj.Backdated {
		r, ok := nm[p]
		if _, old := pm[p]; old || !ok || !r.UploadTime.Before(ph.Generated) {
			t.Errorf("backdated %s: %+v (in previous: %v)", p, r, old)
		}
		if _, known := majorsOf(prev)[r.Project]; !known {
			t.Errorf("backdated %s is not in an existing project", p)
		}
	}
	// Everything else new was uploaded during the period.
	added, newProjects := 0, 0
	known := majorsOf(prev)
	for _, r := range next {
		if _, ok := pm[r.Path]; ok || slices.Contains(inj.Backdated, r.Path) {
			continue
		}
		added++
		if !r.UploadTime.After(ph.Generated) || r.UploadTime.After(nh.Generated) {
			t.Errorf("new file %s uploaded at %v", r.Path, r.UploadTime)
		}
		if _, ok := known[r.Project]; !ok {
			newProjects++
		}
	}
	if added != 2000 || newProjects == 0 || newProjects == added {
		t.Errorf("added %d files, %d in new projects", added, newProjects)
	}
	// Next of Next works too.
	if _, err := Next(bytes.NewReader(out.Bytes()), io.Discard, np); err != nil {
		t.Fatal(err)
	}
	// A broken previous export is refused.
	if _, err := Next(bytes.NewReader(prevData[:len(prevData)-2]), io.Discard, np); err == nil {
		t.Fatal("truncated previous export accepted")
	}
}

func majorsOf(rs []export.Record) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.Project] = true
	}
	return m
}

func BenchmarkGenerate(b *testing.B) {
	const n = 100000
	b.ReportAllocs()
	for b.Loop() {
		if err := Generate(io.Discard, Params{Seed: 1, Files: n}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// quantile returns the q-quantile (0 to 1) of xs, which it sorts.
func quantile(xs []int, q float64) int {
	slices.Sort(xs)
	return xs[int(q*float64(len(xs)-1))]
}

// TestDistributionsMatchSample checks the generator against the real
// sample (../export/testdata, a copy of ../shared/data) and PyPI's
// published size, on the quantities that shape metadata and pages: the
// length of project names and of filenames of each kind (they make up
// most of a target entry's bytes), files per release and per project,
// and how upload times spread (what the policy's minimum age sees). The
// sample comes from lock files, so it leans to active projects and
// recent releases: the bounds are loose, and upload times are compared
// with PyPI's rate of new files rather than the sample's years.
func TestDistributionsMatchSample(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "export", "testdata", "pypi-files-sample.jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	type stats struct {
		names    []int            // project name lengths
		fnames   map[string][]int // filename lengths by kind
		release  map[string]int   // files per project and version
		projects map[string]int   // files per project
	}
	newStats := func() *stats {
		return &stats{fnames: map[string][]int{}, release: map[string]int{}, projects: map[string]int{}}
	}
	add := func(s *stats, project, version, filename string) {
		if s.projects[project] == 0 {
			s.names = append(s.names, len(project))
		}
		s.projects[project]++
		s.release[project+"\x00"+version]++
		k := kind(filename)
		s.fnames[k] = append(s.fnames[k], len(filename))
	}
	real := newStats()
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var r struct{ Project, Version, Filename string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		add(real, export.NormalizeProject(r.Project), r.Version, r.Filename)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	const n = 200000
	_, rs := readAll(t, generate(t, Params{Seed: 5, Files: n}))
	syn := newStats()
	young := 0
	perYear := map[int]int{}
	for _, r := range rs {
		add(syn, r.Project, r.Version, r.Filename)
		if DefaultGenerated.Sub(r.UploadTime) < 90*24*time.Hour {
			young++
		}
		perYear[r.UploadTime.Year()]++
	}
	within := func(what string, got, want int, slack float64) {
		t.Helper()
		t.Logf("%-34s synthetic %6d  sample %6d", what, got, want)
		if float64(got) > float64(want)*(1+slack)+1 || float64(got) < float64(want)*(1-slack)-1 {
			t.Errorf("%s: synthetic %d, sample %d (more than %.0f%% apart)", what, got, want, slack*100)
		}
	}
	for _, q := range []float64{0.1, 0.5, 0.9} {
		within(fmt.Sprintf("project name length, q%.0f", q*100), quantile(syn.names, q), quantile(real.names, q), 0.35)
	}
	for _, k := range []string{"sdist", "pure wheel", "binary wheel"} {
		within("median filename length, "+k, quantile(syn.fnames[k], 0.5), quantile(real.fnames[k], 0.5), 0.3)
	}
	var relS, relR []int
	for _, c := range syn.release {
		relS = append(relS, c)
	}
	for _, c := range real.release {
		relR = append(relR, c)
	}
	within("median files per release", quantile(relS, 0.5), quantile(relR, 0.5), 0.5)
	// PyPI: about 20.8 million files in about 740,000 projects (August
	// 2026), 28 a project; most have a few, a few have thousands. One
	// project of thousands sways a small export, so the mean is taken
	// over the sizes the generator draws for a million projects.
	var projS []int
	for _, c := range syn.projects {
		projS = append(projS, c)
	}
	var drawn int64
	const draws = 1000000
	for id := range uint64(draws) {
		drawn += max(1, projectSize(5, id))
	}
	mean := float64(drawn) / draws
	t.Logf("files per project: mean %.1f over %d draws (PyPI about 28); in the export: median %d, max %d", mean, draws, quantile(projS, 0.5), quantile(projS, 1))
	if mean < 20 || mean > 36 || quantile(projS, 0.5) > 8 || quantile(projS, 1) < 1000 {
		t.Errorf("files per project: mean %.1f, median %d, max %d; want about 28, a handful, thousands", mean, quantile(projS, 0.5), quantile(projS, 1))
	}
	// PyPI takes about 10,000 files a day against about 21 million: about
	// 4 % of its files are under 90 days old.
	share := float64(young) / float64(n)
	t.Logf("under 90 days old: %.2f %% (PyPI about 4 %%); files per year %v", share*100, perYear)
	if share < 0.02 || share > 0.08 {
		t.Errorf("%.2f %% of files under 90 days old, want about 4 %%", share*100)
	}
	// The repository grows: each of the last five whole years adds more
	// files than the five years ten years before.
	last, earlier := 0, 0
	for y := DefaultGenerated.Year() - 5; y < DefaultGenerated.Year(); y++ {
		last += perYear[y]
		earlier += perYear[y-10]
	}
	if last < 2*earlier {
		t.Errorf("files in the last five years %d, ten years before %d: the repository does not grow", last, earlier)
	}
}

// TestNextAnomalies checks each anomaly NextParams injects for the
// review's export flags against the two exports, as the review would
// see them: added files in releases with stable files, projects that
// keep one path of at least three stable ones, files named as another
// project, stable files newly yanked.
func TestNextAnomalies(t *testing.T) {
	prevData := generate(t, Params{Seed: 5, Files: 20000})
	np := NextParams{Seed: 8, NewFiles: 500, Deletions: 5, AddedToStable: 2, ProjectLoss: 2, NameCollision: 2, Yanked: 3}
	var out bytes.Buffer
	inj, err := Next(bytes.NewReader(prevData), &out, np)
	if err != nil {
		t.Fatal(err)
	}
	if len(inj.AddedToStable) != 2 || len(inj.ProjectLoss) != 2 || len(inj.NameCollision) != 2 || len(inj.Yanked) != 3 {
		t.Fatalf("injected %+v", inj)
	}
	ph, prev := readAll(t, prevData)
	_, next := readAll(t, out.Bytes())
	cut := ph.Generated.Add(-StableAge)
	stableReleases := map[[2]string]bool{}
	files := map[string]int{}
	pm := map[string]export.Record{}
	for _, r := range prev {
		pm[r.Path] = r
		files[r.Project]++
		if !r.UploadTime.After(cut) {
			stableReleases[[2]string{r.Project, r.Version}] = true
		}
	}
	nm := map[string]export.Record{}
	left := map[string]int{}
	for _, r := range next {
		nm[r.Path] = r
		left[r.Project]++
	}
	for _, p := range inj.AddedToStable {
		r, ok := nm[p]
		if _, old := pm[p]; old || !ok || !stableReleases[[2]string{r.Project, r.Version}] || !r.UploadTime.After(ph.Generated) {
			t.Errorf("added to a stable release %s: %+v (in previous: %v)", p, r, old)
		}
	}
	for _, name := range inj.ProjectLoss {
		for _, r := range prev {
			if r.Project == name && r.UploadTime.After(cut) {
				t.Errorf("project %s lost a file that was not stable: %s", name, r.Path)
			}
		}
		if files[name] < 3 || left[name] != 1 {
			t.Errorf("project %s: %d files before, %d after", name, files[name], left[name])
		}
	}
	for _, p := range inj.NameCollision {
		r, ok := nm[p]
		if !ok || r.Legacy&export.LegacyMismatch == 0 {
			t.Errorf("name collision %s: %+v", p, r)
			continue
		}
		named := export.NormalizeProject(strings.SplitN(r.Filename, "-", 2)[0])
		if named == r.Project || files[named] == 0 {
			t.Errorf("name collision %s: listed under %s, named as %s", p, r.Project, named)
		}
	}
	for _, p := range inj.Yanked {
		a, b := pm[p], nm[p]
		if a.Yanked || !b.Yanked || a.UploadTime.After(cut) {
			t.Errorf("yanked %s: before %+v after %+v", p, a, b)
		}
	}
	if len(next) != len(prev)-len(inj.Deleted)+500+2+2 {
		t.Errorf("next has %d records, want %d", len(next), len(prev)-len(inj.Deleted)+500+2+2)
	}
	if _, err := Next(bytes.NewReader(prevData), io.Discard, NextParams{Seed: 8, ProjectLoss: 1 << 20}); !errors.Is(err, ErrParams) {
		t.Errorf("more losses than projects: %v", err)
	}
}
