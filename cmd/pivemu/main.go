// Command pivemu runs an emulated PIV card (a YubiKey 5 look-alike, package
// hsm/pivemu) against vsmartcard's vpcd, so that the real PC/SC stack can
// be exercised without hardware. It is TEST MACHINERY: it is not part of
// the keyceremony release binary, its attestation CA exists only in this
// process (and in the --ca-cert file it writes, for a rehearsal's
// --attestation-ca), and its keys are no secret.
//
// Usage:
//
//	pivemu --vpcd 127.0.0.1:35963 --serial 20000001 [--ca-cert FILE]
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
	caCert := fs.String("ca-cert", "", "write the emulator's attestation CA certificate (PEM) to this new file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "pivemu: error: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := serve(*addr, *serial, *caCert, stderr); err != nil {
		fmt.Fprintf(stderr, "pivemu: error: %v\n", err)
		return 1
	}
	return 0
}

func serve(addr string, serial uint, caCert string, stderr io.Writer) error {
	if serial == 0 || serial > math.MaxUint32 {
		return errors.New("--serial must be a positive 32-bit number")
	}
	ca, err := pivemu.NewCA()
	if err != nil {
		return err
	}
	if caCert != "" {
		f, err := os.OpenFile(caCert, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("writing the emulator's ca certificate: %w", err)
		}
		err = pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
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
	fmt.Fprintf(stderr, "emulated PIV card %d on %s (TESTS ONLY; its attestation CA exists only in this process)\n", serial, addr)
	return pivemu.Serve(ctx, pivemu.Config{Serial: uint32(serial), Addr: addr, CA: ca})
}
