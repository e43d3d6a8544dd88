package stableset

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"golang.org/x/crypto/blake2b"
)

// TestPageHasher: pages written through one pageHasher, a chunk at a time
// (empty, shorter than a chunk, exactly one, and several with a partial
// last chunk), come back from the tar whole, and their sums are
// SHA-256 and BLAKE2b-256 of their bytes.
func TestPageHasher(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	ph := newPageHasher()
	var pages [][]byte
	for _, n := range []int{0, 1, 100, pageHashChunk, 3*pageHashChunk + 7} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + n)
		}
		pages = append(pages, p)
	}
	for i, p := range pages {
		sum, b2, err := ph.write(tw, "simple/p/index.html", p)
		if err != nil {
			t.Fatal(err)
		}
		if sum != sha256.Sum256(p) || b2 != blake2b.Sum256(p) {
			t.Errorf("page %d (%d bytes): sha256 %x, blake2b %x", i, len(p), sum, b2)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for i, p := range pages {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(tr)
		if err != nil || hdr.Size != int64(len(p)) || !bytes.Equal(got, p) {
			t.Errorf("page %d: %d bytes back (header %d), want %d: %v", i, len(got), hdr.Size, len(p), err)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("after the pages: %v", err)
	}
}
