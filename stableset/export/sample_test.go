package export

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// loadSample reads testdata/pypi-files-sample.jsonl.gz (ReadSample).
func loadSample(t testing.TB) []Record {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "pypi-files-sample.jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := ReadSample(f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestExportRealSample converts the real PyPI sample into an export and
// parses it: every real name, filename, path and time must be accepted.
func TestExportRealSample(t *testing.T) {
	rs := loadSample(t)
	if len(rs) < 7000 {
		t.Fatalf("sample has %d files", len(rs))
	}
	h := Header{Repository: "pypi", Generated: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	data := writeExport(t, h, rs)
	_, got, err := readExport(data, "sample")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rs) {
		t.Fatalf("read %d records, want %d", len(got), len(rs))
	}
	for i := range rs {
		if got[i] != rs[i] {
			t.Fatalf("record %d differs:\n got %+v\nwant %+v", i, got[i], rs[i])
		}
	}
	// Each real file claimed by another real project is refused.
	projects := map[string]bool{}
	for _, r := range rs {
		projects[r.Project] = true
	}
	refused := 0
	for _, r := range rs[:200] {
		for p := range projects {
			if p != r.Project && filenameBelongs(r.Filename, p, r.Version) {
				t.Errorf("%q is accepted as a file of %q as well as %q", r.Filename, p, r.Project)
			}
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("nothing checked")
	}
}

// TestSchemaKeys checks docs/export-format.schema.json against the parser's
// field lists and the golden export's lines.
func TestSchemaKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "export-format.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Required             []string                   `json:"required"`
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		def  string
		keys []string
	}{
		{"header", headerKeys},
		{"record", recordKeys[:]},
		{"trailer", []string{"trailer"}},
		{"trailerBody", trailerKeys},
	} {
		d, ok := schema.Defs[tc.def]
		if !ok {
			t.Errorf("schema has no $defs/%s", tc.def)
			continue
		}
		if !slices.Equal(d.Required, tc.keys) {
			t.Errorf("$defs/%s required = %v, want %v", tc.def, d.Required, tc.keys)
		}
		if len(d.Properties) != len(tc.keys) {
			t.Errorf("$defs/%s has %d properties, want %d", tc.def, len(d.Properties), len(tc.keys))
		}
		for _, k := range tc.keys {
			if _, ok := d.Properties[k]; !ok {
				t.Errorf("$defs/%s has no property %q", tc.def, k)
			}
		}
		if d.AdditionalProperties == nil || *d.AdditionalProperties {
			t.Errorf("$defs/%s allows additional properties", tc.def)
		}
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "small.export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(golden), "\n"), "\n")
	for i, l := range lines {
		def := "record"
		switch i {
		case 0:
			def = "header"
		case len(lines) - 1:
			def = "trailer"
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("golden line %d: %v", i+1, err)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(schema.Defs[def].Required))
		if !slices.Equal(got, want) {
			t.Errorf("golden line %d has keys %v, schema %s requires %v", i+1, got, def, want)
		}
	}
}

// FuzzExportReader checks that the reader never panics and that whatever it
// accepts re-encodes, through the writer, to the same bytes.
func FuzzExportReader(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "small.export.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(golden[:len(golden)/2])
	f.Add([]byte(strings.Replace(string(golden), `"length":1000`, `"length":-1`, 1)))
	f.Add([]byte(strings.Replace(string(golden), `see #12`, `see \u0041`, 1)))
	f.Add([]byte(`{"format":"keyceremony-export","version":1,"repository":"pypi","generated":"2026-11-25T12:00:00Z"}` + "\n" +
		`{"trailer":{"count":0,"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := NewReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			checkExportError(t, err)
			return
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, x.Header())
		if err != nil {
			t.Fatalf("header accepted by the reader refused by the writer: %v", err)
		}
		for {
			r, err := x.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				checkExportError(t, err)
				return
			}
			if err := w.Write(r); err != nil {
				t.Fatalf("record accepted by the reader refused by the writer: %v", err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("accepted input re-encodes differently:\n in %q\nout %q", data, buf.Bytes())
		}
	})
}

func checkExportError(t *testing.T, err error) {
	t.Helper()
	var xe *Error
	if !errors.As(err, &xe) || xe.Line < 1 || xe.File != "fuzz" {
		t.Fatalf("error %v is not a located *Error", err)
	}
	_ = xe.Error()
}

// The pipeline's parallel reader accepts exactly what Reader accepts,
// with the same records, and refuses the rest with the same error.
func FuzzExportParallel(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "small.export.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(golden[:len(golden)/2])
	f.Add([]byte(strings.Replace(string(golden), "\n", "\n\n", 3)))
	f.Add([]byte(strings.Replace(string(golden), `"length":1000`, `"length":-1`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, rs, err := readExportSeq(data, "fuzz")
		// Blocks of 64 to 575 bytes: many blocks, lines across them.
		_, prs, perr := readExportPar(data, "fuzz", 64+len(data)%512)
		if fmt.Sprint(err) != fmt.Sprint(perr) {
			t.Fatalf("parallel: %v, sequential: %v", perr, err)
		}
		if err == nil && !reflect.DeepEqual(rs, prs) {
			t.Fatal("parallel reader's records differ")
		}
	})
}

// FuzzReadSample: whatever the sample holds, ReadSample either refuses it
// or gives records sorted by path, each path of five segments whose three
// hex segments are the record's blake2b-256, and upload times in UTC
// whole seconds.
func FuzzReadSample(f *testing.F) {
	f.Add([]byte(`{"project":"Foo.Bar","version":"1.0","filename":"foo_bar-1.0-py3-none-any.whl","size":12,"sha256":"` + strings.Repeat("ab", 32) + `","upload_time":"2020-01-02T03:04:05.678Z","url_path":"/packages/` + strings.Repeat("cd", 1) + `/` + strings.Repeat("ef", 1) + `/` + strings.Repeat("01", 30) + `/foo_bar-1.0-py3-none-any.whl","packagetype":"bdist_wheel"}` + "\n"))
	f.Add([]byte(`{"project":"x","unknown":1}` + "\n"))
	// A hex segment too long for the digest, and one too short.
	f.Add([]byte(`{"project":"x","version":"1","filename":"x-1.tar.gz","size":1,"sha256":"` + strings.Repeat("ab", 32) + `","upload_time":"2020-01-02T03:04:05Z","url_path":"/packages/ab/cd/` + strings.Repeat("01", 40) + `/x-1.tar.gz","packagetype":"sdist"}` + "\n"))
	f.Add([]byte(`{"project":"x","version":"1","filename":"x-1.tar.gz","size":1,"sha256":"ab","upload_time":"2020-01-02T03:04:05Z","url_path":"/packages/ab/cd/01/x-1.tar.gz","packagetype":"sdist"}` + "\n"))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, jsonl []byte) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(jsonl)
		zw.Close()
		rs, err := ReadSample(&gz)
		if err != nil {
			return
		}
		for i, r := range rs {
			if i > 0 && rs[i-1].Path > r.Path {
				t.Fatalf("records not sorted: %q before %q", rs[i-1].Path, r.Path)
			}
			segs := strings.Split(r.Path, "/")
			if len(segs) != 5 || fmt.Sprintf("%x", r.BLAKE2b256[:]) != segs[1]+segs[2]+segs[3] {
				t.Fatalf("path %q, blake2b-256 %x", r.Path, r.BLAKE2b256)
			}
			if r.UploadTime.Location() != time.UTC || r.UploadTime.Nanosecond() != 0 {
				t.Fatalf("upload time %v", r.UploadTime)
			}
		}
	})
}
