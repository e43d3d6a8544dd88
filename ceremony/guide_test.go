package ceremony

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/hsmtest"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/keys"
)

var updateGuide = flag.Bool("update-guide", false, "rewrite the guided ceremony's golden screens under testdata")

// scripted is a terminal that answers from a list, writing the prompts
// and the echoed answers to the screen as a terminal would (a secret's
// answer is not echoed).
type scripted struct {
	out     *bytes.Buffer
	answers []string
}

func (s *scripted) next(prompt string) (string, error) {
	s.out.WriteString(prompt)
	if len(s.answers) == 0 {
		return "", errors.New("scripted terminal: no answer left")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

func (s *scripted) Line(prompt string) (string, error) {
	a, err := s.next(prompt)
	if err == nil {
		s.out.WriteString(a + "\n")
	}
	return a, err
}

func (s *scripted) Secret(prompt string) (string, error) {
	a, err := s.next(prompt)
	s.out.WriteString("\n")
	return a, err
}

// stepClock is a clock that moves one second each time it is read.
func stepClock(start time.Time) func() time.Time {
	t := start.Add(-time.Second)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// guideScript is a short script: the opening, one device, its PIN, one
// signature with a touch.
func guideScript() *Script {
	alice := Actor{Kind: ActorKeyholder, Device: 7, Name: "Alice Example"}
	return &Script{Ceremony: CeremonyBootstrap, Repository: "pypi", Sections: []Section{
		{Title: "Opening", Steps: []Step{
			{Number: 1, ID: "airgap", Actor: Actor{Kind: ActorAdministrator}, Do: "Show the room that the laptop is air-gapped.", Check: "Every interface up is acknowledged."},
			{Number: 2, ID: "clock", Actor: Actor{Kind: ActorAdministrator}, Do: "Read the laptop's UTC date and time aloud."},
		}},
		{Title: "Devices", Steps: []Step{
			{Number: 3, ID: "device/7", Actor: alice, Device: 7, Do: "Take the YubiKey with serial 7 out of its sealed bag."},
			{Number: 4, ID: "preflight/7", Actor: alice, Device: 7, Do: "Type the PIN of the YubiKey with serial 7."},
		}},
		{Title: "Signatures", Steps: []Step{
			{Number: 5, ID: "sign/root/7", Actor: alice, Device: 7, Role: "root", Touch: true, Do: "Sign root v1 with the root key."},
			{Number: 6, ID: "signatures", Actor: Actor{Kind: ActorAll}, Do: "Everyone signs the run sheet."},
		}},
	}}
}

// touchySigner fails its first signature with a touch timeout; bad
// makes every signature one that does not verify.
type touchySigner struct {
	keys.Signer
	touched bool
	bad     bool
}

func (s *touchySigner) Sign(msg []byte) ([]byte, error) {
	if !s.touched {
		s.touched = true
		return nil, fmt.Errorf("slot 9c needs a touch: %w", hsm.ErrTouchTimeout)
	}
	if s.bad {
		return s.Signer.Sign([]byte("something else"))
	}
	return s.Signer.Sign(msg)
}

// fixedSigner is an ed25519 key made from a fixed seed, so that its key
// id, and the screens, do not change.
func fixedSigner(t testing.TB) keys.Signer {
	t.Helper()
	sg, err := keys.NewMemorySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// TestGuideScreens drives a guide through a short script as the room
// would, with the clock and the interfaces injected: a wrong
// acknowledgement then the right one, the clock earlier than the export
// (a warning), a device held by another program and then inserted, two
// wrong PINs and the last try confirmed, wrong check words then the right
// ones, a touch timeout then a touch. The screens and the transcript are
// golden.
func TestGuideScreens(t *testing.T) {
	start := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	var screen, tbuf bytes.Buffer
	term := &scripted{out: &screen}
	ca, err := hsmtest.NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ca.NewDevice(7)
	if err != nil {
		t.Fatal(err)
	}
	looks := 0
	g := &Guide{Term: term, Out: &screen, Script: guideScript(), Now: stepClock(start), Poll: time.Millisecond, DeviceWait: time.Hour,
		Interfaces: func() ([]airgap.Interface, error) {
			return []airgap.Interface{{Name: "lo", Up: true, Loopback: true}, {Name: "eth9", Up: true, Addrs: []string{"10.0.0.9/24"}}, {Name: "wlan1"}}, nil
		},
		Reopen: func(serial uint32) (hsm.Device, error) {
			looks++
			switch {
			case looks <= 2:
				return nil, fmt.Errorf("yubikey %d: %w", serial, &piv.BusyError{Readers: []string{"Yubico YubiKey OTP+FIDO+CCID 00 00"}})
			case looks <= 3:
				return nil, fmt.Errorf("yubikey %d is not plugged in (present: none): %w", serial, hsm.ErrNoDevice)
			}
			return dev, nil
		}}
	sg := fixedSigner(t)
	words := keys.PGPWords(keyIDCheck(sg.Key()))
	term.answers = []string{
		"", "wlan1", "eth9", // the air gap: wlan1 is down, eth9 up
		"", "yes", // the clock
		"", "", // device 7: the step, then Enter once it is in
		"", "000000", "000000", "last try", piv.DefaultPIN, // the PIN
		"", "acme " + strings.Join(words[1:], " "), strings.ToUpper(strings.Join(words, "  ")), // check words
		"", // the last step
	}
	tr := NewTranscript(&tbuf, nil, g.now)
	if err := g.open(tr, []Dated{{What: "the export's generation time", Time: start.Add(time.Hour)}, {What: "nothing", Time: start.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	s := &session{devices: map[uint32]hsm.Device{}, pins: map[uint32]string{}, guide: g}
	g.pinStep = func(serial uint32) error { return g.through(fmt.Sprintf("preflight/%d", serial)) }
	d, err := s.device(7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pinFor(d); err != nil {
		t.Fatal(err)
	}
	signers := []keys.Signer{&touchySigner{Signer: sg}}
	g.bootstrapSigners("root", RoleSpec{Keys: []KeySpec{{Device: 7, Slot: "9c"}}}, signers)
	msg := []byte("root v1")
	sig, err := signers[0].Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sg.Key().Verify(msg, sig); err != nil {
		t.Fatal(err)
	}
	g.closing([32]byte{1, 2, 3})
	if len(term.answers) != 0 {
		t.Fatalf("answers left over: %q\n%s", term.answers, screen.String())
	}
	if _, _, err := VerifyTranscript(bytes.NewReader(tbuf.Bytes()), "transcript"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  []byte
	}{{"guide-screens.golden", screen.Bytes()}, {"guide-transcript.golden", tbuf.Bytes()}} {
		path := filepath.Join("testdata", c.name)
		if *updateGuide {
			if err := os.WriteFile(path, c.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGuideScreens -update-guide)", err)
		}
		if !bytes.Equal(c.got, want) {
			t.Errorf("%s differs (go test -run TestGuideScreens -update-guide rewrites it); got:\n%s", c.name, c.got)
		}
	}
	if strings.Contains(screen.String(), piv.DefaultPIN) || strings.Contains(tbuf.String(), piv.DefaultPIN) {
		t.Fatal("the PIN is on the screen or in the transcript")
	}
}

// newGuide is a guide over a scripted terminal and the short script, its
// opening passed.
func newGuide(t *testing.T, answers ...string) (*Guide, *scripted, *bytes.Buffer) {
	t.Helper()
	var screen, tbuf bytes.Buffer
	term := &scripted{out: &screen, answers: answers}
	g := &Guide{Term: term, Out: &screen, Script: guideScript(), Now: stepClock(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)),
		Interfaces: func() ([]airgap.Interface, error) { return nil, nil }}
	g.start(NewTranscript(&tbuf, nil, g.now))
	return g, term, &tbuf
}

// TestGuideRefusals: what the room can refuse, and what a device can get
// wrong, stops the ceremony with the error that says so, before anything
// is signed.
func TestGuideRefusals(t *testing.T) {
	sg := fixedSigner(t)
	words := strings.Join(keys.PGPWords(keyIDCheck(sg.Key())), " ")
	t.Run("check words wrong three times", func(t *testing.T) {
		g, _, _ := newGuide(t, "", "", "", "", "", "a b c", "a b c", "a b c")
		inner := &countingSigner{Signer: sg}
		signers := []keys.Signer{inner}
		g.bootstrapSigners("root", RoleSpec{Keys: []KeySpec{{Device: 7, Slot: "9c"}}}, signers)
		if _, err := signers[0].Sign([]byte("m")); !errors.Is(err, ErrCheckWords) {
			t.Fatalf("got %v, want ErrCheckWords", err)
		}
		if inner.n != 0 {
			t.Fatalf("the device signed %d times after the check words were refused", inner.n)
		}
	})
	t.Run("a signature that does not verify", func(t *testing.T) {
		g, _, _ := newGuide(t, "", "", "", "", "", words)
		signers := []keys.Signer{&touchySigner{Signer: sg, touched: true, bad: true}}
		g.bootstrapSigners("root", RoleSpec{Keys: []KeySpec{{Device: 7, Slot: "9c"}}}, signers)
		if _, err := signers[0].Sign([]byte("m")); !errors.Is(err, ErrSignatureInvalid) {
			t.Fatalf("got %v, want ErrSignatureInvalid", err)
		}
	})
	t.Run("last PIN try not confirmed", func(t *testing.T) {
		ca, err := hsmtest.NewFakeCA()
		if err != nil {
			t.Fatal(err)
		}
		dev, err := ca.NewDevice(7)
		if err != nil {
			t.Fatal(err)
		}
		dev.VerifyPIN("000000")
		dev.VerifyPIN("000000")
		g, _, _ := newGuide(t, "no")
		if _, err := g.pin(dev); !errors.Is(err, ErrLastTryRefused) {
			t.Fatalf("got %v, want ErrLastTryRefused", err)
		}
		if pin, _, _ := dev.Retries(); pin != 1 {
			t.Fatalf("%d PIN tries left, want the last one unspent", pin)
		}
	})
	t.Run("clock not confirmed", func(t *testing.T) {
		g, _, _ := newGuide(t, "", "", "no")
		if err := g.open(g.tr, nil); !errors.Is(err, ErrClockRefused) {
			t.Fatalf("got %v, want ErrClockRefused", err)
		}
	})
	t.Run("air gap not acknowledged", func(t *testing.T) {
		g, _, _ := newGuide(t, "", "yes", "eth9,wlan1", "")
		g.Interfaces = func() ([]airgap.Interface, error) {
			return []airgap.Interface{{Name: "eth9", Up: true}}, nil
		}
		if err := g.open(g.tr, nil); !errors.Is(err, airgap.ErrNetwork) {
			t.Fatalf("got %v, want airgap.ErrNetwork", err)
		}
	})
	t.Run("abort at a step", func(t *testing.T) {
		g, _, _ := newGuide(t, "abort")
		if err := g.open(g.tr, nil); !errors.Is(err, ErrAborted) {
			t.Fatalf("got %v, want ErrAborted", err)
		}
	})
}

type countingSigner struct {
	keys.Signer
	n int
}

func (s *countingSigner) Sign(msg []byte) ([]byte, error) { s.n++; return s.Signer.Sign(msg) }
