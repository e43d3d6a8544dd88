package export_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

const benchRecords = 100000

var benchExport = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	if err := synth.Generate(&buf, synth.Params{Seed: 1, Files: benchRecords}); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

// BenchmarkExportReader parses a generated export of 100,000 records.
func BenchmarkExportReader(b *testing.B) {
	data := benchExport()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		x, err := export.NewReader(bytes.NewReader(data), "bench")
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := x.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(runtime.NumCPU()), "cpus")
}

// BenchmarkExportSHA256Floor is the floor for BenchmarkExportReader: reading
// the same bytes once and hashing them, as sha256sum does.
func BenchmarkExportSHA256Floor(b *testing.B) {
	data := benchExport()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	buf := make([]byte, 1<<20)
	for b.Loop() {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, bytes.NewReader(data), buf); err != nil {
			b.Fatal(err)
		}
		h.Sum(nil)
	}
	b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkExportWriter writes the same records back.
func BenchmarkExportWriter(b *testing.B) {
	data := benchExport()
	x, err := export.NewReader(bytes.NewReader(data), "bench")
	if err != nil {
		b.Fatal(err)
	}
	var rs []export.Record
	for {
		r, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, *r)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := export.NewWriter(io.Discard, x.Header())
		if err != nil {
			b.Fatal(err)
		}
		for i := range rs {
			if err := w.Write(&rs[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkFilenameSet measures the reader's duplicate filename check at
// PyPI's size: 25 million filenames added then checked (time per file,
// adding and the check at the end of the pass; bytes of heap per file
// once all are added).
func BenchmarkFilenameSet(b *testing.B) {
	for _, n := range []int{1_000_000, 25_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var perFile, nsPerFile float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				s := export.NewNameSet()
				name := make([]byte, 0, 64)
				for i := range n {
					name = append(name[:0], "project-"...)
					name = strconv.AppendInt(name, int64(i), 10)
					name = append(name, "-1.0.tar.gz"...)
					s.AddBytes(name, int64(i+2))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perFile = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				if s.Len() != int64(n) {
					b.Fatalf("%d names, want %d", s.Len(), n)
				}
				if d := s.Dups(); len(d) != 0 {
					b.Fatalf("duplicates %v", d[:1])
				}
				nsPerFile = float64(time.Since(start).Nanoseconds()) / float64(n)
			}
			b.ReportMetric(perFile, "bytes/file")
			b.ReportMetric(nsPerFile, "ns/file")
			b.ReportMetric(float64(runtime.NumCPU()), "cpus")
		})
	}
}
