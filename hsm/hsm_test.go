package hsm

import (
	"errors"
	"testing"
)

func TestParseSlot(t *testing.T) {
	for s, ok := range map[string]bool{"9a": true, "9c": true, "9d": true, "9e": true, "82": true, "95": true,
		"9b": false, "81": false, "96": false, "f9": false, "9C": false, "9": false, "09c": false, "": false, "zz": false} {
		slot, err := ParseSlot(s)
		if ok != (err == nil) {
			t.Errorf("ParseSlot(%q) = %v, %v", s, slot, err)
		}
		if ok && slot.String() != s {
			t.Errorf("ParseSlot(%q).String() = %q", s, slot.String())
		}
		if !ok && !errors.Is(err, ErrBadSlot) {
			t.Errorf("ParseSlot(%q): %v is not ErrBadSlot", s, err)
		}
	}
}

func TestAuthError(t *testing.T) {
	err := error(&AuthError{What: "PIN", Retries: 2})
	if errors.Is(err, ErrBlocked) {
		t.Error("two tries left is not blocked")
	}
	if err.Error() != "wrong PIN, 2 tries left" {
		t.Errorf("message %q", err)
	}
	if !errors.Is(&AuthError{What: "PIN", Retries: 0}, ErrBlocked) {
		t.Error("no tries left must be ErrBlocked")
	}
}

func TestCheckPIN(t *testing.T) {
	for pin, ok := range map[string]bool{"12345": false, "123456": true, "12345678": true, "123456789": false} {
		if (CheckPIN(pin) == nil) != ok {
			t.Errorf("CheckPIN(%q)", pin)
		}
	}
}

// FuzzParseSlot: a slot is accepted only as the two lowercase hex digits
// its String gives, of a slot that is Valid; anything else is ErrBadSlot.
func FuzzParseSlot(f *testing.F) {
	for _, s := range []string{"9a", "9c", "82", "95", "9b", "f9", "9C", "9", "09c", "", " 9a", "9a\n", "+9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		slot, err := ParseSlot(s)
		if err != nil {
			if !errors.Is(err, ErrBadSlot) {
				t.Fatalf("ParseSlot(%q): %v is not ErrBadSlot", s, err)
			}
			return
		}
		if !slot.Valid() || slot.String() != s {
			t.Fatalf("ParseSlot(%q) = %v (valid %v)", s, slot, slot.Valid())
		}
	})
}
