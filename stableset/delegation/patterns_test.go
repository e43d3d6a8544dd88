package delegation

import (
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/stableset/export"
)

// pypiPath is a file's target path as PyPI lays it out.
func pypiPath(filename string) string {
	return export.TargetPath(sha256.Sum256([]byte(filename)), filename)
}

// Filenames of projects whose names share prefixes, as PyPI holds them:
// sdists in any spelling of the name, wheels with "_".
var (
	fooFiles    = []string{"foo-1.0.tar.gz", "Foo-1.0.zip", "foo-2.0-py3-none-any.whl", "FOO-0.1.tar.gz"}
	fooBarFiles = []string{"foo-bar-1.0.tar.gz", "foo_bar-1.0-py3-none-any.whl", "Foo.Bar-2.0.tar.gz", "foo_bar-1.0.tar.gz"}
	otherFiles  = []string{"foobar-1.0.tar.gz", "foo-bar-baz-1.0.tar.gz", "foo_bar_baz-1.0-py3-none-any.whl", "bar-1.0.tar.gz", "afoo-1.0.tar.gz", "foo-barx-1.0.tar.gz"}
)

// A project's file pattern matches every spelling of its own files and
// none of the projects that share its prefix; tuf-js's own matcher agrees
// on every path.
func TestFilePattern(t *testing.T) {
	for _, c := range []struct {
		project string
		own     []string
	}{{"foo", fooFiles}, {"foo-bar", fooBarFiles}} {
		pats := FilePatterns(c.project)
		var paths []string
		var want []bool
		for _, f := range append(append(append([]string{}, fooFiles...), fooBarFiles...), otherFiles...) {
			own := false
			for _, o := range c.own {
				own = own || o == f
			}
			paths, want = append(paths, pypiPath(f)), append(want, own)
		}
		// Not under packages/ as PyPI lays files out: never matched.
		paths, want = append(paths, "packages/aa/"+c.own[0], "simple/"+c.project+"/index.html"), append(want, false, false)
		for i, p := range paths {
			got := false
			for _, pat := range pats {
				got = got || Match(pat, p)
			}
			if got != want[i] {
				t.Errorf("%s: Match(%q, %s) = %v, want %v", c.project, pats, p, got, want[i])
			}
		}
		got, err := tufjs.Match(pats, paths)
		if err != nil {
			t.Fatal(err)
		}
		for i := range paths {
			if got[i] != want[i] {
				t.Errorf("%s: tuf-js matches %s: %v, want %v", c.project, paths[i], got[i], want[i])
			}
		}
	}
	if got := FilePatterns("zope-interface2"); len(got) != 3 || got[1] != "packages/*/*/*/[Zz][Oo][Pp][Ee]_[Ii][Nn][Tt][Ee][Rr][Ff][Aa][Cc][Ee]2-[0-9]*" {
		t.Errorf("FilePatterns = %q", got)
	}
	if got := FilePatterns("a-b-c-d-e"); len(got) != 2 || got[0] != "packages/*/*/*/[Aa]_[Bb]_[Cc]_[Dd]_[Ee]-[0-9]*" {
		t.Errorf("FilePatterns(a-b-c-d-e) = %q", got)
	}
	if got := FilePatterns("a-b-c"); len(got) != 9 {
		t.Errorf("FilePatterns(a-b-c) has %d patterns, want 9", len(got))
	}
}

func record(project, filename string) export.Record {
	return export.Record{Project: project, Path: pypiPath(filename), Filename: filename}
}

// The checker holds the derived patterns against every file of the
// export: a file of another project they match is refused, naming it; a
// file of the project they miss is delegated by its exact path.
func TestChecker(t *testing.T) {
	recs := []export.Record{record("foo", "foo-1.0.tar.gz"), record("foo-bar", "foo_bar-1.0-py3-none-any.whl"), record("foo", "foo-dev.tar.gz"), record("bar", "bar-1.0.tar.gz")}
	c := NewChecker(map[string][]string{"foo": Patterns("foo", "simple/foo/index.html", "simple/foo/index.json")})
	for i := range recs {
		if err := c.Add(&recs[i]); err != nil {
			t.Fatalf("%s: %v", recs[i].Path, err)
		}
	}
	if got := c.Patterns("foo"); len(got) != 4 || got[3] != pypiPath("foo-dev.tar.gz") || c.Files("foo") != 2 {
		t.Errorf("patterns %q, files %d", got, c.Files("foo"))
	}

	// foo-2 is another project whose files foo's pattern matches: the
	// delegation is refused, naming the file.
	c = NewChecker(map[string][]string{"foo": Patterns("foo", "simple/foo/index.html", "simple/foo/index.json")})
	clash := record("foo-2", "foo_2-1.0-py3-none-any.whl")
	clash2 := record("foo-2", "foo-2-1.0.tar.gz")
	if err := c.Add(&clash); err != nil {
		t.Errorf("a wheel of foo-2 (foo_2-…) matches foo: %v", err)
	}
	err := c.Add(&clash2)
	if !errors.Is(err, ErrCollision) || !strings.Contains(err.Error(), "matches "+clash2.Path+", a file of project foo-2") {
		t.Errorf("collision: %v", err)
	}
	// A file of the project whose path a matcher would read as a pattern
	// is refused rather than delegated.
	c = NewChecker(map[string][]string{"foo": Patterns("foo", "simple/foo/index.html", "simple/foo/index.json")})
	odd := record("foo", "foo[1].tar.gz")
	if err := c.Add(&odd); !errors.Is(err, export.ErrBadValue) || !strings.Contains(err.Error(), "cannot be delegated by its exact path") {
		t.Errorf("a file with a bracket: %v", err)
	}
}

// FuzzFilePattern: for any normalised name and filename, the pattern
// matches only files whose name part normalises to the project.
func FuzzFilePattern(f *testing.F) {
	f.Add("foo", "foo-1.0.tar.gz")
	f.Add("foo-bar", "Foo_Bar-1.0-py3-none-any.whl")
	f.Add("foo", "foo-bar-1.0.tar.gz")
	f.Add("a1", "a1-1-1.tar.gz")
	f.Fuzz(func(t *testing.T, project, filename string) {
		if export.CheckProject(project) != nil || strings.ContainsAny(filename, "/") {
			return
		}
		matched := false
		for _, pat := range FilePatterns(project) {
			matched = matched || Match(pat, "packages/aa/bb/cc/"+filename)
		}
		if !matched {
			return
		}
		if !mayMatch(project, filename) {
			t.Fatalf("%q matches %s, which mayMatch rules out", FilePatterns(project), filename)
		}
		// The name part: everything before "-<digit>" at the length of
		// the project.
		if len(filename) < len(project)+2 || filename[len(project)] != '-' || filename[len(project)+1] < '0' || filename[len(project)+1] > '9' {
			t.Fatalf("%q matches %s", FilePatterns(project), filename)
		}
		name := strings.Map(func(r rune) rune {
			if r == '_' || r == '.' {
				return '-'
			}
			return r
		}, strings.ToLower(filename[:len(project)]))
		if name != project {
			t.Fatalf("%q matches %s, whose name is %s", FilePatterns(project), filename, name)
		}
	})
}

// BenchmarkCheckerAdd: the cost the pass pays per export record for the
// delegations, with 0 (the loop alone), 1 and 16 delegated projects, over records of other
// projects, some sharing the delegated names' prefixes.
func BenchmarkCheckerAdd(b *testing.B) {
	names := []string{"foo", "foo-bar", "requests", "django", "numpy", "zope-interface", "a-b-c-d-e", "boto3", "urllib3", "six", "idna", "certifi", "setuptools", "pip", "wheel", "attrs"}
	var recs []export.Record
	for i := 0; i < 4096; i++ {
		p := names[i%len(names)]
		fn := strings.ReplaceAll(p, "-", "_") + "x-" + strings.Repeat("1", 1+i%3) + ".0-py3-none-any.whl"
		if i%5 == 0 {
			fn = p + "-" + "1.0.tar.gz" // a delegated project's own file
		}
		recs = append(recs, export.Record{Project: p, Path: pypiPath(fn)})
		if i%5 != 0 {
			recs[i].Project = p + "x"
		}
	}
	for _, n := range []int{0, 1, 16} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			pats := map[string][]string{}
			for _, p := range names[:n] {
				pats[p] = Patterns(p, "simple/"+p+"/index.html", "simple/"+p+"/index.json")
			}
			c := NewChecker(pats)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Add(&recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
