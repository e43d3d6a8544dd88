package soft

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// defaultKDFStrength is the scrypt strength of everything this package
// encrypts: Standard (N=2^16, r=8, p=1; about 160 ms and 64 MiB per
// derivation on a 2-core Xeon). Decryption accepts every strength the
// encrypted package knows. Tests lower kdfStrength to Legacy for speed.
const defaultKDFStrength = encrypted.Standard

var kdfStrength = defaultKDFStrength

// errWrongSecret is a well-formed encrypted value that does not open with
// the given passphrase: a wrong PIN or PUK.
var errWrongSecret = errors.New("wrong passphrase")

// blob mirrors the JSON that encrypted.Encrypt writes, so that a malformed
// value is told apart from a wrong passphrase before any try is spent.
type blob struct {
	KDF struct {
		Name   string `json:"name"`
		Params struct {
			N int `json:"N"`
			R int `json:"r"`
			P int `json:"p"`
		} `json:"params"`
		Salt []byte `json:"salt"`
	} `json:"kdf"`
	Cipher struct {
		Name  string `json:"name"`
		Nonce []byte `json:"nonce"`
	} `json:"cipher"`
	Ciphertext []byte `json:"ciphertext"`
}

// checkBlob reports whether b is an encrypted value that Decrypt can try:
// scrypt with one of the encrypted package's parameter sets (the largest
// costs 128 MiB), NaCl secretbox with a 24-byte nonce.
func checkBlob(b json.RawMessage) error {
	var v blob
	if err := strictJSON(b, "encrypted value", &v); err != nil {
		return err
	}
	p := v.KDF.Params
	switch {
	case v.KDF.Name != "scrypt" || v.Cipher.Name != "nacl/secretbox":
		return fmt.Errorf("kdf %q cipher %q: %w", v.KDF.Name, v.Cipher.Name, ErrBadState)
	case p.R != 8 || p.P != 1 || (p.N != 1<<15 && p.N != 1<<16 && p.N != 1<<17):
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d: %w", p.N, p.R, p.P, ErrBadState)
	case len(v.KDF.Salt) < 16 || len(v.Cipher.Nonce) != 24 || len(v.Ciphertext) < 16:
		return fmt.Errorf("salt, nonce or ciphertext too short: %w", ErrBadState)
	}
	return nil
}

// decrypt opens an encrypted value; errWrongSecret if passphrase is wrong.
func decrypt(b json.RawMessage, passphrase []byte) ([]byte, error) {
	if err := checkBlob(b); err != nil {
		return nil, err
	}
	pt, err := encrypted.Decrypt(b, passphrase)
	if err != nil {
		// The value is well formed (checkBlob), so only the key is wrong.
		return nil, errWrongSecret
	}
	return pt, nil
}

func encrypt(pt, passphrase []byte) (json.RawMessage, error) {
	b, err := encrypted.EncryptWithCustomKDFParameters(pt, passphrase, kdfStrength)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	return b, nil
}
