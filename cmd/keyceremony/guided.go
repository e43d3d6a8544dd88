package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/internal/airgap"
)

// interfaces lists the network interfaces for the air-gap check (tests
// replace it).
var interfaces airgap.Lister = airgap.System

// guidedFlags choose between the guided ceremony (the default on a
// terminal) and the batch form, and carry the batch form's network
// acknowledgement.
type guidedFlags struct {
	batch bool
	ack   string
}

func (f *guidedFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.batch, "batch", false, "the non-interactive form, for scripts (the default without a terminal): no steps are shown or confirmed")
	cmd.Flags().StringVar(&f.ack, "network-ack", "", "batch form: the network interfaces up besides loopback, comma-separated, exactly (the ceremony refuses to start otherwise)")
}

// guided reports whether the ceremony runs guided: not --batch, and the
// command's standard input and output are a terminal (never when its
// output is captured, as in tests).
func (f *guidedFlags) guided(cmd *cobra.Command) bool {
	isTerm := func(v any) bool {
		f, ok := v.(*os.File)
		return ok && term.IsTerminal(int(f.Fd()))
	}
	return !f.batch && isTerm(cmd.InOrStdin()) && isTerm(cmd.OutOrStdout())
}

// open returns the guide of a guided run, with its terminal (closed by
// the caller), or a nil guide and the batch form's acknowledgement.
func (f *guidedFlags) open(cmd *cobra.Command) (*ceremony.Guide, *tui.Terminal, []string, error) {
	if !f.guided(cmd) {
		ack, err := airgap.ParseAck(f.ack)
		if err != nil {
			return nil, nil, nil, usage(err.Error(), "name every interface up besides loopback, as 'ip -br link' shows them")
		}
		return nil, nil, ack, nil
	}
	if f.ack != "" {
		return nil, nil, nil, usage("--network-ack is for the batch form", "the guided ceremony lists the interfaces up and the room acknowledges them on the screen; pass --batch for a script")
	}
	t, err := tui.Open()
	if err != nil {
		return nil, nil, nil, err
	}
	g := &ceremony.Guide{Term: t, Out: t, Terminal: true, Interfaces: interfaces, Now: func() time.Time { return time.Now().UTC() }}
	return g, t, nil, nil
}
