package export

import (
	"hash/maphash"
	"os"
	"strconv"
	"testing"
	"time"
)

// Hooks for the benchmarks of package export_test.

// NewNameSet returns the reader's set of filenames.
func NewNameSet() *nameSet { return newNameSet() }

// AddBytes adds a filename at line.
func (s *nameSet) AddBytes(name []byte, line int64) { s.add(maphash.Bytes(s.seed, name), line) }

// Dups returns the lines of the duplicates and of the records they
// duplicate.
func (s *nameSet) Dups() [][2]int64 { return s.dups() }

// Len is the number of distinct filenames.
func (s *nameSet) Len() int64 { return s.n }

func TestNameSetTiming(t *testing.T) {
	if os.Getenv("NS_TIMING") == "" {
		t.Skip()
	}
	s := newNameSet()
	n := 25_000_000
	name := make([]byte, 0, 64)
	st := time.Now()
	for i := range n {
		name = append(name[:0], "project-"...)
		name = strconv.AppendInt(name, int64(i), 10)
		name = append(name, "-1.0.tar.gz"...)
		s.AddBytes(name, int64(i+2))
	}
	t.Logf("add %v", time.Since(st))
	st = time.Now()
	s.dups()
	t.Logf("dups %v", time.Since(st))
}
