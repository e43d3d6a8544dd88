package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// Key types and schemes, as TUF names them.
const (
	KeyTypeEd25519 = "ed25519"
	KeyTypeECDSA   = "ecdsa"
	// KeyTypeECDSALegacy is the older spelling of KeyTypeECDSA, accepted
	// when loading and never written.
	KeyTypeECDSALegacy = "ecdsa-sha2-nistp256"

	SchemeEd25519   = "ed25519"
	SchemeECDSAP256 = "ecdsa-sha2-nistp256"
)

// Errors returned by this package; check them with errors.Is.
var (
	ErrUnsupportedKey = errors.New("unsupported key")
	ErrBadSignature   = errors.New("signature does not verify")
	ErrMalformedKey   = errors.New("malformed key")
)

// KeyVal is the keyval object of a TUF key.
type KeyVal struct {
	Public string `json:"public"`
}

// Key is a public key in TUF form. The zero value is not a valid key.
type Key struct {
	KeyType string `json:"keytype"`
	Scheme  string `json:"scheme"`
	KeyVal  KeyVal `json:"keyval"`
}

// FromPublicKey converts an ed25519 or ECDSA P-256 public key to TUF form.
func FromPublicKey(pub crypto.PublicKey) (*Key, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 key of %d bytes: %w", len(p), ErrMalformedKey)
		}
		return &Key{KeyType: KeyTypeEd25519, Scheme: SchemeEd25519, KeyVal: KeyVal{Public: hex.EncodeToString(p)}}, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ecdsa key on curve %s: %w", p.Curve.Params().Name, ErrUnsupportedKey)
		}
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("encoding ecdsa key: %w", err)
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		return &Key{KeyType: KeyTypeECDSA, Scheme: SchemeECDSAP256, KeyVal: KeyVal{Public: string(pemBytes)}}, nil
	default:
		return nil, fmt.Errorf("public key of type %T: %w", pub, ErrUnsupportedKey)
	}
}

// ID returns the TUF key id: hex SHA-256 of the canonical JSON of the key.
func (k *Key) ID() string {
	b, err := cjson.EncodeCanonical(k)
	if err != nil {
		// A Key holds only strings; canonical encoding cannot fail.
		panic(fmt.Sprintf("keys: canonical encoding of a key failed: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Public parses the key and checks that its type, scheme and encoding agree.
func (k *Key) Public() (crypto.PublicKey, error) {
	switch {
	case k.KeyType == KeyTypeEd25519 && k.Scheme == SchemeEd25519:
		b, err := hex.DecodeString(k.KeyVal.Public)
		if err != nil || len(b) != ed25519.PublicKeySize || hex.EncodeToString(b) != k.KeyVal.Public {
			return nil, fmt.Errorf("ed25519 keyval.public must be %d lowercase hex bytes: %w", ed25519.PublicKeySize, ErrMalformedKey)
		}
		return ed25519.PublicKey(b), nil
	case (k.KeyType == KeyTypeECDSA || k.KeyType == KeyTypeECDSALegacy) && k.Scheme == SchemeECDSAP256:
		block, rest := pem.Decode([]byte(k.KeyVal.Public))
		if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("ecdsa keyval.public must be one PEM \"PUBLIC KEY\" block: %w", ErrMalformedKey)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ecdsa keyval.public: %w: %w", err, ErrMalformedKey)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ecdsa keyval.public is not a P-256 key: %w", ErrUnsupportedKey)
		}
		return ec, nil
	default:
		return nil, fmt.Errorf("keytype %q with scheme %q: %w", k.KeyType, k.Scheme, ErrUnsupportedKey)
	}
}

// Verify checks sig over msg with this key, strictly (see the package doc).
func (k *Key) Verify(msg, sig []byte) error {
	pub, err := k.Public()
	if err != nil {
		return err
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(p, msg, sig) {
			return ErrBadSignature
		}
	case *ecdsa.PublicKey:
		if !strictDER(sig) {
			return fmt.Errorf("ecdsa signature is not strict DER: %w", ErrBadSignature)
		}
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(p, h[:], sig) {
			return ErrBadSignature
		}
	}
	return nil
}

// Equal reports whether two keys are the same TUF key.
func (k *Key) Equal(o *Key) bool {
	return k != nil && o != nil && *k == *o
}

// Signer is anything that holds a private key and can sign for TUF: a slot
// on a hardware device or an in-memory ceremony key. Sign returns the
// signature in the encoding Key.Verify accepts (DER for ECDSA).
type Signer interface {
	Key() *Key
	Sign(msg []byte) ([]byte, error)
}

// strictDER reports whether sig is exactly the DER encoding of an ECDSA
// signature: one SEQUENCE of two positive, minimally encoded INTEGERs and
// nothing after it. Re-encoding and comparing catches every laxity.
func strictDER(sig []byte) bool {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 || v.R.Sign() <= 0 || v.S.Sign() <= 0 {
		return false
	}
	again, err := asn1.Marshal(v)
	return err == nil && bytes.Equal(again, sig)
}
