package main

import (
	"encoding/json"
	"fmt"
	"os"
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

// pagerStatus is the pager's status line.
var pagerStatus = regexp.MustCompile(` lines \d+-\d+ of \d+ `)

// TestReviewOnTerminal runs the review in a real terminal (tmux), as the
// room would: the summary, the prompt, a project's drill-down, and the
// whole diff in the pager, paged forward and back and quit; then quit.
// Keys go in as soon as the screen shows the pager's status line (it is
// drawn in raw mode) or the prompt (written once line mode is back).
func TestReviewOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	common, project := reviewSetup(t, dir, 3000)
	tm := newTmuxSized(t, dir, "tmux.sock", 160, 40, fmt.Sprintf("%s %s; echo EXIT=$?; sleep 60", bin, strings.Join(common, " ")))
	const prompt = "review (project NAME, search TEXT, all, summary, decide, quit)>"
	// atPrompt waits for the prompt on the last line: the pager's screen
	// must be gone by then.
	atPrompt := func() {
		t.Helper()
		s := tm.until("the review's prompt", tm.visible, func(s string) bool { return strings.HasSuffix(lastLine(s), prompt) })
		if pagerStatus.MatchString(s) {
			t.Fatalf("the pager's screen is left after q:\n%s", s)
		}
	}
	// The summary is longer than 40 lines: it comes in the pager.
	s := tm.waitVisible(" lines 1-39 of ")
	if !strings.Contains(s, "stable diff for pypi") {
		t.Fatalf("the pager does not start with the summary:\n%s", s)
	}
	tm.send("q")
	atPrompt()
	tm.send("project "+project, "Enter")
	s = tm.waitVisible("project " + project + ": ")
	if !strings.Contains(s, "uploaded (claimed)") {
		t.Fatalf("drill-down:\n%s", s)
	}
	if !strings.Contains(s, " lines 1-39 of ") { // the largest project is paged
		t.Fatalf("drill-down not paged:\n%s", s)
	}
	tm.send("q")
	atPrompt()
	tm.send("all", "Enter")
	s = tm.waitVisible(" lines 1-39 of ")
	total := s[strings.Index(s, " lines 1-39 of ")+len(" lines 1-39 of "):]
	total = total[:strings.IndexByte(total, ' ')]
	tm.send("Space")
	tm.waitVisible(" lines 40-78 of " + total + " ")
	tm.send("b")
	tm.waitVisible(" lines 1-39 of " + total + " ")
	tm.send("j")
	tm.waitVisible(" lines 2-40 of " + total + " ")
	tm.send("G") // the end
	tm.waitVisible("-" + total + " of " + total + " ")
	tm.send("q")
	atPrompt()
	tm.send("quit", "Enter")
	s = tm.waitVisible("EXIT=")
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
	// the last line. After a q it waits for the page to go (or change)
	// before it looks again, so that one page gets one q.
	quitPager := func() {
		t.Helper()
		tm.until("the review's prompt", tm.screen, func(s string) bool {
			last := lastLine(s)
			switch {
			case strings.HasSuffix(last, "quit)>"):
				return true
			case strings.Contains(last, " lines "):
				tm.send("q")
				tm.until("the pager to quit", tm.screen, func(now string) bool { return now != s })
			}
			return false
		})
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
