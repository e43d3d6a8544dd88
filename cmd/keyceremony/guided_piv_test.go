//go:build cgo

package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// TestGuidedBootstrapOnEmulatedYubiKeys runs the built binary in a real
// terminal through a guided bootstrap on three emulated YubiKeys behind a
// private pcscd: one is held by another program when the ceremony asks for
// it (a PC/SC sharing violation, named on the screen) and released, one
// is plugged in only when the screen asks for it; the first PIN is typed
// wrong, then right. Every key needs a touch (touch policy always) and
// the cards wait for one as a YubiKey blinks (pivemu ManualTouch): the
// first touch is missed, so the card answers 6982 after its timeout, and
// the screen says the touch timed out and asks again; the second touch,
// and every later one, is made.
func TestGuidedBootstrapOnEmulatedYubiKeys(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	touchy := pivemu.Config{CA: ca, ManualTouch: true, TouchTimeout: 2 * time.Second}
	env := pcsctest.Start(t, 3, touchy, touchy, touchy)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "emulator-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var serials []uint32
	for _, c := range env.Cards {
		d, err := piv.Open(c.Serial(), piv.Options{Roots: keys.YubicoRoots(), Rehearsal: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Initialize("246800", "13579100"); err != nil {
			t.Fatal(err)
		}
		d.Close()
		serials = append(serials, c.Serial())
	}
	k, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	kj, _ := json.Marshal(k.Key())
	onl := fmt.Sprintf(`{"threshold": 1, "keys": [%s]}`, kj)
	role := func(th int, slot string) string {
		var ks []string
		for _, s := range serials {
			ks = append(ks, fmt.Sprintf(`{"device": %d, "slot": %q}`, s, slot))
		}
		return fmt.Sprintf(`{"threshold": %d, "keys": [%s]}`, th, strings.Join(ks, ", "))
	}
	cfg := fmt.Sprintf(`{"repository": "pypi", "expires_days": {"root": 365, "targets": 365, "stable": 120},
"key_policy": {"algorithm": "p256", "pin_policy": "once", "touch_policy": "always"},
"keyholders": {"%d": "Alice Example", "%d": "Bob Example", "%d": "Carol Example"},
"root": %s, "targets": %s, "stable": %s,
"online": {"snapshot": %s, "timestamp": %s, "unstable": %s},
"target_paths": ["packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"]}`, serials[0], serials[1], serials[2], role(2, "9c"), role(1, "82"), role(2, "83"), onl, onl, onl)
	if err := os.WriteFile(filepath.Join(dir, "bootstrap.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "backup"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Card 2 is not plugged in; card 1 is held exclusively by another
	// program (here: this test, through piv-go, which connects
	// exclusively).
	env.Remove(t, 2)
	held, err := gopiv.Open(env.Readers[1])
	if err != nil {
		t.Fatal(err)
	}
	release := func() {
		if held != nil {
			held.Close()
			held = nil
		}
	}
	t.Cleanup(release)
	// The keyholders' fingers: the first time any card blinks nobody
	// touches it; every later time it is touched at once.
	var missed atomic.Bool
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for _, c := range env.Cards {
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-c.TouchRequests():
					if missed.CompareAndSwap(false, true) {
						continue
					}
					c.Touch()
				}
			}
		}()
	}
	var envs []string
	for _, kv := range env.Environ() {
		if strings.HasPrefix(kv, "PCSCLITE_CSOCK_NAME=") || strings.HasPrefix(kv, "PATH=") {
			envs = append(envs, "'"+kv+"'")
		}
	}
	boot := filepath.Join(dir, "boot")
	tm := startTmux(t, dir, fmt.Sprintf("env %s %s bootstrap --config bootstrap.json --backup backup --out %s --piv --rehearsal --attestation-ca %s; echo EXIT=$?; sleep 120",
		strings.Join(envs, " "), buildBinary(t), boot, caFile))
	s := guidedAnswersPIN(t, tm, "246800", map[uint32]lateDevice{
		// While a reader is held, a card that is not plugged in cannot
		// be told from one in that reader: the screen says both.
		serials[1]: {why: "not in a reader that can be read; held by another program: " + env.Readers[1] + " (PC/SC sharing violation", make: release},
		// (The serials are random: Bob's device may come first.)
		serials[2]: {make: func() { env.Insert(t, 2) }, whyNow: func() string {
			if held != nil {
				return "not in a reader that can be read; held by another program: " + env.Readers[1]
			}
			return "not connected; plugged in: "
		}},
	})
	if !strings.Contains(s, "EXIT=0") {
		t.Fatalf("guided bootstrap on emulated YubiKeys failed:\n%s\npcscd:\n%s", s, env.PCSCDLog())
	}
	for _, want := range []string{
		fmt.Sprintf("Insert the YubiKey with serial %d (keyholder: Bob Example) for its pre-flight.", serials[1]),
		fmt.Sprintf("found yubikey serial %d", serials[1]),
		fmt.Sprintf("Insert the YubiKey with serial %d (keyholder: Carol Example) for its pre-flight.", serials[2]),
		fmt.Sprintf("found yubikey serial %d", serials[2]),
		"wrong PIN: 2 tries left.",
		"self-check passed: root 2-of-3, targets 1-of-3 and stable 2-of-3 verified.",
		"now (it blinks).",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	// Nine self-check signatures, then the three root keys sign the
	// transcript's end, each touched when the screen says so.
	if n := strings.Count(s, "verified against its public key"); n != 12 {
		t.Errorf("%d signatures reported verified, want 12", n)
	}
	if n := strings.Count(s, "now (it blinks)."); n != 13 {
		t.Errorf("the screen asked for %d touches, want 13 (12 and the missed one again)", n)
	}
	if n := strings.Count(s, "was not touched in time (no PIN try was spent); again."); n != 1 {
		t.Errorf("the missed touch reported %d times, want once", n)
	}
	touches := 0
	for _, c := range env.Cards {
		touches += c.Touches()
	}
	// Nine self-check signatures, then the three root keys sign the
	// transcript's end (transcript.dsse.json).
	if touches != 12 {
		t.Errorf("%d touches made, want 12 (one per signature: 9 self-checks and 3 on the transcript's end; the missed one is not counted)", touches)
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}
	tr := transcriptEntries(t, filepath.Join(boot, "transcript.jsonl"))
	checkGuidedTranscript(t, tr, 39, map[string]int{"wrong PIN": 1, "device connected late": 2, "signature verified": 9, "touch timed out": 1})

	guidedStableOnePort(t, env, dir, boot, caFile, serials, envs, &missed)
}

// guidedStableOnePort continues TestGuidedBootstrapOnEmulatedYubiKeys
// with a guided stable signing through one reader port, as on a laptop
// with one free USB port: every card is taken out, and each comes into
// the one port when the screen asks for it, for its Devices step, its
// keyholder's turn to sign, and the transcript's end. Carol is absent.
// Bob's card is held by another program when it first comes (a PC/SC
// sharing violation, named) and then released; Alice's first PIN is
// wrong (the tries left shown) and the first touch is missed (reported
// as such and retried); a keyholder's turn while the other's card is in
// the port names that card. verify then passes on the media.
func guidedStableOnePort(t *testing.T, env *pcsctest.Env, dir, boot, caFile string, serials []uint32, envs []string, missed *atomic.Bool) {
	for i := range env.Cards {
		env.Remove(t, i)
	}
	port := env.Readers[0]
	inPort := -1
	swap := func(i int) {
		if inPort == i {
			return
		}
		if inPort >= 0 {
			env.Remove(t, inPort)
		}
		env.InsertInto(t, i, 0)
		inPort = i
	}
	var held *gopiv.YubiKey
	release := func() {
		if held != nil {
			held.Close()
			held = nil
		}
	}
	t.Cleanup(release)
	// What the screen says while it waits for card i, given what is in
	// the port when it asks; asking for Bob's the first time, the test
	// puts it in and holds it.
	names := []string{"Alice Example", "Bob Example"}
	asked := map[int]int{}
	// Bob's card comes into the port held by another program, before
	// Enter is pressed at its first request.
	holdBob := func() {
		if asked[1] > 0 {
			return
		}
		swap(1)
		var err error
		if held, err = gopiv.Open(port); err != nil {
			t.Fatal(err)
		}
	}
	why := func(i int) string {
		asked[i]++
		switch {
		case i == 1 && asked[i] == 1:
			return "not in a reader that can be read; held by another program: " + port + " (PC/SC sharing violation"
		case inPort < 0:
			return "not connected; looking again"
		case asked[i] == 1:
			// Its Devices step: the YubiKeys plugged in are named.
			return fmt.Sprintf("not connected; plugged in: serial %d (keyholder: %s): take one out if no port is free", serials[inPort], names[inPort])
		}
		// A turn: the device was seen in this port; another is in it.
		return fmt.Sprintf("not connected: the reader holds the YubiKey with serial %d (keyholder: %s) instead: take it out and insert serial %d", serials[inPort], names[inPort], serials[i])
	}
	late := map[uint32]lateDevice{}
	for i := 0; i < 2; i++ {
		late[serials[i]] = lateDevice{whyNow: func() string { return why(i) }, make: func() { release(); swap(i) }}
		if i == 1 {
			d := late[serials[i]]
			d.before = holdBob
			late[serials[i]] = d
		}
	}
	exp := filepath.Join(dir, "export.jsonl")
	f, err := os.Create(exp)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(f, synth.Params{Seed: 1, Files: 200, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	media := filepath.Join(dir, "media")
	root := filepath.Join(boot, "metadata", "1.root.json")
	missed.Store(false)
	touches := 0
	for _, c := range env.Cards {
		touches -= c.Touches()
	}
	tm := &tmuxTerm{t: t, sock: filepath.Join(dir, "tmux-stable.sock")}
	if out, err := tm.run("start-server", ";", "set-option", "-g", "history-limit", "100000", ";", "new-session", "-d", "-x", "200", "-y", "50", "-c", dir,
		fmt.Sprintf("env %s %s stable sign --config bootstrap.json --export %s --published %s --root %s --media %s --backup backup --piv --rehearsal --attestation-ca %s; echo EXIT=$?; sleep 120",
			strings.Join(envs, " "), buildBinary(t), exp, boot, root, media, caFile)); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { tm.run("kill-server") })
	s := guidedAnswersAs(t, tm, "246800", late, map[uint32]bool{serials[2]: true})
	if !strings.Contains(s, "EXIT=0") {
		t.Fatalf("guided stable signing through one port failed:\n%s\npcscd:\n%s", s, env.PCSCDLog())
	}
	for _, want := range []string{
		fmt.Sprintf("Insert the YubiKey with serial %d (keyholder: Alice Example).", serials[0]),
		fmt.Sprintf("Insert the YubiKey with serial %d (keyholder: Bob Example).", serials[1]),
		"held by another program: " + port + " (PC/SC sharing violation",
		"its keys are read: it may be taken out until its keyholder's turn to sign (one port is enough).",
		"Carol Example recorded as absent.",
		" to sign.",
		" to sign the end of the transcript.",
		"the reader holds the YubiKey with serial ",
		"wrong PIN: 2 tries left.",
		"was not touched in time (no PIN try was spent); again.",
		fmt.Sprintf("turn done for the YubiKey with serial %d (keyholder: Alice Example): it may be taken out", serials[0]),
		fmt.Sprintf("turn done for the YubiKey with serial %d (keyholder: Bob Example): it may be taken out", serials[1]),
		"stable v2 written to " + media + " and verified",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	// Each keyholder's turn signs stable and the signed diff, then the
	// transcript's end: three signatures each, each touched once.
	if n := strings.Count(s, "verified against its public key"); n != 6 {
		t.Errorf("%d signatures reported verified, want 6", n)
	}
	for _, c := range env.Cards {
		touches += c.Touches()
	}
	if touches != 6 {
		t.Errorf("%d touches made, want 6", touches)
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}
	st := transcriptEntries(t, filepath.Join(media, "transcript.jsonl"))
	checkTranscriptDigest(t, filepath.Join(media, "transcript.jsonl"), filepath.Join(dir, "backup"))
	checkGuidedTranscript(t, st, len(ceremony.StableSteps(mustConfig(t, filepath.Join(dir, "bootstrap.json")), nil).Steps()),
		map[string]int{"keyholder absent": 1, "wrong PIN": 1, "touch timed out": 1, "signature verified": 4, "device turn done": 2, "device connected late": 2})
	if code, out, e := runCLI("verify", "--root", root, "--previous", boot, "--attestation-ca", caFile, media); code != 0 {
		t.Fatalf("verify of the media signed through one port: exit %d\n%s\n%s", code, out, e)
	}
}
