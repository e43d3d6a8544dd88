package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/keys"
)

// deviceFlags select the devices a ceremony uses.
type deviceFlags struct {
	softDirs []string
	softCA   string
	pinFile  string
}

func (f *deviceFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.softDirs, "soft", nil, "INSECURE soft device directory (repeatable)")
	cmd.Flags().StringVar(&f.softCA, "soft-ca", "", "soft devices' attestation CA directory (accepted as an attestation root)")
	cmd.Flags().StringVar(&f.pinFile, "pin-file", "", "file of 'SERIAL PIN [PUK]' lines for soft devices (mode 0600); without it PINs are read from the terminal")
}

// open returns the devices by serial, the attestation roots and a PIN
// source. Real YubiKeys are the subject of the piv backend.
func (f *deviceFlags) open() (map[uint32]hsm.Device, *x509.CertPool, ceremony.PINSource, func(), error) {
	if len(f.softDirs) == 0 {
		return nil, nil, nil, nil, withHint(errors.New("no devices given"), "pass --soft DIR for each software device (YubiKey support: see docs/hardware.md)")
	}
	if f.softCA == "" {
		return nil, nil, nil, nil, withHint(errors.New("--soft-ca is required with --soft"), "the soft devices' attestations are checked against that CA")
	}
	ca, err := soft.LoadCA(f.softCA)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	devs := map[uint32]hsm.Device{}
	closeAll := func() {
		for _, d := range devs {
			d.Close()
		}
	}
	for _, dir := range f.softDirs {
		d, err := soft.Open(dir)
		if err != nil {
			closeAll()
			return nil, nil, nil, nil, err
		}
		devs[d.Info().Serial] = d
	}
	var pins ceremony.PINSource
	if f.pinFile != "" {
		secrets, err := soft.ReadPINFile(f.pinFile)
		if err != nil {
			closeAll()
			return nil, nil, nil, nil, err
		}
		pins = func(info hsm.Info) (string, error) {
			s, ok := secrets[info.Serial]
			if !ok {
				return "", fmt.Errorf("%s has no line in %s", info, f.pinFile)
			}
			return s.PIN, nil
		}
	} else {
		pins = terminalPIN
	}
	return devs, ca.Pool(), pins, closeAll, nil
}

// terminalPIN asks for a device's PIN on the terminal, showing its serial
// and the tries left.
func terminalPIN(info hsm.Info) (string, error) {
	t, err := tui.Open()
	if err != nil {
		return "", err
	}
	defer t.Close()
	return t.Secret(fmt.Sprintf("PIN for %s: ", info))
}

func newBootstrapCommand() *cobra.Command {
	var cfgFile, out string
	var df deviceFlags
	cmd := &cobra.Command{
		Use:   "bootstrap --config FILE --out DIR --soft DIR... --soft-ca DIR [--pin-file FILE]",
		Short: "Generate root, targets and stable keys on devices and write root v1, targets v1 and stable v1",
		Long: `bootstrap is the first ceremony. For every key the configuration names it
generates the key in the given slot of the given device (refusing an
occupied slot), verifies the device's attestation that the key was made
inside it and is the key written into the metadata, and then writes, into
DIR: metadata/1.root.json, 1.targets.json (delegating to stable first and
unstable second, both non-terminating) and an empty 1.stable.json; the
public keys and attestation chains; a run sheet; and a hash-chained
transcript. DIR must not exist or be empty; it appears only on success.`,
		Example: `  keyceremony bootstrap --config bootstrap.json --out /media/usb/bootstrap \
      --soft devs/1 --soft devs/2 --soft devs/3 --soft-ca devs/ca --pin-file pins.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgFile == "" || out == "" {
				return withHint(errors.New("--config and --out are required"), "see keyceremony bootstrap --help for the configuration format")
			}
			cfg, err := ceremony.LoadConfig(cfgFile)
			if err != nil {
				return err
			}
			devs, roots, pins, closeAll, err := df.open()
			if err != nil {
				return err
			}
			defer closeAll()
			b := &ceremony.Bootstrap{Config: cfg, Devices: devs, PIN: pins, Roots: roots, Now: time.Now().UTC(), Show: cmd.OutOrStdout(), Version: version()}
			res, err := b.Run(out)
			if err != nil {
				if errors.Is(err, hsm.ErrSlotOccupied) {
					return withHint(err, "keyceremony never replaces a key; use a fresh device or another slot")
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nbootstrap written to %s\ntranscript digest (read it aloud):\n%s\n", out, keys.HexGroups(res.Transcript[:]))
			for i, w := range keys.PGPWords(res.Transcript[:]) {
				sep := " "
				if i%8 == 7 {
					sep = "\n"
				}
				fmt.Fprint(cmd.OutOrStdout(), w+sep)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "bootstrap configuration (JSON; see docs)")
	cmd.Flags().StringVar(&out, "out", "", "output directory (must not exist or be empty)")
	df.register(cmd)
	return cmd
}
