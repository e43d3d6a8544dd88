package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
)

// searchShown is how many paths a search lists in text.
const searchShown = 200

func newStableReviewCommand() *cobra.Command {
	var o ceremony.StableOptions
	var format, project, search, pass string
	var all bool
	var now *string
	cmd := &cobra.Command{
		Use:   "review --export FILE --published DIR --root FILE [--backup DIR] [--now TIME] [--policy FILE] [--decisions FILE] [--pass DIGEST|DIR] [--project NAME | --search TEXT | --all] [--format text|json]",
		Short: "Browse the diff: the summary, one project, a search, the whole diff paged",
		Long: `review makes the same pass as 'stable diff' (same inputs, same summary,
same digest), then lets the room browse it through an index the pass
writes in the work directory, without the diff in memory:

  --project NAME   one project: its stable view before and after, every
                   file with its category and reason, the upload time a
                   backdated file claims
  --search TEXT    projects whose name contains TEXT (as PyPI normalizes
                   names; those beginning with it first), and every path
                   containing TEXT (the first 200 in text, all in JSON)
  --all            every entry but the unchanged ones, by project then
                   version (the same as 'stable diff --full')

On a terminal, long output is paged in the program itself (no external
pager is run: space or f next page, b previous, j/k a line, g/G top/end,
q quit), and without one of the three the summary is followed by a
prompt: 'project NAME', 'search TEXT', 'all', 'summary', 'decide',
'quit'. 'decide' shows each red flag without a decision on its own, as
the guided signing does, for its decision by name and a reason; the
decisions, with those of --decisions, are written as a new decisions
file in --work-dir, the diff is made again with it, and the file and the
new digest are shown: 'stable sign --decisions FILE' signs that digest.
Off a terminal the output is plain. --format json gives the same content
for tools (not with the prompt). Nothing is signed, and nothing but that
decisions file is written.

--pass DIGEST (or the directory keyceremony-reviewed-DIGEST) browses the
pass 'stable diff --backup' kept in --work-dir for that digest instead of
making the pass again, when the export, policy, decisions and published
state are the same ones: the kept pass is checked as 'stable sign --batch'
checks it (its entries against the digest, what it shows of the export
against the export), its review index is made again from it and must be
the kept one byte for byte; an edited pass is refused, naming what
differs. When there is no such pass or an input differs, it says why and
makes the pass again. The kept pass stays for 'stable sign --batch'.`,
		Example: `  keyceremony stable review --export export.jsonl --published current --root 1.root.json --backup /media/backup
  keyceremony stable review --export export.jsonl --published current --root 1.root.json --project requests
  keyceremony stable review --export export.jsonl --published current --root 1.root.json --search numpy --format json
  keyceremony stable review --export export.jsonl --published current --root 1.root.json --backup /media/backup --pass 3f5a...e1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := stableInputs(&o, *now); err != nil {
				return err
			}
			if format != "text" && format != "json" {
				return usage(fmt.Sprintf("--format %q", format), "use text or json")
			}
			chosen := 0
			for _, b := range []bool{project != "", search != "", all} {
				if b {
					chosen++
				}
			}
			if chosen > 1 {
				return usage("--project, --search and --all exclude each other", "browse one at a time; on a terminal the prompt offers each")
			}
			var d *stableset.Diff
			var err error
			if pass != "" {
				var digest string
				if digest, err = keptPass(&o, pass); err != nil {
					return err
				}
				d, err = ceremony.RunStableReviewed(o, digest, cmd.ErrOrStderr())
			} else {
				d, err = ceremony.RunStableDiff(o)
			}
			if err != nil {
				return err
			}
			// d's contents are the diff made again, after decide; a
			// kept pass stays for 'stable sign --batch'.
			defer func() { closeDiff(d) }()
			out := cmd.OutOrStdout()
			var t *tui.Terminal
			if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) && format == "text" {
				if t, err = tui.Open(); err != nil {
					return err
				}
				defer t.Close()
			}
			b := &browser{d: d, format: format, out: out, t: t, dir: o.WorkDir, o: &o}
			if b.dir == "" {
				b.dir = os.TempDir()
			}
			defer b.close()
			if d.Kept() {
				// The kept review index is checked before anything is
				// shown from it.
				if _, err := b.review(); err != nil {
					return err
				}
			}
			switch {
			case project != "":
				return b.project(project)
			case search != "":
				return b.search(search)
			case all:
				return b.page(map[string]func(io.Writer) error{"text": d.WriteFullText, "json": d.WriteFullJSON}[format])
			}
			if format == "json" {
				if err := d.WriteJSON(out); err != nil {
					return err
				}
				return showBackup(cmd, &o, false)
			}
			if err := b.page(d.WriteText); err != nil {
				return err
			}
			if err := showBackup(cmd, &o, true); err != nil {
				return err
			}
			if t == nil {
				return nil
			}
			return b.prompt()
		},
	}
	now = registerStable(cmd, &o)
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.Flags().StringVar(&project, "project", "", "show one project (its name as listed or as PyPI normalizes it)")
	cmd.Flags().StringVar(&search, "search", "", "find projects whose name, and paths that contain TEXT")
	cmd.Flags().BoolVar(&all, "all", false, "every entry but the unchanged ones, by project then version")
	cmd.Flags().StringVar(&pass, "pass", "", "browse the pass 'stable diff --backup' kept for this digest (or its directory) in --work-dir")
	return cmd
}

// keptPass returns the digest --pass names: a digest, or a kept pass's
// directory (whose parent is then the work directory).
func keptPass(o *ceremony.StableOptions, pass string) (string, error) {
	base := filepath.Base(pass)
	digest, isDir := strings.CutPrefix(base, stableset.ReviewedPrefix)
	if !isDir {
		digest = pass
	}
	if len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		return "", usage(fmt.Sprintf("--pass %q", pass), "give the digest 'stable diff --backup' printed, or the directory "+stableset.ReviewedPrefix+"DIGEST it kept")
	}
	if isDir {
		dir := filepath.Dir(pass)
		if o.WorkDir != "" && filepath.Clean(o.WorkDir) != dir {
			return "", usage(fmt.Sprintf("--pass %s is not in --work-dir %s", pass, o.WorkDir), "give the digest alone, or the directory in --work-dir")
		}
		o.WorkDir = dir
	}
	return digest, nil
}

// closeDiff closes a diff, leaving a kept pass in place.
func closeDiff(d *stableset.Diff) {
	if d.Kept() {
		d.Release()
		return
	}
	d.Close()
}

// browser shows parts of a diff, paged on a terminal.
type browser struct {
	d      *stableset.Diff
	rv     *stableset.Review
	format string
	out    io.Writer
	t      *tui.Terminal
	dir    string
	// o are the inputs, for the diff made again after decide.
	o *ceremony.StableOptions
}

// review opens the review index (written on first use).
func (b *browser) review() (*stableset.Review, error) {
	if b.rv == nil {
		rv, err := b.d.Review()
		if err != nil {
			return nil, err
		}
		b.rv = rv
	}
	return b.rv, nil
}

func (b *browser) close() {
	if b.rv != nil {
		b.rv.Close()
	}
}

// page writes through the pager on a terminal, plainly otherwise.
func (b *browser) page(write func(io.Writer) error) error {
	if b.t == nil {
		bw := bufio.NewWriterSize(b.out, 64<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	return b.t.Page(b.dir, write)
}

func (b *browser) project(name string) error {
	rv, err := b.review()
	if err != nil {
		return err
	}
	v, err := rv.Project(name)
	if errors.Is(err, stableset.ErrNoProject) {
		return usage(fmt.Sprintf("project %q is not in this diff", name), "search for part of its name: --search "+name)
	}
	if err != nil {
		return err
	}
	if b.format == "json" {
		return v.WriteProjectJSON(b.out)
	}
	return b.page(v.WriteProjectText)
}

func (b *browser) search(q string) error {
	if q == "" {
		return usage("nothing to search for", "give part of a project's name or of a path")
	}
	rv, err := b.review()
	if err != nil {
		return err
	}
	if b.format == "json" {
		return rv.WriteSearchJSON(b.out, q)
	}
	return b.page(func(w io.Writer) error { return rv.WriteSearchText(w, q, searchShown) })
}

// prompt lets the room browse until it quits.
func (b *browser) prompt() error {
	for {
		line, err := b.t.Line("\nreview (project NAME, search TEXT, all, summary, decide, quit)> ")
		if err != nil {
			return err
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		arg = strings.TrimSpace(arg)
		switch verb {
		case "":
		case "q", "quit", "exit":
			return nil
		case "p", "project":
			err = b.project(arg)
		case "s", "search":
			err = b.search(arg)
		case "a", "all":
			err = b.page(b.d.WriteFullText)
		case "summary":
			err = b.page(b.d.WriteText)
		case "decide":
			err = b.decide()
		default:
			fmt.Fprintf(b.t, "%q: say project NAME, search TEXT, all, summary, decide or quit\n", verb)
		}
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(b.t, "%s\n", ue.Error())
		} else if err != nil {
			return err
		}
	}
}

// decide has the room decide each red flag without a decision, one at a
// time, as the guided signing does; the decisions, with those of
// --decisions, are written as a new decisions file in the work directory
// (never over another file), the diff is computed again with it, and the
// file's path and the new digest are shown, for 'stable sign --decisions'.
func (b *browser) decide() error {
	made, err := ceremony.DecideFlags(b.t, b.t, b.d)
	if err != nil {
		return err
	}
	if len(made) == 0 {
		fmt.Fprintf(b.t, "every red flag has a decision\n")
		return nil
	}
	var base *decisions.Set
	if b.o.Decisions != "" {
		if base, err = decisions.Load(b.o.Decisions); err != nil {
			return err
		}
	}
	path := filepath.Join(b.dir, "decisions-"+time.Now().UTC().Format("20060102T150405Z")+".jsonl")
	set, err := base.With(path, made...)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing the decisions: %w", err)
	}
	if _, err := f.Write(set.Marshal()); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing the decisions: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing the decisions: %w", err)
	}
	o := *b.o
	o.Decisions = path
	d, err := ceremony.RunStableDiff(o)
	if err != nil {
		return err
	}
	b.close()
	b.rv = nil
	closeDiff(b.d)
	*b.d, *b.o = *d, o
	fmt.Fprintf(b.t, "\n%d decisions written to %s (%d in all with those of --decisions).\n", len(made), path, set.Len())
	if err := b.page(b.d.WriteText); err != nil {
		return err
	}
	fmt.Fprintf(b.t, "\nthe diff with these decisions has digest %s\nsign it with: --decisions %s\n", b.d.Digest, path)
	return nil
}
