package stableset

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/keyceremony/keyceremony/stableset/decisions"
)

// The red flags about one path (changed, backdated) and about a count
// (limit), beside flags.go's project-loss. The pass notes each changed
// and backdated path as it decides it (the merger, or the walk of a
// reviewed pass); checkFlags raises them with their facts once the
// counts are known.

// pathFlag is a changed or backdated path as the pass met it.
type pathFlag struct {
	kind           string
	path, project  string
	version        string
	uploaded       time.Time
	oldLen, newLen int64
	oldSum, newSum [32]byte
}

// changedDecision returns the decision about a changed path: a path
// decision (keep-old, accept-new or drop, the earlier form) or a
// changed flag decision.
func (r *run) changedDecision(path string) (decisions.Decision, bool) {
	set := r.cfg.Decisions
	if d, ok := set.Path(path); ok {
		switch d.Choice {
		case decisions.KeepOld, decisions.AcceptNew, decisions.Drop:
			return d, true
		}
		return decisions.Decision{}, false
	}
	if d, ok := set.Flag(FlagChanged, path); ok {
		if r.changedByFlag == nil {
			r.changedByFlag = map[string]bool{}
		}
		r.changedByFlag[path] = true
		return d, true
	}
	return decisions.Decision{}, false
}

// noteChanged records a changed path for its flag.
func (r *run) noteChanged(path, project, version string, uploaded time.Time, oldLen int64, oldSum [32]byte, newLen int64, newSum [32]byte) {
	r.pathFlags = append(r.pathFlags, pathFlag{kind: FlagChanged, path: path, project: project, version: version, uploaded: uploaded,
		oldLen: oldLen, oldSum: oldSum, newLen: newLen, newSum: newSum})
}

// noteBackdated records a backdated path for its flag.
func (r *run) noteBackdated(path, project, version string, uploaded time.Time, newLen int64, newSum [32]byte) {
	r.pathFlags = append(r.pathFlags, pathFlag{kind: FlagBackdated, path: path, project: project, version: version, uploaded: uploaded, newLen: newLen, newSum: newSum})
}

// raisePathFlags raises a changed flag for every changed path when the
// changed count is above confirm_above.changed, and a backdated flag for
// every backdated path; then a limit flag for each crossed added or
// removed limit.
func (r *run) raisePathFlags() {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	h := &r.diff.Header
	changedMax := r.cfg.Policy.ConfirmAbove.Changed
	crossed := r.diff.Summary.Changed > changedMax
	for _, p := range r.pathFlags {
		switch p.kind {
		case FlagChanged:
			if !crossed {
				continue
			}
			r.raise(FlagChanged, p.path,
				Fact{"project", p.project + " " + p.version},
				Fact{"stable entry", strconv.FormatInt(p.oldLen, 10) + " bytes sha256 " + hex.EncodeToString(p.oldSum[:])},
				Fact{"listed now", strconv.FormatInt(p.newLen, 10) + " bytes sha256 " + hex.EncodeToString(p.newSum[:])},
				Fact{"upload time claimed", ts(p.uploaded)},
				Fact{"why flagged", fmt.Sprintf("PyPI never replaces a file's content; %d changed files, above confirm_above.changed %d", r.diff.Summary.Changed, changedMax)})
		case FlagBackdated:
			r.raise(FlagBackdated, p.path,
				Fact{"project", p.project + " " + p.version},
				Fact{"listed now", strconv.FormatInt(p.newLen, 10) + " bytes sha256 " + hex.EncodeToString(p.newSum[:])},
				Fact{"upload time claimed", ts(p.uploaded)},
				Fact{"previous listing", fmt.Sprintf("%s (stable v%d), which did not list it", ts(h.PreviousListingTime), h.PreviousStableVersion)},
				Fact{"this listing", ts(h.ListingTime)},
				Fact{"why held", "it claims an upload before the previous listing but was not in it: held back, whatever is decided"})
		}
	}
	for _, l := range r.diff.Limits {
		if l.Name == "changed" || !l.Crossed {
			continue
		}
		r.raise(FlagLimit, l.Name,
			Fact{"count", strconv.FormatInt(l.Count, 10) + " files " + l.Name},
			Fact{"limit", fmt.Sprintf("%s is %d", l.Field(), l.Max)},
			Fact{"decision", fmt.Sprintf(`a limit decision confirms the exact count: {"limit": %q, "count": %d, "decision": "confirm", "reason": …}`, l.Name, l.Count)})
	}
}

// flagDecision returns the decision that settles a raised flag: a
// changed flag's may be a path decision, a limit flag's is the limit
// decision.
func (r *run) flagDecision(f *Flag) (decisions.Decision, bool) {
	switch f.Kind {
	case FlagChanged:
		return r.changedDecision(f.Subject)
	case FlagLimit:
		return r.cfg.Decisions.Limit(f.Subject)
	}
	return r.cfg.Decisions.Flag(f.Kind, f.Subject)
}

// otherFlagDecision checks a flag decision before checkFlags holds it
// against the raised flags: done is true for a changed flag decision
// about a changed path below the confirm_above.changed limit (applied
// all the same); a limit flag decision is refused (ErrDecision), since a
// limit decision names the count it confirms.
func (r *run) otherFlagDecision(set *decisions.Set, d *decisions.Decision) (done bool, err error) {
	switch {
	case d.Flag == FlagLimit:
		return false, fmt.Errorf(`%s:%d: %s: a count above its limit is confirmed by a limit decision naming the count ({"limit": %q, "count": N, …}): %w`, set.Name(), d.Line, d.Names(), d.Subject, ErrDecision)
	case d.Flag == FlagChanged && r.changedByFlag[d.Subject]:
		if k := flagKinds[FlagChanged]; !slices.Contains(k.Choices, d.Choice) {
			return false, fmt.Errorf("%s:%d: %s: %q does not settle it (want %s): %w", set.Name(), d.Line, d.Names(), d.Choice, choiceList(k.Choices), ErrDecision)
		}
		return true, nil
	}
	return false, nil
}

// FlagDecision makes the decision that settles a flag with a choice and
// a reason, in the form a decisions file holds: a limit decision naming
// the count for a limit flag, a flag decision otherwise.
func (d *Diff) FlagDecision(f *Flag, c decisions.Choice, reason string) decisions.Decision {
	if f.Kind == FlagLimit {
		for _, l := range d.Limits {
			if l.Name == f.Subject {
				return decisions.Decision{Limit: l.Name, Count: l.Count, Choice: c, Reason: reason}
			}
		}
	}
	return decisions.Decision{Flag: f.Kind, Subject: f.Subject, Choice: c, Reason: reason}
}

// KindOf returns the flag's kind.
func (f *Flag) KindOf() FlagKind { return *flagKinds[f.Kind] }
