package export

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"unicode/utf8"
	"unsafe"

	"github.com/keyceremony/keyceremony/internal/hexsum"
)

// Reader reads an export, strictly and as a stream: it holds one line
// at a time, the previous path, and interned project names.
type Reader struct {
	name     string
	br       *bufio.Reader
	h        hash.Hash
	hdr      Header
	line     int64 // the number of the last line read
	count    int64 // records returned (or sent in batches)
	recLines int64 // record lines read, refused ones included
	prevPath string
	err      error    // sticky: io.EOF after the trailer, or the pass's error
	refused  refusals // records refused so far
	names    *nameSet
	src      io.ReaderAt // the export again, to name duplicate filenames' paths
	trailer  *Trailer    // set once the trailer has been verified
	fileSum  [32]byte    // SHA-256 of the lines and the trailer line, set with trailer
	recParser

	// The lines before the trailer are hashed in chunks, each by a
	// goroutine while the next chunk is parsed; at most one runs at a time
	// and each ends once its chunk is hashed.
	chunk, other []byte
	hashing      bool
	hashed       chan struct{}
}

// recParser parses record lines. With maps, strings are interned copies;
// without (block set), they are substrings of block, which holds the
// lines parsed and is never modified.
type recParser struct {
	sc                           scan
	rec                          Record
	projects, versions, requires map[string]string
	block                        string
	base                         uintptr
}

// Limits on the interning maps, so that an export made of millions of
// distinct names costs allocations, not unbounded map memory.
const (
	maxInternProjects = 1 << 22
	maxInternVersions = 1 << 20
	maxInternRequires = 1 << 12
)

// NewReader reads and checks the header of the export r. name is the
// file name used in errors. Errors are *Error.
func NewReader(r io.Reader, name string) (*Reader, error) {
	x := &Reader{
		name:   name,
		br:     bufio.NewReaderSize(r, 2*MaxLineLength),
		h:      sha256.New(),
		hashed: make(chan struct{}, 1),
		names:  newNameSet(),
	}
	if ra, ok := r.(io.ReaderAt); ok {
		x.src = ra
	}
	x.projects = make(map[string]string)
	x.versions = make(map[string]string)
	x.requires = make(map[string]string)
	line, err := x.readLine()
	if err != nil {
		var e *Error
		if errors.As(err, &e) && errors.Is(e.Err, ErrTruncated) {
			err = x.fail(ferr("", ErrTruncated, "no header"))
		}
		return nil, err
	}
	x.hashLine(line)
	if fe := x.parseHeader(line[:len(line)-1]); fe != nil {
		return nil, x.fail(fe)
	}
	return x, nil
}

// SetSource gives the reader the export's bytes again, from its first
// byte, when r given to NewReader is not an io.ReaderAt itself (NewReader
// uses r when it is, such as an *os.File read from its start). When two
// records share a filename, the reader reads them again from src to name
// their paths; without it, the refusal names their lines only.
func (x *Reader) SetSource(src io.ReaderAt) { x.src = src }

// SetWorkDir sets where the duplicate filename check keeps its work file
// (os.TempDir() if not set): past about a million records, the
// filenames' hashes and lines (12 bytes a record) are kept there, not in
// memory. The file is removed as soon as it is made (on systems that
// allow it) or at the end of the pass. Call it before the first record.
func (x *Reader) SetWorkDir(dir string) { x.names.dir = dir }

// Header returns the export's header.
func (x *Reader) Header() Header { return x.hdr }

// Count returns the number of records Next has returned so far. After Next
// returned io.EOF it is the trailer's count.
func (x *Reader) Count() int64 { return x.count }

// Next returns the next record. It returns io.EOF only after the trailer
// has been read and its count and digest verified, and nothing follows it,
// and only if no record was refused. A refused record does not stop the
// pass: Next goes on to the next record, and where it would have returned
// io.EOF it returns an *Errors listing every refusal. An error that stops
// the pass (a truncated export, a bad trailer) is an *Error, or the last
// of an *Errors if records were refused before it; every later call
// returns the same error.
//
// The returned *Record is owned by the reader and overwritten by the next
// call: copy it (*r) to keep it. Its strings are never overwritten, so
// keeping r.Path or r.Project is safe.
func (x *Reader) Next() (*Record, error) {
	for {
		if x.err != nil {
			return nil, x.err
		}
		line, err := x.readLine()
		if err != nil {
			return nil, err
		}
		body := line[:len(line)-1]
		if bytes.HasPrefix(body, trailerPrefix) {
			if fe := x.parseTrailer(body); fe != nil {
				return nil, x.fail(fe)
			}
			if _, err := x.br.ReadByte(); err == nil {
				x.line++
				return nil, x.fail(ferr("", ErrAfterTrailer, ""))
			} else if err != io.EOF {
				return nil, x.fail(ferr("", fmt.Errorf("reading after the trailer: %w", err), ""))
			}
			var fatal error
			if err := x.names.refuseDups(&x.refused, x.name, x.src); err != nil {
				fatal = &Error{File: x.name, Line: x.line, Err: err}
			}
			if x.err = x.refused.result(fatal); x.err == nil {
				x.err = io.EOF
			}
			return nil, x.err
		}
		x.hashLine(line)
		x.recLines++
		if fe := x.parseRecord(body); fe != nil {
			x.refuse(fe, x.line)
			continue
		}
		r := &x.rec
		if fe := checkRecord(r, x.hdr.Generated, false); fe != nil {
			x.refuse(fe, x.line)
			continue
		}
		if fe := x.sequence(r, x.names.hash(r.Filename), x.line); fe != nil {
			x.refuse(fe, x.line)
			continue
		}
		return r, nil
	}
}

// sequence checks a record against the one before it (sorted, no
// duplicate path) and notes its filename, whose hash is fh, for the
// duplicate filename check at the end of the pass.
func (x *Reader) sequence(r *Record, fh uint64, line int64) *fieldError {
	if x.count > 0 {
		if r.Path == x.prevPath {
			return ferr("path", ErrDuplicatePath, "%q", r.Path)
		}
		if r.Path < x.prevPath {
			return ferr("path", ErrUnsorted, "%q sorts before the previous path %q", r.Path, x.prevPath)
		}
	}
	x.names.add(fh, line)
	x.prevPath = r.Path
	x.count++
	return nil
}

// refuse notes a refused record.
func (x *Reader) refuse(fe *fieldError, line int64) {
	x.refused.add(&Error{File: x.name, Line: line, Field: fe.field, Err: fe.err})
}

var trailerPrefix = []byte(`{"trailer":`)

const hashChunk = 256 << 10

// hashLine adds line to the bytes the trailer's digest covers.
func (x *Reader) hashLine(line []byte) {
	if len(x.chunk)+len(line) > hashChunk {
		x.waitHash()
		full := x.chunk
		x.hashing = true
		go func() {
			x.h.Write(full)
			x.hashed <- struct{}{}
		}()
		x.chunk, x.other = x.other[:0], full
	}
	x.chunk = append(x.chunk, line...)
}

func (x *Reader) waitHash() {
	if x.hashing {
		<-x.hashed
		x.hashing = false
	}
}

// sum returns the digest of every line hashed so far.
func (x *Reader) sum() (s [32]byte) {
	x.waitHash()
	x.h.Write(x.chunk)
	x.chunk = x.chunk[:0]
	x.h.Sum(s[:0])
	return s
}

// fail stops the pass with an error: the pass's error is it, after the
// records refused before it.
func (x *Reader) fail(fe *fieldError) error {
	x.err = x.refused.result(&Error{File: x.name, Line: x.line, Field: fe.field, Err: fe.err})
	return x.err
}

// readLine returns the next line with its newline.
func (x *Reader) readLine() ([]byte, error) {
	x.line++
	b, err := x.br.ReadSlice('\n')
	switch {
	case err == nil:
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, x.fail(ferr("", ErrLineTooLong, "more than %d bytes", MaxLineLength))
	case err == io.EOF && len(b) == 0:
		return nil, x.fail(ferr("", ErrTruncated, "no trailer after %d records", x.recLines))
	case err == io.EOF:
		return nil, x.fail(ferr("", ErrTruncated, "last line has no newline"))
	default:
		return nil, x.fail(ferr("", fmt.Errorf("reading: %w", err), ""))
	}
	if len(b)-1 > MaxLineLength {
		return nil, x.fail(ferr("", ErrLineTooLong, "%d bytes, more than %d", len(b)-1, MaxLineLength))
	}
	return b, nil
}

func (x *Reader) parseHeader(b []byte) *fieldError {
	s := &x.sc
	s.reset(b)
	if !bytes.HasPrefix(b, []byte(`{"format":"`)) {
		return ferr("", ErrFormat, "line 1 is %s", snippet(b))
	}
	s.i = len(`{"format":`)
	f, fe := s.str("format")
	if fe != nil {
		return fe
	}
	if string(f) != FormatName {
		return ferr("format", ErrFormat, "format is %q, want %q", f, FormatName)
	}
	x.hdr.Format = FormatName
	if fe := s.key(1, headerKeys, nil); fe != nil {
		return fe
	}
	v, fe := s.integer("version", 1<<30, ErrUnsupportedVersion)
	if fe != nil {
		return fe
	}
	if v != FormatVersion {
		return ferr("version", ErrUnsupportedVersion, "version %d (this build reads version %d)", v, FormatVersion)
	}
	x.hdr.Version = int(v)
	if fe := s.key(2, headerKeys, nil); fe != nil {
		return fe
	}
	repo, fe := s.str("repository")
	if fe != nil {
		return fe
	}
	if fe := checkRepository(string(repo)); fe != nil {
		return fe
	}
	x.hdr.Repository = string(repo)
	if fe := s.key(3, headerKeys, nil); fe != nil {
		return fe
	}
	g, fe := s.str("generated")
	if fe != nil {
		return fe
	}
	if x.hdr.Generated, fe = parseTime("generated", g); fe != nil {
		return fe
	}
	return s.end(headerKeys, true)
}

// checkRepository checks a repository name: 1 to 64 bytes of lowercase
// letters, digits, '-' and '.'.
func checkRepository(r string) *fieldError {
	if r == "" || len(r) > 64 {
		return ferr("repository", ErrBadValue, "want 1 to 64 bytes, got %d", len(r))
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return ferr("repository", ErrBadValue, "%q: want lowercase letters, digits, '-' and '.'", r)
		}
	}
	return nil
}

func (x *Reader) parseTrailer(b []byte) *fieldError {
	s := &x.sc
	s.reset(b)
	s.i = len(trailerPrefix)
	if s.i >= len(b) || b[s.i] != '{' {
		return s.typeErr("trailer", "an object")
	}
	s.i++
	if fe := s.key(0, trailerKeys, nil); fe != nil {
		return prefixField("trailer.", fe)
	}
	count, fe := s.integer("trailer.count", 1<<62, ErrBadValue)
	if fe != nil {
		return fe
	}
	if fe := s.key(1, trailerKeys, nil); fe != nil {
		return prefixField("trailer.", fe)
	}
	sum, _, fe := s.hash("trailer.sha256", false)
	if fe != nil {
		return fe
	}
	if fe := s.end(trailerKeys, false); fe != nil {
		return prefixField("trailer.", fe)
	}
	if fe := s.end([]string{"trailer"}, true); fe != nil {
		return fe
	}
	if count != x.recLines {
		return ferr("trailer.count", ErrCountMismatch, "trailer says %d records, the export has %d", count, x.recLines)
	}
	if got := x.sum(); got != sum {
		return ferr("trailer.sha256", ErrDigestMismatch, "trailer says %x, the export's lines hash to %x", sum, got)
	}
	// The file's digest goes on from the lines' (Sum left the state as
	// it was): the trailer line is the file's last.
	x.h.Write(b)
	x.h.Write(nl)
	x.h.Sum(x.fileSum[:0])
	x.trailer = &Trailer{Count: count, SHA256: sum}
	return nil
}

// FileSHA256 returns the SHA-256 of the export file's bytes, every line
// and the trailer's, once the reader has verified the trailer and found
// nothing after it (Next returned io.EOF, or Batches' last batch came
// without an error); ok is false before. It is the lines' digest the
// trailer checks, carried on over the trailer line, so the file is not
// hashed twice.
func (x *Reader) FileSHA256() (sum [32]byte, ok bool) {
	if x.trailer == nil || x.err != io.EOF {
		return sum, false
	}
	return x.fileSum, true
}

// Trailer returns what the export's trailer says, once the reader has
// verified it (after Next returned io.EOF); ok is false before.
func (x *Reader) Trailer() (t Trailer, ok bool) {
	if x.trailer == nil {
		return Trailer{}, false
	}
	return *x.trailer, true
}

func prefixField(p string, fe *fieldError) *fieldError {
	if fe.field != "" {
		fe.field = p + fe.field
	}
	return fe
}

func (x *recParser) parseRecord(b []byte) *fieldError {
	s := &x.sc
	s.reset(b)
	if len(b) == 0 {
		return ferr("", ErrSyntax, "empty line")
	}
	if b[0] != '{' {
		return ferr("", ErrSyntax, "want a JSON object, line starts with %s", snippet(b[:min(len(b), 8)]))
	}
	s.i = 1
	r := &x.rec
	var path, project, version, filename, yreason, reqpy []byte
	var fe *fieldError
	for k := range numRecordFields {
		if fe = s.key(k, recordKeys[:], keyTokens[:]); fe != nil {
			return fe
		}
		switch k {
		case fPath:
			path, fe = s.str("path")
		case fProject:
			project, fe = s.str("project")
		case fVersion:
			version, fe = s.str("version")
		case fFilename:
			filename, fe = s.str("filename")
		case fLength:
			r.Length, fe = s.integer("length", MaxLength, ErrBadLength)
		case fSHA256:
			r.SHA256, _, fe = s.hash("sha256", false)
		case fBLAKE2b256:
			r.BLAKE2b256, _, fe = s.hash("blake2b_256", false)
		case fUploadTime:
			var t []byte
			if t, fe = s.str("upload_time"); fe == nil {
				r.UploadTime, fe = parseTime("upload_time", t)
			}
		case fYanked:
			r.Yanked, fe = s.boolean("yanked")
		case fYankedReason:
			yreason, fe = s.str("yanked_reason")
		case fRequiresPython:
			reqpy, fe = s.str("requires_python")
		case fCoreMetadataSHA256:
			var empty bool
			r.CoreMetadataSHA256, empty, fe = s.hash("core_metadata_sha256", true)
			r.HasCoreMetadata = !empty
		}
		if fe != nil {
			return fe
		}
	}
	if fe = s.end(recordKeys[:], true); fe != nil {
		return fe
	}
	if x.projects == nil {
		r.Path = x.sub(path)
		if n := len(filename); n <= len(path) && string(path[len(path)-n:]) == string(filename) {
			r.Filename = r.Path[len(r.Path)-n:]
		} else {
			r.Filename = x.sub(filename)
		}
		r.Project, r.Version, r.RequiresPython, r.YankedReason = x.sub(project), x.sub(version), x.sub(reqpy), x.sub(yreason)
		return nil
	}
	r.Path = string(path)
	if n := len(filename); n <= len(path) && string(path[len(path)-n:]) == string(filename) {
		r.Filename = r.Path[len(r.Path)-n:]
	} else {
		r.Filename = string(filename)
	}
	r.Project = intern(x.projects, project, maxInternProjects)
	r.Version = intern(x.versions, version, maxInternVersions)
	r.RequiresPython = intern(x.requires, reqpy, maxInternRequires)
	r.YankedReason = ""
	if len(yreason) > 0 {
		r.YankedReason = string(yreason)
	}
	return nil
}

// sub returns b as a string: a substring of the block when b lies in it
// (no copy), a copy otherwise (a string that had escapes).
func (x *recParser) sub(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	off := uintptr(unsafe.Pointer(unsafe.SliceData(b))) - x.base
	if off < uintptr(len(x.block)) && off+uintptr(len(b)) <= uintptr(len(x.block)) {
		return x.block[off : off+uintptr(len(b))]
	}
	return string(b)
}

func intern(m map[string]string, b []byte, limit int) string {
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(m) < limit {
		m[s] = s
	}
	return s
}

// scan walks one line of canonical JSON.
type scan struct {
	b   []byte
	i   int
	dec []byte // decoded strings that had escapes
	esc bool   // the last string had escapes
}

func (s *scan) reset(b []byte) {
	s.b, s.i, s.dec = b, 0, s.dec[:0]
}

// special[c] is true for the bytes that end the fast scan of a string.
var special = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x7f
	}
	return t
}()

// str reads a string value and returns its bytes, which stay valid until
// the next reset.
func (s *scan) str(field string) ([]byte, *fieldError) {
	b := s.b
	i := s.i
	if i >= len(b) || b[i] != '"' {
		return nil, s.typeErr(field, "a string")
	}
	i++
	start := i
	s.esc = false
	for i < len(b) && !special[b[i]] {
		i++
	}
	if i < len(b) && b[i] == '"' {
		s.i = i + 1
		return b[start:i], nil
	}
	return s.strSlow(field, start)
}

func (s *scan) strSlow(field string, start int) ([]byte, *fieldError) {
	b := s.b
	d0 := len(s.dec)
	ascii := true
	for i := start; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			v := s.dec[d0:]
			if !ascii {
				if !utf8.Valid(v) {
					return nil, ferr(field, ErrInvalidUTF8, "")
				}
				if fe := checkTextNonASCII(field, string(v)); fe != nil {
					return nil, fe
				}
			}
			s.i = i + 1
			return v, nil
		case c == '\\':
			if i+1 >= len(b) {
				return nil, ferr(field, ErrSyntax, "unterminated string")
			}
			e := b[i+1]
			switch e {
			case '"', '\\':
				s.dec = append(s.dec, e)
				s.esc = true
				i += 2
				continue
			case '/':
				return nil, ferr(field, ErrNotCanonical, `escape \/: write the character itself`)
			case 'b', 'f', 'n', 'r', 't':
				return nil, ferr(field, ErrControlChar, `escaped control character \%c`, e)
			case 'u':
				if i+6 > len(b) {
					return nil, ferr(field, ErrSyntax, `truncated \u escape`)
				}
				var u [2]byte
				if _, err := hex.Decode(u[:], b[i+2:i+6]); err != nil {
					return nil, ferr(field, ErrSyntax, `bad \u escape %s`, snippet(b[i:i+6]))
				}
				r := rune(u[0])<<8 | rune(u[1])
				if r < 0x20 || r >= 0x7f && r < 0xa0 {
					return nil, ferr(field, ErrControlChar, `escaped control character \u%04x`, r)
				}
				return nil, ferr(field, ErrNotCanonical, `escape %s: write the character itself`, b[i:i+6])
			default:
				return nil, ferr(field, ErrSyntax, `invalid escape \%c`, e)
			}
		case c < 0x20 || c == 0x7f:
			return nil, ferr(field, ErrControlChar, "byte 0x%02x in a string", c)
		case c >= 0x80:
			ascii = false
		}
		s.dec = append(s.dec, c)
		i++
	}
	return nil, ferr(field, ErrSyntax, "unterminated string")
}

// hash reads a string of 64 lowercase hex digits, or, if allowEmpty, an
// empty string (empty is then true).
func (s *scan) hash(field string, allowEmpty bool) (h [32]byte, empty bool, fe *fieldError) {
	b := s.b
	i := s.i
	if i+65 < len(b) && b[i] == '"' && b[i+65] == '"' {
		bad := byte(0)
		for j := range 32 {
			hi, lo := hexsum.Lower[b[i+1+2*j]], hexsum.Lower[b[i+2+2*j]]
			bad |= hi | lo
			h[j] = hi<<4 | lo
		}
		if bad&0xf0 == 0 {
			s.i = i + 66
			return h, false, nil
		}
	}
	v, fe := s.str(field)
	if fe != nil {
		return h, false, fe
	}
	if len(v) == 0 && allowEmpty {
		return h, true, nil
	}
	for _, c := range v {
		if c >= 'A' && c <= 'F' {
			return h, false, ferr(field, ErrBadHash, "uppercase hex %s: want lowercase", snippet(v))
		}
		if hexsum.Lower[c] == 0xff {
			return h, false, ferr(field, ErrBadHash, "%s is not hex", snippet(v))
		}
	}
	return h, false, ferr(field, ErrBadHash, "%d hex digits, want 64", len(v))
}

// integer reads a canonical JSON integer between 0 and max; sentinel is
// the cause for values out of range.
func (s *scan) integer(field string, max int64, sentinel error) (int64, *fieldError) {
	b := s.b
	i := s.i
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		if neg {
			return 0, ferr(field, ErrSyntax, "bad number")
		}
		return 0, s.typeErr(field, "a number")
	}
	start := i
	var v int64
	over := false
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if v > (1<<62)/10 {
			over = true
		}
		v = v*10 + int64(b[i]-'0')
		i++
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, ferr(field, ErrType, "want an integer, got %s", snippet(b[s.i:min(len(b), i+8)]))
	}
	if b[start] == '0' && i-start > 1 {
		return 0, ferr(field, ErrNotCanonical, "leading zero in %s", snippet(b[s.i:i]))
	}
	switch {
	case neg && v == 0:
		return 0, ferr(field, ErrNotCanonical, "-0")
	case neg:
		return 0, ferr(field, sentinel, "negative: %s", b[s.i:i])
	case over || v > max:
		return 0, ferr(field, sentinel, "%s is more than %d", snippet(b[s.i:i]), max)
	}
	s.i = i
	return v, nil
}

func (s *scan) boolean(field string) (bool, *fieldError) {
	b := s.b[s.i:]
	switch {
	case bytes.HasPrefix(b, []byte("true")):
		s.i += 4
		return true, nil
	case bytes.HasPrefix(b, []byte("false")):
		s.i += 5
		return false, nil
	}
	return false, s.typeErr(field, "true or false")
}

// typeErr describes what was found where a value of type want was expected.
func (s *scan) typeErr(field, want string) *fieldError {
	if s.i >= len(s.b) {
		return ferr(field, ErrSyntax, "unexpected end of line, want %s", want)
	}
	var got string
	switch c := s.b[s.i]; {
	case c == '"':
		got = "a string"
	case c == '-' || c >= '0' && c <= '9':
		got = "a number"
	case c == 't' || c == 'f':
		got = "a boolean"
	case c == 'n':
		got = "null"
	case c == '{':
		got = "an object"
	case c == '[':
		got = "an array"
	case isSpace(c):
		return ferr(field, ErrNotCanonical, "whitespace is not allowed")
	default:
		return ferr(field, ErrSyntax, "unexpected %s, want %s", snippet(s.b[s.i:min(len(s.b), s.i+8)]), want)
	}
	return ferr(field, ErrType, "want %s, got %s", want, got)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// key reads the separator before key number k (if k > 0) and the key
// itself, which must be keys[k]. tokens, if not nil, holds `"key":` for
// each key.
func (s *scan) key(k int, keys []string, tokens [][]byte) *fieldError {
	b := s.b
	if k > 0 {
		if s.i < len(b) && b[s.i] == ',' {
			s.i++
		} else {
			return s.sepErr(k, keys)
		}
	}
	if tokens != nil {
		if bytes.HasPrefix(b[s.i:], tokens[k]) {
			s.i += len(tokens[k])
			return nil
		}
	} else if t := keys[k]; s.i+len(t)+3 <= len(b) && b[s.i] == '"' && string(b[s.i+1:s.i+1+len(t)]) == t &&
		b[s.i+1+len(t)] == '"' && b[s.i+2+len(t)] == ':' {
		s.i += len(t) + 3
		return nil
	}
	if s.i < len(b) && b[s.i] == '}' {
		return ferr(keys[k], ErrMissingField, "")
	}
	if s.i < len(b) && isSpace(b[s.i]) {
		return ferr(keys[k], ErrNotCanonical, "whitespace is not allowed")
	}
	name, fe := s.keyName()
	if fe != nil {
		return fe
	}
	j := indexOf(keys, name)
	switch {
	case j < 0:
		return ferr(name, ErrUnknownField, "")
	case s.esc:
		return ferr(name, ErrNotCanonical, "escape in a field name")
	case j < k:
		return ferr(name, ErrDuplicateField, "")
	case !bytes.Contains(b[s.i:], []byte(`"`+keys[k]+`":`)):
		return ferr(keys[k], ErrMissingField, "")
	}
	return ferr(name, ErrFieldOrder, "want %q here (fields are in the documented order)", keys[k])
}

// sepErr explains what is wrong where a ',' before key k was expected.
func (s *scan) sepErr(k int, keys []string) *fieldError {
	prev := keys[k-1]
	switch {
	case s.i >= len(s.b):
		return ferr(prev, ErrSyntax, "unexpected end of line")
	case s.b[s.i] == '}':
		return ferr(keys[k], ErrMissingField, "")
	case isSpace(s.b[s.i]):
		return ferr(prev, ErrNotCanonical, "whitespace is not allowed")
	}
	return ferr(prev, ErrSyntax, "unexpected %s after the value", snippet(s.b[s.i:min(len(s.b), s.i+8)]))
}

// keyName reads a field name and its colon.
func (s *scan) keyName() (string, *fieldError) {
	if s.i < len(s.b) && isSpace(s.b[s.i]) {
		return "", ferr("", ErrNotCanonical, "whitespace is not allowed")
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", s.typeErrKey()
	}
	v, fe := s.str("")
	if fe != nil {
		if !errors.Is(fe.err, ErrNotCanonical) {
			return "", fe
		}
		// Name the field even though it is spelled with escapes.
		name, ok := decodeKey(s.b[s.i+1:])
		if !ok {
			return "", fe
		}
		fe.field = name
		return "", fe
	}
	name := string(v)
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		if s.i < len(s.b) && isSpace(s.b[s.i]) {
			return "", ferr(name, ErrNotCanonical, "whitespace is not allowed")
		}
		return "", ferr(name, ErrSyntax, "want ':' after the field name")
	}
	s.i++
	return name, nil
}

// decodeKey decodes a field name spelled with \u escapes, for error
// messages only.
func decodeKey(b []byte) (string, bool) {
	var out []rune
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return string(out), true
		case c == '\\' && i+6 <= len(b) && b[i+1] == 'u':
			var u [2]byte
			if _, err := hex.Decode(u[:], b[i+2:i+6]); err != nil {
				return "", false
			}
			out = append(out, rune(u[0])<<8|rune(u[1]))
			i += 6
		case c == '\\' && i+1 < len(b):
			out = append(out, rune(b[i+1]))
			i += 2
		default:
			r, n := utf8.DecodeRune(b[i:])
			out = append(out, r)
			i += n
		}
	}
	return "", false
}

func (s *scan) typeErrKey() *fieldError {
	if s.i >= len(s.b) {
		return ferr("", ErrSyntax, "unexpected end of line")
	}
	return ferr("", ErrSyntax, "want a field name, got %s", snippet(s.b[s.i:min(len(s.b), s.i+8)]))
}

// end reads the '}' that closes an object whose fields are keys; for the
// outermost object the line must end there.
func (s *scan) end(keys []string, outer bool) *fieldError {
	b := s.b
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
		if !outer || s.i == len(b) {
			return nil
		}
		switch {
		case b[s.i] == '\r':
			return ferr("", ErrNotCanonical, "carriage return: lines end with \\n alone")
		case isSpace(b[s.i]):
			return ferr("", ErrNotCanonical, "whitespace is not allowed")
		}
		return ferr("", ErrTrailingData, "%s", snippet(b[s.i:]))
	}
	if s.i < len(b) && b[s.i] == ',' {
		s.i++
		name, fe := s.keyName()
		if fe != nil {
			return fe
		}
		if indexOf(keys, name) >= 0 {
			return ferr(name, ErrDuplicateField, "")
		}
		return ferr(name, ErrUnknownField, "")
	}
	last := keys[len(keys)-1]
	switch {
	case s.i >= len(b):
		return ferr(last, ErrSyntax, "unexpected end of line")
	case isSpace(b[s.i]):
		return ferr(last, ErrNotCanonical, "whitespace is not allowed")
	}
	return ferr(last, ErrSyntax, "unexpected %s after the value", snippet(b[s.i:min(len(b), s.i+8)]))
}

func indexOf(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}
