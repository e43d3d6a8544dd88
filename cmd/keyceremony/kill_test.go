package main

import (
	"bufio"
	"bytes"
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

// killedRun is a run of the binary killed (SIGKILL) where a line
// containing at appears on its standard output.
type killedRun struct {
	out    string // its whole standard output
	killed bool   // at was seen and the run killed there
	err    error  // the run's exit
}

// runKilledAt runs bin with args, kills it where at appears on its
// standard output (never, if at is empty) and returns what it printed.
// To kill at a line, bin must be built with the killpoint tag
// (buildBinaryTags): it stops itself right after printing the line, and
// is killed stopped, so the kill lands exactly there however loaded the
// machine (a kill sent on reading the line landed, under load, after the
// next key was generated or the stage had ended).
func runKilledAt(t *testing.T, bin string, args []string, at string) killedRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no terminal: the batch form
	if at != "" {
		cmd.Env = append(os.Environ(), "KEYCEREMONY_KILLPOINT="+at)
	}
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
			waitStopped(t, cmd.Process.Pid)
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

// waitStopped waits until process pid is stopped (state T).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(screenWait); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop at its kill point in %v (built without the killpoint tag?)", pid, screenWait)
		}
	}
}

// fsizeLimit is the file size limit of the write-failure run: above the
// journal, below the new ledger of the test's export (its first file in
// the work directory, after the media's working directory and journal
// were made).
const fsizeLimit = 3 << 20

// lineWith is the first line of out containing s.
func lineWith(out, s string) string {
	for l := range strings.Lines(out) {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
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

// TestKillAtEachStage runs the real binary, bootstrap and then stable
// sign --batch with soft devices, and kills it (SIGKILL) at each stage
// its progress lines name, each as soon as the stage's line appears. A
// killed bootstrap's rerun resumes from its journal (the keys already
// generated are read back, not generated again) and its media verify.
// A stable signing is first killed and rerun on a changed export (the
// rerun names the export and starts over), then run with a write that
// fails half-way (a file size limit): it fails naming the file and
// leaves nothing. Then, for stable sign:
// after each kill there is nothing under the media's success name, no
// rejected medium, and the backup medium is unchanged; the next run of
// the same command removes the killed run's partial media and work
// directory, says so (debris: removed ...), and gets past the stage the
// previous run was killed in; the last completes and leaves no partial
// or work directory behind.
func TestKillAtEachStage(t *testing.T) {
	bin := buildBinaryTags(t, "killpoint")
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
	// attested, then after every key was and root v1 was signed: each
	// rerun of the same command, on the devices as the killed run left
	// them, resumes from the killed run's journal (its working
	// directory) and does not generate those keys again.
	var prevDebris []string
	resumed := 0
	for _, at := range []string{"key generated and attested", "root v1 signed", ""} {
		r := runKilledAt(t, bin, bootArgs, at)
		for _, d := range prevDebris {
			if !strings.Contains(r.out, "debris: removed "+d+", left by process") {
				t.Errorf("the bootstrap after the one killed at %q: the removal of %s not said:\n%s", at, d, r.out)
			}
		}
		if resumed > 0 {
			want := fmt.Sprintf("it generated %d of the keys", resumed)
			if !strings.Contains(r.out, "resume: found the journal of an interrupted run") || !strings.Contains(r.out, want) {
				t.Fatalf("the bootstrap after a killed one did not resume (%q):\n%s", want, r.out)
			}
			if n := strings.Count(r.out, "was generated by the interrupted run: read back and attested again"); n != resumed {
				t.Errorf("%d keys read back, want %d:\n%s", n, resumed, r.out)
			}
		}
		if at == "" {
			if r.err != nil {
				t.Fatalf("the last bootstrap: %v\n%s", r.err, r.out)
			}
			// Killed after root v1 was signed, the run before had
			// generated every key: none is generated again.
			if n := strings.Count(r.out, "     generating the "); n != 0 {
				t.Errorf("the last bootstrap generated %d keys, want none:\n%s", n, r.out)
			}
			break
		}
		if !r.killed {
			t.Fatalf("the bootstrap was not killed at %q:\n%s", at, r.out)
		}
		if _, err := os.Stat(p("boot")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a killed bootstrap left %s", p("boot"))
		}
		if es, _ := os.ReadDir(p("backup")); len(es) != 0 {
			t.Fatalf("a killed bootstrap wrote to the backup medium: %v", es)
		}
		if prevDebris = debris(t, dir, p("work")); len(prevDebris) != 1 {
			t.Fatalf("a killed bootstrap left %q, want its partial media", prevDebris)
		}
		// What the journal of the killed run holds: every key it
		// recorded before the kill.
		resumed = strings.Count(r.out, "key generated and attested")
	}
	if left := debris(t, dir, p("work")); len(left) != 0 {
		t.Fatalf("the resumed bootstrap left %q", left)
	}
	if code, _, e := runCLI("verify", "--root", p("boot", "metadata", "1.root.json"), "--soft-ca", p("ca"), p("boot")); code != 0 {
		t.Fatalf("the resumed bootstrap's media do not verify: %s", e)
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

	// A run killed after the approval, then the export changed: the
	// rerun names the export and starts over (and, in the batch form,
	// refuses the approval given for the old diff).
	r := runKilledAt(t, bin, sign, "signing the bins: started")
	if !r.killed {
		t.Fatalf("the run was not killed while signing:\n%s", r.out)
	}
	w, err = os.Create(p("export2.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(w, synth.Params{Seed: 10, Files: 300, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	swap := func() {
		for _, mv := range [][2]string{{"export.jsonl", "export.tmp"}, {"export2.jsonl", "export.jsonl"}, {"export.tmp", "export2.jsonl"}} {
			if err := os.Rename(p(mv[0]), p(mv[1])); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap()
	r = runKilledAt(t, bin, sign, "")
	if r.err == nil || !strings.Contains(r.out, "resume: starting over: the export "+p("export.jsonl")+" changed since the interrupted run (export_sha256 now ") {
		t.Fatalf("a changed export after a killed run: %v, the export not named:\n%s", r.err, r.out)
	}
	swap()

	// A write that fails half-way, as on a full medium: the file size
	// limit (RLIMIT_FSIZE; Go ignores SIGXFSZ, so the write returns
	// EFBIG) lets the small files through and fails the first large one.
	// The error names the file; nothing is left under the media's name,
	// no partial media or work directory, the backup medium unchanged;
	// the runs below complete.
	r = runKilledAt(t, "prlimit", append([]string{"--fsize=" + fmt.Sprint(fsizeLimit), bin}, sign...), "")
	if r.err == nil || !strings.Contains(r.out, "keyceremony: error: writing the ledger: write "+p("work")) || !strings.Contains(r.out, "file too large") {
		t.Fatalf("a write failure half-way: %v, not said:\n%s", r.err, r.out)
	}
	t.Logf("the write failure: %s", lineWith(r.out, "keyceremony: error: "))
	if _, err := os.Stat(media); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed write left %s", media)
	}
	if left := debris(t, dir, p("work")); len(left) != 0 {
		t.Fatalf("a failed write left %q", left)
	}
	if got := treeDigest(t, p("backup")); got != backup {
		t.Fatal("a failed write changed the backup medium")
	}

	var prev []string // what the previous, killed, run left
	for i, stage := range []string{"reading the export", "signing the bins", "writing diff.txt", "writing diff.canonical", "reading back the media", ""} {
		name := stage
		if name == "" {
			name = "the last run"
		}
		at := ""
		if stage != "" {
			at = stage + ": started"
		}
		r = runKilledAt(t, bin, sign, at)
		// Each run after a kill resumes from the killed run's journal:
		// the first had not read the export yet; every later one had
		// recorded the inputs and the approval, all unchanged.
		switch {
		case i == 1 && !strings.Contains(r.out, "resume: starting over: the interrupted run ended before its pass over the export"):
			t.Errorf("%s, after a run killed reading the export: the resume not said:\n%s", name, r.out)
		case i > 1 && !strings.Contains(r.out, "resume: every input digest is unchanged and the room approved diff "+d.Digest):
			t.Errorf("%s: the resumed approval not said:\n%s", name, r.out)
		}
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
