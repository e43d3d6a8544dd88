package stableset

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// flagRun computes the diff of an export against a published stable set
// with a decisions file and a policy (nil: the default), fresh or from a
// kept pass (the reviewed pass's walk raises the same flags).
func flagRun(t *testing.T, c *ceremony, exp []byte, pub, decs string, pol *policy.Policy, reviewed bool) *Diff {
	t.Helper()
	cfg := func() Config {
		cfg := c.config(exp, pub)
		if pol != nil {
			cfg.Policy = pol
		}
		if decs != "" {
			cfg.Decisions = mustDecisions(t, decs)
		}
		return cfg
	}
	d, err := ComputeDiff(cfg())
	if err != nil {
		t.Fatal(err)
	}
	if !reviewed {
		return d
	}
	work := t.TempDir()
	if _, err := d.Keep(work); err != nil {
		t.Fatal(err)
	}
	digest := d.Digest
	d.Close()
	rc := cfg()
	rc.TempDir = work
	rd, err := OpenReviewed(rc, digest)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// flagsOf names a diff's flags: "kind subject" each, in order.
func flagsOf(d *Diff) []string {
	var out []string
	for _, f := range d.Flags {
		out = append(out, f.Kind+" "+f.Subject)
	}
	return out
}

func factsOf(f *Flag) map[string]string {
	m := map[string]string{}
	for _, x := range f.Facts {
		m[x.Name] = x.Value
	}
	return m
}

// entriesOf returns each file entry's category/reason by path.
func entriesOf(t *testing.T, d *Diff) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := d.Entries(func(e *DiffEntry) error { got[e.Path] = string(e.Category) + "/" + e.Reason; return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func flagDecision(kind, subject, choice, reason string) string {
	return `{"flag": "` + kind + `", "subject": "` + subject + `", "decision": "` + choice + `", "reason": "` + reason + `"}` + "\n"
}

// added-to-stable-release, as the repository's attacker acts: after a
// ceremony signed foo 1.0, the export lists a new wheel in release 1.0,
// with an upload time just after that ceremony, so that by the next one
// it is old enough to enter stable on its own. The flag is raised with
// its facts (a new file in a new release is not flagged), signing is
// refused until a decision settles it, "drop" keeps the wheel out and
// marks it dropped in the ledger, and the next ceremony holds it back
// again without any decision, until a lift.
func TestFlagAddedToStableRelease(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2, out3 := filepath.Join(dir, "one"), filepath.Join(dir, "two"), filepath.Join(dir, "three")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1, bar09}), ""), out1)

	evil := file{"foo", "1.0", "foo-1.0-py3-none-any.whl", "foo one EVIL wheel", t1.Add(time.Hour)}
	foo21 := file{"foo", "2.1", "foo-2.1.tar.gz", "foo two one", t1.Add(time.Hour)}
	e2 := exportOf(t, t2, []file{foo1, evil, foo21, bar1, bar09})
	ep := rec(evil).Path

	for _, reviewed := range []bool{false, true} {
		d := flagRun(t, c, e2, out1, "", nil, reviewed)
		if got := flagsOf(d); len(got) != 1 || got[0] != FlagAddedToStableRelease+" "+ep {
			t.Fatalf("reviewed %v: flags %q", reviewed, got)
		}
		if f := factsOf(&d.Flags[0]); f["project"] != "foo" || f["release"] != "1.0" || !strings.Contains(f["why"], "stable v1") {
			t.Errorf("facts: %+v", f)
		}
		if err := d.Undecided(); !errors.Is(err, ErrUndecided) || !strings.Contains(err.Error(), "flag added-to-stable-release "+ep+" has no decision (confirm or drop)") {
			t.Errorf("undecided: %v", err)
		}
		d.Close()
	}
	// Switched off, nothing is raised, and the wheel enters stable.
	off, err := policy.Parse([]byte(`{"red_flags": {"added_to_stable_release": false}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	d := flagRun(t, c, e2, out1, "", off, false)
	if len(d.Flags) != 0 || entriesOf(t, d)[ep] != "added/" {
		t.Errorf("switched off: flags %q, wheel %s", flagsOf(d), entriesOf(t, d)[ep])
	}
	d.Close()

	// Confirmed, the wheel is decided as any new file: old enough, added.
	d = flagRun(t, c, e2, out1, flagDecision(FlagAddedToStableRelease, ep, "confirm", "the maintainer uploaded it with our blessing"), nil, false)
	confirmed := d.Digest
	if d.Undecided() != nil || entriesOf(t, d)[ep] != "added/" {
		t.Errorf("confirmed: %v, %s", d.Undecided(), entriesOf(t, d)[ep])
	}
	d.Close()

	// Dropped: held back, reason dropped, another digest; the pass and
	// the reviewed pass agree.
	drop := flagDecision(FlagAddedToStableRelease, ep, "drop", "PyPI refuses new files on old releases")
	for _, reviewed := range []bool{false, true} {
		d = flagRun(t, c, e2, out1, drop, nil, reviewed)
		if d.Undecided() != nil || entriesOf(t, d)[ep] != "held/dropped" || d.Digest == confirmed {
			t.Errorf("reviewed %v: dropped: %v, %s", reviewed, d.Undecided(), entriesOf(t, d)[ep])
		}
		if reviewed {
			// The canonical form, which the approved digest covers and
			// the signed diff carries, holds the decision; an auditor's
			// reading of it names it.
			var canon bytes.Buffer
			if err := d.WriteCanonical(&canon); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(canon.String(), "\nflag\tadded-to-stable-release\t"+ep+"\tdrop\tPyPI refuses new files on old releases\n") {
				t.Error("the canonical form does not hold the drop decision")
			}
			ac, err := ParseCanonical(bytes.NewReader(canon.Bytes()))
			if err != nil || ac.Digest != d.Digest || len(ac.Decisions) != 1 || ac.Decisions[0].Flag != FlagAddedToStableRelease || ac.Decisions[0].Subject != ep {
				t.Errorf("ParseCanonical: %v, %+v", err, ac)
			}
			if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
	}
	if _, targets := loadStable(t, c, out2, 2); hasTarget(targets, ep) {
		t.Error("the dropped wheel is in stable v2")
	}

	// The next export lists the wheel again, now 180 days old: it is not
	// new, so no flag is raised, and it stays held without a decision.
	t3 := t2.Add(91 * 24 * time.Hour)
	e3 := exportOf(t, t3, []file{foo1, evil, foo21, bar1, bar09})
	for _, reviewed := range []bool{false, true} {
		d = flagRun(t, c, e3, out2, "", nil, reviewed)
		if len(d.Flags) != 0 || d.Undecided() != nil || entriesOf(t, d)[ep] != "held/dropped" {
			t.Errorf("reviewed %v: next ceremony: flags %q, %v, %s", reviewed, flagsOf(d), d.Undecided(), entriesOf(t, d)[ep])
		}
		d.Close()
	}
	// A lift ends the mark: the wheel is decided as any listed file.
	lift := `{"path": "` + ep + `", "decision": "lift", "reason": "the maintainer confirmed the wheel"}` + "\n"
	for _, reviewed := range []bool{false, true} {
		d = flagRun(t, c, e3, out2, lift, nil, reviewed)
		if d.Undecided() != nil || entriesOf(t, d)[ep] != "added/" {
			t.Errorf("reviewed %v: lifted: %v, %s", reviewed, d.Undecided(), entriesOf(t, d)[ep])
		}
		if reviewed {
			if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out3}); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
	}
	if _, targets := loadStable(t, c, out3, 3); !hasTarget(targets, ep) {
		t.Error("the lifted wheel is not in stable v3")
	}
	// A lift of a path neither dropped nor taken down is refused.
	cfg := c.config(e3, out2)
	cfg.Decisions = mustDecisions(t, `{"path": "`+rec(foo21).Path+`", "decision": "lift", "reason": "x"}`+"\n")
	if _, err := ComputeDiff(cfg); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), "neither taken down nor dropped") {
		t.Errorf("lift of a path never dropped: %v", err)
	}
	// A drop decision for a file that raises no flag is refused.
	cfg = c.config(e2, out1)
	cfg.Decisions = mustDecisions(t, flagDecision(FlagAddedToStableRelease, rec(foo21).Path, "drop", "x"))
	if _, err := ComputeDiff(cfg); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), "this diff raises no such flag") {
		t.Errorf("drop of an unflagged file: %v", err)
	}
}

func hasTarget(leaves map[string]map[string]tuf.TargetFile, path string) bool {
	for _, l := range leaves {
		if _, ok := l[path]; ok {
			return true
		}
	}
	return false
}

// The dropped mark, as the repository's attacker acts: a changed stable
// file is decided "drop"; at the next ceremony the export lists the path
// again, first with the content the room refused, then with the old
// content restored, and the file is held back both times ("dropped")
// with no decision asked, where without the mark it would enter stable
// as an old file of the previous listing.
func TestDroppedStaysOut(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1, bar09}), ""), out1)
	bp := rec(bar1).Path
	drop := `{"path": "` + bp + `", "decision": "drop", "reason": "bar 1.0 was replaced: an attack"}` + "\n"
	d := flagRun(t, c, exportOf(t, t2, []file{foo1, bar1evil, bar09}), out1, drop, nil, false)
	if entriesOf(t, d)[bp] != "changed/dropped" {
		t.Fatalf("drop: %s", entriesOf(t, d)[bp])
	}
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	t3 := t2.Add(91 * 24 * time.Hour)
	for _, again := range []file{bar1evil, bar1} {
		for _, reviewed := range []bool{false, true} {
			d := flagRun(t, c, exportOf(t, t3, []file{foo1, again, bar09}), out2, "", nil, reviewed)
			if got := entriesOf(t, d)[bp]; got != "held/dropped" || d.Undecided() != nil {
				t.Errorf("%q listed again (reviewed %v): %s, %v", again.content, reviewed, got, d.Undecided())
			}
			d.Close()
		}
	}
}

// yanked-stable, as the repository's attacker acts: the export marks a
// stable file yanked (so that installers skip it for a newer release).
// The flag is raised once, at the ceremony that first sees the yank, not
// for a yanked file that was never stable, and not again at the next
// ceremony, whose previous ledger records the yank.
func TestFlagYankedStable(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1, bar09}), ""), out1)
	yank := func(f file) export.Record {
		r := rec(f)
		r.Yanked, r.YankedReason = true, "broken"
		return r
	}
	young := file{"qux", "3.1", "qux-3.1.tar.gz", "qux young", t2.Add(-time.Hour)}
	e2 := exportOfRecords(t, t2, []export.Record{yank(foo1), rec(bar1), rec(bar09), yank(young)})
	fp := rec(foo1).Path
	for _, reviewed := range []bool{false, true} {
		d := flagRun(t, c, e2, out1, "", nil, reviewed)
		if got := flagsOf(d); len(got) != 1 || got[0] != FlagYankedStable+" "+fp {
			t.Fatalf("reviewed %v: flags %q", reviewed, got)
		}
		if f := factsOf(&d.Flags[0]); f["project"] != "foo" || !reviewed && (f["release"] != "1.0" || f["yanked reason"] != "broken") {
			t.Errorf("reviewed %v: facts: %+v", reviewed, f)
		}
		if err := d.Undecided(); !errors.Is(err, ErrUndecided) || !strings.Contains(err.Error(), "flag yanked-stable "+fp+" has no decision (confirm)") {
			t.Errorf("undecided: %v", err)
		}
		d.Close()
	}
	d := flagRun(t, c, e2, out1, flagDecision(FlagYankedStable, fp, "confirm", "foo 1.0 is broken, the maintainer yanked it"), nil, false)
	if d.Undecided() != nil || entriesOf(t, d)[fp] != "unchanged/" {
		t.Fatalf("confirmed: %v", d.Undecided())
	}
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	e3 := exportOfRecords(t, t2.Add(91*24*time.Hour), []export.Record{yank(foo1), rec(bar1), rec(bar09), yank(young)})
	d = flagRun(t, c, e3, out2, "", nil, false)
	if len(d.Flags) != 0 {
		t.Errorf("the yank is flagged again: %q", flagsOf(d))
	}
	d.Close()
	off, err := policy.Parse([]byte(`{"red_flags": {"yanked_stable": false}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if d := flagRun(t, c, e2, out1, "", off, false); len(d.Flags) != 0 {
		t.Errorf("switched off: %q", flagsOf(d))
	} else {
		d.Close()
	}
}

// name-collision, as the repository's attacker acts: the export lists
// under one project files named as another project's of the export (an
// sdist, and a wheel spelled with '_'), so that the first project's
// stable page offers them. Each is raised at the first ceremony already;
// a file whose name ties it to no project of the export is not.
func TestFlagNameCollision(t *testing.T) {
	c := newCeremony(t)
	fooBar := file{"foo-bar", "1.0", "foo_bar-1.0.tar.gz", "foo-bar one", old}
	stray := file{"bar", "1.1", "foo-1.1.tar.gz", "named as foo", old}
	wheel := file{"baz", "2.0", "Foo_Bar-2.0-py3-none-any.whl", "named as foo-bar", old}
	orphan := file{"bar", "7", "nobody-7.tar.gz", "named as nobody", old}
	e1 := exportOf(t, t1, []file{foo1, bar1, fooBar, stray, wheel, orphan})
	for _, reviewed := range []bool{false, true} {
		d := flagRun(t, c, e1, "", "", nil, reviewed)
		got := flagsOf(d)
		want := []string{FlagNameCollision + " " + rec(stray).Path, FlagNameCollision + " " + rec(wheel).Path}
		if rec(wheel).Path < rec(stray).Path {
			want[0], want[1] = want[1], want[0]
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("reviewed %v: flags %q, want %q", reviewed, got, want)
		}
		for i := range d.Flags {
			f := factsOf(&d.Flags[i])
			if d.Flags[i].Subject == rec(stray).Path && (f["listed under"] != "bar" || f["names project"] != "foo") ||
				d.Flags[i].Subject == rec(wheel).Path && (f["listed under"] != "baz" || f["names project"] != "foo-bar") {
				t.Errorf("facts of %s: %+v", d.Flags[i].Subject, f)
			}
		}
		if err := d.Undecided(); !errors.Is(err, ErrUndecided) {
			t.Errorf("undecided: %v", err)
		}
		d.Close()
	}
	decs := flagDecision(FlagNameCollision, rec(stray).Path, "confirm", "bar ships foo's sdist, as it always did") +
		flagDecision(FlagNameCollision, rec(wheel).Path, "confirm", "baz vendors foo-bar")
	d := flagRun(t, c, e1, "", decs, nil, false)
	if d.Undecided() != nil {
		t.Errorf("confirmed: %v", d.Undecided())
	}
	d.Close()
}

// TestNextAnomaliesFlagged runs the pass on a synthetic next period with
// every export anomaly synth injects, fresh and from a kept pass: it
// raises exactly one flag for each, of its kind, and no other export flag.
func TestNextAnomaliesFlagged(t *testing.T) {
	c, out1, e2, inj := syntheticPeriods(t, 6, synth.NextParams{Seed: 6, NewFiles: 60, Deletions: 3,
		AddedToStable: 2, ProjectLoss: 2, NameCollision: 2, Yanked: 2})
	now := synth.DefaultGenerated.Add(90 * 24 * time.Hour)
	var want []string
	for _, l := range []struct {
		kind     string
		subjects []string
	}{{FlagAddedToStableRelease, inj.AddedToStable}, {FlagProjectLoss, inj.ProjectLoss}, {FlagNameCollision, inj.NameCollision}, {FlagYankedStable, inj.Yanked}} {
		if len(l.subjects) != 2 {
			t.Fatalf("%s: injected %q", l.kind, l.subjects)
		}
		for _, s := range l.subjects {
			want = append(want, l.kind+" "+s)
		}
	}
	slices.Sort(want)
	for _, reviewed := range []bool{false, true} {
		c.now = now
		d := flagRun(t, c, e2, out1, "", nil, reviewed)
		var got []string
		for _, f := range flagsOf(d) {
			if !strings.HasPrefix(f, "limit ") && !strings.HasPrefix(f, "policy") {
				got = append(got, f)
			}
		}
		slices.Sort(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("reviewed %v: flags\n%s\nwant\n%s", reviewed, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		d.Close()
	}
}
