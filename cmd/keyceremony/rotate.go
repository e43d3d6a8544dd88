package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/stableset"
)

func newRotateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Replace keys after a loss or a compromise",
		Long: `rotate writes the metadata that revokes and replaces keys, with a checklist
for the repository's operators. See docs/runbook-incident.md.`,
	}
	cmd.AddCommand(newRotateRootCommand(), newRotateKeyCommand("targets"), newRotateKeyCommand("stable"), newRotateOnlineCommand(), newRotateKeyholderCommand())
	return cmd
}

func newRotateRootCommand() *cobra.Command {
	var o ceremony.RotateRootOptions
	var df deviceFlags
	var device uint32
	cmd := &cobra.Command{
		Use:   "root (--replace KEYID | --add) --device SERIAL --slot SLOT --root FILE --published DIR --config FILE --media DIR [devices]",
		Short: "Replace a root key whose device was lost or compromised, or add one for a new keyholder",
		Long: `root replaces one root key: it verifies the published root chain from the
trusted root, generates a new key in --slot of the replacement device
--device and verifies its attestation, and signs root vN+1, which drops the
key --replace and lists the new one, with the threshold of the old root
(without the revoked key: it never signs) and the threshold of the new one,
as TUF clients require. Everything that can be checked is checked before the
key is generated: the key is a root key, the old threshold is present
without it, the slot is empty, the replacement device holds no other root
key and its attestation chains to the trusted roots. It writes to the new
directory --media: metadata/N.root.json, keys/ (the new key and its
attestation), rotation-checklist.md (what to publish, in what order, what to
revoke) and transcript.jsonl, and reads them back. Key policy and the new
root's expiry come from --config.

With --add instead of --replace, a keyholder joins: root vN+1 keeps every
root key and the threshold of vN and adds the new key, generated and attested
on the new keyholder's device --device; it is signed by the old root's
threshold and by the new one's (the new key among them). The checklist says
what to add to the configuration.`,
		Example: `  keyceremony rotate root --replace 9f2c...e1 --device 10000004 --slot 9c --reason "device lost" \
      --root 1.root.json --published /media/usb/current --config bootstrap.json --media /media/usb/rotate-root --piv
  keyceremony verify --root 1.root.json --previous /media/usb/current /media/usb/rotate-root
  keyceremony rotate root --add --device 10000005 --slot 9c --reason "Erin joins" \
      --root 1.root.json --published /media/usb/current --config bootstrap.json --media /media/usb/add-root --piv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (o.Replace == "") == !o.Add {
				return usage("give one of --replace KEYID and --add", "--replace revokes a lost or compromised root key; --add adds a key for a keyholder who joins")
			}
			if device == 0 || o.New.Slot == "" {
				return usage("--device and --slot are required", "name the device and slot where the new root key is generated")
			}
			if err := requireOffline("rotate root", o.Root, o.Published, o.Config, o.Media); err != nil {
				return err
			}
			o.New.Device = device
			o.Devices, o.Now, o.Show, o.Version = df.options(cmd), time.Now().UTC(), cmd.OutOrStdout(), version()
			res, err := ceremony.RunRotateRoot(o)
			if err != nil {
				return err
			}
			if o.Add {
				fmt.Fprintf(cmd.OutOrStdout(), "\nroot v%d (was v%d) adds %s and revokes nothing; written to %s and verified; the checklist is %s\n", res.Version, res.Previous, res.Added[0], o.Media, ceremony.RotationChecklist)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "\nroot v%d (was v%d) revokes %s and adds %s; written to %s and verified; the checklist is %s\n", res.Version, res.Previous, res.Revoked[0], res.Added[0], o.Media, ceremony.RotationChecklist)
			}
			showTranscriptDigest(cmd, res.Transcript)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Replace, "replace", "", "key id of the root key revoked")
	cmd.Flags().BoolVar(&o.Add, "add", false, "add a root key for a keyholder who joins, revoking none (instead of --replace)")
	cmd.Flags().Uint32Var(&device, "device", 0, "serial of the replacement device (with --add: the new keyholder's device)")
	cmd.Flags().StringVar(&o.New.Slot, "slot", "", "slot of the replacement device the new root key is generated in (e.g. 9c)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "what happened (\"device lost\", \"key compromised\", \"keyholder left\"), recorded in the transcript and the checklist")
	offlineFlags(cmd, &o.Root, &o.Published, &o.Config, &o.Media, "the ceremony configuration (key policy; expires_days.root gives the new root's expiry)")
	cmd.Flags().BoolVar(&o.AllowAffectedFirmware, "allow-affected-firmware", false, "allow the new root key on firmware affected by Yubico advisory YSA-2024-03")
	df.register(cmd)
	return cmd
}

func newRotateOnlineCommand() *cobra.Command {
	var o ceremony.RotateOnlineOptions
	var df deviceFlags
	cmd := &cobra.Command{
		Use:   "online --root FILE --published DIR --config FILE --media DIR [devices]",
		Short: "Replace the repository's online keys (snapshot, timestamp, unstable) after a compromise",
		Long: `online answers a compromise of the repository's servers. The configuration's
"online" object holds the NEW public keys of snapshot, timestamp and unstable,
from clean servers: every one must be new (a key the published metadata
gives an online role is refused, as is an offline role's key). It verifies
the published root chain and targets from the trusted root and signs root
vN+1, giving snapshot and timestamp the new keys (with the root threshold),
and targets vM+1, delegating unstable to the new keys (with the targets
threshold); nothing else changes. It writes to the new directory --media:
metadata/N.root.json, metadata/M.targets.json, rotation-checklist.md (what
the repository signs with the new keys, at what versions, in what order)
and transcript.jsonl, and reads them back.

With --export (the repository's current export), it also makes PEP 458's
recovery comparison: every stable path whose length or sha256 in the export
differs from the last stable set the ceremony signed (the ledger under
--published, checked against the digest stable signed), and every stable
path the export no longer lists. They are written to
recovery-comparison.txt, listed in the checklist and recorded in the
transcript; verify checks them (and recomputes them with its --export).`,
		Example: `  keyceremony rotate online --reason "servers compromised" --root 1.root.json --published /media/usb/current \
      --export /media/usb/current/export.jsonl --config new-online.json --media /media/usb/rotate-online --piv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireOffline("rotate online", o.Root, o.Published, o.Config, o.Media); err != nil {
				return err
			}
			o.Devices, o.Now, o.Show, o.Version = df.options(cmd), time.Now().UTC(), cmd.OutOrStdout(), version()
			res, err := ceremony.RunRotateOnline(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nroot v%d and targets v%d revoke %d online keys and add %d; written to %s and verified; the checklist is %s\n", res.RootVersion, res.TargetsVersion, len(res.Revoked), len(res.Added), o.Media, ceremony.RotationChecklist)
			if r := res.Recovery; r != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "the export against stable v%d: of %d stable paths, %d changed and %d missing (%s)\n", r.StableVersion, r.Stable, r.Count(stableset.RecoveryChanged), r.Count(stableset.RecoveryMissing), ceremony.RecoveryComparison)
				for _, f := range r.Findings {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s %s\n", f.Finding, f.Path)
				}
			}
			showTranscriptDigest(cmd, res.Transcript)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Reason, "reason", "", "what happened, recorded in the transcript and the checklist")
	cmd.Flags().StringVar(&o.Export, "export", "", "the repository's current export, compared with the last stable set the ceremony signed (PEP 458's recovery step)")
	offlineFlags(cmd, &o.Root, &o.Published, &o.Config, &o.Media, "the ceremony configuration with the NEW online public keys (expires_days gives the new root's and targets' expiry)")
	df.register(cmd)
	return cmd
}

func newRotateKeyCommand(role string) *cobra.Command {
	o := ceremony.RotateKeyOptions{Role: role}
	var df deviceFlags
	var device uint32
	long := map[string]string{
		"targets": `targets replaces one targets key: it signs root vN+1, which gives targets the
new key instead of --replace (with the root threshold), and targets vM+1,
unchanged but for version and expiry, with the new targets threshold (the
remaining targets keys and the new one; the revoked key never signs).`,
		"stable": `stable replaces one stable key: it signs targets vM+1, which delegates stable
to the new key instead of --replace (with the targets threshold), and stable
vK+1, the published stable vK unchanged but for version and expiry (the same
ledger, bins and bin keys), with the new stable threshold (the remaining
stable keys and the new one; the revoked key never signs). The published
stable must be the one the backup medium's newest state names (--backup,
the stable ceremony's backup medium), byte for byte; the rotation appends
state K+1 to it, from which the next stable signing goes on to K+2. If the
bins expire before the new stable, it says so.`,
	}[role]
	cmd := &cobra.Command{
		Use:   role + " --replace KEYID --device SERIAL --slot SLOT --root FILE --published DIR --config FILE --media DIR " + map[string]string{"stable": "--backup DIR "}[role] + "[devices]",
		Short: "Replace a " + role + " key whose device was lost or compromised",
		Long: long + `

The new key is generated in --slot of the replacement device --device and its
attestation verified; everything that can be checked is checked first. It
writes to the new directory --media the new metadata, keys/ (the new key and
its attestation), rotation-checklist.md and transcript.jsonl, and reads them
back. See docs/runbook-incident.md.`,
		Example: "  keyceremony rotate " + role + " --replace 9f2c...e1 --device 10000004 --slot " + map[string]string{"targets": "82", "stable": "83"}[role] + ` --reason "device lost" \
      --root 1.root.json --published /media/usb/current --config bootstrap.json --media /media/usb/rotate-` + role + map[string]string{"stable": " --backup /media/usb/backup"}[role] + ` --piv
  keyceremony verify --root 1.root.json --previous /media/usb/current /media/usb/rotate-` + role,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Replace == "" || device == 0 || o.New.Slot == "" {
				return usage("--replace, --device and --slot are required", "name the revoked "+role+" key by its key id and where its replacement is generated")
			}
			if err := requireOffline("rotate "+role, o.Root, o.Published, o.Config, o.Media); err != nil {
				return err
			}
			if role == "stable" && o.Backup == "" {
				return usage("--backup is required", "name the stable ceremony's backup medium: the published stable is checked against it, and the rotation records stable's new version on it")
			}
			o.New.Device = device
			o.Devices, o.Now, o.Show, o.Version = df.options(cmd), time.Now().UTC(), cmd.OutOrStdout(), version()
			res, err := ceremony.RunRotateKey(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%s revokes %s key %s and adds %s; written to %s and verified; the checklist is %s\n", strings.Join(res.Files, " and "), role, res.Revoked[0], res.Added[0], o.Media, ceremony.RotationChecklist)
			if res.State != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "stable v%d signed again as v%d by the new stable keys, expires %s\n", res.StableVersion-1, res.StableVersion, res.StableExpires.Format(time.RFC3339))
				if res.BinsExpireFirst() {
					fmt.Fprintf(cmd.OutOrStdout(), "WARNING: its bins expire %s, before it: hold a stable signing before then\n", res.BinsExpire.Format(time.RFC3339))
				}
				showState(cmd.OutOrStdout(), res.State, res.StateFile)
			}
			showTranscriptDigest(cmd, res.Transcript)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Replace, "replace", "", "key id of the "+role+" key revoked")
	cmd.Flags().Uint32Var(&device, "device", 0, "serial of the replacement device")
	cmd.Flags().StringVar(&o.New.Slot, "slot", "", "slot of the replacement device the new key is generated in")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "what happened, recorded in the transcript and the checklist")
	offlineFlags(cmd, &o.Root, &o.Published, &o.Config, &o.Media, "the ceremony configuration (key policy; expires_days)")
	if role == "stable" {
		cmd.Flags().StringVar(&o.Backup, "backup", "", "the stable ceremony's backup medium: checked against the published stable, and given the rotation's state")
	}
	df.register(cmd)
	return cmd
}

func newRotateKeyholderCommand() *cobra.Command {
	var o ceremony.HandoverOptions
	var df deviceFlags
	cmd := &cobra.Command{
		Use:   "keyholder --device SERIAL --to NAME --root FILE --published DIR --config FILE --media DIR [devices]",
		Short: "Record a device passing to a new keyholder, who sets a new PIN",
		Long: `keyholder records, in the room, that a device and its keys pass from the
keyholder the configuration names to --to. No key and no metadata change:
the outgoing keyholder types the PIN, every root, targets or stable key of
the published metadata that the device holds signs a statement naming the
device, both people and the time, and the incoming keyholder types a new PIN
twice on the terminal, which replaces the old one. It writes to the new
directory --media: handover-statement.txt, handover-checklist.md and
transcript.jsonl. If the device may have been out of anyone's sight, replace
its keys instead (rotate root, targets, stable).`,
		Example: `  keyceremony rotate keyholder --device 10000002 --to "Dora Example" --root 1.root.json \
      --published /media/usb/current --config bootstrap.json --media /media/usb/handover-10000002 --piv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Device == 0 || o.To == "" {
				return usage("--device and --to are required", "name the device handed over and its new keyholder")
			}
			if err := requireOffline("rotate keyholder", o.Root, o.Published, o.Config, o.Media); err != nil {
				return err
			}
			o.Devices, o.Now, o.Show, o.Version = df.options(cmd), time.Now().UTC(), cmd.OutOrStdout(), version()
			res, err := ceremony.RunHandover(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\ndevice %d passed from %q to %q with %d keys, new PIN set; recorded in %s; the checklist is %s\n", res.Device, res.From, res.To, len(res.Keys), o.Media, ceremony.HandoverChecklist)
			showTranscriptDigest(cmd, res.Transcript)
			return nil
		},
	}
	cmd.Flags().Uint32Var(&o.Device, "device", 0, "serial of the device handed over")
	cmd.Flags().StringVar(&o.To, "to", "", "name of the new keyholder")
	offlineFlags(cmd, &o.Root, &o.Published, &o.Config, &o.Media, "the ceremony configuration (its keyholders name the outgoing keyholder)")
	df.register(cmd)
	return cmd
}

// offlineFlags registers the inputs every renewal, rotation and handover
// reads: the trusted root, the published metadata, the configuration
// (what it is for: configUsage) and the new output directory.
func offlineFlags(cmd *cobra.Command, root, published, config, media *string, configUsage string) {
	cmd.Flags().StringVar(root, "root", "", "trusted root (e.g. 1.root.json from the bootstrap media)")
	cmd.Flags().StringVar(published, "published", "", "directory with the published metadata/")
	cmd.Flags().StringVar(config, "config", "", configUsage)
	cmd.Flags().StringVar(media, "media", "", "new output directory on the removable media")
}

// requireOffline refuses a renewal, rotation or handover (the command
// name, e.g. "rotate root") missing one of offlineFlags.
func requireOffline(name, root, published, config, media string) error {
	if root == "" || published == "" || config == "" || media == "" {
		return usage("--root, --published, --config and --media are required", "see keyceremony "+name+" --help")
	}
	return nil
}

// showTranscriptDigest shows a ceremony's transcript digest for the run
// sheet.
func showTranscriptDigest(cmd *cobra.Command, d [32]byte) {
	tui.ShowDigest(cmd.OutOrStdout(), "transcript digest (read it aloud; write it on the run sheet):", d[:])
}
