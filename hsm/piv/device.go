//go:build cgo && (linux || darwin)

package piv

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
)

// Device is one YubiKey, found by its serial number. Every method opens
// the card, checks its serial, does its work and closes it again, so that
// a card pulled out and put back (in any reader) keeps working, and a
// different card in the reader is refused. Methods are safe for
// concurrent use; they run one at a time.
type Device struct {
	mu      sync.Mutex
	reader  string
	info    hsm.Info
	version piv.Version
	opts    Options
	closed  bool
}

var (
	_ hsm.Device          = (*Device)(nil)
	_ hsm.DeviceCertifier = (*Device)(nil)
	_ hsm.KeyClearer      = (*Device)(nil)
)

// ReplacesKeys reports whether the device was opened with
// Options.DestroyExistingKeysIReallyMeanIt (hsm.KeyReplacer).
func (d *Device) ReplacesKeys() bool { return d.opts.DestroyExistingKeysIReallyMeanIt }

// formFactors names READ CONFIG's form factor byte as keys.Attested does.
var formFactors = map[piv.Formfactor]string{
	0x00: "unspecified",
	0x01: "USB-A keychain", 0x02: "USB-A nano", 0x03: "USB-C keychain", 0x04: "USB-C nano", 0x05: "USB-C/Lightning keychain",
	0x81: "USB-A keychain FIPS", 0x82: "USB-A nano FIPS", 0x83: "USB-C keychain FIPS", 0x84: "USB-C nano FIPS", 0x85: "USB-C/Lightning keychain FIPS",
}

// probe identifies the card in reader with this package's own PC/SC
// client (never piv.Open, which would keep a card that is not a YubiKey
// locked: see identify).
func probe(reader string, formFactor bool) (Card, error) {
	c, err := openRaw(reader)
	if err != nil {
		return Card{}, err
	}
	defer c.close()
	id, err := c.identify(formFactor)
	if err != nil {
		return Card{}, fmt.Errorf("card in reader %q: %w", reader, err)
	}
	ff := "unknown"
	if id.hasFF {
		if s, ok := formFactors[piv.Formfactor(id.formFactor)]; ok {
			ff = s
		} else {
			ff = fmt.Sprintf("unknown (0x%02x)", id.formFactor)
		}
	}
	return Card{
		Info: hsm.Info{
			Kind:       Kind,
			Serial:     id.serial,
			Firmware:   fmt.Sprintf("%d.%d.%d", id.version[0], id.version[1], id.version[2]),
			FormFactor: ff,
		},
		Reader: reader,
	}, nil
}

// ListCards lists the YubiKeys (PIV cards) in every reader, sorted by
// serial. Readers without a card, or with a card that is not a PIV
// device, are left out. A reader whose card another program holds
// exclusively is not left out silently: the cards that could be read are
// returned with a *BusyError (ErrBusy) naming the busy readers.
func ListCards() ([]Card, error) {
	readers, err := piv.Cards()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoPCSC, err)
	}
	var cards []Card
	var busy []string
	for _, r := range readers {
		c, err := probe(r, true)
		if errors.Is(err, ErrBusy) {
			busy = append(busy, r)
			continue
		}
		if err != nil {
			continue
		}
		cards = append(cards, c)
	}
	sort.Slice(cards, func(i, j int) bool { return cards[i].Serial < cards[j].Serial })
	if len(busy) > 0 {
		return cards, &BusyError{Readers: busy}
	}
	return cards, nil
}

// List lists the YubiKeys present, sorted by serial.
// A busy reader is a *BusyError, returned with the devices that could be
// read.
func List() ([]hsm.Info, error) {
	cards, err := ListCards()
	infos := make([]hsm.Info, len(cards))
	for i, c := range cards {
		infos[i] = c.Info
	}
	return infos, err
}

// Open opens the YubiKey with the given serial number, in whichever reader
// it is. A serial that no reader holds is hsm.ErrNoDevice; if a reader is
// busy, the error is also that reader's *BusyError (it may hold the
// device).
func Open(serial uint32, opts Options) (*Device, error) {
	cards, err := ListCards()
	var busy *BusyError
	if err != nil && !errors.As(err, &busy) {
		return nil, err
	}
	for _, c := range cards {
		if c.Serial == serial {
			return newDevice(c, opts)
		}
	}
	if busy != nil {
		return nil, fmt.Errorf("yubikey %d is not in any reader that can be read: %w: %w", serial, busy, hsm.ErrNoDevice)
	}
	e := &AbsentError{Serial: serial}
	for _, c := range cards {
		e.Present = append(e.Present, c.Serial)
	}
	return nil, e
}

// OpenAll opens every YubiKey present, sorted by serial. A busy reader is
// an error (*BusyError): a ceremony must see every device.
func OpenAll(opts Options) ([]*Device, error) {
	cards, err := ListCards()
	if err != nil {
		return nil, err
	}
	var ds []*Device
	for _, c := range cards {
		d, err := newDevice(c, opts)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func newDevice(c Card, opts Options) (*Device, error) {
	if opts.Roots == nil {
		opts.Roots = keys.YubicoRoots()
	}
	v, ok := parseVersion(c.Firmware)
	if !ok {
		return nil, fmt.Errorf("yubikey %d reports firmware %q: %w", c.Serial, c.Firmware, hsm.ErrUnsupported)
	}
	return &Device{reader: c.Reader, info: c.Info, version: piv.Version{Major: v[0], Minor: v[1], Patch: v[2]}, opts: opts}, nil
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// Info identifies the device.
func (d *Device) Info() hsm.Info { return d.info }

// Reader is the PC/SC reader in which the device was last seen.
func (d *Device) Reader() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reader
}

func (d *Device) atLeast(major, minor, patch int) bool {
	v := d.version
	return !less([3]int{v.Major, v.Minor, v.Patch}, [3]int{major, minor, patch})
}

func (d *Device) versionArray() [3]int {
	return [3]int{d.version.Major, d.version.Minor, d.version.Patch}
}

func (d *Device) name() string { return fmt.Sprintf("yubikey %d", d.info.Serial) }

// Close forgets the device; later calls fail with ErrClosed. The card
// connection is already closed after every operation.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// find returns the reader that holds the device: its last reader if the
// device is still there, else whichever reader holds it now. A different
// card in its reader is a *WrongDeviceError.
func (d *Device) find() (string, error) {
	c, err := probe(d.reader, false)
	if err == nil && c.Serial == d.info.Serial {
		return d.reader, nil
	}
	firstErr := err
	readers, _ := piv.Cards()
	for _, r := range readers {
		if r == d.reader {
			continue
		}
		if o, err := probe(r, false); err == nil && o.Serial == d.info.Serial {
			d.reader = r
			return r, nil
		}
	}
	if firstErr == nil {
		return "", &WrongDeviceError{Reader: d.reader, Want: d.info.Serial, Got: c.Serial}
	}
	if errors.Is(firstErr, ErrBusy) {
		return "", fmt.Errorf("%s: %w", d.name(), &BusyError{Readers: []string{d.reader}})
	}
	return "", fmt.Errorf("%s is not in reader %q nor in any other (%w): %w", d.name(), d.reader, firstErr, hsm.ErrNoDevice)
}

// busyWait bounds how long an operation on an opened device waits while
// another program holds its reader. PC/SC clients connect to a reader for
// a moment (OpenSC's tools and PKCS#11 module read every reader's
// features; each connection refused piv-go's exclusive one about once in
// thirty opens while opensc-tool -l ran in a loop), and a device's
// operation that fell in that moment would fail, or, for a stable
// signing's slot scan, lose the key. A holder that stays (gpg's scdaemon)
// is still a *BusyError, after busyWait; the error says how long it was
// tried.
const busyWait = 2 * time.Second

// busyRetry is the pause between two tries while a reader is held.
const busyRetry = 20 * time.Millisecond

// waitIdle runs open until it succeeds, fails for another reason than
// contention for the reader (busy is false), or busyWait has passed.
func waitIdle[T any](open func() (v T, busy bool, err error)) (T, error) {
	deadline := time.Now().Add(busyWait)
	for {
		v, busy, err := open()
		if err == nil || !busy {
			return v, err
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("%w (tried again for %v)", err, busyWait)
		}
		time.Sleep(busyRetry)
	}
}

// connect opens the device with piv-go, after find has checked that the
// reader holds it, waiting (up to busyWait) while another program holds
// the reader.
func (d *Device) connect() (*piv.YubiKey, error) {
	return waitIdle(d.connectOnce)
}

// connectOnce is one try of connect. busy is set when another program
// holds the reader: find says so, or piv-go's exclusive open fails just
// after find has read the card in that reader through a shared
// connection (piv-go's error does not say why; another connection in
// between is what makes it fail there, and a card pulled out meanwhile
// shows as such on the next try's find).
func (d *Device) connectOnce() (*piv.YubiKey, bool, error) {
	r, err := d.find()
	if err != nil {
		return nil, errors.Is(err, ErrBusy), err
	}
	yk, err := piv.Open(r)
	if err != nil {
		return nil, true, fmt.Errorf("opening %s in reader %q: %w: %w", d.name(), r, err, hsm.ErrNoDevice)
	}
	s, err := yk.Serial()
	if err != nil || s != d.info.Serial {
		yk.Close()
		if err != nil {
			return nil, false, fmt.Errorf("opening %s in reader %q: %w: %w", d.name(), r, err, hsm.ErrNoDevice)
		}
		return nil, false, &WrongDeviceError{Reader: r, Want: d.info.Serial, Got: s}
	}
	return yk, false, nil
}

// connectRaw opens the device with this package's own PC/SC client, for
// GET METADATA, waiting (up to busyWait) while another program holds the
// reader.
func (d *Device) connectRaw() (*rawCard, error) {
	return waitIdle(d.connectRawOnce)
}

func (d *Device) connectRawOnce() (*rawCard, bool, error) {
	r, err := d.find()
	if err != nil {
		return nil, errors.Is(err, ErrBusy), err
	}
	c, err := openRaw(r)
	if err != nil {
		return nil, errors.Is(err, ErrBusy), fmt.Errorf("%s in reader %q: %w", d.name(), r, err)
	}
	id, err := c.identify(false)
	if err != nil || id.serial != d.info.Serial {
		c.close()
		if err != nil {
			return nil, false, fmt.Errorf("%s in reader %q: %w: %w", d.name(), r, err, hsm.ErrNoDevice)
		}
		return nil, false, &WrongDeviceError{Reader: r, Want: d.info.Serial, Got: id.serial}
	}
	return c, false, nil // identify left the PIV application selected
}

// present reports whether the device answers in its reader.
func (d *Device) present() bool {
	c, err := probe(d.reader, false)
	return err == nil && c.Serial == d.info.Serial
}

// statusError is piv-go's error for a status word from the card.
type statusError interface{ Status() uint16 }

// do runs f with the card open. An error that is not the card's answer
// (a transport error) is checked against the card's presence: a card that
// is gone is hsm.ErrNoDevice.
func (d *Device) do(op string, f func(yk *piv.YubiKey) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: %s: %w", op, d.name(), ErrClosed)
	}
	yk, err := d.connect()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	err = f(yk)
	yk.Close()
	if err == nil {
		return nil
	}
	var st statusError
	var ae *hsm.AuthError
	if errors.As(err, &st) || errors.As(err, &ae) || errors.Is(err, hsm.ErrNoDevice) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !d.present() {
		return fmt.Errorf("%s: %s left reader %q during the operation (%w): %w", op, d.name(), d.reader, err, hsm.ErrNoDevice)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// raw runs f with this package's own connection to the card.
func (d *Device) raw(op string, f func(c *rawCard) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: %s: %w", op, d.name(), ErrClosed)
	}
	c, err := d.connectRaw()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer c.close()
	if err := f(c); err != nil {
		return fmt.Errorf("%s: %s: %w", op, d.name(), err)
	}
	return nil
}

// authErr turns piv-go's answer to a wrong or blocked PIN or PUK into the
// errors of package hsm.
func (d *Device) authErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var st statusError
	if errors.As(err, &st) && st.Status() == 0x6983 {
		return fmt.Errorf("%s of %s: %w", what, d.name(), hsm.ErrBlocked)
	}
	var ae piv.AuthErr
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", d.name(), &hsm.AuthError{What: what, Retries: ae.Retries})
	}
	return err
}

// checkSecret refuses a PIN or PUK that no card would accept before it is
// sent.
func checkSecret(what, s string) error {
	if len(s) == 0 || len(s) > 8 {
		return fmt.Errorf("%s of %d characters: %w", what, len(s), hsm.ErrWeakPIN)
	}
	return nil
}

// Retries returns the PIN and PUK tries left. Firmware before 5.3 cannot
// tell the PUK's without spending one: puk is then -1.
func (d *Device) Retries() (pin, puk int, err error) {
	if !d.atLeast(5, 3, 0) {
		err = d.do("reading PIN tries", func(yk *piv.YubiKey) error {
			pin, err = yk.Retries()
			return err
		})
		return pin, -1, err
	}
	err = d.raw("reading PIN and PUK tries", func(c *rawCard) error {
		for _, ref := range []struct {
			ref byte
			n   *int
		}{{0x80, &pin}, {0x81, &puk}} {
			m, err := c.metadata(ref.ref)
			if err != nil {
				return err
			}
			if !m.HasTries {
				return fmt.Errorf("metadata %02x without tries: %w", ref.ref, errBadMetadata)
			}
			*ref.n = m.TriesLeft
		}
		return nil
	})
	return pin, puk, err
}

// Defaults reports which secrets are still the factory default. From
// firmware 5.3 the card says so (GET METADATA). Before 5.3 the defaults
// are tried, in an order that spends no try on a device that has been set
// up by this package: the management key first (which has no tries), then
// the PIN, then the PUK; a wrong default PIN or PUK spends one try.
func (d *Device) Defaults() (Defaults, error) {
	var def Defaults
	if d.atLeast(5, 3, 0) {
		err := d.raw("reading metadata", func(c *rawCard) error {
			for _, ref := range []struct {
				ref byte
				b   *bool
			}{{0x80, &def.PIN}, {0x81, &def.PUK}, {0x9b, &def.ManagementKey}} {
				m, err := c.metadata(ref.ref)
				if err != nil {
					return err
				}
				if !m.HasDefault {
					return fmt.Errorf("metadata %02x without default flag: %w", ref.ref, errBadMetadata)
				}
				*ref.b = m.Default
			}
			return nil
		})
		return def, err
	}
	err := d.do("trying factory defaults", func(yk *piv.YubiKey) error {
		// Setting the default management key to itself changes nothing.
		err := yk.SetManagementKey(piv.DefaultManagementKey, piv.DefaultManagementKey)
		if err != nil {
			var st statusError
			if !errors.As(err, &st) {
				return err
			}
			return nil
		}
		def.ManagementKey = true
		if err := yk.VerifyPIN(DefaultPIN); err != nil {
			var ae piv.AuthErr
			if !errors.As(err, &ae) {
				return err
			}
			return nil
		}
		def.PIN = true
		if err := yk.SetPUK(DefaultPUK, DefaultPUK); err != nil {
			var ae piv.AuthErr
			if !errors.As(err, &ae) {
				return err
			}
			return nil
		}
		def.PUK = true
		return nil
	})
	return def, err
}

// CheckFactoryFresh returns nil if the device's PIN, PUK and management
// key are all the factory defaults, and ErrAlreadyInitialized (saying
// which are not) otherwise. Call it before asking for new PINs, so that
// nobody chooses a PIN for a device Initialize will refuse.
func (d *Device) CheckFactoryFresh() error {
	def, err := d.Defaults()
	if err != nil {
		return fmt.Errorf("%s: %w", d.name(), err)
	}
	if !def.All() {
		return fmt.Errorf("%s: PIN default %v, PUK default %v, management key default %v: %w",
			d.name(), def.PIN, def.PUK, def.ManagementKey, ErrAlreadyInitialized)
	}
	return nil
}

// Initialize prepares a factory-fresh device for ceremonies: it stores a
// new random management key (AES-192, or 3DES before firmware 5.4)
// PIN-protected on the device, sets it, and sets the new PIN and PUK. It
// refuses a device whose PIN, PUK or management key is not the factory
// default (ErrAlreadyInitialized), and factory defaults or weak values as
// the new PIN or PUK. Call CheckFactoryFresh, then ask for newPIN and
// newPUK twice, then call Initialize.
//
// If it is interrupted after the management key is set, the device is
// neither fresh nor prepared: reset its PIV application (ykman piv reset)
// and start again.
func (d *Device) Initialize(newPIN, newPUK string) error {
	if err := hsm.CheckPIN(newPIN); err != nil {
		return fmt.Errorf("new PIN: %w", err)
	}
	if err := hsm.CheckPIN(newPUK); err != nil {
		return fmt.Errorf("new PUK: %w", err)
	}
	if newPIN == DefaultPIN || newPUK == DefaultPUK {
		return fmt.Errorf("the new PIN or PUK is the factory default: %w", hsm.ErrDefaultSecret)
	}
	if newPIN == newPUK {
		return fmt.Errorf("the new PUK must differ from the new PIN: %w", hsm.ErrWeakPIN)
	}
	if err := d.CheckFactoryFresh(); err != nil {
		return fmt.Errorf("initializing: %w", err)
	}
	mk := make([]byte, 24) // AES-192 from firmware 5.4, 3DES before (piv-go picks by version)
	if _, err := rand.Read(mk); err != nil {
		return fmt.Errorf("making a management key: %w", err)
	}
	defer clear(mk)
	// The admin data says, as ykman's own PIN-protected setup does, that
	// the management key is kept in the PIN-protected object, so that
	// ykman and yubico-piv-tool manage the device with the PIN alone.
	err := d.raw("writing the admin data", func(c *rawCard) error {
		if err := c.authenticate(piv.DefaultManagementKey, d.versionArray()); err != nil {
			return err
		}
		return c.putData(objAdminData, adminDataProtected)
	})
	if err != nil {
		return fmt.Errorf("initializing: %w", err)
	}
	err = d.do("initializing", func(yk *piv.YubiKey) error {
		// Store the new key before setting it, so that no interruption can
		// leave a device whose management key nobody knows.
		if err := yk.SetMetadata(piv.DefaultManagementKey, &piv.Metadata{ManagementKey: &mk}); err != nil {
			return fmt.Errorf("storing the PIN-protected management key: %w", err)
		}
		if err := yk.SetManagementKey(piv.DefaultManagementKey, mk); err != nil {
			return fmt.Errorf("setting the management key: %w", err)
		}
		if err := yk.SetPIN(DefaultPIN, newPIN); err != nil {
			return fmt.Errorf("setting the PIN: %w", d.authErr("PIN", err))
		}
		if err := yk.SetPUK(DefaultPUK, newPUK); err != nil {
			return fmt.Errorf("setting the PUK: %w", d.authErr("PUK", err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d.atLeast(5, 3, 0) {
		def, err := d.Defaults()
		if err != nil {
			return fmt.Errorf("checking %s after initializing: %w", d.name(), err)
		}
		if def.Any() {
			return fmt.Errorf("%s still reports a factory default after initializing (%+v): %w", d.name(), def, hsm.ErrDefaultSecret)
		}
	}
	return nil
}

// VerifyPIN checks the PIN, spending a try if it is wrong.
func (d *Device) VerifyPIN(pin string) error {
	if err := checkSecret("PIN", pin); err != nil {
		return err
	}
	return d.do("verifying the PIN", func(yk *piv.YubiKey) error {
		return d.authErr("PIN", yk.VerifyPIN(pin))
	})
}

// refuseDefault refuses a factory default as a new secret outside a
// rehearsal.
func (d *Device) refuseDefault(what, s, def string) error {
	if s == def && !d.opts.Rehearsal {
		return fmt.Errorf("new %s is the factory default: %w", what, hsm.ErrDefaultSecret)
	}
	return nil
}

// ChangePIN sets a new PIN after checking the old one.
func (d *Device) ChangePIN(oldPIN, newPIN string) error {
	if err := hsm.CheckPIN(newPIN); err != nil {
		return fmt.Errorf("new PIN: %w", err)
	}
	if err := checkSecret("PIN", oldPIN); err != nil {
		return err
	}
	if err := d.refuseDefault("PIN", newPIN, DefaultPIN); err != nil {
		return err
	}
	return d.do("changing the PIN", func(yk *piv.YubiKey) error {
		return d.authErr("PIN", yk.SetPIN(oldPIN, newPIN))
	})
}

// ChangePUK sets a new PUK after checking the old one.
func (d *Device) ChangePUK(oldPUK, newPUK string) error {
	if err := hsm.CheckPIN(newPUK); err != nil {
		return fmt.Errorf("new PUK: %w", err)
	}
	if err := checkSecret("PUK", oldPUK); err != nil {
		return err
	}
	if err := d.refuseDefault("PUK", newPUK, DefaultPUK); err != nil {
		return err
	}
	return d.do("changing the PUK", func(yk *piv.YubiKey) error {
		return d.authErr("PUK", yk.SetPUK(oldPUK, newPUK))
	})
}

// Unblock sets a new PIN, and restores its tries, after checking the PUK.
func (d *Device) Unblock(puk, newPIN string) error {
	if err := hsm.CheckPIN(newPIN); err != nil {
		return fmt.Errorf("new PIN: %w", err)
	}
	if err := checkSecret("PUK", puk); err != nil {
		return err
	}
	if err := d.refuseDefault("PIN", newPIN, DefaultPIN); err != nil {
		return err
	}
	return d.do("unblocking the PIN", func(yk *piv.YubiKey) error {
		return d.authErr("PUK", yk.Unblock(puk, newPIN))
	})
}

// pivSlot maps a slot to piv-go's.
func pivSlot(s hsm.Slot) (piv.Slot, error) {
	switch s {
	case hsm.SlotAuthentication:
		return piv.SlotAuthentication, nil
	case hsm.SlotSignature:
		return piv.SlotSignature, nil
	case hsm.SlotKeyManagement:
		return piv.SlotKeyManagement, nil
	case hsm.SlotCardAuth:
		return piv.SlotCardAuthentication, nil
	}
	if ps, ok := piv.RetiredKeyManagementSlot(uint32(s)); ok {
		return ps, nil
	}
	return piv.Slot{}, fmt.Errorf("slot %s: %w", s, hsm.ErrBadSlot)
}

// slotKey reads the public key in a slot: from GET METADATA (firmware 5.3
// and later), else from the slot's certificate. An empty slot is
// hsm.ErrSlotEmpty.
func (d *Device) slotKey(yk *piv.YubiKey, slot hsm.Slot, ps piv.Slot) (crypto.PublicKey, error) {
	if d.atLeast(5, 3, 0) {
		ki, err := yk.KeyInfo(ps)
		if errors.Is(err, piv.ErrNotFound) {
			return nil, fmt.Errorf("slot %s of %s: %w", slot, d.name(), hsm.ErrSlotEmpty)
		}
		if err != nil {
			return nil, fmt.Errorf("reading slot %s metadata: %w", slot, err)
		}
		return ki.PublicKey, nil
	}
	cert, err := yk.Certificate(ps)
	if errors.Is(err, piv.ErrNotFound) {
		return nil, fmt.Errorf("slot %s of %s (no certificate): %w", slot, d.name(), hsm.ErrSlotEmpty)
	}
	if err != nil {
		return nil, fmt.Errorf("reading slot %s certificate: %w", slot, err)
	}
	return cert.PublicKey, nil
}

var pinPolicies = map[hsm.PINPolicy]piv.PINPolicy{
	hsm.PINPolicyNever: piv.PINPolicyNever, hsm.PINPolicyOnce: piv.PINPolicyOnce, hsm.PINPolicyAlways: piv.PINPolicyAlways,
}

var touchPolicies = map[hsm.TouchPolicy]piv.TouchPolicy{
	hsm.TouchPolicyNever: piv.TouchPolicyNever, hsm.TouchPolicyAlways: piv.TouchPolicyAlways, hsm.TouchPolicyCached: piv.TouchPolicyCached,
}

// GenerateKey makes a key in an empty slot, with the PIN and touch policy
// asked for (an empty PIN policy means "always" for slot 9c and "once"
// elsewhere, an empty touch policy "never", as on a YubiKey). It verifies
// the PIN, reads the PIN-protected management key, generates, checks the
// key's attestation against Options.Roots, the device's serial and the
// returned key, and stores the attestation certificate in the slot.
//
// An occupied slot is hsm.ErrSlotOccupied unless
// Options.DestroyExistingKeysIReallyMeanIt. A device still at a factory
// default is hsm.ErrDefaultSecret unless Options.Rehearsal. Ed25519 needs
// firmware 5.7 (hsm.ErrUnsupported before).
func (d *Device) GenerateKey(pin string, slot hsm.Slot, opts hsm.KeyOptions) (crypto.PublicKey, error) {
	ps, err := pivSlot(slot)
	if err != nil {
		return nil, err
	}
	key := piv.Key{}
	switch opts.Algorithm {
	case hsm.AlgECCP256:
		key.Algorithm = piv.AlgorithmEC256
	case hsm.AlgEd25519:
		key.Algorithm = piv.AlgorithmEd25519 // firmware 5.7 and later: checked below
	default:
		return nil, fmt.Errorf("algorithm %q: %w", opts.Algorithm, hsm.ErrUnsupported)
	}
	opts = opts.WithDefaults(slot)
	var ok1, ok2 bool
	key.PINPolicy, ok1 = pinPolicies[opts.PINPolicy]
	key.TouchPolicy, ok2 = touchPolicies[opts.TouchPolicy]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("PIN policy %q, touch policy %q: %w", opts.PINPolicy, opts.TouchPolicy, hsm.ErrUnsupported)
	}
	if err := checkSecret("PIN", pin); err != nil {
		return nil, err
	}
	if !d.opts.Rehearsal {
		if pin == DefaultPIN {
			return nil, fmt.Errorf("%s still has the factory PIN: %w", d.name(), hsm.ErrDefaultSecret)
		}
		if d.atLeast(5, 3, 0) {
			def, err := d.Defaults()
			if err != nil {
				return nil, err
			}
			if def.Any() {
				return nil, fmt.Errorf("%s still has a factory default (PIN %v, PUK %v, management key %v): %w",
					d.name(), def.PIN, def.PUK, def.ManagementKey, hsm.ErrDefaultSecret)
			}
		}
	}
	var pub crypto.PublicKey
	var historyKey []byte // the management key, kept to update the key history
	defer func() { clear(historyKey) }()
	err = d.do(fmt.Sprintf("generating a key in slot %s", slot), func(yk *piv.YubiKey) error {
		if _, err := d.slotKey(yk, slot, ps); err == nil {
			if !d.opts.DestroyExistingKeysIReallyMeanIt {
				return fmt.Errorf("slot %s of %s: %w", slot, d.name(), hsm.ErrSlotOccupied)
			}
		} else if !errors.Is(err, hsm.ErrSlotEmpty) {
			return err
		}
		if key.Algorithm == piv.AlgorithmEd25519 && !d.atLeast(5, 7, 0) {
			return fmt.Errorf("ed25519 on %s (needs firmware 5.7): %w", d.info, hsm.ErrUnsupported)
		}
		m, err := yk.Metadata(pin)
		if err != nil {
			return d.authErr("PIN", err)
		}
		mk := piv.DefaultManagementKey
		if m.ManagementKey != nil {
			mk = *m.ManagementKey
			defer clear(mk)
		}
		if !d.opts.Rehearsal && bytes.Equal(mk, piv.DefaultManagementKey) {
			return fmt.Errorf("%s has no PIN-protected management key, or the factory one: %w", d.name(), hsm.ErrDefaultSecret)
		}
		pub, err = yk.GenerateKey(mk, ps, key)
		if err != nil {
			return fmt.Errorf("generating: %w", err)
		}
		att, err := d.attest(yk, slot, ps)
		if err != nil {
			return err
		}
		a, err := keys.VerifyAttestationChain(att.Leaf, att.Chain(), d.opts.Roots)
		if err != nil {
			return fmt.Errorf("attestation of the new key: %w", err)
		}
		k, err := keys.FromPublicKey(pub)
		if err != nil {
			return fmt.Errorf("the new key: %w", err)
		}
		if err := keys.CheckAttested(a, d.info.Serial, k); err != nil {
			return fmt.Errorf("attestation of the new key: %w", err)
		}
		if a.Slot != slot.String() || a.PINPolicy != string(opts.PINPolicy) || a.TouchPolicy != string(opts.TouchPolicy) {
			return fmt.Errorf("attestation says slot %s with PIN policy %s and touch policy %s, want %s, %s, %s: %w",
				a.Slot, a.PINPolicy, a.TouchPolicy, slot, opts.PINPolicy, opts.TouchPolicy, keys.ErrAttestationMalformed)
		}
		// The attestation certificate names the slot's key, so other PIV
		// clients (yubico-piv-tool, OpenSC) can use the key, and making it
		// needs no signature (and so no touch) from the new key.
		if err := yk.SetCertificate(mk, ps, att.Leaf); err != nil {
			return fmt.Errorf("storing the attestation certificate in slot %s: %w", slot, err)
		}
		if retiredIndex(byte(slot)) > 0 {
			historyKey = append([]byte(nil), mk...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if historyKey != nil {
		if err := d.updateKeyHistory(historyKey, slot); err != nil {
			return nil, err
		}
	}
	return pub, nil
}

// updateKeyHistory makes the key history object count the retired slots
// up to slot as holding keys with on-card certificates, so that OpenSC
// (which reads only as many retired slots as the object says) sees the
// key.
func (d *Device) updateKeyHistory(mk []byte, slot hsm.Slot) error {
	return d.raw("updating the key history object", func(c *rawCard) error {
		n := 0
		old, found, err := c.getData(objKeyHistory)
		if err != nil {
			return err
		}
		if found {
			if n, err = parseKeyHistory(old); err != nil {
				return err
			}
		}
		if want := retiredIndex(byte(slot)); n >= want {
			return nil
		} else {
			n = want
		}
		if err := c.authenticate(mk, d.versionArray()); err != nil {
			return err
		}
		return c.putData(objKeyHistory, keyHistory(n))
	})
}

// PublicKey returns the key in a slot; hsm.ErrSlotEmpty if there is none.
func (d *Device) PublicKey(slot hsm.Slot) (crypto.PublicKey, error) {
	ps, err := pivSlot(slot)
	if err != nil {
		return nil, err
	}
	var pub crypto.PublicKey
	err = d.do(fmt.Sprintf("reading slot %s", slot), func(yk *piv.YubiKey) error {
		pub, err = d.slotKey(yk, slot, ps)
		return err
	})
	return pub, err
}

func (d *Device) attest(yk *piv.YubiKey, slot hsm.Slot, ps piv.Slot) (*hsm.Attestation, error) {
	leaf, err := yk.Attest(ps)
	if errors.Is(err, piv.ErrNotFound) {
		return nil, fmt.Errorf("attesting slot %s of %s: %w", slot, d.name(), hsm.ErrSlotEmpty)
	}
	if err != nil {
		return nil, fmt.Errorf("attesting slot %s: %w", slot, err)
	}
	inter, err := yk.AttestationCertificate()
	if err != nil {
		return nil, fmt.Errorf("reading the attestation certificate (slot f9): %w", err)
	}
	// The CAs above f9 (Yubico's newer hierarchy) are not on the device:
	// they come from Yubico's published ones and Options.Intermediates. A
	// chain that does not verify is reported by whoever verifies it.
	path, err := keys.AttestationPath(inter, d.opts.Intermediates, d.opts.Roots)
	if err != nil {
		path = append([]*x509.Certificate(nil), d.opts.Intermediates...)
	}
	return &hsm.Attestation{Leaf: leaf, Intermediate: inter, Intermediates: path}, nil
}

// DeviceCertificate returns the device's attestation certificate (slot
// f9) and the CA certificates above it up to Options.Roots when they can
// be found, before any key is generated: what a ceremony's pre-flight
// checks against its roots.
func (d *Device) DeviceCertificate() (*x509.Certificate, []*x509.Certificate, error) {
	var f9 *x509.Certificate
	err := d.do("reading the attestation certificate (slot f9)", func(yk *piv.YubiKey) error {
		c, err := yk.AttestationCertificate()
		f9 = c
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	path, err := keys.AttestationPath(f9, d.opts.Intermediates, d.opts.Roots)
	if err != nil {
		path = append([]*x509.Certificate(nil), d.opts.Intermediates...)
	}
	return f9, path, nil
}

// ClearKeyCommand is the command that removes the key in slot: from
// firmware 5.7, ykman (5.4 or later; Debian bookworm's 4.0.9 lacks it)
// deletes one key and its certificate; older firmware cannot delete a
// key, so the way out is to reset the PIV application, which erases every
// key on the device, or to let a rerun replace the key.
func (d *Device) ClearKeyCommand(slot hsm.Slot) string {
	if d.atLeast(5, 7, 0) {
		return fmt.Sprintf("ykman --device %d piv keys delete %s && ykman --device %d piv certificates delete %s",
			d.info.Serial, slot, d.info.Serial, slot)
	}
	return fmt.Sprintf("ykman --device %d piv reset (firmware %s cannot delete one key: this ERASES EVERY PIV KEY on the device; then 'keyceremony device init --serial %d'), or rerun the bootstrap with --destroy-existing-keys-i-really-mean-it, which replaces it",
		d.info.Serial, d.info.Firmware, d.info.Serial)
}

// Attest returns the slot's attestation certificate and the device's
// attestation certificate (slot f9) that signed it, with the CA
// certificates above f9 up to Options.Roots when they can be found. Check
// them with keys.VerifyAttestationChain(att.Leaf, att.Chain(), roots).
func (d *Device) Attest(slot hsm.Slot) (*hsm.Attestation, error) {
	ps, err := pivSlot(slot)
	if err != nil {
		return nil, err
	}
	var att *hsm.Attestation
	err = d.do(fmt.Sprintf("attesting slot %s", slot), func(yk *piv.YubiKey) error {
		att, err = d.attest(yk, slot, ps)
		return err
	})
	return att, err
}

// touchTimedOut tells whether err, from a signature made right after the
// PIN was verified, is a YubiKey giving up waiting for a touch: status
// 6982 (security status not satisfied) for a key whose touch policy needs
// a touch (or, before firmware 5.3, whose policy cannot be read).
func (d *Device) touchTimedOut(yk *piv.YubiKey, ps piv.Slot, err error) bool {
	var st statusError
	if !errors.As(err, &st) || st.Status() != 0x6982 {
		return false
	}
	if !d.atLeast(5, 3, 0) {
		return true
	}
	ki, kerr := yk.KeyInfo(ps)
	return kerr == nil && (ki.TouchPolicy == piv.TouchPolicyAlways || ki.TouchPolicy == piv.TouchPolicyCached)
}

// Sign verifies the PIN and then signs msg with the key in slot: ECDSA
// P-256 over SHA-256 of msg (DER), or Ed25519 over msg. A key with touch
// policy always or cached waits for a touch; a device nobody touched in
// time is hsm.ErrTouchTimeout (not a PIN error: no try is spent).
func (d *Device) Sign(pin string, slot hsm.Slot, msg []byte) ([]byte, error) {
	ps, err := pivSlot(slot)
	if err != nil {
		return nil, err
	}
	if err := checkSecret("PIN", pin); err != nil {
		return nil, err
	}
	if pin == DefaultPIN && !d.opts.Rehearsal {
		return nil, fmt.Errorf("%s still has the factory PIN: %w", d.name(), hsm.ErrDefaultSecret)
	}
	var sig []byte
	err = d.do(fmt.Sprintf("signing with slot %s", slot), func(yk *piv.YubiKey) error {
		pub, err := d.slotKey(yk, slot, ps)
		if err != nil {
			return err
		}
		// PINPolicyAlways makes piv-go verify the PIN right before the
		// signature, whatever the key's own policy.
		priv, err := yk.PrivateKey(ps, pub, piv.KeyAuth{PIN: pin, PINPolicy: piv.PINPolicyAlways})
		if err != nil {
			return fmt.Errorf("slot %s: %w", slot, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return fmt.Errorf("slot %s holds a key that cannot sign: %w", slot, hsm.ErrUnsupported)
		}
		switch pub.(type) {
		case *ecdsa.PublicKey:
			h := sha256.Sum256(msg)
			sig, err = signer.Sign(rand.Reader, h[:], crypto.SHA256)
		case ed25519.PublicKey:
			sig, err = signer.Sign(rand.Reader, msg, crypto.Hash(0))
		default:
			return fmt.Errorf("slot %s holds a %T key: %w", slot, pub, hsm.ErrUnsupported)
		}
		if d.touchTimedOut(yk, ps, err) {
			return fmt.Errorf("slot %s needs a touch: %w", slot, hsm.ErrTouchTimeout)
		}
		return d.authErr("PIN", err)
	})
	if err != nil {
		return nil, err
	}
	return sig, nil
}
