package tui

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestLine: a line is read up to its end, without the line end, and
// nothing after it is consumed; an overlong line is refused.
func TestLine(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	tm := &Terminal{in: r, out: &out}
	go func() {
		w.WriteString("eth0,wlan0\r\nyes\n" + strings.Repeat("x", 5000) + "\n")
		w.Close()
	}()
	for _, want := range []string{"eth0,wlan0", "yes"} {
		got, err := tm.Line("> ")
		if err != nil || got != want {
			t.Fatalf("Line = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := tm.Line("> "); err == nil || !strings.Contains(err.Error(), "longer than 4096") {
		t.Fatalf("an overlong line: %v", err)
	}
	if out.String() != "> > > " {
		t.Fatalf("prompts written: %q", out.String())
	}
}
