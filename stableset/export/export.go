package export

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyceremony/keyceremony/internal/hexsum"
)

// FormatName is the value of the header's "format" field.
const FormatName = "keyceremony-export"

// FormatVersion is the only export format version this package reads and writes.
const FormatVersion = 1

// MaxLength is the largest file length an export may claim: 1 TiB. PyPI's
// own upload limit is orders of magnitude smaller; anything above this is an
// error in the export, not a file.
const MaxLength = 1 << 40

// MaxLineLength is the longest line, in bytes without its newline, that the
// reader accepts.
const MaxLineLength = 64 << 10

// MaxFilenameLength is the longest filename, in bytes, that a record may have.
const MaxFilenameLength = 255

// Header is the first line of an export.
type Header struct {
	Format     string    // always FormatName
	Version    int       // always FormatVersion
	Repository string    // the repository's name, e.g. "pypi"
	Generated  time.Time // when the repository generated the export (UTC, whole seconds)
}

// Record is one file of the repository, one line of an export.
type Record struct {
	// Path is the TUF target path:
	// packages/<b2[0:2]>/<b2[2:4]>/<b2[4:64]>/<filename>, b2 being the
	// lowercase hex of BLAKE2b256.
	Path     string
	Project  string // PEP 503-normalised project name
	Version  string // the release's version string, as the repository has it
	Filename string // the last segment of Path
	Length   int64  // bytes, 0 to MaxLength

	SHA256, BLAKE2b256 [32]byte

	UploadTime time.Time // UTC, whole seconds, not after the header's Generated

	Yanked         bool
	YankedReason   string // empty unless Yanked
	RequiresPython string // the Requires-Python specifier, or empty

	// CoreMetadataSHA256 is the SHA-256 of the file's core metadata
	// (PEP 658/714), valid when HasCoreMetadata is true, zero otherwise.
	CoreMetadataSHA256 [32]byte
	HasCoreMetadata    bool

	// Legacy is set, by the reader and the writer, when the filename or
	// the version follows only the rules PyPI applied in the past (see
	// Legacy); zero otherwise. It is not a field of the export.
	Legacy Legacy
}

// Causes of export errors. An *Error wraps exactly one of them;
// check with errors.Is.
var (
	ErrFormat             = errors.New("not a keyceremony export")
	ErrUnsupportedVersion = errors.New("unsupported export format version")
	ErrSyntax             = errors.New("malformed json")
	ErrNotCanonical       = errors.New("not in canonical form")
	ErrUnknownField       = errors.New("unknown field")
	ErrMissingField       = errors.New("missing field")
	ErrDuplicateField     = errors.New("duplicate field")
	ErrFieldOrder         = errors.New("field out of order")
	ErrType               = errors.New("wrong type")
	ErrTrailingData       = errors.New("trailing data after the object")
	ErrLineTooLong        = errors.New("line too long")
	ErrInvalidUTF8        = errors.New("invalid utf-8")
	ErrControlChar        = errors.New("control character")
	ErrBadValue           = errors.New("bad value")
	ErrBadHash            = errors.New("bad hash")
	ErrBadLength          = errors.New("bad length")
	ErrBadTime            = errors.New("bad time")
	ErrFutureUpload       = errors.New("upload time after the export was generated")
	ErrBadPath            = errors.New("bad path")
	ErrPathMismatch       = errors.New("path does not match the record")
	ErrBadProject         = errors.New("bad project name")
	ErrBadFilename        = errors.New("bad filename")
	ErrBadVersion         = errors.New("bad version")
	ErrDuplicatePath      = errors.New("duplicate path")
	// ErrDuplicateFilename: two records name the same file, whatever
	// their paths (PyPI never allows two files with one filename).
	ErrDuplicateFilename = errors.New("duplicate filename")
	ErrUnsorted          = errors.New("paths not sorted")
	ErrTruncated         = errors.New("truncated export")
	ErrCountMismatch     = errors.New("record count does not match the trailer")
	ErrDigestMismatch    = errors.New("digest does not match the trailer")
	ErrAfterTrailer      = errors.New("data after the trailer")
)

// Error is an error in an export: where it is, and why.
// Err wraps one of the Err* sentinels (or an I/O error from the underlying
// reader or writer).
type Error struct {
	File  string // the name given to NewReader; empty for a writer
	Line  int64  // 1-based line number
	Field string // the JSON field at fault, or empty for the whole line
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	b.WriteString(strconv.FormatInt(e.Line, 10))
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(safeField(e.Field))
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// safeField returns a field name fit to print: as it is if it is made of
// lowercase letters, digits, '_' and '.', quoted otherwise.
func safeField(f string) string {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '[' || c == ']') {
			return strconv.Quote(f)
		}
	}
	return f
}

// fieldError is an error located in a line but not yet in a file.
type fieldError struct {
	field string
	err   error
}

func ferr(field string, sentinel error, format string, args ...any) *fieldError {
	if format == "" {
		return &fieldError{field, sentinel}
	}
	return &fieldError{field, fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// snippet quotes at most 40 bytes of b for an error message.
func snippet(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "…"
	}
	return strconv.Quote(string(b))
}

// The record's fields, in the one order the format allows.
const (
	fPath = iota
	fProject
	fVersion
	fFilename
	fLength
	fSHA256
	fBLAKE2b256
	fUploadTime
	fYanked
	fYankedReason
	fRequiresPython
	fCoreMetadataSHA256
	numRecordFields
)

var recordKeys = [numRecordFields]string{
	"path", "project", "version", "filename", "length", "sha256", "blake2b_256",
	"upload_time", "yanked", "yanked_reason", "requires_python", "core_metadata_sha256",
}

var headerKeys = []string{"format", "version", "repository", "generated"}

var trailerKeys = []string{"count", "sha256"}

// keyTokens[k] is `"key":` for recordKeys[k].
var keyTokens = func() (t [numRecordFields][]byte) {
	for i, k := range recordKeys {
		t[i] = []byte(`"` + k + `":`)
	}
	return t
}()

// TargetPath returns PyPI's target path for a file:
// packages/<b2[0:2]>/<b2[2:4]>/<b2[4:64]>/<filename>, b2 being the
// lowercase hex of its BLAKE2b-256 digest.
func TargetPath(blake2b256 [32]byte, filename string) string {
	var h [64]byte
	hex.Encode(h[:], blake2b256[:])
	return "packages/" + string(h[0:2]) + "/" + string(h[2:4]) + "/" + string(h[4:64]) + "/" + filename
}

// NormalizeProject returns the PEP 503 normalised form of a project name:
// runs of '-', '_' and '.' become one '-', and ASCII letters become
// lowercase. Only ASCII is lowercased (valid project names are ASCII), so
// that no non-ASCII letter can normalise into a valid name.
func NormalizeProject(name string) string {
	b := make([]byte, 0, len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			sep = true
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		if sep {
			b = append(b, '-')
			sep = false
		}
		b = append(b, c)
	}
	if sep {
		b = append(b, '-')
	}
	return string(b)
}

// normalizedEqual reports whether NormalizeProject(name) == norm, without
// allocating.
func normalizedEqual(name, norm string) bool {
	j := 0
	for i := 0; i < len(name); {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			for i < len(name) && (name[i] == '-' || name[i] == '_' || name[i] == '.') {
				i++
			}
			if j >= len(norm) || norm[j] != '-' {
				return false
			}
			j++
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if j >= len(norm) || norm[j] != c {
			return false
		}
		i++
		j++
	}
	return j == len(norm)
}

// checkProject checks that a project name is valid (PEP 508) and normalised
// (PEP 503): lowercase ASCII letters and digits, single '-' between them.
// CheckProject returns nil if p is a project name as an export lists it
// (PEP 503-normalised, at most 200 bytes), else an error wrapping
// ErrBadProject.
func CheckProject(p string) error {
	if fe := checkProject(p); fe != nil {
		return fe.err
	}
	return nil
}

func checkProject(p string) *fieldError {
	if p == "" {
		return ferr("project", ErrBadProject, "empty")
	}
	if len(p) > 200 {
		return ferr("project", ErrBadProject, "longer than 200 bytes")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(p)-1 || p[i-1] == '-' {
				return ferr("project", ErrBadProject, "%q is not PEP 503-normalised (want %q)", p, NormalizeProject(p))
			}
		default:
			if n := NormalizeProject(p); n != p && checkProject(n) == nil {
				return ferr("project", ErrBadProject, "%q is not PEP 503-normalised (want %q)", p, n)
			}
			return ferr("project", ErrBadProject, "%q: want lowercase letters, digits and single dashes", p)
		}
	}
	return nil
}

// filenameBelongs reports whether filename is a distribution file of
// project: some prefix of the filename ending before a '-' normalises to
// the project, and what follows that '-' starts with a digit or with the
// version (compared without regard to ASCII case). This matches sdists
// (name-1.0.tar.gz, name-1.0.zip), wheels (name-1.0-py3-none-any.whl), eggs
// (name-1.0-py2.7.egg) and Windows installers (name-1.0.win32.exe), with
// names spelled in any case and with '-', '_' or '.', and it refuses a file
// of project foo-bar claimed by project foo.
func filenameBelongs(filename, project, version string) bool {
	for i := 1; i < len(filename); i++ {
		if filename[i] != '-' || !normalizedEqual(filename[:i], project) {
			continue
		}
		rest := filename[i+1:]
		if rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			return true
		}
		if version != "" && len(rest) >= len(version) && strings.EqualFold(rest[:len(version)], version) {
			return true
		}
	}
	return false
}

// checkText checks that s is valid UTF-8 without control characters. The
// reader checks this while it scans strings; the writer calls it.
func checkText(field, s string) *fieldError {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return ferr(field, ErrControlChar, "byte 0x%02x at offset %d", c, i)
		}
		if c >= 0x80 {
			if !utf8.ValidString(s[i:]) {
				return ferr(field, ErrInvalidUTF8, "")
			}
			return checkTextNonASCII(field, s)
		}
	}
	return nil
}

func checkTextNonASCII(field, s string) *fieldError {
	for i, r := range s {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return ferr(field, ErrControlChar, "character %U at offset %d", r, i)
		}
	}
	return nil
}

// checkFilename checks a filename on its own: it must be one path segment
// that cannot escape its place or be read as something else. Spaces are
// allowed inside (legacy sdists have them), not at either end.
func checkFilename(f string) *fieldError {
	switch {
	case f == "":
		return ferr("filename", ErrBadFilename, "empty")
	case f == "." || f == "..":
		return ferr("filename", ErrBadFilename, "%q is a dot segment", f)
	case len(f) > MaxFilenameLength:
		return ferr("filename", ErrBadFilename, "longer than %d bytes", MaxFilenameLength)
	case f[0] == '.':
		return ferr("filename", ErrBadFilename, "%q starts with a dot", f)
	case f[0] == ' ' || f[len(f)-1] == ' ':
		return ferr("filename", ErrBadFilename, "%q starts or ends with a space", f)
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '/':
			return ferr("filename", ErrBadFilename, "%q contains '/'", f)
		case '\\':
			return ferr("filename", ErrBadFilename, "%q contains a backslash", f)
		case '"', '<', '>', '&', '\'', '`':
			return ferr("filename", ErrBadFilename, "%q contains %q", f, f[i])
		case ' ':
			if f[i-1] == ' ' {
				return ferr("filename", ErrBadFilename, "%q contains two spaces in a row", f)
			}
		}
	}
	return nil
}

// checkVersion checks a version string: non-empty, at most 128 bytes, no
// slashes, backslashes or '"', no space at either end or twice in a row.
// A version that is not PEP 440 is legacy, not refused (checkRecord).
func checkVersion(v string) *fieldError {
	if v == "" {
		return ferr("version", ErrBadVersion, "empty")
	}
	if len(v) > 128 {
		return ferr("version", ErrBadVersion, "longer than 128 bytes")
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' {
		return ferr("version", ErrBadVersion, "%q starts or ends with a space", v)
	}
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '/', '\\', '"':
			return ferr("version", ErrBadVersion, "%q contains %q", v, v[i])
		case ' ':
			if v[i-1] == ' ' {
				return ferr("version", ErrBadVersion, "%q contains two spaces in a row", v)
			}
		}
	}
	return nil
}

const hexdigits = "0123456789abcdef"

// checkPath checks a target path against the record's filename and
// BLAKE2b-256, first for the generic dangers (absolute, dot or empty
// segments, backslashes), then for PyPI's layout.
func checkPath(p, filename string, b2 *[32]byte) *fieldError {
	// Fast path: the exact layout.
	if len(p) == 76+len(filename) && p[:9] == "packages/" && p[11] == '/' && p[14] == '/' && p[75] == '/' &&
		p[76:] == filename && hexSegmentsMatch(p, b2) {
		return nil
	}
	switch {
	case p == "":
		return ferr("path", ErrBadPath, "empty")
	case p[0] == '/':
		return ferr("path", ErrBadPath, "absolute path %q", p)
	case strings.IndexByte(p, '\\') >= 0:
		return ferr("path", ErrBadPath, "%q contains a backslash", p)
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		switch s {
		case "":
			return ferr("path", ErrBadPath, "%q has an empty segment", p)
		case ".", "..":
			return ferr("path", ErrBadPath, "%q has a %q segment", p, s)
		}
	}
	if len(segs) != 5 || segs[0] != "packages" || len(segs[1]) != 2 || len(segs[2]) != 2 || len(segs[3]) != 60 ||
		!IsLowerHex(segs[1]) || !IsLowerHex(segs[2]) || !IsLowerHex(segs[3]) {
		return ferr("path", ErrBadPath, "%q: want packages/<2 hex>/<2 hex>/<60 hex>/<filename>", p)
	}
	if !hexSegmentsMatch(p, b2) {
		return ferr("path", ErrPathMismatch, "hash segments of %q are not blake2b_256", p)
	}
	return ferr("path", ErrPathMismatch, "last segment %q is not the filename %q", segs[4], filename)
}

func hexSegmentsMatch(p string, b2 *[32]byte) bool {
	// p[9:11], p[12:14], p[15:75] hold the 64 hex digits.
	var h [64]byte
	hex.Encode(h[:], b2[:])
	return p[9:11] == string(h[0:2]) && p[12:14] == string(h[2:4]) && p[15:75] == string(h[4:64])
}

// IsLowerHex reports whether s is made of lowercase hex digits only.
func IsLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// checkRecord checks everything about a record that does not depend on the
// records around it. text says whether to check strings for control
// characters and UTF-8 (the reader has done so while scanning).
func checkRecord(r *Record, generated time.Time, text bool) *fieldError {
	if text {
		for _, f := range []struct{ name, v string }{
			{"path", r.Path}, {"project", r.Project}, {"version", r.Version}, {"filename", r.Filename},
			{"yanked_reason", r.YankedReason}, {"requires_python", r.RequiresPython},
		} {
			if e := checkText(f.name, f.v); e != nil {
				return e
			}
		}
	}
	if e := checkFilename(r.Filename); e != nil {
		return e
	}
	if e := checkPath(r.Path, r.Filename, &r.BLAKE2b256); e != nil {
		return e
	}
	if e := checkProject(r.Project); e != nil {
		return e
	}
	if e := checkVersion(r.Version); e != nil {
		return e
	}
	r.Legacy = LegacyOf(r.Filename, r.Project, r.Version)
	if r.Length < 0 {
		return ferr("length", ErrBadLength, "negative")
	}
	if r.Length > MaxLength {
		return ferr("length", ErrBadLength, "%d is more than 1 TiB", r.Length)
	}
	if e := checkTime("upload_time", r.UploadTime); e != nil {
		return e
	}
	if r.UploadTime.After(generated) {
		return ferr("upload_time", ErrFutureUpload, "%s is after %s", formatTime(r.UploadTime), formatTime(generated))
	}
	if !r.Yanked && r.YankedReason != "" {
		return ferr("yanked_reason", ErrBadValue, "set on a file that is not yanked")
	}
	if !r.HasCoreMetadata && r.CoreMetadataSHA256 != ([32]byte{}) {
		return ferr("core_metadata_sha256", ErrBadValue, "set but HasCoreMetadata is false")
	}
	return nil
}

// checkTime checks a time the writer is given: whole seconds, in the years
// the format can write.
func checkTime(field string, t time.Time) *fieldError {
	if t.Nanosecond() != 0 {
		return ferr(field, ErrBadTime, "fractional seconds are not allowed")
	}
	if y := t.UTC().Year(); y < 1970 || y > 9999 {
		return ferr(field, ErrBadTime, "year %d is outside 1970-9999", y)
	}
	return nil
}

// parseTime parses the only time form the format allows,
// YYYY-MM-DDTHH:MM:SSZ, UTC, years 1970 to 9999.
func parseTime(field string, b []byte) (time.Time, *fieldError) {
	if len(b) != 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != 'Z' {
		switch {
		case len(b) > 20 && len(b) >= 19 && b[19] == '.':
			return time.Time{}, ferr(field, ErrBadTime, "%s: fractional seconds are not allowed (truncate to whole seconds)", snippet(b))
		case len(b) > 19 && (b[19] == '+' || b[19] == '-'):
			return time.Time{}, ferr(field, ErrBadTime, "%s: want UTC written with Z", snippet(b))
		}
		return time.Time{}, ferr(field, ErrBadTime, "%s: want YYYY-MM-DDTHH:MM:SSZ", snippet(b))
	}
	var v [6]int
	for k, r := range [6][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}} {
		for i := r[0]; i < r[1]; i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return time.Time{}, ferr(field, ErrBadTime, "%s: want YYYY-MM-DDTHH:MM:SSZ", snippet(b))
			}
			v[k] = v[k]*10 + int(c-'0')
		}
	}
	y, mo, d, h, mi, s := v[0], v[1], v[2], v[3], v[4], v[5]
	if y < 1970 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59 {
		return time.Time{}, ferr(field, ErrBadTime, "%s is not a valid time (years 1970-9999, no leap seconds)", snippet(b))
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC), nil
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendTime appends t in the format's form.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), 'Z')
	return b
}

func formatTime(t time.Time) string { return string(appendTime(nil, t)) }

// PathBLAKE2b returns the BLAKE2b-256 a PyPI file path names:
// packages/<2 hex>/<2 hex>/<60 hex>/<filename>, lowercase hex. ok is false
// for any other shape. (Checked byte by byte: the read-back and verify
// call it for every stable file.)
func PathBLAKE2b(p string) (sum [32]byte, ok bool) {
	const pre = "packages/"
	if len(p) < len(pre)+67 || p[:len(pre)] != pre {
		return sum, false
	}
	q := p[len(pre):]
	if q[2] != '/' || q[5] != '/' || q[66] != '/' || strings.IndexByte(q[67:], '/') >= 0 {
		return sum, false
	}
	// Byte by byte through a table (called for every stable file by the
	// read-back and verify): q[0:2], q[3:5], q[6:66] are the 64 digits.
	var bad byte
	pair := func(i int) byte {
		hi, lo := hexsum.Lower[q[i]], hexsum.Lower[q[i+1]]
		bad |= hi | lo
		return hi<<4 | lo&0x0f
	}
	sum[0], sum[1] = pair(0), pair(3)
	for i := 2; i < 32; i++ {
		sum[i] = pair(6 + 2*(i-2))
	}
	if bad&0x80 != 0 {
		return [32]byte{}, false
	}
	return sum, true
}
