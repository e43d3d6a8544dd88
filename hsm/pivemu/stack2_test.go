//go:build cgo

package pivemu_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

func TestPIVGoObjectsResetAndFaults(t *testing.T) {
	env := pcsctest.Start(t, 2,
		pivemu.Config{Serial: 44444444},
		pivemu.Config{Serial: 55555555, Latency: 20 * time.Millisecond})

	t.Run("pin protected management key", func(t *testing.T) {
		yk := openCard(t, env.Readers[0])
		mk := bytes.Repeat([]byte{0x42}, 24)
		if err := yk.SetManagementKey(piv.DefaultManagementKey, mk); err != nil {
			t.Fatal(err)
		}
		if err := yk.SetMetadata(mk, &piv.Metadata{ManagementKey: &mk}); err != nil {
			t.Fatalf("SetMetadata: %v", err)
		}
		yk.Close()
		yk = openCard(t, env.Readers[0])
		if _, err := yk.Metadata("000000"); err == nil {
			t.Fatal("Metadata with a wrong PIN succeeded")
		}
		m, err := yk.Metadata(piv.DefaultPIN)
		if err != nil {
			t.Fatalf("Metadata: %v", err)
		}
		if m.ManagementKey == nil || !bytes.Equal(*m.ManagementKey, mk) {
			t.Fatalf("stored management key %x, want %x", m.ManagementKey, mk)
		}
	})

	t.Run("certificate needs chaining and get response", func(t *testing.T) {
		yk := openCard(t, env.Readers[0])
		mk := bytes.Repeat([]byte{0x42}, 24)
		pub, err := yk.GenerateKey(mk, piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
		if err != nil {
			t.Fatal(err)
		}
		cert := bigCert(t, pub)
		if len(cert.Raw) < 600 {
			t.Fatalf("test certificate only %d bytes: it must need chaining", len(cert.Raw))
		}
		if err := yk.SetCertificate(mk, piv.SlotAuthentication, cert); err != nil {
			t.Fatalf("SetCertificate: %v", err)
		}
		got, err := yk.Certificate(piv.SlotAuthentication)
		if err != nil {
			t.Fatalf("Certificate: %v", err)
		}
		if !bytes.Equal(got.Raw, cert.Raw) {
			t.Fatal("certificate read back differs")
		}
		if _, err := yk.Certificate(piv.SlotSignature); !errors.Is(err, piv.ErrNotFound) {
			t.Fatalf("empty slot: %v, want ErrNotFound", err)
		}
	})

	t.Run("reset only when pin and puk are blocked", func(t *testing.T) {
		yk := openCard(t, env.Readers[0])
		if err := yk.Reset(); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		if _, err := yk.Certificate(piv.SlotAuthentication); !errors.Is(err, piv.ErrNotFound) {
			t.Errorf("certificate survived reset: %v", err)
		}
		if _, err := yk.AttestationCertificate(); err != nil {
			t.Errorf("attestation certificate lost in reset: %v", err)
		}
		if err := yk.VerifyPIN(piv.DefaultPIN); err != nil {
			t.Errorf("default PIN after reset: %v", err)
		}
		if _, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotSignature, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyNever}); err != nil {
			t.Errorf("default management key after reset: %v", err)
		}
	})

	t.Run("card pulled mid-session", func(t *testing.T) {
		yk := openCard(t, env.Readers[0])
		pub, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotSignature, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyNever})
		if err != nil {
			t.Fatal(err)
		}
		priv, err := yk.PrivateKey(piv.SlotSignature, pub, piv.KeyAuth{PIN: piv.DefaultPIN})
		if err != nil {
			t.Fatal(err)
		}
		// Signing sends VERIFY then GENERAL AUTHENTICATE: the card leaves
		// after the VERIFY.
		env.Cards[0].RemoveAfter(1)
		digest := make([]byte, 32)
		_, err = priv.(*piv.ECDSAPrivateKey).Sign(rand.Reader, digest, nil)
		if err == nil {
			t.Fatal("signing with a pulled card succeeded")
		}
		t.Logf("piv-go's error for a pulled card: %v", err)
		if err := env.WaitRemoved(t, 0); !errors.Is(err, pivemu.ErrRemoved) {
			t.Fatalf("Serve: %v, want ErrRemoved", err)
		}
		yk.Close()
		if _, err := piv.Open(env.Readers[0]); err == nil {
			t.Fatal("piv.Open of an empty reader succeeded")
		}
		env.Insert(t, 0)
		// The key survived the removal.
		yk = openCard(t, env.Readers[0])
		info, err := yk.KeyInfo(piv.SlotSignature)
		if err != nil || !publicEqual(info.PublicKey, pub) {
			t.Fatalf("key after reinsertion: %v", err)
		}
	})

	t.Run("slow card", func(t *testing.T) {
		start := time.Now()
		yk := openCard(t, env.Readers[1])
		if _, err := yk.Serial(); err != nil {
			t.Fatal(err)
		}
		// SELECT, GET VERSION, GET SERIAL: three delayed answers.
		if d := time.Since(start); d < 60*time.Millisecond {
			t.Errorf("three commands took %v with 20ms latency each", d)
		}
	})
}

// bigCert makes a certificate for pub large enough to need command
// chaining (PUT DATA) and GET RESPONSE (GET DATA).
func bigCert(t *testing.T, pub any) *x509.Certificate {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "pivemu test " + strings.Repeat("x", 600)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
