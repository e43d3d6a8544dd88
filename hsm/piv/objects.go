package piv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"fmt"
)

// Data objects that keyceremony writes beside what piv-go writes.
const (
	// objAdminData is the YubiKey admin data object (5FFF00) that ykman
	// and yubico-piv-tool read to learn how the management key is kept.
	objAdminData uint32 = 0x5fff00
	// objKeyHistory is the key history object (SP 800-73-4 part 1, 3.3.2):
	// how many retired key slots (82, 83, ...) hold keys with certificates
	// on the card. OpenSC reads only that many retired slots.
	objKeyHistory uint32 = 0x5fc10c
)

// adminDataProtected is the admin data that ykman's own PIN-protected
// setup (`ykman piv access change-management-key --protect`) writes:
// 80 { 81 flags }, flag 02 = the management key is stored in the
// PIN-protected data object 5FC109.
var adminDataProtected = []byte{0x80, 0x03, 0x81, 0x01, 0x02}

// keyHistory encodes the key history object for n retired slots with
// on-card certificates: C1 on-card, C2 off-card (none), FE error
// detection code (empty).
func keyHistory(n int) []byte {
	return []byte{0xc1, 0x01, byte(n), 0xc2, 0x01, 0x00, 0xfe, 0x00}
}

// parseKeyHistory reads the on-card count (tag C1) of a key history object.
func parseKeyHistory(b []byte) (int, error) {
	n, found := 0, false
	for len(b) > 0 {
		t, rest, ok := cutTLV(b)
		if !ok {
			return 0, fmt.Errorf("key history object: %w", errBadMetadata)
		}
		if t.tag == 0xc1 {
			if len(t.value) != 1 || found {
				return 0, fmt.Errorf("key history object: on-card count of %d bytes: %w", len(t.value), errBadMetadata)
			}
			n, found = int(t.value[0]), true
		}
		b = rest
	}
	return n, nil
}

// retiredIndex is the position of a retired key slot (82 is 1), or 0.
func retiredIndex(slot byte) int {
	if slot >= 0x82 && slot <= 0x95 {
		return int(slot-0x82) + 1
	}
	return 0
}

type tlvValue struct {
	tag   uint32
	value []byte
}

// cutTLV splits the first BER-TLV (tags of one or two bytes, lengths up to
// 82 xx xx) from b.
func cutTLV(b []byte) (tlvValue, []byte, bool) {
	if len(b) < 2 {
		return tlvValue{}, nil, false
	}
	tag := uint32(b[0])
	b = b[1:]
	if tag&0x1f == 0x1f {
		tag = tag<<8 | uint32(b[0])
		b = b[1:]
		if len(b) < 1 {
			return tlvValue{}, nil, false
		}
	}
	n := int(b[0])
	b = b[1:]
	switch {
	case n == 0x81 && len(b) >= 1:
		n, b = int(b[0]), b[1:]
	case n == 0x82 && len(b) >= 2:
		n, b = int(b[0])<<8|int(b[1]), b[2:]
	case n >= 0x80:
		return tlvValue{}, nil, false
	}
	if n > len(b) {
		return tlvValue{}, nil, false
	}
	return tlvValue{tag: tag, value: b[:n:n]}, b[n:], true
}

// tlv encodes one TLV with a one-byte tag.
func tlv(tag byte, v []byte) []byte {
	switch n := len(v); {
	case n < 0x80:
		return append([]byte{tag, byte(n)}, v...)
	case n < 0x100:
		return append([]byte{tag, 0x81, byte(n)}, v...)
	default:
		return append([]byte{tag, 0x82, byte(n >> 8), byte(n)}, v...)
	}
}

// dynAuth reads 7C { tag value } from a GENERAL AUTHENTICATE answer and
// checks that the value has n bytes.
func dynAuth(b []byte, tag uint32, n int) ([]byte, bool) {
	outer, rest, ok := cutTLV(b)
	if !ok || outer.tag != 0x7c || len(rest) != 0 {
		return nil, false
	}
	inner, rest, ok := cutTLV(outer.value)
	if !ok || inner.tag != tag || len(rest) != 0 || len(inner.value) != n {
		return nil, false
	}
	return inner.value, true
}

// managementCipher is the block cipher of a management key algorithm
// (SP 800-78-4 table 6-2: 03 3DES, 08 AES-128, 0A AES-192, 0C AES-256).
func managementCipher(alg byte, key []byte) (cipher.Block, error) {
	want := map[byte]int{0x03: 24, 0x08: 16, 0x0a: 24, 0x0c: 32}[alg]
	if want == 0 {
		return nil, fmt.Errorf("management key algorithm %#02x: %w", alg, errBadMetadata)
	}
	if len(key) != want {
		return nil, fmt.Errorf("management key of %d bytes for algorithm %#02x, want %d", len(key), alg, want)
	}
	if alg == 0x03 {
		return des.NewTripleDESCipher(key)
	}
	return aes.NewCipher(key)
}
