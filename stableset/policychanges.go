package stableset

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
)

// Changes to the policy's nominated and excluded lists (docs/policy.md,
// "Changes to the policy"): the previous ceremony's policy is the one its
// ledger holds, which stable's signature binds by the ledger's digest.
// Every project that entered or left either list since is a red flag in
// the review, and needs a decision of its own with its reason
// (decisions.Nominate, Unnominate, Exclude, Unexclude), which the digest
// and the signed diff carry.

// ErrPolicyChangeUndecided: a change to the policy's lists has no
// decision; (*Diff).Sign refuses.
var ErrPolicyChangeUndecided = errors.New("policy change without a decision")

// PolicyChange is one project that entered or left the policy's
// nominated or excluded list since the previous ceremony.
type PolicyChange struct {
	List    string           `json:"list"`    // "nominated" or "excluded"
	Project string           `json:"project"` // or "*": every project nominated
	Change  decisions.Choice `json:"change"`  // nominate, unnominate, exclude, unexclude, delegate or undelegate
	Decided bool             `json:"decided"`
	// KeysChanged: a delegation of the project existed and its keys or
	// threshold changed (Change is delegate).
	KeysChanged bool   `json:"keys_changed,omitempty"`
	Reason      string `json:"reason,omitempty"` // the decision's
}

// policyChanges compares the policy with the previous ceremony's, as its
// ledger holds it (prevPolicy, the exact bytes), once the ledger is
// verified; the first ceremony has nothing to compare.
func (r *run) policyChanges() error {
	if r.prevLedger == nil {
		return nil
	}
	name := fmt.Sprintf("the policy of stable v%d (in %s)", r.prevLedger.StableVersion, r.pub.ledgerPath)
	prev, err := policy.Parse(r.prevLedger.Policy, name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPublished, err)
	}
	cur := r.cfg.Policy
	nominated := func(p *policy.Policy) []string {
		if p.AllNominated {
			return []string{"*"}
		}
		return p.Nominated
	}
	var out []PolicyChange
	diff := func(list string, before, after []string, in, out2 decisions.Choice) {
		for _, p := range after {
			if !slices.Contains(before, p) {
				out = append(out, PolicyChange{List: list, Project: p, Change: in})
			}
		}
		for _, p := range before {
			if !slices.Contains(after, p) {
				out = append(out, PolicyChange{List: list, Project: p, Change: out2})
			}
		}
	}
	diff("nominated", nominated(prev), nominated(cur), decisions.Nominate, decisions.Unnominate)
	diff("excluded", prev.Excluded, cur.Excluded, decisions.Exclude, decisions.Unexclude)
	slices.SortFunc(out, func(a, b PolicyChange) int {
		if c := strings.Compare(a.Project, b.Project); c != 0 {
			return c
		}
		return strings.Compare(string(a.Change), string(b.Change))
	})
	for i := range out {
		c := &out[i]
		if d, ok := r.cfg.Decisions.Project(c.List, c.Project); ok && d.Choice == c.Change {
			c.Decided, c.Reason = true, d.Reason
		}
	}
	r.diff.PolicyChanges = out
	return nil
}

// checkPolicyDecisions refuses a project decision that matches no change
// of this diff.
func (r *run) checkPolicyDecisions() error {
	set := r.cfg.Decisions
	for _, d := range set.All() {
		if d.Project == "" {
			continue
		}
		found := false
		for _, c := range r.diff.PolicyChanges {
			if c.Project == d.Project && c.Change == d.Choice {
				found = true
			}
		}
		if !found {
			why := "the policy's " + d.Choice.ListOf() + " list did not change so"
			if d.Choice.ListOf() == listDelegations {
				why = "the delegations did not change so"
			} else if r.prevLedger == nil {
				why = "the first ceremony has no previous policy"
			}
			return fmt.Errorf("%s:%d: project %s: decided %s, but %s since the previous ceremony: %w", set.Name(), d.Line, d.Project, d.Choice, why, ErrDecision)
		}
	}
	return nil
}

// undecidedPolicyChanges lists the changes without a decision.
func (d *Diff) undecidedPolicyChanges() []string {
	var out []string
	for _, c := range d.PolicyChanges {
		if !c.Decided {
			out = append(out, fmt.Sprintf("policy %s: %s %s since stable v%d has no decision", c.List, c.verb(), c.Project, d.Header.PreviousStableVersion))
		}
	}
	return out
}

// verb says what a change did to its list.
func (c *PolicyChange) verb() string {
	if c.KeysChanged {
		return "keys or threshold changed for"
	}
	return changeVerb(c.Change)
}

// changeVerb says what a change did to its list.
func changeVerb(c decisions.Choice) string {
	switch c {
	case decisions.Nominate, decisions.Exclude, decisions.Delegate:
		return "added"
	}
	return "removed"
}
