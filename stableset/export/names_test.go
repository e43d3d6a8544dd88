package export

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestNameSetSpills holds the duplicate filename check to its answer
// when its lists go to the work file: one list of five chunks' worth
// and a part, with repeated hashes in the chunks on disk, across them and in
// memory, found with the lines of the first record and the later one;
// the work file gone from the directory all along and after.
func TestNameSetSpills(t *testing.T) {
	dir := t.TempDir()
	s := newNameSet()
	s.dir = dir
	const n = 5*nameChunk + 100
	// Every hash in list 0 (top byte 0); hash i at line i+2, and the
	// repeats below at lines after n+1.
	for i := range n {
		s.add(uint64(i), int64(i+2))
	}
	repeats := []uint64{3, nameChunk + 7, 3, n - 1, 2 * nameChunk}
	for k, h := range repeats {
		s.add(h, int64(n+2+k))
	}
	s.add(1<<56|5, int64(n+2+len(repeats))) // another list, not a repeat
	onDisk := 0
	for _, r := range s.segs[0].spilled {
		onDisk += r.n
	}
	g := &s.segs[0]
	if s.spill == nil || len(g.hashes) != 1 || onDisk+len(g.hashes[0]) != n+len(repeats) || len(g.hashes[0]) > nameChunk {
		t.Fatalf("list 0: %d entries in the work file, %d chunks in memory; want all but one chunk's on disk", onDisk, len(g.hashes))
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("work file left in the directory: %v", es)
	}
	got := s.dups()
	var want [][2]int64
	for k, h := range repeats {
		want = append(want, [2]int64{int64(n + 2 + k), int64(h) + 2})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("dups = %v, want %v", got, want)
	}
	if s.err != nil || s.spill != nil {
		t.Fatalf("after dups: err %v, file open %v", s.err, s.spill != nil)
	}
}

// TestNameSetWorkFileError: a work directory that cannot hold the file
// fails the pass with an error that says so, never a pass with the check
// left out.
func TestNameSetWorkFileError(t *testing.T) {
	s := newNameSet()
	s.dir = filepath.Join(t.TempDir(), "missing")
	for i := range 2 * nameChunk {
		s.add(uint64(i), int64(i+2))
	}
	var r refusals
	err := s.refuseDups(&r, "export.jsonl", nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refuseDups = %v, want the work file's error", err)
	}
}
