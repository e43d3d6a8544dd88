package tuf

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"
	"testing"
)

// refMatches is the specification's matching written the obvious way,
// apart from the production matcher: hex-encode the path's SHA-256 and
// compare strings; split both on "/" and match segment by segment.
func refMatches(d *DelegatedRole, target string) bool {
	if len(d.PathHashPrefixes) > 0 {
		sum := sha256.Sum256([]byte(target))
		h := hex.EncodeToString(sum[:])
		for _, p := range d.PathHashPrefixes {
			if strings.HasPrefix(h, p) {
				return true
			}
		}
		return false
	}
	for _, pattern := range d.Paths {
		ps, ts := strings.Split(pattern, "/"), strings.Split(target, "/")
		if len(ps) != len(ts) {
			continue
		}
		ok := true
		for i := range ps {
			if m, err := path.Match(ps[i], ts[i]); err != nil || !m {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestOutside: a target outside any delegation of the chain names that
// delegation; inside all of them, none.
func TestOutside(t *testing.T) {
	p := "packages/ab/cd/foo-1.0.tar.gz"
	sum := sha256.Sum256([]byte(p))
	h := hex.EncodeToString(sum[:])
	other := "0"
	if h[0] == '0' {
		other = "1"
	}
	stable := &DelegatedRole{Name: "stable", Paths: []string{"packages/*/*/*", "simple/*/*"}}
	mid := &DelegatedRole{Name: "mid", PathHashPrefixes: []string{h[:1]}}
	leaf := &DelegatedRole{Name: "leaf", PathHashPrefixes: []string{other + h[1:3], h[:3]}}
	wrong := &DelegatedRole{Name: "wrong", PathHashPrefixes: []string{other + h[1:3]}}
	for _, c := range []struct {
		scope []*DelegatedRole
		want  string
	}{
		{[]*DelegatedRole{stable, mid, leaf}, ""},
		{[]*DelegatedRole{stable, mid, wrong}, "wrong"},
		{[]*DelegatedRole{stable, wrong, leaf}, "wrong"},
		{[]*DelegatedRole{{Name: "pages", Paths: []string{"simple/*/*"}}, mid}, "pages"},
		{[]*DelegatedRole{{Name: "full", PathHashPrefixes: []string{h}}}, ""},
		{[]*DelegatedRole{{Name: "long", PathHashPrefixes: []string{h + "0"}}}, "long"},
		{[]*DelegatedRole{{Name: "upper", PathHashPrefixes: []string{strings.ToUpper(h[:2]) + "x"}}}, "upper"},
		{nil, ""},
	} {
		got := ""
		if d := Outside(p, c.scope...); d != nil {
			got = d.Name
		}
		if got != c.want {
			t.Errorf("Outside(%v) = %q, want %q", c.scope, got, c.want)
		}
	}
}

// TestOutsideAllocs: the check runs for every target of every bin (25
// million at PyPI's size) and allocates nothing.
func TestOutsideAllocs(t *testing.T) {
	p := "packages/ab/cd/" + strings.Repeat("x", 200) + "-1.0.tar.gz"
	stable := &DelegatedRole{Name: "stable", Paths: []string{"simple/*/*", "packages/*/*/*"}}
	mid := &DelegatedRole{Name: "mid", PathHashPrefixes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"}}
	if n := testing.AllocsPerRun(100, func() {
		if Outside(p, stable, mid, mid) != nil {
			t.Fatal("outside")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}

// FuzzMatches: the production matcher agrees with the reference on any
// pattern, prefix and path.
func FuzzMatches(f *testing.F) {
	f.Add("packages/*/*/*", "packages/ab/cd/foo-1.0.tar.gz", "0a")
	f.Add("simple/*/index.html", "simple/foo/index.html", "")
	f.Add("a/[/]b", "a/[/]b", "ffff")
	f.Add("*", "", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0")
	f.Add("a/b/", "a/b/", "A")
	f.Fuzz(func(t *testing.T, pattern, target, prefix string) {
		for _, d := range []*DelegatedRole{
			{Name: "paths", Paths: []string{pattern}},
			{Name: "two", Paths: []string{pattern, target}},
			{Name: "prefix", PathHashPrefixes: []string{prefix}},
		} {
			if got, want := d.Matches(target), refMatches(d, target); got != want {
				t.Fatalf("%+v Matches(%q) = %v, the reference says %v", d, target, got, want)
			}
			if got := Outside(target, d) == nil; got != refMatches(d, target) {
				t.Fatalf("Outside(%q, %+v) disagrees with the reference", target, d)
			}
		}
		sum := sha256.Sum256([]byte(target))
		h := hex.EncodeToString(sum[:])
		for n := 0; n <= len(h); n += 7 {
			d := &DelegatedRole{PathHashPrefixes: []string{h[:n]}}
			if !d.Matches(target) {
				t.Fatalf("%q does not match its own hash prefix %q", target, h[:n])
			}
		}
	})
}

// BenchmarkOutside is the per-target check of a stable leaf bin's
// target: stable's path patterns, its mid's and its leaf's prefixes.
func BenchmarkOutside(b *testing.B) {
	p := "packages/3f/a1/0c5e9b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f/example_project-1.2.3-py3-none-any.whl"
	sum := sha256.Sum256([]byte(p))
	h := hex.EncodeToString(sum[:])
	stable := &DelegatedRole{Name: "stable", Paths: []string{"simple/*/*", "packages/*/*/*/*"}}
	mid := &DelegatedRole{Name: "mid", PathHashPrefixes: []string{h[:2]}}
	leaf := &DelegatedRole{Name: "leaf", PathHashPrefixes: []string{h[:4]}}
	b.ReportAllocs()
	for b.Loop() {
		if Outside(p, stable, mid, leaf) != nil {
			b.Fatal("outside")
		}
	}
}
