package stableset

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"fmt"
	"io"
	"unsafe"
)

// Parallel export reading, for the pipeline: one goroutine reads the
// export in blocks of whole lines and hashes them, workers parse and check
// the blocks' records (everything checkRecord checks), and the consumer
// receives the blocks' records in order, to check what depends on the
// records around (order, duplicates, count, trailer) as ExportReader does.
// Records are not copied: their strings are substrings of their block,
// which is allocated for it and never modified.

// exportBatch is the records of one block, in order.
type exportBatch struct {
	recs   []Record
	hashes [][32]byte // SHA-256 of each record's path
	line0  int64      // the line number of recs[0]
	err    error      // the block's first error, after recs

	// In the last batch: the trailer line (nil if the export has none) and
	// its number. A trailer before the last line ends its block's batch:
	// then mid is set, and hstate (the digest's state before the block)
	// and data[:trailerOff] give the digest of the lines before it.
	last        bool
	trailer     []byte
	trailerLine int64
	mid         bool
	hstate      []byte
	data        []byte
	trailerOff  int
}

var exportBlockSize = 1 << 20 // a variable for tests

type exportJob struct {
	data   []byte
	line0  int64
	hstate []byte
	res    chan exportBatch
}

// readExportParallel reads the rest of the export after x's header. The
// batches come in order on the returned channel, which closes after the
// last batch or a batch with an error; closing stop ends it early.
func readExportParallel(x *ExportReader, workers int, stop <-chan struct{}) <-chan exportBatch {
	// Every byte before the first record is hashed already.
	x.waitHash()
	x.h.Write(x.chunk)
	x.chunk = x.chunk[:0]

	jobs := make(chan exportJob, workers)
	order := make(chan chan exportBatch, 2*workers+2)
	out := make(chan exportBatch, 2)
	for w := 0; w < workers; w++ {
		go func() {
			var p recParser
			for j := range jobs {
				b := parseBlock(&p, x, j.data, j.line0)
				if b.mid {
					b.hstate, b.data = j.hstate, j.data
				}
				j.res <- b
			}
		}()
	}
	// The consumer side: batches in order.
	go func() {
		defer close(out)
		for res := range order {
			var b exportBatch
			select {
			case b = <-res:
			case <-stop:
				return
			}
			select {
			case out <- b:
			case <-stop:
				return
			}
			if b.err != nil || b.last {
				for range order {
				}
				return
			}
		}
	}()
	go func() {
		defer close(jobs)
		defer close(order)
		var sendState func(data []byte, line0 int64, st []byte) bool
		h := x.h
		// hashSend hashes a block (noting the digest's state before it)
		// and sends it to the workers.
		hashSend := func(data []byte, line0 int64) bool {
			st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				panic(err) // crypto/sha256 always can
			}
			h.Write(data)
			return sendState(data, line0, st)
		}
		sendState = func(data []byte, line0 int64, st []byte) bool {
			res := make(chan exportBatch, 1)
			select {
			case order <- res:
			case <-stop:
				return false
			}
			if len(data) == 0 {
				res <- exportBatch{line0: line0}
				return true
			}
			select {
			case jobs <- exportJob{data: data, line0: line0, hstate: st, res: res}:
				return true
			case <-stop:
				return false
			}
		}
		final := func(b exportBatch) {
			res := make(chan exportBatch, 1)
			res <- b
			select {
			case order <- res:
			case <-stop:
			}
		}
		line := x.line + 1 // the number of the next line
		var pending, carry []byte
		for {
			// A long partial line at least doubles the next read, so that
			// small blocks (in tests) do not make reading quadratic.
			buf := make([]byte, len(carry)+max(exportBlockSize, len(carry)))
			n := copy(buf, carry)
			m, err := io.ReadFull(x.br, buf[n:])
			buf = buf[:n+m]
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				final(exportBatch{line0: line, err: &ExportError{File: x.name, Line: line, Err: fmt.Errorf("reading: %w", err)}})
				return
			}
			if err == nil {
				j := bytes.LastIndexByte(buf, '\n')
				if len(buf)-j-1 >= 2*MaxLineLength {
					// Lines before buf[j] are checked by the workers.
					if pending != nil && !hashSend(pending, line-int64(bytes.Count(pending, nl))) {
						return
					}
					pending = nil
					lines := int64(bytes.Count(buf[:j+1], nl))
					if j >= 0 && !hashSend(buf[:j+1], line) {
						return
					}
					fe := ferr("", ErrLineTooLong, "more than %d bytes", MaxLineLength)
					final(exportBatch{line0: line + lines, err: &ExportError{File: x.name, Line: line + lines, Err: fe.err}})
					return
				}
				if pending != nil && !hashSend(pending, line-int64(bytes.Count(pending, nl))) {
					return
				}
				pending, carry = buf[:j+1], buf[j+1:]
				line += int64(bytes.Count(pending, nl))
				continue
			}
			// End of the export: the last line must be the trailer.
			if len(buf) > 0 {
				if pending != nil && !hashSend(pending, line-int64(bytes.Count(pending, nl))) {
					return
				}
				pending = buf
				line += int64(bytes.Count(buf, nl))
			}
			first := line - int64(bytes.Count(pending, nl))
			if len(pending) > 0 && pending[len(pending)-1] != '\n' {
				if !hashSend(pending[:bytes.LastIndexByte(pending, '\n')+1], first) {
					return
				}
				fe := ferr("", ErrTruncated, "last line has no newline")
				final(exportBatch{last: true, line0: line, err: &ExportError{File: x.name, Line: line, Err: fe.err}})
				return
			}
			i := 0
			if len(pending) > 0 {
				i = bytes.LastIndexByte(pending[:len(pending)-1], '\n') + 1
			}
			if i == len(pending) || !bytes.HasPrefix(pending[i:], trailerPrefix) {
				// No trailer: every line is a record.
				if !hashSend(pending, first) {
					return
				}
				final(exportBatch{last: true, line0: line})
				return
			}
			if !hashSend(pending[:i], first) {
				return
			}
			final(exportBatch{last: true, line0: line - 1, trailer: pending[i : len(pending)-1], trailerLine: line - 1})
			return
		}
	}()
	return out
}

var nl = []byte{'\n'}

// parseBlock parses and checks the records of a block of whole lines.
func parseBlock(p *recParser, x *ExportReader, data []byte, line0 int64) exportBatch {
	b := exportBatch{line0: line0}
	if len(data) == 0 {
		return b
	}
	p.block = unsafe.String(&data[0], len(data))
	p.base = uintptr(unsafe.Pointer(&data[0]))
	n := bytes.Count(data, nl)
	b.recs = make([]Record, 0, n)
	b.hashes = make([][32]byte, 0, n)
	line := line0
	fail := func(fe *fieldError, at int64) exportBatch {
		b.err = &ExportError{File: x.name, Line: at, Field: fe.field, Err: fe.err}
		return b
	}
	for off := 0; off < len(data); line++ {
		end := off + bytes.IndexByte(data[off:], '\n')
		body := data[off:end]
		off = end + 1
		if len(body) > MaxLineLength {
			return fail(ferr("", ErrLineTooLong, "%d bytes, more than %d", len(body), MaxLineLength), line)
		}
		if bytes.HasPrefix(body, trailerPrefix) {
			// A trailer before the last line: the consumer checks it as
			// ExportReader would, then refuses what follows it.
			b.last, b.mid, b.trailer, b.trailerLine, b.trailerOff = true, true, body, line, off-len(body)-1
			return b
		}
		if fe := p.parseRecord(body); fe != nil {
			return fail(fe, line)
		}
		if fe := checkRecord(&p.rec, x.hdr.Generated, false); fe != nil {
			return fail(fe, line)
		}
		b.recs = append(b.recs, p.rec)
		b.hashes = append(b.hashes, sha256.Sum256(unsafe.Slice(unsafe.StringData(p.rec.Path), len(p.rec.Path))))
	}
	return b
}

// checkSequence checks a record against the previous one, as
// ExportReader.Next does.
func (x *ExportReader) checkSequence(r *Record, line int64) error {
	if x.count > 0 {
		if r.Path == x.prevPath {
			x.line = line
			return x.fail(ferr("path", ErrDuplicatePath, "%q", r.Path))
		}
		if r.Path < x.prevPath {
			x.line = line
			return x.fail(ferr("path", ErrUnsorted, "%q sorts before the previous path %q", r.Path, x.prevPath))
		}
	}
	x.prevPath = r.Path
	x.count++
	return nil
}

// finish checks the last batch: the trailer's count and digest.
func (x *ExportReader) finish(b *exportBatch) error {
	if b.trailer == nil {
		x.line = b.line0
		return x.fail(ferr("", ErrTruncated, "no trailer after %d records", x.count))
	}
	x.line = b.trailerLine
	if b.mid {
		// The digest of the lines before this trailer.
		h := sha256.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b.hstate); err != nil {
			return x.fail(ferr("", err, ""))
		}
		h.Write(b.data[:b.trailerOff])
		x.h = h
	}
	if fe := x.parseTrailer(b.trailer); fe != nil {
		return x.fail(fe)
	}
	if b.mid {
		x.line++
		return x.fail(ferr("", ErrAfterTrailer, ""))
	}
	x.err = io.EOF
	return nil
}
