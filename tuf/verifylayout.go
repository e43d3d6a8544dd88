package tuf

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Layout checks VerifyRepository makes on top of the specification's
// client workflow: the delegation layout that makes "stable first, then
// unstable" hold for every standard client, and the clients' size limits.

// Errors returned inside a *VerifyError; check them with errors.Is.
var (
	// ErrLayout: the delegations are not the layout stable's promise
	// depends on (stable first, both non-terminating with the same paths,
	// bins that partition their parent's hash prefixes).
	ErrLayout = errors.New("delegation layout refused")
	// ErrSharedKey: a key is delegated to two roles (metadata does not
	// name its role, so one role's file would verify as the other's); it
	// also matches ErrLayout.
	ErrSharedKey = errors.New("key shared by two delegated roles")
	// ErrTooLarge: a metadata file is larger than the length its referrer
	// names or the client limit for its role.
	ErrTooLarge = errors.New("metadata file too large")
)

// Role names of the layout the tool writes.
const (
	roleStable   = "stable"
	roleUnstable = "unstable"
	// ledgerPattern is delegated to stable only: the ledger it binds.
	ledgerPattern = "ledger/*"
)

// Client limits: python-tuf's and tuf-js's defaults for the size of a
// metadata file whose referrer names no length.
const (
	MaxRootBytes      = 512_000
	MaxTimestampBytes = 16_384
	MaxSnapshotBytes  = 2_000_000
	MaxTargetsBytes   = 5_000_000
)

// sizeLimit is the most bytes a client reads for role: the length its
// referrer lists, or the client default, whichever is smaller.
func sizeLimit(role string, listed int64, referrer string) (int64, string) {
	limit, why := int64(MaxTargetsBytes), "the client limit for a targets role"
	switch role {
	case RoleRoot:
		limit, why = MaxRootBytes, "the client limit for root"
	case RoleTimestamp:
		limit, why = MaxTimestampBytes, "the client limit for timestamp"
	case RoleSnapshot:
		limit, why = MaxSnapshotBytes, "the client limit for snapshot"
	}
	if listed > 0 && listed < limit {
		return listed, referrer + " says " + strconv.FormatInt(listed, 10)
	}
	return limit, why
}

// readBounded reads at most limit bytes of file and refuses a longer file
// without reading the rest. listed is the length referrer lists (0 for
// none). A missing file's error matches fs.ErrNotExist.
func (v *verifier) readBounded(file, role string, listed int64, referrer string) ([]byte, error) {
	limit, why := sizeLimit(role, listed, referrer)
	f, err := v.dir.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		if limit == listed {
			return nil, fmt.Errorf("more than %d bytes, %s: %w: %w", limit, why, ErrTooLarge, ErrHash)
		}
		return nil, fmt.Errorf("more than %d bytes (%s): %w", limit, why, ErrTooLarge)
	}
	return b, nil
}

// checkTopLayout checks targets' delegations: stable first, then
// unstable, both non-terminating, delegated the same path patterns
// (ledger/* to stable only).
func checkTopLayout(t *Targets) error {
	if t.Delegations == nil || len(t.Delegations.Roles) == 0 {
		return fmt.Errorf("targets delegates to no role, want %s then %s: %w", roleStable, roleUnstable, ErrLayout)
	}
	roles := t.Delegations.Roles
	if roles[0].Name != roleStable {
		return fmt.Errorf("the first delegation is to %q, want %s (clients take the first role that lists a path): %w", roles[0].Name, roleStable, ErrLayout)
	}
	var unstable *DelegatedRole
	for i := range roles[1:] {
		if roles[1+i].Name == roleUnstable {
			unstable = &roles[1+i]
		}
	}
	if unstable == nil {
		return fmt.Errorf("no delegation to %s: %w", roleUnstable, ErrLayout)
	}
	stable := &roles[0]
	for _, d := range []*DelegatedRole{stable, unstable} {
		if d.Terminating {
			return fmt.Errorf("the delegation to %s is terminating: %w", d.Name, ErrLayout)
		}
		if len(d.PathHashPrefixes) > 0 {
			return fmt.Errorf("the delegation to %s uses path_hash_prefixes, want paths: %w", d.Name, ErrLayout)
		}
	}
	for _, p := range unstable.Paths {
		if p == ledgerPattern {
			return fmt.Errorf("%s is delegated %q, which only %s may be: %w", roleUnstable, ledgerPattern, roleStable, ErrLayout)
		}
	}
	var sp []string
	for _, p := range stable.Paths {
		if p != ledgerPattern {
			sp = append(sp, p)
		}
	}
	up := append([]string(nil), unstable.Paths...)
	sort.Strings(sp)
	sort.Strings(up)
	if strings.Join(sp, "\n") != strings.Join(up, "\n") {
		return fmt.Errorf("%s is delegated paths %q and %s %q, want the same patterns (ledger/* aside): %w", roleStable, stable.Paths, roleUnstable, unstable.Paths, ErrLayout)
	}
	return nil
}

// span is a half-open range [lo, hi) of 64-bit hash prefixes; hi 0 stands
// for 2^64.
type span struct{ lo, hi uint64 }

func prefixSpan(p string) (span, error) {
	if p == "" || len(p) > 16 {
		return span{}, fmt.Errorf("path_hash_prefix %q: want 1 to 16 hex digits", p)
	}
	v, err := strconv.ParseUint(p, 16, 64)
	if err != nil || strings.ToLower(p) != p {
		return span{}, fmt.Errorf("path_hash_prefix %q is not lowercase hex", p)
	}
	shift := uint(64 - 4*len(p))
	return span{lo: v << shift, hi: (v + 1) << shift}, nil // wraps to 0 at the top
}

func (s span) end() uint64 { return s.hi - 1 } // last value, inclusive

// spans returns the sorted spans of prefixes, or an error if two overlap.
func spans(ps []string, who string) ([]span, error) {
	out := make([]span, 0, len(ps))
	for _, p := range ps {
		s, err := prefixSpan(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", who, err, ErrLayout)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo < out[j].lo })
	return out, nil
}

// merged joins touching spans.
func merged(ss []span) []span {
	var out []span
	for _, s := range ss {
		if n := len(out); n > 0 && out[n-1].hi == s.lo && out[n-1].hi != 0 {
			out[n-1].hi = s.hi
			continue
		}
		out = append(out, s)
	}
	return out
}

// checkBins checks bins, the hash bins role (delegated by parent)
// delegates to: each an explicit hash bin, non-terminating, with hex
// path_hash_prefixes inside parent's (the whole hash space when parent has
// paths), siblings disjoint and together covering parent's prefixes
// exactly.
func checkBins(role string, parent *DelegatedRole, bins []DelegatedRole) error {
	if len(bins) == 0 {
		return nil
	}
	space := []span{{0, 0}} // the whole space
	if len(parent.PathHashPrefixes) > 0 {
		ps, err := spans(parent.PathHashPrefixes, "the delegation to "+role)
		if err != nil {
			return err
		}
		space = merged(ps)
	}
	type owned struct {
		span
		role string
	}
	var all []owned
	for _, d := range bins {
		if d.Terminating {
			return fmt.Errorf("bin %s is terminating (a path it lacks would never reach %s): %w", d.Name, roleUnstable, ErrLayout)
		}
		if len(d.Paths) > 0 || len(d.PathHashPrefixes) == 0 {
			return fmt.Errorf("bin %s must list path_hash_prefixes and no paths: %w", d.Name, ErrLayout)
		}
		ss, err := spans(d.PathHashPrefixes, "bin "+d.Name)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if !within(s, space) {
				return fmt.Errorf("bin %s: a prefix of %v is outside %s's prefixes: %w", d.Name, d.PathHashPrefixes, role, ErrLayout)
			}
			all = append(all, owned{s, d.Name})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].lo < all[j].lo })
	for i := 1; i < len(all); i++ {
		prev := all[i-1]
		if prev.hi == 0 || prev.hi > all[i].lo {
			return fmt.Errorf("bins %s and %s overlap: %w", prev.role, all[i].role, ErrLayout)
		}
	}
	ss := make([]span, len(all))
	for i := range all {
		ss[i] = all[i].span
	}
	if got := merged(ss); !equalSpans(got, space) {
		return fmt.Errorf("the bins of %s do not cover its prefixes (missing hashes from %016x): %w", role, firstGap(got, space), ErrLayout)
	}
	return nil
}

func within(s span, space []span) bool {
	for _, p := range space {
		if s.lo >= p.lo && s.end() <= p.end() {
			return true
		}
	}
	return false
}

func equalSpans(a, b []span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// firstGap returns the first hash value in space that got does not cover;
// got is sorted, disjoint and inside space.
func firstGap(got, space []span) uint64 {
	for _, p := range space {
		at := p.lo
		for _, g := range got {
			if !within(g, []span{p}) {
				continue
			}
			if g.lo != at {
				return at
			}
			at = g.hi
		}
		if at != p.hi {
			return at
		}
	}
	return 0
}

// checkKeys records which role each key of t's delegations is delegated
// to and refuses a key delegated to two roles.
func (v *verifier) checkKeys(t *Targets) error {
	if t.Delegations == nil {
		return nil
	}
	for _, d := range t.Delegations.Roles {
		for _, id := range d.KeyIDs {
			if other, ok := v.keyRole[id]; ok && other != d.Name {
				return fmt.Errorf("key %s is delegated to %s and to %s (a file of one would verify as the other): %w: %w", short(id), other, d.Name, ErrSharedKey, ErrLayout)
			}
			v.keyRole[id] = d.Name
		}
	}
	return nil
}

// checkLayout runs the layout checks for the delegations of role (held in
// file, delegated by scope's last entry).
func (v *verifier) checkLayout(file, role string, t *Targets, scope []*DelegatedRole) error {
	var err error
	switch {
	case role == RoleTargets:
		err = checkTopLayout(t)
	case len(scope) == 1 && role == roleStable:
		err = CheckStableLayout(scope[0], t)
	case len(scope) == 2 && scope[0].Name == roleStable && IsPathRole(scope[1]):
		err = CheckPathRoleFile(scope[1], t)
	case len(scope) > 0 && scope[0].Name == roleStable:
		if t.Delegations != nil {
			err = checkBins(role, scope[len(scope)-1], t.Delegations.Roles)
		}
	}
	if err == nil {
		err = v.checkKeys(t)
	}
	if err != nil {
		return &VerifyError{File: file, Role: role, Err: err}
	}
	return nil
}

// CheckTopLayout checks the delegations of a top-level targets role as
// VerifyRepository does (stable first, then unstable, both
// non-terminating, the same path patterns, ledger/* to stable only) and
// that no key is delegated to two roles: for a ceremony that checks the
// metadata it is about to write, before any key exists. Errors match
// ErrLayout (and ErrSharedKey).
func CheckTopLayout(t *Targets) error {
	if err := checkTopLayout(t); err != nil {
		return err
	}
	v := &verifier{keyRole: map[string]string{}}
	return v.checkKeys(t)
}
