package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/synth"
)

// reviewSetup makes a bootstrap and a synthetic export and returns the
// common arguments of stable review and a project of the export.
func reviewSetup(t *testing.T, dir string, files int64) ([]string, string) {
	t.Helper()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	boot := softRehearsal(t, dir)
	if err := os.WriteFile(p("pins.txt"), []byte("1001 123456\n1002 123456\n1003 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// In the test process no interface is up (TestMain).
	if code, _, e := runCLI(append(boot, "--out", p("boot"), "--pin-file", p("pins.txt"), "--batch")...); code != 0 {
		t.Fatal(e)
	}
	w, err := os.Create(p("export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(w, synth.Params{Seed: 2, Files: files, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	common := []string{"stable", "review", "--export", p("export.jsonl"), "--published", p("boot"), "--root", p("boot", "metadata", "1.root.json"), "--backup", p("backup")}
	code, out, e := runCLI(append(common, "--format", "json")...)
	if code != 0 {
		t.Fatal(e)
	}
	var s struct {
		Largest []struct{ Project string }
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Largest) == 0 {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	return common, s.Largest[0].Project
}

// TestReviewPlain: off a terminal the review prints plainly, the summary
// first; a project, a search and the whole diff in text and JSON; an
// unknown project and two choices at once are refused.
func TestReviewPlain(t *testing.T) {
	common, project := reviewSetup(t, t.TempDir(), 2000)
	code, out, e := runCLI(common...)
	if code != 0 || !strings.Contains(out, "stable diff for pypi") || !strings.Contains(out, "backup medium: newest state") || strings.Contains(out, "review (project") {
		t.Fatalf("summary: %d %s\n%s", code, e, out)
	}
	code, out, e = runCLI(append(common, "--project", strings.ToUpper(project))...)
	if code != 0 || !strings.Contains(out, "project "+project+": 0 stable files before,") || !strings.Contains(out, "added") {
		t.Fatalf("--project: %d %s\n%s", code, e, out)
	}
	code, out, e = runCLI(append(common, "--project", project, "--format", "json")...)
	var pj struct {
		Project string
		Entries []struct{ Category, Path string }
	}
	if err := json.Unmarshal([]byte(out), &pj); code != 0 || err != nil || pj.Project != project || len(pj.Entries) == 0 {
		t.Fatalf("--project --format json: %d %v %s\n%s", code, err, e, out)
	}
	code, out, _ = runCLI(append(common, "--search", project)...)
	if code != 0 || !strings.Contains(out, "projects matching \""+project+"\":") || !strings.Contains(out, pj.Entries[0].Path) {
		t.Fatalf("--search:\n%s", out)
	}
	code, out, _ = runCLI(append(common, "--all")...)
	if code != 0 || !strings.Contains(out, "\nentries (every one but the unchanged), by project, version, path\n") {
		t.Fatalf("--all:\n%.2000s", out)
	}
	code, _, e = runCLI(append(common, "--project", "no-such-project-here")...)
	if code != 1 || !strings.Contains(e, `project "no-such-project-here" is not in this diff`) || !strings.Contains(e, "hint: search for part of its name") {
		t.Fatalf("unknown project: %d %s", code, e)
	}
	code, _, e = runCLI(append(common, "--project", project, "--all")...)
	if code != 1 || !strings.Contains(e, "exclude each other") {
		t.Fatalf("two choices: %d %s", code, e)
	}

	// The pass stable diff --backup keeps: --pass browses it, by digest
	// or directory, shows what a pass of its own shows, and leaves it.
	_, fresh, _ := runCLI(append(common, "--project", project)...)
	work := t.TempDir()
	code, _, e = runCLI(append([]string{"stable", "diff"}, append(common[2:], "--work-dir", work)...)...)
	m := regexp.MustCompile(`keyceremony-reviewed-([0-9a-f]{64})`).FindStringSubmatch(e)
	if code != 0 || m == nil {
		t.Fatalf("stable diff: %d %s", code, e)
	}
	kept := filepath.Join(work, m[0])
	for _, pass := range []string{m[1], kept} {
		code, out, e = runCLI(append(common, "--work-dir", work, "--pass", pass, "--project", project)...)
		if code != 0 || out != fresh || !strings.Contains(e, "reviewing the kept pass "+kept) {
			t.Fatalf("--pass %s: %d %s\n%s\nwant\n%s", pass, code, e, out, fresh)
		}
	}
	if _, err := os.Stat(filepath.Join(kept, "pass.json")); err != nil {
		t.Fatalf("the kept pass is gone after the review: %v", err)
	}
	// No kept pass for a digest: said, and the pass is made again.
	code, out, e = runCLI(append(common, "--work-dir", work, "--pass", strings.Repeat("0", 64), "--project", project)...)
	if code != 0 || out != fresh || !strings.Contains(e, "not reusing the reviewed pass: no reviewed pass") {
		t.Fatalf("--pass without a kept pass: %d %s", code, e)
	}
	for _, bad := range []string{"xyz", filepath.Join(t.TempDir(), m[0])} {
		if code, _, e = runCLI(append(common, "--work-dir", work, "--pass", bad)...); code != 1 || !strings.Contains(e, "--pass") {
			t.Fatalf("--pass %s: %d %s", bad, code, e)
		}
	}
	// Its review entries edited on the disk (a byte appended): refused,
	// nothing shown.
	f, err := os.OpenFile(filepath.Join(kept, "review-entries"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	f.Close()
	code, out, e = runCLI(append(common, "--work-dir", work, "--pass", m[1])...)
	if code != 1 || out != "" || !strings.Contains(e, "the kept pass's review") || !strings.Contains(e, "1 bytes after the last project's") {
		t.Fatalf("edited review entries: %d %s\n%s", code, e, out)
	}
}

// TestReviewOnTerminal runs the review in a real terminal (tmux), as the
// room would: the summary, the prompt, a project's drill-down, and the
// whole diff in the pager, paged forward and back and quit; then quit.
func TestReviewOnTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed: run scripts/install-test-deps (%v)", err)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	common, project := reviewSetup(t, dir, 3000)
	sock := filepath.Join(dir, "tmux.sock")
	tmux := func(a ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, a...)...).CombinedOutput()
		return string(out), err
	}
	shell := fmt.Sprintf("%s %s; echo EXIT=$?; sleep 60", bin, strings.Join(common, " "))
	if out, err := tmux("new-session", "-d", "-x", "160", "-y", "40", shell); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	defer tmux("kill-server")
	screen := func() string {
		out, _ := tmux("capture-pane", "-p")
		return out
	}
	waitFor := func(what string) string {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if s := screen(); strings.Contains(s, what) {
				return s
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("waited for %q; screen:\n%s", what, screen())
		return ""
	}
	keys := func(k ...string) {
		t.Helper()
		if out, err := tmux(append([]string{"send-keys"}, k...)...); err != nil {
			t.Fatalf("send-keys: %v %s", err, out)
		}
	}
	// The summary is longer than 40 lines: it comes in the pager.
	s := waitFor(" lines 1-39 of ")
	if !strings.Contains(s, "stable diff for pypi") {
		t.Fatalf("the pager does not start with the summary:\n%s", s)
	}
	keys("q")
	s = waitFor("review (project NAME, search TEXT, all, summary, decide, quit)>")
	if strings.Contains(s, " lines 1-39 of ") {
		t.Fatalf("the pager's screen is left after q:\n%s", s)
	}
	keys("project "+project, "Enter")
	s = waitFor("project " + project + ": ")
	if !strings.Contains(s, "uploaded (claimed)") {
		t.Fatalf("drill-down:\n%s", s)
	}
	if !strings.Contains(s, " lines 1-39 of ") { // the largest project is paged
		t.Fatalf("drill-down not paged:\n%s", s)
	}
	keys("q")
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(screen(), " lines 1-39 of "); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the pager did not quit:\n%s", screen())
		}
	}
	keys("all", "Enter")
	s = waitFor(" lines 1-39 of ")
	total := s[strings.Index(s, " lines 1-39 of ")+len(" lines 1-39 of "):]
	total = total[:strings.IndexByte(total, ' ')]
	keys("Space")
	waitFor(" lines 40-78 of " + total + " ")
	keys("b")
	waitFor(" lines 1-39 of " + total + " ")
	keys("j")
	waitFor(" lines 2-40 of " + total + " ")
	keys("G")
	s = waitFor(" of " + total + " ")
	if !strings.Contains(s, "-"+total+" of "+total+" ") {
		t.Fatalf("G does not show the end:\n%s", s)
	}
	keys("q")
	waitFor("quit)>")
	keys("quit", "Enter")
	s = waitFor("EXIT=")
	if !strings.Contains(s, "EXIT=0") {
		t.Fatalf("review did not end well:\n%s", s)
	}
}

// TestReviewDecideOnTerminal: in the review's prompt, decide shows the
// red flag the diff raises (the added count above the policy's
// confirm_above.added), demands a decision by name and a reason, writes
// a new decisions file in the work directory and shows the digest with
// it, which stable diff --decisions gives too.
func TestReviewDecideOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	common, _ := reviewSetup(t, dir, 300)
	pol, work := filepath.Join(dir, "policy.json"), filepath.Join(dir, "work")
	if err := os.WriteFile(pol, []byte(`{"confirm_above": {"added": 10, "removed": 10000, "changed": 0}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append(common, "--policy", pol, "--work-dir", work)
	tm := startTmux(t, dir, fmt.Sprintf("%s %s; echo EXIT=$?; sleep 60", bin, strings.Join(args, " ")))
	// quitPager quits the pager, if it shows a page, until the prompt is
	// the last line.
	quitPager := func() {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s := strings.TrimRight(tm.screen(), "\n ")
			last := s[strings.LastIndexByte(s, '\n')+1:]
			switch {
			case strings.HasSuffix(last, "quit)>"):
				return
			case strings.Contains(last, " lines "):
				tm.send("q")
				time.Sleep(200 * time.Millisecond)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no prompt; screen:\n%s", s)
			}
		}
	}
	quitPager()
	tm.send("decide", "Enter")
	tm.waitFor("decision for red flag 1 of 1 (confirm; or abort): ", 1)
	tm.send("keep-old", "Enter")
	tm.waitFor(`REFUSED: "keep-old" does not settle this flag: type one of confirm.`, 1)
	tm.send("confirm", "Enter")
	tm.waitFor("(in words, for the signed diff): ", 1)
	tm.send("the first ceremony adds every old file", "Enter")
	quitPager() // the summary with the decision, paged
	tm.waitFor(" decisions written to ", 1)
	s := tm.waitFor("sign it with: --decisions ", 1)
	m := regexp.MustCompile(`the diff with these decisions has digest ([0-9a-f]{64})\nsign it with: --decisions (\S+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no digest and file:\n%s", s)
	}
	for _, want := range []string{"== Red flag 1 of 1 · limit ", "count added", "confirm_above.added is 10"} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	tm.send("quit", "Enter")
	if s := tm.waitFor("EXIT=", 1); !strings.Contains(s, "EXIT=0") {
		t.Fatalf("review did not end well:\n%s", s)
	}
	if filepath.Dir(m[2]) != work || !strings.Contains(mustReadFile(t, m[2]), `"limit":"added","count":`) {
		t.Fatalf("decisions file %s:\n%s", m[2], mustReadFile(t, m[2]))
	}
	diffArgs := append([]string{"stable", "diff"}, common[2:]...)
	code, out, e := runCLI(append(diffArgs, "--policy", pol, "--decisions", m[2], "--format", "json")...)
	var j struct{ Digest string }
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || j.Digest != m[1] {
		t.Fatalf("stable diff --decisions: %d %v %s, digest %q, the review showed %s", code, err, e, j.Digest, m[1])
	}
}
