// Command layout measures the stable layout's metadata at any size,
// without the rest of a ceremony: it builds the metadata a first
// ceremony writes (stable.json, every mid, every leaf, the snapshot
// fragment) from a synthetic export, with the production code the
// pipeline signs with (tuf.SizeTwoLevel, tuf.AppendBinSigned,
// tuf.AppendBinFile, the index pages rendered by simpleindex, the
// ledger's length from stableset/ledger), and prints the size report
// bench/cli prints over its media (bench/internal/sizes): every file's
// size, the layout's share of the snapshot and one lookup, fresh.
//
// It is bench/cli's first ceremony reduced to its metadata: the same
// export (synth, seed 1, generated 91 days and an hour before this hour,
// as bench/cli's first export, or -generated), the same policy
// (measure.Policy), the ceremony's clock now, stable version 2 (after
// the bootstrap's empty v1), three stable signatures (bench/cli's
// ceremony signs with all three of its devices). TestAgainstPipeline
// holds it to what stableset's pipeline writes for the same export.
//
// The targets never are in memory at once: the export is streamed from
// the generator through the export reader, the targets and the index
// pages' records go into 256 bucket files each under -dir, and the leaves
// are built a bucket at a time. At 25 M files the work files take about
// 10 GB (about 400 bytes a file) and the metadata, written as the buckets
// are removed, 7.4 GB in files+pages; everything under -dir is removed at
// the end unless -keep.
//
//	go run ./bench/layout -n 1000000
//	go run ./bench/layout -n 25000000 -mode pages -dir /big/disk/layout
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/keyceremony/keyceremony/bench/internal/measure"
	"github.com/keyceremony/keyceremony/bench/internal/sizes"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// bytesPerFile is the disk a run needs per file of the export: the
// target and page buckets (about 220 and 200 bytes a file), the duplicate
// filename check's work file (12), the leaves (about 300 a target).
const bytesPerFile = 800

func main() {
	n := flag.Int64("n", 1_000_000, "files in the synthetic export")
	mode := flag.String("mode", "files+pages", "the policy's target_mode: files+pages or pages")
	dir := flag.String("dir", "", "work directory (default $TMPDIR/keyceremony-layout-N); what the run writes there is removed at the end unless -keep")
	keep := flag.Bool("keep", false, "keep the metadata (DIR/stable) and the work directory")
	gen := flag.String("generated", "", "the export's generation time, RFC 3339 (default: bench/cli's first export's, 91 days and an hour before this hour)")
	flag.Parse()
	if *mode != "files+pages" && *mode != "pages" {
		fmt.Fprintf(os.Stderr, "layout bench: error: -mode %q: use files+pages or pages\n", *mode)
		os.Exit(2)
	}
	now := time.Now().UTC().Truncate(time.Second)
	generated := now.Truncate(time.Hour).Add(-time.Hour - 91*24*time.Hour)
	if *gen != "" {
		t, err := time.Parse(time.RFC3339, *gen)
		if err != nil {
			fmt.Fprintf(os.Stderr, "layout bench: error: -generated: %v\n", err)
			os.Exit(2)
		}
		generated = t
	}
	if *dir == "" {
		*dir = filepath.Join(os.TempDir(), fmt.Sprintf("keyceremony-layout-%d", *n))
	}
	if err := run(os.Stdout, *dir, *n, *mode, generated, now, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "layout bench: error: %v\n", err)
		os.Exit(1)
	}
}

func run(w io.Writer, dir string, n int64, mode string, generated, now time.Time, keep bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !keep {
		// What the run made, and dir itself if nothing else is left
		// there (it may be a directory of the caller's).
		defer func() {
			for _, d := range []string{"stable", "stable.partial", "work", "1.targets.json"} {
				os.RemoveAll(filepath.Join(dir, d))
			}
			os.Remove(dir)
		}()
	}
	if err := measure.CheckSpace(dir, n*bytesPerFile); err != nil {
		return err
	}
	for _, d := range []string{"stable", "work"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return err
		}
	}
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "layout benchmark: %d files, %s, export generated %s, nproc %s, load %s, %s\n", n, mode, generated.Format(time.RFC3339), measure.Nproc(), strings.Join(strings.Fields(string(load))[:3], " "), runtime.Version())

	raw := measure.Policy(mode)
	pol, err := policy.Parse(raw, "policy.json")
	if err != nil {
		return err
	}
	// The export, from the generator to the reader through a pipe.
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(synth.Generate(pw, synth.Params{Seed: 1, Files: n, Generated: generated}))
	}()
	defer pr.Close()
	t0 := time.Now()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	res, err := build(buildConfig{Export: pr, ExportName: "synthetic export", Policy: pol, PolicyRaw: raw, Now: now, Version: 2, Signers: 3,
		Dir: filepath.Join(dir, "stable"), Work: work, Workers: runtime.GOMAXPROCS(0)})
	if err != nil {
		return err
	}
	wall := time.Since(t0)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	targetsFile := filepath.Join(dir, "1.targets.json")
	if _, err := writeTargets(targetsFile, now, simpleindex.Layout(pol.Naming)); err != nil {
		return err
	}
	fmt.Fprintf(w, "built in %.1f s wall, %.1f s CPU, peak RSS %d MiB (this process: generator, reader and build): %d files listed, %d targets (%d files, %d pages of %d projects), ledger %d bytes\n",
		wall.Seconds(), cpu.Seconds(), ru.Maxrss>>10, res.Listed, res.Files+res.Pages, res.Files, res.Pages, res.Projects, res.LedgerLength)
	s, err := sizes.Measure("", filepath.Join(dir, "stable"), targetsFile, pol.TargetMode)
	if err != nil {
		return fmt.Errorf("size report: %w", err)
	}
	if s.Targets != res.Files+res.Pages {
		return fmt.Errorf("size report: the leaves list %d targets, the build made %d: %w", s.Targets, res.Files+res.Pages, errCount)
	}
	s.Print(w)
	return nil
}

// errCount: the report counted other targets than the build made.
var errCount = errors.New("target count mismatch")
