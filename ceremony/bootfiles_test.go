package ceremony

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/tuf"
)

// bootFaults are what a fault (or hands with the media) does to bootstrap
// media: the refusal must name the file.
var bootFaults = []struct {
	name, file, want string
	is               error
	do               func(dir string) error
}{
	{"a stray file", "keys/notes.txt", "a file that bootstrap media do not hold", ErrUnexpectedFile, func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "keys", "notes.txt"), []byte("x"), 0o644)
	}},
	{"a stray directory", "extra", "a directory that bootstrap media do not hold", ErrUnexpectedFile, func(dir string) error {
		return os.Mkdir(filepath.Join(dir, "extra"), 0o755)
	}},
	{"a symbolic link", "metadata/2.root.json", "a symbolic link", ErrUnexpectedFile, func(dir string) error {
		return os.Symlink("1.root.json", filepath.Join(dir, "metadata", "2.root.json"))
	}},
	{"the run sheet missing", "runsheet.md is missing", "bootstrap media hold", tuf.ErrMissing, func(dir string) error {
		return os.Remove(filepath.Join(dir, "runsheet.md"))
	}},
	{"the stable metadata missing", "metadata/1.stable.json is missing", "bootstrap media hold", tuf.ErrMissing, func(dir string) error {
		return os.Remove(filepath.Join(dir, "metadata", "1.stable.json"))
	}},
}

// TestBootstrapMediumFiles injects each fault between the writing and the
// read-back of a bootstrap: refused naming the file, the media renamed
// <target>.rejected-TIME, nothing under the success name. verify refuses
// the same faults on committed bootstrap media.
func TestBootstrapMediumFiles(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if _, err := f.bootstrap().Run(good); err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(good, "metadata", "1.root.json")
	if _, err := Audit(AuditOptions{Root: rootFile, Dir: good, SoftCA: filepath.Join(caDir, "ca")}); err != nil {
		t.Fatalf("verify of good bootstrap media: %v", err)
	}
	for _, fc := range bootFaults {
		t.Run(fc.name, func(t *testing.T) {
			// The read-back: the devices hold keys after the first
			// bootstrap, so each run gets a fixture of its own.
			ff := newFixture(t)
			target := filepath.Join(t.TempDir(), "boot")
			setHook(t, fc.do)
			_, err := ff.bootstrap().Run(target)
			var re *outdir.RejectedError
			if !errors.As(err, &re) || !errors.Is(err, fc.is) {
				t.Fatalf("Run = %v, want a rejected read-back (%v)", err, fc.is)
			}
			msg := err.Error()
			if !strings.Contains(msg, fc.file) || !strings.Contains(msg, fc.want) || strings.Contains(msg, ".partial-") {
				t.Errorf("error %q does not name %s and %q (or names the temporary directory)", msg, fc.file, fc.want)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after a failed read-back", target)
			}
			if rej, _ := filepath.Glob(target + ".rejected-*"); len(rej) != 1 || rej[0] != re.Dir {
				t.Errorf("rejected directories %q, error names %q", rej, re.Dir)
			}

			// verify: the same fault on a copy of committed media.
			setHook(t, nil)
			bad := filepath.Join(t.TempDir(), "boot")
			copyInto(t, good, bad)
			if err := fc.do(bad); err != nil {
				t.Fatal(err)
			}
			_, err = Audit(AuditOptions{Root: rootFile, Dir: bad, SoftCA: filepath.Join(caDir, "ca")})
			if !errors.Is(err, ErrInvalidMedium) || !errors.Is(err, fc.is) || !strings.Contains(err.Error(), fc.file) {
				t.Errorf("verify: %v, want an invalid medium naming %s", err, fc.file)
			}
		})
	}
}
