package outdir

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Debris is a temporary directory a killed run left: its path, the
// process id its name carries, and why it could not be removed (nil when
// it was).
type Debris struct {
	Path string
	PID  int
	Err  error
}

func (d Debris) String() string {
	if d.Err != nil {
		return fmt.Sprintf("could not remove %s, left by process %d, which no longer runs: %v", d.Path, d.PID, d.Err)
	}
	return fmt.Sprintf("removed %s, left by process %d, which no longer runs", d.Path, d.PID)
}

// MkdirTemp makes a new directory in parent named prefix, this process's
// id, "-" and a random number, so that a later run can tell whose it is
// (Sweep).
func MkdirTemp(parent, prefix string) (string, error) {
	return os.MkdirTemp(parent, prefix+strconv.Itoa(os.Getpid())+"-")
}

// Matcher tells whether a directory name is one MkdirTemp makes, and
// returns the process id it carries.
type Matcher func(name string) (pid int, ok bool)

var partialName = regexp.MustCompile(`^\..+\.partial-([1-9][0-9]{0,9})-[0-9]+$`)

// isPartial matches New's hidden temporary directories.
func isPartial(name string) (int, bool) { return pidOf(partialName, name) }

func pidOf(re *regexp.Regexp, name string) (int, bool) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// Prefixed matches the names MkdirTemp(parent, prefix) makes.
func Prefixed(prefix string) Matcher {
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `([1-9][0-9]{0,9})-[0-9]+$`)
	return func(name string) (int, bool) { return pidOf(re, name) }
}

// Sweep removes the directories in parent that match names and whose
// process no longer runs, and returns them (with Err set where the
// removal failed: debris never stops a run). A missing parent holds
// nothing; an unreadable one is an error. It leaves everything else:
// files, symbolic links, directories of live processes (or whose liveness
// cannot be told), and names that do not match.
func Sweep(parent string, names Matcher) ([]Debris, error) {
	out, err := dead(parent, names)
	for i := range out {
		out[i].Err = os.RemoveAll(out[i].Path)
	}
	return out, err
}

// dead lists the directories in parent that match names and whose
// process no longer runs, in name order, removing nothing.
func dead(parent string, names Matcher) ([]Debris, error) {
	es, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking for debris in %s: %w", parent, err)
	}
	var out []Debris
	for _, e := range es {
		pid, ok := names(e.Name())
		if !ok || !e.IsDir() || e.Type()&fs.ModeSymlink != 0 || pid == os.Getpid() || alive(pid) {
			continue
		}
		out = append(out, Debris{Path: filepath.Join(parent, e.Name()), PID: pid})
	}
	return out, nil
}

// Interrupted lists the working directories that runs writing dir left
// when they died (those New(dir) removes), newest first by modification
// time, without removing anything: a caller reads what it can resume
// from before New sweeps them.
func Interrupted(dir string) ([]Debris, error) {
	dir = filepath.Clean(dir)
	out, err := dead(filepath.Dir(dir), func(name string) (int, bool) {
		if !strings.HasPrefix(name, "."+filepath.Base(dir)+".partial-") {
			return 0, false
		}
		return isPartial(name)
	})
	mtime := func(d Debris) int64 {
		fi, err := os.Stat(d.Path)
		if err != nil {
			return 0
		}
		return fi.ModTime().UnixNano()
	}
	slices.SortStableFunc(out, func(a, b Debris) int { return cmp.Compare(mtime(b), mtime(a)) })
	return out, err
}
