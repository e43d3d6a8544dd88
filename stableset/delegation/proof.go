package delegation

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// ProofPayloadType is the DSSE payload type of a proof of possession.
const ProofPayloadType = "application/vnd.keyceremony.pop+json"

// proofFormat names the statement's format.
const proofFormat = "keyceremony-pop"

// ErrProof: a proof of possession is missing, malformed, signed by
// another key or by more than one, or names another repository, project,
// ceremony or key.
var ErrProof = errors.New("proof of possession refused")

// Proof is the statement a developer key signs to show that someone holds
// it: the repository, the project handed over, the stable version of the
// ceremony that delegates (so that a proof made for one ceremony is not
// reused at another) and the key's TUF key id.
type Proof struct {
	Repository    string `json:"repository"`
	Project       string `json:"project"`
	StableVersion int64  `json:"stable_version"`
	KeyID         string `json:"keyid"`
}

// proofJSON is the payload, fields in this order.
type proofJSON struct {
	Format        string `json:"format"`
	Version       int    `json:"version"`
	Repository    string `json:"repository"`
	Project       string `json:"project"`
	StableVersion int64  `json:"stable_version"`
	KeyID         string `json:"keyid"`
}

// envelopeJSON is the proof file: a DSSE envelope with one signature.
type envelopeJSON struct {
	PayloadType string          `json:"payloadType"`
	Payload     string          `json:"payload"`
	Signatures  []signatureJSON `json:"signatures"`
}

type signatureJSON struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// payload is the statement's exact bytes.
func (p Proof) payload() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(proofJSON{Format: proofFormat, Version: 1, Repository: p.Repository, Project: p.Project, StableVersion: p.StableVersion, KeyID: p.KeyID}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// SignProof makes the proof file for p with s, whose key must be p's: the
// developers' tool, and the tests'. The signature is verified right after
// it is made.
func SignProof(s keys.Signer, p Proof) ([]byte, error) {
	if s.Key().ID() != p.KeyID {
		return nil, fmt.Errorf("signer %s for a proof of key %s: %w", s.Key().ID(), p.KeyID, ErrProof)
	}
	payload, err := p.payload()
	if err != nil {
		return nil, err
	}
	pae := dsse.PAE(ProofPayloadType, payload)
	sig, err := s.Sign(pae)
	if err != nil {
		return nil, fmt.Errorf("signing the proof: %w", err)
	}
	if err := s.Key().Verify(pae, sig); err != nil {
		return nil, fmt.Errorf("key %s made a proof that does not verify: %w", p.KeyID, err)
	}
	env := envelopeJSON{PayloadType: ProofPayloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []signatureJSON{{KeyID: p.KeyID, Sig: base64.StdEncoding.EncodeToString(sig)}}}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// VerifyProof checks the proof file data (name, for errors) for the
// delegation of want.Project to key k: a DSSE envelope of
// ProofPayloadType with exactly one signature, by k, that verifies over
// the statement, which must name want's repository, project and stable
// version and k's key id. Empty data is a missing proof.
func VerifyProof(data []byte, name string, k *keys.Key, want Proof) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: proof of key %s for %s: %s: %w", name, k.ID(), want.Project, fmt.Sprintf(format, args...), ErrProof)
	}
	if len(data) == 0 {
		return fail("missing")
	}
	var env envelopeJSON
	if err := strictjson.Decode(data, name, &env); err != nil {
		return fmt.Errorf("%w: %w", err, ErrProof)
	}
	if env.PayloadType != ProofPayloadType {
		return fail("payloadType %s, want %s", strconv.Quote(env.PayloadType), ProofPayloadType)
	}
	if len(env.Signatures) != 1 {
		return fail("%d signatures, want exactly one, by the key", len(env.Signatures))
	}
	s := env.Signatures[0]
	if s.KeyID != k.ID() {
		return fail("signed by key %s, not by the key delegated to", snippet(s.KeyID))
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil {
		return fail("payload: not standard base64")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(s.Sig)
	if err != nil {
		return fail("sig: not standard base64")
	}
	if err := k.Verify(dsse.PAE(env.PayloadType, payload), sig); err != nil {
		return fail("the signature does not verify with the key (%v)", err)
	}
	var got proofJSON
	if err := strictjson.Decode(payload, name+" payload", &got); err != nil {
		return fmt.Errorf("%w: %w", err, ErrProof)
	}
	if got.Format != proofFormat || got.Version != 1 {
		return fail("statement format %s version %d, want %s 1", strconv.Quote(got.Format), got.Version, proofFormat)
	}
	w := Proof{Repository: want.Repository, Project: want.Project, StableVersion: want.StableVersion, KeyID: k.ID()}
	if g := (Proof{got.Repository, got.Project, got.StableVersion, got.KeyID}); g != w {
		return fail("the statement names repository %s, project %s, stable v%d, key %s; want %s, %s, v%d, %s",
			strconv.Quote(g.Repository), strconv.Quote(g.Project), g.StableVersion, snippet(g.KeyID), strconv.Quote(w.Repository), strconv.Quote(w.Project), w.StableVersion, snippet(w.KeyID))
	}
	return nil
}

// snippet quotes at most 64 bytes of s.
func snippet(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}
