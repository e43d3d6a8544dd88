package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/hsm/soft"
)

func newSoftCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "soft",
		Short: "Manage INSECURE software devices for rehearsals and tests",
		Long: `soft creates software devices that behave like PIV tokens (slots, PIN and
PUK tries, attestation) but keep their keys in files. They are INSECURE:
use them for rehearsals, demos and tests, never for a real repository.`,
	}
	var caDir, dir, kdf string
	var serial uint32
	ca := &cobra.Command{
		Use:     "ca --dir DIR",
		Short:   "Create a soft attestation CA",
		Example: `  keyceremony soft ca --dir devs/ca`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := soft.CreateCA(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "INSECURE soft attestation CA created in %s\n", dir)
			return nil
		},
	}
	ca.Flags().StringVar(&dir, "dir", "", "new directory for the CA")
	create := &cobra.Command{
		Use:     "create --dir DIR --serial N --ca DIR",
		Short:   "Create a soft device with factory PIN 123456 and PUK 12345678",
		Example: `  keyceremony soft create --dir devs/1 --serial 10000001 --ca devs/ca`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cost, err := soft.ParseKDF(kdf)
			if err != nil {
				return fmt.Errorf("--kdf-cost: %w", err)
			}
			c, err := soft.LoadCA(caDir)
			if err != nil {
				return err
			}
			d, err := soft.Create(dir, serial, c, soft.CreateOptions{KDF: cost})
			if err != nil {
				return err
			}
			defer d.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "%s created in %s\n", d.Info(), dir)
			if d.KDF() != soft.KDFStandard {
				fmt.Fprintf(cmd.OutOrStdout(), "kdf cost %s: INSECURE even for a soft device, for test suites only\n", d.KDF())
			}
			return nil
		},
	}
	create.Flags().StringVar(&dir, "dir", "", "new directory for the device")
	create.Flags().Uint32Var(&serial, "serial", 0, "serial number")
	create.Flags().StringVar(&caDir, "ca", "", "soft CA directory")
	create.Flags().StringVar(&kdf, "kdf-cost", string(soft.KDFStandard), `scrypt cost of the device's secrets: "standard", or "test" (INSECURE, for test suites only)`)
	var slot, pinFile string
	del := &cobra.Command{
		Use:   "delete-key --dir DIR --slot SLOT [--pin-file FILE]",
		Short: "Delete the key in a slot of a soft device (an orphan key a failed rehearsal left)",
		Long: `delete-key removes the key in one slot of a soft device, after its PIN.
A bootstrap that fails after generating keys lists each orphan key with
the command that clears it; for a soft device it is this one.`,
		Example: `  keyceremony soft delete-key --dir devs/1 --slot 9c`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := ceremony.ClearSoftKey(dir, slot, pinFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the key in slot %s of %s is deleted\n", slot, info)
			return nil
		},
	}
	del.Flags().StringVar(&dir, "dir", "", "soft device directory")
	del.Flags().StringVar(&slot, "slot", "", "slot of the key (two hex digits, such as 9c or 82)")
	del.Flags().StringVar(&pinFile, "pin-file", "", "file of 'SERIAL PIN [PUK]' lines (mode 0600); without it the PIN is read from the terminal")
	for _, c := range []*cobra.Command{ca, create, del} {
		c.MarkFlagRequired("dir")
	}
	create.MarkFlagRequired("serial")
	create.MarkFlagRequired("ca")
	del.MarkFlagRequired("slot")
	cmd.AddCommand(ca, create, del)
	return cmd
}
