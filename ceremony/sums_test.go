package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sha256sumCheck runs coreutils' `sha256sum -c --strict` in dir.
func sha256sumCheck(t *testing.T, dir string) (string, error) {
	t.Helper()
	tool, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Fatalf("coreutils' sha256sum is needed: %v", err)
	}
	cmd := exec.Command(tool, "-c", "--strict", "--quiet", SumsFile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSumsCheckedByCoreutils: the bootstrap and stable media's
// SHA256SUMS, written last, is accepted by the real sha256sum and by
// verify, and lists every other file; an edited file is refused by both,
// naming it; a manifest that leaves a file out (which sha256sum cannot
// see) or lists one the medium lacks is refused by verify.
func TestSumsCheckedByCoreutils(t *testing.T) {
	fx := auditMedia(t)
	for _, m := range []struct {
		name, dir string
		opts      AuditOptions
		edit      string
	}{
		{"bootstrap", fx.boot, AuditOptions{SoftCA: fx.softCA}, "runsheet.md"},
		{"stable", fx.media2, AuditOptions{Repository: fx.boot}, "diff.txt"},
	} {
		t.Run(m.name, func(t *testing.T) {
			if out, err := sha256sumCheck(t, m.dir); err != nil {
				t.Fatalf("sha256sum -c refuses the %s media's %s: %v\n%s", m.name, SumsFile, err, out)
			}
			files, err := mediumFiles(m.dir)
			if err != nil {
				t.Fatal(err)
			}
			paths, _, err := ParseSums(mustRead(t, filepath.Join(m.dir, SumsFile)), SumsFile)
			if err != nil || strings.Join(paths, "\n") != strings.Join(files, "\n") || len(paths) < 5 {
				t.Fatalf("%s lists %d files, the medium holds %d: %v", SumsFile, len(paths), len(files), err)
			}
			audit := func(dir string) error {
				o := m.opts
				o.Root, o.Dir = fx.rootFile, dir
				_, err := Audit(o)
				return err
			}
			if err := audit(m.dir); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name, want string
				change     func(dir string) error
			}{
				// Verify's own checks may name the edit first (the
				// transcript's digest of diff.txt): any refusal naming
				// the file will do.
				{"edited", m.edit, func(dir string) error {
					return os.WriteFile(filepath.Join(dir, m.edit), append(mustRead(t, filepath.Join(dir, m.edit)), '\n'), 0o644)
				}},
				{"unlisted", m.edit + " is on the medium, SHA256SUMS does not list it", func(dir string) error {
					// A stray file is refused by the medium's own list
					// first; a manifest that leaves a file out only by
					// the manifest check.
					b := mustRead(t, filepath.Join(dir, SumsFile))
					i := bytes.Index(b, []byte("  "+m.edit+"\n"))
					start := bytes.LastIndexByte(b[:i], '\n') + 1
					return os.WriteFile(filepath.Join(dir, SumsFile), append(b[:start:start], b[i+len(m.edit)+3:]...), 0o644)
				}},
				{"removed", "which is not on the medium", func(dir string) error {
					b := mustRead(t, filepath.Join(dir, SumsFile))
					return os.WriteFile(filepath.Join(dir, SumsFile), append(b, []byte(strings.Repeat("0", 64)+"  zz-gone.txt\n")...), 0o644)
				}},
			} {
				dir := filepath.Join(t.TempDir(), m.name)
				if err := copyDir(m.dir, dir); err != nil {
					t.Fatal(err)
				}
				if err := c.change(dir); err != nil {
					t.Fatal(err)
				}
				err := audit(dir)
				if err == nil || (c.name != "edited" && !errors.Is(err, ErrSums)) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: verify says %v, want %q", c.name, err, c.want)
				}
				if c.name == "edited" {
					if out, err := sha256sumCheck(t, dir); err == nil || !strings.Contains(out, m.edit+": FAILED") {
						t.Errorf("sha256sum -c accepts an edited %s: %v\n%s", m.edit, err, out)
					}
				}
			}
		})
	}
}

// FuzzParseSums: whatever ParseSums accepts, written again as writeSums
// writes it, gives the same bytes.
func FuzzParseSums(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 64) + "  metadata/1.root.json\n" + strings.Repeat("b", 64) + "  transcript.jsonl\n"))
	f.Add([]byte(strings.Repeat("a", 64) + " *binary-mode\n"))
	f.Add([]byte(strings.Repeat("a", 64) + "  b\n" + strings.Repeat("a", 64) + "  a\n"))
	f.Add([]byte(strings.Repeat("A", 64) + "  ../escape\n"))
	f.Add([]byte("\\" + strings.Repeat("a", 64) + "  back\\slash\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		paths, sums, err := ParseSums(data, SumsFile)
		if err != nil {
			if !errors.Is(err, ErrSums) {
				t.Fatalf("error %v does not match ErrSums", err)
			}
			return
		}
		var b bytes.Buffer
		for i := range paths {
			b.WriteString(sums[i] + "  " + paths[i] + "\n")
		}
		if !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("accepted %q, which writes again as %q", data, b.Bytes())
		}
	})
}

// TestMediumFailure: ErrMediumWrite (the backup medium unchanged, nothing
// published) is said only of a full or removed medium's write into the
// medium's working directory before the medium got its name.
func TestMediumFailure(t *testing.T) {
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	onMedium := &fs.PathError{Op: "write", Path: filepath.Join(dir, ".media.partial-12-34", "diff.txt"), Err: syscall.ENOSPC}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"full medium", fmt.Errorf("writing diff.txt: %w", onMedium), true},
		{"file too large", &fs.PathError{Op: "write", Path: onMedium.Path, Err: syscall.EFBIG}, true},
		{"medium removed", &fs.PathError{Op: "write", Path: onMedium.Path, Err: syscall.EIO}, true},
		{"work directory full", &fs.PathError{Op: "write", Path: filepath.Join(dir, "work", "entries-012"), Err: syscall.ENOSPC}, false},
		{"another medium's name", &fs.PathError{Op: "write", Path: filepath.Join(dir, ".media2.partial-12-34", "x"), Err: syscall.ENOSPC}, false},
		{"permission", &fs.PathError{Op: "open", Path: onMedium.Path, Err: syscall.EACCES}, false},
	} {
		got := mediumFailure(c.err, media)
		if errors.Is(got, ErrMediumWrite) != c.want || !errors.Is(got, c.err) {
			t.Errorf("%s: %v, want ErrMediumWrite %v", c.name, got, c.want)
		}
	}
	if err := os.Mkdir(media, 0o755); err != nil {
		t.Fatal(err)
	}
	if errors.Is(mediumFailure(onMedium, media), ErrMediumWrite) {
		t.Error("a failure after the medium got its name (the backup medium's) is said to leave nothing published")
	}
}

// TestReadBackSums: the hashes a stable read-back hands SHA256SUMS are
// those of the files, for every file of stable/metadata, stable/ledger
// and stable/pages and for diff.txt and diff.canonical, so that
// writeSums reads none of them again.
func TestReadBackSums(t *testing.T) {
	fx := auditMedia(t)
	deleg, ok := fx.targets.Signed.Delegation("stable")
	if !ok {
		t.Fatal("no stable delegation")
	}
	read := readSums{}
	if err := readBackStable(fx.root, fx.targets, deleg, time.Now(), read)(fx.media2); err != nil {
		t.Fatal(err)
	}
	files, err := mediumFiles(fx.media2)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, f := range files {
		sum, ok := read[f]
		big := strings.HasPrefix(f, "stable/metadata/") || strings.HasPrefix(f, "stable/ledger/") || strings.HasPrefix(f, "stable/pages/") || f == "diff.txt" || f == "diff.canonical"
		if big {
			want++
			if !ok {
				t.Errorf("the read-back hands no hash of %s", f)
				continue
			}
		}
		if ok && sum != sha256.Sum256(mustRead(t, filepath.Join(fx.media2, f))) {
			t.Errorf("the read-back's hash of %s is %x, not the file's", f, sum)
		}
	}
	if len(read) != want || want < 10 {
		t.Errorf("the read-back hands %d hashes, want %d", len(read), want)
	}
}

// TestVerifySumsFromChecks: verify of a stable medium checks SHA256SUMS
// against the hashes its checks took of the files they read whole (the
// bins and the other metadata, the ledger, the page tars, diff.txt,
// diff.canonical), each the file's; a manifest line naming another hash
// for one of those files is still refused, naming the line and the file;
// and so is one for a file no check reads whole (policy.json), which
// SHA256SUMS hashes itself.
func TestVerifySumsFromChecks(t *testing.T) {
	fx := auditMedia(t)
	o := AuditOptions{Root: fx.rootFile, Dir: fx.media2, Repository: fx.boot, At: time.Now()}
	a := &auditor{o: o, rep: &AuditReport{Dir: o.Dir, Versions: map[string]int64{}}}
	if err := a.audit(); err != nil {
		t.Fatal(err)
	}
	files, err := mediumFiles(fx.media2)
	if err != nil {
		t.Fatal(err)
	}
	var tar, bin, ledger string
	for _, f := range files {
		big := strings.HasPrefix(f, "stable/metadata/") || strings.HasPrefix(f, "stable/ledger/") || strings.HasPrefix(f, "stable/pages/") || f == "diff.txt" || f == "diff.canonical"
		sum, ok := a.read[f]
		if big != ok {
			t.Errorf("%s: verify's checks hand a hash %v, want %v", f, ok, big)
		}
		if ok && sum != sha256.Sum256(mustRead(t, filepath.Join(fx.media2, f))) {
			t.Errorf("verify's checks hash %s to %x, not the file's SHA-256", f, sum)
		}
		if strings.HasPrefix(f, "stable/pages/") {
			tar = f
		}
		if strings.HasPrefix(f, "stable/ledger/") {
			ledger = f
		}
		if strings.Contains(f, ".stable-") && strings.Count(f, ".") == 3 {
			bin = f // a leaf bin: N.stable-lo-hi.lo-hi.json
		}
	}
	if tar == "" || bin == "" || ledger == "" {
		t.Fatalf("the fixture's medium has no page tar or leaf bin: %q", files)
	}
	for _, f := range []string{tar, bin, ledger, "diff.canonical", "diff.txt", PolicyFile} {
		t.Run(f, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "media")
			if err := copyDir(fx.media2, dir); err != nil {
				t.Fatal(err)
			}
			b := mustRead(t, filepath.Join(dir, SumsFile))
			i := bytes.Index(b, []byte("  "+f+"\n"))
			if i < 64 {
				t.Fatalf("%s lists no %s", SumsFile, f)
			}
			line := bytes.Count(b[:i], []byte("\n")) + 1
			other := sha256.Sum256([]byte("other bytes"))
			copy(b[i-64:i], hex.EncodeToString(other[:]))
			if err := os.WriteFile(filepath.Join(dir, SumsFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			o := o
			o.Dir = dir
			_, err := Audit(o)
			want := fmt.Sprintf("%s:%d: %s has sha256 ", SumsFile, line, f)
			if !errors.Is(err, ErrSums) || !strings.Contains(err.Error(), want) {
				t.Errorf("verify says %v, want ErrSums and %q", err, want)
			}
		})
	}
}

// TestCanonFileSum: diff.canonical's digest is taken as the file's
// SHA-256 only when it is that: a file read to its end, ending with a
// newline, with no carriage return (ParseCanonical's lines drop one).
func TestCanonFileSum(t *testing.T) {
	for _, c := range []struct {
		data string
		end  bool // read to io.EOF
		ok   bool
	}{
		{"a\nb\n", true, true},
		{"a\r\nb\n", true, false},
		{"a\nb", true, false},
		{"", true, false},
		{"a\nb\n", false, false},
	} {
		cf := &canonFile{r: strings.NewReader(c.data)}
		if c.end {
			io.Copy(io.Discard, cf)
		} else {
			cf.Read(make([]byte, 2))
		}
		// The digest ParseCanonical gives: its lines, each with "\n".
		var lines bytes.Buffer
		for _, l := range strings.Split(strings.TrimSuffix(c.data, "\n"), "\n") {
			lines.WriteString(strings.TrimSuffix(l, "\r") + "\n")
		}
		d := sha256.Sum256(lines.Bytes())
		sum, ok := cf.sum(hex.EncodeToString(d[:]))
		if ok != c.ok || ok && sum != sha256.Sum256([]byte(c.data)) {
			t.Errorf("%q (to the end %v): sum %x %v, want ok %v and the file's SHA-256", c.data, c.end, sum, ok, c.ok)
		}
	}
}
