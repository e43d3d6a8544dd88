// Package gctune holds the garbage collector settings the stable pipeline
// is measured with (docs/stable-pipeline.md, "Memory"). The settings are
// the process's: only a main package calls Apply, once, at start.
//
// The pipeline allocates fast and keeps little: what is live is the
// batches in flight and one project bucket per worker. With the default
// GOGC=100 the collector runs several times a second; a higher GOGC under
// a soft memory limit runs it less often and still keeps the heap within
// budget.
package gctune

import (
	"math"
	"runtime/debug"
)

const (
	// GCPercent is the GOGC the pipeline runs with.
	GCPercent = 400
	// MemoryLimit is the soft memory limit the pipeline runs under.
	MemoryLimit = 768 << 20
)

// Apply raises GOGC to GCPercent, unless the collector is off or already
// rarer (GOGC set higher in the environment), and sets the soft memory
// limit to MemoryLimit, unless one as low or lower is set already
// (GOMEMLIMIT).
func Apply() {
	if p := debug.SetGCPercent(GCPercent); p < 0 || p > GCPercent {
		debug.SetGCPercent(p)
	}
	if l := debug.SetMemoryLimit(-1); l == math.MaxInt64 || l > MemoryLimit {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
