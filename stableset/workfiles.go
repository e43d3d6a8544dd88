package stableset

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"

	"github.com/keyceremony/keyceremony/stableset/simpleindex"
)

// Work files: the compact binary forms records take between the stages of
// the pipeline (see pipeline.go). They live only in the pipeline's
// temporary work directory.

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Page record flags.
const (
	pageYanked   = 1
	pageHasCore  = 2
	pageNameTail = 4 // the filename is the path's last bytes and not stored
)

// appendPageRec appends the page record of a stable file: everything its
// index page shows (the digest of a project's page records, in path order,
// decides whether its pages are made again). length and sum are the
// stable entry's.
func appendPageRec(b []byte, r *export.Record, length int64, sum *[32]byte) []byte {
	var flags byte
	if r.Yanked {
		flags |= pageYanked
	}
	if r.HasCoreMetadata {
		flags |= pageHasCore
	}
	tail := strings.HasSuffix(r.Path, r.Filename)
	if tail {
		flags |= pageNameTail
	}
	b = append(b, flags)
	b = appendStr(b, r.Path)
	if tail {
		b = binary.AppendUvarint(b, uint64(len(r.Filename)))
	} else {
		b = appendStr(b, r.Filename)
	}
	b = appendStr(b, r.Version)
	b = binary.AppendUvarint(b, uint64(length))
	b = append(b, sum[:]...)
	b = binary.AppendVarint(b, r.UploadTime.Unix())
	b = appendStr(b, r.YankedReason)
	b = appendStr(b, r.RequiresPython)
	if r.HasCoreMetadata {
		b = append(b, r.CoreMetadataSHA256[:]...)
	}
	return b
}

// entryRec is an entry record: a project, a category code, and for a
// stable file its page record (body, decoded by pageFile only when the
// project's pages are made again).
type entryRec struct {
	project string
	code    byte
	body    string
}

// entryRec reads one entry record, checking only the page record's
// framing.
func (d *spillDec) entryRec(p *entryRec) {
	p.project = d.str()
	p.code = d.byte()
	p.body = ""
	if p.code&codeStable != 0 {
		start := d.i
		var pf simpleindex.PageFile
		d.pageFile(&pf)
		p.body = d.s[start:d.i]
	}
}

// pageFile decodes a page record's body.
func (d *spillDec) pageFile(pf *simpleindex.PageFile) (path string) {
	flags := d.byte()
	path = d.str()
	*pf = simpleindex.PageFile{}
	if flags&pageNameTail != 0 {
		n := d.uvarint()
		if n > uint64(len(path)) {
			d.bad = true
			return
		}
		pf.Filename = path[len(path)-int(n):]
	} else {
		pf.Filename = d.str()
	}
	pf.Version = d.str()
	pf.Size = int64(d.uvarint())
	d.sum(&pf.SHA256)
	u := d.uvarint()
	if t := int64(u>>1) ^ -int64(u&1); t != 0 {
		pf.UploadTime = time.Unix(t, 0).UTC()
	}
	pf.Yanked, pf.HasCoreMetadata = flags&pageYanked != 0, flags&pageHasCore != 0
	pf.YankedReason = d.str()
	pf.RequiresPython = d.str()
	if pf.HasCoreMetadata {
		d.sum(&pf.CoreMetadataSHA256)
	}
	return path
}

// appendLedgerProject encodes a project record as the ledger does.
func appendLedgerProject(b []byte, p *ledger.Project) []byte {
	b = append(b, 2)
	b = appendStr(b, p.Project)
	b = append(b, p.PageDigest[:]...)
	b = binary.AppendUvarint(b, uint64(p.HTMLLength))
	b = append(b, p.HTMLSHA256[:]...)
	b = append(b, p.HTMLBLAKE2b[:]...)
	b = binary.AppendUvarint(b, uint64(p.JSONLength))
	b = append(b, p.JSONSHA256[:]...)
	b = append(b, p.JSONBLAKE2b[:]...)
	// The releases, none (nil) from a version 4 ledger.
	return ledger.AppendVersions(b, p.Versions)
}

func (d *spillDec) ledgerProject(p *ledger.Project) {
	if d.byte() != 2 {
		d.bad = true
		return
	}
	p.Project = d.str()
	d.sum(&p.PageDigest)
	p.HTMLLength = int64(d.uvarint())
	d.sum(&p.HTMLSHA256)
	d.sum(&p.HTMLBLAKE2b)
	p.JSONLength = int64(d.uvarint())
	d.sum(&p.JSONSHA256)
	d.sum(&p.JSONBLAKE2b)
	p.Versions = nil
	n := d.uvarint()
	if n > ledger.MaxVersions || n > uint64(len(d.s)-d.i) {
		d.bad = true
		return
	}
	if n > 0 {
		p.Versions = make([]string, 0, n) // the strings are the work file's
	}
	for ; n > 0 && !d.bad; n-- {
		p.Versions = append(p.Versions, d.str())
	}
}

var errSpill = errors.New("corrupt work file")

// readFileString reads a whole file into one string, so that what is
// parsed out of it can be substrings: one allocation per file, not one per
// field. A missing file is empty.
func readFileString(path string) (string, error) {
	f, err := openWorkOrEmpty(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var sb strings.Builder
	if st, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil {
			sb.Grow(int(fi.Size()) + 1)
		}
	}
	if _, err := io.Copy(&sb, f); err != nil {
		return "", fmt.Errorf("reading a work file: %w", err)
	}
	return sb.String(), nil
}

// spillDec decodes work file records from a string.
type spillDec struct {
	s   string
	i   int
	bad bool
}

func (d *spillDec) uvarint() uint64 {
	var x uint64
	var sh uint
	for k := 0; k < 10 && d.i < len(d.s); k++ {
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			return x | uint64(c)<<sh
		}
		x |= uint64(c&0x7f) << sh
		sh += 7
	}
	d.bad = true
	return 0
}

func (d *spillDec) byte() byte {
	if d.i >= len(d.s) {
		d.bad = true
		return 0
	}
	d.i++
	return d.s[d.i-1]
}

func (d *spillDec) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)-d.i) {
		d.bad = true
		return ""
	}
	v := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return v
}

func (d *spillDec) sum(dst *[32]byte) {
	if len(d.s)-d.i < 32 {
		d.bad = true
		return
	}
	copy(dst[:], d.s[d.i:d.i+32])
	d.i += 32
}

// asyncTee writes what is written to it to each of its writers in turn,
// in chunks of about teeChunk bytes, each chunk on a goroutine of its own
// while the next one fills; at most one runs at a time, so the writers
// see the bytes in order. The writers' errors are theirs to keep (a
// hash.Hash has none; a workFile keeps its first for Close). Close
// writes the rest and waits: only then have the writers seen everything.
// No goroutine outlives a chunk, so one never closed leaks nothing.
type asyncTee struct {
	ws         []io.Writer
	cur, other []byte
	busy       bool
	done       chan struct{}
	closed     bool
}

const teeChunk = 1 << 20

func newAsyncTee(ws ...io.Writer) *asyncTee {
	return &asyncTee{ws: ws, cur: make([]byte, 0, teeChunk+4096), other: make([]byte, 0, teeChunk+4096), done: make(chan struct{}, 1)}
}

func (t *asyncTee) wait() {
	if t.busy {
		<-t.done
		t.busy = false
	}
}

func (t *asyncTee) Write(b []byte) (int, error) {
	if len(t.cur)+len(b) > teeChunk && len(t.cur) > 0 {
		t.wait()
		full := t.cur
		t.busy = true
		go func() {
			for _, w := range t.ws {
				w.Write(full)
			}
			t.done <- struct{}{}
		}()
		t.cur, t.other = t.other[:0], full
	}
	t.cur = append(t.cur, b...)
	return len(b), nil
}

// Close hands on the last chunk and returns once every writer has had
// it; a second Close does nothing.
func (t *asyncTee) Close() {
	if t.closed {
		return
	}
	t.closed = true
	t.wait()
	for _, w := range t.ws {
		w.Write(t.cur)
	}
	t.cur = t.cur[:0]
}

// asyncHash is SHA-256 through an asyncTee: the hashing of a large
// stream off the goroutine that writes it.
type asyncHash struct {
	h hash.Hash
	t *asyncTee
}

func newAsyncHash() *asyncHash {
	h := sha256.New()
	return &asyncHash{h: h, t: newAsyncTee(h)}
}

func (a *asyncHash) Write(b []byte) (int, error) { return a.t.Write(b) }

// Sum returns the digest of everything written; nothing may be written
// after it.
func (a *asyncHash) Sum() (s [32]byte) {
	a.t.Close()
	a.h.Sum(s[:0])
	return s
}

// Work files are created and opened through these; tests replace them to
// inject faults.
var (
	createWork = func(path string) (io.WriteCloser, error) {
		return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	openWork = func(path string) (io.ReadCloser, error) { return os.Open(path) }
)

// openWorkOrEmpty opens a work file; one that was never created (its
// bucket received nothing) reads as empty.
func openWorkOrEmpty(path string) (io.ReadCloser, error) {
	f, err := openWork(path)
	if errors.Is(err, fs.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening a work file: %w", err)
	}
	return f, nil
}

// workFile is a buffered work file that is created when first written to:
// a bucket that receives nothing has no file, which its readers take as
// empty. Its first error is kept: Write returns it from then on, and Close
// returns it.
type workFile struct {
	path   string
	size   int
	w      io.WriteCloser
	bw     *bufio.Writer
	err    error
	closed bool
}

func (f *workFile) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.closed {
		f.err = fmt.Errorf("%s: write after close", filepath.Base(f.path))
		return 0, f.err
	}
	if f.bw == nil {
		w, err := createWork(f.path)
		if err != nil {
			f.err = fmt.Errorf("creating a work file: %w", err)
			return 0, f.err
		}
		f.w, f.bw = w, bufio.NewWriterSize(w, f.size)
	}
	if len(p) >= directWrite {
		// Straight to the file, after what is buffered: not copied
		// into the buffer first (a page of a large project).
		if err := f.bw.Flush(); err != nil {
			f.err = fmt.Errorf("writing a work file: %w", err)
			return 0, f.err
		}
		n, err := f.w.Write(p)
		if err != nil {
			f.err = fmt.Errorf("writing a work file: %w", err)
		}
		return n, f.err
	}
	n, err := f.bw.Write(p)
	if err != nil {
		f.err = fmt.Errorf("writing a work file: %w", err)
	}
	return n, f.err
}

// directWrite is the size from which a workFile write goes straight to the
// file.
const directWrite = 64 << 10

// WriteString writes s as Write writes its bytes, without converting it.
func (f *workFile) WriteString(s string) (int, error) {
	if f.err != nil || f.closed || f.bw == nil {
		// The first write, or one that fails: Write's checks.
		return f.Write([]byte(s))
	}
	n, err := f.bw.WriteString(s)
	if err != nil {
		f.err = fmt.Errorf("writing a work file: %w", err)
	}
	return n, f.err
}

// Close flushes and closes the file, if it was created, and returns the
// first error the file met. Closing again does nothing.
func (f *workFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.bw != nil {
		if err := f.bw.Flush(); err != nil && f.err == nil {
			f.err = fmt.Errorf("writing a work file: %w", err)
		}
		if err := f.w.Close(); err != nil && f.err == nil {
			f.err = fmt.Errorf("writing a work file: %w", err)
		}
	}
	return f.err
}

// readErr remembers the first error other than io.EOF that reading r met,
// so that a work file that cannot be decoded is called corrupt only when
// reading it did not fail.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// or returns the read error if there was one, else err.
func (e *readErr) or(err error) error {
	if e.err != nil {
		return fmt.Errorf("reading a work file: %w", e.err)
	}
	return err
}
