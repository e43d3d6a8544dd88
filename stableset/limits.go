package stableset

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
)

// The policy's confirm_above limits and the room's decisions
// (docs/policy.md): a count above its limit demands an explicit decision.
// For added and removed files it is a limit decision confirming the exact
// count (the limit red flag, flagspath.go); for changed files, a decision
// per changed path (keep-old, accept-new or drop), as a changed flag
// decision or a path decision. Changed paths without a decision keep
// their stable entry, and are undecided when the changed count is above
// its limit (each is then a changed red flag).

// ReasonCount is how many files of the diff have one category and reason.
type ReasonCount struct {
	Category Category `json:"category"`
	Reason   string   `json:"reason,omitempty"`
	Count    int64    `json:"count"`
}

// LegacyCount is how many listed files have one kind of legacy name.
type LegacyCount struct {
	Kind  string `json:"kind"` // export.Legacy's name: "version", "spelling", …
	Count int64  `json:"count"`
}

// legacyCounts counts files per legacy kind; the merger alone adds.
type legacyCounts [8]int64

func (lc *legacyCounts) add(l export.Legacy) {
	for i := range lc {
		if l&(1<<i) != 0 {
			lc[i]++
		}
	}
}

// list returns every kind's count, in export.Legacy's order.
func (lc *legacyCounts) list() []LegacyCount {
	var out []LegacyCount
	for i := range lc {
		if k := export.Legacy(1 << i); k.String() != "" {
			out = append(out, LegacyCount{Kind: k.String(), Count: lc[i]})
		}
	}
	return out
}

// reasonCounts counts files by category and reason; the merger alone
// adds to it. A handful of pairs occur, so a slice searched from the
// last hit beats a map.
type reasonCounts struct {
	list []ReasonCount
	last int
}

func (rc *reasonCounts) add(cat Category, reason string) {
	if rc.last < len(rc.list) {
		if c := &rc.list[rc.last]; c.Category == cat && c.Reason == reason {
			c.Count++
			return
		}
	}
	for i := range rc.list {
		if c := &rc.list[i]; c.Category == cat && c.Reason == reason {
			c.Count++
			rc.last = i
			return
		}
	}
	rc.list = append(rc.list, ReasonCount{Category: cat, Reason: reason, Count: 1})
	rc.last = len(rc.list) - 1
}

// sorted returns the counts in the order of the categories (added, held,
// removed, changed, unchanged), then by reason.
func (rc *reasonCounts) sorted() []ReasonCount {
	rank := map[Category]int{Added: 0, Held: 1, Removed: 2, Changed: 3, Unchanged: 4}
	out := slices.Clone(rc.list)
	slices.SortFunc(out, func(a, b ReasonCount) int {
		if d := rank[a.Category] - rank[b.Category]; d != 0 {
			return d
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return out
}

// maxUndecidedNamed is how many undecided changed paths a diff names.
const maxUndecidedNamed = 10

// decideChanged applies the decision about a changed path (the merger
// calls it): accept-new replaces the stable entry, drop takes the path out
// of the stable set, keep-old or no decision keeps the stable entry.
func (r *run) decideChanged(path string, d *decision) {
	// An expedite path decision is refused by checkExpedited: a changed
	// file is not expedited.
	dec, ok := r.changedDecision(path)
	if ok {
		if r.decided == nil {
			r.decided = map[string]bool{}
		}
		r.decided[path] = true
	} else {
		r.undecided++
		if len(r.undecidedPaths) < maxUndecidedNamed {
			r.undecidedPaths = append(r.undecidedPaths, path)
		}
	}
	switch dec.Choice {
	case decisions.AcceptNew:
		d.cat, d.reason = Changed, ReasonAccepted
	case decisions.Drop:
		d.cat, d.reason, d.stable = Changed, ReasonDropped, false
	default:
		d.cat, d.reason, d.kept = Changed, ReasonKeptOld, true
	}
}

// Limit is one of the policy's confirm_above limits as the diff meets it.
type Limit struct {
	Name    string `json:"name"`    // added, removed or changed
	Max     int64  `json:"max"`     // the policy's confirm_above value
	Count   int64  `json:"count"`   // the diff's count
	Crossed bool   `json:"crossed"` // Count > Max: a decision is demanded
	// Undecided is, for a crossed limit, what lacks a decision: 1 when no
	// decision confirms the added or removed count, the number of
	// changed paths without a decision for changed; 0 otherwise.
	Undecided int64 `json:"undecided"`
	// Paths names the first undecided changed paths (at most 10).
	Paths []string `json:"paths,omitempty"`
}

// Field is the policy field of the limit.
func (l *Limit) Field() string { return "confirm_above." + l.Name }

// Problem says what is undecided about a crossed limit, "" when nothing
// is.
func (l *Limit) Problem() string {
	if !l.Crossed || l.Undecided == 0 {
		return ""
	}
	if l.Name == "changed" {
		s := fmt.Sprintf("%s is %d and the diff changes %d files; %d have no decision", l.Field(), l.Max, l.Count, l.Undecided)
		if len(l.Paths) > 0 {
			s += " (" + strings.Join(l.Paths, ", ")
			if int64(len(l.Paths)) < l.Undecided {
				s += ", …"
			}
			s += ")"
		}
		return s
	}
	verb := map[string]string{"added": "adds", "removed": "removes"}[l.Name]
	return fmt.Sprintf("%s is %d and the diff %s %d files; no decision confirms that count", l.Field(), l.Max, verb, l.Count)
}

// checkLimits holds the decisions against the diff, once its counts are
// known: every path decision must name a changed path and every limit
// decision confirm a crossed limit's exact count (ErrDecision); it then
// records each limit and what is undecided about it.
func (r *run) checkLimits() error {
	set := r.cfg.Decisions
	for _, d := range set.All() {
		if d.Limit == "" && d.Flag == "" && d.Project == "" && d.Choice != decisions.Expedite && !r.decided[d.Path] {
			if d.Choice == decisions.TakeDown {
				return fmt.Errorf("%s:%d: path %s: not in the stable set (a takedown takes a stable file out of it): %w", set.Name(), d.Line, d.Path, ErrDecision)
			}
			if d.Choice == decisions.Lift {
				return fmt.Errorf("%s:%d: path %s: neither taken down nor dropped, nothing to lift: %w", set.Name(), d.Line, d.Path, ErrDecision)
			}
			return fmt.Errorf("%s:%d: path %s: not a changed file of this diff (decisions settle changed files): %w", set.Name(), d.Line, d.Path, ErrDecision)
		}
	}
	s := &r.diff.Summary
	lim := r.cfg.Policy.ConfirmAbove
	r.diff.Limits = []Limit{
		{Name: decisions.LimitAdded, Max: lim.Added, Count: s.Added},
		{Name: decisions.LimitRemoved, Max: lim.Removed, Count: s.Removed},
		{Name: "changed", Max: lim.Changed, Count: s.Changed},
	}
	for i := range r.diff.Limits {
		l := &r.diff.Limits[i]
		l.Crossed = l.Count > l.Max
		if l.Name == "changed" {
			if l.Crossed {
				l.Undecided, l.Paths = r.undecided, r.undecidedPaths
			}
			continue
		}
		d, ok := set.Limit(l.Name)
		switch {
		case ok && !l.Crossed:
			return fmt.Errorf("%s:%d: limit %s: confirms %d, but the diff's %d is not above %s (%d): %w", set.Name(), d.Line, l.Name, d.Count, l.Count, l.Field(), l.Max, ErrDecision)
		case ok && d.Count != l.Count:
			return fmt.Errorf("%s:%d: limit %s: confirms %d, the diff has %d: %w", set.Name(), d.Line, l.Name, d.Count, l.Count, ErrDecision)
		case !ok && l.Crossed:
			l.Undecided = 1
		}
	}
	r.diff.Reasons = r.reasons.sorted()
	r.diff.LegacyNames = r.legacy.list()
	return r.checkFlags()
}

// Undecided returns what a signing would refuse: an error naming every
// crossed limit and every red flag (flags.go) that lacks a decision
// (ErrUndecided), every expedited file without one
// (ErrExpediteUndecided) and every change to the policy's lists without
// one (ErrPolicyChangeUndecided), or nil.
func (d *Diff) Undecided() error {
	var probs []string
	for i := range d.Limits {
		if p := d.Limits[i].Problem(); p != "" {
			probs = append(probs, p)
		}
	}
	probs = append(probs, d.undecidedFlags()...)
	var u undecidedError
	u.add(probs, ErrUndecided)
	u.add(d.undecidedExpedited(), ErrExpediteUndecided)
	u.add(d.undecidedPolicyChanges(), ErrPolicyChangeUndecided)
	if u.errs != nil {
		return &u
	}
	return nil
}

// undecidedError is every red flag a signing refuses, each kind with its
// sentinel: "problem; problem: sentinel; problem: sentinel".
type undecidedError struct {
	msg  string
	errs []error
}

func (u *undecidedError) add(probs []string, sentinel error) {
	if probs == nil {
		return
	}
	if u.msg != "" {
		u.msg += "; "
	}
	u.msg += strings.Join(probs, "; ") + ": " + sentinel.Error()
	u.errs = append(u.errs, sentinel)
}

func (u *undecidedError) Error() string   { return u.msg }
func (u *undecidedError) Unwrap() []error { return u.errs }
