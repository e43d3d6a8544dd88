package export

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// MaxErrors is how many refused records an *Errors lists; it counts the
// others.
const MaxErrors = 100

// Errors is every refusal of one pass over an export, so that the
// repository can fix its export in one round: the first MaxErrors found
// (records in line order, then the duplicate filenames the end of the
// pass finds), each an *Error, sorted by line, and how many more there
// were. A refused record
// does not stop the pass: the records without fault keep streaming, and
// the pass ends with *Errors where it would have ended with io.EOF (or
// with the error that stopped it, then the last in List). errors.Is and
// errors.As see every listed error.
type Errors struct {
	List []*Error
	More int64 // refusals not listed
}

func (e *Errors) Error() string {
	if len(e.List) == 1 && e.More == 0 {
		return e.List[0].Error()
	}
	var b strings.Builder
	b.WriteString(strconv.FormatInt(int64(len(e.List))+e.More, 10))
	b.WriteString(" errors in the export:")
	for _, x := range e.List {
		b.WriteString("\n  ")
		b.WriteString(x.Error())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  and %d more", e.More)
	}
	return b.String()
}

// Unwrap returns the listed errors.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, x := range e.List {
		out[i] = x
	}
	return out
}

// refusals collects the refused records of a pass.
type refusals struct {
	list []*Error
	more int64
}

func (r *refusals) add(e *Error) {
	if len(r.list) < MaxErrors {
		r.list = append(r.list, e)
		return
	}
	r.more++
}

// result returns the pass's error: nil if nothing was refused and fatal
// is nil; fatal alone if nothing else was refused; else an *Errors,
// sorted by line, with fatal last.
func (r *refusals) result(fatal error) error {
	if len(r.list) == 0 && r.more == 0 {
		return fatal
	}
	list := slices.Clone(r.list)
	slices.SortStableFunc(list, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	more := r.more
	if fatal != nil {
		if fe, ok := fatal.(*Error); ok {
			list = append(list, fe)
		} else {
			list = append(list, &Error{Err: fatal})
		}
	}
	return &Errors{List: list, More: more}
}

// nameSet remembers the filename of every record and its line, to find
// two records with one filename: a 64-bit keyed hash of the name and the
// line, 12 bytes a file, appended (never probed) to one of 256 lists
// chosen by the hash's top byte, in chunks so that growing never copies.
// A list's chunk of nameChunk entries, once full, is written to a work
// file (unlinked once made) and its memory reused, so that the set holds
// at most 256 chunks (12 MB) whatever the export's size: at 25 million
// files the 300 MB of entries are on disk, not in memory. At the end of
// the pass each list is read back and its hashes are sorted on their
// own: two equal hashes are two records with one filename, and a second
// walk of that list, in line order, finds their lines. Appending writes
// memory in order (a probed table would miss the cache on every file
// and need room to spare); the sort runs on every core, a list at a
// time a core (BenchmarkFilenameSet measures both).
// A false match needs two names of one 64-bit hash (about 1 in 60,000
// exports of 25 million files); it is reported with both lines, for a
// person to check.
type nameSet struct {
	seed  maphash.Seed
	segs  [256]nameSeg
	n     int64
	dir   string   // where the work file is made; "" is os.TempDir()
	spill *os.File // the work file, once a chunk is full
	off   int64    // its size
	err   error    // the first error making, writing or reading it
}

// nameChunk is how many entries a chunk of a list holds at most.
const nameChunk = 4096

type nameSeg struct {
	hashes  [][]uint64 // in chunks, in the order added (line order)
	lines   [][]uint32 // the line of each hash
	spilled []spillRun // chunks in the work file, before those in memory
}

// spillRun is a chunk in the work file: n hashes at off, then their n
// lines.
type spillRun struct {
	off int64
	n   int
}

func newNameSet() *nameSet { return &nameSet{seed: maphash.MakeSeed()} }

func (s *nameSet) hash(name string) uint64 { return maphash.String(s.seed, name) }

// add records a filename's hash h at line.
func (s *nameSet) add(h uint64, line int64) {
	g := &s.segs[h>>56]
	n := len(g.hashes)
	if n == 0 || len(g.hashes[n-1]) == cap(g.hashes[n-1]) {
		if n > 0 && cap(g.hashes[n-1]) == nameChunk {
			s.spillSeg(g)
		} else {
			// Chunks grow from 16 entries to nameChunk, so that a small
			// export costs little.
			size := 16
			if n > 0 {
				size = min(nameChunk, 2*cap(g.hashes[n-1]))
			}
			g.hashes = append(g.hashes, make([]uint64, 0, size))
			g.lines = append(g.lines, make([]uint32, 0, size))
		}
		n = len(g.hashes)
	}
	g.hashes[n-1] = append(g.hashes[n-1], h)
	g.lines[n-1] = append(g.lines[n-1], lineBits(line))
	s.n++
}

// spillSeg writes g's chunks to the work file and keeps its last (full)
// chunk's memory, emptied, for what follows. After an error the entries
// are dropped: the pass fails with s.err.
func (s *nameSet) spillSeg(g *nameSeg) {
	if s.spill == nil && s.err == nil {
		f, err := os.CreateTemp(s.dir, "export-names-*")
		if err != nil {
			s.err = err
		} else {
			// Unlinked at once: nothing is left on disk whatever ends the
			// process (where the system keeps an open file's data).
			if os.Remove(f.Name()) == nil {
				s.dir = ""
			} else {
				s.dir = f.Name() // removed by close
			}
			s.spill = f
		}
	}
	for c, hs := range g.hashes {
		if s.err != nil {
			break
		}
		ls := g.lines[c]
		if _, err := s.spill.Write(u64Bytes(hs)); err != nil {
			s.err = err
			break
		}
		if _, err := s.spill.Write(u32Bytes(ls)); err != nil {
			s.err = err
			break
		}
		g.spilled = append(g.spilled, spillRun{s.off, len(hs)})
		s.off += int64(len(hs)) * 12
	}
	last := len(g.hashes) - 1
	g.hashes = append(g.hashes[:0], g.hashes[last][:0])
	g.lines = append(g.lines[:0], g.lines[last][:0])
}

// load reads g's chunks in the work file back, before those in memory.
func (s *nameSet) load(g *nameSeg) error {
	if len(g.spilled) == 0 {
		return nil
	}
	hashes := make([][]uint64, 0, len(g.spilled)+len(g.hashes))
	lines := make([][]uint32, 0, len(g.spilled)+len(g.hashes))
	for _, r := range g.spilled {
		hs, ls := make([]uint64, r.n), make([]uint32, r.n)
		if _, err := s.spill.ReadAt(u64Bytes(hs), r.off); err != nil {
			return err
		}
		if _, err := s.spill.ReadAt(u32Bytes(ls), r.off+int64(r.n)*8); err != nil {
			return err
		}
		hashes, lines = append(hashes, hs), append(lines, ls)
	}
	g.hashes, g.lines, g.spilled = append(hashes, g.hashes...), append(lines, g.lines...), nil
	return nil
}

// close closes and removes the work file; it returns s.err.
func (s *nameSet) close() error {
	if s.spill != nil {
		s.spill.Close()
		if s.dir == s.spill.Name() {
			os.Remove(s.dir)
		}
		s.spill = nil
	}
	return s.err
}

func u64Bytes(s []uint64) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 8*len(s))
}

func u32Bytes(s []uint32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

func lineBits(line int64) uint32 {
	if line > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(line)
}

// dups empties the set and returns, for every record whose filename an
// earlier record has, its line and the first such record's, sorted by
// the later line. Each list's hashes are sorted on their own to find the
// repeated ones; a second walk of the list, in line order, finds their
// lines. After an error of the work file, s.err is set and what dups
// returns is incomplete.
func (s *nameSet) dups() [][2]int64 {
	workers := min(runtime.GOMAXPROCS(0), 8)
	outs := make([][][2]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var all []uint64
			for i := w; i < len(s.segs); i += workers {
				if err := s.load(&s.segs[i]); err != nil && errs[w] == nil {
					errs[w] = err
				}
				outs[w] = s.segs[i].dups(outs[w], &all)
			}
		}()
	}
	wg.Wait()
	if s.err == nil {
		s.err = errors.Join(errs...)
	}
	s.close()
	s.n = 0
	var out [][2]int64
	for _, o := range outs {
		out = append(out, o...)
	}
	slices.SortFunc(out, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	return out
}

// dups appends the segment's duplicates to out and empties it; all is
// scratch space.
func (g *nameSeg) dups(out [][2]int64, all *[]uint64) [][2]int64 {
	a := (*all)[:0]
	for _, c := range g.hashes {
		a = append(a, c...)
	}
	*all = a
	slices.Sort(a)
	var repeated map[uint64]int64 // hash: line of its first record
	for j := 1; j < len(a); j++ {
		if a[j] == a[j-1] {
			if repeated == nil {
				repeated = map[uint64]int64{}
			}
			repeated[a[j]] = 0
		}
	}
	if repeated != nil {
		for c, hs := range g.hashes {
			for k, h := range hs {
				first, ok := repeated[h]
				switch {
				case !ok:
				case first == 0:
					repeated[h] = int64(g.lines[c][k])
				default:
					out = append(out, [2]int64{int64(g.lines[c][k]), first})
				}
			}
		}
	}
	g.hashes, g.lines = nil, nil
	return out
}

// refuseDups adds the refusals of the duplicate filenames to r. src, if
// not nil, holds the export's bytes: the records' paths are read from it
// again to name them (duplicates are rare, and refuse the export).
//
// It returns an error of the work file, which fails the pass: the check
// could not be made.
func (s *nameSet) refuseDups(r *refusals, file string, src io.ReaderAt) error {
	ds := s.dups()
	if s.err != nil {
		return fmt.Errorf("checking for duplicate filenames: work file: %w", s.err)
	}
	if len(ds) == 0 {
		return nil
	}
	var paths map[int64]string
	if src != nil {
		want := map[int64]bool{}
		for i, d := range ds {
			if i < MaxErrors {
				want[d[0]], want[d[1]] = true, true
			}
		}
		paths = pathsAt(src, want)
	}
	for _, d := range ds {
		p2, ok2 := paths[d[0]]
		p1, ok1 := paths[d[1]]
		var err error
		if ok1 && ok2 {
			err = fmt.Errorf("%w: %q (path %q) is also the filename of the record on line %d (path %q)",
				ErrDuplicateFilename, p2[strings.LastIndexByte(p2, '/')+1:], p2, d[1], p1)
		} else {
			err = fmt.Errorf("%w: the record's filename is also the filename of the record on line %d", ErrDuplicateFilename, d[1])
		}
		r.add(&Error{File: file, Line: d[0], Field: "filename", Err: err})
	}
	return nil
}

// pathsAt reads the export in src again and returns the path of the
// record on each line wanted. Lines it cannot read or parse are left out.
func pathsAt(src io.ReaderAt, want map[int64]bool) map[int64]string {
	out := map[int64]string{}
	br := bufio.NewReaderSize(io.NewSectionReader(src, 0, 1<<62), 2*MaxLineLength)
	var p recParser
	for line := int64(1); len(out) < len(want); line++ {
		b, err := br.ReadSlice('\n')
		if err != nil {
			break
		}
		if want[line] && p.parseRecord(b[:len(b)-1]) == nil {
			out[line] = p.rec.Path
		}
	}
	return out
}
