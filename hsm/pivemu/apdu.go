package pivemu

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Status words (ISO/IEC 7816-4, NIST SP 800-73-4 part 2 table 6).
const (
	swOK                   = 0x9000
	swWrongLength          = 0x6700
	swSecurityStatus       = 0x6982
	swAuthBlocked          = 0x6983
	swConditionsNotMet     = 0x6985
	swLastCommandExpected  = 0x6883
	swIncorrectData        = 0x6a80
	swFuncNotSupported     = 0x6a81
	swNotFound             = 0x6a82
	swNotEnoughMemory      = 0x6a84
	swIncorrectP1P2        = 0x6a86
	swRefDataNotFound      = 0x6a88
	swInsNotSupported      = 0x6d00
	swClaNotSupported      = 0x6e00
	swVerifyFailed         = 0x63c0 // | tries left
	swBytesRemainingPrefix = 0x6100
)

// errMalformedAPDU is returned by parseAPDU for a command whose length
// fields do not match its size.
var errMalformedAPDU = errors.New("malformed command apdu")

// command is a parsed command APDU.
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	le               int  // expected response length; 0 when absent
	extended         bool // extended length encoding was used
}

// parseAPDU parses a command APDU in any of the ISO/IEC 7816-4 cases
// (short and extended length). It never panics.
func parseAPDU(b []byte) (command, error) {
	if len(b) < 4 {
		return command{}, fmt.Errorf("%w: %d bytes", errMalformedAPDU, len(b))
	}
	c := command{cla: b[0], ins: b[1], p1: b[2], p2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2 short
		c.le = int(body[0])
		if c.le == 0 {
			c.le = 256
		}
		return c, nil
	case body[0] != 0: // case 3 or 4 short
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
		case 2 + lc:
			c.le = int(body[1+lc])
			if c.le == 0 {
				c.le = 256
			}
		default:
			return command{}, fmt.Errorf("%w: lc %d with %d body bytes", errMalformedAPDU, lc, len(body))
		}
		c.data = body[1 : 1+lc]
		return c, nil
	}
	// body[0] == 0 and at least two bytes: extended length.
	c.extended = true
	if len(body) == 3 { // case 2 extended
		c.le = int(binary.BigEndian.Uint16(body[1:3]))
		if c.le == 0 {
			c.le = 65536
		}
		return c, nil
	}
	if len(body) < 3 {
		return command{}, fmt.Errorf("%w: truncated extended length", errMalformedAPDU)
	}
	lc := int(binary.BigEndian.Uint16(body[1:3]))
	if lc == 0 {
		return command{}, fmt.Errorf("%w: zero extended lc", errMalformedAPDU)
	}
	switch len(body) {
	case 3 + lc:
	case 5 + lc:
		c.le = int(binary.BigEndian.Uint16(body[3+lc:]))
		if c.le == 0 {
			c.le = 65536
		}
	default:
		return command{}, fmt.Errorf("%w: extended lc %d with %d body bytes", errMalformedAPDU, lc, len(body))
	}
	c.data = body[3 : 3+lc]
	return c, nil
}

// tlv is one BER-TLV element as PIV uses them: tags of one to three bytes,
// definite lengths of up to three bytes.
type tlv struct {
	tag   uint32
	value []byte
}

var errMalformedTLV = errors.New("malformed tlv")

// parseTLVs splits b into a sequence of TLV elements. It never panics.
func parseTLVs(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		tag := uint32(b[0])
		b = b[1:]
		if tag&0x1f == 0x1f {
			for i := 0; ; i++ {
				if len(b) == 0 || i == 2 { // PIV tags have at most three bytes
					return nil, fmt.Errorf("%w: truncated tag", errMalformedTLV)
				}
				tag = tag<<8 | uint32(b[0])
				more := b[0]&0x80 != 0
				b = b[1:]
				if !more {
					break
				}
			}
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: missing length for tag %x", errMalformedTLV, tag)
		}
		n := int(b[0])
		b = b[1:]
		if n&0x80 != 0 {
			k := n & 0x7f
			if k == 0 || k > 3 || len(b) < k {
				return nil, fmt.Errorf("%w: bad length for tag %x", errMalformedTLV, tag)
			}
			n = 0
			for _, x := range b[:k] {
				n = n<<8 | int(x)
			}
			b = b[k:]
		}
		if n > len(b) {
			return nil, fmt.Errorf("%w: tag %x needs %d bytes, %d left", errMalformedTLV, tag, n, len(b))
		}
		out = append(out, tlv{tag: tag, value: b[:n:n]})
		b = b[n:]
	}
	return out, nil
}

// findTLV returns the value of the first element with the given tag.
func findTLV(ts []tlv, tag uint32) ([]byte, bool) {
	for _, t := range ts {
		if t.tag == tag {
			return t.value, true
		}
	}
	return nil, false
}

// appendTLV appends tag, DER-style length and value to dst. Tags above
// 0xff are written big-endian in as many bytes as they need.
func appendTLV(dst []byte, tag uint32, value []byte) []byte {
	switch {
	case tag > 0xffff:
		dst = append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xff:
		dst = append(dst, byte(tag>>8), byte(tag))
	default:
		dst = append(dst, byte(tag))
	}
	n := len(value)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n < 0x100:
		dst = append(dst, 0x81, byte(n))
	case n < 0x10000:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, value...)
}

func tlvBytes(tag uint32, value []byte) []byte { return appendTLV(nil, tag, value) }

// withSW appends a status word to data.
func withSW(data []byte, sw uint16) []byte {
	out := make([]byte, 0, len(data)+2)
	out = append(out, data...)
	return append(out, byte(sw>>8), byte(sw))
}
