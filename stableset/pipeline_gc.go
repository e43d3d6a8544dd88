package stableset

import (
	"math"
	"runtime/debug"
	"sync"
)

// The pipeline allocates fast and keeps little: what is live is the
// batches in flight and one project bucket per worker. With the default
// GOGC=100 the collector runs several times a second; a higher GOGC under
// a soft memory limit runs it less often and still keeps the heap within
// budget (docs/stable-pipeline.md, "Memory"). The settings are the
// process's, so they are changed while a pipeline runs and restored when
// the last one ends.

const (
	pipelineGCPercent   = 400
	pipelineMemoryLimit = 768 << 20
)

var gcTune struct {
	mu      sync.Mutex
	n       int
	percent int
	limit   int64
}

// tuneGC sets the pipeline's GC settings and returns the function that
// restores the previous ones.
func tuneGC() (restore func()) {
	gcTune.mu.Lock()
	defer gcTune.mu.Unlock()
	if gcTune.n == 0 {
		gcTune.limit = debug.SetMemoryLimit(-1)
		gcTune.percent = debug.SetGCPercent(pipelineGCPercent)
		if gcTune.percent < 0 || gcTune.percent > pipelineGCPercent {
			// GC off or already rarer: leave it.
			debug.SetGCPercent(gcTune.percent)
		}
		if gcTune.limit == math.MaxInt64 || gcTune.limit > pipelineMemoryLimit {
			debug.SetMemoryLimit(pipelineMemoryLimit)
		}
	}
	gcTune.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			gcTune.mu.Lock()
			defer gcTune.mu.Unlock()
			gcTune.n--
			if gcTune.n == 0 {
				debug.SetGCPercent(gcTune.percent)
				debug.SetMemoryLimit(gcTune.limit)
			}
		})
	}
}
