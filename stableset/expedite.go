package stableset

import (
	"errors"
	"fmt"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
)

// Expediting (docs/policy.md, "Expedite"): the policy names files, each
// pinned by SHA-256 with a reason, that may enter the stable set before
// the minimum age. Each one the policy lets in is a red flag of its own in
// the review, and needs a decision of its own (decisions.Expedite): a
// signing refuses an expedited file without one.

// ReasonExpedited is the reason of a file added because the policy
// expedites it and the room decided so.
const ReasonExpedited = "expedited"

// reasonTooYoung is the policy's hold reason that expediting overrides.
const reasonTooYoung = "too-young"

var (
	// ErrExpedite: a file the policy expedites is not in the export, is
	// listed with another SHA-256, or is held back for a reason other than
	// its age (excluded, not nominated, backdated, relisted) or changed;
	// the diff is refused.
	ErrExpedite = errors.New("expedited file refused")
	// ErrExpediteUndecided: a file the policy expedites has no decision;
	// (*Diff).Sign refuses.
	ErrExpediteUndecided = errors.New("expedited file without a decision")
)

// ExpediteState is what the diff made of one of the policy's expedite
// entries.
type ExpediteState string

const (
	// ExpediteApplied: the file is younger than the policy's minimum age
	// and enters the stable set (added, reason "expedited").
	ExpediteApplied ExpediteState = "expedited"
	// ExpediteOldEnough: the file is old enough anyway; it is added as any
	// file is, and the entry has no effect.
	ExpediteOldEnough ExpediteState = "old-enough"
	// ExpediteStable: the file is already stable with this content; the
	// entry has no effect (leave it, or remove it from the policy).
	ExpediteStable ExpediteState = "already-stable"
)

// ExpeditedFile is one of the policy's expedite entries as the diff met
// it.
type ExpeditedFile struct {
	Path    string        `json:"path"`
	Project string        `json:"project"`
	Version string        `json:"version"`
	SHA256  string        `json:"sha256"`
	Reason  string        `json:"reason"` // the policy's
	State   ExpediteState `json:"state"`
	// Decided is true when a decision (decisions.Expedite) lets the
	// applied file in; an applied file without one is a red flag the
	// signing refuses.
	Decided bool `json:"decided"`
	// Decision is the decision's reason, "" without one.
	Decision string `json:"decision,omitempty"`
}

// expediteIndex maps the policy's expedite paths to their index in
// Diff.Expedited; nil when the policy expedites nothing, so that the pass
// looks nothing up.
func (r *run) expediteIndex() map[string]int {
	xs := r.cfg.Policy.Expedite
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]int, len(xs))
	r.diff.Expedited = make([]ExpeditedFile, len(xs))
	for i, x := range xs {
		m[x.Path] = i
		r.diff.Expedited[i] = ExpeditedFile{Path: x.Path, SHA256: fmt.Sprintf("%x", x.SHA256), Reason: x.Reason}
	}
	return m
}

// expedite checks a record the policy expedites (the merger calls it,
// before deciding the record's category): another content than the
// policy pins is refused.
func (r *run) expedite(i int, rec *export.Record) error {
	x := &r.cfg.Policy.Expedite[i]
	if rec.SHA256 != x.SHA256 {
		return fmt.Errorf("policy expedite: %s: the export lists sha256 %x, the policy pins %x: %w", rec.Path, rec.SHA256, x.SHA256, ErrExpedite)
	}
	e := &r.diff.Expedited[i]
	e.Project, e.Version = rec.Project, rec.Version
	return nil
}

// expedited records what the merger decided about an expedited record,
// refusing a file held back for a reason other than its age.
func (r *run) expedited(i int, rec *export.Record, d *decision) error {
	e := &r.diff.Expedited[i]
	switch {
	case d.cat == Added && d.reason == ReasonExpedited:
		e.State = ExpediteApplied
		if dec, ok := r.cfg.Decisions.Path(rec.Path); ok && dec.Choice == decisions.Expedite {
			e.Decided, e.Decision = true, dec.Reason
		}
	case d.cat == Added:
		e.State = ExpediteOldEnough
	case d.cat == Unchanged:
		e.State = ExpediteStable
	case d.cat == Changed:
		return fmt.Errorf("policy expedite: %s: a changed file (the stable set holds other content for this path) is settled by a decision about the change, not expedited: %w", rec.Path, ErrExpedite)
	default:
		return fmt.Errorf("policy expedite: %s (%s %s): held back as %s; expediting overrides only the minimum age: %w", rec.Path, rec.Project, rec.Version, d.reason, ErrExpedite)
	}
	return nil
}

// checkExpedited refuses an expedite entry the export does not list, and
// a decision to expedite a file the diff does not expedite.
func (r *run) checkExpedited() error {
	for _, e := range r.diff.Expedited {
		if e.State == "" {
			return fmt.Errorf("policy expedite: %s: not in the export %s: %w", e.Path, r.cfg.ExportName, ErrExpedite)
		}
	}
	set := r.cfg.Decisions
	for _, d := range set.All() {
		if d.Choice != decisions.Expedite {
			continue
		}
		i, ok := r.expediteAt[d.Path]
		if !ok || r.diff.Expedited[i].State != ExpediteApplied {
			why := "the policy does not expedite it"
			if ok {
				why = "it needs no expediting: " + string(r.diff.Expedited[i].State)
			}
			return fmt.Errorf("%s:%d: path %s: decided expedite, but %s: %w", set.Name(), d.Line, d.Path, why, ErrDecision)
		}
	}
	return nil
}

// undecidedExpedited lists the applied expedite entries without a
// decision.
func (d *Diff) undecidedExpedited() []string {
	var out []string
	for _, e := range d.Expedited {
		if e.State == ExpediteApplied && !e.Decided {
			out = append(out, fmt.Sprintf("expedited: younger than policy: %s (%s %s, %s) has no decision", e.Path, e.Project, e.Version, e.Reason))
		}
	}
	return out
}

// ExpeditedCount is the number of files the diff adds because the policy
// expedites them.
func (d *Diff) ExpeditedCount() int {
	n := 0
	for _, e := range d.Expedited {
		if e.State == ExpediteApplied {
			n++
		}
	}
	return n
}
