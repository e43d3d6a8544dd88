package stableset

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// errDisk is the fault injected into the work directory.
var errDisk = errors.New("injected: no space left on device")

type failingReader struct{ io.Closer }

func (failingReader) Read([]byte) (int, error) { return 0, errDisk }

type failingWriter struct{ io.Closer }

func (failingWriter) Write([]byte) (int, error) { return 0, errDisk }

// isKind reports whether path is a work file of kind (kind-NNN).
func isKind(path, kind string) bool {
	return strings.HasPrefix(filepath.Base(path), kind+"-")
}

// faultReads makes every read of a work file of kind fail with errDisk.
func faultReads(t *testing.T, kind string) {
	prev := openWork
	openWork = func(path string) (io.ReadCloser, error) {
		f, err := prev(path)
		if err != nil || !isKind(path, kind) {
			return f, err
		}
		return failingReader{f}, nil
	}
	t.Cleanup(func() { openWork = prev })
}

// faultWrites makes every write to a work file of kind fail with errDisk,
// or, with atCreate, its creation.
func faultWrites(t *testing.T, kind string, atCreate bool) {
	prev := createWork
	createWork = func(path string) (io.WriteCloser, error) {
		if !isKind(path, kind) {
			return prev(path)
		}
		if atCreate {
			return nil, errDisk
		}
		f, err := prev(path)
		if err != nil {
			return nil, err
		}
		return failingWriter{f}, nil
	}
	t.Cleanup(func() { createWork = prev })
}

// An I/O error in the work directory surfaces as itself, wherever the
// pipeline meets it, never as a corrupt work file; the work directory and
// the output are removed.
func TestWorkDirectoryFaults(t *testing.T) {
	c := newCeremony(t)
	files := []file{foo1, bar1, bar09}
	published := filepath.Join(t.TempDir(), "out1")
	c.sign(t, c.config(exportOf(t, t1, files), ""), published)
	// foo 3.0 is new and old enough at t2: foo's pages change.
	foo3 := file{"foo", "3.0", "foo-3.0.tar.gz", "foo three", t1.Add(24 * time.Hour)}
	next := exportOf(t, t2, append(files, foo3))
	for _, tc := range []struct {
		name   string
		inject func(t *testing.T)
		stage  string // where it fails: "diff", "entries" or "sign"
	}{
		{"reading stable targets", func(t *testing.T) { faultReads(t, "stable") }, "sign"},
		{"reading page targets", func(t *testing.T) { faultReads(t, "pagetargets") }, "sign"},
		{"reading entry records", func(t *testing.T) { faultReads(t, "entries") }, "diff"},
		{"reading previous projects", func(t *testing.T) { faultReads(t, "prevproj") }, "diff"},
		{"reading new projects", func(t *testing.T) { faultReads(t, "newproj") }, "diff"},
		{"reading page entries", func(t *testing.T) { faultReads(t, "pageentries") }, "diff"},
		{"reading the diff", func(t *testing.T) { faultReads(t, "exceptions") }, "entries"},
		{"reading the ledger", func(t *testing.T) { faultReads(t, "ledger") }, "entries"},
		{"writing stable targets", func(t *testing.T) { faultWrites(t, "stable", false) }, "diff"},
		{"writing entry records", func(t *testing.T) { faultWrites(t, "entries", false) }, "diff"},
		{"writing the ledger", func(t *testing.T) { faultWrites(t, "ledger", false) }, "diff"},
		{"writing the diff", func(t *testing.T) { faultWrites(t, "exceptions", false) }, "diff"},
		{"writing pages", func(t *testing.T) { faultWrites(t, "pages", false) }, "diff"},
		{"creating previous projects", func(t *testing.T) { faultWrites(t, "prevproj", true) }, "diff"},
		{"creating page targets", func(t *testing.T) { faultWrites(t, "pagetargets", true) }, "diff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			cfg := c.config(next, published)
			cfg.TempDir = tmp
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			tc.inject(t)
			check := func(stage string, err error) {
				t.Helper()
				if stage != tc.stage {
					if err != nil {
						t.Fatalf("%s failed, not %s: %v", stage, tc.stage, err)
					}
					return
				}
				if !errors.Is(err, errDisk) {
					t.Fatalf("%s: %v, want the injected I/O error", stage, err)
				}
				if errors.Is(err, errSpill) {
					t.Errorf("%s: the I/O error is also called a corrupt work file: %v", stage, err)
				}
			}
			d, err := ComputeDiff(cfg)
			check("diff", err)
			if err == nil {
				err = d.Entries(func(*DiffEntry) error { return nil })
				check("entries", err)
			}
			if err == nil {
				_, err = d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out})
				check("sign", err)
			}
			if d != nil {
				d.Close()
			}
			assertNothing(t, dir, out)
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("the work directory is left: %v", ents)
			}
		})
	}
}

// Only the buckets that receive data get a work file; the entry records
// and previous projects, consumed by renderPages, are not left.
func TestWorkFilesLazy(t *testing.T) {
	c := newCeremony(t)
	created := map[string]bool{}
	prev := createWork
	createWork = func(path string) (io.WriteCloser, error) {
		created[filepath.Base(path)] = true
		return prev(path)
	}
	defer func() { createWork = prev }()
	d, err := ComputeDiff(c.config(exportOf(t, t2, []file{foo1, bar1, qux3}), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := d.run
	exists := func(kind string, b int) bool {
		_, err := os.Lstat(r.bucketPath(kind, b))
		return err == nil
	}
	stable := 0
	for b := range r.nStable {
		if got, want := exists("stable", b), r.nStable[b] > 0; got != want {
			t.Errorf("stable bucket %d: file %v, %d targets", b, got, r.nStable[b])
		}
		if exists("stable", b) {
			stable++
		}
		if got, want := exists("pagetargets", b), r.nPages[b] > 0; got != want {
			t.Errorf("page target bucket %d: file %v, %d targets", b, got, r.nPages[b])
		}
	}
	if stable == 0 || stable > 2 {
		t.Errorf("%d stable bucket files for 2 stable files", stable)
	}
	entries := 0
	for b := 0; b < numProjBucket; b++ {
		if created[filepath.Base(r.bucketPath("entries", b))] {
			entries++
		}
		if exists("entries", b) {
			t.Errorf("entry bucket %d is left after the diff", b)
		}
		if created[filepath.Base(r.bucketPath("prevproj", b))] {
			t.Errorf("prevproj bucket %d was created at the first ceremony", b)
		}
	}
	if entries == 0 || entries > 3 {
		t.Errorf("%d entry bucket files for 3 projects", entries)
	}
}

// TestWorkFileDirect: writes of directWrite bytes or more, which go
// straight to the file, and smaller ones, which are buffered, land in the
// order they were made; a failing file's error is kept and returned by
// Close.
func TestWorkFileDirect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pages-000")
	f := &workFile{path: path, size: 4 << 10}
	var want []byte
	for i, n := range []int{10, directWrite, 3, directWrite + 5, 8 << 10, 1, 2 * directWrite} {
		p := []byte(strings.Repeat(string(rune('a'+i)), n))
		want = append(want, p...)
		if i%2 == 0 {
			_, err := f.WriteString(string(p))
			if err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%d bytes written, want %d in order", len(got), len(want))
	}

	faultWrites(t, "pages", false)
	g := &workFile{path: filepath.Join(t.TempDir(), "pages-001"), size: 4 << 10}
	g.Write([]byte("header"))
	if _, err := g.Write(make([]byte, directWrite)); !errors.Is(err, errDisk) {
		t.Errorf("a direct write to a failing file: %v", err)
	}
	if err := g.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close after a failed direct write: %v", err)
	}
}
