//go:build cgo

package main

import (
	"fmt"
	"os"
	"os/exec"
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

// TestPivemuCommand runs the hidden emulator subcommand as its own process
// in a reader slot of a private pcscd: piv-go must find its card.
func TestPivemuCommand(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	env := pcsctest.Start(t, 1, pivemu.Config{CA: ca})
	env.Remove(t, 0) // free the slot for the subcommand's card
	bin := buildBinary(t)
	cmd := exec.Command(bin, "pivemu", "--vpcd", env.Addrs[0], "--serial", "24681357")
	cmd.Env = append(os.Environ(), env.Environ()...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		code, out, _ := runCLI("device", "list")
		if code == 0 && strings.Contains(out, "24681357") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the card of 'keyceremony pivemu' never appeared")
}
