// Command pivemu runs an emulated PIV card (a YubiKey 5 look-alike, package
// hsm/pivemu) against vsmartcard's vpcd, so that the real PC/SC stack can
// be exercised without hardware. It is TEST MACHINERY: it is not part of
// the keyceremony release binary, its attestation CA exists only in this
// process (and in the --ca-cert file it writes, for a rehearsal's
// --attestation-ca), and its keys are no secret.
//
// Usage:
//
//	pivemu --vpcd 127.0.0.1:35963 --serial 20000001 [--firmware 5.7.4] [--ca-cert FILE]
//
// --ca-cert writes the whole chain above the card's slot f9 certificate:
// the emulator's root, and for firmware 5.7.4 and later (which chains
// through an intermediate, as Yubico's newer hierarchy does) that
// intermediate too, so that a rehearsal's --attestation-ca completes it.
//
// It runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("pivemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("vpcd", "127.0.0.1:35963", "vpcd address (HOST:PORT)")
	serial := fs.Uint("serial", 20000001, "serial number of the emulated card")
	caCert := fs.String("ca-cert", "", "write the emulator's attestation CA chain (PEM: root, then any intermediate) to this new file")
	firmware := fs.String("firmware", pivemu.DefaultVersion.String(), "firmware version the card reports (MAJOR.MINOR.PATCH)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "pivemu: error: unexpected arguments %q\n", fs.Args())
		return 2
	}
	v, err := parseVersion(*firmware)
	if err != nil {
		fmt.Fprintf(stderr, "pivemu: error: --firmware: %v\n", err)
		return 2
	}
	if err := serve(*addr, *serial, v, *caCert, stderr); err != nil {
		fmt.Fprintf(stderr, "pivemu: error: %v\n", err)
		return 1
	}
	return 0
}

// parseVersion reads MAJOR.MINOR.PATCH, each a number from 0 to 255 (one
// byte each in the attestation's firmware extension).
func parseVersion(s string) (pivemu.Version, error) {
	var v pivemu.Version
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("%q is not MAJOR.MINOR.PATCH", s)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 255 || strconv.Itoa(x) != p {
			return v, fmt.Errorf("%q: part %d (%q) is not a number from 0 to 255", s, i+1, p)
		}
		n[i] = x
	}
	if n == [3]int{} {
		return v, fmt.Errorf("%q is not a firmware version", s)
	}
	return pivemu.Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// chainPEM is the CA chain above a card of firmware v's f9 certificate,
// root first: the intermediate exists from 5.7.4.
func chainPEM(ca *pivemu.CA, v pivemu.Version) ([]byte, error) {
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
	if v.AtLeast(5, 7, 4) {
		inter, err := ca.Intermediate()
		if err != nil {
			return nil, err
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Cert.Raw})...)
	}
	return out, nil
}

func serve(addr string, serial uint, v pivemu.Version, caCert string, stderr io.Writer) error {
	if serial == 0 || serial > math.MaxUint32 {
		return errors.New("--serial must be a positive 32-bit number")
	}
	ca, err := pivemu.NewCA()
	if err != nil {
		return err
	}
	if caCert != "" {
		chain, err := chainPEM(ca, v)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(caCert, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("writing the emulator's ca certificate: %w", err)
		}
		_, err = f.Write(chain)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(caCert)
			return fmt.Errorf("writing the emulator's ca certificate: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "emulated PIV card %d, firmware %s, on %s (TESTS ONLY; its attestation CA exists only in this process)\n", serial, v, addr)
	return pivemu.Serve(ctx, pivemu.Config{Serial: uint32(serial), Version: v, Addr: addr, CA: ca})
}
