//go:build cgo

package pivemu_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

// The tests in this file drive the emulator through the real stack:
// piv-go -> libpcsclite -> private pcscd -> vpcd -> pivemu.

func openCard(t *testing.T, reader string) *piv.YubiKey {
	t.Helper()
	yk, err := piv.Open(reader)
	if err != nil {
		t.Fatalf("piv.Open(%q): %v", reader, err)
	}
	t.Cleanup(func() { yk.Close() })
	return yk
}

func TestPIVGoThroughPCSC(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cfgs := []pivemu.Config{
		{Serial: 11111111, CA: ca, FormFactor: pivemu.FormFactorUSBCNano},
		{Serial: 22222222, CA: ca, Version: pivemu.Version{Major: 5, Minor: 4, Patch: 3}, ManagementKeyAlgorithm: pivemu.Alg3DES},
		{Serial: 33333333, CA: ca},
	}
	env := pcsctest.Start(t, 3, cfgs...)

	t.Run("serial and version", func(t *testing.T) {
		for i, cfg := range cfgs {
			yk := openCard(t, env.Readers[i])
			serial, err := yk.Serial()
			if err != nil {
				t.Fatal(err)
			}
			if serial != cfg.Serial {
				t.Errorf("card %d: serial %d, want %d", i, serial, cfg.Serial)
			}
			want := cfg.Version
			if want == (pivemu.Version{}) {
				want = pivemu.DefaultVersion
			}
			if got := yk.Version(); got != (piv.Version{Major: want.Major, Minor: want.Minor, Patch: want.Patch}) {
				t.Errorf("card %d: version %v, want %v", i, got, want)
			}
			yk.Close()
		}
	})

	t.Run("form factor", func(t *testing.T) {
		yk := openCard(t, env.Readers[0])
		ff, err := yk.FormFactor()
		if err != nil {
			t.Fatal(err)
		}
		if ff != piv.FormfactorUSBCNano {
			t.Errorf("form factor %v, want USB-C Nano", ff)
		}
	})

	t.Run("wrong pin counts down and blocks", func(t *testing.T) {
		yk := openCard(t, env.Readers[2])
		if n, err := yk.Retries(); err != nil || n != 3 {
			t.Fatalf("Retries() = %d, %v; want 3", n, err)
		}
		for want := 2; want >= 0; want-- {
			err := yk.VerifyPIN("999999")
			var ae piv.AuthErr
			if !errors.As(err, &ae) || ae.Retries != want {
				t.Fatalf("wrong PIN: %v, want AuthErr with %d retries", err, want)
			}
		}
		err := yk.VerifyPIN(piv.DefaultPIN)
		if err == nil || !strings.Contains(err.Error(), "6983") {
			t.Fatalf("right PIN on blocked card: %v, want 6983", err)
		}
		if err := yk.Unblock(piv.DefaultPUK, "654321"); err != nil {
			t.Fatalf("Unblock: %v", err)
		}
		if err := yk.VerifyPIN("654321"); err != nil {
			t.Fatalf("new PIN: %v", err)
		}
		// An empty VERIFY answers 9000 while the PIN is verified; a new
		// session forgets it and shows the retry counter.
		if n, err := yk.Retries(); err == nil {
			t.Fatalf("Retries() with the PIN verified = %d, want the 9000 answer (an error in piv-go)", n)
		}
		yk.Close()
		yk = openCard(t, env.Readers[2])
		if n, err := yk.Retries(); err != nil || n != 3 {
			t.Fatalf("Retries() after unblock = %d, %v; want 3", n, err)
		}
	})

	for idx, name := range map[int]string{2: "aes192 default of 5.7", 1: "3des of 5.4"} {
		t.Run("management key "+name, func(t *testing.T) {
			yk := openCard(t, env.Readers[idx])
			// The wrong key fails, the default works, a new AES-256 key works
			// and the old one stops working.
			wrong := make([]byte, 24)
			if _, err := yk.GenerateKey(wrong, piv.SlotSignature, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyNever}); err == nil {
				t.Fatal("GenerateKey with a wrong management key succeeded")
			}
			newKey := make([]byte, 32)
			rand.Read(newKey)
			if err := yk.SetManagementKey(piv.DefaultManagementKey, newKey); err != nil {
				t.Fatalf("SetManagementKey: %v", err)
			}
			if _, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotSignature, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyNever}); err == nil {
				t.Fatal("old management key still works")
			}
			if _, err := yk.GenerateKey(newKey, piv.SlotSignature, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyNever}); err != nil {
				t.Fatalf("GenerateKey with the new key: %v", err)
			}
		})
	}

	t.Run("generate attest sign", func(t *testing.T) {
		yk := openCard(t, env.Readers[0])
		roots := x509.NewCertPool()
		roots.AddCert(ca.Cert)
		attCert, err := yk.AttestationCertificate()
		if err != nil {
			t.Fatalf("AttestationCertificate: %v", err)
		}
		cases := []struct {
			slot piv.Slot
			key  piv.Key
		}{
			{piv.SlotSignature, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyAlways}},
			{piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEd25519, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever}},
			{piv.SlotKeyManagement, piv.Key{Algorithm: piv.AlgorithmEC384, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyCached}},
		}
		for _, tc := range cases {
			pub, err := yk.GenerateKey(piv.DefaultManagementKey, tc.slot, tc.key)
			if err != nil {
				t.Fatalf("GenerateKey %v: %v", tc.slot, err)
			}
			cert, err := yk.Attest(tc.slot)
			if err != nil {
				t.Fatalf("Attest %v: %v", tc.slot, err)
			}
			a, err := (&piv.Verifier{Roots: roots}).Verify(attCert, cert)
			if err != nil {
				t.Fatalf("Verify attestation %v: %v", tc.slot, err)
			}
			want := piv.Attestation{Version: piv.Version{Major: 5, Minor: 7, Patch: 1}, Serial: 11111111,
				Formfactor: piv.FormfactorUSBCNano, PINPolicy: tc.key.PINPolicy, TouchPolicy: tc.key.TouchPolicy, Slot: tc.slot}
			if *a != want {
				t.Errorf("attestation %+v, want %+v", *a, want)
			}
			if _, err := piv.Verify(attCert, cert); err == nil {
				t.Error("emulator attestation verified against Yubico's roots")
			}
			if !publicEqual(cert.PublicKey, pub) {
				t.Errorf("attested key differs from generated key")
			}
			info, err := yk.KeyInfo(tc.slot)
			if err != nil {
				t.Fatalf("KeyInfo: %v", err)
			}
			if info.Algorithm != tc.key.Algorithm || info.PINPolicy != tc.key.PINPolicy || info.TouchPolicy != tc.key.TouchPolicy ||
				info.Origin != piv.OriginGenerated || !publicEqual(info.PublicKey, pub) {
				t.Errorf("KeyInfo %+v does not match %+v", info, tc.key)
			}

			priv, err := yk.PrivateKey(tc.slot, pub, piv.KeyAuth{PIN: piv.DefaultPIN})
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("keyceremony signs this")
			switch pub := pub.(type) {
			case *ecdsa.PublicKey:
				digest := sha256.Sum256(msg)
				sig, err := priv.(*piv.ECDSAPrivateKey).Sign(rand.Reader, digest[:], nil)
				if err != nil {
					t.Fatalf("Sign %v: %v", tc.slot, err)
				}
				if !ecdsa.VerifyASN1(pub, digest[:], sig) {
					t.Errorf("ECDSA signature from %v does not verify", tc.slot)
				}
			case ed25519.PublicKey:
				sig, err := priv.(crypto.Signer).Sign(rand.Reader, msg, crypto.Hash(0))
				if err != nil {
					t.Fatalf("Sign %v: %v", tc.slot, err)
				}
				if !ed25519.Verify(pub, msg, sig) {
					t.Errorf("Ed25519 signature from %v does not verify", tc.slot)
				}
			}
		}
		// Touch policy always (9c) and cached (9d) each needed a touch.
		if n := env.Cards[0].Touches(); n != 2 {
			t.Errorf("Touches() = %d, want 2", n)
		}
	})
}

func publicEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
