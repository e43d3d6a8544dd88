package ceremony

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gotufmeta "github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/airgap"
)

// bootPortDevice is a soft device that answers only while it is in the
// one port, for everything a bootstrap asks of it.
type bootPortDevice struct {
	*portDevice
	soft hsm.Device
}

func (d *bootPortDevice) VerifyPIN(pin string) error {
	if err := d.here(); err != nil {
		return err
	}
	return d.soft.VerifyPIN(pin)
}

func (d *bootPortDevice) GenerateKey(pin string, slot hsm.Slot, opts hsm.KeyOptions) (crypto.PublicKey, error) {
	if err := d.here(); err != nil {
		return nil, err
	}
	return d.soft.GenerateKey(pin, slot, opts)
}

func (d *bootPortDevice) PublicKey(slot hsm.Slot) (crypto.PublicKey, error) {
	if err := d.here(); err != nil {
		return nil, err
	}
	return d.soft.PublicKey(slot)
}

func (d *bootPortDevice) Attest(slot hsm.Slot) (*hsm.Attestation, error) {
	if err := d.here(); err != nil {
		return nil, err
	}
	return d.soft.Attest(slot)
}

func (d *bootPortDevice) DeviceCertificate() (*x509.Certificate, []*x509.Certificate, error) {
	if err := d.here(); err != nil {
		return nil, nil, err
	}
	return d.soft.(hsm.DeviceCertifier).DeviceCertificate()
}

// TestBootstrapTurns: a guided bootstrap through one port, the three
// soft devices answering only while they are in it. Each device is asked
// for by serial and keyholder, in turn, for its pre-flight, to generate
// its keys, to sign, and (every device holds a root key) to sign the end
// of the transcript: twelve insertions in that order, the device in the
// port named each time; each PIN asked once; the media written verify
// with go-tuf and the audit.
func TestBootstrapTurns(t *testing.T) {
	f := newFixture(t)
	port := &onePort{}
	devs := map[uint32]hsm.Device{}
	for serial, d := range f.devices {
		devs[serial] = &bootPortDevice{portDevice: &portDevice{Device: d, port: port}, soft: d}
	}
	var screen bytes.Buffer
	var inserted []uint32
	pins := 0
	insert := regexp.MustCompile(`Insert the YubiKey with serial (\d+)`)
	g := &Guide{Out: &screen, Now: stepClock(time.Now().UTC()), Poll: time.Millisecond, DeviceWait: time.Hour,
		Interfaces: func() ([]airgap.Interface, error) {
			return []airgap.Interface{{Name: "lo", Up: true, Loopback: true}}, nil
		}}
	g.Term = &hookTerm{out: &screen, answer: func(p string) (string, error) {
		s := screen.String()
		switch {
		case strings.Contains(p, "Press Enter when it is in"):
			m := insert.FindAllStringSubmatch(s, -1)
			n, _ := strconv.ParseUint(m[len(m)-1][1], 10, 32)
			port.coming = uint32(n)
			inserted = append(inserted, uint32(n))
		case strings.HasPrefix(strings.TrimSpace(p), "PIN for"):
			pins++
			return soft.DefaultPIN, nil
		case strings.Contains(p, "Type yes"):
			return "yes", nil
		case strings.Contains(p, "check words as read aloud"):
			// The words on the screen, as the witness reads them.
			i := strings.LastIndex(s, "as written down when the key was generated:")
			return strings.TrimSpace(strings.Split(s[i:], "\n")[2]), nil
		}
		return "", nil
	}}
	b := f.bootstrap()
	b.Devices, b.PIN, b.Guide = devs, nil, g
	out := filepath.Join(t.TempDir(), "media")
	if _, err := b.Run(out); err != nil {
		t.Fatalf("%v\n%s", err, screen.String())
	}
	var want []uint32
	for range 4 {
		want = append(want, demoSerials...)
	}
	if !slices.Equal(inserted, want) {
		t.Errorf("insertions asked %v, want %v", inserted, want)
	}
	if pins != 3 {
		t.Errorf("%d PINs asked, want 3 (one each, kept between turns)", pins)
	}
	s := screen.String()
	for _, w := range []string{
		"Insert the YubiKey with serial 10000001 (keyholder of device 10000001) for its pre-flight.",
		"Insert the YubiKey with serial 10000002 (keyholder of device 10000002) to generate its keys.",
		"Insert the YubiKey with serial 10000003 (keyholder of device 10000003) to sign.",
		"Insert the YubiKey with serial 10000001 (keyholder of device 10000001) to sign the end of the transcript.",
		"the YubiKey with serial 10000001: not connected: the reader holds the YubiKey with serial 10000003 (keyholder of device 10000003) instead: take it out and insert serial 10000001",
		"pre-flight passed for the YubiKey with serial 10000001",
		"keys generated for the YubiKey with serial 10000002",
		"its signatures are made for the YubiKey with serial 10000003",
		"the PIN typed for it earlier is given to it again (it is not asked again)",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("the screen lacks %q", w)
		}
	}
	// Independently: go-tuf verifies root, targets and stable v1.
	md := filepath.Join(out, "metadata")
	root, err := gotufmeta.Root().FromFile(filepath.Join(md, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	targets, err := gotufmeta.Targets().FromFile(filepath.Join(md, "1.targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	stable, err := gotufmeta.Targets().FromFile(filepath.Join(md, "1.stable.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("root", root); err != nil {
		t.Errorf("go-tuf: root: %v", err)
	}
	if err := root.VerifyDelegate("targets", targets); err != nil {
		t.Errorf("go-tuf: targets: %v", err)
	}
	if err := targets.VerifyDelegate("stable", stable); err != nil {
		t.Errorf("go-tuf: stable: %v", err)
	}
	// The audit checks the media, the journal and its signed end.
	if _, err := Audit(AuditOptions{Root: filepath.Join(md, "1.root.json"), Dir: out, SoftCA: filepath.Join(caDir, "ca")}); err != nil {
		t.Errorf("audit: %v", err)
	}
}
