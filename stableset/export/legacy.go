package export

import "strings"

// Legacy says how a record departs from today's naming rules while still
// being a file PyPI accepted and serves: the reader accepts such a record
// and marks it, so that the review shows it (docs/export-format.md,
// "Legacy names"). Zero means the file's name and version follow today's
// rules. The kinds combine.
type Legacy uint8

// The kinds of legacy name.
const (
	// LegacyVersion: the release's version is not a PEP 440 version
	// ("0.2.10 alpha", "2004d-final").
	LegacyVersion Legacy = 1 << iota
	// LegacySpelling: the filename's name part is the project only under
	// the legacy rule PyPI applied before PEP 503 (runs of any characters
	// other than ASCII letters and digits, spaces included, as one '-'):
	// "Foo Bar-1.0.tar.gz" for project foo-bar.
	LegacySpelling
	// LegacySeparator: the name and the version are separated by '.', '_'
	// or a space, not '-': "foo.1.0.src.tar.gz".
	LegacySeparator
	// LegacyNoVersion: the filename is the project's name and an
	// extension, with no version: "distance.tar.gz".
	LegacyNoVersion
	// LegacyMismatch: nothing ties the filename to the project; the export
	// says which project the file is in, and the tool keeps what it says:
	// "pyTenjin-0.6.1.tar.gz" for project tenjin.
	LegacyMismatch
)

var legacyNames = []struct {
	k    Legacy
	name string
}{
	{LegacyVersion, "version"}, {LegacySpelling, "spelling"}, {LegacySeparator, "separator"},
	{LegacyNoVersion, "no-version"}, {LegacyMismatch, "mismatch"},
}

// String names the kinds, joined by '+' ("spelling+version"); "" for
// zero.
func (l Legacy) String() string {
	var b []byte
	for _, n := range legacyNames {
		if l&n.k != 0 {
			if len(b) > 0 {
				b = append(b, '+')
			}
			b = append(b, n.name...)
		}
	}
	return string(b)
}

// Kinds returns each kind set in l, in the order of the constants.
func (l Legacy) Kinds() []Legacy {
	var out []Legacy
	for _, n := range legacyNames {
		if l&n.k != 0 {
			out = append(out, n.k)
		}
	}
	return out
}

// ParseLegacy parses what String returns; for anything else it returns
// 0 and false.
func ParseLegacy(s string) (l Legacy, ok bool) {
	if s == "" {
		return 0, true
	}
	for _, part := range strings.Split(s, "+") {
		found := false
		for _, n := range legacyNames {
			if part == n.name && l&n.k == 0 {
				l |= n.k
				found = true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	if l.String() != s {
		return 0, false
	}
	return l, true
}

// LegacyOf returns the legacy kinds of a record of this filename, project
// and version: what the reader marks it (Record.Legacy).
func LegacyOf(filename, project, version string) Legacy {
	var l Legacy
	if !filenameBelongs(filename, project, version) {
		l = legacyName(filename, project, version)
	}
	if !IsPEP440(version) {
		l |= LegacyVersion
	}
	return l
}

// legacyName classifies a filename that filenameBelongs refused (today's
// rule: a prefix that PEP 503-normalises to the project, '-', then a digit
// or the version).
func legacyName(filename, project, version string) Legacy {
	for i := 1; i < len(filename); i++ {
		c := filename[i]
		if !isNameSep(c) {
			continue
		}
		strict := c == '-' && normalizedEqual(filename[:i], project)
		if !strict && !looseEqual(filename[:i], project) {
			continue
		}
		// Skip the run of separators.
		j := i
		for j < len(filename) && isNameSep(filename[j]) {
			j++
		}
		rest := filename[j:]
		if rest == "" {
			continue
		}
		if rest[0] >= '0' && rest[0] <= '9' || version != "" && len(rest) >= len(version) && strings.EqualFold(rest[:len(version)], version) {
			var l Legacy
			if !strict && !normalizedEqual(filename[:i], project) {
				l |= LegacySpelling
			}
			if c != '-' || j > i+1 {
				l |= LegacySeparator
			}
			return l
		}
		if isArchiveExt(filename[i:]) {
			l := LegacyNoVersion
			if !normalizedEqual(filename[:i], project) {
				l |= LegacySpelling
			}
			return l
		}
	}
	return LegacyMismatch
}

func isNameSep(c byte) bool { return c == '-' || c == '_' || c == '.' || c == ' ' }

// looseEqual reports whether name is project under the legacy rule: ASCII
// letters lowercased, every run of bytes other than ASCII letters and
// digits as one '-'.
func looseEqual(name, norm string) bool {
	j := 0
	for i := 0; i < len(name); {
		c := name[i]
		if !isAlnum(c) {
			for i < len(name) && !isAlnum(name[i]) {
				i++
			}
			if j >= len(norm) || norm[j] != '-' {
				return false
			}
			j++
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if j >= len(norm) || norm[j] != c {
			return false
		}
		i++
		j++
	}
	return j == len(norm)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// archiveExts are the extensions of distribution files PyPI has held.
var archiveExts = []string{".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".tar.z", ".tar", ".zip", ".egg", ".exe", ".msi", ".rpm", ".deb", ".dmg", ".whl"}

// isArchiveExt reports whether s (starting at a separator) is only an
// archive extension, optionally after ".src" or "-src".
func isArchiveExt(s string) bool {
	for _, e := range archiveExts {
		if strings.EqualFold(s, e) || len(s) == 4+len(e) && strings.EqualFold(s[1:4], "src") && isNameSep(s[0]) && strings.EqualFold(s[4:], e) {
			return true
		}
	}
	return false
}

// IsPEP440 reports whether v is a version PEP 440 accepts in its
// permissive form (as the packaging library parses it, ASCII case
// ignored, no surrounding whitespace): [v][N!]N(.N)*[{a|b|rc|…}N][.postN][.devN][+local].
func IsPEP440(v string) bool {
	p := verParser{s: v}
	if p.peekFold("v") {
		p.i++
	}
	// Epoch or first release number.
	if !p.digits() {
		return false
	}
	if p.i < len(p.s) && p.s[p.i] == '!' {
		p.i++
		if !p.digits() {
			return false
		}
	}
	for p.i+1 < len(p.s) && p.s[p.i] == '.' && isDigit(p.s[p.i+1]) {
		p.i++
		p.digits()
	}
	p.part("alpha", "beta", "preview", "pre", "rc", "a", "b", "c")
	if p.i+1 < len(p.s) && p.s[p.i] == '-' && isDigit(p.s[p.i+1]) {
		p.i++
		p.digits()
	} else {
		p.part("post", "rev", "r")
	}
	p.part("dev")
	if p.i < len(p.s) && p.s[p.i] == '+' {
		p.i++
		for {
			n := p.i
			for p.i < len(p.s) && isAlnum(p.s[p.i]) {
				p.i++
			}
			if p.i == n {
				return false
			}
			if p.i+1 < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == '-' || p.s[p.i] == '_') && isAlnum(p.s[p.i+1]) {
				p.i++
				continue
			}
			break
		}
	}
	return p.i == len(p.s)
}

type verParser struct {
	s string
	i int
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *verParser) digits() bool {
	n := p.i
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
	return p.i > n
}

func (p *verParser) peekFold(t string) bool {
	return len(p.s)-p.i >= len(t) && strings.EqualFold(p.s[p.i:p.i+len(t)], t)
}

// part reads an optional [sep]tag[sep][N] for the first tag that matches.
func (p *verParser) part(tags ...string) {
	start := p.i
	if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == '-' || p.s[p.i] == '_') {
		p.i++
	}
	for _, t := range tags {
		if p.peekFold(t) {
			p.i += len(t)
			if p.i+1 < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == '-' || p.s[p.i] == '_') && isDigit(p.s[p.i+1]) {
				p.i++
			}
			p.digits()
			return
		}
	}
	p.i = start
}
