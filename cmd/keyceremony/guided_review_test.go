package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// The prompts of the guided review of red flags, beside the guided
// ceremony's.
var reviewPrompts = []string{
	"press Enter when ready (or type abort): ",
	"separated by commas (or abort): ",
	"Type yes if the clock agrees",
	"check words as read aloud: ",
	"; or abort): ",                     // decision for red flag N of M (…; or abort):
	"(in words, for the signed diff): ", // reason for CHOICE
	"EXIT=",
}

var (
	flagHead  = regexp.MustCompile(`== Red flag (\d+) of (\d+) · ([a-z-]+) `)
	digestRow = regexp.MustCompile(`(?m)^  digest ([0-9a-f]{64})$`)
)

// reviewAnswers drives a guided stable signing whose PINs come from a
// file: each step confirmed, the interfaces acknowledged, the clock
// confirmed; each red flag answered by choose (its kind), after a choice
// that settles nothing and an empty reason, both refused; the first
// check words typed wrong, then right. It returns the final screen and
// the kinds of the flags decided, in order.
func reviewAnswers(t *testing.T, tm *tmuxTerm, choose func(kind string) string) (string, []string) {
	t.Helper()
	wrongWords, wrongChoice, emptyReason := true, true, true
	var kinds []string
	for answered := 0; ; answered++ {
		p, s := tm.promptAfter(reviewPrompts, answered)
		switch p {
		case "EXIT=":
			return s, kinds
		case "press Enter when ready (or type abort): ":
			tm.send("Enter")
		case "separated by commas (or abort): ":
			tm.send(strings.Join(upInterfaces(t), ","), "Enter")
		case "Type yes if the clock agrees":
			tm.send("yes", "Enter")
		case "; or abort): ":
			m := flagHead.FindAllStringSubmatch(s, -1)
			if m == nil {
				t.Fatalf("a flag's prompt without its screen:\n%s", s)
			}
			kind := m[len(m)-1][3]
			if wrongChoice {
				wrongChoice = false
				tm.send("yes", "Enter")
				continue
			}
			kinds = append(kinds, kind)
			tm.send(choose(kind), "Enter")
		case "(in words, for the signed diff): ":
			if emptyReason {
				emptyReason = false
				tm.send("Enter")
				continue
			}
			tm.send(fmt.Sprintf("decided in the room, flag %d", len(kinds)), "Enter")
		case "check words as read aloud: ":
			w := checkWords(t, s)
			if wrongWords {
				wrongWords = false
				tm.send("acme adrift "+w, "Enter")
				continue
			}
			tm.send(w, "Enter")
		}
	}
}

// sampleExport writes the real PyPI sample as an export generated at gen.
func sampleExport(t *testing.T, path string, gen time.Time) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "stableset", "export", "testdata", "pypi-files-sample.jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := export.ReadSample(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := export.NewWriter(out, export.Header{Repository: "pypi", Generated: gen})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		if err := w.Write(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// signedDecisions reads the decisions a medium's signed diff names, as
// "kind flag subject count decision reason" (the payload, undecoded by
// keyceremony).
func signedDecisions(t *testing.T, media string) []string {
	t.Helper()
	var env struct{ Payload string }
	if err := json.Unmarshal([]byte(mustReadFile(t, filepath.Join(media, "signed-diff.json"))), &env); err != nil {
		t.Fatal(err)
	}
	pb, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Decisions []struct {
			Kind, Flag, Subject, Decision, Reason string
			Count                                 int64
		}
	}
	if err := json.Unmarshal(pb, &p); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range p.Decisions {
		out = append(out, fmt.Sprintf("%s %s %s %d %s %s", d.Kind, d.Flag, d.Subject, d.Count, d.Decision, d.Reason))
	}
	return out
}

// TestGuidedReviewOnTerminal runs two guided stable signings in a real
// terminal (tmux), as the room would. The first, over the real PyPI
// sample with confirm_above.added below its count, shows the limit flag
// and demands its decision. The second, a synthetic next period with a
// changed file, a backdated file, removals above confirm_above.removed and
// one of each flag from what the export shows (a file added to a release
// with stable files, a project that loses most of its stable files, a
// file named as another project, a stable file now yanked), shows each
// flag on its own screen with its facts, in kind order; a choice that
// settles nothing and an empty reason are refused; the changed file and
// the added one are dropped, which changes the digest the keyholders
// approve; wrong check words are refused. The signed diff and decisions.jsonl name each
// decision with its reason.
func TestGuidedReviewOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	boot := softRehearsal(t, dir)
	if err := os.WriteFile(p("pins.txt"), []byte("1001 123456\n1002 123456\n1003 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, e := runCLI(append(boot, "--out", p("boot"), "--pin-file", p("pins.txt"), "--batch")...); code != 0 {
		t.Fatal(e)
	}
	if err := os.WriteFile(p("policy.json"), []byte(`{"confirm_above": {"added": 5000, "removed": 2, "changed": 0}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	gen1 := time.Now().UTC().Truncate(time.Second).Add(-91 * 24 * time.Hour)
	sampleExport(t, p("export1.jsonl"), gen1)
	sign := func(n int, export, published string) []string {
		a := []string{bin, "stable", "sign", "--config", p("bootstrap.json"), "--export", export, "--published", published,
			"--root", p("boot", "metadata", "1.root.json"), "--policy", p("policy.json"), "--media", p(fmt.Sprintf("media%d", n)),
			"--backup", p("backup"), "--soft-ca", p("ca"), "--pin-file", p("pins.txt")}
		for _, s := range []string{"1001", "1002", "1003"} {
			a = append(a, "--soft", p(s))
		}
		return a
	}
	run := func(n int, args []string, choose func(string) string) (string, []string) {
		t.Helper()
		tm := &tmuxTerm{t: t, sock: p(fmt.Sprintf("tmux%d.sock", n))}
		if out, err := tm.run("start-server", ";", "set-option", "-g", "history-limit", "100000", ";",
			"new-session", "-d", "-x", "200", "-y", "50", "-c", dir, strings.Join(args, " ")+"; echo EXIT=$?; sleep 120"); err != nil {
			t.Fatalf("tmux: %v %s", err, out)
		}
		t.Cleanup(func() { tm.run("kill-server") })
		s, kinds := reviewAnswers(t, tm, choose)
		if !strings.Contains(s, "EXIT=0") {
			t.Fatalf("guided stable signing %d failed:\n%s", n, s)
		}
		return s, kinds
	}
	confirm := func(string) string { return "confirm" }

	// The real sample: the first ceremony adds more than 5000 files.
	s, kinds := run(1, sign(1, p("export1.jsonl"), p("boot")), confirm)
	if strings.Join(kinds, " ") != "limit" {
		t.Errorf("first ceremony: flags decided %v, want the limit", kinds)
	}
	for _, want := range []string{
		"1 red flags have no decision",
		"== Red flag 1 of 1 · limit ", "count added", "confirm_above.added is 5000",
		`REFUSED: "yes" does not settle this flag: type one of confirm.`,
		"REFUSED: the reason: bad value: empty: say why.",
		"1 decisions made; the export is read again with them.",
		"decided confirm because: decided in the room, flag 1",
		"REFUSED: the check words typed do not match",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("first ceremony: the screen lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}

	// The next period, published as the repository would.
	for _, c := range [][2]string{{p("boot", "metadata"), p("pub", "metadata")}, {p("media1", "stable", "metadata"), p("pub", "metadata")}, {p("media1", "stable", "ledger"), p("pub", "ledger")}} {
		if err := os.CopyFS(c[1], os.DirFS(c[0])); err != nil {
			t.Fatal(err)
		}
	}
	in, err := os.Open(p("export1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.Create(p("export2.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	inj, err := synth.Next(in, w, synth.NextParams{Seed: 7, NewFiles: 40, Deletions: 8, ChangedHash: 1, Backdated: 1,
		AddedToStable: 1, ProjectLoss: 1, NameCollision: 1, Yanked: 1})
	in.Close()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, kinds = run(2, sign(2, p("export2.jsonl"), p("pub")), func(kind string) string {
		if kind == "changed" || kind == "added-to-stable-release" {
			return "drop"
		}
		return "confirm"
	})
	var removed int
	if m := regexp.MustCompile(`count +(\d+) files removed`).FindStringSubmatch(s); m != nil {
		fmt.Sscan(m[1], &removed)
	}
	if removed <= 2 {
		t.Errorf("removed %d files, not above confirm_above.removed 2", removed)
	}
	got := strings.Join(kinds, " ")
	if want := "added-to-stable-release backdated changed limit name-collision project-loss yanked-stable"; got != want {
		t.Errorf("second ceremony: flags decided %q, want %q", got, want)
	}
	for _, want := range []string{
		"== Red flag 2 of 7 · backdated ", "path " + inj.Backdated[0], "upload time claimed", "which did not list it", "why held",
		"== Red flag 3 of 7 · changed ", "path " + inj.Changed[0], "stable entry", "listed now", "drop        the path leaves the stable set",
		"== Red flag 4 of 7 · limit ", "count removed", "confirm_above.removed is 2",
		"decided: changed " + inj.Changed[0] + ": drop, because decided in the room, flag 3",
		// The flags from what the export shows, each with its facts.
		"== Red flag 1 of 7 · added-to-stable-release ", "path " + inj.AddedToStable[0], "the release had files in the stable set at the previous ceremony",
		`REFUSED: "yes" does not settle this flag: type one of confirm, drop.`,
		"== Red flag 5 of 7 · name-collision ", "path " + inj.NameCollision[0], "listed under", "names project",
		"== Red flag 6 of 7 · project-loss ", "project " + inj.ProjectLoss[0], "stable files before", "above red_flags.project_loss_percent 50%",
		"== Red flag 7 of 7 · yanked-stable ", "path " + inj.Yanked[0], "yanked reason", "not yanked at the previous ceremony",
		"REFUSED: the check words typed do not match",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("second ceremony: the screen lacks %q", want)
		}
	}
	// The summary before the decisions and the final one: the drop
	// changed the digest the keyholders approved.
	ds := digestRow.FindAllStringSubmatch(s, -1)
	if len(ds) < 2 || ds[0][1] == ds[len(ds)-1][1] {
		t.Errorf("digests shown %v: the decisions did not change the digest", ds)
	} else if tr := mustReadFile(t, p("media2", "transcript.jsonl")); !regexp.MustCompile(`"step":"diff approved","detail":\{"device":\d+,"diff_digest":"` + ds[len(ds)-1][1] + `"\}`).MatchString(tr) {
		t.Errorf("the transcript does not record the final digest %s approved by a keyholder", ds[len(ds)-1][1])
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}
	named := strings.Join(signedDecisions(t, p("media2")), "\n")
	for _, want := range []string{
		"flag added-to-stable-release " + inj.AddedToStable[0] + " 0 drop decided in the room, flag 1",
		"flag backdated " + inj.Backdated[0] + " 0 confirm decided in the room, flag 2",
		"flag changed " + inj.Changed[0] + " 0 drop decided in the room, flag 3",
		"limit  removed " + fmt.Sprint(removed) + " confirm decided in the room, flag 4",
		"flag name-collision " + inj.NameCollision[0] + " 0 confirm decided in the room, flag 5",
		"flag project-loss " + inj.ProjectLoss[0] + " 0 confirm decided in the room, flag 6",
		"flag yanked-stable " + inj.Yanked[0] + " 0 confirm decided in the room, flag 7",
	} {
		if !strings.Contains(named, want) {
			t.Errorf("the signed diff does not name %q:\n%s", want, named)
		}
	}
	df := mustReadFile(t, p("media2", "decisions.jsonl"))
	if !strings.Contains(df, `{"flag":"changed","subject":"`+inj.Changed[0]+`","decision":"drop","reason":"decided in the room, flag 3"}`) {
		t.Errorf("decisions.jsonl:\n%s", df)
	}
	if n := strings.Count(mustReadFile(t, p("media2", "transcript.jsonl")), `"step":"red flag decided"`); n != len(kinds) {
		t.Errorf("the transcript records %d flags decided, want %d", n, len(kinds))
	}
}
