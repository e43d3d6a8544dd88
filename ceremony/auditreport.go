package ceremony

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyceremony/keyceremony/keys"
)

// WriteJSON writes the report as indented JSON: the same content as
// WriteText, for tools (docs/audit.md describes every field).
func (r *AuditReport) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the report for people: every check, the versions, the
// metadata files with the keys that signed them, the keys and their
// attestations, the transcript and the signed diff, and a last line that
// says OK or INVALID.
func (r *AuditReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "medium: %s (%s), checked at %s\n", orUnknown(string(r.Medium)), r.Dir, r.At.UTC().Format(time.RFC3339))
	for _, c := range r.Checks {
		mark := "ok"
		if !c.OK {
			mark = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, c.Check, c.Detail)
	}
	if len(r.Versions) > 0 {
		fmt.Fprintf(tw, "versions: %s\n", versionList(r.Versions))
	}
	if p := r.Previous; p != nil {
		fmt.Fprintf(tw, "previous medium: %s (%s): %s\n", p.Dir, p.Medium, versionList(p.Versions))
	}
	if len(r.Files) > 0 {
		fmt.Fprintln(tw, "\nFILE\tROLE\tDELEGATED BY\tVERSION\tEXPIRES\tCHECKED BY\tTHRESHOLD\tSIGNED BY (key ids)")
		for _, f := range r.Files {
			if len(f.Checks) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t\t\t\n", f.File, f.Role, f.Delegator, f.Version, f.Expires.Format(time.RFC3339))
			}
			for i, c := range f.Checks {
				if i == 0 {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", f.File, f.Role, f.Delegator, f.Version, f.Expires.Format(time.RFC3339), c.By, c.Threshold, strings.Join(c.Signers, " "))
				} else {
					fmt.Fprintf(tw, "\t\t\t\t\t%s\t%d\t%s\n", c.By, c.Threshold, strings.Join(c.Signers, " "))
				}
			}
		}
	}
	if len(r.Keys) > 0 {
		fmt.Fprintln(tw, "\nROLE\tDEVICE\tSLOT\tKEY ID\tFIRMWARE\tPIN POLICY\tTOUCH POLICY\tFORM FACTOR\tATTESTED BY")
		for _, k := range r.Keys {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Role, k.Device, k.Slot, k.KeyID, k.Firmware, k.PINPolicy, k.TouchPolicy, k.FormFactor, k.ChainsTo)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if t := r.Transcript; t != nil {
		fmt.Fprintf(w, "\ntranscript: %s, %d entries, digest %s\n", t.File, t.Entries, t.Digest)
		if d, err := hex.DecodeString(t.Digest); err == nil {
			fmt.Fprintf(w, "  as read aloud: %s\n", strings.Join(keys.PGPWords(d), " "))
		}
	}
	if d := r.SignedDiff; d != nil {
		prevLedger := d.PreviousLedgerSHA256
		if prevLedger == "" {
			prevLedger = "none (first ceremony)"
		}
		fmt.Fprintf(w, "\nsigned diff: repository %q, ceremony %d, stable %d -> %d, %d stable files in %d projects\n", d.Repository, d.Ceremony, d.PreviousStableVersion, d.StableVersion, d.StableFiles, d.Projects)
		fmt.Fprintf(w, "  diff sha256 %s\n  policy sha256 %s\n  previous ledger sha256 %s\n  signed by %s\n", d.DiffSHA256, d.PolicySHA256, prevLedger, strings.Join(d.SignedBy, " "))
		if d.Recomputed {
			fmt.Fprintf(w, "  recomputed from the export and the previous medium: the same\n")
		} else {
			fmt.Fprintf(w, "  not recomputed (give --export and --previous to recompute it)\n")
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Valid {
		_, err := fmt.Fprintf(w, "OK: %d metadata files verified\n", len(r.Files))
		return err
	}
	_, err := fmt.Fprintf(w, "%s: %s\n", strings.ToUpper(r.Outcome), r.Error)
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// versionList prints versions by role, roles sorted.
func versionList(vs map[string]int64) string {
	roles := make([]string, 0, len(vs))
	for r := range vs {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = fmt.Sprintf("%s %d", r, vs[r])
	}
	return strings.Join(parts, ", ")
}
