package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/stableset"
)

// registerStable registers the flags of stable diff and stable sign; it
// returns the --now flag's value, for stableInputs.
func registerStable(cmd *cobra.Command, o *ceremony.StableOptions) *string {
	var now string
	cmd.Flags().StringVar(&o.Export, "export", "", "the repository export (JSON Lines, docs/export-format.md)")
	cmd.Flags().StringVar(&o.Published, "published", "", "directory with the published metadata/ and ledger/")
	cmd.Flags().StringVar(&o.Root, "root", "", "trusted root (e.g. 1.root.json from the bootstrap media)")
	cmd.Flags().StringVar(&o.Policy, "policy", "", "policy file (default: the built-in policy, docs/policy.md)")
	cmd.Flags().StringVar(&o.Decisions, "decisions", "", "the room's decisions file: each changed path kept, accepted or dropped, each count above confirm_above confirmed, each stable file taken down or takedown lifted, with a reason (docs/policy.md)")
	cmd.Flags().StringVar(&o.Backup, "backup", "", "the backup medium the ceremony keeps (made by 'bootstrap --backup'; required by sign): the published state must be its newest state; sign records the new state there")
	cmd.Flags().StringVar(&now, "now", "", "the ceremony's clock, RFC 3339 UTC (default: this machine's clock; the room confirms it against a watch)")
	cmd.Flags().StringVar(&o.WorkDir, "work-dir", "", "directory for temporary work files (default: the system's temporary directory); several GB at PyPI's scale")
	return &now
}

// stableInputs checks the required inputs and fills in the time and
// version.
func stableInputs(o *ceremony.StableOptions, now string) error {
	if o.Export == "" || o.Published == "" || o.Root == "" {
		return usage("--export, --published and --root are required", "see keyceremony stable --help")
	}
	o.Now, o.Version = time.Now().UTC().Truncate(time.Second), version()
	if now != "" {
		t, err := time.Parse(time.RFC3339, now)
		if err != nil || t.Location() != time.UTC {
			return usage(fmt.Sprintf("--now %q", now), "give the ceremony's clock as RFC 3339 UTC, such as 2026-01-02T15:04:05Z")
		}
		o.Now = t
	}
	return nil
}

func newStableCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stable",
		Short: "Review and sign the stable set",
		Long: `stable compares the repository's export with the published stable set
under the policy, shows the diff, and signs exactly the diff whose digest the
keyholders approved. See docs/stable-pipeline.md.`,
	}
	cmd.AddCommand(newStableDiffCommand(), newStableReviewCommand(), newStableSignCommand())
	return cmd
}

func newStableDiffCommand() *cobra.Command {
	var o ceremony.StableOptions
	var format string
	var full bool
	var now *string
	cmd := &cobra.Command{
		Use:   "diff --export FILE --published DIR --root FILE [--backup DIR] [--now TIME] [--policy FILE] [--decisions FILE] [--full] [--format text|json]",
		Short: "Show what a stable signing would change, and the digest to approve",
		Long: `diff reads the whole export, verifies the published stable set from the
trusted root, applies the policy and the decisions, and prints a summary on
one screen: the export's and the policy's digests, the previous stable
version and ledger, the files per category and reason (added; held back:
too young, excluded, not nominated, backdated, relisted; removed; changed:
kept-old, accepted, dropped; unchanged), the largest projects by change,
the confirm_above limits and the decisions they demand, and the digest that
'stable sign --approve' must name, with its check words. --full adds every
entry but the unchanged ones, by project then version. Nothing is signed; with --backup the pass is kept in --work-dir for
'stable sign --batch --approve' (docs/runbook-stable.md). To decide the
red flags one at a time on a terminal, use 'stable review' (its prompt's
'decide' writes a decisions file) or the guided 'stable sign'.

With --backup (the backup medium the ceremony keeps; 'stable sign' requires
it), the published state (stable version, ledger digest, listing time) must
be its newest state and the export must be for its repository, and the text
summary ends with that state's check words; without it (an auditor
recomputing a diff) a note on stderr says the check was not made. --now
(default: this machine's clock) must not be earlier than the published
listing or the backup medium's newest times, and the export must not be
dated after it by more than 10 minutes.`,
		Example: `  keyceremony stable diff --export export.jsonl --published /media/usb/current --root 1.root.json --backup /media/backup
  keyceremony stable diff --export export.jsonl --published current --root 1.root.json --backup /media/backup --decisions decisions.jsonl --full
  keyceremony stable diff --export export.jsonl --published current --root 1.root.json --backup /media/backup --now 2026-03-02T10:00:00Z --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := stableInputs(&o, *now); err != nil {
				return err
			}
			var write func(*stableset.Diff, io.Writer) error
			switch {
			case format == "text" && full:
				write = (*stableset.Diff).WriteFullText
			case format == "text":
				write = (*stableset.Diff).WriteText
			case format == "json" && full:
				write = (*stableset.Diff).WriteFullJSON
			case format == "json":
				write = (*stableset.Diff).WriteJSON
			default:
				return usage(fmt.Sprintf("--format %q", format), "use text or json")
			}
			d, err := ceremony.RunStableDiff(o)
			if err != nil {
				return err
			}
			defer d.Close()
			if err := write(d, cmd.OutOrStdout()); err != nil {
				return err
			}
			if o.Backup == "" {
				return showBackup(cmd, &o, false) // says the state was not checked
			}
			// A ceremony's diff: kept for 'stable sign --batch', which
			// signs from it when every input is the same.
			kept, err := d.Keep(o.WorkDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "reviewed pass kept in %s: 'stable sign --batch --approve %s' with the same inputs signs from it\n", kept, d.Digest)
			return showBackup(cmd, &o, format == "text")
		},
	}
	now = registerStable(cmd, &o)
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.Flags().BoolVar(&full, "full", false, "list every entry but the unchanged ones, by project then version, after the summary")
	return cmd
}

func newStableSignCommand() *cobra.Command {
	var o ceremony.StableSignOptions
	var df deviceFlags
	var now *string
	var gf guidedFlags
	cmd := &cobra.Command{
		Use:   "sign --export FILE --published DIR --root FILE --backup DIR [--now TIME] [--policy FILE] [--decisions FILE] --media DIR (--config FILE | --batch --approve DIGEST [--network-ack IFACES]) [devices]",
		Short: "Sign the stable set whose diff digest the keyholders approved",
		Long: `sign recomputes the diff and refuses unless --approve names its digest
exactly and every confirm_above limit the diff crosses is settled by
--decisions (naming the limit and the count otherwise). In the batch form
it signs from the pass 'stable diff --backup' kept in --work-dir for that
digest when the export, policy, decisions and published state are the same
(checked against the approved digest first; an edited pass is refused),
and otherwise says why and reads the export again. It then signs the bins with a key made in memory for this ceremony
and discarded, has the stable keyholders' devices sign stable and the diff,
and writes to the new directory --media: stable/ (metadata, ledger, index
pages, snapshot fragment), signed-diff.json, policy.json (the exact policy
file applied), decisions.jsonl, diff.txt, diff.canonical and
transcript.jsonl. Everything is read back and verified before it reports
success; on any failure nothing is left behind. Then the new state (stable
version, ledger digest, listing time, signed diff and transcript digests) is
written to --backup as a new state/N.json and shown as check words for the
paper run sheet.

On a terminal the signing is guided (docs/runbook-stable.md) and needs
--config, the bootstrap configuration naming the keyholders and devices:
the numbered steps of the run sheet, the network interfaces acknowledged by
name, the clock confirmed, the diff's summary shown, then each red flag
that --decisions does not settle on its own screen, for the room to type
its decision by name and a reason (docs/policy.md, "Red flags"; the
export is then read again with them, and they go to decisions.jsonl and
the signed diff), the final summary and digest shown, and each
keyholder types the digest's check words before their PIN (that is the
approval; --approve is optional: with decisions made in the room the
digest is another one). --batch, or no terminal, needs --approve
and refuses to start while network interfaces other than loopback are up
unless --network-ack names them all.`,
		Example: `  keyceremony stable sign --export export.jsonl --published current --root 1.root.json --backup /media/backup \
      --media /media/usb/stable-7 --approve 3f5a...e1 --soft devs/1 --soft devs/2 --soft-ca devs/ca`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			guided := gf.guided(cmd)
			switch {
			case !guided && (o.Media == "" || o.Approve == ""):
				return usage("--media and --approve are required", "run 'keyceremony stable diff' first and approve the digest it prints")
			case o.Media == "":
				return usage("--media is required", "name a new directory on the output medium")
			case guided && o.Config == "":
				return usage("--config is required for the guided signing", "pass the bootstrap configuration: it names the keyholders and their devices (or --batch with --approve)")
			}
			if err := stableInputs(&o.StableOptions, *now); err != nil {
				return err
			}
			if o.Backup == "" {
				return usage("--backup is required", "name the backup medium the ceremony keeps (made by 'keyceremony bootstrap --backup'): the published state is checked against its newest state, and the new state is written there")
			}
			o.Devices, o.Show = df.options(cmd), cmd.OutOrStdout()
			g, t, ack, err := gf.open(cmd)
			if err != nil {
				return err
			}
			if t != nil {
				defer t.Close()
				o.Show = t
			}
			o.Guide, o.NetworkAck, o.Interfaces = g, ack, interfaces
			res, err := ceremony.RunStableSign(o)
			if err != nil {
				return err
			}
			defer res.Diff.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "\nstable v%d written to %s and verified\n", res.StableVersion, o.Media)
			if g == nil { // the guided ceremony showed it in its step
				tui.ShowDigest(cmd.OutOrStdout(), "transcript digest (read it aloud; write it on the run sheet):", res.Transcript[:])
			}
			showState(cmd.OutOrStdout(), res.State, res.StateFile)
			return nil
		},
	}
	now = registerStable(cmd, &o.StableOptions)
	df.register(cmd)
	cmd.Flags().StringVar(&o.Media, "media", "", "new output directory on the removable media")
	cmd.Flags().StringVar(&o.Approve, "approve", "", "the diff digest the keyholders approved (required with --batch)")
	cmd.Flags().StringVar(&o.Config, "config", "", "the bootstrap configuration, naming the keyholders and devices (required for the guided signing)")
	gf.register(cmd)
	return cmd
}

// showBackup ends a text summary (text) with the backup medium's newest
// state and its check words, which the room compares with the last run
// sheet; without --backup it notes on stderr that the published state was
// not checked.
func showBackup(cmd *cobra.Command, o *ceremony.StableOptions, text bool) error {
	if o.Backup == "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "note: no --backup: the published state was not checked against the ceremony's backup medium (stable sign requires it)")
		return nil
	}
	if !text {
		return nil
	}
	prev, err := ceremony.PreviousFromBackup(o.Backup)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "\nbackup medium: newest state stable v%d, the %s ceremony of %s (%s)\n", prev.StableVersion, prev.Ceremony, prev.Time.UTC().Format(time.RFC3339), prev.File)
	tui.ShowDigest(cmd.OutOrStdout(), "  its check words (compare them with the last run sheet):", prev.StateSHA256[:])
	return nil
}

// showState prints a new backup state's file and check words.
func showState(w io.Writer, s *ceremony.BackupState, file string) {
	d := s.CheckDigest()
	fmt.Fprintf(w, "backup state stable v%d written to %s\n", s.StableVersion, file)
	tui.ShowDigest(w, "backup state check words (write them on the run sheet; the next ceremony's sheet shows them to compare):", d[:])
}
