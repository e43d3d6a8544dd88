// Package outdir writes an output directory that appears whole or not at
// all.
//
// What it promises:
//
//   - Nothing is written at the target: files go into a hidden temporary
//     directory beside it (same parent, so the same file system), which
//     Commit renames into place.
//   - A target that exists and is not an empty directory is refused, when
//     the Dir is made and again at Commit, with ErrOutputExists; nothing is
//     ever overwritten, and every file is created with O_EXCL.
//   - Before the rename, every file written through the Dir and every
//     directory under it is fsynced (by Verify, and again by Commit for
//     what was written after Verify); after it, the parent. Nothing else
//     is synced.
//   - Verify (optional, before Commit) runs a read-back on the written
//     directory under its temporary name; when it fails, the directory is
//     renamed to <target>.rejected-<UTC time> and never gets the target's
//     name.
//   - Abort (safe to defer) removes the temporary directory unless Commit
//     succeeded or Verify rejected it.
//   - Temporary directories carry the writing process's id in their name
//     (.<target>.partial-<pid>-<random>); New removes those beside the
//     target whose process no longer runs (a killed run's debris) and
//     lists them in Swept. Nothing else is ever removed: not a directory
//     of a live process, not a rejected one, not one named otherwise.
//
// A Dir's methods may be called from several goroutines at once, except
// Commit and Abort.
package outdir

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/keyceremony/keyceremony/internal/hint"
)

// ErrOutputExists means the target exists and is not an empty directory.
var ErrOutputExists = hint.New("output directory exists and is not empty", "choose a new directory; keyceremony never writes into a non-empty one")

// Dir is an output directory being written.
type Dir struct {
	final, tmp string

	mu    sync.Mutex
	files []string // written through the Dir, synced at Commit
	done  bool
	// synced: how many of files were synced (by Verify; files written
	// after it, a manifest, are synced by Commit).
	synced int
	// refused: Verify's check failed; rejected is the name it gave the
	// directory ("" if the rename failed).
	refused  bool
	rejected string

	// Swept lists the debris of dead runs New removed (or failed to
	// remove) beside the target.
	Swept []Debris
}

// New prepares to write the directory dir. It refuses a dir that exists
// and is not empty; an empty one is replaced at Commit. It creates dir's
// parent if need be.
func New(dir string) (*Dir, error) {
	dir = filepath.Clean(dir)
	if err := checkEmpty(dir); err != nil {
		return nil, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", parent, err)
	}
	// The parent was just made or exists: a failure to read it shows
	// again below.
	swept, _ := Sweep(parent, isPartial)
	tmp, err := MkdirTemp(parent, "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("creating a working directory beside %s: %w", dir, err)
	}
	return &Dir{final: dir, tmp: tmp, Swept: swept}, nil
}

// Check returns the error New would return for a dir that exists and is
// not empty, without creating anything.
func Check(dir string) error { return checkEmpty(filepath.Clean(dir)) }

func checkEmpty(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", dir, err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err == io.EOF {
		return nil
	}
	return fmt.Errorf("%s: %w", dir, ErrOutputExists)
}

// Target is the directory Commit makes.
func (d *Dir) Target() string { return d.final }

// Path joins elements under the temporary directory. What is written there
// other than through the Dir is not synced, except directories.
func (d *Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{d.tmp}, elem...)...)
}

// Mkdir makes the directory rel and any parents it lacks.
func (d *Dir) Mkdir(rel string) error {
	if err := os.MkdirAll(d.Path(rel), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", rel, err)
	}
	return nil
}

func (d *Dir) track(p string) {
	d.mu.Lock()
	d.files = append(d.files, p)
	d.mu.Unlock()
}

// create makes a new file rel, and its parent directories.
func (d *Dir) create(rel string) (*os.File, error) {
	p := d.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory for %s: %w", rel, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", rel, err)
	}
	d.track(p)
	return f, nil
}

// WriteFile writes a new file rel (never overwriting one), creating its
// parent directories.
func (d *Dir) WriteFile(rel string, data []byte) error {
	f, err := d.create(rel)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	return nil
}

type file struct {
	f  *os.File
	bw *bufio.Writer
}

func (f *file) Write(p []byte) (int, error) { return f.bw.Write(p) }

func (f *file) Close() error {
	err := f.bw.Flush()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Create makes a new file rel (never overwriting one) for streaming
// writes, creating its parent directories. Its writes are buffered; Close
// flushes them.
func (d *Dir) Create(rel string) (io.WriteCloser, error) {
	f, err := d.create(rel)
	if err != nil {
		return nil, err
	}
	return &file{f: f, bw: bufio.NewWriterSize(f, 1<<20)}, nil
}

// Journal makes a new file rel (never overwriting one) opened for
// appending, unbuffered, for a record whose every write the caller syncs
// at once (a ceremony's journal); the caller closes it.
func (d *Dir) Journal(rel string) (*os.File, error) {
	p := d.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory for %s: %w", rel, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", rel, err)
	}
	// The journal's first entry makes the working directory's name
	// durable too: a run killed after it leaves the journal findable.
	if err := syncPath(filepath.Dir(p)); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncPath(filepath.Dir(d.tmp)); err != nil {
		f.Close()
		return nil, err
	}
	d.track(p)
	return f, nil
}

// WriteStream creates rel and fills it with write.
func (d *Dir) WriteStream(rel string, write func(io.Writer) error) error {
	w, err := d.Create(rel)
	if err != nil {
		return err
	}
	if err := write(w); err != nil {
		w.Close()
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	return nil
}

// Link makes rel a hard link to the file from, or a copy where from is on
// another file system. from must not change afterwards.
func (d *Dir) Link(from, rel string) error {
	return d.place(from, rel, os.Link)
}

// Move moves the file from to rel, or copies it where from is on another
// file system.
func (d *Dir) Move(from, rel string) error {
	return d.place(from, rel, os.Rename)
}

func (d *Dir) place(from, rel string, op func(string, string) error) error {
	p := d.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating the directory for %s: %w", rel, err)
	}
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("creating %s: %w", rel, fs.ErrExist)
	}
	if err := op(from, p); err == nil {
		d.track(p)
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copying %s: %w", rel, err)
	}
	defer in.Close()
	out, err := d.create(rel)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", rel, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copying %s: %w", rel, err)
	}
	return nil
}

// Commit syncs what was written and renames the temporary directory into
// place, then syncs the parent. It refuses, with ErrOutputExists, a target
// that appeared meanwhile and is not empty.
func (d *Dir) Commit() error {
	if d.refused {
		return &RejectedError{Target: d.final, Dir: d.rejected, Err: errors.New("commit after a failed read-back")}
	}
	if d.done {
		return fmt.Errorf("%s: already committed: %w", d.final, ErrOutputExists)
	}
	if err := d.sync(); err != nil {
		return err
	}
	if err := checkEmpty(d.final); err != nil {
		return err
	}
	_ = os.Remove(d.final) // an empty directory, if any
	if err := os.Rename(d.tmp, d.final); err != nil {
		return fmt.Errorf("moving the output into %s: %w", d.final, err)
	}
	d.done = true
	return syncPath(filepath.Dir(d.final))
}

// sync fsyncs every file written through the Dir not synced yet, then
// every directory under it.
func (d *Dir) sync() error {
	d.mu.Lock()
	files := d.files[d.synced:]
	d.mu.Unlock()
	if err := syncFiles(files); err != nil {
		return err
	}
	var dirs []string
	err := filepath.WalkDir(d.tmp, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("syncing %s: %w", d.final, err)
	}
	// Deepest first, so that each directory's entries are durable before
	// the entry naming it.
	slices.Reverse(dirs)
	for _, p := range dirs {
		if err := syncPath(p); err != nil {
			return err
		}
	}
	d.synced += len(files)
	return nil
}

// ErrRejected means the read-back of a written directory failed; the
// directory was renamed to say so (RejectedError.Dir).
var ErrRejected = hint.New("output rejected by its read-back", "the rejected directory is kept for inspection; do not publish it, find the cause and run the command again")

// RejectedError is a failed read-back: Err is the check's error, Dir the
// name the written directory now has (empty if even the rename failed;
// the directory then keeps its hidden temporary name).
type RejectedError struct {
	Target, Dir string
	Err         error
}

func (e *RejectedError) Error() string {
	if e.Dir == "" {
		return fmt.Sprintf("reading back %s: %v (it could not be renamed and is left unpublished under its temporary name)", e.Target, e.Err)
	}
	return fmt.Sprintf("reading back %s: %v; the media are kept as %s, never under %s", e.Target, e.Err, e.Dir, filepath.Base(e.Target))
}

// Unwrap returns the check's error and ErrRejected.
func (e *RejectedError) Unwrap() []error { return []error{e.Err, ErrRejected} }

// now is the clock of rejected names; tests replace it.
var now = time.Now

// Verify syncs what was written and runs check on the directory under its
// temporary name (check reads it as the target will hold it). When check
// fails, the directory is renamed to <target>.rejected-<UTC time>
// (-2, -3… if that exists), Commit refuses, and the error is a
// *RejectedError matching ErrRejected and check's error.
func (d *Dir) Verify(check func(dir string) error) error {
	if d.done || d.refused {
		return fmt.Errorf("%s: verified after commit or rejection: %w", d.final, ErrOutputExists)
	}
	if err := d.sync(); err != nil {
		return err
	}
	cerr := check(d.tmp)
	if cerr == nil {
		return nil
	}
	d.refused = true
	base := d.final + ".rejected-" + now().UTC().Format("20060102T150405Z")
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(d.tmp, name); err != nil {
		// Left under its hidden temporary name, which Abort removes: it
		// never gets the target's name either way.
		return &RejectedError{Target: d.final, Err: cerr}
	}
	d.rejected = name
	_ = syncPath(filepath.Dir(d.final))
	return &RejectedError{Target: d.final, Dir: name, Err: cerr}
}

// Abort removes the temporary directory unless Commit succeeded or Verify
// renamed it rejected. It is safe to defer.
func (d *Dir) Abort() {
	if !d.done && d.rejected == "" {
		_ = os.RemoveAll(d.tmp)
	}
}

// syncFiles fsyncs files, several at once: a file system commits
// concurrent fsyncs together.
func syncFiles(files []string) error {
	const workers = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan string)
	)
	for w := 0; w < min(workers, len(files)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := syncPath(p); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range files {
		next <- p
	}
	close(next)
	wg.Wait()
	return first
}

// fsync is (*os.File).Sync; tests replace it to see what is synced.
var fsync = (*os.File).Sync

// syncPath fsyncs a file or directory.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("syncing: %w", err)
	}
	err = fsync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", p, err)
	}
	return nil
}
