//go:build benchprofile

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// With the build tag benchprofile (bench/cli -profile builds with it; the
// release binary never has this code), KEYCEREMONY_BENCH_PROFILE names a
// directory into which each run writes a CPU profile (cpu-PID.pprof) and,
// at the end, a heap profile (heap-PID.pprof: allocations and what is
// live). Nothing else is read from the environment, and no secret is in
// either profile's reach that the process did not already hold.
func startProfile() func() {
	dir := os.Getenv("KEYCEREMONY_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	name := func(kind string) string { return filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", kind, os.Getpid())) }
	cf, err := os.Create(name("cpu"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyceremony: bench profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(cf); err != nil {
		fmt.Fprintf(os.Stderr, "keyceremony: bench profile: %v\n", err)
		cf.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		cf.Close()
		hf, err := os.Create(name("heap"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "keyceremony: bench profile: %v\n", err)
			return
		}
		runtime.GC()
		pprof.Lookup("allocs").WriteTo(hf, 0)
		hf.Close()
	}
}
