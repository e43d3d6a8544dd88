package export

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"io"
	"slices"
	"unsafe"
)

// Parallel reading: one goroutine reads the export in blocks of whole
// lines and hashes them, workers parse and check the blocks' records
// (everything checkRecord checks), and one goroutine takes the blocks in
// order and checks what depends on the records around (order, duplicates,
// count, trailer) as Next does. Records are not copied: their strings are
// substrings of their block, which is allocated for it and never modified.

// Batch is the records of one block of the export, in order, each checked
// exactly as Next checks it.
type Batch struct {
	Records    []Record   // the records of the block without fault
	PathSHA256 [][32]byte // SHA-256 of each record's path
	Line       int64      // the line number of the block's first line
	// Err is the pass's error, as Next would return it (an *Error or an
	// *Errors): set only on the last batch sent. Refused records are
	// left out of Records and listed in the last batch's Err.
	Err error
	// Last is set on the last batch of an export: when its Err is nil, the
	// trailer has been verified and Trailer reports it.
	Last bool

	// In the last batch: the trailer line (nil if the export has none) and
	// its number. A trailer before the last line ends its block's batch:
	// then mid is set, and hstate (the digest's state before the block)
	// and data[:trailerOff] give the digest of the lines before it.
	trailer     []byte
	trailerLine int64
	mid         bool
	hstate      []byte
	data        []byte
	trailerOff  int

	// lines[i] is the line of Records[i], when a record of the block was
	// refused (nil: Records[i] is on line Line+i); refused lists the
	// block's refusals (at most MaxErrors, then counted in more); fnHash
	// the hash of each record's filename.
	lines   []int64
	refused refusals
	fnHash  []uint64
	nrec    int64 // record lines in the block, refused ones included
}

// lineOf returns the line of b.Records[i].
func (b *Batch) lineOf(i int) int64 {
	if b.lines != nil {
		return b.lines[i]
	}
	return b.Line + int64(i)
}

var blockSize = 1 << 20 // a variable for tests

type job struct {
	data   []byte
	line0  int64
	hstate []byte
	res    chan Batch
}

// Batches reads the rest of the export, after its header and any records
// Next returned, parsing it on workers goroutines. The batches come in order on the
// returned channel, which closes after the last batch or a batch with an
// error; closing stop ends it early. Next must not be called once Batches
// has been.
func (x *Reader) Batches(workers int, stop <-chan struct{}) <-chan Batch {
	if x.err != nil {
		out := make(chan Batch, 1)
		if x.err != io.EOF {
			out <- Batch{Line: x.line, Err: x.err, Last: true}
		} else {
			out <- Batch{Line: x.line, Last: true}
		}
		close(out)
		return out
	}
	workers = max(workers, 1)
	// Every byte before the first record is hashed already.
	x.waitHash()
	x.h.Write(x.chunk)
	x.chunk = x.chunk[:0]

	jobs := make(chan job, workers)
	order := make(chan chan Batch, 2*workers+2)
	out := make(chan Batch, 2)
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
			var b Batch
			select {
			case b = <-res:
			case <-stop:
				return
			}
			x.check(&b)
			select {
			case out <- b:
			case <-stop:
				return
			}
			if b.Err != nil || b.Last {
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
			res := make(chan Batch, 1)
			select {
			case order <- res:
			case <-stop:
				return false
			}
			if len(data) == 0 {
				res <- Batch{Line: line0}
				return true
			}
			select {
			case jobs <- job{data: data, line0: line0, hstate: st, res: res}:
				return true
			case <-stop:
				return false
			}
		}
		final := func(b Batch) {
			res := make(chan Batch, 1)
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
			buf := make([]byte, len(carry)+max(blockSize, len(carry)))
			n := copy(buf, carry)
			m, err := io.ReadFull(x.br, buf[n:])
			buf = buf[:n+m]
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				final(Batch{Line: line, Err: &Error{File: x.name, Line: line, Err: fmt.Errorf("reading: %w", err)}})
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
					final(Batch{Line: line + lines, Err: &Error{File: x.name, Line: line + lines, Err: fe.err}})
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
				final(Batch{Last: true, Line: line, Err: &Error{File: x.name, Line: line, Err: fe.err}})
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
				final(Batch{Last: true, Line: line})
				return
			}
			if !hashSend(pending[:i], first) {
				return
			}
			final(Batch{Last: true, Line: line - 1, trailer: pending[i : len(pending)-1], trailerLine: line - 1})
			return
		}
	}()
	return out
}

var nl = []byte{'\n'}

// parseBlock parses and checks the records of a block of whole lines.
func parseBlock(p *recParser, x *Reader, data []byte, line0 int64) Batch {
	b := Batch{Line: line0}
	if len(data) == 0 {
		return b
	}
	p.block = unsafe.String(&data[0], len(data))
	p.base = uintptr(unsafe.Pointer(&data[0]))
	n := bytes.Count(data, nl)
	b.Records = make([]Record, 0, n)
	b.PathSHA256 = make([][32]byte, 0, n)
	b.fnHash = make([]uint64, 0, n)
	line := line0
	refuse := func(fe *fieldError, at int64) {
		if b.lines == nil {
			b.lines = make([]int64, len(b.Records), n)
			for i := range b.lines {
				b.lines[i] = line0 + int64(i)
			}
		}
		b.refused.add(&Error{File: x.name, Line: at, Field: fe.field, Err: fe.err})
	}
	for off := 0; off < len(data); line++ {
		end := off + bytes.IndexByte(data[off:], '\n')
		body := data[off:end]
		off = end + 1
		if len(body) > MaxLineLength {
			fe := ferr("", ErrLineTooLong, "%d bytes, more than %d", len(body), MaxLineLength)
			b.Err = &Error{File: x.name, Line: line, Field: fe.field, Err: fe.err}
			return b
		}
		if bytes.HasPrefix(body, trailerPrefix) {
			// A trailer before the last line: the consumer checks it as
			// Reader would, then refuses what follows it.
			b.Last, b.mid, b.trailer, b.trailerLine, b.trailerOff = true, true, body, line, off-len(body)-1
			return b
		}
		b.nrec++
		if fe := p.parseRecord(body); fe != nil {
			refuse(fe, line)
			continue
		}
		if fe := checkRecord(&p.rec, x.hdr.Generated, false); fe != nil {
			refuse(fe, line)
			continue
		}
		b.Records = append(b.Records, p.rec)
		b.PathSHA256 = append(b.PathSHA256, sha256.Sum256(unsafe.Slice(unsafe.StringData(p.rec.Path), len(p.rec.Path))))
		b.fnHash = append(b.fnHash, x.names.hash(p.rec.Filename))
		if b.lines != nil {
			b.lines = append(b.lines, line)
		}
	}
	return b
}

// finish checks the last batch: the trailer's count and digest.
func (x *Reader) finish(b *Batch) error {
	if b.trailer == nil {
		x.line = b.Line
		return x.fail(ferr("", ErrTruncated, "no trailer after %d records", x.recLines))
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
	var fatal error
	if err := x.names.refuseDups(&x.refused, x.name, x.src); err != nil {
		fatal = &Error{File: x.name, Line: x.line, Err: err}
	}
	if x.err = x.refused.result(fatal); x.err != nil {
		return x.err
	}
	x.err = io.EOF
	return nil
}

// check checks a batch's records against those before them, leaving out
// those it refuses, and, in the last batch, the trailer; it sets b.Err to
// the pass's error on the last batch, or on a batch that stops the pass.
func (x *Reader) check(b *Batch) {
	var refused []*Error
	k := 0
	for i := range b.Records {
		r := &b.Records[i]
		line := b.lineOf(i)
		if fe := x.sequence(r, b.fnHash[i], line); fe != nil {
			refused = append(refused, &Error{File: x.name, Line: line, Field: fe.field, Err: fe.err})
			if b.lines == nil {
				b.lines = make([]int64, len(b.Records))
				for j := range b.lines {
					b.lines[j] = b.Line + int64(j)
				}
			}
			continue
		}
		if k != i {
			b.Records[k], b.PathSHA256[k], b.fnHash[k] = *r, b.PathSHA256[i], b.fnHash[i]
			if b.lines != nil {
				b.lines[k] = b.lines[i]
			}
		}
		k++
	}
	b.Records, b.PathSHA256, b.fnHash = b.Records[:k], b.PathSHA256[:k], b.fnHash[:k]
	if b.lines != nil {
		b.lines = b.lines[:k]
	}
	// The block's refusals, in line order.
	refused = append(refused, b.refused.list...)
	slices.SortStableFunc(refused, func(a, c *Error) int { return cmp.Compare(a.Line, c.Line) })
	for _, e := range refused {
		x.refused.add(e)
	}
	x.refused.more += b.refused.more
	b.refused = refusals{}
	x.recLines += b.nrec
	if b.Err != nil {
		// A line too long: the pass stops here.
		var e *Error
		if errors.As(b.Err, &e) {
			x.line = e.Line
			b.Err = x.fail(&fieldError{e.Field, e.Err})
		}
		return
	}
	if b.Last {
		b.Err = x.finish(b)
	}
}
