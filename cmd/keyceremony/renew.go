package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
)

func newRenewCommand() *cobra.Command {
	var o ceremony.RenewOptions
	var df deviceFlags
	cmd := &cobra.Command{
		Use:   "renew root|targets|stable --root FILE --published DIR --config FILE --media DIR [devices]",
		Short: "Re-sign root, targets or an empty stable with their current keys before they expire",
		Long: `renew is a short ceremony that keeps an unchanged repository from expiring.
It verifies the published metadata from the trusted root, and signs the
role again with its current keys (at least its threshold must be on the
devices given): version+1, a new expiry of expires_days from the
configuration, nothing else changed. It writes to the new directory --media:
metadata/N.<role>.json, renewal-checklist.md (what the repository's operators
publish, in what order) and transcript.jsonl, reads them back and verifies
them. A stable that delegates to bins is renewed by a stable signing
('keyceremony stable sign'): the bins' keys existed only for the ceremony
that signed them. See docs/runbook-incident.md, "Renewal".`,
		Example: `  keyceremony renew root --root 1.root.json --published /media/usb/current --config bootstrap.json \
      --media /media/usb/renew-root --piv
  keyceremony verify --root 1.root.json --previous /media/usb/current /media/usb/renew-root`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Role = args[0]
			known := false
			for _, r := range ceremony.RenewableRoles {
				known = known || r == o.Role
			}
			if !known {
				return usage(fmt.Sprintf("cannot renew %q", o.Role), "renew one of "+strings.Join(ceremony.RenewableRoles, ", ")+"; the repository renews snapshot, timestamp and unstable itself")
			}
			if err := requireOffline("renew", o.Root, o.Published, o.Config, o.Media); err != nil {
				return err
			}
			o.Devices, o.Now, o.Show, o.Version = df.options(cmd), time.Now().UTC(), cmd.OutOrStdout(), version()
			res, err := ceremony.RunRenew(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%s v%d (was v%d), expires %s, written to %s and verified; the checklist is %s\n", res.Role, res.Version, res.Previous, res.Expires, o.Media, ceremony.RenewalChecklist)
			showTranscriptDigest(cmd, res.Transcript)
			return nil
		},
	}
	offlineFlags(cmd, &o.Root, &o.Published, &o.Config, &o.Media, "the ceremony configuration (its expires_days give the new expiry)")
	df.register(cmd)
	return cmd
}
