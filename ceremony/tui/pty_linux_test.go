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
// types at once when the first output appears (a prompt, a pager's first
// page): it records the terminal's line-discipline flags when each write
// reached it, then types.
type typist struct {
	t             *testing.T
	master, slave *os.File
	keys          string
	writes        []string
	lflags        []uint32
}

func (w *typist) Write(p []byte) (int, error) {
	st, err := unix.IoctlGetTermios(int(w.slave.Fd()), unix.TCGETS)
	if err != nil {
		w.t.Fatal(err)
	}
	w.writes = append(w.writes, string(p))
	w.lflags = append(w.lflags, st.Lflag)
	n, err := w.slave.Write(p)
	if w.keys != "" {
		if _, err := w.master.WriteString(w.keys); err != nil {
			w.t.Fatal(err)
		}
		w.keys = ""
	}
	return n, err
}

// echoAt reports, for each write, whether the terminal echoed then.
func (w *typist) echoAt() []bool {
	var out []bool
	for _, f := range w.lflags {
		out = append(out, f&unix.ECHO != 0)
	}
	return out
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
	if e := w.echoAt(); len(e) == 0 || e[0] {
		t.Fatalf("echo on when the prompt was written (echo at each write: %v)", e)
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

// TestPagerLineModeBeforeScreenReturns: when the pager quits, the
// terminal is back in line mode (echo, line editing) before the screen
// it showed before comes back, so keys typed as soon as the pager is gone
// are read as a line by the prompt that follows.
func TestPagerLineModeBeforeScreenReturns(t *testing.T) {
	master, slave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 10, Col: 40}); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, master) // the screen
	w := &typist{t: t, master: master, slave: slave, keys: "q"}
	tm := &Terminal{in: slave, out: w}
	err := tm.Page(t.TempDir(), func(out io.Writer) error {
		for i := range 50 {
			fmt.Fprintf(out, "line %d\n", i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	last := len(w.writes) - 1
	if last < 0 || w.writes[last] != "\x1b[?1049l" {
		t.Fatalf("the pager's last write is %q, want the return to the main screen", w.writes[last])
	}
	if f := w.lflags[last]; f&unix.ICANON == 0 || f&unix.ECHO == 0 {
		t.Fatalf("the main screen came back with the terminal still raw (lflag %#x)", f)
	}
	if f := w.lflags[0]; f&unix.ICANON != 0 {
		t.Fatalf("the pager's first page was written in line mode (lflag %#x)", f)
	}
}
