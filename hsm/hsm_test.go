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
