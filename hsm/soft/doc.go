// Package soft is an INSECURE software device for demos and tests: it
// implements hsm.Device with the semantics of a YubiKey's PIV application,
// but its keys live in files on disk, protected only by the PIN. Nothing
// signed with it should ever be trusted in production, and everything it
// writes or shows says so.
//
// # What it promises
//
//   - PIV semantics: slots 9a, 9c, 9d, 9e and 82–95; factory PIN 123456 and
//     PUK 12345678 with 3 tries each; a wrong PIN or PUK spends a try and is
//     an *hsm.AuthError with the tries left, the right one restores all
//     tries, none left is hsm.ErrBlocked; the PUK unblocks the PIN; new PINs
//     and PUKs must be 6 to 8 characters; a key is generated only in an
//     empty slot (hsm.ErrSlotOccupied otherwise) and only with the PIN.
//   - Attestation like a YubiKey's: each device has its own attestation key
//     and "f9" certificate, signed by a per-installation soft CA (CreateCA);
//     Attest returns a slot certificate with Yubico's extensions (firmware,
//     serial, PIN and touch policy, form factor), so keys.VerifyAttestation
//     checks it unchanged, and accepts it only if the caller passes the soft
//     CA's pool (CA.Pool) explicitly.
//   - Signatures that keys.Key.Verify accepts: DER ECDSA over SHA-256 of the
//     message for P-256 keys, plain Ed25519 for ed25519 keys.
//   - Info().Kind is "soft" and Info().Insecure is true.
//
// # What lives in the directory
//
// A device directory holds state.json and README-INSECURE.txt; a CA
// directory holds ca.json and README-INSECURE.txt. Every file contains the
// word INSECURE (the JSON files in a top-level "warning" field). Files are
// replaced atomically (a temporary file in the same directory, synced, then
// renamed), so a crash leaves the old state or the new one, never half.
//
// state.json holds the serial, the KDF cost, the tries left, and for each
// slot the algorithm, policies, public key and the private key encrypted
// in go-securesystemslib's encrypted format (scrypt, then NaCl secretbox).
//
// The scrypt cost is chosen when the device is created (CreateOptions.KDF)
// and recorded in state.json: KDFStandard (N=2^16, r=8, p=1, the default)
// or KDFTest (N=2^10, for test suites only, and shown in the device's
// Info). Every later encryption uses the recorded cost, and a state file
// is refused unless its secrets use exactly that cost: no other
// parameters are accepted, so an edited file cannot make a derivation
// cost gigabytes. Values under the public AttestationPassphrase use the
// test cost, since no KDF protects a published passphrase.
//
// Private keys are encrypted under a
// random 32-byte device key, and that device key is stored twice: encrypted
// under the PIN and under the PUK. So ChangePIN and Unblock re-encrypt one
// value and replace the file in one rename, and a PIN is verified by
// decrypting the copy under it. The device's attestation key, which must
// work without a PIN, and the CA's key are encrypted under the fixed
// passphrase AttestationPassphrase, which is published here and so
// protects nothing: anyone who can read the directory can forge this
// device's attestations. No PIN or PUK is ever written, logged or printed.
//
// A device is meant to be used by one process at a time; every operation
// rereads state.json, so a device reopened later sees every change.
//
// # PIN files for scripted runs
//
// PINs come from the terminal. For demos and scripted runs a PIN file may
// be named on the command line (never a PIN in argv or the environment);
// ReadPINFile reads it. The format, one device per line:
//
//	# keyceremony soft device PINs: INSECURE, demos and tests only
//	# serial  PIN       [PUK]
//	1000001   246813    97531864
//	1000002   135792
//
// Fields are separated by spaces or tabs. Blank lines and lines whose first
// non-blank character is '#' are ignored. The serial is a decimal number
// from 1 to 4294967295, each serial appears once, the PIN and the optional
// PUK are 6 to 8 printable ASCII characters without spaces. The file must
// be a regular file of at most 64 KiB that only its owner can read or
// write (mode 0600 or stricter), as ssh demands of private keys. Any other
// content is an error naming the line.
package soft
