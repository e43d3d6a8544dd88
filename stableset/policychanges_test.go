package stableset

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/policy"
)

// Every project that enters or leaves the policy's nominated or excluded
// list between two ceremonies is a red flag needing its own decision; the
// previous policy is the one the previous ledger holds, which an attacker
// holding the repository cannot edit (the ledger's digest is signed).
func TestPolicyChanges(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1 := filepath.Join(dir, "one")
	c.sign(t, c.config(exportOf(t, t1, []file{foo1, bar1}), ""), out1)

	pol, err := policy.Parse([]byte(`{"nominated": ["foo", "qux"], "excluded": ["bar"]}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	e2 := exportOf(t, t2, []file{foo1, bar1})
	diff := func(decs string) (*Diff, error) {
		cfg := c.config(e2, out1)
		cfg.Policy = pol
		if decs != "" {
			cfg.Decisions = mustDecisions(t, decs)
		}
		return ComputeDiff(cfg)
	}
	d, err := diff("")
	if err != nil {
		t.Fatal(err)
	}
	want := []PolicyChange{
		{List: "nominated", Project: "*", Change: decisions.Unnominate},
		{List: "excluded", Project: "bar", Change: decisions.Exclude},
		{List: "nominated", Project: "foo", Change: decisions.Nominate},
		{List: "nominated", Project: "qux", Change: decisions.Nominate},
	}
	if len(d.PolicyChanges) != len(want) {
		t.Fatalf("changes %+v, want %+v", d.PolicyChanges, want)
	}
	for i := range want {
		if d.PolicyChanges[i] != want[i] {
			t.Errorf("change %d: %+v, want %+v", i, d.PolicyChanges[i], want[i])
		}
	}
	var text bytes.Buffer
	d.WriteText(&text)
	for _, w := range []string{"policy lists changed since stable v1: 4", "!!! excluded: added bar\n        DECISION NEEDED: {\"project\": \"bar\", \"decision\": \"exclude\"", "!!! nominated: removed *\n"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, text.String())
		}
	}
	err = d.Undecided()
	if !errors.Is(err, ErrPolicyChangeUndecided) || !strings.Contains(err.Error(), "policy excluded: added bar since stable v1 has no decision") {
		t.Errorf("undecided: %v", err)
	}
	out2 := filepath.Join(dir, "two")
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); !errors.Is(err, ErrPolicyChangeUndecided) {
		t.Errorf("signed undecided policy changes: %v", err)
	}
	assertNothing(t, dir, out2)
	d.Close()

	all := `{"project": "*", "decision": "unnominate", "reason": "nominations by name from now on"}
{"project": "bar", "decision": "exclude", "reason": "bar ships CA certificates and must update fast"}
{"project": "foo", "decision": "nominate", "reason": "asked for by its maintainers"}
{"project": "qux", "decision": "nominate", "reason": "asked for by its maintainers"}`
	d, err = diff(all)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Undecided(); err != nil {
		t.Errorf("decided: %v", err)
	}
	var canon bytes.Buffer
	d.WriteCanonical(&canon)
	if !strings.Contains(canon.String(), "\nproject\tbar\t-\texclude\tbar ships CA certificates and must update fast\n") {
		t.Errorf("canonical diff lacks the decision:\n%s", canon.String())
	}
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	// Decisions that match no change are refused.
	for _, tc := range []struct{ decs, msg string }{
		{all + "\n" + `{"project": "baz", "decision": "exclude", "reason": "x"}`, "decisions.jsonl:5: project baz: decided exclude, but the policy's excluded list did not change so since the previous ceremony"},
		{`{"project": "bar", "decision": "unexclude", "reason": "x"}`, "decisions.jsonl:1: project bar: decided unexclude"},
	} {
		if _, err := diff(tc.decs); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v, want %q", err, tc.msg)
		}
	}
	cfg := c.config(exportOf(t, t1, []file{foo1}), "")
	cfg.Decisions = mustDecisions(t, `{"project": "bar", "decision": "exclude", "reason": "x"}`)
	if _, err := ComputeDiff(cfg); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), "the first ceremony has no previous policy") {
		t.Errorf("a project decision at the first ceremony: %v", err)
	}

	// The attacker rewrites the published ledger with another previous
	// policy (one that already excluded bar): the ledger no longer
	// matches the digest stable signed.
	lpath := filepath.Join(out1, ledgerDir, "1.ledger")
	forged := rewriteLedgerPolicy(t, lpath, []byte(`{"nominated": ["foo", "qux"], "excluded": ["bar"]}`))
	if err := os.WriteFile(lpath, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := diff(""); !errors.Is(err, ErrPublished) || !strings.Contains(err.Error(), "does not match the digest stable 1 signed") {
		t.Errorf("a ledger with another policy: %v", err)
	}
}

// rewriteLedgerPolicy returns the ledger at path with its policy
// replaced, every record and the trailer made again.
func rewriteLedgerPolicy(t *testing.T, path string, pol []byte) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr, err := ledger.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	h := lr.Header()
	h.Policy = pol
	var buf bytes.Buffer
	lw, err := ledger.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := lr.Next()
		if err != nil {
			break
		}
		if err := lw.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	for {
		p, err := lr.NextProject()
		if err != nil {
			break
		}
		if err := lw.AddProject(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
