package ceremony

import (
	"fmt"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/keys"
)

// The hooks the ceremonies call. Every method is safe on a nil *Guide
// (the batch form), where it does nothing.

// stepTo presents the steps up to id.
func (g *Guide) stepTo(id string) error {
	if g == nil {
		return nil
	}
	return g.through(id)
}

// recordAirgap records the batch form's network check.
func recordAirgap(tr *Transcript, res *airgap.Result) error {
	if res == nil {
		return nil
	}
	if len(res.Up) == 0 {
		return tr.Record("air gap checked", map[string]any{"up": []airgap.Interface{}})
	}
	return tr.Record("network interfaces acknowledged", map[string]any{"up": res.Up, "acknowledged": res.Acknowledged})
}

// opening runs the bootstrap's opening steps (guided), or records the
// batch form's network check.
func (b *Bootstrap) opening(tr *Transcript) error {
	g := b.Guide
	if g == nil {
		return recordAirgap(tr, b.Airgap)
	}
	if g.Script == nil {
		g.Script = BootstrapSteps(b.Config)
	}
	g.pinStep = func(serial uint32) error { return g.through(fmt.Sprintf("preflight/%d", serial)) }
	return g.open(tr, nil)
}

// waitDevice presents the device's step and waits for it if it is not
// connected.
func (g *Guide) waitDevice(s *session, serial uint32) (hsm.Device, error) {
	if d, ok := s.devices[serial]; ok {
		if !g.found[serial] {
			if err := g.through(fmt.Sprintf("device/%d", serial)); err != nil {
				return nil, err
			}
			// A bootstrap's devices come one at a time: this one is
			// asked for if it is not in.
			if !s.optional {
				if _, err := g.turnFor(s, serial, g.purpose); err != nil {
					return nil, err
				}
			}
			g.printf("  present: %s.\n", d.Info())
			if g.found == nil {
				g.found = map[uint32]bool{}
			}
			g.found[serial] = true
			if err := g.turnsLater(s, serial, d); err != nil {
				return nil, err
			}
		} else if !s.optional {
			return g.turnFor(s, serial, g.purpose)
		}
		return d, nil
	}
	d, err := g.device(serial, s.optional)
	if err != nil || d == nil {
		if err == nil {
			err = fmt.Errorf("device %d: keyholder absent: %w", serial, ErrMissingDevice)
		}
		return nil, err
	}
	if d.Info().Serial != serial {
		return nil, fmt.Errorf("looked for device %d, found %s: %w", serial, d.Info(), ErrMissingDevice)
	}
	s.devices[serial] = d
	if g.found == nil {
		g.found = map[uint32]bool{}
	}
	g.found[serial] = true
	if err := g.turnsLater(s, serial, d); err != nil {
		return nil, err
	}
	return d, nil
}

// turnsLater, in a stable signing (where devices come one at a time),
// reads the keys of a device while it is in and says it may be taken out
// until its keyholder's turn.
func (g *Guide) turnsLater(s *session, serial uint32, d hsm.Device) error {
	if !s.optional {
		return nil
	}
	if err := g.scanKeys(serial, d); err != nil {
		return err
	}
	g.printf("  its keys are read: it may be taken out until its keyholder's turn to sign (one port is enough).\n")
	return nil
}

// guidedPIN presents the step that asks for the device's PIN, then
// reads it.
func (g *Guide) guidedPIN(d hsm.Device) (string, error) {
	if g.pinStep != nil {
		if err := g.pinStep(d.Info().Serial); err != nil {
			return "", err
		}
	}
	return g.pin(d)
}

// bootstrapSigners wraps the signers of a role's v1: before each
// keyholder's signature the screen shows the role, the key id in short
// form and its check words, and the keyholder types the check words.
func (g *Guide) bootstrapSigners(role string, spec RoleSpec, signers []keys.Signer) {
	if g == nil {
		return
	}
	for i, sg := range signers {
		serial := spec.Keys[i].Device
		k := sg.Key()
		signers[i] = g.signer(fmt.Sprintf("sign/%s/%d", role, serial), serial, sg, func() error {
			g.printf("  You sign: %s v1 of %s, with the %s key on the YubiKey with serial %d.\n", role, g.Script.Repository, role, serial)
			g.showDigest(fmt.Sprintf("  key id (first %d bytes), as written down when the key was generated:", KeyIDCheckBytes), keyIDCheck(k))
			return g.checkWords(serial, keys.PGPWords(keyIDCheck(k)))
		})
	}
}

// showKey shows a key just generated and attested, for the room to read
// aloud and write down.
func (g *Guide) showKey(role string, serial uint32, k *keys.Key) {
	if g == nil {
		return
	}
	g.printf("  attestation verified: the %s key was generated on the YubiKey with serial %d.\n", role, serial)
	g.showDigest(fmt.Sprintf("  key id %s..., first %d bytes (read aloud, write on the run sheet):", k.ID()[:16], KeyIDCheckBytes), keyIDCheck(k))
}

// closing shows the transcript digest and presents the remaining steps.
// The media are written by then: whatever the room types, the ceremony
// stands.
func (g *Guide) closing(digest [32]byte) {
	// The media are written: stopping now leaves the closing steps to
	// the run sheet, and the ceremony stands.
	g.tr = nil
	err := g.through("transcript")
	if err == nil {
		g.showDigest("transcript digest (read it aloud; write it on the run sheet):", digest[:])
		err = g.rest()
	}
	if err != nil {
		g.printf("\n  closing steps not shown (%v): do them from the run sheet.\n", err)
	}
}

// reopenSoft looks for a device in the soft device directories that did
// not exist at the start.
func (d *Devices) reopenSoft(pending []string) func(serial uint32) (hsm.Device, error) {
	return func(serial uint32) (hsm.Device, error) {
		for i := 0; i < len(pending); i++ {
			dev, err := soft.Open(pending[i])
			if err != nil {
				continue
			}
			pending = append(pending[:i], pending[i+1:]...)
			i--
			s := dev.Info().Serial
			if _, dup := d.BySerial[s]; dup {
				dev.Close()
				continue
			}
			d.BySerial[s] = dev
		}
		if dev, ok := d.BySerial[serial]; ok {
			return dev, nil
		}
		return nil, fmt.Errorf("device %d: %w", serial, ErrMissingDevice)
	}
}

// guideDevices gives a guide the devices' late lookup and, for soft
// devices read from a PIN file, that file.
func (g *Guide) guideDevices(devs *Devices) {
	g.Reopen = devs.Reopen
	if devs.FromFile {
		g.PIN = devs.PIN
	}
}

// networkCheck is the batch form's air-gap check: the interfaces up must
// be exactly the ones acknowledged (--network-ack).
func networkCheck(g *Guide, list airgap.Lister, ack []string) (*airgap.Result, error) {
	if g != nil {
		if g.Interfaces == nil {
			g.Interfaces = list
		}
		return nil, nil
	}
	return airgap.Check(list, ack)
}
