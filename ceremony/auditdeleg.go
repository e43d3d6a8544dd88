package ceremony

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// ErrDelegationMismatch: stable's developer roles are not what
// policy.json, the signed diff's decisions or the export make them.
var ErrDelegationMismatch = errors.New("stable's developer delegations do not match the policy")

// delegationCheck is what checkDelegations found: the delegated projects,
// how many of their delegated paths are exact paths of legacy names, and
// how many files of the ledger the patterns were held against.
type delegationCheck struct {
	projects, exactPaths int
	files                int64
}

// checkDelegations holds stable's developer roles (st, in file) against
// the medium's policy.json and the signed diff: every key's proof of
// possession verifies for this ceremony (the signed diff's repository
// and stable version); stable delegates to exactly the policy's
// projects, each to its role with the policy's keys (the same key
// material) and threshold, terminating, its paths the patterns derived
// from the project's name and its two index pages, then only exact paths
// of distribution files; each delegate decision names a delegated
// project, each undelegate decision one that is not. Then the patterns
// are derived again from the new ledger stable binds, which lists every
// file of the export the ceremony saw with its project: a pattern that
// matches another project's file is refused naming it
// (delegation.ErrCollision), and each role's paths must be exactly what
// the derivation gives (the exact paths of the project's own files the
// patterns miss, in path order).
func checkDelegations(dir, file string, st *tuf.Targets, stmt *signeddiff.Statement) (delegationCheck, error) {
	var c delegationCheck
	pb, err := os.ReadFile(filepath.Join(dir, PolicyFile))
	if err != nil {
		return c, err
	}
	p, err := policy.Parse(pb, PolicyFile)
	if err != nil {
		return c, err
	}
	if err := p.VerifyProofs(PolicyFile, stmt.Repository, stmt.StableVersion); err != nil {
		return c, err
	}
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w", file, fmt.Sprintf(format, args...), ErrDelegationMismatch)
	}
	roles := map[string]*tuf.DelegatedRole{}
	pathRoles, _ := tuf.SplitStable(st)
	for i := range pathRoles {
		if project, ok := tuf.DeveloperProject(pathRoles[i].Name); ok {
			roles[project] = &pathRoles[i]
		}
	}
	naming := simpleindex.Layout(p.Naming)
	derivedAll := map[string][]string{}
	for _, d := range p.Delegations {
		r, ok := roles[d.Project]
		if !ok {
			return c, mismatch("%s delegates %s to its developers, stable does not delegate %s", PolicyFile, d.Project, tuf.DeveloperRole(d.Project))
		}
		delete(roles, d.Project)
		if !r.Terminating || r.Threshold != d.Threshold || !slices.Equal(r.KeyIDs, d.KeyIDs()) {
			return c, mismatch("%s: terminating %v, threshold %d, keys %q; %s gives terminating, threshold %d, keys %q", r.Name, r.Terminating, r.Threshold, r.KeyIDs, PolicyFile, d.Threshold, d.KeyIDs())
		}
		for _, k := range d.Keys {
			if got := st.Delegations.Keys[k.Key.ID()]; !got.Equal(k.Key) {
				return c, mismatch("%s: key %s is not the key %s gives", r.Name, k.Key.ID(), PolicyFile)
			}
		}
		hp, jp := naming.PagePaths(d.Project)
		derived := delegation.Patterns(d.Project, hp, jp)
		derivedAll[d.Project] = derived
		if len(r.Paths) < len(derived) || !slices.Equal(r.Paths[:len(derived)], derived) {
			return c, mismatch("%s is delegated %q, want the patterns derived from %s's name first: %q", r.Name, r.Paths, d.Project, derived)
		}
		for _, x := range r.Paths[len(derived):] {
			if !strings.HasPrefix(x, "packages/") || !tuf.IsExactPath(x) {
				return c, mismatch("%s is delegated %q: beyond the derived patterns only exact paths of distribution files are delegated", r.Name, x)
			}
			c.exactPaths++
		}
		c.projects++
	}
	for project := range roles {
		return c, mismatch("stable delegates %s, which %s does not delegate", tuf.DeveloperRole(project), PolicyFile)
	}
	if c.projects > 0 {
		if err := c.againstLedger(dir, file, st, stmt, derivedAll); err != nil {
			return c, err
		}
	}
	for _, d := range stmt.Decisions {
		_, delegated := p.Delegated(d.Project)
		switch {
		case d.Choice == decisions.Delegate && !delegated:
			return c, mismatch("the signed diff decides to delegate %s, which stable does not delegate", d.Project)
		case d.Choice == decisions.Undelegate && delegated:
			return c, mismatch("the signed diff decides to undelegate %s, which stable still delegates", d.Project)
		}
	}
	return c, nil
}

// sameDelegations holds stable's developer roles against the ones a
// recomputed diff makes (the patterns the export gives: derived, then
// the exact paths of the project's files they miss).
func sameDelegations(file string, st *tuf.Targets, d *stableset.Diff, export string) error {
	pathRoles, _ := tuf.SplitStable(st)
	got := map[string][]string{}
	for _, r := range pathRoles {
		if _, ok := tuf.DeveloperProject(r.Name); ok {
			got[r.Name] = r.Paths
		}
	}
	for _, dp := range d.Delegations {
		if !slices.Equal(got[dp.Role], dp.Patterns) {
			return fmt.Errorf("%s delegates %s the paths %q; recomputed from %s: %q: %w", file, dp.Role, got[dp.Role], export, dp.Patterns, ErrDelegationMismatch)
		}
		delete(got, dp.Role)
	}
	for role := range got {
		return fmt.Errorf("%s delegates %s, which the diff recomputed from %s does not: %w", file, role, export, ErrDelegationMismatch)
	}
	return nil
}

// ledgerWalkHook, when set by a test, is called each time againstLedger
// walks a ledger (name: its target path).
var ledgerWalkHook func(name string)

// againstLedger derives the delegated patterns again from the new ledger
// (stable/ledger/<version>.ledger, which stable binds by digest and the
// read-back holds against the bins) and holds stable's developer roles to
// them.
func (c *delegationCheck) againstLedger(dir, file string, st *tuf.Targets, stmt *signeddiff.Statement, derived map[string][]string) error {
	name := fmt.Sprintf("ledger/%d.ledger", stmt.StableVersion)
	if ledgerWalkHook != nil {
		ledgerWalkHook(name)
	}
	f, lr, err := openMediumLedger(dir, name)
	if err != nil {
		return err
	}
	defer f.Close()
	ck := delegation.NewChecker(derived)
	// The exact paths stable delegates beyond the derived patterns, and
	// the project the ledger lists each under.
	pathRoles, _ := tuf.SplitStable(st)
	owner := map[string]string{}
	for _, r := range pathRoles {
		if project, ok := tuf.DeveloperProject(r.Name); ok {
			for _, p := range r.Paths[min(len(derived[project]), len(r.Paths)):] {
				owner[p] = ""
			}
		}
	}
	for {
		e, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c.files++
		if _, ok := owner[e.Path]; ok {
			owner[e.Path] = e.Project
		}
		if err := ck.Add(&export.Record{Path: e.Path, Project: e.Project}); err != nil {
			return fmt.Errorf("%s, against the files %s lists: %w", file, name, err)
		}
	}
	for _, r := range pathRoles {
		project, ok := tuf.DeveloperProject(r.Name)
		if !ok {
			continue
		}
		for _, p := range r.Paths[min(len(derived[project]), len(r.Paths)):] {
			switch o := owner[p]; {
			case o == "":
				return fmt.Errorf("%s delegates %s the path %s, which %s does not list: %w", file, r.Name, p, name, ErrDelegationMismatch)
			case o != project:
				return fmt.Errorf("%s delegates %s the path %s, a file of project %s in %s: %w", file, r.Name, p, o, name, delegation.ErrCollision)
			}
		}
		if want := ck.Patterns(project); !slices.Equal(r.Paths, want) {
			return fmt.Errorf("%s delegates %s the paths %q; derived from the files %s lists: %q: %w", file, r.Name, r.Paths, name, want, ErrDelegationMismatch)
		}
	}
	return nil
}
