package stableset

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"strings"
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

// TestPageDigest: the digest of page records, gathered and hashed a chunk
// at a time by one pageDigest from project to project, is SHA-256 of the
// whole (the magic line, the project, a zero byte, each record's 4-byte
// length and bytes), for no record, small ones, and records around and
// over the chunk.
func TestPageDigest(t *testing.T) {
	pd := newPageDigest()
	for _, tc := range []struct {
		project string
		sizes   []int
	}{
		{"empty", nil},
		{"a", []int{0}},
		{"small", []int{1, 150, 200, 3}},
		{"many", slicesRepeat(180, 1000)},
		{"chunk", []int{pageDigestChunk - 30, 5, pageDigestChunk, 7}},
		{"large", []int{3*pageDigestChunk + 11, 1}},
	} {
		var bodies []string
		whole := []byte("keyceremony-pages 1\n" + tc.project + "\x00")
		for i, n := range tc.sizes {
			b := strings.Repeat(string(rune('a'+i%26)), n)
			bodies = append(bodies, b)
			whole = binary.BigEndian.AppendUint32(whole, uint32(n))
			whole = append(whole, b...)
		}
		if got, want := pd.sum(tc.project, bodies), sha256.Sum256(whole); got != want {
			t.Errorf("%s (%d records): %x, want %x", tc.project, len(bodies), got, want)
		}
	}
}

func slicesRepeat(n, count int) []int {
	s := make([]int, count)
	for i := range s {
		s[i] = n + i%7
	}
	return s
}
