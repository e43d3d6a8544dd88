package export

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
)

// MaxErrors is how many refused records an *Errors lists; it counts the
// others.
const MaxErrors = 100

// Errors is every refusal of one pass over an export, so that the
// repository can fix its export in one round: the first MaxErrors in line
// order, each an *Error, and how many more there were. A refused record
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

// nameSet remembers the filename of every record and the line it was on,
// to find two records with one filename: a 64-bit keyed hash of the name
// and the line, 12 bytes a slot, in 256 open-addressing tables (chosen
// by the hash's top byte) that each grow by a quarter when 7/8 full, so
// that growing never holds two copies of much. A false match needs two
// names of one 64-bit hash (about 1 in 60,000 exports of 25 million
// files); it is reported with both lines, for a person to check.
type nameSet struct {
	seed maphash.Seed
	segs [256]nameSeg
	n    int64
}

type nameSeg struct {
	keys  []uint64 // 0: empty
	lines []uint32
	n     int
}

func newNameSet() *nameSet { return &nameSet{seed: maphash.MakeSeed()} }

func (s *nameSet) hash(name string) uint64 {
	h := maphash.String(s.seed, name)
	if h == 0 {
		h = 1
	}
	return h
}

// add records name (hashed with hash) at line and returns the line of an
// earlier record with the same hash, or 0.
func (s *nameSet) add(h uint64, line int64) int64 {
	seg := &s.segs[h>>56]
	if (seg.n+1)*8 > len(seg.keys)*7 {
		seg.grow()
	}
	if first := seg.insert(h, lineBits(line)); first != 0 {
		return int64(first)
	}
	s.n++
	return 0
}

func lineBits(line int64) uint32 {
	if line > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(line)
}

func (g *nameSeg) slot(h uint64) int {
	// The hash's low 32 bits scaled to the table (the top byte chose the
	// table).
	return int(uint64(uint32(h)) * uint64(len(g.keys)) >> 32)
}

func (g *nameSeg) insert(h uint64, line uint32) uint32 {
	i := g.slot(h)
	for {
		switch g.keys[i] {
		case 0:
			g.keys[i], g.lines[i] = h, line
			g.n++
			return 0
		case h:
			return g.lines[i]
		}
		if i++; i == len(g.keys) {
			i = 0
		}
	}
}

func (g *nameSeg) grow() {
	old, oldLines := g.keys, g.lines
	size := max(64, len(old)+len(old)/4)
	g.keys, g.lines, g.n = make([]uint64, size), make([]uint32, size), 0
	for i, k := range old {
		if k != 0 {
			g.insert(k, oldLines[i])
		}
	}
}

// dupFilename is the refusal of a record whose filename an earlier record
// has.
func dupFilename(r *Record, first int64) *fieldError {
	return ferr("filename", ErrDuplicateFilename, "%q (path %q) is also the filename of the record on line %d", r.Filename, r.Path, first)
}
