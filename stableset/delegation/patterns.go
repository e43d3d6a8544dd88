package delegation

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// ErrCollision: a project's patterns match a file of another project.
var ErrCollision = errors.New("delegated patterns match another project's file")

// filesPrefix is the directories of a PyPI file's target path:
// packages/<2 hex>/<2 hex>/<60 hex>/<filename>.
const filesPrefix = "packages/*/*/*/"

// maxSpelledSeparators is how many "-" a name may have for FilePatterns
// to spell every choice of separator (3^n patterns).
const maxSpelledSeparators = 3

// FilePatterns returns the patterns of project's distribution files: the
// name in any case, each "-" between its parts written "-", "_" or ".",
// then "-" and a digit: foo-bar gives
// packages/*/*/*/[Ff][Oo][Oo]-[Bb][Aa][Rr]-[0-9]*, the same with "_"
// and with ".". A separator is never a character class: path.Match
// refuses an unescaped "-" in one and escapes differ between matchers.
// A name with more than maxSpelledSeparators separators gets two
// patterns, all "_" (wheels, PEP 625 sdists) and all "-"; files spelt
// otherwise are delegated by their exact paths (Checker). project must be
// PEP 503-normalised.
func FilePatterns(project string) []string {
	parts := strings.Split(project, "-")
	var seps [][]byte
	if n := len(parts) - 1; n <= maxSpelledSeparators {
		seps = [][]byte{nil}
		for i := 0; i < n; i++ {
			var next [][]byte
			for _, s := range seps {
				for _, c := range []byte("-_.") {
					next = append(next, append(append([]byte(nil), s...), c))
				}
			}
			seps = next
		}
	} else {
		seps = [][]byte{[]byte(strings.Repeat("_", n)), []byte(strings.Repeat("-", n))}
	}
	out := make([]string, 0, len(seps))
	for _, sep := range seps {
		var b strings.Builder
		b.WriteString(filesPrefix)
		for i, part := range parts {
			if i > 0 {
				b.WriteByte(sep[i-1])
			}
			for j := 0; j < len(part); j++ {
				if c := part[j]; c >= 'a' && c <= 'z' {
					b.WriteByte('[')
					b.WriteByte(c - 'a' + 'A')
					b.WriteByte(c)
					b.WriteByte(']')
				} else {
					b.WriteByte(c)
				}
			}
		}
		b.WriteString("-[0-9]*")
		out = append(out, b.String())
	}
	return out
}

// Patterns returns the patterns delegated for project: its files'
// patterns (FilePatterns), then its index pages' exact paths (as the
// policy's naming gives them, htmlPage and jsonPage).
func Patterns(project, htmlPage, jsonPage string) []string {
	return append(FilePatterns(project), htmlPage, jsonPage)
}

// Match reports whether a TUF path pattern matches a target path: segment
// by segment, each with path.Match (the spec's fnmatch, as tuf-js does
// with minimatch).
func Match(pattern, target string) bool {
	for {
		pi, ti := strings.IndexByte(pattern, '/'), strings.IndexByte(target, '/')
		if (pi < 0) != (ti < 0) {
			return false
		}
		if pi < 0 {
			ok, err := path.Match(pattern, target)
			return err == nil && ok
		}
		if ok, err := path.Match(pattern[:pi], target[:ti]); err != nil || !ok {
			return false
		}
		pattern, target = pattern[pi+1:], target[ti+1:]
	}
}

// mayMatch reports whether any of project's patterns could match a
// target whose last segment is name, a file of another project, cheaply, so that the checker runs
// the matcher on few of the export's files: every derived pattern
// (FilePatterns) needs the last segment to begin with the name in some
// spelling (case, and "-", "_" or "." between parts) and "-"; the
// other patterns are the project's page paths and its own files' exact
// paths, which no other file of the export has. The fuzz target
// FuzzFilePattern holds the first claim.
func mayMatch(project, name string) bool {
	if len(name) <= len(project) || name[len(project)] != '-' {
		return false
	}
	for i := 0; i < len(project); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' || c == '.' {
			c = '-'
		}
		if c != project[i] {
			return false
		}
	}
	return true
}

// literalPath reports whether p, used as a pattern, can only match itself
// in every matcher: letters, digits, '.', '_', '-' and '/' only.
func literalPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return false
		}
	}
	return p != ""
}

// Checker holds the patterns of delegated projects against the records
// of an export, one record at a time (Add), then says what to delegate
// (Patterns).
type Checker struct {
	projects map[string]*checked
	list     []*checked // the same, in a slice: Add walks it for every record
}

type checked struct {
	project  string
	patterns []string // derived, then the exact paths of legacy names
	files    int      // the project's files in the export
}

// NewChecker returns a checker for the projects, each with its derived
// patterns (Patterns).
func NewChecker(patterns map[string][]string) *Checker {
	c := &Checker{projects: map[string]*checked{}}
	for p, ps := range patterns {
		ck := &checked{project: p, patterns: append([]string(nil), ps...)}
		c.projects[p] = ck
		c.list = append(c.list, ck)
	}
	return c
}

// Add checks one record of the export: a delegated project's pattern that
// matches it while it is another project's file is ErrCollision, naming
// the file; a delegated project's file no pattern matches is added as its
// exact path, or refused when its path is not literal.
func (c *Checker) Add(r *export.Record) error {
	name := r.Path[strings.LastIndexByte(r.Path, '/')+1:]
	for _, ck := range c.list {
		p := ck.project
		if p == r.Project || !mayMatch(p, name) {
			continue
		}
		for _, pat := range ck.patterns {
			if Match(pat, r.Path) {
				return fmt.Errorf("delegation of %s: pattern %q matches %s, a file of project %s: %w", p, pat, r.Path, r.Project, ErrCollision)
			}
		}
	}
	ck, ok := c.projects[r.Project]
	if !ok {
		return nil
	}
	ck.files++
	for _, pat := range ck.patterns {
		if Match(pat, r.Path) {
			return nil
		}
	}
	if !literalPath(r.Path) {
		return fmt.Errorf("delegation of %s: its file %s matches no pattern and cannot be delegated by its exact path (characters a pattern reads): %w", r.Project, r.Path, export.ErrBadValue)
	}
	ck.patterns = append(ck.patterns, r.Path)
	return nil
}

// Patterns returns what to delegate for project once every record was
// added: the derived patterns, then the exact paths of its files they
// missed, in the export's order.
func (c *Checker) Patterns(project string) []string {
	if ck, ok := c.projects[project]; ok {
		return append([]string(nil), ck.patterns...)
	}
	return nil
}

// Files returns how many files of project the export listed.
func (c *Checker) Files(project string) int {
	if ck, ok := c.projects[project]; ok {
		return ck.files
	}
	return 0
}
