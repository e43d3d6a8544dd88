package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

// TestParseAttestationCAs: --attestation-ca takes CA certificates only; a
// device's own f9 certificate (which has CA:TRUE, so a naive check would
// take it) is refused, so that no device can vouch for itself.
func TestParseAttestationCAs(t *testing.T) {
	roots, inters, err := ParseAttestationCAs([]byte(yubicoRootPEM + yubicoIntermediatePEM))
	if err != nil {
		t.Fatalf("Yubico's roots and intermediates: %v", err)
	}
	if len(roots) != 3 || len(inters) != 5 {
		t.Errorf("%d roots and %d intermediates, want 3 and 5", len(roots), len(inters))
	}
	f9, err := os.ReadFile("testdata/yubikey5-f9.pem")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := os.ReadFile("testdata/yubikey5-9a.pem")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pem, want string
	}{
		{"a YubiKey 5's f9 certificate", string(f9), "device's attestation certificate"},
		{"a root followed by an f9 certificate", yubicoRootPEM + string(f9), "certificate 4"},
		{"a slot attestation", string(leaf), "device's attestation certificate"},
		{"nothing", "not pem", "no PEM certificate"},
		{"intermediates without a root", yubicoIntermediatePEM, "no self-signed root"},
		{"a private key block", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), "not a CERTIFICATE"},
	} {
		_, _, err := ParseAttestationCAs([]byte(tc.pem))
		if !errors.Is(err, ErrNotCA) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrNotCA saying %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseAttestationCAs(f *testing.F) {
	f.Add([]byte(yubicoRootPEM))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		roots, inters, err := ParseAttestationCAs(b)
		if err == nil && len(roots) == 0 {
			t.Fatalf("no root and no error (%d intermediates)", len(inters))
		}
	})
}

// TestYubicoFingerprints pins the SHA-256 fingerprints of the embedded
// Yubico certificates. They agree with the fingerprints other projects
// list for the same certificates, copied from Yubico's PKI pages
// (https://developers.yubico.com/PKI/yubico-ca-certs.txt and the PEM files
// beside it); "Yubico PIV Attestation B2 1" has the fingerprint Yubico
// lists for it: a replaced or added certificate fails here.
func TestYubicoFingerprints(t *testing.T) {
	want := []string{
		"63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546 Yubico PIV Root CA Serial 263751",
		"0fa1386f80eb8713263ae5c1d84deb455bdf08aea50ab05503cefee82b092d42 Yubico U2F Root CA Serial 457200631",
		"62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8 Yubico Attestation Root 1",
		"4698a1d3389c3ec60016c216250f1d0439922832d65142327436376dc2942b55 Yubico Attestation Intermediate A 1",
		"d4cc3f456fdaf4e7812a21aab1dfe9d8e27d24e2fd2d6f21c9940109f0daa754 Yubico Attestation Intermediate B 1",
		"6de693f05376f5d8ca29069261e1c8626c75d503bd2edbfd75354cad1f722870 Yubico PIV Attestation A 1",
		"2d55b7998f4e42569d6d8fa382b6dc77d1dacf07358b19701163892922b17052 Yubico PIV Attestation B 1",
		"0c90b7d184a36edf50a35f9be935f0c5689bfdcfe5bdd073366cafb49061a440 Yubico PIV Attestation B2 1",
	}
	var got []string
	for _, c := range pemCerts(t, yubicoRootPEM+yubicoIntermediatePEM) {
		got = append(got, fmt.Sprintf("%x %s", sha256.Sum256(c.Raw), c.Subject.CommonName))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("embedded Yubico certificates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestVerifyAttestationChainNewHierarchy: a chain shaped like firmware
// 5.7.4's (root, PIV attestation CA, f9, slot) verifies only with its
// intermediate, and an intermediate the attacker made under the same name
// is not accepted.
func TestVerifyAttestationChainNewHierarchy(t *testing.T) {
	ca := func(name string, parent *x509.Certificate, parentKey crypto.Signer, pathLen int) (*x509.Certificate, *ecdsa.PrivateKey) {
		k := mustKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0,
			KeyUsage: x509.KeyUsageCertSign,
		}
		if parent == nil {
			return mustCert(t, tmpl, nil, k.Public(), k), k
		}
		return mustCert(t, tmpl, parent, k.Public(), parentKey), k
	}
	root, rootKey := ca("Test Attestation Root 1", nil, nil, 3)
	inter, interKey := ca("Test PIV Attestation B 1", root, rootKey, 1)
	c := defaultCase(t)
	f9Key := mustKey(t)
	f9 := mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore: c.interBefore, NotAfter: c.interAfter,
		ExtraExtensions: []pkix.Extension{ext(oidFirmware, []byte{5, 7, 4})},
	}, inter, f9Key.Public(), interKey)
	leaf := mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: c.cn},
		NotBefore: f9.NotBefore, NotAfter: f9.NotAfter, ExtraExtensions: c.leafExts,
	}, f9, mustKey(t).Public(), f9Key)
	roots := x509.NewCertPool()
	roots.AddCert(root)

	if _, err := VerifyAttestationChain(leaf, []*x509.Certificate{f9, inter}, roots); err != nil {
		t.Fatalf("full chain: %v", err)
	}
	path, err := AttestationPath(f9, []*x509.Certificate{inter}, roots)
	if err != nil || len(path) != 1 || !path[0].Equal(inter) {
		t.Errorf("AttestationPath = %d certificates, %v; want the intermediate", len(path), err)
	}
	if _, err := VerifyAttestationChain(leaf, []*x509.Certificate{f9}, roots); !errors.Is(err, ErrAttestationChain) {
		t.Errorf("without the intermediate: %v, want ErrAttestationChain", err)
	}
	fake, _ := ca("Test PIV Attestation B 1", nil, nil, 1) // same name, the attacker's key
	if _, err := VerifyAttestationChain(leaf, []*x509.Certificate{f9, fake}, roots); !errors.Is(err, ErrAttestationChain) {
		t.Errorf("with the attacker's intermediate: %v, want ErrAttestationChain", err)
	}
	if _, err := VerifyAttestationChain(leaf, nil, roots); !errors.Is(err, ErrAttestationChain) {
		t.Errorf("no chain: %v, want ErrAttestationChain", err)
	}
}
