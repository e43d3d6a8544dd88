package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
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
