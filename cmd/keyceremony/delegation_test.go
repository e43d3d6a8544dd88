package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/stableset/policy"
)

// cmdCheckProofs puts the {key, proof} entries printed by 'delegation
// prove' into a policy's delegation of PROJECT, writes it to POLICY, and
// runs the ceremony's checks on it: policy.Parse, then VerifyProofs for
// REPOSITORY at stable version VERSION: check-proofs POLICY REPOSITORY
// VERSION PROJECT ENTRY...
func cmdCheckProofs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 5 {
		ts.Fatalf("usage: check-proofs POLICY REPOSITORY VERSION PROJECT ENTRY...")
	}
	version, err := strconv.ParseInt(args[2], 10, 64)
	ts.Check(err)
	var entries []json.RawMessage
	for _, f := range args[4:] {
		entries = append(entries, json.RawMessage(ts.ReadFile(f)))
	}
	b, err := json.MarshalIndent(map[string]any{"delegations": []any{map[string]any{"project": args[3], "threshold": len(entries), "keys": entries}}}, "", "  ")
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
	p, err := policy.Parse(b, args[0])
	if err == nil {
		err = p.VerifyProofs(args[0], args[1], version)
	}
	if neg {
		if err == nil {
			ts.Fatalf("the proofs were accepted")
		}
		ts.Logf("refused: %v", err)
		return
	}
	ts.Check(err)
}

// cmdPEMBody sets VAR to a regular expression matching the first line of
// base64 of a PEM file, the key's bytes: pem-body FILE VAR.
func cmdPEMBody(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: pem-body FILE VAR")
	}
	lines := strings.Split(ts.ReadFile(args[0]), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "-----BEGIN ") || len(lines[1]) < 40 {
		ts.Fatalf("%s: not a PEM file with a body", args[0])
	}
	ts.Setenv(args[1], regexp.QuoteMeta(lines[1][:40]))
}

// cmdTheirProof checks an entry printed by 'delegation prove' with
// independent code: go-tuf v2 reads the key in TUF form and computes its
// key id, the go-securesystemslib DSSE verifier (with the standard
// library's signature check) accepts the proof as signed by that key id,
// and its payload names REPOSITORY, PROJECT, VERSION and that key id:
// their-proof ENTRY REPOSITORY PROJECT VERSION.
func cmdTheirProof(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: their-proof ENTRY REPOSITORY PROJECT VERSION")
	}
	var e struct {
		Key   metadata.Key  `json:"key"`
		Proof dsse.Envelope `json:"proof"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &e))
	pub, err := e.Key.ToPublicKey()
	ts.Check(err)
	id, err := e.Key.ID()
	ts.Check(err)
	ev, err := dsse.NewEnvelopeVerifier(stdVerifier{id: id, pub: pub})
	ts.Check(err)
	if e.Proof.PayloadType != "application/vnd.keyceremony.pop+json" {
		ts.Fatalf("payloadType %q", e.Proof.PayloadType)
	}
	accepted, err := ev.Verify(context.Background(), &e.Proof)
	ts.Check(err)
	if len(accepted) != 1 || accepted[0].KeyID != id || len(e.Proof.Signatures) != 1 {
		ts.Fatalf("accepted %+v of %d signatures, want the one by %s", accepted, len(e.Proof.Signatures), id)
	}
	payload, err := e.Proof.DecodeB64Payload()
	ts.Check(err)
	want := fmt.Sprintf(`{"format":"keyceremony-pop","version":1,"repository":%q,"project":%q,"stable_version":%s,"keyid":%q}`, args[1], args[2], args[3], id)
	if string(payload) != want {
		ts.Fatalf("payload %s, want %s", payload, want)
	}
}

// stdVerifier checks a DSSE signature with the standard library alone.
type stdVerifier struct {
	id  string
	pub any
}

func (v stdVerifier) KeyID() (string, error)   { return v.id, nil }
func (v stdVerifier) Public() crypto.PublicKey { return v.pub }
func (v stdVerifier) Verify(_ context.Context, data, sig []byte) error {
	switch p := v.pub.(type) {
	case ed25519.PublicKey:
		if ed25519.Verify(p, data, sig) {
			return nil
		}
	case *ecdsa.PublicKey:
		h := sha256.Sum256(data)
		if ecdsa.VerifyASN1(p, h[:], sig) {
			return nil
		}
	}
	return errors.New("signature does not verify")
}
