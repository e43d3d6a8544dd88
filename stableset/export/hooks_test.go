package export

import "hash/maphash"

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
