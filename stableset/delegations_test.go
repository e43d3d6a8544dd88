package stableset

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/tuf"
)

var fooBar1 = file{"foo-bar", "1.0", "foo_bar-1.0-py3-none-any.whl", "foo-bar one", old}

// developers are a project's developer keys, as the tests hold them.
type developers []keys.Signer

func newDevelopers(t testing.TB) developers {
	t.Helper()
	ed, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	ec, err := keys.GenerateECDSA()
	if err != nil {
		t.Fatal(err)
	}
	return developers{ed, ec}
}

// delegatingPolicy is the default policy delegating project to devs
// (threshold 2), each key's proof made by prover(i) for stmt.
func delegatingPolicy(t testing.TB, project string, devs developers, version int64, prover func(i int) keys.Signer) *policy.Policy {
	return delegatingPolicyWith(t, nil, project, devs, version, prover)
}

// delegatingPolicyWith is delegatingPolicy with the other fields of the
// policy from extra.
func delegatingPolicyWith(t testing.TB, extra map[string]any, project string, devs developers, version int64, prover func(i int) keys.Signer) *policy.Policy {
	t.Helper()
	type keyJSON struct {
		Key   *keys.Key       `json:"key"`
		Proof json.RawMessage `json:"proof"`
	}
	var ks []keyJSON
	for i, s := range devs {
		p := s
		if prover != nil {
			p = prover(i)
		}
		proof, err := delegation.SignProof(p, delegation.Proof{Repository: "pypi", Project: project, StableVersion: version, KeyID: p.Key().ID()})
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, keyJSON{s.Key(), proof})
	}
	fields := map[string]any{"delegations": []any{map[string]any{"project": project, "threshold": len(devs), "keys": ks}}}
	for k, v := range extra {
		fields[k] = v
	}
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(b, "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func developerRole(st *tuf.Metadata[tuf.Targets], project string) *tuf.DelegatedRole {
	pathRoles, _ := tuf.SplitStable(&st.Signed)
	for i := range pathRoles {
		if pathRoles[i].Name == tuf.DeveloperRole(project) {
			return &pathRoles[i]
		}
	}
	return nil
}

// TestPipelineDelegation: a policy delegating foo, with the developers'
// proofs for this ceremony and a delegate decision, makes stable delegate
// exactly foo's derived patterns and pages to project-foo, before the
// bins and terminating, with the developers' keys and threshold; foo's
// files and pages leave the bins (removed or held, reason delegated),
// foo-bar's, whose names share foo's prefix, stay. Removing the
// delegation, decided, puts foo's files back in the bins in the same
// ceremony. Without a decision either way stable sign refuses.
func TestPipelineDelegation(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2, out3 := filepath.Join(dir, "one"), filepath.Join(dir, "two"), filepath.Join(dir, "three")
	files := []file{foo1, foo2, fooBar1, bar1}
	c.sign(t, c.config(exportOf(t, t1, files), ""), out1)
	e2 := exportOf(t, t2, files)
	devs := newDevelopers(t)
	pol := delegatingPolicy(t, "foo", devs, 2, nil)
	cfg := func(e []byte, pub string, p *policy.Policy) Config {
		cf := c.config(e, pub)
		cf.Policy = p
		return cf
	}

	// No decision: the review shows the change, sign refuses.
	d, err := ComputeDiff(cfg(e2, out1, pol))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	d.WriteText(&text)
	if err := d.Undecided(); !errors.Is(err, ErrPolicyChangeUndecided) || !strings.Contains(err.Error(), "policy delegations: added foo since stable v1 has no decision") {
		t.Errorf("undecided delegation: %v", err)
	}
	for _, want := range []string{"!!! delegations: added foo", `DECISION NEEDED: {"project": "foo", "decision": "delegate"`, "delegations  ", "files held by developer roles", "path packages/*/*/*/[Ff][Oo][Oo]-[0-9]*"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the review lacks %q:\n%s", want, text.String())
		}
	}
	d.Close()

	c.decisions = mustDecisions(t, `{"project": "foo", "decision": "delegate", "reason": "foo's maintainers sign their releases (ticket 7001)"}`)
	cats := categories(t, cfg(e2, out1, pol))
	res := c.sign(t, cfg(e2, out1, pol), out2)
	if cats[rec(foo1).Path] != "removed/delegated" || cats[rec(foo2).Path] != "held/delegated" || cats[rec(fooBar1).Path] != "unchanged/" || cats["simple/foo/index.html"] != "page-removed/" {
		t.Errorf("ceremony 2 entries: %v", cats)
	}
	if len(res.Diff.Delegations) != 1 || res.Diff.DelegatedFiles() != 2 {
		t.Errorf("delegations %+v", res.Diff.Delegations)
	}
	for _, f := range res.Diff.Flags {
		t.Errorf("flag %s raised: the delegate decision settles foo's loss", f.Names())
	}
	st2, bins2 := loadStable(t, c, out2, 2)
	role := developerRole(st2, "foo")
	want := delegation.Patterns("foo", "simple/foo/index.html", "simple/foo/index.json")
	if role == nil || st2.Signed.Delegations.Roles[0].Name != "project-foo" || !role.Terminating || role.Threshold != 2 ||
		!slices.Equal(role.KeyIDs, []string{devs[0].Key().ID(), devs[1].Key().ID()}) || !slices.Equal(role.Paths, want) {
		t.Fatalf("stable v2 delegations %+v, want project-foo first, terminating, 2 of the developers' keys, paths %q", st2.Signed.Delegations.Roles, want)
	}
	for _, s := range devs {
		if k := st2.Signed.Delegations.Keys[s.Key().ID()]; !k.Equal(s.Key()) {
			t.Errorf("stable does not carry developer key %s", s.Key().ID())
		}
	}
	if err := tuf.CheckStableLayout(c.deleg, &st2.Signed); err != nil {
		t.Errorf("layout: %v", err)
	}
	in := stableTargets(bins2)
	for _, p := range []string{rec(foo1).Path, rec(foo2).Path, "simple/foo/index.html", "simple/foo/index.json"} {
		if _, ok := in[p]; ok {
			t.Errorf("%s is still in a bin", p)
		}
	}
	for _, p := range []string{rec(fooBar1).Path, rec(bar1).Path, "simple/foo-bar/index.html"} {
		if _, ok := in[p]; !ok {
			t.Errorf("%s left the bins", p)
		}
	}
	for _, m := range res.Meta {
		if strings.HasPrefix(m.Name, tuf.DeveloperRolePrefix) {
			t.Errorf("the fragment lists %s: the developers' metadata is theirs", m.Name)
		}
	}

	// Ceremony 3, the same delegation with new proofs and no decision:
	// nothing changed, nothing to decide; a delegate decision is refused.
	pol3 := delegatingPolicy(t, "foo", devs, 3, nil)
	if _, err := ComputeDiff(cfg(e2, out2, pol3)); !errors.Is(err, ErrDecision) || !strings.Contains(err.Error(), "project foo: decided delegate, but the delegations did not change so") {
		t.Errorf("a delegate decision for an unchanged delegation: %v", err)
	}
	c.decisions = nil
	if d, err := ComputeDiff(cfg(e2, out2, pol3)); err != nil || d.Undecided() != nil {
		t.Errorf("the unchanged delegation: %v, %v", err, d.Undecided())
	} else {
		d.Close()
	}

	// Ceremony 3 removes the delegation: undecided, refused; decided,
	// foo's files fall back to the bins at once.
	d, err = ComputeDiff(c.config(e2, out2))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Undecided(); !errors.Is(err, ErrPolicyChangeUndecided) || !strings.Contains(err.Error(), "policy delegations: removed foo") {
		t.Errorf("undecided removal: %v", err)
	}
	d.Close()
	c.decisions = mustDecisions(t, `{"project": "foo", "decision": "undelegate", "reason": "the maintainers lost their keys (ticket 7002)"}`)
	cats = categories(t, c.config(e2, out2))
	c.sign(t, c.config(e2, out2), out3)
	c.decisions = nil
	if cats[rec(foo1).Path] != "added/" || cats[rec(foo2).Path] != "added/" || cats["simple/foo/index.html"] != "page-added/" {
		t.Errorf("ceremony 3 entries: %v", cats)
	}
	st3, bins3 := loadStable(t, c, out3, 3)
	if developerRole(st3, "foo") != nil {
		t.Error("stable v3 still delegates foo")
	}
	if _, ok := stableTargets(bins3)[rec(foo1).Path]; !ok {
		t.Error("foo's file did not fall back to the bins")
	}
}

// TestDelegationRefused, as the attacker would try: a key nobody holds
// (its proof missing, or made by another key), a proof from another
// ceremony, and a delegation whose pattern would capture another
// project's file, are refused before anything is decided, naming what
// is wrong.
func TestDelegationRefused(t *testing.T) {
	c := newCeremony(t)
	devs := newDevelopers(t)
	attacker, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	e := exportOf(t, t1, []file{foo1, fooBar1, bar1})
	foo2x := file{"foo-2", "1.0", "foo-2-1.0.tar.gz", "foo-2 one", old}
	clash := exportOf(t, t1, []file{foo1, foo2x, bar1})
	for _, c2 := range []struct {
		name   string
		pol    *policy.Policy
		export []byte
		err    error
		msg    string
	}{
		{"a proof by another key", delegatingPolicy(t, "foo", devs, 1, func(i int) keys.Signer {
			if i == 1 {
				return attacker
			}
			return devs[i]
		}), e, delegation.ErrProof, "keys[1].proof: proof of key " + devs[1].Key().ID() + " for foo: signed by key \"" + attacker.Key().ID() + "\", not by the key delegated to"},
		{"a proof from another ceremony", delegatingPolicy(t, "foo", devs, 7, nil), e, delegation.ErrProof, "stable v7, key"},
		{"a proof for another project", delegatingPolicy(t, "foo-bar", devs, 1, nil), clash, nil, ""},
		{"a colliding pattern", delegatingPolicy(t, "foo", devs, 1, nil), clash, delegation.ErrCollision, "matches " + rec(foo2x).Path + ", a file of project foo-2"},
	} {
		cfg := c.config(c2.export, "")
		cfg.Policy = c2.pol
		d, err := ComputeDiff(cfg)
		if c2.err == nil {
			// foo-bar's delegation with foo-2 in the export: no clash.
			if err != nil {
				t.Errorf("%s: %v", c2.name, err)
			} else {
				d.Close()
			}
			continue
		}
		if !errors.Is(err, c2.err) || !strings.Contains(err.Error(), c2.msg) {
			t.Errorf("%s: %v, want %v saying %q", c2.name, err, c2.err, c2.msg)
		}
		if d != nil {
			d.Close()
		}
	}
}

// TestDelegationPagesMode: in pages mode too the developers sign the
// delegated project's index pages: stable delegates them to the
// developers' role and the bins no longer list them.
func TestDelegationPagesMode(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	files := []file{foo1, fooBar1, bar1}
	pages, err := policy.Parse([]byte(`{"target_mode": "pages"}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(e []byte, pub string, p *policy.Policy) Config {
		cf := c.config(e, pub)
		cf.Policy = p
		return cf
	}
	c.sign(t, cfg(exportOf(t, t1, files), "", pages), out1)
	if _, bins := loadStable(t, c, out1, 1); len(stableTargets(bins)) != 6 {
		t.Fatalf("pages mode, ceremony 1: %d targets, want 6 pages", len(stableTargets(bins)))
	}
	devs := newDevelopers(t)
	pol := delegatingPolicyWith(t, map[string]any{"target_mode": "pages"}, "foo", devs, 2, nil)
	c.decisions = mustDecisions(t, `{"project": "foo", "decision": "delegate", "reason": "foo's maintainers sign their pages (ticket 7003)"}`)
	defer func() { c.decisions = nil }()
	c.sign(t, cfg(exportOf(t, t2, files), out1, pol), out2)
	st2, bins2 := loadStable(t, c, out2, 2)
	in := stableTargets(bins2)
	if _, ok := in["simple/foo/index.html"]; ok || len(in) != 4 {
		t.Errorf("pages mode with foo delegated: bins list %d targets (foo's page: %v), want bar's and foo-bar's 4 pages", len(in), ok)
	}
	role := developerRole(st2, "foo")
	if role == nil || !slices.Contains(role.Paths, "simple/foo/index.html") || !slices.Contains(role.Paths, "simple/foo/index.json") {
		t.Errorf("the developers' role is not delegated foo's pages: %+v", role)
	}
}
