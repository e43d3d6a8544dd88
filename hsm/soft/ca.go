package soft

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"time"
)

// CA is a per-installation soft attestation CA: it certifies the
// attestation key of every soft device made with it, as Yubico's PIV CA
// certifies a YubiKey's. Verifiers trust it only when given CA.Pool
// explicitly.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// caJSON is ca.json.
type caJSON struct {
	Warning     string          `json:"warning"`
	Format      string          `json:"format"`
	Version     int             `json:"version"`
	Certificate string          `json:"certificate"` // PEM
	Key         json.RawMessage `json:"key"`         // PKCS#8, encrypted under AttestationPassphrase
}

// CreateCA makes a new soft attestation CA in dir, which must be empty or
// not exist yet.
func CreateCA(dir string) (_ *CA, err error) {
	if err := prepareEmptyDir(dir); err != nil {
		return nil, fmt.Errorf("creating soft CA: %w", err)
	}
	// Leave the directory empty again if anything below fails.
	defer func() {
		if err != nil {
			removeCreated(dir)
		}
	}()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "keyceremony soft PIV attestation CA (INSECURE)", Organization: []string{"INSECURE software device"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(30, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating soft CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	encKey, err := encryptPrivate(key, []byte(AttestationPassphrase), publicKDF)
	if err != nil {
		return nil, err
	}
	f := caJSON{Warning: Warning, Format: caFormat, Version: caVersion, Certificate: certPEM(cert), Key: encKey}
	if err := writeJSON(dir, caFile, f); err != nil {
		return nil, fmt.Errorf("writing soft CA: %w", err)
	}
	return &CA{cert: cert, key: key}, nil
}

// LoadCA reads the soft attestation CA in dir.
func LoadCA(dir string) (*CA, error) {
	path := filepath.Join(dir, caFile)
	b, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("reading soft CA: %w", err)
	}
	ca, err := parseCA(b)
	if err != nil {
		return nil, fmt.Errorf("reading soft CA %s: %w", path, err)
	}
	return ca, nil
}

func parseCA(b []byte) (*CA, error) {
	var f caJSON
	if err := strictJSON(b, caFile, &f); err != nil {
		return nil, err
	}
	if f.Warning != Warning {
		return nil, fmt.Errorf("field warning: %w", ErrBadState)
	}
	if f.Format != caFormat || f.Version != caVersion {
		return nil, fmt.Errorf("format %q version %d, want %q version %d: %w", f.Format, f.Version, caFormat, caVersion, ErrBadState)
	}
	cert, err := parseCertPEM(f.Certificate)
	if err != nil {
		return nil, fmt.Errorf("field certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("field certificate is not a CA: %w", ErrBadState)
	}
	key, err := decryptPrivate(f.Key, []byte(AttestationPassphrase), "")
	if err != nil {
		return nil, fmt.Errorf("field key: %w", err)
	}
	if !samePublic(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("field key does not match the certificate: %w", ErrBadState)
	}
	return &CA{cert: cert, key: key}, nil
}

// Certificate returns the CA's root certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a new pool holding only this CA's root, for
// keys.VerifyAttestation.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issueDeviceCert certifies a device's attestation key, like the "f9"
// certificate Yubico puts on every YubiKey.
func (ca *CA) issueDeviceCert(pub crypto.PublicKey, serial uint32) (*x509.Certificate, error) {
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:    randomSerial(),
		Subject:         pkix.Name{CommonName: fmt.Sprintf("keyceremony soft PIV Attestation %d (INSECURE)", serial)},
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        ca.cert.NotAfter,
		ExtraExtensions: []pkix.Extension{{Id: oidFirmware, Value: firmwareBytes()}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("certifying device attestation key: %w", err)
	}
	return x509.ParseCertificate(der)
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f
	b[0] |= 0x01
	return new(big.Int).SetBytes(b)
}

// encryptPrivate encrypts the PKCS#8 encoding of key under passphrase at
// cost kdf.
func encryptPrivate(key crypto.Signer, passphrase []byte, kdf KDF) (json.RawMessage, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	defer clear(der)
	return encrypt(der, passphrase, kdf)
}

// decryptPrivate reverses encryptPrivate for a value at cost want (any
// known cost if empty). A wrong passphrase is errWrongSecret.
func decryptPrivate(blob json.RawMessage, passphrase []byte, want KDF) (crypto.Signer, error) {
	der, err := decrypt(blob, passphrase, want)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decrypted private key: %w: %w", err, ErrBadState)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T: %w", k, ErrBadState)
	}
	return s, nil
}

type publicKeyEqualer interface{ Equal(crypto.PublicKey) bool }

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(publicKeyEqualer)
	return ok && e.Equal(b)
}
