//go:build cgo

package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

// TestDeviceList lists emulated YubiKeys through the real PC/SC stack and
// flags firmware affected by YSA-2024-03.
func TestDeviceList(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	env := pcsctest.Start(t, 2, pivemu.Config{CA: ca}, pivemu.Config{CA: ca, Version: pivemu.Version{Major: 5, Minor: 4, Patch: 3}})
	code, out, errOut := runCLI("device", "list")
	if code != 0 {
		t.Fatalf("device list: %d %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	for i, c := range env.Cards {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, fmt.Sprint(c.Serial())) {
				found = true
				if affected := strings.Contains(l, "YSA-2024-03"); affected != (i == 1) {
					t.Errorf("card %d: advisory shown=%v: %q", i, affected, l)
				}
			}
		}
		if !found {
			t.Errorf("device list does not show %d:\n%s", c.Serial(), out)
		}
	}
}

// TestPivemuCommand runs the emulator's own binary (cmd/pivemu, no part
// of keyceremony) in a reader slot of a private pcscd, as a card with
// firmware 5.7.4 (which chains through an intermediate, as Yubico's newer
// hierarchy does): piv-go must find its card, the file --ca-cert writes
// must hold the root and then the intermediate, and openssl, given only
// that file, must complete the chain of the card's slot f9 certificate.
func TestPivemuCommand(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	env := pcsctest.Start(t, 1, pivemu.Config{CA: ca})
	env.Remove(t, 0) // free the slot for the binary's card
	dir := t.TempDir()
	caFile := filepath.Join(dir, "pivemu-ca.pem")
	cmd := exec.Command(buildPivemu(t), "--vpcd", env.Addrs[0], "--serial", "24681357", "--firmware", "5.7.4", "--ca-cert", caFile)
	cmd.Env = append(os.Environ(), env.Environ()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	// Polled: the emulator's process starts and pcscd notices its card
	// in their time, which on a loaded machine can be long.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		code, out, _ := runCLI("device", "list")
		if code == 0 && strings.Contains(out, "24681357") {
			if !strings.Contains(out, "5.7.4") {
				t.Errorf("device list does not show firmware 5.7.4:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the card of cmd/pivemu never appeared; its stderr:\n%s", stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if block.Type != "CERTIFICATE" || err != nil || !c.IsCA {
			t.Fatalf("--ca-cert wrote a block that is no CA certificate (%s): %v", block.Type, err)
		}
		chain = append(chain, c)
	}
	if len(chain) != 2 || chain[0].CheckSignatureFrom(chain[0]) != nil || chain[1].CheckSignatureFrom(chain[0]) != nil {
		t.Fatalf("--ca-cert wrote %d certificates, want a self-signed root and an intermediate it signs", len(chain))
	}
	// The card's f9 certificate, read with ykman (a client written
	// against real YubiKeys; both versions, bookworm's 4.0.9 and 5.6.1),
	// completes with openssl from that file alone.
	for _, y := range pcsctest.Ykmans(t) {
		f9 := filepath.Join(dir, "f9-"+y.Version+".pem")
		yk := exec.Command(y.Path, "--reader", env.Readers[0], "piv", "certificates", "export", "f9", f9)
		yk.Env = append(os.Environ(), env.Environ()...)
		if out, err := yk.CombinedOutput(); err != nil {
			t.Fatalf("%s piv certificates export f9: %v\n%s", y, err, out)
		}
		if out, err := exec.Command("openssl", "verify", "-CAfile", caFile, f9).CombinedOutput(); err != nil {
			t.Errorf("openssl does not complete the f9 chain (exported by %s) from the --ca-cert file: %v\n%s", y, err, out)
		}
	}
	// A second emulator may not write over the first one's certificates;
	// a firmware that is no version is refused before anything runs.
	out, err := exec.Command(buildPivemu(t), "--vpcd", env.Addrs[0], "--ca-cert", caFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "file exists") {
		t.Fatalf("a second --ca-cert into the same file: %v %s", err, out)
	}
	out, err = exec.Command(buildPivemu(t), "--firmware", "5.7", "--ca-cert", filepath.Join(dir, "other.pem")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--firmware") {
		t.Fatalf("--firmware 5.7: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.pem")); !os.IsNotExist(err) {
		t.Errorf("a refused --firmware wrote its --ca-cert file: %v", err)
	}
}
