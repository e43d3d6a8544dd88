package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key ids and encodings agree with go-tuf, an independent implementation.
func TestKeyMatchesGoTUF(t *testing.T) {
	var pubs []crypto.PublicKey
	for range 5 {
		edPub, _, _ := ed25519.GenerateKey(rand.Reader)
		pubs = append(pubs, edPub, mustKey(t).Public())
	}
	for _, pub := range pubs {
		ours, err := FromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := metadata.KeyFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		theirID, _ := theirs.ID()
		if ours.ID() != theirID || ours.KeyType != theirs.Type || ours.Scheme != theirs.Scheme || ours.KeyVal.Public != theirs.Value.PublicKey {
			t.Errorf("key %+v (id %s) differs from go-tuf's %+v (id %s)", ours, ours.ID(), theirs, theirID)
		}
		back, err := ours.Public()
		if err != nil {
			t.Fatal(err)
		}
		if !back.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Error("Public does not give back the key")
		}
	}
}

// A fixed key's id, so that a change in the canonical encoding is noticed.
func TestKeyIDGolden(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public()
	k, err := FromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyVal.Public != "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29" {
		t.Errorf("public %s", k.KeyVal.Public)
	}
	sum := sha256.Sum256([]byte(`{"keytype":"ed25519","keyval":{"public":"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"},"scheme":"ed25519"}`))
	if want := hex.EncodeToString(sum[:]); k.ID() != want {
		t.Errorf("ID %s, want %s", k.ID(), want)
	}
}

func TestFromPublicKeyRejects(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		name string
		pub  crypto.PublicKey
		want error
	}{
		{"P-384", p384.Public(), ErrUnsupportedKey},
		{"short ed25519", ed25519.PublicKey(make([]byte, 31)), ErrMalformedKey},
		{"string", "key", ErrUnsupportedKey},
		{"nil", nil, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		if _, err := FromPublicKey(tt.pub); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestPublicStrict(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := FromPublicKey(edPub)
	ec, _ := FromPublicKey(mustKey(t).Public())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(p384.Public())
	p384Key := &Key{KeyType: KeyTypeECDSA, Scheme: SchemeECDSAP256, KeyVal: KeyVal{Public: pemOf(der384)}}
	with := func(k *Key, f func(k *Key)) *Key { c := *k; f(&c); return &c }
	tests := []struct {
		name string
		key  *Key
		want error
	}{
		{"ed25519 uppercase hex", with(ed, func(k *Key) { k.KeyVal.Public = strings.ToUpper(k.KeyVal.Public) }), ErrMalformedKey},
		{"ed25519 short", with(ed, func(k *Key) { k.KeyVal.Public = k.KeyVal.Public[2:] }), ErrMalformedKey},
		{"ed25519 not hex", with(ed, func(k *Key) { k.KeyVal.Public = strings.Repeat("zz", 32) }), ErrMalformedKey},
		{"ed25519 with ecdsa scheme", with(ed, func(k *Key) { k.Scheme = SchemeECDSAP256 }), ErrUnsupportedKey},
		{"ecdsa with ed25519 scheme", with(ec, func(k *Key) { k.Scheme = SchemeEd25519 }), ErrUnsupportedKey},
		{"ecdsa trailing garbage", with(ec, func(k *Key) { k.KeyVal.Public += "garbage" }), ErrMalformedKey},
		{"ecdsa two PEM blocks", with(ec, func(k *Key) { k.KeyVal.Public += k.KeyVal.Public }), ErrMalformedKey},
		{"ecdsa wrong PEM type", with(ec, func(k *Key) { k.KeyVal.Public = strings.ReplaceAll(k.KeyVal.Public, "PUBLIC KEY", "EC PUBLIC KEY") }), ErrMalformedKey},
		{"ecdsa bad DER", with(ec, func(k *Key) { k.KeyVal.Public = pemOf([]byte{0x30, 0x00}) }), ErrMalformedKey},
		{"ecdsa P-384", p384Key, ErrUnsupportedKey},
		{"rsa", &Key{KeyType: "rsa", Scheme: "rsassa-pss-sha256"}, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		if _, err := tt.key.Public(); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	legacy := with(ec, func(k *Key) { k.KeyType = KeyTypeECDSALegacy })
	if _, err := legacy.Public(); err != nil {
		t.Errorf("legacy ecdsa keytype: %v", err)
	}
	if legacy.ID() == ec.ID() {
		t.Error("the legacy spelling has the same key id")
	}
}

func TestVerifyStrict(t *testing.T) {
	msg := []byte("payload")
	priv := mustKey(t)
	k, _ := FromPublicKey(priv.Public())
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
	if err != nil {
		t.Fatal(err)
	}
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err := k.Verify(msg, der); err != nil {
		t.Fatalf("good DER signature: %v", err)
	}
	raw := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	// Non-minimal: an INTEGER with a needless leading zero.
	nonMinimal := func() []byte {
		rb := append([]byte{0, 0}, r.Bytes()...)
		if r.Bytes()[0] >= 0x80 {
			rb = rb[1:] // one zero is needed; add a second
			rb = append([]byte{0}, rb...)
		}
		sb, _ := asn1.Marshal(s)
		body := append(append([]byte{0x02, byte(len(rb))}, rb...), sb...)
		return append([]byte{0x30, byte(len(body))}, body...)
	}()
	neg, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).Neg(r), s})
	tests := []struct {
		name string
		sig  []byte
	}{
		{"raw r||s", raw},
		{"trailing byte", append(append([]byte{}, der...), 0)},
		{"non-minimal integer", nonMinimal},
		{"negative r", neg},
		{"empty", nil},
		{"other message", func() []byte {
			h2 := sha256.Sum256([]byte("other"))
			b, _ := ecdsa.SignASN1(rand.Reader, priv, h2[:])
			return b
		}()},
	}
	for _, tt := range tests {
		if err := k.Verify(msg, tt.sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", tt.name, err)
		}
	}

	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ek, _ := FromPublicKey(edPub)
	sig := ed25519.Sign(edPriv, msg)
	if err := ek.Verify(msg, sig); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"flipped":  func() []byte { b := bytes.Clone(sig); b[5] ^= 1; return b }(),
		"trailing": append(bytes.Clone(sig), 0),
		"short":    sig[:63],
	} {
		if err := ek.Verify(msg, bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("ed25519 %s: %v", name, err)
		}
	}
	if err := (&Key{KeyType: "rsa"}).Verify(msg, sig); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("unsupported key: %v", err)
	}
}

func TestEqual(t *testing.T) {
	a, _ := FromPublicKey(mustKey(t).Public())
	b := *a
	c, _ := FromPublicKey(mustKey(t).Public())
	if !a.Equal(&b) || a.Equal(c) || a.Equal(nil) || (*Key)(nil).Equal(a) {
		t.Error("Equal is wrong")
	}
}

func TestMemorySigner(t *testing.T) {
	ed, err := GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	ec, err := NewMemorySigner(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Signer{ed, ec} {
		msg := []byte("m")
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Key().Verify(msg, sig); err != nil {
			t.Errorf("%s: %v", s.Key().KeyType, err)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewMemorySigner(p384); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("P-384 signer: %v", err)
	}
}

func FuzzKeyPublic(f *testing.F) {
	ec, _ := FromPublicKey(mustKey(f).Public())
	f.Add(ec.KeyType, ec.Scheme, ec.KeyVal.Public)
	f.Add("ed25519", "ed25519", strings.Repeat("ab", 32))
	f.Fuzz(func(t *testing.T, kt, scheme, public string) {
		k := &Key{KeyType: kt, Scheme: scheme, KeyVal: KeyVal{Public: public}}
		pub, err := k.Public()
		if err != nil {
			return
		}
		// Whatever parses converts back to the same key, but for the legacy
		// ECDSA spelling and PEM whitespace.
		again, err := FromPublicKey(pub)
		if err != nil {
			t.Fatalf("parsed key does not convert back: %v", err)
		}
		if _, err := again.Public(); err != nil {
			t.Fatal(err)
		}
	})
}

func pemOf(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// A DigestSigner's digest signatures are the signatures Sign makes and
// Key.Verify checks, and VerifyDigest refuses what Key.Verify refuses.
func TestDigestSigner(t *testing.T) {
	s, err := GenerateECDSA()
	if err != nil {
		t.Fatal(err)
	}
	if s.Key().Scheme != "ecdsa-sha2-nistp256" {
		t.Fatalf("scheme %q", s.Key().Scheme)
	}
	msg := []byte("a bin's signed bytes")
	digest := sha256.Sum256(msg)
	sig, err := s.SignDigest(&digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Key().Verify(msg, sig); err != nil {
		t.Errorf("Key.Verify of a digest signature: %v", err)
	}
	if err := s.VerifyDigest(&digest, sig); err != nil {
		t.Errorf("VerifyDigest: %v", err)
	}
	sig2, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyDigest(&digest, sig2); err != nil {
		t.Errorf("VerifyDigest of Sign's signature: %v", err)
	}
	other, err := GenerateECDSA()
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := other.SignDigest(&digest)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &parsed); err != nil {
		t.Fatal(err)
	}
	raw := append(parsed.R.FillBytes(make([]byte, 32)), parsed.S.FillBytes(make([]byte, 32))...)
	flipped := bytes.Clone(sig)
	flipped[len(flipped)-1] ^= 1
	otherDigest := sha256.Sum256([]byte("another bin"))
	for name, c := range map[string]struct {
		digest *[32]byte
		sig    []byte
	}{
		"another digest": {&otherDigest, sig},
		"another key":    {&digest, otherSig},
		"raw r||s":       {&digest, raw},
		"flipped":        {&digest, flipped},
		"empty":          {&digest, nil},
	} {
		if err := s.VerifyDigest(c.digest, c.sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: VerifyDigest %v, want ErrBadSignature", name, err)
		}
		if *c.digest == digest {
			if err := s.Key().Verify(msg, c.sig); err == nil {
				t.Errorf("%s: Key.Verify accepted it", name)
			}
		}
	}
}
