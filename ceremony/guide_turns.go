package ceremony

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
)

// Turns: in a guided stable signing the keyholders' YubiKeys come one at
// a time, as a laptop with one free port needs. Each device is inserted
// at its Devices step, where the screen finds the stable key in it, and
// may then be taken out. At its keyholder's turn to sign it is asked for
// again ("insert the YubiKey with serial N (keyholder: NAME)"), the
// keyholder types the check words and the PIN, and the device signs
// everything that keyholder signs at once: stable and the signed diff.
// Then it may be taken out for the next keyholder's. The end of the
// transcript is a second, short turn each (the PIN the keyholder typed
// is reused). A device not in a reader, another YubiKey in its reader or
// a reader held by another program is named on the screen, and the
// device is looked for until it comes.

// slotKey is a key found in a device's slot.
type slotKey struct {
	slot hsm.Slot
	key  *keys.Key
}

// scanKeys reads the public key of every slot of a device that holds
// one, while it is in (its Devices step), so that its keyholder's turn
// can come later with the device taken out meanwhile. Only an empty slot
// is passed over: any other error reading a slot (a reader held by
// another program past the backend's wait, a card pulled out mid-scan)
// is returned naming the device and the slot, and nothing is kept of
// the scan, so the room sees the cause rather than a key counted
// missing at the signing.
func (g *Guide) scanKeys(serial uint32, d hsm.Device) error {
	if g.keys == nil {
		g.keys = map[uint32][]slotKey{}
	}
	if _, ok := g.keys[serial]; ok {
		return nil
	}
	var found []slotKey
	for slot := hsm.Slot(0x80); slot <= 0x9e; slot++ {
		if !slot.Valid() {
			continue
		}
		pub, err := d.PublicKey(slot)
		if errors.Is(err, hsm.ErrSlotEmpty) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the keys of device %d: slot %s: %w", serial, slot, err)
		}
		// A key of a kind keyceremony does not sign with cannot be one
		// of the ceremony's keys.
		if k, err := keys.FromPublicKey(pub); err == nil {
			found = append(found, slotKey{slot, k})
		}
	}
	g.keys[serial] = found
	return nil
}

// turnSigners returns a turn signer for every key in want that a found
// device's slots held at its Devices step, devices by serial, slots in
// order.
func (g *Guide) turnSigners(sess *session, serials []uint32, want map[string]bool) []keys.Signer {
	var out []keys.Signer
	for _, serial := range serials {
		for _, sk := range g.keys[serial] {
			if !want[sk.key.ID()] {
				continue
			}
			out = append(out, &turnSigner{g: g, sess: sess, serial: serial, slot: sk.slot, key: sk.key, done: map[[32]byte][]byte{}})
			delete(want, sk.key.ID())
		}
	}
	return out
}

// signOrder is the order of the keyholders' turns: that of the
// script's signing steps (the run sheet's), then any other device by
// serial.
func (g *Guide) signOrder(devices map[uint32]hsm.Device) []uint32 {
	var out []uint32
	seen := map[uint32]bool{}
	for _, st := range g.steps {
		if _, ok := devices[st.Device]; ok && strings.HasPrefix(st.ID, "sign/") && !seen[st.Device] {
			seen[st.Device] = true
			out = append(out, st.Device)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(devices)) {
		if !seen[s] {
			out = append(out, s)
		}
	}
	return out
}

// turnSigner signs with a stable key in the keyholder's turn: the device
// asked for if it is not in, the step and check words and PIN the first
// time, then the message asked for and every message of g.also not yet
// signed, each verified as it is made.
type turnSigner struct {
	g      *Guide
	sess   *session
	serial uint32
	slot   hsm.Slot
	key    *keys.Key
	inner  keys.Signer
	done   map[[32]byte][]byte
}

func (t *turnSigner) Key() *keys.Key { return t.key }

func (t *turnSigner) Sign(msg []byte) ([]byte, error) {
	if sig, ok := t.done[sha256.Sum256(msg)]; ok {
		return sig, nil
	}
	g := t.g
	if t.inner == nil {
		if err := g.through(fmt.Sprintf("sign/stable/%d", t.serial)); err != nil {
			return nil, err
		}
	}
	d, err := g.turn(t.sess, t.serial, t.inner != nil)
	if err != nil {
		return nil, err
	}
	if t.inner == nil {
		pin, err := t.sess.pinFor(d)
		if err != nil {
			return nil, err
		}
		sg, err := hsm.NewSigner(d, t.slot, pin)
		if err != nil {
			return nil, err
		}
		if sg.Key().ID() != t.key.ID() {
			return nil, fmt.Errorf("slot %s of %s holds key %s, not the stable key %s it held at its Devices step: %w", t.slot, d.Info(), sg.Key().ID(), t.key.ID(), ErrMissingDevice)
		}
		t.inner = g.stableSigner(t.serial, sg)
	}
	for _, m := range append([][]byte{msg}, g.also...) {
		h := sha256.Sum256(m)
		if _, ok := t.done[h]; ok {
			continue
		}
		sig, err := t.inner.Sign(m)
		if err != nil {
			return nil, err
		}
		t.done[h] = sig
	}
	g.printf("  turn done for the YubiKey with serial %d (%s): it may be taken out (the next keyholder may need the port).\n", t.serial, g.who(t.serial))
	return t.done[sha256.Sum256(msg)], g.record("device turn done", map[string]any{"device": t.serial})
}

// turn makes sure the device with serial is in for its keyholder's turn
// (again: its second turn, for the transcript's end): it is asked for
// and looked for until it answers.
func (g *Guide) turn(sess *session, serial uint32, again bool) (hsm.Device, error) {
	purpose := " to sign"
	if again {
		purpose = " to sign the end of the transcript"
	}
	return g.turnFor(sess, serial, purpose)
}

// turnFor makes sure the device with serial is in, for purpose ("to
// sign", said in the prompt): if it does not answer it is asked for and
// looked for until it does. A PIN typed for it earlier is given to it
// again, and the screen says so.
func (g *Guide) turnFor(sess *session, serial uint32, purpose string) (hsm.Device, error) {
	d, ok := sess.devices[serial]
	if !ok {
		return nil, fmt.Errorf("device %d: %w", serial, ErrMissingDevice)
	}
	look := func() (hsm.Device, error) {
		if _, _, err := d.Retries(); err != nil {
			return nil, err
		}
		return d, nil
	}
	if _, err := look(); err == nil {
		return d, nil
	}
	if _, err := g.wait(serial, false, purpose, look); err != nil {
		return nil, err
	}
	if _, ok := sess.pins[serial]; ok {
		g.printf("  the YubiKey forgot its PIN when it was taken out: the PIN typed for it earlier is given to it again (it is not asked again).\n")
	}
	return d, g.record("device inserted for its turn", map[string]any{"device": serial})
}

// alsoSign has every stable keyholder sign, in their turn, the DSSE
// envelope of payloadType and the payload marshal gives, beside stable.
func (g *Guide) alsoSign(payloadType string, marshal func() ([]byte, error)) error {
	if g == nil {
		return nil
	}
	p, err := marshal()
	if err != nil {
		return err
	}
	g.also = append(g.also, dsse.PAE(payloadType, p))
	return nil
}

// journalClosed: the journal on the medium is closed, and its end is
// signed next. What happens from now on is on the screen only: an entry
// recorded now would be in the in-memory copy and not in the journal,
// and would change the digest the room reads aloud.
func (g *Guide) journalClosed() {
	if g != nil {
		g.tr = nil
		g.also = nil
	}
}
