package ceremony

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/keys"
)

// Errors of opening devices; check them with errors.Is.
var (
	// ErrNoDevices means neither YubiKeys nor soft devices were chosen.
	ErrNoDevices = hint.New("no devices given", "pass --piv for the YubiKeys plugged in, or --soft DIR for each software device")
	// ErrMixedDevices means YubiKeys and soft devices were both chosen.
	ErrMixedDevices = hint.New("YubiKeys (--piv) and soft devices (--soft) cannot be mixed", "a ceremony uses either the YubiKeys plugged in or soft devices for a rehearsal")
	// ErrNoSoftCA means soft devices were chosen without their CA.
	ErrNoSoftCA = hint.New("soft devices need their attestation CA (--soft-ca)", "the soft devices' attestations are checked against that CA")
	// ErrPINFileForPIV means a PIN file was given for YubiKeys.
	ErrPINFileForPIV = hint.New("a PIN file (--pin-file) is for soft devices only", "YubiKey PINs are typed on the terminal")
	// ErrAttestationCAOutsideRehearsal means an extra attestation root
	// was asked for outside a rehearsal.
	ErrAttestationCAOutsideRehearsal = hint.New("an extra attestation root (--attestation-ca) is accepted only for YubiKeys in a rehearsal (--piv --rehearsal)", "a real ceremony trusts Yubico's attestation roots only; the extra root is for the PIV emulator")
	// ErrNotConfirmed means the people in the room did not type the
	// confirmation word for a destructive step.
	ErrNotConfirmed = errors.New("not confirmed: no key was touched")
)

// DeviceOptions choose the devices of a ceremony: the YubiKeys plugged in
// (PIV) or INSECURE soft devices, never both.
type DeviceOptions struct {
	// PIV uses every YubiKey plugged in, through PC/SC.
	PIV bool
	// AttestationCA is a PEM file of an extra attestation root accepted
	// beside Yubico's (the PIV emulator's). Only with PIV and Rehearsal;
	// using it prints a warning to Warn.
	AttestationCA string
	// Rehearsal allows YubiKeys still at their factory PIN, PUK or
	// management key.
	Rehearsal bool
	// DestroyExistingKeys lets key generation replace keys already on the
	// YubiKeys, after the confirmation word is typed on the terminal.
	DestroyExistingKeys bool

	// SoftDirs are soft device directories.
	SoftDirs []string
	// SoftCA is the soft devices' attestation CA directory.
	SoftCA string
	// PINFile holds "SERIAL PIN [PUK]" lines for soft devices; without it
	// PINs are read from the terminal.
	PINFile string

	// Warn receives warnings for the people in the room (standard error).
	Warn io.Writer
	// Late lets devices come after the start (the guided ceremony): a
	// soft device directory that does not exist yet is looked at again
	// by Reopen, and a YubiKey is looked for by serial.
	Late bool
}

// Devices are the open devices of a ceremony.
type Devices struct {
	// BySerial are the devices by serial number.
	BySerial map[uint32]hsm.Device
	// Roots are the attestation roots their keys are checked against.
	Roots *x509.CertPool
	// PIN supplies each device's PIN; FromFile says it reads a PIN file.
	PIN      PINSource
	FromFile bool
	// Reopen, with DeviceOptions.Late, looks for a device not connected
	// at the start and adds it to BySerial.
	Reopen func(serial uint32) (hsm.Device, error)
}

// Close closes every device.
func (d *Devices) Close() {
	for _, dev := range d.BySerial {
		dev.Close()
	}
}

// OpenDevices opens the devices opts choose, with their attestation roots
// and PIN source. The caller closes them.
func OpenDevices(opts DeviceOptions) (*Devices, error) {
	switch {
	case opts.PIV && len(opts.SoftDirs) > 0:
		return nil, ErrMixedDevices
	case opts.PIV:
		return openPIV(opts)
	case len(opts.SoftDirs) == 0:
		return nil, ErrNoDevices
	case opts.AttestationCA != "":
		return nil, ErrAttestationCAOutsideRehearsal
	case opts.SoftCA == "":
		return nil, ErrNoSoftCA
	}
	ca, err := soft.LoadCA(opts.SoftCA)
	if err != nil {
		return nil, err
	}
	devs := &Devices{BySerial: map[uint32]hsm.Device{}, Roots: ca.Pool()}
	var pending []string
	for _, dir := range opts.SoftDirs {
		d, err := soft.Open(dir)
		if opts.Late && errors.Is(err, hsm.ErrNoDevice) {
			pending = append(pending, dir)
			continue
		}
		if err != nil {
			devs.Close()
			return nil, err
		}
		devs.BySerial[d.Info().Serial] = d
	}
	if opts.Late {
		devs.Reopen = devs.reopenSoft(pending)
	}
	if opts.PINFile == "" {
		devs.PIN = TerminalPIN
		return devs, nil
	}
	devs.FromFile = true
	if devs.PIN, err = PINFile(opts.PINFile); err != nil {
		devs.Close()
		return nil, err
	}
	return devs, nil
}

func openPIV(opts DeviceOptions) (*Devices, error) {
	if opts.PINFile != "" {
		return nil, ErrPINFileForPIV
	}
	roots, intermediates, err := AttestationRoots(opts)
	if err != nil {
		return nil, err
	}
	if opts.DestroyExistingKeys {
		if err := confirmDestroy(); err != nil {
			return nil, err
		}
	}
	popts := piv.Options{Roots: roots, Intermediates: intermediates, Rehearsal: opts.Rehearsal, DestroyExistingKeysIReallyMeanIt: opts.DestroyExistingKeys}
	list, err := piv.OpenAll(popts)
	if opts.Late && errors.Is(err, piv.ErrBusy) {
		// The devices that can be read; the guided ceremony names a busy
		// one when it asks for it.
		cards, _ := piv.ListCards()
		list, err = nil, nil
		for _, c := range cards {
			if d, err := piv.Open(c.Serial, popts); err == nil {
				list = append(list, d)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	devs := &Devices{BySerial: map[uint32]hsm.Device{}, Roots: roots, PIN: TerminalPIN}
	for _, d := range list {
		devs.BySerial[d.Info().Serial] = d
	}
	if opts.Late {
		devs.Reopen = func(serial uint32) (hsm.Device, error) {
			d, err := piv.Open(serial, popts)
			if err != nil {
				return nil, err
			}
			devs.BySerial[serial] = d
			return d, nil
		}
	}
	return devs, nil
}

// AttestationRoots returns the roots a YubiKey's attestation is checked
// against: Yubico's, plus, in a rehearsal only, the CA certificates in
// opts.AttestationCA (the emulator's: roots, and the intermediates of its
// newer hierarchy), announced on opts.Warn as loudly as it deserves. A
// device's own attestation certificate is refused as a CA
// (keys.ErrNotCA).
func AttestationRoots(opts DeviceOptions) (*x509.CertPool, []*x509.Certificate, error) {
	roots := keys.YubicoRoots()
	if opts.AttestationCA == "" {
		return roots, nil, nil
	}
	if !opts.Rehearsal {
		return nil, nil, ErrAttestationCAOutsideRehearsal
	}
	pemBytes, err := os.ReadFile(opts.AttestationCA)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the extra attestation root: %w", err)
	}
	extra, intermediates, err := keys.ParseAttestationCAs(pemBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("extra attestation root %s: %w", opts.AttestationCA, err)
	}
	if len(extra) == 0 {
		return nil, nil, fmt.Errorf("extra attestation root %s: no self-signed root certificate: %w", opts.AttestationCA, keys.ErrNotCA)
	}
	for _, c := range extra {
		roots.AddCert(c)
	}
	if opts.Warn != nil {
		fmt.Fprintf(opts.Warn, "WARNING: REHEARSAL: an extra attestation root that is NOT Yubico's is trusted (%s).\nWARNING: keys attested by it may not live on a YubiKey. Never use this for a real repository.\n", opts.AttestationCA)
	}
	return roots, intermediates, nil
}

// confirmDestroy has the people in the room type a word before keys
// already on the YubiKeys may be replaced.
func confirmDestroy() error {
	t, err := tui.Open()
	if err != nil {
		return err
	}
	defer t.Close()
	ok, err := t.Confirm("--destroy-existing-keys-i-really-mean-it: keys already in the configured slots will be DESTROYED and cannot be recovered.", "destroy keys")
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotConfirmed
	}
	return nil
}

// TerminalPIN asks for a device's PIN on the terminal, showing its serial
// and the tries left. It never reads standard input.
func TerminalPIN(info hsm.Info, tries int) (string, error) {
	t, err := tui.Open()
	if err != nil {
		return "", err
	}
	defer t.Close()
	left := ""
	if tries >= 0 {
		left = fmt.Sprintf(" (%d tries left)", tries)
	}
	return t.Secret(fmt.Sprintf("PIN for %s%s: ", info, left))
}

// PINFile returns a PIN source that reads soft devices' PINs from a PIN
// file (hsm/soft's format, mode 0600).
func PINFile(path string) (PINSource, error) {
	secrets, err := soft.ReadPINFile(path)
	if err != nil {
		return nil, err
	}
	return func(info hsm.Info, _ int) (string, error) {
		s, ok := secrets[info.Serial]
		if !ok {
			return "", fmt.Errorf("%s has no line in %s: %w", info, path, soft.ErrPINFile)
		}
		return s.PIN, nil
	}, nil
}
