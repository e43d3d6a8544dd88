package piv

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
)

func TestParseMetadata(t *testing.T) {
	pub := append([]byte{0x86, 0x41, 0x04}, bytes.Repeat([]byte{7}, 64)...)
	tests := []struct {
		name string
		in   []byte
		want *metadata // nil: errBadMetadata
	}{
		{"PIN, default, 3 of 3", []byte{0x01, 0x01, 0xff, 0x05, 0x01, 0x01, 0x06, 0x02, 0x03, 0x03},
			&metadata{Algorithm: 0xff, Default: true, HasDefault: true, Tries: 3, TriesLeft: 3, HasTries: true}},
		{"PUK, changed, blocked", []byte{0x01, 0x01, 0xff, 0x05, 0x01, 0x00, 0x06, 0x02, 0x03, 0x00},
			&metadata{Algorithm: 0xff, HasDefault: true, Tries: 3, HasTries: true}},
		{"management key AES-192", []byte{0x01, 0x01, 0x0a, 0x02, 0x02, 0x00, 0x01, 0x05, 0x01, 0x00},
			&metadata{Algorithm: 0x0a, TouchPolicy: 1, HasDefault: true}},
		{"P-256 key, long form length", append([]byte{0x01, 0x01, 0x11, 0x02, 0x02, 0x03, 0x02, 0x03, 0x01, 0x01, 0x04, 0x81, 0x43}, pub...),
			&metadata{Algorithm: 0x11, PINPolicy: 3, TouchPolicy: 2, Public: pub}},
		{"unknown tag skipped", []byte{0x07, 0x02, 0xaa, 0xbb, 0x01, 0x01, 0x11}, &metadata{Algorithm: 0x11}},
		{"empty", nil, &metadata{}},
		{"truncated header", []byte{0x01}, nil},
		{"truncated value", []byte{0x06, 0x02, 0x03}, nil},
		{"algorithm of two bytes", []byte{0x01, 0x02, 0x11, 0x11}, nil},
		{"policy of one byte", []byte{0x02, 0x01, 0x03}, nil},
		{"default flag 2", []byte{0x05, 0x01, 0x02}, nil},
		{"more tries left than allowed", []byte{0x06, 0x02, 0x03, 0x04}, nil},
		{"tag twice", []byte{0x05, 0x01, 0x00, 0x05, 0x01, 0x01}, nil},
		{"indefinite length", []byte{0x04, 0x80, 0x00}, nil},
		{"length of 3 bytes", []byte{0x04, 0x83, 0x00, 0x00, 0x01, 0x00}, nil},
		{"81 length beyond the data", []byte{0x04, 0x81, 0x05, 0x00}, nil},
		{"82 length truncated", []byte{0x04, 0x82, 0x00}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMetadata(tt.in)
			if tt.want == nil {
				if !errors.Is(err, errBadMetadata) {
					t.Fatalf("parseMetadata = %+v, %v; want errBadMetadata", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Algorithm != tt.want.Algorithm || got.PINPolicy != tt.want.PINPolicy || got.TouchPolicy != tt.want.TouchPolicy ||
				got.Default != tt.want.Default || got.HasDefault != tt.want.HasDefault || got.Tries != tt.want.Tries ||
				got.TriesLeft != tt.want.TriesLeft || got.HasTries != tt.want.HasTries || !bytes.Equal(got.Public, tt.want.Public) {
				t.Fatalf("parseMetadata = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte{0x01, 0x01, 0xff, 0x05, 0x01, 0x01, 0x06, 0x02, 0x03, 0x03})
	f.Add([]byte{0x01, 0x01, 0x0a, 0x02, 0x02, 0x00, 0x01, 0x05, 0x01, 0x00})
	f.Add([]byte{0x04, 0x82, 0x00, 0x02, 0x86, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMetadata(b)
		if err != nil {
			if !errors.Is(err, errBadMetadata) || m != nil {
				t.Fatalf("parseMetadata error %v with %+v", err, m)
			}
			return
		}
		if m.HasTries && m.TriesLeft > m.Tries {
			t.Fatalf("%d of %d tries left", m.TriesLeft, m.Tries)
		}
		if len(m.Public) > len(b) {
			t.Fatal("public key longer than the input")
		}
	})
}

func TestParseConfigFormFactor(t *testing.T) {
	tests := []struct {
		in   []byte
		ff   byte
		have bool
	}{
		{[]byte{0x09, 0x02, 0x04, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x03}, 0x03, true},
		{[]byte{0x03, 0x04, 0x01, 0x82}, 0x82, true},
		{[]byte{0x03, 0x05, 0x01, 0x82}, 0, false},       // no tag 04
		{[]byte{0x04, 0x04, 0x01, 0x82}, 0, false},       // length byte beyond the data
		{[]byte{0x03, 0x02, 0x05, 0x00}, 0, false},       // TLV beyond the data
		{[]byte{0x04, 0x04, 0x02, 0x01, 0x02}, 0, false}, // form factor of two bytes
		{nil, 0, false},
	}
	for _, tt := range tests {
		ff, ok := parseConfigFormFactor(tt.in)
		if ff != tt.ff || ok != tt.have {
			t.Errorf("parseConfigFormFactor(% x) = %#x, %v; want %#x, %v", tt.in, ff, ok, tt.ff, tt.have)
		}
	}
}

func FuzzParseConfigFormFactor(f *testing.F) {
	f.Add([]byte{0x09, 0x02, 0x04, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) { parseConfigFormFactor(b) })
}

func TestAdvisories(t *testing.T) {
	yk := func(fw, ff string) hsm.Info {
		return hsm.Info{Kind: Kind, Serial: 1, Firmware: fw, FormFactor: ff}
	}
	tests := []struct {
		info     hsm.Info
		alg      hsm.Algorithm
		affected bool
	}{
		{yk("5.4.3", "USB-A keychain"), hsm.AlgECCP256, true},
		{yk("5.6.9", "USB-C nano"), hsm.AlgECCP256, true},
		{yk("4.3.7", "USB-A keychain"), hsm.AlgECCP256, true},
		{yk("5.7.0", "USB-A keychain"), hsm.AlgECCP256, false},
		{yk("5.7.1", "USB-C keychain"), hsm.AlgECCP256, false},
		{yk("6.0.0", "USB-C keychain"), hsm.AlgECCP256, false},
		{yk("5.7.1", "USB-C keychain FIPS"), hsm.AlgECCP256, true},
		{yk("5.7.2", "USB-C keychain FIPS"), hsm.AlgECCP256, false},
		{yk("5.7.1", "USB-A keychain"), hsm.AlgEd25519, false},
		{yk("5.4.3", "USB-A keychain"), hsm.AlgEd25519, false}, // no Ed25519 before 5.7 anyway
		{yk("garbage", "USB-A keychain"), hsm.AlgECCP256, true},
		{yk("5.4", "USB-A keychain"), hsm.AlgECCP256, true},
		{hsm.Info{Kind: "soft", Firmware: "0.0.1", Insecure: true}, hsm.AlgECCP256, false},
	}
	for _, tt := range tests {
		adv := Advisories(tt.info, tt.alg)
		if got := len(adv) > 0; got != tt.affected {
			t.Errorf("Advisories(%s %q, %s) = %q; affected %v, want %v", tt.info.Firmware, tt.info.FormFactor, tt.alg, adv, got, tt.affected)
		}
		for _, a := range adv {
			if !strings.Contains(a, "YSA-2024-03") {
				t.Errorf("advisory %q does not name YSA-2024-03", a)
			}
		}
		err := CheckRootKey(tt.info, tt.alg, false)
		if errors.Is(err, ErrAffectedFirmware) != tt.affected {
			t.Errorf("CheckRootKey(%s, %s) = %v", tt.info.Firmware, tt.alg, err)
		}
		if err := CheckRootKey(tt.info, tt.alg, true); err != nil {
			t.Errorf("CheckRootKey with the override = %v", err)
		}
	}
}

func TestKeyHistory(t *testing.T) {
	for n := 0; n <= 20; n++ {
		got, err := parseKeyHistory(keyHistory(n))
		if err != nil || got != n {
			t.Errorf("parseKeyHistory(keyHistory(%d)) = %d, %v", n, got, err)
		}
	}
	for _, bad := range [][]byte{{0xc1}, {0xc1, 0x02, 0x01}, {0xc1, 0x02, 0x01, 0x02}, {0xc1, 0x01, 0x01, 0xc1, 0x01, 0x02}} {
		if _, err := parseKeyHistory(bad); !errors.Is(err, errBadMetadata) {
			t.Errorf("parseKeyHistory(%x) = %v, want errBadMetadata", bad, err)
		}
	}
	// A history without an on-card count counts none.
	if n, err := parseKeyHistory([]byte{0xc2, 0x01, 0x03}); n != 0 || err != nil {
		t.Errorf("off-card only: %d, %v", n, err)
	}
}

func FuzzParseKeyHistory(f *testing.F) {
	f.Add(keyHistory(2))
	f.Add([]byte{0xc1, 0x81, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseKeyHistory(b)
		if err == nil && (n < 0 || n > 255) {
			t.Fatalf("count %d", n)
		}
	})
}

func FuzzDynAuth(f *testing.F) {
	f.Add([]byte{0x7c, 0x0a, 0x80, 0x08, 1, 2, 3, 4, 5, 6, 7, 8}, 8)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if v, ok := dynAuth(b, 0x80, n); ok && len(v) != n {
			t.Fatalf("value of %d bytes, want %d", len(v), n)
		}
	})
}
