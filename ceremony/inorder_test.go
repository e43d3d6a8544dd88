package ceremony

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestInOrder: the error is the lowest failing item's, as a loop in
// order would return, every item before it ran, and each worker's state
// is made once.
func TestInOrder(t *testing.T) {
	if err := inOrder(0, func() func(int) error { return func(int) error { return errors.New("ran") } }); err != nil {
		t.Fatalf("no items: %v", err)
	}
	for _, fails := range [][]int{nil, {7}, {3, 90}, {99, 0}, {50, 51, 52}} {
		const n = 100
		var ran [n]atomic.Bool
		var workers atomic.Int32
		bad := map[int]bool{}
		for _, i := range fails {
			bad[i] = true
		}
		err := inOrder(n, func() func(int) error {
			workers.Add(1)
			return func(i int) error {
				if ran[i].Swap(true) {
					t.Errorf("item %d ran twice", i)
				}
				if bad[i] {
					return fmt.Errorf("item %d", i)
				}
				return nil
			}
		})
		low := n
		for _, i := range fails {
			low = min(low, i)
		}
		if low == n && err != nil || low < n && (err == nil || err.Error() != fmt.Sprintf("item %d", low)) {
			t.Errorf("failing %v: got %v, want item %d's", fails, err, low)
		}
		for i := 0; i < low; i++ {
			if !ran[i].Load() {
				t.Errorf("failing %v: item %d, before the first failure, did not run", fails, i)
			}
		}
		if w := workers.Load(); w < 1 || int(w) > runtime.GOMAXPROCS(0) {
			t.Errorf("%d workers made, GOMAXPROCS %d", w, runtime.GOMAXPROCS(0))
		}
	}
}
