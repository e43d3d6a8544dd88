package export

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// sampleFile is one line of testdata/pypi-files-sample.jsonl.gz: real PyPI
// files, as uv copied them from PyPI's index API into public uv.lock files.
type sampleFile struct {
	Project     string `json:"project"`
	Version     string `json:"version"`
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	UploadTime  string `json:"upload_time"`
	URLPath     string `json:"url_path"`
	PackageType string `json:"packagetype"`
}

// ReadSample reads the gzipped sample of real PyPI files (the format of
// testdata/pypi-files-sample.jsonl.gz) and converts it into export
// records sorted by path, the way a repository would export them: the
// project normalized, the blake2b-256 from the path, a wheel's core
// metadata and requires-python made up, every 97th file yanked. It is
// for tests and rehearsals on real names, paths and times.
func ReadSample(r io.Reader) ([]Record, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("reading the sample: %w", err)
	}
	var rs []Record
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		var f sampleFile
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&f); err != nil {
			return nil, fmt.Errorf("sample line %d: %w", i+1, err)
		}
		path := strings.TrimPrefix(f.URLPath, "/")
		segs := strings.Split(path, "/")
		if len(segs) != 5 {
			return nil, fmt.Errorf("sample line %d: url_path %q", i+1, f.URLPath)
		}
		var r Record
		r.Path = path
		r.Project = NormalizeProject(f.Project)
		r.Version = f.Version
		r.Filename = f.Filename
		r.Length = f.Size
		if err := decodeSum(&r.SHA256, f.SHA256); err != nil {
			return nil, fmt.Errorf("sample line %d: sha256: %w", i+1, err)
		}
		if err := decodeSum(&r.BLAKE2b256, segs[1]+segs[2]+segs[3]); err != nil {
			return nil, fmt.Errorf("sample line %d: url_path %q: %w", i+1, f.URLPath, err)
		}
		ut, err := time.Parse(time.RFC3339Nano, f.UploadTime)
		if err != nil {
			return nil, fmt.Errorf("sample line %d: upload_time: %w", i+1, err)
		}
		r.UploadTime = ut.UTC().Truncate(time.Second)
		if strings.HasSuffix(f.Filename, ".whl") {
			r.HasCoreMetadata = true
			r.CoreMetadataSHA256 = sha256.Sum256([]byte("METADATA " + f.Filename))
			r.RequiresPython = ">=3.8"
		}
		if i%97 == 0 {
			r.Yanked = true
			r.YankedReason = "sample yank " + f.Version
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the sample: %w", err)
	}
	slices.SortFunc(rs, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
	return rs, nil
}

// decodeSum decodes a digest written as exactly 64 lowercase hex digits.
func decodeSum(dst *[32]byte, s string) error {
	if len(s) != 64 || strings.ToLower(s) != s {
		return fmt.Errorf("%q is not 64 lowercase hex digits", s)
	}
	_, err := hex.Decode(dst[:], []byte(s))
	return err
}
