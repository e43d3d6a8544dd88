package ceremony

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// demoFile is one distribution file of the demo's built-in repository.
// Its content is real, so a TUF client can download and check it.
type demoFile struct {
	Project, Version, Filename string
	Age                        time.Duration // how long ago it was uploaded
	RequiresPython             string
	Yanked                     string // reason; empty if not yanked
}

const day = 24 * time.Hour

// demoFiles is a small repository: old releases that become stable, young
// ones that stay with unstable, a yanked file and a project whose newest
// release is too young.
var demoFiles = []demoFile{
	{"foobar", "1.0", "foobar-1.0.tar.gz", 900 * day, ">=3.7", ""},
	{"foobar", "2.0", "foobar-2.0.tar.gz", 200 * day, ">=3.8", ""},
	{"foobar", "2.0", "foobar-2.0-py3-none-any.whl", 200 * day, ">=3.8", ""},
	{"foobar", "2.0.1", "foobar-2.0.1.tar.gz", 5 * day, ">=3.8", ""},
	{"foobar", "2.0.1", "foobar-2.0.1-py3-none-any.whl", 5 * day, ">=3.8", ""},
	{"sampleproject", "3.0.0", "sampleproject-3.0.0.tar.gz", 400 * day, ">=3.8", ""},
	{"sampleproject", "3.0.0", "sampleproject-3.0.0-py3-none-any.whl", 400 * day, ">=3.8", ""},
	{"sampleproject", "4.0.0", "sampleproject-4.0.0.tar.gz", 120 * day, ">=3.9", "broken build"},
	{"tiny-lib", "0.1", "tiny_lib-0.1-py2.py3-none-any.whl", 3000 * day, "", ""},
	{"brand-new", "0.0.1", "brand_new-0.0.1.tar.gz", 2 * day, ">=3.12", ""},
}

// content is the file's bytes: deterministic, different for every file.
func (f demoFile) content() []byte {
	return []byte(strings.Repeat(fmt.Sprintf("demo distribution %s of %s %s\n", f.Filename, f.Project, f.Version), 8))
}

// targetPath is the file's path on PyPI's file host, derived from the
// BLAKE2b-256 digest of its content.
func (f demoFile) targetPath() string {
	sum := blake2b.Sum256(f.content())
	h := hex.EncodeToString(sum[:])
	return fmt.Sprintf("packages/%s/%s/%s/%s", h[0:2], h[2:4], h[4:], f.Filename)
}

// demoContent maps each demo file's target path to its bytes.
var demoContent = func() map[string][]byte {
	m := map[string][]byte{}
	for _, f := range demoFiles {
		m[f.targetPath()] = f.content()
	}
	return m
}()

// demoGenerated is how many generated PyPI-like files the demo's
// repository holds beside the built-in ones, so that the stable set has
// realistic names, ages across several years and many bins. Their content
// is real too (demoFile.content), so every target downloads.
const demoGenerated = 2000

// generatedDemoFiles returns demoGenerated files, the same on every run:
// projects named from two word lists, each with a few releases of an
// sdist and usually a wheel, uploaded between 0 and 8 years ago, a few
// yanked.
func generatedDemoFiles() []demoFile {
	first := []string{"py", "django", "flask", "aio", "pytest", "sphinx", "data", "yaml", "async", "cloud", "torch", "open", "fast", "micro", "simple", "auto"}
	second := []string{"utils", "client", "tools", "core", "lib", "cli", "plugin", "extras", "api", "sdk", "parser", "config", "cache", "schema", "helpers", "server"}
	pythons := []string{"", ">=3.7", ">=3.8", ">=3.9", ">=3.10", ">=3.12"}
	rng := rand.New(rand.NewPCG(2026, 458))
	files := make([]demoFile, 0, demoGenerated)
	for n := 0; len(files) < demoGenerated; n++ {
		project := first[n%len(first)] + "-" + second[(n/len(first))%len(second)]
		if round := n / (len(first) * len(second)); round > 0 {
			project += fmt.Sprint(round + 1)
		}
		dist := strings.ReplaceAll(project, "-", "_")
		age := time.Duration(rng.IntN(8*365)) * day
		py := pythons[rng.IntN(len(pythons))]
		for v := 1 + rng.IntN(4); v > 0 && len(files) < demoGenerated; v-- {
			version := fmt.Sprintf("%d.%d.%d", rng.IntN(3), v, rng.IntN(10))
			yanked := ""
			if rng.IntN(100) == 0 {
				yanked = "yanked in the demo"
			}
			files = append(files, demoFile{project, version, dist + "-" + version + ".tar.gz", age, py, yanked})
			if len(files) < demoGenerated && rng.IntN(4) != 0 {
				files = append(files, demoFile{project, version, dist + "-" + version + "-py3-none-any.whl", age, py, yanked})
			}
			age -= time.Duration(rng.IntN(200)) * day
			if age < 0 {
				age = time.Duration(rng.IntN(24)) * time.Hour
			}
		}
	}
	return files
}

// allDemoFiles is the demo repository: the built-in files, then the
// generated ones.
func allDemoFiles() []demoFile {
	return append(append([]demoFile{}, demoFiles...), generatedDemoFiles()...)
}

// record is the file's line in the repository's export.
func (f demoFile) record(now time.Time) export.Record {
	c := f.content()
	r := export.Record{
		Path: f.targetPath(), Project: f.Project, Version: f.Version, Filename: f.Filename,
		Length: int64(len(c)), SHA256: sha256.Sum256(c), BLAKE2b256: blake2b.Sum256(c),
		UploadTime: now.Add(-f.Age), RequiresPython: f.RequiresPython,
		Yanked: f.Yanked != "", YankedReason: f.Yanked,
	}
	if strings.HasSuffix(f.Filename, ".whl") {
		r.CoreMetadataSHA256 = sha256.Sum256([]byte("Metadata-Version: 2.1\nName: " + f.Project + "\n"))
		r.HasCoreMetadata = true
	}
	return r
}

// writeDemoExport writes the repository export, as the repository would
// produce it, of every demo file, and returns its records with their
// content, in the export's (path) order.
func writeDemoExport(file string, now time.Time) ([]export.Record, map[string][]byte, error) {
	now = now.UTC().Truncate(time.Second)
	all := allDemoFiles()
	recs := make([]export.Record, 0, len(all))
	content := make(map[string][]byte, len(all))
	for _, f := range all {
		r := f.record(now)
		if _, dup := content[r.Path]; dup {
			return nil, nil, fmt.Errorf("demo file %s listed twice", r.Path)
		}
		content[r.Path] = f.content()
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, nil, err
	}
	fh, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	w, err := export.NewWriter(fh, export.Header{Format: export.FormatName, Version: export.FormatVersion, Repository: "demo", Generated: now})
	if err != nil {
		return nil, nil, err
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			return nil, nil, fmt.Errorf("writing the demo export: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	return recs, content, fh.Sync()
}

// extractPages reads the index pages a stable signing wrote (tar files of
// target path -> page) into memory.
func extractPages(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	tars, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, err
	}
	for _, t := range tars {
		f, err := os.Open(t)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			out[h.Name] = b
		}
		f.Close()
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
