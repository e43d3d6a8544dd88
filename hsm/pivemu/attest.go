package pivemu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// Yubico's PIV attestation extensions
// (https://developers.yubico.com/PIV/Introduction/PIV_attestation.html).
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3} // 3 raw bytes
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7} // DER INTEGER
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8} // PIN, touch
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9} // 1 raw byte
)

// CA is a certificate authority that certifies cards' attestation keys, in
// the role Yubico's PIV attestation CA plays for real YubiKeys.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed ECDSA P-256 emulator CA. Its name says that it
// is not Yubico's: only tests that configure it explicitly may trust it.
func NewCA() (*CA, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating emulator ca key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "keyceremony pivemu emulator CA (not Yubico)"},
		NotBefore:             time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, fmt.Errorf("self-signing emulator ca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing emulator ca: %w", err)
	}
	return &CA{Cert: cert, Key: priv}, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("choosing certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// makeAttestationKey puts a key in slot f9 and its certificate, signed by
// the configured CA, in object 5FFF01.
func (c *Card) makeAttestationKey() error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating attestation key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore:             c.cfg.CA.Cert.NotBefore,
		NotAfter:              c.cfg.CA.Cert.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cfg.CA.Cert, priv.Public(), c.cfg.CA.Key)
	if err != nil {
		return fmt.Errorf("certifying attestation key: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parsing attestation certificate: %w", err)
	}
	c.attKey, c.attCert = priv, cert
	c.keys = map[byte]*key{slotAttestation: {
		alg: AlgECCP256, priv: priv, pinPolicy: PINPolicyNever, touchPolicy: TouchPolicyNever, generated: false,
	}}
	var obj []byte
	obj = appendTLV(obj, 0x70, der)
	obj = appendTLV(obj, 0x71, []byte{0})
	obj = appendTLV(obj, 0xfe, nil)
	c.objects = map[uint32][]byte{objAttestation: obj}
	return nil
}

// attestationFor makes the certificate ATTEST returns for the key in slot:
// subject "YubiKey PIV Attestation <slot>", issued by the f9 certificate,
// with its validity, and Yubico's extensions.
func (c *Card) attestationFor(slot byte, k *key) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	v := c.cfg.Version
	serialDER, err := asn1.Marshal(int64(c.cfg.Serial))
	if err != nil {
		return nil, fmt.Errorf("encoding serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: fmt.Sprintf("YubiKey PIV Attestation %02x", slot)},
		NotBefore:    c.attCert.NotBefore,
		NotAfter:     c.attCert.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: []byte{byte(v.Major), byte(v.Minor), byte(v.Patch)}},
			{Id: oidSerial, Value: serialDER},
			{Id: oidPolicy, Value: []byte{k.pinPolicy, k.touchPolicy}},
			{Id: oidFormFactor, Value: []byte{c.cfg.FormFactor}},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.attCert, k.priv.Public(), c.attKey)
	if err != nil {
		return nil, fmt.Errorf("signing attestation for slot %02x: %w", slot, err)
	}
	return der, nil
}
