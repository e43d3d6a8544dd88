package stableset

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
)

// The room's decisions, as the repository's attacker meets them: a file
// re-uploaded with other content under a stable path is kept, accepted
// or dropped only as decided, every decision is bound into the digest,
// and a crossed limit without a decision signs nothing.
func TestDecisions(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1 := filepath.Join(dir, "one")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1}), ""), out1)

	// The attacker, holding the repository, re-uploads bar 1.0.
	foo3 := file{"foo", "3.0", "foo-3.0.tar.gz", "foo three", t1.Add(time.Hour)}
	e2 := exportOf(t, t2, []file{foo1, bar1evil, foo3})
	evil := rec(bar1evil).Path
	digestWith := func(file string) (*Diff, error) {
		c.decisions = nil
		if file != "" {
			c.decisions = mustDecisions(t, file)
		}
		return ComputeDiff(c.config(e2, out1))
	}
	line := func(choice, reason string) string {
		return `{"path": "` + evil + `", "decision": "` + choice + `", "reason": "` + reason + `"}`
	}
	digests := map[string]string{}
	for _, f := range []string{"", line("keep-old", "an attack"), line("keep-old", "another reason"), line("accept-new", "an attack"), line("drop", "an attack")} {
		d, err := digestWith(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if other, ok := digests[d.Digest]; ok {
			t.Errorf("decisions %q and %q give the same digest", other, f)
		}
		digests[d.Digest] = f
		d.Close()
	}

	// Without a decision, signing is refused, naming the limit and the
	// count.
	d, _ := digestWith("")
	if err := d.Undecided(); !errors.Is(err, ErrUndecided) || !strings.Contains(err.Error(), "confirm_above.changed is 0 and the diff changes 1 files") {
		t.Errorf("undecided: %v", err)
	}
	out2 := filepath.Join(dir, "two")
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); !errors.Is(err, ErrUndecided) {
		t.Errorf("signed with an undecided change: %v", err)
	}
	assertNothing(t, dir, out2)
	d.Close()

	// Dropped: the path leaves the stable set, neither old nor new
	// content is signed. bar's stable view loses its only file: a red
	// flag the room confirms too.
	d, err := digestWith(line("drop", "an attack; the old file is suspect too") + "\n" + barLoss)
	if err != nil {
		t.Fatal(err)
	}
	if d.Summary.Dropped != 1 || d.Summary.Stable() != 2 || d.Undecided() != nil {
		t.Errorf("drop: %+v, %v", d.Summary, d.Undecided())
	}
	if len(d.Decisions) != 2 || d.Decisions[0].Choice != decisions.Drop || d.Decisions[0].Reason != "an attack; the old file is suspect too" {
		t.Errorf("decisions on the diff: %+v", d.Decisions)
	}
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	_, bins := loadStable(t, c, out2, 2)
	all := stableTargets(bins)
	if _, ok := all[evil]; ok {
		t.Error("a dropped path is in stable v2")
	}
	if _, ok := all[rec(foo3).Path]; !ok {
		t.Error("foo3 is not in stable v2")
	}

	// Decisions that do not match the diff are refused, naming the file
	// and line.
	for _, c2 := range []struct{ file, msg string }{
		{line("keep-old", "x") + "\n" + `{"path": "` + rec(foo1).Path + `", "decision": "accept-new", "reason": "x"}`, "decisions.jsonl:2: path " + rec(foo1).Path + ": not a changed file of this diff"},
		{line("keep-old", "x") + "\n" + `{"limit": "added", "count": 1, "decision": "confirm", "reason": "x"}`, "decisions.jsonl:2: limit added: confirms 1, but the diff's 1 is not above confirm_above.added (2000000)"},
	} {
		if _, err := digestWith(c2.file); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), c2.msg) {
			t.Errorf("got %v, want %q", err, c2.msg)
		}
	}
	c.decisions = nil
}

// confirm_above.added and removed: a count above the limit needs a
// decision confirming exactly that count.
func TestDecisionsLimits(t *testing.T) {
	c := newCeremony(t)
	pol, err := policy.Parse([]byte(`{"confirm_above": {"added": 1, "removed": 0}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	e := exportOf(t, t1, []file{foo1, bar1, bar09})
	diff := func(file string) (*Diff, error) {
		cfg := c.config(e, "")
		cfg.Policy, cfg.Decisions = pol, nil
		if file != "" {
			cfg.Decisions = mustDecisions(t, file)
		}
		return ComputeDiff(cfg)
	}
	d, err := diff("")
	if err != nil {
		t.Fatal(err)
	}
	err = d.Undecided()
	if !errors.Is(err, ErrUndecided) || err.Error() != "confirm_above.added is 1 and the diff adds 3 files; no decision confirms that count: undecided: a crossed limit or a red flag without a decision" {
		t.Errorf("undecided: %v", err)
	}
	if i := slices.IndexFunc(d.Limits, func(l Limit) bool { return l.Name == "added" }); i < 0 || !d.Limits[i].Crossed || d.Limits[i].Count != 3 || d.Limits[i].Max != 1 {
		t.Errorf("limits: %+v", d.Limits)
	}
	d.Close()
	if _, err := diff(`{"limit": "added", "count": 2, "decision": "confirm", "reason": "x"}`); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), "decisions.jsonl:1: limit added: confirms 2, the diff has 3") {
		t.Errorf("wrong count: %v", err)
	}
	d, err = diff(`{"limit": "added", "count": 3, "decision": "confirm", "reason": "the first ceremony"}`)
	if err != nil {
		t.Fatal(err)
	}
	if d.Undecided() != nil {
		t.Errorf("confirmed: %v", d.Undecided())
	}
	d.Close()
}

// The full listing is sorted by project, then version, then path.
func TestSortedEntries(t *testing.T) {
	c := newCeremony(t)
	files := []file{
		{"zed", "1.10", "zed-1.10.tar.gz", "z", old}, {"zed", "1.9", "zed-1.9.tar.gz", "z9", old},
		{"zed", "1.9", "zed-1.9-py3-none-any.whl", "z9w", old}, {"abc", "2.0", "abc-2.0.tar.gz", "a", old},
		{"abc", "10.0", "abc-10.0.tar.gz", "a10", t1}, {"mid", "0.1", "mid-0.1.tar.gz", "m", old},
	}
	d, err := ComputeDiff(c.config(exportOf(t, t1, files), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []string
	if err := d.SortedEntries(func(e *DiffEntry) error {
		got = append(got, e.Project+" "+e.Version+" "+e.Path[strings.LastIndexByte(e.Path, '/')+1:])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"abc 2.0 abc-2.0.tar.gz", "abc 10.0 abc-10.0.tar.gz", "mid 0.1 mid-0.1.tar.gz",
		"zed 1.9 zed-1.9-py3-none-any.whl", "zed 1.9 zed-1.9.tar.gz", "zed 1.10 zed-1.10.tar.gz"}
	// Pages sort under their project too; keep the files.
	var files2 []string
	for _, g := range got {
		if !strings.HasSuffix(g, "index.html") && !strings.HasSuffix(g, "index.json") {
			files2 = append(files2, g)
		}
	}
	if !slices.Equal(files2, want) {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(files2, "\n"), strings.Join(want, "\n"))
	}
	// A second call gives the same.
	n := 0
	d.SortedEntries(func(*DiffEntry) error { n++; return nil })
	if n != len(got) {
		t.Errorf("second call: %d entries, want %d", n, len(got))
	}
}

func TestCompareVersions(t *testing.T) {
	order := []string{"", "0.1", "1", "1.0", "1.0.1", "1.0a1", "1.2", "1.9", "1.10", "01.11", "2!1.0", "10.0"}
	for i := range order {
		for j := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(order[i], order[j]); got != want && !(order[i] == "1.0" && order[j] == "1") {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

// The summary stays on one screen: it lists ten decisions and says how
// many more --full lists.
func TestSummaryListsTenDecisions(t *testing.T) {
	var d Diff
	for i := 0; i < 12; i++ {
		d.Decisions = append(d.Decisions, decisions.Decision{Path: fmt.Sprintf("packages/%02d", i), Choice: decisions.KeepOld, Reason: "r"})
	}
	var b strings.Builder
	if err := d.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "because: r"); n != 10 || !strings.Contains(b.String(), "… 2 more: --full lists them all") {
		t.Errorf("%d decisions listed:\n%s", n, b.String())
	}
}

// barLoss confirms the project-loss flag of bar.
const barLoss = `{"flag": "project-loss", "subject": "bar", "decision": "confirm", "reason": "bar 1.0 was dropped as an attack"}`

// project-loss, as the repository's attacker meets it: the export no
// longer lists most of a project's stable files. The flag is raised with
// its facts, signing is refused naming it until a decision settles it,
// the decision's choice and reason are bound into the digest and named
// by the signed statement, and a decision for a flag the diff does not
// raise is refused.
func TestFlagProjectLoss(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1 := filepath.Join(dir, "one")
	foo2 := file{"foo", "2.0", "foo-2.0.tar.gz", "foo two", old}
	foo3 := file{"foo", "3.0", "foo-3.0.tar.gz", "foo three", old}
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, foo2, foo3, bar1, bar09}), ""), out1)

	// The second export lists one of foo's three files (66% lost) and
	// both of bar's.
	e2 := exportOf(t, t2, []file{foo3, bar1, bar09})
	diff := func(pol *policy.Policy, file string) (*Diff, error) {
		cfg := c.config(e2, out1)
		cfg.Decisions = nil
		if pol != nil {
			cfg.Policy = pol
		}
		if file != "" {
			cfg.Decisions = mustDecisions(t, file)
		}
		return ComputeDiff(cfg)
	}
	d, err := diff(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Flags) != 1 || d.Flags[0].Kind != FlagProjectLoss || d.Flags[0].Subject != "foo" || d.Flags[0].Decision != nil {
		t.Fatalf("flags: %+v", d.Flags)
	}
	facts := map[string]string{}
	for _, f := range d.Flags[0].Facts {
		facts[f.Name] = f.Value
	}
	if facts["stable files before"] != "3" || facts["removed from the export"] != "2" || facts["stable files after"] != "1" || !strings.HasPrefix(facts["lost"], "66%") {
		t.Errorf("facts: %+v", d.Flags[0].Facts)
	}
	if err := d.Undecided(); !errors.Is(err, ErrUndecided) || !strings.Contains(err.Error(), "flag project-loss foo has no decision (confirm)") {
		t.Errorf("undecided: %v", err)
	}
	out2 := filepath.Join(dir, "two")
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); !errors.Is(err, ErrUndecided) {
		t.Errorf("signed with an undecided flag: %v", err)
	}
	assertNothing(t, dir, out2)
	var txt strings.Builder
	if err := d.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "project-loss foo") || !strings.Contains(txt.String(), "stable files before") {
		t.Errorf("the review does not show the flag:\n%s", txt.String())
	}
	undecided := d.Digest
	d.Close()

	// A threshold of 70% raises nothing.
	pol, err := policy.Parse([]byte(`{"red_flags": {"project_loss_percent": 70}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := diff(pol, ""); err != nil || len(d.Flags) != 0 || d.Undecided() != nil {
		t.Errorf("at 70%%: %v, %+v", err, d.Flags)
	} else {
		d.Close()
	}

	// Decided: the digest covers the decision and its reason.
	confirm := func(reason string) string {
		return `{"flag": "project-loss", "subject": "foo", "decision": "confirm", "reason": "` + reason + `"}`
	}
	d, err = diff(nil, confirm("foo's author deleted 1.0 and 2.0"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Undecided() != nil || d.Flags[0].Decision == nil || d.Flags[0].Decision.Reason != "foo's author deleted 1.0 and 2.0" {
		t.Errorf("decided: %v, %+v", d.Undecided(), d.Flags)
	}
	d2, err := diff(nil, confirm("another reason"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest == undecided || d2.Digest == d.Digest {
		t.Errorf("digests: undecided %s, one reason %s, another %s", undecided, d.Digest, d2.Digest)
	}
	d2.Close()
	var canon bytes.Buffer
	if err := d.WriteCanonical(&canon); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(canon.String(), "\nflag\tproject-loss\tfoo\tconfirm\tfoo's author deleted 1.0 and 2.0\n") {
		t.Errorf("the canonical form does not hold the decision")
	}
	// The auditor's reading of the canonical form names the decision.
	ac, err := ParseCanonical(bytes.NewReader(canon.Bytes()))
	if err != nil || ac.Digest != d.Digest {
		t.Fatalf("ParseCanonical: %v, %s want %s", err, ac.Digest, d.Digest)
	}
	if len(ac.Decisions) != 1 || ac.Decisions[0].Flag != FlagProjectLoss || ac.Decisions[0].Subject != "foo" || ac.Decisions[0].Reason != "foo's author deleted 1.0 and 2.0" {
		t.Errorf("canonical decisions: %+v", ac.Decisions)
	}
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	// Decisions that settle nothing are refused, naming the line.
	for _, c2 := range []struct{ file, msg string }{
		{confirm("x") + "\n" + `{"flag": "project-loss", "subject": "bar", "decision": "confirm", "reason": "x"}`, "decisions.jsonl:2: flag project-loss bar: this diff raises no such flag"},
		{`{"flag": "project-loss", "subject": "foo", "decision": "drop", "reason": "x"}`, "decisions.jsonl:1: flag project-loss foo: \"drop\" does not settle it (want confirm)"},
		{confirm("x") + "\n" + `{"flag": "no-such-kind", "subject": "foo", "decision": "confirm", "reason": "x"}`, "decisions.jsonl:2: flag no-such-kind: not a kind of red flag ("},
	} {
		if _, err := diff(nil, c2.file); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), c2.msg) {
			t.Errorf("got %v, want %q", err, c2.msg)
		}
	}
}

// TestChangedAndBackdatedFlags: a changed and a backdated file are red
// flags with their facts; each is settled by a flag decision, and the
// digest covers every decision: same inputs, another decision or
// reason, another digest. A choice the kind does not allow, a flag the
// diff does not raise and a limit settled as a flag are refused.
func TestChangedAndBackdatedFlags(t *testing.T) {
	c := newCeremony(t)
	out1 := filepath.Join(t.TempDir(), "one")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, foo2, bar1, bar09}), ""), out1)
	e2 := exportOf(t, t2, []file{foo1, foo2, bar1evil, baz1, qux3})
	evil, back := rec(bar1evil).Path, rec(baz1).Path
	diff := func(file string) (*Diff, error) {
		c.decisions = nil
		if file != "" {
			c.decisions = mustDecisions(t, file)
		}
		return ComputeDiff(c.config(e2, out1))
	}
	changed := func(choice, reason string) string {
		return `{"flag": "changed", "subject": "` + evil + `", "decision": "` + choice + `", "reason": "` + reason + `"}`
	}
	backdated := func(reason string) string {
		return `{"flag": "backdated", "subject": "` + back + `", "decision": "confirm", "reason": "` + reason + `"}`
	}
	d, err := diff("")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Flags) != 2 || d.Flags[0].Kind != FlagBackdated || d.Flags[0].Subject != back || d.Flags[1].Kind != FlagChanged || d.Flags[1].Subject != evil {
		t.Fatalf("flags: %+v", d.Flags)
	}
	facts := map[string]string{}
	for _, f := range d.Flags[0].Facts {
		facts[f.Name] = f.Value
	}
	if facts["upload time claimed"] != "2020-05-01T00:00:00Z" || !strings.HasPrefix(facts["previous listing"], t1.Format(time.RFC3339)+" (stable v1)") || facts["this listing"] != t2.Format(time.RFC3339) {
		t.Errorf("backdated facts: %v", facts)
	}
	if err := d.Undecided(); !errors.Is(err, ErrUndecided) || !strings.Contains(err.Error(), "flag backdated "+back+" has no decision (confirm)") {
		t.Errorf("undecided: %v", err)
	}
	d.Close()

	digests := map[string]string{}
	for _, f := range []string{
		changed("keep-old", "an attack") + "\n" + backdated("seen"),
		changed("keep-old", "another reason") + "\n" + backdated("seen"),
		changed("drop", "an attack") + "\n" + backdated("seen") + "\n" + barLoss,
		changed("accept-new", "an attack") + "\n" + backdated("seen"),
		changed("keep-old", "an attack") + "\n" + backdated("seen, and asked why"),
	} {
		d, err := diff(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := d.Undecided(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if other, ok := digests[d.Digest]; ok {
			t.Errorf("decisions %q and %q give the same digest", other, f)
		}
		digests[d.Digest] = f
		if i := slices.IndexFunc(d.Flags, func(f Flag) bool { return f.Kind == FlagChanged }); strings.Contains(f, `"drop"`) && (d.Summary.Dropped != 1 || d.Flags[i].Decision.Choice != decisions.Drop) {
			t.Errorf("dropped by a flag decision: %+v", d.Summary)
		}
		d.Close()
	}
	// Below confirm_above.changed the change raises no flag, and a changed
	// flag decision about it is applied all the same, with a choice that
	// settles a change only.
	below, err := policy.Parse([]byte(`{"confirm_above": {"changed": 5}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c2 := range []struct{ choice, err string }{{"drop", ""}, {"confirm", `flag changed ` + evil + `: "confirm" does not settle it (want keep-old or accept-new or drop)`}} {
		c.decisions = mustDecisions(t, changed(c2.choice, "x")+"\n"+backdated("x")+"\n"+barLoss)
		cfg := c.config(e2, out1)
		cfg.Policy = below
		d, err := ComputeDiff(cfg)
		if c2.err != "" {
			if !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), c2.err) {
				t.Errorf("%s below the limit: %v, want %q", c2.choice, err, c2.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if d.Summary.Dropped != 1 || slices.ContainsFunc(d.Flags, func(f Flag) bool { return f.Kind == FlagChanged }) {
			t.Errorf("dropped below the limit: %+v, flags %+v", d.Summary, d.Flags)
		}
		d.Close()
	}
	// Wrong choices and flags the diff does not raise are refused.
	for _, c2 := range []struct{ file, msg string }{
		{changed("confirm", "x") + "\n" + backdated("x"), "decisions.jsonl:1: flag changed " + evil + ": \"confirm\" does not settle it (want keep-old or accept-new or drop)"},
		{changed("keep-old", "x") + "\n" + `{"flag": "backdated", "subject": "` + back + `", "decision": "drop", "reason": "x"}`, "flag backdated " + back + ": \"drop\" does not settle it (want confirm)"},
		{changed("keep-old", "x") + "\n" + backdated("x") + "\n" + `{"flag": "backdated", "subject": "` + rec(foo2).Path + `", "decision": "confirm", "reason": "x"}`, "decisions.jsonl:3: flag backdated " + rec(foo2).Path + ": this diff raises no such flag"},
		{`{"flag": "limit", "subject": "added", "decision": "confirm", "reason": "x"}`, "decisions.jsonl:1: flag limit added: a count above its limit is confirmed by a limit decision naming the count"},
	} {
		if _, err := diff(c2.file); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), c2.msg) {
			t.Errorf("got %v, want %q", err, c2.msg)
		}
	}
	c.decisions = nil
}

// TestLimitFlags: a count above confirm_above is a limit flag, settled by
// the limit decision that names the count; FlagDecision makes it.
func TestLimitFlags(t *testing.T) {
	c := newCeremony(t)
	pol, err := policy.Parse([]byte(`{"confirm_above": {"added": 1, "removed": 0}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.config(exportOf(t, t1, []file{foo1, bar1, bar09}), "")
	cfg.Policy, cfg.Decisions = pol, nil
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Flags) != 1 || d.Flags[0].Kind != FlagLimit || d.Flags[0].Subject != "added" || d.Flags[0].Decision != nil {
		t.Fatalf("flags: %+v", d.Flags)
	}
	dec := d.FlagDecision(&d.Flags[0], decisions.Confirm, "the first ceremony")
	d.Close()
	if dec.Limit != "added" || dec.Count != 3 || dec.Flag != "" {
		t.Fatalf("the decision made: %+v", dec)
	}
	cfg.Decisions, err = (*decisions.Set)(nil).With("room", dec)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Export = bytes.NewReader(exportOf(t, t1, []file{foo1, bar1, bar09}))
	d, err = ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Undecided() != nil || d.Flags[0].Decision == nil || d.Flags[0].Decision.Count != 3 {
		t.Errorf("settled: %v %+v", d.Undecided(), d.Flags)
	}
}

// TestSummaryNamesTenFlagsOfAKind: thousands of flagged files keep the
// summary a summary: ten of each kind, then how many more and how many
// of those lack a decision.
func TestSummaryNamesTenFlagsOfAKind(t *testing.T) {
	var d Diff
	for i := 0; i < 25; i++ {
		f := Flag{Kind: FlagBackdated, Subject: fmt.Sprintf("packages/x/%02d.tar.gz", i), Choices: []decisions.Choice{decisions.Confirm}}
		if i%2 == 0 {
			f.Decision = &decisions.Decision{Choice: decisions.Confirm, Reason: "seen"}
		}
		d.Flags = append(d.Flags, f)
	}
	d.Flags = append(d.Flags, Flag{Kind: FlagProjectLoss, Subject: "foo", Choices: []decisions.Choice{decisions.Confirm}})
	var b bytes.Buffer
	d.writeFlags(&b)
	s := b.String()
	if !strings.Contains(s, "red flags (26)") || !strings.Contains(s, "packages/x/09.tar.gz") || strings.Contains(s, "packages/x/10.tar.gz") ||
		!strings.Contains(s, "… 15 more backdated flags, 7 without a decision") || !strings.Contains(s, "26. project-loss foo") {
		t.Errorf("summary of 26 flags:\n%s", s)
	}
}
