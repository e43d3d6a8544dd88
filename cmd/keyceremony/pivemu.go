package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
)

// newPivemuCommand runs a PIV card emulator against vsmartcard's vpcd, for
// tests and rehearsals of the PC/SC path. It is hidden: it is no device.
func newPivemuCommand() *cobra.Command {
	var addr string
	var serial uint32
	cmd := &cobra.Command{
		Use:     "pivemu --vpcd HOST:PORT --serial N",
		Short:   "Run an emulated PIV card (TESTS ONLY) against vsmartcard's vpcd",
		Example: `  keyceremony pivemu --vpcd 127.0.0.1:35963 --serial 20000001`,
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := pivemu.NewCA()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "emulated PIV card %d on %s (TESTS ONLY; its attestation CA exists only in this process)\n", serial, addr)
			return pivemu.Serve(ctx, pivemu.Config{Serial: serial, Addr: addr, CA: ca})
		},
	}
	cmd.Flags().StringVar(&addr, "vpcd", "127.0.0.1:35963", "vpcd address")
	cmd.Flags().Uint32Var(&serial, "serial", 20000001, "serial number")
	return cmd
}
