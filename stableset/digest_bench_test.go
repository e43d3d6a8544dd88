package stableset

import (
	"archive/tar"
	"crypto/sha256"
	"io"
	"testing"

	"golang.org/x/crypto/blake2b"
)

// BenchmarkPageDigests is the floor under the pages' cost: every page
// made again is hashed with both digests its target entry carries, once
// as it is written (pageHasher) and once more as the medium is read back
// (docs/stable-pipeline.md, "Session 11: the floor"). Each sub-benchmark
// hashes a 1 MiB page; its MB/s is the rate one core gives.
func BenchmarkPageDigests(b *testing.B) {
	page := make([]byte, 1<<20)
	for i := range page {
		page[i] = byte(i * 7)
	}
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			sha256.Sum256(page)
		}
	})
	b.Run("blake2b-256", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			blake2b.Sum256(page)
		}
	})
	b.Run("pageHasher", func(b *testing.B) {
		ph := newPageHasher()
		tw := tar.NewWriter(io.Discard)
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			if _, _, err := ph.write(tw, "simple/p/index.html", page); err != nil {
				b.Fatal(err)
			}
		}
	})
}
