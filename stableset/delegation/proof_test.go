package delegation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/keys"
)

func mustSigner(t testing.TB, ecdsa bool) keys.Signer {
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

// A developer key is delegated to only with a proof that its holder
// signed this project and this ceremony; every other proof is refused,
// saying why, as the attacker would try them.
func TestVerifyProof(t *testing.T) {
	dev, other := mustSigner(t, false), mustSigner(t, true)
	want := Proof{Repository: "pypi", Project: "foo", StableVersion: 7}
	for _, s := range []keys.Signer{dev, other} {
		p := want
		p.KeyID = s.Key().ID()
		b, err := SignProof(s, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyProof(b, "foo.pop.json", s.Key(), want); err != nil {
			t.Errorf("%s key: %v", s.Key().KeyType, err)
		}
	}
	signed := func(s keys.Signer, p Proof) []byte {
		t.Helper()
		if p.KeyID == "" {
			p.KeyID = s.Key().ID()
		}
		b, err := SignProof(s, p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edit := func(b []byte, fn func(*envelopeJSON)) []byte {
		var env envelopeJSON
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		fn(&env)
		out, _ := json.Marshal(env)
		return out
	}
	good := signed(dev, want)
	for _, c := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"missing", nil, "proof of key " + dev.Key().ID() + " for foo: missing"},
		{"signed by another key", signed(other, want), "signed by key \"" + other.Key().ID() + "\", not by the key delegated to"},
		{"another key's signature under the key's id", edit(good, func(e *envelopeJSON) {
			o := edit(signed(other, want), func(*envelopeJSON) {})
			var oe envelopeJSON
			json.Unmarshal(o, &oe)
			e.Signatures[0].Sig = oe.Signatures[0].Sig
		}), "the signature does not verify with the key"},
		{"another project", signed(dev, Proof{Repository: "pypi", Project: "foo-bar", StableVersion: 7}), `project "foo-bar"`},
		{"another ceremony", signed(dev, Proof{Repository: "pypi", Project: "foo", StableVersion: 6}), "stable v6"},
		{"another repository", signed(dev, Proof{Repository: "testpypi", Project: "foo", StableVersion: 7}), `repository "testpypi"`},
		{"another key named", signed(dev, Proof{Repository: "pypi", Project: "foo", StableVersion: 7, KeyID: dev.Key().ID()}), ""},
		{"payload type", edit(good, func(e *envelopeJSON) { e.PayloadType = "application/vnd.in-toto+json" }), "payloadType \"application/vnd.in-toto+json\""},
		{"no signature", edit(good, func(e *envelopeJSON) { e.Signatures = []signatureJSON{} }), "0 signatures, want exactly one"},
		{"two signatures", edit(good, func(e *envelopeJSON) { e.Signatures = append(e.Signatures, e.Signatures[0]) }), "2 signatures, want exactly one"},
		{"edited payload", edit(good, func(e *envelopeJSON) {
			p, _ := base64.StdEncoding.DecodeString(e.Payload)
			e.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(p), `"stable_version":7`, `"stable_version":8`, 1)))
		}), "the signature does not verify"},
		{"not json", []byte("{"), "foo.pop.json"},
	} {
		err := VerifyProof(c.data, "foo.pop.json", dev.Key(), want)
		if c.name == "another key named" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrProof) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "foo.pop.json") {
			t.Errorf("%s: %v, want %q", c.name, err, c.msg)
		}
	}
	if _, err := SignProof(other, Proof{Repository: "pypi", Project: "foo", StableVersion: 7, KeyID: dev.Key().ID()}); !errors.Is(err, ErrProof) {
		t.Errorf("SignProof with another key: %v", err)
	}
}

// FuzzVerifyProof: VerifyProof never panics, and accepts nothing but the
// proof the key signed.
func FuzzVerifyProof(f *testing.F) {
	dev := mustSigner(f, false)
	want := Proof{Repository: "pypi", Project: "foo", StableVersion: 7, KeyID: dev.Key().ID()}
	good, err := SignProof(dev, want)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"payloadType": "application/vnd.keyceremony.pop+json", "payload": "e30=", "signatures": [{"keyid": "` + dev.Key().ID() + `", "sig": "AAAA"}]}`))
	f.Add([]byte(`{"payloadType": "", "payload": "", "signatures": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := VerifyProof(data, "fuzz", dev.Key(), want)
		if err == nil {
			var env, goodEnv envelopeJSON
			json.Unmarshal(data, &env)
			json.Unmarshal(good, &goodEnv)
			if env.Payload != goodEnv.Payload {
				t.Fatalf("accepted another statement: %s", data)
			}
			return
		}
		if !errors.Is(err, ErrProof) {
			t.Fatalf("error %v is not ErrProof", err)
		}
	})
}
