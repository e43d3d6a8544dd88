// Package piv is the hsm.Device backend for real YubiKeys, on
// github.com/go-piv/piv-go/v2 and the PC/SC stack (libpcsclite, pcscd).
//
// It promises, beyond the contract of package hsm:
//   - A device is found by its serial number, never by reader name alone:
//     every operation checks that the card in the reader is the device it
//     opened (a different card is a *WrongDeviceError, which is also
//     hsm.ErrNoDevice), and a card that leaves its reader mid-operation
//     is hsm.ErrNoDevice with a message that says so.
//   - Factory defaults are refused: outside a rehearsal (Options.Rehearsal),
//     GenerateKey and Sign on a device whose PIN, PUK or management key is
//     still the factory default fail with hsm.ErrDefaultSecret. Initialize
//     turns a factory-fresh device into a prepared one: new PIN and PUK, and
//     a random management key stored PIN-protected the way YubiKey tools
//     store it (the PIN-protected data object 5FC109, and the admin data
//     object 5FFF00 saying so, as ykman's own PIN-protected setup writes
//     them), so that nobody ever has to type or keep the management key
//     and ykman manages the device with the PIN alone. CheckFactoryFresh
//     says beforehand whether Initialize will accept the device.
//   - A reader whose card another program holds exclusively (gpg's
//     scdaemon, by default) is never dropped silently: it is a *BusyError
//     (ErrBusy) naming the reader, the likely holder and what to do. An
//     operation on an opened device waits up to 2 s for a reader that
//     another program holds for a moment (OpenSC connects to every reader
//     to read its features), and fails only if it is held longer.
//   - GenerateKey never replaces a key unless
//     Options.DestroyExistingKeysIReallyMeanIt is set, checks the new key's
//     attestation against Options.Roots (Yubico's roots unless a test gives
//     an emulator's CA), the device's serial and the generated key, and
//     stores the attestation certificate as the slot's certificate so that
//     other PIV clients (yubico-piv-tool, OpenSC) see the key; for a
//     retired slot (82-95) it also updates the key history object 5FC10C,
//     without which OpenSC does not look at retired slots.
//   - Sign verifies the PIN immediately before every signature. A key that
//     needs a touch which does not come (a YubiKey blinks for about 15 s,
//     then answers 6982) is hsm.ErrTouchTimeout, never a PIN error.
//   - Advisories and CheckRootKey name firmware affected by Yubico's
//     security advisory YSA-2024-03 (ECDSA on firmware before 5.7.0).
//
// The backend needs cgo (piv-go and this package call libpcsclite). Built
// with CGO_ENABLED=0 the package still compiles, for the auditor's
// verifier, and every constructor returns an error wrapping
// hsm.ErrUnsupported that says PIV support is not compiled in.
//
// No PIN, PUK or management key is logged, printed or stored by this
// package; the management key lives only on the device and, for the
// length of one operation, in memory.
package piv
