package stableset

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// BenchmarkPipelineSign measures (*Diff).Sign alone (the diff is computed
// outside the timer) on synthetic PyPI-like exports: the layout sized,
// a key made for every mid and leaf, the leaves, mids and stable built,
// signed and written, as a first ceremony does.
func BenchmarkPipelineSign(b *testing.B) {
	for _, files := range []int64{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			dir := b.TempDir()
			exp := filepath.Join(dir, "export.jsonl")
			f, err := os.Create(exp)
			if err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriterSize(f, 1<<20)
			if err := synth.Generate(w, synth.Params{Seed: 1, Files: files}); err != nil {
				b.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			c := newCeremony(b)
			var binKeys BinKeySource = EphemeralBinKeys
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				b.StopTimer()
				ef, err := os.Open(exp)
				if err != nil {
					b.Fatal(err)
				}
				d, err := ComputeDiff(Config{Export: bufio.NewReaderSize(ef, 1<<20), ExportName: exp, Now: time.Now(), Policy: policy.Default(), TempDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				out := filepath.Join(dir, fmt.Sprintf("out%d", n))
				n++
				b.StartTimer()
				res, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: binKeys, Now: synth.DefaultGenerated, OutDir: out})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(len(res.Meta)), "metafiles")
				d.Close()
				ef.Close()
				os.RemoveAll(out)
				b.StartTimer()
			}
		})
	}
}
