package ceremony

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// attackerCA is a certificate authority of the attacker's own, shaped as
// Yubico's (a root that certifies device keys), in a PEM file.
type attackerCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newAttackerCA(t *testing.T) *attackerCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Yubico PIV Root CA Serial 263751"},
		NotBefore: now.AddDate(0, 0, -30), NotAfter: now.AddDate(30, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "attacker-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &attackerCA{cert: cert, key: key, file: file}
}

// yubicoOID is the arc of Yubico's PIV attestation extensions (firmware,
// serial, policies, form factor).
var yubicoOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3}

// reissue makes a copy of c (subject, dates, serial, Yubico's
// extensions) for public key pub, signed by parent's key.
func reissue(t *testing.T, c *x509.Certificate, pub any, parent *x509.Certificate, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: c.SerialNumber, Subject: c.Subject, NotBefore: c.NotBefore, NotAfter: c.NotAfter}
	for _, e := range c.Extensions {
		if len(e.Id) > len(yubicoOID) && e.Id[:len(yubicoOID)].Equal(yubicoOID) {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forge rewrites the attestation of each key file base in keysDir (all of
// them if none is named) as the attacker would: the slot certificate for
// the same public key, serial, slot and policies, signed by a device key
// of the attacker's, whose certificate (a copy of the device's f9) the
// attacker's CA signs. Only the CA tells it from the real one.
func (ca *attackerCA) forge(t *testing.T, keysDir string, bases ...string) {
	t.Helper()
	if len(bases) == 0 {
		files, _ := filepath.Glob(filepath.Join(keysDir, "*.attestation.pem"))
		for _, f := range files {
			bases = append(bases, strings.TrimSuffix(filepath.Base(f), ".attestation.pem"))
		}
	}
	for _, base := range bases {
		file := filepath.Join(keysDir, base+".attestation.pem")
		var certs []*x509.Certificate
		for rest := mustRead(t, file); ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			certs = append(certs, c)
		}
		devKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		dev := reissue(t, certs[1], devKey.Public(), ca.cert, ca.key)
		leaf := reissue(t, certs[0], certs[0].PublicKey, dev, devKey)
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: dev.Raw})...)
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditForgedAttestations: an attacker who re-issues every
// attestation of the bootstrap media from a CA of their own, for the
// right keys with the right serials, slots and policies, is refused
// against Yubico's roots and against the rehearsal's CA; only an auditor
// who names that CA with --attestation-ca accepts it, and the report
// then says whose CA vouched for each key.
func TestAuditForgedAttestations(t *testing.T) {
	fx := auditMedia(t)
	ca := newAttackerCA(t)
	dir := filepath.Join(t.TempDir(), "boot")
	if err := copyDir(fx.boot, dir); err != nil {
		t.Fatal(err)
	}
	ca.forge(t, filepath.Join(dir, "keys"))
	rewriteSums(t, dir)
	for _, c := range []struct {
		name string
		o    AuditOptions
	}{
		{"Yubico's roots only", AuditOptions{}},
		{"the rehearsal's soft CA", AuditOptions{SoftCA: fx.softCA}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Root, c.o.Dir = fx.rootFile, dir
			rep, err := Audit(c.o)
			if !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), "attestations: keys/") || !strings.Contains(err.Error(), "does not chain to a trusted root") {
				t.Fatalf("want the attestations refused, got %v", err)
			}
			if last := rep.Checks[len(rep.Checks)-1]; last.Check != "attestations" || last.OK {
				t.Fatalf("last check %+v", last)
			}
		})
	}
	// The forgery is faithful: what refuses it is the CA alone.
	rep, err := Audit(AuditOptions{Root: fx.rootFile, Dir: dir, AttestationCA: ca.file})
	if err != nil {
		t.Fatalf("with --attestation-ca naming the attacker's CA: %v", err)
	}
	if len(rep.Keys) != 8 {
		t.Fatalf("%d keys", len(rep.Keys))
	}
	for _, k := range rep.Keys {
		if k.ChainsTo != ca.file+" (NOT Yubico's)" {
			t.Fatalf("key %s chains to %q", k.KeyID, k.ChainsTo)
		}
	}
}
