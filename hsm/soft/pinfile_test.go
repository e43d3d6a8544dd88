package soft

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPINFileGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins")
	b, err := os.ReadFile("testdata/pins.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := ReadPINFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]Secrets{
		1000001:    {PIN: "246813", PUK: "97531864"},
		1000002:    {PIN: "135792"},
		4294967295: {PIN: "abc!~xyz"},
	}
	if len(m) != len(want) {
		t.Fatalf("%d entries, want %d", len(m), len(want))
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("serial %d: wrong secrets", k)
		}
	}
}

func TestReadPINFileRefusesOpenModes(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606} {
		path := filepath.Join(dir, fmt.Sprintf("pins-%o", mode))
		os.WriteFile(path, []byte("1 123456\n"), 0o600)
		os.Chmod(path, mode)
		if _, err := ReadPINFile(path); !errors.Is(err, ErrPINFile) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if _, err := ReadPINFile(dir); !errors.Is(err, ErrPINFile) {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadPINFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("1 123456\n"), 0o400)
	if _, err := ReadPINFile(ok); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestParsePINFileErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
	}{
		{"serial only", "1000001\n", 1},
		{"four fields", "1 123456 12345678 x\n", 1},
		{"serial 0", "0 123456\n", 1},
		{"serial too big", "4294967296 123456\n", 1},
		{"serial with plus", "+1 123456\n", 1},
		{"serial leading zero", "01 123456\n", 1},
		{"serial hex", "0x10 123456\n", 1},
		{"duplicate serial", "1 123456\n# x\n1 654321\n", 3},
		{"short PIN", "1 12345\n", 1},
		{"long PIN", "1 123456789\n", 1},
		{"short PUK", "1 123456 12345\n\n", 1},
		{"non-ASCII PIN", "1 12345é\n", 1},
		{"control char in PIN", "1 123\x01456\n", 1},
		{"second line bad", "1 123456\n2 1\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePINFile([]byte(tt.in))
			if !errors.Is(err, ErrPINFile) {
				t.Fatalf("ParsePINFile = %v, want ErrPINFile", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("line %d:", tt.line)) {
				t.Errorf("error %q does not name line %d", err, tt.line)
			}
			for _, secret := range []string{"123456", "654321", "12345678"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}
	if _, err := ParsePINFile([]byte(strings.Repeat("#\n", maxPINFile))); !errors.Is(err, ErrPINFile) {
		t.Errorf("oversized file: %v", err)
	}
	if m, err := ParsePINFile(nil); err != nil || len(m) != 0 {
		t.Errorf("empty file: %v, %v", m, err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	s := Secrets{PIN: "246813", PUK: "97531864"}
	m := map[uint32]Secrets{1: s}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{s, m} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(out, "246813") || strings.Contains(out, "97531864") {
				t.Errorf("%s shows a secret: %s", f, out)
			}
		}
	}
}

func FuzzParsePINFile(f *testing.F) {
	if b, err := os.ReadFile("testdata/pins.txt"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("1 123456 12345678\r\n2\t654321\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParsePINFile(b)
		if err != nil {
			if !errors.Is(err, ErrPINFile) {
				t.Fatalf("error not ErrPINFile: %v", err)
			}
			return
		}
		for serial, s := range m {
			if serial == 0 || checkSecret(s.PIN) != nil || (s.PUK != "" && checkSecret(s.PUK) != nil) {
				t.Fatalf("accepted an entry the format forbids for serial %d", serial)
			}
		}
	})
}
