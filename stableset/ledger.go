package stableset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
	"unicode/utf8"
)

// The ledger: what a ceremony saw of the repository.
//
// Format v1 (docs/stable-pipeline.md), binary, streaming:
//
//	magic    "KCLEDGER" 0x01
//	header   uvarint len, repository; varint listing time (Unix seconds);
//	         uvarint stable version of the ceremony that wrote it
//	record*  0x01; uvarint shared, uvarint n, n bytes: the path is the
//	         first shared bytes of the previous path then these n bytes;
//	         uvarint len, project; uvarint length; 32 bytes sha256
//	trailer  0x00; uvarint record count; 32 bytes: SHA-256 of every byte
//	         before the trailer's 0x00
//
// Paths are strictly increasing in byte order (the export's order), so the
// ledger can be merged with the next export without holding either in
// memory.

const ledgerMagic = "KCLEDGER\x01"

// LedgerVersion is the ledger format version written and read here.
const LedgerVersion = 1

// Limits on ledger fields.
const (
	maxLedgerPath    = 4096
	maxLedgerProject = 255
	maxLedgerRepo    = 64
)

// Ledger errors; a *LedgerError wraps one of them.
var (
	ErrLedgerFormat    = errors.New("malformed ledger")
	ErrLedgerTruncated = errors.New("truncated ledger")
	ErrLedgerOrder     = errors.New("ledger paths not strictly increasing")
	ErrLedgerDigest    = errors.New("ledger digest or count does not match its trailer")
)

// LedgerError is a refusal to read a ledger, at a byte offset.
type LedgerError struct {
	Offset int64
	Err    error
}

func (e *LedgerError) Error() string { return fmt.Sprintf("ledger offset %d: %v", e.Offset, e.Err) }
func (e *LedgerError) Unwrap() error { return e.Err }

// LedgerHeader says whose listing a ledger is and when it was taken.
type LedgerHeader struct {
	Repository    string
	ListingTime   time.Time // the export's generation time, whole seconds UTC
	StableVersion int64     // the stable version the ceremony signed
}

// LedgerEntry is one file of the listing.
type LedgerEntry struct {
	Path    string
	Project string
	Length  int64
	SHA256  [32]byte
}

// LedgerWriter writes a ledger.
type LedgerWriter struct {
	bw    *bufio.Writer
	h     hash.Hash
	prev  []byte
	count uint64
	buf   []byte
	err   error
}

// NewLedgerWriter writes the header to w.
func NewLedgerWriter(w io.Writer, h LedgerHeader) (*LedgerWriter, error) {
	if len(h.Repository) > maxLedgerRepo || !utf8.ValidString(h.Repository) || h.StableVersion < 1 {
		return nil, fmt.Errorf("ledger header %+v: %w", h, ErrLedgerFormat)
	}
	lw := &LedgerWriter{bw: bufio.NewWriterSize(w, 1<<20), h: sha256.New()}
	b := []byte(ledgerMagic)
	b = binary.AppendUvarint(b, uint64(len(h.Repository)))
	b = append(b, h.Repository...)
	b = binary.AppendVarint(b, h.ListingTime.Unix())
	b = binary.AppendUvarint(b, uint64(h.StableVersion))
	lw.emit(b)
	return lw, lw.err
}

func (lw *LedgerWriter) emit(b []byte) {
	if lw.err != nil {
		return
	}
	lw.h.Write(b)
	_, lw.err = lw.bw.Write(b)
}

// Add appends an entry; paths must be strictly increasing.
func (lw *LedgerWriter) Add(e *LedgerEntry) error {
	if lw.err != nil {
		return lw.err
	}
	if err := checkLedgerEntry(e); err != nil {
		return err
	}
	if lw.count > 0 && e.Path <= string(lw.prev) {
		return fmt.Errorf("path %q after %q: %w", e.Path, lw.prev, ErrLedgerOrder)
	}
	shared := 0
	for shared < len(lw.prev) && shared < len(e.Path) && lw.prev[shared] == e.Path[shared] {
		shared++
	}
	b := append(lw.buf[:0], 1)
	b = binary.AppendUvarint(b, uint64(shared))
	b = binary.AppendUvarint(b, uint64(len(e.Path)-shared))
	b = append(b, e.Path[shared:]...)
	b = binary.AppendUvarint(b, uint64(len(e.Project)))
	b = append(b, e.Project...)
	b = binary.AppendUvarint(b, uint64(e.Length))
	b = append(b, e.SHA256[:]...)
	lw.buf = b
	lw.emit(b)
	lw.prev = append(lw.prev[:0], e.Path...)
	lw.count++
	return lw.err
}

// Close writes the trailer and flushes. It does not close the underlying
// writer.
func (lw *LedgerWriter) Close() error {
	if lw.err != nil {
		return lw.err
	}
	sum := lw.h.Sum(nil)
	b := []byte{0}
	b = binary.AppendUvarint(b, lw.count)
	b = append(b, sum...)
	if _, err := lw.bw.Write(b); err != nil {
		return err
	}
	return lw.bw.Flush()
}

func checkLedgerEntry(e *LedgerEntry) error {
	if e.Path == "" || len(e.Path) > maxLedgerPath || !utf8.ValidString(e.Path) || hasCtl(e.Path) {
		return fmt.Errorf("path %q: %w", e.Path, ErrLedgerFormat)
	}
	if len(e.Project) > maxLedgerProject || !utf8.ValidString(e.Project) || hasCtl(e.Project) {
		return fmt.Errorf("project %q: %w", e.Project, ErrLedgerFormat)
	}
	if e.Length < 0 || e.Length > MaxLength {
		return fmt.Errorf("length %d: %w", e.Length, ErrLedgerFormat)
	}
	return nil
}

func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// LedgerReader reads a ledger as a stream.
type LedgerReader struct {
	r      *countingReader
	h      hash.Hash // over every byte before the trailer tag
	whole  hash.Hash // over the whole file
	hdr    LedgerHeader
	prev   []byte
	cur    LedgerEntry
	count  uint64
	err    error
	done   bool
	tmp    []byte
	intern map[string]string
	size   int64
	sum    [32]byte
}

// countingReader buffers a ledger and hashes what is consumed in bulk:
// every consumed byte goes to whole, and to h until stopH.
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
		}
		c.whole.Write(c.buf[c.mark:c.i])
	}
	c.mark = c.i
}

// stopH hashes what was consumed so far into h, then stops feeding h.
func (c *countingReader) stopH() {
	c.flushHash()
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

// NewLedgerReader reads and checks the ledger's header.
func NewLedgerReader(r io.Reader) (*LedgerReader, error) {
	lr := &LedgerReader{h: sha256.New(), whole: sha256.New(), intern: map[string]string{}}
	lr.r = &countingReader{r: r, buf: make([]byte, 1<<20), h: lr.h, whole: lr.whole}
	magic := make([]byte, len(ledgerMagic))
	if err := lr.r.full(magic); err != nil || string(magic) != ledgerMagic {
		return nil, lr.fail(fmt.Errorf("not a version %d ledger: %w", LedgerVersion, ErrLedgerFormat))
	}
	repo, err := lr.bytesField(maxLedgerRepo)
	if err != nil {
		return nil, lr.fail(err)
	}
	if !utf8.Valid(repo) {
		return nil, lr.fail(fmt.Errorf("repository name: %w", ErrLedgerFormat))
	}
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
	lr.hdr = LedgerHeader{Repository: string(repo), ListingTime: time.Unix(t, 0).UTC(), StableVersion: int64(v)}
	return lr, nil
}

func (lr *LedgerReader) eof(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrLedgerTruncated
	}
	if errors.Is(err, errOverflow) {
		return ErrLedgerFormat
	}
	return fmt.Errorf("%w: %v", ErrLedgerFormat, err)
}

var errOverflow = errors.New("varint overflow")

func (lr *LedgerReader) uvarint(max uint64) (uint64, error) {
	v, err := binary.ReadUvarint(lr.r)
	if err != nil {
		return 0, lr.eof(err)
	}
	if v > max {
		return 0, fmt.Errorf("value %d above %d: %w", v, max, ErrLedgerFormat)
	}
	return v, nil
}

func (lr *LedgerReader) bytesField(max uint64) ([]byte, error) {
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

func (lr *LedgerReader) fail(err error) error {
	lr.err = &LedgerError{Offset: lr.r.off, Err: err}
	return lr.err
}

// Header returns the ledger's header.
func (lr *LedgerReader) Header() LedgerHeader { return lr.hdr }

// Next returns the next entry, or io.EOF once the trailer has been read and
// checked and nothing follows it. The entry is overwritten by the next call;
// its strings are not.
func (lr *LedgerReader) Next() (*LedgerEntry, error) {
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
	case 1:
	default:
		return nil, lr.fail(fmt.Errorf("record tag %#x: %w", tag, ErrLedgerFormat))
	}
	shared, err := lr.uvarint(uint64(len(lr.prev)))
	if err != nil {
		return nil, lr.fail(err)
	}
	suffix, err := lr.bytesField(maxLedgerPath - shared)
	if err != nil {
		return nil, lr.fail(err)
	}
	path := append(lr.prev[:shared:shared], suffix...)
	if lr.count > 0 && bytes.Compare(path, lr.prev) <= 0 {
		return nil, lr.fail(fmt.Errorf("path %q after %q: %w", path, lr.prev, ErrLedgerOrder))
	}
	e := &lr.cur
	e.Path = string(path)
	lr.prev = append(lr.prev[:0], path...)
	proj, err := lr.bytesField(maxLedgerProject)
	if err != nil {
		return nil, lr.fail(err)
	}
	if s, ok := lr.intern[string(proj)]; ok {
		e.Project = s
	} else {
		e.Project = string(proj)
		if len(lr.intern) < 1<<20 {
			lr.intern[e.Project] = e.Project
		}
	}
	l, err := lr.uvarint(MaxLength)
	if err != nil {
		return nil, lr.fail(err)
	}
	e.Length = int64(l)
	if err := lr.r.full(e.SHA256[:]); err != nil {
		return nil, lr.fail(lr.eof(err))
	}
	if err := checkLedgerEntry(e); err != nil {
		return nil, lr.fail(err)
	}
	lr.count++
	return e, nil
}

func (lr *LedgerReader) trailer() error {
	want := lr.h.Sum(nil)
	n, err := binary.ReadUvarint(lr.r)
	if err != nil {
		return lr.fail(lr.eof(err))
	}
	var got [32]byte
	if err := lr.r.full(got[:]); err != nil {
		return lr.fail(lr.eof(err))
	}
	if n != lr.count || !bytes.Equal(got[:], want) {
		return lr.fail(ErrLedgerDigest)
	}
	if _, err := lr.r.ReadByte(); err != io.EOF {
		return lr.fail(fmt.Errorf("data after the trailer: %w", ErrLedgerFormat))
	}
	lr.done = true
	lr.size = lr.r.off
	lr.r.flushHash()
	copy(lr.sum[:], lr.whole.Sum(nil))
	return io.EOF
}

// FileDigest returns the whole file's length and SHA-256, valid once Next
// has returned io.EOF. This is what the stable metadata binds.
func (lr *LedgerReader) FileDigest() (int64, [32]byte, bool) { return lr.size, lr.sum, lr.done }
