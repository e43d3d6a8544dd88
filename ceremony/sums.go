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
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/internal/outdir"
)

// SumsFile is the manifest every ceremony's medium carries, written last:
// the SHA-256 of every other file on the medium, in the form `sha256sum
// -c` checks (docs/audit.md).
const SumsFile = "SHA256SUMS"

// ErrMediumWrite means the output medium could not be written: it is
// full, was removed or went read-only. Nothing got the medium's name and
// the backup medium was not touched (its state is written only after the
// medium is committed).
var ErrMediumWrite = hint.New("the output medium could not be written (full, removed or read-only)", "nothing was published under the medium's name and the backup medium is unchanged: free space or insert another medium, then run the command again")

// mediumFailure is err, marked ErrMediumWrite (naming the medium) when it
// is a full, removed or read-only medium's and the medium did not get its
// name (a failure after, on the backup medium, says so itself).
func mediumFailure(err error, media string) error {
	if err == nil {
		return nil
	}
	if _, serr := os.Lstat(media); serr == nil {
		return err
	}
	// Only a file on the medium: the working directory beside the target.
	var pe *fs.PathError
	if !errors.As(err, &pe) || filepath.Dir(pe.Path) == "" || !strings.HasPrefix(pe.Path, filepath.Join(filepath.Dir(filepath.Clean(media)), "."+filepath.Base(media)+".partial-")) {
		return err
	}
	for _, e := range []error{syscall.ENOSPC, syscall.EFBIG, syscall.EIO, syscall.EROFS, syscall.ENODEV, syscall.ENXIO} {
		if errors.Is(err, e) {
			return fmt.Errorf("%s: %w: %w", media, err, ErrMediumWrite)
		}
	}
	return err
}

// ErrSums is wrapped by every failure of a medium's SHA256SUMS.
var ErrSums = errors.New("SHA256SUMS does not match the medium")

// sumsLine is one line of SHA256SUMS: a lowercase hex SHA-256, two spaces
// (sha256sum's text mode), a slash-separated path relative to the medium
// with no "." or ".." element and nothing sha256sum would escape.
var sumsLine = regexp.MustCompile(`^([0-9a-f]{64})  ([^\\\n\r]+)$`)

// mediumFiles lists every regular file under dir but SumsFile at the top,
// as slash-separated paths in byte order; anything else than a directory
// or a regular file is refused (the media's lists refuse them too).
func mediumFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s: a %s, not a file: %w", rel, kindOf(e), ErrUnexpectedFile)
		}
		if rel != SumsFile {
			files = append(files, rel)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// readSums is what a medium's read-back hashed of the files it read
// whole, by slash-separated path relative to the medium: writeSums lists
// these without reading and hashing the files again (what the read-back
// read from the medium and checked is what the manifest lists).
type readSums map[string][32]byte

// add records the SHA-256 of the file rel (r may be nil: nothing kept).
func (r readSums) add(rel string, sum [32]byte) {
	if r != nil {
		r[rel] = sum
	}
}

// writeSums writes SumsFile into out, after the medium was read back:
// every other file with its SHA-256 (as read lists it, else hashed
// here), sorted by path. It returns the manifest's own digest, which the
// screen shows for the run sheet.
func writeSums(out *outdir.Dir, read readSums) ([32]byte, error) {
	dir := out.Path()
	files, err := mediumFiles(dir)
	if err != nil {
		return [32]byte{}, fmt.Errorf("listing the medium for %s: %w", SumsFile, err)
	}
	full := make([]string, len(files))
	for i, f := range files {
		if _, ok := read[f]; !ok {
			full[i] = filepath.Join(dir, filepath.FromSlash(f))
		}
	}
	sums, errs := hashFiles(full)
	for i, f := range files {
		if s, ok := read[f]; ok {
			sums[i] = s
		}
	}
	var b bytes.Buffer
	for i, f := range files {
		sum, err := sums[i], errs[i]
		if err != nil {
			return [32]byte{}, err
		}
		if !validSumsPath(f) {
			return [32]byte{}, fmt.Errorf("%s: a name %s cannot list: %w", f, SumsFile, ErrUnexpectedFile)
		}
		fmt.Fprintf(&b, "%x  %s\n", sum, f)
	}
	if err := out.WriteFile(SumsFile, b.Bytes()); err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b.Bytes()), nil
}

// sealMedium writes SumsFile into out, which was read back (read: the
// hashes that read-back took, or nil), and gives the medium its name; it
// returns the manifest's digest.
func sealMedium(out *outdir.Dir, read readSums) ([32]byte, error) {
	d, err := writeSums(out, read)
	if err != nil {
		return d, err
	}
	return d, out.Commit()
}

// showSums shows the manifest's digest as hex and PGP words, on the
// guided screen or on show.
func showSums(show io.Writer, g *Guide, d [32]byte) {
	const label = SumsFile + " digest (read it aloud; write it on the run sheet):"
	switch {
	case g != nil:
		g.showDigest(label, d[:])
	case show != nil:
		tui.ShowDigest(show, label, d[:])
	}
}

func validSumsPath(p string) bool {
	if !sumsLine.MatchString(strings.Repeat("0", 64) + "  " + p) {
		return false
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}

// ParseSums reads a SHA256SUMS manifest strictly: every line as
// writeSums writes it, paths in strictly increasing byte order (so none
// twice). name is used in errors, which give the line.
func ParseSums(data []byte, name string) (paths, sums []string, err error) {
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%s: empty: %w", name, ErrSums)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		return nil, nil, fmt.Errorf("%s: does not end with a newline: %w", name, ErrSums)
	}
	for i, line := range strings.Split(string(data[:len(data)-1]), "\n") {
		m := sumsLine.FindStringSubmatch(line)
		if m == nil || !validSumsPath(m[2]) {
			return nil, nil, fmt.Errorf("%s:%d: not \"<sha256 in lowercase hex>  <path>\": %w", name, i+1, ErrSums)
		}
		if n := len(paths); n > 0 && m[2] <= paths[n-1] {
			return nil, nil, fmt.Errorf("%s:%d: %s is out of order or listed twice: %w", name, i+1, m[2], ErrSums)
		}
		paths, sums = append(paths, m[2]), append(sums, m[1])
	}
	return paths, sums, nil
}

// CheckSums checks dir's SumsFile: it lists every other file on the
// medium, each with its SHA-256, and nothing else. It returns the
// manifest's digest and the number of files.
func CheckSums(dir string) ([32]byte, int, error) {
	return checkSums(dir, nil)
}

// checkSums is CheckSums, taking the SHA-256 of each file in read (what
// the audit's checks read whole from the medium and hashed in that read)
// instead of reading and hashing it again; every other file is hashed
// here.
func checkSums(dir string, read readSums) ([32]byte, int, error) {
	data, err := os.ReadFile(filepath.Join(dir, SumsFile))
	if err != nil {
		return [32]byte{}, 0, err
	}
	paths, sums, err := ParseSums(data, SumsFile)
	if err != nil {
		return [32]byte{}, 0, err
	}
	files, err := mediumFiles(dir)
	if err != nil {
		return [32]byte{}, 0, err
	}
	for _, f := range files {
		if _, ok := slices.BinarySearch(paths, f); !ok {
			return [32]byte{}, 0, fmt.Errorf("%s is on the medium, %s does not list it: %w", f, SumsFile, ErrSums)
		}
	}
	// Hashed on every core (the medium is gigabytes), checked in order;
	// a file the checks read whole is not read again.
	full := make([]string, len(paths))
	onMedium := make([]bool, len(paths))
	for i, p := range paths {
		if _, ok := slices.BinarySearch(files, p); ok {
			onMedium[i] = true
			if _, ok := read[p]; !ok {
				full[i] = filepath.Join(dir, filepath.FromSlash(path.Clean(p)))
			}
		}
	}
	have, errs := hashFiles(full)
	for i, p := range paths {
		if s, ok := read[p]; ok && onMedium[i] {
			have[i] = s
		}
	}
	for i, p := range paths {
		if !onMedium[i] {
			return [32]byte{}, 0, fmt.Errorf("%s:%d: lists %s, which is not on the medium: %w", SumsFile, i+1, p, ErrSums)
		}
		got, err := have[i], errs[i]
		if err != nil {
			return [32]byte{}, 0, err
		}
		if hex.EncodeToString(got[:]) != sums[i] {
			return [32]byte{}, 0, fmt.Errorf("%s:%d: %s has sha256 %x, the manifest says %s: %w", SumsFile, i+1, p, got, sums[i], ErrSums)
		}
	}
	return sha256.Sum256(data), len(paths), nil
}

// hashFiles returns the SHA-256 of each file of paths (an empty path is
// skipped), read on every core, each result at its file's index.
func hashFiles(paths []string) ([][32]byte, []error) {
	sums, errs := make([][32]byte, len(paths)), make([]error, len(paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(paths); i = int(next.Add(1) - 1) {
				if paths[i] != "" {
					sums[i], errs[i] = fileSHA256(paths[i])
				}
			}
		}()
	}
	wg.Wait()
	return sums, errs
}
