package soft

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
)

// ErrPINFile is a PIN file that breaks the rules in the package doc.
var ErrPINFile = errors.New("bad PIN file")

const maxPINFile = 64 << 10

// Secrets are the PIN and, if the file gives one, the PUK of one device.
type Secrets struct {
	PIN string
	PUK string // empty if the file gives none
}

// String never shows the secrets.
func (Secrets) String() string { return "soft.Secrets{redacted}" }

// GoString never shows the secrets, even with %#v.
func (s Secrets) GoString() string { return s.String() }

// ReadPINFile reads a PIN file (format in the package doc) and returns the
// secrets per device serial. It refuses a file that others can read or
// write, or that is not a regular file.
func ReadPINFile(path string) (map[uint32]Secrets, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading PIN file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading PIN file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("PIN file %s is not a regular file: %w", path, ErrPINFile)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("PIN file %s has mode %04o, want 0600 or stricter: %w", path, fi.Mode().Perm(), ErrPINFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPINFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading PIN file: %w", err)
	}
	defer clear(b)
	m, err := ParsePINFile(b)
	if err != nil {
		return nil, fmt.Errorf("PIN file %s: %w", path, err)
	}
	return m, nil
}

// ParsePINFile parses the contents of a PIN file. Errors name the line but
// never echo a secret.
func ParsePINFile(b []byte) (map[uint32]Secrets, error) {
	if len(b) > maxPINFile {
		return nil, fmt.Errorf("over %d bytes: %w", maxPINFile, ErrPINFile)
	}
	m := map[uint32]Secrets{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxPINFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("line %d: want serial, PIN and optional PUK, got %d fields: %w", n, len(fields), ErrPINFile)
		}
		serial, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil || serial == 0 || strconv.FormatUint(serial, 10) != fields[0] {
			return nil, fmt.Errorf("line %d: serial is not a decimal number from 1 to 4294967295: %w", n, ErrPINFile)
		}
		if _, dup := m[uint32(serial)]; dup {
			return nil, fmt.Errorf("line %d: serial %d given twice: %w", n, serial, ErrPINFile)
		}
		var s Secrets
		for i, f := range fields[1:] {
			what := [...]string{"PIN", "PUK"}[i]
			if err := checkSecret(f); err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", n, what, err)
			}
		}
		s.PIN = fields[1]
		if len(fields) == 3 {
			s.PUK = fields[2]
		}
		m[uint32(serial)] = s
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrPINFile)
	}
	return m, nil
}

// checkSecret enforces 6 to 8 printable ASCII characters.
func checkSecret(s string) error {
	if err := hsm.CheckPIN(s); err != nil {
		return fmt.Errorf("%w: %w", err, ErrPINFile)
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("not printable ASCII: %w", ErrPINFile)
		}
	}
	return nil
}
