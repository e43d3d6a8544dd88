package pivemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
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
// the role Yubico's PIV attestation CAs play for real YubiKeys: an
// RSA-2048 root that signs the f9 certificates of cards before firmware
// 5.7.4 directly, as "Yubico PIV Root CA Serial 263751" does, and through
// an intermediate (Intermediate) for 5.7.4 and later, as Yubico's newer
// hierarchy ("Yubico Attestation Root 1", an intermediate, "Yubico PIV
// Attestation B 1") does.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer

	mu    sync.Mutex
	inter *CA
}

// NewCA makes a self-signed RSA-2048 emulator root CA. Its name says that
// it is not Yubico's: only tests that configure it explicitly may trust it.
func NewCA() (*CA, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating emulator ca key: %w", err)
	}
	cert, err := caCertificate("keyceremony pivemu emulator CA (not Yubico)", priv, nil, nil, 2)
	if err != nil {
		return nil, fmt.Errorf("self-signing emulator ca: %w", err)
	}
	return &CA{Cert: cert, Key: priv}, nil
}

// Intermediate is the CA's PIV attestation intermediate, made on first
// use: what signs the f9 certificates of cards with firmware 5.7.4 and
// later. A rehearsal that trusts the root needs it to complete the chain.
func (ca *CA) Intermediate() (*CA, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.inter != nil {
		return ca.inter, nil
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating emulator intermediate key: %w", err)
	}
	cert, err := caCertificate("keyceremony pivemu PIV Attestation (not Yubico)", priv, ca.Cert, ca.Key, 1)
	if err != nil {
		return nil, fmt.Errorf("certifying emulator intermediate: %w", err)
	}
	ca.inter = &CA{Cert: cert, Key: priv}
	return ca.inter, nil
}

// caCertificate makes a CA certificate with critical basic constraints
// (CA:TRUE, pathlen) and key usage certificate and CRL signing, as
// Yubico's roots and intermediates carry; self-signed when parent is nil.
func caCertificate(name string, priv crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, pathLen int) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            pathLen,
		MaxPathLenZero:        pathLen == 0,
	}
	if parent == nil {
		parent, parentKey = tmpl, priv
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, priv.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("choosing certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// newHierarchy is the first firmware whose f9 certificate chains through
// Yubico's newer PIV attestation hierarchy.
var newHierarchy = Version{5, 7, 4}

// makeAttestationKey puts an RSA-2048 key in slot f9 and its certificate
// in object 5FFF01, shaped as a YubiKey's: subject "Yubico PIV
// Attestation", signed sha256WithRSA by the configured CA (before 5.7.4)
// or by its intermediate (5.7.4 and later), critical basic constraints
// CA:TRUE pathlen:0, the firmware extension, and no key usage or key
// identifiers.
func (c *Card) makeAttestationKey() error {
	issuer := c.cfg.CA
	c.attChain = nil
	if c.cfg.Version.AtLeast(newHierarchy.Major, newHierarchy.Minor, newHierarchy.Patch) {
		inter, err := c.cfg.CA.Intermediate()
		if err != nil {
			return err
		}
		issuer = inter
		c.attChain = []*x509.Certificate{inter.Cert}
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating attestation key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	v := c.cfg.Version
	// Basic constraints written by hand: x509.CreateCertificate adds a
	// subject key identifier to every certificate whose template says
	// IsCA, and a YubiKey's f9 certificate has none.
	bc, err := asn1.Marshal(struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}{IsCA: true, MaxPathLen: 0})
	if err != nil {
		return fmt.Errorf("encoding basic constraints: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore:          issuer.Cert.NotBefore,
		NotAfter:           issuer.Cert.NotAfter,
		SignatureAlgorithm: x509.SHA256WithRSA,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: []byte{byte(v.Major), byte(v.Minor), byte(v.Patch)}},
			{Id: oidBasicConstraints, Critical: true, Value: bc},
		},
	}
	issuerCert := *issuer.Cert
	issuerCert.SubjectKeyId = nil // no authority key identifier either
	der, err := x509.CreateCertificate(rand.Reader, tmpl, &issuerCert, priv.Public(), issuer.Key)
	if err != nil {
		return fmt.Errorf("certifying attestation key: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parsing attestation certificate: %w", err)
	}
	c.attKey, c.attCert = priv, cert
	c.keys = map[byte]*key{slotAttestation: {
		alg: AlgRSA2048, priv: priv, pinPolicy: PINPolicyNever, touchPolicy: TouchPolicyNever, generated: false,
	}}
	var obj []byte
	obj = appendTLV(obj, 0x70, der)
	obj = appendTLV(obj, 0x71, []byte{0})
	obj = appendTLV(obj, 0xfe, nil)
	c.objects = map[uint32][]byte{objAttestation: obj}
	return nil
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

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
