package hsmtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
)

// ErrInjected is the failure a Fake returns when its Faults say so.
var ErrInjected = errors.New("hsmtest: injected device failure")

// Yubico's PIV attestation extensions, as a YubiKey (and so the fake)
// writes them into a slot's attestation certificate.
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
)

// FakeCA is an in-memory attestation root for Fake devices; trust it with
// Pool. It exists only in the test process.
type FakeCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

// NewFakeCA makes a root valid from an hour ago for ten years.
func NewFakeCA() (*FakeCA, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	c, err := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "hsmtest fake attestation root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, k.Public(), k)
	if err != nil {
		return nil, err
	}
	return &FakeCA{key: k, cert: c}, nil
}

// Pool returns a new pool holding the root.
func (c *FakeCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Certificate is the root certificate.
func (c *FakeCA) Certificate() *x509.Certificate { return c.cert }

func issue(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = sn
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Faults make a Fake misbehave, the way a faulty or hostile device (or a
// backend with a bug) would. The zero value is a well-behaved device.
// Set them before the call they affect; they are read under the device's
// lock.
type Faults struct {
	// FailGenerate makes the FailGenerate-th call of GenerateKey
	// (counting from 1, successful or not) fail with ErrInjected.
	FailGenerate int
	// FailSign makes the FailSign-th call of Sign after the faults were
	// set (counting from 1) and every later one fail with ErrInjected: a
	// device that dies after FailSign-1 signatures.
	FailSign int
	// KeepKeyOnFailure makes that failing call store the new key in the
	// slot before it fails, as a device pulled out after generating would.
	KeepKeyOnFailure bool
	// AttestSlot, when set, is the slot the attestation names instead of
	// the slot attested.
	AttestSlot hsm.Slot
	// AttestPINPolicy and AttestTouchPolicy, when set, are the policies
	// the attestation names instead of the key's.
	AttestPINPolicy   hsm.PINPolicy
	AttestTouchPolicy hsm.TouchPolicy
	// AttestOtherKey makes the attestation certify a fresh key that is
	// not the slot's.
	AttestOtherKey bool
	// LeafNotBefore and LeafNotAfter, when set, are the dates of the
	// slot's attestation certificate (otherwise the device certificate's,
	// as on a YubiKey).
	LeafNotBefore, LeafNotAfter time.Time
}

type fakeSlot struct {
	priv crypto.Signer
	opts hsm.KeyOptions
}

// Fake is an in-memory hsm.Device with PIV semantics (the conformance
// suite runs over it), for tests of what a ceremony does when a device
// misbehaves: Faults make it lie in its attestations or fail on a chosen
// call. Its attestations chain to its FakeCA. It is INSECURE (Info says
// so) and exists only in the test process. It implements
// hsm.DeviceCertifier and hsm.KeyClearer, and DeleteKey empties a slot.
type Fake struct {
	mu       sync.Mutex
	info     hsm.Info
	pin, puk string
	pinLeft  int
	pukLeft  int
	slots    map[hsm.Slot]*fakeSlot
	f9Key    *ecdsa.PrivateKey
	f9       *x509.Certificate
	closed   bool
	calls    int // GenerateKey calls so far
	signs    int // Sign calls since the faults were set
	faults   Faults
}

var (
	_ hsm.Device          = (*Fake)(nil)
	_ hsm.DeviceCertifier = (*Fake)(nil)
	_ hsm.KeyClearer      = (*Fake)(nil)
)

// NewDevice makes a factory-fresh Fake (PIN DefaultPIN, PUK DefaultPUK,
// 3 tries each) with firmware 5.7.1, whose device attestation
// certificate the CA issues for the CA's own validity.
func (c *FakeCA) NewDevice(serial uint32) (*Fake, error) {
	return c.NewDeviceValid(serial, c.cert.NotBefore, c.cert.NotAfter)
}

// NewDeviceValid is NewDevice with the device certificate's dates given,
// for a device whose attestation certificate is expired or not yet valid.
func (c *FakeCA) NewDeviceValid(serial uint32, notBefore, notAfter time.Time) (*Fake, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	f9, err := issue(&x509.Certificate{
		Subject:         pkix.Name{CommonName: fmt.Sprintf("hsmtest fake device attestation %d", serial)},
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		ExtraExtensions: []pkix.Extension{{Id: oidFirmware, Value: []byte{5, 7, 1}}},
	}, c.cert, k.Public(), c.key)
	if err != nil {
		return nil, err
	}
	return &Fake{
		info:    hsm.Info{Kind: "fake", Serial: serial, Firmware: "5.7.1", FormFactor: "in memory (INSECURE)", Insecure: true},
		pin:     DefaultPIN,
		puk:     DefaultPUK,
		pinLeft: 3, pukLeft: 3,
		slots: map[hsm.Slot]*fakeSlot{},
		f9Key: k, f9: f9,
	}, nil
}

// SetFaults replaces the device's faults.
func (d *Fake) SetFaults(f Faults) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = f
	d.signs = 0
}

func (d *Fake) lock() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("fake device %d is closed: %w", d.info.Serial, hsm.ErrNoDevice)
	}
	return nil
}

func (d *Fake) Info() hsm.Info { return d.info }

func (d *Fake) Retries() (int, int, error) {
	if err := d.lock(); err != nil {
		return 0, 0, err
	}
	defer d.mu.Unlock()
	return d.pinLeft, d.pukLeft, nil
}

// check spends a try of the PIN or PUK unless secret is right; the
// caller holds the lock.
func (d *Fake) check(what, secret string) error {
	want, left := d.pin, &d.pinLeft
	if what == "PUK" {
		want, left = d.puk, &d.pukLeft
	}
	if *left == 0 {
		return fmt.Errorf("%s: %w", what, hsm.ErrBlocked)
	}
	if secret != want {
		*left--
		return &hsm.AuthError{What: what, Retries: *left}
	}
	*left = 3
	return nil
}

func (d *Fake) VerifyPIN(pin string) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	return d.check("PIN", pin)
}

func (d *Fake) ChangePIN(oldPIN, newPIN string) error {
	if err := hsm.CheckPIN(newPIN); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if err := d.check("PIN", oldPIN); err != nil {
		return err
	}
	d.pin = newPIN
	return nil
}

func (d *Fake) ChangePUK(oldPUK, newPUK string) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if d.pukLeft == 0 {
		return fmt.Errorf("PUK: %w", hsm.ErrBlocked)
	}
	if err := hsm.CheckPIN(newPUK); err != nil {
		return err
	}
	if err := d.check("PUK", oldPUK); err != nil {
		return err
	}
	d.puk = newPUK
	return nil
}

func (d *Fake) Unblock(puk, newPIN string) error {
	if err := hsm.CheckPIN(newPIN); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if err := d.check("PUK", puk); err != nil {
		return err
	}
	d.pin, d.pinLeft = newPIN, 3
	return nil
}

func (d *Fake) GenerateKey(pin string, slot hsm.Slot, opts hsm.KeyOptions) (crypto.PublicKey, error) {
	if !slot.Valid() {
		return nil, fmt.Errorf("slot %s: %w", slot, hsm.ErrBadSlot)
	}
	if opts.Algorithm != hsm.AlgECCP256 && opts.Algorithm != hsm.AlgEd25519 {
		return nil, fmt.Errorf("algorithm %q: %w", opts.Algorithm, hsm.ErrUnsupported)
	}
	opts = opts.WithDefaults(slot)
	if _, ok := keys.PolicyBytes(string(opts.PINPolicy), string(opts.TouchPolicy)); !ok {
		return nil, fmt.Errorf("PIN policy %q, touch policy %q: %w", opts.PINPolicy, opts.TouchPolicy, hsm.ErrUnsupported)
	}
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	d.calls++
	fail := d.faults.FailGenerate == d.calls
	if fail && !d.faults.KeepKeyOnFailure {
		return nil, fmt.Errorf("generating in slot %s of fake device %d (call %d): %w", slot, d.info.Serial, d.calls, ErrInjected)
	}
	if _, ok := d.slots[slot]; ok {
		return nil, fmt.Errorf("slot %s of fake device %d: %w", slot, d.info.Serial, hsm.ErrSlotOccupied)
	}
	if err := d.check("PIN", pin); err != nil {
		return nil, err
	}
	priv, err := newKey(opts.Algorithm)
	if err != nil {
		return nil, err
	}
	d.slots[slot] = &fakeSlot{priv: priv, opts: opts}
	if fail {
		return nil, fmt.Errorf("after generating in slot %s of fake device %d (call %d): %w", slot, d.info.Serial, d.calls, ErrInjected)
	}
	return priv.Public(), nil
}

func newKey(alg hsm.Algorithm) (crypto.Signer, error) {
	if alg == hsm.AlgEd25519 {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func (d *Fake) slot(slot hsm.Slot) (*fakeSlot, error) {
	if !slot.Valid() {
		return nil, fmt.Errorf("slot %s: %w", slot, hsm.ErrBadSlot)
	}
	s, ok := d.slots[slot]
	if !ok {
		return nil, fmt.Errorf("slot %s of fake device %d: %w", slot, d.info.Serial, hsm.ErrSlotEmpty)
	}
	return s, nil
}

func (d *Fake) PublicKey(slot hsm.Slot) (crypto.PublicKey, error) {
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	s, err := d.slot(slot)
	if err != nil {
		return nil, err
	}
	return s.priv.Public(), nil
}

// DeleteKey empties a slot (what ClearKeyCommand describes).
func (d *Fake) DeleteKey(slot hsm.Slot) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, err := d.slot(slot); err != nil {
		return err
	}
	delete(d.slots, slot)
	return nil
}

// ClearKeyCommand names the way the fake's key is removed.
func (d *Fake) ClearKeyCommand(slot hsm.Slot) string {
	return fmt.Sprintf("hsmtest: (*Fake).DeleteKey(0x%s) on fake device %d", slot, d.info.Serial)
}

// DeviceCertificate returns the device's attestation certificate, which
// the FakeCA signed directly.
func (d *Fake) DeviceCertificate() (*x509.Certificate, []*x509.Certificate, error) {
	if err := d.lock(); err != nil {
		return nil, nil, err
	}
	defer d.mu.Unlock()
	return d.f9, nil, nil
}

// Attest issues a YubiKey-style attestation of the slot's key, signed by
// the device's attestation key, saying what the Faults make it say.
func (d *Fake) Attest(slot hsm.Slot) (*hsm.Attestation, error) {
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	s, err := d.slot(slot)
	if err != nil {
		return nil, err
	}
	f := d.faults
	pub := s.priv.Public()
	if f.AttestOtherKey {
		k, err := newKey(s.opts.Algorithm)
		if err != nil {
			return nil, err
		}
		pub = k.Public()
	}
	named := slot
	if f.AttestSlot != 0 {
		named = f.AttestSlot
	}
	pinPolicy, touchPolicy := s.opts.PINPolicy, s.opts.TouchPolicy
	if f.AttestPINPolicy != "" {
		pinPolicy = f.AttestPINPolicy
	}
	if f.AttestTouchPolicy != "" {
		touchPolicy = f.AttestTouchPolicy
	}
	policy, ok := keys.PolicyBytes(string(pinPolicy), string(touchPolicy))
	if !ok {
		return nil, fmt.Errorf("policies %q, %q: %w", pinPolicy, touchPolicy, hsm.ErrUnsupported)
	}
	serial, err := asn1.Marshal(int64(d.info.Serial))
	if err != nil {
		return nil, err
	}
	nb, na := d.f9.NotBefore, d.f9.NotAfter
	if !f.LeafNotBefore.IsZero() {
		nb = f.LeafNotBefore
	}
	if !f.LeafNotAfter.IsZero() {
		na = f.LeafNotAfter
	}
	leaf, err := issue(&x509.Certificate{
		Subject:   pkix.Name{CommonName: keys.AttestationSubjectPrefix + named.String()},
		NotBefore: nb,
		NotAfter:  na,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: []byte{5, 7, 1}},
			{Id: oidSerial, Value: serial},
			{Id: oidPolicy, Value: policy[:]},
			{Id: oidFormFactor, Value: []byte{0}},
		},
	}, d.f9, pub, d.f9Key)
	if err != nil {
		return nil, fmt.Errorf("issuing the attestation of slot %s: %w", slot, err)
	}
	return &hsm.Attestation{Leaf: leaf, Intermediate: d.f9}, nil
}

func (d *Fake) Sign(pin string, slot hsm.Slot, msg []byte) ([]byte, error) {
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	s, err := d.slot(slot)
	if err != nil {
		return nil, err
	}
	if err := d.check("PIN", pin); err != nil {
		return nil, err
	}
	if d.signs++; d.faults.FailSign > 0 && d.signs >= d.faults.FailSign {
		return nil, fmt.Errorf("signature %d: %w", d.signs, ErrInjected)
	}
	if _, ok := s.priv.(ed25519.PrivateKey); ok {
		return s.priv.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	h := sha256.Sum256(msg)
	return s.priv.Sign(rand.Reader, h[:], crypto.SHA256)
}

func (d *Fake) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}
