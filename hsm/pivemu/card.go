package pivemu

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"
)

// Algorithm identifiers (NIST SP 800-78-4 table 6-2, YubiKey extensions).
const (
	Alg3DES    byte = 0x03
	AlgAES128  byte = 0x08
	AlgAES192  byte = 0x0a
	AlgAES256  byte = 0x0c
	AlgRSA2048 byte = 0x07 // the attestation key in slot f9
	AlgECCP256 byte = 0x11
	AlgECCP384 byte = 0x14
	AlgEd25519 byte = 0xe0 // YubiKey 5.7
)

// PIN and touch policies as the card encodes them (tags AA and AB).
const (
	PINPolicyDefault byte = 0x00
	PINPolicyNever   byte = 0x01
	PINPolicyOnce    byte = 0x02
	PINPolicyAlways  byte = 0x03

	TouchPolicyDefault byte = 0x00
	TouchPolicyNever   byte = 0x01
	TouchPolicyAlways  byte = 0x02
	TouchPolicyCached  byte = 0x03
)

// Form factors (yubikey-manager's FORM_FACTOR, as in the attestation).
const (
	FormFactorUSBAKeychain byte = 0x01
	FormFactorUSBANano     byte = 0x02
	FormFactorUSBCKeychain byte = 0x03
	FormFactorUSBCNano     byte = 0x04
)

// Factory defaults of a YubiKey's PIV application.
var (
	DefaultPIN           = "123456"
	DefaultPUK           = "12345678"
	DefaultManagementKey = []byte{
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	}
)

// Application identifiers.
var (
	aidPIV        = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}
	aidPIVFull    = []byte{0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}
	aidManagement = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17}
	aidYubiKey    = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01, 0x01}
)

// selectPIVResponse is the application property template a YubiKey 5
// answers SELECT with: PIX 0000100001 00, coexistent tag allocation
// authority A000000308 (SP 800-73-4 part 2, 3.1.1).
var selectPIVResponse = []byte{
	0x61, 0x11,
	0x4f, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
	0x79, 0x07, 0x4f, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08,
}

// discoveryObject is what a YubiKey returns for GET DATA 7E.
var discoveryObject = []byte{
	0x7e, 0x12,
	0x4f, 0x0b, 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
	0x5f, 0x2f, 0x02, 0x40, 0x00,
}

// Data object tags (SP 800-73-4 part 1 table 3, Yubico extensions).
const (
	objDiscovery   uint32 = 0x7e
	objPrintedInfo uint32 = 0x5fc109 // PIN-protected data (management key)
	objAdminData   uint32 = 0x5fff00 // YubiKey admin data
	objAttestation uint32 = 0x5fff01 // certificate of slot f9
)

const (
	slotCardManagement byte = 0x9b
	slotAttestation    byte = 0xf9
	refPIN             byte = 0x80
	refPUK             byte = 0x81
)

// slotObject maps key slots to the data object holding their certificate.
func slotObject(slot byte) (uint32, bool) {
	switch {
	case slot == 0x9a:
		return 0x5fc105, true
	case slot == 0x9c:
		return 0x5fc10a, true
	case slot == 0x9d:
		return 0x5fc10b, true
	case slot == 0x9e:
		return 0x5fc101, true
	case slot >= 0x82 && slot <= 0x95:
		return 0x5fc10d + uint32(slot-0x82), true
	case slot == slotAttestation:
		return objAttestation, true
	}
	return 0, false
}

// defaultPINPolicy is the policy a YubiKey applies when GENERATE asks for
// the default.
func defaultPINPolicy(slot byte) byte {
	switch slot {
	case 0x9c:
		return PINPolicyAlways
	case 0x9e:
		return PINPolicyNever
	}
	return PINPolicyOnce
}

type applet int

const (
	appletNone applet = iota
	appletPIV
	appletManagement
	appletYubiKey
)

// key is an asymmetric key in a slot.
type key struct {
	alg         byte
	priv        crypto.Signer
	pinPolicy   byte
	touchPolicy byte
	generated   bool
	lastTouch   time.Time // for touch policy cached
}

// Card is an emulated YubiKey PIV application. Its state lives in memory
// for the life of the value; it is safe for concurrent use, and Transmit
// may be called directly (no PC/SC) in unit tests.
type Card struct {
	cfg Config

	mu sync.Mutex
	// persistent state
	pin, puk             []byte // padded to 8 bytes
	pinMax, pukMax       int
	pinLeft, pukLeft     int
	pinDefault           bool
	pukDefault           bool
	mgmAlg               byte
	mgmKey               []byte
	mgmTouch             bool
	mgmDefault           bool
	keys                 map[byte]*key
	objects              map[uint32][]byte // contents of tag 53
	attKey               crypto.Signer
	attCert              *x509.Certificate
	attChain             []*x509.Certificate // CA certificates above attCert, below the root
	touches              int
	touchCh              chan struct{} // presses (Card.Touch), buffered 1
	touchReq             chan struct{} // the card is waiting for a touch, buffered 1
	powerOns             int
	removeAfter, counted int

	// session state, cleared on power off, reset and SELECT
	applet        applet
	pinVerified   bool
	pinFresh      bool // verified since the last PIN-always operation
	mgmAuthed     bool
	witness       []byte
	challenge     []byte
	chainINS      byte
	chainP1P2     [2]byte
	chain         []byte
	chaining      bool
	pending       []byte
	pendingActive bool
}

// NewCard makes a factory-fresh card: default PIN, PUK and management key,
// no keys, and an attestation key in slot f9 certified by cfg.CA (a new
// emulator CA when nil).
func NewCard(cfg Config) (*Card, error) {
	if cfg.Version == (Version{}) {
		cfg.Version = DefaultVersion
	}
	if cfg.FormFactor == 0 {
		cfg.FormFactor = FormFactorUSBAKeychain
	}
	if cfg.Serial == 0 {
		var b [4]byte
		if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
			return nil, fmt.Errorf("choosing a serial: %w", err)
		}
		cfg.Serial = 10_000_000 + binary.BigEndian.Uint32(b[:])%80_000_000
	}
	switch cfg.ManagementKeyAlgorithm {
	case 0:
		cfg.ManagementKeyAlgorithm = Alg3DES
		if cfg.Version.AtLeast(5, 7, 0) {
			// YubiKey 5.7 ships with the same default key, as AES-192.
			cfg.ManagementKeyAlgorithm = AlgAES192
		}
	case Alg3DES, AlgAES192:
	default:
		return nil, fmt.Errorf("factory management key algorithm %#x: %w", cfg.ManagementKeyAlgorithm, ErrBadConfig)
	}
	if cfg.CA == nil {
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		cfg.CA = ca
	}
	if cfg.CA.Cert == nil || cfg.CA.Key == nil {
		return nil, fmt.Errorf("attestation ca without certificate or key: %w", ErrBadConfig)
	}
	c := &Card{cfg: cfg, removeAfter: cfg.RemoveAfter, touchCh: make(chan struct{}, 1), touchReq: make(chan struct{}, 1)}
	if err := c.makeAttestationKey(); err != nil {
		return nil, err
	}
	c.factoryReset()
	return c, nil
}

// factoryReset sets the PIV application to its factory state. The
// attestation key and certificate survive, as on a YubiKey.
func (c *Card) factoryReset() {
	c.pin = padPIN(DefaultPIN)
	c.puk = padPIN(DefaultPUK)
	c.pinMax, c.pukMax = 3, 3
	c.pinLeft, c.pukLeft = 3, 3
	c.pinDefault, c.pukDefault = true, true
	c.mgmAlg = c.cfg.ManagementKeyAlgorithm
	c.mgmKey = append([]byte(nil), DefaultManagementKey...)
	c.mgmTouch = false
	c.mgmDefault = true
	att := c.keys[slotAttestation]
	c.keys = map[byte]*key{slotAttestation: att}
	c.objects = map[uint32][]byte{objAttestation: c.objects[objAttestation]}
	c.clearSession()
}

func (c *Card) clearSession() {
	c.pinVerified, c.pinFresh, c.mgmAuthed = false, false, false
	c.witness, c.challenge = nil, nil
	c.chaining, c.chain = false, nil
	c.pending, c.pendingActive = nil, false
}

func padPIN(pin string) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = 0xff
	}
	copy(b, pin)
	return b
}

// pinLength is the length of a PIN before its FF padding.
func pinLength(b []byte) int {
	if i := bytes.IndexByte(b, 0xff); i >= 0 {
		return i
	}
	return len(b)
}

// Serial is the card's serial number.
func (c *Card) Serial() uint32 { return c.cfg.Serial }

// AttestationCertificate is the certificate of the card's attestation key
// (slot f9), signed by the configured CA.
func (c *Card) AttestationCertificate() *x509.Certificate { return c.attCert }

// AttestationIntermediates are the CA certificates between the f9
// certificate and the configured CA's root: none before firmware 5.7.4,
// the CA's intermediate from 5.7.4 (as Yubico publishes its intermediates
// rather than storing them on the key).
func (c *Card) AttestationIntermediates() []*x509.Certificate {
	return append([]*x509.Certificate(nil), c.attChain...)
}

// touchCache is how long a YubiKey remembers a touch for a key with touch
// policy cached, and how long it blinks before giving up.
const (
	touchCache          = 15 * time.Second
	DefaultTouchTimeout = 15 * time.Second
)

// touch waits for the user to touch the card, as a YubiKey blinks until it
// is touched: at once unless Config.ManualTouch; else until Card.Touch is
// called, or Config.TouchTimeout passes (then it reports false and the
// command fails with 6982, as on a YubiKey). A touch within touchCache of
// the key's last one is enough for a key with touch policy cached (cached
// points at the key's time of last touch; nil for touch always). It is called
// with c.mu held; Touch does not take it.
func (c *Card) touch(cached *time.Time) bool {
	if cached != nil && !cached.IsZero() && time.Since(*cached) < touchCache {
		return true
	}
	if c.cfg.ManualTouch {
		select { // a press while the card was not blinking does nothing
		case <-c.touchCh:
		default:
		}
		select {
		case c.touchReq <- struct{}{}:
		default:
		}
		timeout := c.cfg.TouchTimeout
		if timeout <= 0 {
			timeout = DefaultTouchTimeout
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-c.touchCh:
		case <-t.C:
			return false
		}
	}
	c.touches++
	if cached != nil {
		*cached = time.Now()
	}
	return true
}

// TouchRequests delivers a value each time the card starts waiting for a
// touch (with Config.ManualTouch): a test then calls Touch, or lets it
// time out.
func (c *Card) TouchRequests() <-chan struct{} { return c.touchReq }

// Touch presses the card's button: it completes the operation the card is
// waiting for. A press while the card is not waiting is forgotten when
// the next wait begins.
func (c *Card) Touch() {
	select {
	case c.touchCh <- struct{}{}:
	default:
	}
}

// SetTouchTimeout changes how long the card waits for a touch
// (Config.TouchTimeout), for the next operation that needs one.
func (c *Card) SetTouchTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.TouchTimeout = d
}

// Touches is how many operations so far needed the user to touch the card
// (touch policy always or cached, or a management key stored with touch)
// and got the touch.
func (c *Card) Touches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.touches
}

// PowerOff and Reset end the session as a card power cycle would: PIN and
// management-key authentication are forgotten.
func (c *Card) PowerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearSession()
	c.applet = appletNone
}

// Transmit processes one command APDU and returns the response APDU
// (data followed by SW1 SW2). Malformed commands get an error status,
// never a panic.
func (c *Card) Transmit(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd, err := parseAPDU(apdu)
	if err != nil {
		return withSW(nil, swWrongLength)
	}
	if cmd.cla&^0x10 != 0 {
		c.chaining, c.chain = false, nil
		return withSW(nil, swClaNotSupported)
	}

	if cmd.ins == 0xc0 { // GET RESPONSE
		if !c.pendingActive {
			return withSW(nil, swConditionsNotMet)
		}
		return c.respond(c.pending, cmd)
	}
	c.pending, c.pendingActive = nil, false

	// Command chaining (ISO/IEC 7816-4 5.1.1).
	if c.chaining && (cmd.ins != c.chainINS || [2]byte{cmd.p1, cmd.p2} != c.chainP1P2) {
		c.chaining, c.chain = false, nil
		return withSW(nil, swLastCommandExpected)
	}
	if cmd.cla&0x10 != 0 {
		if len(c.chain)+len(cmd.data) > maxChain {
			c.chaining, c.chain = false, nil
			return withSW(nil, swWrongLength)
		}
		c.chaining = true
		c.chainINS, c.chainP1P2 = cmd.ins, [2]byte{cmd.p1, cmd.p2}
		c.chain = append(c.chain, cmd.data...)
		return withSW(nil, swOK)
	}
	if c.chaining {
		if len(c.chain)+len(cmd.data) > maxChain {
			c.chaining, c.chain = false, nil
			return withSW(nil, swWrongLength)
		}
		cmd.data = append(c.chain, cmd.data...)
		c.chaining, c.chain = false, nil
	}

	data, sw := c.dispatch(cmd)
	if sw != swOK {
		return withSW(nil, sw)
	}
	return c.respond(data, cmd)
}

// maxChain bounds the data a chain of commands may accumulate: more than
// any object a YubiKey stores.
const maxChain = 1 << 16

// respond sends data at most one short answer at a time, announcing the
// rest with 61xx. An extended-length command gets the whole answer.
func (c *Card) respond(data []byte, cmd command) []byte {
	max := 256
	if cmd.extended {
		max = 65533 // what fits in a vpcd frame with the status word
	}
	if cmd.le > 0 && cmd.le < max {
		max = cmd.le
	}
	if len(data) <= max {
		c.pending, c.pendingActive = nil, false
		return withSW(data, swOK)
	}
	c.pending, c.pendingActive = data[max:], true
	left := len(c.pending)
	if left > 255 {
		left = 0
	}
	return withSW(data[:max], swBytesRemainingPrefix|uint16(left))
}

func (c *Card) dispatch(cmd command) ([]byte, uint16) {
	if cmd.ins == 0xa4 {
		return c.selectApplet(cmd)
	}
	switch c.applet {
	case appletManagement:
		if cmd.ins == 0x1d { // READ CONFIG
			return c.readConfig(), swOK
		}
		return nil, swInsNotSupported
	case appletYubiKey:
		if cmd.ins == 0x01 && cmd.p1 == 0x10 { // serial, firmware < 5
			return binary.BigEndian.AppendUint32(nil, c.cfg.Serial), swOK
		}
		return nil, swInsNotSupported
	case appletPIV:
	default:
		return nil, swInsNotSupported
	}
	v := c.cfg.Version
	switch cmd.ins {
	case 0xfd: // GET VERSION
		return []byte{byte(v.Major), byte(v.Minor), byte(v.Patch)}, swOK
	case 0xf8: // GET SERIAL
		if v.Major < 5 {
			return nil, swInsNotSupported
		}
		return binary.BigEndian.AppendUint32(nil, c.cfg.Serial), swOK
	case 0x20:
		return nil, c.verify(cmd)
	case 0x24:
		return nil, c.changeReference(cmd)
	case 0x2c:
		return nil, c.resetRetryCounter(cmd)
	case 0x87:
		return c.generalAuthenticate(cmd)
	case 0xff:
		return nil, c.setManagementKey(cmd)
	case 0x47:
		return c.generate(cmd)
	case 0xf9:
		return c.attest(cmd)
	case 0xcb:
		return c.getData(cmd)
	case 0xdb:
		return nil, c.putData(cmd)
	case 0xf7:
		if !v.AtLeast(5, 3, 0) {
			return nil, swInsNotSupported
		}
		return c.metadata(cmd)
	case 0xf6:
		if !v.AtLeast(5, 7, 0) {
			return nil, swInsNotSupported
		}
		return nil, c.moveKey(cmd)
	case 0xfa:
		return nil, c.setRetries(cmd)
	case 0xfb: // RESET
		if c.pinLeft > 0 || c.pukLeft > 0 {
			return nil, swConditionsNotMet
		}
		c.factoryReset()
		c.applet = appletPIV
		return nil, swOK
	}
	return nil, swInsNotSupported
}

func (c *Card) selectApplet(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x04 {
		return nil, swIncorrectP1P2
	}
	c.clearSession()
	switch {
	case bytes.HasPrefix(cmd.data, aidPIV) && bytes.HasPrefix(aidPIVFull, cmd.data):
		c.applet = appletPIV
		return selectPIVResponse, swOK
	case bytes.Equal(cmd.data, aidManagement):
		c.applet = appletManagement
		return []byte(c.cfg.Version.String()), swOK
	case bytes.Equal(cmd.data, aidYubiKey):
		c.applet = appletYubiKey
		v := c.cfg.Version
		return []byte{byte(v.Major), byte(v.Minor), byte(v.Patch)}, swOK
	}
	c.applet = appletNone
	return nil, swNotFound
}

// readConfig answers the management application's READ CONFIG the way
// yubikey-manager and piv-go's FormFactor read it: a length byte, then
// TLVs (02 serial, 04 form factor, 05 firmware).
func (c *Card) readConfig() []byte {
	v := c.cfg.Version
	var t []byte
	t = appendTLV(t, 0x01, []byte{0x02, 0x3f}) // USB supported
	t = appendTLV(t, 0x02, binary.BigEndian.AppendUint32(nil, c.cfg.Serial))
	t = appendTLV(t, 0x03, []byte{0x02, 0x3f}) // USB enabled
	t = appendTLV(t, 0x04, []byte{c.cfg.FormFactor})
	t = appendTLV(t, 0x05, []byte{byte(v.Major), byte(v.Minor), byte(v.Patch)})
	return append([]byte{byte(len(t))}, t...)
}

// verify implements VERIFY (SP 800-73-4 part 2, 3.2.1).
func (c *Card) verify(cmd command) uint16 {
	if cmd.p2 != refPIN {
		return swRefDataNotFound
	}
	switch cmd.p1 {
	case 0xff: // reset the security status
		if len(cmd.data) != 0 {
			return swIncorrectData
		}
		c.pinVerified, c.pinFresh = false, false
		return swOK
	case 0x00:
	default:
		return swIncorrectP1P2
	}
	if len(cmd.data) == 0 {
		if c.pinLeft == 0 {
			return swAuthBlocked
		}
		if c.pinVerified {
			return swOK
		}
		return swVerifyFailed | uint16(min(c.pinLeft, 15))
	}
	if len(cmd.data) != 8 {
		return swIncorrectData
	}
	if c.pinLeft == 0 {
		return swAuthBlocked
	}
	if subtle.ConstantTimeCompare(cmd.data, c.pin) != 1 {
		c.pinLeft--
		c.pinVerified, c.pinFresh = false, false
		return swVerifyFailed | uint16(min(c.pinLeft, 15))
	}
	c.pinLeft = c.pinMax
	c.pinVerified, c.pinFresh = true, true
	return swOK
}

// checkRef compares a PIN or PUK against its reference and keeps the
// retry counter; it returns swOK when they match.
func checkRef(got, want []byte, left *int, max int) uint16 {
	if *left == 0 {
		return swAuthBlocked
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		*left--
		return swVerifyFailed | uint16(min(*left, 15))
	}
	*left = max
	return swOK
}

// changeReference implements CHANGE REFERENCE DATA for the PIN and PUK.
func (c *Card) changeReference(cmd command) uint16 {
	if cmd.p1 != 0 {
		return swIncorrectP1P2
	}
	if len(cmd.data) != 16 {
		return swIncorrectData
	}
	old, nu := cmd.data[:8], cmd.data[8:]
	switch cmd.p2 {
	case refPIN:
		if sw := checkRef(old, c.pin, &c.pinLeft, c.pinMax); sw != swOK {
			c.pinVerified, c.pinFresh = false, false
			return sw
		}
		if pinLength(nu) < 6 {
			return swIncorrectData
		}
		c.pin = append([]byte(nil), nu...)
		c.pinDefault = bytes.Equal(c.pin, padPIN(DefaultPIN))
		c.pinVerified, c.pinFresh = true, true
		return swOK
	case refPUK:
		if sw := checkRef(old, c.puk, &c.pukLeft, c.pukMax); sw != swOK {
			return sw
		}
		if pinLength(nu) < 6 {
			return swIncorrectData
		}
		c.puk = append([]byte(nil), nu...)
		c.pukDefault = bytes.Equal(c.puk, padPIN(DefaultPUK))
		return swOK
	}
	return swRefDataNotFound
}

// resetRetryCounter implements RESET RETRY COUNTER: PUK and a new PIN.
func (c *Card) resetRetryCounter(cmd command) uint16 {
	if cmd.p1 != 0 || cmd.p2 != refPIN {
		return swIncorrectP1P2
	}
	if len(cmd.data) != 16 {
		return swIncorrectData
	}
	if sw := checkRef(cmd.data[:8], c.puk, &c.pukLeft, c.pukMax); sw != swOK {
		return sw
	}
	if pinLength(cmd.data[8:]) < 6 {
		return swIncorrectData
	}
	c.pin = append([]byte(nil), cmd.data[8:]...)
	c.pinDefault = bytes.Equal(c.pin, padPIN(DefaultPIN))
	c.pinLeft = c.pinMax
	return swOK
}

// setRetries implements the YubiKey SET PIN RETRIES command: it needs the
// management key and the PIN, and resets PIN and PUK to their defaults.
func (c *Card) setRetries(cmd command) uint16 {
	if !c.mgmAuthed || !c.pinVerified {
		return swSecurityStatus
	}
	if cmd.p1 == 0 || cmd.p2 == 0 {
		return swIncorrectP1P2
	}
	c.pinMax, c.pukMax = int(cmd.p1), int(cmd.p2)
	c.pinLeft, c.pukLeft = c.pinMax, c.pukMax
	c.pin, c.puk = padPIN(DefaultPIN), padPIN(DefaultPUK)
	c.pinDefault, c.pukDefault = true, true
	return swOK
}

func mgmBlock(alg byte, k []byte) (cipher.Block, error) {
	if alg == Alg3DES {
		return des.NewTripleDESCipher(k)
	}
	return aes.NewCipher(k)
}

func mgmKeyLen(alg byte) int {
	switch alg {
	case Alg3DES, AlgAES192:
		return 24
	case AlgAES128:
		return 16
	case AlgAES256:
		return 32
	}
	return 0
}

// generalAuthenticate implements GENERAL AUTHENTICATE: mutual and
// one-way authentication with the management key (slot 9b) and signing
// with a slot's private key.
func (c *Card) generalAuthenticate(cmd command) ([]byte, uint16) {
	outer, err := parseTLVs(cmd.data)
	if err != nil || len(outer) != 1 || outer[0].tag != 0x7c {
		return nil, swIncorrectData
	}
	inner, err := parseTLVs(outer[0].value)
	if err != nil {
		return nil, swIncorrectData
	}
	if cmd.p2 == slotCardManagement {
		return c.authManagementKey(cmd.p1, inner)
	}
	return c.sign(cmd.p1, cmd.p2, inner)
}

func (c *Card) authManagementKey(alg byte, inner []tlv) ([]byte, uint16) {
	if alg != c.mgmAlg {
		// A YubiKey answers 6A80 (incorrect parameters), which is how
		// ykman and piv-go learn the management key's algorithm on
		// firmware without GET METADATA.
		return nil, swIncorrectData
	}
	block, err := mgmBlock(c.mgmAlg, c.mgmKey)
	if err != nil {
		return nil, swIncorrectData
	}
	bs := block.BlockSize()
	witness, hasWitness := findTLV(inner, 0x80)
	challenge, hasChallenge := findTLV(inner, 0x81)
	response, hasResponse := findTLV(inner, 0x82)
	switch {
	case hasWitness && len(witness) == 0 && !hasChallenge && !hasResponse:
		// Step 1 of mutual authentication: an encrypted witness.
		c.mgmAuthed = false
		c.witness = make([]byte, bs)
		if _, err := io.ReadFull(rand.Reader, c.witness); err != nil {
			return nil, swConditionsNotMet
		}
		enc := make([]byte, bs)
		block.Encrypt(enc, c.witness)
		return tlvBytes(0x7c, tlvBytes(0x80, enc)), swOK
	case hasWitness && hasChallenge && len(witness) == bs && len(challenge) == bs:
		// Step 2: the host proves it decrypted the witness; the card
		// answers the host's challenge.
		want := c.witness
		c.witness = nil
		if want == nil || subtle.ConstantTimeCompare(witness, want) != 1 {
			c.mgmAuthed = false
			return nil, swSecurityStatus
		}
		enc := make([]byte, bs)
		block.Encrypt(enc, challenge)
		if c.mgmTouch && !c.touch(nil) {
			c.mgmAuthed = false
			return nil, swSecurityStatus
		}
		c.mgmAuthed = true
		return tlvBytes(0x7c, tlvBytes(0x82, enc)), swOK
	case hasChallenge && len(challenge) == 0 && !hasWitness && !hasResponse:
		// One-way authentication: a plain challenge for the host to encrypt.
		c.mgmAuthed = false
		c.challenge = make([]byte, bs)
		if _, err := io.ReadFull(rand.Reader, c.challenge); err != nil {
			return nil, swConditionsNotMet
		}
		return tlvBytes(0x7c, tlvBytes(0x81, c.challenge)), swOK
	case hasResponse && len(response) == bs && !hasWitness && !hasChallenge:
		want := c.challenge
		c.challenge = nil
		if want == nil {
			return nil, swSecurityStatus
		}
		enc := make([]byte, bs)
		block.Encrypt(enc, want)
		if subtle.ConstantTimeCompare(enc, response) != 1 {
			c.mgmAuthed = false
			return nil, swSecurityStatus
		}
		if c.mgmTouch && !c.touch(nil) {
			c.mgmAuthed = false
			return nil, swSecurityStatus
		}
		c.mgmAuthed = true
		return nil, swOK
	}
	return nil, swIncorrectData
}

// sign computes a signature with the key in slot over the digest (ECDSA)
// or message (Ed25519) in tag 81, answering 7C { 82 signature }.
func (c *Card) sign(alg, slot byte, inner []tlv) ([]byte, uint16) {
	// A YubiKey answers 6A80 both for an empty slot and for a key of
	// another algorithm (yubikit's check_key reads either as "no such
	// key").
	k, ok := c.keys[slot]
	if !ok || k == nil || k.alg != alg {
		return nil, swIncorrectData
	}
	resp, hasResp := findTLV(inner, 0x82)
	msg, hasMsg := findTLV(inner, 0x81)
	if !hasResp || len(resp) != 0 || !hasMsg {
		return nil, swIncorrectData
	}
	switch k.pinPolicy {
	case PINPolicyOnce:
		if !c.pinVerified {
			return nil, swSecurityStatus
		}
	case PINPolicyAlways:
		if !c.pinVerified || !c.pinFresh {
			return nil, swSecurityStatus
		}
		c.pinFresh = false
	}
	if k.touchPolicy == TouchPolicyAlways || k.touchPolicy == TouchPolicyCached {
		var cached *time.Time
		if k.touchPolicy == TouchPolicyCached {
			cached = &k.lastTouch
		}
		if !c.touch(cached) {
			return nil, swSecurityStatus // as a YubiKey answers when nobody touched it
		}
	}
	var sig []byte
	var err error
	switch alg {
	case AlgECCP256, AlgECCP384:
		size := 32
		if alg == AlgECCP384 {
			size = 48
		}
		if len(msg) > size {
			return nil, swIncorrectData
		}
		sig, err = ecdsa.SignASN1(rand.Reader, k.priv.(*ecdsa.PrivateKey), msg)
	case AlgEd25519:
		sig = ed25519.Sign(k.priv.(ed25519.PrivateKey), msg)
	default:
		return nil, swIncorrectP1P2
	}
	if err != nil {
		return nil, swIncorrectData
	}
	return tlvBytes(0x7c, tlvBytes(0x82, sig)), swOK
}

// setManagementKey implements the YubiKey SET MANAGEMENT KEY command.
func (c *Card) setManagementKey(cmd command) uint16 {
	if !c.mgmAuthed {
		return swSecurityStatus
	}
	if cmd.p1 != 0xff || (cmd.p2 != 0xff && cmd.p2 != 0xfe) {
		return swIncorrectP1P2
	}
	d := cmd.data
	if len(d) < 3 || d[1] != slotCardManagement || int(d[2]) != len(d)-3 {
		return swIncorrectData
	}
	alg, k := d[0], d[3:]
	if n := mgmKeyLen(alg); n == 0 || n != len(k) {
		return swIncorrectData
	}
	if alg != Alg3DES && !c.cfg.Version.AtLeast(5, 4, 0) {
		return swIncorrectData
	}
	if _, err := mgmBlock(alg, k); err != nil {
		return swIncorrectData
	}
	c.mgmAlg = alg
	c.mgmKey = append([]byte(nil), k...)
	c.mgmTouch = cmd.p2 == 0xfe
	c.mgmDefault = bytes.Equal(k, DefaultManagementKey)
	return swOK
}

func isKeySlot(slot byte) bool {
	switch {
	case slot == 0x9a, slot == 0x9c, slot == 0x9d, slot == 0x9e:
		return true
	case slot >= 0x82 && slot <= 0x95:
		return true
	}
	return false
}

// generate implements GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 part 2,
// 3.3.2) with the YubiKey PIN and touch policy tags.
func (c *Card) generate(cmd command) ([]byte, uint16) {
	if !c.mgmAuthed {
		return nil, swSecurityStatus
	}
	if cmd.p1 != 0 || !isKeySlot(cmd.p2) {
		return nil, swIncorrectP1P2
	}
	outer, err := parseTLVs(cmd.data)
	if err != nil || len(outer) != 1 || outer[0].tag != 0xac {
		return nil, swIncorrectData
	}
	inner, err := parseTLVs(outer[0].value)
	if err != nil {
		return nil, swIncorrectData
	}
	algB, ok := findTLV(inner, 0x80)
	if !ok || len(algB) != 1 {
		return nil, swIncorrectData
	}
	pp, tp := defaultPINPolicy(cmd.p2), TouchPolicyNever
	if v, ok := findTLV(inner, 0xaa); ok {
		if len(v) != 1 || v[0] > PINPolicyAlways {
			return nil, swIncorrectData
		}
		if v[0] != PINPolicyDefault {
			pp = v[0]
		}
	}
	if v, ok := findTLV(inner, 0xab); ok {
		if len(v) != 1 || v[0] > TouchPolicyCached {
			return nil, swIncorrectData
		}
		if v[0] != TouchPolicyDefault {
			tp = v[0]
		}
	}
	k := &key{alg: algB[0], pinPolicy: pp, touchPolicy: tp, generated: true}
	switch k.alg {
	case AlgECCP256:
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgECCP384:
		k.priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case AlgEd25519:
		if !c.cfg.Version.AtLeast(5, 7, 0) {
			return nil, swIncorrectData
		}
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, swIncorrectData
	}
	if err != nil {
		return nil, swNotEnoughMemory
	}
	c.keys[cmd.p2] = k
	return tlvBytes(0x7f49, publicTLV(k)), swOK
}

// publicTLV encodes a public key as GENERATE and GET METADATA return it:
// tag 86 with the uncompressed point, or the raw Ed25519 key.
func publicTLV(k *key) []byte {
	switch pub := k.priv.Public().(type) {
	case *ecdsa.PublicKey:
		b, err := pub.Bytes()
		if err != nil {
			return nil
		}
		return tlvBytes(0x86, b)
	case ed25519.PublicKey:
		return tlvBytes(0x86, pub)
	case *rsa.PublicKey:
		e := big.NewInt(int64(pub.E)).Bytes()
		return append(tlvBytes(0x81, pub.N.Bytes()), tlvBytes(0x82, e)...)
	}
	return nil
}

// moveKey implements MOVE KEY (INS F6, YubiKey firmware 5.7 and later;
// Yubico SDK MoveKeyCommand and DeleteKeyCommand): P2 is the slot that
// holds the key, P1 the empty slot to move it to, or FF to delete it. The
// management key must have been authenticated (6982 otherwise). A key
// already in P1 is 6A80 and no key in P2 is 6A88, as yubikit (piv.py
// move_key, delete_key) and ykman piv keys move and delete read them. The
// certificate in the slot stays: ykman deletes it with a command of its
// own. Only the key slots are emulated: deleting the attestation key (f9)
// is 6A86 here.
func (c *Card) moveKey(cmd command) uint16 {
	if !c.mgmAuthed {
		return swSecurityStatus
	}
	from, to := cmd.p2, cmd.p1
	if !isKeySlot(from) || (to != 0xff && !isKeySlot(to)) {
		return swIncorrectP1P2
	}
	k := c.keys[from]
	if k == nil {
		return swRefDataNotFound
	}
	if to != 0xff {
		if c.keys[to] != nil {
			return swIncorrectData
		}
		c.keys[to] = k
	}
	delete(c.keys, from)
	return swOK
}

// attest implements the YubiKey ATTEST command: a certificate for the key
// in slot P1, signed by the attestation key in slot f9.
func (c *Card) attest(cmd command) ([]byte, uint16) {
	k, ok := c.keys[cmd.p1]
	if !ok || k == nil || !isKeySlot(cmd.p1) || !k.generated {
		return nil, swIncorrectData
	}
	der, err := c.attestationFor(cmd.p1, k)
	if err != nil {
		return nil, swIncorrectData
	}
	return der, swOK
}

// getData implements GET DATA with a 5C tag list of one object.
func (c *Card) getData(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x3f || cmd.p2 != 0xff {
		return nil, swIncorrectP1P2
	}
	tag, ok := objectTag(cmd.data)
	if !ok {
		return nil, swIncorrectData
	}
	if tag == objDiscovery {
		return discoveryObject, swOK
	}
	if tag == objPrintedInfo && !c.pinVerified {
		return nil, swSecurityStatus
	}
	v, ok := c.objects[tag]
	if !ok || v == nil {
		return nil, swNotFound
	}
	return tlvBytes(0x53, v), swOK
}

// objectTag reads the 5C tag list of GET DATA and PUT DATA.
func objectTag(data []byte) (uint32, bool) {
	ts, err := parseTLVs(data)
	if err != nil || len(ts) != 1 || ts[0].tag != 0x5c {
		return 0, false
	}
	return tagList(ts[0].value)
}

func tagList(v []byte) (uint32, bool) {
	switch len(v) {
	case 1:
		return uint32(v[0]), true
	case 3:
		return uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2]), true
	}
	return 0, false
}

// validObject tells whether PUT DATA may write tag: the PIV objects
// 5FC101..5FC123 and the YubiKey objects 5FFF00..5FFF15.
func validObject(tag uint32) bool {
	return (tag >= 0x5fc101 && tag <= 0x5fc123) || (tag >= 0x5fff00 && tag <= 0x5fff15)
}

// putData implements PUT DATA: 5C tag list then 53 contents. An empty 53
// deletes the object.
func (c *Card) putData(cmd command) uint16 {
	if !c.mgmAuthed {
		return swSecurityStatus
	}
	if cmd.p1 != 0x3f || cmd.p2 != 0xff {
		return swIncorrectP1P2
	}
	ts, err := parseTLVs(cmd.data)
	if err != nil || len(ts) != 2 || ts[0].tag != 0x5c || ts[1].tag != 0x53 {
		return swIncorrectData
	}
	tag, ok := tagList(ts[0].value)
	if !ok || !validObject(tag) {
		return swIncorrectData
	}
	if len(ts[1].value) > maxObject {
		return swNotEnoughMemory
	}
	if len(ts[1].value) == 0 {
		delete(c.objects, tag)
		return swOK
	}
	c.objects[tag] = append([]byte(nil), ts[1].value...)
	return swOK
}

// maxObject is the largest object a YubiKey 5 stores (3,052 bytes).
const maxObject = 3052

// metadata implements the YubiKey GET METADATA command.
func (c *Card) metadata(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0 {
		return nil, swIncorrectP1P2
	}
	boolByte := func(b bool) byte {
		if b {
			return 1
		}
		return 0
	}
	var out []byte
	switch cmd.p2 {
	case refPIN, refPUK:
		max, left, def := c.pinMax, c.pinLeft, c.pinDefault
		if cmd.p2 == refPUK {
			max, left, def = c.pukMax, c.pukLeft, c.pukDefault
		}
		out = appendTLV(out, 0x01, []byte{0xff})
		out = appendTLV(out, 0x05, []byte{boolByte(def)})
		out = appendTLV(out, 0x06, []byte{byte(max), byte(left)})
		return out, swOK
	case slotCardManagement:
		touch := TouchPolicyNever
		if c.mgmTouch {
			touch = TouchPolicyAlways
		}
		out = appendTLV(out, 0x01, []byte{c.mgmAlg})
		out = appendTLV(out, 0x02, []byte{PINPolicyDefault, touch})
		out = appendTLV(out, 0x05, []byte{boolByte(c.mgmDefault)})
		return out, swOK
	}
	// An empty slot and a slot that does not exist (96, say) are both
	// 6A88, reference data not found, on a YubiKey: ykman's piv info
	// treats 6A88 as "no key" and fails on anything else.
	if !isKeySlot(cmd.p2) && cmd.p2 != slotAttestation {
		return nil, swRefDataNotFound
	}
	k, ok := c.keys[cmd.p2]
	if !ok || k == nil {
		return nil, swRefDataNotFound
	}
	origin := byte(0x02)
	if k.generated {
		origin = 0x01
	}
	out = appendTLV(out, 0x01, []byte{k.alg})
	out = appendTLV(out, 0x02, []byte{k.pinPolicy, k.touchPolicy})
	out = appendTLV(out, 0x03, []byte{origin})
	out = appendTLV(out, 0x04, publicTLV(k))
	return out, swOK
}

// ErrBadConfig is wrapped by errors about an unusable Config.
var ErrBadConfig = errors.New("bad emulator config")

// Version is a firmware version.
type Version struct{ Major, Minor, Patch int }

// DefaultVersion is the firmware a card has when Config.Version is zero.
var DefaultVersion = Version{5, 7, 1}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor.patch or later.
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

// Config describes one emulated card.
type Config struct {
	// Serial is the card's serial number; zero picks a random one.
	Serial uint32
	// Version is the firmware version; zero means DefaultVersion (5.7.1).
	Version Version
	// FormFactor is the byte in the attestation extension and READ CONFIG;
	// zero means FormFactorUSBAKeychain.
	FormFactor byte
	// ManagementKeyAlgorithm is the algorithm of the factory management key
	// (Alg3DES or AlgAES192). Zero means what a YubiKey of Version ships
	// with: AES-192 from 5.7, 3DES before. yubico-piv-tool 2.2.0 (Debian
	// bookworm) speaks 3DES only.
	ManagementKeyAlgorithm byte
	// CA signs the card's attestation certificate; nil makes a new one.
	CA *CA
	// Addr is vpcd's host:port, used by Serve.
	Addr string
	// RemoveAfter, if positive, makes the card disappear from the reader
	// after answering that many command APDUs, as if it were pulled out:
	// Serve closes the connection and returns ErrRemoved. The fault fires
	// once; call Card.RemoveAfter to arm it again.
	RemoveAfter int
	// Latency delays every answer to a command APDU (a slow card).
	Latency time.Duration
	// ManualTouch makes an operation that needs a touch wait for
	// Card.Touch, as a YubiKey blinks until it is touched, for up to
	// TouchTimeout (zero means DefaultTouchTimeout, 15 s, as on a
	// YubiKey); then it fails with 6982. Without it every touch is
	// immediate.
	ManualTouch  bool
	TouchTimeout time.Duration
	// Logf, if set, receives a line for every vpcd message: control
	// messages and the command INS with the status word, never data
	// (commands carry PINs and keys).
	Logf func(format string, args ...any)
}
