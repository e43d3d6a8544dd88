package ceremony

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
)

// writePagesTar writes pages into dir/stable/pages/00.tar as a signing does.
func writePagesTar(t *testing.T, dir string, pages map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, b := range pages {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	d := filepath.Join(dir, "stable", "pages")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "00.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pageTarget(p string, b []byte) tuf.BinTarget {
	return tuf.BinTarget{Path: p, Length: int64(len(b)), SHA256: sha256.Sum256(b), BLAKE2b256: blake2b.Sum256(b), HasBLAKE2b: true}
}

// TestTargetCheck: what the read-back and verify refuse of a bin's entries
// against the signed diff's mode and the pages on the medium: a file in
// pages mode, an entry without blake2b-256, a file whose blake2b-256 is
// not the one its path names, a page whose bytes on the medium differ
// from its entry in either hash, a page on the medium no bin lists; and
// in files+pages, bins with fewer files than the ledger.
func TestTargetCheck(t *testing.T) {
	page := []byte("<html>the stable page</html>\n")
	const hp = "simple/foo/index.html"
	var b2 [32]byte
	b2[0] = 0xab
	file := export.TargetPath(b2, "foo-1.0.tar.gz")
	fileT := tuf.BinTarget{Path: file, Length: 3, SHA256: sha256.Sum256([]byte("foo")), BLAKE2b256: b2, HasBLAKE2b: true}
	check := func(mode string, pages map[string][]byte) *targetCheck {
		t.Helper()
		dir := t.TempDir()
		writePagesTar(t, dir, pages)
		tc, err := newTargetCheck(dir, &signeddiff.Statement{TargetMode: mode, Naming: "pep458"})
		if err != nil {
			t.Fatal(err)
		}
		return tc
	}
	// Accepted: a files+pages bin with the file and the page.
	tc := check("files+pages", map[string][]byte{hp: page})
	if err := tc.target("b", &fileT); err != nil {
		t.Fatal(err)
	}
	pt := pageTarget(hp, page)
	if err := tc.target("b", &pt); err != nil {
		t.Fatal(err)
	}
	if err := tc.done(); err != nil {
		t.Fatal(err)
	}
	tc.ledgerFiles = 1
	if err := tc.files(); err != nil {
		t.Fatal(err)
	}
	tc.ledgerFiles = 2
	if err := tc.files(); !errors.Is(err, ErrTargetMode) || !strings.Contains(err.Error(), "holds 2 stable files and the bins list 1") {
		t.Errorf("bins with fewer files than the ledger: %v", err)
	}

	for _, c := range []struct {
		name, mode string
		target     tuf.BinTarget
		want       error
		text       string
	}{
		{"file in pages mode", "pages", fileT, ErrTargetMode, `target mode is "pages"`},
		{"sha256 only", "files+pages", tuf.BinTarget{Path: file, Length: 3}, ErrTargetMode, "sha256 only"},
		{"blake2b-256 not the path's", "files+pages", func() tuf.BinTarget { x := fileT; x.BLAKE2b256[1] = 1; return x }(), ErrTargetMode, "its path names"},
		{"page sha256 differs", "pages", func() tuf.BinTarget { x := pageTarget(hp, page); x.SHA256[0] ^= 1; return x }(), tuf.ErrHash, hp},
		{"page blake2b-256 differs", "pages", func() tuf.BinTarget { x := pageTarget(hp, page); x.BLAKE2b256[0] ^= 1; return x }(), tuf.ErrHash, hp},
		{"page length differs", "pages", func() tuf.BinTarget { x := pageTarget(hp, page); x.Length++; return x }(), tuf.ErrHash, hp},
	} {
		tc := check(c.mode, map[string][]byte{hp: page})
		err := tc.target("stable-00-7f.000-0ff", &c.target)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), "stable-00-7f.000-0ff") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A page on the medium that no bin lists (another naming's path).
	tc = check("pages", map[string][]byte{"simple/foo/foo.html": page})
	if err := tc.done(); !errors.Is(err, ErrTargetMode) || !strings.Contains(err.Error(), "simple/foo/foo.html") {
		t.Errorf("an unlisted page: %v", err)
	}
	// A page listed again from the ledger (not on this medium) is not
	// compared with any bytes.
	tc = check("pages", nil)
	if err := tc.target("b", &pt); err != nil || tc.done() != nil {
		t.Errorf("a page from an earlier medium: %v", err)
	}
	if _, ok := export.PathBLAKE2b("packages/AB/cd/" + strings.Repeat("0", 60) + "/x"); ok {
		t.Error("pathBLAKE2b accepted uppercase hex")
	}
	if got, ok := export.PathBLAKE2b(file); !ok || got != b2 {
		t.Errorf("export.PathBLAKE2b(%s) = %x %v", file, got, ok)
	}
}
