package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
)

// deviceFlags select the devices a ceremony uses: YubiKeys through PC/SC
// (--piv) or INSECURE soft devices (--soft).
type deviceFlags struct {
	opts ceremony.DeviceOptions
}

func (f *deviceFlags) register(cmd *cobra.Command) {
	o := &f.opts
	cmd.Flags().BoolVar(&o.PIV, "piv", false, "use the YubiKeys plugged in (PIV over PC/SC)")
	cmd.Flags().StringVar(&o.AttestationCA, "attestation-ca", "", "PEM file of an extra, NON-Yubico attestation root to accept with --piv --rehearsal (the PIV emulator's; never for a real repository)")
	cmd.Flags().BoolVar(&o.Rehearsal, "rehearsal", false, "allow YubiKeys still at their factory PIN, PUK or management key (rehearsals only)")
	cmd.Flags().BoolVar(&o.DestroyExistingKeys, "destroy-existing-keys-i-really-mean-it", false, "let key generation REPLACE keys already on the YubiKeys (asks you to type a confirmation)")
	cmd.Flags().StringSliceVar(&o.SoftDirs, "soft", nil, "INSECURE soft device directory (repeatable)")
	cmd.Flags().StringVar(&o.SoftCA, "soft-ca", "", "soft devices' attestation CA directory (accepted as an attestation root)")
	cmd.Flags().StringVar(&o.PINFile, "pin-file", "", "file of 'SERIAL PIN [PUK]' lines for soft devices (mode 0600); without it PINs are read from the terminal")
}

// options returns the device options, warnings going to cmd's stderr.
func (f *deviceFlags) options(cmd *cobra.Command) ceremony.DeviceOptions {
	o := f.opts
	o.Warn = cmd.ErrOrStderr()
	return o
}

func newBootstrapCommand() *cobra.Command {
	var o ceremony.BootstrapOptions
	var df deviceFlags
	var gf guidedFlags
	cmd := &cobra.Command{
		Use:   "bootstrap --config FILE --out DIR --backup DIR --soft DIR... --soft-ca DIR [--pin-file FILE] [--batch --network-ack IFACES]",
		Short: "Generate root, targets and stable keys on devices and write root v1, targets v1 and stable v1",
		Long: `bootstrap is the first ceremony. For every key the configuration names it
generates the key in the given slot of the given device (refusing an
occupied slot), verifies the device's attestation that the key was made
inside it and is the key written into the metadata, and then writes, into
DIR: metadata/1.root.json, 1.targets.json (delegating to stable first and
unstable second, both non-terminating) and an empty 1.stable.json; the
public keys and attestation chains; a run sheet; and a hash-chained
transcript. DIR must not exist or be empty; it appears only on success.
Then the bootstrap's state (repository, root, stable v1) is written to the
backup medium --backup as state/1.json, and shown as check words for the
paper run sheet: every stable ceremony checks the published state against
the backup medium's newest state.

On a terminal the ceremony is guided: every numbered step of the run sheet
is shown with who acts and waits for Enter, the network interfaces up are
acknowledged by name, the clock is confirmed, each YubiKey is asked for by
serial and keyholder, a wrong PIN is asked again with the tries left, and
each keyholder types the key id's check words before signing
(docs/runbook-bootstrap.md). --batch, or no terminal, is the form for
scripts: it refuses to start while network interfaces other than loopback
are up unless --network-ack names them all.`,
		Example: `  keyceremony bootstrap --config bootstrap.json --out /media/usb/bootstrap --backup /media/backup \
      --soft devs/1 --soft devs/2 --soft devs/3 --soft-ca devs/ca --pin-file pins.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Config == "" || o.Out == "" || o.Backup == "" {
				return usage("--config, --out and --backup are required", "see keyceremony bootstrap --help for the configuration format")
			}
			o.Devices, o.Now, o.Show, o.Version = df.options(cmd), time.Now().UTC(), cmd.OutOrStdout(), version()
			g, t, ack, err := gf.open(cmd)
			if err != nil {
				return err
			}
			if t != nil {
				defer t.Close()
				o.Show = t
			}
			o.Guide, o.NetworkAck, o.Interfaces = g, ack, interfaces
			res, err := ceremony.RunBootstrap(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nbootstrap written to %s\n", o.Out)
			if g == nil { // the guided ceremony showed it in its step
				tui.ShowDigest(cmd.OutOrStdout(), "transcript digest (read it aloud; write it on the run sheet):", res.Transcript[:])
			}
			showState(cmd.OutOrStdout(), res.State, res.StateFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Config, "config", "", "bootstrap configuration (JSON; see docs)")
	cmd.Flags().StringVar(&o.Out, "out", "", "output directory (must not exist or be empty)")
	cmd.Flags().StringVar(&o.Backup, "backup", "", "the backup medium the ceremony keeps, not the repository (an existing directory whose state/ is absent or empty): receives state/1.json")
	cmd.Flags().BoolVar(&o.AllowAffectedFirmware, "allow-affected-firmware", false, "allow root keys on firmware affected by Yubico advisory YSA-2024-03 (recorded in the transcript)")
	df.register(cmd)
	gf.register(cmd)
	return cmd
}
