package ceremony

import (
	"crypto/sha256"
	"fmt"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// Turns in the guided bootstrap: the devices come one at a time, as a
// laptop with one free port needs. Each device is asked for by serial and
// keyholder for its pre-flight (present, firmware, empty slots,
// attestation root, PIN), again to generate all its keys, again to sign
// everything its keys sign (root, targets, stable v1), and each root
// device once more for the end of the transcript. Between its turns a
// device may be taken out: the PIN typed at its pre-flight is kept in
// memory and given to the YubiKey again (a YubiKey forgets a verified
// PIN when it is taken out), so it is not asked again. A device not in a
// reader, another YubiKey in its reader or a reader held by another
// program is named on the screen (Guide.wait), and the device is looked
// for until it comes.

// setPurpose says, in the insert prompts that follow, what the devices
// are asked for.
func (g *Guide) setPurpose(p string) {
	if g != nil {
		g.purpose = p
	}
}

// turnDone tells the room a device's turn is done and it may be taken
// out.
func (g *Guide) turnDone(serial uint32, what string) error {
	if g == nil {
		return nil
	}
	g.printf("  %s for the YubiKey with serial %d (%s): it may be taken out (the next keyholder may need the port).\n", what, serial, g.who(serial))
	return g.record("device turn done", map[string]any{"device": serial, "turn": what})
}

// roleSigning is one role's v1 to sign: its keys, its signed bytes and
// how signatures are added.
type roleSigning struct {
	role string
	spec RoleSpec
	msg  func() ([]byte, error)
	sign func(...keys.Signer) error
}

// generatedKey is the key generated for a role's key spec.
func generatedKey(gen []GeneratedKey, role string, ks KeySpec) (*GeneratedKey, error) {
	slot, err := hsm.ParseSlot(ks.Slot)
	if err != nil {
		return nil, err
	}
	for i := range gen {
		if g := &gen[i]; g.Role == role && g.Device.Serial == ks.Device && g.Slot == slot {
			return g, nil
		}
	}
	return nil, fmt.Errorf("no %s key was generated in slot %s of device %d: %w", role, slot, ks.Device, ErrMissingDevice)
}

// signInTurns has each device, in its turn, sign every role's v1 its
// keys sign (the step, the check words, the touch, each signature
// verified: bootstrapSigners); the signers returned give those
// signatures back without the device.
func (b *Bootstrap) signInTurns(s *session, steps []roleSigning, gen map[string][]*GeneratedKey) (map[string][]keys.Signer, error) {
	g := b.Guide
	g.setPurpose(" to sign")
	out := map[string][]keys.Signer{}
	for _, st := range steps {
		sgs := make([]keys.Signer, len(st.spec.Keys))
		for i, ks := range st.spec.Keys {
			k := gen[st.role][i]
			sgs[i] = &portSigner{g: g, sess: s, serial: ks.Device, slot: k.Slot, key: k.Key, purpose: " to sign"}
		}
		g.bootstrapSigners(st.role, st.spec, sgs)
		for i := range sgs {
			sgs[i] = &presigned{Signer: sgs[i], sigs: map[[32]byte][]byte{}}
		}
		out[st.role] = sgs
	}
	for _, serial := range b.Config.Devices() {
		in := false
		for _, st := range steps {
			for i, ks := range st.spec.Keys {
				if ks.Device != serial {
					continue
				}
				if !in {
					if _, err := g.turnFor(s, serial, " to sign"); err != nil {
						return nil, err
					}
					in = true
				}
				msg, err := st.msg()
				if err != nil {
					return nil, err
				}
				if _, err := tuf.SignBytes(msg, out[st.role][i]); err != nil {
					return nil, fmt.Errorf("signing %s: %w", st.role, err)
				}
			}
		}
		if in {
			if err := g.turnDone(serial, "its signatures are made"); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// presigned keeps the signatures its signer made and gives them back.
type presigned struct {
	keys.Signer
	sigs map[[32]byte][]byte
}

func (p *presigned) Sign(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	if sig, ok := p.sigs[h]; ok {
		return sig, nil
	}
	sig, err := p.Signer.Sign(msg)
	if err == nil {
		p.sigs[h] = sig
	}
	return sig, err
}

// portSigner signs with a key generated in this ceremony on a device
// that may have been taken out since: the device is asked for if it is
// not in, and its slot must still hold the key.
type portSigner struct {
	g       *Guide
	sess    *session
	serial  uint32
	slot    hsm.Slot
	key     *keys.Key
	purpose string
	inner   keys.Signer
}

func (p *portSigner) Key() *keys.Key { return p.key }

func (p *portSigner) Sign(msg []byte) ([]byte, error) {
	d, err := p.g.turnFor(p.sess, p.serial, p.purpose)
	if err != nil {
		return nil, err
	}
	if p.inner == nil {
		pin, err := p.sess.pinFor(d)
		if err != nil {
			return nil, err
		}
		sg, err := hsm.NewSigner(d, p.slot, pin)
		if err != nil {
			return nil, err
		}
		if sg.Key().ID() != p.key.ID() {
			return nil, fmt.Errorf("slot %s of %s holds key %s, not the key %s generated in it: %w", p.slot, d.Info(), sg.Key().ID(), p.key.ID(), ErrMissingDevice)
		}
		p.inner = sg
	}
	return p.inner.Sign(msg)
}

// turnFirst asks for the device before its guided signer says to touch
// it, and says when the turn is done.
type turnFirst struct {
	ps    *portSigner
	inner keys.Signer
}

func (t *turnFirst) Key() *keys.Key { return t.inner.Key() }

func (t *turnFirst) Sign(msg []byte) ([]byte, error) {
	if _, err := t.ps.g.turnFor(t.ps.sess, t.ps.serial, t.ps.purpose); err != nil {
		return nil, err
	}
	sig, err := t.inner.Sign(msg)
	if err != nil {
		return nil, err
	}
	return sig, t.ps.g.turnDone(t.ps.serial, "the end of the transcript signed")
}
