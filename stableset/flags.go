package stableset

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/stableset/decisions"
)

// Red flags (docs/policy.md, "Red flags"): what the diff shows that the
// room must settle one at a time, each by a flag decision with a reason
// (decisions: {"flag": KIND, "subject": …, "decision": …, "reason": …}).
// A flag is a kind, a subject, the facts the room is shown, and the
// choices that settle it. A flag without a decision refuses signing
// (Diff.Undecided), naming it; a flag decision that settles no raised
// flag, or with a choice its kind does not allow, refuses the diff
// (ErrDecision).
//
// To add a kind: add it to flagKinds with the choices that settle it,
// raise it from the pass with run.raise, apply its choices where the
// pass decides, and document it in docs/policy.md.

// FlagKind is one kind of red flag.
type FlagKind struct {
	Name string // as decisions name it: "project-loss"
	// About says what a subject is: "project" or "path".
	About string
	// Choices are the decisions that settle a flag of this kind, and
	// Means what each does.
	Choices []decisions.Choice
	Means   map[decisions.Choice]string
	// Threshold is the policy field that holds the kind's threshold, ""
	// for a kind raised whatever the counts.
	Threshold string
}

// Flag kinds.
const (
	FlagProjectLoss = "project-loss"
	// FlagChanged: a stable path listed with another length or hash,
	// raised for every changed path when the changed count is above
	// confirm_above.changed (0 by default: every one). Settled by
	// {"flag": "changed", "subject": PATH, …} or, as earlier decisions
	// files say it, {"path": PATH, "decision": keep-old|accept-new|drop}.
	FlagChanged = decisions.FlagChanged
	// FlagBackdated: a file claiming an upload before the previous
	// listing that the previous listing did not have; it is held back
	// whatever is decided, and the room confirms it has seen it.
	FlagBackdated = "backdated"
	// FlagLimit: the added or removed count is above its confirm_above
	// limit (subject "added" or "removed"); settled by a limit decision
	// confirming the exact count ({"limit": …, "count": N, …}).
	FlagLimit = "limit"
)

// flagKinds are the kinds of red flag, by name.
var flagKinds = map[string]*FlagKind{
	FlagProjectLoss: {
		Name: FlagProjectLoss, About: "project",
		Choices:   []decisions.Choice{decisions.Confirm},
		Means:     map[decisions.Choice]string{decisions.Confirm: "the loss is what the room expects; the project's stable view is signed as the diff makes it"},
		Threshold: "red_flags.project_loss_percent",
	},
	FlagChanged: {
		Name: FlagChanged, About: "path",
		Choices: []decisions.Choice{decisions.KeepOld, decisions.AcceptNew, decisions.Drop},
		Means: map[decisions.Choice]string{
			decisions.KeepOld:   "the stable entry stays as it was signed; the new content is not signed",
			decisions.AcceptNew: "the new content replaces the stable entry",
			decisions.Drop:      "the path leaves the stable set",
		},
		Threshold: "confirm_above.changed",
	},
	FlagBackdated: {
		Name: FlagBackdated, About: "path",
		Choices: []decisions.Choice{decisions.Confirm},
		Means:   map[decisions.Choice]string{decisions.Confirm: "the room has seen the claim; the file stays held back, out of the stable set"},
	},
	FlagLimit: {
		Name: FlagLimit, About: "count",
		Choices:   []decisions.Choice{decisions.Confirm},
		Means:     map[decisions.Choice]string{decisions.Confirm: "the count is what the room expects (the decision names the exact count)"},
		Threshold: "confirm_above.added, confirm_above.removed",
	},
}

// FlagKinds returns the kinds of red flag, by name.
func FlagKinds() []FlagKind {
	var out []FlagKind
	for _, k := range flagKinds {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b FlagKind) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Fact is one thing the room is shown about a flag.
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Flag is one red flag the diff raises.
type Flag struct {
	Kind    string             `json:"kind"`
	Subject string             `json:"subject"`
	Facts   []Fact             `json:"facts"`
	Choices []decisions.Choice `json:"choices"`
	// Decision settles the flag; nil when nothing does.
	Decision *decisions.Decision `json:"-"`
}

// Names says which flag this is, for messages: "flag project-loss foo".
func (f *Flag) Names() string { return "flag " + f.Kind + " " + f.Subject }

// raise records a red flag of a known kind.
func (r *run) raise(kind, subject string, facts ...Fact) {
	k, ok := flagKinds[kind]
	if !ok {
		panic("stableset: unknown flag kind " + kind) // a bug, never input
	}
	r.diff.Flags = append(r.diff.Flags, Flag{Kind: kind, Subject: subject, Facts: facts, Choices: k.Choices})
}

// raiseProjectLoss raises project-loss for every project whose stable
// view loses more than the policy's percentage of its stable files.
func (r *run) raiseProjectLoss() {
	pct := r.cfg.Policy.RedFlags.ProjectLossPercent
	for _, p := range r.diff.Projects {
		if p.Project == "" || r.delegated[p.Project] {
			// A delegated project's files leave the stable set by the
			// delegate decision, which the room reviews.
			continue
		}
		c := &p.Counts
		before := c.Unchanged + c.Changed + c.Removed
		lost := c.Removed + c.Dropped
		if before == 0 || lost*100 <= pct*before {
			continue
		}
		r.raise(FlagProjectLoss, p.Project,
			Fact{"stable files before", strconv.FormatInt(before, 10)},
			Fact{"removed from the export", strconv.FormatInt(c.Removed, 10)},
			Fact{"dropped by a decision", strconv.FormatInt(c.Dropped, 10)},
			Fact{"stable files after", strconv.FormatInt(c.Stable(), 10)},
			Fact{"lost", fmt.Sprintf("%d%%, above red_flags.project_loss_percent %d%%", lost*100/before, pct)})
	}
}

// checkFlags raises the flags the diff's counts show, then holds the
// flag decisions against them: each settles a raised flag with a choice
// its kind allows (ErrDecision otherwise).
func (r *run) checkFlags() error {
	r.raiseProjectLoss()
	r.raisePathFlags()
	if err := r.raiseExportFlags(); err != nil {
		return err
	}
	flags := r.diff.Flags
	slices.SortFunc(flags, func(a, b Flag) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	set := r.cfg.Decisions
	raised := map[string]bool{}
	for i := range flags {
		f := &flags[i]
		raised[f.Kind+"\t"+f.Subject] = true
		d, ok := r.flagDecision(f)
		if !ok {
			continue
		}
		if !slices.Contains(f.Choices, d.Choice) {
			return fmt.Errorf("%s:%d: %s: %q does not settle it (want %s): %w", set.Name(), d.Line, f.Names(), d.Choice, choiceList(f.Choices), ErrDecision)
		}
		f.Decision = &d
	}
	for _, d := range set.All() {
		if d.Flag == "" {
			continue
		}
		if done, err := r.otherFlagDecision(set, &d); done || err != nil {
			return err
		}
		if raised[d.Flag+"\t"+d.Subject] {
			continue
		}
		if _, ok := flagKinds[d.Flag]; !ok {
			return fmt.Errorf("%s:%d: flag %s: not a kind of red flag (%s): %w", set.Name(), d.Line, d.Flag, kindList(), ErrDecision)
		}
		return fmt.Errorf("%s:%d: %s: this diff raises no such flag: %w", set.Name(), d.Line, d.Names(), ErrDecision)
	}
	return nil
}

// undecidedFlags names every flag without a decision, at most
// maxUndecidedNamed of a kind; changed and limit flags are named by
// their limit's problem (limits.go).
func (d *Diff) undecidedFlags() []string {
	var out []string
	n := map[string]int{}
	for i := range d.Flags {
		f := &d.Flags[i]
		if f.Decision != nil || f.Kind == FlagChanged || f.Kind == FlagLimit {
			continue
		}
		if n[f.Kind]++; n[f.Kind] <= maxUndecidedNamed {
			out = append(out, f.Names()+" has no decision ("+choiceList(f.Choices)+")")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(n)) {
		if c := n[k]; c > maxUndecidedNamed {
			out = append(out, fmt.Sprintf("… %d more %s flags have no decision", c-maxUndecidedNamed, k))
		}
	}
	return out
}

func choiceList(cs []decisions.Choice) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, " or ")
}

func kindList() string {
	var s []string
	for _, k := range FlagKinds() {
		s = append(s, k.Name)
	}
	return strings.Join(s, ", ")
}
