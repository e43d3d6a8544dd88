package ceremony

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrOutputExists means the output directory exists and is not empty.
var ErrOutputExists = errors.New("output directory exists and is not empty")

// Output is a directory that appears only when Commit is called: files
// are written into a hidden sibling and renamed into place at the end.
type Output struct {
	final string
	tmp   string
	done  bool
}

// NewOutput prepares to write dir. It refuses a dir that exists and is
// not empty; an empty one is replaced at Commit.
func NewOutput(dir string) (*Output, error) {
	dir = filepath.Clean(dir)
	if err := checkEmpty(dir); err != nil {
		return nil, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("creating a working directory beside %s: %w", dir, err)
	}
	return &Output{final: dir, tmp: tmp}, nil
}

func checkEmpty(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
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

// Dir is where files go until Commit.
func (o *Output) Dir() string { return o.tmp }

// Path joins elements under the working directory.
func (o *Output) Path(elem ...string) string {
	return filepath.Join(append([]string{o.tmp}, elem...)...)
}

// WriteFile writes a new file (never overwriting one) under the working
// directory, creating parent directories, and syncs it.
func (o *Output) WriteFile(rel string, data []byte) error {
	p := o.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating directory for %s: %w", rel, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s: %w", rel, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", rel, err)
	}
	return f.Close()
}

// Commit moves the working directory into place.
func (o *Output) Commit() error {
	if err := checkEmpty(o.final); err != nil {
		return err
	}
	_ = os.Remove(o.final) // an empty directory, if any
	if err := os.Rename(o.tmp, o.final); err != nil {
		return fmt.Errorf("moving output into %s: %w", o.final, err)
	}
	o.done = true
	return nil
}

// Abort removes the working directory unless Commit succeeded. It is safe
// to defer.
func (o *Output) Abort() {
	if !o.done {
		_ = os.RemoveAll(o.tmp)
	}
}

// outputFile is a new file under an Output, synced when closed.
type outputFile struct {
	f  *os.File
	bw *bufio.Writer
}

func (o *outputFile) Write(p []byte) (int, error) { return o.bw.Write(p) }

// Close flushes, syncs and closes the file.
func (o *outputFile) Close() error {
	err := o.bw.Flush()
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Create makes a new file (never overwriting one) under the working
// directory for streaming writes; Close flushes and syncs it.
func (o *Output) Create(rel string) (io.WriteCloser, error) {
	p := o.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("creating directory for %s: %w", rel, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", rel, err)
	}
	return &outputFile{f: f, bw: bufio.NewWriterSize(f, 1<<20)}, nil
}

// WriteStream creates rel and fills it with write.
func (o *Output) WriteStream(rel string, write func(io.Writer) error) error {
	w, err := o.Create(rel)
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
