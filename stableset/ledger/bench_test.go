package ledger

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// BenchmarkLedgerRead reads the file records of a ledger as the next
// ceremony's pass does (NextRaw), 90% stable, some kept, dropped or
// yanked: ns/record is the cost per file of the 25 million a ceremony at
// PyPI's size merges; a read allocates nothing per record.
func BenchmarkLedgerRead(b *testing.B) {
	const files = 200_000
	es := make([]Entry, files)
	for i := range es {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		e := Entry{Path: fmt.Sprintf("packages/%02x/%02x/%x/project%d-1.%d.tar.gz", h[0], h[1], h[2:30], i%5000, i%7), Project: fmt.Sprintf("project%d", i%5000), Length: int64(i), SHA256: h}
		e.Stable = i%10 != 0
		if e.Kept = e.Stable && i%1000 == 1; e.Kept {
			e.StableLength, e.StableSHA256 = 1, h
		}
		e.Dropped = !e.Stable && i%20 == 0
		e.Yanked = i%200 == 3
		es[i] = e
	}
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Repository: "pypi", ListingTime: t1, StableVersion: 2, Naming: "pep458"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range es {
		if err := w.Add(&es[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	marks := 0
	for b.Loop() {
		lr, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		marks = 0
		for {
			e, err := lr.NextRaw()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if e.Dropped || e.Yanked {
				marks++
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*files), "ns/record")
	b.ReportMetric(float64(marks), "marks")
}
