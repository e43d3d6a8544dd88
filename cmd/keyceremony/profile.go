//go:build !benchprofile

package main

// startProfile does nothing in the release binary; profile_bench.go (build
// tag benchprofile, bench/cli -profile) writes pprof profiles.
func startProfile() func() { return func() {} }
