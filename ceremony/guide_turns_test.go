package ceremony

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/hsmtest"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/keys"
)

// onePort is a laptop's single port: the serial of the device in it, and
// the one the room is putting in (it is in from the second look on, so
// that the screen sees the wrong one first).
type onePort struct {
	in, coming uint32
	looked     bool
}

// portDevice is a device that answers only while it is in the port.
type portDevice struct {
	hsm.Device
	port  *onePort
	signs int
}

func (d *portDevice) here() error {
	p := d.port
	if p.coming != 0 {
		if p.looked {
			p.in, p.coming, p.looked = p.coming, 0, false
		} else {
			p.looked = true
		}
	}
	switch s := d.Info().Serial; {
	case p.in == s:
		return nil
	case p.in != 0:
		return &piv.WrongDeviceError{Reader: "port", Want: s, Got: p.in}
	}
	return fmt.Errorf("device %d: %w", d.Info().Serial, hsm.ErrNoDevice)
}

func (d *portDevice) Retries() (int, int, error) {
	if err := d.here(); err != nil {
		return 0, 0, err
	}
	return d.Device.Retries()
}

func (d *portDevice) Sign(pin string, slot hsm.Slot, msg []byte) ([]byte, error) {
	if err := d.here(); err != nil {
		return nil, err
	}
	d.signs++
	return d.Device.Sign(pin, slot, msg)
}

// TestStableTurns: two stable keyholders through one port. Each device's
// keys are read at its Devices step; at each keyholder's turn the device
// is asked for by serial and keyholder (the other one in the port is
// named), the PIN asked, and stable and the signed diff signed in the
// one turn; the signed diff's signature is then handed back without the
// device. The transcript's end is a second turn each, the PIN not asked
// again, and nothing recorded after the journal closed.
func TestStableTurns(t *testing.T) {
	ca, err := hsmtest.NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	port := &onePort{}
	devs := map[uint32]hsm.Device{}
	want := map[string]bool{}
	var byDev []*portDevice
	for _, serial := range []uint32{7, 8} {
		f, err := ca.NewDevice(serial)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := f.GenerateKey(hsmtest.DefaultPIN, 0x83, hsm.KeyOptions{Algorithm: hsm.AlgECCP256})
		if err != nil {
			t.Fatal(err)
		}
		k, err := keys.FromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID()] = true
		d := &portDevice{Device: f, port: port}
		devs[serial] = d
		byDev = append(byDev, d)
	}
	alice := Actor{Kind: ActorKeyholder, Device: 7, Name: "Alice Example"}
	bob := Actor{Kind: ActorKeyholder, Device: 8, Name: "Bob Example"}
	script := &Script{Ceremony: CeremonyStable, Repository: "pypi", Sections: []Section{{Title: "Approval and signatures", Steps: []Step{
		{Number: 1, ID: "sign/stable/7", Actor: alice, Device: 7, Slot: "83", Role: "stable", Do: "Sign."},
		{Number: 2, ID: "sign/stable/8", Actor: bob, Device: 8, Slot: "83", Role: "stable", Do: "Sign."},
	}}}}
	var screen, tbuf bytes.Buffer
	inserts, pins := 0, 0
	insert := regexp.MustCompile(`Insert the YubiKey with serial (\d+)`)
	g := &Guide{Out: &screen, Script: script, Now: stepClock(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)), Poll: time.Millisecond, DeviceWait: time.Hour}
	g.Term = &hookTerm{out: &screen, answer: func(p string) (string, error) {
		switch {
		case strings.Contains(p, "Press Enter when it is in"):
			inserts++
			m := insert.FindAllStringSubmatch(screen.String(), -1)
			n, _ := strconv.ParseUint(m[len(m)-1][1], 10, 32)
			port.coming = uint32(n)
		case strings.HasPrefix(strings.TrimSpace(p), "PIN for"):
			pins++
			return hsmtest.DefaultPIN, nil
		}
		return "", nil
	}}
	g.start(NewTranscript(&tbuf, nil, g.now))
	for _, d := range byDev {
		port.in = d.Info().Serial
		if err := g.scanKeys(d.Info().Serial, d); err != nil {
			t.Fatal(err)
		}
	}
	// Bob's device is in the port when the signing starts.
	sess := &session{devices: devs, pins: map[uint32]string{}, guide: g, optional: true}
	// The turns follow the run sheet's signing steps, Bob's first.
	script.Sections[0].Steps[0], script.Sections[0].Steps[1] = script.Sections[0].Steps[1], script.Sections[0].Steps[0]
	g.start(g.tr)
	if got := g.signOrder(devs); len(got) != 2 || got[0] != 8 || got[1] != 7 {
		t.Fatalf("turns in the order %v, want the steps' [8 7]", got)
	}
	signers := g.turnSigners(sess, []uint32{7, 8}, want)
	if len(signers) != 2 {
		t.Fatalf("%d turn signers, want 2", len(signers))
	}
	diff := []byte("the signed diff")
	if err := g.alsoSign("application/vnd.test", func() ([]byte, error) { return diff, nil }); err != nil {
		t.Fatal(err)
	}
	sign := func(msg []byte) {
		t.Helper()
		for _, sg := range signers {
			sig, err := sg.Sign(msg)
			if err != nil {
				t.Fatalf("%v\n%s", err, screen.String())
			}
			if err := sg.Key().Verify(msg, sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	sign([]byte("stable v2"))
	if inserts != 2 || pins != 2 {
		t.Errorf("after the first turns: %d insertions asked, %d PINs, want 2 and 2", inserts, pins)
	}
	sign(g.also[0]) // the signed diff: signed in the turns already
	if inserts != 2 || byDev[0].signs != 2 || byDev[1].signs != 2 {
		t.Errorf("the signed diff asked for devices again: %d insertions, %d and %d signatures", inserts, byDev[0].signs, byDev[1].signs)
	}
	g.journalClosed()
	before := tbuf.Len()
	sign([]byte("the transcript's end"))
	if inserts != 4 || pins != 2 || byDev[0].signs != 3 || byDev[1].signs != 3 {
		t.Errorf("the transcript's end: %d insertions asked, %d PINs, %d and %d signatures, want 4, 2, 3 and 3", inserts, pins, byDev[0].signs, byDev[1].signs)
	}
	if tbuf.Len() != before {
		t.Errorf("recorded after the journal closed:\n%s", tbuf.String()[before:])
	}
	s := screen.String()
	for _, w := range []string{
		"Insert the YubiKey with serial 7 (keyholder: Alice Example) to sign.",
		"the YubiKey with serial 7: not connected: the reader holds the YubiKey with serial 8 (keyholder: Bob Example) instead: take it out and insert serial 7",
		"turn done for the YubiKey with serial 7 (keyholder: Alice Example): it may be taken out",
		"Insert the YubiKey with serial 8 (keyholder: Bob Example) to sign the end of the transcript.",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("the screen lacks %q:\n%s", w, s)
		}
	}
	if n := strings.Count(tbuf.String(), `"step":"device turn done"`); n != 2 {
		t.Errorf("%d turns recorded, want 2 (those before the journal closed)", n)
	}
}

// unreadableSlot is a device whose slot 83 cannot be read (a reader
// another program holds past the backend's wait, a card pulled out).
type unreadableSlot struct {
	hsm.Device
}

var errReaderHeld = errors.New("reader held by another program (injected)")

func (d unreadableSlot) PublicKey(slot hsm.Slot) (crypto.PublicKey, error) {
	if slot == 0x83 {
		return nil, errReaderHeld
	}
	return d.Device.PublicKey(slot)
}

// TestScanKeysReportsUnreadableSlot: a slot that cannot be read stops the
// device's Devices step naming the device, the slot and the cause, and
// nothing is kept of the scan (before, the slot was passed over as empty
// and the signing later counted its key missing: "1 of 2 stable keys
// present"). Empty slots are still passed over.
func TestScanKeysReportsUnreadableSlot(t *testing.T) {
	ca, err := hsmtest.NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.NewDevice(7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.GenerateKey(hsmtest.DefaultPIN, 0x83, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		t.Fatal(err)
	}
	g := &Guide{}
	err = g.scanKeys(7, unreadableSlot{f})
	if !errors.Is(err, errReaderHeld) || !strings.Contains(err.Error(), "device 7: slot 83") {
		t.Fatalf("scan of an unreadable slot: %v, want the device, the slot and the cause", err)
	}
	if _, kept := g.keys[7]; kept {
		t.Fatal("a failed scan was kept: the device's keys would never be read again")
	}
	if err := g.scanKeys(7, f); err != nil {
		t.Fatalf("scan once readable: %v", err)
	}
	if len(g.keys[7]) != 1 || g.keys[7][0].slot != 0x83 {
		t.Fatalf("scan found %v, want the key in 83 and no empty slot", g.keys[7])
	}
}
