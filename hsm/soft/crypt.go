package soft

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// KDF is the scrypt cost with which a soft device encrypts its secrets
// (the device key under the PIN and under the PUK, the slots' private
// keys under the device key). It is chosen when the device is created,
// recorded in state.json, used for every later encryption, and shown in
// the device's Info (and so in every transcript that names the device).
type KDF string

const (
	// KDFStandard is scrypt with N=2^16, r=8, p=1 (go-securesystemslib's
	// encrypted.Standard): about 160 ms and 64 MiB per derivation on a
	// 2-core Xeon. It is the default.
	KDFStandard KDF = "standard"
	// KDFTest is scrypt with N=2^10, r=8, p=1: 64 times cheaper than
	// Standard, and INSECURE even by this package's standard. It exists so
	// that test suites can make and use many devices; never use it for a
	// demo or a rehearsal a person relies on.
	KDFTest KDF = "test"
)

// KDFs lists the known costs, the default first.
var KDFs = []KDF{KDFStandard, KDFTest}

// ErrUnknownKDF is a KDF cost name this package does not know.
var ErrUnknownKDF = errors.New("unknown kdf cost (want standard or test)")

// ParseKDF turns a recorded or typed cost name into a KDF.
func ParseKDF(s string) (KDF, error) {
	for _, k := range KDFs {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("%q: %w", s, ErrUnknownKDF)
}

// publicKDF encrypts values under the public AttestationPassphrase (the
// device's attestation key, the CA's key): a KDF protects nothing there,
// so they use the cheapest known cost. Any known cost is accepted on load.
const publicKDF = KDFTest

type scryptParams struct {
	N int `json:"N"`
	R int `json:"r"`
	P int `json:"p"`
}

// params returns the scrypt parameters of a known cost.
func (k KDF) params() (scryptParams, bool) {
	switch k {
	case KDFStandard:
		return scryptParams{N: 1 << 16, R: 8, P: 1}, true
	case KDFTest:
		return scryptParams{N: 1 << 10, R: 8, P: 1}, true
	}
	return scryptParams{}, false
}

// kdfOf names the known cost with parameters p.
func kdfOf(p scryptParams) (KDF, bool) {
	for _, k := range KDFs {
		if kp, _ := k.params(); kp == p {
			return k, true
		}
	}
	return "", false
}

const (
	saltSize  = 32
	nonceSize = 24
	boxKey    = 32
)

// errWrongSecret is a well-formed encrypted value that does not open with
// the given passphrase: a wrong PIN or PUK.
var errWrongSecret = errors.New("wrong passphrase")

// blob is the JSON that go-securesystemslib's encrypted package writes and
// reads (scrypt, then NaCl secretbox): at the Standard cost,
// encrypted.Decrypt opens what encrypt writes and decrypt opens what
// encrypted.Encrypt writes. The package is not used itself because it
// refuses costs below N=2^15, and so KDFTest.
type blob struct {
	KDF struct {
		Name   string       `json:"name"`
		Params scryptParams `json:"params"`
		Salt   []byte       `json:"salt"`
	} `json:"kdf"`
	Cipher struct {
		Name  string `json:"name"`
		Nonce []byte `json:"nonce"`
	} `json:"cipher"`
	Ciphertext []byte `json:"ciphertext"`
}

// parseBlob reads an encrypted value strictly and returns it with its
// cost: scrypt at one of the known costs (so a tampered file cannot make
// a derivation cost gigabytes), NaCl secretbox with a 24-byte nonce. If
// want is not empty, the value must use exactly that cost.
func parseBlob(b json.RawMessage, want KDF) (*blob, KDF, error) {
	var v blob
	if err := strictJSON(b, "encrypted value", &v); err != nil {
		return nil, "", err
	}
	p := v.KDF.Params
	k, known := kdfOf(p)
	switch {
	case v.KDF.Name != "scrypt" || v.Cipher.Name != "nacl/secretbox":
		return nil, "", fmt.Errorf("kdf %q cipher %q: %w", v.KDF.Name, v.Cipher.Name, ErrBadState)
	case !known:
		return nil, "", fmt.Errorf("scrypt parameters N=%d r=%d p=%d: %w", p.N, p.R, p.P, ErrBadState)
	case want != "" && k != want:
		return nil, "", fmt.Errorf("scrypt parameters N=%d r=%d p=%d, the %s cost, on a device recorded as %s: %w", p.N, p.R, p.P, k, want, ErrBadState)
	case len(v.KDF.Salt) < 16 || len(v.Cipher.Nonce) != nonceSize || len(v.Ciphertext) < secretbox.Overhead:
		return nil, "", fmt.Errorf("salt, nonce or ciphertext too short: %w", ErrBadState)
	}
	return &v, k, nil
}

// checkBlob reports whether b is an encrypted value that decrypt can try
// at cost want (any known cost if want is empty).
func checkBlob(b json.RawMessage, want KDF) error {
	_, _, err := parseBlob(b, want)
	return err
}

// decrypt opens an encrypted value made at cost want (any known cost if
// want is empty); errWrongSecret if passphrase is wrong.
func decrypt(b json.RawMessage, passphrase []byte, want KDF) ([]byte, error) {
	v, _, err := parseBlob(b, want)
	if err != nil {
		return nil, err
	}
	p := v.KDF.Params
	key, err := scrypt.Key(passphrase, v.KDF.Salt, p.N, p.R, p.P, boxKey)
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}
	defer clear(key)
	var k [boxKey]byte
	var nonce [nonceSize]byte
	copy(k[:], key)
	defer clear(k[:])
	copy(nonce[:], v.Cipher.Nonce)
	pt, ok := secretbox.Open(nil, v.Ciphertext, &nonce, &k)
	if !ok {
		// The value is well formed, so only the key is wrong.
		return nil, errWrongSecret
	}
	return pt, nil
}

// encrypt encrypts pt under passphrase at cost kdf, with a fresh salt and
// nonce.
func encrypt(pt, passphrase []byte, kdf KDF) (json.RawMessage, error) {
	p, ok := kdf.params()
	if !ok {
		return nil, fmt.Errorf("encrypting: %q: %w", kdf, ErrUnknownKDF)
	}
	var v blob
	v.KDF.Name, v.KDF.Params, v.KDF.Salt = "scrypt", p, make([]byte, saltSize)
	v.Cipher.Name, v.Cipher.Nonce = "nacl/secretbox", make([]byte, nonceSize)
	if _, err := rand.Read(v.KDF.Salt); err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	if _, err := rand.Read(v.Cipher.Nonce); err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	key, err := scrypt.Key(passphrase, v.KDF.Salt, p.N, p.R, p.P, boxKey)
	if err != nil {
		return nil, fmt.Errorf("encrypting: scrypt: %w", err)
	}
	defer clear(key)
	var k [boxKey]byte
	var nonce [nonceSize]byte
	copy(k[:], key)
	defer clear(k[:])
	copy(nonce[:], v.Cipher.Nonce)
	v.Ciphertext = secretbox.Seal(nil, pt, &nonce, &k)
	b, err := json.Marshal(&v)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	return b, nil
}
