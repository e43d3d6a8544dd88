// Package hexsum decodes the hex SHA-256 and BLAKE2b-256 digests that
// metadata, exports and work files carry, 64 digits at a time, through a
// table: the parsers read millions of them. It is the one table the
// project keeps; encoding/hex stays the reference (TestAgainstHex).
package hexsum

// Lower is each byte's value as a lowercase hex digit, 0xff for any
// other byte (an uppercase digit among them).
var Lower = table(false)

// Either is Lower with the uppercase digits too.
var Either = table(true)

func table(upper bool) (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
		if upper && c >= 'a' {
			t[c-'a'+'A'] = byte(i)
		}
	}
	return t
}

// Decode decodes the 64 hex digits of src into dst by table t (Lower or
// Either); it is false, dst then undefined, for any other src.
func Decode[S ~string | ~[]byte](dst *[32]byte, src S, t *[256]byte) bool {
	if len(src) != 64 {
		return false
	}
	var bad byte
	for i := range dst {
		hi, lo := t[src[2*i]], t[src[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo&0x0f
	}
	return bad&0x80 == 0
}
