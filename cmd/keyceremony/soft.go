package main

import (
	"fmt"

	"github.com/spf13/cobra"

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
	for _, c := range []*cobra.Command{ca, create} {
		c.MarkFlagRequired("dir")
	}
	create.MarkFlagRequired("serial")
	create.MarkFlagRequired("ca")
	cmd.AddCommand(ca, create)
	return cmd
}
