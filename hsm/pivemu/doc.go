// Package pivemu emulates a YubiKey 5's PIV application, so that the real
// PC/SC path (piv-go -> libpcsclite -> pcscd -> vsmartcard's vpcd reader ->
// card) can be exercised in tests without hardware.
//
// A Card is in-memory state answering command APDUs (Card.Transmit, usable
// directly in unit tests). Card.Serve, or Serve(ctx, cfg), inserts it into
// a vpcd reader: the card is vpcd's TCP client, with 2-byte big-endian
// length framing; one-byte messages are control (00 power off, 01 on,
// 02 reset, 04 ATR: only 04 is answered, with ATR, a YubiKey 5's, which
// advertises T=1). The card keeps its state across disconnections.
//
// What it implements, as a YubiKey 5 on firmware Config.Version (default
// 5.7.1) does: SELECT (PIV, plus the management application's READ CONFIG
// for the form factor and the OTP application's serial for firmware < 5),
// GET VERSION, GET SERIAL, VERIFY with retry counters (63Cx, 6983 when
// blocked, an empty VERIFY reports status), CHANGE REFERENCE for PIN and
// PUK (new values of 6 to 8 bytes), RESET RETRY COUNTER, SET PIN RETRIES,
// management-key mutual and one-way authentication (3DES, AES-128/192/256;
// the factory key is 0102..08 x3, as AES-192 from 5.7 and 3DES before,
// unless Config.ManagementKeyAlgorithm says otherwise), SET MANAGEMENT
// KEY (touch flag recorded), GENERATE for P-256, P-384 and Ed25519 (0xE0,
// firmware 5.7) with PIN and touch policies, GENERAL AUTHENTICATE signing,
// ATTEST, GET/PUT DATA (certificates 5FC1xx, 5FFF01 for slot f9, the
// PIN-protected 5FC109 and admin 5FFF00 objects that yubikey tools use for
// a PIN-protected management key; 7E discovery), GET METADATA for PIN,
// PUK, management key and key slots (with the default-value flags; 6A88
// for an empty or unknown slot, as a YubiKey answers), MOVE KEY (firmware
// 5.7: move a key to an empty slot, or delete it, as ykman 5's piv keys
// move and delete do; not for the attestation key), RESET
// (only after PIN and PUK are blocked; the attestation key survives),
// command chaining (CLA 10) and 61xx/GET RESPONSE for long answers, and
// extended-length APDUs. RSA and key import are not implemented.
//
// Security status (PIN verified, management key authenticated) lasts until
// the next SELECT, power off or reset. Signing enforces the PIN policy
// (once: verified in this session; always: verified since the last
// signature). Touch is immediate and counted (Card.Touches) unless
// Config.ManualTouch: then the card waits, as a YubiKey blinks, until the
// test calls Card.Touch (Card.TouchRequests says when it starts waiting)
// or Config.TouchTimeout passes, and then answers 6982 as a YubiKey does.
// A key with touch policy cached needs one touch per 15 s.
//
// Attestation, as a real YubiKey's: each card has an RSA-2048 attestation
// key in slot f9 whose certificate ("Yubico PIV Attestation") is signed
// sha256WithRSA, with critical basic constraints CA:TRUE pathlen:0, the
// firmware extension and no key usage or key identifiers. Before firmware
// 5.7.4 Config.CA (NewCA makes an RSA-2048 root named "keyceremony pivemu
// emulator CA (not Yubico)") signs it directly, as Yubico's PIV root does;
// from 5.7.4 the CA's Intermediate does, as in Yubico's newer hierarchy
// (Card.AttestationIntermediates lists it; like Yubico's, it is not on the
// card). ATTEST returns a certificate "YubiKey PIV Attestation <slot>"
// with the f9 certificate's validity and Yubico's extensions:
// 1.3.6.1.4.1.41482.3.3 firmware (3 raw bytes), .3.7 serial (DER INTEGER),
// .3.8 PIN and touch policy (2 raw bytes), .3.9 form factor (1 raw byte).
// piv-go's (*piv.Verifier).Verify with the emulator CA as root accepts it;
// piv.Verify with Yubico's roots rejects it.
//
// Faults: Config.RemoveAfter (or Card.RemoveAfter) pulls the card out after
// that many command APDUs (Serve returns ErrRemoved; piv-go then fails
// with "transmitting request: an attempt was made to end a non-existent
// transaction"); Config.Latency delays every answer.
//
// # The test environment
//
// Install the packages with scripts/install-test-deps (as root; Debian
// bookworm): pcscd, libpcsclite-dev, pkg-config, vsmartcard-vpcd,
// yubico-piv-tool, opensc, yubikey-manager (ykman 4.0.9), and ykman 5.6.1
// unpacked into .deps/ykman5 (pcsctest.Ykmans finds both). Go tests then
// call pcsctest.Start(t, n, cfgs...)
// for a private pcscd with n emulated cards; it fails the test (never
// skips) when something is missing. What it does and why:
//
//   - pcscd ignores PCSCLITE_CSOCK_NAME and always uses /run/pcscd, so it
//     runs as `unshare -m sh -c 'mount --bind DIR /run/pcscd && exec pcscd
//     --foreground -c CONFDIR'` (root needed). Clients honour the variable;
//     libpcsclite reads it once per process, so pcsctest sets it once per
//     process to a fixed path and runs one Env per process at a time.
//   - vpcd's reader.conf entry (DEVICENAME /dev/null:PORT) gives two slots,
//     on TCP ports PORT and PORT+1, bound on all interfaces. vpcd keeps its
//     slots in static variables, so a second entry with the same LIBPATH
//     silently steals the first one's slots; pcsctest gives every entry its
//     own copy of libifdvpcd.so and its own FRIENDLYNAME (entries with the
//     same name get the same reader names). Readers are named like a
//     YubiKey 5's USB reader, so that ykman lists them: "Yubico YubiKey
//     OTP+FIDO+CCID A 00 00", "... A 00 01", "... B 00 00", ...
//   - Port pairs are random in 20000-31999 (below the ephemeral range),
//     checked free, and locked with flock under $TMPDIR/pcsctest-ports, so
//     test processes running at once do not collide.
//   - Cards dial vpcd only after pcscd has made its socket; a connection
//     vpcd does not poll within 2 s is redialled.
//   - pcscd notices a card in about 0.4 s. piv.Open in piv-go v2.6.0 leaks
//     its PC/SC handle when SELECT fails, which blocks the reader for the
//     rest of the process: so never piv.Open a reader whose card pcscd may
//     not have noticed coming or going. Env.Insert and Env.WaitRemoved
//     wait for pcscd (via `opensc-tool -l`).
//   - Env.Environ() gives independent clients (yubico-piv-tool -r READER,
//     pkcs11-tool --module /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so,
//     ykman --reader READER) the private pcscd, and a PATH whose pkill is
//     a stub that refuses: ykman runs `pkill -9 scdaemon` when a reader is
//     busy, which would end other people's processes. yubico-piv-tool 2.2.0 speaks 3DES management keys
//     only (configure the card with ManagementKeyAlgorithm: Alg3DES), has
//     no read-public-key action, and its selfsign-certificate fails under
//     OpenSSL 3 before talking to the card.
//   - PCSCTEST_DEBUG=1 runs pcscd with --debug --apdu; its log is printed
//     when a test fails. Config.Logf traces the card side (never data).
//
// Measured on a 2-core CI machine: one APDU round trip through piv-go and
// the whole stack takes about 0.1 ms (BenchmarkAPDURoundTrip), a P-256
// signature with PIN policy once about 0.23 ms; Start with three cards
// takes about 0.5 s, plus about 0.13 s a card for its RSA-2048 attestation
// key (BenchmarkNewCard, 2 cores shared with other work).
package pivemu
