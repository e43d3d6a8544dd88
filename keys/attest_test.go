package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
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

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ext(oid asn1.ObjectIdentifier, v []byte) pkix.Extension {
	return pkix.Extension{Id: oid, Value: v}
}

func serialExt(t testing.TB, n int64) pkix.Extension {
	b, err := asn1.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return ext(oidSerial, b)
}

// attestCase describes one fake attestation: a root, a device (f9)
// certificate signed by it and a slot certificate signed by the device.
type attestCase struct {
	leafExts    []pkix.Extension
	interExts   []pkix.Extension
	cn          string
	leafPub     crypto.PublicKey
	interBefore time.Time
	interAfter  time.Time
	// signLeafWithOther signs the leaf with a key other than the device's,
	// under the device's name.
	signLeafWithOther bool
	leafIssuerCN      string
	// otherRoot makes the verifier trust a different root.
	otherRoot bool
	nilRoots  bool
}

func defaultCase(t testing.TB) *attestCase {
	return &attestCase{
		leafExts: []pkix.Extension{
			ext(oidFirmware, []byte{5, 7, 1}),
			serialExt(t, 12345678),
			ext(oidPolicy, []byte{3, 2}),
			ext(oidFormFactor, []byte{3}),
		},
		cn:          AttestationSubjectPrefix + "9c",
		interBefore: time.Now().Add(-time.Hour),
		interAfter:  time.Now().Add(24 * time.Hour),
	}
}

// build returns leaf, intermediate, roots and the leaf's public key.
func (c *attestCase) build(t testing.TB) (leaf, inter *x509.Certificate, roots *x509.CertPool, pub crypto.PublicKey) {
	t.Helper()
	rootKey := mustKey(t)
	root := mustCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test PIV Root CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, rootKey.Public(), rootKey)
	// Like many YubiKeys' f9 certificates: no basic constraints, no key usage.
	interKey := mustKey(t)
	inter = mustCert(t, &x509.Certificate{
		SerialNumber:    big.NewInt(2),
		Subject:         pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore:       c.interBefore,
		NotAfter:        c.interAfter,
		ExtraExtensions: append([]pkix.Extension{ext(oidFirmware, []byte{5, 7, 1})}, c.interExts...),
	}, root, interKey.Public(), rootKey)
	pub = c.leafPub
	if pub == nil {
		pub = mustKey(t).Public()
	}
	issuer, signer := inter, crypto.Signer(interKey)
	if c.signLeafWithOther {
		other := mustKey(t)
		issuer = &x509.Certificate{Subject: inter.Subject, PublicKey: other.Public()}
		signer = other
	}
	if c.leafIssuerCN != "" {
		issuer = &x509.Certificate{Subject: pkix.Name{CommonName: c.leafIssuerCN}, PublicKey: interKey.Public()}
	}
	leaf = mustCert(t, &x509.Certificate{
		SerialNumber:    big.NewInt(3),
		Subject:         pkix.Name{CommonName: c.cn},
		NotBefore:       inter.NotBefore,
		NotAfter:        inter.NotAfter,
		ExtraExtensions: c.leafExts,
	}, issuer, pub, signer)
	roots = x509.NewCertPool()
	if c.otherRoot {
		k := mustKey(t)
		roots.AddCert(mustCert(t, &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test PIV Root CA"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}, nil, k.Public(), k))
	} else {
		roots.AddCert(root)
	}
	if c.nilRoots {
		roots = nil
	}
	return leaf, inter, roots, pub
}

func TestVerifyAttestationGood(t *testing.T) {
	c := defaultCase(t)
	leaf, inter, roots, pub := c.build(t)
	a, err := VerifyAttestation(leaf, inter, roots)
	if err != nil {
		t.Fatal(err)
	}
	want := Attested{Serial: 12345678, Firmware: "5.7.1", PINPolicy: "always", TouchPolicy: "always", FormFactor: "USB-C keychain", Slot: "9c"}
	got := *a
	got.Public = nil
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if !pub.(*ecdsa.PublicKey).Equal(a.Public) {
		t.Error("attested public key differs from the leaf's")
	}
	k, _ := FromPublicKey(pub)
	if err := CheckAttested(a, 12345678, k); err != nil {
		t.Errorf("CheckAttested: %v", err)
	}
	// The legacy spelling of the ECDSA key type is the same key.
	legacy := *k
	legacy.KeyType = KeyTypeECDSALegacy
	if err := CheckAttested(a, 12345678, &legacy); err != nil {
		t.Errorf("CheckAttested with legacy keytype: %v", err)
	}
}

func TestVerifyAttestationVariants(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name  string
		edit  func(t *testing.T, c *attestCase)
		check func(t *testing.T, a *Attested)
	}{
		{"ed25519 key", func(t *testing.T, c *attestCase) { c.leafPub = edPub }, func(t *testing.T, a *Attested) {
			if !edPub.Equal(a.Public) {
				t.Error("ed25519 key differs")
			}
		}},
		{"retired slot, uppercase", func(t *testing.T, c *attestCase) { c.cn = AttestationSubjectPrefix + "8A" }, func(t *testing.T, a *Attested) {
			if a.Slot != "8a" {
				t.Errorf("slot %q", a.Slot)
			}
		}},
		{"no form factor", func(t *testing.T, c *attestCase) { c.leafExts = c.leafExts[:3] }, func(t *testing.T, a *Attested) {
			if a.FormFactor != "unspecified" {
				t.Errorf("form factor %q", a.FormFactor)
			}
		}},
		{"unknown form factor", func(t *testing.T, c *attestCase) { c.leafExts[3] = ext(oidFormFactor, []byte{0x42}) }, func(t *testing.T, a *Attested) {
			if a.FormFactor != "unknown (0x42)" {
				t.Errorf("form factor %q", a.FormFactor)
			}
		}},
		{"serial only in device certificate", func(t *testing.T, c *attestCase) {
			c.leafExts = append(c.leafExts[:1], c.leafExts[2:]...)
			c.interExts = []pkix.Extension{serialExt(t, 99)}
		}, func(t *testing.T, a *Attested) {
			if a.Serial != 99 {
				t.Errorf("serial %d", a.Serial)
			}
		}},
		{"same serial in both", func(t *testing.T, c *attestCase) { c.interExts = []pkix.Extension{serialExt(t, 12345678)} }, func(t *testing.T, a *Attested) {
			if a.Serial != 12345678 {
				t.Errorf("serial %d", a.Serial)
			}
		}},
		{"largest serial", func(t *testing.T, c *attestCase) { c.leafExts[1] = serialExt(t, 1<<32-1) }, func(t *testing.T, a *Attested) {
			if a.Serial != 1<<32-1 {
				t.Errorf("serial %d", a.Serial)
			}
		}},
		{"policies never/cached", func(t *testing.T, c *attestCase) { c.leafExts[2] = ext(oidPolicy, []byte{1, 3}) }, func(t *testing.T, a *Attested) {
			if a.PINPolicy != "never" || a.TouchPolicy != "cached" {
				t.Errorf("policies %q %q", a.PINPolicy, a.TouchPolicy)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultCase(t)
			tt.edit(t, c)
			leaf, inter, roots, _ := c.build(t)
			a, err := VerifyAttestation(leaf, inter, roots)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, a)
		})
	}
}

func TestVerifyAttestationFailures(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, c *attestCase)
		want error
	}{
		{"untrusted root", func(t *testing.T, c *attestCase) { c.otherRoot = true }, ErrAttestationChain},
		{"no roots", func(t *testing.T, c *attestCase) { c.nilRoots = true }, ErrAttestationChain},
		{"leaf signed by another key", func(t *testing.T, c *attestCase) { c.signLeafWithOther = true }, ErrAttestationChain},
		{"leaf names another issuer", func(t *testing.T, c *attestCase) { c.leafIssuerCN = "Someone Else" }, ErrAttestationChain},
		{"device certificate expired", func(t *testing.T, c *attestCase) {
			c.interBefore, c.interAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		}, ErrAttestationExpired},
		{"device certificate not yet valid", func(t *testing.T, c *attestCase) {
			c.interBefore = time.Now().Add(2 * time.Hour)
		}, ErrAttestationExpired},
		{"no firmware", func(t *testing.T, c *attestCase) { c.leafExts = c.leafExts[1:] }, ErrAttestationMalformed},
		{"no serial anywhere", func(t *testing.T, c *attestCase) { c.leafExts = append(c.leafExts[:1], c.leafExts[2:]...) }, ErrAttestationMalformed},
		{"no policy", func(t *testing.T, c *attestCase) { c.leafExts = append(c.leafExts[:2], c.leafExts[3:]...) }, ErrAttestationMalformed},
		{"firmware of 2 bytes", func(t *testing.T, c *attestCase) { c.leafExts[0] = ext(oidFirmware, []byte{5, 7}) }, ErrAttestationMalformed},
		{"firmware of 4 bytes", func(t *testing.T, c *attestCase) { c.leafExts[0] = ext(oidFirmware, []byte{5, 7, 1, 0}) }, ErrAttestationMalformed},
		{"negative serial", func(t *testing.T, c *attestCase) { c.leafExts[1] = serialExt(t, -1) }, ErrAttestationMalformed},
		{"serial over 32 bits", func(t *testing.T, c *attestCase) { c.leafExts[1] = serialExt(t, 1<<32) }, ErrAttestationMalformed},
		{"serial not an integer", func(t *testing.T, c *attestCase) { c.leafExts[1] = ext(oidSerial, []byte{0x04, 0x01, 0x05}) }, ErrAttestationMalformed},
		{"serial with trailing bytes", func(t *testing.T, c *attestCase) { c.leafExts[1] = ext(oidSerial, []byte{0x02, 0x01, 0x05, 0x00}) }, ErrAttestationMalformed},
		{"serials disagree", func(t *testing.T, c *attestCase) { c.interExts = []pkix.Extension{serialExt(t, 7)} }, ErrAttestationMalformed},
		{"bad serial in device certificate", func(t *testing.T, c *attestCase) { c.interExts = []pkix.Extension{serialExt(t, -5)} }, ErrAttestationMalformed},
		{"policy of 1 byte", func(t *testing.T, c *attestCase) { c.leafExts[2] = ext(oidPolicy, []byte{1}) }, ErrAttestationMalformed},
		{"unknown PIN policy", func(t *testing.T, c *attestCase) { c.leafExts[2] = ext(oidPolicy, []byte{9, 1}) }, ErrAttestationMalformed},
		{"unknown touch policy", func(t *testing.T, c *attestCase) { c.leafExts[2] = ext(oidPolicy, []byte{1, 0}) }, ErrAttestationMalformed},
		{"form factor of 2 bytes", func(t *testing.T, c *attestCase) { c.leafExts[3] = ext(oidFormFactor, []byte{1, 1}) }, ErrAttestationMalformed},
		{"subject without prefix", func(t *testing.T, c *attestCase) { c.cn = "My Key 9c" }, ErrAttestationMalformed},
		{"subject names slot f9", func(t *testing.T, c *attestCase) { c.cn = AttestationSubjectPrefix + "f9" }, ErrAttestationMalformed},
		{"subject names slot 9b", func(t *testing.T, c *attestCase) { c.cn = AttestationSubjectPrefix + "9b" }, ErrAttestationMalformed},
		{"subject names no hex", func(t *testing.T, c *attestCase) { c.cn = AttestationSubjectPrefix + "zz" }, ErrAttestationMalformed},
		{"subject with trailing text", func(t *testing.T, c *attestCase) { c.cn = AttestationSubjectPrefix + "9c " }, ErrAttestationMalformed},
		{"P-384 key", func(t *testing.T, c *attestCase) {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			c.leafPub = k.Public()
		}, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultCase(t)
			tt.edit(t, c)
			leaf, inter, roots, _ := c.build(t)
			a, err := VerifyAttestation(leaf, inter, roots)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyAttestation = %+v, %v; want %v", a, err, tt.want)
			}
			if a != nil {
				t.Error("returned an attestation with an error")
			}
		})
	}
}

// TestVerifyAttestationKeepsCause: a chain refusal keeps x509's own error
// beside ErrAttestationChain, and a certificate out of its dates is
// ErrAttestationExpired naming the certificate, its dates and the time, so
// a caller can tell an untrusted root from an expired certificate.
func TestVerifyAttestationKeepsCause(t *testing.T) {
	c := defaultCase(t)
	c.otherRoot = true
	leaf, inter, roots, _ := c.build(t)
	_, err := VerifyAttestation(leaf, inter, roots)
	var ua x509.UnknownAuthorityError
	if !errors.Is(err, ErrAttestationChain) || !errors.As(err, &ua) {
		t.Fatalf("untrusted root: %v, want ErrAttestationChain and an x509.UnknownAuthorityError", err)
	}
	c = defaultCase(t)
	c.interBefore = time.Now().Add(2 * time.Hour)
	leaf, inter, roots, _ = c.build(t)
	_, err = VerifyAttestation(leaf, inter, roots)
	var m *AttestationMismatch
	if !errors.Is(err, ErrAttestationExpired) || !errors.As(err, &m) || !strings.Contains(m.Field, "validity") ||
		!strings.Contains(m.Got, c.interBefore.UTC().Format(time.RFC3339)) || !strings.Contains(m.Want, "ceremony time") {
		t.Fatalf("not yet valid: %v, want ErrAttestationExpired naming the dates", err)
	}
}

func TestVerifyAttestationMissingCerts(t *testing.T) {
	leaf, inter, roots, _ := defaultCase(t).build(t)
	for _, c := range [][2]*x509.Certificate{{nil, inter}, {leaf, nil}, {nil, nil}} {
		if _, err := VerifyAttestation(c[0], c[1], roots); !errors.Is(err, ErrAttestationChain) {
			t.Errorf("VerifyAttestation(%v, %v) = %v, want ErrAttestationChain", c[0] != nil, c[1] != nil, err)
		}
	}
	// The device certificate is not a root: trusting it alone is not enough.
	self := x509.NewCertPool()
	self.AddCert(inter)
	if _, err := VerifyAttestation(leaf, inter, self); err != nil {
		// Trusting the device certificate itself as a root is the caller's
		// explicit choice and is allowed.
		t.Errorf("device certificate as root: %v", err)
	}
	// Swapping leaf and intermediate fails.
	if _, err := VerifyAttestation(inter, leaf, roots); err == nil {
		t.Error("swapped certificates verified")
	}
}

func TestCheckAttested(t *testing.T) {
	leaf, inter, roots, pub := defaultCase(t).build(t)
	a, err := VerifyAttestation(leaf, inter, roots)
	if err != nil {
		t.Fatal(err)
	}
	right, _ := FromPublicKey(pub)
	other, _ := FromPublicKey(mustKey(t).Public())
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := FromPublicKey(edPub)
	tests := []struct {
		name   string
		a      *Attested
		serial uint32
		key    *Key
		want   error
	}{
		{"match", a, 12345678, right, nil},
		{"wrong serial", a, 12345679, right, ErrAttestationSerial},
		{"other ecdsa key", a, 12345678, other, ErrAttestationKey},
		{"ed25519 key", a, 12345678, ed, ErrAttestationKey},
		{"malformed expected key", a, 12345678, &Key{KeyType: "rsa", Scheme: "rsa", KeyVal: KeyVal{Public: "x"}}, ErrUnsupportedKey},
		{"nil attestation", nil, 12345678, right, ErrAttestationKey},
		{"nil key", a, 12345678, nil, ErrAttestationKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAttested(tt.a, tt.serial, tt.key)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("CheckAttested = %v, want %v", err, tt.want)
			}
		})
	}
}

func readPEMCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A real YubiKey 5's attestation verifies against the built-in Yubico roots.
func TestVerifyAttestationRealYubiKey(t *testing.T) {
	leaf, inter := readPEMCert(t, "yubikey5-9a.pem"), readPEMCert(t, "yubikey5-f9.pem")
	a, err := VerifyAttestation(leaf, inter, YubicoRoots())
	if err != nil {
		t.Fatal(err)
	}
	want := Attested{Serial: 15732500, Firmware: "5.4.3", PINPolicy: "once", TouchPolicy: "never", FormFactor: "USB-C nano", Slot: "9a"}
	got := *a
	got.Public = nil
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// The same certificates are refused without Yubico's roots...
	if _, err := VerifyAttestation(leaf, inter, x509.NewCertPool()); !errors.Is(err, ErrAttestationChain) {
		t.Errorf("empty pool: %v", err)
	}
	// ...and a slot certificate of another YubiKey does not verify under
	// this one's device certificate.
	if _, err := VerifyAttestation(readPEMCert(t, "yubikey4-2018-9a.pem"), inter, YubicoRoots()); !errors.Is(err, ErrAttestationChain) {
		t.Errorf("mixed devices: %v", err)
	}
}

// A 2018 YubiKey 4: the device certificate lacks basic constraints and is
// under the U2F root. The chain verifies, but its slot certificate carries
// no serial, so it cannot be bound to a device and is refused as malformed.
func TestVerifyAttestationYubiKey4NoSerial(t *testing.T) {
	leaf, inter := readPEMCert(t, "yubikey4-2018-9a.pem"), readPEMCert(t, "yubikey4-2018-f9.pem")
	_, err := VerifyAttestation(leaf, inter, YubicoRoots())
	if !errors.Is(err, ErrAttestationMalformed) || !strings.Contains(err.Error(), "serial") {
		t.Fatalf("VerifyAttestation = %v, want a missing-serial ErrAttestationMalformed", err)
	}
}

// pemCerts parses every PEM block of text as a certificate.
func pemCerts(t *testing.T, text string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := []byte(text); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return certs
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

func TestYubicoRootsParse(t *testing.T) {
	roots := pemCerts(t, yubicoRootPEM)
	want := []string{"Yubico PIV Root CA Serial 263751", "Yubico U2F Root CA Serial 457200631", "Yubico Attestation Root 1"}
	if len(roots) != len(want) {
		t.Fatalf("%d roots, want %d", len(roots), len(want))
	}
	for i, c := range roots {
		if c.Subject.CommonName != want[i] || !c.IsCA {
			t.Errorf("root %d: %q (CA %v), want %q", i, c.Subject.CommonName, c.IsCA, want[i])
		}
		if err := c.CheckSignatureFrom(c); err != nil {
			t.Errorf("root %q is not self-signed: %v", c.Subject.CommonName, err)
		}
	}
	// Every built-in intermediate chains to "Yubico Attestation Root 1".
	inters := pemCerts(t, yubicoIntermediatePEM)
	for _, c := range inters {
		chains, err := c.Verify(x509.VerifyOptions{Roots: YubicoRoots(), Intermediates: yubicoIntermediates(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			t.Errorf("%q: %v", c.Subject.CommonName, err)
			continue
		}
		if top := chains[0][len(chains[0])-1]; top.Subject.CommonName != "Yubico Attestation Root 1" {
			t.Errorf("%q chains to %q", c.Subject.CommonName, top.Subject.CommonName)
		}
	}
	if n := len(inters); n != 5 {
		t.Errorf("%d intermediates, want 5", n)
	}
}

func TestPolicyBytes(t *testing.T) {
	if b, ok := PolicyBytes("once", "cached"); !ok || b != [2]byte{2, 3} {
		t.Errorf("PolicyBytes(once, cached) = %v, %v", b, ok)
	}
	if _, ok := PolicyBytes("sometimes", "never"); ok {
		t.Error("unknown PIN policy accepted")
	}
	if _, ok := PolicyBytes("never", ""); ok {
		t.Error("empty touch policy accepted")
	}
}

func FuzzParseAttested(f *testing.F) {
	f.Add([]byte{5, 7, 1}, []byte{0x02, 0x01, 0x05}, []byte{1, 1}, []byte{3}, "9c")
	f.Fuzz(func(t *testing.T, fw, serial, policy, ff []byte, slot string) {
		leaf := &x509.Certificate{
			Subject:   pkix.Name{CommonName: AttestationSubjectPrefix + slot},
			PublicKey: mustKey(t).Public(),
			Extensions: []pkix.Extension{
				ext(oidFirmware, fw), ext(oidSerial, serial), ext(oidPolicy, policy), ext(oidFormFactor, ff),
			},
		}
		a, err := parseAttested(leaf, &x509.Certificate{})
		if err == nil && (a.Firmware == "" || a.PINPolicy == "" || !validSlot(a.Slot)) {
			t.Fatalf("accepted incomplete attestation %+v", a)
		}
	})
}

// TestVerifyAttestationFor: the ceremony's check refuses an attestation
// that says anything other than what was asked for, naming the field and
// both values; the certificates' dates must cover the ceremony's time.
func TestVerifyAttestationFor(t *testing.T) {
	c := defaultCase(t)
	c.interAfter = time.Now().Add(72 * time.Hour) // beyond the root's 48 hours
	leaf, inter, roots, pub := c.build(t)
	k, err := FromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := FromPublicKey(mustKey(t).Public())
	now := time.Now()
	good := Expected{Serial: 12345678, Slot: "9c", PINPolicy: "always", TouchPolicy: "always", Key: k, At: now}
	a, err := VerifyAttestationFor(leaf, []*x509.Certificate{inter}, roots, good)
	if err != nil || a.Slot != "9c" {
		t.Fatalf("the right attestation: %+v, %v", a, err)
	}
	tests := []struct {
		name             string
		edit             func(e *Expected)
		want             error
		field, got, what string
	}{
		{"another slot", func(e *Expected) { e.Slot = "83" }, ErrAttestationSlot, "slot", "9c", "83"},
		{"another PIN policy", func(e *Expected) { e.PINPolicy = "once" }, ErrAttestationPolicy, "pin_policy", "always", "once"},
		{"another touch policy", func(e *Expected) { e.TouchPolicy = "never" }, ErrAttestationPolicy, "touch_policy", "always", "never"},
		{"another device", func(e *Expected) { e.Serial = 7 }, ErrAttestationSerial, "serial", "12345678", "7"},
		{"another key", func(e *Expected) { e.Key = other }, ErrAttestationKey, "key", k.ID(), other.ID()},
		{"after the certificates expired", func(e *Expected) { e.At = now.Add(100 * time.Hour) }, ErrAttestationExpired,
			`validity of the slot's attestation certificate "YubiKey PIV Attestation 9c"`, leaf.NotAfter.UTC().Format(time.RFC3339), now.Add(100 * time.Hour).UTC().Format(time.RFC3339)},
		{"before they were issued", func(e *Expected) { e.At = now.Add(-3 * time.Hour) }, ErrAttestationExpired,
			"validity of the slot's attestation certificate", leaf.NotBefore.UTC().Format(time.RFC3339), now.Add(-3 * time.Hour).UTC().Format(time.RFC3339)},
		{"after the root expired", func(e *Expected) { e.At = now.Add(60 * time.Hour) }, ErrAttestationExpired,
			`validity of the attestation CA certificate "Test PIV Root CA"`, "", now.Add(60 * time.Hour).UTC().Format(time.RFC3339)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := good
			tt.edit(&want)
			a, err := VerifyAttestationFor(leaf, []*x509.Certificate{inter}, roots, want)
			var m *AttestationMismatch
			if a != nil || !errors.Is(err, tt.want) || !errors.As(err, &m) {
				t.Fatalf("got %+v, %v; want %v", a, err, tt.want)
			}
			if !strings.HasPrefix(m.Field, tt.field) || !strings.Contains(m.Got, tt.got) || !strings.Contains(m.Want, tt.what) {
				t.Errorf("field %q got %q want %q; expected %q, %q, %q", m.Field, m.Got, m.Want, tt.field, tt.got, tt.what)
			}
			if msg := err.Error(); !strings.Contains(msg, m.Got) || !strings.Contains(msg, m.Want) {
				t.Errorf("message %q does not name both values", msg)
			}
		})
	}
}
