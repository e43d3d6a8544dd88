package tuf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/keys"
)

// Stable's path roles.
//
// stable's delegations come in two parts, in this order:
//
//  1. path roles: delegations by paths, each terminating, so that a path
//     one of them names is decided there and never reaches the bins or
//     unstable. Two kinds share the mechanism: the takedown role
//     (TakedownRole: exact paths, an empty role, so a client finds
//     nothing for a taken-down file) and developer roles (a project's
//     paths delegated to its developers' keys);
//  2. the hash bins: explicit, non-terminating, by path_hash_prefixes
//     (checkBins).
//
// A client searches the delegations in order, so a path role before the
// bins wins over the bins and, being terminating, over unstable.

// TakedownRole is the name of the empty role stable delegates the
// taken-down paths to.
const TakedownRole = "takedown"

// DeveloperRolePrefix begins the name of a developer role: stable
// delegates project P's paths to the role "project-P", which P's
// developers sign (docs/policy.md, "Developer delegations"). The prefix
// keeps a project's role apart from the takedown role and the bins
// (stable-…), whatever the project is called.
const DeveloperRolePrefix = "project-"

// DeveloperRole is the name of the role project (PEP 503-normalised) is
// delegated to.
func DeveloperRole(project string) string { return DeveloperRolePrefix + project }

// DeveloperProject returns the project a developer role is named after,
// and whether role is a developer role's name: the prefix, then a
// PEP 503-normalised name (lowercase letters and digits, single "-"
// between them).
func DeveloperProject(role string) (string, bool) {
	p, ok := strings.CutPrefix(role, DeveloperRolePrefix)
	ok = ok && p != "" && len(p) <= 255 && p[0] != '-' && p[len(p)-1] != '-' && !strings.Contains(p, "--")
	for i := 0; ok && i < len(p); i++ {
		c := p[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	return p, ok
}

// IsExactPath reports whether p, used as a delegation pattern, matches
// exactly the path p: no shell wildcard (*, ?, [) and no escape (\), no
// empty segment, no "." or ".." segment.
func IsExactPath(p string) bool {
	if p == "" || strings.ContainsAny(p, `*?[]\`) {
		return false
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}

// TakedownDelegation is the delegation of paths (exact, sorted, distinct)
// to the takedown role with key k alone: terminating, threshold 1.
func TakedownDelegation(paths []string, k *keys.Key) DelegatedRole {
	return DelegatedRole{Name: TakedownRole, KeyIDs: []string{k.ID()}, Threshold: 1, Terminating: true, Paths: slices.Clone(paths)}
}

// IsPathRole reports whether d is a path role under stable: delegated by
// paths, not by hash prefixes. Whether it is terminating is a layout
// check (CheckStableLayout).
func IsPathRole(d *DelegatedRole) bool { return len(d.Paths) > 0 && len(d.PathHashPrefixes) == 0 }

// SplitStable returns stable's path roles (the leading delegations by
// paths) and its bins (the rest), as slices of t's delegations.
func SplitStable(t *Targets) (pathRoles, bins []DelegatedRole) {
	if t.Delegations == nil {
		return nil, nil
	}
	roles := t.Delegations.Roles
	n := 0
	for n < len(roles) && IsPathRole(&roles[n]) {
		n++
	}
	return roles[:n], roles[n:]
}

// CheckStableLayout checks stable's own delegations (stable delegated by
// parent): the path roles first, each terminating, delegated by paths
// only, every path reachable through parent, each either the takedown
// role or a developer role (DeveloperProject) whose threshold its keys
// can meet, none named twice; the takedown role's paths
// exact and distinct, none matched by another path role's patterns (a path
// is either taken down or handed to developers, not both); then the bins
// (checkBins), none of them delegated by paths. Errors match ErrLayout.
// That the takedown role's file is empty is checked when it is read
// (CheckPathRoleFile).
func CheckStableLayout(parent *DelegatedRole, t *Targets) error {
	pathRoles, bins := SplitStable(t)
	var takedown *DelegatedRole
	seen := map[string]bool{}
	for i := range pathRoles {
		d := &pathRoles[i]
		if !d.Terminating {
			return fmt.Errorf("path role %s is not terminating (a path it lacks would fall through to the bins and %s): %w", d.Name, roleUnstable, ErrLayout)
		}
		for _, p := range d.Paths {
			// A pattern is taken as a path: its segments' wildcards
			// fall within stable's "*" segments.
			if !parent.Matches(p) {
				return fmt.Errorf("path role %s is delegated %q, which no path delegated to %s reaches: %w", d.Name, p, roleStable, ErrLayout)
			}
		}
		if seen[d.Name] {
			return fmt.Errorf("path role %s is delegated twice: %w", d.Name, ErrLayout)
		}
		seen[d.Name] = true
		if d.Name == TakedownRole {
			takedown = d
			continue
		}
		if _, ok := DeveloperProject(d.Name); !ok {
			return fmt.Errorf("path role %s is neither %s nor a developer role (%s<project>): %w", d.Name, TakedownRole, DeveloperRolePrefix, ErrLayout)
		}
		if d.Threshold < 1 || d.Threshold > len(d.KeyIDs) {
			return fmt.Errorf("developer role %s has threshold %d and %d keys: %w", d.Name, d.Threshold, len(d.KeyIDs), ErrLayout)
		}
	}
	for i := range bins {
		d := &bins[i]
		if _, dev := DeveloperProject(d.Name); IsPathRole(d) && d.Terminating || d.Name == TakedownRole || dev {
			return fmt.Errorf("path role %s comes after the bins (path roles come before them, or a client would reach a bin first): %w", d.Name, ErrLayout)
		}
	}
	if takedown != nil {
		seen := map[string]bool{}
		for _, p := range takedown.Paths {
			if !IsExactPath(p) {
				return fmt.Errorf("%s is delegated %q, want exact paths (no wildcard): %w", TakedownRole, p, ErrLayout)
			}
			if seen[p] {
				return fmt.Errorf("%s is delegated %q twice: %w", TakedownRole, p, ErrLayout)
			}
			seen[p] = true
			for i := range pathRoles {
				if d := &pathRoles[i]; d.Name != TakedownRole && d.Matches(p) {
					return fmt.Errorf("%s is delegated %q, which path role %s's patterns also match: %w", TakedownRole, p, d.Name, ErrLayout)
				}
			}
		}
	}
	return checkBins(roleStable, parent, bins)
}

// CheckPathRoleFile checks the metadata of path role d under stable: the
// takedown role lists no target and delegates to nobody; a path role
// delegates to nobody (developer roles list their project's targets,
// which VerifyRepository checks against the delegated paths). Errors match
// ErrLayout.
func CheckPathRoleFile(d *DelegatedRole, t *Targets) error {
	if t.Delegations != nil && len(t.Delegations.Roles) > 0 {
		return fmt.Errorf("path role %s delegates to %s: a path role under %s delegates to nobody: %w", d.Name, t.Delegations.Roles[0].Name, roleStable, ErrLayout)
	}
	if d.Name == TakedownRole && len(t.Targets) > 0 {
		var first string
		for p := range t.Targets {
			if first == "" || p < first {
				first = p
			}
		}
		return fmt.Errorf("%s lists %d targets (first %s), want none: a taken-down path must resolve to nothing: %w", TakedownRole, len(t.Targets), first, ErrLayout)
	}
	return nil
}
