package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/synth"
)

// killedRun is a run of the binary killed (SIGKILL) as soon as a line
// containing at appears on its standard output.
type killedRun struct {
	out    string // its whole standard output
	killed bool   // at was seen and the run killed there
	err    error  // the run's exit
}

// runKilledAt runs bin with args, kills it when at appears on its
// standard output (never, if at is empty) and returns what it printed.
func runKilledAt(t *testing.T, bin string, args []string, at string) killedRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no terminal: the batch form
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var r killedRun
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if at != "" && !r.killed && strings.Contains(sc.Text(), at) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			r.killed = true
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	r.err = cmd.Wait()
	r.out = out.String() + stderr.String()
	return r
}

// treeDigest is a digest of every path and file content under dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %v\n", rel, e.Type())
		if e.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// debris lists what killed runs left: hidden partial media in dir and
// stable work directories in work.
func debris(t *testing.T, dir, work string) []string {
	t.Helper()
	a, _ := filepath.Glob(filepath.Join(dir, ".*.partial-*"))
	b, _ := filepath.Glob(filepath.Join(work, "keyceremony-stable-*"))
	return append(a, b...)
}

// restoreTree copies the directory src to dst (soft devices: to undo the
// keys a killed bootstrap generated, as clearing the slots would).
func restoreTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// TestKillAtEachStage runs the real binary, bootstrap and then stable
// sign --batch with soft devices, and kills it (SIGKILL) at each stage
// its progress lines name, each as soon as the stage's line appears:
// after each kill there is nothing under the media's success name, no
// rejected medium, and the backup medium is unchanged; the next run of
// the same command removes the killed run's partial media and work
// directory, says so (debris: removed ...), and gets past the stage the
// previous run was killed in; the last completes and leaves no partial
// or work directory behind.
func TestKillAtEachStage(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	ack := "--network-ack=" + strings.Join(upInterfaces(t), ",")
	boot := softRehearsal(t, dir)
	if err := os.WriteFile(p("pins.txt"), []byte("1001 123456\n1002 123456\n1003 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	devs := []string{"--soft", p("1001"), "--soft", p("1002"), "--soft", p("1003"), "--soft-ca", p("ca"), "--pin-file", p("pins.txt")}
	bootArgs := append(boot, "--out", p("boot"), "--pin-file", p("pins.txt"), "--batch", ack)

	// The bootstrap, killed after its first key was generated and
	// written.
	for _, s := range []string{"1001", "1002", "1003"} {
		restoreTree(t, p(s), p("fresh", s))
	}
	r := runKilledAt(t, bin, bootArgs, "key generated and attested")
	if !r.killed {
		t.Fatalf("the bootstrap was not killed mid-run:\n%s", r.out)
	}
	if _, err := os.Stat(p("boot")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a killed bootstrap left %s", p("boot"))
	}
	if es, _ := os.ReadDir(p("backup")); len(es) != 0 {
		t.Fatalf("a killed bootstrap wrote to the backup medium: %v", es)
	}
	left := debris(t, dir, p("work"))
	if len(left) != 1 {
		t.Fatalf("a killed bootstrap left %q, want its partial media", left)
	}
	// The keys it generated are cleared (the devices as they were), and
	// the same command run again.
	for _, s := range []string{"1001", "1002", "1003"} {
		restoreTree(t, p("fresh", s), p(s))
	}
	r = runKilledAt(t, bin, bootArgs, "")
	if r.err != nil || !strings.Contains(r.out, "debris: removed "+left[0]+", left by process") {
		t.Fatalf("the bootstrap after a killed one: %v, removal of %s not said:\n%s", r.err, left[0], r.out)
	}
	if left := debris(t, dir, p("work")); len(left) != 0 {
		t.Fatalf("the bootstrap after a killed one left %q", left)
	}

	// An export large enough that every stage lasts a while.
	w, err := os.Create(p("export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(w, synth.Params{Seed: 9, Files: 30000, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	common := []string{"--export", p("export.jsonl"), "--published", p("boot"), "--root", p("boot", "metadata", "1.root.json"), "--backup", p("backup")}
	code, out, e := runCLI(append(append([]string{"stable", "diff"}, common...), "--format", "json")...)
	if code != 0 {
		t.Fatal(e)
	}
	var d struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("work"), 0o755); err != nil {
		t.Fatal(err)
	}
	media := p("media")
	sign := append(append(append([]string{"stable", "sign"}, common...), "--media", media, "--approve", d.Digest, "--work-dir", p("work"), "--batch", ack), devs...)
	backup := treeDigest(t, p("backup"))

	var prev []string // what the previous, killed, run left
	for _, stage := range []string{"reading the export", "signing the bins", "writing diff.txt", "writing diff.canonical", "reading back the media", ""} {
		name := stage
		if name == "" {
			name = "the last run"
		}
		at := ""
		if stage != "" {
			at = stage + ": started"
		}
		r = runKilledAt(t, bin, sign, at)
		for _, p := range prev {
			if !strings.Contains(r.out, "debris: removed "+p+", left by process") {
				t.Errorf("%s: the removal of %s, left by the run killed before, was not said:\n%s", name, p, r.out)
			}
		}
		if stage == "" {
			break
		}
		if !r.killed {
			t.Fatalf("%s: the run was not killed (%v):\n%s", name, r.err, r.out)
		}
		if strings.Contains(r.out, stage+": done") {
			t.Errorf("killed at %s, but the stage ended before the kill:\n%s", name, r.out)
		}
		if _, err := os.Stat(media); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("killed at %s: %s exists", name, media)
		}
		if rej, _ := filepath.Glob(media + ".rejected-*"); len(rej) != 0 {
			t.Fatalf("killed at %s: %q", name, rej)
		}
		if got := treeDigest(t, p("backup")); got != backup {
			t.Fatalf("killed at %s: the backup medium changed", name)
		}
		prev = debris(t, dir, p("work"))
		var media, work bool
		for _, p := range prev {
			media = media || strings.Contains(filepath.Base(p), ".media.partial-")
			work = work || strings.HasPrefix(filepath.Base(p), "keyceremony-stable-")
		}
		if !media || (!work && stage != "reading the export") {
			t.Fatalf("killed at %s: debris %q, want the partial media and the work directory", name, prev)
		}
		t.Logf("killed at %s: left %q", name, prev)
	}
	if r.err != nil || !strings.Contains(r.out, "stable v2 written to "+media+" and verified") {
		t.Fatalf("the run after the kills: %v\n%s", r.err, r.out)
	}
	if left := debris(t, dir, p("work")); len(left) != 0 {
		t.Errorf("the completed run left %q", left)
	}
	if _, err := os.Stat(p("backup", "state", "2.json")); err != nil {
		t.Errorf("the completed run recorded no state: %v", err)
	}
}
