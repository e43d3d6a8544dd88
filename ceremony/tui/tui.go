// Package tui is the terminal side of a ceremony: it reads PINs and
// confirmations from the controlling terminal (/dev/tty), never from
// standard input, argv or the environment, so that a PIN cannot be piped,
// logged or left in shell history, and it shows digests for people to
// read aloud.
package tui

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/keyceremony/keyceremony/keys"
)

// ErrNoTerminal means there is no controlling terminal to ask.
var ErrNoTerminal = errors.New("no terminal to read from (PINs are read from /dev/tty, never from standard input)")

// Terminal reads from and writes to the controlling terminal.
type Terminal struct {
	in  *os.File
	out io.Writer
}

// Open opens /dev/tty.
func Open() (*Terminal, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoTerminal, err)
	}
	if !term.IsTerminal(int(f.Fd())) {
		f.Close()
		return nil, ErrNoTerminal
	}
	return &Terminal{in: f, out: f}, nil
}

// Close closes the terminal.
func (t *Terminal) Close() error { return t.in.Close() }

// Secret asks for a value without echoing it. Echo is off before the
// prompt is written: a prompt on the screen means the terminal no longer
// echoes, so a fast typist's first keys are not shown.
func (t *Terminal) Secret(prompt string) (string, error) {
	fd := int(t.in.Fd())
	restore, err := echoOff(fd)
	if err != nil {
		return "", fmt.Errorf("turning the terminal's echo off: %w", err)
	}
	defer restore()
	fmt.Fprint(t.out, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(t.out)
	if err != nil {
		return "", fmt.Errorf("reading from the terminal: %w", err)
	}
	return string(b), nil
}

// NewSecret asks for a new value twice and insists that they match.
func (t *Terminal) NewSecret(prompt string, check func(string) error) (string, error) {
	for tries := 0; tries < 3; tries++ {
		a, err := t.Secret(prompt)
		if err != nil {
			return "", err
		}
		if err := check(a); err != nil {
			fmt.Fprintf(t.out, "%v; try again\n", err)
			continue
		}
		b, err := t.Secret("Again, to confirm: ")
		if err != nil {
			return "", err
		}
		if a == b {
			return a, nil
		}
		fmt.Fprintln(t.out, "The two entries differ; try again.")
	}
	return "", errors.New("gave up after three attempts")
}

// Line asks for one line, echoed, and returns it without its line end.
// It reads byte by byte, so that nothing typed after the line is taken
// from a later Secret.
func (t *Terminal) Line(prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := t.in.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimRight(string(b), "\r"), nil
			}
			b = append(b, one[0])
			if len(b) > 4096 {
				return "", errors.New("reading from the terminal: line longer than 4096 bytes")
			}
		}
		if err != nil {
			return "", fmt.Errorf("reading from the terminal: %w", err)
		}
	}
}

// Write writes to the terminal.
func (t *Terminal) Write(p []byte) (int, error) { return t.out.Write(p) }

// Confirm asks the person to type word exactly.
func (t *Terminal) Confirm(prompt, word string) (bool, error) {
	fmt.Fprintf(t.out, "%s\nType %q to continue: ", prompt, word)
	line, err := bufio.NewReader(t.in).ReadString('\n')
	if err != nil {
		return false, fmt.Errorf("reading from the terminal: %w", err)
	}
	return strings.TrimSpace(line) == word, nil
}

// ShowDigest prints a digest for the people in the room to read aloud and
// compare: as hex groups and as PGP words, each line indented.
func ShowDigest(w io.Writer, label string, d []byte) {
	fmt.Fprintf(w, "%s\n", label)
	for _, l := range strings.Split(keys.HexGroups(d), "\n") {
		fmt.Fprintf(w, "      %s\n", l)
	}
	words := keys.PGPWords(d)
	for i := 0; i < len(words); i += 8 {
		fmt.Fprintf(w, "      %s\n", strings.Join(words[i:min(i+8, len(words))], " "))
	}
}
