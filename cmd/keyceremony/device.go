package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/keys"
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
			cards, err := piv.ListCards()
			if err != nil {
				return withHint(err, "is pcscd running? (apt-get install pcscd; it must see the YubiKeys)")
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tFIRMWARE\tFORM FACTOR\tREADER\tADVISORIES")
			for _, c := range cards {
				adv := "-"
				if a := piv.Advisories(c.Info, hsm.AlgECCP256); len(a) > 0 {
					adv = "YSA-2024-03 (no P-256 root keys)"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.Serial, c.Firmware, c.FormFactor, c.Reader, adv)
			}
			return tw.Flush()
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
				return errors.New("--serial is required")
			}
			d, err := piv.Open(serial, piv.Options{Roots: keys.YubicoRoots(), Rehearsal: rehearsal})
			if err != nil {
				return err
			}
			defer d.Close()
			t, err := tui.Open()
			if err != nil {
				return err
			}
			defer t.Close()
			notDefault := func(def string) func(string) error {
				return func(s string) error {
					if err := hsm.CheckPIN(s); err != nil {
						return err
					}
					if s == def {
						return hsm.ErrDefaultSecret
					}
					return nil
				}
			}
			pin, err := t.NewSecret(fmt.Sprintf("New PIN for %s (6 to 8 characters): ", d.Info()), notDefault(piv.DefaultPIN))
			if err != nil {
				return err
			}
			puk, err := t.NewSecret(fmt.Sprintf("New PUK for %s (6 to 8 characters): ", d.Info()), notDefault(piv.DefaultPUK))
			if err != nil {
				return err
			}
			if err := d.Initialize(pin, puk); err != nil {
				if errors.Is(err, piv.ErrAlreadyInitialized) {
					return withHint(err, "keyceremony never resets a device; reset it with ykman piv reset if you really mean to")
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s initialised: new PIN and PUK set, random management key stored PIN-protected\n", d.Info())
			return nil
		},
	}
	initCmd.Flags().Uint32Var(&serial, "serial", 0, "serial number of the YubiKey")
	initCmd.Flags().BoolVar(&rehearsal, "rehearsal", false, "rehearsal device")
	cmd.AddCommand(list, initCmd)
	return cmd
}
