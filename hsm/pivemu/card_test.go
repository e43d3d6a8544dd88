package pivemu

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"testing"
	"time"
)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func newTestCard(t testing.TB, cfg Config) *Card {
	t.Helper()
	c, err := NewCard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sw(resp []byte) uint16 {
	if len(resp) < 2 {
		return 0
	}
	return uint16(resp[len(resp)-2])<<8 | uint16(resp[len(resp)-1])
}

func TestATRChecksum(t *testing.T) {
	var x byte
	for _, b := range ATR[1:] {
		x ^= b
	}
	if x != 0 {
		t.Fatalf("ATR TCK wrong: xor of T0..TCK is %#x", x)
	}
	if ATR[5]&0x0f != 1 {
		t.Fatalf("TD1 %#x does not announce T=1", ATR[5])
	}
}

func TestParseAPDU(t *testing.T) {
	tests := []struct {
		in       string
		ok       bool
		data     string
		le       int
		extended bool
	}{
		{"00a40400", true, "", 0, false},
		{"00fd000000", true, "", 256, false},
		{"00a4040005a000000308", true, "a000000308", 0, false},
		{"00a4040005a00000030800", true, "a000000308", 256, false},
		{"00cb3fff0000", false, "", 0, false}, // 6 bytes: truncated extended
		{"00cb3fff000000", true, "", 65536, true},
		{"00cb3fff000003aabbcc", true, "aabbcc", 0, true},
		{"00cb3fff000003aabbcc0100", true, "aabbcc", 256, true},
		{"00cb3f", false, "", 0, false},
		{"00cb3fff05aabb", false, "", 0, false},
		{"00cb3fff000000aa", false, "", 0, false},
	}
	for _, tc := range tests {
		c, err := parseAPDU(h(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("parseAPDU(%s) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if hex.EncodeToString(c.data) != tc.data || c.le != tc.le || c.extended != tc.extended {
			t.Errorf("parseAPDU(%s) = data %x le %d ext %v, want %s %d %v", tc.in, c.data, c.le, c.extended, tc.data, tc.le, tc.extended)
		}
	}
}

func TestAPDUTable(t *testing.T) {
	c := newTestCard(t, Config{Serial: 0x01020304, Version: Version{5, 7, 1}})
	tests := []struct {
		name, apdu string
		want       string // full response in hex
	}{
		{"before select", "00fd000000", "6d00"},
		{"select piv", "00a4040005a000000308", "61114f0600001000010079074f05a0000003089000"},
		{"version", "00fd000000", "0507019000"},
		{"serial", "00f8000000", "010203049000"},
		{"pin status", "0020008000", "63c3"},
		{"wrong pin", "002000800839393939393939ff", "63c2"},
		{"short pin field", "00200080023131", "6a80"},
		{"right pin", "0020008008313233343536ffff", "9000"},
		{"pin status verified", "0020008000", "9000"},
		{"pin metadata", "00f7008000", "0101ff0501010602030390" + "00"},
		{"mgm metadata", "00f7009b00", "01010a0202000105010190" + "00"},
		{"empty slot metadata", "00f7009a00", "6a88"},
		{"generate without mgm key", "0047009a05ac03800111", "6982"},
		{"get missing cert", "00cb3fff055c035fc105", "6a82"},
		{"discovery", "00cb3fff035c017e", "7e124f0ba0000003080000100001005f2f0240009000"},
		{"put data without mgm key", "00db3fff085c035fc1055301aa", "6982"},
		{"reset while pin unblocked", "00fb000000", "6985"},
		{"unknown ins", "0012000000", "6d00"},
		{"bad cla", "80fd000000", "6e00"},
		{"get response with nothing pending", "00c0000000", "6985"},
		{"malformed", "00", "6700"},
		{"unknown aid", "00a4040003a00000", "6a82"},
	}
	for _, tc := range tests {
		got := hex.EncodeToString(c.Transmit(h(tc.apdu)))
		if got != tc.want {
			t.Errorf("%s: %s -> %s, want %s", tc.name, tc.apdu, got, tc.want)
		}
	}
}

func selectPIV(t *testing.T, c *Card) {
	t.Helper()
	if r := c.Transmit(h("00a4040005a000000308")); sw(r) != swOK {
		t.Fatalf("select: %x", r)
	}
}

func TestPINBlocksAndResetNeedsBoth(t *testing.T) {
	c := newTestCard(t, Config{})
	selectPIV(t, c)
	wrong := h("002000800839393939393939ff")
	for _, want := range []uint16{0x63c2, 0x63c1, 0x63c0, 0x6983} {
		if got := sw(c.Transmit(wrong)); got != want {
			t.Fatalf("wrong PIN: %04x, want %04x", got, want)
		}
	}
	if got := sw(c.Transmit(h("0020008008313233343536ffff"))); got != 0x6983 {
		t.Fatalf("right PIN on blocked card: %04x", got)
	}
	if got := sw(c.Transmit(h("00fb000000"))); got != swConditionsNotMet {
		t.Fatalf("reset with PUK unblocked: %04x", got)
	}
	wrongPUK := h("002400811039393939393939393939393939393939")
	for _, want := range []uint16{0x63c2, 0x63c1, 0x63c0, 0x6983} {
		if got := sw(c.Transmit(wrongPUK)); got != want {
			t.Fatalf("wrong PUK: %04x, want %04x", got, want)
		}
	}
	if got := sw(c.Transmit(h("00fb000000"))); got != swOK {
		t.Fatalf("reset: %04x", got)
	}
	if got := sw(c.Transmit(h("0020008008313233343536ffff"))); got != swOK {
		t.Fatalf("default PIN after reset: %04x", got)
	}
}

func TestChangePINRejectsShortPIN(t *testing.T) {
	c := newTestCard(t, Config{})
	selectPIV(t, c)
	// old 123456, new 12345 (too short)
	if got := sw(c.Transmit(h("0024008010313233343536ffff3132333435ffffff"))); got != swIncorrectData {
		t.Fatalf("short new PIN: %04x", got)
	}
	if got := sw(c.Transmit(h("0024008010313233343536ffff3131313131313131"))); got != swOK {
		t.Fatalf("change PIN: %04x", got)
	}
	if got := sw(c.Transmit(h("00200080083131313131313131"))); got != swOK {
		t.Fatalf("new PIN: %04x", got)
	}
	// PIN metadata no longer says default.
	if got := hex.EncodeToString(c.Transmit(h("00f7008000"))); got != "0101ff05010006020303"+"9000" {
		t.Fatalf("pin metadata %s", got)
	}
}

func TestThreeDESMutualAuthAndChaining(t *testing.T) {
	c := newTestCard(t, Config{Version: Version{5, 4, 3}})
	selectPIV(t, c)
	block, _ := des.NewTripleDESCipher(DefaultManagementKey)
	r := c.Transmit(h("0087039b047c028000"))
	if sw(r) != swOK || len(r) != 14 || !bytes.Equal(r[:4], h("7c0a8008")) {
		t.Fatalf("witness: %x", r)
	}
	witness := make([]byte, 8)
	block.Decrypt(witness, r[4:12])
	challenge := h("0011223344556677")
	data := append(append(h("7c148008"), witness...), append(h("8108"), challenge...)...)
	r = c.Transmit(append(h("0087039b16"), data...))
	want := make([]byte, 8)
	block.Encrypt(want, challenge)
	if sw(r) != swOK || !bytes.Equal(r[4:12], want) {
		t.Fatalf("response: %x", r)
	}
	// A replayed step 2 fails: the witness is used up.
	if got := sw(c.Transmit(append(h("0087039b16"), data...))); got != swSecurityStatus {
		t.Fatalf("replayed witness: %04x", got)
	}
	// Authentication state survives a failed replay? No: it is cleared.
	if got := sw(c.Transmit(h("00db3fff085c035fc1025301aa"))); got != swSecurityStatus {
		t.Fatalf("put data after failed auth: %04x", got)
	}
	// Authenticate again, then store 600 bytes with chaining and read them
	// back with GET RESPONSE.
	r = c.Transmit(h("0087039b047c028000"))
	block.Decrypt(witness, r[4:12])
	data = append(append(h("7c148008"), witness...), append(h("8108"), challenge...)...)
	if r = c.Transmit(append(h("0087039b16"), data...)); sw(r) != swOK {
		t.Fatalf("auth: %x", r)
	}
	obj := bytes.Repeat([]byte{0xab}, 600)
	put := append(h("5c035fc102"), appendTLV(nil, 0x53, obj)...)
	if r := c.Transmit(append(h("10db3fffff"), put[:255]...)); sw(r) != swOK {
		t.Fatalf("chained 1: %x", r)
	}
	if r := c.Transmit(append(h("10db3fffff"), put[255:510]...)); sw(r) != swOK {
		t.Fatalf("chained 2: %x", r)
	}
	rest := put[510:]
	if r := c.Transmit(append([]byte{0, 0xdb, 0x3f, 0xff, byte(len(rest))}, rest...)); sw(r) != swOK {
		t.Fatalf("chained last: %x", r)
	}
	r = c.Transmit(h("00cb3fff055c035fc102"))
	var got []byte
	for sw(r)>>8 == 0x61 {
		got = append(got, r[:len(r)-2]...)
		r = c.Transmit(h("00c0000000"))
	}
	if sw(r) != swOK {
		t.Fatalf("get data: %x", r)
	}
	got = append(got, r[:len(r)-2]...)
	if !bytes.Equal(got, appendTLV(nil, 0x53, obj)) {
		t.Fatalf("object read back differs (%d bytes)", len(got))
	}
	// A chain broken by another instruction is refused.
	c.Transmit(append(h("10db3fff05"), put[:5]...))
	if got := sw(c.Transmit(h("00fd000000"))); got != swLastCommandExpected {
		t.Fatalf("broken chain: %04x", got)
	}
}

func TestPINPolicyAlwaysNeedsFreshPIN(t *testing.T) {
	c := newTestCard(t, Config{})
	selectPIV(t, c)
	c.mu.Lock()
	c.mgmAuthed = true
	c.mu.Unlock()
	if r := c.Transmit(h("0047009c0bac09800111aa0103ab0102")); sw(r) != swOK {
		t.Fatalf("generate: %x", r)
	}
	sign := append(h("00870f9c267c248200812000"), make([]byte, 31)...)
	if got := sw(c.Transmit(sign)); got != swIncorrectData {
		t.Fatalf("sign with wrong algorithm: %04x", got)
	}
	sign[2] = 0x11
	if got := sw(c.Transmit(sign)); got != swSecurityStatus {
		t.Fatalf("sign without PIN: %04x", got)
	}
	c.Transmit(h("0020008008313233343536ffff"))
	if got := sw(c.Transmit(sign)); got != swOK {
		t.Fatalf("sign after PIN: %04x", got)
	}
	if got := sw(c.Transmit(sign)); got != swSecurityStatus {
		t.Fatalf("second sign with PIN policy always: %04x", got)
	}
	if c.Touches() != 1 {
		t.Fatalf("touches %d, want 1", c.Touches())
	}
}

// FuzzTransmit feeds arbitrary command sequences to a card: it must never
// panic and always answer with at least a status word.
func FuzzTransmit(f *testing.F) {
	f.Add(h("00a4040005a000000308"), h("00fd000000"))
	f.Add(h("00a4040005a000000308"), h("00870f9c267c24820081200000"))
	f.Add(h("00a4040005a000000308"), h("0047009a05ac03800111"))
	f.Add(h("00a4040005a000000308"), h("10db3fff055c035fc105"))
	f.Add(h("00a4040005a000000308"), h("00cb3fff000003aabbcc0100"))
	card := newTestCard(f, Config{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		card.mu.Lock()
		card.mgmAuthed = len(a) > 0 && a[0]&1 == 1
		card.pinVerified = len(b) > 0 && b[0]&1 == 1
		card.mu.Unlock()
		for _, apdu := range [][]byte{a, b, h("00c0000000")} {
			r := card.Transmit(apdu)
			if len(r) < 2 || len(r) > 65535 {
				t.Fatalf("response of %d bytes to %x", len(r), apdu)
			}
		}
	})
}

func FuzzParseTLVs(f *testing.F) {
	f.Add(h("7c24820081200000"))
	f.Add(h("5fc1058201ff"))
	f.Add(h("7f4903860141"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parseTLVs(b)
		if err != nil {
			return
		}
		var enc []byte
		for _, x := range ts {
			enc = appendTLV(enc, x.tag, x.value)
		}
		// Re-encoding with minimal lengths and re-parsing gives the same
		// elements.
		ts2, err := parseTLVs(enc)
		if err != nil || len(ts2) != len(ts) {
			t.Fatalf("re-encoded %x does not parse back: %v", enc, err)
		}
		for i := range ts {
			if ts[i].tag != ts2[i].tag || !bytes.Equal(ts[i].value, ts2[i].value) {
				t.Fatalf("element %d changed", i)
			}
		}
	})
}

// TestStatusWordsAsYubiKey checks the status words a real YubiKey 5
// answers, where clients tell outcomes apart by them. Each row names where
// the value is documented or relied on.
func TestStatusWordsAsYubiKey(t *testing.T) {
	c := newTestCard(t, Config{Version: Version{5, 7, 1}}) // AES-192 management key
	selectPIV(t, c)
	sign := append(h("00871104267c248200812000"), make([]byte, 31)...) // P-256 sign, slot in byte 3
	sign[3] = 0x9c
	tests := []struct {
		name, apdu, want, source string
	}{
		{"metadata of an empty slot", "00f7009a00", "6a88", "ykman piv keys export: 6A88 (REFERENCE_DATA_NOT_FOUND) means no key in the slot"},
		{"metadata of slot 96, which does not exist", "00f7009600", "6a88", "ykman 5 piv info reads every slot's metadata and accepts only 6A88 for a missing one"},
		{"metadata with P1 set", "00f7019a00", "6a86", "SP 800-73-4 part 2 table 6: incorrect P1 or P2"},
		{"management key authentication with the wrong algorithm", "0087039b047c028000", "6a80", "yubikit: 6A80 (INCORRECT_PARAMETERS) for a management key of another type"},
		{"sign with an empty slot", hex.EncodeToString(sign), "6a80", "yubikit piv.py check_key: 6A80 or 6B00 means no such key"},
		{"attest an empty slot", "00f99c0000", "6a80", "piv-go Attest maps 6A80 to ErrNotFound"},
		{"get a missing object", "00cb3fff055c035fc10a", "6a82", "Yubico SDK GetDataResponse: 6A82 when the object is not on the YubiKey"},
		{"get the PIN-protected object without the PIN", "00cb3fff055c035fc109", "6982", "Yubico SDK GetDataResponse: 6982 when authentication is required"},
		{"put data without the management key", "00db3fff085c035fc1055301aa", "6982", "SP 800-73-4 part 2 3.3.2: security status not satisfied"},
		{"generate without the management key", "0047009a05ac03800111", "6982", "SP 800-73-4 part 2 3.3.2"},
		{"verify with a key reference that is not the PIN", "0020009e08313233343536ffff", "6a88", "SP 800-73-4 part 2 table 6: reference data not found"},
		{"wrong PIN", "002000800839393939393939ff", "63c2", "SP 800-73-4 part 2 3.2.1: 63CX, X tries left"},
		{"reset while the PIN and PUK are not blocked", "00fb000000", "6985", "Yubico SDK reset: conditions of use not satisfied until PIN and PUK are blocked"},
		{"delete a key without the management key", "00f6ff9a00", "6982", "Yubico SDK DeleteKeyCommand: the management key must be authenticated"},
		{"unknown instruction", "0012000000", "6d00", "ISO/IEC 7816-4: instruction not supported"},
	}
	for _, tc := range tests {
		if got := hex.EncodeToString(c.Transmit(h(tc.apdu))); got != tc.want {
			t.Errorf("%s: %s -> %s, want %s (%s)", tc.name, tc.apdu, got, tc.want, tc.source)
		}
	}
	// Blocked PIN: 6983.
	for i := 0; i < 2; i++ {
		c.Transmit(h("002000800839393939393939ff"))
	}
	if got := hex.EncodeToString(c.Transmit(h("0020008008313233343536ffff"))); got != "6983" {
		t.Errorf("right PIN after three wrong ones: %s, want 6983 (SP 800-73-4: authentication method blocked)", got)
	}
}

// TestManualTouch: with ManualTouch the card waits for Touch, as a
// YubiKey blinks; nobody touching it is 6982 after the timeout; a press
// before the card blinks does nothing; a cached touch lasts.
func TestManualTouch(t *testing.T) {
	c := newTestCard(t, Config{ManualTouch: true, TouchTimeout: 20 * time.Millisecond})
	selectPIV(t, c)
	c.mu.Lock()
	c.mgmAuthed = true
	c.mu.Unlock()
	// 9c touch always, 9d touch cached; PIN policy never.
	for _, apdu := range []string{"0047009c0bac09800111aa0101ab0102", "0047009d0bac09800111aa0101ab0103"} {
		if r := c.Transmit(h(apdu)); sw(r) != swOK {
			t.Fatalf("generate: %x", r)
		}
	}
	sign := func(slot byte) []byte {
		a := append(h("00871100267c248200812000"), make([]byte, 31)...)
		a[3] = slot
		return a
	}

	// Nobody touches: 6982, as a YubiKey answers after it stops blinking.
	c.Touch() // a press before the card blinks is forgotten
	if got := sw(c.Transmit(sign(0x9c))); got != swSecurityStatus {
		t.Fatalf("sign without a touch: %04x, want 6982", got)
	}
	<-c.TouchRequests()
	if c.Touches() != 0 {
		t.Fatalf("touches %d after a timeout", c.Touches())
	}

	// Touched while it waits: signs.
	c.SetTouchTimeout(time.Hour) // the test presses; it never waits that long
	done := make(chan uint16)
	go func() { done <- sw(c.Transmit(sign(0x9c))) }()
	<-c.TouchRequests()
	c.Touch()
	if got := <-done; got != swOK {
		t.Fatalf("sign touched: %04x", got)
	}
	// Cached (9d): the first signature needs a touch, the next one within
	// 15 s does not.
	go func() { done <- sw(c.Transmit(sign(0x9d))) }()
	<-c.TouchRequests()
	c.Touch()
	if got := <-done; got != swOK {
		t.Fatalf("first cached sign: %04x", got)
	}
	if got := sw(c.Transmit(sign(0x9d))); got != swOK {
		t.Fatalf("second cached sign: %04x", got)
	}
	select {
	case <-c.TouchRequests():
		t.Fatal("a cached touch asked again")
	default:
	}
	if c.Touches() != 2 {
		t.Fatalf("touches %d, want 2", c.Touches())
	}
}

// TestMoveKey: MOVE KEY (firmware 5.7 and later) moves a key to an empty
// slot and deletes one with P1 FF, answering as ykman piv keys move and
// delete expect (6A80 when the destination holds a key, 6A88 when the
// source holds none); firmware before 5.7 does not know the instruction.
func TestMoveKey(t *testing.T) {
	c := newTestCard(t, Config{Version: Version{5, 7, 1}})
	selectPIV(t, c)
	c.mu.Lock()
	c.mgmAuthed = true
	c.mu.Unlock()
	for _, slot := range []string{"9a", "9c"} {
		if r := c.Transmit(h("004700" + slot + "05ac03800111")); sw(r) != swOK {
			t.Fatalf("generate %s: %x", slot, r)
		}
	}
	metadata := func(slot string) uint16 { return sw(c.Transmit(h("00f700" + slot + "00"))) }
	for _, tc := range []struct {
		name, apdu string
		want       uint16
	}{
		{"move onto a slot that holds a key", "00f69c9a00", swIncorrectData},
		{"move from an empty slot", "00f69d8200", swRefDataNotFound},
		{"move into a slot that is no key slot", "00f6969a00", swIncorrectP1P2},
		{"delete the attestation key", "00f6fff900", swIncorrectP1P2},
		{"move 9a to 9d", "00f69d9a00", swOK},
		{"delete 9c", "00f6ff9c00", swOK},
		{"delete 9c again", "00f6ff9c00", swRefDataNotFound},
	} {
		if got := sw(c.Transmit(h(tc.apdu))); got != tc.want {
			t.Errorf("%s: %s -> %04x, want %04x", tc.name, tc.apdu, got, tc.want)
		}
	}
	for slot, want := range map[string]uint16{"9a": swRefDataNotFound, "9c": swRefDataNotFound, "9d": swOK} {
		if got := metadata(slot); got != want {
			t.Errorf("metadata of %s after the moves: %04x, want %04x", slot, got, want)
		}
	}
	old := newTestCard(t, Config{Version: Version{5, 4, 3}})
	selectPIV(t, old)
	if got := sw(old.Transmit(h("00f6ff9a00"))); got != swInsNotSupported {
		t.Errorf("MOVE KEY on firmware 5.4.3: %04x, want 6d00", got)
	}
}
