package ceremony

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/internal/progress"
	"github.com/keyceremony/keyceremony/keys"
)

// The guided ceremony: the same flows as the batch commands, with the
// people in the room led through the numbered steps of the script
// (steps.go; the run sheet numbers them the same way). Each step shows
// its number, its section, who acts, what is done and what is checked,
// and waits for Enter; the transcript records each step with the real
// UTC time. A Guide also asks the room to acknowledge the network
// interfaces that are up and to confirm the clock, waits for each device
// by serial and keyholder, asks PINs again with the tries left, shows each
// keyholder what they sign and has them type its check words, says when
// to touch a YubiKey, and verifies each signature as soon as it is made.
// Bootstrap and StableSigning take a *Guide; nil is the batch form.

// Errors of the guided ceremony; check them with errors.Is.
var (
	// ErrCheckWords: the check words typed are not the ones shown.
	ErrCheckWords = errors.New("the check words typed do not match: nothing was signed")
	// ErrClockRefused: the administrator did not confirm the clock.
	ErrClockRefused = errors.New("the clock was not confirmed")
	// ErrAborted: the room stopped the ceremony at a prompt.
	ErrAborted = errors.New("stopped by the room")
	// ErrSignatureInvalid: a device's signature does not verify against
	// its public key.
	ErrSignatureInvalid = errors.New("signature does not verify against the device's public key")
	// ErrLastTryRefused: the keyholder did not confirm spending the last
	// PIN try.
	ErrLastTryRefused = errors.New("the last PIN try was not confirmed: the PIN was not tried")
)

// Prompter is the terminal of a guided ceremony: Line reads an echoed
// line, Secret a line without echo. tui.Terminal is one.
type Prompter interface {
	Line(prompt string) (string, error)
	Secret(prompt string) (string, error)
}

// Guide leads the room through a ceremony. Term and Out are required;
// Script is the ceremony's script (BootstrapSteps, StableSteps).
type Guide struct {
	Term   Prompter
	Out    io.Writer
	Script *Script
	// Now is the clock recorded for every step (default time.Now).
	Now func() time.Time
	// Interfaces lists the network interfaces (default the machine's).
	Interfaces airgap.Lister
	// Reopen looks again for a device that was not connected at the
	// start; nil means none can come later.
	Reopen func(serial uint32) (hsm.Device, error)
	// Poll is how often a missing device is looked for (default 250 ms),
	// DeviceWait how long before the room is asked again (default 30 s).
	Poll, DeviceWait time.Duration
	// PIN, if set, supplies PINs (a PIN file, soft devices only) instead
	// of the terminal; it is not asked again.
	PIN PINSource
	// Terminal: Out is a terminal, progress is redrawn in place.
	Terminal bool

	steps []Step
	sec   []string
	next  int
	tr    *Transcript
	// pinStep presents the step in which a device's PIN is asked.
	pinStep func(serial uint32) error
	// found are the devices the screen has named as present, absent the
	// keyholders the room declared absent.
	found, absent map[uint32]bool
	// keys are the keys each device's slots held at its Devices step;
	// also the messages every stable keyholder signs in the same turn as
	// stable (the signed diff), guide_turns.go.
	keys map[uint32][]slotKey
	also [][]byte
	// purpose says, in the bootstrap's insert prompts, what a device is
	// asked for (guide_bootturns.go).
	purpose string
	// early are entries noted before the journal was open.
	early []earlyEntry
}

func (g *Guide) now() time.Time {
	if g.Now == nil {
		return time.Now().UTC()
	}
	return g.Now().UTC()
}

func (g *Guide) start(tr *Transcript) {
	g.tr = tr
	g.steps, g.sec = nil, nil
	for _, s := range g.Script.Sections {
		for _, st := range s.Steps {
			g.steps = append(g.steps, st)
			g.sec = append(g.sec, s.Title)
		}
	}
}

func (g *Guide) printf(format string, a ...any) { fmt.Fprintf(g.Out, format, a...) }

// say prints a line for the room, if there is a guide.
func (g *Guide) say(format string, a ...any) {
	if g != nil {
		g.printf("  "+format+"\n", a...)
	}
}

// record appends to the transcript, if the ceremony still keeps one.
func (g *Guide) record(step string, detail map[string]any) error {
	if g.tr == nil {
		return nil
	}
	return g.tr.Record(step, detail)
}

// wrap prints text indented under a label, wrapped at 76 columns.
func (g *Guide) wrap(label, text string) {
	const width = 76
	line := fmt.Sprintf("  %-7s", label)
	empty := len(line)
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > width && len(line) > empty {
			g.printf("%s\n", line)
			line = strings.Repeat(" ", empty)
		}
		if len(line) > empty {
			line += " "
		}
		line += w
	}
	g.printf("%s\n", line)
}

// show prints step i.
func (g *Guide) show(i int) {
	st := g.steps[i]
	head := fmt.Sprintf("== Step %d of %d · %s ", st.Number, len(g.steps), g.sec[i])
	g.printf("\n%s%s\n", head, strings.Repeat("=", max(0, 76-len([]rune(head)))))
	g.wrap("who", st.Actor.String())
	g.wrap("do", st.Do)
	if st.Check != "" {
		g.wrap("check", st.Check)
	}
}

// ask reads a line; "abort" stops the ceremony.
func (g *Guide) ask(prompt string) (string, error) {
	l, err := g.Term.Line(prompt)
	if err != nil {
		return "", err
	}
	l = strings.TrimSpace(l)
	if strings.EqualFold(l, "abort") {
		return "", ErrAborted
	}
	return l, nil
}

// through presents every step up to and including the step id, in
// order, each waiting for Enter and recorded in the transcript. A step
// already presented is not presented again.
func (g *Guide) through(id string) error {
	end := g.ahead(id)
	for g.next <= end {
		i := g.next
		g.next++
		if err := g.present(i); err != nil {
			return err
		}
	}
	return nil
}

// ahead is the index of the step id among the steps not yet presented,
// or -1.
func (g *Guide) ahead(id string) int {
	for i := g.next; i < len(g.steps); i++ {
		if g.steps[i].ID == id {
			return i
		}
	}
	return -1
}

// skipThrough records every step up to and including the step id as
// done earlier (why), without presenting it: the review an interrupted
// run completed.
func (g *Guide) skipThrough(id, why string) error {
	end := g.ahead(id)
	for g.next <= end {
		st := g.steps[g.next]
		g.next++
		g.printf("\n== Step %d of %d: %s; not repeated.\n", st.Number, len(g.steps), why)
		if err := g.record(fmt.Sprintf("step %d: %s", st.Number, st.ID), map[string]any{"number": st.Number, "id": st.ID, "actor": st.Actor.String(), "skipped": why}); err != nil {
			return err
		}
	}
	return nil
}

func (g *Guide) present(i int) error {
	st := g.steps[i]
	if st.Actor.Kind == ActorKeyholder && g.absent[st.Device] && strings.HasPrefix(st.ID, "sign/") {
		g.printf("\n== Step %d of %d: %s is absent; step skipped.\n", st.Number, len(g.steps), st.Actor)
		return g.record(fmt.Sprintf("step %d: %s", st.Number, st.ID), map[string]any{"number": st.Number, "id": st.ID, "actor": st.Actor.String(), "skipped": "keyholder absent"})
	}
	g.show(i)
	if _, err := g.ask(fmt.Sprintf("  [%s] press Enter when ready (or type abort): ", g.now().Format("15:04:05 UTC"))); err != nil {
		return err
	}
	detail := map[string]any{"number": st.Number, "id": st.ID, "actor": st.Actor.String()}
	if st.Device != 0 {
		detail["device"] = st.Device
	}
	return g.record(fmt.Sprintf("step %d: %s", st.Number, st.ID), detail)
}

// rest presents the steps not yet presented (after the transcript was
// written: they are on the screen and the run sheet only).
func (g *Guide) rest() error {
	g.tr = nil
	for g.next < len(g.steps) {
		i := g.next
		g.next++
		if err := g.present(i); err != nil {
			return err
		}
	}
	g.printf("\nThe ceremony's steps are done.\n")
	return nil
}

// Dated is something the clock must not be earlier than: the newest
// metadata, the export.
type Dated struct {
	What string
	Time time.Time
}

// open runs the opening: the air gap and the clock.
func (g *Guide) open(tr *Transcript, after []Dated) error {
	g.start(tr)
	if err := g.flushEarly(); err != nil {
		return err
	}
	g.printf("%s ceremony for %s: %d steps. The step numbers are the run sheet's.\n", g.Script.Ceremony, g.Script.Repository, len(g.steps))
	if err := g.through("airgap"); err != nil {
		return err
	}
	if err := g.airgap(); err != nil {
		return err
	}
	if err := g.through("clock"); err != nil {
		return err
	}
	return g.clock(after)
}

// airgap lists the interfaces that are up besides loopback and has the
// room acknowledge them by typing their names.
func (g *Guide) airgap() error {
	up, err := airgap.Up(g.Interfaces)
	if err != nil {
		return err
	}
	if len(up) == 0 {
		g.printf("  network: no interface is up besides loopback.\n")
		return g.record("air gap checked", map[string]any{"up": []airgap.Interface{}})
	}
	g.printf("  WARNING: network interfaces up besides loopback:\n")
	for _, u := range up {
		g.printf("    %s %s\n", u.Name, strings.Join(u.Addrs, " "))
	}
	for tries := 0; tries < 3; tries++ {
		l, err := g.ask("  To go on with them up, type their names, separated by commas (or abort): ")
		if err != nil {
			return err
		}
		ack, err := airgap.ParseAck(strings.ReplaceAll(l, " ", ""))
		if err == nil {
			var res *airgap.Result
			if res, err = airgap.Check(func() ([]airgap.Interface, error) { return up, nil }, ack); err == nil {
				g.printf("  acknowledged: %s\n", strings.Join(res.Acknowledged, ", "))
				return g.record("network interfaces acknowledged", map[string]any{"up": res.Up, "acknowledged": res.Acknowledged})
			}
		}
		g.printf("  not acknowledged: %v\n", err)
		if rerr := g.record("network acknowledgement refused", map[string]any{"typed": l}); rerr != nil {
			return rerr
		}
	}
	return fmt.Errorf("%w: not acknowledged after three attempts", airgap.ErrNetwork)
}

// clock shows the clock and has the administrator confirm it, warning
// when it is earlier than anything in after.
func (g *Guide) clock(after []Dated) error {
	now := g.now()
	g.printf("  laptop clock: %s\n", now.Format("2006-01-02 15:04:05 UTC (Monday)"))
	var warnings []string
	for _, d := range after {
		if !d.Time.IsZero() && now.Before(d.Time) {
			w := fmt.Sprintf("the clock is EARLIER than %s (%s)", d.What, d.Time.UTC().Format(time.RFC3339))
			warnings = append(warnings, w)
			g.printf("  WARNING: %s: check the clock before going on.\n", w)
		}
	}
	l, err := g.ask("  Type yes if the clock agrees with the reference clock (or abort): ")
	if err != nil {
		return err
	}
	if !strings.EqualFold(l, "yes") {
		return fmt.Errorf("%w (typed %q)", ErrClockRefused, l)
	}
	detail := map[string]any{"clock": now.Format(time.RFC3339)}
	if len(warnings) > 0 {
		detail["warnings"] = warnings
	}
	return g.record("clock confirmed", detail)
}

// who names the keyholder of a device for prompts.
func (g *Guide) who(serial uint32) string {
	for _, st := range g.steps {
		if st.Actor.Kind == ActorKeyholder && st.Actor.Device == serial && st.Actor.Name != "" {
			return "keyholder: " + st.Actor.Name
		}
	}
	return "keyholder of device " + fmt.Sprint(serial)
}

// name is the keyholder's name, or "the keyholder of device N".
func (g *Guide) name(serial uint32) string {
	if w := g.who(serial); strings.HasPrefix(w, "keyholder: ") {
		return strings.TrimPrefix(w, "keyholder: ")
	}
	return fmt.Sprintf("the keyholder of device %d", serial)
}

// device waits for a device that was not connected: it asks for it by
// serial and keyholder and looks for it until it comes, saying why it is
// not usable (not connected, another YubiKey in the reader, held by
// another program). optional lets the room type "absent" (a stable
// keyholder who is not here): the result is then nil, nil.
func (g *Guide) device(serial uint32, optional bool) (hsm.Device, error) {
	if err := g.through(fmt.Sprintf("device/%d", serial)); err != nil {
		return nil, err
	}
	look := func() (hsm.Device, error) {
		if g.Reopen == nil {
			return nil, ErrMissingDevice
		}
		return g.Reopen(serial)
	}
	d, err := g.wait(serial, optional, g.purpose, look)
	if err != nil || d == nil {
		return d, err
	}
	return d, g.record("device connected late", map[string]any{"device": serial})
}

// wait asks for the YubiKey with serial (for purpose, if given) and
// calls look until it gives the device, saying why it is not usable
// each time the reason changes; after DeviceWait the room is asked
// again.
func (g *Guide) wait(serial uint32, optional bool, purpose string, look func() (hsm.Device, error)) (hsm.Device, error) {
	poll, wait := g.Poll, g.DeviceWait
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	if wait <= 0 {
		wait = 30 * time.Second
	}
	for {
		g.printf("  Insert the YubiKey with serial %d (%s)%s.\n", serial, g.who(serial), purpose)
		prompt := "  Press Enter when it is in (or type abort): "
		if optional {
			prompt = "  Press Enter when it is in (or type absent, or abort): "
		}
		l, err := g.ask(prompt)
		if err != nil {
			return nil, err
		}
		if optional && strings.EqualFold(l, "absent") {
			if g.absent == nil {
				g.absent = map[uint32]bool{}
			}
			g.absent[serial] = true
			g.printf("  %s recorded as absent.\n", g.name(serial))
			return nil, g.record("keyholder absent", map[string]any{"device": serial})
		}
		var last string
		deadline := g.now().Add(wait)
		for {
			d, err := look()
			if err == nil {
				g.printf("  found %s.\n", d.Info())
				return d, nil
			}
			why := g.deviceProblem(err)
			if why != last {
				g.printf("  the YubiKey with serial %d: %s; looking again every %s...\n", serial, why, poll)
				last = why
			}
			if g.now().After(deadline) {
				break
			}
			time.Sleep(poll)
		}
		g.printf("  still no usable YubiKey with serial %d after %s.\n", serial, wait)
		if err := g.record("device not found", map[string]any{"device": serial, "problem": last}); err != nil {
			return nil, err
		}
	}
}

// deviceProblem names why a device cannot be used, for the screen: not
// connected (and which YubiKeys are, by keyholder, when a port may have
// to be freed), another YubiKey in its reader, or held by another
// program.
func (g *Guide) deviceProblem(err error) string {
	var busy *piv.BusyError
	var wrong *piv.WrongDeviceError
	var absent *piv.AbsentError
	switch {
	case errors.As(err, &busy):
		return fmt.Sprintf("not in a reader that can be read; held by another program: %s (PC/SC sharing violation; gpg's scdaemon holds YubiKeys: 'gpgconf --kill scdaemon')", strings.Join(busy.Readers, ", "))
	case errors.Is(err, piv.ErrBusy):
		return "held by another program (PC/SC sharing violation; gpg's scdaemon holds YubiKeys: 'gpgconf --kill scdaemon')"
	case errors.As(err, &wrong):
		return fmt.Sprintf("not connected: the reader holds the YubiKey with serial %d (%s) instead: take it out and insert serial %d", wrong.Got, g.who(wrong.Got), wrong.Want)
	case errors.As(err, &absent) && len(absent.Present) > 0:
		var in []string
		for _, s := range absent.Present {
			in = append(in, fmt.Sprintf("serial %d (%s)", s, g.who(s)))
		}
		return fmt.Sprintf("not connected; plugged in: %s: take one out if no port is free", strings.Join(in, ", "))
	case errors.Is(err, ErrMissingDevice), errors.Is(err, hsm.ErrNoDevice):
		return "not connected"
	}
	return err.Error()
}

// pin reads and verifies a device's PIN: asked again after a wrong one
// with the tries left; the last try only after the keyholder types
// "last try".
func (g *Guide) pin(d hsm.Device) (string, error) {
	info := d.Info()
	if g.PIN != nil {
		tries, _, err := d.Retries()
		if err != nil {
			tries = -1
		}
		p, err := g.PIN(info, tries)
		if err != nil {
			return "", fmt.Errorf("reading the PIN of %s: %w", info, err)
		}
		if err := d.VerifyPIN(p); err != nil {
			return "", fmt.Errorf("%s: %w", info, err)
		}
		return p, nil
	}
	for {
		tries, _, err := d.Retries()
		if err != nil {
			tries = -1
		}
		if tries == 0 {
			return "", fmt.Errorf("%s: PIN %w", info, hsm.ErrBlocked)
		}
		if tries == 1 {
			g.printf("  WARNING: one PIN try is left on the YubiKey with serial %d: a wrong PIN now blocks its PIN.\n", info.Serial)
			l, err := g.ask("  Type last try to spend it (or abort): ")
			if err != nil {
				return "", err
			}
			if !strings.EqualFold(l, "last try") {
				return "", fmt.Errorf("%s: %w", info, ErrLastTryRefused)
			}
			if err := g.record("last PIN try confirmed", map[string]any{"device": info.Serial}); err != nil {
				return "", err
			}
		}
		left := ""
		if tries > 0 {
			left = ", " + triesLeft(tries)
		}
		p, err := g.Term.Secret(fmt.Sprintf("  PIN for the YubiKey with serial %d (%s%s): ", info.Serial, g.who(info.Serial), left))
		if err != nil {
			return "", err
		}
		err = d.VerifyPIN(p)
		var ae *hsm.AuthError
		switch {
		case err == nil:
			g.printf("  PIN verified.\n")
			return p, g.record("PIN verified", map[string]any{"device": info.Serial})
		case errors.As(err, &ae) && ae.Retries > 0:
			g.printf("  wrong PIN: %s.\n", triesLeft(ae.Retries))
			if err := g.record("wrong PIN", map[string]any{"device": info.Serial, "tries_left": ae.Retries}); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("%s: %w", info, err)
		}
	}
}

// triesLeft is "1 try left" or "N tries left".
func triesLeft(n int) string {
	if n == 1 {
		return "1 try left"
	}
	return fmt.Sprintf("%d tries left", n)
}

// checkWords has the keyholder type words, as read aloud: compared
// without regard to case or spacing, asked up to three times; a mismatch
// signs nothing. A refusal is recorded without what was typed: the
// words are not secret, but a keyholder who typed the PIN at this
// prompt by mistake would otherwise have it in the transcript.
func (g *Guide) checkWords(serial uint32, words []string) error {
	want := strings.ToLower(strings.Join(words, " "))
	for tries := 1; tries <= 3; tries++ {
		l, err := g.ask(fmt.Sprintf("  %s: type the %d check words as read aloud: ", g.name(serial), len(words)))
		if err != nil {
			return err
		}
		if strings.ToLower(strings.Join(strings.Fields(l), " ")) == want {
			g.printf("  check words confirmed.\n")
			return g.record("check words confirmed", map[string]any{"device": serial})
		}
		g.printf("  REFUSED: %v.\n", ErrCheckWords)
		if err := g.record("check words refused", map[string]any{"device": serial, "attempt": tries}); err != nil {
			return err
		}
	}
	return fmt.Errorf("device %d: %w (three attempts)", serial, ErrCheckWords)
}

// showDigest prints a digest as hex groups and PGP words, indented.
func (g *Guide) showDigest(label string, d []byte) {
	g.printf("  %s\n", label)
	for _, l := range strings.Split(keys.HexGroups(d), "\n") {
		g.printf("      %s\n", l)
	}
	w := keys.PGPWords(d)
	for i := 0; i < len(w); i += 8 {
		g.printf("      %s\n", strings.Join(w[i:min(i+8, len(w))], " "))
	}
}

// keyIDCheck is the first KeyIDCheckBytes bytes of a key id.
func keyIDCheck(k *keys.Key) []byte {
	b, err := hex.DecodeString(k.ID())
	if err != nil || len(b) < KeyIDCheckBytes {
		return nil
	}
	return b[:KeyIDCheckBytes]
}

// StableCheckBytes is how much of the diff digest a stable keyholder
// types as check words before signing: 16 bytes, 16 PGP words.
const StableCheckBytes = 16

// signer wraps a device's signer: before its first signature, the step
// is presented and confirm (if set) runs; before each, "touch the YubiKey
// now" when the step's key needs a touch, and a touch timeout is said and
// tried again; after each, the signature is verified against the key.
func (g *Guide) signer(stepID string, serial uint32, sg keys.Signer, confirm func() error) keys.Signer {
	touch := false
	for _, st := range g.steps {
		if st.ID == stepID {
			touch = st.Touch
		}
	}
	return &guidedSigner{g: g, step: stepID, serial: serial, inner: sg, confirm: confirm, touch: touch}
}

type guidedSigner struct {
	g       *Guide
	step    string
	serial  uint32
	inner   keys.Signer
	confirm func() error
	touch   bool
	started bool
}

func (s *guidedSigner) Key() *keys.Key { return s.inner.Key() }

func (s *guidedSigner) Sign(msg []byte) ([]byte, error) {
	g := s.g
	if !s.started {
		s.started = true
		if err := g.through(s.step); err != nil {
			return nil, err
		}
		if s.confirm != nil {
			if err := s.confirm(); err != nil {
				return nil, err
			}
		}
	}
	var sig []byte
	var err error
	for tries := 0; ; tries++ {
		if s.touch {
			g.printf("  Touch the YubiKey with serial %d now (it blinks).\n", s.serial)
		}
		sig, err = s.inner.Sign(msg)
		if !errors.Is(err, hsm.ErrTouchTimeout) || tries == 2 {
			break
		}
		g.printf("  The YubiKey with serial %d was not touched in time (no PIN try was spent); again.\n", s.serial)
		if rerr := g.record("touch timed out", map[string]any{"device": s.serial}); rerr != nil {
			return nil, rerr
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.inner.Key().Verify(msg, sig); err != nil {
		return nil, fmt.Errorf("device %d, key %s: %w: %w", s.serial, s.inner.Key().ID(), ErrSignatureInvalid, err)
	}
	g.printf("  signature by key %s (device %d) verified against its public key.\n", keys.HexGroups(keyIDCheck(s.inner.Key())), s.serial)
	return sig, g.record("signature verified", map[string]any{"device": s.serial, "keyid": s.inner.Key().ID(), "step": s.step})
}

// bar starts a progress report on the guide's screen.
func (g *Guide) bar(label string, total int64, unit string) *progress.Bar {
	return progress.New(g.Out, "  "+label, total, progress.Options{Terminal: g.Terminal, Unit: unit, Now: g.Now})
}
