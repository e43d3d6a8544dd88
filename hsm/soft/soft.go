package soft

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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
)

// Factory defaults of a new soft device, as on a new YubiKey.
const (
	DefaultPIN = "123456"
	DefaultPUK = "12345678"
)

// Yubico's PIV attestation extensions, which the soft device issues too.
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
)

// Device is an INSECURE software device in a directory. It is safe for
// use by several goroutines; see the package doc for several processes.
type Device struct {
	mu       sync.Mutex
	dir      string
	serial   uint32
	firmware string
	kdf      KDF
	closed   bool
}

var (
	_ hsm.Device          = (*Device)(nil)
	_ hsm.DeviceCertifier = (*Device)(nil)
	_ hsm.KeyClearer      = (*Device)(nil)
)

// CreateOptions are the choices made when a device is created.
type CreateOptions struct {
	// KDF is the scrypt cost of the device's secrets, recorded in its
	// state and used for every later encryption; empty means KDFStandard.
	// KDFTest is for test suites only.
	KDF KDF
}

// Create makes a factory-fresh soft device with the given serial in dir,
// which must be empty or not exist yet. Its attestation key is certified
// by ca.
func Create(dir string, serial uint32, ca *CA, opts CreateOptions) (_ *Device, err error) {
	kdf := opts.KDF
	if kdf == "" {
		kdf = KDFStandard
	}
	if _, err := ParseKDF(string(kdf)); err != nil {
		return nil, fmt.Errorf("creating soft device: %w", err)
	}
	if ca == nil {
		return nil, errors.New("creating soft device: no attestation CA")
	}
	if serial == 0 {
		return nil, errors.New("creating soft device: serial 0")
	}
	if err := prepareEmptyDir(dir); err != nil {
		return nil, fmt.Errorf("creating soft device: %w", err)
	}
	// Leave the directory empty again if anything below fails.
	defer func() {
		if err != nil {
			removeCreated(dir)
		}
	}()
	devKey := make([]byte, 32)
	if _, err := rand.Read(devKey); err != nil {
		return nil, err
	}
	defer clear(devKey)
	pinWrapped, err := encrypt(devKey, []byte(DefaultPIN), kdf)
	if err != nil {
		return nil, err
	}
	pukWrapped, err := encrypt(devKey, []byte(DefaultPUK), kdf)
	if err != nil {
		return nil, err
	}
	attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	attCert, err := ca.issueDeviceCert(attKey.Public(), serial)
	if err != nil {
		return nil, err
	}
	attEnc, err := encryptPrivate(attKey, []byte(AttestationPassphrase), publicKDF)
	if err != nil {
		return nil, err
	}
	s := &state{
		Warning:    Warning,
		Format:     stateFormat,
		Version:    stateVersion,
		Serial:     serial,
		Firmware:   firmware,
		KDF:        kdf,
		PINRetries: maxTries,
		PUKRetries: maxTries,
		PINWrapped: pinWrapped,
		PUKWrapped: pukWrapped,
		Attest:     attestState{Certificate: certPEM(attCert), Key: attEnc},
		Slots:      map[string]*slotState{},
	}
	if err := writeJSON(dir, stateFile, s); err != nil {
		return nil, fmt.Errorf("creating soft device: %w", err)
	}
	return &Device{dir: dir, serial: serial, firmware: firmware, kdf: kdf}, nil
}

// Open opens the soft device in dir. A directory without a device is
// hsm.ErrNoDevice.
func Open(dir string) (*Device, error) {
	d := &Device{dir: dir}
	s, err := d.read()
	if err != nil {
		return nil, err
	}
	d.serial, d.firmware, d.kdf = s.Serial, s.Firmware, s.KDF
	return d, nil
}

// Dir returns the directory the device lives in.
func (d *Device) Dir() string { return d.dir }

func (d *Device) read() (*state, error) {
	path := filepath.Join(d.dir, stateFile)
	b, err := readLimited(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no soft device in %s: %w", d.dir, hsm.ErrNoDevice)
	}
	if err != nil {
		return nil, fmt.Errorf("reading soft device: %w", err)
	}
	s, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("reading soft device %s: %w", path, err)
	}
	if d.serial != 0 && s.Serial != d.serial {
		return nil, fmt.Errorf("soft device in %s changed serial from %d to %d: %w", d.dir, d.serial, s.Serial, hsm.ErrNoDevice)
	}
	if d.kdf != "" && s.KDF != d.kdf {
		return nil, fmt.Errorf("soft device in %s changed kdf cost from %s to %s: %w", d.dir, d.kdf, s.KDF, ErrBadState)
	}
	return s, nil
}

func (d *Device) write(s *state) error {
	if err := writeJSON(d.dir, stateFile, s); err != nil {
		return fmt.Errorf("writing soft device state: %w", err)
	}
	return nil
}

// begin locks the device and reads its state; the caller unlocks.
func (d *Device) begin() (*state, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("soft device %d is closed: %w", d.serial, hsm.ErrNoDevice)
	}
	s, err := d.read()
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	return s, nil
}

// Info identifies the device; it always says the device is insecure, and
// the form factor names a cost other than KDFStandard.
func (d *Device) Info() hsm.Info {
	ff := "soft (INSECURE)"
	if d.kdf != KDFStandard {
		ff = fmt.Sprintf("soft (INSECURE, kdf cost %s)", d.kdf)
	}
	return hsm.Info{Kind: "soft", Serial: d.serial, Firmware: d.firmware, FormFactor: ff, Insecure: true}
}

// KDF returns the scrypt cost recorded when the device was created.
func (d *Device) KDF() KDF { return d.kdf }

// Retries returns the PIN and PUK tries left.
func (d *Device) Retries() (pin, puk int, err error) {
	s, err := d.begin()
	if err != nil {
		return 0, 0, err
	}
	defer d.mu.Unlock()
	return s.PINRetries, s.PUKRetries, nil
}

// unwrap checks a PIN or PUK against its wrapped device key, spending a
// try (and saving the state) if it is wrong, and returns the device key.
// On success the tries are restored in s, which the caller saves.
func (d *Device) unwrap(s *state, what, secret string) ([]byte, error) {
	tries, wrapped := &s.PINRetries, s.PINWrapped
	if what == "PUK" {
		tries, wrapped = &s.PUKRetries, s.PUKWrapped
	}
	if len(secret) == 0 || len(secret) > 8 {
		// Like piv-go, refuse a PIN no card would accept before sending it.
		return nil, fmt.Errorf("%s of %d characters: %w", what, len(secret), hsm.ErrWeakPIN)
	}
	if *tries == 0 {
		return nil, fmt.Errorf("%s: %w", what, hsm.ErrBlocked)
	}
	key, err := decrypt(wrapped, []byte(secret), s.KDF)
	if errors.Is(err, errWrongSecret) {
		*tries--
		if err := d.write(s); err != nil {
			return nil, err
		}
		return nil, &hsm.AuthError{What: what, Retries: *tries}
	}
	if err != nil {
		return nil, fmt.Errorf("soft device %d: %w", s.Serial, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("soft device %d: device key of %d bytes: %w", s.Serial, len(key), ErrBadState)
	}
	*tries = maxTries
	return key, nil
}

// VerifyPIN checks the PIN, spending a try if it is wrong.
func (d *Device) VerifyPIN(pin string) error {
	s, err := d.begin()
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	before := s.PINRetries
	key, err := d.unwrap(s, "PIN", pin)
	if err != nil {
		return err
	}
	clear(key)
	if before != s.PINRetries {
		return d.write(s)
	}
	return nil
}

// ChangePIN sets a new PIN after checking the old one.
func (d *Device) ChangePIN(oldPIN, newPIN string) error {
	return d.rewrap("PIN", oldPIN, "PIN", newPIN)
}

// ChangePUK sets a new PUK after checking the old one.
func (d *Device) ChangePUK(oldPUK, newPUK string) error {
	return d.rewrap("PUK", oldPUK, "PUK", newPUK)
}

// Unblock sets a new PIN, and restores its tries, after checking the PUK.
func (d *Device) Unblock(puk, newPIN string) error {
	return d.rewrap("PUK", puk, "PIN", newPIN)
}

// rewrap checks the secret of kind what and wraps the device key under
// newSecret as the secret of kind target.
func (d *Device) rewrap(what, secret, target, newSecret string) error {
	if err := hsm.CheckPIN(newSecret); err != nil {
		return fmt.Errorf("new %s: %w", target, err)
	}
	s, err := d.begin()
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	key, err := d.unwrap(s, what, secret)
	if err != nil {
		return err
	}
	defer clear(key)
	wrapped, err := encrypt(key, []byte(newSecret), s.KDF)
	if err != nil {
		return err
	}
	if target == "PIN" {
		s.PINWrapped, s.PINRetries = wrapped, maxTries
	} else {
		s.PUKWrapped, s.PUKRetries = wrapped, maxTries
	}
	return d.write(s)
}

// GenerateKey makes a key in an empty slot after checking the PIN. An
// empty PIN policy means "always" for slot 9c and "once" elsewhere, an
// empty touch policy "never", as on a YubiKey. The soft device records the
// touch policy and attests it but has nothing to touch.
func (d *Device) GenerateKey(pin string, slot hsm.Slot, opts hsm.KeyOptions) (crypto.PublicKey, error) {
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
	s, err := d.begin()
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if _, ok := s.Slots[slot.String()]; ok {
		return nil, fmt.Errorf("slot %s of soft device %d: %w", slot, s.Serial, hsm.ErrSlotOccupied)
	}
	devKey, err := d.unwrap(s, "PIN", pin)
	if err != nil {
		return nil, err
	}
	defer clear(devKey)
	var priv crypto.Signer
	if opts.Algorithm == hsm.AlgEd25519 {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	pubPEM, err := publicPEM(priv.Public())
	if err != nil {
		return nil, err
	}
	enc, err := encryptPrivate(priv, devKey, s.KDF)
	if err != nil {
		return nil, err
	}
	s.Slots[slot.String()] = &slotState{
		Algorithm:   opts.Algorithm,
		PINPolicy:   opts.PINPolicy,
		TouchPolicy: opts.TouchPolicy,
		PublicKey:   pubPEM,
		PrivateKey:  enc,
	}
	if err := d.write(s); err != nil {
		return nil, err
	}
	return priv.Public(), nil
}

func (d *Device) slot(s *state, slot hsm.Slot) (*slotState, error) {
	if !slot.Valid() {
		return nil, fmt.Errorf("slot %s: %w", slot, hsm.ErrBadSlot)
	}
	sl, ok := s.Slots[slot.String()]
	if !ok {
		return nil, fmt.Errorf("slot %s of soft device %d: %w", slot, s.Serial, hsm.ErrSlotEmpty)
	}
	return sl, nil
}

// PublicKey returns the key in a slot; hsm.ErrSlotEmpty if there is none.
func (d *Device) PublicKey(slot hsm.Slot) (crypto.PublicKey, error) {
	s, err := d.begin()
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	sl, err := d.slot(s, slot)
	if err != nil {
		return nil, err
	}
	return parsePublicPEM(sl.PublicKey)
}

// Attest returns a YubiKey-style attestation of the key in slot, signed by
// the device's attestation key, whose certificate the soft CA signed.
func (d *Device) Attest(slot hsm.Slot) (*hsm.Attestation, error) {
	s, err := d.begin()
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	sl, err := d.slot(s, slot)
	if err != nil {
		return nil, err
	}
	pub, err := parsePublicPEM(sl.PublicKey)
	if err != nil {
		return nil, err
	}
	devCert, err := parseCertPEM(s.Attest.Certificate)
	if err != nil {
		return nil, err
	}
	attKey, err := decryptPrivate(s.Attest.Key, []byte(AttestationPassphrase), "")
	if err != nil {
		return nil, fmt.Errorf("soft device %d attestation key: %w", s.Serial, err)
	}
	if !samePublic(attKey.Public(), devCert.PublicKey) {
		return nil, fmt.Errorf("soft device %d attestation key does not match its certificate: %w", s.Serial, ErrBadState)
	}
	fw, err := parseFirmware(s.Firmware)
	if err != nil {
		return nil, err
	}
	serial, err := asn1.Marshal(int64(s.Serial))
	if err != nil {
		return nil, err
	}
	policy, _ := keys.PolicyBytes(string(sl.PINPolicy), string(sl.TouchPolicy))
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: keys.AttestationSubjectPrefix + slot.String()},
		// Like a YubiKey, the dates are copied from the device certificate.
		NotBefore: devCert.NotBefore,
		NotAfter:  devCert.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: fw},
			{Id: oidSerial, Value: serial},
			{Id: oidPolicy, Value: policy[:]},
			{Id: oidFormFactor, Value: []byte{formOther}},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, devCert, pub, attKey)
	if err != nil {
		return nil, fmt.Errorf("issuing attestation for slot %s: %w", slot, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &hsm.Attestation{Leaf: leaf, Intermediate: devCert}, nil
}

// DeviceCertificate returns the device's attestation certificate (its
// "f9"), which the soft CA signed directly: what a ceremony checks against
// its roots before the first key is generated.
func (d *Device) DeviceCertificate() (*x509.Certificate, []*x509.Certificate, error) {
	s, err := d.begin()
	if err != nil {
		return nil, nil, err
	}
	defer d.mu.Unlock()
	c, err := parseCertPEM(s.Attest.Certificate)
	if err != nil {
		return nil, nil, err
	}
	return c, nil, nil
}

// DeleteKey removes the key in slot after checking the PIN, so that a
// rehearsal that failed after generating keys can use the device again;
// an empty slot is hsm.ErrSlotEmpty.
func (d *Device) DeleteKey(pin string, slot hsm.Slot) error {
	s, err := d.begin()
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, err := d.slot(s, slot); err != nil {
		return err
	}
	devKey, err := d.unwrap(s, "PIN", pin)
	if err != nil {
		return err
	}
	clear(devKey)
	delete(s.Slots, slot.String())
	return d.write(s)
}

// ClearKeyCommand is the command that removes the key in slot.
func (d *Device) ClearKeyCommand(slot hsm.Slot) string {
	return fmt.Sprintf("keyceremony soft delete-key --dir %s --slot %s", d.dir, slot)
}

// Sign signs msg with the key in slot after checking the PIN: DER ECDSA
// over SHA-256 of msg for P-256 keys, Ed25519 over msg for ed25519 keys.
func (d *Device) Sign(pin string, slot hsm.Slot, msg []byte) ([]byte, error) {
	s, err := d.begin()
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	sl, err := d.slot(s, slot)
	if err != nil {
		return nil, err
	}
	before := s.PINRetries
	devKey, err := d.unwrap(s, "PIN", pin)
	if err != nil {
		return nil, err
	}
	defer clear(devKey)
	if before != s.PINRetries {
		if err := d.write(s); err != nil {
			return nil, err
		}
	}
	priv, err := decryptPrivate(sl.PrivateKey, devKey, s.KDF)
	if err != nil {
		return nil, fmt.Errorf("slot %s of soft device %d: %w", slot, s.Serial, err)
	}
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		defer clear(p)
		return ed25519.Sign(p, msg), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, p, h[:])
	default:
		return nil, fmt.Errorf("slot %s holds a %T: %w", slot, priv, ErrBadState)
	}
}

// Close releases the device; every later call fails with hsm.ErrNoDevice.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// parseFirmware turns "5.7.4" into the 3 bytes of the firmware extension.
func parseFirmware(v string) ([]byte, error) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("firmware %q: %w", v, ErrBadState)
	}
	b := make([]byte, 3)
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil || strconv.FormatUint(n, 10) != p {
			return nil, fmt.Errorf("firmware %q: %w", v, ErrBadState)
		}
		b[i] = byte(n)
	}
	return b, nil
}

func firmwareBytes() []byte {
	b, err := parseFirmware(firmware)
	if err != nil {
		panic("soft: built-in firmware version does not parse")
	}
	return b
}
