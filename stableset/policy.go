package stableset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

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

	nominated, excluded map[string]bool
}

// Limits are counts of diff entries by kind.
type Limits struct {
	Added   int64 `json:"added"`
	Removed int64 `json:"removed"`
	Changed int64 `json:"changed"`
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
func (p *Policy) Eligible(r *Record, now time.Time) (ok bool, reason HoldReason) {
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

// PolicyError is an error in a policy file.
type PolicyError struct {
	File  string
	Line  int    // 1-based line of the offending value
	Field string // e.g. "excluded[2]" or "confirm_above.added"; empty for the whole file
	Err   error  // wraps one of ErrSyntax, ErrType, ErrUnknownField, ErrDuplicateField, ErrBadValue, ErrBadProject
}

func (e *PolicyError) Error() string {
	s := e.File + ":" + strconv.Itoa(e.Line) + ": "
	if e.Field != "" {
		s += safeField(e.Field) + ": "
	}
	return s + e.Err.Error()
}

func (e *PolicyError) Unwrap() error { return e.Err }

// defaultPolicyJSON is the documented default policy, embedded from
// templates/files/policy.json.
var defaultPolicyJSON = string(templates.MustRead("policy.json"))

// DefaultPolicy returns the documented default policy
// (templates/files/policy.json).
func DefaultPolicy() *Policy {
	p, err := ParsePolicy([]byte(defaultPolicyJSON), "default policy")
	if err != nil {
		panic("stableset: the built-in default policy is invalid: " + err.Error())
	}
	return p
}

// maxPolicySize bounds what LoadPolicy reads.
const maxPolicySize = 1 << 20

// LoadPolicy reads and parses a policy file.
func LoadPolicy(path string) (*Policy, error) {
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
		return nil, &PolicyError{File: path, Line: 1, Err: fmt.Errorf("%w: larger than %d bytes", ErrBadValue, maxPolicySize)}
	}
	return ParsePolicy(data, path)
}

// ParsePolicy parses a policy. Absent fields take their default values;
// unknown, duplicate or mistyped fields, invalid or unnormalised project
// names, duplicates in a list, a project both nominated and excluded, and
// trailing data are refused with a *PolicyError. name is used in errors.
func ParsePolicy(data []byte, name string) (*Policy, error) {
	pp := policyParser{d: json.NewDecoder(bytes.NewReader(data)), data: data, name: name}
	pp.d.UseNumber()
	p, err := pp.parse()
	if err != nil {
		return nil, err
	}
	return p, nil
}

type policyParser struct {
	d    *json.Decoder
	data []byte
	name string
}

func (pp *policyParser) fail(field string, sentinel error, format string, args ...any) error {
	off := min(int(pp.d.InputOffset()), len(pp.data))
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	}
	return &PolicyError{File: pp.name, Line: 1 + bytes.Count(pp.data[:off], []byte("\n")), Field: field, Err: err}
}

func (pp *policyParser) token(field string) (json.Token, error) {
	t, err := pp.d.Token()
	if err == io.EOF {
		return nil, pp.fail(field, ErrSyntax, "unexpected end of file")
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, pp.fail(field, ErrSyntax, "%s", se.Error())
		}
		return nil, pp.fail(field, ErrSyntax, "%v", err)
	}
	return t, nil
}

func typeName(t json.Token) string {
	switch t := t.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		if t == '[' {
			return "an array"
		}
		return string(t)
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", t)
}

func (pp *policyParser) parse() (*Policy, error) {
	p := &Policy{MinAgeDays: 90, AllNominated: true, ConfirmAbove: Limits{Added: 2000000, Removed: 10000, Changed: 0}}
	t, err := pp.token("")
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, pp.fail("", ErrType, "want an object, got %s", typeName(t))
	}
	seen := map[string]bool{}
	var nominated []string
	haveNominated := false
	for pp.d.More() {
		t, err := pp.token("")
		if err != nil {
			return nil, err
		}
		key := t.(string) // object keys are strings
		if seen[key] {
			return nil, pp.fail(key, ErrDuplicateField, "")
		}
		seen[key] = true
		switch key {
		case "min_age_days":
			n, err := pp.integer(key, MaxMinAgeDays)
			if err != nil {
				return nil, err
			}
			p.MinAgeDays = int(n)
		case "nominated":
			if nominated, err = pp.names(key, true); err != nil {
				return nil, err
			}
			haveNominated = true
		case "excluded":
			if p.Excluded, err = pp.names(key, false); err != nil {
				return nil, err
			}
		case "confirm_above":
			if p.ConfirmAbove, err = pp.limits(key, p.ConfirmAbove); err != nil {
				return nil, err
			}
		default:
			return nil, pp.fail(key, ErrUnknownField, "")
		}
	}
	if _, err := pp.token(""); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := pp.d.Token(); err != io.EOF {
		return nil, pp.fail("", ErrSyntax, "data after the policy object")
	}
	if haveNominated {
		if len(nominated) == 0 {
			return nil, pp.failAt("nominated", ErrBadValue, `empty: nominate projects, or write ["*"] for all`)
		}
		if slices.Contains(nominated, "*") {
			if len(nominated) > 1 {
				return nil, pp.failAt("nominated", ErrBadValue, `"*" must stand alone`)
			}
		} else {
			p.AllNominated = false
			p.Nominated = nominated
		}
	}
	if slices.Contains(p.Excluded, "*") {
		return nil, pp.failAt("excluded", ErrBadValue, `"*" is only for nominated`)
	}
	p.excluded = make(map[string]bool, len(p.Excluded))
	for _, e := range p.Excluded {
		p.excluded[e] = true
	}
	if !p.AllNominated {
		p.nominated = make(map[string]bool, len(p.Nominated))
		for _, n := range p.Nominated {
			if p.excluded[n] {
				return nil, pp.failAt("excluded", ErrBadValue, "%q is also nominated", n)
			}
			p.nominated[n] = true
		}
	}
	if p.Excluded == nil {
		p.Excluded = []string{}
	}
	return p, nil
}

// failAt reports an error about a whole field once the file has been read;
// the line is that of the field's key.
func (pp *policyParser) failAt(field string, sentinel error, format string, args ...any) error {
	e := pp.fail(field, sentinel, format, args...).(*PolicyError)
	if i := bytes.Index(pp.data, []byte(`"`+field+`"`)); i >= 0 {
		e.Line = 1 + bytes.Count(pp.data[:i], []byte("\n"))
	}
	return e
}

func (pp *policyParser) integer(field string, max int64) (int64, error) {
	t, err := pp.token(field)
	if err != nil {
		return 0, err
	}
	num, ok := t.(json.Number)
	if !ok {
		return 0, pp.fail(field, ErrType, "want an integer, got %s", typeName(t))
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return 0, pp.fail(field, ErrType, "want an integer, got %s", num)
	}
	if n < 0 || n > max {
		return 0, pp.fail(field, ErrBadValue, "%d is outside 0 to %d", n, max)
	}
	return n, nil
}

// names reads a list of normalised project names, sorted on return.
func (pp *policyParser) names(field string, star bool) ([]string, error) {
	t, err := pp.token(field)
	if err != nil {
		return nil, err
	}
	if t != json.Delim('[') {
		return nil, pp.fail(field, ErrType, "want an array of project names, got %s", typeName(t))
	}
	out := []string{}
	seen := map[string]bool{}
	for i := 0; pp.d.More(); i++ {
		f := field + "[" + strconv.Itoa(i) + "]"
		t, err := pp.token(f)
		if err != nil {
			return nil, err
		}
		s, ok := t.(string)
		if !ok {
			return nil, pp.fail(f, ErrType, "want a project name, got %s", typeName(t))
		}
		if !(star && s == "*") {
			if fe := checkProject(s); fe != nil {
				return nil, pp.fail(f, fe.err, "")
			}
		}
		if seen[s] {
			return nil, pp.fail(f, ErrBadValue, "%q is listed twice", s)
		}
		seen[s] = true
		out = append(out, s)
	}
	if _, err := pp.token(field); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

func (pp *policyParser) limits(field string, l Limits) (Limits, error) {
	t, err := pp.token(field)
	if err != nil {
		return l, err
	}
	if t != json.Delim('{') {
		return l, pp.fail(field, ErrType, "want an object, got %s", typeName(t))
	}
	seen := map[string]bool{}
	for pp.d.More() {
		t, err := pp.token(field)
		if err != nil {
			return l, err
		}
		key := t.(string)
		f := field + "." + key
		if seen[key] {
			return l, pp.fail(f, ErrDuplicateField, "")
		}
		seen[key] = true
		var dst *int64
		switch key {
		case "added":
			dst = &l.Added
		case "removed":
			dst = &l.Removed
		case "changed":
			dst = &l.Changed
		default:
			return l, pp.fail(f, ErrUnknownField, "")
		}
		if *dst, err = pp.integer(f, 1<<53); err != nil {
			return l, err
		}
	}
	if _, err := pp.token(field); err != nil {
		return l, err
	}
	return l, nil
}

// MarshalJSON encodes the policy with every field present, in the layout
// of templates/files/policy.json; ParsePolicy reads it back to an equal
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
	fmt.Fprintf(&b, "{\n  \"min_age_days\": %d,\n  \"nominated\": ", p.MinAgeDays)
	if p.AllNominated {
		list([]string{"*"})
	} else {
		list(p.Nominated)
	}
	b.WriteString(",\n  \"excluded\": ")
	list(p.Excluded)
	fmt.Fprintf(&b, ",\n  \"confirm_above\": {\n    \"added\": %d,\n    \"removed\": %d,\n    \"changed\": %d\n  }\n}\n",
		p.ConfirmAbove.Added, p.ConfirmAbove.Removed, p.ConfirmAbove.Changed)
	return b.Bytes(), nil
}
