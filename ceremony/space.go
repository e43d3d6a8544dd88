package ceremony

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/stableset/policy"
)

// ErrSpace is a directory with less free space than a stable command
// needs, found before it starts: nothing was written.
var ErrSpace = hint.New("not enough free space", "free space on that disk, or give --work-dir (the pass) or the medium on a larger one, then run the command again")

// What a stable command writes, as a multiple of the export's size (the
// export is about 520 bytes a file). Each is a lower bound, taken below
// what was measured at 10 M files (docs/runbook-stable.md, "Disk"), so
// that the check refuses only a disk that would certainly fill:
//
//   - spacePass: the pass's work files in --work-dir, 2.9x measured (15 GB
//     for a 5.2 GB export), which `stable diff --backup` keeps;
//   - spaceCheck: the signing from a kept pass, whose check writes the
//     canonical diff again (0.4x measured, 2.1 GB);
//   - spaceMediumFiles: the output medium in files+pages mode, 3.3x measured
//     (17 GB);
//   - spaceMediumPages: the output medium in pages mode, not measured: the
//     files+pages medium without the leaves' file entries, which leaves
//     the diff's text and canonical form (0.9x measured: 2.7 and 2.1 GB)
//     and the index pages and their metadata (most of the 12 GB under
//     stable/); 2.0 is an estimate below that.
const (
	spacePass        = 2.5
	spaceCheck       = 0.3
	spaceMediumFiles = 3.0
	spaceMediumPages = 2.0
)

// spaceNeed is bytes a command will write under dir.
type spaceNeed struct {
	dir, what string
	bytes     int64
}

// freeSpace returns the bytes an unprivileged writer may still use on
// dir's filesystem, and the filesystem's id. A variable for tests.
var freeSpace = func(dir string) (free int64, fs uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	var s unix.Stat_t
	if err := unix.Stat(dir, &s); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), uint64(s.Dev), nil
}

// checkSpace refuses (ErrSpace) when the needs on one filesystem add up
// to more than it has free, naming each directory, what goes there, the
// bytes needed and the bytes free.
func checkSpace(needs ...spaceNeed) error {
	type disk struct {
		free, need int64
		dirs       []string
	}
	var order []uint64
	disks := map[uint64]*disk{}
	for _, n := range needs {
		dir := existingParent(n.dir)
		free, fs, err := freeSpace(dir)
		if err != nil {
			return fmt.Errorf("%s: the free space for %s: %w", dir, n.what, err)
		}
		d := disks[fs]
		if d == nil {
			d = &disk{free: free}
			disks[fs] = d
			order = append(order, fs)
		}
		d.need += n.bytes
		d.dirs = append(d.dirs, fmt.Sprintf("%s (%s, at least %s)", n.dir, n.what, gb(n.bytes)))
	}
	for _, fs := range order {
		if d := disks[fs]; d.need > d.free {
			return fmt.Errorf("%s: needs at least %s, has %s free: %w", strings.Join(d.dirs, " and "), gb(d.need), gb(d.free), ErrSpace)
		}
	}
	return nil
}

// existingParent is dir, or its nearest parent that exists (a work or
// output directory the command will create).
func existingParent(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

// gb formats bytes for the room: "17.0 GB" (10^9), "812 MB", "4 KB".
func gb(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%d MB", n/1e6)
	default:
		return fmt.Sprintf("%d KB", (n+999)/1e3)
	}
}

// spaceNeeds are what a stable command over the export writes: the pass
// (or a kept pass's check) in the work directory, and the output medium
// when outDir is set.
func (s *StableSigning) spaceNeeds(outDir string, freshPass bool) ([]spaceNeed, error) {
	st, err := os.Stat(s.Export)
	if err != nil {
		return nil, fmt.Errorf("the export: %w", err)
	}
	size := float64(st.Size())
	work := s.TempDir
	if work == "" {
		work = os.TempDir()
	}
	var needs []spaceNeed
	if freshPass {
		needs = append(needs, spaceNeed{work, "the pass's work files", int64(size * spacePass)})
	} else {
		needs = append(needs, spaceNeed{work, "the kept pass's check", int64(size * spaceCheck)})
	}
	if outDir != "" {
		f := spaceMediumFiles
		if s.policy().TargetMode == policy.ModePages {
			f = spaceMediumPages
		}
		needs = append(needs, spaceNeed{outDir, "the output medium", int64(size * f)})
	}
	return needs, nil
}

// checkSpaceFor checks the free space for spaceNeeds.
func (s *StableSigning) checkSpaceFor(outDir string, freshPass bool) error {
	needs, err := s.spaceNeeds(outDir, freshPass)
	if err != nil {
		return err
	}
	return checkSpace(needs...)
}
