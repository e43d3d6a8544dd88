package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/export"
)

func devSigner(t testing.TB, ecdsa bool) keys.Signer {
	t.Helper()
	var s keys.Signer
	var err error
	if ecdsa {
		s, err = keys.GenerateECDSA()
	} else {
		s, err = keys.GenerateEd25519()
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// delegationJSON is a policy delegating project to the signers' keys,
// each with the proof by prover[i] (nil: the key's own) for the
// statement p (KeyID filled in).
func delegationJSON(t testing.TB, project string, threshold int, signers []keys.Signer, provers []keys.Signer, p delegation.Proof) []byte {
	t.Helper()
	type keyJSON struct {
		Key   *keys.Key       `json:"key"`
		Proof json.RawMessage `json:"proof"`
	}
	var ks []keyJSON
	for i, s := range signers {
		prover := s
		if provers != nil && provers[i] != nil {
			prover = provers[i]
		}
		q := p
		q.KeyID = prover.Key().ID()
		proof, err := delegation.SignProof(prover, q)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, keyJSON{s.Key(), proof})
	}
	b, err := json.MarshalIndent(map[string]any{"delegations": []any{map[string]any{"project": project, "threshold": threshold, "keys": ks}}}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A policy hands a project to its developers' keys with their proofs;
// it round-trips, and the proofs verify for the ceremony they name and
// no other.
func TestDelegations(t *testing.T) {
	ed, ec := devSigner(t, false), devSigner(t, true)
	stmt := delegation.Proof{Repository: "pypi", Project: "foo-bar", StableVersion: 3}
	data := delegationJSON(t, "foo-bar", 2, []keys.Signer{ed, ec}, nil, stmt)
	p, err := Parse(data, "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := p.Delegated("foo-bar")
	if !ok || d.Threshold != 2 || len(d.Keys) != 2 || d.KeyIDs()[1] != ec.Key().ID() {
		t.Fatalf("delegations = %+v", p.Delegations)
	}
	if err := p.VerifyProofs("policy.json", "pypi", 3); err != nil {
		t.Errorf("VerifyProofs: %v", err)
	}
	enc, _ := p.MarshalJSON()
	q, err := Parse(enc, "again")
	if err != nil {
		t.Fatalf("%v\n%s", err, enc)
	}
	if !samePolicy(p, q) {
		t.Errorf("round trip: %+v, want %+v", q.Delegations, p.Delegations)
	}
	if err := q.VerifyProofs("again", "pypi", 3); err != nil {
		t.Errorf("re-encoded proofs: %v", err)
	}
	// As the attacker would try: the proofs made for this ceremony,
	// presented at another, for another repository.
	for _, c := range []struct {
		repo    string
		version int64
		msg     string
	}{{"pypi", 4, "stable v3"}, {"testpypi", 3, `repository "pypi"`}} {
		err := p.VerifyProofs("policy.json", c.repo, c.version)
		if !errors.Is(err, delegation.ErrProof) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "policy.json: delegations (foo-bar) keys[0].proof") {
			t.Errorf("%s v%d: %v", c.repo, c.version, err)
		}
	}
	// A key nobody holds: the proof beside it is another key's, or names
	// another project.
	other := devSigner(t, false)
	for _, c := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"a proof by another key", delegationJSON(t, "foo-bar", 1, []keys.Signer{ed, ec}, []keys.Signer{nil, other}, stmt), "keys[1].proof: proof of key " + ec.Key().ID() + " for foo-bar: signed by key \"" + other.Key().ID()},
		{"a proof for another project", delegationJSON(t, "foo", 1, []keys.Signer{ed}, nil, stmt), `project "foo-bar"`},
	} {
		p, err := Parse(c.data, "policy.json")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := p.VerifyProofs("policy.json", "pypi", 3); !errors.Is(err, delegation.ErrProof) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.name, err, c.msg)
		}
	}
}

// Bad delegations are refused naming the field.
func TestDelegationRefusals(t *testing.T) {
	ed := devSigner(t, false)
	key, _ := json.Marshal(ed.Key())
	proof, err := delegation.SignProof(ed, delegation.Proof{Repository: "pypi", Project: "foo", StableVersion: 1, KeyID: ed.Key().ID()})
	if err != nil {
		t.Fatal(err)
	}
	k := `{"key": ` + string(key) + `, "proof": ` + string(proof) + `}`
	for _, c := range []struct {
		json, field string
		err         error
	}{
		{`{"delegations": [{"project": "Foo", "threshold": 1, "keys": [` + k + `]}]}`, "delegations[0].project", export.ErrBadProject},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": [` + k + `]}, {"project": "foo", "threshold": 1, "keys": [` + k + `]}]}`, "delegations[1].project", export.ErrBadValue},
		{`{"excluded": ["foo"], "delegations": [{"project": "foo", "threshold": 1, "keys": [` + k + `]}]}`, "delegations[0].project", export.ErrBadValue},
		{`{"delegations": [{"project": "foo", "threshold": 2, "keys": [` + k + `]}]}`, "delegations[0].threshold", export.ErrBadValue},
		{`{"delegations": [{"project": "foo", "threshold": 0, "keys": [` + k + `]}]}`, "delegations[0].threshold", export.ErrBadValue},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": []}]}`, "delegations[0].keys", export.ErrBadValue},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": [` + k + `, ` + k + `]}]}`, "delegations[0].keys[1].key", export.ErrBadValue},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": [{"key": ` + string(key) + `}]}]}`, "delegations[0].keys[0].proof", export.ErrUnknownField},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": [{"key": ` + string(key) + `, "proof": "sig"}]}]}`, "delegations[0].keys[0].proof", export.ErrType},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": [{"key": {"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": "x"}}, "proof": {}}]}]}`, "delegations[0].keys[0].key", export.ErrBadValue},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": [{"key": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "00"}}, "proof": {}}]}]}`, "delegations[0].keys[0].key", export.ErrBadValue},
		{`{"delegations": [{"project": "foo", "threshold": 1, "keys": [` + k + `], "reason": "x"}]}`, "delegations[0].reason", export.ErrUnknownField},
	} {
		_, err := Parse([]byte(c.json), "p.json")
		var pe *Error
		if !errors.As(err, &pe) || pe.Field != c.field || !errors.Is(err, c.err) {
			t.Errorf("%s:\n  %v, want field %s, %v", c.json, err, c.field, c.err)
		}
	}
}
