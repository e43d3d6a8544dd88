package signeddiff

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/tuf"
)

// PayloadType is the DSSE payloadType of a signed diff.
const PayloadType = "application/vnd.keyceremony.diff+json"

// DiffFormat and DiffFormatVersion name the payload format; they are the
// first two fields of every payload.
const (
	DiffFormat        = "keyceremony-diff"
	DiffFormatVersion = 3
)

// The target modes and naming layouts a statement may name (the policy's
// target_mode and naming; docs/policy.md).
var (
	TargetModes = []string{"files+pages", "pages"}
	Namings     = []string{"pep458", "warehouse"}
)

// diffRole names the signers in threshold errors.
const diffRole = "stable (signed diff)"

// Statement is what the stable keyholders sign about a ceremony's
// diff: where it came from, its summary, and the digest of the full
// canonical diff, which an auditor recomputes (docs/signed-diff.md).
type Statement struct {
	Repository            string // the repository's name, as the export's header has it
	Ceremony              int64  // the ceremony's number, from 1
	PreviousStableVersion int64  // the stable version the diff starts from (0: none)
	StableVersion         int64  // the stable version this ceremony signs
	// PreviousLedgerSHA256 is the SHA-256 of the previous ceremony's
	// ledger, zero when there is none (the first ceremony).
	PreviousLedgerSHA256 [32]byte
	// NewLedgerSHA256 is the SHA-256 of the ledger this ceremony writes
	// (stable/ledger/<stable_version>.ledger on the media).
	NewLedgerSHA256 [32]byte
	// TrustsUploadTimes is true exactly when there is no previous ledger:
	// the repository's upload times could not be checked for backdating.
	TrustsUploadTimes bool
	Export            Export
	PolicySHA256      [32]byte // SHA-256 of the policy file the ceremony applied
	// TargetMode is what stable lists as targets: "files+pages" (the
	// distribution files and the index pages) or "pages" (the pages
	// only); Naming the pages' naming layout, "pep458" or "warehouse".
	TargetMode string
	Naming     string
	Counts     Counts
	Projects   Projects
	// Decisions are the room's decisions, in canonical order (limit
	// decisions by limit, then path decisions by path, then flag
	// decisions by kind and subject; decisions.SortKey), each with its
	// reason; the digest covers them too. Line is always 0.
	Decisions  []decisions.Decision
	DiffSHA256 [32]byte // SHA-256 of the full canonical diff
}

// Export identifies the repository export the diff was computed from.
type Export struct {
	Generated time.Time // the header's generated time (UTC, whole seconds)
	Count     int64     // the trailer's record count
	SHA256    [32]byte  // the trailer's digest
}

// Counts counts the files in each category of the diff.
type Counts struct {
	Added           int64
	HeldBack        []HeldBackCount // by reason, sorted by reason, each reason once
	Removed         int64
	ChangedAccepted int64
	ChangedRefused  int64 // kept-old: the stable entry stays
	ChangedDropped  int64 // dropped: the path left the stable set
	Unchanged       int64
}

// HeldBackCount is how many files were held back for one reason.
type HeldBackCount struct {
	Reason string // lowercase ASCII letters, digits, '-' and '_', e.g. "too-young"
	Count  int64
}

// Projects summarises the diff per project.
type Projects struct {
	Total         int64    // projects in the diff, held ones included (docs/signed-diff.md)
	Changed       int64    // projects with at least one file added, removed or changed
	SummarySHA256 [32]byte // SHA-256 of the canonical per-project summary
}

// Causes of signed-diff errors; check with errors.Is. A threshold failure
// is a *tuf.ThresholdError, which matches tuf.ErrThreshold.
var (
	ErrDiffStatement    = errors.New("invalid diff statement")
	ErrDiffPayloadType  = errors.New("wrong payload type")
	ErrDiffNotCanonical = errors.New("not in canonical form")
	ErrSignedDiff       = errors.New("malformed signed diff")
	ErrDiffSigner       = errors.New("unusable signer")
)

// The payload's JSON form. Field order here is the order in the payload.
type diffJSON struct {
	Format                string         `json:"format"`
	Version               int            `json:"version"`
	Repository            string         `json:"repository"`
	Ceremony              int64          `json:"ceremony"`
	PreviousStableVersion int64          `json:"previous_stable_version"`
	StableVersion         int64          `json:"stable_version"`
	PreviousLedgerSHA256  string         `json:"previous_ledger_sha256"` // "" when none
	NewLedgerSHA256       string         `json:"new_ledger_sha256"`
	TrustsUploadTimes     bool           `json:"trusts_upload_times"`
	Export                exportJSON     `json:"export"`
	PolicySHA256          string         `json:"policy_sha256"`
	TargetMode            string         `json:"target_mode"`
	Naming                string         `json:"naming"`
	Counts                countsJSON     `json:"counts"`
	Projects              projectsJSON   `json:"projects"`
	Decisions             []decisionJSON `json:"decisions"`
	DiffSHA256            string         `json:"diff_sha256"`
}

type decisionJSON struct {
	Kind     string `json:"kind"`           // "limit", "path", "flag" or "project"
	Flag     string `json:"flag,omitempty"` // a flag decision's kind of red flag
	Subject  string `json:"subject"`        // the limit's name, the path, the flag's subject or the project
	Count    int64  `json:"count"`          // a limit decision's count; 0 for a path
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

type exportJSON struct {
	Generated string `json:"generated"`
	Count     int64  `json:"count"`
	SHA256    string `json:"sha256"`
}

type countsJSON struct {
	Added           int64          `json:"added"`
	HeldBack        []heldBackJSON `json:"held_back"`
	Removed         int64          `json:"removed"`
	ChangedAccepted int64          `json:"changed_accepted"`
	ChangedRefused  int64          `json:"changed_refused"`
	ChangedDropped  int64          `json:"changed_dropped"`
	Unchanged       int64          `json:"unchanged"`
}

type heldBackJSON struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

type projectsJSON struct {
	Total         int64  `json:"total"`
	Changed       int64  `json:"changed"`
	SummarySHA256 string `json:"summary_sha256"`
}

const diffTimeLayout = "2006-01-02T15:04:05Z"

func stmtErr(field, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %w", field, fmt.Errorf(format, args...), ErrDiffStatement)
}

// Validate checks every field of the statement; Sign and
// DecodeStatement call it. Errors wrap ErrDiffStatement and name the
// payload field.
func (st *Statement) Validate() error {
	if st == nil {
		return stmtErr("statement", "nil")
	}
	if st.Repository == "" || len(st.Repository) > 200 || !utf8.ValidString(st.Repository) || hasControl(st.Repository) {
		return stmtErr("repository", "%q: want 1 to 200 bytes of UTF-8 without control characters", st.Repository)
	}
	if st.Ceremony < 1 {
		return stmtErr("ceremony", "%d: want 1 or more", st.Ceremony)
	}
	if st.PreviousStableVersion < 0 {
		return stmtErr("previous_stable_version", "%d is negative", st.PreviousStableVersion)
	}
	if st.StableVersion <= st.PreviousStableVersion {
		return stmtErr("stable_version", "%d is not after the previous version %d", st.StableVersion, st.PreviousStableVersion)
	}
	if (st.PreviousLedgerSHA256 == [32]byte{}) != st.TrustsUploadTimes {
		return stmtErr("trusts_upload_times", "%v, but a previous ledger is %s: it must be true exactly when there is none", st.TrustsUploadTimes, map[bool]string{true: "absent", false: "present"}[st.PreviousLedgerSHA256 == [32]byte{}])
	}
	if !slices.Contains(TargetModes, st.TargetMode) {
		return stmtErr("target_mode", "%q: want one of %q", st.TargetMode, TargetModes)
	}
	if !slices.Contains(Namings, st.Naming) {
		return stmtErr("naming", "%q: want one of %q", st.Naming, Namings)
	}
	g := st.Export.Generated
	if g.IsZero() || g.Location() != time.UTC || g.Nanosecond() != 0 || g.Year() < 1 || g.Year() > 9999 {
		return stmtErr("export.generated", "%v: want a UTC time in whole seconds", g)
	}
	if st.Export.Count < 0 {
		return stmtErr("export.count", "%d is negative", st.Export.Count)
	}
	for _, d := range []struct {
		field string
		sum   *[32]byte
	}{
		{"export.sha256", &st.Export.SHA256},
		{"new_ledger_sha256", &st.NewLedgerSHA256},
		{"policy_sha256", &st.PolicySHA256},
		{"projects.summary_sha256", &st.Projects.SummarySHA256},
		{"diff_sha256", &st.DiffSHA256},
	} {
		if *d.sum == [32]byte{} {
			return stmtErr(d.field, "all zero")
		}
	}
	c := &st.Counts
	for _, n := range []struct {
		field string
		v     int64
	}{
		{"counts.added", c.Added}, {"counts.removed", c.Removed},
		{"counts.changed_accepted", c.ChangedAccepted}, {"counts.changed_refused", c.ChangedRefused}, {"counts.changed_dropped", c.ChangedDropped},
		{"counts.unchanged", c.Unchanged},
		{"projects.total", st.Projects.Total}, {"projects.changed", st.Projects.Changed},
	} {
		if n.v < 0 {
			return stmtErr(n.field, "%d is negative", n.v)
		}
	}
	for i, h := range c.HeldBack {
		field := fmt.Sprintf("counts.held_back[%d]", i)
		if !validReason(h.Reason) {
			return stmtErr(field+".reason", "%q: want 1 to 64 lowercase ASCII letters, digits, '-' or '_'", h.Reason)
		}
		if i > 0 && h.Reason <= c.HeldBack[i-1].Reason {
			return stmtErr(field+".reason", "%q: reasons must be sorted and distinct", h.Reason)
		}
		if h.Count < 0 {
			return stmtErr(field+".count", "%d is negative", h.Count)
		}
	}
	var prev string
	for i, d := range st.Decisions {
		field := fmt.Sprintf("decisions[%d]", i)
		line := decisions.AppendLine(nil, &d)
		back, err := decisions.ParseLine(string(line[:len(line)-1]))
		if err != nil {
			return stmtErr(field, "%v", err)
		}
		if back != d {
			return stmtErr(field, "%+v is not a decision as a decisions file gives it", d)
		}
		key := decisions.SortKey(&d)
		if i > 0 && key <= prev {
			return stmtErr(field, "decisions must be in canonical order, each once")
		}
		prev = key
	}
	return nil
}

func validReason(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// MarshalPayload returns the payload bytes of the statement: compact JSON,
// fields in a fixed order, no trailing newline. It is the only encoding
// DecodeStatement accepts.
func (st *Statement) MarshalPayload() ([]byte, error) {
	if err := st.Validate(); err != nil {
		return nil, err
	}
	w := diffJSON{
		Format:                DiffFormat,
		Version:               DiffFormatVersion,
		Repository:            st.Repository,
		Ceremony:              st.Ceremony,
		PreviousStableVersion: st.PreviousStableVersion,
		StableVersion:         st.StableVersion,
		TrustsUploadTimes:     st.TrustsUploadTimes,
		Export: exportJSON{
			Generated: st.Export.Generated.Format(diffTimeLayout),
			Count:     st.Export.Count,
			SHA256:    hex.EncodeToString(st.Export.SHA256[:]),
		},
		PolicySHA256: hex.EncodeToString(st.PolicySHA256[:]),
		TargetMode:   st.TargetMode,
		Naming:       st.Naming,
		Counts: countsJSON{
			Added:           st.Counts.Added,
			HeldBack:        make([]heldBackJSON, len(st.Counts.HeldBack)),
			Removed:         st.Counts.Removed,
			ChangedAccepted: st.Counts.ChangedAccepted,
			ChangedRefused:  st.Counts.ChangedRefused,
			ChangedDropped:  st.Counts.ChangedDropped,
			Unchanged:       st.Counts.Unchanged,
		},
		NewLedgerSHA256: hex.EncodeToString(st.NewLedgerSHA256[:]),
		Decisions:       make([]decisionJSON, len(st.Decisions)),
		Projects: projectsJSON{
			Total:         st.Projects.Total,
			Changed:       st.Projects.Changed,
			SummarySHA256: hex.EncodeToString(st.Projects.SummarySHA256[:]),
		},
		DiffSHA256: hex.EncodeToString(st.DiffSHA256[:]),
	}
	if st.PreviousLedgerSHA256 != [32]byte{} {
		w.PreviousLedgerSHA256 = hex.EncodeToString(st.PreviousLedgerSHA256[:])
	}
	for i, h := range st.Counts.HeldBack {
		w.Counts.HeldBack[i] = heldBackJSON(h)
	}
	for i, d := range st.Decisions {
		w.Decisions[i] = decisionJSON{Kind: "path", Subject: d.Path, Count: d.Count, Decision: string(d.Choice), Reason: d.Reason}
		switch {
		case d.Limit != "":
			w.Decisions[i].Kind, w.Decisions[i].Subject = "limit", d.Limit
		case d.Flag != "":
			w.Decisions[i].Kind, w.Decisions[i].Flag, w.Decisions[i].Subject = "flag", d.Flag, d.Subject
		case d.Project != "":
			w.Decisions[i].Kind, w.Decisions[i].Subject = "project", d.Project
		}
	}
	return marshalNoHTML(w, "")
}

// marshalNoHTML encodes v as JSON without HTML escaping and without the
// encoder's trailing newline, indented when indent is not empty.
func marshalNoHTML(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeStatement parses a payload strictly: it must be exactly what
// MarshalPayload writes for a valid statement (so unknown, missing,
// duplicate or reordered fields, other spellings of a field name, extra
// whitespace, uppercase hex and other time formats are all refused).
func DecodeStatement(payload []byte) (*Statement, error) {
	if !utf8.Valid(payload) {
		return nil, fmt.Errorf("payload is not UTF-8: %w", ErrDiffStatement)
	}
	var w diffJSON
	if err := decodeJSONStrict(payload, "payload", &w, ErrDiffStatement); err != nil {
		return nil, err
	}
	if w.Format != DiffFormat || w.Version != DiffFormatVersion {
		return nil, stmtErr("format", "%q version %d, want %q version %d", w.Format, w.Version, DiffFormat, DiffFormatVersion)
	}
	st := &Statement{
		Repository:            w.Repository,
		Ceremony:              w.Ceremony,
		PreviousStableVersion: w.PreviousStableVersion,
		StableVersion:         w.StableVersion,
		TrustsUploadTimes:     w.TrustsUploadTimes,
		TargetMode:            w.TargetMode,
		Naming:                w.Naming,
		Export:                Export{Count: w.Export.Count},
		Counts: Counts{
			Added:           w.Counts.Added,
			Removed:         w.Counts.Removed,
			ChangedAccepted: w.Counts.ChangedAccepted,
			ChangedRefused:  w.Counts.ChangedRefused,
			ChangedDropped:  w.Counts.ChangedDropped,
			Unchanged:       w.Counts.Unchanged,
		},
		Projects: Projects{Total: w.Projects.Total, Changed: w.Projects.Changed},
	}
	if w.Counts.HeldBack == nil {
		return nil, stmtErr("counts.held_back", "missing or null")
	}
	st.Counts.HeldBack = make([]HeldBackCount, len(w.Counts.HeldBack))
	for i, h := range w.Counts.HeldBack {
		st.Counts.HeldBack[i] = HeldBackCount(h)
	}
	if w.Decisions == nil {
		return nil, stmtErr("decisions", "missing or null")
	}
	for i, d := range w.Decisions {
		dec := decisions.Decision{Count: d.Count, Choice: decisions.Choice(d.Decision), Reason: d.Reason}
		if d.Flag != "" && d.Kind != "flag" {
			return nil, stmtErr(fmt.Sprintf("decisions[%d].flag", i), "only a flag decision names a flag")
		}
		switch d.Kind {
		case "limit":
			dec.Limit = d.Subject
		case "path":
			dec.Path = d.Subject
		case "flag":
			dec.Flag, dec.Subject = d.Flag, d.Subject
		case "project":
			dec.Project = d.Subject
		default:
			return nil, stmtErr(fmt.Sprintf("decisions[%d].kind", i), "%q: want limit, path, flag or project", d.Kind)
		}
		st.Decisions = append(st.Decisions, dec)
	}
	t, err := time.Parse(diffTimeLayout, w.Export.Generated)
	if err != nil {
		return nil, stmtErr("export.generated", "%q: want YYYY-MM-DDTHH:MM:SSZ", w.Export.Generated)
	}
	st.Export.Generated = t
	if w.PreviousLedgerSHA256 != "" {
		if err := decodeDigest(w.PreviousLedgerSHA256, &st.PreviousLedgerSHA256); err != nil {
			return nil, stmtErr("previous_ledger_sha256", "%w", err)
		}
	}
	for _, d := range []struct {
		field, hex string
		sum        *[32]byte
	}{
		{"export.sha256", w.Export.SHA256, &st.Export.SHA256},
		{"new_ledger_sha256", w.NewLedgerSHA256, &st.NewLedgerSHA256},
		{"policy_sha256", w.PolicySHA256, &st.PolicySHA256},
		{"projects.summary_sha256", w.Projects.SummarySHA256, &st.Projects.SummarySHA256},
		{"diff_sha256", w.DiffSHA256, &st.DiffSHA256},
	} {
		if err := decodeDigest(d.hex, d.sum); err != nil {
			return nil, stmtErr(d.field, "%w", err)
		}
	}
	again, err := st.MarshalPayload()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, payload) {
		return nil, fmt.Errorf("payload differs from its canonical encoding at byte %d: %w", firstDifference(again, payload), ErrDiffNotCanonical)
	}
	return st, nil
}

// decodeJSONStrict decodes one JSON value into v with the one strict
// decoder (internal/strictjson); its errors name file, line and field path
// and wrap sentinel.
func decodeJSONStrict(data []byte, file string, v any, sentinel error) error {
	if err := strictjson.Decode(data, file, v); err != nil {
		return fmt.Errorf("%w: %w", err, sentinel)
	}
	return nil
}

func decodeDigest(s string, out *[32]byte) error {
	if len(s) != 64 {
		return fmt.Errorf("%q: want 64 lowercase hex digits", s)
	}
	b, err := hex.DecodeString(s)
	if err != nil || hex.EncodeToString(b) != s {
		return fmt.Errorf("%q: want 64 lowercase hex digits", s)
	}
	copy(out[:], b)
	return nil
}

func firstDifference(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// DSSESigner adapts a keys.Signer to go-securesystemslib's
// dsse.SignerVerifier: the key id is the TUF key id, signatures are the
// raw bytes keys.Key.Verify accepts (ed25519, or DER ECDSA over SHA-256 of
// the PAE bytes).
func DSSESigner(s keys.Signer) (dsse.SignerVerifier, error) {
	k := s.Key()
	pub, err := k.Public()
	if err != nil {
		return nil, fmt.Errorf("signer key %s: %w: %w", k.ID(), err, ErrDiffSigner)
	}
	return &dsseSigner{dsseVerifier: dsseVerifier{key: k, id: k.ID(), pub: pub}, s: s}, nil
}

// DSSEVerifier adapts a TUF public key to go-securesystemslib's
// dsse.Verifier, verifying strictly with keys.Key.Verify.
func DSSEVerifier(k *keys.Key) (dsse.Verifier, error) {
	pub, err := k.Public()
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID(), err)
	}
	return &dsseVerifier{key: k, id: k.ID(), pub: pub}, nil
}

type dsseVerifier struct {
	key *keys.Key
	id  string
	pub crypto.PublicKey
}

func (v *dsseVerifier) KeyID() (string, error)   { return v.id, nil }
func (v *dsseVerifier) Public() crypto.PublicKey { return v.pub }
func (v *dsseVerifier) Verify(_ context.Context, data, sig []byte) error {
	return v.key.Verify(data, sig)
}

type dsseSigner struct {
	dsseVerifier
	s keys.Signer
}

func (s *dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	return s.s.Sign(data)
}

// Sign signs the statement's payload with every signer and returns the
// DSSE envelope, its signatures sorted by key id. Each signature is
// verified right after it is made. A signer listed twice (the same key) is
// refused: a threshold counts keys, not signatures.
func Sign(st *Statement, signers []keys.Signer) (*dsse.Envelope, error) {
	payload, err := st.MarshalPayload()
	if err != nil {
		return nil, err
	}
	if len(signers) == 0 {
		return nil, fmt.Errorf("no signers: %w", ErrDiffSigner)
	}
	adapted := make([]dsse.Signer, len(signers))
	seen := map[string]bool{}
	for i, s := range signers {
		if s == nil {
			return nil, fmt.Errorf("signer %d is nil: %w", i, ErrDiffSigner)
		}
		a, err := DSSESigner(s)
		if err != nil {
			return nil, err
		}
		id, _ := a.KeyID()
		if seen[id] {
			return nil, fmt.Errorf("key %s is listed twice: %w", id, ErrDiffSigner)
		}
		seen[id] = true
		adapted[i] = a
	}
	es, err := dsse.NewEnvelopeSigner(adapted...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrDiffSigner)
	}
	env, err := es.SignPayload(context.Background(), PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("signing the diff: %w", err)
	}
	pae := dsse.PAE(PayloadType, payload)
	for i, sig := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(sig.Sig)
		if err == nil {
			err = signers[i].Key().Verify(pae, raw)
		}
		if err != nil {
			return nil, fmt.Errorf("key %s made a signature on the diff that does not verify: %w", sig.KeyID, err)
		}
	}
	slices.SortFunc(env.Signatures, func(a, b dsse.Signature) int { return strings.Compare(a.KeyID, b.KeyID) })
	return env, nil
}

// Verify checks that at least threshold distinct keys among keyIDs,
// looked up in keyring, signed the envelope, and returns the statement it
// carries. It is strict: the payloadType must be PayloadType, payload
// and signatures must be standard padded base64, key ids are recomputed
// from the keys, a key's second signature never counts, and the payload
// must decode with DecodeStatement. Signatures are checked before the
// payload is parsed. A threshold failure is a *tuf.ThresholdError that
// says why each signature did not count.
func Verify(env *dsse.Envelope, keyring map[string]*keys.Key, keyIDs []string, threshold int) (*Statement, error) {
	if env == nil {
		return nil, fmt.Errorf("no envelope: %w", ErrSignedDiff)
	}
	distinct := map[string]bool{}
	for _, id := range keyIDs {
		distinct[id] = true
	}
	if threshold < 1 || threshold > len(distinct) {
		return nil, fmt.Errorf("threshold %d with %d distinct keys can never be met: %w", threshold, len(distinct), tuf.ErrThreshold)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("payloadType %q, want %q: %w", env.PayloadType, PayloadType, ErrDiffPayloadType)
	}
	payload, err := decodeBase64Strict(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload: %w: %w", err, ErrSignedDiff)
	}
	pae := dsse.PAE(env.PayloadType, payload)

	var problems []string
	var sigs []tuf.Signature
	seen := map[string]bool{}
	for i, s := range env.Signatures {
		switch {
		case s.KeyID == "":
			problems = append(problems, fmt.Sprintf("signature %d has no keyid", i))
			continue
		case !distinct[s.KeyID]:
			problems = append(problems, fmt.Sprintf("key %s is not one of the %d stable keys", shortID(s.KeyID), len(distinct)))
			continue
		case seen[s.KeyID]:
			problems = append(problems, fmt.Sprintf("key %s signed more than once; counted once", shortID(s.KeyID)))
			continue
		}
		raw, err := decodeBase64Strict(s.Sig)
		if err != nil {
			problems = append(problems, fmt.Sprintf("key %s: signature: %v", shortID(s.KeyID), err))
			continue
		}
		seen[s.KeyID] = true
		sigs = append(sigs, tuf.Signature{KeyID: s.KeyID, Sig: hex.EncodeToString(raw)})
	}
	if err := tuf.VerifyThreshold(diffRole, pae, sigs, keyIDs, threshold, keyring); err != nil {
		var te *tuf.ThresholdError
		if errors.As(err, &te) {
			te.Problems = append(problems, te.Problems...)
		}
		return nil, err
	}
	st, err := DecodeStatement(payload)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// decodeBase64Strict decodes standard, padded base64 and nothing else
// (DSSE allows the URL-safe alphabet too; this tool writes only standard
// base64 and reads only what it writes).
func decodeBase64Strict(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not standard padded base64")
	}
	return b, nil
}

// Marshal returns the file form of a signed diff: the envelope
// as JSON indented by two spaces, then a newline. It refuses an envelope
// that Load would refuse.
func Marshal(env *dsse.Envelope) ([]byte, error) {
	if err := checkEnvelope(env); err != nil {
		return nil, err
	}
	b, err := marshalNoHTML(env, "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Load parses a signed diff file strictly: it must be exactly
// what Marshal writes (no unknown, duplicate or misspelt fields,
// no other layout), carry the diff payload type, a payload that
// DecodeStatement accepts, and at least one signature, with distinct
// 64-hex-digit key ids in sorted order and standard base64 signatures.
// It checks no signature: call Verify for that. name is used in
// errors.
func Load(data []byte, name string) (*dsse.Envelope, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: not UTF-8: %w", name, ErrSignedDiff)
	}
	var env dsse.Envelope
	if err := decodeJSONStrict(data, name, &env, ErrSignedDiff); err != nil {
		return nil, err
	}
	if err := checkEnvelope(&env); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	again, err := Marshal(&env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%s: differs from its canonical form at byte %d: %w", name, firstDifference(again, data), ErrDiffNotCanonical)
	}
	return &env, nil
}

// checkEnvelope checks an envelope's structure and its payload, not its
// signatures.
func checkEnvelope(env *dsse.Envelope) error {
	if env == nil {
		return fmt.Errorf("no envelope: %w", ErrSignedDiff)
	}
	if env.PayloadType != PayloadType {
		return fmt.Errorf("payloadType %q, want %q: %w", env.PayloadType, PayloadType, ErrDiffPayloadType)
	}
	payload, err := decodeBase64Strict(env.Payload)
	if err != nil {
		return fmt.Errorf("payload: %w: %w", err, ErrSignedDiff)
	}
	if _, err := DecodeStatement(payload); err != nil {
		return err
	}
	if len(env.Signatures) == 0 {
		return fmt.Errorf("no signatures: %w", ErrSignedDiff)
	}
	for i, s := range env.Signatures {
		var id [32]byte
		if err := decodeDigest(s.KeyID, &id); err != nil {
			return fmt.Errorf("signatures[%d].keyid: %w: %w", i, err, ErrSignedDiff)
		}
		if i > 0 && s.KeyID <= env.Signatures[i-1].KeyID {
			return fmt.Errorf("signatures[%d].keyid: key ids must be sorted and distinct: %w", i, ErrSignedDiff)
		}
		if raw, err := decodeBase64Strict(s.Sig); err != nil || len(raw) == 0 {
			return fmt.Errorf("signatures[%d].sig: not standard padded base64: %w", i, ErrSignedDiff)
		}
	}
	return nil
}

// hasControl reports whether s holds a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return true
		}
	}
	return false
}
