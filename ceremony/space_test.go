package ceremony

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/stableset/policy"
)

// fakeSpace makes freeSpace report free bytes on every directory, each
// under prefix on filesystem 1 and any other on filesystem 2, until the
// test ends.
func fakeSpace(t *testing.T, prefix string, free int64) {
	t.Helper()
	real := freeSpace
	t.Cleanup(func() { freeSpace = real })
	freeSpace = func(dir string) (int64, uint64, error) {
		if strings.HasPrefix(dir, prefix) {
			return free, 1, nil
		}
		return free, 2, nil
	}
}

// TestCheckSpace: the needs on one filesystem add up; a disk with less
// free is refused, naming each directory, what goes there and the bytes.
func TestCheckSpace(t *testing.T) {
	dir := t.TempDir()
	work, media := filepath.Join(dir, "work"), filepath.Join(dir, "media", "new")
	fakeSpace(t, dir, 10e9)
	if err := checkSpace(spaceNeed{work, "the pass's work files", 6e9}, spaceNeed{"/elsewhere", "the output medium", 9e9}); err != nil {
		t.Errorf("two disks, each with room: %v", err)
	}
	err := checkSpace(spaceNeed{work, "the pass's work files", 6e9}, spaceNeed{media, "the output medium", 5e9})
	if !errors.Is(err, ErrSpace) {
		t.Fatalf("one disk, 11 GB needed, 10 GB free: %v", err)
	}
	for _, want := range []string{work + " (the pass's work files, at least 6.0 GB)", media + " (the output medium, at least 5.0 GB)", "needs at least 11.0 GB, has 10.0 GB free"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	// The real call: this test's own directory has room, and two
	// directories of one filesystem are one disk.
	freeSpace = realFreeSpace
	free, fs1, err := freeSpace(dir)
	_, fs2, err2 := freeSpace(existingParent(media))
	if err != nil || err2 != nil || free <= 0 || fs1 != fs2 {
		t.Errorf("freeSpace(%s) = %d on %d (%v), its missing child's parent on %d (%v)", dir, free, fs1, err, fs2, err2)
	}
}

var realFreeSpace = freeSpace

// TestStableCommandsCheckSpace: stable diff and stable sign refuse, before
// the pass, a work directory or medium with less free space than they
// need, and write nothing: no work directory, no medium.
func TestStableCommandsCheckSpace(t *testing.T) {
	_, s := bootedStable(t)
	st, err := os.Stat(s.Export)
	if err != nil {
		t.Fatal(err)
	}
	work, dir := s.TempDir, t.TempDir()

	// The pass's need is 2.5 times the export: just below it is refused.
	fakeSpace(t, work, int64(float64(st.Size())*spacePass)-1)
	if _, err := s.Diff(); !errors.Is(err, ErrSpace) || !strings.Contains(err.Error(), work+" (the pass's work files") {
		t.Fatalf("stable diff with too little room: %v", err)
	}
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("the refused diff left %d files in the work directory", len(ents))
	}
	fakeSpace(t, work, int64(float64(st.Size())*spacePass)+1)
	d, err := s.Diff()
	if err != nil {
		t.Fatalf("stable diff with room: %v", err)
	}
	approve := d.Digest
	d.Close()

	// The medium, in files+pages and in pages mode.
	media := filepath.Join(dir, "media")
	for _, mode := range []policy.TargetMode{policy.ModeFilesPages, policy.ModePages} {
		factor := spaceMediumFiles
		if mode == policy.ModePages {
			factor = spaceMediumPages
		}
		p := policy.Default()
		p.TargetMode = mode
		s.Policy = p
		fakeSpace(t, media, int64(float64(st.Size())*factor)-1)
		if _, err := s.Sign(approve, media); !errors.Is(err, ErrSpace) || !strings.Contains(err.Error(), media+" (the output medium") {
			t.Fatalf("%s: stable sign onto a medium with too little room: %v", mode, err)
		}
		if _, err := os.Stat(media); err == nil {
			t.Errorf("%s: the refused signing left %s", mode, media)
		}
	}
}
