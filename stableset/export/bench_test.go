package export_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"runtime"
	"sync"
	"testing"

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
