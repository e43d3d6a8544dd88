//go:build !cgo || !(linux || darwin)

package piv

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
)

// TestNotCompiled: without cgo every constructor and method says that PIV
// support is not compiled in.
func TestNotCompiled(t *testing.T) {
	_, err1 := List()
	_, err2 := ListCards()
	_, err3 := Open(1, Options{})
	_, err4 := OpenAll(Options{})
	var d Device
	_, err5 := d.Sign("123456", hsm.SlotSignature, nil)
	for _, err := range []error{err1, err2, err3, err4, err5, d.Initialize("a", "b")} {
		if !errors.Is(err, hsm.ErrUnsupported) || !strings.Contains(err.Error(), "PIV support is not compiled in (built without cgo)") {
			t.Errorf("got %v", err)
		}
	}
}
