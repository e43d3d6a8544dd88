package ceremony

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
)

// extraCA writes a CA certificate to a PEM file and returns the file and
// a leaf certificate it signed.
func extraCA(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not yubico"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "attested key"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	file := filepath.Join(t.TempDir(), "extra-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, leaf
}

func trusts(roots *x509.CertPool, leaf *x509.Certificate) bool {
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// TestExtraAttestationRootOnlyInRehearsal: an attacker who slips an
// --attestation-ca into a real ceremony's command line gets no key of
// theirs accepted; in a rehearsal the extra root is trusted, and said so.
func TestExtraAttestationRootOnlyInRehearsal(t *testing.T) {
	file, leaf := extraCA(t)

	roots, _, err := AttestationRoots(DeviceOptions{})
	if err != nil || trusts(roots, leaf) {
		t.Fatalf("without an extra root: %v, trusts the leaf: %v", err, trusts(roots, leaf))
	}

	var warn bytes.Buffer
	roots, _, err = AttestationRoots(DeviceOptions{AttestationCA: file, Warn: &warn})
	if !errors.Is(err, ErrAttestationCAOutsideRehearsal) || roots != nil || warn.Len() != 0 {
		t.Fatalf("outside a rehearsal: %v, roots %v, warning %q", err, roots, warn.String())
	}

	roots, _, err = AttestationRoots(DeviceOptions{AttestationCA: file, Rehearsal: true, Warn: &warn})
	if err != nil || !trusts(roots, leaf) {
		t.Fatalf("in a rehearsal: %v, trusts the leaf: %v", err, roots != nil && trusts(roots, leaf))
	}
	if !strings.Contains(warn.String(), "WARNING: REHEARSAL: an extra attestation root that is NOT Yubico's is trusted ("+file+")") {
		t.Fatalf("warning: %q", warn.String())
	}

	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)
	warn.Reset()
	if _, _, err := AttestationRoots(DeviceOptions{AttestationCA: notPEM, Rehearsal: true, Warn: &warn}); err == nil || !strings.Contains(err.Error(), "extra attestation root") || warn.Len() != 0 {
		t.Fatalf("not a PEM file: %v, warning %q", err, warn.String())
	}
	// A certificate that is no CA's (as a device's own f9 is not) is no
	// root.
	leafFile := filepath.Join(t.TempDir(), "leaf.pem")
	os.WriteFile(leafFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644)
	warn.Reset()
	if _, _, err := AttestationRoots(DeviceOptions{AttestationCA: leafFile, Rehearsal: true, Warn: &warn}); !errors.Is(err, keys.ErrNotCA) || warn.Len() != 0 {
		t.Fatalf("a leaf as the extra root: %v, warning %q", err, warn.String())
	}
	if _, _, err := AttestationRoots(DeviceOptions{AttestationCA: filepath.Join(t.TempDir(), "missing.pem"), Rehearsal: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestOpenDevicesRefusals: choices that cannot make a ceremony are refused
// before any device is opened (none of these needs a device to exist).
func TestOpenDevicesRefusals(t *testing.T) {
	file, _ := extraCA(t)
	for _, tc := range []struct {
		name string
		opts DeviceOptions
		want error
	}{
		{"nothing", DeviceOptions{}, ErrNoDevices},
		{"both", DeviceOptions{PIV: true, SoftDirs: []string{"d"}}, ErrMixedDevices},
		{"soft without ca", DeviceOptions{SoftDirs: []string{"d"}}, ErrNoSoftCA},
		{"soft with an extra root", DeviceOptions{SoftDirs: []string{"d"}, SoftCA: "ca", AttestationCA: file, Rehearsal: true}, ErrAttestationCAOutsideRehearsal},
		{"piv with a pin file", DeviceOptions{PIV: true, PINFile: "pins.txt"}, ErrPINFileForPIV},
		{"piv with an extra root, no rehearsal", DeviceOptions{PIV: true, AttestationCA: file}, ErrAttestationCAOutsideRehearsal},
	} {
		var warn bytes.Buffer
		tc.opts.Warn = &warn
		d, err := OpenDevices(tc.opts)
		if !errors.Is(err, tc.want) || d != nil {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if warn.Len() != 0 {
			t.Errorf("%s: warned %q", tc.name, warn.String())
		}
	}
}
