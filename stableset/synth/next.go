package synth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// NextParams says how the next period's export differs from the previous one.
type NextParams struct {
	Seed   uint64
	Period time.Duration // from the previous export's Generated to the new one's; default 90 days

	NewFiles  int // files uploaded during the period, in new releases of existing projects and in new projects
	Deletions int // files of the previous export that are gone

	// Attacks, for tests.
	ChangedHash int // existing paths whose sha256 and length change
	Backdated   int // new paths, in new releases of existing projects, whose upload time is 200 days before the previous export

	// Anomalies the review raises from the export (docs/policy.md, "Red
	// flags"), for tests. "Stable" here means uploaded at least StableAge
	// before the previous export: in the stable set of a ceremony that
	// applied the default policy to it.
	AddedToStable int // new paths, uploaded during the period, in releases that had stable files (added-to-stable-release)
	ProjectLoss   int // projects of at least 3 files, all stable, that keep only their first path (project-loss)
	NameCollision int // new paths listed under one existing project and named as another (name-collision)
	Yanked        int // stable paths the export now marks yanked (yanked-stable)
}

// Injected lists what Next changed that a ceremony must notice, each list
// sorted.
type Injected struct {
	Changed   []string // paths in both exports whose sha256 and length differ
	Backdated []string // paths new in this export that claim to be older than the previous one
	Deleted   []string // paths of the previous export that this one lacks

	AddedToStable []string // paths new in releases that had stable files
	ProjectLoss   []string // projects that lost all but their first path (those paths are in Deleted)
	NameCollision []string // paths new under one project, named as another
	Yanked        []string // stable paths now marked yanked
}

// StableAge is how long before the previous export a file was uploaded
// for the anomalies to count it stable: the default policy's minimum age.
const StableAge = 90 * 24 * time.Hour

// BackdatedAge is how long before the previous export's generated time the
// backdated files claim to have been uploaded.
const BackdatedAge = 200 * 24 * time.Hour

// stream is a deterministic sequence of random numbers.
type stream struct{ seed, n uint64 }

func (s *stream) next() uint64 { s.n++; return h(s.seed, dNext, s.n, 0) }

func (s *stream) intn(n int64) int64 { return int64(s.next() % uint64(n)) }

// Next reads the previous export from r and writes the next period's
// export to w. It checks the previous export as strictly as any reader and
// keeps a copy of it in a temporary file (removed before it returns), so
// that it can read it twice: memory grows with the number of projects and
// of new files, not with the size of the previous export.
func Next(r io.Reader, w io.Writer, p NextParams) (Injected, error) {
	var inj Injected
	if p.Period == 0 {
		p.Period = 90 * 24 * time.Hour
	}
	if p.Period < time.Second || min(p.NewFiles, p.Deletions, p.ChangedHash, p.Backdated, p.AddedToStable, p.ProjectLoss, p.NameCollision, p.Yanked) < 0 {
		return inj, ErrParams
	}
	tmp, err := os.CreateTemp("", "synth-previous-*.jsonl")
	if err != nil {
		return inj, fmt.Errorf("synth: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 1<<20)

	// Pass 1: the projects, their newest major versions, and a sample of
	// projects weighted by their number of files.
	x, err := export.NewReader(io.TeeReader(r, bw), "previous export")
	if err != nil {
		return inj, err
	}
	majors := map[string]int64{}
	rs := &stream{seed: p.Seed}
	k := max(1, min(p.NewFiles+p.Backdated, 100000))
	sample := make([]string, 0, k)
	an := newAnomalies(p)
	for {
		rec, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return inj, err
		}
		majors[rec.Project] = max(majors[rec.Project], leadingInt(rec.Version))
		if n := x.Count(); len(sample) < k {
			sample = append(sample, rec.Project)
		} else if j := rs.intn(n); j < int64(k) {
			sample[j] = rec.Project
		}
		an.see(rs, rec, x.Count()-1, x.Header().Generated)
	}
	if err := bw.Flush(); err != nil {
		return inj, fmt.Errorf("synth: %w", err)
	}
	count := x.Count()
	prev := x.Header()
	gen := prev.Generated.Add(p.Period).Truncate(time.Second)
	if int64(p.Deletions+p.ChangedHash) > count || len(sample) == 0 && p.Backdated+p.NameCollision > 0 {
		return inj, ErrParams
	}

	// Which existing records are deleted or changed: the anomalies'
	// records first, and the random ones never among them.
	fate, err := an.choose(rs)
	if err != nil {
		return inj, err
	}
	for _, c := range []struct {
		n    int
		kind byte
	}{{p.Deletions, 'd'}, {p.ChangedHash, 'c'}} {
		for i := 0; i < c.n; {
			j := rs.intn(count)
			if fate[j] == 0 && !an.protected[j] {
				fate[j] = c.kind
				i++
			}
		}
	}

	// The new files.
	var news []export.Record
	newID := uint64(1 << 40) // far beyond Generate's project ids
	release := func(project string, files int, upload time.Time) []export.Record {
		majors[project]++
		version := strconv.FormatInt(majors[project], 10) + ".0.0"
		dist := strings.ReplaceAll(project, "-", "_")
		var out []export.Record
		for f := range files {
			var rec export.Record
			rec.Project = project
			rec.Version = version
			switch f {
			case 0:
				rec.Filename = dist + "-" + version + ".tar.gz"
			case 1:
				rec.Filename = dist + "-" + version + "-py3-none-any.whl"
			default:
				plat := platforms[(f-2)%len(platforms)]
				py := "cp3" + strconv.Itoa(10+(f-2)/len(platforms))
				rec.Filename = dist + "-" + version + "-" + py + "-" + py + "-" + plat + ".whl"
			}
			key := rs.next()
			put(&rec.BLAKE2b256, p.Seed, dNext, key)
			put(&rec.SHA256, p.Seed, dSHA, key)
			if f > 0 {
				rec.HasCoreMetadata = true
				put(&rec.CoreMetadataSHA256, p.Seed, dMeta, key)
			}
			rec.Length = 1000 + rs.intn(5_000_000)
			rec.UploadTime = upload.Add(time.Duration(f) * time.Second)
			if rec.UploadTime.After(gen) {
				rec.UploadTime = gen
			}
			rec.RequiresPython = ">=3.9"
			rec.Path = export.TargetPath(rec.BLAKE2b256, rec.Filename)
			out = append(out, rec)
		}
		return out
	}
	for len(news) < p.NewFiles {
		var project string
		if len(sample) == 0 || rs.intn(5) == 0 {
			for {
				project, _ = projectName(p.Seed, newID)
				newID++
				if _, taken := majors[project]; !taken {
					break
				}
			}
		} else {
			project = sample[rs.intn(int64(len(sample)))]
		}
		files := 1 + int(rs.intn(2))
		if rs.intn(10) == 0 {
			files = 2 + int(rs.intn(12))
		}
		files = min(files, p.NewFiles-len(news))
		upload := prev.Generated.Add(time.Second + time.Duration(rs.intn(int64(p.Period/time.Second)))*time.Second)
		news = append(news, release(project, files, upload)...)
	}
	for range p.Backdated {
		project := sample[rs.intn(int64(len(sample)))]
		rec := release(project, 1, prev.Generated.Add(-BackdatedAge))[0]
		news = append(news, rec)
		inj.Backdated = append(inj.Backdated, rec.Path)
	}
	// Files added to releases that had stable files, uploaded during
	// the period; files listed under one project and named as another.
	for _, old := range an.added {
		rec := release(old.Project, 1, prev.Generated.Add(time.Second+time.Duration(rs.intn(int64(p.Period/time.Second)))*time.Second))[0]
		majors[old.Project]--
		rec.Version = old.Version
		// A build tag no real wheel has: the filename is new to the export.
		rec.Filename = strings.ReplaceAll(old.Project, "-", "_") + "-" + old.Version + "-9synth-py3-none-any.whl"
		rec.Path = export.TargetPath(rec.BLAKE2b256, rec.Filename)
		news = append(news, rec)
		inj.AddedToStable = append(inj.AddedToStable, rec.Path)
	}
	for range p.NameCollision {
		under := sample[rs.intn(int64(len(sample)))]
		named := sample[rs.intn(int64(len(sample)))]
		for tries := 0; export.NormalizeProject(named) == export.NormalizeProject(under); tries++ {
			if tries == 100 {
				return inj, ErrParams
			}
			named = sample[rs.intn(int64(len(sample)))]
		}
		rec := release(under, 1, prev.Generated.Add(time.Second))[0]
		// A development version: the filename is new to the export
		// whatever releases the other project has.
		rec.Version += ".dev" + strconv.FormatInt(100000+rs.intn(900000), 10)
		rec.Filename = strings.ReplaceAll(named, "-", "_") + "-" + rec.Version + ".tar.gz"
		rec.Path = export.TargetPath(rec.BLAKE2b256, rec.Filename)
		news = append(news, rec)
		inj.NameCollision = append(inj.NameCollision, rec.Path)
	}
	slices.SortFunc(news, func(a, b export.Record) int { return strings.Compare(a.Path, b.Path) })

	// Pass 2: merge.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return inj, fmt.Errorf("synth: %w", err)
	}
	y, err := export.NewReader(bufio.NewReaderSize(tmp, 1<<20), "previous export")
	if err != nil {
		return inj, err
	}
	out, err := export.NewWriter(w, export.Header{Repository: prev.Repository, Generated: gen})
	if err != nil {
		return inj, err
	}
	var i int64
	for {
		rec, err := y.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return inj, err
		}
		for len(news) > 0 && news[0].Path < rec.Path {
			if err := out.Write(&news[0]); err != nil {
				return inj, err
			}
			news = news[1:]
		}
		if an.lost(rec, i) {
			inj.Deleted = append(inj.Deleted, rec.Path)
			i++
			continue
		}
		switch fate[i] {
		case 'd':
			inj.Deleted = append(inj.Deleted, rec.Path)
			i++
			continue
		case 'c':
			put(&rec.SHA256, p.Seed, dNext, rs.next())
			rec.Length++
			inj.Changed = append(inj.Changed, rec.Path)
		case 'y':
			rec.Yanked, rec.YankedReason = true, "synth: yanked after it became stable"
			inj.Yanked = append(inj.Yanked, rec.Path)
		}
		i++
		if err := out.Write(rec); err != nil {
			return inj, err
		}
	}
	for i := range news {
		if err := out.Write(&news[i]); err != nil {
			return inj, err
		}
	}
	inj.ProjectLoss = an.lossProjects()
	slices.Sort(inj.Backdated)
	slices.Sort(inj.AddedToStable)
	slices.Sort(inj.NameCollision)
	return inj, out.Close()
}

// leadingInt returns the number a version string starts with, or 0.
func leadingInt(v string) int64 {
	var n int64
	for i := 0; i < len(v) && v[i] >= '0' && v[i] <= '9' && n < 1e15; i++ {
		n = n*10 + int64(v[i]-'0')
	}
	return n
}

// anomalies chooses, from the previous export, the records of the
// anomalies NextParams asks for: a sample of stable records (for
// AddedToStable and Yanked) and, when ProjectLoss is asked, every
// project's first index and whether all its files are stable. Memory
// grows with the number of projects only when ProjectLoss is asked.
type anomalies struct {
	p         NextParams
	stable    []stableRec // a sample of stable records, reservoir-sampled
	seen      int64       // stable records seen
	projects  map[string]*projectSeen
	protected map[int64]bool // the anomalies' records: never deleted or changed at random
	added     []export.Record
	loss      []string
}

type stableRec struct {
	i   int64
	rec export.Record
}

type projectSeen struct {
	first, files int64
	allStable    bool
	lose         bool // chosen: all its files but the first are deleted
}

func newAnomalies(p NextParams) *anomalies {
	a := &anomalies{p: p, protected: map[int64]bool{}}
	if p.ProjectLoss > 0 {
		a.projects = map[string]*projectSeen{}
	}
	return a
}

// see notes record i of the previous export, generated at gen.
func (a *anomalies) see(rs *stream, rec *export.Record, i int64, gen time.Time) {
	stable := !rec.UploadTime.After(gen.Add(-StableAge)) && !rec.Yanked
	if a.projects != nil {
		ps := a.projects[rec.Project]
		if ps == nil {
			ps = &projectSeen{first: i, allStable: true}
			a.projects[rec.Project] = ps
		}
		ps.files++
		ps.allStable = ps.allStable && stable
	}
	k := 4*(a.p.AddedToStable+a.p.Yanked) + 16
	if !stable || a.p.AddedToStable+a.p.Yanked == 0 {
		return
	}
	a.seen++
	if len(a.stable) < k {
		a.stable = append(a.stable, stableRec{i, *rec})
	} else if j := rs.intn(a.seen); j < int64(k) {
		a.stable[j] = stableRec{i, *rec}
	}
}

// choose picks the anomalies' records and returns the fate of the
// previous export's records they change: 'd' deleted (the projects'
// losses), 'y' yanked.
func (a *anomalies) choose(rs *stream) (map[int64]byte, error) {
	fate := map[int64]byte{}
	lost := map[string]bool{}
	if a.p.ProjectLoss > 0 {
		var names []string
		for name, ps := range a.projects {
			if ps.files >= 3 && ps.allStable {
				names = append(names, name)
			}
		}
		if len(names) < a.p.ProjectLoss {
			return nil, ErrParams
		}
		slices.Sort(names)
		for range a.p.ProjectLoss {
			j := rs.intn(int64(len(names)))
			lost[names[j]] = true
			a.projects[names[j]].lose = true
			a.loss = append(a.loss, names[j])
			names = slices.Delete(names, int(j), int(j)+1)
		}
		slices.Sort(a.loss)
	}
	// The sampled stable records, one per project and none of a lost
	// project, in a random order: the first serve AddedToStable, the
	// next Yanked.
	used := map[string]bool{}
	var pick []stableRec
	for len(a.stable) > 0 && len(pick) < a.p.AddedToStable+a.p.Yanked {
		j := rs.intn(int64(len(a.stable)))
		s := a.stable[j]
		a.stable = slices.Delete(a.stable, int(j), int(j)+1)
		if lost[s.rec.Project] || used[s.rec.Project] {
			continue
		}
		used[s.rec.Project] = true
		pick = append(pick, s)
	}
	if len(pick) < a.p.AddedToStable+a.p.Yanked {
		return nil, ErrParams
	}
	for _, s := range pick[:a.p.AddedToStable] {
		a.added = append(a.added, s.rec)
		a.protected[s.i] = true
	}
	for _, s := range pick[a.p.AddedToStable:] {
		fate[s.i] = 'y'
		a.protected[s.i] = true
	}
	return fate, nil
}

// lost says whether record i, of a project that loses its files, is
// not that project's first.
func (a *anomalies) lost(rec *export.Record, i int64) bool {
	if len(a.loss) == 0 {
		return false
	}
	ps := a.projects[rec.Project]
	return ps != nil && ps.lose && ps.first != i
}

// lossProjects returns the projects that lose their files, sorted.
func (a *anomalies) lossProjects() []string { return a.loss }
