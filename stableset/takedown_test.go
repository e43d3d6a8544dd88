package stableset

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/tuf"
)

// takedownOf returns stable's delegation to the takedown role, if any.
func takedownOf(st *tuf.Metadata[tuf.Targets]) *tuf.DelegatedRole {
	pathRoles, _ := tuf.SplitStable(&st.Signed)
	for i := range pathRoles {
		if pathRoles[i].Name == tuf.TakedownRole {
			return &pathRoles[i]
		}
	}
	return nil
}

// categories returns each path's category/reason in the diff cfg makes.
func categories(t *testing.T, cfg Config) map[string]string {
	t.Helper()
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cats := map[string]string{}
	d.Entries(func(e *DiffEntry) error { cats[e.Path] = string(e.Category) + "/" + e.Reason; return nil })
	return cats
}

// TestPipelineTakedown: a take-down decision takes a stable file out of
// the bins at once (removed, reason taken-down; its project's pages made
// again without it) and delegates exactly its path to the empty takedown
// role, first and terminating; the next ceremony keeps it taken down
// (held) with no decision, even though the export lists it and the policy
// would admit it, until a lift decision puts it back. Wrong decisions are
// refused naming the line.
func TestPipelineTakedown(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2, out3, out4 := filepath.Join(dir, "one"), filepath.Join(dir, "two"), filepath.Join(dir, "three"), filepath.Join(dir, "four")
	e1 := exportOf(t, t1, []file{foo1, foo2, bar1, bar09})
	c.sign(t, c.config(e1, ""), out1)
	victim := rec(bar1).Path
	e2 := exportOf(t, t2, []file{foo1, foo2, bar1, bar09})

	for _, bad := range []struct{ file, msg string }{
		{`{"path": "` + rec(foo2).Path + `", "decision": "take-down", "reason": "x"}`, "decisions.jsonl:1: path " + rec(foo2).Path + ": not in the stable set"},
		{`{"path": "packages/*/*/*/bar-1.0-py3-none-any.whl", "decision": "take-down", "reason": "x"}`, "a takedown names exact target paths"},
		{`{"path": "` + victim + `", "decision": "lift", "reason": "x"}`, "neither taken down nor dropped, nothing to lift"},
	} {
		c.decisions = mustDecisions(t, bad.file)
		if d, err := ComputeDiff(c.config(e2, out1)); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: %v, want ErrDecision saying %q", bad.file, err, bad.msg)
			if d != nil {
				d.Close()
			}
		}
	}

	c.decisions = mustDecisions(t, `{"path": "`+victim+`", "decision": "take-down", "reason": "malware reported, PYSEC-2026-77"}`)
	cats := categories(t, c.config(e2, out1))
	res2 := c.sign(t, c.config(e2, out1), out2)
	if cats[victim] != "removed/taken-down" || cats[rec(foo2).Path] != "added/" || cats[rec(bar09).Path] != "unchanged/" || cats["simple/bar/index.html"] != "page-changed/files" {
		t.Errorf("ceremony 2 entries: %v", cats)
	}
	if !slices.Equal(res2.Diff.Takedowns, []string{victim}) || res2.Diff.Summary.Removed != 1 {
		t.Errorf("takedowns %v, summary %+v", res2.Diff.Takedowns, res2.Diff.Summary)
	}
	var text bytes.Buffer
	res2.Diff.WriteText(&text)
	if !strings.Contains(text.String(), "taken-down") || !strings.Contains(text.String(), "PYSEC-2026-77") || !strings.Contains(text.String(), "!!! 1 FILES TAKEN DOWN") {
		t.Errorf("the review does not show the takedown and its reason:\n%s", text.String())
	}
	if res2.Meta[1].Name != tuf.TakedownRole+".json" {
		t.Errorf("fragment order: %s second, want the takedown role", res2.Meta[1].Name)
	}
	st2, bins2 := loadStable(t, c, out2, 2)
	if _, ok := stableTargets(bins2)[victim]; ok {
		t.Error("the taken-down file is still in a bin")
	}
	if d := takedownOf(st2); d == nil || st2.Signed.Delegations.Roles[0].Name != tuf.TakedownRole || !slices.Equal(d.Paths, []string{victim}) {
		t.Errorf("stable v2 delegations %+v, want the takedown role first with exactly %s", st2.Signed.Delegations.Roles, victim)
	}
	if err := tuf.CheckStableLayout(c.deleg, &st2.Signed); err != nil {
		t.Errorf("layout: %v", err)
	}
	pages := readTars(t, filepath.Join(out2, pagesDir))
	if len(pages) == 0 {
		t.Fatal("no pages made again")
	}
	barPage := false
	for name, b := range pages {
		if strings.Contains(string(b), bar1.filename) {
			t.Errorf("page %s still lists %s", name, bar1.filename)
		}
		barPage = barPage || strings.Contains(name, "bar") && strings.Contains(string(b), bar09.filename)
	}
	if !barPage {
		t.Errorf("bar's pages were not made again without the file: %v", slices.Sorted(func(y func(string) bool) {
			for n := range pages {
				y(n)
			}
		}))
	}

	// Ceremony 3, no decision: kept taken down, held; taking it down
	// again is refused.
	c.decisions = mustDecisions(t, `{"path": "`+victim+`", "decision": "take-down", "reason": "again"}`)
	if _, err := ComputeDiff(c.config(e2, out2)); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), "already taken down") {
		t.Errorf("second take-down: %v", err)
	}
	c.decisions = nil
	cats = categories(t, c.config(e2, out2))
	res3 := c.sign(t, c.config(e2, out2), out3)
	if cats[victim] != "held/taken-down" || !slices.Equal(res3.Diff.Takedowns, []string{victim}) {
		t.Errorf("ceremony 3: %s %q, takedowns %v", victim, cats[victim], res3.Diff.Takedowns)
	}
	st3, bins3 := loadStable(t, c, out3, 3)
	if _, ok := stableTargets(bins3)[victim]; ok || takedownOf(st3) == nil {
		t.Error("ceremony 3 let the taken-down file back")
	}

	// Ceremony 4 lifts it: back in the bins, no takedown role.
	c.decisions = mustDecisions(t, `{"path": "`+victim+`", "decision": "lift", "reason": "the report was false (ticket 4501)"}`)
	res4 := c.sign(t, c.config(e2, out3), out4)
	c.decisions = nil
	if len(res4.Diff.Takedowns) != 0 {
		t.Errorf("takedowns after the lift: %v", res4.Diff.Takedowns)
	}
	st4, bins4 := loadStable(t, c, out4, 4)
	if _, ok := stableTargets(bins4)[victim]; !ok || takedownOf(st4) != nil {
		t.Error("the lift did not put the file back in the bins, or kept the takedown role")
	}
	for _, m := range res4.Meta {
		if m.Name == tuf.TakedownRole+".json" {
			t.Error("the fragment lists a takedown role after the lift")
		}
	}
}

// TestNextTakedowns: what an auditor recomputes from the previous
// takedowns and the decisions: take-downs added, lifts removed, other
// decisions ignored, sorted.
func TestNextTakedowns(t *testing.T) {
	ds := []decisions.Decision{
		{Path: "b", Choice: decisions.TakeDown}, {Path: "a", Choice: decisions.Lift},
		{Path: "c", Choice: decisions.Drop}, {Limit: "added", Choice: decisions.Confirm},
	}
	if got := NextTakedowns([]string{"a", "z"}, ds); !slices.Equal(got, []string{"b", "z"}) {
		t.Errorf("got %q, want [b z]", got)
	}
	if got := NextTakedowns(nil, nil); len(got) != 0 {
		t.Errorf("got %q from nothing", got)
	}
}

// TestReviewedPassTakedown: a take-down of a listed stable file signs from
// the pass `stable diff` kept as it does from a fresh pass (the same diff,
// targets, ledger and takedown role), and so does the next ceremony, which
// keeps the file taken down (held) from its kept pass.
func TestReviewedPassTakedown(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	e1 := exportOf(t, t1, []file{foo1, foo2, bar1, bar09})
	out1 := filepath.Join(dir, "one")
	c.sign(t, c.config(e1, ""), out1)
	victim := rec(bar1).Path
	e2 := exportOf(t, t2, []file{foo1, foo2, bar1, bar09})
	prev := out1
	for i, ds := range []string{`{"path": "` + victim + `", "decision": "take-down", "reason": "malware reported, PYSEC-2026-77"}`, ""} {
		c.decisions = nil
		if ds != "" {
			c.decisions = mustDecisions(t, ds)
		}
		work := t.TempDir()
		cfg := c.config(e2, prev)
		cfg.TempDir = work
		d, err := ComputeDiff(cfg)
		if err != nil {
			t.Fatal(err)
		}
		digest := d.Digest
		if _, err := d.Keep(work); err != nil {
			t.Fatal(err)
		}
		cfg = c.config(e2, prev)
		cfg.TempDir = work
		kept, err := OpenReviewed(cfg, digest)
		if err != nil {
			t.Fatalf("ceremony %d: the kept pass with a takedown: %v", i+2, err)
		}
		fresh, err := ComputeDiff(c.config(e2, prev))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := diffFields(kept), diffFields(fresh); !reflect.DeepEqual(got, want) {
			t.Errorf("ceremony %d: kept diff:\n%+v\nwant\n%+v", i+2, got, want)
		}
		out := filepath.Join(dir, fmt.Sprintf("kept%d", i+2))
		if _, err := kept.Sign(SignParams{Approve: digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out}); err != nil {
			t.Fatalf("ceremony %d: signing the kept pass: %v", i+2, err)
		}
		kept.Close()
		outFresh := filepath.Join(dir, fmt.Sprintf("fresh%d", i+2))
		if _, err := fresh.Sign(SignParams{Approve: digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: outFresh}); err != nil {
			t.Fatal(err)
		}
		fresh.Close()
		st, bins := loadStable(t, c, out, int64(i+2))
		_, binsFresh := loadStable(t, c, outFresh, int64(i+2))
		if _, ok := stableTargets(bins)[victim]; ok || !reflect.DeepEqual(stableTargets(bins), stableTargets(binsFresh)) {
			t.Errorf("ceremony %d: the kept pass signs other targets (or the taken-down file)", i+2)
		}
		if d := takedownOf(st); d == nil || !slices.Equal(d.Paths, []string{victim}) {
			t.Errorf("ceremony %d: the kept pass's stable delegates no takedown role of %s", i+2, victim)
		}
		l := fmt.Sprintf("ledger/%d.ledger", i+2)
		a, _ := os.ReadFile(filepath.Join(out, l))
		b, _ := os.ReadFile(filepath.Join(outFresh, l))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("ceremony %d: %s differs", i+2, l)
		}
		prev = out
	}
}
