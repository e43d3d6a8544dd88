// Package killpoint lets the kill tests (cmd/keyceremony's
// TestKillAtEachStage) stop the binary exactly where a line has just been
// printed on its standard output, so that the SIGKILL which follows lands
// there and not a moment later, when the next key may already be
// generated or the stage already done.
//
// It does something only in a binary built with the build tag killpoint,
// which only those tests build: there, if KEYCEREMONY_KILLPOINT names a
// text, the process stops itself (SIGSTOP) right after it has written the
// first line holding that text, for the test to kill. A release build has
// no such code and reads no such variable.
package killpoint

import "io"

// Stdout is w, the process's standard output; in a killpoint build with a
// kill point set, w watched for the kill point's line.
func Stdout(w io.Writer) io.Writer { return stdout(w) }
