//go:build cgo

package main

import (
	"fmt"
	"strings"
	"testing"

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
