package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
)

func newDemoCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "demo --out DIR",
		Short: "Run a complete dry-run ceremony with INSECURE software devices",
		Long: `demo creates three INSECURE soft devices, bootstraps root, targets and
stable keys on them, signs a stable set from a small built-in repository,
plays the repository's side (online keys, an unstable role that tries to
swap a mature file, snapshot and timestamp) and verifies the result.

DIR becomes a complete TUF repository: DIR/metadata and DIR/targets, laid
out as a client fetches them. DIR must not exist or be empty.`,
		Example: `  keyceremony demo --out /tmp/demo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usage("--out is required", "keyceremony demo --out /tmp/demo")
			}
			d := &ceremony.Demo{Out: out, Now: time.Now().UTC(), Show: cmd.OutOrStdout(), Version: version()}
			_, err := d.Run()
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to create (must not exist or be empty)")
	return cmd
}
