//go:build !linux

package tui

// echoOff does nothing here: term.ReadPassword turns echo off just after
// the prompt is written, so keys typed in that instant may be echoed.
func echoOff(int) (func(), error) { return func() {}, nil }
