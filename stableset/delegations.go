package stableset

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// Developer delegations (docs/policy.md, "Developer delegations").
//
// A project the policy delegates leaves the stable bins: stable delegates
// its paths, before the bins and terminating, to the role
// tuf.DeveloperRole(project), whose metadata its developers sign with
// their keys. The pipeline verifies each key's proof of possession for
// this ceremony (repository and new stable version), derives the
// project's patterns (stableset/delegation) and holds them against every
// file of the export: a pattern matching another project's file is
// refused naming it; a file of the project they miss is delegated by its
// exact path. The project's files are removed from the stable set (were
// stable) or held (were not), reason "delegated", and its index pages
// leave the bins: the developers sign them. The previous delegations are
// the developer roles of the published stable, which the stable
// threshold signed: a delegation added or changed (keys, threshold) is a
// change of the "delegations" list that needs a delegate decision, a
// removed one an undelegate decision; after a removal the project's files
// are judged like any file that is not stable, so those old enough fall
// back to the bins in the same ceremony.

// ReasonDelegated is the reason of a delegated project's file: removed
// from the stable set (was stable) or held (was not).
const ReasonDelegated = "delegated"

// ErrDelegation: a developer delegation cannot be made as the policy
// asks (a taken-down path its patterns match).
var ErrDelegation = errors.New("developer delegation refused")

// DelegatedProject is a project the new stable delegates to its
// developers, as it is delegated.
type DelegatedProject struct {
	Project   string   `json:"project"`
	Role      string   `json:"role"`
	Threshold int      `json:"threshold"`
	KeyIDs    []string `json:"keyids"`
	// Patterns are the delegated paths: the derived patterns, the index
	// pages, then the exact paths of the project's files they miss.
	Patterns []string `json:"patterns"`
	// Files is the number of the project's files in the export.
	Files int `json:"files"`
}

// DelegatedFiles is the number of files the diff leaves to developer
// roles.
func (d *Diff) DelegatedFiles() int {
	n := 0
	for _, p := range d.Delegations {
		n += p.Files
	}
	return n
}

// setupDelegations verifies the proofs of possession of the policy's
// delegations for this ceremony and makes the checker the merger feeds
// every record (classify, once the export's header is read).
func (r *run) setupDelegations() error {
	ds := r.cfg.Policy.Delegations
	if len(ds) == 0 {
		return nil
	}
	if err := r.cfg.Policy.VerifyProofs("policy", r.hdr.Repository, r.version); err != nil {
		return err
	}
	pats := make(map[string][]string, len(ds))
	r.delegated = make(map[string]bool, len(ds))
	naming := simpleindex.Layout(r.cfg.Policy.Naming)
	for _, d := range ds {
		hp, jp := naming.PagePaths(d.Project)
		pats[d.Project] = delegation.Patterns(d.Project, hp, jp)
		r.delegated[d.Project] = true
	}
	r.checker = delegation.NewChecker(pats)
	return nil
}

// delegate decides a record of a delegated project: a stable file leaves
// the stable set (removed), any other stays held, reason "delegated".
// A taken-down path of a delegated project is refused: a path is either
// taken down or its developers', not both.
func (r *run) delegate(rec *export.Record, wasStable bool, d *decision) error {
	if r.takenDown[rec.Path] {
		return fmt.Errorf("policy delegations: %s of project %s is taken down; lift the takedown or do not delegate %s: %w", rec.Path, rec.Project, rec.Project, ErrDelegation)
	}
	if wasStable {
		d.cat, d.reason, d.stable, d.kept = Removed, ReasonDelegated, false, false
		return nil
	}
	d.cat, d.reason, d.stable = Held, ReasonDelegated, false
	return nil
}

// finishDelegations fills in Diff.Delegations once every record was
// checked, refuses a taken-down path a delegated pattern matches, and
// adds the changes since the published stable's developer roles to the
// diff's policy changes (list "delegations").
func (r *run) finishDelegations() error {
	for _, d := range r.cfg.Policy.Delegations {
		dp := DelegatedProject{Project: d.Project, Role: tuf.DeveloperRole(d.Project), Threshold: d.Threshold, KeyIDs: d.KeyIDs(),
			Patterns: r.checker.Patterns(d.Project), Files: r.checker.Files(d.Project)}
		for _, p := range r.diff.Takedowns {
			for _, pat := range dp.Patterns {
				if delegation.Match(pat, p) {
					return fmt.Errorf("policy delegations: %s's pattern %q matches %s, which is taken down; lift the takedown or do not delegate %s: %w", d.Project, pat, p, d.Project, ErrDelegation)
				}
			}
		}
		r.diff.Delegations = append(r.diff.Delegations, dp)
	}
	prev := map[string]*tuf.DelegatedRole{}
	if r.pub != nil {
		pathRoles, _ := tuf.SplitStable(&r.pub.stable.Signed)
		for i := range pathRoles {
			if p, ok := tuf.DeveloperProject(pathRoles[i].Name); ok {
				prev[p] = &pathRoles[i]
			}
		}
	}
	var out []PolicyChange
	for _, dp := range r.diff.Delegations {
		old, ok := prev[dp.Project]
		switch {
		case !ok:
			out = append(out, PolicyChange{List: listDelegations, Project: dp.Project, Change: decisions.Delegate})
		case old.Threshold != dp.Threshold || !sameIDs(old.KeyIDs, dp.KeyIDs):
			out = append(out, PolicyChange{List: listDelegations, Project: dp.Project, Change: decisions.Delegate, KeysChanged: true})
		}
		delete(prev, dp.Project)
	}
	for p := range prev {
		out = append(out, PolicyChange{List: listDelegations, Project: p, Change: decisions.Undelegate})
	}
	for i := range out {
		c := &out[i]
		if d, ok := r.cfg.Decisions.Project(c.List, c.Project); ok && d.Choice == c.Change {
			c.Decided, c.Reason = true, d.Reason
		}
	}
	r.diff.PolicyChanges = append(r.diff.PolicyChanges, out...)
	slices.SortFunc(r.diff.PolicyChanges, func(a, b PolicyChange) int {
		if c := strings.Compare(a.Project, b.Project); c != 0 {
			return c
		}
		return strings.Compare(string(a.Change), string(b.Change))
	})
	return nil
}

// listDelegations is the name of the delegations list in policy changes.
const listDelegations = "delegations"

func sameIDs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// delegationRoles returns stable's delegations to the developer roles,
// in the diff's order (by project), and their keys.
func (d *Diff) delegationRoles() ([]tuf.DelegatedRole, map[string]*keys.Key) {
	ks := map[string]*keys.Key{}
	var roles []tuf.DelegatedRole
	for _, dp := range d.Delegations {
		pd, _ := d.run.cfg.Policy.Delegated(dp.Project)
		for _, k := range pd.Keys {
			ks[k.Key.ID()] = k.Key
		}
		roles = append(roles, tuf.DelegatedRole{Name: dp.Role, KeyIDs: slices.Clone(dp.KeyIDs), Threshold: dp.Threshold, Terminating: true, Paths: slices.Clone(dp.Patterns)})
	}
	return roles, ks
}
