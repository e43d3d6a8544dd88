package export

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Writer writes an export in the one canonical form the reader
// accepts. It refuses, with an *Error, any record the reader would
// refuse: invalid fields and paths that are not strictly increasing in
// Write, two records with one filename in Close (which then writes no
// trailer). Write sets the record's Legacy as the reader would.
// Nothing is flushed to the underlying writer until its buffer fills or
// Close is called; an export without its trailer is refused by readers.
type Writer struct {
	bw     *bufio.Writer
	h      hash.Hash
	hdr    Header
	line   int64
	count  int64
	prev   string
	buf    []byte
	err    error
	closed bool
	names  *nameSet
}

// NewWriter writes the header h to w. A zero h.Format or h.Version
// means FormatName and FormatVersion; any other value must equal them.
// h.Generated must be whole seconds; it is written in UTC.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	x := &Writer{bw: bufio.NewWriterSize(w, 256<<10), h: sha256.New(), line: 1, names: newNameSet()}
	if h.Format == "" {
		h.Format = FormatName
	}
	if h.Version == 0 {
		h.Version = FormatVersion
	}
	var fe *fieldError
	switch {
	case h.Format != FormatName:
		fe = ferr("format", ErrFormat, "format is %q, want %q", h.Format, FormatName)
	case h.Version != FormatVersion:
		fe = ferr("version", ErrUnsupportedVersion, "version %d (this build writes version %d)", h.Version, FormatVersion)
	default:
		if fe = checkRepository(h.Repository); fe == nil {
			fe = checkTime("generated", h.Generated)
		}
	}
	if fe != nil {
		return nil, &Error{Line: 1, Field: fe.field, Err: fe.err}
	}
	h.Generated = h.Generated.UTC()
	x.hdr = h
	b := append(x.buf[:0], `{"format":`...)
	b = appendString(b, h.Format)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(h.Version), 10)
	b = append(b, `,"repository":`...)
	b = appendString(b, h.Repository)
	b = append(b, `,"generated":"`...)
	b = appendTime(b, h.Generated)
	b = append(b, "\"}\n"...)
	x.buf = b
	if err := x.emit(b); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *Writer) emit(b []byte) error {
	x.h.Write(b)
	if _, err := x.bw.Write(b); err != nil {
		x.err = &Error{Line: x.line, Err: err}
		return x.err
	}
	return nil
}

// Write checks r and writes it as the next line. After an error, every
// later call returns it again.
func (x *Writer) Write(r *Record) error {
	if x.err != nil {
		return x.err
	}
	if x.closed {
		return &Error{Line: x.line + 1, Err: errWriterClosed}
	}
	fe := checkRecord(r, x.hdr.Generated, true)
	if fe == nil && x.count > 0 {
		if r.Path == x.prev {
			fe = ferr("path", ErrDuplicatePath, "%q", r.Path)
		} else if r.Path < x.prev {
			fe = ferr("path", ErrUnsorted, "%q sorts before the previous path %q", r.Path, x.prev)
		}
	}
	if fe != nil {
		// The record is not written: the writer stays usable.
		return &Error{Line: x.line + 1, Field: fe.field, Err: fe.err}
	}
	x.line++
	x.count++
	x.prev = r.Path
	x.names.add(x.names.hash(r.Filename), x.line)
	x.buf = appendRecord(x.buf[:0], r)
	return x.emit(x.buf)
}

// Close writes the trailer and flushes. It does not close the underlying
// writer.
func (x *Writer) Close() error {
	if x.err != nil {
		return x.err
	}
	if x.closed {
		return nil
	}
	x.closed = true
	// Two records with one filename: the export is refused, without its
	// trailer, as a reader would refuse it.
	var dup refusals
	x.names.refuseDups(&dup, "", nil)
	if err := dup.result(nil); err != nil {
		x.err = err
		return err
	}
	var sum [32]byte
	x.h.Sum(sum[:0])
	b := append(x.buf[:0], `{"trailer":{"count":`...)
	b = strconv.AppendInt(b, x.count, 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, "\"}}\n"...)
	x.line++
	if _, err := x.bw.Write(b); err != nil {
		x.err = &Error{Line: x.line, Err: err}
		return x.err
	}
	if err := x.bw.Flush(); err != nil {
		x.err = &Error{Line: x.line, Err: err}
		return x.err
	}
	return nil
}

// Count returns the number of records written.
func (x *Writer) Count() int64 { return x.count }

var errWriterClosed = errorString("write after close")

type errorString string

func (e errorString) Error() string { return string(e) }

// appendRecord appends r's line, with its newline.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"path":`...)
	b = appendString(b, r.Path)
	b = append(b, `,"project":`...)
	b = appendString(b, r.Project)
	b = append(b, `,"version":`...)
	b = appendString(b, r.Version)
	b = append(b, `,"filename":`...)
	b = appendString(b, r.Filename)
	b = append(b, `,"length":`...)
	b = strconv.AppendInt(b, r.Length, 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, r.SHA256[:])
	b = append(b, `","blake2b_256":"`...)
	b = hex.AppendEncode(b, r.BLAKE2b256[:])
	b = append(b, `","upload_time":"`...)
	b = appendTime(b, r.UploadTime)
	b = append(b, `","yanked":`...)
	b = strconv.AppendBool(b, r.Yanked)
	b = append(b, `,"yanked_reason":`...)
	b = appendString(b, r.YankedReason)
	b = append(b, `,"requires_python":`...)
	b = appendString(b, r.RequiresPython)
	b = append(b, `,"core_metadata_sha256":"`...)
	if r.HasCoreMetadata {
		b = hex.AppendEncode(b, r.CoreMetadataSHA256[:])
	}
	b = append(b, "\"}\n"...)
	return b
}

// appendString appends s as a canonical JSON string: only '"' and '\' are
// escaped (control characters are refused before this is called).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for {
		i := strings.IndexAny(s, `"\`)
		if i < 0 {
			break
		}
		b = append(b, s[:i]...)
		b = append(b, '\\', s[i])
		s = s[i+1:]
	}
	b = append(b, s...)
	return append(b, '"')
}
