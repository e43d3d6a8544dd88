package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/internal/hint"
)

// TestEveryHintReachesTheOutput: each library error that carries advice
// has it printed on a "hint:" line below the error, however deeply it is
// wrapped, and the advice is not part of the error line.
func TestEveryHintReachesTheOutput(t *testing.T) {
	for _, sentinel := range []error{
		ceremony.ErrOutputExists,
		ceremony.ErrMissingDevice,
		ceremony.ErrNoDevices,
		ceremony.ErrMixedDevices,
		ceremony.ErrNoSoftCA,
		ceremony.ErrPINFileForPIV,
		ceremony.ErrAttestationCAOutsideRehearsal,
		hsm.ErrSlotOccupied,
		hsm.ErrBlocked,
		hsm.ErrNoDevice,
		hsm.ErrDefaultSecret,
		hsm.ErrWeakPIN,
		hsm.ErrTouchTimeout,
		&hsm.AuthError{What: "PIN", Retries: 0},
		piv.ErrAlreadyInitialized,
		piv.ErrNoPCSC,
		&piv.BusyError{Readers: []string{"Yubico YubiKey OTP+FIDO+CCID 00 00"}},
	} {
		h, ok := sentinel.(hint.Hinter)
		if !ok || h.Hint() == "" {
			t.Errorf("%q carries no hint", sentinel)
			continue
		}
		err := fmt.Errorf("step two: %w", fmt.Errorf("%w: %w", sentinel, errors.New("the cause")))
		var out bytes.Buffer
		report(&out, err)
		want := "keyceremony: error: step two: " + sentinel.Error() + ": the cause\nhint: " + h.Hint() + "\n"
		if out.String() != want {
			t.Errorf("printed\n%q\nwant\n%q", out.String(), want)
		}
		if strings.Contains(sentinel.Error(), h.Hint()) {
			t.Errorf("%q has its hint in its message", sentinel)
		}
	}
}

// TestNoHintNoHintLine: an error without advice prints one line.
func TestNoHintNoHintLine(t *testing.T) {
	var out bytes.Buffer
	report(&out, fmt.Errorf("reading x: %w", &hsm.AuthError{What: "PIN", Retries: 2}))
	if out.String() != "keyceremony: error: reading x: wrong PIN, 2 tries left\n" {
		t.Fatalf("printed %q", out.String())
	}
}

// TestUsageErrorKeepsItsCause: a usage error prints its cause and its
// advice, and errors.As still finds the cause.
func TestUsageErrorKeepsItsCause(t *testing.T) {
	cause := errors.New("bad time")
	err := &usageError{msg: "--at \"x\"", hint: "use RFC 3339", err: cause}
	var out bytes.Buffer
	report(&out, err)
	if out.String() != "keyceremony: error: --at \"x\": bad time\nhint: use RFC 3339\n" || !errors.Is(err, cause) {
		t.Fatalf("printed %q", out.String())
	}
}
