package tuf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"

	"github.com/keyceremony/keyceremony/keys"
)

// ErrThreshold means fewer distinct keys signed than the role requires.
var ErrThreshold = errors.New("not enough valid signatures")

// ThresholdError says which role fell short, by how much, and why each
// signature that did not count was rejected.
type ThresholdError struct {
	Role     string
	Valid    int
	Need     int
	Problems []string
}

func (e *ThresholdError) Error() string {
	s := fmt.Sprintf("role %s: %d of %d required signatures valid", e.Role, e.Valid, e.Need)
	if len(e.Problems) > 0 {
		s += " (" + strings.Join(e.Problems, "; ") + ")"
	}
	return s
}

func (e *ThresholdError) Unwrap() error { return ErrThreshold }

// Canonical returns the canonical JSON bytes of a signed object: the bytes
// signatures are made over.
func Canonical(signed any) ([]byte, error) {
	b, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return b, nil
}

// SignedBytes returns the bytes the signatures of m are over.
func (m *Metadata[T]) SignedBytes() ([]byte, error) { return Canonical(m.Signed) }

// Sign adds a signature by each signer, replacing an earlier signature by
// the same key. Each signature is verified before it is kept.
func (m *Metadata[T]) Sign(signers ...keys.Signer) error {
	msg, err := m.SignedBytes()
	if err != nil {
		return err
	}
	for _, s := range signers {
		sig, err := SignBytes(msg, s)
		if err != nil {
			return err
		}
		m.AddSignature(sig)
	}
	return nil
}

// SignBytes signs msg and checks the signature before returning it.
func SignBytes(msg []byte, s keys.Signer) (Signature, error) {
	k := s.Key()
	raw, err := s.Sign(msg)
	if err != nil {
		return Signature{}, fmt.Errorf("signing with key %s: %w", k.ID(), err)
	}
	if err := k.Verify(msg, raw); err != nil {
		return Signature{}, fmt.Errorf("key %s produced a signature that does not verify: %w", k.ID(), err)
	}
	return Signature{KeyID: k.ID(), Sig: hex.EncodeToString(raw)}, nil
}

// AddSignature adds sig, replacing one by the same key id.
func (m *Metadata[T]) AddSignature(sig Signature) {
	for i := range m.Signatures {
		if m.Signatures[i].KeyID == sig.KeyID {
			m.Signatures[i] = sig
			return
		}
	}
	m.Signatures = append(m.Signatures, sig)
	sort.Slice(m.Signatures, func(i, j int) bool { return m.Signatures[i].KeyID < m.Signatures[j].KeyID })
}

// MarshalFile returns the file form of m: indented JSON and a newline.
// It refuses metadata that would not load back (a nil map, for example).
func (m *Metadata[T]) MarshalFile() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encoding metadata: %w", err)
	}
	return buf.Bytes(), nil
}

// VerifyThreshold checks that at least threshold distinct keys among
// keyIDs, looked up in keyring, signed msg. Key ids are recomputed from
// the keys; a key whose id does not match never counts.
func VerifyThreshold(role string, msg []byte, sigs []Signature, keyIDs []string, threshold int, keyring map[string]*keys.Key) error {
	_, err := verifyThreshold(role, msg, sigs, keyIDs, threshold, keyring)
	return err
}

// verifyThreshold is VerifyThreshold that also returns the sorted ids of
// the keys whose signatures counted.
func verifyThreshold(role string, msg []byte, sigs []Signature, keyIDs []string, threshold int, keyring map[string]*keys.Key) ([]string, error) {
	allowed := make(map[string]bool, len(keyIDs))
	for _, id := range keyIDs {
		allowed[id] = true
	}
	counted := map[string]bool{}
	var signers, problems []string
	for _, s := range sigs {
		if !allowed[s.KeyID] {
			problems = append(problems, fmt.Sprintf("key %s is not a key of role %s", short(s.KeyID), role))
			continue
		}
		if counted[s.KeyID] {
			problems = append(problems, fmt.Sprintf("key %s signed more than once, counted once", short(s.KeyID)))
			continue
		}
		k, ok := keyring[s.KeyID]
		if !ok {
			problems = append(problems, fmt.Sprintf("key %s not in keyring", short(s.KeyID)))
			continue
		}
		if k.ID() != s.KeyID {
			problems = append(problems, fmt.Sprintf("key %s: %v", short(s.KeyID), ErrKeyIDMismatch))
			continue
		}
		raw, err := hex.DecodeString(s.Sig)
		if err != nil {
			problems = append(problems, fmt.Sprintf("key %s: signature is not hex", short(s.KeyID)))
			continue
		}
		if err := k.Verify(msg, raw); err != nil {
			problems = append(problems, fmt.Sprintf("key %s: %v", short(s.KeyID), err))
			continue
		}
		counted[s.KeyID] = true
		signers = append(signers, s.KeyID)
	}
	sort.Strings(signers)
	if len(counted) < threshold || threshold < 1 {
		return signers, &ThresholdError{Role: role, Valid: len(counted), Need: threshold, Problems: problems}
	}
	return signers, nil
}

func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// VerifyRole checks a top-level role's signatures against this root.
func (r *Root) VerifyRole(role string, msg []byte, sigs []Signature) error {
	k, err := r.RoleKeys(role)
	if err != nil {
		return err
	}
	_, err = k.Verify(msg, sigs)
	return err
}

// VerifyDelegate checks a delegated role's signatures against the
// delegation in t.
func (t *Targets) VerifyDelegate(name string, msg []byte, sigs []Signature) error {
	k, err := t.DelegateKeys(name)
	if err != nil {
		return err
	}
	_, err = k.Verify(msg, sigs)
	return err
}
