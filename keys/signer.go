package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// memorySigner signs with a private key held in this process's memory.
type memorySigner struct {
	key  *Key
	priv crypto.Signer
}

// NewMemorySigner wraps an in-memory ed25519 or ECDSA P-256 private key.
// It is used for the per-ceremony bin key, which never leaves memory, and
// in tests.
func NewMemorySigner(priv crypto.Signer) (Signer, error) {
	k, err := FromPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	return &memorySigner{key: k, priv: priv}, nil
}

// GenerateEd25519 makes a fresh in-memory ed25519 signer.
func GenerateEd25519() (Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	return NewMemorySigner(priv)
}

func (s *memorySigner) Key() *Key { return s.key }

func (s *memorySigner) Sign(msg []byte) ([]byte, error) {
	switch p := s.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(p, msg), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, p, h[:])
	default:
		h := sha256.Sum256(msg)
		return s.priv.Sign(rand.Reader, h[:], crypto.SHA256)
	}
}

// DigestSigner is a Signer whose signature is over the SHA-256 of the
// message (ECDSA P-256, ecdsa-sha2-nistp256), and which can sign and check
// a digest the caller has computed already: the stable pipeline hashes each
// bin once, and signs and verifies that one digest.
type DigestSigner interface {
	Signer
	// SignDigest returns what Sign returns for a message whose SHA-256 is
	// digest.
	SignDigest(digest *[32]byte) ([]byte, error)
	// VerifyDigest checks a signature as Key().Verify checks it for a
	// message whose SHA-256 is digest; it returns ErrBadSignature if the
	// signature does not verify.
	VerifyDigest(digest *[32]byte, sig []byte) error
}

// ecdsaSigner is an in-memory ECDSA P-256 key.
type ecdsaSigner struct {
	key  *Key
	priv *ecdsa.PrivateKey
}

// GenerateECDSA makes a fresh in-memory ECDSA P-256 signer. It is used for
// the bin keys, which exist only in memory for one ceremony: their
// signature hashes a bin once with SHA-256, where ed25519 hashes it twice
// with SHA-512, and once more to verify.
func GenerateECDSA() (DigestSigner, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ecdsa p-256 key: %w", err)
	}
	k, err := FromPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	return &ecdsaSigner{key: k, priv: priv}, nil
}

func (s *ecdsaSigner) Key() *Key { return s.key }

func (s *ecdsaSigner) Sign(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	return s.SignDigest(&h)
}

func (s *ecdsaSigner) SignDigest(digest *[32]byte) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, s.priv, digest[:])
}

func (s *ecdsaSigner) VerifyDigest(digest *[32]byte, sig []byte) error {
	if !strictDER(sig) {
		return fmt.Errorf("ecdsa signature is not strict DER: %w", ErrBadSignature)
	}
	if !ecdsa.VerifyASN1(&s.priv.PublicKey, digest[:], sig) {
		return ErrBadSignature
	}
	return nil
}
