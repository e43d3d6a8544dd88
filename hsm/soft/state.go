package soft

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
)

// Warning is the "warning" field of every JSON file this package writes.
const Warning = "INSECURE software device: keys are not protected by hardware"

// AttestationPassphrase encrypts a device's attestation key and a soft CA's
// key, which must be usable without a PIN. It is public, so it protects
// nothing.
const AttestationPassphrase = "INSECURE soft device attestation key: this passphrase is public"

const (
	stateFile  = "state.json"
	caFile     = "ca.json"
	readmeFile = "README-INSECURE.txt"

	stateFormat  = "keyceremony-soft-device"
	caFormat     = "keyceremony-soft-ca"
	stateVersion = 2 // 2: the kdf field
	caVersion    = 1

	maxTries  = 3
	maxFile   = 1 << 20 // state and CA files are a few KiB
	firmware  = "5.7.4"
	formOther = 0x00 // "unspecified" in Yubico's form factor extension
)

// ErrBadState is a device or CA file that does not parse or does not make
// sense; the error names the file and the field.
var ErrBadState = errors.New("malformed soft device file")

const readme = `INSECURE: this directory holds a keyceremony SOFTWARE device (or its
attestation CA). Its keys are ordinary files protected only by a PIN, not by
hardware, and its attestations can be forged by anyone who can read it.

Use it for demos and tests only. Never trust metadata signed with it.
`

// state is state.json.
type state struct {
	Warning    string                `json:"warning"`
	Format     string                `json:"format"`
	Version    int                   `json:"version"`
	Serial     uint32                `json:"serial"`
	Firmware   string                `json:"firmware"`
	KDF        KDF                   `json:"kdf"`
	PINRetries int                   `json:"pin_retries"`
	PUKRetries int                   `json:"puk_retries"`
	PINWrapped json.RawMessage       `json:"pin_wrapped_device_key"`
	PUKWrapped json.RawMessage       `json:"puk_wrapped_device_key"`
	Attest     attestState           `json:"attestation"`
	Slots      map[string]*slotState `json:"slots"`
}

type attestState struct {
	Certificate string          `json:"certificate"` // PEM
	Key         json.RawMessage `json:"key"`         // PKCS#8, encrypted under AttestationPassphrase
}

type slotState struct {
	Algorithm   hsm.Algorithm   `json:"algorithm"`
	PINPolicy   hsm.PINPolicy   `json:"pin_policy"`
	TouchPolicy hsm.TouchPolicy `json:"touch_policy"`
	PublicKey   string          `json:"public_key"`  // PKIX PEM
	PrivateKey  json.RawMessage `json:"private_key"` // PKCS#8, encrypted under the device key
}

// parseState reads state.json strictly: unknown fields, trailing data and
// values a device could not have are errors.
func parseState(b []byte) (*state, error) {
	var s state
	if err := strictJSON(b, stateFile, &s); err != nil {
		return nil, err
	}
	switch {
	case s.Warning != Warning:
		return nil, fmt.Errorf("field warning: %w", ErrBadState)
	case s.Format != stateFormat || s.Version != stateVersion:
		return nil, fmt.Errorf("format %q version %d, want %q version %d: %w", s.Format, s.Version, stateFormat, stateVersion, ErrBadState)
	case s.Serial == 0:
		return nil, fmt.Errorf("field serial is 0: %w", ErrBadState)
	case s.PINRetries < 0 || s.PINRetries > maxTries:
		return nil, fmt.Errorf("field pin_retries %d out of range: %w", s.PINRetries, ErrBadState)
	case s.PUKRetries < 0 || s.PUKRetries > maxTries:
		return nil, fmt.Errorf("field puk_retries %d out of range: %w", s.PUKRetries, ErrBadState)
	}
	if _, err := ParseKDF(string(s.KDF)); err != nil {
		return nil, fmt.Errorf("field kdf: %w: %w", ErrBadState, err)
	}
	// The secrets use exactly the recorded cost; the attestation key,
	// under a public passphrase, any known cost.
	for name, b := range map[string]json.RawMessage{"pin_wrapped_device_key": s.PINWrapped, "puk_wrapped_device_key": s.PUKWrapped} {
		if err := checkBlob(b, s.KDF); err != nil {
			return nil, fmt.Errorf("field %s: %w", name, err)
		}
	}
	if err := checkBlob(s.Attest.Key, ""); err != nil {
		return nil, fmt.Errorf("field attestation.key: %w", err)
	}
	if _, err := parseFirmware(s.Firmware); err != nil {
		return nil, fmt.Errorf("field firmware: %w", err)
	}
	if _, err := parseCertPEM(s.Attest.Certificate); err != nil {
		return nil, fmt.Errorf("field attestation.certificate: %w", err)
	}
	if s.Slots == nil {
		return nil, fmt.Errorf("field slots missing: %w", ErrBadState)
	}
	for name, sl := range s.Slots {
		if err := sl.check(name, s.KDF); err != nil {
			return nil, fmt.Errorf("field slots.%s: %w", name, err)
		}
	}
	return &s, nil
}

func (sl *slotState) check(name string, kdf KDF) error {
	slot, err := hsm.ParseSlot(name)
	if err != nil || slot.String() != name {
		return fmt.Errorf("not a slot name: %w", ErrBadState)
	}
	if sl == nil {
		return fmt.Errorf("null: %w", ErrBadState)
	}
	if _, ok := keys.PolicyBytes(string(sl.PINPolicy), string(sl.TouchPolicy)); !ok {
		return fmt.Errorf("policies %q/%q: %w", sl.PINPolicy, sl.TouchPolicy, ErrBadState)
	}
	if err := checkBlob(sl.PrivateKey, kdf); err != nil {
		return fmt.Errorf("private_key: %w", err)
	}
	pub, err := parsePublicPEM(sl.PublicKey)
	if err != nil {
		return err
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if sl.Algorithm != hsm.AlgECCP256 || p.Curve != elliptic.P256() {
			return fmt.Errorf("algorithm %q with an ECDSA key: %w", sl.Algorithm, ErrBadState)
		}
	case ed25519.PublicKey:
		if sl.Algorithm != hsm.AlgEd25519 {
			return fmt.Errorf("algorithm %q with an ed25519 key: %w", sl.Algorithm, ErrBadState)
		}
	default:
		return fmt.Errorf("public key of type %T: %w", pub, ErrBadState)
	}
	return nil
}

// strictJSON decodes exactly one JSON value into v with the one strict
// decoder (internal/strictjson); errors name file, line and field path and
// wrap ErrBadState.
func strictJSON(b []byte, file string, v any) error {
	if err := strictjson.Decode(b, file, v); err != nil {
		return fmt.Errorf("%w: %w", err, ErrBadState)
	}
	return nil
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("not one PEM certificate: %w", ErrBadState)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrBadState)
	}
	return c, nil
}

func parsePublicPEM(s string) (any, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("public_key is not one PEM public key: %w", ErrBadState)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public_key: %w: %w", err, ErrBadState)
	}
	return pub, nil
}

func publicPEM(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// readLimited reads a file of at most maxFile bytes.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s is over %d bytes: %w", path, maxFile, ErrBadState)
	}
	return b, nil
}

// writeJSON replaces dir/name atomically with the indented JSON of v.
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(dir, name, append(b, '\n'))
}

// writeAtomic writes data to a temporary file in dir, syncs it and renames
// it over dir/name, then syncs dir, so that a crash leaves the old file or
// the new one.
func writeAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// prepareEmptyDir makes dir (mode 0700) if it does not exist and refuses
// it if it holds anything.
func prepareEmptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty: %w", dir, os.ErrExist)
	}
	return os.WriteFile(filepath.Join(dir, readmeFile), []byte(readme), 0o600)
}

// removeCreated removes what a failed Create or CreateCA wrote into dir.
func removeCreated(dir string) {
	for _, name := range []string{readmeFile, stateFile, caFile} {
		os.Remove(filepath.Join(dir, name))
	}
}
