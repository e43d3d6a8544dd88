package stableset

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// BenchmarkReview measures what the room waits for once the pass has
// ended, on a first ceremony over a synthetic PyPI-like export: the
// summary (from the pass's counts) and the full list sorted by project
// then version.
func BenchmarkReview(b *testing.B) {
	for _, files := range []int64{100_000} {
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
		w.Flush()
		f.Close()
		ef, err := os.Open(exp)
		if err != nil {
			b.Fatal(err)
		}
		d, err := ComputeDiff(Config{Export: bufio.NewReaderSize(ef, 1<<20), ExportName: exp, Now: synth.DefaultGenerated, Policy: policy.Default(), TempDir: dir})
		ef.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			write func(io.Writer) error
		}{{"summary", d.WriteText}, {"full", d.WriteFullText}} {
			b.Run(fmt.Sprintf("files=%d/%s", files, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.write(io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		d.Close()
	}
}
