package simpleindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"html/template"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/tuf"
)

var updatePagesGolden = flag.Bool("update-pages", false, "rewrite the golden files under testdata/pages")

// testPageFile makes a file entry whose hashes and target path are derived
// from the filename, so that golden files are stable.
func testPageFile(t testing.TB, filename, version string) PageFile {
	t.Helper()
	b2 := sha256.Sum256([]byte("blake2b stand-in for " + filename))
	h := hex.EncodeToString(b2[:])
	u, err := FileURL("", "packages/"+h[0:2]+"/"+h[2:4]+"/"+h[4:]+"/"+filename)
	if err != nil {
		t.Fatal(err)
	}
	return PageFile{
		Filename:   filename,
		Version:    version,
		URL:        u,
		SHA256:     sha256.Sum256([]byte("contents of " + filename)),
		Size:       int64(1000 + len(filename)*37),
		UploadTime: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(len(filename)) * 24 * time.Hour),
	}
}

func withCoreMetadata(f PageFile) PageFile {
	f.HasCoreMetadata = true
	f.CoreMetadataSHA256 = sha256.Sum256([]byte("metadata of " + f.Filename))
	return f
}

func yanked(f PageFile, reason string) PageFile {
	f.Yanked, f.YankedReason = true, reason
	return f
}

func requiresPython(f PageFile, spec string) PageFile {
	f.RequiresPython = spec
	return f
}

type pageCase struct {
	name    string
	project string
	files   []PageFile
}

func goldenPageCases(t testing.TB) []pageCase {
	f := func(name, version string) PageFile { return testPageFile(t, name, version) }
	noTime := f("single-0.1.tar.gz", "0.1")
	noTime.UploadTime = time.Time{}
	return []pageCase{
		{"foobar", "foobar", []PageFile{
			// deliberately out of order
			withCoreMetadata(requiresPython(f("FooBar-2.0-py3-none-any.whl", "2.0"), ">=3.8, <4")),
			requiresPython(f("foobar-2.0.tar.gz", "2.0"), ">=3.8, <4"),
			yanked(f("foobar-1.1.tar.gz", "1.1"), `broke <install> & "quoted" 'things'`),
			f("foobar-1.0.tar.gz", "1.0"),
			withCoreMetadata(f("FooBar-1.0-py2.py3-none-any.whl", "1.0")),
		}},
		{"single", "single", []PageFile{noTime}},
		{"odd-names", "zope-interface", []PageFile{
			withCoreMetadata(requiresPython(f("zope.interface-6.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "6.0"), ">=3.7")),
			requiresPython(f("zope.interface-6.0.tar.gz", "6.0"), ">=3.7"),
			yanked(f("zope_interface-5.0.0.tar.gz", "5.0.0"), ""),
			requiresPython(f("zope.interface-4.7.2.zip", "4.7.2"), ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*"),
			yanked(withCoreMetadata(f("Zope.Interface-4.7.1-py2.7-win32.egg", "4.7.1")), "sécurité ☃ — see https://example.com/?a=1&b=2"),
		}},
		{"digits", "1-2-3", []PageFile{
			f("1.2.3-0.0.1.tar.gz", "0.0.1"),
			f("1_2_3-0.0.1-py3-none-any.whl", "0.0.1"),
		}},
		{"empty", "a", nil},
	}
}

func TestRenderProjectPagesGolden(t *testing.T) {
	for _, c := range goldenPageCases(t) {
		t.Run(c.name, func(t *testing.T) {
			h, j, err := RenderProjectPages(c.project, c.files)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []struct {
				ext string
				got []byte
			}{{".html", h}, {".json", j}} {
				path := filepath.Join("testdata", "pages", c.name+g.ext)
				if *updatePagesGolden {
					if err := os.WriteFile(path, g.got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update-pages to create it)", err)
				}
				if !bytes.Equal(g.got, want) {
					t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", path, g.got, want)
				}
			}
			checkHTMLPage(t, h, c.project, c.files)
			checkJSONPage(t, j, c.project, c.files)
		})
	}
}

func TestRenderProjectPagesOrderIndependent(t *testing.T) {
	for _, c := range goldenPageCases(t) {
		h1, j1, err := RenderProjectPages(c.project, c.files)
		if err != nil {
			t.Fatal(err)
		}
		orig := slices.Clone(c.files)
		rev := slices.Clone(c.files)
		slices.Reverse(rev)
		h2, j2, err := RenderProjectPages(c.project, rev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h1, h2) || !bytes.Equal(j1, j2) {
			t.Errorf("%s: pages depend on the order of the input", c.name)
		}
		if !slices.Equal(orig, c.files) {
			t.Errorf("%s: RenderProjectPages modified its input", c.name)
		}
	}
}

func TestRenderProjectPagesRefuses(t *testing.T) {
	good := func() PageFile { return testPageFile(t, "foo-1.0.tar.gz", "1.0") }
	mod := func(m func(*PageFile)) []PageFile {
		f := good()
		m(&f)
		return []PageFile{f}
	}
	tests := []struct {
		name    string
		project string
		files   []PageFile
		field   string
		want    error
	}{
		{"empty project", "", nil, "", ErrPageProject},
		{"unnormalised project", "Foo", nil, "", ErrPageProject},
		{"underscore project", "foo_bar", nil, "", ErrPageProject},
		{"double dash", "foo--bar", nil, "", ErrPageProject},
		{"leading dash", "-foo", nil, "", ErrPageProject},
		{"trailing dash", "foo-", nil, "", ErrPageProject},
		{"slash in project", "foo/bar", nil, "", ErrPageProject},
		{"long project", strings.Repeat("a", 201), nil, "", ErrPageProject},
		{"duplicate file", "foo", []PageFile{good(), good()}, "", ErrPageDuplicateFile},
		{"empty filename", "foo", mod(func(f *PageFile) { f.Filename = "" }), "Filename", ErrPageFile},
		{"dot filename", "foo", mod(func(f *PageFile) { f.Filename, f.URL = "..", "../../x/.." }), "Filename", ErrPageFile},
		{"slash filename", "foo", mod(func(f *PageFile) { f.Filename = "a/foo-1.0.tar.gz" }), "Filename", ErrPageFile},
		{"control in filename", "foo", mod(func(f *PageFile) { f.Filename, f.URL = "foo\x00.tar.gz", "../../foo%00.tar.gz" }), "Filename", ErrPageFile},
		{"bad utf8 reason", "foo", mod(func(f *PageFile) { f.Yanked, f.YankedReason = true, "\xff" }), "YankedReason", ErrPageFile},
		{"C1 control in requires-python", "foo", mod(func(f *PageFile) { f.RequiresPython = ">=3\u0085" }), "RequiresPython", ErrPageFile},
		{"newline in reason", "foo", mod(func(f *PageFile) { f.Yanked, f.YankedReason = true, "a\nb" }), "YankedReason", ErrPageFile},
		{"reason without yank", "foo", mod(func(f *PageFile) { f.YankedReason = "x" }), "YankedReason", ErrPageFile},
		{"metadata hash without flag", "foo", mod(func(f *PageFile) { f.CoreMetadataSHA256[0] = 1 }), "CoreMetadataSHA256", ErrPageFile},
		{"empty version", "foo", mod(func(f *PageFile) { f.Version = "" }), "Version", ErrPageFile},
		{"negative size", "foo", mod(func(f *PageFile) { f.Size = -1 }), "Size", ErrPageFile},
		{"empty url", "foo", mod(func(f *PageFile) { f.URL = "" }), "URL", ErrPageFile},
		{"url of another file", "foo", mod(func(f *PageFile) { f.URL = "../../packages/aa/bb/cc/foo-2.0.tar.gz" }), "URL", ErrPageFile},
		{"url with fragment", "foo", mod(func(f *PageFile) { f.URL += "#md5=0" }), "URL", ErrPageFile},
		{"url with space", "foo", mod(func(f *PageFile) { f.URL = "../../a b/foo-1.0.tar.gz" }), "URL", ErrPageFile},
		{"url with quote", "foo", mod(func(f *PageFile) { f.URL = "../../\"x/foo-1.0.tar.gz" }), "", nil},
		{"year 10000", "foo", mod(func(f *PageFile) { f.UploadTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), "UploadTime", ErrPageFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, j, err := RenderProjectPages(tt.project, tt.files)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if h != nil || j != nil {
				t.Error("returned a page along with an error")
			}
			var pe *PageError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PageError", err)
			}
			if pe.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", pe.Field, tt.field, err)
			}
		})
	}
}

func TestPagePaths(t *testing.T) {
	tests := []struct{ in, html, json string }{
		{"foobar", "simple/foobar/index.html", "simple/foobar/index.json"},
		{"FooBar", "simple/foobar/index.html", "simple/foobar/index.json"},
		{"zope.interface", "simple/zope-interface/index.html", "simple/zope-interface/index.json"},
		{"Foo__Bar-._baz", "simple/foo-bar-baz/index.html", "simple/foo-bar-baz/index.json"},
	}
	for _, tt := range tests {
		h, j := PagePaths(tt.in)
		if h != tt.html || j != tt.json {
			t.Errorf("PagePaths(%q) = %q, %q; want %q, %q", tt.in, h, j, tt.html, tt.json)
		}
	}
}

func TestFileURL(t *testing.T) {
	tests := []struct {
		base, path, want string
		err              bool
	}{
		{"", "packages/ab/cd/ef/foo-1.0.tar.gz", "../../packages/ab/cd/ef/foo-1.0.tar.gz", false},
		{"https://files.example.org/", "packages/ab/cd/ef/foo-1.0.tar.gz", "https://files.example.org/packages/ab/cd/ef/foo-1.0.tar.gz", false},
		{"", "packages/a/foo#1?.tar.gz", "../../packages/a/foo%231%3F.tar.gz", false},
		{"", "packages/a/foo 1%.tar.gz", "../../packages/a/foo%201%25.tar.gz", false},
		{"", "packages/a/föo.tar.gz", "../../packages/a/f%C3%B6o.tar.gz", false},
		{"", "packages/a/foo-1.0+local.tar.gz", "../../packages/a/foo-1.0+local.tar.gz", false},
		{"https://x.org", "packages/a", "", true},
		{"https://x.org/?q/", "packages/a", "", true},
		{"", "", "", true},
		{"", "/packages/a", "", true},
		{"", "packages//a", "", true},
		{"", "packages/../a", "", true},
		{"", "packages/./a", "", true},
		{"", "packages/a\\b", "", true},
		{"", "packages/a\x00", "", true},
		{"", "packages/\xff", "", true},
	}
	for _, tt := range tests {
		got, err := FileURL(tt.base, tt.path)
		if tt.err {
			if !errors.Is(err, ErrTargetPath) {
				t.Errorf("FileURL(%q, %q) = %q, %v; want ErrTargetPath", tt.base, tt.path, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("FileURL(%q, %q) = %q, %v; want %q", tt.base, tt.path, got, err, tt.want)
		}
	}
}

func TestNewPageFile(t *testing.T) {
	r := &export.Record{
		Path:     "packages/ab/cd/" + strings.Repeat("e", 60) + "/foo-1.0.tar.gz",
		Project:  "foo",
		Version:  "1.0",
		Filename: "foo-1.0.tar.gz",
		Length:   42, SHA256: [32]byte{1}, UploadTime: time.Unix(1e9, 0).UTC(),
		Yanked: true, YankedReason: "r", RequiresPython: ">=3",
		CoreMetadataSHA256: [32]byte{2}, HasCoreMetadata: true,
	}
	f, err := NewPageFile(r, "")
	if err != nil {
		t.Fatal(err)
	}
	want := PageFile{
		Filename: "foo-1.0.tar.gz", Version: "1.0", URL: "../../" + r.Path,
		SHA256: [32]byte{1}, RequiresPython: ">=3", Yanked: true, YankedReason: "r",
		CoreMetadataSHA256: [32]byte{2}, HasCoreMetadata: true, Size: 42, UploadTime: r.UploadTime,
	}
	if f != want {
		t.Errorf("NewPageFile = %+v\nwant %+v", f, want)
	}
	if _, _, err := RenderProjectPages("foo", []PageFile{f}); err != nil {
		t.Error(err)
	}
}

func TestAppendUploadTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), "2020-01-02T03:04:05Z"},
		{time.Date(2020, 1, 2, 3, 4, 5, 999, time.UTC), "2020-01-02T03:04:05Z"},
		{time.Date(2020, 1, 2, 3, 4, 5, 1500, time.UTC), "2020-01-02T03:04:05.000001Z"},
		{time.Date(2020, 1, 2, 4, 4, 5, 0, time.FixedZone("x", 3600)), "2020-01-02T03:04:05Z"},
	}
	for _, tt := range tests {
		if got := string(appendUploadTime(nil, tt.t)); got != tt.want {
			t.Errorf("appendUploadTime(%v) = %s, want %s", tt.t, got, tt.want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `"q"`, `back\slash`, "a\nb\tc\rd\x01\x1f", "\u2028\u2029", "é☃😀", "<&>", "\xe2\x80", "a\xe2\x80\xa8b"} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("appendJSONString(%q) = %s: %v", s, b, err)
			continue
		}
		if got != s && strings.ToValidUTF8(s, "\ufffd") == s {
			t.Errorf("appendJSONString(%q) round-trips to %q", s, got)
		}
		if bytes.Contains(b, []byte("\u2028")) {
			t.Errorf("appendJSONString(%q) leaves U+2028 raw", s)
		}
	}
}

// anchor is one link as a strict reading of our HTML finds it.
type anchor struct {
	attrs [][2]string // name, unescaped value, in order
	text  string
}

func (a anchor) attr(name string) (string, bool) {
	for _, kv := range a.attrs {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

// parseAnchors reads the anchors out of a page the way a strict HTML
// reader would, failing the test on any raw '<', '>' or '"' where one
// cannot be, and checks that the page has exactly the tags the template
// has, so that no escaped string can have opened a tag of its own.
func parseAnchors(t testing.TB, page []byte) []anchor {
	t.Helper()
	s := string(page)
	var out []anchor
	for {
		i := strings.Index(s, "<a ")
		if i < 0 {
			break
		}
		s = s[i+3:]
		var a anchor
		for {
			s = strings.TrimLeft(s, " ")
			if strings.HasPrefix(s, ">") {
				s = s[1:]
				break
			}
			eq := strings.Index(s, "=\"")
			if eq <= 0 {
				t.Fatalf("malformed attribute at %.40q", s)
			}
			name := s[:eq]
			if strings.ContainsAny(name, " <>\"'/=&") {
				t.Fatalf("bad attribute name %q", name)
			}
			s = s[eq+2:]
			end := strings.IndexByte(s, '"')
			if end < 0 {
				t.Fatal("unterminated attribute value")
			}
			raw := s[:end]
			if strings.ContainsAny(raw, "<>'") {
				t.Fatalf("attribute %s has a raw special character: %q", name, raw)
			}
			a.attrs = append(a.attrs, [2]string{name, html.UnescapeString(raw)})
			s = s[end+1:]
		}
		end := strings.Index(s, "</a>")
		if end < 0 {
			t.Fatal("unterminated anchor")
		}
		raw := s[:end]
		if strings.ContainsAny(raw, "<>\"'") {
			t.Fatalf("anchor text has a raw special character: %q", raw)
		}
		a.text = html.UnescapeString(raw)
		out = append(out, a)
		s = s[end+4:]
	}
	// 13 tags in the template around the links, 3 per link (<a>, </a>, <br />).
	if n, want := bytes.Count(page, []byte("<")), 13+3*len(out); n != want {
		t.Fatalf("page has %d '<', want %d for %d links", n, want, len(out))
	}
	if n, want := bytes.Count(page, []byte(">")), 13+3*len(out); n != want {
		t.Fatalf("page has %d '>', want %d for %d links", n, want, len(out))
	}
	return out
}

func sortedFiles(files []PageFile) []PageFile {
	s := slices.Clone(files)
	slices.SortFunc(s, func(a, b PageFile) int { return strings.Compare(a.Filename, b.Filename) })
	return s
}

// checkHTMLPage checks that the HTML page lists exactly files, in filename
// order, with every attribute PEP 503, 592, 658 and 714 define.
func checkHTMLPage(t testing.TB, page []byte, project string, files []PageFile) {
	t.Helper()
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>\n")) {
		t.Error("page does not start with the HTML5 doctype")
	}
	if !bytes.Contains(page, []byte(`<meta name="pypi:repository-version" content="1.1">`)) {
		t.Error("page lacks the repository-version meta tag")
	}
	if !bytes.Contains(page, []byte("<title>Links for "+html.EscapeString(project)+"</title>")) {
		t.Error("page has the wrong title")
	}
	anchors := parseAnchors(t, page)
	want := sortedFiles(files)
	if len(anchors) != len(want) {
		t.Fatalf("%d links, want %d", len(anchors), len(want))
	}
	for i, a := range anchors {
		f := want[i]
		if a.text != f.Filename {
			t.Errorf("link %d text %q, want %q", i, a.text, f.Filename)
		}
		if href, _ := a.attr("href"); href != f.URL+"#sha256="+hex.EncodeToString(f.SHA256[:]) {
			t.Errorf("link %d href %q", i, href)
		}
		rp, ok := a.attr("data-requires-python")
		if ok != (f.RequiresPython != "") || rp != f.RequiresPython {
			t.Errorf("link %d data-requires-python %q (present %v), want %q", i, rp, ok, f.RequiresPython)
		}
		y, ok := a.attr("data-yanked")
		if ok != f.Yanked || y != f.YankedReason {
			t.Errorf("link %d data-yanked %q (present %v), want %v %q", i, y, ok, f.Yanked, f.YankedReason)
		}
		for _, name := range []string{"data-core-metadata", "data-dist-info-metadata"} {
			v, ok := a.attr(name)
			if ok != f.HasCoreMetadata || ok && v != "sha256="+hex.EncodeToString(f.CoreMetadataSHA256[:]) {
				t.Errorf("link %d %s %q (present %v)", i, name, v, ok)
			}
		}
	}
}

// jsonPage is the PEP 691 / PEP 700 project page, decoded strictly.
type jsonPage struct {
	Meta struct {
		APIVersion string `json:"api-version"`
	} `json:"meta"`
	Name  string `json:"name"`
	Files []struct {
		Filename       string            `json:"filename"`
		URL            string            `json:"url"`
		Hashes         map[string]string `json:"hashes"`
		RequiresPython *string           `json:"requires-python"`
		CoreMetadata   json.RawMessage   `json:"core-metadata"`
		Yanked         json.RawMessage   `json:"yanked"`
		Size           *int64            `json:"size"`
		UploadTime     *string           `json:"upload-time"`
	} `json:"files"`
	Versions []string `json:"versions"`
}

func decodeJSONPage(page []byte) (*jsonPage, error) {
	dec := json.NewDecoder(bytes.NewReader(page))
	dec.DisallowUnknownFields()
	var p jsonPage
	if err := dec.Decode(&p); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return &p, nil
}

// checkJSONPage checks that the JSON page decodes strictly and says what
// files say.
func checkJSONPage(t testing.TB, page []byte, project string, files []PageFile) {
	t.Helper()
	if !json.Valid(page) {
		t.Fatalf("JSON page is not valid JSON: %s", page)
	}
	p, err := decodeJSONPage(page)
	if err != nil {
		t.Fatalf("decoding JSON page: %v", err)
	}
	if p.Meta.APIVersion != "1.1" || p.Name != project {
		t.Errorf("meta %q name %q", p.Meta.APIVersion, p.Name)
	}
	want := sortedFiles(files)
	if len(p.Files) != len(want) {
		t.Fatalf("%d files, want %d", len(p.Files), len(want))
	}
	versions := map[string]bool{}
	for i, g := range p.Files {
		f := want[i]
		versions[f.Version] = true
		if g.Filename != f.Filename || g.URL != f.URL {
			t.Errorf("file %d: %q %q, want %q %q", i, g.Filename, g.URL, f.Filename, f.URL)
		}
		if len(g.Hashes) != 1 || g.Hashes["sha256"] != hex.EncodeToString(f.SHA256[:]) {
			t.Errorf("file %d hashes %v", i, g.Hashes)
		}
		if (g.RequiresPython != nil) != (f.RequiresPython != "") || g.RequiresPython != nil && *g.RequiresPython != f.RequiresPython {
			t.Errorf("file %d requires-python %v, want %q", i, g.RequiresPython, f.RequiresPython)
		}
		wantCore := "false"
		if f.HasCoreMetadata {
			wantCore = `{"sha256":"` + hex.EncodeToString(f.CoreMetadataSHA256[:]) + `"}`
		}
		if string(g.CoreMetadata) != wantCore {
			t.Errorf("file %d core-metadata %s, want %s", i, g.CoreMetadata, wantCore)
		}
		var y any
		if err := json.Unmarshal(g.Yanked, &y); err != nil {
			t.Errorf("file %d yanked: %v", i, err)
		}
		switch {
		case !f.Yanked && y != false, f.Yanked && f.YankedReason == "" && y != true, f.Yanked && f.YankedReason != "" && y != f.YankedReason:
			t.Errorf("file %d yanked %v, want %v %q", i, y, f.Yanked, f.YankedReason)
		}
		if g.Size == nil || *g.Size != f.Size {
			t.Errorf("file %d size %v, want %d", i, g.Size, f.Size)
		}
		if f.UploadTime.IsZero() != (g.UploadTime == nil) {
			t.Errorf("file %d upload-time %v, want %v", i, g.UploadTime, f.UploadTime)
		} else if g.UploadTime != nil {
			ut, err := time.Parse(time.RFC3339Nano, *g.UploadTime)
			if err != nil || !ut.Equal(f.UploadTime.Truncate(time.Microsecond)) || !strings.HasSuffix(*g.UploadTime, "Z") {
				t.Errorf("file %d upload-time %q, want %v (%v)", i, *g.UploadTime, f.UploadTime, err)
			}
		}
	}
	if len(p.Versions) != len(versions) || !slices.IsSorted(p.Versions) {
		t.Errorf("versions %q, want the sorted set of %d", p.Versions, len(versions))
	}
	for _, v := range p.Versions {
		if !versions[v] {
			t.Errorf("version %q has no file", v)
		}
	}
}

func FuzzRenderProjectPages(f *testing.F) {
	f.Add("foobar", "foobar-1.0.tar.gz", "1.0", ">=3.8, <4", true, `bad <b>&"'`, true, int64(10), int64(1700000000), "foobar-1.0-py3-none-any.whl")
	f.Add("a", "a-1", "1", "", false, "", false, int64(0), int64(0), "a-2")
	f.Add("x-y", "x%y-1.0#?.zip", "1.0+local", "\u2028", true, "", false, int64(1<<40), int64(-62135596800), "x'y")
	f.Fuzz(func(t *testing.T, project, name1, version, rp string, isYanked bool, reason string, hasCore bool, size, unix int64, name2 string) {
		var files []PageFile
		for i, name := range []string{name1, name2} {
			u, err := FileURL("", "packages/ab/cd/ef/"+name)
			if err != nil {
				u = "../../" + name // let the renderer judge it
			}
			pf := PageFile{
				Filename: name, Version: version, URL: u,
				SHA256:         sha256.Sum256([]byte(name)),
				RequiresPython: rp, Yanked: isYanked && i == 0, Size: size,
				HasCoreMetadata: hasCore,
			}
			if pf.Yanked {
				pf.YankedReason = reason
			}
			if hasCore {
				pf.CoreMetadataSHA256 = sha256.Sum256([]byte("m" + name))
			}
			if unix != 0 {
				pf.UploadTime = time.Unix(unix, 0)
			}
			files = append(files, pf)
		}
		h, j, err := RenderProjectPages(project, files)
		if err != nil {
			var pe *PageError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PageError", err)
			}
			return
		}
		checkHTMLPage(t, h, project, files)
		checkJSONPage(t, j, project, files)
		h2, j2, _ := RenderProjectPages(project, []PageFile{files[1], files[0]})
		if !bytes.Equal(h, h2) || !bytes.Equal(j, j2) {
			t.Fatal("output depends on input order")
		}
	})
}

// BenchmarkRenderProjectPages renders pages for projects of a typical
// size and of a large one, with one Renderer (as the pipeline does), and
// reports files rendered per second.
func BenchmarkRenderProjectPages(b *testing.B) {
	for _, perProject := range []int{1, 20, 500, 20000} {
		b.Run(fmt.Sprintf("files=%d", perProject), func(b *testing.B) {
			files := make([]PageFile, perProject)
			for i := range files {
				pf := testPageFile(b, fmt.Sprintf("benchmark_project-%d.%d.0-py3-none-any.whl", i/4, i%4), fmt.Sprintf("%d.%d.0", i/4, i%4))
				if i%2 == 0 {
					pf = withCoreMetadata(pf)
				}
				if i%3 == 0 {
					pf.RequiresPython = ">=3.8, <4"
				}
				files[i] = pf
			}
			var (
				n int
				r Renderer
			)
			b.ReportAllocs()
			for b.Loop() {
				h, j, err := r.Render("benchmark-project", files)
				if err != nil {
					b.Fatal(err)
				}
				n += len(h) + len(j)
			}
			b.ReportMetric(float64(perProject*b.N)/b.Elapsed().Seconds(), "files/s")
			b.ReportMetric(float64(n)/float64(perProject*b.N), "bytes/file")
		})
	}
}

// htmlTemplatePage is the HTML page written with html/template, only to
// measure what the hand-written renderer saves (BenchmarkHTMLTemplate).
var htmlTemplatePage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="pypi:repository-version" content="1.1">
    <title>Links for {{.Project}}</title>
  </head>
  <body>
    <h1>Links for {{.Project}}</h1>
{{range .Files}}    <a href="{{.URL}}#sha256={{.Hash}}"{{if .RequiresPython}} data-requires-python="{{.RequiresPython}}"{{end}}{{if .Yanked}} data-yanked="{{.YankedReason}}"{{end}}{{if .Core}} data-dist-info-metadata="sha256={{.Core}}" data-core-metadata="sha256={{.Core}}"{{end}}>{{.Filename}}</a><br />
{{end}}  </body>
</html>
`))

// BenchmarkHTMLTemplate renders only the HTML page of 20 files with
// html/template, for comparison with BenchmarkRenderProjectPages (which
// renders both pages).
func BenchmarkHTMLTemplate(b *testing.B) {
	type file struct {
		URL, Hash, RequiresPython, YankedReason, Core, Filename string
		Yanked                                                  bool
	}
	var files []file
	for i := 0; i < 20; i++ {
		pf := testPageFile(b, fmt.Sprintf("benchmark_project-%d.%d.0-py3-none-any.whl", i/4, i%4), "1")
		f := file{URL: pf.URL, Hash: hex.EncodeToString(pf.SHA256[:]), Filename: pf.Filename}
		if i%2 == 0 {
			f.Core = f.Hash
		}
		if i%3 == 0 {
			f.RequiresPython = ">=3.8, <4"
		}
		files = append(files, f)
	}
	data := struct {
		Project string
		Files   []file
	}{"benchmark-project", files}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := htmlTemplatePage.Execute(&buf, data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(20*b.N)/b.Elapsed().Seconds(), "files/s")
}

// The fast path of FileURL (plain target paths) gives what escaping
// segment by segment gives.
func TestFileURLPlainPath(t *testing.T) {
	for p, plain := range map[string]bool{
		"packages/ab/cd/0123456789abcdef/foo-1.0.tar.gz":     true,
		"packages/ab/cd/ef/Foo_Bar-1.0~rc1-py3-none-any.whl": true,
		"a": true, "a/b": true,
		"a//b": false, "a/./b": false, "a/..": false, "a b": false, "a/b/": false, "/a": false, "": false,
		"a+b": false, "a%20": false, "a#b": false, "caf\u00e9": false, ".": false,
	} {
		if plainTargetPath(p) != plain {
			t.Errorf("plainTargetPath(%q) = %v", p, !plain)
		}
		if !plain {
			continue
		}
		segs := strings.Split(p, "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		if got, err := FileURL("", p); err != nil || got != RelativeFileBase+strings.Join(segs, "/") {
			t.Errorf("FileURL(%q) = %q, %v", p, got, err)
		}
	}
}

// TestLayouts: each naming layout's page paths, and its delegation
// patterns match them (one "*" per segment) and not the other layout's
// names for a project.
func TestLayouts(t *testing.T) {
	for _, c := range []struct {
		l          Layout
		html, json string
	}{
		{LayoutPEP458, "simple/zope-interface/index.html", "simple/zope-interface/index.json"},
		{LayoutWarehouse, "simple/zope-interface/zope-interface.html", "simple/zope-interface/zope-interface.json"},
		{"", "simple/zope-interface/index.html", "simple/zope-interface/index.json"},
	} {
		h, j := c.l.PagePaths("Zope.Interface")
		if h != c.html || j != c.json {
			t.Errorf("%q: %s %s", c.l, h, j)
		}
		d := tuf.DelegatedRole{Name: "stable", Paths: c.l.TargetPatterns()}
		if !d.Matches(h) || !d.Matches(j) || d.Matches("simple/zope-interface") || d.Matches("packages/ab/cd/ef/x.html") {
			t.Errorf("%q: patterns %v", c.l, d.Paths)
		}
	}
	if h, _ := PagePaths("Zope.Interface"); h != "simple/zope-interface/index.html" {
		t.Errorf("PagePaths: %s", h)
	}
	pep := tuf.DelegatedRole{Paths: LayoutPEP458.TargetPatterns()}
	if wh, _ := LayoutWarehouse.PagePaths("foo"); pep.Matches(wh) {
		t.Errorf("the pep458 patterns match the warehouse page %s", wh)
	}
}

// TestRendererReuse: one Renderer, rendering project after project (a
// large one, whose buffers it lets go, before small ones, so that a page
// shorter than the buffer's last contents shows any stale byte), gives RenderProjectPages' bytes and
// the JSON page's versions; files whose names and URLs hold the bytes
// the pages escape are escaped, as checkHTMLPage and checkJSONPage parse
// them back.
func TestRendererReuse(t *testing.T) {
	cases := goldenPageCases(t)
	var big []PageFile
	for i := range rendererKeepFiles + 100 { // pages over rendererKeep too
		big = append(big, testPageFile(t, fmt.Sprintf("big-%d.%d.tar.gz", i/3, i%3), fmt.Sprintf("%d", i/3)))
	}
	var odd []PageFile
	for _, name := range []string{`a&amp;b-1.0.tar.gz`, `a<b>-1.0.tar.gz`, `a"b"-1.0.tar.gz`, `a'b-1.0.tar.gz`, `a\b-1.0.tar.gz`, "a\u2028b-1.0.tar.gz", "a&b-1.0.tar.gz", "a%20b-1.0.tar.gz"} {
		if strings.Contains(name, `\`) {
			continue // a backslash is refused in a filename
		}
		odd = append(odd, requiresPython(testPageFile(t, name, "1.0"), `>="3" & <'4'`))
	}
	// Names that are prefixes of one another, ending before, at and
	// after the 8 bytes the sort compares first.
	var prefixes []PageFile
	for _, name := range []string{"p-1.0.0.tar.gz", "p", "p-", "p-1", "p-1.0", "p-1.0.0", "p-1.0.0.", "p-1.0.0.tar", "p-1.0.0.tar.gz.asc",
		"p-1.0.0.tar.gy", "p-10", "p-1a", "p-1\u00e9", "p-1.0.0.tar.gz~", "p-1.0.0.tar.g"} {
		prefixes = append(prefixes, testPageFile(t, name, "1"))
	}
	cases = append([]pageCase{{"big", "big", big}}, append(cases, pageCase{"odd", "odd", odd}, pageCase{"prefixes", "p", prefixes}, pageCase{"big", "big", big})...)
	var r Renderer
	for _, c := range cases {
		wantH, wantJ, err := RenderProjectPages(c.project, c.files)
		if err != nil {
			t.Fatal(err)
		}
		h, j, err := r.Render(c.project, c.files)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h, wantH) || !bytes.Equal(j, wantJ) {
			t.Errorf("%s: the reused Renderer's pages differ from RenderProjectPages'", c.name)
		}
		checkHTMLPage(t, h, c.project, c.files)
		checkJSONPage(t, j, c.project, c.files)
		var p struct{ Versions []string }
		if err := json.Unmarshal(j, &p); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Versions(), p.Versions) && len(p.Versions)+len(r.Versions()) > 0 {
			t.Errorf("%s: Versions %q, the page lists %q", c.name, r.Versions(), p.Versions)
		}
	}
	if _, _, err := r.Render("odd", append(odd, odd[0])); !errors.Is(err, ErrPageDuplicateFile) {
		t.Errorf("a duplicate after reuse: %v", err)
	}
}

// TestAppendUploadTimeAsFormat: the hand-written upload time is what
// time.Time.AppendFormat gives with the PEP 700 layouts, over the years
// 1 to 9999, with and without a fraction of a second.
func TestAppendUploadTimeAsFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lo, hi := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	for i := range 20000 {
		ns := int64(0)
		switch i % 4 {
		case 1:
			ns = rng.Int64N(1e9)
		case 2:
			ns = rng.Int64N(1000) // under a microsecond: no fraction
		case 3:
			ns = 1000 * rng.Int64N(1e6)
		}
		tm := time.Unix(lo+rng.Int64N(hi-lo+1), ns)
		if i%5 == 0 {
			tm = tm.In(time.FixedZone("x", 3600*(i%13-6)))
		}
		u := tm.UTC()
		want := u.AppendFormat(nil, "2006-01-02T15:04:05Z")
		if u.Nanosecond()/1000 != 0 {
			want = u.AppendFormat(nil, "2006-01-02T15:04:05.000000Z")
		}
		if got := appendUploadTime(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("%v: %s, AppendFormat %s", tm, got, want)
		}
	}
}

// TestWriteFileURL: WriteFileURL writes what FileURL returns, or
// nothing and its error.
func TestWriteFileURL(t *testing.T) {
	for _, c := range []struct{ base, path string }{
		{"", "packages/ab/cd/ef/foo-1.0.tar.gz"}, {"", "packages/ab/cd/ef/foo bar+1.0.tar.gz"}, {"", "a//b"}, {"", ""},
		{"https://files.example/", "packages/a/b"}, {"https://files.example", "packages/a/b"}, {"", "caf\u00e9/x"}, {"", "a/../b"},
	} {
		want, werr := FileURL(c.base, c.path)
		var sb strings.Builder
		sb.WriteString("prefix:")
		err := WriteFileURL(&sb, c.base, c.path)
		got := sb.String()
		if (err != nil) != (werr != nil) || err == nil && got != "prefix:"+want || err != nil && (got != "prefix:" || !errors.Is(err, ErrTargetPath)) {
			t.Errorf("WriteFileURL(%q, %q) = %q, %v; FileURL %q, %v", c.base, c.path, got, err, want, werr)
		}
	}
}
