package ceremony

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gotufmeta "github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/hsmtest"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/keys"
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
// onePortRoom is a guided bootstrap's room with one port: the devices
// answer only while in it, the terminal answers as the room would, and
// the insertions asked for and PINs typed are counted.
type onePortRoom struct {
	port     *onePort
	devs     map[uint32]hsm.Device
	screen   bytes.Buffer
	inserted []uint32
	pins     int
	g        *Guide
}

func newOnePortRoom(devices map[uint32]hsm.Device, pin string) *onePortRoom {
	r := &onePortRoom{port: &onePort{}, devs: map[uint32]hsm.Device{}}
	for serial, d := range devices {
		r.devs[serial] = &bootPortDevice{portDevice: &portDevice{Device: d, port: r.port}, soft: d}
	}
	insert := regexp.MustCompile(`Insert the YubiKey with serial (\d+)`)
	r.g = &Guide{Out: &r.screen, Now: stepClock(time.Now().UTC()), Poll: time.Millisecond, DeviceWait: time.Hour,
		Interfaces: func() ([]airgap.Interface, error) {
			return []airgap.Interface{{Name: "lo", Up: true, Loopback: true}}, nil
		}}
	r.g.Term = &hookTerm{out: &r.screen, answer: func(p string) (string, error) {
		s := r.screen.String()
		switch {
		case strings.Contains(p, "Press Enter when it is in"):
			m := insert.FindAllStringSubmatch(s, -1)
			n, _ := strconv.ParseUint(m[len(m)-1][1], 10, 32)
			r.port.coming = uint32(n)
			r.inserted = append(r.inserted, uint32(n))
		case strings.HasPrefix(strings.TrimSpace(p), "PIN for"):
			r.pins++
			return pin, nil
		case strings.Contains(p, "Type yes"):
			return "yes", nil
		case strings.Contains(p, "check words as read aloud"):
			// The words on the screen, as the witness reads them.
			i := strings.LastIndex(s, "as written down when the key was generated:")
			return strings.TrimSpace(strings.Split(s[i:], "\n")[2]), nil
		}
		return "", nil
	}}
	return r
}

func TestBootstrapTurns(t *testing.T) {
	f := newFixture(t)
	r := newOnePortRoom(f.devices, soft.DefaultPIN)
	devs, g, screen := r.devs, r.g, &r.screen
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
	if !slices.Equal(r.inserted, want) {
		t.Errorf("insertions asked %v, want %v", r.inserted, want)
	}
	if r.pins != 3 {
		t.Errorf("%d PINs asked, want 3 (one each, kept between turns)", r.pins)
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

// TestBootstrapTurnsResumed: the guided rerun, through one port, of a
// bootstrap that failed after two root keys were generated: the two
// devices whose slots the journal names are asked for to compare their
// keys first, without presenting their steps, then the ceremony's turns
// follow; each PIN is asked in its own pre-flight step, and root v1
// holds the interrupted run's keys.
func TestBootstrapTurnsResumed(t *testing.T) {
	f := newFakeFixture(t)
	out, left := interrupted(t, f)
	r := newOnePortRoom(f.devs, hsmtest.DefaultPIN)
	b := f.bootstrap()
	b.Devices, b.PIN, b.Guide = r.devs, nil, r.g
	res, err := b.Run(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.screen.String())
	}
	want := []uint32{demoSerials[0], demoSerials[1]}
	for range 4 {
		want = append(want, demoSerials...)
	}
	if !slices.Equal(r.inserted, want) {
		t.Errorf("insertions asked %v, want %v", r.inserted, want)
	}
	for serial, id := range left {
		if !slices.Contains(res.Root.Signed.Roles["root"].KeyIDs, id) {
			t.Errorf("root v1 lacks the key %s the interrupted run made on %d", id, serial)
		}
	}
	s := r.screen.String()
	if !strings.Contains(s, "Insert the YubiKey with serial 10000001 (keyholder of device 10000001) to compare its keys with the interrupted run's journal.") {
		t.Errorf("the resumption's look at the devices is not said")
	}
	header := regexp.MustCompile(`== Step (\d+) of`)
	for _, st := range b.Guide.steps {
		if !strings.HasPrefix(st.ID, "preflight/") || st.Device == 0 {
			continue
		}
		i := strings.Index(s, fmt.Sprintf("PIN for the YubiKey with serial %d", st.Device))
		if i < 0 {
			t.Fatalf("no PIN asked for %d", st.Device)
		}
		hs := header.FindAllStringSubmatch(s[:i], -1)
		if got := hs[len(hs)-1][1]; got != strconv.Itoa(st.Number) {
			t.Errorf("the PIN of %d asked in step %s, want its pre-flight step %d", st.Device, got, st.Number)
		}
	}
}

// TestBootstrapTurnsOrphans: a guided bootstrap through one port whose
// second device fails its first generation, the room then stopping at
// the next insert prompt: every key the first device (now out of the
// port) generated is still listed as an orphan, with the command that
// clears it, without its being asked for.
func TestBootstrapTurnsOrphans(t *testing.T) {
	f := newFakeFixture(t)
	f.fakes[demoSerials[1]].SetFaults(hsmtest.Faults{FailGenerate: 1})
	r := newOnePortRoom(f.devs, hsmtest.DefaultPIN)
	answer := r.g.Term.(*hookTerm).answer
	r.g.Term.(*hookTerm).answer = func(p string) (string, error) {
		// After the failed generation the room stops at any prompt.
		failed := strings.Contains(r.screen.String(), "generating the root key in slot 9c of fake serial 10000002")
		if failed && strings.Contains(p, "Press Enter when it is in") {
			return "abort", nil
		}
		return answer(p)
	}
	b := f.bootstrap()
	b.Devices, b.PIN, b.Guide = r.devs, nil, r.g
	b.Show = &r.screen
	var oe *OrphanKeysError
	_, err := b.Run(filepath.Join(t.TempDir(), "media"))
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want orphan keys", err)
	}
	var got []string
	for _, o := range oe.Keys {
		if o.Clear == "" {
			t.Errorf("orphan %v has no command to clear it", o)
		}
		got = append(got, fmt.Sprintf("%d/%s", o.Device.Serial, o.Slot))
		if !strings.HasPrefix(o.KeyID, keyIDOf(t, f.fakes[o.Device.Serial], o.Slot)+" ") {
			t.Errorf("orphan in slot %s of %d listed with key id %q, want the key it holds", o.Slot, o.Device.Serial, o.KeyID)
		}
	}
	if want := []string{"10000001/9c", "10000001/82", "10000001/83"}; !slices.Equal(got, want) {
		t.Errorf("orphans listed %v, want %v", got, want)
	}
}

// keyIDOf is the id of the key in a slot, read from the device itself.
func keyIDOf(t *testing.T, d hsm.Device, slot hsm.Slot) string {
	t.Helper()
	pub, err := d.PublicKey(slot)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.FromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}
