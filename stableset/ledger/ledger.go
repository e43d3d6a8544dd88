package ledger

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
	"unicode/utf8"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// The ledger: what a ceremony saw of the repository.
//
// Format v5 (docs/stable-pipeline.md), binary, streaming:
//
//	magic    "KCLEDGER" 0x05
//	header   uvarint len, repository; varint listing time (Unix seconds);
//	         uvarint stable version of the ceremony that wrote it; uvarint
//	         len, the naming layout of the pages (e.g. "pep458"); uvarint
//	         len, the exact bytes of the policy file the ceremony applied
//	file*    0x01; uvarint shared, uvarint n, n bytes: the path is the
//	         first shared bytes of the previous path then these n bytes;
//	         uvarint len, project; uvarint length; 32 bytes sha256 (as
//	         listed); flags (bit 0: in the stable set; bit 1: the stable
//	         entry differs from the listing, then uvarint length and 32
//	         bytes sha256 of the stable entry; bit 2: dropped, kept out
//	         of the stable set by a decision until one lifts it, never
//	         with bit 0; bit 3: the listing marked the file yanked)
//	project* 0x02; uvarint len, project; 32 bytes page digest; uvarint
//	         length, 32 bytes sha256 and 32 bytes blake2b-256 of the
//	         HTML page, then of the JSON page; uvarint n >= 1, then n
//	         times uvarint len, version: the releases with stable files,
//	         strictly increasing in byte order
//	trailer  0x00; uvarint file count; uvarint project count; 32 bytes:
//	         SHA-256 of every byte before the trailer's 0x00
//
// File paths are strictly increasing in byte order (the export's order),
// so the ledger can be merged with the next export without holding either
// in memory. Project records follow, one for every project with stable
// files, strictly increasing by page path (project + "/").
//
// Version 4 ledgers, written before v5, are read as the previous
// ledger: their files have no dropped or yanked bit (flags 0, 1 or 3)
// and their projects no releases (Project.Versions is nil), so the
// ceremony after one cannot know which releases had stable files or
// which stable files were yanked already (docs/policy.md, "Red flags").
// Version 1 ledgers (no stable flag, no projects), version 2 ledgers (no
// blake2b-256 of the pages) and version 3 ledgers (no policy) are
// refused: none was deployed.

const (
	ledgerMagicPrefix = "KCLEDGER"
	ledgerMagic       = ledgerMagicPrefix + "\x05"
)

// Version is the ledger format version written here; PreviousVersion is
// the one before it, still read.
const (
	Version         = 5
	PreviousVersion = 4
)

// Bounds on a project record's releases.
const (
	MaxVersions      = 1 << 20 // releases with stable files, per project
	MaxVersionLength = 128     // bytes of a version (as the export bounds it)
)

// MaxPolicyLength bounds the policy file a ledger holds (as policy.Load
// bounds it).
const MaxPolicyLength = 1 << 20

// MaxProjectLength bounds a project name in a ledger.
const MaxProjectLength = maxLedgerProject

// Limits on ledger fields.
const (
	maxLedgerPath    = 4096
	maxLedgerProject = 255
	maxLedgerRepo    = 64
	maxLedgerNaming  = 32
)

// Ledger errors; a *Error wraps one of them.
var (
	ErrLedgerFormat    = errors.New("malformed ledger")
	ErrLedgerTruncated = errors.New("truncated ledger")
	ErrLedgerOrder     = errors.New("ledger paths not strictly increasing")
	ErrLedgerDigest    = errors.New("ledger digest or count does not match its trailer")
)

// Error is a refusal to read a ledger, at a byte offset.
type Error struct {
	Offset int64
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("ledger offset %d: %v", e.Offset, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Header says whose listing a ledger is and when it was taken.
type Header struct {
	Repository    string
	ListingTime   time.Time // the export's generation time, whole seconds UTC
	StableVersion int64     // the stable version the ceremony signed
	// Naming is the policy's naming layout of the index pages, which
	// gives the project records' page paths (at most 32 bytes).
	Naming string
	// Policy is the exact bytes of the policy file the ceremony applied
	// (at most MaxPolicyLength): the next ceremony reviews what changed
	// in it (docs/policy.md, "Changes to the policy").
	Policy []byte
}

// Entry is one file of the listing.
type Entry struct {
	Path    string
	Project string
	Length  int64    // as listed
	SHA256  [32]byte // as listed
	// Stable says the file is in the stable set the ceremony signed.
	Stable bool
	// Kept says the stable entry is not the listed one (a changed file
	// whose old entry was kept): StableLength and StableSHA256 are what
	// stable lists. Only with Stable.
	Kept         bool
	StableLength int64
	StableSHA256 [32]byte
	// Dropped says a decision took the path out of the stable set (or
	// kept it out): later ceremonies keep it out until a lift decision.
	// Never with Stable.
	Dropped bool
	// Yanked says the listing marked the file yanked, so that the next
	// ceremony raises yanked-stable only for a file yanked since.
	Yanked bool
}

// StableContent returns the length and sha256 stable lists for the file.
func (e *Entry) StableContent() (int64, [32]byte) {
	if e.Kept {
		return e.StableLength, e.StableSHA256
	}
	return e.Length, e.SHA256
}

// Project is one project with stable files: what its stable index
// pages were made from (PageDigest, see pageDigest) and what they are.
type Project struct {
	Project    string
	PageDigest [32]byte
	HTMLLength int64
	HTMLSHA256 [32]byte
	// HTMLBLAKE2b and JSONBLAKE2b are the pages' BLAKE2b-256, listed
	// beside sha256 in their target entries.
	HTMLBLAKE2b, JSONBLAKE2b [32]byte
	JSONLength               int64
	JSONSHA256               [32]byte
	// Versions are the project's releases with stable files, strictly
	// increasing in byte order, at least one; nil in a version 4 ledger,
	// which did not record them.
	Versions []string
}

// Writer writes a ledger.
type Writer struct {
	bw       *bufio.Writer
	h        hash.Hash
	prev     []byte
	count    uint64
	projects uint64
	prevProj string
	buf      []byte
	err      error
	n        int64 // bytes written
	size     int64
	sum      [32]byte
	version  int
}

// NewWriter writes the header to w.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	return newWriter(w, h, Version)
}

// newWriter writes a ledger of the given format version (Version, or
// PreviousVersion for tests of reading one).
func newWriter(w io.Writer, h Header, version int) (*Writer, error) {
	if len(h.Repository) > maxLedgerRepo || !utf8.ValidString(h.Repository) || h.StableVersion < 1 || len(h.Naming) > maxLedgerNaming || !utf8.ValidString(h.Naming) || len(h.Policy) > MaxPolicyLength {
		return nil, fmt.Errorf("ledger header of %s v%d: %w", h.Repository, h.StableVersion, ErrLedgerFormat)
	}
	lw := &Writer{bw: bufio.NewWriterSize(w, 1<<20), h: sha256.New(), version: version}
	b := append([]byte(ledgerMagicPrefix), byte(version))
	b = binary.AppendUvarint(b, uint64(len(h.Repository)))
	b = append(b, h.Repository...)
	b = binary.AppendVarint(b, h.ListingTime.Unix())
	b = binary.AppendUvarint(b, uint64(h.StableVersion))
	b = binary.AppendUvarint(b, uint64(len(h.Naming)))
	b = append(b, h.Naming...)
	b = binary.AppendUvarint(b, uint64(len(h.Policy)))
	b = append(b, h.Policy...)
	lw.emit(b)
	return lw, lw.err
}

func (lw *Writer) emit(b []byte) {
	if lw.err != nil {
		return
	}
	lw.h.Write(b)
	lw.n += int64(len(b))
	_, lw.err = lw.bw.Write(b)
}

// Add appends a file entry; paths must be strictly increasing, and every
// file comes before the first project.
func (lw *Writer) Add(e *Entry) error {
	if lw.err != nil {
		return lw.err
	}
	if lw.projects > 0 {
		return fmt.Errorf("file %q after the projects: %w", e.Path, ErrLedgerOrder)
	}
	if err := checkLedgerEntry(e); err != nil {
		return err
	}
	if lw.version < Version && (e.Dropped || e.Yanked) {
		return fmt.Errorf("path %q: a version %d ledger has no dropped or yanked mark: %w", e.Path, lw.version, ErrLedgerFormat)
	}
	return lw.add(e)
}

// add is Add for entries already known valid (from a checked export):
// it checks the order only.
func (lw *Writer) add(e *Entry) error {
	if lw.err != nil {
		return lw.err
	}
	if lw.projects > 0 {
		return fmt.Errorf("file %q after the projects: %w", e.Path, ErrLedgerOrder)
	}
	if lw.count > 0 && e.Path <= string(lw.prev) {
		return fmt.Errorf("path %q after %q: %w", e.Path, lw.prev, ErrLedgerOrder)
	}
	lw.buf = AppendEntry(lw.buf[:0], e, lw.prev)
	lw.emit(lw.buf)
	lw.prev = append(lw.prev[:0], e.Path...)
	lw.count++
	return lw.err
}

// AddEncoded appends n file records encoded by AppendEntry, in order
// after the last one added, the last of them with path last. The records
// are not checked: they must come from entries Add would accept (from a
// checked export), each encoded after the path before it.
func (lw *Writer) AddEncoded(b []byte, n int, last string) error {
	if lw.err != nil {
		return lw.err
	}
	if lw.projects > 0 {
		return fmt.Errorf("file %q after the projects: %w", last, ErrLedgerOrder)
	}
	if n == 0 {
		return nil
	}
	lw.emit(b)
	lw.prev = append(lw.prev[:0], last...)
	lw.count += uint64(n)
	return lw.err
}

// AppendEntry encodes a file record after the path prev, for
// AddEncoded.
func AppendEntry(b []byte, e *Entry, prev []byte) []byte {
	shared := 0
	for shared < len(prev) && shared < len(e.Path) && prev[shared] == e.Path[shared] {
		shared++
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(shared))
	b = binary.AppendUvarint(b, uint64(len(e.Path)-shared))
	b = append(b, e.Path[shared:]...)
	b = binary.AppendUvarint(b, uint64(len(e.Project)))
	b = append(b, e.Project...)
	b = binary.AppendUvarint(b, uint64(e.Length))
	b = append(b, e.SHA256[:]...)
	var flags byte
	if e.Stable {
		flags |= 1
		if e.Kept {
			flags |= 2
		}
	} else if e.Dropped {
		flags |= 4
	}
	if e.Yanked {
		flags |= 8
	}
	b = append(b, flags)
	if flags&2 != 0 {
		b = binary.AppendUvarint(b, uint64(e.StableLength))
		b = append(b, e.StableSHA256[:]...)
	}
	return b
}

// ProjectOrder compares projects by page path (project + "/"): the order
// AddProject requires.
func ProjectOrder(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	// One is a prefix of the other: the shorter continues with '/'.
	switch {
	case len(a) == len(b):
		return 0
	case len(a) < len(b):
		return int('/') - int(b[n])
	default:
		return int(a[n]) - int('/')
	}
}

// AddProject appends a project record; projects must be strictly
// increasing by page path (project + "/").
func (lw *Writer) AddProject(p *Project) error {
	if lw.err != nil {
		return lw.err
	}
	if err := checkLedgerProject(p); err != nil {
		return err
	}
	if lw.projects > 0 && ProjectOrder(p.Project, lw.prevProj) <= 0 {
		return fmt.Errorf("project %q after %q: %w", p.Project, lw.prevProj, ErrLedgerOrder)
	}
	if (lw.version >= Version) != (p.Versions != nil) {
		return fmt.Errorf("project %q: a version %d ledger's projects have releases from version %d on: %w", p.Project, lw.version, Version, ErrLedgerFormat)
	}
	b := append(lw.buf[:0], 2)
	b = binary.AppendUvarint(b, uint64(len(p.Project)))
	b = append(b, p.Project...)
	b = append(b, p.PageDigest[:]...)
	b = binary.AppendUvarint(b, uint64(p.HTMLLength))
	b = append(b, p.HTMLSHA256[:]...)
	b = append(b, p.HTMLBLAKE2b[:]...)
	b = binary.AppendUvarint(b, uint64(p.JSONLength))
	b = append(b, p.JSONSHA256[:]...)
	b = append(b, p.JSONBLAKE2b[:]...)
	if p.Versions != nil {
		b = AppendVersions(b, p.Versions)
	}
	lw.buf = b
	lw.emit(b)
	lw.prevProj = p.Project
	lw.projects++
	return lw.err
}

// Close writes the trailer and flushes. It does not close the underlying
// writer.
func (lw *Writer) Close() error {
	if lw.err != nil {
		return lw.err
	}
	// The whole file's digest continues from the state of the one the
	// trailer holds, so the bytes are hashed once.
	state, err := lw.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	sum := lw.h.Sum(nil)
	b := []byte{0}
	b = binary.AppendUvarint(b, lw.count)
	b = binary.AppendUvarint(b, lw.projects)
	b = append(b, sum...)
	if _, err := lw.bw.Write(b); err != nil {
		return err
	}
	whole := sha256.New()
	if err := whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return err
	}
	whole.Write(b)
	whole.Sum(lw.sum[:0])
	lw.size = lw.n + int64(len(b))
	return lw.bw.Flush()
}

// Digest returns the length and SHA-256 of the whole ledger, valid after
// Close: what stable binds.
func (lw *Writer) Digest() (int64, [32]byte) { return lw.size, lw.sum }

func checkLedgerEntry(e *Entry) error {
	if e.Path == "" || len(e.Path) > maxLedgerPath || !utf8.ValidString(e.Path) || hasCtl(e.Path) {
		return fmt.Errorf("path %q: %w", e.Path, ErrLedgerFormat)
	}
	if len(e.Project) > maxLedgerProject || !utf8.ValidString(e.Project) || hasCtl(e.Project) {
		return fmt.Errorf("project %q: %w", e.Project, ErrLedgerFormat)
	}
	if e.Length < 0 || e.Length > export.MaxLength || e.StableLength < 0 || e.StableLength > export.MaxLength {
		return fmt.Errorf("length %d: %w", e.Length, ErrLedgerFormat)
	}
	if e.Kept && !e.Stable || !e.Kept && (e.StableLength != 0 || e.StableSHA256 != [32]byte{}) {
		return fmt.Errorf("path %q: inconsistent stable entry: %w", e.Path, ErrLedgerFormat)
	}
	if e.Dropped && e.Stable {
		return fmt.Errorf("path %q: dropped and stable: %w", e.Path, ErrLedgerFormat)
	}
	return nil
}

func checkLedgerProject(p *Project) error {
	if p.Project == "" || len(p.Project) > maxLedgerProject || export.CheckProject(p.Project) != nil {
		return fmt.Errorf("project %q: %w", p.Project, ErrLedgerFormat)
	}
	if p.HTMLLength < 0 || p.HTMLLength > export.MaxLength || p.JSONLength < 0 || p.JSONLength > export.MaxLength {
		return fmt.Errorf("project %q: page length: %w", p.Project, ErrLedgerFormat)
	}
	if p.Versions != nil {
		if err := CheckVersions(p.Versions); err != nil {
			return fmt.Errorf("project %q: %w", p.Project, err)
		}
	}
	return nil
}

// CheckVersions checks a project record's releases: at least one, at
// most MaxVersions, each 1 to MaxVersionLength bytes of text, strictly
// increasing.
func CheckVersions(vs []string) error {
	if len(vs) == 0 || len(vs) > MaxVersions {
		return fmt.Errorf("%d releases: %w", len(vs), ErrLedgerFormat)
	}
	for i, v := range vs {
		if v == "" || len(v) > MaxVersionLength || !validLedgerText([]byte(v)) {
			return fmt.Errorf("release %q: %w", v, ErrLedgerFormat)
		}
		if i > 0 && v <= vs[i-1] {
			return fmt.Errorf("release %q after %q: %w", v, vs[i-1], ErrLedgerOrder)
		}
	}
	return nil
}

// AppendVersions encodes a project record's releases as the ledger
// does: uvarint count, then each as uvarint length and bytes.
func AppendVersions(b []byte, vs []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// Reader reads a ledger as a stream: the file entries (Next), then
// the projects (NextProject).
type Reader struct {
	r        *countingReader
	h        hash.Hash // over every byte before the trailer tag
	whole    hash.Hash // over the whole file
	hdr      Header
	prev     []byte
	pbuf     []byte
	cur      Entry
	raw      RawEntry
	proj     Project
	count    uint64
	projects uint64
	err      error
	files    bool // the file section has ended
	done     bool
	tmp      []byte
	size     int64
	sum      [32]byte
	version  int
	vbuf     []byte // a project's versions, read
	vlen     []int
}

// SplitVersions cuts all, the concatenated versions, at the lengths
// given: the strings share all's memory.
func SplitVersions(all string, lens []int) []string {
	vs := make([]string, len(lens))
	k := 0
	for i, n := range lens {
		vs[i] = all[k : k+n]
		k += n
	}
	return vs
}

// RawEntry is a file entry read without allocating: PathBytes and
// ProjectBytes are valid until the next read, and the embedded Entry's
// Path and Project are empty.
type RawEntry struct {
	PathBytes, ProjectBytes []byte
	Entry
}

// countingReader buffers a ledger and hashes what is consumed in bulk:
// every consumed byte goes to h until stopH, then to whole.
type countingReader struct {
	r        io.Reader
	buf      []byte
	i, n     int // buf[i:n] is not consumed yet
	mark     int // buf[mark:i] is consumed but not hashed yet
	off      int64
	h, whole hash.Hash
	err      error
}

func (c *countingReader) flushHash() {
	if c.mark < c.i {
		if c.h != nil {
			c.h.Write(c.buf[c.mark:c.i])
		} else {
			c.whole.Write(c.buf[c.mark:c.i])
		}
	}
	c.mark = c.i
}

// stopH hashes what was consumed so far into h, then stops feeding h: the
// whole file's hash continues from h's state (each byte is hashed once).
func (c *countingReader) stopH() {
	c.flushHash()
	state, err := c.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err == nil {
		err = c.whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(state)
	}
	if err != nil {
		panic(err) // crypto/sha256 always can
	}
	c.h = nil
}

func (c *countingReader) fill() error {
	c.flushHash()
	for {
		if c.err != nil {
			return c.err
		}
		c.n = copy(c.buf, c.buf[c.i:c.n])
		c.i, c.mark = 0, 0
		m, err := c.r.Read(c.buf[c.n:])
		c.n += m
		c.err = err
		if m > 0 {
			return nil
		}
	}
}

func (c *countingReader) peekByte() (byte, error) {
	for c.i >= c.n {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	return c.buf[c.i], nil
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.peekByte()
	if err == nil {
		c.i++
		c.off++
	}
	return b, err
}

func (c *countingReader) full(p []byte) error {
	k := 0
	for k < len(p) {
		if c.i >= c.n {
			if err := c.fill(); err != nil {
				if err == io.EOF && k > 0 {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		m := copy(p[k:], c.buf[c.i:c.n])
		c.i += m
		c.off += int64(m)
		k += m
	}
	return nil
}

// NewReader reads and checks the ledger's header.
func NewReader(r io.Reader) (*Reader, error) {
	lr := &Reader{h: sha256.New(), whole: sha256.New()}
	lr.r = &countingReader{r: r, buf: make([]byte, 1<<20), h: lr.h, whole: lr.whole}
	magic := make([]byte, len(ledgerMagic))
	if err := lr.r.full(magic); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, lr.fail(lr.eof(err))
	} else if err != nil || string(magic[:len(ledgerMagicPrefix)]) != ledgerMagicPrefix || magic[len(ledgerMagicPrefix)] != Version && magic[len(ledgerMagicPrefix)] != PreviousVersion {
		return nil, lr.fail(fmt.Errorf("not a version %d (or %d) ledger: %w", Version, PreviousVersion, ErrLedgerFormat))
	}
	lr.version = int(magic[len(ledgerMagicPrefix)])
	repo, err := lr.bytesField(maxLedgerRepo)
	if err != nil {
		return nil, lr.fail(err)
	}
	if !utf8.Valid(repo) {
		return nil, lr.fail(fmt.Errorf("repository name: %w", ErrLedgerFormat))
	}
	repository := string(repo) // bytesField reuses its buffer
	t, err := binary.ReadVarint(lr.r)
	if err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	v, err := binary.ReadUvarint(lr.r)
	if err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	if v < 1 || v > 1<<53 {
		return nil, lr.fail(fmt.Errorf("stable version %d: %w", v, ErrLedgerFormat))
	}
	naming, err := lr.bytesField(maxLedgerNaming)
	if err != nil {
		return nil, lr.fail(err)
	}
	if !utf8.Valid(naming) {
		return nil, lr.fail(fmt.Errorf("naming: %w", ErrLedgerFormat))
	}
	nm := string(naming) // bytesField reuses its buffer
	pol, err := lr.bytesField(MaxPolicyLength)
	if err != nil {
		return nil, lr.fail(err)
	}
	lr.hdr = Header{Repository: repository, ListingTime: time.Unix(t, 0).UTC(), StableVersion: int64(v), Naming: nm, Policy: bytes.Clone(pol)}
	return lr, nil
}

func (lr *Reader) eof(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrLedgerTruncated
	}
	if errors.Is(err, errOverflow) {
		return ErrLedgerFormat
	}
	return fmt.Errorf("reading: %w", err) // an I/O error, as itself
}

var errOverflow = errors.New("varint overflow")

func (lr *Reader) uvarint(max uint64) (uint64, error) {
	v, err := binary.ReadUvarint(lr.r)
	if err != nil {
		return 0, lr.eof(err)
	}
	if v > max {
		return 0, fmt.Errorf("value %d above %d: %w", v, max, ErrLedgerFormat)
	}
	return v, nil
}

func (lr *Reader) bytesField(max uint64) ([]byte, error) {
	n, err := lr.uvarint(max)
	if err != nil {
		return nil, err
	}
	if cap(lr.tmp) < int(n) {
		lr.tmp = make([]byte, n)
	}
	b := lr.tmp[:n]
	if err := lr.r.full(b); err != nil {
		return nil, lr.eof(err)
	}
	return b, nil
}

func (lr *Reader) fail(err error) error {
	lr.err = &Error{Offset: lr.r.off, Err: err}
	return lr.err
}

// Header returns the ledger's header.
func (lr *Reader) Header() Header { return lr.hdr }

// Version returns the ledger's format version: Version or
// PreviousVersion.
func (lr *Reader) Version() int { return lr.version }

// validFlags says whether a file record's flags byte is one this
// ledger's version writes.
func (lr *Reader) validFlags(f byte) bool {
	if lr.version < Version {
		return f == 0 || f == 1 || f == 3
	}
	return f <= 15 && f&3 != 2 && f&5 != 5
}

// Next returns the next file entry, or io.EOF after the last one (then
// NextProject reads the projects). The entry is overwritten by the next
// call; its strings are not.
func (lr *Reader) Next() (*Entry, error) {
	raw, err := lr.NextRaw()
	if err != nil {
		return nil, err
	}
	lr.cur = raw.Entry
	lr.cur.Path, lr.cur.Project = string(raw.PathBytes), string(raw.ProjectBytes)
	return &lr.cur, nil
}

// NextRaw is Next without allocation: the entry's PathBytes and
// ProjectBytes are valid until the next call.
func (lr *Reader) NextRaw() (*RawEntry, error) {
	if lr.err != nil {
		return nil, lr.err
	}
	if lr.files {
		return nil, io.EOF
	}
	tag, err := lr.r.peekByte()
	if err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	switch tag {
	case 1:
	case 0, 2:
		lr.files = true
		return nil, io.EOF
	default:
		return nil, lr.fail(fmt.Errorf("record tag %#x: %w", tag, ErrLedgerFormat))
	}
	if raw, ok := lr.nextFast(); ok {
		return raw, nil
	}
	return lr.nextSlow()
}

// maxLedgerRecord bounds the encoded size of a file record.
const maxLedgerRecord = 1 + 3*binary.MaxVarintLen64 + maxLedgerPath + maxLedgerProject + 2*binary.MaxVarintLen64 + 2*32 + 1

// nextFast decodes a file record straight from the buffer when all of it
// is there (always, but for the last few records); ok false means use
// nextSlow, which reads the same record from the same place.
func (lr *Reader) nextFast() (*RawEntry, bool) {
	c := lr.r
	if c.n-c.i < maxLedgerRecord {
		if c.err != nil {
			return nil, false
		}
		c.flushHash()
		c.n = copy(c.buf, c.buf[c.i:c.n])
		c.i, c.mark = 0, 0
		for c.n < len(c.buf) && c.err == nil {
			m, err := c.r.Read(c.buf[c.n:])
			c.n += m
			c.err = err
		}
		if c.n-c.i < maxLedgerRecord {
			return nil, false
		}
	}
	b := c.buf[c.i:c.n]
	k := 1 // the tag, 1
	uv := func(max uint64) (uint64, bool) {
		v, n := binary.Uvarint(b[k:])
		if n <= 0 || v > max {
			return 0, false
		}
		k += n
		return v, true
	}
	shared, ok := uv(uint64(len(lr.prev)))
	if !ok {
		return nil, false
	}
	n, ok := uv(maxLedgerPath - shared)
	if !ok {
		return nil, false
	}
	path := append(lr.pbuf[:0], lr.prev[:shared]...)
	path = append(path, b[k:k+int(n)]...)
	k += int(n)
	np, ok := uv(maxLedgerProject)
	if !ok {
		return nil, false
	}
	proj := b[k : k+int(np)]
	k += int(np)
	l, ok := uv(export.MaxLength)
	if !ok {
		return nil, false
	}
	e := &lr.raw
	e.Entry = Entry{Length: int64(l)}
	copy(e.SHA256[:], b[k:k+32])
	k += 32
	flags := b[k]
	k++
	if !lr.validFlags(flags) {
		return nil, false
	}
	e.Stable, e.Kept, e.Dropped, e.Yanked = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0
	if e.Kept {
		l, ok := uv(export.MaxLength)
		if !ok {
			return nil, false
		}
		e.StableLength = int64(l)
		copy(e.StableSHA256[:], b[k:k+32])
		k += 32
	}
	if len(path) == 0 || lr.count > 0 && bytes.Compare(path, lr.prev) <= 0 || !validLedgerText(path) || !validLedgerText(proj) {
		return nil, false
	}
	lr.pbuf, lr.prev = lr.prev, path
	e.PathBytes = path
	e.ProjectBytes = append(e.ProjectBytes[:0], proj...)
	c.i += k
	c.off += int64(k)
	lr.count++
	return e, true
}

// validLedgerText is utf8.Valid and no control characters.
func validLedgerText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			return utf8.Valid(b)
		}
	}
	return true
}

func (lr *Reader) nextSlow() (*RawEntry, error) {
	lr.r.ReadByte()
	shared, err := lr.uvarint(uint64(len(lr.prev)))
	if err != nil {
		return nil, lr.fail(err)
	}
	suffix, err := lr.bytesField(maxLedgerPath - shared)
	if err != nil {
		return nil, lr.fail(err)
	}
	e := &lr.raw
	// Two path buffers, swapped: the previous path stays intact for the
	// order check.
	path := append(lr.pbuf[:0], lr.prev[:shared]...)
	path = append(path, suffix...)
	if lr.count > 0 && bytes.Compare(path, lr.prev) <= 0 {
		return nil, lr.fail(fmt.Errorf("path %q after %q: %w", path, lr.prev, ErrLedgerOrder))
	}
	lr.pbuf, lr.prev = lr.prev, path
	e.PathBytes = path
	proj, err := lr.bytesField(maxLedgerProject)
	if err != nil {
		return nil, lr.fail(err)
	}
	e.ProjectBytes = append(e.ProjectBytes[:0], proj...)
	l, err := lr.uvarint(export.MaxLength)
	if err != nil {
		return nil, lr.fail(err)
	}
	e.Entry = Entry{Length: int64(l)}
	if err := lr.r.full(e.SHA256[:]); err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	flags, err := lr.r.ReadByte()
	if err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	if !lr.validFlags(flags) {
		return nil, lr.fail(fmt.Errorf("flags %#x: %w", flags, ErrLedgerFormat))
	}
	e.Stable, e.Kept, e.Dropped, e.Yanked = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0
	if e.Kept {
		l, err := lr.uvarint(export.MaxLength)
		if err != nil {
			return nil, lr.fail(err)
		}
		e.StableLength = int64(l)
		if err := lr.r.full(e.StableSHA256[:]); err != nil {
			return nil, lr.fail(lr.eof(err))
		}
	}
	if len(e.PathBytes) == 0 || !validLedgerText(e.PathBytes) || !validLedgerText(e.ProjectBytes) {
		return nil, lr.fail(fmt.Errorf("path %q: %w", e.PathBytes, ErrLedgerFormat))
	}
	lr.count++
	return e, nil
}

// NextProject returns the next project, or io.EOF once the trailer has
// been read and checked and nothing follows it. It skips what is left of
// the file entries. The project is overwritten by the next call; its
// strings are not.
func (lr *Reader) NextProject() (*Project, error) {
	for !lr.files {
		if _, err := lr.NextRaw(); err != nil && err != io.EOF {
			return nil, err
		}
	}
	if lr.err != nil {
		return nil, lr.err
	}
	if lr.done {
		return nil, io.EOF
	}
	tag, err := lr.r.peekByte()
	if err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	if tag == 0 {
		lr.r.stopH() // the trailer is not part of its own digest
	}
	lr.r.ReadByte()
	switch tag {
	case 0:
		return nil, lr.trailer()
	case 2:
	default:
		return nil, lr.fail(fmt.Errorf("record tag %#x after the files: %w", tag, ErrLedgerFormat))
	}
	name, err := lr.bytesField(maxLedgerProject)
	if err != nil {
		return nil, lr.fail(err)
	}
	if lr.projects > 0 && ProjectOrder(string(name), lr.proj.Project) <= 0 {
		return nil, lr.fail(fmt.Errorf("project %q after %q: %w", name, lr.proj.Project, ErrLedgerOrder))
	}
	p := &lr.proj
	*p = Project{Project: string(name)}
	if err := lr.r.full(p.PageDigest[:]); err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	for _, pg := range []struct {
		n     *int64
		h, b2 *[32]byte
	}{{&p.HTMLLength, &p.HTMLSHA256, &p.HTMLBLAKE2b}, {&p.JSONLength, &p.JSONSHA256, &p.JSONBLAKE2b}} {
		l, err := lr.uvarint(export.MaxLength)
		if err != nil {
			return nil, lr.fail(err)
		}
		*pg.n = int64(l)
		if err := lr.r.full(pg.h[:]); err != nil {
			return nil, lr.fail(lr.eof(err))
		}
		if err := lr.r.full(pg.b2[:]); err != nil {
			return nil, lr.fail(lr.eof(err))
		}
	}
	if lr.version >= Version {
		n, err := lr.uvarint(MaxVersions)
		if err != nil {
			return nil, lr.fail(err)
		}
		if n == 0 {
			return nil, lr.fail(fmt.Errorf("project %q: no releases: %w", p.Project, ErrLedgerFormat))
		}
		// The versions' bytes into one buffer, then one string: two
		// allocations per project, not one per release.
		lr.vbuf, lr.vlen = lr.vbuf[:0], lr.vlen[:0]
		for range n {
			v, err := lr.bytesField(MaxVersionLength)
			if err != nil {
				return nil, lr.fail(err)
			}
			lr.vbuf = append(lr.vbuf, v...)
			lr.vlen = append(lr.vlen, len(v))
		}
		p.Versions = SplitVersions(string(lr.vbuf), lr.vlen)
	}
	if err := checkLedgerProject(p); err != nil {
		return nil, lr.fail(err)
	}
	lr.projects++
	return p, nil
}

func (lr *Reader) trailer() error {
	want := lr.h.Sum(nil)
	n, err := binary.ReadUvarint(lr.r)
	if err != nil {
		return lr.fail(lr.eof(err))
	}
	np, err := binary.ReadUvarint(lr.r)
	if err != nil {
		return lr.fail(lr.eof(err))
	}
	var got [32]byte
	if err := lr.r.full(got[:]); err != nil {
		return lr.fail(lr.eof(err))
	}
	if n != lr.count || np != lr.projects || !bytes.Equal(got[:], want) {
		return lr.fail(ErrLedgerDigest)
	}
	if _, err := lr.r.ReadByte(); err == nil {
		return lr.fail(fmt.Errorf("data after the trailer: %w", ErrLedgerFormat))
	} else if err != io.EOF {
		return lr.fail(lr.eof(err))
	}
	lr.done = true
	lr.size = lr.r.off
	lr.r.flushHash()
	copy(lr.sum[:], lr.whole.Sum(nil))
	return io.EOF
}

// FileDigest returns the whole file's length and SHA-256, valid once
// NextProject has returned io.EOF. This is what the stable metadata binds.
func (lr *Reader) FileDigest() (int64, [32]byte, bool) { return lr.size, lr.sum, lr.done }
