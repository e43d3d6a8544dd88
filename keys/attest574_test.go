package keys

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Real attestations of YubiKeys with firmware 5.7.4, which chain through
// Yubico's newer hierarchy: slot, f9 ("Yubico PIV Attestation", RSA-2048,
// issued by "Yubico PIV Attestation B 1"), "Yubico Attestation
// Intermediate B 1", "Yubico Attestation Root 1". Where each came from is
// in testdata/README.md; nothing here trusts them for that: each must
// verify up to the embedded root.

// TestVerifyAttestationReal574Ed25519: a YubiKey 5 FIPS, firmware 5.7.4,
// with an Ed25519 key in slot 9c, verifies against the built-in roots and
// intermediates alone, and says what the certificate's extensions say.
func TestVerifyAttestationReal574Ed25519(t *testing.T) {
	leaf, f9 := readPEMCert(t, "yubikey5fips-574-9c.pem"), readPEMCert(t, "yubikey5fips-574-f9.pem")
	a, err := VerifyAttestationChain(leaf, []*x509.Certificate{f9}, YubicoRoots())
	if err != nil {
		t.Fatal(err)
	}
	want := Attested{Serial: 38165850, Firmware: "5.7.4", PINPolicy: "once", TouchPolicy: "always", FormFactor: "USB-C keychain FIPS", Slot: "9c"}
	got := *a
	got.Public = nil
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	key, err := FromPublicKey(leaf.PublicKey)
	if err != nil || key.KeyType != KeyTypeEd25519 {
		t.Fatalf("the attested key: %v, %v (want Ed25519)", key, err)
	}
	if _, err := VerifyAttestationFor(leaf, []*x509.Certificate{f9}, YubicoRoots(), Expected{Serial: 38165850, Slot: "9c", PINPolicy: "once", TouchPolicy: "always", Key: key}); err != nil {
		t.Errorf("VerifyAttestationFor what the device attests: %v", err)
	}
	var mm *AttestationMismatch
	if _, err := VerifyAttestationFor(leaf, []*x509.Certificate{f9}, YubicoRoots(), Expected{Serial: 38165851, Slot: "9c", PINPolicy: "once", TouchPolicy: "always", Key: key}); !errors.As(err, &mm) || mm.Field != "serial" || !errors.Is(err, ErrAttestationSerial) {
		t.Errorf("another serial: %v, want a serial mismatch", err)
	}
	// The certificates were issued on 2024-12-01: a ceremony clock
	// before that is refused, naming a certificate and its dates.
	if _, err := VerifyAttestationChainAt(leaf, []*x509.Certificate{f9}, YubicoRoots(), time.Date(2024, 11, 30, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrAttestationExpired) || !strings.Contains(err.Error(), "2024-12-01T00:00:00Z") {
		t.Errorf("at 2024-11-30: %v, want ErrAttestationExpired naming the dates", err)
	}
	// Yubico's older PIV root alone does not complete this chain...
	legacy := x509.NewCertPool()
	legacy.AddCert(readRootPEM(t, "Yubico PIV Root CA Serial 263751"))
	if _, err := VerifyAttestationChain(leaf, []*x509.Certificate{f9}, legacy); !errors.Is(err, ErrAttestationChain) {
		t.Errorf("under the PIV root of firmware before 5.7.4: %v, want ErrAttestationChain", err)
	}
	// ...and the slot certificate of another YubiKey does not verify
	// under this one's f9 certificate.
	if _, err := VerifyAttestationChain(readPEMCert(t, "yubikey5-574-9a.pem"), []*x509.Certificate{f9}, YubicoRoots()); !errors.Is(err, ErrAttestationChain) {
		t.Errorf("another device's slot certificate: %v, want ErrAttestationChain", err)
	}
}

// TestVerifyAttestationReal574RSA: a YubiKey 5 (USB-C nano, firmware
// 5.7.4) with an RSA-2048 key in slot 9a. Its chain verifies up to
// "Yubico Attestation Root 1" through the embedded intermediates, but the
// tool signs with Ed25519 and ECDSA P-256 keys only, so the attestation
// is refused for its key type, and says so.
func TestVerifyAttestationReal574RSA(t *testing.T) {
	leaf, f9 := readPEMCert(t, "yubikey5-574-9a.pem"), readPEMCert(t, "yubikey5-574-f9.pem")
	path, err := AttestationPath(f9, nil, YubicoRoots())
	if err != nil {
		t.Fatalf("the f9 certificate does not chain to the embedded roots: %v", err)
	}
	var names []string
	for _, c := range path {
		names = append(names, c.Subject.CommonName)
	}
	if got, want := strings.Join(names, ", "), "Yubico PIV Attestation B 1, Yubico Attestation Intermediate B 1"; got != want {
		t.Errorf("path above f9: %s, want %s", got, want)
	}
	if err := f9.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("the slot certificate is not signed by the f9 key: %v", err)
	}
	_, err = VerifyAttestationChain(leaf, []*x509.Certificate{f9}, YubicoRoots())
	if !errors.Is(err, ErrUnsupportedKey) || err.Error() != "attested key: public key of type *rsa.PublicKey: unsupported key" {
		t.Fatalf("VerifyAttestationChain = %v, want the refusal of an RSA key", err)
	}
}

// TestOpenSSLCompletes574ChainFromMedia: the media carry the slot
// certificate, f9 and the CA certificates AttestationPath returns (as
// hsm.Attestation.Chain writes them); from that file, openssl, an
// independent verifier, completes a real 5.7.4 chain with only "Yubico
// Attestation Root 1" as its trust anchor. Leaf and f9 alone do not
// complete it, which is why the media carry the rest.
func TestOpenSSLCompletes574ChainFromMedia(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is missing: run scripts/install-test-deps as root")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	writePEM(t, root, readRootPEM(t, "Yubico Attestation Root 1"))
	for _, v := range []struct{ leaf, f9 string }{
		{"yubikey5fips-574-9c.pem", "yubikey5fips-574-f9.pem"},
		{"yubikey5-574-9a.pem", "yubikey5-574-f9.pem"},
	} {
		leaf, f9 := readPEMCert(t, v.leaf), readPEMCert(t, v.f9)
		path, err := AttestationPath(f9, nil, YubicoRoots())
		if err != nil {
			t.Fatal(err)
		}
		media := filepath.Join(dir, "media-"+v.leaf)
		writePEM(t, media, append([]*x509.Certificate{leaf, f9}, path...)...)
		if out, err := exec.Command(openssl, "verify", "-CAfile", root, "-untrusted", media, media).CombinedOutput(); err != nil || !strings.Contains(string(out), ": OK") {
			t.Errorf("%s: openssl verify of the media's chain: %v\n%s", v.leaf, err, out)
		}
		short := filepath.Join(dir, "short-"+v.leaf)
		writePEM(t, short, leaf, f9)
		if out, err := exec.Command(openssl, "verify", "-CAfile", root, "-untrusted", short, short).CombinedOutput(); err == nil {
			t.Errorf("%s: openssl completed the chain from leaf and f9 alone:\n%s", v.leaf, out)
		}
	}
}

// readRootPEM returns the embedded root with the given common name.
func readRootPEM(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	for _, c := range pemCerts(t, yubicoRootPEM) {
		if c.Subject.CommonName == cn {
			return c
		}
	}
	t.Fatalf("no embedded root %q", cn)
	return nil
}

func writePEM(t *testing.T, path string, certs ...*x509.Certificate) {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
