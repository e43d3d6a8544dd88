package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
)

func newDeviceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "List and prepare YubiKeys",
		Long:  `device lists the YubiKeys plugged in and prepares factory-fresh ones. See docs/hardware.md.`,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the YubiKeys plugged in, with serial, firmware and advisories",
		Example: `  keyceremony device list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// With busy readers, the YubiKeys that could be read are
			// shown, then the error.
			yks, err := ceremony.ListYubiKeys()
			if err != nil && len(yks) == 0 {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tFIRMWARE\tFORM FACTOR\tREADER\tADVISORIES")
			for _, y := range yks {
				adv := "-"
				if len(y.Advisories) > 0 {
					adv = "YSA-2024-03 (no P-256 root keys)"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", y.Serial, y.Firmware, y.FormFactor, y.Reader, adv)
			}
			if ferr := tw.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	var serial uint32
	var rehearsal bool
	initCmd := &cobra.Command{
		Use:   "init --serial N",
		Short: "Prepare a factory-fresh YubiKey: new PIN and PUK, random management key stored PIN-protected",
		Long: `init refuses a device whose PIN, PUK or management key is not the factory
default (it never resets a device). It asks for the new PIN and PUK twice on
the terminal, stores a random management key PIN-protected on the device,
and then sets the new PIN and PUK.`,
		Example: `  keyceremony device init --serial 15732500`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serial == 0 {
				return usage("--serial is required", "'keyceremony device list' shows the serials of the YubiKeys plugged in")
			}
			return ceremony.InitYubiKey(serial, rehearsal, cmd.OutOrStdout())
		},
	}
	initCmd.Flags().Uint32Var(&serial, "serial", 0, "serial number of the YubiKey")
	initCmd.Flags().BoolVar(&rehearsal, "rehearsal", false, "rehearsal device")
	cmd.AddCommand(list, initCmd)
	return cmd
}
