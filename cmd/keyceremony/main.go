// Command keyceremony runs offline key ceremonies for TUF repositories
// such as PyPI. This package only parses flags, calls package ceremony and
// prints; the work is done there.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/internal/gctune"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/internal/killpoint"
)

// usageError is a command line that cannot run as given, with advice on
// how to write it.
type usageError struct {
	msg, hint string
	err       error // the cause, if any
}

func (e *usageError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}
func (e *usageError) Hint() string  { return e.hint }
func (e *usageError) Unwrap() error { return e.err }

func usage(msg, hint string) error { return &usageError{msg: msg, hint: hint} }

// exitError is a failure with an exit status other than 1 (verify and
// status tell "invalid" from "could not run").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

func main() {
	// The stable pipeline's GC settings, for the whole process: library
	// code changes no process-wide state.
	gctune.Apply()
	stop := startProfile()
	code := run(os.Args[1:], killpoint.Stdout(os.Stdout), os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		report(stderr, err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// report prints err and, if any error in its chain carries advice
// (hint.Hinter), that advice on a "hint:" line.
func report(stderr io.Writer, err error) {
	fmt.Fprintf(stderr, "keyceremony: error: %v\n", err)
	if h := hint.Of(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
}

// version is the module version from build info; builds are reproducible
// so there is no build date.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "+dirty"
		}
	}
	return v + " " + bi.GoVersion
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyceremony",
		Short: "Offline key ceremonies and stable signing for TUF repositories such as PyPI",
		Long: `keyceremony runs offline key ceremonies for a TUF repository on an
air-gapped machine with YubiKeys: it generates and attests root, targets and
stable keys, signs the stable set of mature files after a human review,
renews root and targets before they expire, replaces lost or compromised
root, targets and stable keys and the online keys after a server
compromise, and verifies everything for auditors.`,
		Example: `  keyceremony demo --out /tmp/demo
  keyceremony verify --root /tmp/demo/metadata/1.root.json /tmp/demo`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("keyceremony {{.Version}}\n")
	root.AddCommand(newDemoCommand(), newVerifyCommand(), newStatusCommand(), newBootstrapCommand(), newStableCommand(), newRenewCommand(), newRotateCommand(), newDeviceCommand(), newSoftCommand(), newRunSheetCommand(), newDelegationCommand())
	return root
}
