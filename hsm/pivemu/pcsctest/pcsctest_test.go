//go:build cgo

package pcsctest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
)

// TestPresenceRefusesNoProgram: the presence check that Insert and Remove
// poll, while a program under test uses the card, never makes that
// program's exclusive open fail. Here it runs in a loop beside piv-go
// opening and reading the card again and again, as a ceremony scanning a
// YubiKey's slots does. (With `opensc-tool -l`, which connects to every
// reader, about one open in thirty failed with a sharing violation.)
func TestPresenceRefusesNoProgram(t *testing.T) {
	env := Start(t, 1)
	var stop atomic.Bool
	polls := make(chan int, 1)
	go func() {
		n := 0
		defer func() { polls <- n }()
		for !stop.Load() {
			if p, err := present(env.Readers[0]); err != nil || !p {
				t.Errorf("present(%q) = %v, %v; want true", env.Readers[0], p, err)
				return
			}
			n++
		}
	}()
	opens := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); opens++ {
		yk, err := piv.Open(env.Readers[0])
		if err == nil {
			_, err = yk.Serial()
			yk.Close()
		}
		if err != nil {
			t.Errorf("open %d, beside the presence check: %v", opens+1, err)
			break
		}
	}
	stop.Store(true)
	if n := <-polls; !t.Failed() && (n < 50 || opens < 50) {
		t.Fatalf("%d presence checks beside %d opens: too few to overlap", n, opens)
	}
}
