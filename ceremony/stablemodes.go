package ceremony

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

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

// targetCheck checks every leaf bin target of a stable medium against the
// signed diff's target mode and naming, and the pages the medium carries
// (stable/pages/*.tar, the pages rendered by this ceremony) against their
// entries, both hashes.
type targetCheck struct {
	mode   policy.TargetMode
	naming simpleindex.Layout
	pages  *pageSet // the medium's pages
	// binFiles and ledgerFiles count the distribution files the bins
	// list and the stable files the ledger holds. target runs on every
	// core (sumBins): binFiles is added to atomically.
	binFiles, ledgerFiles int64
}

// newTargetCheck reads the medium's page archives under dir/stable/pages.
func newTargetCheck(dir string, stmt *signeddiff.Statement) (*targetCheck, error) {
	tars, err := filepath.Glob(filepath.Join(dir, "stable", "pages", "*.tar"))
	if err != nil {
		return nil, err
	}
	for i := range tars {
		tars[i] = filepath.Base(tars[i])
	}
	ps, err := readPages(dir, tars, false)
	if err != nil {
		return nil, err
	}
	return pageTargetCheck(stmt, ps), nil
}

// pageTargetCheck is a targetCheck of the pages ps read.
func pageTargetCheck(stmt *signeddiff.Statement, ps *pageSet) *targetCheck {
	return &targetCheck{mode: policy.TargetMode(stmt.TargetMode), naming: simpleindex.Layout(stmt.Naming), pages: ps}
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
		atomic.AddInt64(&c.binFiles, 1)
		if b2, ok := export.PathBLAKE2b(t.Path); ok && b2 != t.BLAKE2b256 {
			return fmt.Errorf("%s lists %s with blake2b-256 %x, its path names %x: %w", bin, t.Path, t.BLAKE2b256, b2, ErrTargetMode)
		}
		return nil
	}
	i, ok := c.pages.find(sha256.Sum256([]byte(t.Path)))
	if !ok {
		return nil // listed again from the ledger: its bytes were published before
	}
	c.pages.mark(i, pageFound)
	p := &c.pages.pages[i]
	if p.length != t.Length || p.sum != t.SHA256 || p.b2 != t.BLAKE2b256 {
		return fmt.Errorf("%s lists %s as %d bytes, sha256 %x, blake2b-256 %x; the medium's copy of the page has another length or hash: %w",
			bin, t.Path, t.Length, t.SHA256, t.BLAKE2b256, tuf.ErrHash)
	}
	return nil
}

// done checks that every page on the medium is listed, at the path the
// naming layout gives it.
func (c *targetCheck) done() error {
	var left int
	var some []string
	for i := range c.pages.pages {
		if p := &c.pages.pages[i]; c.pages.flags[i]&pageFound == 0 {
			left++
			if len(some) < 10 {
				some = append(some, c.pages.name(c.pages.dir, p))
			}
		}
	}
	if left == 0 {
		return nil
	}
	sort.Strings(some)
	return fmt.Errorf("the medium carries %d pages that no bin lists (naming %q), among them %q: %w", left, c.naming, some, ErrTargetMode)
}

// files checks, after the bins and the ledger were read, that in
// files+pages mode the bins list every stable file the ledger holds.
func (c *targetCheck) files() error {
	if c.mode.ListsFiles() && c.binFiles != c.ledgerFiles {
		return fmt.Errorf("the ledger holds %d stable files and the bins list %d, but the signed diff's target mode %q lists every one: %w", c.ledgerFiles, c.binFiles, c.mode, ErrTargetMode)
	}
	return nil
}
