package piv

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/hint"
)

// Kind is hsm.Info.Kind for YubiKeys.
const Kind = "yubikey"

// Factory defaults of a YubiKey's PIV application.
const (
	DefaultPIN = "123456"
	DefaultPUK = "12345678"
)

// Options say how devices are used.
type Options struct {
	// Roots are the attestation roots a generated key's attestation must
	// chain to. Nil means keys.YubicoRoots(); an emulator's CA is trusted
	// only when a caller puts it here.
	Roots *x509.CertPool
	// Intermediates are extra CA certificates that may lie between a
	// device's f9 certificate and Roots (an emulator's 5.7.4 hierarchy).
	// Yubico's published intermediates are always used.
	Intermediates []*x509.Certificate
	// Rehearsal allows factory-default PINs, PUKs and management keys, for
	// dry runs with throwaway devices. Never set it for a real ceremony.
	Rehearsal bool
	// DestroyExistingKeysIReallyMeanIt lets GenerateKey replace a key that
	// is already in the slot, destroying it for good. The CLI sets it only
	// after an alarmingly named flag and a typed confirmation.
	DestroyExistingKeysIReallyMeanIt bool
}

// Errors of this package; check them with errors.Is.
var (
	// ErrAlreadyInitialized is returned by Initialize for a device whose
	// PIN, PUK or management key is no longer the factory default.
	ErrAlreadyInitialized = hint.New("device is not factory-fresh (already initialized?)", "keyceremony never resets a device; reset it with ykman piv reset if you really mean to")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("device is closed")
	// ErrBusy is wrapped by *BusyError: another program holds a reader's
	// card exclusively (a PC/SC sharing violation).
	ErrBusy = errors.New("reader busy: another program holds the card exclusively")
	// ErrNoPCSC means the smart card service could not list its readers.
	ErrNoPCSC = hint.New("cannot list the smart card readers", "is pcscd running (apt-get install pcscd) and are the YubiKeys plugged in? 'keyceremony device list' shows what is seen")
)

// BusyError says that readers hold cards another program has connected to
// exclusively, so that nobody else can use them. gpg's scdaemon does so by
// default with every YubiKey it sees. It is ErrBusy.
type BusyError struct {
	Readers []string
}

// BusyHint is what the people in the room should do about a busy reader.
const BusyHint = "stop gpg's scdaemon with 'gpgconf --kill scdaemon' " +
	"(and add 'disable-ccid' to ~/.gnupg/scdaemon.conf so it does not come back), " +
	"or close the other smart card program, then try again"

func (e *BusyError) Error() string {
	q := make([]string, len(e.Readers))
	for i, r := range e.Readers {
		q[i] = fmt.Sprintf("%q", r)
	}
	return fmt.Sprintf("reader %s is busy: another program holds it, most likely gpg's scdaemon", strings.Join(q, ", "))
}

// Hint is BusyHint.
func (e *BusyError) Hint() string { return BusyHint }

// Is makes a busy reader ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// WrongDeviceError says that a reader holds a device other than the one
// wanted. It is also hsm.ErrNoDevice.
type WrongDeviceError struct {
	Reader    string
	Want, Got uint32
}

func (e *WrongDeviceError) Error() string {
	return fmt.Sprintf("reader %q holds yubikey %d, not yubikey %d: insert yubikey %d", e.Reader, e.Got, e.Want, e.Want)
}

// Is makes a wrong device also hsm.ErrNoDevice.
func (e *WrongDeviceError) Is(target error) bool { return target == hsm.ErrNoDevice }

// AbsentError says that no reader holds the device wanted; Present are
// the serials of the YubiKeys the readers hold (a laptop's ports may all
// be taken). It is also hsm.ErrNoDevice.
type AbsentError struct {
	Serial  uint32
	Present []uint32
}

func (e *AbsentError) Error() string {
	present := "none"
	if len(e.Present) > 0 {
		s := make([]string, len(e.Present))
		for i, p := range e.Present {
			s[i] = fmt.Sprint(p)
		}
		present = strings.Join(s, ", ")
	}
	return fmt.Sprintf("yubikey %d is not plugged in (present: %s)", e.Serial, present)
}

// Is makes an absent device also hsm.ErrNoDevice.
func (e *AbsentError) Is(target error) bool { return target == hsm.ErrNoDevice }

// Card is a device found in a reader.
type Card struct {
	hsm.Info
	Reader string
}

// Defaults says which secrets of a device are still the factory default.
type Defaults struct {
	PIN, PUK, ManagementKey bool
}

// Any reports whether any secret is still the factory default.
func (d Defaults) Any() bool { return d.PIN || d.PUK || d.ManagementKey }

// All reports whether the device is factory-fresh.
func (d Defaults) All() bool { return d.PIN && d.PUK && d.ManagementKey }
