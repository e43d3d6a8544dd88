package ceremony

import (
	"fmt"
	"io"

	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/keys"
)

// YubiKey is a YubiKey plugged in, as 'device list' shows it.
type YubiKey struct {
	piv.Card
	// Advisories are the security advisories that apply to it for the
	// keys a ceremony makes (P-256 root keys).
	Advisories []string
}

// ListYubiKeys lists the YubiKeys plugged in, sorted by serial, with the
// advisories that apply to each. When some readers are busy
// (*piv.BusyError) it returns the YubiKeys it could read and the error.
func ListYubiKeys() ([]YubiKey, error) {
	cards, err := piv.ListCards()
	out := make([]YubiKey, len(cards))
	for i, c := range cards {
		out[i] = YubiKey{Card: c, Advisories: piv.Advisories(c.Info, hsm.AlgECCP256)}
	}
	return out, err
}

// InitYubiKey prepares the factory-fresh YubiKey with the given serial:
// it asks on the terminal for the new PIN and PUK (each twice; factory
// defaults and bad lengths refused), stores a random management key
// PIN-protected on the device and sets the new PIN and PUK. A device that
// is not factory-fresh is refused (piv.ErrAlreadyInitialized): it is never
// reset. It reports what it did on show.
func InitYubiKey(serial uint32, rehearsal bool, show io.Writer) error {
	d, err := piv.Open(serial, piv.Options{Roots: keys.YubicoRoots(), Rehearsal: rehearsal})
	if err != nil {
		return err
	}
	defer d.Close()
	// Refuse before anyone chooses a PIN that Initialize would refuse.
	if err := d.CheckFactoryFresh(); err != nil {
		return err
	}
	t, err := tui.Open()
	if err != nil {
		return err
	}
	defer t.Close()
	notDefault := func(def string) func(string) error {
		return func(s string) error {
			if err := hsm.CheckPIN(s); err != nil {
				return err
			}
			if s == def {
				return hsm.ErrDefaultSecret
			}
			return nil
		}
	}
	pin, err := t.NewSecret(fmt.Sprintf("New PIN for %s (6 to 8 characters): ", d.Info()), notDefault(piv.DefaultPIN))
	if err != nil {
		return err
	}
	puk, err := t.NewSecret(fmt.Sprintf("New PUK for %s (6 to 8 characters): ", d.Info()), notDefault(piv.DefaultPUK))
	if err != nil {
		return err
	}
	if err := d.Initialize(pin, puk); err != nil {
		return err
	}
	fmt.Fprintf(show, "%s initialised: new PIN and PUK set, random management key stored PIN-protected\n", d.Info())
	return nil
}
