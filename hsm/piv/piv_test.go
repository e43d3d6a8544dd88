//go:build cgo && (linux || darwin)

package piv_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/hsmtest"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/keys"
)

// Throwaway secrets of emulated cards.
const (
	newPIN = "24681357"
	newPUK = "86427531"
)

// stack starts a private pcscd with n emulated cards of the given
// firmware, all certified by one emulator CA, and returns the roots that
// trust that CA.
func stack(t *testing.T, n int, fw ...pivemu.Version) (*pcsctest.Env, *x509.CertPool) {
	t.Helper()
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cfgs := make([]pivemu.Config, n)
	for i := range cfgs {
		cfgs[i].CA = ca
		if i < len(fw) {
			cfgs[i].Version = fw[i]
		}
	}
	env := pcsctest.Start(t, n, cfgs...)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return env, roots
}

func open(t *testing.T, env *pcsctest.Env, i int, opts piv.Options) *piv.Device {
	t.Helper()
	d, err := piv.Open(env.Cards[i].Serial(), opts)
	if err != nil {
		t.Fatalf("Open(%d): %v", env.Cards[i].Serial(), err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// factoryReset resets card i's PIV application through the PC/SC stack,
// as ykman piv reset does (block PIN and PUK, then RESET).
func factoryReset(t *testing.T, env *pcsctest.Env, i int) {
	t.Helper()
	yk, err := gopiv.Open(env.Readers[i])
	if err != nil {
		t.Fatalf("opening %s: %v", env.Readers[i], err)
	}
	defer yk.Close()
	if err := yk.Reset(); err != nil {
		t.Fatalf("resetting %s: %v", env.Readers[i], err)
	}
}

var (
	fw571 = pivemu.Version{Major: 5, Minor: 7, Patch: 1}
	fw543 = pivemu.Version{Major: 5, Minor: 4, Patch: 3}
	fw527 = pivemu.Version{Major: 5, Minor: 2, Patch: 7}
)

// TestConformance runs the device conformance suite over the piv backend,
// each subtest on a factory-reset emulated card, in a rehearsal (the suite
// uses the factory PIN).
func TestConformance(t *testing.T) {
	for _, fw := range []pivemu.Version{fw571, fw543} {
		t.Run(fw.String(), func(t *testing.T) {
			env, roots := stack(t, 1, fw)
			hsmtest.Run(t, func(t *testing.T) hsm.Device {
				factoryReset(t, env, 0)
				d, err := piv.Open(env.Cards[0].Serial(), piv.Options{Roots: roots, Rehearsal: true})
				if err != nil {
					t.Fatal(err)
				}
				if d.Info().Firmware != fw.String() {
					t.Fatalf("firmware %q, want %s", d.Info().Firmware, fw)
				}
				return d
			}, roots)
		})
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
}

func wantRetries(t *testing.T, d hsm.Device, pin, puk int) {
	t.Helper()
	p, u, err := d.Retries()
	must(t, "Retries", err)
	if p != pin || u != puk {
		t.Fatalf("Retries = %d, %d; want %d, %d", p, u, pin, puk)
	}
}

// mgmAlgorithm reads the management key algorithm from the emulated card
// directly (GET METADATA 9B), beside the PC/SC stack.
func mgmAlgorithm(t *testing.T, c *pivemu.Card) byte {
	t.Helper()
	if c.Transmit([]byte{0x00, 0xfd, 0x00, 0x00})[1] < 3 {
		return 0
	}
	c.Transmit([]byte{0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08})
	r := c.Transmit([]byte{0x00, 0xf7, 0x00, 0x9b})
	if len(r) < 5 || !bytes.Equal(r[len(r)-2:], []byte{0x90, 0x00}) || r[0] != 0x01 {
		t.Fatalf("GET METADATA 9B answered % x", r)
	}
	return r[2]
}

// TestInitializeThenGenerate prepares factory-fresh cards of three
// firmware generations without rehearsal and uses them.
func TestInitializeThenGenerate(t *testing.T) {
	env, roots := stack(t, 3, fw571, fw543, fw527)
	for i, tc := range []struct {
		fw     pivemu.Version
		mgmAlg byte // after Initialize
	}{
		{fw571, pivemu.AlgAES192},
		{fw543, pivemu.AlgAES192},
		{fw527, 0}, // 3DES, but firmware before 5.3 has no GET METADATA to show it
	} {
		t.Run(tc.fw.String(), func(t *testing.T) {
			d := open(t, env, i, piv.Options{Roots: roots})
			def, err := d.Defaults()
			must(t, "Defaults", err)
			if def != (piv.Defaults{PIN: true, PUK: true, ManagementKey: true}) {
				t.Fatalf("fresh card: Defaults = %+v", def)
			}
			_, err = d.GenerateKey(piv.DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
			wantIs(t, "GenerateKey before Initialize", err, hsm.ErrDefaultSecret)

			for _, bad := range []struct{ pin, puk string }{
				{piv.DefaultPIN, newPUK}, {newPIN, piv.DefaultPUK}, {"12345", newPUK}, {newPIN, newPIN},
			} {
				if err := d.Initialize(bad.pin, bad.puk); err == nil {
					t.Fatalf("Initialize(%q, %q) succeeded", bad.pin, bad.puk)
				}
			}
			wantPUK := 3
			if tc.fw == fw527 {
				wantPUK = -1 // firmware before 5.3 cannot tell without spending a try
			}
			wantRetries(t, d, 3, wantPUK) // on 5.2.7 Defaults tried the defaults, which were right
			must(t, "CheckFactoryFresh of a fresh card", d.CheckFactoryFresh())
			must(t, "Initialize", d.Initialize(newPIN, newPUK))
			wantIs(t, "CheckFactoryFresh after Initialize", d.CheckFactoryFresh(), piv.ErrAlreadyInitialized)
			wantIs(t, "Initialize again", d.Initialize("11112222", "33334444"), piv.ErrAlreadyInitialized)
			if tc.fw != fw527 {
				def, err = d.Defaults()
				must(t, "Defaults", err)
				if def.Any() {
					t.Fatalf("initialized card: Defaults = %+v", def)
				}
			}
			if got := mgmAlgorithm(t, env.Cards[i]); tc.mgmAlg != 0 && got != tc.mgmAlg {
				t.Errorf("management key algorithm %#x, want %#x", got, tc.mgmAlg)
			}

			// The management key is stored PIN-protected, is not the
			// default, and authenticates.
			yk, err := gopiv.Open(env.Readers[i])
			must(t, "piv-go Open", err)
			m, err := yk.Metadata(newPIN)
			must(t, "piv-go Metadata", err)
			if m.ManagementKey == nil || len(*m.ManagementKey) != 24 || bytes.Equal(*m.ManagementKey, gopiv.DefaultManagementKey) {
				t.Fatal("no random 24-byte management key in the PIN-protected object")
			}
			err = yk.SetManagementKey(gopiv.DefaultManagementKey, gopiv.DefaultManagementKey)
			if err == nil {
				t.Fatal("the factory management key still authenticates")
			}
			must(t, "stored management key authenticates", yk.SetManagementKey(*m.ManagementKey, *m.ManagementKey))
			yk.Close()

			opts := hsm.KeyOptions{Algorithm: hsm.AlgECCP256, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyAlways}
			pub, err := d.GenerateKey(newPIN, hsm.SlotSignature, opts)
			must(t, "GenerateKey", err)
			att, err := d.Attest(hsm.SlotSignature)
			must(t, "Attest", err)
			a, err := keys.VerifyAttestation(att.Leaf, att.Intermediate, roots)
			must(t, "VerifyAttestation", err)
			k, _ := keys.FromPublicKey(pub)
			must(t, "CheckAttested", keys.CheckAttested(a, d.Info().Serial, k))
			if a.PINPolicy != "always" || a.TouchPolicy != "always" || a.Firmware != tc.fw.String() {
				t.Errorf("attested %+v", a)
			}
			// A real YubiKey's attestation does not chain to the emulator's
			// CA, nor the emulator's to Yubico's roots.
			_, err = keys.VerifyAttestation(att.Leaf, att.Intermediate, keys.YubicoRoots())
			wantIs(t, "VerifyAttestation(YubicoRoots)", err, keys.ErrAttestationChain)

			touches := env.Cards[i].Touches()
			msg := []byte(`{"signed":{"_type":"root"}}`)
			sig, err := d.Sign(newPIN, hsm.SlotSignature, msg)
			must(t, "Sign", err)
			must(t, "Verify", k.Verify(msg, sig))
			if env.Cards[i].Touches() != touches+1 {
				t.Errorf("signing with touch policy always touched %d times", env.Cards[i].Touches()-touches)
			}
			_, err = d.Sign(piv.DefaultPIN, hsm.SlotSignature, msg)
			wantIs(t, "Sign with the factory PIN", err, hsm.ErrDefaultSecret)
			wantRetries(t, d, 3, wantPUK)
		})
	}
}

// TestGenerateWithoutRoots: a device opened with Yubico's roots (the
// default) refuses to hand out a key whose attestation does not chain to
// them.
func TestGenerateWithoutRoots(t *testing.T) {
	env, _ := stack(t, 1)
	d := open(t, env, 0, piv.Options{Rehearsal: true})
	_, err := d.GenerateKey(piv.DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	wantIs(t, "GenerateKey on an emulated card with Yubico's roots", err, keys.ErrAttestationChain)
}

// TestRefuseDefaults: outside a rehearsal, any factory default left is
// refused, and nothing is spent or written.
func TestRefuseDefaults(t *testing.T) {
	env, roots := stack(t, 1)
	rehearsal := open(t, env, 0, piv.Options{Roots: roots, Rehearsal: true})
	prod := open(t, env, 0, piv.Options{Roots: roots})
	gen := func(pin string) error {
		_, err := prod.GenerateKey(pin, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
		return err
	}
	wantIs(t, "GenerateKey(factory PIN)", gen(piv.DefaultPIN), hsm.ErrDefaultSecret)
	_, err := prod.Sign(piv.DefaultPIN, hsm.SlotSignature, []byte("x"))
	wantIs(t, "Sign(factory PIN)", err, hsm.ErrDefaultSecret)
	wantIs(t, "ChangePIN to the factory PIN", prod.ChangePIN(piv.DefaultPIN, piv.DefaultPIN), hsm.ErrDefaultSecret)

	// PIN changed, PUK and management key still the factory ones.
	must(t, "ChangePIN", rehearsal.ChangePIN(piv.DefaultPIN, newPIN))
	wantIs(t, "GenerateKey(PUK and management key default)", gen(newPIN), hsm.ErrDefaultSecret)
	must(t, "ChangePUK", rehearsal.ChangePUK(piv.DefaultPUK, newPUK))
	err = gen(newPIN)
	wantIs(t, "GenerateKey(management key default)", err, hsm.ErrDefaultSecret)
	if !strings.Contains(err.Error(), "management key true") {
		t.Errorf("error does not name the management key: %v", err)
	}
	wantRetries(t, prod, 3, 3)
	_, err = prod.PublicKey(hsm.SlotSignature)
	wantIs(t, "PublicKey", err, hsm.ErrSlotEmpty)
	// A rehearsal device works with them.
	_, err = rehearsal.GenerateKey(newPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	must(t, "GenerateKey in a rehearsal", err)
}

func initialized(t *testing.T, env *pcsctest.Env, i int, opts piv.Options) *piv.Device {
	t.Helper()
	d := open(t, env, i, opts)
	must(t, "Initialize", d.Initialize(newPIN, newPUK))
	return d
}

// TestOccupiedSlot: an occupied slot is refused and its key is unchanged,
// unless the destructive option is set.
func TestOccupiedSlot(t *testing.T) {
	env, roots := stack(t, 1)
	d := initialized(t, env, 0, piv.Options{Roots: roots})
	opts := hsm.KeyOptions{Algorithm: hsm.AlgECCP256, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyAlways}
	first, err := d.GenerateKey(newPIN, hsm.Slot(0x83), opts)
	must(t, "GenerateKey", err)
	for _, alg := range []hsm.Algorithm{hsm.AlgECCP256, hsm.AlgEd25519} {
		_, err = d.GenerateKey(newPIN, hsm.Slot(0x83), hsm.KeyOptions{Algorithm: alg})
		wantIs(t, "GenerateKey in an occupied slot", err, hsm.ErrSlotOccupied)
	}
	got, err := d.PublicKey(hsm.Slot(0x83))
	must(t, "PublicKey", err)
	if !got.(*ecdsa.PublicKey).Equal(first) {
		t.Fatal("the key in the occupied slot changed")
	}
	att, err := d.Attest(hsm.Slot(0x83))
	must(t, "Attest", err)
	if !att.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(first) {
		t.Fatal("the attested key changed")
	}

	destroyer := open(t, env, 0, piv.Options{Roots: roots, DestroyExistingKeysIReallyMeanIt: true})
	second, err := destroyer.GenerateKey(newPIN, hsm.Slot(0x83), opts)
	must(t, "GenerateKey with DestroyExistingKeysIReallyMeanIt", err)
	if second.(*ecdsa.PublicKey).Equal(first) {
		t.Fatal("the key was not replaced")
	}
	got, err = d.PublicKey(hsm.Slot(0x83))
	must(t, "PublicKey", err)
	if !got.(*ecdsa.PublicKey).Equal(second) {
		t.Fatal("the slot does not hold the new key")
	}
}

// TestYSA202403: a card with firmware 5.4.3 is affected; a root key on it
// is refused unless overridden.
func TestYSA202403(t *testing.T) {
	env, roots := stack(t, 2, fw543, fw571)
	old := open(t, env, 0, piv.Options{Roots: roots})
	cur := open(t, env, 1, piv.Options{Roots: roots})
	if adv := piv.Advisories(old.Info(), hsm.AlgECCP256); len(adv) != 1 || !strings.Contains(adv[0], "YSA-2024-03") {
		t.Fatalf("Advisories(5.4.3) = %q", adv)
	}
	err := piv.CheckRootKey(old.Info(), hsm.AlgECCP256, false)
	wantIs(t, "CheckRootKey(5.4.3)", err, piv.ErrAffectedFirmware)
	if !strings.Contains(err.Error(), "5.4.3") {
		t.Errorf("error does not name the firmware: %v", err)
	}
	must(t, "CheckRootKey(5.4.3, override)", piv.CheckRootKey(old.Info(), hsm.AlgECCP256, true))
	must(t, "CheckRootKey(5.7.1)", piv.CheckRootKey(cur.Info(), hsm.AlgECCP256, false))
	if adv := piv.Advisories(cur.Info(), hsm.AlgECCP256); len(adv) != 0 {
		t.Fatalf("Advisories(5.7.1) = %q", adv)
	}
}

// TestList: every card is listed with its serial, firmware, form factor
// and reader; OpenAll opens them all.
func TestList(t *testing.T) {
	ca, _ := pivemu.NewCA()
	env := pcsctest.Start(t, 2,
		pivemu.Config{CA: ca, Version: fw543, FormFactor: pivemu.FormFactorUSBCNano},
		pivemu.Config{CA: ca})
	cards, err := piv.ListCards()
	must(t, "ListCards", err)
	if len(cards) != 2 {
		t.Fatalf("ListCards = %+v", cards)
	}
	want := map[uint32]piv.Card{
		env.Cards[0].Serial(): {Info: hsm.Info{Kind: "yubikey", Serial: env.Cards[0].Serial(), Firmware: "5.4.3", FormFactor: "USB-C nano"}, Reader: env.Readers[0]},
		env.Cards[1].Serial(): {Info: hsm.Info{Kind: "yubikey", Serial: env.Cards[1].Serial(), Firmware: "5.7.1", FormFactor: "USB-A keychain"}, Reader: env.Readers[1]},
	}
	for _, c := range cards {
		if c != want[c.Serial] {
			t.Errorf("card %+v, want %+v", c, want[c.Serial])
		}
	}
	infos, err := piv.List()
	must(t, "List", err)
	if len(infos) != 2 || infos[0].Serial > infos[1].Serial {
		t.Errorf("List = %+v", infos)
	}
	ds, err := piv.OpenAll(piv.Options{})
	must(t, "OpenAll", err)
	if len(ds) != 2 || ds[0].Info() != infos[0] || ds[1].Info() != infos[1] {
		t.Errorf("OpenAll opened %d devices", len(ds))
	}
	_, err = piv.Open(12345, piv.Options{})
	wantIs(t, "Open(absent serial)", err, hsm.ErrNoDevice)
}

// probeAPDUs is how many commands the backend sends (SELECT, GET VERSION,
// GET SERIAL with its own PC/SC client) before piv.Open's SELECT.
const probeAPDUs = 3

// TestCardPulledMidSigning pulls the card after each command of a
// signature in turn: every failure says the card is gone, and once it is
// back the key, the PIN tries and signing are as before.
//
// A pull between the backend's check and piv.Open's SELECT is done last:
// piv-go v2.6.0 then leaks its exclusive connection, which keeps a vpcd
// reader (unlike a YubiKey's own reader, which disappears with the key)
// locked for the rest of the process.
func TestCardPulledMidSigning(t *testing.T) {
	env, roots := stack(t, 1)
	d := initialized(t, env, 0, piv.Options{Roots: roots})
	pub, err := d.GenerateKey(newPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	must(t, "GenerateKey", err)
	k, _ := keys.FromPublicKey(pub)
	msg := []byte("stable v7")
	pull := func(n int) error {
		env.Cards[0].RemoveAfter(n)
		sig, err := d.Sign(newPIN, hsm.SlotSignature, msg)
		if err == nil {
			env.Cards[0].RemoveAfter(0)
			must(t, "Verify", k.Verify(msg, sig))
			return nil
		}
		if !errors.Is(err, hsm.ErrNoDevice) || !strings.Contains(hint.Of(err), "plug it in and try again") || strings.Contains(err.Error(), "try again") {
			t.Fatalf("pulled after %d commands: %v, want ErrNoDevice saying what to do", n, err)
		}
		if sig != nil {
			t.Fatal("a failed Sign returned a signature")
		}
		t.Logf("pulled after %d commands: %v", n, err)
		if err := env.WaitRemoved(t, 0); !errors.Is(err, pivemu.ErrRemoved) {
			t.Fatalf("card left with %v", err)
		}
		return err
	}
	failed := 0
	for n := 1; n < 20; n++ {
		if n == probeAPDUs {
			continue
		}
		if pull(n) == nil {
			break // the signature needed fewer than n commands
		}
		failed++
		env.Insert(t, 0)
		wantRetries(t, d, 3, 3)
		got, err := d.PublicKey(hsm.SlotSignature)
		must(t, "PublicKey after reinsertion", err)
		if !got.(*ecdsa.PublicKey).Equal(pub) {
			t.Fatal("the key changed")
		}
	}
	if failed < 6 {
		t.Errorf("only %d pulls failed a signature", failed)
	}
	if pull(probeAPDUs) == nil {
		t.Fatal("a pull before piv.Open's SELECT did not fail")
	}
}

// TestWrongCard: a different card in the device's reader is refused and
// named; the device is found again in another reader.
func TestWrongCard(t *testing.T) {
	env, roots := stack(t, 2)
	d := initialized(t, env, 0, piv.Options{Roots: roots})
	pub, err := d.GenerateKey(newPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	must(t, "GenerateKey", err)

	env.Remove(t, 0)
	_, err = d.Sign(newPIN, hsm.SlotSignature, []byte("x"))
	wantIs(t, "Sign with the card out", err, hsm.ErrNoDevice)

	// Another card (serial 11223344) goes into reader 0.
	other, err := pivemu.NewCard(pivemu.Config{Serial: 11223344})
	must(t, "NewCard", err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- other.Serve(ctx, env.Addrs[0]) }()
	waitCard(t, env.Readers[0], 11223344)
	_, err = d.Sign(newPIN, hsm.SlotSignature, []byte("x"))
	var wrong *piv.WrongDeviceError
	if !errors.As(err, &wrong) || wrong.Got != 11223344 || wrong.Want != env.Cards[0].Serial() || !errors.Is(err, hsm.ErrNoDevice) {
		t.Fatalf("Sign with a wrong card in the reader: %v", err)
	}
	for _, f := range []func() error{
		func() error { _, _, err := d.Retries(); return err },
		func() error { _, err := d.Defaults(); return err },
		func() error { return d.VerifyPIN(newPIN) },
	} {
		if err := f(); !errors.As(err, &wrong) {
			t.Fatalf("with a wrong card in the reader: %v", err)
		}
	}
	if other.Touches() != 0 {
		t.Fatal("the wrong card was used")
	}
	cancel()
	<-done

	// The device turns up in reader 1 (where card 1 was).
	env.Remove(t, 1)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- env.Cards[0].Serve(ctx, env.Addrs[1]) }()
	waitCard(t, env.Readers[1], env.Cards[0].Serial())
	sig, err := d.Sign(newPIN, hsm.SlotSignature, []byte("x"))
	must(t, "Sign in another reader", err)
	k, _ := keys.FromPublicKey(pub)
	must(t, "Verify", k.Verify([]byte("x"), sig))
	if d.Reader() != env.Readers[1] {
		t.Errorf("Reader() = %q, want %q", d.Reader(), env.Readers[1])
	}
	cancel()
	<-done
}

func waitCard(t *testing.T, reader string, serial uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cards, err := piv.ListCards()
		for _, c := range cards {
			if c.Reader == reader && c.Serial == serial {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("card %d not in %s: %v", serial, reader, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPINOneTryLeft: the tries left are reported at every step down to
// blocked, and the PUK brings the PIN back.
func TestPINOneTryLeft(t *testing.T) {
	env, roots := stack(t, 1)
	d := initialized(t, env, 0, piv.Options{Roots: roots})
	_, err := d.GenerateKey(newPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
	must(t, "GenerateKey", err)
	if err := d.VerifyPIN("11111111"); !errors.As(err, new(*hsm.AuthError)) {
		t.Fatalf("first wrong PIN: %v", err)
	}
	wantRetries(t, d, 2, 3)
	_, err = d.Sign("22222222", hsm.SlotSignature, []byte("x"))
	var ae *hsm.AuthError
	if !errors.As(err, &ae) || ae.What != "PIN" || ae.Retries != 1 || errors.Is(err, hsm.ErrBlocked) {
		t.Fatalf("second wrong PIN: %v", err)
	}
	if want := fmt.Sprintf("yubikey %d: wrong PIN, 1 tries left", d.Info().Serial); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	wantRetries(t, d, 1, 3)
	_, err = d.Sign("33333333", hsm.SlotSignature, []byte("x"))
	wantIs(t, "third wrong PIN", err, hsm.ErrBlocked)
	_, err = d.Sign(newPIN, hsm.SlotSignature, []byte("x"))
	wantIs(t, "right PIN when blocked", err, hsm.ErrBlocked)
	wantRetries(t, d, 0, 3)
	must(t, "Unblock", d.Unblock(newPUK, "13572468"))
	_, err = d.Sign("13572468", hsm.SlotSignature, []byte("x"))
	must(t, "Sign after Unblock", err)
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: %s", name, pcsctest.InstallHint)
	}
	return p
}

// run runs an independent PIV client against the private pcscd. The PINs
// on its command line are the throwaway PINs of an emulated card.
func run(t *testing.T, env *pcsctest.Env, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Env = env.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestIndependentClients: yubico-piv-tool and OpenSC see the key the
// backend generated, its certificate and the new PIN, and OpenSC's
// PKCS#11 module signs with it.
func TestIndependentClients(t *testing.T) {
	env, roots := stack(t, 1)
	d := initialized(t, env, 0, piv.Options{Roots: roots})
	opts := hsm.KeyOptions{Algorithm: hsm.AlgECCP256, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyAlways}
	pub, err := d.GenerateKey(newPIN, hsm.SlotSignature, opts)
	must(t, "GenerateKey", err)
	k, _ := keys.FromPublicKey(pub)
	reader := env.Readers[0]

	out, err := run(t, env, "yubico-piv-tool", "-r", reader, "-a", "status")
	if err != nil {
		t.Fatalf("yubico-piv-tool status: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Slot 9c") || !strings.Contains(out, fmt.Sprintf("Serial Number:\t%d", d.Info().Serial)) {
		t.Fatalf("yubico-piv-tool status does not show slot 9c of serial %d:\n%s", d.Info().Serial, out)
	}
	t.Logf("yubico-piv-tool -a status:\n%s", out)

	out, err = run(t, env, "yubico-piv-tool", "-r", reader, "-a", "read-certificate", "-s", "9c")
	if err != nil {
		t.Fatalf("yubico-piv-tool read-certificate: %v\n%s", err, out)
	}
	block, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	if block == nil {
		t.Fatalf("read-certificate printed no PEM:\n%s", out)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	must(t, "parsing the certificate", err)
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("yubico-piv-tool reads another key in slot 9c")
	}

	out, err = run(t, env, "yubico-piv-tool", "-r", reader, "-a", "verify-pin", "-P", newPIN)
	if err != nil || !strings.Contains(out, "Successfully verified PIN") {
		t.Fatalf("yubico-piv-tool verify-pin with the new PIN: %v\n%s", err, out)
	}
	out, err = run(t, env, "yubico-piv-tool", "-r", reader, "-a", "verify-pin", "-P", piv.DefaultPIN)
	if err == nil {
		t.Fatalf("yubico-piv-tool verify-pin with the factory PIN succeeded:\n%s", out)
	}
	wantRetries(t, d, 2, 3) // the backend sees the try yubico-piv-tool spent
	must(t, "VerifyPIN", d.VerifyPIN(newPIN))

	// OpenSC's PKCS#11 module: slot 9c is key id 02.
	msg := []byte(`{"signed":{"_type":"targets","version":1}}`)
	digest := sha256.Sum256(msg)
	dir := t.TempDir()
	in, sigPath := filepath.Join(dir, "digest"), filepath.Join(dir, "sig")
	must(t, "writing digest", os.WriteFile(in, digest[:], 0o600))
	touches := env.Cards[0].Touches()
	out, err = run(t, env, "pkcs11-tool", "--module", openscModule, "--login", "--pin", newPIN,
		"--sign", "-m", "ECDSA", "--id", "02", "--signature-format", "openssl",
		"--input-file", in, "--output-file", sigPath)
	if err != nil {
		t.Fatalf("pkcs11-tool --sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(sigPath)
	must(t, "reading the signature", err)
	must(t, "verifying OpenSC's signature", k.Verify(msg, sig))
	if env.Cards[0].Touches() <= touches {
		t.Error("OpenSC signed without a touch")
	}
	wantRetries(t, d, 3, 3)
}

const openscModule = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// TestWithoutCgo builds and tests the package with CGO_ENABLED=0, as the
// auditor's verifier is built: it compiles, vets, and says that PIV support
// is not compiled in (TestNotCompiled).
func TestWithoutCgo(t *testing.T) {
	for _, args := range [][]string{{"vet", "."}, {"test", "-count=1", "-run", "TestNotCompiled|TestAdvisories|TestParse", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("CGO_ENABLED=0 go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// BenchmarkSign measures one signature through the whole stack: the
// backend's card check, piv.Open, GET METADATA, VERIFY and GENERAL
// AUTHENTICATE, over pcscd and vpcd to the emulator.
func BenchmarkSign(b *testing.B) {
	ca, _ := pivemu.NewCA()
	env := pcsctest.Start(b, 1, pivemu.Config{CA: ca})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	d, err := piv.Open(env.Cards[0].Serial(), piv.Options{Roots: roots})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Initialize(newPIN, newPUK); err != nil {
		b.Fatal(err)
	}
	if _, err := d.GenerateKey(newPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		b.Fatal(err)
	}
	msg := []byte("benchmark")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Sign(newPIN, hsm.SlotSignature, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRetries measures the backend's own PC/SC client: card check
// and two GET METADATA.
func BenchmarkRetries(b *testing.B) {
	env := pcsctest.Start(b, 1)
	d, err := piv.Open(env.Cards[0].Serial(), piv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := d.Retries(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestYkmanManagesInitializedDevice: on a device the backend initialised,
// ykman, in both versions (Debian bookworm's 4.0.9 and 5.6.1), finds the
// management key PIN-protected (the admin data says so, as its own setup
// writes it) and generates a key with only the PIN; OpenSC sees keys the
// backend generated in the retired slots 82 and 83 (the key history
// object counts them).
func TestYkmanManagesInitializedDevice(t *testing.T) {
	env, roots := stack(t, 2, pivemu.Version{Major: 5, Minor: 7, Patch: 1}, pivemu.Version{Major: 5, Minor: 4, Patch: 3})
	dir := t.TempDir()
	ykmans := pcsctest.Ykmans(t)
	for i := range env.Cards {
		d := initialized(t, env, i, piv.Options{Roots: roots})
		reader := env.Readers[i]
		// Each version generates into a slot of its own.
		for j, y := range ykmans {
			slot := []hsm.Slot{hsm.SlotKeyManagement, hsm.SlotCardAuth}[j]
			out, err := run(t, env, y.Path, "--reader", reader, "piv", "info")
			if norm := strings.Join(strings.Fields(out), " "); err != nil || !strings.Contains(norm, "Management key is stored on the YubiKey, protected by PIN.") || strings.Contains(out, "default") {
				t.Fatalf("card %d, %s: piv info: %v\n%s", i, y, err, out)
			}
			// No management key on the command line or the terminal
			// (stdin is empty): ykman must take it from the PIN-protected
			// object.
			pubPath := filepath.Join(dir, fmt.Sprintf("%s-%d-%s.pem", slot, i, y.Version))
			out, err = run(t, env, y.Path, "--reader", reader, "piv", "keys", "generate", "-P", newPIN, "-a", "ECCP256", slot.String(), pubPath)
			if err != nil {
				t.Fatalf("card %d, %s: piv keys generate with only the PIN: %v\n%s", i, y, err, out)
			}
			b, err := os.ReadFile(pubPath)
			must(t, "reading ykman's public key", err)
			block, _ := pem.Decode(b)
			if block == nil {
				t.Fatalf("%s wrote no PEM:\n%s", y, b)
			}
			ykPub, err := x509.ParsePKIXPublicKey(block.Bytes)
			must(t, "parsing ykman's public key", err)
			got, err := d.PublicKey(slot)
			must(t, fmt.Sprintf("PublicKey(%s)", slot), err)
			if !got.(*ecdsa.PublicKey).Equal(ykPub) {
				t.Fatalf("card %d: the backend reads another key in %s than %s generated", i, slot, y)
			}
		}

		opts := hsm.KeyOptions{Algorithm: hsm.AlgECCP256, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyNever}
		for _, s := range []hsm.Slot{0x82, 0x83} {
			_, err := d.GenerateKey(newPIN, s, opts)
			must(t, fmt.Sprintf("GenerateKey(%s)", s), err)
		}
		out, err := run(t, env, "pkcs15-tool", "--reader", reader, "--list-public-keys")
		if err != nil {
			t.Fatalf("pkcs15-tool: %v\n%s", err, out)
		}
		for _, id := range []string{"ID             : 05", "ID             : 06"} {
			if !strings.Contains(out, id) {
				t.Errorf("card %d: OpenSC does not list retired key %q:\n%s", i, id, out)
			}
		}
	}
}

// TestYkmanDeletesOrphanKey: the command a failed bootstrap prints to
// clear an orphan key (ClearKeyCommand), run with its exact arguments and
// the PIN typed at ykman's prompt, deletes the key and its certificate on
// a keyceremony-initialised card with firmware 5.7, with ykman 5.6.1.
// Bookworm's ykman 4.0.9 has no piv keys delete; on firmware 5.4.3 the
// command is a reset instead, and ykman 5 refuses to delete one key, as
// the command's text says.
func TestYkmanDeletesOrphanKey(t *testing.T) {
	env, roots := stack(t, 2, fw571, pivemu.Version{Major: 5, Minor: 4, Patch: 3})
	ykmans := pcsctest.Ykmans(t)
	opts := hsm.KeyOptions{Algorithm: hsm.AlgECCP256, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyNever}
	// runHint runs one command of the hint as an administrator would,
	// typing the PIN when ykman asks for it; setsid, so that ykman's
	// prompt reads stdin and not the terminal of whoever runs the tests.
	runHint := func(y pcsctest.Ykman, command string, stdin string) (string, error) {
		args := strings.Fields(command)
		if args[0] != "ykman" {
			t.Fatalf("the hint runs %q, not ykman: %q", args[0], command)
		}
		cmd := exec.Command(y.Path, args[1:]...)
		cmd.Env = env.Environ()
		cmd.Stdin = strings.NewReader(stdin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	d := initialized(t, env, 0, piv.Options{Roots: roots})
	_, err := d.GenerateKey(newPIN, 0x83, opts)
	must(t, "GenerateKey(83)", err)
	hint := d.ClearKeyCommand(0x83)
	steps := strings.Split(hint, " && ")
	if len(steps) != 2 || !strings.Contains(steps[0], "piv keys delete 83") || !strings.Contains(steps[1], "piv certificates delete 83") {
		t.Fatalf("firmware 5.7.1: the hint is %q, want a key delete and a certificate delete", hint)
	}
	old, y5 := ykmans[0], ykmans[1]
	if out, err := runHint(old, steps[0], newPIN+"\n"); err == nil || !strings.Contains(out, "No such command") {
		t.Errorf("%s ran %q: %v\n%s (it has no piv keys delete)", old, steps[0], err, out)
	}
	if _, err := d.PublicKey(0x83); err != nil {
		t.Fatalf("the key is gone after %s refused to delete it: %v", old, err)
	}
	// Each command asks for the PIN (the management key is PIN-protected):
	// without one typed, nothing is deleted.
	for _, step := range steps {
		if out, err := runHint(y5, step, ""); err == nil || !strings.Contains(out, "Enter PIN") {
			t.Errorf("%s: %q without a PIN typed: %v\n%s", y5, step, err, out)
		}
	}
	if _, err := d.PublicKey(0x83); err != nil {
		t.Fatalf("the key is gone without the PIN: %v", err)
	}
	for _, step := range steps {
		if out, err := runHint(y5, step, newPIN+"\n"); err != nil || strings.Contains(out, "Traceback") {
			t.Fatalf("%s: %q: %v\n%s", y5, step, err, out)
		}
	}
	_, err = d.PublicKey(0x83)
	wantIs(t, "PublicKey(83) after the hint", err, hsm.ErrSlotEmpty)
	out, err := run(t, env, y5.Path, "--reader", env.Readers[0], "piv", "info")
	if err != nil || strings.Contains(strings.ToLower(out), "slot 83") {
		t.Errorf("%s piv info after the hint: %v\n%s", y5, err, out)
	}
	// The slot takes a new key.
	_, err = d.GenerateKey(newPIN, 0x83, opts)
	must(t, "GenerateKey(83) after the hint", err)

	d = initialized(t, env, 1, piv.Options{Roots: roots})
	_, err = d.GenerateKey(newPIN, 0x83, opts)
	must(t, "GenerateKey(83) on 5.4.3", err)
	if hint := d.ClearKeyCommand(0x83); strings.Contains(hint, "keys delete") || !strings.Contains(hint, "piv reset") {
		t.Fatalf("firmware 5.4.3: the hint is %q, want a reset", hint)
	}
	out, err = runHint(y5, fmt.Sprintf("ykman --device %d piv keys delete 83", env.Cards[1].Serial()), newPIN+"\n")
	if err == nil || !strings.Contains(out, "requires YubiKey 5.7.0 or later") {
		t.Errorf("%s deleting one key on firmware 5.4.3: %v\n%s", y5, err, out)
	}
}

// TestBusyReader: a card that another program holds exclusively (as gpg's
// scdaemon holds a YubiKey) is reported as busy, naming the reader, the
// likely holder and what to do, and is not silently left out.
func TestBusyReader(t *testing.T) {
	env, roots := stack(t, 2)
	d := open(t, env, 1, piv.Options{Roots: roots})
	// piv-go connects exclusively, as scdaemon does.
	holder, err := gopiv.Open(env.Readers[1])
	must(t, "holding the reader", err)
	defer holder.Close()

	cards, err := piv.ListCards()
	var busy *piv.BusyError
	if !errors.As(err, &busy) || !errors.Is(err, piv.ErrBusy) {
		t.Fatalf("ListCards with a busy reader: %v", err)
	}
	if len(busy.Readers) != 1 || busy.Readers[0] != env.Readers[1] {
		t.Errorf("busy readers %q, want %q", busy.Readers, env.Readers[1])
	}
	// What the people in the room read: the error, then its hint.
	shown := err.Error() + "\nhint: " + hint.Of(err)
	for _, want := range []string{env.Readers[1], "scdaemon", "hint: stop gpg's scdaemon with 'gpgconf --kill scdaemon'"} {
		if !strings.Contains(shown, want) {
			t.Errorf("busy error lacks %q: %s", want, shown)
		}
	}
	if len(cards) != 1 || cards[0].Serial != env.Cards[0].Serial() {
		t.Errorf("ListCards with one busy reader listed %+v, want the other card", cards)
	}
	_, err = piv.Open(env.Cards[1].Serial(), piv.Options{Roots: roots})
	if !errors.Is(err, piv.ErrBusy) || !errors.Is(err, hsm.ErrNoDevice) {
		t.Errorf("Open of the held card: %v, want ErrBusy and ErrNoDevice", err)
	}
	_, err = piv.OpenAll(piv.Options{Roots: roots})
	wantIs(t, "OpenAll with a busy reader", err, piv.ErrBusy)
	// An opened device whose reader stays busy says so too, after
	// waiting for it a while (TestBriefHolderWaitedFor).
	_, _, err = d.Retries()
	wantIs(t, "Retries of a held card", err, piv.ErrBusy)
	if !strings.Contains(err.Error(), "tried again for") {
		t.Errorf("Retries of a held card: %v, want it to say how long it was tried", err)
	}

	holder.Close()
	cards, err = piv.ListCards()
	must(t, "ListCards after the holder let go", err)
	if len(cards) != 2 {
		t.Errorf("ListCards after the holder let go: %+v", cards)
	}
	_, _, err = d.Retries()
	must(t, "Retries after the holder let go", err)
}

// TestBriefHolderWaitedFor: another program holds an opened device's
// reader when an operation starts (as OpenSC's tools connect to every
// reader for a moment) and lets go while the operation waits: the
// operation succeeds. The holder lets go only once pcscd has refused the
// device's first try, so the operation did meet a held reader.
func TestBriefHolderWaitedFor(t *testing.T) {
	env, roots := stack(t, 1)
	d := open(t, env, 0, piv.Options{Roots: roots})
	holder, err := gopiv.Open(env.Readers[0])
	must(t, "holding the reader", err)
	defer holder.Close()
	refused := strings.Count(env.PCSCDLog(), "Reader Exclusive")
	done := make(chan error, 1)
	go func() {
		_, _, err := d.Retries()
		done <- err
	}()
	for deadline := time.Now().Add(time.Minute); strings.Count(env.PCSCDLog(), "Reader Exclusive") == refused; time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("Retries returned before pcscd refused it the held reader: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pcscd never refused the device the held reader; its log:\n%s", env.PCSCDLog())
		}
	}
	holder.Close()
	must(t, "Retries of a card held for a moment", <-done)
}

// TestAttestationProfiles generates on each firmware profile and checks the
// attestation's shape as a real YubiKey's (an RSA-2048 f9 certificate
// signed sha256WithRSA with critical CA:TRUE pathlen:0 and the firmware
// extension; from 5.7.4 one more CA between f9 and the root), that the
// backend finds the whole chain, and that openssl, given only the root,
// completes the chain as written to the media (leaf, f9, intermediates).
func TestAttestationProfiles(t *testing.T) {
	ca, err := pivemu.NewCA()
	must(t, "NewCA", err)
	inter, err := ca.Intermediate()
	must(t, "Intermediate", err)
	fws := []pivemu.Version{{Major: 5, Minor: 4, Patch: 3}, {Major: 5, Minor: 7, Patch: 1}, {Major: 5, Minor: 7, Patch: 4}}
	cfgs := make([]pivemu.Config, len(fws))
	for i, fw := range fws {
		cfgs[i] = pivemu.Config{CA: ca, Version: fw}
	}
	env := pcsctest.Start(t, len(cfgs), cfgs...)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	dir := t.TempDir()
	rootPath := filepath.Join(dir, "root.pem")
	must(t, "writing the root", os.WriteFile(rootPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o600))
	bcPathLen0 := []byte{0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00}

	for i, fw := range fws {
		t.Run(fw.String(), func(t *testing.T) {
			d := initialized(t, env, i, piv.Options{Roots: roots, Intermediates: []*x509.Certificate{inter.Cert}})
			_, err := d.GenerateKey(newPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
			must(t, "GenerateKey", err)
			att, err := d.Attest(hsm.SlotSignature)
			must(t, "Attest", err)

			f9 := att.Intermediate
			if _, ok := f9.PublicKey.(*rsa.PublicKey); !ok || f9.PublicKey.(*rsa.PublicKey).N.BitLen() != 2048 {
				t.Errorf("f9 key is %T, want RSA-2048", f9.PublicKey)
			}
			if f9.SignatureAlgorithm != x509.SHA256WithRSA || att.Leaf.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("f9 signed %v, leaf signed %v, want sha256WithRSA", f9.SignatureAlgorithm, att.Leaf.SignatureAlgorithm)
			}
			var bc, firmware bool
			for _, e := range f9.Extensions {
				switch e.Id.String() {
				case "2.5.29.19":
					bc = e.Critical && bytes.Equal(e.Value, bcPathLen0)
				case "1.3.6.1.4.1.41482.3.3":
					firmware = bytes.Equal(e.Value, []byte{byte(fw.Major), byte(fw.Minor), byte(fw.Patch)})
				case "2.5.29.15", "2.5.29.14", "2.5.29.35":
					t.Errorf("f9 has extension %s (key usage or key identifiers), which a YubiKey's lacks", e.Id)
				}
			}
			if !bc || !firmware {
				t.Errorf("f9: critical CA:TRUE pathlen:0 %v, firmware extension %v", bc, firmware)
			}
			wantInter := 0
			if fw == fws[2] {
				wantInter = 1
			}
			if len(att.Intermediates) != wantInter || (wantInter == 1 && !att.Intermediates[0].Equal(inter.Cert)) {
				t.Fatalf("%d intermediates above f9, want %d", len(att.Intermediates), wantInter)
			}
			if _, err := keys.VerifyAttestationChain(att.Leaf, att.Chain(), roots); err != nil {
				t.Fatalf("VerifyAttestationChain: %v", err)
			}
			if wantInter == 1 {
				if _, err := keys.VerifyAttestation(att.Leaf, att.Intermediate, roots); !errors.Is(err, keys.ErrAttestationChain) {
					t.Errorf("5.7.4 chain without its intermediate: %v, want ErrAttestationChain", err)
				}
			}

			// The media's file: leaf, f9, intermediates.
			var media bytes.Buffer
			for _, c := range att.Certificates() {
				must(t, "PEM", pem.Encode(&media, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
			}
			path := filepath.Join(dir, fw.String()+".attestation.pem")
			must(t, "writing the chain", os.WriteFile(path, media.Bytes(), 0o600))
			out, err := exec.Command("openssl", "verify", "-CAfile", rootPath, "-untrusted", path, path).CombinedOutput()
			if err != nil || !strings.Contains(string(out), ": OK") {
				t.Errorf("openssl verify of the media's chain: %v\n%s", err, out)
			}
			// Without the intermediates openssl cannot complete a 5.7.4 chain.
			var short bytes.Buffer
			for _, c := range att.Certificates()[:2] {
				pem.Encode(&short, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
			}
			shortPath := filepath.Join(dir, fw.String()+".short.pem")
			must(t, "writing the short chain", os.WriteFile(shortPath, short.Bytes(), 0o600))
			out, err = exec.Command("openssl", "verify", "-CAfile", rootPath, "-untrusted", shortPath, shortPath).CombinedOutput()
			if (err == nil) != (wantInter == 0) {
				t.Errorf("openssl verify of leaf and f9 alone: %v (want success only before 5.7.4)\n%s", err, out)
			}
		})
	}
}

// TestTouch: a key with touch policy always waits for the touch; a device
// nobody touches is hsm.ErrTouchTimeout, not a PIN error, and spends no
// PIN try.
func TestTouch(t *testing.T) {
	ca, err := pivemu.NewCA()
	must(t, "NewCA", err)
	env := pcsctest.Start(t, 1, pivemu.Config{CA: ca, ManualTouch: true})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	card := env.Cards[0]
	d := initialized(t, env, 0, piv.Options{Roots: roots})
	_, err = d.GenerateKey(newPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256, TouchPolicy: hsm.TouchPolicyAlways})
	must(t, "GenerateKey", err)
	msg := []byte("touched")

	card.SetTouchTimeout(time.Millisecond) // nobody will touch it
	_, err = d.Sign(newPIN, hsm.SlotSignature, msg)
	var ae *hsm.AuthError
	if !errors.Is(err, hsm.ErrTouchTimeout) || errors.As(err, &ae) || errors.Is(err, hsm.ErrBlocked) {
		t.Fatalf("Sign without a touch: %v, want ErrTouchTimeout and no PIN error", err)
	}
	if !strings.Contains(hint.Of(err), "touch the YubiKey") {
		t.Errorf("the error does not say what to do: %v", err)
	}
	<-card.TouchRequests()
	wantRetries(t, d, 3, 3)

	card.SetTouchTimeout(time.Hour) // the test touches it; it never waits that long
	type result struct {
		sig []byte
		err error
	}
	done := make(chan result)
	go func() {
		sig, err := d.Sign(newPIN, hsm.SlotSignature, msg)
		done <- result{sig, err}
	}()
	<-card.TouchRequests()
	card.Touch()
	r := <-done
	must(t, "Sign touched", r.err)
	pub, err := d.PublicKey(hsm.SlotSignature)
	must(t, "PublicKey", err)
	k, err := keys.FromPublicKey(pub)
	must(t, "FromPublicKey", err)
	must(t, "verifying the touched signature", k.Verify(msg, r.sig))
}
