package signeddiff

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/tuf"
)

var updateSignedDiffGolden = flag.Bool("update-signeddiff", false, "rewrite the golden files under testdata")

func sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func testStatement() *Statement {
	return &Statement{
		Repository:            "pypi",
		Ceremony:              3,
		PreviousStableVersion: 2,
		StableVersion:         3,
		PreviousLedgerSHA256:  sum("ledger 2"),
		NewLedgerSHA256:       sum("ledger 3"),
		Export: Export{
			Generated: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
			Count:     1000,
			SHA256:    sum("export"),
		},
		PolicySHA256: sum("policy"),
		TargetMode:   "files+pages",
		Naming:       "pep458",
		Counts: Counts{
			Added: 120,
			HeldBack: []HeldBackCount{
				{Reason: "backdated", Count: 1},
				{Reason: "excluded", Count: 7},
				{Reason: "too-young", Count: 60},
			},
			Removed:         2,
			ChangedAccepted: 0,
			ChangedRefused:  1,
			ChangedDropped:  1,
			Unchanged:       812,
		},
		Projects: Projects{Total: 300, Changed: 41, SummarySHA256: sum("projects")},
		Decisions: []decisions.Decision{
			{Limit: "removed", Count: 2, Choice: decisions.Confirm, Reason: "the maintainers deleted a release"},
			{Path: "packages/aa/bb/cc/bar-1.0.tar.gz", Choice: decisions.KeepOld, Reason: "PyPI never re-uploads a file"},
			{Path: "packages/dd/ee/ff/baz-2.0.tar.gz", Choice: decisions.Drop, Reason: "both contents are suspect"},
			{Flag: "project-loss", Subject: "baz", Choice: decisions.Confirm, Reason: "baz's author deleted its old releases"},
		},
		DiffSHA256: sum("diff"),
	}
}

// fixedSigner is an ed25519 signer from a fixed seed, so that golden
// signatures are stable.
func fixedSigner(t testing.TB, seed byte) keys.Signer {
	t.Helper()
	s, err := keys.NewMemorySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ecdsaSigner(t testing.TB) keys.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewMemorySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stableSet is a 2-of-3 stable key set: ed25519, ECDSA P-256, ed25519.
type stableSet struct {
	signers []keys.Signer
	keyring map[string]*keys.Key
	ids     []string
}

func newStableSet(t testing.TB) *stableSet {
	ss := &stableSet{keyring: map[string]*keys.Key{}}
	ss.signers = []keys.Signer{fixedSigner(t, 1), ecdsaSigner(t), fixedSigner(t, 3)}
	for _, s := range ss.signers {
		id := s.Key().ID()
		ss.keyring[id] = s.Key()
		ss.ids = append(ss.ids, id)
	}
	return ss
}

// signRaw makes an envelope over any payload, bypassing Sign's checks,
// to test what Verify does with envelopes this tool would never write.
func signRaw(t testing.TB, payloadType string, payload []byte, signers ...keys.Signer) *dsse.Envelope {
	t.Helper()
	env := &dsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(payload)}
	pae := dsse.PAE(payloadType, payload)
	for _, s := range signers {
		sig, err := s.Sign(pae)
		if err != nil {
			t.Fatal(err)
		}
		env.Signatures = append(env.Signatures, dsse.Signature{KeyID: s.Key().ID(), Sig: base64.StdEncoding.EncodeToString(sig)})
	}
	return env
}

func TestSignVerifyDiff(t *testing.T) {
	ss := newStableSet(t)
	st := testStatement()
	for _, pick := range [][]int{{0, 1}, {1, 2}, {2, 0}, {0, 1, 2}} {
		var signers []keys.Signer
		for _, i := range pick {
			signers = append(signers, ss.signers[i])
		}
		env, err := Sign(st, signers)
		if err != nil {
			t.Fatal(err)
		}
		if env.PayloadType != PayloadType || len(env.Signatures) != len(pick) {
			t.Fatalf("envelope %+v", env)
		}
		if !slices.IsSortedFunc(env.Signatures, func(a, b dsse.Signature) int { return strings.Compare(a.KeyID, b.KeyID) }) {
			t.Error("signatures not sorted by key id")
		}
		got, err := Verify(env, ss.keyring, ss.ids, 2)
		if err != nil {
			t.Fatalf("signers %v: %v", pick, err)
		}
		if !statementsEqual(got, st) {
			t.Errorf("verified statement %+v, want %+v", got, st)
		}

		// go-securesystemslib's own verifier, with our adapters, agrees.
		var vs []dsse.Verifier
		for _, id := range ss.ids {
			v, err := DSSEVerifier(ss.keyring[id])
			if err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		ev, err := dsse.NewMultiEnvelopeVerifier(2, vs...)
		if err != nil {
			t.Fatal(err)
		}
		accepted, err := ev.Verify(context.Background(), env)
		if err != nil || len(accepted) != len(pick) {
			t.Errorf("dsse verifier: %d accepted, %v", len(accepted), err)
		}

		// The file form loads back to the same envelope and bytes.
		file, err := Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := Load(file, "diff.dsse.json")
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Marshal(loaded)
		if !bytes.Equal(again, file) {
			t.Error("load and marshal changed the file")
		}
		if _, err := Verify(loaded, ss.keyring, ss.ids, 2); err != nil {
			t.Error(err)
		}
	}
}

func statementsEqual(a, b *Statement) bool {
	return a.Repository == b.Repository && a.Ceremony == b.Ceremony &&
		a.PreviousStableVersion == b.PreviousStableVersion && a.StableVersion == b.StableVersion &&
		a.PreviousLedgerSHA256 == b.PreviousLedgerSHA256 && a.TrustsUploadTimes == b.TrustsUploadTimes &&
		a.Export.Generated.Equal(b.Export.Generated) && a.Export.Count == b.Export.Count && a.Export.SHA256 == b.Export.SHA256 &&
		a.PolicySHA256 == b.PolicySHA256 && slices.Equal(a.Counts.HeldBack, b.Counts.HeldBack) &&
		a.Counts.Added == b.Counts.Added && a.Counts.Removed == b.Counts.Removed &&
		a.Counts.ChangedAccepted == b.Counts.ChangedAccepted && a.Counts.ChangedRefused == b.Counts.ChangedRefused &&
		a.Counts.ChangedDropped == b.Counts.ChangedDropped && a.NewLedgerSHA256 == b.NewLedgerSHA256 &&
		slices.Equal(a.Decisions, b.Decisions) &&
		a.Counts.Unchanged == b.Counts.Unchanged && a.Projects == b.Projects && a.DiffSHA256 == b.DiffSHA256
}

func TestVerifyDiffRefuses(t *testing.T) {
	ss := newStableSet(t)
	outsider := fixedSigner(t, 9)
	st := testStatement()
	payload, err := st.MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	good := func() *dsse.Envelope {
		env, err := Sign(st, ss.signers[:2])
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	otherKeyring := map[string]*keys.Key{}
	for id, k := range ss.keyring {
		otherKeyring[id] = k
	}
	otherKeyring[ss.ids[0]] = outsider.Key() // id does not match the key

	tests := []struct {
		name      string
		env       func() *dsse.Envelope
		keyring   map[string]*keys.Key
		threshold int
		want      error
		msg       string // must appear in the error
	}{
		{"tampered payload", func() *dsse.Envelope {
			env := good()
			tampered := bytes.Replace(payload, []byte(`"added":120`), []byte(`"added":121`), 1)
			env.Payload = base64.StdEncoding.EncodeToString(tampered)
			return env
		}, nil, 2, tuf.ErrThreshold, "signature does not verify"},
		{"wrong payloadType", func() *dsse.Envelope {
			env := good()
			env.PayloadType = "application/vnd.in-toto+json"
			return env
		}, nil, 2, ErrDiffPayloadType, "payloadType"},
		{"wrong payloadType, re-signed", func() *dsse.Envelope {
			return signRaw(t, "application/json", payload, ss.signers[0], ss.signers[1])
		}, nil, 2, ErrDiffPayloadType, "payloadType"},
		{"below threshold", func() *dsse.Envelope {
			env := good()
			env.Signatures = env.Signatures[:1]
			return env
		}, nil, 2, tuf.ErrThreshold, "1 of 2"},
		{"same key twice", func() *dsse.Envelope {
			env := good()
			env.Signatures = []dsse.Signature{env.Signatures[0], env.Signatures[0]}
			return env
		}, nil, 2, tuf.ErrThreshold, "signed more than once"},
		{"same key twice, fresh signatures", func() *dsse.Envelope {
			return signRaw(t, PayloadType, payload, ss.signers[1], ss.signers[1])
		}, nil, 2, tuf.ErrThreshold, "signed more than once"},
		{"unknown key", func() *dsse.Envelope {
			return signRaw(t, PayloadType, payload, ss.signers[0], outsider)
		}, nil, 2, tuf.ErrThreshold, "not one of the 3 stable keys"},
		{"key id that is not the key's", func() *dsse.Envelope {
			return good()
		}, otherKeyring, 2, tuf.ErrThreshold, "key id is not the hash"},
		{"no signatures", func() *dsse.Envelope {
			env := good()
			env.Signatures = nil
			return env
		}, nil, 2, tuf.ErrThreshold, "0 of 2"},
		{"empty keyid", func() *dsse.Envelope {
			env := good()
			env.Signatures[0].KeyID = ""
			return env
		}, nil, 2, tuf.ErrThreshold, "no keyid"},
		{"url-safe signature", func() *dsse.Envelope {
			// ECDSA signing is randomised: sign again until the
			// URL-safe form differs from the standard one (a 72-byte
			// signature without '+' or '/' is the same in both, about
			// one signature in twenty), so the case is never vacuous.
			for range 1000 {
				env := good()
				raw, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
				if u := base64.RawURLEncoding.EncodeToString(raw); u != env.Signatures[0].Sig {
					env.Signatures[0].Sig = u
					return env
				}
			}
			t.Fatal("no signature whose URL-safe form differs")
			return nil
		}, nil, 2, tuf.ErrThreshold, "base64"},
		{"signature moved to another key", func() *dsse.Envelope {
			env := good()
			env.Signatures[0].Sig, env.Signatures[1].Sig = env.Signatures[1].Sig, env.Signatures[0].Sig
			return env
		}, nil, 2, tuf.ErrThreshold, "0 of 2"},
		{"payload not base64", func() *dsse.Envelope {
			env := good()
			env.Payload = "%%%"
			return env
		}, nil, 2, ErrSignedDiff, "base64"},
		{"unpadded payload", func() *dsse.Envelope {
			env := good()
			env.Payload = strings.TrimRight(env.Payload, "=")
			if env.Payload == good().Payload {
				env.Payload += "="
			}
			return env
		}, nil, 2, ErrSignedDiff, "base64"},
		{"nil envelope", func() *dsse.Envelope { return nil }, nil, 2, ErrSignedDiff, "no envelope"},
		{"threshold zero", good, nil, 0, tuf.ErrThreshold, "can never be met"},
		{"threshold above the keys", good, nil, 4, tuf.ErrThreshold, "can never be met"},
		{"signed payload with an unknown field", func() *dsse.Envelope {
			bad := bytes.Replace(payload, []byte(`"repository"`), []byte(`"extra":1,"repository"`), 1)
			return signRaw(t, PayloadType, bad, ss.signers[0], ss.signers[1])
		}, nil, 2, ErrDiffStatement, "unknown field"},
		{"signed payload with a duplicate field", func() *dsse.Envelope {
			bad := bytes.Replace(payload, []byte(`"repository":"pypi"`), []byte(`"repository":"evil","repository":"pypi"`), 1)
			return signRaw(t, PayloadType, bad, ss.signers[0], ss.signers[1])
		}, nil, 2, strictjson.ErrDuplicateKey, "repository: duplicate key"},
		{"signed payload that is invalid", func() *dsse.Envelope {
			bad := bytes.Replace(payload, []byte(`"stable_version":3`), []byte(`"stable_version":2`), 1)
			return signRaw(t, PayloadType, bad, ss.signers[0], ss.signers[1])
		}, nil, 2, ErrDiffStatement, "stable_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := tt.keyring
			if kr == nil {
				kr = ss.keyring
			}
			got, err := Verify(tt.env(), kr, ss.ids, tt.threshold)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Error("returned a statement with the error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

// TestVerifyDiffExtraSignatures: signatures by keys outside the set, or a
// repeated signature, do not stop a diff that the threshold did sign.
func TestVerifyDiffExtraSignatures(t *testing.T) {
	ss := newStableSet(t)
	payload, _ := testStatement().MarshalPayload()
	env := signRaw(t, PayloadType, payload, ss.signers[0], fixedSigner(t, 9), ss.signers[2], ss.signers[2])
	if _, err := Verify(env, ss.keyring, ss.ids, 2); err != nil {
		t.Fatal(err)
	}
}

func TestSignDiffRefuses(t *testing.T) {
	ss := newStableSet(t)
	bad := testStatement()
	bad.DiffSHA256 = [32]byte{}
	tests := []struct {
		name    string
		st      *Statement
		signers []keys.Signer
		want    error
	}{
		{"invalid statement", bad, ss.signers[:2], ErrDiffStatement},
		{"nil statement", nil, ss.signers[:2], ErrDiffStatement},
		{"no signers", testStatement(), nil, ErrDiffSigner},
		{"nil signer", testStatement(), []keys.Signer{ss.signers[0], nil}, ErrDiffSigner},
		{"same key twice", testStatement(), []keys.Signer{ss.signers[0], ss.signers[0]}, ErrDiffSigner},
		{"signer that signs wrongly", testStatement(), []keys.Signer{brokenSigner{ss.signers[0]}}, keys.ErrBadSignature},
		{"signer that fails", testStatement(), []keys.Signer{failingSigner{ss.signers[0]}}, errDeviceGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Sign(tt.st, tt.signers)
			if !errors.Is(err, tt.want) || env != nil {
				t.Fatalf("got %v, %v; want %v", env, err, tt.want)
			}
		})
	}
}

type brokenSigner struct{ keys.Signer }

func (b brokenSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := b.Signer.Sign(msg)
	sig[0] ^= 1
	return sig, err
}

var errDeviceGone = errors.New("device removed")

type failingSigner struct{ keys.Signer }

func (failingSigner) Sign([]byte) ([]byte, error) { return nil, errDeviceGone }

func TestDiffStatementValidate(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Statement)
		field string
	}{
		{"empty repository", func(s *Statement) { s.Repository = "" }, "repository"},
		{"control in repository", func(s *Statement) { s.Repository = "py\npi" }, "repository"},
		{"ceremony zero", func(s *Statement) { s.Ceremony = 0 }, "ceremony"},
		{"negative previous", func(s *Statement) { s.PreviousStableVersion = -1 }, "previous_stable_version"},
		{"version not increasing", func(s *Statement) { s.StableVersion = 2 }, "stable_version"},
		{"trusts upload times with a ledger", func(s *Statement) { s.TrustsUploadTimes = true }, "trusts_upload_times"},
		{"no ledger, not trusting", func(s *Statement) { s.PreviousLedgerSHA256 = [32]byte{} }, "trusts_upload_times"},
		{"zero generated", func(s *Statement) { s.Export.Generated = time.Time{} }, "export.generated"},
		{"non-UTC generated", func(s *Statement) { s.Export.Generated = s.Export.Generated.In(time.FixedZone("x", 3600)) }, "export.generated"},
		{"fractional generated", func(s *Statement) { s.Export.Generated = s.Export.Generated.Add(1) }, "export.generated"},
		{"negative count", func(s *Statement) { s.Export.Count = -1 }, "export.count"},
		{"zero export digest", func(s *Statement) { s.Export.SHA256 = [32]byte{} }, "export.sha256"},
		{"zero policy digest", func(s *Statement) { s.PolicySHA256 = [32]byte{} }, "policy_sha256"},
		{"zero project digest", func(s *Statement) { s.Projects.SummarySHA256 = [32]byte{} }, "projects.summary_sha256"},
		{"negative added", func(s *Statement) { s.Counts.Added = -1 }, "counts.added"},
		{"negative refused", func(s *Statement) { s.Counts.ChangedRefused = -1 }, "counts.changed_refused"},
		{"negative projects", func(s *Statement) { s.Projects.Changed = -1 }, "projects.changed"},
		{"unsorted reasons", func(s *Statement) { s.Counts.HeldBack[0].Reason = "zzz" }, "counts.held_back[1].reason"},
		{"duplicate reasons", func(s *Statement) { s.Counts.HeldBack[1].Reason = "backdated" }, "counts.held_back[1].reason"},
		{"bad reason", func(s *Statement) { s.Counts.HeldBack[0].Reason = "Too Young" }, "counts.held_back[0].reason"},
		{"negative held back", func(s *Statement) { s.Counts.HeldBack[2].Count = -5 }, "counts.held_back[2].count"},
		{"no new ledger", func(s *Statement) { s.NewLedgerSHA256 = [32]byte{} }, "new_ledger_sha256"},
		{"negative dropped", func(s *Statement) { s.Counts.ChangedDropped = -1 }, "counts.changed_dropped"},
		{"decisions out of order", func(s *Statement) { s.Decisions[1], s.Decisions[2] = s.Decisions[2], s.Decisions[1] }, "decisions[2]"},
		{"decision twice", func(s *Statement) { s.Decisions[2] = s.Decisions[1] }, "decisions[2]"},
		{"limit after paths", func(s *Statement) { s.Decisions = append(s.Decisions, s.Decisions[0]) }, "decisions[4]"},
		{"path after flags", func(s *Statement) { s.Decisions = append(s.Decisions, s.Decisions[1]) }, "decisions[4]"},
		{"flag without subject", func(s *Statement) { s.Decisions[3].Subject = "" }, "decisions[3]"},
		{"decision with a line", func(s *Statement) { s.Decisions[0].Line = 3 }, "decisions[0]"},
		{"path decision confirms", func(s *Statement) { s.Decisions[1].Choice = decisions.Confirm }, "decisions[1]"},
		{"reason with a newline", func(s *Statement) { s.Decisions[1].Reason = "a\nb" }, "decisions[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := testStatement()
			tt.mod(st)
			err := st.Validate()
			if !errors.Is(err, ErrDiffStatement) || !strings.HasPrefix(err.Error(), tt.field+":") {
				t.Fatalf("got %v, want an ErrDiffStatement about %s", err, tt.field)
			}
		})
	}
	first := testStatement()
	first.PreviousStableVersion, first.StableVersion, first.PreviousLedgerSHA256, first.TrustsUploadTimes = 0, 1, [32]byte{}, true
	b, err := first.MarshalPayload()
	if err != nil || !bytes.Contains(b, []byte(`"previous_ledger_sha256":"","new_ledger_sha256":"`)) {
		t.Errorf("first ceremony: %s, %v", b, err)
	}
	if got, err := DecodeStatement(b); err != nil || !statementsEqual(got, first) {
		t.Errorf("first ceremony round trip: %v", err)
	}
	st := testStatement()
	st.Counts.HeldBack = nil
	b, err = st.MarshalPayload()
	if err != nil || !bytes.Contains(b, []byte(`"held_back":[]`)) {
		t.Errorf("no held-back reasons: %s, %v", b, err)
	}
	if _, err := DecodeStatement(b); err != nil {
		t.Error(err)
	}
}

func TestDecodeDiffStatementRefuses(t *testing.T) {
	payload, err := testStatement().MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	p := string(payload)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"unknown field", strings.Replace(p, `{"format"`, `{"x":1,"format"`, 1), ErrDiffStatement},
		{"unknown nested field", strings.Replace(p, `"count":1000,`, `"count":1000,"x":2,`, 1), strictjson.ErrUnknownField},
		{"duplicate field", strings.Replace(p, `"ceremony":3`, `"ceremony":4,"ceremony":3`, 1), strictjson.ErrDuplicateKey},
		{"duplicate nested field", strings.Replace(p, `"count":1000,`, `"count":1000,"count":1000,`, 1), strictjson.ErrDuplicateKey},
		{"field in other case", strings.Replace(p, `"ceremony"`, `"Ceremony"`, 1), strictjson.ErrUnknownField},
		{"nested field in other case", strings.Replace(p, `"count":1000,`, `"Count":1000,`, 1), strictjson.ErrUnknownField},
		{"missing field", strings.Replace(p, `"removed":2,`, ``, 1), strictjson.ErrMissingField},
		{"reordered fields", strings.Replace(strings.Replace(p, `"ceremony":3,`, ``, 1), `"stable_version":3,`, `"stable_version":3,"ceremony":3,`, 1), ErrDiffNotCanonical},
		{"whitespace", strings.Replace(p, `"ceremony":3`, `"ceremony": 3`, 1), ErrDiffNotCanonical},
		{"trailing newline", p + "\n", ErrDiffNotCanonical},
		{"trailing data", p + "{}", ErrDiffStatement},
		{"uppercase hex", strings.Replace(p, hexOf(sum("diff")), strings.ToUpper(hexOf(sum("diff"))), 1), ErrDiffStatement},
		{"ledger digest of zeros", strings.Replace(p, hexOf(sum("ledger 2")), strings.Repeat("0", 64), 1), ErrDiffStatement},
		{"trusting with a ledger", strings.Replace(p, `"trusts_upload_times":false`, `"trusts_upload_times":true`, 1), ErrDiffStatement},
		{"short hex", strings.Replace(p, hexOf(sum("diff")), hexOf(sum("diff"))[:62], 1), ErrDiffStatement},
		{"other time format", strings.Replace(p, `2026-11-01T12:00:00Z`, `2026-11-01T12:00:00+00:00`, 1), ErrDiffStatement},
		{"fractional time", strings.Replace(p, `2026-11-01T12:00:00Z`, `2026-11-01T12:00:00.5Z`, 1), ErrDiffStatement},
		{"float count", strings.Replace(p, `"count":1000`, `"count":1000.0`, 1), ErrDiffStatement},
		{"exponent count", strings.Replace(p, `"count":1000`, `"count":1e3`, 1), ErrDiffStatement},
		{"string count", strings.Replace(p, `"count":1000`, `"count":"1000"`, 1), ErrDiffStatement},
		{"null held back", strings.Replace(p, `"held_back":[`, `"held_back":null,"x":[`, 1), ErrDiffStatement},
		{"other format", strings.Replace(p, DiffFormat, "in-toto", 1), ErrDiffStatement},
		{"version 2", strings.Replace(p, `"version":3`, `"version":2`, 1), ErrDiffStatement},
		{"unknown target mode", strings.Replace(p, `"target_mode":"files+pages"`, `"target_mode":"files"`, 1), ErrDiffStatement},
		{"unknown naming", strings.Replace(p, `"naming":"pep458"`, `"naming":"pypi"`, 1), ErrDiffStatement},
		{"no target mode", strings.Replace(p, `"target_mode":"files+pages",`, ``, 1), ErrDiffStatement},
		{"decision kind", strings.Replace(p, `"kind":"limit"`, `"kind":"other"`, 1), ErrDiffStatement},
		{"decision without reason", strings.Replace(p, `"reason":"both contents are suspect"`, `"reason":""`, 1), ErrDiffStatement},
		{"null decisions", strings.Replace(p, `"decisions":[`, `"decisions":null,"x":[`, 1), ErrDiffStatement},
		{"escaped character", strings.Replace(p, `"pypi"`, `"p\u0079pi"`, 1), ErrDiffNotCanonical},
		{"invalid utf-8", strings.Replace(p, `"pypi"`, "\"py\xffpi\"", 1), ErrDiffStatement},
		{"not json", "nope", ErrDiffStatement},
		{"empty", "", ErrDiffStatement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == p {
				t.Fatal("test case does not change the payload")
			}
			st, err := DecodeStatement([]byte(tt.in))
			if !errors.Is(err, tt.want) || st != nil {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var se *strictjson.Error
			if errors.As(err, &se) && (!errors.Is(err, ErrDiffStatement) || se.File != "payload" || se.Line != 1) {
				t.Errorf("strict decoder error %v is not located in the payload or not ErrDiffStatement", err)
			}
		})
	}
}

func hexOf(b [32]byte) string { return hex.EncodeToString(b[:]) }

// goldenEnvelope is signed by two fixed ed25519 keys (ed25519 signatures
// are deterministic), so its bytes never change.
func goldenEnvelope(t testing.TB) (*dsse.Envelope, *stableSet) {
	ss := &stableSet{keyring: map[string]*keys.Key{}}
	ss.signers = []keys.Signer{fixedSigner(t, 1), fixedSigner(t, 2), fixedSigner(t, 3)}
	for _, s := range ss.signers {
		ss.keyring[s.Key().ID()] = s.Key()
		ss.ids = append(ss.ids, s.Key().ID())
	}
	env, err := Sign(testStatement(), ss.signers[:2])
	if err != nil {
		t.Fatal(err)
	}
	return env, ss
}

func TestSignedDiffGolden(t *testing.T) {
	env, ss := goldenEnvelope(t)
	file, err := Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := testStatement().MarshalPayload()
	keyring, err := json.MarshalIndent(ss.keyring, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		name string
		got  []byte
	}{{"diff.dsse.json", file}, {"payload.json", append(payload, '\n')}, {"keys.json", append(keyring, '\n')}} {
		path := filepath.Join("testdata", g.name)
		if *updateSignedDiffGolden {
			if err := os.WriteFile(path, g.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update-signeddiff to create it)", err)
		}
		if !bytes.Equal(g.got, want) {
			t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", path, g.got, want)
		}
	}
	// The golden file verifies, with this code and with the keys written
	// beside it.
	data, err := os.ReadFile(filepath.Join("testdata", "diff.dsse.json"))
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(data, "diff.dsse.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(loaded, ss.keyring, ss.ids, 2); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSignedDiffRefuses(t *testing.T) {
	env, _ := goldenEnvelope(t)
	file, err := Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	f := string(file)
	sig0 := env.Signatures[0]
	raw0, _ := base64.StdEncoding.DecodeString(sig0.Sig)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not json", "{", ErrSignedDiff},
		{"trailing data", f + "{}", ErrSignedDiff},
		{"no trailing newline", strings.TrimSuffix(f, "\n"), ErrDiffNotCanonical},
		{"compact", strings.NewReplacer("\n", "", "  ", "").Replace(f), ErrDiffNotCanonical},
		{"unknown field", strings.Replace(f, `"payloadType"`, `"x": 1, "payloadType"`, 1), ErrSignedDiff},
		{"duplicate field", strings.Replace(f, `  "payloadType": "`+PayloadType+`",`, `  "payloadType": "x",`+"\n"+`  "payloadType": "`+PayloadType+`",`, 1), strictjson.ErrDuplicateKey},
		{"duplicate nested field", strings.Replace(f, `"keyid": "`+sig0.KeyID+`",`, `"keyid": "`+sig0.KeyID+`", "keyid": "`+sig0.KeyID+`",`, 1), strictjson.ErrDuplicateKey},
		{"field in other case", strings.Replace(f, `"payloadType"`, `"PayloadType"`, 1), strictjson.ErrUnknownField},
		{"nested unknown field", strings.Replace(f, `"keyid": "`+sig0.KeyID+`",`, `"keyid": "`+sig0.KeyID+`", "cert": "",`, 1), strictjson.ErrUnknownField},
		{"wrong payload type", strings.Replace(f, PayloadType, "application/json", 1), ErrDiffPayloadType},
		{"line break in payload", strings.Replace(f, env.Payload, env.Payload[:8]+`\n`+env.Payload[8:], 1), ErrSignedDiff},
		{"unpadded payload", strings.Replace(f, env.Payload, unpadded(mustB64(t, env.Payload)), 1), ErrSignedDiff},
		{"no signatures", strings.Replace(f, f[strings.Index(f, `"signatures": [`):strings.LastIndex(f, "]")+1], `"signatures": []`, 1), ErrSignedDiff},
		{"null signatures", strings.Replace(f, f[strings.Index(f, `"signatures": [`):strings.LastIndex(f, "]")+1], `"signatures": null`, 1), ErrSignedDiff},
		{"duplicate keyid", strings.Replace(f, env.Signatures[1].KeyID, sig0.KeyID, 1), ErrSignedDiff},
		{"unsorted keyids", strings.NewReplacer(sig0.KeyID, env.Signatures[1].KeyID, env.Signatures[1].KeyID, sig0.KeyID).Replace(f), ErrSignedDiff},
		{"uppercase keyid", strings.Replace(f, sig0.KeyID, strings.ToUpper(sig0.KeyID), 1), ErrSignedDiff},
		{"signature not base64", strings.Replace(f, sig0.Sig, "!"+hex.EncodeToString(raw0), 1), ErrSignedDiff},
		{"empty signature", strings.Replace(f, sig0.Sig, "", 1), ErrSignedDiff},
		{"payload with unknown field", strings.Replace(f, env.Payload, base64.StdEncoding.EncodeToString(append([]byte(`{"x":1,`), mustB64(t, env.Payload)[1:]...)), 1), ErrDiffStatement},
		{"invalid utf-8", strings.Replace(f, "payloadType", "payload\xffType", 1), ErrSignedDiff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == f {
				t.Fatal("test case does not change the file")
			}
			env, err := Load([]byte(tt.in), "diff.dsse.json")
			if !errors.Is(err, tt.want) || env != nil {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var se *strictjson.Error
			if errors.As(err, &se) && se.File == "diff.dsse.json" && (!errors.Is(err, ErrSignedDiff) || se.Line < 1) {
				t.Errorf("strict decoder error %v is not located or not ErrSignedDiff", err)
			}
			if !strings.HasPrefix(err.Error(), "diff.dsse.json:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func mustB64(t testing.TB, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzLoadSignedDiff(f *testing.F) {
	env, ss := goldenEnvelope(f)
	file, err := Marshal(env)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file)
	f.Add([]byte(`{"payloadType":"x","payload":"","signatures":[]}`))
	f.Add(bytes.Replace(file, []byte(`"payloadType"`), []byte(`"PayloadType"`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Load(data, "fuzz")
		if err != nil {
			if env != nil {
				t.Fatal("envelope returned with an error")
			}
			return
		}
		// Anything accepted is in canonical form and its payload decodes.
		again, err := Marshal(env)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted a file that does not re-encode to itself: %v", err)
		}
		payload, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		st, err := DecodeStatement(payload)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := st.MarshalPayload()
		if err != nil || !bytes.Equal(p2, payload) {
			t.Fatal("payload does not round-trip")
		}
		// Verification never panics; it succeeds only if the golden keys
		// really signed this payload.
		if _, err := Verify(env, ss.keyring, ss.ids, 2); err == nil && !bytes.Equal(data, file) {
			gotPayload, _ := base64.StdEncoding.DecodeString(env.Payload)
			want, _ := testStatement().MarshalPayload()
			if !bytes.Equal(gotPayload, want) {
				t.Fatal("a changed payload verified")
			}
		}
	})
}

// withRedFlags is testStatement with the decisions an expedited file and
// a change to the policy's lists take.
func withRedFlags() *Statement {
	st := testStatement()
	st.Decisions = append(st.Decisions,
		decisions.Decision{Path: "packages/ff/00/11/foo-1.0.1.tar.gz", Choice: decisions.Expedite, Reason: "PYSEC-2026-17"},
		decisions.Decision{Project: "*", Choice: decisions.Unnominate, Reason: "nominations by name"},
		decisions.Decision{Project: "certifi", Choice: decisions.Exclude, Reason: "must update fast"})
	// In canonical order, as a statement holds them: the expedite
	// decision among the paths, before testStatement's flag decision.
	slices.SortFunc(st.Decisions, func(a, b decisions.Decision) int {
		return strings.Compare(decisions.SortKey(&a), decisions.SortKey(&b))
	})
	return st
}

// An expedite decision and project decisions go into the payload (kind
// "path" and "project") and come back as they were.
func TestRedFlagDecisionsRoundTrip(t *testing.T) {
	st := withRedFlags()
	p, err := st.MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(p, []byte(`{"kind":"project","subject":"certifi","count":0,"decision":"exclude","reason":"must update fast"}`)) {
		t.Errorf("payload lacks the project decision: %s", p)
	}
	back, err := DecodeStatement(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Decisions, st.Decisions) {
		t.Errorf("decisions %+v, want %+v", back.Decisions, st.Decisions)
	}
	bad := bytes.Replace(p, []byte(`"kind":"project","subject":"certifi"`), []byte(`"kind":"project","subject":"Certifi"`), 1)
	if _, err := DecodeStatement(bad); !errors.Is(err, ErrDiffStatement) {
		t.Errorf("an unnormalised project: %v", err)
	}
}

func FuzzDecodeDiffStatement(f *testing.F) {
	p, _ := testStatement().MarshalPayload()
	f.Add(p)
	if rf, err := withRedFlags().MarshalPayload(); err == nil {
		f.Add(rf)
	}
	f.Add([]byte(`{}`))
	f.Add(bytes.Replace(p, []byte(`"ceremony":3`), []byte(`"ceremony":3,"ceremony":3`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodeStatement(data)
		if err != nil {
			return
		}
		again, err := st.MarshalPayload()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted %q, which re-encodes to %q (%v)", data, again, err)
		}
	})
}

// unpadded encodes b, with one space appended when its length leaves no
// padding to drop, in base64 without its padding.
func unpadded(b []byte) string {
	if len(b)%3 == 0 {
		b = append(b, ' ')
	}
	return base64.RawStdEncoding.EncodeToString(b)
}
