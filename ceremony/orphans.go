package ceremony

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/keys"
)

// OrphanKey is a key that a failed bootstrap or rotation left in a device's slot: no
// metadata lists it, and a rerun refuses the occupied slot until it is
// cleared.
type OrphanKey struct {
	Role   string
	Device hsm.Info
	Slot   hsm.Slot
	KeyID  string
	// Clear is the exact command that removes the key (the device's
	// hsm.KeyClearer), or what to do when no command is known.
	Clear string
}

func (o OrphanKey) String() string {
	return fmt.Sprintf("%s key in slot %s of %s, key id %s", o.Role, o.Slot, o.Device, o.KeyID)
}

// OrphanKeysError is a bootstrap that failed after it had generated keys.
// It wraps the cause and lists every slot that now holds a key no metadata
// lists, with the command that clears each; its hint repeats the commands
// (after the cause's own advice).
type OrphanKeysError struct {
	Err  error
	Keys []OrphanKey
	// Transcript is where the failed run's transcript was written ("" if
	// it could not be).
	Transcript string
	// Ceremony names the failed ceremony ("" is bootstrap).
	Ceremony string
}

func (e *OrphanKeysError) Error() string {
	places := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		places[i] = fmt.Sprintf("%d slot %s", k.Device.Serial, k.Slot)
	}
	c := e.Ceremony
	if c == "" {
		c = "bootstrap"
	}
	return fmt.Sprintf("%v (the failed %s left %d orphan keys: %s)", e.Err, c, len(e.Keys), strings.Join(places, ", "))
}

func (e *OrphanKeysError) Unwrap() error { return e.Err }

// Hint gives the cause's advice, then the commands that clear the orphan
// keys.
func (e *OrphanKeysError) Hint() string {
	var b strings.Builder
	if h := hint.Of(e.Err); h != "" {
		b.WriteString(h + "\n")
	}
	b.WriteString("before a rerun, clear every orphan key:")
	for _, k := range e.Keys {
		fmt.Fprintf(&b, "\n  %s", k.Clear)
	}
	if e.Transcript != "" {
		fmt.Fprintf(&b, "\nthe failed run's transcript is in %s", e.Transcript)
	}
	return b.String()
}

var _ hint.Hinter = (*OrphanKeysError)(nil)

// attempt is a key generation the bootstrap started: the slot may hold a
// key from then on.
type attempt struct {
	role   string
	serial uint32
	slot   hsm.Slot
	// keyID is the key the device returned, once generated: listed when
	// the slot cannot be read (the device is out of its reader).
	keyID string
}

// orphans looks at every slot a generation was attempted in and returns
// those that now hold a key.
func (s *session) orphans(tried []attempt) []OrphanKey {
	var out []OrphanKey
	for _, t := range tried {
		// Not asked for (a guided bootstrap's device may be out of the
		// port, and the room may have stopped the ceremony): a device
		// that cannot be read now is listed as unreadable.
		d, ok := s.devices[t.serial]
		if !ok {
			continue
		}
		o := OrphanKey{Role: t.role, Device: d.Info(), Slot: t.slot, KeyID: "(unreadable)"}
		if t.keyID != "" {
			o.KeyID = t.keyID + " (as generated; the slot cannot be read now)"
		}
		pub, err := d.PublicKey(t.slot)
		if errors.Is(err, hsm.ErrSlotEmpty) {
			continue
		}
		// A slot that cannot be read is listed too: it may hold a key.
		if err == nil {
			if k, kerr := keys.FromPublicKey(pub); kerr == nil {
				o.KeyID = k.ID()
			}
		}
		o.Clear = clearCommand(d, t.slot)
		out = append(out, o)
	}
	return out
}

func clearCommand(d hsm.Device, slot hsm.Slot) string {
	if kc, ok := d.(hsm.KeyClearer); ok {
		return kc.ClearKeyCommand(slot)
	}
	return fmt.Sprintf("no command is known for %s: reset it as its maker documents", d.Info())
}

// showOrphans prints the orphan keys for the people in the room.
func showOrphans(w io.Writer, os []OrphanKey) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "\nORPHAN KEYS: the bootstrap failed after generating keys. These slots now hold keys that no metadata lists:\n")
	for _, o := range os {
		fmt.Fprintf(w, "  %s\n    clear it with: %s\n", o, o.Clear)
	}
}

// ClearSoftKey removes the key in a slot of the soft device in dir, with
// the device's PIN read from the terminal, or from pinFile if it is not
// empty: what a failed rehearsal's orphan keys are cleared with.
func ClearSoftKey(dir, slot, pinFile string) (hsm.Info, error) {
	sl, err := hsm.ParseSlot(slot)
	if err != nil {
		return hsm.Info{}, err
	}
	pin := TerminalPIN
	if pinFile != "" {
		if pin, err = PINFile(pinFile); err != nil {
			return hsm.Info{}, err
		}
	}
	d, err := soft.Open(dir)
	if err != nil {
		return hsm.Info{}, err
	}
	defer d.Close()
	info := d.Info()
	if _, err := d.PublicKey(sl); err != nil {
		return info, fmt.Errorf("slot %s of %s: %w", sl, info, err)
	}
	tries, _, err := d.Retries()
	if err != nil {
		return info, err
	}
	p, err := pin(info, tries)
	if err != nil {
		return info, fmt.Errorf("reading the PIN of %s: %w", info, err)
	}
	if err := d.DeleteKey(p, sl); err != nil {
		return info, fmt.Errorf("deleting the key in slot %s of %s: %w", sl, info, err)
	}
	return info, nil
}
