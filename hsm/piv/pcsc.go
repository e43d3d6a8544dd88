//go:build cgo && (linux || darwin)

package piv

// A minimal PC/SC client for the few commands piv-go does not expose:
// GET METADATA of the PIN, the PUK and the management key (their default
// flags and tries left), and a presence check. piv-go holds its card
// connection exclusively, so this one is opened only while piv-go's is
// closed.

/*
#cgo linux pkg-config: libpcsclite
#cgo darwin LDFLAGS: -framework PCSC
#include <stdlib.h>
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
*/
import "C"

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"unsafe"

	"github.com/keyceremony/keyceremony/hsm"
)

// pcscError is a PC/SC return code. Codes that mean the card or reader is
// gone are also hsm.ErrNoDevice.
type pcscError struct {
	op string
	rc uint32
}

var pcscMessages = map[uint32]string{
	0x80100009: "unknown reader",
	0x8010000B: "card in use by another program (sharing violation)",
	0x8010000C: "no card in the reader",
	0x80100016: "the command did not reach the card",
	0x80100017: "reader unavailable",
	0x8010001D: "the smart card service (pcscd) is not running",
	0x8010002E: "no smart card readers",
	0x80100067: "card is not powered",
	0x80100068: "card was reset",
	0x80100069: "card was removed",
}

func (e *pcscError) Error() string {
	if m, ok := pcscMessages[e.rc]; ok {
		return fmt.Sprintf("%s: %s", e.op, m)
	}
	return fmt.Sprintf("%s: pc/sc error 0x%08x", e.op, e.rc)
}

func (e *pcscError) Is(target error) bool {
	if target == ErrBusy {
		return e.rc == 0x8010000B
	}
	if target != hsm.ErrNoDevice {
		return false
	}
	switch e.rc {
	case 0x80100009, 0x8010000C, 0x80100016, 0x80100017, 0x8010002E, 0x80100067, 0x80100069:
		return true
	}
	return false
}

func check(op string, rc C.LONG) error {
	if rc == C.SCARD_S_SUCCESS {
		return nil
	}
	return &pcscError{op: op, rc: uint32(rc)}
}

// rawCard is a shared connection to the card in one reader.
type rawCard struct {
	ctx C.SCARDCONTEXT
	h   C.SCARDHANDLE
}

func openRaw(reader string) (*rawCard, error) {
	var c rawCard
	if err := check("connecting to pcscd", C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &c.ctx)); err != nil {
		return nil, err
	}
	name := C.CString(reader)
	defer C.free(unsafe.Pointer(name))
	var proto C.DWORD
	if err := check("connecting to the card", C.SCardConnect(c.ctx, name, C.SCARD_SHARE_SHARED, C.SCARD_PROTOCOL_T1, &c.h, &proto)); err != nil {
		C.SCardReleaseContext(c.ctx)
		return nil, err
	}
	return &c, nil
}

func (c *rawCard) close() {
	C.SCardDisconnect(c.h, C.SCARD_LEAVE_CARD)
	C.SCardReleaseContext(c.ctx)
}

// transmit sends one short command APDU (data up to 255 bytes) and
// returns the response data and status word, collecting 61xx answers
// with GET RESPONSE.
func (c *rawCard) transmit(ins, p1, p2 byte, data []byte) ([]byte, uint16, error) {
	if len(data) > 255 {
		return nil, 0, fmt.Errorf("command data of %d bytes", len(data))
	}
	cmd := append([]byte{0x00, ins, p1, p2}, byte(len(data)))
	cmd = append(cmd, data...)
	if len(data) == 0 {
		cmd = cmd[:4]
	}
	var out []byte
	for {
		var resp [258]byte
		n := C.DWORD(len(resp))
		rc := C.SCardTransmit(c.h, C.SCARD_PCI_T1, (*C.BYTE)(unsafe.Pointer(&cmd[0])), C.DWORD(len(cmd)), nil,
			(*C.BYTE)(unsafe.Pointer(&resp[0])), &n)
		if err := check("sending a command to the card", rc); err != nil {
			return nil, 0, err
		}
		if n < 2 || int(n) > len(resp) {
			return nil, 0, fmt.Errorf("card answered %d bytes", n)
		}
		out = append(out, resp[:n-2]...)
		sw := uint16(resp[n-2])<<8 | uint16(resp[n-1])
		if sw>>8 != 0x61 {
			return out, sw, nil
		}
		if len(out) > 1<<16 {
			return nil, 0, fmt.Errorf("card answered more than %d bytes", 1<<16)
		}
		cmd = []byte{0x00, 0xc0, 0x00, 0x00, byte(sw)}
	}
}

var aidPIV = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}

var aidManagement = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17}

// identity is what identifies the card in a reader.
type identity struct {
	serial     uint32
	version    [3]int
	formFactor byte
	hasFF      bool
}

// identify reads the card's serial and firmware (and, if formFactor, its
// form factor from the management application's READ CONFIG). A card
// without the PIV application, or one older than firmware 5, is an error.
// It is used before piv.Open, which leaks an exclusive connection to a
// card that does not answer its SELECT (piv-go v2.6.0).
func (c *rawCard) identify(formFactor bool) (identity, error) {
	var id identity
	if _, sw, err := c.transmit(0xa4, 0x04, 0x00, aidPIV); err != nil {
		return id, err
	} else if sw != 0x9000 {
		return id, fmt.Errorf("no piv application (select: status %04x)", sw)
	}
	v, sw, err := c.transmit(0xfd, 0, 0, nil)
	if err != nil {
		return id, err
	}
	if sw != 0x9000 || len(v) != 3 {
		return id, fmt.Errorf("get version: status %04x, %d bytes", sw, len(v))
	}
	id.version = [3]int{int(v[0]), int(v[1]), int(v[2])}
	if v[0] < 5 {
		return id, fmt.Errorf("firmware %d.%d.%d is older than a yubikey 5", v[0], v[1], v[2])
	}
	b, sw, err := c.transmit(0xf8, 0, 0, nil)
	if err != nil {
		return id, err
	}
	if sw != 0x9000 || len(b) != 4 {
		return id, fmt.Errorf("get serial: status %04x, %d bytes", sw, len(b))
	}
	id.serial = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if !formFactor {
		return id, nil
	}
	if _, sw, err := c.transmit(0xa4, 0x04, 0x00, aidManagement); err != nil || sw != 0x9000 {
		return id, err
	}
	cfg, sw, err := c.transmit(0x1d, 0, 0, nil)
	if err != nil || sw != 0x9000 {
		return id, err
	}
	id.formFactor, id.hasFF = parseConfigFormFactor(cfg)
	return id, nil
}

// metadata sends GET METADATA (YubiKey 5.3 and later) for a key
// reference: 80 PIN, 81 PUK, 9B management key, or a key slot.
func (c *rawCard) metadata(ref byte) (*metadata, error) {
	b, sw, err := c.transmit(0xf7, 0x00, ref, nil)
	if err != nil {
		return nil, err
	}
	if sw != 0x9000 {
		return nil, fmt.Errorf("get metadata %02x: status %04x", ref, sw)
	}
	return parseMetadata(b)
}

// authenticate authenticates with the management key (SP 800-73-4 part 2,
// appendix A.1: GENERAL AUTHENTICATE of key reference 9B, mutual). Its
// algorithm comes from GET METADATA on firmware 5.3 and later; before, a
// YubiKey's management key is 3DES.
func (c *rawCard) authenticate(key []byte, v [3]int) error {
	alg := byte(0x03)
	if !less(v, [3]int{5, 3, 0}) {
		m, err := c.metadata(0x9b)
		if err != nil {
			return err
		}
		alg = m.Algorithm
	}
	block, err := managementCipher(alg, key)
	if err != nil {
		return err
	}
	resp, sw, err := c.transmit(0x87, alg, 0x9b, []byte{0x7c, 0x02, 0x80, 0x00})
	if err != nil {
		return err
	}
	if sw != 0x9000 {
		return fmt.Errorf("management key authentication: status %04x", sw)
	}
	bs := block.BlockSize()
	enc, ok := dynAuth(resp, 0x80, bs)
	if !ok {
		return fmt.Errorf("management key authentication: witness of the wrong shape: %w", errBadMetadata)
	}
	witness := make([]byte, bs)
	block.Decrypt(witness, enc)
	challenge := make([]byte, bs)
	if _, err := rand.Read(challenge); err != nil {
		return fmt.Errorf("making a challenge: %w", err)
	}
	msg := []byte{0x7c, byte(4 + 2*bs), 0x80, byte(bs)}
	msg = append(msg, witness...)
	msg = append(msg, 0x81, byte(bs))
	msg = append(msg, challenge...)
	resp, sw, err = c.transmit(0x87, alg, 0x9b, msg)
	if err != nil {
		return err
	}
	if sw != 0x9000 {
		return fmt.Errorf("management key authentication: wrong management key (status %04x)", sw)
	}
	got, ok := dynAuth(resp, 0x82, bs)
	want := make([]byte, bs)
	block.Encrypt(want, challenge)
	if !ok || !bytes.Equal(got, want) {
		return fmt.Errorf("management key authentication: the card did not prove it holds the key: %w", errBadMetadata)
	}
	return nil
}

// putData writes a data object (PUT DATA, SP 800-73-4 part 2, 3.3.2):
// 5C tag list, 53 contents. It needs the management key.
func (c *rawCard) putData(tag uint32, value []byte) error {
	data := append([]byte{0x5c, 0x03, byte(tag >> 16), byte(tag >> 8), byte(tag)}, tlv(0x53, value)...)
	_, sw, err := c.transmit(0xdb, 0x3f, 0xff, data)
	if err != nil {
		return err
	}
	if sw != 0x9000 {
		return fmt.Errorf("put data %06x: status %04x", tag, sw)
	}
	return nil
}

// getData reads a data object's contents (inside tag 53); found is false
// when the card has no such object (6A82).
func (c *rawCard) getData(tag uint32) (value []byte, found bool, err error) {
	resp, sw, err := c.transmit(0xcb, 0x3f, 0xff, []byte{0x5c, 0x03, byte(tag >> 16), byte(tag >> 8), byte(tag)})
	if err != nil {
		return nil, false, err
	}
	switch sw {
	case 0x9000:
	case 0x6a82:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("get data %06x: status %04x", tag, sw)
	}
	v, rest, ok := cutTLV(resp)
	if !ok || v.tag != 0x53 || len(rest) != 0 {
		return nil, false, fmt.Errorf("get data %06x: answer is not one 53 object: %w", tag, errBadMetadata)
	}
	return v.value, true, nil
}
