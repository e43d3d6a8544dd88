package delegation

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pkcs8PEM(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// A developer's ed25519 or P-256 PKCS#8 key is read, and every other file
// is refused naming the file and what it holds, without quoting it.
func TestParsePrivateKey(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, priv := range map[string]any{"ed25519": ed, "p256": p256} {
		s, err := ParsePrivateKey(pkcs8PEM(t, priv), name+".pem")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Key().KeyType == "" {
			t.Fatalf("%s: no key", name)
		}
		sig, err := s.Sign([]byte("m"))
		if err != nil || s.Key().Verify([]byte("m"), sig) != nil {
			t.Fatalf("%s: the signer does not sign with the file's key: %v", name, err)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	pub, _ := x509.MarshalPKIXPublicKey(p256.Public())
	good := pkcs8PEM(t, ed)
	block, _ := pem.Decode(good)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"rsa-pkcs8", pkcs8PEM(t, rsaKey), "an RSA private key"},
		{"rsa-pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), "an RSA private key"},
		{"p384", pkcs8PEM(t, p384), "curve P-384"},
		{"sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "SEC 1"},
		{"public", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "a public key"},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: block.Bytes}), "an encrypted private key"},
		{"headers", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: block.Bytes}), "headers"},
		{"two", append(append([]byte{}, good...), good...), "more after the first PEM block"},
		{"not-pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: block.Bytes[:20]}), "not PKCS#8"},
		{"openssh", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: block.Bytes}), "an OpenSSH private key"},
		{"leading", append([]byte("note\n"), good...), "text before the PEM block"},
		{"raw", block.Bytes, "no PEM block"},
		{"empty", nil, "no PEM block"},
	} {
		_, err := ParsePrivateKey(c.data, c.name+".pem")
		if !errors.Is(err, ErrPrivateKey) || !strings.HasPrefix(err.Error(), c.name+".pem: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrPrivateKey naming the file and %q", c.name, err, c.want)
			continue
		}
		if b, _ := pem.Decode(c.data); b != nil && len(b.Bytes) > 8 {
			for _, enc := range []string{string(c.data), strings.Split(string(c.data), "\n")[1]} {
				if strings.Contains(err.Error(), enc) {
					t.Errorf("%s: the error quotes the file: %v", c.name, err)
				}
			}
		}
	}
	dir := t.TempDir()
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, maxKeyFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(big); !errors.Is(err, ErrPrivateKey) {
		t.Errorf("big file: %v", err)
	}
}

// Prove's entry is the policy's {key, proof} for the key, and its proof
// verifies for exactly the ceremony it names; bad arguments are refused.
func TestProve(t *testing.T) {
	s := mustSigner(t, true)
	want := Proof{Repository: "pypi", Project: "foo-bar", StableVersion: 8}
	b, err := Prove(s, want)
	if err != nil {
		t.Fatal(err)
	}
	var e entryJSON
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if !e.Key.Equal(s.Key()) {
		t.Fatalf("key %+v, want %+v", e.Key, s.Key())
	}
	if err := VerifyProof(e.Proof, "entry", s.Key(), want); err != nil {
		t.Fatal(err)
	}
	next := want
	next.StableVersion++
	if err := VerifyProof(e.Proof, "entry", s.Key(), next); !errors.Is(err, ErrProof) {
		t.Fatalf("the proof for v8 verifies for v9: %v", err)
	}
	for _, p := range []Proof{
		{Repository: "", Project: "foo", StableVersion: 1},
		{Repository: "py pi", Project: "foo", StableVersion: 1},
		{Repository: "pypi", Project: "Foo", StableVersion: 1},
		{Repository: "pypi", Project: "foo", StableVersion: 0},
		{Repository: "pypi", Project: "foo", StableVersion: 1, KeyID: "00"},
	} {
		if _, err := Prove(s, p); !errors.Is(err, ErrProof) {
			t.Errorf("%+v: %v, want ErrProof", p, err)
		}
	}
}

// FuzzParsePrivateKey: never a panic; a key it accepts signs.
func FuzzParsePrivateKey(f *testing.F) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(pkcs8PEM(f, ed))
	f.Add(pkcs8PEM(f, p256))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParsePrivateKey(data, "f.pem")
		if err != nil {
			if !errors.Is(err, ErrPrivateKey) {
				t.Fatalf("error without ErrPrivateKey: %v", err)
			}
			return
		}
		sig, err := s.Sign([]byte("m"))
		if err != nil || s.Key().Verify([]byte("m"), sig) != nil {
			t.Fatalf("accepted a key that does not sign: %v", err)
		}
	})
}
