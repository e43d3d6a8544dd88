package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/keyceremony/keyceremony/keys"
)

// buildBinary builds keyceremony once for the tests that run it as a
// separate process.
func buildBinary(t *testing.T) string {
	t.Helper()
	return buildBinaryTags(t, "")
}

// buildBinaryTags builds keyceremony with build tags (comma-separated;
// killpoint: see internal/killpoint).
func buildBinaryTags(t *testing.T, tags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keyceremony")
	out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var (
	pivemuOnce sync.Once
	pivemuBin  string
	pivemuErr  error
)

// buildPivemu builds the PIV emulator's own binary (cmd/pivemu) once per
// test process; the release binary does not hold it.
func buildPivemu(t *testing.T) string {
	t.Helper()
	pivemuOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kc-pivemu-")
		if err != nil {
			pivemuErr = err
			return
		}
		pivemuBin = filepath.Join(dir, "pivemu")
		if out, err := exec.Command("go", "build", "-o", pivemuBin, "../pivemu").CombinedOutput(); err != nil {
			pivemuErr = fmt.Errorf("go build ../pivemu: %w\n%s", err, out)
		}
	})
	if pivemuErr != nil {
		t.Fatal(pivemuErr)
	}
	return pivemuBin
}

// softRehearsal makes three soft devices and a bootstrap configuration
// and returns the bootstrap arguments (without PIN source or --out; with
// a new backup medium).
func softRehearsal(t *testing.T, dir string) []string {
	t.Helper()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	if code, _, e := runCLI("soft", "ca", "--dir", p("ca")); code != 0 {
		t.Fatal(e)
	}
	if err := os.Mkdir(p("backup"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"bootstrap", "--config", p("bootstrap.json"), "--soft-ca", p("ca"), "--backup", p("backup")}
	for _, s := range []int{1001, 1002, 1003} {
		if code, _, e := runCLI("soft", "create", "--dir", p(fmt.Sprint(s)), "--serial", fmt.Sprint(s), "--ca", p("ca"), "--kdf-cost", "test"); code != 0 {
			t.Fatal(e)
		}
		args = append(args, "--soft", p(fmt.Sprint(s)))
	}
	k, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	kb := k.Key()
	kj := fmt.Sprintf(`{"keytype":%q,"scheme":%q,"keyval":{"public":%q}}`, kb.KeyType, kb.Scheme, kb.KeyVal.Public)
	onl := fmt.Sprintf(`{"threshold": 1, "keys": [%s]}`, kj)
	role := func(th int, slot string) string {
		return fmt.Sprintf(`{"threshold": %d, "keys": [{"device": 1001, "slot": %q}, {"device": 1002, "slot": %q}, {"device": 1003, "slot": %q}]}`, th, slot, slot, slot)
	}
	cfg := fmt.Sprintf(`{"repository": "pypi", "expires_days": {"root": 365, "targets": 365, "stable": 120},
"key_policy": {"algorithm": "p256", "pin_policy": "always", "touch_policy": "never"},
"root": %s, "targets": %s, "stable": %s,
"online": {"snapshot": %s, "timestamp": %s, "unstable": %s},
"target_paths": ["packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"]}`, role(2, "9c"), role(1, "82"), role(2, "83"), onl, onl, onl)
	if err := os.WriteFile(p("bootstrap.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return args
}

// TestPINNotFromStdin: without a terminal, a PIN offered on standard input
// is not read; the run fails and writes nothing.
func TestPINNotFromStdin(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	args := append(softRehearsal(t, dir), "--out", filepath.Join(dir, "out"), "--network-ack="+strings.Join(upInterfaces(t), ","))
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader("123456\n123456\n123456\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil || !strings.Contains(stderr.String(), "no terminal") {
		t.Fatalf("want a refusal naming the missing terminal, got %v: %s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Fatal("a failed bootstrap left its output directory")
	}
}

// TestPINPromptOnTerminal runs a bootstrap in a real terminal (tmux), as a
// keyholder would: each device's prompt names it, the PIN is typed as soon
// as the prompt shows (the terminal no longer echoes by then) and it is
// never shown on the screen.
func TestPINPromptOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	// The batch form on a terminal: PINs are still typed there.
	args := append(softRehearsal(t, dir), "--out", filepath.Join(dir, "out"), "--batch", "--network-ack="+strings.Join(upInterfaces(t), ","))
	tm := newTmuxSized(t, dir, "tmux.sock", 220, 60, fmt.Sprintf("%s %s; echo EXIT=$?; sleep 60", bin, strings.Join(args, " ")))
	for i, serial := range []int{1001, 1002, 1003} {
		s := tm.waitFor("PIN for", i+1)
		if !strings.Contains(s, fmt.Sprintf("PIN for soft serial %d", serial)) || !strings.Contains(s, "(3 tries left)") {
			t.Fatalf("prompt %d does not name device %d:\n%s", i+1, serial, s)
		}
		tm.typeSecret("123456", "Enter")
	}
	s := tm.waitFor("EXIT=", 1)
	if !strings.Contains(s, "EXIT=0") {
		t.Fatalf("bootstrap failed:\n%s", s)
	}
	if strings.Contains(s, "123456") {
		t.Fatalf("the PIN was shown on the screen:\n%s", s)
	}
	if !strings.Contains(s, "transcript digest") {
		t.Fatalf("no transcript digest shown:\n%s", s)
	}
}
