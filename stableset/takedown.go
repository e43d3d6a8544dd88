package stableset

import (
	"fmt"
	"maps"
	"slices"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/tuf"
)

// Takedowns: a stable file taken out of the stable set at once, and kept
// out.
//
// A take-down decision names a path of the previous stable set with a
// reason; the ceremony removes it from the bins (a removed entry, reason
// "taken-down"; its project's pages are made again without it) and
// delegates it, before the bins and terminating, to the empty takedown
// role (tuf.TakedownRole), so that a client finds nothing for it and never
// reaches unstable's entry. The set of taken-down paths is read back from
// the published stable's takedown delegation, which the stable threshold
// signed: every later ceremony keeps each path taken down (held, reason
// "taken-down", whatever the policy says of it) until a lift decision,
// itself reviewed with a reason, ends it.

// ReasonTakenDown is the reason of a path a takedown keeps out of the
// stable set: removed in the ceremony that took it down, held after.
const ReasonTakenDown = "taken-down"

// publishedTakedowns returns the paths the published stable delegates to
// the takedown role, refusing a published stable whose path roles the
// layout checks refuse.
func publishedTakedowns(pub *published, deleg *tuf.DelegatedRole) (map[string]bool, error) {
	out := map[string]bool{}
	if pub == nil {
		return out, nil
	}
	st := &pub.stable.Signed
	if err := tuf.CheckStableLayout(deleg, st); err != nil {
		return nil, fmt.Errorf("published stable version %d: %w: %w", pub.version, ErrPublished, err)
	}
	for _, p := range TakedownPaths(st) {
		out[p] = true
	}
	return out, nil
}

// TakedownPaths returns the paths stable (st) delegates to the takedown
// role, as listed; none when it delegates to no takedown role.
func TakedownPaths(st *tuf.Targets) []string {
	pathRoles, _ := tuf.SplitStable(st)
	for i := range pathRoles {
		if pathRoles[i].Name == tuf.TakedownRole {
			return slices.Clone(pathRoles[i].Paths)
		}
	}
	return nil
}

// NextTakedowns is the takedown set a ceremony that started from prev
// and applied ds must have delegated: prev, plus every take-down, less
// every lift, sorted. (Whether each decision was allowed is the
// pipeline's check; this is what an auditor recomputes.)
func NextTakedowns(prev []string, ds []decisions.Decision) []string {
	set := map[string]bool{}
	for _, p := range prev {
		set[p] = true
	}
	for _, d := range ds {
		switch d.Choice {
		case decisions.TakeDown:
			set[d.Path] = true
		case decisions.Lift:
			delete(set, d.Path)
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// takedowns computes the ceremony's takedown set: the published one, plus
// every take-down decision, less every lift. A take-down of a path already
// taken down, a lift of one that is not, and a take-down path that is not
// exact are refused (ErrDecision, naming the decisions file's line). That
// a take-down names a path of the previous stable set is checked once the
// export is merged (checkLimits).
func (r *run) takedowns() error {
	prev, err := publishedTakedowns(r.pub, r.cfg.StableDelegation)
	if err != nil {
		return err
	}
	set := r.cfg.Decisions
	for _, d := range set.All() {
		switch d.Choice {
		case decisions.TakeDown:
			if !tuf.IsExactPath(d.Path) {
				return fmt.Errorf("%s:%d: path %s: a takedown names exact target paths: %w", set.Name(), d.Line, d.Path, ErrDecision)
			}
			if prev[d.Path] {
				return fmt.Errorf("%s:%d: path %s: already taken down (since an earlier ceremony): %w", set.Name(), d.Line, d.Path, ErrDecision)
			}
		case decisions.Lift:
			if !prev[d.Path] {
				// Perhaps a dropped path (dropped.go): checkLimits
				// refuses it if the pass meets no such path.
				continue
			}
			r.markDecided(d.Path)
		}
	}
	r.diff.Takedowns = NextTakedowns(slices.Collect(maps.Keys(prev)), set.All())
	r.takenDown = make(map[string]bool, len(r.diff.Takedowns))
	for _, p := range r.diff.Takedowns {
		r.takenDown[p] = true
	}
	return nil
}

// takeDown decides a path of the takedown set: a previous stable file
// leaves the stable set (removed, and its take-down decision is applied);
// any other listed file stays held.
func (r *run) takeDown(path string, wasStable bool, d *decision) {
	if wasStable {
		d.cat, d.reason, d.stable, d.kept = Removed, ReasonTakenDown, false, false
		r.markDecided(path)
		return
	}
	d.cat, d.reason, d.stable = Held, ReasonTakenDown, false
}

func (r *run) markDecided(path string) {
	if r.decided == nil {
		r.decided = map[string]bool{}
	}
	r.decided[path] = true
}
