package stableset

import (
	"fmt"
	"io"
	"strings"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
)

// Dropped paths (docs/policy.md, "Dropped paths"): a path a decision took
// out of the stable set stays out.
//
// The new ledger marks a path dropped (ledger.Entry.Dropped) when a
// decision keeps it out of the stable set: a changed file decided "drop",
// or a file whose red flag was settled "drop" (added-to-stable-release).
// Every later ceremony that lists the path holds it back, reason
// "dropped", whatever the policy says of it, and marks it again, until a
// lift decision ({"path": P, "decision": "lift", "reason": …}) ends the
// mark: the file is then decided as any listed file outside the stable
// set. A lift of a path neither taken down nor dropped is refused
// (checkLimits). The mark lives in the ledger record of a listed path: a
// dropped path that leaves the listing loses it, and if listed again with
// an upload time before that listing it is backdated (held and flagged).

// keepsDropped says whether a path the previous ledger marks dropped
// stays out of the stable set: true unless a lift decision ends the mark,
// which is then applied.
func (r *run) keepsDropped(path string) bool {
	if r.lifts(path) {
		r.markDecided(path)
		return false
	}
	return true
}

// lifts says whether a lift decision names path. A lift of a path that is
// not taken down may end a dropped mark, which only the pass can tell
// (takedowns lets it through; checkLimits refuses it if nothing applied
// it). A taken-down path is never marked dropped: it was stable.
func (r *run) lifts(path string) bool {
	if r.liftDrop == nil {
		r.liftDrop = map[string]bool{}
		for _, d := range r.cfg.Decisions.All() {
			if d.Choice == decisions.Lift {
				r.liftDrop[d.Path] = true
			}
		}
	}
	return r.liftDrop[path]
}

// dropFlag applies a flag decision "drop" of a kind about a path, when
// the decisions hold one: the file is held back, reason "dropped", and
// the ledger marks it so.
func (r *run) dropFlag(kind, path string, d *decision) bool {
	if !r.flagDropped(kind, path) {
		return false
	}
	d.cat, d.reason, d.stable, d.kept = Held, ReasonDropped, false, false
	return true
}

// flagDropped says whether a flag decision "drop" of a kind settles a
// flag about path. The decisions are indexed by kind then subject on
// first use, so that the pass looks them up without building a key.
func (r *run) flagDropped(kind, path string) bool {
	if r.flagDrops == nil {
		r.flagDrops = map[string]map[string]bool{}
		for _, d := range r.cfg.Decisions.All() {
			if d.Flag == "" || d.Choice != decisions.Drop {
				continue
			}
			if r.flagDrops[d.Flag] == nil {
				r.flagDrops[d.Flag] = map[string]bool{}
			}
			r.flagDrops[d.Flag][d.Subject] = true
		}
	}
	return r.flagDrops[kind][path]
}

// prevCursor walks the previous ledger's files in step with the reviewed
// pass's entries (reviewed.go), for the marks and the red flags that
// depend on what the previous ceremony saw.
type prevCursor struct {
	started bool
	le      *ledger.RawEntry
	err     error
}

// at returns the previous ledger's record of path, nil if none; paths
// must come in increasing order.
func (c *prevCursor) at(lr *ledger.Reader, path string) (*ledger.RawEntry, error) {
	if lr == nil {
		return nil, nil
	}
	if !c.started {
		c.started = true
		c.le, c.err = lr.NextRaw()
	}
	for c.err == nil && string(c.le.PathBytes) < path {
		c.le, c.err = lr.NextRaw()
	}
	if c.err != nil {
		if c.err == io.EOF {
			return nil, nil
		}
		return nil, c.err
	}
	if string(c.le.PathBytes) == path {
		return c.le, nil
	}
	return nil, nil
}

// marks checks a listed file's dropped mark in the reviewed pass's
// ledger against its entry and the previous ledger, and collects what the
// red flags from the export need, as the pass does.
func (w *passWalk) marks(e *DiffEntry, le *ledger.RawEntry, stable bool) error {
	r := w.r
	pe, err := w.prevAt.at(w.prev, e.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", r.pub.pathOr(), err)
	}
	dropped := !stable && e.Reason == ReasonDropped
	if le.Dropped != dropped {
		return w.edited("its ledger's dropped mark of %s is not what its %s entry says", e.Path, e.Category)
	}
	if !r.takenDown[e.Path] && pe != nil && pe.Dropped && !pe.Stable {
		switch {
		case e.Category == Held && e.Reason == ReasonDropped:
			if r.lifts(e.Path) {
				return w.edited("%s is held dropped, but a decision lifts it", e.Path)
			}
		case r.lifts(e.Path):
			r.markDecided(e.Path)
		default:
			return w.edited("%s is %s, but the previous ledger keeps it dropped and no decision lifts it", e.Path, e.Category)
		}
	}
	if e.Category == Held && e.Reason == ReasonDropped && !(pe != nil && pe.Dropped) &&
		!(pe == nil && w.prev != nil && r.flagDropped(FlagAddedToStableRelease, e.Path)) {
		return w.edited("%s is held dropped, which no decision and no previous mark makes it", e.Path)
	}
	if e.Category == Removed {
		// Taken down: the pass raises no flag from it.
		return nil
	}
	rf := &r.cfg.Policy.RedFlags
	if pe == nil && w.prev != nil && rf.AddedToStableRelease && !r.takenDown[e.Path] {
		r.seen.addAdded(e.Path, e.Project, e.Version)
	}
	if le.Yanked && rf.YankedStable && pe != nil && pe.Stable && !pe.Yanked {
		r.seen.yanked = append(r.seen.yanked, seenFile{path: e.Path, project: e.Project})
	}
	if e.Legacy&export.LegacyMismatch != 0 && rf.NameCollision {
		r.seen.mismatched = append(r.seen.mismatched, seenFile{path: e.Path, project: e.Project, version: e.Version, filename: e.Path[strings.LastIndexByte(e.Path, '/')+1:]})
	}
	return nil
}
