// Command pipeline measures the stable signing pipeline at one size, in one
// process run: it generates two synthetic exports (not timed; kept in -dir
// and reused by later runs), then prints wall time, CPU time (user+sys) and
// peak RSS per stage:
//
//   - sha256sum of the export, the floor (reading the input once), run as
//     a child and measured with the child's own rusage;
//   - the first ceremony (no published stable set) and the second (against
//     the first's output), each as ComputeDiff then (*Diff).Sign: one pass
//     over the export per ceremony;
//   - at 1 million files and below (or with -baseline=true), the go-tuf v2
//     baseline (bench/gotufbaseline, built here and run as a child on the
//     same export: parse, build the same bins, sign, serialise, write).
//
// Peak RSS per stage is the kernel's high-water mark, reset before each
// stage (/proc/self/clear_refs).
//
//	go run ./bench/pipeline -n 1000000
//	go run ./bench/pipeline -n 10000000 -rm
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/keyceremony/keyceremony/bench/internal/measure"
	"github.com/keyceremony/keyceremony/internal/gctune"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeak resets the kernel's peak RSS counter (Linux 4.0+), so that
// each stage's peak is its own.
func resetPeak() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakSelf() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
				var kb int64
				fmt.Sscan(string(bytes.TrimSpace(v)), &kb)
				return kb << 10
			}
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10
}

// stage runs f in this process and measures it.
func stage(f func() error) measure.Result {
	runtime.GC()
	resetPeak()
	w0, c0 := time.Now(), cpuSelf()
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "pipeline: error: %v\n", err)
		os.Exit(1)
	}
	return measure.Result{Wall: time.Since(w0), CPU: cpuSelf() - c0, Peak: peakSelf()}
}

func row(name string, r measure.Result) { measure.Row(os.Stdout, name, r) }

// child runs a command, its output into stdout, and measures it.
func child(stdout *bytes.Buffer, name string, args ...string) measure.Result {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	r, err := measure.Child(cmd)
	if err != nil {
		fatal(err)
	}
	return r
}

func main() {
	// The GC settings keyceremony runs the pipeline with (its main sets
	// them for the process, as this one does).
	gctune.Apply()
	n := flag.Int64("n", 1_000_000, "files in the export")
	dir := flag.String("dir", "", "work directory; exports are kept there and reused (default $TMPDIR/keyceremony-bench-N)")
	rm := flag.Bool("rm", false, "remove the work directory, exports included, at the end")
	baseline := flag.String("baseline", "auto", "run the go-tuf baseline: true, false or auto (at 1 M files and below)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the second ceremony to this file")
	flag.Parse()
	if *dir == "" {
		*dir = filepath.Join(os.TempDir(), fmt.Sprintf("keyceremony-bench-%d", *n))
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fatal(err)
	}
	if *rm {
		defer os.RemoveAll(*dir)
	}
	e0, e1 := filepath.Join(*dir, "export0.jsonl"), filepath.Join(*dir, "export1.jsonl")
	gen0 := synth.DefaultGenerated
	gen1 := gen0.Add(91 * 24 * time.Hour)
	fmt.Printf("pipeline benchmark: %d files, nproc %s, GOMAXPROCS %d, %s\n", *n, measure.Nproc(), runtime.GOMAXPROCS(0), runtime.Version())
	if err := measure.Generate(*dir, e0, e1, *n, gen0, gen1); err != nil {
		fatal(err)
	}
	st, err := os.Stat(e1)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("export: %d MiB (second ceremony's)\n\n", st.Size()>>20)
	measure.Header(os.Stdout)

	// Read the export once so that every stage starts from the page cache.
	exec.Command("cat", e1).Run()
	row("sha256sum export (floor)", child(&bytes.Buffer{}, "sha256sum", e1))

	var signers []keys.Signer
	var ids []string
	ring := map[string]*keys.Key{}
	for i := 0; i < 2; i++ {
		s, err := keys.GenerateEd25519()
		if err != nil {
			fatal(err)
		}
		signers = append(signers, s)
		ids = append(ids, s.Key().ID())
		ring[s.Key().ID()] = s.Key()
	}
	deleg := &tuf.DelegatedRole{Name: stableset.StableRole, KeyIDs: ids, Threshold: 2, Paths: []string{"packages/*/*/*/*", "simple/*/*"}}
	out1, out2 := filepath.Join(*dir, "out1"), filepath.Join(*dir, "out2")
	os.RemoveAll(out1)
	os.RemoveAll(out2)
	defer os.RemoveAll(out1)
	defer os.RemoveAll(out2)

	// The policy's defaults with the confirm_above limits out of reach:
	// the benchmark measures the pipeline, not the room's decisions
	// (which at 10 M files the first ceremony's count would demand).
	pol, err := policy.Parse([]byte(`{"confirm_above": {"added": 9007199254740992, "removed": 9007199254740992, "changed": 9007199254740992}, "red_flags": {"project_loss_percent": 100}}`), "benchmark policy")
	if err != nil {
		fatal(err)
	}
	ceremony := func(label, export, published, out string, now time.Time, profile string) {
		f, err := os.Open(export)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		cfg := stableset.Config{Export: bufio.NewReaderSize(f, 1<<20), ExportName: export, Now: now, Policy: pol, TempDir: *dir}
		if published != "" {
			cfg.Published, cfg.StableDelegation, cfg.StableKeys = published, deleg, ring
		}
		if profile != "" {
			pf, err := os.Create(profile)
			if err != nil {
				fatal(err)
			}
			pprof.StartCPUProfile(pf)
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
		// Each ceremony starts as a fresh process would: without the
		// previous ceremony's heap (which would count in its peak RSS).
		debug.FreeOSMemory()
		var d *stableset.Diff
		rd := stage(func() error {
			d, err = stableset.ComputeDiff(cfg)
			return err
		})
		// The synthetic next period lists files claiming an upload
		// before the previous listing (backdated: always a red flag).
		// The room confirms them (they stay held); the pass it then
		// runs with the decisions is the one measured and signed.
		if dec, n := confirmFlags(d); n > 0 {
			d.Close()
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				fatal(err)
			}
			cfg.Export, cfg.Decisions = bufio.NewReaderSize(f, 1<<20), dec
			fmt.Fprintf(os.Stderr, "  %s: %d red flags confirmed; the diff again with them\n", label, n)
			debug.FreeOSMemory()
			rd = stage(func() error {
				d, err = stableset.ComputeDiff(cfg)
				return err
			})
		}
		defer d.Close()
		var res *stableset.SignResult
		rs := stage(func() error {
			// A key of its own for every mid and leaf, made in memory,
			// as the ceremony does.
			res, err = d.Sign(stableset.SignParams{Approve: d.Digest, Signers: signers, BinKeys: stableset.EphemeralBinKeys, Now: now, OutDir: out})
			return err
		})
		row(label+": diff", rd)
		row(label+": sign and write", rs)
		row(label+": total", measure.Result{Wall: rd.Wall + rs.Wall, CPU: rd.CPU + rs.CPU, Peak: max(rd.Peak, rs.Peak)})
		var meta int64
		for _, m := range res.Meta {
			meta += m.Length
		}
		fmt.Fprintf(os.Stderr, "  %s: %+v; %d mids x %d leaves, %d pages, %d MiB of metadata\n", label, d.Summary, res.Layout.NumMids(), res.Layout.LeavesPerMid(), res.Pages, meta>>20)
	}
	ceremony("first ceremony", e0, "", out1, gen0, "")
	ceremony("second ceremony", e1, out1, out2, gen1, *cpuprofile)
	if du, err := exec.Command("du", "-sm", out2).Output(); err == nil {
		fmt.Fprintf(os.Stderr, "  second ceremony's output: %s", du)
	}

	if *baseline == "true" || *baseline == "auto" && *n <= 1_000_000 {
		bin := filepath.Join(*dir, "gotufbaseline")
		build := exec.Command("go", "build", "-o", bin, "./bench/gotufbaseline")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fatal(fmt.Errorf("building the go-tuf baseline (run from the module root): %w", err))
		}
		var out bytes.Buffer
		r := child(&out, bin, "-export", e1, "-out", filepath.Join(*dir, "gotuf-out"))
		os.Stdout.Write(out.Bytes())
		row("go-tuf v2 baseline: total (child)", r)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "pipeline: error: %v\n", err)
	os.Exit(1)
}

// confirmFlags is the set of decisions confirming every undecided red
// flag of d that "confirm" settles, and how many; a flag that needs
// another choice is fatal (the benchmark's policy raises none).
func confirmFlags(d *stableset.Diff) (*decisions.Set, int) {
	var b []byte
	n := 0
	for _, f := range d.Flags {
		if f.Decision != nil {
			continue
		}
		if !slices.Contains(f.Choices, decisions.Confirm) {
			fatal(fmt.Errorf("flag %s %s needs one of %v", f.Kind, f.Subject, f.Choices))
		}
		line, err := json.Marshal(map[string]string{"flag": f.Kind, "subject": f.Subject, "decision": string(decisions.Confirm), "reason": "benchmark: the synthetic period's " + f.Kind + " files"})
		if err != nil {
			fatal(err)
		}
		b = append(append(b, line...), '\n')
		n++
	}
	if n == 0 {
		return nil, 0
	}
	set, err := decisions.Parse(b, "decisions.jsonl")
	if err != nil {
		fatal(err)
	}
	return set, n
}
