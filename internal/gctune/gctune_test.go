package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	for _, c := range []struct {
		name        string
		percent     int
		limit       int64
		wantPercent int
		wantLimit   int64
	}{
		{"defaults", 100, math.MaxInt64, GCPercent, MemoryLimit},
		{"GOGC off", -1, math.MaxInt64, -1, MemoryLimit},
		{"GOGC rarer", 800, math.MaxInt64, 800, MemoryLimit},
		{"lower limit kept", 100, 256 << 20, GCPercent, 256 << 20},
		{"higher limit lowered", 100, 4 << 30, GCPercent, MemoryLimit},
	} {
		debug.SetGCPercent(c.percent)
		debug.SetMemoryLimit(c.limit)
		Apply()
		p, l := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
		if p != c.wantPercent || l != c.wantLimit {
			t.Errorf("%s: GOGC %d, limit %d; want %d, %d", c.name, p, l, c.wantPercent, c.wantLimit)
		}
	}
}
