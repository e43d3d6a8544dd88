package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
)

func newVerifyCommand() *cobra.Command {
	var rootFile, at string
	cmd := &cobra.Command{
		Use:   "verify --root TRUSTED_ROOT DIR",
		Short: "Verify a repository's metadata from a trusted root (no hardware needed)",
		Long: `verify checks, from a root you already trust, the root chain, every
role's signatures and threshold (with key ids recomputed), versions against
snapshot, lengths and hashes, expiries, and the delegation structure down to
every stable bin. It prints what it checked and fails, naming the file, role
and key, on anything wrong.

DIR is a repository (holding metadata/) or its metadata directory.`,
		Example: `  keyceremony verify --root trusted/1.root.json /media/usb
  keyceremony verify --root 1.root.json --at 2027-01-01T00:00:00Z ./repo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rootFile == "" {
				return usage("--root is required", "pass the root you trust, e.g. the 1.root.json from your bootstrap media")
			}
			when := time.Now()
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return &usageError{msg: fmt.Sprintf("--at %q", at), hint: "use RFC 3339, e.g. 2027-01-01T00:00:00Z", err: err}
				}
				when = t
			}
			report, err := ceremony.Verify(rootFile, args[0], when)
			if err != nil {
				return err
			}
			if err := report.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %d metadata files verified\n", len(report.Files))
			return nil
		},
	}
	cmd.Flags().StringVar(&rootFile, "root", "", "trusted root metadata file")
	cmd.Flags().StringVar(&at, "at", "", "check expiry at this time (RFC 3339) instead of now")
	return cmd
}
