package outdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// deadPID is a process id no process has: above Linux's largest pid_max.
const deadPID = 1<<22 + 1

func TestVerifyRejects(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "media")
	prev := now
	now = func() time.Time { return time.Date(2026, 12, 2, 17, 0, 0, 0, time.FixedZone("x", 3600)) }
	t.Cleanup(func() { now = prev })
	for round, want := range []string{"media.rejected-20261202T160000Z", "media.rejected-20261202T160000Z-2"} {
		d, err := New(target)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.WriteFile("a/b.json", []byte("x")); err != nil {
			t.Fatal(err)
		}
		bad := errors.New("a/b.json is wrong")
		var seen string
		err = d.Verify(func(dir string) error {
			seen = read(t, filepath.Join(dir, "a", "b.json"))
			return bad
		})
		d.Abort()
		var re *RejectedError
		if !errors.As(err, &re) || !errors.Is(err, ErrRejected) || !errors.Is(err, bad) {
			t.Fatalf("round %d: Verify = %v, want a *RejectedError matching ErrRejected and the check's error", round, err)
		}
		if seen != "x" {
			t.Errorf("the check read %q, want what was written", seen)
		}
		if re.Dir != filepath.Join(parent, want) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "a/b.json is wrong") {
			t.Errorf("round %d: rejected as %q, error %q; want %s named", round, re.Dir, err, want)
		}
		if err := d.Commit(); err == nil {
			t.Error("Commit after a failed Verify succeeded")
		}
		if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("round %d: the target exists after a failed read-back: %v", round, err)
		}
		if got := read(t, filepath.Join(re.Dir, "a", "b.json")); got != "x" {
			t.Errorf("the rejected directory holds %q", got)
		}
	}
	if got := sorted(entries(t, parent)); !slices.Equal(got, []string{"media.rejected-20261202T160000Z", "media.rejected-20261202T160000Z-2"}) {
		t.Errorf("parent holds %q, want only the two rejected directories", got)
	}
	// A rejected directory is not debris: the next run keeps it.
	d, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	if len(d.Swept) != 0 {
		t.Errorf("New swept %v", d.Swept)
	}
	if err := d.Verify(func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("after a passing Verify and Commit: %v", err)
	}
}

func TestSweepDebris(t *testing.T) {
	parent := t.TempDir()
	mk := func(name string, file bool) string {
		p := filepath.Join(parent, name)
		if file {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		if err := os.MkdirAll(filepath.Join(p, "stable", "metadata"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dead := mk(fmt.Sprintf(".media.partial-%d-123", deadPID), false)
	deadOther := mk(fmt.Sprintf(".other.partial-%d-9", deadPID), false)
	keep := []string{
		mk(fmt.Sprintf(".media.partial-%d-456", os.Getppid()), false), // a live process
		mk(fmt.Sprintf(".media.partial-%d-789", os.Getpid()), false),  // this one
		mk(".media.partial-123456", false),                            // no pid: not ours to judge
		mk(fmt.Sprintf("media.partial-%d-1", deadPID), false),         // not hidden: not our name
		mk(fmt.Sprintf(".media.partial-%d-1x", deadPID), false),
		mk(fmt.Sprintf(".media.partial-%d-2", deadPID+1), true), // a file
		mk("media.rejected-20261202T160000Z", false),
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(parent, fmt.Sprintf(".media.partial-%d-3", deadPID))); err != nil {
		t.Fatal(err)
	}
	d, err := New(filepath.Join(parent, "media"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	var swept []string
	for _, s := range d.Swept {
		swept = append(swept, s.Path)
		if s.PID != deadPID || !strings.Contains(s.String(), s.Path) || !strings.Contains(s.String(), fmt.Sprint(deadPID)) {
			t.Errorf("swept %+v, said %q", s, s)
		}
	}
	if !slices.Equal(sorted(swept), sorted([]string{dead, deadOther})) {
		t.Errorf("swept %q, want %q", swept, []string{dead, deadOther})
	}
	for _, p := range []string{dead, deadOther} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
	for _, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(parent, fmt.Sprintf(".media.partial-%d-3", deadPID))); err != nil {
		t.Errorf("the symbolic link was removed: %v", err)
	}
	if s := (Debris{Path: "x", PID: 5, Err: errors.New("busy")}).String(); s != "could not remove x, left by process 5, which no longer runs: busy" {
		t.Errorf("a failed removal is said as %q", s)
	}
	// New's own directory carries this process's id.
	if pid, ok := isPartial(filepath.Base(d.tmp)); !ok || pid != os.Getpid() {
		t.Errorf("temporary directory %s: pid %d, %v", d.tmp, pid, ok)
	}
}

func TestMkdirTempAndPrefixed(t *testing.T) {
	parent := t.TempDir()
	own, err := MkdirTemp(parent, "keyceremony-stable-")
	if err != nil {
		t.Fatal(err)
	}
	m := Prefixed("keyceremony-stable-")
	if pid, ok := m(filepath.Base(own)); !ok || pid != os.Getpid() {
		t.Fatalf("%s: pid %d, %v", own, pid, ok)
	}
	dead := filepath.Join(parent, fmt.Sprintf("keyceremony-stable-%d-42", deadPID))
	old := filepath.Join(parent, "keyceremony-stable-42") // before pids were named
	for _, p := range []string{dead, old} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	swept, err := Sweep(parent, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || swept[0].Path != dead {
		t.Errorf("swept %v, want only %s", swept, dead)
	}
	if got := sorted(entries(t, parent)); !slices.Equal(got, sorted([]string{filepath.Base(own), "keyceremony-stable-42"})) {
		t.Errorf("left %q", got)
	}
	if s, err := Sweep(filepath.Join(parent, "missing"), m); err != nil || s != nil {
		t.Errorf("a missing parent: %v, %v", s, err)
	}
}

// TestKilledRun runs a writer in a child process, which leaves a partial
// directory and a work directory: while it runs a sweep keeps both; after
// kill -9 the next New and Sweep remove both and say whose they were.
func TestKilledRun(t *testing.T) {
	if dir := os.Getenv("OUTDIR_KILLED_RUN"); dir != "" {
		d, err := New(filepath.Join(dir, "media"))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.WriteFile("stable/metadata/1.stable.json", []byte("partial")); err != nil {
			t.Fatal(err)
		}
		w, err := MkdirTemp(filepath.Join(dir, "work"), "keyceremony-stable-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ready.tmp"), []byte(d.tmp+"\n"+w), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "ready.tmp"), filepath.Join(dir, "ready")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // killed here
		t.Fatal("not killed")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRun$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OUTDIR_KILLED_RUN="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	var ready []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if ready, err = os.ReadFile(filepath.Join(dir, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child wrote nothing in 30 s")
		}
	}
	paths := strings.Split(string(ready), "\n")
	partial, work := paths[0], paths[1]
	sweepWork := func() []Debris {
		s, err := Sweep(filepath.Join(dir, "work"), Prefixed("keyceremony-stable-"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Alive: nothing is removed.
	d, err := New(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	d.Abort()
	if s := append(d.Swept, sweepWork()...); len(s) != 0 {
		t.Fatalf("swept %v of a live process", s)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	for _, p := range []string{partial, work} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the killed run left no %s: %v", p, err)
		}
	}
	d, err = New(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	pid := cmd.Process.Pid
	if s := d.Swept; len(s) != 1 || s[0].Path != partial || s[0].PID != pid {
		t.Errorf("New swept %v, want %s of process %d", s, partial, pid)
	}
	if s := sweepWork(); len(s) != 1 || s[0].Path != work || s[0].PID != pid {
		t.Errorf("Sweep removed %v, want %s of process %d", s, work, pid)
	}
	for _, p := range []string{partial, work} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
}

// Interrupted lists the working directories dead runs writing the target
// left, newest first, and removes nothing: not another target's, not a
// live process's, not this process's.
func TestInterrupted(t *testing.T) {
	parent := t.TempDir()
	mk := func(name string, age time.Duration) string {
		p := filepath.Join(parent, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		return p
	}
	older := mk(fmt.Sprintf(".media.partial-%d-1", deadPID), time.Hour)
	newer := mk(fmt.Sprintf(".media.partial-%d-2", deadPID+1), time.Minute)
	others := []string{
		mk(fmt.Sprintf(".other.partial-%d-3", deadPID), 0),
		mk(fmt.Sprintf(".media.partial-%d-4", os.Getppid()), 0),
		mk(fmt.Sprintf(".media.partial-%d-5", os.Getpid()), 0),
	}
	got, err := Interrupted(filepath.Join(parent, "media"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != newer || got[1].Path != older || got[0].PID != deadPID+1 {
		t.Fatalf("Interrupted: %+v, want %s then %s", got, newer, older)
	}
	for _, p := range append(others, older, newer) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("Interrupted removed %s: %v", p, err)
		}
	}
}
