package ceremony

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/synth"
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

// demoSynthFiles is how many synthetic PyPI-like files the demo's export
// holds beside the built-in ones, so that the stable set has realistic
// names, sizes and ages across several years.
const demoSynthFiles = 2000

// writeDemoExport writes the repository export, as the repository would
// produce it: the built-in files (with real content) merged with synthetic
// ones from the generator. It returns the built-in records.
func writeDemoExport(file string, now time.Time) ([]stableset.Record, error) {
	now = now.UTC().Truncate(time.Second)
	recs := make([]stableset.Record, 0, len(demoFiles))
	for _, f := range demoFiles {
		c := f.content()
		r := stableset.Record{
			Path: f.targetPath(), Project: f.Project, Version: f.Version, Filename: f.Filename,
			Length: int64(len(c)), SHA256: sha256.Sum256(c), BLAKE2b256: blake2b.Sum256(c),
			UploadTime: now.Add(-f.Age), RequiresPython: f.RequiresPython,
			Yanked: f.Yanked != "", YankedReason: f.Yanked,
		}
		if strings.HasSuffix(f.Filename, ".whl") {
			r.CoreMetadataSHA256 = sha256.Sum256([]byte("Metadata-Version: 2.1\nName: " + f.Project + "\n"))
			r.HasCoreMetadata = true
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	var synthetic bytes.Buffer
	if err := synth.Generate(&synthetic, synth.Params{Seed: 2026, Files: demoSynthFiles, Repository: "demo", Generated: now}); err != nil {
		return nil, fmt.Errorf("generating the demo export: %w", err)
	}
	sx, err := stableset.NewExportReader(&synthetic, "synthetic export")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, err
	}
	fh, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	w, err := stableset.NewExportWriter(fh, stableset.Header{Format: stableset.FormatName, Version: stableset.FormatVersion, Repository: "demo", Generated: now})
	if err != nil {
		return nil, err
	}
	// Merge the two sorted streams.
	i := 0
	for {
		r, err := sx.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for i < len(recs) && recs[i].Path < r.Path {
			if err := w.Write(&recs[i]); err != nil {
				return nil, fmt.Errorf("writing the demo export: %w", err)
			}
			i++
		}
		if err := w.Write(r); err != nil {
			return nil, fmt.Errorf("writing the demo export: %w", err)
		}
	}
	for ; i < len(recs); i++ {
		if err := w.Write(&recs[i]); err != nil {
			return nil, fmt.Errorf("writing the demo export: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return recs, fh.Sync()
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
