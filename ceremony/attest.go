package ceremony

import (
	"fmt"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/keys"
)

// The ceremony's own attestation checks. They are the same for every
// device kind (soft, PIV, any later backend), whatever the backend checked
// itself: a backend with a bug, or a device that lies, is caught here.

// Errors of the attestation pre-flight; check them with errors.Is.
var (
	// ErrNoDeviceCertificate means a device cannot show its attestation
	// certificate before it holds a key, so the pre-flight cannot check
	// that its keys' attestations will chain to the trusted roots.
	ErrNoDeviceCertificate = hint.New("the device cannot show its attestation certificate before a key is generated",
		"a bootstrap needs devices whose attestation can be checked before the first key (YubiKeys and soft devices can)")
	// ErrAttestationRoots means a device's attestation certificate does
	// not chain to the attestation roots the ceremony trusts.
	ErrAttestationRoots = hint.New("the device's attestation does not chain to the trusted attestation roots",
		"a YubiKey chains to Yubico's roots (built in); a PIV emulator's card only with --piv --rehearsal --attestation-ca FILE; soft devices to their --soft-ca; nothing was generated")
)

// checkAttestationRoot checks, before the first key, that the device
// shows its attestation certificate (hsm.DeviceCertifier) and that it
// chains to b.Roots at the ceremony's time, so that no key is generated
// on one device when another's attestation could never be accepted.
func (b *Bootstrap) checkAttestationRoot(d hsm.Device) error {
	dc, ok := d.(hsm.DeviceCertifier)
	if !ok {
		return fmt.Errorf("%s: %w", d.Info(), ErrNoDeviceCertificate)
	}
	f9, above, err := dc.DeviceCertificate()
	if err != nil {
		return fmt.Errorf("reading the attestation certificate of %s: %w", d.Info(), err)
	}
	if _, err := keys.AttestationPathAt(f9, above, b.Roots, b.Now); err != nil {
		return fmt.Errorf("%s: %w: %w", d.Info(), ErrAttestationRoots, err)
	}
	return nil
}

// checkAttestation verifies the attestation of a key just generated in
// slot of the device info names: the chain to b.Roots with every
// certificate valid at the ceremony's time, the device's serial, the slot
// asked for, the configured PIN and touch policies, and the key the device
// returned. A refusal names the field and both values
// (*keys.AttestationMismatch).
func (b *Bootstrap) checkAttestation(info hsm.Info, slot hsm.Slot, opts hsm.KeyOptions, k *keys.Key, att *hsm.Attestation) (*keys.Attested, error) {
	if att == nil || att.Leaf == nil || att.Intermediate == nil {
		return nil, fmt.Errorf("attestation of slot %s of %s: missing certificate: %w", slot, info, keys.ErrAttestationChain)
	}
	o := opts.WithDefaults(slot)
	a, err := keys.VerifyAttestationFor(att.Leaf, att.Chain(), b.Roots, keys.Expected{
		Serial:      info.Serial,
		Slot:        slot.String(),
		PINPolicy:   string(o.PINPolicy),
		TouchPolicy: string(o.TouchPolicy),
		Key:         k,
		At:          b.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("attestation of slot %s of %s: %w", slot, info, err)
	}
	return a, nil
}
