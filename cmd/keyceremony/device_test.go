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
// of keyceremony) in a reader slot of a private pcscd: piv-go must find
// its card, and the CA certificate it writes must be a CA certificate.
func TestPivemuCommand(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	env := pcsctest.Start(t, 1, pivemu.Config{CA: ca})
	env.Remove(t, 0) // free the slot for the binary's card
	caFile := filepath.Join(t.TempDir(), "pivemu-ca.pem")
	cmd := exec.Command(buildPivemu(t), "--vpcd", env.Addrs[0], "--serial", "24681357", "--ca-cert", caFile)
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, _ := runCLI("device", "list")
		if code == 0 && strings.Contains(out, "24681357") {
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
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("--ca-cert wrote %q", pemBytes)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA {
		t.Fatalf("--ca-cert wrote no CA certificate: %v", err)
	}
	// A second emulator may not write over the first one's certificate.
	out, err := exec.Command(buildPivemu(t), "--vpcd", env.Addrs[0], "--ca-cert", caFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "file exists") {
		t.Fatalf("a second --ca-cert into the same file: %v %s", err, out)
	}
}
