package tui

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master is the keyboard and the
// screen, the slave is the program's terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// typist is the terminal's output side with a person at the keyboard who
// types the PIN the instant a prompt appears: it records whether the
// terminal echoed when each write reached it, then types.
type typist struct {
	t             *testing.T
	master, slave *os.File
	keys          string
	echoAt        []bool
}

func (w *typist) Write(p []byte) (int, error) {
	st, err := unix.IoctlGetTermios(int(w.slave.Fd()), unix.TCGETS)
	if err != nil {
		w.t.Fatal(err)
	}
	w.echoAt = append(w.echoAt, st.Lflag&unix.ECHO != 0)
	n, err := w.slave.Write(p)
	if w.keys != "" {
		if _, err := w.master.WriteString(w.keys); err != nil {
			w.t.Fatal(err)
		}
		w.keys = ""
	}
	return n, err
}

// TestSecretEchoOffBeforePrompt: when a PIN prompt reaches the terminal,
// echo is already off, so the keys typed at once are read but never shown;
// afterwards echo is on again.
func TestSecretEchoOffBeforePrompt(t *testing.T) {
	master, slave := openPTY(t)
	w := &typist{t: t, master: master, slave: slave, keys: "123456\n"}
	tm := &Terminal{in: slave, out: w}
	got, err := tm.Secret("PIN: ")
	if err != nil || got != "123456" {
		t.Fatalf("Secret = %q, %v; want 123456", got, err)
	}
	if len(w.echoAt) == 0 || w.echoAt[0] {
		t.Fatalf("echo on when the prompt was written (echo at each write: %v)", w.echoAt)
	}
	st, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lflag&unix.ECHO == 0 {
		t.Fatal("echo still off after the PIN was read")
	}
	// The screen: everything the program wrote and the terminal echoed,
	// up to a marker written last.
	if _, err := slave.WriteString("END\n"); err != nil {
		t.Fatal(err)
	}
	var screen []byte
	buf := make([]byte, 256)
	for !bytes.Contains(screen, []byte("END")) {
		n, err := master.Read(buf)
		screen = append(screen, buf[:n]...)
		if err != nil && err != io.EOF {
			t.Fatalf("reading the screen: %v (so far %q)", err, screen)
		}
	}
	if bytes.Contains(screen, []byte("123456")) {
		t.Fatalf("the PIN was echoed: %q", screen)
	}
	if !bytes.HasPrefix(screen, []byte("PIN: ")) {
		t.Fatalf("screen %q does not start with the prompt", screen)
	}
}
