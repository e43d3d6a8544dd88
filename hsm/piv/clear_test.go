//go:build cgo && (linux || darwin)

package piv

import (
	"strings"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm"
)

// The command that clears an orphan key names the device's serial and
// the slot; before firmware 5.7 no command deletes one key, and the
// command says that a reset erases every key.
func TestClearKeyCommand(t *testing.T) {
	d := &Device{info: hsm.Info{Kind: "yubikey", Serial: 31415926, Firmware: "5.7.1"}, version: piv.Version{Major: 5, Minor: 7, Patch: 1}}
	if got, want := d.ClearKeyCommand(0x83), "ykman --device 31415926 piv keys delete 83 && ykman --device 31415926 piv certificates delete 83"; got != want {
		t.Errorf("5.7.1: %q, want %q", got, want)
	}
	old := &Device{info: hsm.Info{Kind: "yubikey", Serial: 27182818, Firmware: "5.4.3"}, version: piv.Version{Major: 5, Minor: 4, Patch: 3}}
	got := old.ClearKeyCommand(0x9c)
	for _, w := range []string{"ykman --device 27182818 piv reset", "ERASES EVERY PIV KEY", "keyceremony device init --serial 27182818", "--destroy-existing-keys-i-really-mean-it"} {
		if !strings.Contains(got, w) {
			t.Errorf("5.4.3: %q does not say %q", got, w)
		}
	}
	if strings.Contains(got, "keys delete") {
		t.Errorf("5.4.3: %q offers a delete the firmware lacks", got)
	}
}
