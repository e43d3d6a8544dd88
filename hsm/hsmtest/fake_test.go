package hsmtest

import (
	"errors"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
)

// The fake keeps the promises of package hsm: the conformance suite runs
// over it, so a ceremony test that uses it tests against a device.
func TestFakeConformance(t *testing.T) {
	ca, err := NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	Run(t, func(t *testing.T) hsm.Device {
		d, err := ca.NewDevice(4242)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, ca.Pool())
}

func TestFakeFailGenerate(t *testing.T) {
	ca, err := NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	opts := hsm.KeyOptions{Algorithm: hsm.AlgECCP256}
	for _, keep := range []bool{false, true} {
		d, err := ca.NewDevice(7)
		if err != nil {
			t.Fatal(err)
		}
		d.SetFaults(Faults{FailGenerate: 2, KeepKeyOnFailure: keep})
		if _, err := d.GenerateKey(DefaultPIN, 0x82, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := d.GenerateKey(DefaultPIN, 0x83, opts); !errors.Is(err, ErrInjected) {
			t.Fatalf("second generate: %v, want ErrInjected", err)
		}
		if _, err := d.PublicKey(0x83); (err == nil) != keep {
			t.Fatalf("keep %v: slot 83 after the failure: %v", keep, err)
		}
		if _, err := d.GenerateKey(DefaultPIN, 0x84, opts); err != nil {
			t.Fatalf("third generate: %v", err)
		}
		if err := d.DeleteKey(0x82); err != nil {
			t.Fatal(err)
		}
		if _, err := d.PublicKey(0x82); !errors.Is(err, hsm.ErrSlotEmpty) {
			t.Fatalf("after DeleteKey: %v", err)
		}
	}
}
