package outdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// entries lists dir's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recordSyncs replaces fsync for the test and returns what it synced.
func recordSyncs(t *testing.T) func() []string {
	var (
		mu     sync.Mutex
		synced []string
	)
	prev := fsync
	fsync = func(f *os.File) error {
		mu.Lock()
		synced = append(synced, f.Name())
		mu.Unlock()
		return prev(f)
	}
	t.Cleanup(func() { fsync = prev })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(synced)
	}
}

func TestCommit(t *testing.T) {
	synced := recordSyncs(t)
	parent := t.TempDir()
	target := filepath.Join(parent, "out")
	d, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	if err := d.WriteFile("a.json", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("sub/deeper/b.json", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteStream("c.txt", func(w io.Writer) error { _, err := io.WriteString(w, "c"); return err }); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, n := range []string{"linked", "moved"} {
		if err := os.WriteFile(filepath.Join(work, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Link(filepath.Join(work, "linked"), "sub/linked"); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(filepath.Join(work, "moved"), "moved"); err != nil {
		t.Fatal(err)
	}
	// Written beside the Dir's methods: not synced, but its directory is.
	if err := os.Mkdir(d.Path("other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Path("other", "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing at the target before Commit.
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("target before Commit: %v", err)
	}
	if n := synced(); len(n) != 0 {
		t.Fatalf("synced before Commit: %v", n)
	}
	tmp := d.Path()
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]string{"a.json": "a", "sub/deeper/b.json": "b", "c.txt": "c", "sub/linked": "linked", "moved": "moved", "other/x": "x"} {
		if got := read(t, filepath.Join(target, rel)); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("parent holds %v, want only out", got)
	}
	// Exactly the files written through the Dir, every directory under it,
	// then the parent.
	var want []string
	for _, rel := range []string{"a.json", "sub/deeper/b.json", "c.txt", "sub/linked", "moved", "sub/deeper", "sub", "other", ""} {
		want = append(want, filepath.Join(tmp, rel))
	}
	want = append(want, parent)
	got := synced()
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("synced %v\nwant %v", got, want)
	}
	if got[len(got)-1] != parent || got[len(got)-2] != tmp {
		t.Errorf("synced the directory and then the parent last: %v", got)
	}
	d.Abort() // after Commit: leaves the output alone
	if got := read(t, filepath.Join(target, "a.json")); got != "a" {
		t.Errorf("Abort after Commit changed the output: %q", got)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestNewRefusesExisting(t *testing.T) {
	parent := t.TempDir()
	full := filepath.Join(parent, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "keep"), []byte("keep"), 0o644)
	file := filepath.Join(parent, "file")
	os.WriteFile(file, []byte("file"), 0o644)
	for _, p := range []string{full, file} {
		if _, err := New(p); !errors.Is(err, ErrOutputExists) {
			t.Errorf("New(%s): %v, want ErrOutputExists", p, err)
		}
	}
	if got := read(t, filepath.Join(full, "keep")); got != "keep" {
		t.Errorf("refused target changed: %q", got)
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"file", "full"}) {
		t.Errorf("a refusal left %v", got)
	}
	// An empty directory is replaced; a missing parent is made.
	empty := filepath.Join(parent, "empty")
	os.Mkdir(empty, 0o755)
	for _, p := range []string{empty, filepath.Join(parent, "new", "deeper")} {
		d, err := New(p)
		if err != nil {
			t.Fatalf("New(%s): %v", p, err)
		}
		if err := d.WriteFile("f", []byte("f")); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(p, "f")); got != "f" {
			t.Errorf("%s/f = %q", p, got)
		}
	}
}

// A target that appears between New and Commit is not replaced.
func TestCommitRefusesTargetThatAppeared(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "out")
	d, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	if err := d.WriteFile("mine", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(target, 0o755)
	os.WriteFile(filepath.Join(target, "theirs"), []byte("theirs"), 0o644)
	if err := d.Commit(); !errors.Is(err, ErrOutputExists) {
		t.Fatalf("Commit over a new target: %v", err)
	}
	if got := entries(t, target); !slices.Equal(got, []string{"theirs"}) {
		t.Errorf("target holds %v", got)
	}
	d.Abort()
	if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("Abort left %v", got)
	}
}

func TestNoOverwrite(t *testing.T) {
	d, err := New(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	if err := d.WriteFile("f", []byte("first")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("other"), 0o644)
	attempts := map[string]func() error{
		"WriteFile": func() error { return d.WriteFile("f", []byte("second")) },
		"Create":    func() error { _, err := d.Create("f"); return err },
		"Link":      func() error { return d.Link(other, "f") },
		"Move":      func() error { return d.Move(other, "f") },
	}
	for name, f := range attempts {
		if err := f(); !errors.Is(err, fs.ErrExist) {
			t.Errorf("%s over an existing file: %v, want fs.ErrExist", name, err)
		}
	}
	if got := read(t, d.Path("f")); got != "first" {
		t.Errorf("f = %q after the refusals", got)
	}
}

func TestAbort(t *testing.T) {
	parent := t.TempDir()
	d, err := New(filepath.Join(parent, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("sub/f", []byte("f")); err != nil {
		t.Fatal(err)
	}
	d.Abort()
	if got := entries(t, parent); len(got) != 0 {
		t.Errorf("Abort left %v", got)
	}
}

// Files may be written from several goroutines at once (the bins are).
func TestConcurrentWrites(t *testing.T) {
	synced := recordSyncs(t)
	target := filepath.Join(t.TempDir(), "out")
	d, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.WriteFile(fmt.Sprintf("m/%d", i), []byte(fmt.Sprint(i)))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := len(entries(t, filepath.Join(target, "m"))); got != n {
		t.Errorf("%d files, want %d", got, n)
	}
	if got := len(synced()); got != n+3 { // the files, m, the directory, the parent
		t.Errorf("%d syncs, want %d", got, n+3)
	}
}

// A failed sync fails Commit, and nothing appears.
func TestSyncFailure(t *testing.T) {
	errDisk := errors.New("disk on fire")
	prev := fsync
	fsync = func(*os.File) error { return errDisk }
	defer func() { fsync = prev }()
	target := filepath.Join(t.TempDir(), "out")
	d, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	if err := d.WriteFile("f", []byte("f")); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); !errors.Is(err, errDisk) {
		t.Fatalf("Commit: %v, want the sync error", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("target after a failed Commit: %v", err)
	}
}
