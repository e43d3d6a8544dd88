package stableset

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// BenchmarkSecondPass measures ComputeDiff of a second ceremony (the pass
// over the export merged with the previous ledger, the pages, the checks)
// on synthetic PyPI-like exports, the previous ceremony signed outside
// the timer. The second export adds 2% of files in new releases, deletes
// 0.1%, and changes and backdates a few; ns/record and allocs/record are
// per export record: what the red flags from the export and the ledger's
// marks add to the pass shows against the commit before them.
func BenchmarkSecondPass(b *testing.B) {
	for _, files := range []int64{200_000} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			dir := b.TempDir()
			gen0 := synth.DefaultGenerated
			gen1 := gen0.Add(91 * 24 * time.Hour)
			var e0, e1 bytes.Buffer
			if err := synth.Generate(&e0, synth.Params{Seed: 1, Files: files, Generated: gen0}); err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriter(&e1)
			if _, err := synth.Next(bufio.NewReader(bytes.NewReader(e0.Bytes())), w, synth.NextParams{Seed: 2, Period: gen1.Sub(gen0),
				NewFiles: int(files / 50), Deletions: int(files / 1000), ChangedHash: 3, Backdated: 3}); err != nil {
				b.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			pol, err := policy.Parse([]byte(`{"confirm_above": {"added": 9007199254740992, "removed": 9007199254740992, "changed": 9007199254740992}, "red_flags": {"project_loss_percent": 100}}`), "benchmark policy")
			if err != nil {
				b.Fatal(err)
			}
			c := newCeremony(b)
			cfg := func(exp []byte, pub string, now time.Time) Config {
				cfg := Config{Export: bytes.NewReader(exp), ExportName: "export.jsonl", Now: now, Policy: pol, TempDir: dir}
				if pub != "" {
					cfg.Published, cfg.StableDelegation, cfg.StableKeys = pub, c.deleg, c.keyring
				}
				return cfg
			}
			out1 := filepath.Join(dir, "one")
			d, err := ComputeDiff(cfg(e0.Bytes(), "", gen0))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: gen0, OutDir: out1}); err != nil {
				b.Fatal(err)
			}
			d.Close()
			b.ReportAllocs()
			var records, flags int64
			n := 0
			for b.Loop() {
				d, err := ComputeDiff(cfg(e1.Bytes(), out1, gen1))
				if err != nil {
					b.Fatal(err)
				}
				records, flags = d.Export.Count, int64(len(d.Flags))
				n++
				b.StopTimer()
				d.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(n)*records), "ns/record")
			b.ReportMetric(float64(flags), "flags")
			os.RemoveAll(out1)
		})
	}
}
