package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
)

func newStatusCommand() *cobra.Command {
	var at, margin, format string
	cmd := &cobra.Command{
		Use:   "status [--margin 30d] [--at TIME] [--format json] DIR",
		Short: "Show what expires when in a medium or repository, and the deadline of the next stable ceremony",
		Long: `status reads the newest metadata of every role in DIR (bootstrap media,
stable media or a repository, where the versions snapshot lists count) and
shows when each expires: root, targets, stable, the stable mid roles and
leaf bins (each group by the member that expires first), unstable, snapshot
and timestamp. The next stable ceremony must publish before stable or any of
its bins expires. It does not verify signatures: run keyceremony verify.

It exits 0 if nothing expires within the margin (--margin, default 30d),
1 if something has expired or expires within it (listed as WARNING lines,
"warnings" in JSON), 2 if it could not run (usage, a directory that cannot
be read or is no medium). See docs/audit.md.`,
		Example: `  keyceremony status /media/usb/repo
  keyceremony status --margin 45d --format json ./repo
  keyceremony status --at 2027-03-01T00:00:00Z /media/usb/stable-7`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: exitUnusable, err: usage("status takes one directory", "keyceremony status DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return &exitError{code: exitUnusable, err: usage(fmt.Sprintf("--format %q", format), "use text or json")}
			}
			m, err := parseMargin(margin)
			if err != nil {
				return &exitError{code: exitUnusable, err: &usageError{msg: fmt.Sprintf("--margin %q", margin), hint: "use days such as 30d, or a duration such as 36h", err: err}}
			}
			o := ceremony.StatusOptions{Dir: args[0], At: time.Now(), Margin: m}
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return &exitError{code: exitUnusable, err: &usageError{msg: fmt.Sprintf("--at %q", at), hint: "use RFC 3339, e.g. 2027-01-01T00:00:00Z", err: err}}
				}
				o.At = t
			}
			rep, err := ceremony.Status(o)
			if errors.Is(err, ceremony.ErrUnreadable) {
				return &exitError{code: exitUnusable, err: err}
			}
			var werr error
			if format == "json" {
				werr = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				werr = rep.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			return werr
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUnusable, err: err}
	})
	f := cmd.Flags()
	f.StringVar(&margin, "margin", "30d", "warn about what expires within this long (days such as 30d, or a duration such as 36h)")
	f.StringVar(&at, "at", "", "report for this time (RFC 3339) instead of now")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// parseMargin reads "30d" (whole days) or a Go duration ("36h"); it must
// not be negative.
func parseMargin(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number of days", days)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d < 0 {
		return 0, errors.New("negative")
	}
	return d, nil
}
