package simpleindex

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// SimpleAPIVersion is the simple repository API version the stable index
// pages declare: 1.1 (PEP 700) is the newest version whose features they
// use, in both the HTML meta tag (PEP 629) and the JSON meta.api-version
// (PEP 691).
const SimpleAPIVersion = "1.1"

// RelativeFileBase is the base FileURL uses when given none: it leads from
// a page at simple/<project>/ (or simple/<project>/index.html) back to the
// repository root, where the target paths (packages/...) start.
const RelativeFileBase = "../../"

// PageFile is one file as a project's simple index page lists it.
type PageFile struct {
	Filename string // the file's name, the last segment of URL
	Version  string // the release it belongs to (listed in the JSON "versions", PEP 700)
	URL      string // where to fetch it from, usually FileURL("", target path); no fragment

	SHA256 [32]byte

	RequiresPython string // the Requires-Python specifier, or empty
	Yanked         bool
	YankedReason   string // empty unless Yanked; may be empty when Yanked

	// CoreMetadataSHA256 is the SHA-256 of the file's core metadata
	// (PEP 658/714), valid when HasCoreMetadata is true.
	CoreMetadataSHA256 [32]byte
	HasCoreMetadata    bool

	Size       int64     // bytes
	UploadTime time.Time // shown in the JSON page (PEP 700); zero to leave out
}

// Causes of page errors, wrapped by a *PageError; check with errors.Is.
var (
	ErrPageProject       = errors.New("bad project name for an index page")
	ErrPageFile          = errors.New("bad file for an index page")
	ErrPageDuplicateFile = errors.New("file listed twice on an index page")
	ErrTargetPath        = errors.New("bad target path")
)

// PageError says which project, file and field an index page cannot be
// rendered for.
type PageError struct {
	Project  string // as given, quoted in the message
	Filename string // empty when the project itself is at fault
	Field    string // the PageFile field at fault, or empty
	Err      error  // one of the ErrPage* sentinels, with detail
}

func (e *PageError) Error() string {
	var b strings.Builder
	b.WriteString("index page for project ")
	b.WriteString(strconv.Quote(e.Project))
	if e.Filename != "" {
		b.WriteString(", file ")
		b.WriteString(strconv.Quote(e.Filename))
	}
	if e.Field != "" {
		b.WriteString(", field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *PageError) Unwrap() error { return e.Err }

// Layout is a naming layout of the stable index pages: the target paths a
// project's two pages have. docs/tuf-layout.md sets them side by side.
type Layout string

const (
	// LayoutPEP458 names the pages simple/<project>/index.html and
	// simple/<project>/index.json, the directory's index as PEP 503 and
	// PEP 691 serve it; a consistent-snapshot client fetches
	// simple/<project>/<hash>.index.html (PEP 458, "Consistent
	// Snapshots": HASH.FILENAME).
	LayoutPEP458 Layout = "pep458"
	// LayoutWarehouse names them simple/<project>/<project>.html and
	// simple/<project>/<project>.json, so that a consistent-snapshot
	// client fetches simple/<project>/<blake2b-256>.<project>.html: the
	// name Warehouse stores each rendered page under
	// (warehouse/packaging/utils.py, render_simple_detail), the hash
	// being the first the entry lists (blake2b-256 sorts before sha256).
	LayoutWarehouse Layout = "warehouse"
)

// PagePaths returns the TUF target paths of a project's stable index pages
// in layout l (LayoutPEP458 for any other value), the project name
// normalised as PEP 503 says. The name must be a valid project name
// (RenderProjectPages refuses any other); this function does not check.
func (l Layout) PagePaths(project string) (htmlPath, jsonPath string) {
	n := export.NormalizeProject(project)
	dir := "simple/" + n + "/"
	if l == LayoutWarehouse {
		return dir + n + ".html", dir + n + ".json"
	}
	return dir + "index.html", dir + "index.json"
}

// PagePaths returns the pages' target paths in LayoutPEP458:
// simple/<project>/index.html and simple/<project>/index.json.
func PagePaths(project string) (htmlPath, jsonPath string) {
	return LayoutPEP458.PagePaths(project)
}

// TargetPatterns returns the delegation path patterns (one "*" per
// segment) that cover the pages of layout l.
func (l Layout) TargetPatterns() []string {
	if l == LayoutWarehouse {
		return []string{"simple/*/*.html", "simple/*/*.json"}
	}
	return []string{"simple/*/index.html", "simple/*/index.json"}
}

// FileURL returns the URL an index page links a target to: base followed by
// each segment of targetPath, percent-escaped. An empty base means
// RelativeFileBase, which resolves against the page's own URL to
// <repository root>/<targetPath>; a non-empty base must end in '/'.
func FileURL(base, targetPath string) (string, error) {
	if base == "" {
		base = RelativeFileBase
	}
	if !strings.HasSuffix(base, "/") || !printableASCII(base) || strings.ContainsAny(base, "#?") {
		return "", fmt.Errorf("base %q must be printable ASCII without '#' or '?', ending in '/': %w", base, ErrTargetPath)
	}
	if targetPath == "" || !utf8.ValidString(targetPath) {
		return "", fmt.Errorf("target path %q is empty or not UTF-8: %w", targetPath, ErrTargetPath)
	}
	if plainTargetPath(targetPath) {
		return base + targetPath, nil
	}
	var b strings.Builder
	b.Grow(len(base) + len(targetPath) + 8)
	b.WriteString(base)
	for i, seg := range strings.Split(targetPath, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, '\\') || hasControl(seg) {
			return "", fmt.Errorf("target path %q: segment %d is empty, a dot segment or has a backslash or control character: %w", targetPath, i+1, ErrTargetPath)
		}
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(seg))
	}
	return b.String(), nil
}

// WriteFileURL writes FileURL(base, targetPath) to sb, or nothing when
// that is an error: for a caller that keeps many URLs in one string.
func WriteFileURL(sb *strings.Builder, base, targetPath string) error {
	if base == "" && plainTargetPath(targetPath) {
		sb.WriteString(RelativeFileBase)
		sb.WriteString(targetPath)
		return nil
	}
	u, err := FileURL(base, targetPath)
	if err != nil {
		return err
	}
	sb.WriteString(u)
	return nil
}

// urlPlain marks the bytes url.PathEscape leaves as they are and that no
// check of FileURL refuses: letters, digits, '-', '.', '_', '~'.
var urlPlain = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
	}
	return t
}()

// plainTargetPath reports whether targetPath is made of segments that
// FileURL accepts and escaping leaves unchanged (the common case), so that
// the URL is the path itself: only urlPlain bytes and single '/'
// separators, no empty, "." or ".." segment.
func plainTargetPath(p string) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if !urlPlain[p[i]] {
				return false
			}
			continue
		}
		seg := p[start:i]
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		start = i + 1
	}
	return true
}

// NewPageFile returns the index page entry for an export record, linked
// with FileURL(base, r.Path).
func NewPageFile(r *export.Record, base string) (PageFile, error) {
	u, err := FileURL(base, r.Path)
	if err != nil {
		return PageFile{}, err
	}
	return PageFile{
		Filename:           r.Filename,
		Version:            r.Version,
		URL:                u,
		SHA256:             r.SHA256,
		RequiresPython:     r.RequiresPython,
		Yanked:             r.Yanked,
		YankedReason:       r.YankedReason,
		CoreMetadataSHA256: r.CoreMetadataSHA256,
		HasCoreMetadata:    r.HasCoreMetadata,
		Size:               r.Length,
		UploadTime:         r.UploadTime,
	}, nil
}

// RenderProjectPages renders a project's simple index page twice: as PEP 503
// HTML (with the PEP 592, 629, 658 and 714 attributes) and as PEP 691 JSON
// (with the PEP 700 fields), both declaring SimpleAPIVersion.
//
// project must be a PEP 503-normalised name. files may come in any order
// and is not modified; the pages list them sorted by filename (bytewise),
// so the output depends only on the set of files: the same input gives
// the same bytes on every machine and every run. Invalid input (a bad
// project name, an empty or duplicate filename, a URL whose last segment is
// not the filename, invalid UTF-8 or control characters in any string, a
// negative size) is refused with a *PageError and nothing is returned.
func RenderProjectPages(project string, files []PageFile) (html, jsonPage []byte, err error) {
	var r Renderer
	return r.Render(project, files)
}

// A Renderer renders projects' pages as RenderProjectPages does, into
// buffers it keeps from one project to the next (up to 1 MiB a page):
// for a caller that renders many projects and is done with a project's
// pages before the next (one allocation of each page's size a project
// otherwise, which the collector must then clear). The zero value is
// ready; a Renderer is not safe for concurrent use.
type Renderer struct {
	html, json []byte
	sorted     []pageEntry
	versions   []string
}

// pageEntry is a file as Render lays it out: its sort key and which of
// its strings need no escaping (plainFilename, ...).
type pageEntry struct {
	*PageFile
	key   uint64 // the filename's first 8 bytes after the project's common prefix
	plain uint8
}

// appendText appends s, escaped by esc unless plain.
func appendText(b []byte, s string, plain bool, esc func([]byte, string) []byte) []byte {
	if plain {
		return append(b, s...)
	}
	return esc(b, s)
}

// Render renders a project's pages as RenderProjectPages does. The pages
// are valid until the next call.
func (r *Renderer) Render(project string, files []PageFile) (html, jsonPage []byte, err error) {
	if err := checkPageProject(project); err != nil {
		return nil, nil, &PageError{Project: project, Err: err}
	}
	sorted := slices.Grow(r.sorted[:0], len(files))
	htmlSize, jsonSize := 400+2*len(project), 100+len(project)
	for i := range files {
		f := &files[i]
		field, plain, err := checkPageFile(f)
		if err != nil {
			return nil, nil, &PageError{Project: project, Filename: f.Filename, Field: field, Err: err}
		}
		sorted = append(sorted, pageEntry{PageFile: f, plain: plain})
		n := len(f.Filename) + len(f.URL) + len(f.RequiresPython) + len(f.YankedReason)
		htmlSize += 320 + 2*n
		jsonSize += 300 + 2*n + len(f.Version)
	}
	r.sorted = sorted
	// By filename: the names share a prefix (the project's name, often
	// the version's first digits), so each is compared from the end of
	// the prefix all share, most comparisons by the 8 bytes after it
	// (zero-padded: a filename has no zero byte, so a name that ends
	// there sorts first, as it would bytewise).
	common := 0
	if len(sorted) > 0 {
		first := sorted[0].Filename
		common = len(first)
		for _, e := range sorted[1:] {
			n := 0
			for n < common && n < len(e.Filename) && e.Filename[n] == first[n] {
				n++
			}
			common = n
		}
	}
	for i := range sorted {
		var k [8]byte
		copy(k[:], sorted[i].Filename[common:])
		sorted[i].key = binary.BigEndian.Uint64(k[:])
	}
	slices.SortFunc(sorted, func(a, b pageEntry) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return strings.Compare(a.Filename[common:], b.Filename[common:])
	})
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Filename == sorted[i-1].Filename {
			return nil, nil, &PageError{Project: project, Filename: sorted[i].Filename, Err: ErrPageDuplicateFile}
		}
	}
	r.versions = appendPageVersions(r.versions[:0], sorted)
	html, jsonPage = appendPages(slices.Grow(r.html[:0], htmlSize), slices.Grow(r.json[:0], jsonSize), project, sorted, r.versions)
	r.html, r.json = keepBuffer(html), keepBuffer(jsonPage)
	if len(files) > rendererKeepFiles {
		r.sorted = nil
	}
	return html, jsonPage, nil
}

// rendererKeep is the largest buffer a Renderer keeps for the next
// project (rendererKeepFiles, the most files it keeps room for): a large
// project's pages (megabytes, more at PyPI's largest) are let go with the
// call after, so that they do not stay live, which would let the
// collector's target grow with them.
const (
	rendererKeep      = 1 << 20
	rendererKeepFiles = 4096
)

// keepBuffer is b to reuse, or nil when b is over rendererKeep.
func keepBuffer(b []byte) []byte {
	if cap(b) > rendererKeep {
		return nil
	}
	return b
}

// Versions returns the distinct versions of the files of the pages Render
// last rendered, sorted bytewise: the JSON page's "versions". The slice
// is valid until the next call of Render.
func (r *Renderer) Versions() []string { return r.versions }

// appendPages appends both pages, file by file to each: each hash is
// encoded in hex once for both.
func appendPages(h, j []byte, project string, files []pageEntry, versions []string) ([]byte, []byte) {
	h = append(h, "<!DOCTYPE html>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"utf-8\">\n    <meta name=\"pypi:repository-version\" content=\""+SimpleAPIVersion+"\">\n    <title>Links for "...)
	h = appendHTMLEscaped(h, project)
	h = append(h, "</title>\n  </head>\n  <body>\n    <h1>Links for "...)
	h = appendHTMLEscaped(h, project)
	h = append(h, "</h1>\n"...)
	j = append(j, `{"meta":{"api-version":"`+SimpleAPIVersion+`"},"name":`...)
	j = appendJSONString(j, project)
	j = append(j, `,"files":[`...)
	var hx [128]byte // SHA256, then CoreMetadataSHA256
	for i := range files {
		f := &files[i]
		hex.Encode(hx[:64], f.SHA256[:])
		if f.HasCoreMetadata {
			hex.Encode(hx[64:], f.CoreMetadataSHA256[:])
		}
		h = appendHTMLFile(h, f, &hx)
		if i > 0 {
			j = append(j, ',')
		}
		j = appendJSONFile(j, f, &hx)
	}
	h = append(h, "  </body>\n</html>\n"...)
	j = append(j, `],"versions":[`...)
	for i, v := range versions {
		if i > 0 {
			j = append(j, ',')
		}
		j = appendJSONString(j, v)
	}
	return h, append(j, "]}\n"...)
}

// appendHTMLFile appends a file's link; hx holds its hashes in hex.
func appendHTMLFile(b []byte, f *pageEntry, hx *[128]byte) []byte {
	b = append(b, "    <a href=\""...)
	b = appendText(b, f.URL, f.plain&plainURL != 0, appendHTMLEscaped)
	b = append(b, "#sha256="...)
	b = append(b, hx[:64]...)
	b = append(b, '"')
	if f.RequiresPython != "" {
		b = append(b, " data-requires-python=\""...)
		b = appendText(b, f.RequiresPython, f.plain&plainRequiresPython != 0, appendHTMLEscaped)
		b = append(b, '"')
	}
	if f.Yanked {
		b = append(b, " data-yanked=\""...)
		b = appendHTMLEscaped(b, f.YankedReason)
		b = append(b, '"')
	}
	if f.HasCoreMetadata {
		// PEP 714: data-core-metadata is the name; the legacy
		// data-dist-info-metadata may accompany it with the same value,
		// for clients older than PEP 714 (PyPI sends both).
		b = append(b, " data-dist-info-metadata=\"sha256="...)
		b = append(b, hx[64:]...)
		b = append(b, "\" data-core-metadata=\"sha256="...)
		b = append(b, hx[64:]...)
		b = append(b, '"')
	}
	b = append(b, '>')
	b = appendText(b, f.Filename, f.plain&plainFilename != 0, appendHTMLEscaped)
	return append(b, "</a><br />\n"...)
}

// appendJSONFile appends a file's object; hx holds its hashes in hex.
func appendJSONFile(b []byte, f *pageEntry, hx *[128]byte) []byte {
	b = append(b, `{"filename":`...)
	b = appendQuoted(b, f.Filename, f.plain&plainFilename != 0)
	b = append(b, `,"url":`...)
	b = appendQuoted(b, f.URL, f.plain&plainURL != 0)
	b = append(b, `,"hashes":{"sha256":"`...)
	b = append(b, hx[:64]...)
	b = append(b, `"}`...)
	if f.RequiresPython != "" {
		b = append(b, `,"requires-python":`...)
		b = appendQuoted(b, f.RequiresPython, f.plain&plainRequiresPython != 0)
	}
	if f.HasCoreMetadata {
		b = append(b, `,"core-metadata":{"sha256":"`...)
		b = append(b, hx[64:]...)
		b = append(b, `"}`...)
	} else {
		b = append(b, `,"core-metadata":false`...)
	}
	switch {
	case !f.Yanked:
		b = append(b, `,"yanked":false`...)
	case f.YankedReason == "":
		b = append(b, `,"yanked":true`...)
	default:
		b = append(b, `,"yanked":`...)
		b = appendJSONString(b, f.YankedReason)
	}
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, f.Size, 10)
	if !f.UploadTime.IsZero() {
		b = append(b, `,"upload-time":"`...)
		b = appendUploadTime(b, f.UploadTime)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendQuoted appends s as a JSON string: quoted as it is when plain.
func appendQuoted(b []byte, s string, plain bool) []byte {
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return appendJSONString(b, s)
}

// appendPageVersions appends the distinct versions of files (sorted by
// filename), sorted bytewise, to vs. PEP 700 makes "versions" a set;
// sorting makes it deterministic. A release's files are mostly neighbours
// in filename order, so repeats next to each other are dropped before
// the sort.
func appendPageVersions(vs []string, files []pageEntry) []string {
	start := len(vs)
	for i, f := range files {
		if i == 0 || f.Version != files[i-1].Version {
			vs = append(vs, f.Version)
		}
	}
	slices.Sort(vs[start:])
	return vs[:start+len(slices.Compact(vs[start:]))]
}

// appendUploadTime appends t in UTC as PEP 700 asks:
// yyyy-mm-ddThh:mm:ssZ, with .ffffff (microseconds) only when t has a
// fraction of a second; what t.AppendFormat gives with those layouts, for
// a year from 0 to 9999 (checkPageFile refuses the others).
func appendUploadTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		if t.Nanosecond()/1000 == 0 {
			return t.AppendFormat(b, "2006-01-02T15:04:05Z")
		}
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	}
	h, mi, s := t.Clock()
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+mo/10), byte('0'+mo%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10))
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		for div := 100000; div > 0; div /= 10 {
			b = append(b, byte('0'+us/div%10))
		}
	}
	return append(b, 'Z')
}

// appendHTMLEscaped appends s with the five characters that are special in
// HTML text or in a quoted attribute value escaped, as html.EscapeString
// does.
func appendHTMLEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if !htmlSpecial[s[i]] {
			continue
		}
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// htmlSpecial and jsonSpecial mark the bytes that appendHTMLEscaped and
// appendJSONString must look at; every other byte is copied as it is.
var htmlSpecial, jsonSpecial = func() (h, j [256]bool) {
	for _, c := range "&<>\"'" {
		h[c] = true
	}
	for c := 0; c < 0x20; c++ {
		j[c] = true
	}
	j['"'], j['\\'], j[0xe2] = true, true, true
	return h, j
}()

// appendJSONString appends s as a JSON string. s is valid UTF-8 (checked
// before rendering); quotes, backslashes, control characters and U+2028 and
// U+2029 are escaped, everything else is written as it is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !jsonSpecial[c] {
			i++
			continue
		}
		if c == 0xe2 {
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
				b = append(b, s[last:i]...)
				b = append(b, `\u202`...)
				b = append(b, hexdigitsPages[s[i+2]&0xf])
				i += 3
				last = i
				continue
			}
			i++
			continue
		}
		b = append(b, s[last:i]...)
		switch c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, hexdigitsPages[c>>4], hexdigitsPages[c&0xf])
		}
		i++
		last = i
	}
	b = append(b, s[last:]...)
	return append(b, '"')
}

const hexdigitsPages = "0123456789abcdef"

// checkPageProject checks that p is a PEP 503-normalised project name:
// lowercase ASCII letters and digits, single '-' between them, at most 200
// bytes.
func checkPageProject(p string) error {
	if p == "" || len(p) > 200 {
		return fmt.Errorf("name of %d bytes, want 1 to 200: %w", len(p), ErrPageProject)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(p)-1 && p[i-1] != '-':
		default:
			return fmt.Errorf("%q is not a PEP 503-normalised name (lowercase letters, digits and single inner dashes): %w", p, ErrPageProject)
		}
	}
	return nil
}

// Which of a file's strings need no escaping on either page (printable
// ASCII without &<>"'\), found by checkPageFile.
const (
	plainFilename = 1 << iota
	plainURL
	plainRequiresPython
)

// checkPageFile checks one file and returns the field at fault, and which
// of its strings need no escaping (plainFilename, ...).
func checkPageFile(f *PageFile) (string, uint8, error) {
	switch {
	case f.Filename == "" || len(f.Filename) > export.MaxFilenameLength:
		return "Filename", 0, fmt.Errorf("filename of %d bytes, want 1 to %d: %w", len(f.Filename), export.MaxFilenameLength, ErrPageFile)
	case f.Filename == "." || f.Filename == "..":
		return "Filename", 0, fmt.Errorf("filename is a dot segment: %w", ErrPageFile)
	case strings.IndexByte(f.Filename, '/') >= 0 || strings.IndexByte(f.Filename, '\\') >= 0:
		return "Filename", 0, fmt.Errorf("filename contains a slash or backslash: %w", ErrPageFile)
	case f.Version == "" || len(f.Version) > 128:
		return "Version", 0, fmt.Errorf("version of %d bytes, want 1 to 128: %w", len(f.Version), ErrPageFile)
	case f.Size < 0:
		return "Size", 0, fmt.Errorf("negative size %d: %w", f.Size, ErrPageFile)
	case !f.Yanked && f.YankedReason != "":
		return "YankedReason", 0, fmt.Errorf("a yank reason on a file that is not yanked: %w", ErrPageFile)
	case !f.HasCoreMetadata && f.CoreMetadataSHA256 != [32]byte{}:
		return "CoreMetadataSHA256", 0, fmt.Errorf("a core metadata hash without HasCoreMetadata: %w", ErrPageFile)
	}
	var plain uint8
	for _, s := range [...]struct {
		field, v string
		bit      uint8
	}{
		{"Filename", f.Filename, plainFilename}, {"Version", f.Version, 0},
		{"RequiresPython", f.RequiresPython, plainRequiresPython}, {"YankedReason", f.YankedReason, 0},
	} {
		switch textClass(s.v) {
		case 0:
			plain |= s.bit
			continue
		case textEscaped:
			continue
		}
		if !utf8.ValidString(s.v) {
			return s.field, 0, fmt.Errorf("not valid UTF-8: %w", ErrPageFile)
		}
		if hasControl(s.v) {
			return s.field, 0, fmt.Errorf("%q contains a control character: %w", s.v, ErrPageFile)
		}
	}
	if escaped, err := checkPageURL(f.URL, f.Filename); err != nil {
		return "URL", 0, err
	} else if !escaped {
		plain |= plainURL
	}
	if !f.UploadTime.IsZero() {
		if y := f.UploadTime.UTC().Year(); y < 1 || y > 9999 {
			return "UploadTime", 0, fmt.Errorf("year %d out of range: %w", y, ErrPageFile)
		}
	}
	return "", plain, nil
}

// checkPageURL checks that u is printable ASCII without a fragment or
// query and that its last path segment, unescaped, is the filename, as PEP
// 503 requires of the anchor text; escaped says whether u has a byte
// either page escapes.
func checkPageURL(u, filename string) (escaped bool, err error) {
	var class byte
	for i := 0; i < len(u); i++ {
		class |= urlClass[u[i]]
	}
	if u == "" || class&textOther != 0 {
		return false, fmt.Errorf("url %q must be non-empty printable ASCII without spaces: %w", u, ErrPageFile)
	}
	if class&urlQuery != 0 {
		return false, fmt.Errorf("url %q must have no query or fragment: %w", u, ErrPageFile)
	}
	slash := strings.LastIndexByte(u, '/')
	name := u[slash+1:]
	if class&urlPercent != 0 {
		name, err = url.PathUnescape(name)
	}
	if err != nil || name != filename {
		return false, fmt.Errorf("url %q does not end in the filename: %w", u, ErrPageFile)
	}
	return class&textEscaped != 0, nil
}

// Classes of bytes, ORed over a string by textClass and checkPageURL:
// textEscaped, printable ASCII that one of the pages escapes (&<>"'\);
// textOther, a byte outside printable ASCII (the string needs the full
// checks, UTF-8 and control characters, and may need escaping);
// urlQuery, '#' or '?' (refused in a URL); urlPercent, '%' (an escape
// to undo before comparing the URL's last segment with the filename).
const (
	textEscaped = 1 << iota
	textOther
	urlQuery
	urlPercent
)

// textClasses is the class of each byte in a text field (the space is
// printable); urlClass, in a URL (where the space is not).
var textClasses, urlClass = func() (t, u [256]byte) {
	for c := range 256 {
		switch {
		case c < ' ' || c > '~':
			t[c] = textOther
		case strings.IndexByte(`&<>"'\`, byte(c)) >= 0:
			t[c] = textEscaped
		}
		u[c] = t[c]
	}
	u[' '] = textOther
	u['#'] |= urlQuery
	u['?'] |= urlQuery
	u['%'] |= urlPercent
	return t, u
}()

// textClass is the classes of s's bytes, ORed: 0 when s is printable
// ASCII that neither page escapes.
func textClass(s string) byte {
	var class byte
	for i := 0; i < len(s); i++ {
		class |= textClasses[s[i]]
	}
	return class
}

// printableASCII reports whether s is non-empty ASCII from '!' to '~'.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return s != ""
}

// hasControl reports whether s has a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return true
		}
	}
	return false
}
