package decisions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyceremony/keyceremony/internal/strictjson"
)

// Choice is what was decided.
type Choice string

// The choices. KeepOld, AcceptNew and Drop settle a changed file; Confirm
// confirms a count above its limit; Expedite lets in a file the policy
// expedites.
const (
	KeepOld   Choice = "keep-old"   // the stable entry stays; the new content is not signed
	AcceptNew Choice = "accept-new" // the new content replaces the stable entry
	Drop      Choice = "drop"       // the path leaves the stable set
	Confirm   Choice = "confirm"    // a count above its limit is what the room expects
	// TakeDown takes a stable path out of the stable set now and keeps it
	// out, delegated to the empty takedown role, until a Lift; Lift ends
	// an earlier ceremony's takedown (docs/policy.md, "Takedowns").
	TakeDown Choice = "take-down"
	Lift     Choice = "lift"
	Expedite Choice = "expedite" // a file the policy expedites enters the stable set younger than the minimum age

	// A project decision confirms a change to the policy's nominated or
	// excluded list since the previous ceremony (docs/policy.md, "Changes
	// to the policy").
	Nominate   Choice = "nominate"   // the project (or "*") is nominated now, and was not
	Unnominate Choice = "unnominate" // the project (or "*") was nominated, and is not now
	Exclude    Choice = "exclude"    // the project is excluded now, and was not
	Unexclude  Choice = "unexclude"  // the project was excluded, and is not now
	// Delegate and Undelegate confirm a change to the developer
	// delegations since the previous ceremony (docs/policy.md,
	// "Developer delegations"): a project handed to its developers, or
	// its developers' keys or threshold changed; a delegation removed,
	// so that the project's files fall back to the stable bins.
	Delegate   Choice = "delegate"
	Undelegate Choice = "undelegate"
)

// FlagChanged is the kind of red flag a changed file raises: a path
// decision keep-old, accept-new or drop (the earlier form) and a
// {"flag": "changed", …} decision settle it alike, and one file may not
// hold both for one path.
const FlagChanged = "changed"

// settlesChange: the choice settles a changed file.
func (c Choice) settlesChange() bool { return c == KeepOld || c == AcceptNew || c == Drop }

// ListOf names the policy list a project decision's choice changes:
// "nominated", "excluded" or "delegations"; "" for another choice.
func (c Choice) ListOf() string {
	switch c {
	case Nominate, Unnominate:
		return "nominated"
	case Exclude, Unexclude:
		return "excluded"
	case Delegate, Undelegate:
		return "delegations"
	}
	return ""
}

// The limits a limit decision may confirm (docs/policy.md,
// confirm_above). Changed files are decided one by one, by path.
const (
	LimitAdded   = "added"
	LimitRemoved = "removed"
)

// Decision is one line of a decisions file.
type Decision struct {
	Line  int    // in the file, from 1
	Path  string // the changed file's target path; empty for a limit decision
	Limit string // LimitAdded or LimitRemoved; empty for a path decision
	// Flag is the kind of red flag a flag decision settles ("project-loss",
	// …; docs/policy.md, "Red flags"), Subject what it is about (a
	// project, a path); both empty for a path or limit decision.
	Flag    string
	Subject string
	// Project is the project (or "*" with nominate and unnominate) whose
	// entry in the policy's lists changed; empty for another decision.
	Project string
	Count   int64 // with Limit: the count confirmed
	Choice  Choice
	Reason  string
}

// Names says what the decision is about, for messages: the path,
// "limit added", "flag project-loss foo", or "project certifi".
func (d *Decision) Names() string {
	switch {
	case d.Limit != "":
		return "limit " + d.Limit
	case d.Flag != "":
		return "flag " + d.Flag + " " + d.Subject
	case d.Project != "":
		return "project " + d.Project
	}
	return d.Path
}

// Errors; every *Error wraps one of them. Check with errors.Is.
var (
	// ErrSyntax: not a JSON object per line, a blank line, a carriage
	// return, an unknown, duplicate, missing or mistyped field.
	ErrSyntax = errors.New("malformed decision")
	// ErrBadValue: a field's value is not allowed.
	ErrBadValue = errors.New("bad value")
	// ErrDuplicate: the same path or limit is decided twice.
	ErrDuplicate = errors.New("decided twice")
)

// Error is a refused decisions file.
type Error struct {
	File  string
	Line  int    // from 1
	Field string // "decision", "reason", …; empty for the whole line
	Err   error
}

func (e *Error) Error() string {
	s := e.File + ":" + strconv.Itoa(e.Line) + ": "
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Limits on what a file may hold.
const (
	MaxFileSize  = 64 << 20 // bytes
	MaxReason    = 1000     // bytes of a reason
	MaxPath      = 1024     // bytes of a path
	MaxDecisions = 1 << 20  // lines
)

// Set is the decisions of one file, by path and by limit.
type Set struct {
	name    string
	byPath  map[string]*Decision
	byLimit map[string]*Decision
	byFlag  map[string]*Decision // by kind + "\t" + subject
	byProj  map[string]*Decision // by list + "\t" + project
	sorted  []Decision           // in canonical order (SortKey)
}

// Name is the file's name, as Parse was given it, for messages.
func (s *Set) Name() string {
	if s == nil {
		return "decisions"
	}
	return s.name
}

// Len is the number of decisions.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.sorted)
}

// Path returns the decision about a changed path.
func (s *Set) Path(p string) (Decision, bool) {
	if s == nil {
		return Decision{}, false
	}
	d, ok := s.byPath[p]
	if !ok {
		return Decision{}, false
	}
	return *d, true
}

// Limit returns the decision confirming a limit.
func (s *Set) Limit(name string) (Decision, bool) {
	if s == nil {
		return Decision{}, false
	}
	d, ok := s.byLimit[name]
	if !ok {
		return Decision{}, false
	}
	return *d, true
}

// Flag returns the decision settling the red flag of a kind about a
// subject.
func (s *Set) Flag(kind, subject string) (Decision, bool) {
	if s == nil {
		return Decision{}, false
	}
	d, ok := s.byFlag[kind+"\t"+subject]
	if !ok {
		return Decision{}, false
	}
	return *d, true
}

// Project returns the decision about a project's entry in the policy
// list ("nominated" or "excluded").
func (s *Set) Project(list, project string) (Decision, bool) {
	if s == nil {
		return Decision{}, false
	}
	d, ok := s.byProj[list+"\t"+project]
	if !ok {
		return Decision{}, false
	}
	return *d, true
}

// All returns the decisions in canonical order: limit decisions by limit
// name, then path decisions by path (bytes), then project decisions by
// project, then choice.
func (s *Set) All() []Decision {
	if s == nil {
		return nil
	}
	return slices.Clone(s.sorted)
}

// AppendCanonical appends the decisions' canonical lines, as the stable
// diff's canonical form holds them (docs/stable-pipeline.md): "decisions
// N", then one line per decision in canonical order,
//
//	limit TAB <limit> TAB <count> TAB confirm TAB <reason> LF
//	path TAB <path> TAB - TAB <choice> TAB <reason> LF
//	flag TAB <kind> TAB <subject> TAB <choice> TAB <reason> LF
//	project TAB <project> TAB - TAB <choice> TAB <reason> LF
//
// A nil set appends "decisions 0".
func (s *Set) AppendCanonical(b []byte) []byte {
	b = append(b, "decisions "...)
	b = strconv.AppendInt(b, int64(s.Len()), 10)
	b = append(b, '\n')
	for _, d := range s.All() {
		b = AppendLine(b, &d)
	}
	return b
}

// AppendLine appends one decision's canonical line.
func AppendLine(b []byte, d *Decision) []byte {
	if d.Limit != "" {
		b = append(b, "limit\t"...)
		b = append(b, d.Limit...)
		b = append(b, '\t')
		b = strconv.AppendInt(b, d.Count, 10)
	} else if d.Flag != "" {
		b = append(b, "flag\t"...)
		b = append(b, d.Flag...)
		b = append(b, '\t')
		b = append(b, d.Subject...)
	} else if d.Project != "" {
		b = append(b, "project\t"...)
		b = append(b, d.Project...)
		b = append(b, "\t-"...)
	} else {
		b = append(b, "path\t"...)
		b = append(b, d.Path...)
		b = append(b, "\t-"...)
	}
	b = append(b, '\t')
	b = append(b, d.Choice...)
	b = append(b, '\t')
	b = append(b, d.Reason...)
	return append(b, '\n')
}

// ParseLine parses one canonical line (without its LF), as AppendLine
// writes it, checking every field as Parse does.
func ParseLine(line string) (Decision, error) {
	f := strings.Split(line, "\t")
	if len(f) != 5 {
		return Decision{}, fmt.Errorf("%w: want 5 tab-separated fields, got %d", ErrSyntax, len(f))
	}
	var w wire
	switch f[0] {
	case "limit":
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != f[2] {
			return Decision{}, fmt.Errorf("count: %w: %q", ErrBadValue, f[2])
		}
		w.Limit, w.Count = &f[1], &n
	case "path":
		if f[2] != "-" {
			return Decision{}, fmt.Errorf("count: %w: %q, want -", ErrBadValue, f[2])
		}
		w.Path = &f[1]
	case "flag":
		w.Flag, w.Subject = &f[1], &f[2]
	case "project":
		if f[2] != "-" {
			return Decision{}, fmt.Errorf("count: %w: %q, want -", ErrBadValue, f[2])
		}
		w.Project = &f[1]
	default:
		return Decision{}, fmt.Errorf("%w: kind %q, want limit, path, flag or project", ErrSyntax, f[0])
	}
	w.Decision, w.Reason = f[3], f[4]
	d, field, err := w.check()
	if err != nil {
		return Decision{}, fmt.Errorf("%s: %w", field, err)
	}
	return d, nil
}

// wire is one line as the strict decoder reads it.
type wire struct {
	Path     *string `json:"path,omitempty"`
	Limit    *string `json:"limit,omitempty"`
	Flag     *string `json:"flag,omitempty"`
	Subject  *string `json:"subject,omitempty"`
	Project  *string `json:"project,omitempty"`
	Count    *int64  `json:"count,omitempty"`
	Decision string  `json:"decision"`
	Reason   string  `json:"reason"`
}

// check validates a line and returns its decision, or the field at fault.
func (w *wire) check() (Decision, string, error) {
	d := Decision{Choice: Choice(w.Decision), Reason: w.Reason}
	n := 0
	for _, p := range []*string{w.Path, w.Limit, w.Flag, w.Project} {
		if p != nil {
			n++
		}
	}
	switch {
	case n > 1:
		field := "limit"
		if w.Project != nil {
			field = "project"
		}
		return d, field, fmt.Errorf("%w: a decision is about a path, a limit, a flag or a project, one of them", ErrBadValue)
	case n == 0:
		return d, "path", fmt.Errorf("%w: missing: name a changed path, a limit, a flag, or a project", ErrSyntax)
	case w.Subject != nil && w.Flag == nil:
		return d, "subject", fmt.Errorf("%w: only a flag decision has a subject", ErrBadValue)
	case w.Flag != nil:
		if w.Count != nil {
			return d, "count", fmt.Errorf("%w: only a limit decision has a count", ErrBadValue)
		}
		if err := checkKind(*w.Flag); err != nil {
			return d, "flag", err
		}
		if w.Subject == nil {
			return d, "subject", fmt.Errorf("%w: missing: a flag decision names the flag's subject", ErrSyntax)
		}
		if err := CheckPath(*w.Subject); err != nil {
			return d, "subject", err
		}
		d.Flag, d.Subject = *w.Flag, *w.Subject
		switch d.Choice {
		case KeepOld, AcceptNew, Drop, Confirm:
		default:
			// Which choices settle which kind is the diff's to say
			// (stableset's flag kinds).
			return d, "decision", fmt.Errorf("%w: %s: a flag is decided keep-old, accept-new, drop or confirm", ErrBadValue, quote(w.Decision))
		}
	case w.Project != nil:
		if w.Count != nil {
			return d, "count", fmt.Errorf("%w: only a limit decision has a count", ErrBadValue)
		}
		if d.Choice.ListOf() == "" {
			return d, "decision", fmt.Errorf("%w: %s: a project is decided nominate, unnominate, exclude, unexclude, delegate or undelegate", ErrBadValue, quote(w.Decision))
		}
		if err := checkProject(*w.Project, d.Choice); err != nil {
			return d, "project", err
		}
		d.Project = *w.Project
	case w.Path != nil:
		if w.Count != nil {
			return d, "count", fmt.Errorf("%w: only a limit decision has a count", ErrBadValue)
		}
		if err := CheckPath(*w.Path); err != nil {
			return d, "path", err
		}
		d.Path = *w.Path
		switch d.Choice {
		case KeepOld, AcceptNew, Drop, TakeDown, Lift, Expedite:
		default:
			return d, "decision", fmt.Errorf("%w: %s: a changed path is decided keep-old, accept-new or drop, a stable path take-down, a taken-down path lift, an expedited file expedite", ErrBadValue, quote(w.Decision))
		}
	default:
		switch *w.Limit {
		case LimitAdded, LimitRemoved:
		case "changed":
			return d, "limit", fmt.Errorf("%w: \"changed\": changed files are decided one by one, by path", ErrBadValue)
		default:
			return d, "limit", fmt.Errorf("%w: %s: want added or removed", ErrBadValue, quote(*w.Limit))
		}
		d.Limit = *w.Limit
		if w.Count == nil {
			return d, "count", fmt.Errorf("%w: missing: a limit decision confirms an exact count", ErrSyntax)
		}
		if *w.Count < 0 {
			return d, "count", fmt.Errorf("%w: %d is negative", ErrBadValue, *w.Count)
		}
		d.Count = *w.Count
		if d.Choice != Confirm {
			return d, "decision", fmt.Errorf("%w: %s: a limit decision is confirm", ErrBadValue, quote(w.Decision))
		}
	}
	if err := CheckReason(w.Reason); err != nil {
		return d, "reason", err
	}
	return d, "", nil
}

// checkKind accepts a flag kind: 1 to 40 lowercase letters, digits and
// '-'.
func checkKind(k string) error {
	ok := k != "" && len(k) <= 40
	for i := 0; ok && i < len(k); i++ {
		c := k[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w: %s: a flag kind is 1 to 40 lowercase letters, digits and '-'", ErrBadValue, quote(k))
	}
	return nil
}

// checkProject accepts a PEP 503-normalised project name (lowercase
// letters, digits, single '-' between them, at most 255 bytes), or "*"
// for a change to nominating every project.
func checkProject(p string, c Choice) error {
	if p == "*" {
		if c.ListOf() != "nominated" {
			return fmt.Errorf("%w: \"*\" is only nominated or unnominated", ErrBadValue)
		}
		return nil
	}
	ok := p != "" && len(p) <= 255 && p[0] != '-' && p[len(p)-1] != '-' && !strings.Contains(p, "--")
	for i := 0; ok && i < len(p); i++ {
		c := p[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w: %s: want a PEP 503-normalised project name", ErrBadValue, quote(p))
	}
	return nil
}

// CheckPath accepts a target path as a decision names it: 1 to MaxPath
// bytes of UTF-8, no white space or control characters.
func CheckPath(p string) error {
	if p == "" || len(p) > MaxPath || !utf8.ValidString(p) {
		return fmt.Errorf("%w: %s: want 1 to %d bytes of UTF-8", ErrBadValue, quote(p), MaxPath)
	}
	for _, r := range p {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w: %s: a target path has no white space or control characters", ErrBadValue, quote(p))
		}
	}
	return nil
}

// CheckReason accepts a reason in words: not blank, at most MaxReason
// bytes of UTF-8, no tabs, line breaks or control characters.
func CheckReason(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: empty: say why", ErrBadValue)
	}
	if len(s) > MaxReason || !utf8.ValidString(s) {
		return fmt.Errorf("%w: want at most %d bytes of UTF-8", ErrBadValue, MaxReason)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%w: %s: no tabs, line breaks or control characters", ErrBadValue, quote(s))
		}
	}
	return nil
}

// quote quotes at most 60 bytes of s for a message.
func quote(s string) string {
	if len(s) > 60 {
		return strconv.Quote(s[:60]) + "…"
	}
	return strconv.Quote(s)
}

// Load reads and parses a decisions file.
func Load(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading decisions: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading decisions: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Line: 1, Err: fmt.Errorf("%w: larger than %d bytes", ErrBadValue, MaxFileSize)}
	}
	return Parse(data, path)
}

// Parse parses a decisions file: JSON Lines, one object per line, each
// line ending in LF (the last may lack it). name is used in errors. An
// empty file is an empty set.
func Parse(data []byte, name string) (*Set, error) {
	s := &Set{name: name, byPath: map[string]*Decision{}, byLimit: map[string]*Decision{}, byFlag: map[string]*Decision{}, byProj: map[string]*Decision{}}
	line := 0
	for len(data) > 0 {
		line++
		if line > MaxDecisions {
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("%w: more than %d decisions", ErrBadValue, MaxDecisions)}
		}
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if bytes.IndexByte(l, '\r') >= 0 {
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("%w: carriage return: end lines with LF only", ErrSyntax)}
		}
		if len(bytes.TrimSpace(l)) == 0 {
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("%w: blank line", ErrSyntax)}
		}
		var w wire
		if err := strictjson.DecodeLine(l, name, line, &w); err != nil {
			var se *strictjson.Error
			if errors.As(err, &se) {
				return nil, &Error{File: name, Line: line, Field: se.Path, Err: fmt.Errorf("%w: %w", ErrSyntax, se.Err)}
			}
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
		}
		d, field, err := w.check()
		if err != nil {
			return nil, &Error{File: name, Line: line, Field: field, Err: err}
		}
		d.Line = line
		dp := &d
		if d.Limit != "" {
			if o, ok := s.byLimit[d.Limit]; ok {
				return nil, &Error{File: name, Line: line, Field: "limit", Err: fmt.Errorf("%w: %s is decided on line %d too", ErrDuplicate, d.Limit, o.Line)}
			}
			s.byLimit[d.Limit] = dp
		} else if d.Flag != "" {
			k := d.Flag + "\t" + d.Subject
			if o, ok := s.byFlag[k]; ok {
				return nil, &Error{File: name, Line: line, Field: "subject", Err: fmt.Errorf("%w: flag %s %s is decided on line %d too", ErrDuplicate, d.Flag, quote(d.Subject), o.Line)}
			}
			if o, ok := s.byPath[d.Subject]; ok && d.Flag == FlagChanged && o.Choice.settlesChange() {
				return nil, &Error{File: name, Line: line, Field: "subject", Err: fmt.Errorf("%w: the change of %s is decided on line %d too", ErrDuplicate, quote(d.Subject), o.Line)}
			}
			s.byFlag[k] = dp
		} else if d.Project != "" {
			k := d.Choice.ListOf() + "\t" + d.Project
			if o, ok := s.byProj[k]; ok {
				return nil, &Error{File: name, Line: line, Field: "project", Err: fmt.Errorf("%w: %s in %s is decided on line %d too", ErrDuplicate, quote(d.Project), d.Choice.ListOf(), o.Line)}
			}
			s.byProj[k] = dp
		} else {
			if o, ok := s.byPath[d.Path]; ok {
				return nil, &Error{File: name, Line: line, Field: "path", Err: fmt.Errorf("%w: %s is decided on line %d too", ErrDuplicate, quote(d.Path), o.Line)}
			}
			if o, ok := s.byFlag[FlagChanged+"\t"+d.Path]; ok && d.Choice.settlesChange() {
				return nil, &Error{File: name, Line: line, Field: "path", Err: fmt.Errorf("%w: the change of %s is decided on line %d too", ErrDuplicate, quote(d.Path), o.Line)}
			}
			s.byPath[d.Path] = dp
		}
		s.sorted = append(s.sorted, d)
	}
	slices.SortFunc(s.sorted, compare)
	return s, nil
}

// compare orders decisions canonically (SortKey).
func compare(a, b Decision) int { return strings.Compare(SortKey(&a), SortKey(&b)) }

// SortKey is a decision's place in canonical order: limits by name, then
// paths, then flags by kind and subject, then projects by name and
// choice. Decisions sort by their keys' bytes, and two decisions of one
// set never share a key.
func SortKey(d *Decision) string {
	switch {
	case d.Limit != "":
		return "0" + d.Limit
	case d.Flag != "":
		return "2" + d.Flag + "\t" + d.Subject
	case d.Project != "":
		return "3" + d.Project + "\t" + string(d.Choice)
	}
	return "1" + d.Path
}

// Marshal writes a set as a decisions file in canonical order, one JSON
// object per line, fields in the order path or limit, count, decision,
// reason. Parse reads it back to an equal set.
func (s *Set) Marshal() []byte {
	var b []byte
	for _, d := range s.All() {
		b = append(b, '{')
		if d.Limit != "" {
			b = append(b, `"limit":`...)
			b = strconv.AppendQuote(b, d.Limit)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, d.Count, 10)
		} else if d.Flag != "" {
			b = append(b, `"flag":`...)
			b = strconv.AppendQuote(b, d.Flag)
			b = append(b, `,"subject":`...)
			b = appendJSONString(b, d.Subject)
		} else if d.Project != "" {
			b = append(b, `"project":`...)
			b = strconv.AppendQuote(b, d.Project)
		} else {
			b = append(b, `"path":`...)
			b = appendJSONString(b, d.Path)
		}
		b = append(b, `,"decision":`...)
		b = strconv.AppendQuote(b, string(d.Choice))
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, d.Reason)
		b = append(b, "}\n"...)
	}
	return b
}

// appendJSONString appends s as a JSON string. s holds no control
// characters (Parse refuses them); '"' and '\' are escaped, the rest
// written as it is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// With returns a set of s's decisions and ds (the decisions made in the
// room, guided), named name, checked as Parse checks a file: a
// decision that repeats one of s's is ErrDuplicate. s is unchanged.
func (s *Set) With(name string, ds ...Decision) (*Set, error) {
	b := s.Marshal()
	add := &Set{sorted: ds}
	return Parse(append(b, add.Marshal()...), name)
}
