// Package hsm defines the one interface through which a ceremony uses a
// hardware token, and the types and errors that go with it. Implementations
// live in subpackages: soft (an INSECURE software device for demos and
// tests), piv (real YubiKeys through piv-go and PC/SC). One conformance
// suite (hsm/hsmtest) runs over every implementation.
//
// It promises:
//   - GenerateKey never replaces a key: an occupied slot is ErrSlotOccupied.
//   - A wrong PIN or PUK is an *AuthError carrying the tries left; a blocked
//     one is ErrBlocked. Check them with errors.As and errors.Is.
//   - Sign returns a signature that keys.Key.Verify accepts for the slot's
//     public key (DER for ECDSA over SHA-256 of the message).
//   - No implementation logs, stores unencrypted or prints a PIN, PUK,
//     management key or private key.
//
// Optional interfaces a device may implement, which a ceremony checks
// with a type assertion: KeyReplacer (opened to replace keys),
// DeviceCertifier (its attestation certificate before any key; the
// bootstrap needs it) and KeyClearer (the command that removes a key).
// soft and piv implement DeviceCertifier and KeyClearer.
package hsm

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/keys"
)

// Slot is a PIV key slot.
type Slot uint8

// The PIV slots a ceremony uses. Retired slots 0x82–0x95 are also valid.
const (
	SlotAuthentication Slot = 0x9a
	SlotSignature      Slot = 0x9c
	SlotKeyManagement  Slot = 0x9d
	SlotCardAuth       Slot = 0x9e
)

// Valid reports whether s is a slot a key may be generated in.
func (s Slot) Valid() bool {
	return s == SlotAuthentication || s == SlotSignature || s == SlotKeyManagement ||
		s == SlotCardAuth || (s >= 0x82 && s <= 0x95)
}

func (s Slot) String() string { return fmt.Sprintf("%02x", uint8(s)) }

// ParseSlot parses a slot written as two lowercase hex digits ("9c", "82").
func ParseSlot(s string) (Slot, error) {
	var v uint8
	if len(s) != 2 {
		return 0, fmt.Errorf("slot %q: %w", s, ErrBadSlot)
	}
	if _, err := fmt.Sscanf(s, "%02x", &v); err != nil || !Slot(v).Valid() || Slot(v).String() != s {
		return 0, fmt.Errorf("slot %q: %w", s, ErrBadSlot)
	}
	return Slot(v), nil
}

// Algorithm is a key algorithm a device can generate.
type Algorithm string

const (
	AlgECCP256 Algorithm = "p256"
	AlgEd25519 Algorithm = "ed25519"
)

// PINPolicy and TouchPolicy are the policies a key is generated with.
type PINPolicy string
type TouchPolicy string

const (
	PINPolicyNever  PINPolicy = "never"
	PINPolicyOnce   PINPolicy = "once"
	PINPolicyAlways PINPolicy = "always"

	TouchPolicyNever  TouchPolicy = "never"
	TouchPolicyAlways TouchPolicy = "always"
	TouchPolicyCached TouchPolicy = "cached"
)

// KeyOptions say what key to generate and how it is protected.
type KeyOptions struct {
	Algorithm   Algorithm
	PINPolicy   PINPolicy
	TouchPolicy TouchPolicy
}

// Info identifies a device to the people in the room.
type Info struct {
	Kind       string // "soft" or "yubikey"
	Serial     uint32
	Firmware   string // "5.7.1"
	FormFactor string // "USB-A keychain", "soft (INSECURE)", ...
	// Insecure is true for devices whose keys are not protected by
	// hardware. Everything that shows such a device says so.
	Insecure bool
}

func (i Info) String() string {
	s := fmt.Sprintf("%s serial %d firmware %s", i.Kind, i.Serial, i.Firmware)
	if i.Insecure {
		s += " (INSECURE: software device)"
	}
	return s
}

// Attestation is the device's proof that the key in a slot was generated
// inside it: the slot's attestation certificate and the device's
// attestation (intermediate) certificate that signed it. keys.VerifyAttestation
// checks it against trusted roots.
type Attestation struct {
	Leaf         *x509.Certificate
	Intermediate *x509.Certificate
	// Intermediates are the CA certificates between Intermediate and the
	// root, nearest first: none for a YubiKey before firmware 5.7.4, the
	// PIV attestation CA and the attestation intermediate of Yubico's
	// newer hierarchy from 5.7.4.
	Intermediates []*x509.Certificate
}

// Chain is Intermediate followed by Intermediates: what
// keys.VerifyAttestationChain takes after the leaf.
func (a *Attestation) Chain() []*x509.Certificate {
	return append([]*x509.Certificate{a.Intermediate}, a.Intermediates...)
}

// Certificates is the whole chain below the root, leaf first: what the
// media carry, so that `openssl verify -CAfile ROOT -untrusted FILE FILE`
// completes it.
func (a *Attestation) Certificates() []*x509.Certificate {
	return append([]*x509.Certificate{a.Leaf}, a.Chain()...)
}

// Device is a PIV-like token. Methods that need the PIN take it as an
// argument; callers read it from the terminal and drop it afterwards.
type Device interface {
	Info() Info
	// Retries returns the PIN and PUK tries left.
	Retries() (pin, puk int, err error)
	// VerifyPIN checks the PIN, spending a try if it is wrong.
	VerifyPIN(pin string) error
	ChangePIN(oldPIN, newPIN string) error
	ChangePUK(oldPUK, newPUK string) error
	// Unblock sets a new PIN using the PUK.
	Unblock(puk, newPIN string) error
	// GenerateKey makes a key in an empty slot; ErrSlotOccupied otherwise.
	GenerateKey(pin string, slot Slot, opts KeyOptions) (crypto.PublicKey, error)
	// PublicKey returns the key in a slot; ErrSlotEmpty if there is none.
	PublicKey(slot Slot) (crypto.PublicKey, error)
	Attest(slot Slot) (*Attestation, error)
	// Sign signs msg (not a digest) with the key in slot after verifying
	// the PIN. The device hashes as the algorithm requires.
	Sign(pin string, slot Slot, msg []byte) ([]byte, error)
	Close() error
}

// Errors shared by every implementation; check them with errors.Is.
var (
	ErrSlotOccupied  = hint.New("slot already holds a key", "keyceremony never replaces a key; use a fresh device or another slot")
	ErrSlotEmpty     = errors.New("slot holds no key")
	ErrBadSlot       = errors.New("not a usable PIV slot")
	ErrBlocked       = hint.New("blocked: no tries left", blockedHint)
	ErrNoDevice      = hint.New("device not found", "plug it in and try again ('keyceremony device list' shows the YubiKeys seen; a soft device is its --soft directory)")
	ErrDefaultSecret = hint.New("factory default PIN, PUK or management key", "prepare a YubiKey with 'keyceremony device init --serial N' first; a rehearsal may pass --rehearsal")
	ErrUnsupported   = errors.New("not supported by this device")
	ErrWeakPIN       = hint.New("PIN or PUK must be 6 to 8 characters", "PIV allows 6 to 8 characters")
	// ErrTouchTimeout: the key needs a touch and nobody touched the
	// device before it gave up (a YubiKey blinks for about 15 s). It is
	// not a PIN problem: no PIN try was spent.
	ErrTouchTimeout = hint.New("the device was not touched in time", "touch the YubiKey when it blinks, then try again; no PIN try was spent")
)

const blockedHint = "a blocked PIN is unblocked with the PUK (ykman piv access unblock-pin); a blocked PUK only by resetting the device, which destroys its keys"

// AuthError is a wrong PIN or PUK. Retries is the number of tries left.
type AuthError struct {
	What    string // "PIN" or "PUK"
	Retries int
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("wrong %s, %d tries left", e.What, e.Retries)
}

// Hint advises on a PIN or PUK that spent its last try.
func (e *AuthError) Hint() string {
	if e.Retries == 0 {
		return blockedHint
	}
	return ""
}

// Is makes a wrong PIN or PUK that spent the last try also ErrBlocked, so
// that errors.Is(err, ErrBlocked) is true from the moment it is blocked.
func (e *AuthError) Is(target error) bool {
	return target == ErrBlocked && e.Retries == 0
}

// CheckPIN enforces the PIV rule for PINs and PUKs: 6 to 8 bytes.
func CheckPIN(pin string) error {
	if len(pin) < 6 || len(pin) > 8 {
		return ErrWeakPIN
	}
	return nil
}

// slotSigner adapts a slot on a device to keys.Signer.
type slotSigner struct {
	dev  Device
	slot Slot
	pin  string
	key  *keys.Key
}

// KeyReplacer is implemented by a device that was opened to replace keys
// already in its slots (the PIV backend's destructive option); a ceremony
// checks it before refusing an occupied slot in its pre-flight.
type KeyReplacer interface {
	ReplacesKeys() bool
}

// DeviceCertifier is implemented by a device that shows its own
// attestation certificate (PIV slot f9) before it holds any key, with the
// CA certificates it knows above it (nearest first), so that a ceremony
// can check in its pre-flight that the device's attestations will chain
// to the trusted roots before the first key is generated.
type DeviceCertifier interface {
	DeviceCertificate() (f9 *x509.Certificate, above []*x509.Certificate, err error)
}

// KeyClearer is implemented by a device that can say how the key in a
// slot is removed: the exact command for the people in the room (with the
// device's serial and the slot), or how to reset the device when no
// command removes one key. A ceremony prints it for every key it left
// behind when it failed after generating keys.
type KeyClearer interface {
	ClearKeyCommand(slot Slot) string
}

// NewSigner returns a keys.Signer that signs with the key in slot, using
// pin for every signature. The PIN stays in memory only as long as the
// signer does.
func NewSigner(dev Device, slot Slot, pin string) (keys.Signer, error) {
	pub, err := dev.PublicKey(slot)
	if err != nil {
		return nil, fmt.Errorf("reading slot %s of %s: %w", slot, dev.Info(), err)
	}
	k, err := keys.FromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("slot %s of %s: %w", slot, dev.Info(), err)
	}
	return &slotSigner{dev: dev, slot: slot, pin: pin, key: k}, nil
}

func (s *slotSigner) Key() *keys.Key { return s.key }

// Sign signs and then verifies the signature against the slot's public
// key before returning it, so a faulty device cannot hand back a bad one.
func (s *slotSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.dev.Sign(s.pin, s.slot, msg)
	if err != nil {
		return nil, fmt.Errorf("signing with slot %s of %s: %w", s.slot, s.dev.Info(), err)
	}
	if err := s.key.Verify(msg, sig); err != nil {
		return nil, fmt.Errorf("signature from slot %s of %s: %w", s.slot, s.dev.Info(), err)
	}
	return sig, nil
}

// WithDefaults fills in unset policies the way a YubiKey does: PIN policy
// "always" for the signature slot 9c and "once" elsewhere, touch "never".
func (o KeyOptions) WithDefaults(slot Slot) KeyOptions {
	if o.PINPolicy == "" {
		o.PINPolicy = PINPolicyOnce
		if slot == SlotSignature {
			o.PINPolicy = PINPolicyAlways
		}
	}
	if o.TouchPolicy == "" {
		o.TouchPolicy = TouchPolicyNever
	}
	return o
}
