// Package hsmtest is the conformance suite every hsm.Device implementation
// must pass: the soft device directly, the piv backend against an emulated
// card. It checks the promises of package hsm with PIV semantics: tries
// that are spent and restored, blocking and unblocking, slots that are
// never overwritten, attestations that keys.VerifyAttestation accepts for
// the device's serial and the slot's key, and signatures that
// keys.Key.Verify accepts.
//
// Fake is an in-memory device that passes the suite and can be made to
// misbehave (Faults): attestations for another slot, policy, key or date,
// or a failure on the Nth key generation, for tests of what a ceremony
// does with a device it must not trust.
package hsmtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
)

// Factory defaults every device under test must start with.
const (
	DefaultPIN = "123456"
	DefaultPUK = "12345678"
)

// Run runs the suite. newDevice must return a factory-fresh device (PIN
// DefaultPIN and PUK DefaultPUK with 3 tries each, every slot empty) for
// each subtest, and arrange for its cleanup; the suite closes it. roots
// are the attestation roots that device's attestations chain to.
func Run(t *testing.T, newDevice func(t *testing.T) hsm.Device, roots *x509.CertPool) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d hsm.Device, roots *x509.CertPool)
	}{
		{"Info", testInfo},
		{"FactoryRetries", testFactoryRetries},
		{"WrongPIN", testWrongPIN},
		{"BlockPINAndUnblock", testBlockPIN},
		{"BlockPUK", testBlockPUK},
		{"ChangePIN", testChangePIN},
		{"ChangePUK", testChangePUK},
		{"GenerateP256", func(t *testing.T, d hsm.Device, roots *x509.CertPool) {
			testGenerate(t, d, hsm.AlgECCP256)
		}},
		{"GenerateEd25519", func(t *testing.T, d hsm.Device, roots *x509.CertPool) {
			testGenerate(t, d, hsm.AlgEd25519)
		}},
		{"GenerateWrongPIN", testGenerateWrongPIN},
		{"GenerateBadSlot", testGenerateBadSlot},
		{"OccupiedSlot", testOccupiedSlot},
		{"EmptySlot", testEmptySlot},
		{"AttestP256", func(t *testing.T, d hsm.Device, roots *x509.CertPool) {
			testAttest(t, d, roots, hsm.AlgECCP256)
		}},
		{"AttestEd25519", func(t *testing.T, d hsm.Device, roots *x509.CertPool) {
			testAttest(t, d, roots, hsm.AlgEd25519)
		}},
		{"SignP256", func(t *testing.T, d hsm.Device, roots *x509.CertPool) {
			testSign(t, d, hsm.AlgECCP256)
		}},
		{"SignEd25519", func(t *testing.T, d hsm.Device, roots *x509.CertPool) {
			testSign(t, d, hsm.AlgEd25519)
		}},
		{"SignWrongPIN", testSignWrongPIN},
		{"NewSigner", testNewSigner},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t)
			closed := false
			t.Cleanup(func() {
				if !closed {
					d.Close()
				}
			})
			if tt.name == "Closed" {
				closed = true
			}
			tt.fn(t, d, roots)
		})
	}
}

// wantAuth checks that err is an *hsm.AuthError for what with retries left.
func wantAuth(t *testing.T, err error, what string, retries int) {
	t.Helper()
	var ae *hsm.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want a wrong-%s error with %d tries left", err, what, retries)
	}
	if ae.What != what || ae.Retries != retries {
		t.Fatalf("got wrong %s with %d tries left, want wrong %s with %d", ae.What, ae.Retries, what, retries)
	}
	if got := errors.Is(err, hsm.ErrBlocked); got != (retries == 0) {
		t.Errorf("errors.Is(%v, ErrBlocked) = %v with %d tries left", err, got, retries)
	}
}

func wantRetries(t *testing.T, d hsm.Device, pin, puk int) {
	t.Helper()
	gotPIN, gotPUK, err := d.Retries()
	if err != nil {
		t.Fatalf("Retries: %v", err)
	}
	if gotPIN != pin || gotPUK != puk {
		t.Fatalf("Retries = PIN %d, PUK %d; want %d, %d", gotPIN, gotPUK, pin, puk)
	}
}

func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func generate(t *testing.T, d hsm.Device, slot hsm.Slot, alg hsm.Algorithm) crypto.PublicKey {
	t.Helper()
	pub, err := d.GenerateKey(DefaultPIN, slot, hsm.KeyOptions{Algorithm: alg, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyNever})
	if alg == hsm.AlgEd25519 && errors.Is(err, hsm.ErrUnsupported) {
		t.Logf("%s does not support ed25519 keys; nothing more to check", d.Info())
		return nil
	}
	must(t, "GenerateKey "+string(alg), err)
	return pub
}

func testInfo(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	info := d.Info()
	if info.Serial == 0 || info.Kind == "" || info.Firmware == "" {
		t.Errorf("Info = %+v: serial, kind and firmware must be set", info)
	}
	if got := strings.Contains(info.String(), "INSECURE"); got != info.Insecure {
		t.Errorf("Info.String() = %q with Insecure %v", info.String(), info.Insecure)
	}
	if info.Kind == "soft" && !info.Insecure {
		t.Error("a soft device does not say it is insecure")
	}
}

func testFactoryRetries(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	wantRetries(t, d, 3, 3)
	must(t, "VerifyPIN(factory PIN)", d.VerifyPIN(DefaultPIN))
	wantRetries(t, d, 3, 3)
}

func testWrongPIN(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	wantAuth(t, d.VerifyPIN("000000"), "PIN", 2)
	wantRetries(t, d, 2, 3)
	wantAuth(t, d.VerifyPIN("00000000"), "PIN", 1)
	wantRetries(t, d, 1, 3)
	must(t, "VerifyPIN(right PIN)", d.VerifyPIN(DefaultPIN))
	wantRetries(t, d, 3, 3)
}

func testBlockPIN(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	for left := 2; left >= 0; left-- {
		wantAuth(t, d.VerifyPIN("999999"), "PIN", left)
	}
	wantRetries(t, d, 0, 3)
	wantIs(t, "VerifyPIN(right PIN) when blocked", d.VerifyPIN(DefaultPIN), hsm.ErrBlocked)
	_, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	wantIs(t, "GenerateKey with a blocked PIN", err, hsm.ErrBlocked)
	wantRetries(t, d, 0, 3)

	// A weak new PIN is refused before the PUK is checked.
	wantIs(t, "Unblock to a 5-digit PIN", d.Unblock(DefaultPUK, "12345"), hsm.ErrWeakPIN)
	wantRetries(t, d, 0, 3)
	wantAuth(t, d.Unblock("87654321", "654321"), "PUK", 2)
	wantRetries(t, d, 0, 2)
	must(t, "Unblock", d.Unblock(DefaultPUK, "654321"))
	wantRetries(t, d, 3, 3)
	must(t, "VerifyPIN(new PIN)", d.VerifyPIN("654321"))
	wantAuth(t, d.VerifyPIN(DefaultPIN), "PIN", 2)
}

func testBlockPUK(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	for left := 2; left >= 0; left-- {
		wantAuth(t, d.Unblock("87654321", "654321"), "PUK", left)
	}
	wantRetries(t, d, 3, 0)
	wantIs(t, "Unblock with the right PUK when blocked", d.Unblock(DefaultPUK, "654321"), hsm.ErrBlocked)
	wantIs(t, "ChangePUK when blocked", d.ChangePUK(DefaultPUK, "11223344"), hsm.ErrBlocked)
	// The PIN still works.
	must(t, "VerifyPIN", d.VerifyPIN(DefaultPIN))
	wantRetries(t, d, 3, 0)
}

func testChangePIN(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	for _, weak := range []string{"", "12345", "123456789"} {
		wantIs(t, "ChangePIN to "+weak, d.ChangePIN(DefaultPIN, weak), hsm.ErrWeakPIN)
	}
	wantRetries(t, d, 3, 3)
	wantAuth(t, d.ChangePIN("000000", "24681357"), "PIN", 2)
	must(t, "ChangePIN", d.ChangePIN(DefaultPIN, "24681357"))
	wantRetries(t, d, 3, 3)
	must(t, "VerifyPIN(new PIN)", d.VerifyPIN("24681357"))
	wantAuth(t, d.VerifyPIN(DefaultPIN), "PIN", 2)

	// Keys made before the change sign with the new PIN only.
	pub, err := d.GenerateKey("24681357", hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	must(t, "GenerateKey", err)
	must(t, "ChangePIN again", d.ChangePIN("24681357", "135790"))
	sig, err := d.Sign("135790", hsm.SlotSignature, []byte("after change"))
	must(t, "Sign with the changed PIN", err)
	verify(t, pub, []byte("after change"), sig)
	_, err = d.Sign("24681357", hsm.SlotSignature, []byte("x"))
	wantAuth(t, err, "PIN", 2)
}

func testChangePUK(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	wantIs(t, "ChangePUK to a 5-digit PUK", d.ChangePUK(DefaultPUK, "12345"), hsm.ErrWeakPIN)
	wantAuth(t, d.ChangePUK("87654321", "11223344"), "PUK", 2)
	must(t, "ChangePUK", d.ChangePUK(DefaultPUK, "11223344"))
	wantRetries(t, d, 3, 3)
	wantAuth(t, d.Unblock(DefaultPUK, "654321"), "PUK", 2)
	must(t, "Unblock with the new PUK", d.Unblock("11223344", "654321"))
	must(t, "VerifyPIN", d.VerifyPIN("654321"))
}

func testGenerate(t *testing.T, d hsm.Device, alg hsm.Algorithm) {
	pub := generate(t, d, hsm.SlotSignature, alg)
	if pub == nil {
		return
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if alg != hsm.AlgECCP256 || p.Curve != elliptic.P256() {
			t.Fatalf("generated %s, got an ECDSA key on %s", alg, p.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if alg != hsm.AlgEd25519 {
			t.Fatalf("generated %s, got an ed25519 key", alg)
		}
	default:
		t.Fatalf("generated %s, got %T", alg, pub)
	}
	got, err := d.PublicKey(hsm.SlotSignature)
	must(t, "PublicKey", err)
	if !equal(got, pub) {
		t.Error("PublicKey differs from the generated key")
	}
	// Other slots stay empty.
	_, err = d.PublicKey(hsm.SlotAuthentication)
	wantIs(t, "PublicKey(9a)", err, hsm.ErrSlotEmpty)
	// A retired slot works too.
	if alg == hsm.AlgECCP256 {
		pub2 := generate(t, d, hsm.Slot(0x82), alg)
		if equal(pub2, pub) {
			t.Error("two slots got the same key")
		}
	}
}

func testGenerateWrongPIN(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	_, err := d.GenerateKey("000000", hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	wantAuth(t, err, "PIN", 2)
	_, err = d.PublicKey(hsm.SlotSignature)
	wantIs(t, "PublicKey after a failed GenerateKey", err, hsm.ErrSlotEmpty)
}

func testGenerateBadSlot(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	for _, s := range []hsm.Slot{0x00, 0x9b, 0x81, 0x96, 0xf9} {
		_, err := d.GenerateKey(DefaultPIN, s, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
		wantIs(t, "GenerateKey in slot "+s.String(), err, hsm.ErrBadSlot)
	}
	_, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: "rsa1024"})
	wantIs(t, "GenerateKey rsa1024", err, hsm.ErrUnsupported)
	wantRetries(t, d, 3, 3)
}

func testOccupiedSlot(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	first := generate(t, d, hsm.SlotSignature, hsm.AlgECCP256)
	for _, alg := range []hsm.Algorithm{hsm.AlgECCP256, hsm.AlgEd25519} {
		_, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: alg})
		wantIs(t, "GenerateKey in an occupied slot", err, hsm.ErrSlotOccupied)
	}
	got, err := d.PublicKey(hsm.SlotSignature)
	must(t, "PublicKey", err)
	if !equal(got, first) {
		t.Fatal("the key in the occupied slot changed")
	}
	sig, err := d.Sign(DefaultPIN, hsm.SlotSignature, []byte("still here"))
	must(t, "Sign", err)
	verify(t, first, []byte("still here"), sig)
}

func testEmptySlot(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	_, err := d.PublicKey(hsm.SlotSignature)
	wantIs(t, "PublicKey", err, hsm.ErrSlotEmpty)
	_, err = d.Sign(DefaultPIN, hsm.SlotSignature, []byte("x"))
	wantIs(t, "Sign", err, hsm.ErrSlotEmpty)
	if _, err := d.Attest(hsm.SlotSignature); err == nil {
		t.Error("Attest of an empty slot succeeded")
	}
	_, err = hsm.NewSigner(d, hsm.SlotSignature, DefaultPIN)
	wantIs(t, "NewSigner", err, hsm.ErrSlotEmpty)
	wantRetries(t, d, 3, 3)
}

func testAttest(t *testing.T, d hsm.Device, roots *x509.CertPool, alg hsm.Algorithm) {
	opts := hsm.KeyOptions{Algorithm: alg, PINPolicy: hsm.PINPolicyOnce, TouchPolicy: hsm.TouchPolicyNever}
	pub, err := d.GenerateKey(DefaultPIN, hsm.SlotKeyManagement, opts)
	if alg == hsm.AlgEd25519 && errors.Is(err, hsm.ErrUnsupported) {
		t.Logf("%s does not support ed25519 keys", d.Info())
		return
	}
	must(t, "GenerateKey", err)
	other := generate(t, d, hsm.SlotAuthentication, hsm.AlgECCP256)

	att, err := d.Attest(hsm.SlotKeyManagement)
	must(t, "Attest", err)
	if att.Leaf == nil || att.Intermediate == nil {
		t.Fatal("Attest returned a nil certificate")
	}
	a, err := keys.VerifyAttestation(att.Leaf, att.Intermediate, roots)
	must(t, "VerifyAttestation", err)
	info := d.Info()
	k, err := keys.FromPublicKey(pub)
	must(t, "FromPublicKey", err)
	must(t, "CheckAttested", keys.CheckAttested(a, info.Serial, k))
	if a.Slot != "9d" || a.PINPolicy != string(opts.PINPolicy) || a.TouchPolicy != string(opts.TouchPolicy) {
		t.Errorf("attested slot %q, policies %q/%q; want 9d, %s/%s", a.Slot, a.PINPolicy, a.TouchPolicy, opts.PINPolicy, opts.TouchPolicy)
	}
	if a.Firmware != info.Firmware {
		t.Errorf("attested firmware %q, device says %q", a.Firmware, info.Firmware)
	}

	// The same attestation is no proof for another device or another key,
	// nor without the device's roots.
	wantIs(t, "CheckAttested(other serial)", keys.CheckAttested(a, info.Serial+1, k), keys.ErrAttestationSerial)
	ko, err := keys.FromPublicKey(other)
	must(t, "FromPublicKey", err)
	wantIs(t, "CheckAttested(other key)", keys.CheckAttested(a, info.Serial, ko), keys.ErrAttestationKey)
	_, err = keys.VerifyAttestation(att.Leaf, att.Intermediate, x509.NewCertPool())
	wantIs(t, "VerifyAttestation(empty pool)", err, keys.ErrAttestationChain)

	// Attestations of two slots name their own slots and keys.
	att2, err := d.Attest(hsm.SlotAuthentication)
	must(t, "Attest(9a)", err)
	a2, err := keys.VerifyAttestation(att2.Leaf, att2.Intermediate, roots)
	must(t, "VerifyAttestation(9a)", err)
	must(t, "CheckAttested(9a)", keys.CheckAttested(a2, info.Serial, ko))
	if a2.Slot != "9a" || a2.PINPolicy != "always" {
		t.Errorf("9a attested as slot %q PIN policy %q", a2.Slot, a2.PINPolicy)
	}
	if !bytes.Equal(att.Intermediate.Raw, att2.Intermediate.Raw) {
		t.Error("one device, two attestation certificates")
	}
	// Attesting needs no PIN and spends no try.
	wantRetries(t, d, 3, 3)
}

func testSign(t *testing.T, d hsm.Device, alg hsm.Algorithm) {
	pub := generate(t, d, hsm.SlotSignature, alg)
	if pub == nil {
		return
	}
	for _, msg := range [][]byte{{}, []byte("signed metadata"), bytes.Repeat([]byte{0xa5}, 10000)} {
		sig, err := d.Sign(DefaultPIN, hsm.SlotSignature, msg)
		must(t, "Sign", err)
		verify(t, pub, msg, sig)
		k, _ := keys.FromPublicKey(pub)
		if err := k.Verify(append(msg, 0), sig); !errors.Is(err, keys.ErrBadSignature) {
			t.Errorf("signature verifies for another message: %v", err)
		}
	}
	wantRetries(t, d, 3, 3)
}

func testSignWrongPIN(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	pub := generate(t, d, hsm.SlotSignature, hsm.AlgECCP256)
	sig, err := d.Sign("000000", hsm.SlotSignature, []byte("x"))
	wantAuth(t, err, "PIN", 2)
	if sig != nil {
		t.Error("Sign with a wrong PIN returned a signature")
	}
	wantRetries(t, d, 2, 3)
	sig, err = d.Sign(DefaultPIN, hsm.SlotSignature, []byte("x"))
	must(t, "Sign", err)
	verify(t, pub, []byte("x"), sig)
	wantRetries(t, d, 3, 3)
}

func testNewSigner(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	pub := generate(t, d, hsm.SlotSignature, hsm.AlgECCP256)
	s, err := hsm.NewSigner(d, hsm.SlotSignature, DefaultPIN)
	must(t, "NewSigner", err)
	want, _ := keys.FromPublicKey(pub)
	if !s.Key().Equal(want) {
		t.Fatal("signer's key is not the slot's key")
	}
	msg := []byte(`{"signed":{"_type":"root"}}`)
	sig, err := s.Sign(msg)
	must(t, "Signer.Sign", err)
	must(t, "Key.Verify", s.Key().Verify(msg, sig))

	bad, err := hsm.NewSigner(d, hsm.SlotSignature, "000000")
	must(t, "NewSigner with a wrong PIN", err) // the PIN is only used to sign
	_, err = bad.Sign(msg)
	wantAuth(t, err, "PIN", 2)
}

func testClosed(t *testing.T, d hsm.Device, _ *x509.CertPool) {
	generate(t, d, hsm.SlotSignature, hsm.AlgECCP256)
	must(t, "Close", d.Close())
	if _, err := d.Sign(DefaultPIN, hsm.SlotSignature, []byte("x")); err == nil {
		t.Error("Sign after Close succeeded")
	}
	if _, _, err := d.Retries(); err == nil {
		t.Error("Retries after Close succeeded")
	}
}

func verify(t *testing.T, pub crypto.PublicKey, msg, sig []byte) {
	t.Helper()
	k, err := keys.FromPublicKey(pub)
	must(t, "FromPublicKey", err)
	if err := k.Verify(msg, sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
}

func equal(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
