package stableset

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
)

var (
	// A security release two days old, which the policy expedites, and
	// a feature release of the same project, as young, which it does not.
	fooFix = file{"foo", "1.0.1", "foo-1.0.1.tar.gz", "foo one, fixed", t2.Add(-48 * time.Hour)}
	fooNew = file{"foo", "2.1", "foo-2.1.tar.gz", "foo two one", t2.Add(-47 * time.Hour)}
)

// expeditePolicy returns a policy expediting f, pinned by sha256 of
// content, with more policy fields in extra (JSON members ending in a
// comma).
func expeditePolicy(t *testing.T, f file, content, extra string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(fmt.Sprintf(`{%s"expedite": [{"path": %q, "sha256": "%x", "reason": "PYSEC-2026-17: remote code execution"}]}`,
		extra, rec(f).Path, sha256.Sum256([]byte(content)))), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// An expedited security release enters stable and its project's stable
// index page, younger than the policy's minimum age, only when the room
// decides so; its sibling, as young, stays held back.
func TestExpedite(t *testing.T) {
	c := newCeremony(t)
	pol := expeditePolicy(t, fooFix, fooFix.content, "")
	e := exportOf(t, t2, []file{foo1, fooFix, fooNew, bar1})
	diff := func(decs string) (*Diff, error) {
		cfg := c.config(e, "")
		cfg.Policy, cfg.Decisions = pol, nil
		if decs != "" {
			cfg.Decisions = mustDecisions(t, decs)
		}
		return ComputeDiff(cfg)
	}
	fix := rec(fooFix).Path

	// Without a decision: a red flag in the review, and nothing signs.
	d, err := diff("")
	if err != nil {
		t.Fatal(err)
	}
	if n := d.reasonCount(Added, ReasonExpedited); n != 1 || d.ExpeditedCount() != 1 || d.reasonCount(Held, reasonTooYoung) != 1 {
		t.Errorf("expedited %d (%d), too young %d; want 1, 1, 1", n, d.ExpeditedCount(), d.reasonCount(Held, reasonTooYoung))
	}
	var text bytes.Buffer
	if err := d.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"      expedited ", "!!! expedited: younger than policy: foo 1.0.1\n        " + fix, "policy:   PYSEC-2026-17: remote code execution", "DECISION NEEDED"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, text.String())
		}
	}
	if err := d.Undecided(); !errors.Is(err, ErrExpediteUndecided) || errors.Is(err, ErrUndecided) || !strings.Contains(err.Error(), "expedited: younger than policy: "+fix) {
		t.Errorf("undecided: %v", err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "one")
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out}); !errors.Is(err, ErrExpediteUndecided) {
		t.Errorf("signed an undecided expedited file: %v", err)
	}
	assertNothing(t, dir, out)
	undecided := d.Digest
	d.Close()

	// Decided: the digest covers the decision, the canonical diff says
	// "expedited", and stable lists the file and its page.
	d, err = diff(`{"path": "` + fix + `", "decision": "expedite", "reason": "advisory checked against the upstream tag"}`)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Digest == undecided || d.Undecided() != nil || len(d.Expedited) != 1 || !d.Expedited[0].Decided || d.Expedited[0].State != ExpediteApplied {
		t.Fatalf("decided: digest %s, %v, %+v", d.Digest, d.Undecided(), d.Expedited)
	}
	if len(d.Decisions) != 1 || d.Decisions[0].Choice != decisions.Expedite {
		t.Errorf("decisions: %+v", d.Decisions)
	}
	var canon bytes.Buffer
	if err := d.WriteCanonical(&canon); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\npath\t" + fix + "\t-\texpedite\tadvisory checked against the upstream tag\n", "\nadded\texpedited\t" + fix + "\tfoo\t", "\nheld\ttoo-young\t" + rec(fooNew).Path + "\t"} {
		if !strings.Contains(canon.String(), want) {
			t.Errorf("canonical diff lacks %q", want)
		}
	}
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out}); err != nil {
		t.Fatal(err)
	}
	_, bins := loadStable(t, c, out, 1)
	all := stableTargets(bins)
	if _, ok := all[fix]; !ok {
		t.Error("the expedited file is not in stable")
	}
	if _, ok := all[rec(fooNew).Path]; ok {
		t.Error("the young sibling is in stable")
	}
	htmlPath, jsonPath := simpleindex.LayoutPEP458.PagePaths("foo")
	pages := readTars(t, filepath.Join(out, pagesDir))
	for _, p := range []string{htmlPath, jsonPath} {
		page := string(pages[p])
		if !strings.Contains(page, fooFix.filename) || !strings.Contains(page, foo1.filename) || strings.Contains(page, fooNew.filename) {
			t.Errorf("%s lists expedited %v, old %v, young sibling %v; want true, true, false:\n%s", p,
				strings.Contains(page, fooFix.filename), strings.Contains(page, foo1.filename), strings.Contains(page, fooNew.filename), page)
		}
		if _, ok := all[p]; !ok {
			t.Errorf("page %s is not a stable target", p)
		}
	}

	// The next ceremony: the file is stable; the entry has no effect,
	// and a decision to expedite it again is refused.
	cfg := c.config(exportOf(t, t2.Add(time.Hour), []file{foo1, fooFix, fooNew, bar1}), out)
	cfg.Policy = pol
	d2, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d2.ExpeditedCount() != 0 || d2.Expedited[0].State != ExpediteStable || d2.Undecided() != nil {
		t.Errorf("second ceremony: %+v, %v", d2.Expedited, d2.Undecided())
	}
	d2.Close()
	cfg = c.config(exportOf(t, t2.Add(time.Hour), []file{foo1, fooFix, fooNew, bar1}), out)
	cfg.Policy, cfg.Decisions = pol, mustDecisions(t, `{"path": "`+fix+`", "decision": "expedite", "reason": "again"}`)
	if _, err := ComputeDiff(cfg); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), "decisions.jsonl:1: path "+fix+": decided expedite, but it needs no expediting: already-stable") {
		t.Errorf("expedite decision for a stable file: %v", err)
	}
}

// What the repository's attacker can do with an expedite entry: list the
// named path with other content, or not list it; hold the file under a
// project the policy excludes; or answer a decision meant for another
// file. Each is refused, naming the file.
func TestExpediteRefused(t *testing.T) {
	c := newCeremony(t)
	fix := rec(fooFix).Path
	for _, tc := range []struct {
		name   string
		pol    *policy.Policy
		files  []file
		decs   string
		is     error
		substr string
	}{
		{"tampered hash", expeditePolicy(t, fooFix, "foo one, fixed by the attacker", ""), []file{foo1, fooFix}, "", ErrExpedite,
			fmt.Sprintf("policy expedite: %s: the export lists sha256 %x, the policy pins %x", fix, sha256.Sum256([]byte(fooFix.content)), sha256.Sum256([]byte("foo one, fixed by the attacker")))},
		{"not listed", expeditePolicy(t, fooFix, fooFix.content, ""), []file{foo1, fooNew}, "", ErrExpedite, "policy expedite: " + fix + ": not in the export export.jsonl"},
		{"excluded", expeditePolicy(t, fooFix, fooFix.content, `"excluded": ["foo"], `), []file{foo1, fooFix}, "", ErrExpedite, "policy expedite: " + fix + " (foo 1.0.1): held back as excluded; expediting overrides only the minimum age"},
		{"old enough", expeditePolicy(t, foo1, foo1.content, ""), []file{foo1, fooFix}, `{"path": "` + rec(foo1).Path + `", "decision": "expedite", "reason": "x"}`, ErrDecision, "decided expedite, but it needs no expediting: old-enough"},
		{"not expedited", expeditePolicy(t, foo1, foo1.content, ""), []file{foo1, fooFix}, `{"path": "` + fix + `", "decision": "expedite", "reason": "x"}`, ErrDecision, "path " + fix + ": decided expedite, but the policy does not expedite it"},
	} {
		cfg := c.config(exportOf(t, t2, tc.files), "")
		cfg.Policy = tc.pol
		if tc.decs != "" {
			cfg.Decisions = mustDecisions(t, tc.decs)
		}
		d, err := ComputeDiff(cfg)
		if err == nil {
			d.Close()
		}
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.substr)
		}
	}
}

// A pass kept by `stable diff` and reused by `stable sign --batch` knows
// the same red flags: the expedited file and the change to the policy's
// lists, undecided until decided, so a reused pass never signs them
// undecided.
func TestReviewedPassRedFlags(t *testing.T) {
	c := newCeremony(t)
	pub := filepath.Join(t.TempDir(), "pub")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1}), ""), pub)
	pol := expeditePolicy(t, fooFix, fooFix.content, `"excluded": ["bar"], `)
	e2 := exportOf(t, t2, []file{foo1, fooFix, fooNew, bar1})
	for _, decs := range []string{"", `{"path": "` + rec(fooFix).Path + `", "decision": "expedite", "reason": "advisory checked"}
{"project": "bar", "decision": "exclude", "reason": "must update fast"}`} {
		work := t.TempDir()
		cfg := c.config(e2, pub)
		cfg.Policy, cfg.TempDir = pol, work
		if decs != "" {
			cfg.Decisions = mustDecisions(t, decs)
		}
		fresh, err := ComputeDiff(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fresh.Keep(work); err != nil {
			t.Fatal(err)
		}
		cfg = c.config(e2, pub)
		cfg.Policy, cfg.TempDir = pol, work
		if decs != "" {
			cfg.Decisions = mustDecisions(t, decs)
		}
		d, err := OpenReviewed(cfg, fresh.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d.Expedited, fresh.Expedited) || !reflect.DeepEqual(d.PolicyChanges, fresh.PolicyChanges) || len(d.Expedited) != 1 || len(d.PolicyChanges) != 1 {
			t.Errorf("reused pass: expedited %+v, policy changes %+v; fresh %+v, %+v", d.Expedited, d.PolicyChanges, fresh.Expedited, fresh.PolicyChanges)
		}
		err = d.Undecided()
		if decs == "" && (!errors.Is(err, ErrExpediteUndecided) || !errors.Is(err, ErrPolicyChangeUndecided)) || decs != "" && err != nil {
			t.Errorf("decisions %q: reused pass undecided: %v", decs, err)
		}
		d.Close()
		fresh.Close()
	}
}

// The two mechanisms in one diff: bar leaves the export while the policy
// excludes it (a project-loss flag and a policy change) and foo's fix is
// expedited. Undecided names all three with their sentinels; one
// decisions file holding a flag, an expedite and a project decision
// settles them, in canonical order (path, flag, project); a reused pass
// raises and settles the same.
func TestFlagsExpediteAndPolicyChangeTogether(t *testing.T) {
	c := newCeremony(t)
	pub := filepath.Join(t.TempDir(), "pub")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1}), ""), pub)
	pol := expeditePolicy(t, fooFix, fooFix.content, `"excluded": ["bar"], `)
	e2 := exportOf(t, t2, []file{foo1, fooFix, fooNew})
	cfg := c.config(e2, pub)
	cfg.Policy = pol
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Undecided()
	for _, want := range []error{ErrUndecided, ErrExpediteUndecided, ErrPolicyChangeUndecided} {
		if !errors.Is(err, want) {
			t.Errorf("undecided %v: not %v", err, want)
		}
	}
	for _, want := range []string{"flag project-loss bar has no decision", "expedited: younger than policy: " + rec(fooFix).Path, "policy excluded: added bar"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("undecided %v: does not name %q", err, want)
		}
	}
	d.Close()

	decs := `{"project": "bar", "decision": "exclude", "reason": "must update fast"}
{"flag": "project-loss", "subject": "bar", "decision": "confirm", "reason": "bar's author deleted it"}
{"path": "` + rec(fooFix).Path + `", "decision": "expedite", "reason": "advisory checked"}`
	work := t.TempDir()
	cfg = c.config(e2, pub)
	cfg.Policy, cfg.TempDir, cfg.Decisions = pol, work, mustDecisions(t, decs)
	fresh, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Undecided(); err != nil {
		t.Fatalf("decided: %v", err)
	}
	var kinds []string
	for _, dc := range fresh.Decisions {
		kinds = append(kinds, dc.Names())
	}
	if want := []string{rec(fooFix).Path, "flag project-loss bar", "project bar"}; !slices.Equal(kinds, want) {
		t.Errorf("decisions %q, want %q", kinds, want)
	}
	if _, err := fresh.Keep(work); err != nil {
		t.Fatal(err)
	}
	cfg = c.config(e2, pub)
	cfg.Policy, cfg.TempDir, cfg.Decisions = pol, work, mustDecisions(t, decs)
	re, err := OpenReviewed(cfg, fresh.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if len(re.Flags) != 1 || re.Flags[0].Decision == nil || len(re.Expedited) != 1 || len(re.PolicyChanges) != 1 || re.Undecided() != nil {
		t.Errorf("reused pass: flags %+v, expedited %+v, policy changes %+v, undecided %v", re.Flags, re.Expedited, re.PolicyChanges, re.Undecided())
	}
}
