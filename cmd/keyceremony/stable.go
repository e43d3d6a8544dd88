package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/tuf"
)

// stableFlags are shared by stable diff and stable sign.
type stableFlags struct {
	export, published, root, policy, work string
	accept                                []string
}

func (f *stableFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.export, "export", "", "the repository export (JSON Lines, docs/export-format.md)")
	cmd.Flags().StringVar(&f.published, "published", "", "directory with the published metadata/ and ledger/")
	cmd.Flags().StringVar(&f.root, "root", "", "trusted root (e.g. 1.root.json from the bootstrap media)")
	cmd.Flags().StringVar(&f.policy, "policy", "", "policy file (default: the built-in policy, docs/policy.md)")
	cmd.Flags().StringSliceVar(&f.accept, "accept", nil, "a changed path whose new content is accepted (repeatable)")
	cmd.Flags().StringVar(&f.work, "work-dir", "", "directory for temporary work files (default: the system's temporary directory); several GB at PyPI's scale")
}

func (f *stableFlags) signing() (*ceremony.StableSigning, error) {
	if f.export == "" || f.published == "" || f.root == "" {
		return nil, withHint(errors.New("--export, --published and --root are required"), "see keyceremony stable --help")
	}
	data, err := os.ReadFile(f.root)
	if err != nil {
		return nil, fmt.Errorf("reading the trusted root: %w", err)
	}
	root, err := tuf.Load[tuf.Root](data, f.root)
	if err != nil {
		return nil, err
	}
	pol := policy.Default()
	if f.policy != "" {
		if pol, err = policy.Load(f.policy); err != nil {
			return nil, err
		}
	}
	return &ceremony.StableSigning{
		Root: root, Published: f.published, Export: f.export, Policy: pol, Accept: f.accept,
		Now: time.Now().UTC(), Version: version(), TempDir: f.work,
	}, nil
}

func newStableCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stable",
		Short: "Review and sign the stable set",
		Long: `stable compares the repository's export with the published stable set
under the policy, shows the diff, and signs exactly the diff whose digest the
keyholders approved. See docs/stable-pipeline.md.`,
	}
	cmd.AddCommand(newStableDiffCommand(), newStableSignCommand())
	return cmd
}

func newStableDiffCommand() *cobra.Command {
	var f stableFlags
	var format string
	cmd := &cobra.Command{
		Use:   "diff --export FILE --published DIR --root FILE [--policy FILE] [--format text|json]",
		Short: "Show what a stable signing would change, and the digest to approve",
		Long: `diff reads the whole export, verifies the published stable set from the
trusted root, applies the policy and prints the diff: added, held back (too
young, backdated, excluded), removed, changed (kept unless accepted) and
unchanged, per project, and the digest that 'stable sign --approve' must
name. Nothing is signed or written.`,
		Example: `  keyceremony stable diff --export export.jsonl --published /media/usb/current --root 1.root.json
  keyceremony stable diff --export export.jsonl --published current --root 1.root.json --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.signing()
			if err != nil {
				return err
			}
			var write func(*stableset.Diff, io.Writer) error
			switch format {
			case "text":
				write = (*stableset.Diff).WriteText
			case "json":
				write = (*stableset.Diff).WriteJSON
			default:
				return withHint(fmt.Errorf("--format %q", format), "use text or json")
			}
			d, err := s.Diff()
			if err != nil {
				return err
			}
			defer d.Close()
			return write(d, cmd.OutOrStdout())
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

func newStableSignCommand() *cobra.Command {
	var f stableFlags
	var df deviceFlags
	var media, approve string
	cmd := &cobra.Command{
		Use:   "sign --export FILE --published DIR --root FILE --media DIR --approve DIGEST [devices]",
		Short: "Sign the stable set whose diff digest the keyholders approved",
		Long: `sign recomputes the diff and refuses unless --approve names its digest
exactly. It then signs the bins with a key made in memory for this ceremony
and discarded, has the stable keyholders' devices sign stable and the diff,
and writes to the new directory --media: stable/ (metadata, ledger, index
pages, snapshot fragment), signed-diff.json, diff.txt, diff.canonical and
transcript.jsonl. Everything is read back and verified before it reports
success; on any failure nothing is left behind.`,
		Example: `  keyceremony stable sign --export export.jsonl --published current --root 1.root.json \
      --media /media/usb/stable-7 --approve 3f5a...e1 --soft devs/1 --soft devs/2 --soft-ca devs/ca`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if media == "" || approve == "" {
				return withHint(errors.New("--media and --approve are required"), "run 'keyceremony stable diff' first and approve the digest it prints")
			}
			s, err := f.signing()
			if err != nil {
				return err
			}
			devs, _, pins, closeAll, err := df.open()
			if err != nil {
				return err
			}
			defer closeAll()
			s.Devices, s.PIN, s.Show = devs, pins, cmd.OutOrStdout()
			res, err := s.Sign(approve, media)
			if errors.Is(err, stableset.ErrApproval) {
				return withHint(err, "the export, the published set or the policy differ from what was reviewed; run 'stable diff' again")
			}
			if err != nil {
				return err
			}
			defer res.Diff.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "\nstable v%d written to %s and verified\n", res.StableVersion, media)
			tui.ShowDigest(cmd.OutOrStdout(), "transcript digest (read it aloud; write it on the run sheet):", res.Transcript[:])
			return nil
		},
	}
	f.register(cmd)
	df.register(cmd)
	cmd.Flags().StringVar(&media, "media", "", "new output directory on the removable media")
	cmd.Flags().StringVar(&approve, "approve", "", "the diff digest the keyholders approved")
	return cmd
}
