package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
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

var update = flag.Bool("update", false, "rewrite golden files")

var testGenerated = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testHeader() Header {
	return Header{Format: FormatName, Version: FormatVersion, Repository: "pypi", Generated: testGenerated}
}

// mkRecord builds a valid record; its digests are made up from the filename.
func mkRecord(project, version, filename string, n int) Record {
	b2 := sha256.Sum256([]byte("b2:" + filename))
	return Record{
		Path:       TargetPath(b2, filename),
		Project:    project,
		Version:    version,
		Filename:   filename,
		Length:     int64(1000 + n),
		SHA256:     sha256.Sum256([]byte(filename)),
		BLAKE2b256: b2,
		UploadTime: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(n) * 24 * time.Hour),
	}
}

// smallRecords returns the records of the golden export, sorted by path.
func smallRecords() []Record {
	rs := []Record{
		mkRecord("foo", "1.0", "foo-1.0.tar.gz", 0),
		mkRecord("foo", "1.0", "foo-1.0-py3-none-any.whl", 1),
		mkRecord("zope-interface", "5.0", "zope.interface-5.0.tar.gz", 2),
		mkRecord("foo-bar", "2.0", "foo_bar-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", 3),
		mkRecord("django", "1.0", "Django-1.0.tar.gz", 4),
	}
	rs[1].RequiresPython = ">=3.8"
	rs[1].HasCoreMetadata = true
	rs[1].CoreMetadataSHA256 = sha256.Sum256([]byte("METADATA"))
	rs[2].Yanked = true
	rs[2].YankedReason = `broken "build" \ see #12`
	rs[3].RequiresPython = ">=3.9,<4"
	rs[3].HasCoreMetadata = true
	rs[3].CoreMetadataSHA256 = sha256.Sum256([]byte("METADATA2"))
	rs[3].Length = 0
	rs[4].Yanked = true
	rs[4].YankedReason = "ne fonctionne pas — café"
	rs[4].Length = MaxLength
	slices.SortFunc(rs, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
	return rs
}

func writeExport(t testing.TB, h Header, rs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		if err := w.Write(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readExport reads a whole export, returning copies of its records.
// readExport reads an export with Reader, and checks that the
// pipeline's parallel reader (at several block sizes) agrees exactly.
func readExport(data []byte, name string) (Header, []Record, error) {
	h, rs, err := readExportSeq(data, name)
	for _, block := range []int{64, 1000, 1 << 20} {
		_, prs, perr := readExportPar(data, name, block)
		if fmt.Sprint(err) != fmt.Sprint(perr) || !reflect.DeepEqual(rs, prs) && err == nil {
			return h, rs, fmt.Errorf("parallel reader (block %d) differs: %v, want %v", block, perr, err)
		}
	}
	return h, rs, err
}

// readExportPar reads an export as the pipeline does.
func readExportPar(data []byte, name string, block int) (Header, []Record, error) {
	defer func(b int) { blockSize = b }(blockSize)
	blockSize = block
	x, err := NewReader(bytes.NewReader(data), name)
	if err != nil {
		return Header{}, nil, err
	}
	stop := make(chan struct{})
	defer close(stop)
	var rs []Record
	for b := range x.Batches(2, stop) {
		for i := range b.Records {
			if b.PathSHA256[i] != sha256.Sum256([]byte(b.Records[i].Path)) {
				return x.Header(), rs, errors.New("path hash differs")
			}
			rs = append(rs, b.Records[i])
		}
		if b.Err != nil {
			if _, ok := x.FileSHA256(); ok {
				return x.Header(), rs, errors.New("a file digest after an error")
			}
			return x.Header(), rs, b.Err
		}
		if b.Last {
			if _, ok := x.Trailer(); !ok {
				return x.Header(), rs, errors.New("last batch without a verified trailer")
			}
			if err := checkFileSum(x, data); err != nil {
				return x.Header(), rs, err
			}
			return x.Header(), rs, nil
		}

	}
	return x.Header(), rs, errors.New("no last batch")
}

// checkFileSum: at the end of a valid export, the reader's file digest
// is the SHA-256 of the file's bytes.
func checkFileSum(x *Reader, data []byte) error {
	got, ok := x.FileSHA256()
	if want := sha256.Sum256(data); !ok || got != want {
		return fmt.Errorf("file digest %x (ok %v), want %x", got, ok, want)
	}
	return nil
}

func readExportSeq(data []byte, name string) (Header, []Record, error) {
	x, err := NewReader(bytes.NewReader(data), name)
	if err != nil {
		return Header{}, nil, err
	}
	var rs []Record
	for {
		r, err := x.Next()
		if err == io.EOF {
			if x.Count() != int64(len(rs)) {
				return x.Header(), rs, errors.New("count differs")
			}
			if err := checkFileSum(x, data); err != nil {
				return x.Header(), rs, err
			}
			return x.Header(), rs, nil
		}
		if _, ok := x.FileSHA256(); ok {
			return x.Header(), rs, errors.New("a file digest before the end or after an error")
		}
		if err != nil {
			return x.Header(), rs, err
		}
		rs = append(rs, *r)
	}
}

func TestExportGolden(t *testing.T) {
	got := writeExport(t, testHeader(), smallRecords())
	golden := filepath.Join("testdata", "small.export.jsonl")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("writer output differs from %s (run with -update if intended):\n%s", golden, got)
	}
}

func TestExportRoundTrip(t *testing.T) {
	want := smallRecords()
	data, err := os.ReadFile(filepath.Join("testdata", "small.export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	h, got, err := readExport(data, "small.export.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if h != testHeader() {
		t.Errorf("header = %+v, want %+v", h, testHeader())
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if again := writeExport(t, h, got); !bytes.Equal(again, data) {
		t.Errorf("re-encoding the records gives different bytes")
	}
}

func TestExportReaderAfterEOF(t *testing.T) {
	data := writeExport(t, testHeader(), smallRecords())
	x, err := NewReader(bytes.NewReader(data), "x")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := x.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := x.Next(); err != io.EOF {
		t.Errorf("Next after EOF = %v, want io.EOF", err)
	}
	if x.Count() != 5 {
		t.Errorf("Count = %d, want 5", x.Count())
	}
}

func TestExportEmpty(t *testing.T) {
	data := writeExport(t, testHeader(), nil)
	_, rs, err := readExport(data, "empty")
	if err != nil || len(rs) != 0 {
		t.Fatalf("empty export: %d records, %v", len(rs), err)
	}
}

// TestExportRefusals edits one line of the golden export and checks the
// error's line, field and cause.
func TestExportRefusals(t *testing.T) {
	base := writeExport(t, testHeader(), smallRecords())
	lines := strings.SplitAfter(string(base), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	rec := func(i int) string { return lines[i] }
	const hdr, r1, r2, r3, r4, r5, trl = 0, 1, 2, 3, 4, 5, 6
	// rec1 is foo-1.0.tar.gz? Find line numbers by content instead.
	find := func(sub string) int {
		for i, l := range lines {
			if strings.Contains(l, sub) {
				return i
			}
		}
		t.Fatalf("no line contains %q", sub)
		return 0
	}
	foo := find(`"foo-1.0.tar.gz"`)
	whl := find(`"foo-1.0-py3-none-any.whl"`)
	zope := find(`zope.interface`)
	_ = rec
	_, _, _, _, _, _ = r1, r2, r3, r4, r5, hdr

	type edit struct {
		line     int
		old, new string
	}
	cases := []struct {
		name  string
		edits []edit
		drop  int // drop this line (0 means none, hdr cannot be dropped)
		raw   func(string) string
		line  int64
		field string
		err   error
	}{
		{name: "unknown field", edits: []edit{{foo, `"core_metadata_sha256":""}`, `"core_metadata_sha256":"","extra":1}`}}, line: 0, field: "extra", err: ErrUnknownField},
		{name: "unknown field in the middle", edits: []edit{{foo, `"yanked":false,`, `"yanked":false,"color":"red",`}}, field: "color", err: ErrUnknownField},
		{name: "missing field", edits: []edit{{foo, `,"requires_python":""`, ``}}, field: "requires_python", err: ErrMissingField},
		{name: "missing last field", edits: []edit{{foo, `,"core_metadata_sha256":""`, ``}}, field: "core_metadata_sha256", err: ErrMissingField},
		{name: "duplicate field", edits: []edit{{foo, `"project":"foo",`, `"project":"foo","project":"foo",`}}, field: "project", err: ErrDuplicateField},
		{name: "duplicate last field", edits: []edit{{foo, `"core_metadata_sha256":""}`, `"core_metadata_sha256":"","path":""}`}}, field: "path", err: ErrDuplicateField},
		{name: "fields out of order", edits: []edit{{foo, `"project":"foo","version":"1.0"`, `"version":"1.0","project":"foo"`}}, field: "version", err: ErrFieldOrder},
		{name: "escaped field name", edits: []edit{{foo, `"project":`, `"proj\u0065ct":`}}, field: "project", err: ErrNotCanonical},
		{name: "length is a string", edits: []edit{{foo, `"length":1000`, `"length":"1000"`}}, field: "length", err: ErrType},
		{name: "length is a float", edits: []edit{{foo, `"length":1000`, `"length":1000.0`}}, field: "length", err: ErrType},
		{name: "length exponent", edits: []edit{{foo, `"length":1000`, `"length":1e3`}}, field: "length", err: ErrType},
		{name: "length leading zero", edits: []edit{{foo, `"length":1000`, `"length":01000`}}, field: "length", err: ErrNotCanonical},
		{name: "negative length", edits: []edit{{foo, `"length":1000`, `"length":-1`}}, field: "length", err: ErrBadLength},
		{name: "absurd length", edits: []edit{{foo, `"length":1000`, `"length":1099511627777`}}, field: "length", err: ErrBadLength},
		{name: "overflowing length", edits: []edit{{foo, `"length":1000`, `"length":99999999999999999999999`}}, field: "length", err: ErrBadLength},
		{name: "yanked is a string", edits: []edit{{foo, `"yanked":false`, `"yanked":"false"`}}, field: "yanked", err: ErrType},
		{name: "sha256 null", edits: []edit{{foo, `"sha256":"`, `"sha256":null,"x":"`}}, field: "sha256", err: ErrType},
		{name: "project array", edits: []edit{{foo, `"project":"foo"`, `"project":["foo"]`}}, field: "project", err: ErrType},
		{name: "trailing data", raw: func(l string) string { return strings.TrimSuffix(l, "\n") + "x\n" }, line: int64(foo + 1), err: ErrTrailingData},
		{name: "second object", raw: func(l string) string { return strings.TrimSuffix(l, "\n") + "{}\n" }, line: int64(foo + 1), err: ErrTrailingData},
		{name: "trailing space", raw: func(l string) string { return strings.TrimSuffix(l, "\n") + " \n" }, line: int64(foo + 1), err: ErrNotCanonical},
		{name: "crlf", raw: func(l string) string { return strings.TrimSuffix(l, "\n") + "\r\n" }, line: int64(foo + 1), err: ErrNotCanonical},
		{name: "space after colon", edits: []edit{{foo, `"version":"1.0"`, `"version": "1.0"`}}, field: "version", err: ErrNotCanonical},
		{name: "space after comma", edits: []edit{{foo, `"version":"1.0",`, `"version":"1.0", `}}, field: "filename", err: ErrNotCanonical},
		{name: "not an object", raw: func(string) string { return "[1]\n" }, line: int64(foo + 1), err: ErrSyntax},
		{name: "empty line", raw: func(string) string { return "\n" }, line: int64(foo + 1), err: ErrSyntax},
		{name: "unterminated string", raw: func(l string) string { return l[:30] + "\n" }, line: int64(foo + 1), field: "path", err: ErrSyntax},
		{name: "short sha256", edits: []edit{{foo, `"sha256":"`, `"sha256":"0`}}, field: "sha256", err: ErrBadHash},
		{name: "uppercase sha256", edits: []edit{{foo, `"sha256":"`, `"sha256":"A`}}, field: "sha256", err: ErrBadHash},
		{name: "non-hex blake2b", edits: []edit{{foo, `"blake2b_256":"`, `"blake2b_256":"g`}}, field: "blake2b_256", err: ErrBadHash},
		{name: "short core metadata", edits: []edit{{foo, `"core_metadata_sha256":""`, `"core_metadata_sha256":"00"`}}, field: "core_metadata_sha256", err: ErrBadHash},
		{name: "absolute path", edits: []edit{{foo, `"path":"packages/`, `"path":"/packages/`}}, field: "path", err: ErrBadPath},
		{name: "dotdot segment", edits: []edit{{foo, `"path":"packages/`, `"path":"packages/../`}}, field: "path", err: ErrBadPath},
		{name: "dot segment", edits: []edit{{foo, `"path":"packages/`, `"path":"packages/./`}}, field: "path", err: ErrBadPath},
		{name: "empty segment", edits: []edit{{foo, `"path":"packages/`, `"path":"packages//`}}, field: "path", err: ErrBadPath},
		{name: "backslash in path", edits: []edit{{foo, `"path":"packages/`, `"path":"packages\\`}}, field: "path", err: ErrBadPath},
		{name: "other layout", edits: []edit{{foo, `"path":"packages/`, `"path":"files/`}}, field: "path", err: ErrBadPath},
		{name: "path not blake2b", edits: []edit{{foo, `"blake2b_256":"`, `"blake2b_256":"00`}, {foo, `","upload_time"`, `","upload_time"`}}, raw: nil, field: "blake2b_256", err: ErrBadHash},
		{name: "path hash mismatch", raw: func(l string) string { return swapBlake(l) }, line: int64(foo + 1), field: "path", err: ErrPathMismatch},
		{name: "path filename mismatch", edits: []edit{{foo, `/foo-1.0.tar.gz"`, `/foo-1.1.tar.gz"`}}, field: "path", err: ErrPathMismatch},
		{name: "filename with slash", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"x/foo-1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename dotdot", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":".."`}}, field: "filename", err: ErrBadFilename},
		{name: "raw control character", edits: []edit{{foo, `"requires_python":""`, "\"requires_python\":\"\x01\""}}, field: "requires_python", err: ErrControlChar},
		{name: "escaped newline", edits: []edit{{zope, `see #12`, `see\n#12`}}, field: "yanked_reason", err: ErrControlChar},
		{name: "escaped control", edits: []edit{{zope, `see #12`, `see\u001b#12`}}, field: "yanked_reason", err: ErrControlChar},
		{name: "C1 control", edits: []edit{{zope, `see #12`, "see\u0085#12"}}, field: "yanked_reason", err: ErrControlChar},
		{name: "needless escape", edits: []edit{{zope, `see #12`, `see \u002312`}}, field: "yanked_reason", err: ErrNotCanonical},
		{name: "escaped slash", edits: []edit{{zope, `see #12`, `see \/12`}}, field: "yanked_reason", err: ErrNotCanonical},
		{name: "bad escape", edits: []edit{{zope, `see #12`, `see \x12`}}, field: "yanked_reason", err: ErrSyntax},
		{name: "invalid utf-8", edits: []edit{{foo, `"requires_python":""`, "\"requires_python\":\"\xff\""}}, field: "requires_python", err: ErrInvalidUTF8},
		{name: "invalid utf-8 in path", edits: []edit{{foo, `"path":"packages/`, "\"path\":\"\xc3packages/"}}, field: "path", err: ErrInvalidUTF8},
		{name: "project not normalised", edits: []edit{{foo, `"project":"foo"`, `"project":"Foo"`}}, field: "project", err: ErrBadProject},
		{name: "project underscore", edits: []edit{{zope, `"project":"zope-interface"`, `"project":"zope_interface"`}}, field: "project", err: ErrBadProject},
		{name: "project double dash", edits: []edit{{zope, `"project":"zope-interface"`, `"project":"zope--interface"`}}, field: "project", err: ErrBadProject},
		{name: "project empty", edits: []edit{{foo, `"project":"foo"`, `"project":""`}}, field: "project", err: ErrBadProject},
		{name: "version with slash", edits: []edit{{foo, `"version":"1.0"`, `"version":"1/0"`}}, field: "version", err: ErrBadVersion},
		{name: "version with backslash", edits: []edit{{foo, `"version":"1.0"`, `"version":"1\\0"`}}, field: "version", err: ErrBadVersion},
		{name: "version with quote", edits: []edit{{foo, `"version":"1.0"`, `"version":"1\"0"`}}, field: "version", err: ErrBadVersion},
		{name: "version leading space", edits: []edit{{foo, `"version":"1.0"`, `"version":" 1.0"`}}, field: "version", err: ErrBadVersion},
		{name: "version trailing space", edits: []edit{{foo, `"version":"1.0"`, `"version":"1.0 "`}}, field: "version", err: ErrBadVersion},
		{name: "version two spaces", edits: []edit{{foo, `"version":"1.0"`, `"version":"1  0"`}}, field: "version", err: ErrBadVersion},
		{name: "version NUL", edits: []edit{{foo, `"version":"1.0"`, "\"version\":\"1\x000\""}}, field: "version", err: ErrControlChar},
		{name: "version tab", edits: []edit{{foo, `"version":"1.0"`, `"version":"1\t0"`}}, field: "version", err: ErrControlChar},
		{name: "filename NUL", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, "\"filename\":\"foo-1.0.tar.gz\x00\""}}, field: "filename", err: ErrControlChar},
		{name: "filename escaped NUL", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"foo\u0000-1.0.tar.gz"`}}, field: "filename", err: ErrControlChar},
		{name: "filename newline", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"foo\n-1.0.tar.gz"`}}, field: "filename", err: ErrControlChar},
		{name: "filename DEL", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, "\"filename\":\"foo\x7f-1.0.tar.gz\""}}, field: "filename", err: ErrControlChar},
		{name: "filename C1 control", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, "\"filename\":\"foo\u009b-1.0.tar.gz\""}}, field: "filename", err: ErrControlChar},
		{name: "filename dot", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"."`}}, field: "filename", err: ErrBadFilename},
		{name: "filename leading dot", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":".foo-1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename dotdot prefix", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"..foo-1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename backslash", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"..\\foo-1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename backslash inside", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"foo\\1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename traversal", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"../../foo-1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename leading space", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":" foo-1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename trailing space", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"foo-1.0.tar.gz "`}}, field: "filename", err: ErrBadFilename},
		{name: "filename two spaces", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"foo  1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename angle bracket", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"foo<1.0.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename too long", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":"foo-1.0` + strings.Repeat("x", 250) + `.tar.gz"`}}, field: "filename", err: ErrBadFilename},
		{name: "filename empty", edits: []edit{{foo, `"filename":"foo-1.0.tar.gz"`, `"filename":""`}}, field: "filename", err: ErrBadFilename},
		{name: "path with extra segment", edits: []edit{{foo, `/foo-1.0.tar.gz"`, `/x/foo-1.0.tar.gz"`}}, field: "path", err: ErrBadPath},
		{name: "path escaping", edits: []edit{{foo, `/foo-1.0.tar.gz"`, `/../foo-1.0.tar.gz"`}}, field: "path", err: ErrBadPath},
		{name: "fractional seconds", edits: []edit{{foo, `T03:04:05Z"`, `T03:04:05.603Z"`}}, field: "upload_time", err: ErrBadTime},
		{name: "offset", edits: []edit{{foo, `T03:04:05Z"`, `T03:04:05+00:00"`}}, field: "upload_time", err: ErrBadTime},
		{name: "no zone", edits: []edit{{foo, `T03:04:05Z"`, `T03:04:05"`}}, field: "upload_time", err: ErrBadTime},
		{name: "month 13", edits: []edit{{foo, `"upload_time":"2020-01-02`, `"upload_time":"2020-13-02`}}, field: "upload_time", err: ErrBadTime},
		{name: "february 30", edits: []edit{{foo, `"upload_time":"2020-01-02`, `"upload_time":"2019-02-29`}}, field: "upload_time", err: ErrBadTime},
		{name: "leap second", edits: []edit{{foo, `T03:04:05Z"`, `T23:59:60Z"`}}, field: "upload_time", err: ErrBadTime},
		{name: "upload after generated", edits: []edit{{foo, `"upload_time":"2020-01-02T03:04:05Z"`, `"upload_time":"2026-11-25T12:00:01Z"`}}, field: "upload_time", err: ErrFutureUpload},
		{name: "yanked reason without yanked", edits: []edit{{zope, `"yanked":true`, `"yanked":false`}}, field: "yanked_reason", err: ErrBadValue},
		{name: "duplicate path", raw: nil, edits: nil, line: 0, field: "path", err: ErrDuplicatePath},
		{name: "unsorted", field: "path", err: ErrUnsorted},
		{name: "edited record", edits: []edit{{foo, `"length":1000`, `"length":1001`}}, line: int64(trl + 1), field: "trailer.sha256", err: ErrDigestMismatch},
		{name: "dropped record", drop: foo, line: int64(trl), field: "trailer.count", err: ErrCountMismatch},
		{name: "count edited", edits: []edit{{trl, `"count":5`, `"count":6`}}, field: "trailer.count", err: ErrCountMismatch},
		{name: "digest edited", edits: []edit{{trl, `"sha256":"`, `"sha256":"0`}}, field: "trailer.sha256", err: ErrBadHash},
		{name: "trailer unknown field", edits: []edit{{trl, `"count":5,`, `"count":5,"n":1,`}}, field: "trailer.n", err: ErrUnknownField},
		{name: "trailer missing sha256", edits: []edit{{trl, `,"sha256":"`, `}}` + "\n" + `"`}}, field: "trailer.sha256", err: ErrMissingField},
		{name: "truncated", drop: trl, line: int64(trl + 1), err: ErrTruncated},
		{name: "after trailer", edits: []edit{{trl, "}}\n", "}}\n\n"}}, line: int64(trl + 2), err: ErrAfterTrailer},
		{name: "after trailer no newline", edits: []edit{{trl, "}}\n", "}}\nx"}}, line: int64(trl + 2), err: ErrAfterTrailer},
		{name: "wrong format", edits: []edit{{hdr, `"format":"keyceremony-export"`, `"format":"keyceremony-exports"`}}, line: 1, field: "format", err: ErrFormat},
		{name: "not an export", raw: nil, edits: []edit{{hdr, `{"format":`, `{"formats":`}}, line: 1, err: ErrFormat},
		{name: "version 2", edits: []edit{{hdr, `"version":1`, `"version":2,"x":1`}}, line: 1, field: "version", err: ErrUnsupportedVersion},
		{name: "version string", edits: []edit{{hdr, `"version":1`, `"version":"1"`}}, line: 1, field: "version", err: ErrType},
		{name: "header unknown field", edits: []edit{{hdr, `"repository":"pypi"`, `"repository":"pypi","mirror":true`}}, line: 1, field: "mirror", err: ErrUnknownField},
		{name: "header extra field", edits: []edit{{hdr, `Z"}`, `Z","mirror":true}`}}, line: 1, field: "mirror", err: ErrUnknownField},
		{name: "header bad repository", edits: []edit{{hdr, `"repository":"pypi"`, `"repository":"PyPI"`}}, line: 1, field: "repository", err: ErrBadValue},
		{name: "header bad time", edits: []edit{{hdr, `"generated":"2026-11-25T12:00:00Z"`, `"generated":"2026-11-25 12:00:00Z"`}}, line: 1, field: "generated", err: ErrBadTime},
		{name: "line too long", edits: []edit{{zope, `see #12`, strings.Repeat("x", MaxLineLength)}}, err: ErrLineTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ls := slices.Clone(lines)
			target := -1
			switch tc.name {
			case "duplicate path":
				ls = slices.Insert(ls, foo+1, ls[foo])
				target = foo + 1
			case "unsorted":
				ls[foo], ls[foo+1] = ls[foo+1], ls[foo]
				target = foo + 1
			}
			for _, e := range tc.edits {
				if !strings.Contains(ls[e.line], e.old) {
					t.Fatalf("line %d has no %q", e.line+1, e.old)
				}
				ls[e.line] = strings.Replace(ls[e.line], e.old, e.new, 1)
				target = e.line
			}
			if tc.raw != nil {
				ls[foo] = tc.raw(ls[foo])
				target = foo
			}
			if tc.drop != 0 {
				ls = slices.Delete(ls, tc.drop, tc.drop+1)
			}
			wantLine := tc.line
			if wantLine == 0 {
				wantLine = int64(target + 1)
			}
			_, _, err := readExport([]byte(strings.Join(ls, "")), "t.jsonl")
			var xe *Error
			if !errors.As(err, &xe) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if !errors.Is(err, tc.err) || xe.Line != wantLine || xe.Field != tc.field || xe.File != "t.jsonl" {
				t.Fatalf("err = %q (line %d, field %q), want line %d, field %q, cause %q", err, xe.Line, xe.Field, wantLine, tc.field, tc.err)
			}
			t.Log(err)
		})
	}
	_ = whl
}

// swapBlake changes the blake2b_256 field of a record line to another valid
// digest, leaving the path alone.
func swapBlake(l string) string {
	i := strings.Index(l, `"blake2b_256":"`) + len(`"blake2b_256":"`)
	return l[:i] + strings.Repeat("0", 64) + l[i+64:]
}

func TestExportErrorString(t *testing.T) {
	e := &Error{File: "x.jsonl", Line: 7, Field: "length", Err: ErrBadLength}
	if got, want := e.Error(), "x.jsonl:7: length: bad length"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &Error{File: "x.jsonl", Line: 7, Field: "a\nb", Err: ErrUnknownField}
	if got, want := e.Error(), `x.jsonl:7: "a\nb": unknown field`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestExportTruncated checks that every proper prefix of an export is
// refused, and that prefixes ending at a line boundary say ErrTruncated.
func TestExportTruncated(t *testing.T) {
	data := writeExport(t, testHeader(), smallRecords())
	for n := 0; n < len(data); n++ {
		_, _, err := readExport(data[:n], "t")
		if err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
		if n == 0 || data[n-1] == '\n' {
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("prefix of %d bytes (a line boundary): err = %v, want ErrTruncated", n, err)
			}
		}
	}
}

func TestExportWriterRefuses(t *testing.T) {
	rs := smallRecords()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&rs[1]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    Record
		err  error
	}{
		{"unsorted", rs[0], ErrUnsorted},
		{"duplicate", rs[1], ErrDuplicatePath},
		{"control", func() Record { r := rs[2]; r.RequiresPython = ">=3\n"; return r }(), ErrControlChar},
		{"invalid utf-8", func() Record { r := rs[2]; r.YankedReason = "\xff"; return r }(), ErrInvalidUTF8},
		{"fraction", func() Record { r := rs[2]; r.UploadTime = r.UploadTime.Add(time.Millisecond); return r }(), ErrBadTime},
		{"future", func() Record { r := rs[2]; r.UploadTime = testGenerated.Add(time.Second); return r }(), ErrFutureUpload},
		{"project", func() Record { r := rs[2]; r.Project = "Zope.Interface"; return r }(), ErrBadProject},
		{"core metadata without flag", func() Record { r := rs[2]; r.CoreMetadataSHA256[0] = 1; return r }(), ErrBadValue},
	} {
		err := w.Write(&tc.r)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
	// The refused records left the writer usable.
	for _, r := range rs[2:] {
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, got, err := readExport(buf.Bytes(), "w"); err != nil || len(got) != 4 {
		t.Fatalf("read back %d records, %v", len(got), err)
	}
	if _, err := NewWriter(io.Discard, Header{Repository: "pypi", Version: 2, Generated: testGenerated}); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("version 2: err = %v", err)
	}
}

func TestNormalizeProject(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Foo", "foo"},
		{"zope.interface", "zope-interface"},
		{"Foo__Bar--baz..Qux", "foo-bar-baz-qux"},
		{"a-_.b", "a-b"},
		{"-x-", "-x-"},
		{"\u212Aeras", "\u212Aeras"}, // Kelvin sign stays: only ASCII is lowercased
	} {
		if got := NormalizeProject(tc.in); got != tc.want {
			t.Errorf("NormalizeProject(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !normalizedEqual(tc.in, tc.want) {
			t.Errorf("normalizedEqual(%q, %q) = false", tc.in, tc.want)
		}
	}
	if normalizedEqual("foo-bar", "foo") || normalizedEqual("foo", "foo-bar") || normalizedEqual("foo", "foo-") {
		t.Error("normalizedEqual accepts a different name")
	}
}

func TestFilenameBelongs(t *testing.T) {
	for _, tc := range []struct {
		file, project, version string
		want                   bool
	}{
		{"foo-1.0.tar.gz", "foo", "1.0", true},
		{"Foo_Bar-1.0.tar.gz", "foo-bar", "1.0", true},
		{"foo.bar-1.0-py3-none-any.whl", "foo-bar", "1.0", true},
		{"foo-bar-1.0.zip", "foo-bar", "1.0", true},
		{"foo-1.0-py2.7.egg", "foo", "1.0", true},
		{"foo-1.0.win32.exe", "foo", "1.0", true},
		{"pytz-2004b.tar.gz", "pytz", "2004b", true},
		{"foo-dev.tar.gz", "foo", "dev", true},
		{"foo-bar-1.0.tar.gz", "foo", "1.0", false}, // a file of foo-bar
		{"foo-bar-1.0.tar.gz", "foo", "bar-1.0", true},
		{"foo1.0.tar.gz", "foo", "1.0", false},
		{"bar-1.0.tar.gz", "foo", "1.0", false},
		{"foo-.tar.gz", "foo", "1.0", false},
		{"\u212Aeras-1.0.tar.gz", "keras", "1.0", false},
	} {
		if got := filenameBelongs(tc.file, tc.project, tc.version); got != tc.want {
			t.Errorf("filenameBelongs(%q, %q, %q) = %v, want %v", tc.file, tc.project, tc.version, got, tc.want)
		}
	}
}

// FuzzPathBLAKE2b: PathBLAKE2b accepts exactly the paths TargetPath makes
// (five segments, lowercase hex) and gives back the digest in them.
func FuzzPathBLAKE2b(f *testing.F) {
	var b2 [32]byte
	for i := range b2 {
		b2[i] = byte(i * 7)
	}
	f.Add(TargetPath(b2, "x-1.0.tar.gz"))
	f.Add("packages/AB/cd/" + strings.Repeat("0", 60) + "/x")
	f.Add("packages/ab/cd/" + strings.Repeat("0", 60) + "/x/y")
	f.Add("packages/ab/cd/" + strings.Repeat("0", 59) + "/x")
	f.Add("packages/ab/cd/" + strings.Repeat("0", 60) + "/")
	f.Fuzz(func(t *testing.T, p string) {
		sum, ok := PathBLAKE2b(p)
		seg := strings.Split(p, "/")
		want := len(seg) == 5 && seg[0] == "packages" && len(seg[1]) == 2 && len(seg[2]) == 2 && len(seg[3]) == 60
		if want {
			h := seg[1] + seg[2] + seg[3]
			_, err := hex.DecodeString(h)
			want = err == nil && strings.ToLower(h) == h
		}
		if ok != want {
			t.Fatalf("PathBLAKE2b(%q) ok = %v, want %v", p, ok, want)
		}
		if ok && TargetPath(sum, seg[4]) != p {
			t.Fatalf("PathBLAKE2b(%q) = %x", p, sum)
		}
	})
}
