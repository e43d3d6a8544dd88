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
}

// Injected lists what Next changed that a ceremony must notice, each list
// sorted.
type Injected struct {
	Changed   []string // paths in both exports whose sha256 and length differ
	Backdated []string // paths new in this export that claim to be older than the previous one
	Deleted   []string // paths of the previous export that this one lacks
}

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
	if p.Period < time.Second || p.NewFiles < 0 || p.Deletions < 0 || p.ChangedHash < 0 || p.Backdated < 0 {
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
	}
	if err := bw.Flush(); err != nil {
		return inj, fmt.Errorf("synth: %w", err)
	}
	count := x.Count()
	prev := x.Header()
	gen := prev.Generated.Add(p.Period).Truncate(time.Second)
	if int64(p.Deletions+p.ChangedHash) > count || len(sample) == 0 && p.Backdated > 0 {
		return inj, ErrParams
	}

	// Which existing records are deleted or changed.
	fate := map[int64]byte{}
	for _, c := range []struct {
		n    int
		kind byte
	}{{p.Deletions, 'd'}, {p.ChangedHash, 'c'}} {
		for i := 0; i < c.n; {
			j := rs.intn(count)
			if fate[j] == 0 {
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
		switch fate[i] {
		case 'd':
			inj.Deleted = append(inj.Deleted, rec.Path)
			i++
			continue
		case 'c':
			put(&rec.SHA256, p.Seed, dNext, rs.next())
			rec.Length++
			inj.Changed = append(inj.Changed, rec.Path)
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
	slices.Sort(inj.Backdated)
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
