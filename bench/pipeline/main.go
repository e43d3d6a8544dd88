// Command pipeline measures the stable signing pipeline at one size: it
// generates two synthetic exports (not timed), runs the first ceremony on
// the first and the second ceremony on the second against the first's
// output, and prints wall time, CPU time (user+sys) and peak RSS per stage,
// with sha256sum of the export as the floor.
//
//	go run ./bench/pipeline -n 1000000
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

type sample struct {
	wall time.Duration
	cpu  time.Duration
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024
}

// resetPeak resets the kernel's peak RSS counter (Linux 4.0+), so that
// each stage's peak is its own.
func resetPeak() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakNow() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return maxRSS()
	}
	var kb int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmHWM:")) {
			fmt.Sscan(string(bytes.TrimSpace(line[6:])), &kb)
		}
	}
	return kb * 1024
}

func stage(name string, f func() error) {
	resetPeak()
	w0, c0 := time.Now(), cpuNow()
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("| %-34s | %8.2f s | %8.2f s | %7d MiB |\n", name, time.Since(w0).Seconds(), (cpuNow() - c0).Seconds(), peakNow()>>20)
}

func main() {
	n := flag.Int64("n", 1_000_000, "files in the export")
	dir := flag.String("dir", "", "work directory (default: a new temporary one, removed after)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "keyceremony-bench-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	e0, e1 := filepath.Join(*dir, "export0.jsonl"), filepath.Join(*dir, "export1.jsonl")
	gen0 := synth.DefaultGenerated
	gen1 := gen0.Add(91 * 24 * time.Hour)
	fmt.Printf("pipeline benchmark: %d files, %d CPUs\n", *n, nprocs())
	if err := generate(e0, e1, *n, gen0, gen1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st, _ := os.Stat(e1)
	fmt.Printf("export: %d MiB\n\n", st.Size()>>20)
	fmt.Printf("| %-34s | %10s | %10s | %11s |\n", "stage", "wall", "cpu", "peak RSS")
	fmt.Printf("|%s|%s|%s|%s|\n", "------------------------------------", "------------", "------------", "-------------")

	stage("sha256sum export (floor)", func() error {
		return exec.Command("sha256sum", e1).Run()
	})
	var signers []keys.Signer
	ids := []string{}
	ring := map[string]*keys.Key{}
	for i := 0; i < 2; i++ {
		s, _ := keys.GenerateEd25519()
		signers = append(signers, s)
		ids = append(ids, s.Key().ID())
		ring[s.Key().ID()] = s.Key()
	}
	deleg := &tuf.DelegatedRole{Name: "stable", KeyIDs: ids, Threshold: 2, Paths: []string{"packages/*/*/*/*"}}
	out1, out2 := filepath.Join(*dir, "out1"), filepath.Join(*dir, "out2")
	run := func(export, published, out string, now time.Time) func() error {
		return func() error {
			cfg := func() (stableset.Config, *os.File, error) {
				f, err := os.Open(export)
				if err != nil {
					return stableset.Config{}, nil, err
				}
				c := stableset.Config{Export: f, ExportName: export, Eligible: stableset.PolicyEligible(stableset.DefaultPolicy()), TempDir: *dir}
				if published != "" {
					c.Published, c.StableDelegation, c.StableKeys = published, deleg, ring
				}
				return c, f, nil
			}
			c, f, err := cfg()
			if err != nil {
				return err
			}
			d, err := stableset.ComputeDiff(c)
			f.Close()
			if err != nil {
				return err
			}
			digest := d.Digest
			fmt.Fprintf(os.Stderr, "  diff %+v\n", d.Summary)
			d.Close()
			c, f, err = cfg()
			if err != nil {
				return err
			}
			defer f.Close()
			res, err := stableset.Sign(c, stableset.SignParams{Approve: digest, Signers: signers, Now: now, OutDir: out})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "  %d bins, %d pages\n", res.Layout.NumBins(), res.Pages)
			return nil
		}
	}
	stage("first ceremony (diff + sign)", run(e0, "", out1, gen0))
	stage("second ceremony (diff + sign)", run(e1, out1, out2, gen1))
}

func nprocs() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

func generate(e0, e1 string, n int64, gen0, gen1 time.Time) error {
	f0, err := os.Create(e0)
	if err != nil {
		return err
	}
	if err := synth.Generate(f0, synth.Params{Seed: 1, Files: n, Generated: gen0}); err != nil {
		return err
	}
	f0.Close()
	in, err := os.Open(e0)
	if err != nil {
		return err
	}
	defer in.Close()
	f1, err := os.Create(e1)
	if err != nil {
		return err
	}
	defer f1.Close()
	_, err = synth.Next(in, f1, synth.NextParams{Seed: 2, Period: gen1.Sub(gen0), NewFiles: int(n / 50), Deletions: int(n / 1000), ChangedHash: 3, Backdated: 3})
	if err != nil {
		// synth.Next may not exist yet: fall back to a fresh export with
		// the same seed at the later time (a weaker diff).
		fmt.Fprintf(os.Stderr, "synth.Next: %v; using Generate at the later time instead\n", err)
		f1.Truncate(0)
		f1.Seek(0, 0)
		return synth.Generate(f1, synth.Params{Seed: 1, Files: n + n/50, Generated: gen1})
	}
	return nil
}
