package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The terminal tests drive the built binary in tmux and wait for what the
// screen shows, never for a fixed time: on two cores shared by the whole
// suite a screen can take many seconds to come. screenWait bounds every
// wait; it is long because a wait that ends early is a false failure, and
// a wait that succeeds ends as soon as the screen shows what it waits for.
const screenWait = 3 * time.Minute

// tmuxTerm is the built binary running in a real terminal (tmux), driven
// as the people in the room would: keys sent, the screen read back.
type tmuxTerm struct {
	t    *testing.T
	sock string
	// wrongMedium, if set, puts the right medium in when the screen
	// refuses one; onPrompt, if set, sees each prompt and the screen
	// before it is answered.
	wrongMedium func()
	onPrompt    func(prompt, screen string)
}

// startTmux runs shell in a 200x50 terminal of a tmux server of its own.
func startTmux(t *testing.T, dir, shell string) *tmuxTerm {
	t.Helper()
	return newTmuxSized(t, dir, "tmux.sock", 200, 50, shell)
}

// newTmux starts a tmux server of its own (socket name) running command.
func newTmux(t *testing.T, dir, name, command string) *tmuxTerm {
	t.Helper()
	return newTmuxSized(t, dir, name, 200, 50, command)
}

// newTmuxSized starts a tmux server of its own (socket name, in dir) with
// one width x height terminal running command; it is killed when the test
// ends.
func newTmuxSized(t *testing.T, dir, name string, width, height int, command string) *tmuxTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed: run scripts/install-test-deps (%v)", err)
	}
	tm := &tmuxTerm{t: t, sock: filepath.Join(dir, name)}
	if out, err := tm.run("start-server", ";", "set-option", "-g", "history-limit", "100000", ";",
		"new-session", "-d", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), "-c", dir, command); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { tm.run("kill-server") })
	return tm
}

func (tm *tmuxTerm) run(a ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-S", tm.sock}, a...)...).CombinedOutput()
	return string(out), err
}

// screen is everything shown so far, wrapped lines joined. While a pager
// shows (the alternate screen), it is the pager's screen.
func (tm *tmuxTerm) screen() string {
	out, _ := tm.run("capture-pane", "-p", "-J", "-S", "-100000")
	return out
}

// visible is what the terminal shows now, without the history.
func (tm *tmuxTerm) visible() string {
	out, _ := tm.run("capture-pane", "-p")
	return out
}

func (tm *tmuxTerm) send(keys ...string) {
	tm.t.Helper()
	if out, err := tm.run(append([]string{"send-keys"}, keys...)...); err != nil {
		tm.t.Fatalf("tmux send-keys: %v %s", err, out)
	}
}

// until waits until ok holds for what capture returns, and returns that;
// after screenWait it fails the test, naming what it waited for.
func (tm *tmuxTerm) until(what string, capture func() string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(screenWait)
	for {
		s := capture()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waited %v for %s; screen:\n%s", screenWait, what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor waits until the screen shows what at least n times.
func (tm *tmuxTerm) waitFor(what string, n int) string {
	tm.t.Helper()
	return tm.until(fmt.Sprintf("%q (x%d)", what, n), tm.screen, func(s string) bool { return strings.Count(s, what) >= n })
}

// waitVisible waits until the visible screen shows what.
func (tm *tmuxTerm) waitVisible(what string) string {
	tm.t.Helper()
	return tm.until(fmt.Sprintf("%q on the visible screen", what), tm.visible, func(s string) bool { return strings.Contains(s, what) })
}

// lastLine is the last line of s that is not empty.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n ")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// echoes reports whether the terminal (the pane's tty) echoes what is
// typed, as stty sees it.
func (tm *tmuxTerm) echoes() bool {
	tm.t.Helper()
	tty, err := tm.run("display-message", "-p", "#{pane_tty}")
	if err != nil {
		tm.t.Fatalf("tmux display-message: %v %s", err, tty)
	}
	out, err := exec.Command("stty", "-a", "-F", strings.TrimSpace(tty)).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("stty -a -F %s: %v %s", tty, err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		switch f {
		case "echo":
			return true
		case "-echo":
			return false
		}
	}
	tm.t.Fatalf("stty -a shows neither echo nor -echo:\n%s", out)
	return false
}

// typeSecret types a secret at a prompt the screen shows. A prompt on the
// screen must mean the terminal no longer echoes (tui.Secret turns echo
// off before it writes the prompt): a keyholder who types at once is not
// shown the PIN. So echo is checked, not waited for.
func (tm *tmuxTerm) typeSecret(keys ...string) {
	tm.t.Helper()
	if tm.echoes() {
		tm.t.Fatalf("a secret's prompt is on the screen and the terminal still echoes:\n%s", tm.screen())
	}
	tm.send(keys...)
}

// The prompts of the guided ceremony, as the screen shows them.
var guidedPrompts = []string{
	"press Enter when ready (or type abort): ",
	"separated by commas (or abort): ",
	"Type yes if the clock agrees",
	"Press Enter when it is in (or type",
	"PIN for the YubiKey with serial ",
	"check words as read aloud: ",
	"Type last try",
	"Press Enter when the right medium is in",
	"EXIT=",
}

// nextPrompt waits for the prompt after the answered ones and returns it
// with the screen.
func (tm *tmuxTerm) nextPrompt(answered int) (string, string) {
	tm.t.Helper()
	return tm.promptAfter(guidedPrompts, answered)
}

// promptAfter waits until the screen shows more of the prompts than were
// answered (or the program's exit) and returns the last one shown, with
// the screen.
func (tm *tmuxTerm) promptAfter(prompts []string, answered int) (string, string) {
	tm.t.Helper()
	var last string
	s := tm.until(fmt.Sprintf("a prompt after %d answered", answered), tm.screen, func(s string) bool {
		total, at := 0, -1
		last = ""
		for _, p := range prompts {
			total += strings.Count(s, p)
			if i := strings.LastIndex(s, p); i > at {
				last, at = p, i
			}
		}
		return last == "EXIT=" || total > answered
	})
	return last, s
}
