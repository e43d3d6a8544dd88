package ceremony

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// ErrTargetMode is returned when a stable medium's bins disagree with the
// target mode or naming its signed diff names: a distribution file listed
// in pages mode, a page off the naming layout, an entry without both
// sha256 and blake2b-256, or a page whose bytes on the medium are not the
// ones its entry names.
var ErrTargetMode = errors.New("stable targets disagree with the signed diff's target mode")

// pageKey and pageSum keep a page compactly (a first ceremony carries
// every page, two per project): the first 16 bytes of SHA-256 of its path,
// and of its length, sha256 and blake2b-256.
type pageKey [16]byte
type pageSum [16]byte

func keyOf(path string) pageKey {
	h := sha256.Sum256([]byte(path))
	return pageKey(h[:16])
}

func sumOf(length int64, s, b2 *[32]byte) pageSum {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00", length)
	h.Write(s[:])
	h.Write(b2[:])
	return pageSum(h.Sum(nil)[:16])
}

// targetCheck checks every leaf bin target of a stable medium against the
// signed diff's target mode and naming, and the pages the medium carries
// (stable/pages/*.tar, the pages rendered by this ceremony) against their
// entries, both hashes.
type targetCheck struct {
	mode   policy.TargetMode
	naming simpleindex.Layout
	pages  map[pageKey]pageSum // the medium's pages not yet found in a bin
	names  map[pageKey]string
	// binFiles and ledgerFiles count the distribution files the bins
	// list and the stable files the ledger holds.
	binFiles, ledgerFiles int64
}

// newTargetCheck reads the medium's page archives under dir/stable/pages.
func newTargetCheck(dir string, stmt *signeddiff.Statement) (*targetCheck, error) {
	c := &targetCheck{mode: policy.TargetMode(stmt.TargetMode), naming: simpleindex.Layout(stmt.Naming), pages: map[pageKey]pageSum{}, names: map[pageKey]string{}}
	tars, err := filepath.Glob(filepath.Join(dir, "stable", "pages", "*.tar"))
	if err != nil {
		return nil, err
	}
	for _, name := range tars {
		if err := c.readTar(name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *targetCheck) readTar(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(h.Name, "simple/") {
			return fmt.Errorf("%s: %q is not an index page: %w", name, h.Name, ErrTargetMode)
		}
		s, b := sha256.New(), must(blake2b.New256(nil))
		n, err := io.Copy(io.MultiWriter(s, b), tr)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, h.Name, err)
		}
		var sh, b2 [32]byte
		s.Sum(sh[:0])
		b.Sum(b2[:0])
		k := keyOf(h.Name)
		if _, dup := c.pages[k]; dup {
			return fmt.Errorf("%s: %s is on the medium twice: %w", name, h.Name, ErrTargetMode)
		}
		c.pages[k] = sumOf(n, &sh, &b2)
		if len(c.names) < 10 {
			c.names[k] = h.Name // for the error naming pages no bin lists
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// target checks one leaf bin's target.
func (c *targetCheck) target(bin string, t *tuf.BinTarget) error {
	if !t.HasBLAKE2b {
		return fmt.Errorf("%s lists %s with sha256 only; every entry lists blake2b-256 too: %w", bin, t.Path, ErrTargetMode)
	}
	if !strings.HasPrefix(t.Path, "simple/") {
		if !c.mode.ListsFiles() {
			return fmt.Errorf("%s lists the distribution file %s, but the signed diff's target mode is %q (index pages only): %w", bin, t.Path, c.mode, ErrTargetMode)
		}
		c.binFiles++
		if b2, ok := export.PathBLAKE2b(t.Path); ok && b2 != t.BLAKE2b256 {
			return fmt.Errorf("%s lists %s with blake2b-256 %x, its path names %x: %w", bin, t.Path, t.BLAKE2b256, b2, ErrTargetMode)
		}
		return nil
	}
	k := keyOf(t.Path)
	p, ok := c.pages[k]
	if !ok {
		return nil // listed again from the ledger: its bytes were published before
	}
	delete(c.pages, k)
	delete(c.names, k)
	if p != sumOf(t.Length, &t.SHA256, &t.BLAKE2b256) {
		return fmt.Errorf("%s lists %s as %d bytes, sha256 %x, blake2b-256 %x; the medium's copy of the page has another length or hash: %w",
			bin, t.Path, t.Length, t.SHA256, t.BLAKE2b256, tuf.ErrHash)
	}
	return nil
}

// done checks that every page on the medium is listed, at the path the
// naming layout gives it.
func (c *targetCheck) done() error {
	if len(c.pages) == 0 {
		return nil
	}
	var some []string
	for k := range c.pages {
		if n, ok := c.names[k]; ok {
			some = append(some, n)
		}
	}
	sort.Strings(some)
	return fmt.Errorf("the medium carries %d pages that no bin lists (naming %q), among them %q: %w", len(c.pages), c.naming, some, ErrTargetMode)
}

// files checks, after the bins and the ledger were read, that in
// files+pages mode the bins list every stable file the ledger holds.
func (c *targetCheck) files() error {
	if c.mode.ListsFiles() && c.binFiles != c.ledgerFiles {
		return fmt.Errorf("the ledger holds %d stable files and the bins list %d, but the signed diff's target mode %q lists every one: %w", c.ledgerFiles, c.binFiles, c.mode, ErrTargetMode)
	}
	return nil
}
