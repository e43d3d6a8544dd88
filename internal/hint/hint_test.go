package hint

import (
	"errors"
	"fmt"
	"testing"
)

type noHint struct{ err error }

func (e *noHint) Error() string { return "wrapper: " + e.err.Error() }
func (e *noHint) Hint() string  { return "" }
func (e *noHint) Unwrap() error { return e.err }

func TestOf(t *testing.T) {
	a := New("a failed", "try b")
	if a.Error() != "a failed" {
		t.Fatalf("message %q carries more than the message", a.Error())
	}
	if New("a failed", "try b") == a {
		t.Fatal("two sentinels compare equal")
	}
	wrapped := fmt.Errorf("opening x: %w", a)
	if !errors.Is(wrapped, a) {
		t.Fatal("errors.Is lost the sentinel")
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("plain"), ""},
		{"sentinel", a, "try b"},
		{"wrapped", wrapped, "try b"},
		{"joined cause", fmt.Errorf("%w: %w", errors.New("x"), a), "try b"},
		{"empty hint falls through", &noHint{wrapped}, "try b"},
		{"empty hint, nothing below", &noHint{errors.New("x")}, ""},
		{"outermost wins", fmt.Errorf("%w: %w", New("outer", "first"), a), "first"},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("%s: Of = %q, want %q", tc.name, got, tc.want)
		}
	}
}
