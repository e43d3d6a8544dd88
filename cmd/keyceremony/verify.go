package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
)

// Exit statuses of verify and status (docs/audit.md).
const (
	exitInvalid  = 1 // verify: the medium does not verify; status: something expires within the margin
	exitUnusable = 2 // the command could not run: usage, or an input could not be read
)

func newVerifyCommand() *cobra.Command {
	var o ceremony.AuditOptions
	var at, format string
	cmd := &cobra.Command{
		Use:   "verify --root TRUSTED_ROOT [flags] DIR",
		Short: "Verify bootstrap media, stable media or a repository from a trusted root (no hardware needed)",
		Long: `verify checks, from a root you already trust, whatever a ceremony wrote.
It recognises the medium DIR is:

  bootstrap media   the root chain, targets (stable delegated first), the
                    empty stable, each key's attestation chain (to Yubico's
                    roots, or in a rehearsal to --attestation-ca or
                    --soft-ca) with serial, slot, PIN and touch policy and
                    public key matching the metadata and the transcript,
                    the transcript's hash chain from start to end, the run
                    sheet
  stable media      stable and every mid role and leaf bin against the
                    targets of --repository (or --previous, if that is
                    bootstrap media or a repository), expiries, the ledger,
                    the signed diff's signatures by the stable threshold and
                    its statement against the ledger and policy.json, the
                    transcript against the signed diff
  a repository      (holding metadata/timestamp.json, or that directory
                    itself) the root chain, every role's signatures and
                    threshold with key ids recomputed, versions, lengths and
                    hashes against snapshot, expiries, and the delegation
                    layout down to every stable bin

Renewal, rotation and handover media are checked against --previous (the
bootstrap media or repository they started from), each with its
transcript's signed end (transcript.dsse.json) by the keys that authorised
it. An online rotation's medium includes its recovery comparison; with --export FILE
that comparison is recomputed from the export and the ledger in --previous.
A stable medium given --export FILE and --previous has its signed diff
recomputed: FILE must be the export the signed diff names, and the diff
pass run again from it, the previous medium's ledger and the medium's
policy.json and decisions.jsonl must give the signed canonical diff,
counts, new ledger and taken-down paths (a mismatch names the first
differing line, count or path). --previous is then the previous stable
medium, the bootstrap media or the repository as it was (its top
directory: the ledger is a target under targets/).

With --previous DIR, no version of root, targets, stable, snapshot or
timestamp may go back against that earlier medium, one version must be one
document, and a stable medium's signed diff must start from the previous
medium's stable version and ledger when it is the direct successor. A
rotation's medium may be --previous too (give as --root the root it started
from): a repository still serving the older root is refused.

It prints what it checked (--format json for tools: the same content) and
exits 0 if everything verified, 1 if the medium does not verify (naming the
check, file, role or key at fault), 2 if it could not verify: a usage error,
an input that cannot be read, a directory that is no medium.
See docs/audit.md.`,
		Example: `  keyceremony verify --root trusted/1.root.json /media/usb/bootstrap
  keyceremony verify --root trusted/1.root.json --repository /media/usb/bootstrap /media/usb/stable-7
  keyceremony verify --root 1.root.json --previous ./repo-last-week --at 2027-01-01T00:00:00Z ./repo
  keyceremony verify --root 1.root.json --format json ./repo`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: exitUnusable, err: usage("verify takes one directory", "keyceremony verify --root TRUSTED_ROOT DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Root == "" {
				return &exitError{code: exitUnusable, err: usage("--root is required", "pass the root you trust, e.g. the 1.root.json from your bootstrap media")}
			}
			if format != "text" && format != "json" {
				return &exitError{code: exitUnusable, err: usage(fmt.Sprintf("--format %q", format), "use text or json")}
			}
			if o.SoftCA != "" && o.AttestationCA != "" {
				return &exitError{code: exitUnusable, err: usage("--soft-ca and --attestation-ca cannot be combined", "a rehearsal uses soft devices or the PIV emulator, not both")}
			}
			o.At = time.Now()
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return &exitError{code: exitUnusable, err: &usageError{msg: fmt.Sprintf("--at %q", at), hint: "use RFC 3339, e.g. 2027-01-01T00:00:00Z", err: err}}
				}
				o.At = t
			}
			o.Dir = args[0]
			report, err := ceremony.Audit(o)
			var werr error
			if format == "json" {
				werr = report.WriteJSON(cmd.OutOrStdout())
			} else {
				werr = report.WriteText(cmd.OutOrStdout())
			}
			switch {
			case errors.Is(err, ceremony.ErrInvalidMedium):
				return &exitError{code: exitInvalid, err: err}
			case err != nil:
				return &exitError{code: exitUnusable, err: err}
			}
			return werr
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUnusable, err: err}
	})
	f := cmd.Flags()
	f.StringVar(&o.Root, "root", "", "trusted root metadata file")
	f.StringVar(&at, "at", "", "check expiry at this time (RFC 3339) instead of now")
	f.StringVar(&o.Previous, "previous", "", "an earlier medium: versions must not go back against it")
	f.StringVar(&o.Export, "export", "", "the repository export a stable medium's signed diff or an online rotation's recovery comparison was made from: recomputed with the ledger in --previous")
	f.StringVar(&o.Repository, "repository", "", "bootstrap media or a repository that holds the root chain and targets (for stable media)")
	f.StringVar(&o.AttestationCA, "attestation-ca", "", "PEM file of an attestation CA trusted beside Yubico's roots (rehearsals with the PIV emulator)")
	f.StringVar(&o.SoftCA, "soft-ca", "", "soft devices' CA directory trusted beside Yubico's roots (rehearsals with INSECURE soft devices)")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
