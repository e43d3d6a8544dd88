//go:build cgo

package pivemu_test

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

// BenchmarkAPDURoundTrip measures one APDU (GET SERIAL) through piv-go,
// libpcsclite, pcscd, vpcd and the emulator.
func BenchmarkAPDURoundTrip(b *testing.B) {
	env := pcsctest.Start(b, 1)
	yk, err := piv.Open(env.Readers[0])
	if err != nil {
		b.Fatal(err)
	}
	defer yk.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := yk.Serial(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignP256 measures a signature with PIN policy once (VERIFY
// status check plus GENERAL AUTHENTICATE) through the stack.
func BenchmarkSignP256(b *testing.B) {
	env := pcsctest.Start(b, 1)
	yk, err := piv.Open(env.Readers[0])
	if err != nil {
		b.Fatal(err)
	}
	defer yk.Close()
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotAuthentication,
		piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		b.Fatal(err)
	}
	priv, err := yk.PrivateKey(piv.SlotAuthentication, pub, piv.KeyAuth{PIN: piv.DefaultPIN, PINPolicy: piv.PINPolicyOnce})
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	b.ResetTimer()
	for b.Loop() {
		if _, err := priv.(*piv.ECDSAPrivateKey).Sign(rand.Reader, digest[:], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransmitDirect is the emulator alone, without PC/SC.
func BenchmarkTransmitDirect(b *testing.B) {
	c, err := pivemu.NewCard(pivemu.Config{})
	if err != nil {
		b.Fatal(err)
	}
	c.Transmit([]byte{0, 0xa4, 4, 0, 5, 0xa0, 0, 0, 3, 8})
	apdu := []byte{0, 0xf8, 0, 0, 0}
	for b.Loop() {
		c.Transmit(apdu)
	}
}

// BenchmarkNewCard measures making a card with a shared CA: mostly the
// RSA-2048 attestation key a YubiKey's slot f9 holds.
func BenchmarkNewCard(b *testing.B) {
	ca, err := pivemu.NewCA()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := pivemu.NewCard(pivemu.Config{CA: ca}); err != nil {
			b.Fatal(err)
		}
	}
}
