package stableset

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// BenchmarkReview measures what the room waits for once the pass has
// ended, on a first ceremony over a synthetic PyPI-like export: the
// summary (from the pass's counts) and the full list sorted by project
// then version, as text (full) and as JSON (fulljson).
func BenchmarkReview(b *testing.B) {
	for _, files := range reviewSizes(b) {
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
		start := time.Now()
		d, err := ComputeDiff(Config{Export: bufio.NewReaderSize(ef, 1<<20), ExportName: exp, Now: synth.DefaultGenerated, Policy: policy.Default(), TempDir: dir})
		ef.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("files=%d: the pass (with the review index) %.1f s", files, time.Since(start).Seconds())
		// What the room waits for once the pass has ended, before its
		// first drill-down: the review opened from the index the pass
		// wrote (its hash checked, the project records read).
		b.Run(fmt.Sprintf("files=%d/open", files), func(b *testing.B) {
			defer reviewPeak(b)()
			for b.Loop() {
				rv, err := d.Review()
				if err != nil {
					b.Fatal(err)
				}
				rv.Close()
			}
		})
		// The review index, built after the pass from Diff.Entries (a
		// kept pass reopened by OpenReviewed), then one project's
		// drill-down (the largest) and a search by path.
		b.Run(fmt.Sprintf("files=%d/index", files), func(b *testing.B) {
			for b.Loop() {
				d.run.reviewBuilt = false
				rv, err := d.Review()
				if err != nil {
					b.Fatal(err)
				}
				rv.Close()
			}
		})
		// The pass's sort of the review lines, bucket by bucket (what
		// reviewBucket does on every core), in memory. Only with
		// -review.sortbuckets: it holds every line of the diff at once,
		// which the review never does, so it would hide the review's
		// peak RSS.
		if *reviewSortBuckets {
			var parts [numProjBucket][]byte
			var line []byte
			if err := d.Entries(func(e *DiffEntry) error {
				line = e.appendCanonical(line[:0])
				p := &parts[projBucket(e.Project)]
				*p = appendWorkLine(*p, line, e.Version, e.Legacy, e.Uploaded)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("files=%d/sortbuckets", files), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					for i := range parts {
						if _, _, err := sortReviewBucket(string(parts[i]), nil, io.Discard, 0); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
		rv, err := d.Review()
		if err != nil {
			b.Fatal(err)
		}
		largest := d.largest()[0].Project
		b.Run(fmt.Sprintf("files=%d/drilldown", files), func(b *testing.B) {
			b.ReportAllocs()
			defer reviewPeak(b)()
			for b.Loop() {
				v, err := rv.Project(largest)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.WriteProjectText(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("files=%d/searchpath", files), func(b *testing.B) {
			defer reviewPeak(b)()
			for b.Loop() {
				if err := rv.WriteSearchText(io.Discard, "-1.0.tar.gz", 200); err != nil {
					b.Fatal(err)
				}
			}
		})
		rv.Close()
		for _, c := range []struct {
			name  string
			write func(io.Writer) error
		}{{"summary", d.WriteText}, {"full", d.WriteFullText}, {"fulljson", d.WriteFullJSON}} {
			b.Run(fmt.Sprintf("files=%d/%s", files, c.name), func(b *testing.B) {
				b.ReportAllocs()
				defer reviewPeak(b)()
				cpu0 := cpuSeconds(b)
				for b.Loop() {
					if err := c.write(io.Discard); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric((cpuSeconds(b)-cpu0)/float64(b.N), "cpu-s/op")
			})
		}
		// `stable review --pass`: the kept pass opened (the export
		// scanned beside it, the walk) and its review index made again
		// and compared with the kept one; "kept" with the review's lines
		// spilled by the check's walk (Config.ReviewKept, what `stable
		// review --pass` does), "kept-walked" with a second walk of the
		// entries (what it did before).
		digest := d.Digest
		if _, err := d.Keep(dir); err != nil {
			b.Fatal(err)
		}
		for _, k := range []struct {
			name  string
			spill bool
		}{{"kept", true}, {"kept-walked", false}} {
			b.Run(fmt.Sprintf("files=%d/%s", files, k.name), func(b *testing.B) {
				defer reviewPeak(b)()
				for b.Loop() {
					t0 := time.Now()
					ef, err := os.Open(exp)
					if err != nil {
						b.Fatal(err)
					}
					kd, err := OpenReviewed(Config{Export: ef, ExportName: exp, Now: synth.DefaultGenerated, Policy: policy.Default(), TempDir: dir, ReviewKept: k.spill}, digest)
					ef.Close()
					if err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					rv, err := kd.Review()
					if err != nil {
						b.Fatal(err)
					}
					t2 := time.Now()
					rv.Close()
					kd.Release()
					b.ReportMetric(t1.Sub(t0).Seconds(), "open-s")
					b.ReportMetric(t2.Sub(t1).Seconds(), "index-s")
				}
			})
		}
	}
}

// reviewPeak measures a sub-benchmark's memory: the process's resident
// set once the heap is returned to the system (base-MiB: what the diff and
// the pass's leftovers hold) and its peak until the returned function runs
// (peak-MiB), from the kernel's VmHWM, reset here (/proc/self/clear_refs,
// Linux 4.0+).
func reviewPeak(b *testing.B) func() {
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	base := vmHWM(b)
	return func() {
		b.ReportMetric(float64(base)/(1<<20), "base-MiB")
		b.ReportMetric(float64(vmHWM(b))/(1<<20), "peak-MiB")
	}
}

// cpuSeconds is the CPU time (user and system) the process has used: on
// a machine others load, a sub-benchmark's cpu-s/op is steadier than
// its ns/op.
func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// vmHWM is the process's peak resident set (VmHWM) in bytes.
func vmHWM(b *testing.B) int64 {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// reviewFiles sets BenchmarkReview's sizes: go test -run '^$' -bench
// Review -benchtime 1x ./stableset/ -args -review.files 1000000,10000000
var reviewFiles = flag.String("review.files", "100000", "BenchmarkReview's export sizes, comma-separated")

// reviewSortBuckets adds BenchmarkReview's sortbuckets (the pass's sort,
// every line in memory at once).
var reviewSortBuckets = flag.Bool("review.sortbuckets", false, "BenchmarkReview: also measure the pass's bucket sort (holds the whole diff in memory)")

func reviewSizes(b *testing.B) []int64 {
	var out []int64
	for _, f := range strings.Split(*reviewFiles, ",") {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 1 {
			b.Fatalf("-review.files %q", *reviewFiles)
		}
		out = append(out, n)
	}
	return out
}
