package tuf

import (
	"errors"
	"strings"
	"testing"
)

// stableWith is stable's targets with the given path roles, then two bins
// covering the whole hash space.
func stableWith(t *testing.T, pathRoles ...DelegatedRole) *Targets {
	t.Helper()
	st := &Targets{}
	for _, d := range pathRoles {
		k := edSigner(t).Key()
		d.KeyIDs = []string{k.ID()}
		d.Threshold = 1
		st.AddDelegation(d, k)
	}
	for i, ps := range [][]string{digitsHex(0, 7), digitsHex(8, 15)} {
		k := edSigner(t).Key()
		st.AddDelegation(DelegatedRole{Name: binNames[i], KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: ps}, k)
	}
	return st
}

func digitsHex(lo, hi int) []string {
	var out []string
	for d := lo; d <= hi; d++ {
		out = append(out, string("0123456789abcdef"[d]))
	}
	return out
}

var stableDeleg = &DelegatedRole{Name: "stable", Paths: append(append([]string{}, pathPatterns...), ledgerPattern)}

const (
	takenPath  = "packages/ab/cd/0123456789abcdef/evil-1.0.tar.gz"
	takenPath2 = "simple/evil/index.html"
)

// TestCheckStableLayout: stable's path roles (takedown, developer roles)
// before the bins are accepted when terminating, exact (for the takedown)
// and disjoint; every way of getting them wrong is refused, naming the role.
func TestCheckStableLayout(t *testing.T) {
	takedown := func(paths ...string) DelegatedRole {
		return DelegatedRole{Name: TakedownRole, Terminating: true, Paths: paths}
	}
	dev := DelegatedRole{Name: "project-foo", Terminating: true, Paths: []string{"packages/*/*/*/foo-*", "simple/foo/index.html"}}
	good := []struct {
		name string
		st   *Targets
	}{
		{"bins only", stableWith(t)},
		{"takedown", stableWith(t, takedown(takenPath, takenPath2))},
		{"takedown and a developer role", stableWith(t, takedown(takenPath), dev)},
	}
	for _, c := range good {
		if err := CheckStableLayout(stableDeleg, c.st); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	bad := []struct {
		name string
		st   func() *Targets
		msg  string
	}{
		{"takedown not terminating", func() *Targets {
			d := takedown(takenPath)
			d.Terminating = false
			return stableWith(t, d)
		}, "path role takedown is not terminating"},
		{"takedown with a wildcard", func() *Targets {
			return stableWith(t, takedown("packages/ab/cd/*/evil-1.0.tar.gz"))
		}, `takedown is delegated "packages/ab/cd/*/evil-1.0.tar.gz", want exact paths`},
		{"takedown with a character class", func() *Targets {
			return stableWith(t, takedown("simple/evi[l]/index.html"))
		}, "want exact paths"},
		{"takedown with a ? wildcard", func() *Targets {
			return stableWith(t, takedown("simple/evi?/index.html"))
		}, "want exact paths"},
		{"takedown path twice", func() *Targets {
			return stableWith(t, takedown(takenPath, takenPath))
		}, "delegated \"" + takenPath + "\" twice"},
		{"takedown path stable is not delegated", func() *Targets {
			return stableWith(t, takedown("elsewhere/evil.tar.gz"))
		}, `path role takedown is delegated "elsewhere/evil.tar.gz", which no path delegated to stable reaches`},
		{"takedown path inside a developer role", func() *Targets {
			return stableWith(t, takedown("packages/ab/cd/0123/foo-1.0.tar.gz"), dev)
		}, "which path role project-foo's patterns also match"},
		{"takedown after the bins", func() *Targets {
			st := stableWith(t)
			k := edSigner(t).Key()
			d := takedown(takenPath)
			d.KeyIDs, d.Threshold = []string{k.ID()}, 1
			st.AddDelegation(d, k)
			return st
		}, "path role takedown comes after the bins"},
		{"takedown as a hash bin", func() *Targets {
			st := stableWith(t)
			st.Delegations.Roles[1].Name = TakedownRole
			return st
		}, "path role takedown comes after the bins"},
		{"developer role not terminating", func() *Targets {
			d := dev
			d.Terminating = false
			return stableWith(t, d)
		}, "path role project-foo is not terminating"},
		{"a path role neither takedown nor a developer's", func() *Targets {
			d := dev
			d.Name = "foo"
			return stableWith(t, d)
		}, "path role foo is neither takedown nor a developer role (project-<project>)"},
		{"a developer role named after no normalised project", func() *Targets {
			d := dev
			d.Name = "project-Foo"
			return stableWith(t, d)
		}, "path role project-Foo is neither"},
		{"a developer role twice", func() *Targets {
			return stableWith(t, dev, dev)
		}, "path role project-foo is delegated twice"},
		{"a developer role whose keys cannot meet its threshold", func() *Targets {
			st := stableWith(t, dev)
			st.Delegations.Roles[0].Threshold = 2
			return st
		}, "developer role project-foo has threshold 2 and 1 keys"},
		{"a developer role after the bins", func() *Targets {
			st := stableWith(t)
			k := edSigner(t).Key()
			d := dev
			d.KeyIDs, d.Threshold, d.Terminating = []string{k.ID()}, 1, false
			st.AddDelegation(d, k)
			return st
		}, "path role project-foo comes after the bins"},
	}
	for _, c := range bad {
		err := CheckStableLayout(stableDeleg, c.st())
		if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want ErrLayout saying %q", c.name, err, c.msg)
		}
	}
}

// TestCheckPathRoleFile: the takedown role's file must be empty (no
// target, no delegation); a developer role may list targets but delegates
// to nobody.
func TestCheckPathRoleFile(t *testing.T) {
	td := &DelegatedRole{Name: TakedownRole, Terminating: true, Paths: []string{takenPath}}
	dev := &DelegatedRole{Name: "project-foo", Terminating: true, Paths: []string{"packages/*/*/*/foo-*"}}
	if err := CheckPathRoleFile(td, &Targets{Targets: map[string]TargetFile{}}); err != nil {
		t.Errorf("empty takedown: %v", err)
	}
	listed := &Targets{Targets: map[string]TargetFile{takenPath: targetFile("the attacker's bytes")}}
	if err := CheckPathRoleFile(td, listed); !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "takedown lists 1 targets (first "+takenPath+"), want none") {
		t.Errorf("takedown listing a target: %v", err)
	}
	if err := CheckPathRoleFile(dev, listed); err != nil {
		t.Errorf("developer role listing a target: %v", err)
	}
	k := edSigner(t).Key()
	deleg := &Targets{}
	deleg.AddDelegation(DelegatedRole{Name: "more", KeyIDs: []string{k.ID()}, Threshold: 1, Paths: []string{takenPath}}, k)
	for _, d := range []*DelegatedRole{td, dev} {
		if err := CheckPathRoleFile(d, deleg); !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "delegates to more") {
			t.Errorf("%s delegating: %v", d.Name, err)
		}
	}
}

func TestIsExactPath(t *testing.T) {
	for p, want := range map[string]bool{
		takenPath: true, takenPath2: true, "a": true,
		"": false, "simple/*/index.html": false, "simple/a?/x": false, "simple/[ab]/x": false,
		`simple/a\*/x`: false, "simple//x": false, "simple/./x": false, "simple/../x": false, "/simple/x": false,
	} {
		if got := IsExactPath(p); got != want {
			t.Errorf("IsExactPath(%q) = %v, want %v", p, got, want)
		}
	}
}
