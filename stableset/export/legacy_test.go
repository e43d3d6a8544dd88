package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The five kinds of legacy name PyPI holds (issue 14, item 6), and the
// names today's rule ties to their project, which stay unflagged.
var legacyCases = []struct {
	project, version, filename string
	want                       Legacy
}{
	// Today's rule: no flag.
	{"foo", "1.0", "foo-1.0.tar.gz", 0},
	{"foo-bar", "1.0", "Foo_Bar-1.0.tar.gz", 0},
	{"zope-interface", "5.0", "zope.interface-5.0-py3-none-any.whl", 0},
	{"pytz", "2004b", "pytz-2004b.tar.gz", 0},
	{"foo", "1.0.post1+local.7", "foo-1.0.post1+local.7.tar.gz", 0},
	// Spaces or capitals the normalised name lacks.
	{"foo-bar", "1.0", "Foo Bar-1.0.tar.gz", LegacySpelling},
	{"django-extensions", "0.4", "Django Extensions-0.4.zip", LegacySpelling},
	{"foo-bar", "1.0", "Foo+Bar-1.0.tar.gz", LegacySpelling},
	// Names that spell the project differently.
	{"tenjin", "0.6.1", "pyTenjin-0.6.1.tar.gz", LegacyMismatch},
	{"foo", "1.0", "foo-bar-1.0.tar.gz", LegacyMismatch}, // a foo-bar file listed under foo
	{"zope", "5.0", "zope.interface-5.0.tar.gz", LegacyMismatch},
	{"foo", "1.0", "bar-1.0.tar.gz", LegacyMismatch},
	{"keras", "1.0", "\u212Aeras-1.0.tar.gz", LegacyMismatch}, // the Kelvin sign is not a k
	// No version at all.
	{"distance", "0.1", "distance.tar.gz", LegacyNoVersion},
	{"foo-bar", "0.1", "Foo_Bar.zip", LegacyNoVersion},
	{"foo-bar", "0.1", "Foo Bar.tar.gz", LegacyNoVersion | LegacySpelling},
	// Not PEP 440.
	{"foo", "0.2.10 alpha", "foo-0.2.10 alpha.tar.gz", LegacyVersion},
	{"foo", "2004d-final-x", "foo-2004d-final-x.tar.gz", LegacyVersion},
	{"foo", "latest", "foo-latest.tar.gz", LegacyVersion},
	// NAME.VERSION.src.tar.gz.
	{"foo", "1.0", "foo.1.0.src.tar.gz", LegacySeparator},
	{"foo-bar", "1.0", "FooBar.1.0.src.tar.gz", LegacyMismatch},
	{"foo-bar", "2.3", "foo_bar_2.3.tar.gz", LegacySeparator},
	{"foo", "1.0", "foo 1.0.tar.gz", LegacySeparator},
}

func TestLegacyName(t *testing.T) {
	for _, tc := range legacyCases {
		r := mkRecord(tc.project, tc.version, tc.filename, 0)
		if fe := checkRecord(&r, testGenerated, true); fe != nil {
			t.Errorf("%s (project %s, version %q) refused: %v", tc.filename, tc.project, tc.version, fe.err)
			continue
		}
		if r.Legacy != tc.want {
			t.Errorf("%s (project %s, version %q): legacy %q, want %q", tc.filename, tc.project, tc.version, r.Legacy, tc.want)
		}
	}
}

// TestExportLegacyNames reads an export holding every legacy kind, with
// both readers: every file is accepted, keeps the project the export
// names, and carries its flag; the writer gives back the same bytes.
func TestExportLegacyNames(t *testing.T) {
	var rs []Record
	for i, tc := range legacyCases {
		rs = append(rs, mkRecord(tc.project, tc.version, tc.filename, i))
	}
	slices.SortFunc(rs, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
	data := writeExport(t, testHeader(), rs)
	_, got, err := readExport(data, "legacy.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(legacyCases) {
		t.Fatalf("%d records, want %d", len(got), len(legacyCases))
	}
	kinds := map[Legacy]int{}
	for _, r := range got {
		for _, tc := range legacyCases {
			if tc.filename == r.Filename && (r.Project != tc.project || r.Legacy != tc.want) {
				t.Errorf("%s: project %q legacy %q, want %q %q", r.Filename, r.Project, r.Legacy, tc.project, tc.want)
			}
		}
		for _, k := range r.Legacy.Kinds() {
			kinds[k]++
		}
	}
	for _, k := range []Legacy{LegacyVersion, LegacySpelling, LegacySeparator, LegacyNoVersion, LegacyMismatch} {
		if kinds[k] == 0 {
			t.Errorf("no record of kind %q", k)
		}
	}
}

func TestLegacyString(t *testing.T) {
	for l := Legacy(0); l < LegacyMismatch<<1; l++ {
		s := l.String()
		back, ok := ParseLegacy(s)
		if !ok || back != l {
			t.Errorf("ParseLegacy(%q) = %v, %v, want %v", s, back, ok, l)
		}
	}
	for _, s := range []string{"x", "version+version", "mismatch+version", "+", "version+"} {
		if _, ok := ParseLegacy(s); ok {
			t.Errorf("ParseLegacy(%q) accepted", s)
		}
	}
}

func TestIsPEP440(t *testing.T) {
	for _, v := range []string{"1", "1.0", "v1.0", "1!2.0", "1.0a1", "1.0-alpha.2", "1.0rc1", "1.0.post1", "1.0-1", "1.0.dev3",
		"1.0a1.post2.dev3", "1.0+ubuntu.1", "1.0+abc-def_7", "2004b", "1.0C1", "1.0.preview2", "1.0-r4", "1.0.rev"} {
		if !IsPEP440(v) {
			t.Errorf("IsPEP440(%q) = false", v)
		}
	}
	for _, v := range []string{"", "0.2.10 alpha", "latest", "1.0-final", "1.0.", ".1", "1..0", "1.0+", "1.0+a..b", "1.0-", "1.0 ", "r1", "1.0dev-final"} {
		if IsPEP440(v) {
			t.Errorf("IsPEP440(%q) = true", v)
		}
	}
}

// TestExportAllRefusals refuses 150 bad records among good ones: the pass
// goes on, the good records keep streaming, and the error lists the first
// MaxErrors refusals in line order, each with its line and field, then
// counts the rest; both readers agree.
func TestExportAllRefusals(t *testing.T) {
	var rs []Record
	for i := range 400 {
		rs = append(rs, mkRecord("foo", "1.0", fmt.Sprintf("foo-1.0.%d.tar.gz", i), i))
	}
	slices.SortFunc(rs, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
	data := writeExport(t, testHeader(), rs)
	lines := strings.SplitAfter(string(data), "\n")
	// Lines 3, 5, 7, ... (records 2, 4, 6, ...): every other record up
	// to 150, alternating two faults.
	var bad []int
	for i := 2; len(bad) < 150; i += 2 {
		if len(bad)%2 == 0 {
			lines[i] = strings.Replace(lines[i], `"length":`, `"length":-`, 1)
		} else {
			lines[i] = strings.Replace(lines[i], `"yanked":false`, `"yanked":0`, 1)
		}
		bad = append(bad, i+1)
	}
	// The trailer's digest is of the lines as edited, so that only the
	// records are at fault.
	edited := strings.Join(lines[:len(lines)-2], "")
	data = []byte(edited + trailerLine(t, edited, 400))
	for _, mode := range []string{"sequential", "parallel 64", "parallel 4096", "parallel 1M"} {
		var got []Record
		var err error
		switch mode {
		case "sequential":
			_, got, err = readExportSeq(data, "t.jsonl")
		case "parallel 64":
			_, got, err = readExportPar(data, "t.jsonl", 64)
		case "parallel 4096":
			_, got, err = readExportPar(data, "t.jsonl", 4096)
		default:
			_, got, err = readExportPar(data, "t.jsonl", 1<<20)
		}
		var es *Errors
		if !errors.As(err, &es) {
			t.Fatalf("%s: err = %v, want *Errors", mode, err)
		}
		if len(got) != 250 {
			t.Errorf("%s: %d good records streamed, want 250", mode, len(got))
		}
		if len(es.List) != MaxErrors || es.More != 50 {
			t.Fatalf("%s: %d listed, %d more; want %d and 50", mode, len(es.List), es.More, MaxErrors)
		}
		for i, e := range es.List {
			want := ErrBadLength
			field := "length"
			if i%2 == 1 {
				want, field = ErrType, "yanked"
			}
			if e.Line != int64(bad[i]) || e.Field != field || !errors.Is(e, want) || e.File != "t.jsonl" {
				t.Fatalf("%s: refusal %d is %v, want line %d field %s cause %v", mode, i, e, bad[i], field, want)
			}
		}
		if !errors.Is(err, ErrBadLength) || !errors.Is(err, ErrType) {
			t.Errorf("%s: errors.Is does not see the listed causes", mode)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "150 errors in the export:\n  t.jsonl:3: length: bad length") || !strings.HasSuffix(msg, "\n  and 50 more") {
			t.Errorf("%s: message %q…%q", mode, msg[:80], msg[len(msg)-40:])
		}
	}
}

// trailerLine returns the trailer for the lines before it.
func trailerLine(t *testing.T, before string, count int) string {
	t.Helper()
	sum := sha256.Sum256([]byte(before))
	return fmt.Sprintf(`{"trailer":{"count":%d,"sha256":"%x"}}`+"\n", count, sum)
}

// TestExportRefusalThenFatal: a refused record, then a truncated export:
// the error lists both, the fatal one last.
func TestExportRefusalThenFatal(t *testing.T) {
	rs := smallRecords()
	data := string(writeExport(t, testHeader(), rs))
	lines := strings.SplitAfter(data, "\n")
	lines[2] = strings.Replace(lines[2], `"length":`, `"length":-`, 1)
	cut := strings.Join(lines[:len(lines)-2], "") // no trailer
	_, _, err := readExport([]byte(cut), "t.jsonl")
	var es *Errors
	if !errors.As(err, &es) || len(es.List) != 2 || es.List[0].Line != 3 || !errors.Is(es.List[0], ErrBadLength) ||
		!errors.Is(es.List[1], ErrTruncated) || es.List[1].Line != int64(len(lines)-1) {
		t.Fatalf("err = %v, want the refusal on line 3 then the truncation", err)
	}
}

// TestExportDuplicateFilename: two files with one filename under different
// paths (different content) are refused, naming both lines and both paths
// (read again from the source, an io.ReaderAt), with either reader,
// wherever they are in the export; the writer refuses to close such an
// export.
func TestExportDuplicateFilename(t *testing.T) {
	var rs []Record
	for i := range 300 {
		rs = append(rs, mkRecord("foo", "1.0", fmt.Sprintf("foo-1.0.%d.tar.gz", i), i))
	}
	dup := mkRecord("foo", "1.0", "foo-1.0.7.tar.gz", 1)
	dup.BLAKE2b256[0] ^= 0xff
	dup.Path = TargetPath(dup.BLAKE2b256, dup.Filename)
	slices.SortFunc(rs, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
	w, err := NewWriter(io.Discard, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	pair := []Record{mkRecord("foo", "1.0", "foo-1.0.7.tar.gz", 7), dup}
	slices.SortFunc(pair, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
	if err := w.Write(&pair[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&pair[1]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrDuplicateFilename) {
		t.Errorf("writer's Close: %v, want ErrDuplicateFilename", err)
	}
	// The export with both, written by hand.
	data := writeExport(t, testHeader(), rs)
	lines := strings.SplitAfter(string(data), "\n")
	dupLine := string(writeExport(t, testHeader(), []Record{dup}))
	dupLine = strings.SplitAfter(dupLine, "\n")[1]
	at, _ := slices.BinarySearchFunc(rs, dup.Path, func(r Record, p string) int { return strings.Compare(r.Path, p) })
	lines = slices.Insert(lines, at+1, dupLine)
	rs = slices.Insert(rs, at, dup)
	body := strings.Join(lines[:len(lines)-2], "")
	data = []byte(body + trailerLine(t, body, len(rs)))
	var first, second int64
	for i := range rs {
		if rs[i].Filename == "foo-1.0.7.tar.gz" {
			if first == 0 {
				first = int64(i + 2)
			} else {
				second = int64(i + 2)
			}
		}
	}
	for _, block := range []int{0, 64, 4096, 1 << 20} {
		var got []Record
		var err error
		if block == 0 {
			_, got, err = readExportSeq(data, "t.jsonl")
		} else {
			_, got, err = readExportPar(data, "t.jsonl", block)
		}
		var xe *Error
		if !errors.As(err, &xe) || !errors.Is(err, ErrDuplicateFilename) || xe.Line != second || xe.Field != "filename" {
			t.Fatalf("block %d: err = %v, want a duplicate filename on line %d", block, err, second)
		}
		want := fmt.Sprintf("t.jsonl:%d: filename: duplicate filename: \"foo-1.0.7.tar.gz\" (path %q) is also the filename of the record on line %d (path %q)",
			second, rs[second-2].Path, first, rs[first-2].Path)
		if err.Error() != want {
			t.Errorf("block %d: %q\nwant %q", block, err, want)
		}
		// Both records streamed: the check is made once every filename is
		// known, at the end of the pass.
		if len(got) != 301 {
			t.Errorf("block %d: %d records streamed, want 301", block, len(got))
		}
	}
	// A source the reader cannot read again: the lines alone.
	x, err := NewReader(struct{ io.Reader }{bytes.NewReader(data)}, "t.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = x.Next()
	}
	want := fmt.Sprintf("t.jsonl:%d: filename: duplicate filename: the record's filename is also the filename of the record on line %d", second, first)
	if !errors.Is(err, ErrDuplicateFilename) || err.Error() != want {
		t.Errorf("without a source: %q\nwant %q", err, want)
	}
}

// TestSchemaPatterns checks that the schema's patterns for version and
// filename accept and refuse what the reader does.
func TestSchemaPatterns(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "export-format.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Pattern string `json:"pattern"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	// ECMA-262's \uXXXX is RE2's \x{XXXX}.
	re := func(field string) *regexp.Regexp {
		p := schema.Defs["record"].Properties[field].Pattern
		p = regexp.MustCompile(`\\u([0-9a-f]{4})`).ReplaceAllString(p, `\x{$1}`)
		return regexp.MustCompile(p)
	}
	for _, tc := range []struct {
		field string
		re    *regexp.Regexp
		check func(string) *fieldError
		vals  []string
	}{
		{"version", re("version"), checkVersion, []string{"1.0", "0.2.10 alpha", " 1.0", "1.0 ", "1  0", "1/0", `1\0`, `1"0`, "1\x000", "1\t0", "1\u00850", "café"}},
		{"filename", re("filename"), checkFilename, []string{"foo-1.0.tar.gz", "Foo Bar-1.0.tar.gz", ".foo", ".", "..", " foo", "foo ", "a  b", "x/y", `x\y`, "a<b", "a&b", "a'b", "a`b", `a"b`, "a\x00b", "a\x7fb", "a\u009bb", "ünïcode-1.0.tar.gz"}},
	} {
		for _, v := range tc.vals {
			fe := tc.check(v)
			if fe == nil {
				fe = checkText(tc.field, v)
			}
			if got, want := tc.re.MatchString(v), fe == nil; got != want {
				t.Errorf("%s %q: schema matches %v, reader accepts %v (%v)", tc.field, v, got, want, fe)
			}
		}
	}
}

// TestReadersAgreeOnMutations: on hundreds of random edits of exports
// (one with legacy names, one with many records, each edit of a few
// bytes, some of whole lines), the sequential and the parallel reader
// return the same records and the same error, as FuzzExportParallel
// checks, deterministically.
func TestReadersAgreeOnMutations(t *testing.T) {
	var legacy []Record
	for i, tc := range legacyCases {
		legacy = append(legacy, mkRecord(tc.project, tc.version, tc.filename, i))
	}
	var many []Record
	for i := range 120 {
		many = append(many, mkRecord("foo", "1.0", fmt.Sprintf("foo-1.0.%d.tar.gz", i), i))
	}
	var bases [][]byte
	for _, rs := range [][]Record{smallRecords(), legacy, many} {
		slices.SortFunc(rs, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
		bases = append(bases, writeExport(t, testHeader(), rs))
	}
	r := rand.New(rand.NewPCG(1, 2))
	refused := 0
	for i := range 300 {
		base := bases[i%len(bases)]
		d := slices.Clone(base)
		switch i % 3 {
		case 0, 1: // a few bytes
			for range 1 + r.IntN(6) {
				d[r.IntN(len(d))] = "-.\" \\/x0\n{}:,"[r.IntN(13)]
			}
		case 2: // a line copied over another
			ls := strings.SplitAfter(string(d), "\n")
			a, b := 1+r.IntN(len(ls)-2), 1+r.IntN(len(ls)-2)
			ls[a] = ls[b]
			d = []byte(strings.Join(ls, ""))
		}
		_, rs, err := readExportSeq(d, "m")
		_, prs, perr := readExportPar(d, "m", 64+i%700)
		if fmt.Sprint(err) != fmt.Sprint(perr) {
			t.Fatalf("mutation %d: parallel %v\nsequential %v", i, perr, err)
		}
		if !reflect.DeepEqual(rs, prs) {
			t.Fatalf("mutation %d: the readers' records differ", i)
		}
		if err != nil {
			refused++
		}
	}
	if refused < 200 {
		t.Errorf("only %d of 300 mutations refused", refused)
	}
}

// FuzzParseLegacy: ParseLegacy accepts exactly what String returns, each
// kind once and in the constants' order, and gives back that value.
func FuzzParseLegacy(f *testing.F) {
	for l := Legacy(0); l < 1<<len(legacyNames); l++ {
		f.Add(l.String())
	}
	for _, s := range []string{"+", "version+", "+version", "version+version", "mismatch+version", "VERSION", "version ", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := ParseLegacy(s)
		if !ok {
			if l != 0 {
				t.Fatalf("ParseLegacy(%q) refused but returned %v", s, l)
			}
			return
		}
		if l.String() != s {
			t.Fatalf("ParseLegacy(%q) = %v, whose String is %q", s, l, l.String())
		}
	})
}
