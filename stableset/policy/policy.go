package policy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/templates"
)

// Policy is what the stable keyholders decided about which files their
// role signs; docs/policy.md describes the file.
type Policy struct {
	// MinAgeDays is how long ago, in days of 24 hours, a file must have
	// been uploaded to be eligible.
	MinAgeDays int
	// AllNominated is true when every project is nominated ("*").
	AllNominated bool
	// Nominated lists the nominated projects, sorted, when AllNominated is
	// false.
	Nominated []string
	// Excluded lists, sorted, the projects that stay with the online role
	// whatever their age.
	Excluded []string
	// ConfirmAbove holds the counts above which the review demands an
	// extra confirmation.
	ConfirmAbove Limits
	// RedFlags holds the thresholds of the red flags the diff raises from
	// what the export shows (docs/policy.md, "Red flags").
	RedFlags RedFlags
	// TargetMode says which stable files are TUF targets of the stable
	// role: ModeFilesPages (the default) or ModePages.
	TargetMode TargetMode
	// Naming is the repository's naming layout of the index pages:
	// NamingPEP458 (the default) or NamingWarehouse.
	Naming Naming
	// Expedite lists, sorted by path, the files that enter the stable
	// set before they are MinAgeDays old, each pinned by its SHA-256 and
	// with the reason (docs/policy.md, "Expedite"). Empty, never nil.
	Expedite []Expedited
	// Delegations lists, sorted by project, the projects handed to their
	// developers (docs/policy.md, "Developer delegations"). Empty, never
	// nil.
	Delegations []Delegation

	nominated, excluded map[string]bool
	expedite            map[string]int // path -> index in Expedite
	raw                 []byte         // the bytes parsed, exactly
}

// Bytes returns the exact bytes the policy was parsed from (for Default,
// the built-in file): what the signed diff names by SHA-256 and the
// ceremony writes to the media, so an auditor sees the file the room
// reviewed, not a re-serialised form.
func (p *Policy) Bytes() []byte { return append([]byte(nil), p.raw...) }

// Limits are counts of diff entries by kind.
type Limits struct {
	Added   int64 `json:"added"`
	Removed int64 `json:"removed"`
	Changed int64 `json:"changed"`
}

// RedFlags are the thresholds of the red flags raised from the export.
type RedFlags struct {
	// ProjectLossPercent: a project whose stable view loses more than
	// this percentage of its stable files (removed from the export or
	// dropped by a decision) is a red flag ("project-loss"). 100 never
	// flags; 0 flags any loss.
	ProjectLossPercent int64 `json:"project_loss_percent"`
	// AddedToStableRelease: a file added to a release that had stable
	// files at the previous ceremony is a red flag
	// ("added-to-stable-release"). On by default.
	AddedToStableRelease bool `json:"added_to_stable_release"`
	// NameCollision: a file whose name names another project of the
	// export than the one it is listed under is a red flag
	// ("name-collision"). On by default.
	NameCollision bool `json:"name_collision"`
	// YankedStable: a stable file the export marks yanked, and did not
	// at the previous ceremony, is a red flag ("yanked-stable"). On by
	// default.
	YankedStable bool `json:"yanked_stable"`
}

// DefaultRedFlags are the red flags' thresholds and switches when the
// policy does not set them.
var DefaultRedFlags = RedFlags{ProjectLossPercent: DefaultProjectLossPercent, AddedToStableRelease: true, NameCollision: true, YankedStable: true}

// DefaultProjectLossPercent is red_flags.project_loss_percent when the
// policy does not set it.
const DefaultProjectLossPercent = 50

// TargetMode says what the stable role lists as TUF targets.
type TargetMode string

const (
	// ModeFilesPages lists the distribution files and the index pages
	// (PEP 458).
	ModeFilesPages TargetMode = "files+pages"
	// ModePages lists only the index pages, which pin every file they
	// name by its hash (Warehouse's plan for TUF).
	ModePages TargetMode = "pages"
)

// ListsFiles reports whether the mode lists distribution files as targets.
func (m TargetMode) ListsFiles() bool { return m != ModePages }

// Naming is a naming layout of the stable index pages: which target paths
// they have (simpleindex.Layout gives them); docs/tuf-layout.md sets the
// layouts side by side.
type Naming string

const (
	// NamingPEP458: simple/<project>/index.html and index.json.
	NamingPEP458 Naming = "pep458"
	// NamingWarehouse: simple/<project>/<project>.html and .json, which a
	// consistent-snapshot client fetches as
	// simple/<project>/<blake2b-256>.<project>.html, the name Warehouse
	// stores each rendered page under.
	NamingWarehouse Naming = "warehouse"
)

// Expedited is one file the policy expedites: it may enter the stable
// set younger than MinAgeDays, when the export lists it with exactly
// this SHA-256 and the room decides so (decisions.Expedite).
type Expedited struct {
	Path   string   // the file's target path, packages/…
	SHA256 [32]byte // the content the room vouches for
	Reason string   // why, e.g. an advisory id: decisions' rules for a reason
}

// ExpeditedFile returns the policy's expedite entry for a target path.
func (p *Policy) ExpeditedFile(path string) (Expedited, bool) {
	i, ok := p.expedite[path]
	if !ok {
		return Expedited{}, false
	}
	return p.Expedite[i], true
}

// HoldReason says why a file is not (yet) in the stable set.
type HoldReason int

const (
	HoldNone         HoldReason = iota // eligible
	HoldTooYoung                       // uploaded less than MinAgeDays ago
	HoldExcluded                       // the project is excluded
	HoldNotNominated                   // the project is not nominated
	HoldBackdated                      // claims an old upload time the ledger contradicts (decided by the ledger, never by Eligible)
)

func (h HoldReason) String() string {
	switch h {
	case HoldNone:
		return "eligible"
	case HoldTooYoung:
		return "too young"
	case HoldExcluded:
		return "excluded"
	case HoldNotNominated:
		return "not nominated"
	case HoldBackdated:
		return "backdated"
	}
	return "HoldReason(" + strconv.Itoa(int(h)) + ")"
}

// Eligible says whether the policy lets r into the stable set at time now,
// and if not, why. Exclusion is checked first, then nomination, then age:
// a file is old enough when now - UploadTime >= MinAgeDays × 24 h.
func (p *Policy) Eligible(r *export.Record, now time.Time) (ok bool, reason HoldReason) {
	if p.excluded[r.Project] {
		return false, HoldExcluded
	}
	if !p.AllNominated && !p.nominated[r.Project] {
		return false, HoldNotNominated
	}
	if now.Sub(r.UploadTime) < time.Duration(p.MinAgeDays)*24*time.Hour {
		return false, HoldTooYoung
	}
	return true, HoldNone
}

// MaxMinAgeDays bounds min_age_days (ten years).
const MaxMinAgeDays = 3650

// Error is an error in a policy file.
type Error struct {
	File  string
	Line  int    // 1-based line of the offending value
	Field string // e.g. "excluded[2]" or "confirm_above.added"; empty for the whole file
	Err   error  // wraps one of export.ErrSyntax, export.ErrType, export.ErrUnknownField, export.ErrDuplicateField, export.ErrBadValue, export.ErrBadProject
}

func (e *Error) Error() string {
	s := e.File + ":" + strconv.Itoa(e.Line) + ": "
	if e.Field != "" {
		s += safeField(e.Field) + ": "
	}
	return s + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// defaultPolicyJSON is the documented default policy, embedded from
// templates/files/policy.json.
var defaultPolicyJSON = string(templates.MustRead("policy.json"))

// Default returns the documented default policy
// (templates/files/policy.json).
func Default() *Policy {
	p, err := Parse([]byte(defaultPolicyJSON), "default policy")
	if err != nil {
		panic("policy: the built-in default policy is invalid: " + err.Error())
	}
	return p
}

// maxPolicySize bounds what Load reads.
const maxPolicySize = 1 << 20

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	if len(data) > maxPolicySize {
		return nil, &Error{File: path, Line: 1, Err: fmt.Errorf("%w: larger than %d bytes", export.ErrBadValue, maxPolicySize)}
	}
	return Parse(data, path)
}

// Parse parses a policy. Absent fields take their default values;
// unknown, duplicate, case-folded or mistyped fields and trailing data are
// refused by the one strict decoder (internal/strictjson), and invalid or
// unnormalised project names, duplicates in a list and a project both
// nominated and excluded after it; every refusal is a *Error naming
// the line and the field. name is used in errors.
func Parse(data []byte, name string) (*Policy, error) {
	var f policyFile
	if err := strictjson.Decode(data, name, &f); err != nil {
		var se *strictjson.Error
		if !errors.As(err, &se) {
			return nil, &Error{File: name, Line: 1, Err: fmt.Errorf("%w: %w", export.ErrSyntax, err)}
		}
		return nil, &Error{File: name, Line: se.Line, Field: se.Path, Err: withSentinel{policySentinel(se.Err), se.Err}}
	}
	return f.policy(data, name)
}

// policyFile is the policy file as the strict decoder reads it: every field
// may be absent.
type policyFile struct {
	MinAgeDays   *int64            `json:"min_age_days,omitempty"`
	TargetMode   *string           `json:"target_mode,omitempty"`
	Naming       *string           `json:"naming,omitempty"`
	Nominated    *[]string         `json:"nominated,omitempty"`
	Excluded     *[]string         `json:"excluded,omitempty"`
	ConfirmAbove *limitsFile       `json:"confirm_above,omitempty"`
	RedFlags     *redFlagsFile     `json:"red_flags,omitempty"`
	Expedite     *[]expeditedFile  `json:"expedite,omitempty"`
	Delegations  *[]delegationFile `json:"delegations,omitempty"`
}

type redFlagsFile struct {
	ProjectLossPercent   *int64 `json:"project_loss_percent,omitempty"`
	AddedToStableRelease *bool  `json:"added_to_stable_release,omitempty"`
	NameCollision        *bool  `json:"name_collision,omitempty"`
	YankedStable         *bool  `json:"yanked_stable,omitempty"`
}

type expeditedFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Reason string `json:"reason"`
}

type limitsFile struct {
	Added   *int64 `json:"added,omitempty"`
	Removed *int64 `json:"removed,omitempty"`
	Changed *int64 `json:"changed,omitempty"`
}

// policySentinel maps the strict decoder's refusals to the policy's.
func policySentinel(err error) error {
	switch {
	case errors.Is(err, strictjson.ErrDuplicateKey):
		return export.ErrDuplicateField
	case errors.Is(err, strictjson.ErrUnknownField), errors.Is(err, strictjson.ErrMissingField):
		return export.ErrUnknownField
	case errors.Is(err, strictjson.ErrType), errors.Is(err, strictjson.ErrNull):
		return export.ErrType
	}
	return export.ErrSyntax
}

// withSentinel is the strict decoder's error, which is also the policy's
// sentinel.
type withSentinel struct{ sentinel, err error }

func (e withSentinel) Error() string   { return e.err.Error() }
func (e withSentinel) Unwrap() []error { return []error{e.sentinel, e.err} }

func (f *policyFile) policy(data []byte, name string) (*Policy, error) {
	fail := func(field string, sentinel error, format string, args ...any) error {
		err := sentinel
		if format != "" {
			err = fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
		}
		return &Error{File: name, Line: max(strictjson.Line(data, field), 1), Field: field, Err: err}
	}
	// bad reports a decisions.ErrBadValue check's error as the policy's
	// export.ErrBadValue.
	bad := func(field string, err error) error {
		return &Error{File: name, Line: max(strictjson.Line(data, field), 1), Field: field, Err: withSentinel{export.ErrBadValue, err}}
	}
	integer := func(field string, n *int64, max int64, dst *int64) error {
		if n == nil {
			return nil
		}
		if *n < 0 || *n > max {
			return fail(field, export.ErrBadValue, "%d is outside 0 to %d", *n, max)
		}
		*dst = *n
		return nil
	}
	names := func(field string, list []string, star bool) ([]string, error) {
		seen := map[string]bool{}
		for i, s := range list {
			f := field + "[" + strconv.Itoa(i) + "]"
			if !(star && s == "*") {
				if err := export.CheckProject(s); err != nil {
					return nil, fail(f, err, "")
				}
			}
			if seen[s] {
				return nil, fail(f, export.ErrBadValue, "%q is listed twice", s)
			}
			seen[s] = true
		}
		out := slices.Clone(list)
		slices.Sort(out)
		return out, nil
	}
	p := &Policy{MinAgeDays: 90, AllNominated: true, ConfirmAbove: Limits{Added: 2000000, Removed: 10000, Changed: 0}, RedFlags: DefaultRedFlags, TargetMode: ModeFilesPages, Naming: NamingPEP458}
	if f.TargetMode != nil {
		switch m := TargetMode(*f.TargetMode); m {
		case ModeFilesPages, ModePages:
			p.TargetMode = m
		default:
			return nil, fail("target_mode", export.ErrBadValue, "%q, want %q or %q", *f.TargetMode, ModeFilesPages, ModePages)
		}
	}
	if f.Naming != nil {
		switch n := Naming(*f.Naming); n {
		case NamingPEP458, NamingWarehouse:
			p.Naming = n
		default:
			return nil, fail("naming", export.ErrBadValue, "%q, want %q or %q", *f.Naming, NamingPEP458, NamingWarehouse)
		}
	}
	var age int64
	if f.MinAgeDays != nil {
		if err := integer("min_age_days", f.MinAgeDays, MaxMinAgeDays, &age); err != nil {
			return nil, err
		}
		p.MinAgeDays = int(age)
	}
	var nominated []string
	if f.Nominated != nil {
		var err error
		if nominated, err = names("nominated", *f.Nominated, true); err != nil {
			return nil, err
		}
	}
	if f.Excluded != nil {
		var err error
		if p.Excluded, err = names("excluded", *f.Excluded, false); err != nil {
			return nil, err
		}
	}
	if c := f.ConfirmAbove; c != nil {
		for _, l := range []struct {
			field string
			n     *int64
			dst   *int64
		}{{"added", c.Added, &p.ConfirmAbove.Added}, {"removed", c.Removed, &p.ConfirmAbove.Removed}, {"changed", c.Changed, &p.ConfirmAbove.Changed}} {
			if err := integer("confirm_above."+l.field, l.n, 1<<53, l.dst); err != nil {
				return nil, err
			}
		}
	}
	if rf := f.RedFlags; rf != nil {
		if err := integer("red_flags.project_loss_percent", rf.ProjectLossPercent, 100, &p.RedFlags.ProjectLossPercent); err != nil {
			return nil, err
		}
		for _, sw := range []struct {
			v   *bool
			dst *bool
		}{{rf.AddedToStableRelease, &p.RedFlags.AddedToStableRelease}, {rf.NameCollision, &p.RedFlags.NameCollision}, {rf.YankedStable, &p.RedFlags.YankedStable}} {
			if sw.v != nil {
				*sw.dst = *sw.v
			}
		}
	}
	if f.Nominated != nil {
		if len(nominated) == 0 {
			return nil, fail("nominated", export.ErrBadValue, `empty: nominate projects, or write ["*"] for all`)
		}
		if slices.Contains(nominated, "*") {
			if len(nominated) > 1 {
				return nil, fail("nominated", export.ErrBadValue, `"*" must stand alone`)
			}
		} else {
			p.AllNominated = false
			p.Nominated = nominated
		}
	}
	if slices.Contains(p.Excluded, "*") {
		return nil, fail("excluded", export.ErrBadValue, `"*" is only for nominated`)
	}
	p.excluded = make(map[string]bool, len(p.Excluded))
	for _, e := range p.Excluded {
		p.excluded[e] = true
	}
	if !p.AllNominated {
		p.nominated = make(map[string]bool, len(p.Nominated))
		for _, n := range p.Nominated {
			if p.excluded[n] {
				return nil, fail("excluded", export.ErrBadValue, "%q is also nominated", n)
			}
			p.nominated[n] = true
		}
	}
	if p.Excluded == nil {
		p.Excluded = []string{}
	}
	p.Expedite = []Expedited{}
	p.expedite = map[string]int{}
	if f.Expedite != nil {
		for i, e := range *f.Expedite {
			field := "expedite[" + strconv.Itoa(i) + "]"
			if err := checkTargetPath(e.Path); err != nil {
				return nil, bad(field+".path", err)
			}
			if _, dup := p.expedite[e.Path]; dup {
				return nil, fail(field+".path", export.ErrBadValue, "%q is listed twice", e.Path)
			}
			x := Expedited{Path: e.Path, Reason: e.Reason}
			if len(e.SHA256) != 64 || !export.IsLowerHex(e.SHA256) {
				return nil, fail(field+".sha256", export.ErrBadValue, "%q: want 64 lowercase hex digits", e.SHA256)
			}
			hex.Decode(x.SHA256[:], []byte(e.SHA256)) // 64 hex digits: cannot fail
			if err := decisions.CheckReason(e.Reason); err != nil {
				return nil, bad(field+".reason", err)
			}
			p.expedite[e.Path] = len(p.Expedite)
			p.Expedite = append(p.Expedite, x)
		}
		slices.SortFunc(p.Expedite, func(a, b Expedited) int { return strings.Compare(a.Path, b.Path) })
		for i, e := range p.Expedite {
			p.expedite[e.Path] = i
		}
	}
	if err := f.delegations(p, fail); err != nil {
		return nil, err
	}
	p.raw = append([]byte(nil), data...)
	return p, nil
}

// MarshalJSON encodes the policy with every field present, in the layout
// of templates/files/policy.json; Parse reads it back to an equal
// policy.
func (p *Policy) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	list := func(xs []string) {
		b.WriteByte('[')
		for i, x := range xs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(x)) // names are plain ASCII: Quote is JSON
		}
		b.WriteByte(']')
	}
	fmt.Fprintf(&b, "{\n  \"min_age_days\": %d,\n  \"target_mode\": %q,\n  \"naming\": %q,\n  \"nominated\": ", p.MinAgeDays, p.TargetMode, p.Naming)
	if p.AllNominated {
		list([]string{"*"})
	} else {
		list(p.Nominated)
	}
	b.WriteString(",\n  \"excluded\": ")
	list(p.Excluded)
	fmt.Fprintf(&b, ",\n  \"confirm_above\": {\n    \"added\": %d,\n    \"removed\": %d,\n    \"changed\": %d\n  }",
		p.ConfirmAbove.Added, p.ConfirmAbove.Removed, p.ConfirmAbove.Changed)
	// red_flags only when not the default, so that the default policy
	// encodes as templates/files/policy.json.
	if rf := p.RedFlags; rf != DefaultRedFlags {
		fmt.Fprintf(&b, ",\n  \"red_flags\": {\n    \"project_loss_percent\": %d,\n    \"added_to_stable_release\": %t,\n    \"name_collision\": %t,\n    \"yanked_stable\": %t\n  }",
			rf.ProjectLossPercent, rf.AddedToStableRelease, rf.NameCollision, rf.YankedStable)
	}
	if len(p.Expedite) > 0 {
		b.WriteString(",\n  \"expedite\": [")
		for i, e := range p.Expedite {
			if i > 0 {
				b.WriteByte(',')
			}
			path, _ := json.Marshal(e.Path)
			reason, _ := json.Marshal(e.Reason)
			fmt.Fprintf(&b, "\n    {\"path\": %s, \"sha256\": \"%x\", \"reason\": %s}", path, e.SHA256, reason)
		}
		b.WriteString("\n  ]")
	}
	p.appendDelegations(&b)
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// checkTargetPath accepts a distribution file's target path as PyPI
// names it: packages/ followed by slash-separated segments, none empty,
// "." or "..", with no white space or control characters.
func checkTargetPath(p string) error {
	if err := decisions.CheckPath(p); err != nil {
		return err
	}
	rest, ok := strings.CutPrefix(p, "packages/")
	if !ok {
		return fmt.Errorf("%w: %q: a distribution file's target path starts with packages/", decisions.ErrBadValue, p)
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q: an empty, . or .. segment", decisions.ErrBadValue, p)
		}
	}
	return nil
}

// safeField returns a field name fit to print: as it is if it is made of
// lowercase letters, digits, '_' and '.', quoted otherwise.
func safeField(f string) string {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '[' || c == ']') {
			return strconv.Quote(f)
		}
	}
	return f
}
