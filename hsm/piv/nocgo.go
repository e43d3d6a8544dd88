//go:build !cgo || !(linux || darwin)

package piv

import (
	"crypto"
	"fmt"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/hint"
)

// errNotCompiled is what every constructor and method returns in a build
// without cgo.
var errNotCompiled = fmt.Errorf("%w: %w", errNoCgo, hsm.ErrUnsupported)

var errNoCgo = hint.New("PIV support is not compiled in (built without cgo)", "YubiKeys need the cgo build: make build (it needs libpcsclite-dev and pkg-config)")

// Device is a YubiKey; in this build none can be opened.
type Device struct{}

var _ hsm.Device = (*Device)(nil)

// List reports that PIV support is not compiled in.
func List() ([]hsm.Info, error) { return nil, errNotCompiled }

// ListCards reports that PIV support is not compiled in.
func ListCards() ([]Card, error) { return nil, errNotCompiled }

// Open reports that PIV support is not compiled in.
func Open(serial uint32, opts Options) (*Device, error) { return nil, errNotCompiled }

// OpenAll reports that PIV support is not compiled in.
func OpenAll(opts Options) ([]*Device, error) { return nil, errNotCompiled }

func (d *Device) Info() hsm.Info                         { return hsm.Info{Kind: Kind} }
func (d *Device) Reader() string                         { return "" }
func (d *Device) Initialize(newPIN, newPUK string) error { return errNotCompiled }
func (d *Device) Defaults() (Defaults, error)            { return Defaults{}, errNotCompiled }
func (d *Device) CheckFactoryFresh() error               { return errNotCompiled }
func (d *Device) Retries() (int, int, error)             { return 0, 0, errNotCompiled }
func (d *Device) VerifyPIN(string) error                 { return errNotCompiled }
func (d *Device) ChangePIN(string, string) error         { return errNotCompiled }
func (d *Device) ChangePUK(string, string) error         { return errNotCompiled }
func (d *Device) Unblock(string, string) error           { return errNotCompiled }
func (d *Device) GenerateKey(string, hsm.Slot, hsm.KeyOptions) (crypto.PublicKey, error) {
	return nil, errNotCompiled
}
func (d *Device) PublicKey(hsm.Slot) (crypto.PublicKey, error)  { return nil, errNotCompiled }
func (d *Device) Attest(hsm.Slot) (*hsm.Attestation, error)     { return nil, errNotCompiled }
func (d *Device) Sign(string, hsm.Slot, []byte) ([]byte, error) { return nil, errNotCompiled }
func (d *Device) Close() error                                  { return nil }
