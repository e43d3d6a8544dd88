package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/synth"
)

var pidLine = regexp.MustCompile(`(?m)^PID=(\d+)$`)

// TestGuidedStableResumedOnTerminal: a guided stable signing in a real
// terminal (tmux) with soft devices is killed (SIGKILL) after the room
// approved the diff and the first keyholder signed. The same command, run
// again in a terminal, says it found the killed run's journal, that every
// input digest is unchanged and when the room approved the diff, what the
// journal records as done (the last step begun, the first keyholder's
// signatures, which are not kept), and does
// not present the review again (the diff's text is not shown; its steps
// are recorded as done in the interrupted run); the keyholders still see
// what they sign and sign again; the run completes and its media verify.
func TestGuidedStableResumedOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	ack := "--network-ack=" + strings.Join(upInterfaces(t), ",")
	boot := softRehearsal(t, dir)
	if err := os.WriteFile(p("pins.txt"), []byte("1001 123456\n1002 123456\n1003 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The bootstrap in its batch form: only the stable signing is under
	// test here.
	if r := runKilledAt(t, bin, append(boot, "--out", p("boot"), "--pin-file", p("pins.txt"), "--batch", ack), ""); r.err != nil {
		t.Fatalf("bootstrap: %v\n%s", r.err, r.out)
	}
	f, err := os.Create(p("export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(f, synth.Params{Seed: 1, Files: 300, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	media := p("media")
	stable := []string{bin, "stable", "sign", "--config", p("bootstrap.json"), "--export", p("export.jsonl"), "--published", p("boot"),
		"--root", p("boot", "metadata", "1.root.json"), "--media", media, "--backup", p("backup"), "--soft-ca", p("ca"),
		"--soft", p("1001"), "--soft", p("1002"), "--soft", p("1003")}
	// The shell says the process id, then becomes keyceremony.
	command := fmt.Sprintf("sh -c 'echo PID=$$; exec %s'; echo EXIT=$?; sleep 120", strings.Join(stable, " "))

	tm := newTmux(t, dir, "killed.sock", command)
	killed := false
	tm.onPrompt = func(prompt, s string) {
		// The second keyholder's PIN is asked for: the review is
		// approved and the first keyholder signed.
		if killed || prompt != "PIN for the YubiKey with serial " || strings.Count(s, "verified against its public key") == 0 {
			return
		}
		m := pidLine.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("no PID on the screen:\n%s", s)
		}
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = true
		tm.waitFor("EXIT=137", 1)
	}
	s := guidedAnswers(t, tm, nil, nil)
	if !killed || !strings.Contains(s, "EXIT=137") {
		t.Fatalf("the signing was not killed after the first keyholder signed:\n%s", s)
	}
	for _, want := range []string{"stable diff for pypi: stable v2", "diff digest of stable v2 (read it aloud as PGP words):"} {
		if !strings.Contains(s, want) {
			t.Fatalf("the killed run did not show the review (%q):\n%s", want, s)
		}
	}
	if _, err := os.Stat(media); !os.IsNotExist(err) {
		t.Fatalf("the killed run left %s (%v)", media, err)
	}
	partial, _ := filepath.Glob(p(".media.partial-*"))
	if len(partial) != 1 {
		t.Fatalf("the killed run left %q, want its working directory", partial)
	}
	es := transcriptEntries(t, filepath.Join(partial[0], "transcript.jsonl"))
	var approved string
	for _, e := range es {
		if e.Step == "diff approved" {
			approved = e.Time
		}
	}
	if approved == "" {
		t.Fatalf("the killed run's journal records no approval: %v", es)
	}
	digest := regexp.MustCompile(`"diff_digest":"([0-9a-f]{64})"`).FindStringSubmatch(mustReadFile(t, filepath.Join(partial[0], "transcript.jsonl")))
	if digest == nil {
		t.Fatal("the killed run's journal records no diff digest")
	}

	// The same command again, in a new terminal.
	tm2 := newTmux(t, dir, "rerun.sock", command)
	s = guidedAnswers(t, tm2, nil, nil)
	if !strings.Contains(s, "EXIT=0") {
		t.Fatalf("the resumed signing failed:\n%s", s)
	}
	for _, want := range []string{
		"resume: found the journal of an interrupted run, " + filepath.Join(partial[0], "transcript.jsonl"),
		"resume: every input digest is unchanged and the room approved diff " + digest[1] + " at " + approved + ": the review is not repeated",
		"reviewed in the interrupted run; not repeated.",
		"diff digest of stable v2, approved in the interrupted run (unchanged):",
		"debris: removed " + partial[0],
		"resume:   the last step it began: step 13: sign/stable/1002 at ",
		"resume:   signatures it made and verified, by devices [1001]: they are not kept; each keyholder signs again",
		"You sign: stable v2 of pypi",
		"stable v2 written to " + media + " and verified",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the resumed run's screen lacks %q", want)
		}
	}
	for _, not := range []string{"stable diff for pypi: stable v2", "(read it aloud as PGP words)", "123456", "654321"} {
		if strings.Contains(s, not) {
			t.Errorf("the resumed run's screen shows %q", not)
		}
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}
	got := map[string]int{}
	for _, e := range transcriptEntries(t, filepath.Join(media, "transcript.jsonl")) {
		got[e.Step]++
		if e.Detail["skipped"] == "reviewed in the interrupted run" {
			got["skipped"]++
		}
	}
	if got["review resumed"] != 1 || got["skipped"] == 0 || got["diff approved"] != 1 {
		t.Errorf("the resumed run's transcript: %d review resumed, %d steps skipped, %d diff approved; want 1, at least 1, 1", got["review resumed"], got["skipped"], got["diff approved"])
	}
	checkTranscriptDigest(t, filepath.Join(media, "transcript.jsonl"), p("backup"))
	if code, out, e := runCLI("verify", "--root", p("boot", "metadata", "1.root.json"), "--previous", p("boot"), "--soft-ca", p("ca"), media); code != 0 {
		t.Fatalf("verify of the resumed run's media: exit %d\n%s\n%s", code, out, e)
	}
}
