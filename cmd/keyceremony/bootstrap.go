package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/keys"
)

// deviceFlags select the devices a ceremony uses: YubiKeys through PC/SC
// (--piv) or INSECURE soft devices (--soft).
type deviceFlags struct {
	softDirs  []string
	softCA    string
	pinFile   string
	piv       bool
	attestCA  string
	rehearsal bool
	destroy   bool
}

func (f *deviceFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.piv, "piv", false, "use the YubiKeys plugged in (PIV over PC/SC)")
	cmd.Flags().StringVar(&f.attestCA, "attestation-ca", "", "PEM file of an extra attestation root to accept with --piv (emulators and tests ONLY; Yubico's roots are always used)")
	cmd.Flags().BoolVar(&f.rehearsal, "rehearsal", false, "allow YubiKeys still at their factory PIN, PUK or management key (rehearsals only)")
	cmd.Flags().BoolVar(&f.destroy, "destroy-existing-keys-i-really-mean-it", false, "let key generation REPLACE keys already on the YubiKeys (asks you to type a confirmation)")
	cmd.Flags().StringSliceVar(&f.softDirs, "soft", nil, "INSECURE soft device directory (repeatable)")
	cmd.Flags().StringVar(&f.softCA, "soft-ca", "", "soft devices' attestation CA directory (accepted as an attestation root)")
	cmd.Flags().StringVar(&f.pinFile, "pin-file", "", "file of 'SERIAL PIN [PUK]' lines for soft devices (mode 0600); without it PINs are read from the terminal")
}

// open returns the devices by serial, the attestation roots and a PIN
// source.
func (f *deviceFlags) open() (map[uint32]hsm.Device, *x509.CertPool, ceremony.PINSource, func(), error) {
	switch {
	case f.piv && len(f.softDirs) > 0:
		return nil, nil, nil, nil, errors.New("--piv and --soft cannot be mixed")
	case f.piv:
		return f.openPIV()
	case len(f.softDirs) == 0:
		return nil, nil, nil, nil, withHint(errors.New("no devices given"), "pass --piv for the YubiKeys plugged in, or --soft DIR for each software device")
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
		pins = func(info hsm.Info, _ int) (string, error) {
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

func (f *deviceFlags) openPIV() (map[uint32]hsm.Device, *x509.CertPool, ceremony.PINSource, func(), error) {
	if f.pinFile != "" {
		return nil, nil, nil, nil, withHint(errors.New("--pin-file is for soft devices only"), "YubiKey PINs are typed on the terminal")
	}
	roots := keys.YubicoRoots()
	if f.attestCA != "" {
		pemBytes, err := os.ReadFile(f.attestCA)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("reading --attestation-ca: %w", err)
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, nil, nil, nil, fmt.Errorf("--attestation-ca %s: no PEM certificate", f.attestCA)
		}
	}
	if f.destroy {
		t, err := tui.Open()
		if err != nil {
			return nil, nil, nil, nil, err
		}
		ok, err := t.Confirm("--destroy-existing-keys-i-really-mean-it: keys already in the configured slots will be DESTROYED and cannot be recovered.", "destroy keys")
		t.Close()
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if !ok {
			return nil, nil, nil, nil, errors.New("not confirmed: no key was touched")
		}
	}
	list, err := piv.OpenAll(piv.Options{Roots: roots, Rehearsal: f.rehearsal, DestroyExistingKeysIReallyMeanIt: f.destroy})
	if err != nil {
		return nil, nil, nil, nil, withHint(err, "is pcscd running and are the YubiKeys plugged in? 'keyceremony device list' shows what is seen")
	}
	devs := map[uint32]hsm.Device{}
	for _, d := range list {
		devs[d.Info().Serial] = d
	}
	closeAll := func() {
		for _, d := range list {
			d.Close()
		}
	}
	return devs, roots, terminalPIN, closeAll, nil
}

// terminalPIN asks for a device's PIN on the terminal, showing its serial
// and the tries left.
func terminalPIN(info hsm.Info, tries int) (string, error) {
	t, err := tui.Open()
	if err != nil {
		return "", err
	}
	defer t.Close()
	left := ""
	if tries >= 0 {
		left = fmt.Sprintf(" (%d tries left)", tries)
	}
	return t.Secret(fmt.Sprintf("PIN for %s%s: ", info, left))
}

func newBootstrapCommand() *cobra.Command {
	var cfgFile, out string
	var allowAffected bool
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
			b := &ceremony.Bootstrap{Config: cfg, Devices: devs, PIN: pins, Roots: roots, Now: time.Now().UTC(), Show: cmd.OutOrStdout(), Version: version(), AllowAffectedFirmware: allowAffected}
			res, err := b.Run(out)
			if err != nil {
				if errors.Is(err, hsm.ErrSlotOccupied) {
					return withHint(err, "keyceremony never replaces a key; use a fresh device or another slot")
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nbootstrap written to %s\n", out)
			tui.ShowDigest(cmd.OutOrStdout(), "transcript digest (read it aloud; write it on the run sheet):", res.Transcript[:])
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "bootstrap configuration (JSON; see docs)")
	cmd.Flags().StringVar(&out, "out", "", "output directory (must not exist or be empty)")
	cmd.Flags().BoolVar(&allowAffected, "allow-affected-firmware", false, "allow root keys on firmware affected by Yubico advisory YSA-2024-03 (recorded in the transcript)")
	df.register(cmd)
	return cmd
}
