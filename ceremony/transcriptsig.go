package ceremony

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
)

// The signed end of a journal: a DSSE envelope beside it, in which the
// ceremony's threshold signs the journal's final digest (docs/audit.md).
const (
	JournalEnvelopeFile = "transcript.dsse.json"
	JournalPayloadType  = "application/vnd.keyceremony.transcript+json"
	journalFormat       = "keyceremony-transcript"
)

// ErrJournalEnvelope is wrapped by every failure of a journal's envelope.
var ErrJournalEnvelope = errors.New("the transcript's signed end does not verify")

// JournalStatement is the envelope's payload: the ceremony and the
// journal it ends, by the digest of its last line (the chain's end) and
// of the whole file (what `sha256sum transcript.jsonl` prints).
type JournalStatement struct {
	Format        string `json:"format"`
	Version       int    `json:"version"`
	Ceremony      string `json:"ceremony"`
	Repository    string `json:"repository"`
	Entries       int    `json:"entries"`
	LastSHA256    string `json:"last_sha256"`
	JournalSHA256 string `json:"journal_sha256"`
}

func journalStatement(ceremony, repository string, journal []byte) (*JournalStatement, error) {
	last, n, err := VerifyTranscript(bytes.NewReader(journal), JournalFile)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(journal)
	return &JournalStatement{Format: journalFormat, Version: 1, Ceremony: ceremony, Repository: repository, Entries: n,
		LastSHA256: hex.EncodeToString(last[:]), JournalSHA256: hex.EncodeToString(sum[:])}, nil
}

// signJournal writes JournalEnvelopeFile into out: every signer signs the
// statement over the closed journal tr (each signature verified as soon
// as it is made), the signatures sorted by key id.
func signJournal(out *outdir.Dir, tr *Transcript, ceremony, repository string, signers []keys.Signer) error {
	b, err := journalEnvelope(tr.Bytes(), ceremony, repository, signers)
	if err != nil {
		return err
	}
	return out.WriteFile(JournalEnvelopeFile, b)
}

// journalEnvelope is the file JournalEnvelopeFile for journal.
func journalEnvelope(journal []byte, ceremony, repository string, signers []keys.Signer) ([]byte, error) {
	fail := func(err error) ([]byte, error) { return nil, err }
	st, err := journalStatement(ceremony, repository, journal)
	if err != nil {
		return fail(err)
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return fail(err)
	}
	adapted := make([]dsse.Signer, len(signers))
	for i, s := range signers {
		if adapted[i], err = signeddiff.DSSESigner(s); err != nil {
			return fail(err)
		}
	}
	es, err := dsse.NewEnvelopeSigner(adapted...)
	if err != nil {
		return fail(fmt.Errorf("signing the transcript: %w", err))
	}
	env, err := es.SignPayload(context.Background(), JournalPayloadType, payload)
	if err != nil {
		return fail(fmt.Errorf("signing the transcript: %w", err))
	}
	pae := dsse.PAE(JournalPayloadType, payload)
	for i, sig := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(sig.Sig)
		if err == nil {
			err = signers[i].Key().Verify(pae, raw)
		}
		if err != nil {
			return fail(fmt.Errorf("key %s made a signature on the transcript that does not verify: %w", sig.KeyID, err))
		}
	}
	slices.SortFunc(env.Signatures, func(a, b dsse.Signature) int { return strings.Compare(a.KeyID, b.KeyID) })
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return fail(err)
	}
	return append(b, '\n'), nil
}

// checkJournalEnvelope checks dir's JournalEnvelopeFile against the
// journal beside it: for each of by, its threshold of distinct keys (ids
// recomputed) signed a statement that names ceremony and the journal
// exactly (entries, last line's digest, file's digest). It returns the
// statement. At least one by is required: no medium's end is unsigned.
func checkJournalEnvelope(dir, ceremony string, by ...tuf.RoleKeys) (*JournalStatement, error) {
	if len(by) == 0 {
		return nil, fmt.Errorf("%s: no keys to check the signed end with: %w", JournalEnvelopeFile, ErrJournalEnvelope)
	}
	data, err := os.ReadFile(filepath.Join(dir, JournalEnvelopeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing: the medium's journal ends with it: %w: %w", JournalEnvelopeFile, tuf.ErrMissing, ErrJournalEnvelope)
	}
	if err != nil {
		return nil, err
	}
	journal, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if err != nil {
		return nil, err
	}
	return verifyJournalEnvelope(data, journal, ceremony, by...)
}

// verifyJournalEnvelope is checkJournalEnvelope on the envelope's and the
// journal's bytes.
func verifyJournalEnvelope(data, journal []byte, ceremony string, by ...tuf.RoleKeys) (*JournalStatement, error) {
	if len(by) == 0 {
		return nil, fmt.Errorf("%s: no keys to check the signed end with: %w", JournalEnvelopeFile, ErrJournalEnvelope)
	}
	var env dsse.Envelope
	if err := strictjson.Decode(data, JournalEnvelopeFile, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrJournalEnvelope)
	}
	if env.PayloadType != JournalPayloadType {
		return nil, fmt.Errorf("%s: payloadType %q, want %q: %w", JournalEnvelopeFile, env.PayloadType, JournalPayloadType, ErrJournalEnvelope)
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%s: payload: %w: %w", JournalEnvelopeFile, err, ErrJournalEnvelope)
	}
	pae := dsse.PAE(env.PayloadType, payload)
	var sigs []tuf.Signature
	seen := map[string]bool{}
	for i, s := range env.Signatures {
		raw, err := base64.StdEncoding.Strict().DecodeString(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("%s: signatures[%d].sig: %w: %w", JournalEnvelopeFile, i, err, ErrJournalEnvelope)
		}
		if seen[s.KeyID] {
			continue // a key counts once
		}
		seen[s.KeyID] = true
		sigs = append(sigs, tuf.Signature{KeyID: s.KeyID, Sig: hex.EncodeToString(raw)})
	}
	// Every signature is a key of one of by: a key the ceremony revoked
	// or never had does not sign its end.
	for _, s := range sigs {
		if !slices.ContainsFunc(by, func(b tuf.RoleKeys) bool { return slices.Contains(b.KeyIDs, s.KeyID) }) {
			var names []string
			for _, b := range by {
				names = append(names, b.Role)
			}
			return nil, fmt.Errorf("%s: key %s signed, but it is not a key of %s: %w", JournalEnvelopeFile, s.KeyID, strings.Join(names, " or "), ErrJournalEnvelope)
		}
	}
	for _, b := range by {
		if err := tuf.VerifyThreshold(b.Role+" (transcript)", pae, sigs, b.KeyIDs, b.Threshold, b.Keys); err != nil {
			return nil, fmt.Errorf("%s: %w: %w", JournalEnvelopeFile, err, ErrJournalEnvelope)
		}
	}
	var got JournalStatement
	if err := strictjson.Decode(payload, JournalEnvelopeFile+" payload", &got); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrJournalEnvelope)
	}
	want, err := journalStatement(ceremony, got.Repository, journal)
	if err != nil {
		return nil, err
	}
	if got != *want {
		return nil, fmt.Errorf("%s signs %s %q with %d entries ending %s (file sha256 %s); %s is %s with %d entries ending %s (file sha256 %s): %w",
			JournalEnvelopeFile, got.Format, got.Ceremony, got.Entries, got.LastSHA256, got.JournalSHA256,
			JournalFile, ceremony, want.Entries, want.LastSHA256, want.JournalSHA256, ErrJournalEnvelope)
	}
	return &got, nil
}
