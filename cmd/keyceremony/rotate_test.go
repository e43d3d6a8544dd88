package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keyceremony/keyceremony/keys"
)

// cmdKeyID sets an environment variable to the TUF key id of a public key
// file a ceremony wrote (keys/*.pub.json): keyid FILE VAR.
func cmdKeyID(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: keyid FILE VAR")
	}
	var k keys.Key
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &k))
	ts.Setenv(args[1], k.ID())
}

// TestHandoverNewPINOnTerminal runs 'rotate keyholder' in a real terminal
// (tmux): the outgoing keyholder's PIN comes from the soft devices' PIN
// file, the new keyholder types the new PIN twice as soon as the prompt
// shows (the terminal no longer echoes by then), it is never shown, and
// afterwards only the new PIN opens the device.
func TestHandoverNewPINOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	args := softRehearsal(t, dir)
	pins := func(name, pin1001 string) string {
		f := p(name)
		if err := os.WriteFile(f, []byte("1001 "+pin1001+"\n1002 123456\n1003 123456\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if code, _, e := runCLI(append(args, "--out", p("boot"), "--pin-file", pins("pins.txt", "123456"))...); code != 0 {
		t.Fatal(e)
	}
	common := []string{"--root", p("boot", "metadata", "1.root.json"), "--published", p("boot"), "--config", p("bootstrap.json"), "--soft", p("1001"), "--soft-ca", p("ca")}
	tm := newTmuxSized(t, dir, "tmux.sock", 220, 60, fmt.Sprintf("%s rotate keyholder --device 1001 --to Dora --media %s --pin-file %s %s; echo EXIT=$?; sleep 60", bin, p("handover"), p("pins.txt"), strings.Join(common, " ")))
	tm.waitFor("The NEW keyholder: new PIN for soft serial 1001", 1)
	tm.typeSecret("97531864", "Enter")
	tm.waitFor("Again, to confirm", 1)
	tm.typeSecret("97531864", "Enter")
	s := tm.waitFor("EXIT=", 1)
	if !strings.Contains(s, "EXIT=0") || !strings.Contains(s, `device 1001 passed from "" to "Dora" with 3 keys, new PIN set`) {
		t.Fatalf("handover failed:\n%s", s)
	}
	if strings.Contains(s, "97531864") {
		t.Fatalf("the new PIN was shown:\n%s", s)
	}
	if code, _, e := runCLI("verify", "--root", p("boot", "metadata", "1.root.json"), "--previous", p("boot"), p("handover")); code != 0 {
		t.Fatalf("verify: %s", e)
	}
	// The old PIN no longer opens device 1001; the new one does.
	renew := append([]string{"renew", "targets"}, common...)
	if code, _, e := runCLI(append(renew, "--media", p("r1"), "--pin-file", p("pins.txt"))...); code == 0 || !strings.Contains(e, "PIN") {
		t.Fatalf("the old PIN still works: %d %s", code, e)
	}
	if code, _, e := runCLI(append(renew, "--media", p("r2"), "--pin-file", pins("new-pins.txt", "97531864"))...); code != 0 {
		t.Fatalf("the new PIN: %s", e)
	}
}
