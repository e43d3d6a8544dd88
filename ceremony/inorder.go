package ceremony

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// inOrder calls fn for 0 ≤ i < n on every core, each i once, and returns
// the error of the lowest i that failed, as a loop in order would: once
// an item has failed, no later one is started, and the earlier ones all
// run. worker is called once in each goroutine and returns its fn (so a
// worker can keep its own hash or buffer).
func inOrder(n int, worker func() func(i int) error) error {
	errs := make([]error, n)
	var (
		next   atomic.Int64
		failed atomic.Int64 // the lowest failing item so far (n: none)
		wg     sync.WaitGroup
	)
	failed.Store(int64(n))
	for range min(runtime.GOMAXPROCS(0), max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := worker()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || i > failed.Load() {
					return
				}
				if errs[i] = fn(int(i)); errs[i] != nil {
					for f := failed.Load(); i < f && !failed.CompareAndSwap(f, i); f = failed.Load() {
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
