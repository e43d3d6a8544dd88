package piv

import (
	"errors"
	"fmt"
)

// metadata is what a YubiKey's GET METADATA answer says about a PIN, the
// PUK, the management key or a key slot (Yubico's PIV extensions,
// https://docs.yubico.com/yesdk/users-manual/application-piv/apdu/metadata.html).
type metadata struct {
	Algorithm   byte // tag 01: FF for a PIN or PUK
	PINPolicy   byte // tag 02, first byte
	TouchPolicy byte // tag 02, second byte
	Default     bool // tag 05: the PIN, PUK or management key is the factory default
	HasDefault  bool
	Tries       int // tag 06: tries allowed
	TriesLeft   int // tag 06: tries left
	HasTries    bool
	Public      []byte // tag 04: the public key, as GENERATE returns it
}

var errBadMetadata = errors.New("malformed metadata from the card")

// parseMetadata reads a GET METADATA answer: TLVs with one-byte tags and
// BER lengths (short form, 81 or 82). Unknown tags are skipped; known tags
// of the wrong size, trailing garbage and lengths beyond the data are
// errBadMetadata.
func parseMetadata(b []byte) (*metadata, error) {
	m := &metadata{}
	seen := map[byte]bool{}
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("truncated tlv: %w", errBadMetadata)
		}
		tag, n, hdr := b[0], int(b[1]), 2
		switch {
		case n == 0x81 && len(b) >= 3:
			n, hdr = int(b[2]), 3
		case n == 0x82 && len(b) >= 4:
			n, hdr = int(b[2])<<8|int(b[3]), 4
		case n >= 0x80:
			return nil, fmt.Errorf("length byte %02x: %w", n, errBadMetadata)
		}
		if len(b)-hdr < n {
			return nil, fmt.Errorf("tag %02x of %d bytes with %d left: %w", tag, n, len(b)-hdr, errBadMetadata)
		}
		v := b[hdr : hdr+n]
		b = b[hdr+n:]
		if seen[tag] {
			return nil, fmt.Errorf("tag %02x twice: %w", tag, errBadMetadata)
		}
		seen[tag] = true
		want := map[byte]int{0x01: 1, 0x02: 2, 0x03: 1, 0x05: 1, 0x06: 2}[tag]
		if want != 0 && len(v) != want {
			return nil, fmt.Errorf("tag %02x of %d bytes, want %d: %w", tag, len(v), want, errBadMetadata)
		}
		switch tag {
		case 0x01:
			m.Algorithm = v[0]
		case 0x02:
			m.PINPolicy, m.TouchPolicy = v[0], v[1]
		case 0x04:
			m.Public = append([]byte(nil), v...)
		case 0x05:
			if v[0] > 1 {
				return nil, fmt.Errorf("default flag %02x: %w", v[0], errBadMetadata)
			}
			m.Default, m.HasDefault = v[0] == 1, true
		case 0x06:
			m.Tries, m.TriesLeft, m.HasTries = int(v[0]), int(v[1]), true
			if m.TriesLeft > m.Tries {
				return nil, fmt.Errorf("%d of %d tries left: %w", m.TriesLeft, m.Tries, errBadMetadata)
			}
		}
	}
	return m, nil
}

// parseConfigFormFactor reads the form factor (tag 04) from the
// management application's READ CONFIG answer: a length byte, then TLVs
// with one-byte tags and lengths.
func parseConfigFormFactor(b []byte) (byte, bool) {
	if len(b) < 1 || int(b[0]) > len(b)-1 {
		return 0, false
	}
	b = b[1 : 1+int(b[0])]
	for len(b) >= 2 {
		tag, n := b[0], int(b[1])
		if n > len(b)-2 {
			return 0, false
		}
		if tag == 0x04 && n == 1 {
			return b[2], true
		}
		b = b[2+n:]
	}
	return 0, false
}
