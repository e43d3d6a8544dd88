// Package measure is what the benchmark commands share: a child process
// measured by its own rusage and peak RSS, the table rows they print, the
// synthetic exports they run on, and the disk space check before making
// them.
package measure

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keyceremony/keyceremony/stableset/synth"
)

// Result is one measured stage.
type Result struct {
	Wall, CPU time.Duration
	Peak      int64 // bytes
}

// Row prints a table row of r.
func Row(w io.Writer, name string, r Result) {
	fmt.Fprintf(w, "| %-40s | %8.2f s | %8.2f s | %7d MiB |\n", name, r.Wall.Seconds(), r.CPU.Seconds(), r.Peak>>20)
}

// Header prints the table's header.
func Header(w io.Writer) {
	fmt.Fprintf(w, "| %-40s | %10s | %10s | %11s |\n", "stage", "wall", "cpu", "peak RSS")
	fmt.Fprintf(w, "|%s|%s|%s|%s|\n", strings.Repeat("-", 42), strings.Repeat("-", 12), strings.Repeat("-", 12), strings.Repeat("-", 13))
}

// Child runs cmd and measures it: wall time, CPU time from the child's own
// rusage (wait4), and peak RSS from the child's VmHWM, polled while it
// runs. (The rusage's maxrss is not used: with vfork the child's maxrss
// starts at this process's RSS.) A failed command is an error carrying
// its standard error.
func Child(cmd *exec.Cmd) (Result, error) {
	var stderr bytes.Buffer
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	w0 := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			if b, err := os.ReadFile(status); err == nil {
				peak = max(peak, ParseVmHWM(b))
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(w0)
	close(done)
	<-polled
	if err != nil {
		return Result{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "), err, stderr.Bytes())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return Result{wall, time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), peak}, nil
}

// ParseVmHWM returns the VmHWM line of a /proc/PID/status file in bytes,
// 0 if it has none or the line is not a count of kB.
func ParseVmHWM(status []byte) int64 {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			n, ok := bytes.CutSuffix(bytes.TrimSpace(v), []byte(" kB"))
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(n)), 10, 64)
			if !ok || err != nil || kb < 0 || kb > math.MaxInt64>>10 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// Nproc is nproc's answer, "?" if it cannot run.
func Nproc() string {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// Policy is the benchmarks' policy file for the target mode (files+pages
// or pages): the default policy, but the confirm_above limits out of
// reach and no project-loss flag, so that no decision of the room is
// needed.
func Policy(mode string) []byte {
	return []byte(`{"target_mode": "` + mode + `", "confirm_above": {"added": 9007199254740992, "removed": 9007199254740992, "changed": 9007199254740992}, "red_flags": {"project_loss_percent": 100}}` + "\n")
}

// ErrNoSpace is returned by CheckSpace.
var ErrNoSpace = errors.New("not enough free disk space")

// CheckSpace refuses when the file system holding dir has less than need
// bytes free, naming both.
func CheckSpace(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("checking free space in %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free < need {
		return fmt.Errorf("%s has %.1f GB free, the benchmark needs about %.1f GB (exports, work files, media): %w", dir, float64(free)/1e9, float64(need)/1e9, ErrNoSpace)
	}
	return nil
}

// Generate writes two exports of n files into e0 and e1, generated at
// gen0 and gen1 (the second the first's next period: 2% new files, 0.1%
// deleted, 3 changed hashes, 3 backdated files), unless a previous call
// left them complete for the same n and times (a marker file named done
// in dir says so).
func Generate(dir, e0, e1 string, n int64, gen0, gen1 time.Time) error {
	done := filepath.Join(dir, "done")
	mark := fmt.Sprintf("%d %s %s\n", n, gen0.UTC().Format(time.RFC3339), gen1.UTC().Format(time.RFC3339))
	if b, err := os.ReadFile(done); err == nil && string(b) == mark {
		return nil
	}
	os.Remove(done)
	t0 := time.Now()
	write := func(name string, f func(w *bufio.Writer) error) error {
		out, err := os.Create(name)
		if err != nil {
			return err
		}
		defer out.Close()
		bw := bufio.NewWriterSize(out, 1<<20)
		if err := f(bw); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return out.Close()
	}
	err := write(e0, func(w *bufio.Writer) error {
		return synth.Generate(w, synth.Params{Seed: 1, Files: n, Generated: gen0})
	})
	if err != nil {
		return err
	}
	in, err := os.Open(e0)
	if err != nil {
		return err
	}
	defer in.Close()
	err = write(e1, func(w *bufio.Writer) error {
		_, err := synth.Next(bufio.NewReaderSize(in, 1<<20), w, synth.NextParams{Seed: 2, Period: gen1.Sub(gen0),
			NewFiles: int(n / 50), Deletions: int(n / 1000), ChangedHash: 3, Backdated: 3})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "  generated the exports in %.0f s (not timed)\n", time.Since(t0).Seconds())
	return os.WriteFile(done, []byte(mark), 0o644)
}
