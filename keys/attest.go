package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Errors of attestation verification; check them with errors.Is. A
// malformed attestation (a Yubico extension of the wrong size or value, a
// subject that names no slot) is ErrAttestationMalformed.
var (
	ErrAttestationChain     = errors.New("attestation does not chain to a trusted root")
	ErrAttestationSerial    = errors.New("attested device serial is not the expected one")
	ErrAttestationKey       = errors.New("attested key is not the expected key")
	ErrAttestationMalformed = errors.New("malformed attestation")
	// ErrAttestationSlot: the attestation is for another slot than the
	// one the key was generated in.
	ErrAttestationSlot = errors.New("attested slot is not the slot asked for")
	// ErrAttestationPolicy: the attested PIN or touch policy is not the
	// one the key was generated with.
	ErrAttestationPolicy = errors.New("attested policy is not the one asked for")
	// ErrAttestationExpired: a certificate of the attestation (the slot's,
	// the device's or a CA's above it) is not valid at the ceremony's time.
	ErrAttestationExpired = errors.New("attestation certificate not valid at the ceremony time")
)

// AttestationMismatch is an attestation that says something other than
// what the ceremony asked for. Field names what ("slot", "pin_policy",
// "touch_policy", "serial", "key", or "validity of ..." for a
// certificate's dates); Got is what the attestation says and Want what
// was asked for. It wraps the sentinel for the field (ErrAttestationSlot,
// ErrAttestationPolicy, ErrAttestationSerial, ErrAttestationKey,
// ErrAttestationExpired); check it with errors.Is or errors.As.
type AttestationMismatch struct {
	Field, Got, Want string
	Err              error
}

func (e *AttestationMismatch) Error() string {
	return fmt.Sprintf("attestation %s: %s, want %s: %v", e.Field, e.Got, e.Want, e.Err)
}

func (e *AttestationMismatch) Unwrap() error { return e.Err }

// Yubico's PIV attestation extensions (https://docs.yubico.com/hardware/oid/oid-piv-arc.html).
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
)

// AttestationSubjectPrefix starts the subject common name of a slot
// attestation certificate; the slot in hex follows ("YubiKey PIV
// Attestation 9c").
const AttestationSubjectPrefix = "YubiKey PIV Attestation "

// Attested is what a verified attestation says about a key.
type Attested struct {
	Serial      uint32 // the device's serial number
	Firmware    string // "5.7.1"
	PINPolicy   string // "never", "once", "always", "match-once", "match-always"
	TouchPolicy string // "never", "always", "cached"
	FormFactor  string // "USB-A keychain", ..., "unspecified"
	Slot        string // "9c", two lowercase hex digits
	Public      crypto.PublicKey
}

// PIN and touch policy bytes of extension 1.3.6.1.4.1.41482.3.8.
var (
	pinPolicies   = map[byte]string{1: "never", 2: "once", 3: "always", 4: "match-once", 5: "match-always"}
	touchPolicies = map[byte]string{1: "never", 2: "always", 3: "cached"}
	formFactors   = map[byte]string{
		0x00: "unspecified",
		0x01: "USB-A keychain", 0x02: "USB-A nano", 0x03: "USB-C keychain", 0x04: "USB-C nano", 0x05: "USB-C/Lightning keychain",
		0x81: "USB-A keychain FIPS", 0x82: "USB-A nano FIPS", 0x83: "USB-C keychain FIPS", 0x84: "USB-C nano FIPS", 0x85: "USB-C/Lightning keychain FIPS",
	}
)

// PolicyBytes returns the two bytes of the PIN and touch policy extension
// for the named policies, for devices that issue attestations (the soft
// device). ok is false if either name is unknown.
func PolicyBytes(pinPolicy, touchPolicy string) (b [2]byte, ok bool) {
	for k, v := range pinPolicies {
		if v == pinPolicy {
			b[0] = k
		}
	}
	for k, v := range touchPolicies {
		if v == touchPolicy {
			b[1] = k
		}
	}
	return b, b[0] != 0 && b[1] != 0
}

// VerifyAttestation checks a YubiKey-style PIV attestation and returns what
// it attests. leaf is the slot's attestation certificate; intermediate is
// the device's attestation certificate (slot f9), which signed it. It is
// VerifyAttestationChain with no intermediates beyond Yubico's own.
func VerifyAttestation(leaf, intermediate *x509.Certificate, roots *x509.CertPool) (*Attested, error) {
	return VerifyAttestationChain(leaf, []*x509.Certificate{intermediate}, roots)
}

// VerifyAttestationChain checks a YubiKey-style PIV attestation and
// returns what it attests. leaf is the slot's attestation certificate;
// chain[0] is the device's attestation certificate (slot f9), which signed
// it; chain[1:] are CA certificates that may lie between the f9
// certificate and a root (untrusted: they only help to build the path).
//
// The f9 certificate must chain to one of roots, directly (Yubico's PIV
// root, for firmware before 5.7.4) or through Yubico's published PIV
// attestation CAs or chain[1:] (the hierarchy of 5.7.4 and later: "Yubico
// Attestation Root 1", an intermediate, a PIV attestation CA). The leaf
// must be signed by the f9 key and name it as issuer. The leaf's
// signature is checked directly because a device's f9 certificate may
// lack the key usage that x509.Certificate.Verify would demand of an
// issuer. Every certificate's dates must cover the present
// (VerifyAttestationChainAt takes the ceremony's time). roots must be given: nil is
// ErrAttestationChain, never a fallback to the system pool. Use
// YubicoRoots for real YubiKeys.
//
// The leaf must carry the firmware, serial and policy extensions and a
// subject naming the slot. The serial is read from the leaf, or from the
// f9 certificate if the leaf lacks it; if both carry one they must agree.
func VerifyAttestationChain(leaf *x509.Certificate, chain []*x509.Certificate, roots *x509.CertPool) (*Attested, error) {
	return VerifyAttestationChainAt(leaf, chain, roots, time.Time{})
}

// VerifyAttestationChainAt is VerifyAttestationChain at the time at (the
// ceremony's clock; zero means now): every certificate, the leaf and
// each one on the path to the root, must be valid then, or the error is an
// *AttestationMismatch naming the certificate, its dates and at, wrapping
// ErrAttestationExpired.
func VerifyAttestationChainAt(leaf *x509.Certificate, chain []*x509.Certificate, roots *x509.CertPool, at time.Time) (*Attested, error) {
	if leaf == nil || len(chain) == 0 || chain[0] == nil {
		return nil, fmt.Errorf("missing certificate: %w", ErrAttestationChain)
	}
	if at.IsZero() {
		at = time.Now()
	}
	if err := checkValidity(leaf, "the slot's attestation certificate", at); err != nil {
		return nil, err
	}
	intermediate := chain[0]
	if _, err := AttestationPathAt(intermediate, chain[1:], roots, at); err != nil {
		return nil, err
	}
	if string(leaf.RawIssuer) != string(intermediate.RawSubject) {
		return nil, fmt.Errorf("attestation certificate issued by %q, not by the device certificate %q: %w",
			leaf.Issuer.CommonName, intermediate.Subject.CommonName, ErrAttestationChain)
	}
	if err := intermediate.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		return nil, fmt.Errorf("attestation certificate signature: %w: %w", ErrAttestationChain, err)
	}
	return parseAttested(leaf, intermediate)
}

// AttestationPath checks that a device's attestation certificate (slot
// f9) chains to one of roots, through Yubico's published PIV attestation
// CAs or the CA certificates in extra, and returns the certificates
// strictly between it and the root (none for firmware before 5.7.4), so
// that the whole chain can be written out for auditors (openssl verify
// completes it from the root alone). The shortest path is chosen.
func AttestationPath(f9 *x509.Certificate, extra []*x509.Certificate, roots *x509.CertPool) ([]*x509.Certificate, error) {
	return AttestationPathAt(f9, extra, roots, time.Time{})
}

// AttestationPathAt is AttestationPath at the time at (zero means now):
// the f9 certificate, the CA certificates in extra and every certificate
// on the path must be valid then (an *AttestationMismatch wrapping
// ErrAttestationExpired otherwise, naming the certificate and its dates).
func AttestationPathAt(f9 *x509.Certificate, extra []*x509.Certificate, roots *x509.CertPool, at time.Time) ([]*x509.Certificate, error) {
	if f9 == nil {
		return nil, fmt.Errorf("missing device attestation certificate: %w", ErrAttestationChain)
	}
	if roots == nil {
		return nil, fmt.Errorf("no trusted roots given: %w", ErrAttestationChain)
	}
	if at.IsZero() {
		at = time.Now()
	}
	if err := checkValidity(f9, "the device's attestation certificate (f9)", at); err != nil {
		return nil, err
	}
	inter := yubicoIntermediates()
	for _, c := range extra {
		if c != nil {
			inter.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		CurrentTime:   at,
	}
	chains, err := f9.Verify(opts)
	if err != nil {
		// If the path builds when f9 was issued, a CA on it (given, built
		// in or a root) is out of date at the ceremony: name it.
		opts.CurrentTime = f9.NotBefore
		if then, terr := f9.Verify(opts); terr == nil {
			for _, c := range then[0][1:] {
				if verr := checkValidity(c, "the attestation CA certificate", at); verr != nil {
					return nil, verr
				}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("device attestation certificate %q: %w: %w", f9.Subject.CommonName, ErrAttestationChain, err)
	}
	best := chains[0]
	for _, c := range chains[1:] {
		if len(c) < len(best) {
			best = c
		}
	}
	if len(best) < 3 { // f9 and root, or f9 trusted as a root itself
		return nil, nil
	}
	return append([]*x509.Certificate(nil), best[1:len(best)-1]...), nil
}

// ErrNotCA is returned by ParseAttestationCAs for a certificate that is
// not a certificate authority's.
var ErrNotCA = errors.New("not a certificate authority's certificate")

// ParseAttestationCAs reads PEM certificates to trust as extra
// attestation authorities (for rehearsals with an emulator's CA: a real
// ceremony trusts Yubico's roots alone). Every certificate must be a CA
// certificate (basic constraints CA:TRUE and key usage certificate
// signing) and must not be a device's own attestation certificate (one
// carrying Yubico's firmware extension, as every slot f9 certificate
// does): trusting a device's f9 would let that device vouch for itself.
// Self-signed certificates are returned as roots, the others as
// intermediates. Errors name the certificate by position and subject and
// wrap ErrNotCA; no PEM certificate at all is an error too.
func ParseAttestationCAs(pemBytes []byte) (roots, intermediates []*x509.Certificate, err error) {
	rest := pemBytes
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("PEM block %d is %q, not a CERTIFICATE: %w", n, block.Type, ErrNotCA)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		name := fmt.Sprintf("certificate %d (%q)", n, c.Subject.CommonName)
		for _, e := range c.Extensions {
			if e.Id.Equal(oidFirmware) {
				return nil, nil, fmt.Errorf("%s is a device's attestation certificate (it carries Yubico's firmware extension, as slot f9 and slot attestations do), not a CA's: %w", name, ErrNotCA)
			}
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, nil, fmt.Errorf("%s lacks basic constraints CA:TRUE: %w", name, ErrNotCA)
		}
		if c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, nil, fmt.Errorf("%s may not sign certificates (key usage): %w", name, ErrNotCA)
		}
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots = append(roots, c)
		} else {
			intermediates = append(intermediates, c)
		}
	}
	if len(roots) == 0 && len(intermediates) == 0 {
		return nil, nil, fmt.Errorf("no PEM certificate: %w", ErrNotCA)
	}
	if len(roots) == 0 {
		return nil, nil, fmt.Errorf("no self-signed root among %d certificates: %w", len(intermediates), ErrNotCA)
	}
	return roots, intermediates, nil
}

func parseAttested(leaf, intermediate *x509.Certificate) (*Attested, error) {
	a := &Attested{Public: leaf.PublicKey, FormFactor: formFactors[0]}
	var haveFirmware, haveSerial, havePolicy bool
	for _, e := range leaf.Extensions {
		switch {
		case e.Id.Equal(oidFirmware):
			if len(e.Value) != 3 {
				return nil, fmt.Errorf("firmware extension of %d bytes, want 3: %w", len(e.Value), ErrAttestationMalformed)
			}
			a.Firmware = fmt.Sprintf("%d.%d.%d", e.Value[0], e.Value[1], e.Value[2])
			haveFirmware = true
		case e.Id.Equal(oidSerial):
			s, err := parseSerial(e.Value)
			if err != nil {
				return nil, err
			}
			a.Serial, haveSerial = s, true
		case e.Id.Equal(oidPolicy):
			if len(e.Value) != 2 {
				return nil, fmt.Errorf("policy extension of %d bytes, want 2: %w", len(e.Value), ErrAttestationMalformed)
			}
			var ok bool
			if a.PINPolicy, ok = pinPolicies[e.Value[0]]; !ok {
				return nil, fmt.Errorf("unknown PIN policy 0x%02x: %w", e.Value[0], ErrAttestationMalformed)
			}
			if a.TouchPolicy, ok = touchPolicies[e.Value[1]]; !ok {
				return nil, fmt.Errorf("unknown touch policy 0x%02x: %w", e.Value[1], ErrAttestationMalformed)
			}
			havePolicy = true
		case e.Id.Equal(oidFormFactor):
			if len(e.Value) != 1 {
				return nil, fmt.Errorf("form factor extension of %d bytes, want 1: %w", len(e.Value), ErrAttestationMalformed)
			}
			var ok bool
			if a.FormFactor, ok = formFactors[e.Value[0]]; !ok {
				a.FormFactor = fmt.Sprintf("unknown (0x%02x)", e.Value[0])
			}
		}
	}
	for _, e := range intermediate.Extensions {
		if !e.Id.Equal(oidSerial) {
			continue
		}
		s, err := parseSerial(e.Value)
		if err != nil {
			return nil, fmt.Errorf("device certificate: %w", err)
		}
		if haveSerial && s != a.Serial {
			return nil, fmt.Errorf("serial %d in the attestation, %d in the device certificate: %w", a.Serial, s, ErrAttestationMalformed)
		}
		a.Serial, haveSerial = s, true
	}
	switch {
	case !haveFirmware:
		return nil, fmt.Errorf("no firmware extension: %w", ErrAttestationMalformed)
	case !haveSerial:
		return nil, fmt.Errorf("no serial extension: %w", ErrAttestationMalformed)
	case !havePolicy:
		return nil, fmt.Errorf("no PIN and touch policy extension: %w", ErrAttestationMalformed)
	}
	slot, ok := strings.CutPrefix(leaf.Subject.CommonName, AttestationSubjectPrefix)
	slot = strings.ToLower(slot)
	if !ok || !validSlot(slot) {
		return nil, fmt.Errorf("subject %q names no key slot: %w", leaf.Subject.CommonName, ErrAttestationMalformed)
	}
	a.Slot = slot
	if _, err := FromPublicKey(a.Public); err != nil {
		return nil, fmt.Errorf("attested key: %w", err)
	}
	return a, nil
}

// parseSerial reads the serial extension: one DER INTEGER in 0..2^32-1.
func parseSerial(v []byte) (uint32, error) {
	var n *big.Int
	rest, err := asn1.Unmarshal(v, &n)
	if err != nil || len(rest) != 0 {
		return 0, fmt.Errorf("serial extension is not one DER integer: %w", ErrAttestationMalformed)
	}
	if n.Sign() < 0 || n.BitLen() > 32 {
		return 0, fmt.Errorf("serial %s out of range: %w", n, ErrAttestationMalformed)
	}
	return uint32(n.Uint64()), nil
}

// validSlot reports whether s is a PIV key slot a key can be attested in,
// written as two hex digits: 9a, 9c, 9d, 9e or 82–95.
func validSlot(s string) bool {
	var v uint8
	if len(s) != 2 {
		return false
	}
	if _, err := fmt.Sscanf(s, "%02x", &v); err != nil {
		return false
	}
	return v == 0x9a || v == 0x9c || v == 0x9d || v == 0x9e || (v >= 0x82 && v <= 0x95)
}

// checkValidity refuses a certificate whose validity dates do not cover
// at, naming it (what and its subject), its dates and at.
func checkValidity(c *x509.Certificate, what string, at time.Time) error {
	if !at.Before(c.NotBefore) && !at.After(c.NotAfter) {
		return nil
	}
	return &AttestationMismatch{
		Field: fmt.Sprintf("validity of %s %q", what, c.Subject.CommonName),
		Got:   fmt.Sprintf("%s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339)),
		Want:  "dates covering the ceremony time " + at.UTC().Format(time.RFC3339),
		Err:   ErrAttestationExpired,
	}
}

// Expected is what a ceremony asks of the attestation of a key it
// generated: the device, the slot, the policies and the key, and the
// ceremony's time, which every certificate's dates must cover.
type Expected struct {
	Serial      uint32
	Slot        string // two lowercase hex digits, "9c"
	PINPolicy   string // "once", "always", ...
	TouchPolicy string // "never", "always", "cached"
	Key         *Key
	At          time.Time // zero means now
}

// VerifyAttestationFor verifies an attestation chain at want.At
// (VerifyAttestationChainAt) and checks that it attests exactly what was
// asked for: the device's serial, the slot, the PIN policy, the touch
// policy and the key. A difference is an *AttestationMismatch naming the
// field and both values. It is the one check every device kind's keys
// pass in a ceremony, whatever the backend checked itself.
func VerifyAttestationFor(leaf *x509.Certificate, chain []*x509.Certificate, roots *x509.CertPool, want Expected) (*Attested, error) {
	a, err := VerifyAttestationChainAt(leaf, chain, roots, want.At)
	if err != nil {
		return nil, err
	}
	if err := CheckAttested(a, want.Serial, want.Key); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		field, got, want string
		err              error
	}{
		{"slot", a.Slot, want.Slot, ErrAttestationSlot},
		{"pin_policy", a.PINPolicy, want.PINPolicy, ErrAttestationPolicy},
		{"touch_policy", a.TouchPolicy, want.TouchPolicy, ErrAttestationPolicy},
	} {
		if f.got != f.want {
			return nil, &AttestationMismatch{Field: f.field, Got: f.got, Want: f.want, Err: f.err}
		}
	}
	return a, nil
}

// CheckAttested checks that an attestation is for the device with serial
// wantSerial (ErrAttestationSerial) and for the key wantKey, compared as
// public keys so that either spelling of the ECDSA key type matches
// (ErrAttestationKey).
func CheckAttested(a *Attested, wantSerial uint32, wantKey *Key) error {
	if a == nil || wantKey == nil {
		return fmt.Errorf("nothing to compare: %w", ErrAttestationKey)
	}
	if a.Serial != wantSerial {
		return &AttestationMismatch{Field: "serial", Got: fmt.Sprint(a.Serial), Want: fmt.Sprint(wantSerial), Err: ErrAttestationSerial}
	}
	want, err := wantKey.Public()
	if err != nil {
		return fmt.Errorf("expected key: %w", err)
	}
	eq, ok := a.Public.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(want) {
		id := "(unsupported key)"
		if k, err := FromPublicKey(a.Public); err == nil {
			id = k.ID()
		}
		return &AttestationMismatch{Field: "key", Got: id, Want: wantKey.ID(), Err: ErrAttestationKey}
	}
	return nil
}

// YubicoRoots returns a new pool holding Yubico's PIV attestation roots.
// It is what a ceremony trusts for real YubiKeys; an emulator's or the soft
// device's CA is trusted only when a caller passes its pool explicitly.
func YubicoRoots() *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM([]byte(yubicoRootPEM)) {
		panic("keys: built-in Yubico root certificates do not parse")
	}
	return p
}

// yubicoIntermediates returns Yubico's published PIV attestation CAs that
// sit between "Yubico Attestation Root 1" and a device's f9 certificate.
// They add nothing unless that root is trusted.
func yubicoIntermediates() *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM([]byte(yubicoIntermediatePEM)) {
		panic("keys: built-in Yubico intermediate certificates do not parse")
	}
	return p
}
