package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/hsm/soft"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("--version")
	if code != 0 || !strings.HasPrefix(out, "keyceremony ") || !strings.Contains(out, "go1.") {
		t.Fatalf("--version: %d %q", code, out)
	}
}

func TestEveryCommandHasHelpAndExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && !c.Hidden && c.Name() != "help" && c.Parent() != nil && c.Parent().Name() != "completion" && c.Name() != "completion" {
			if c.Short == "" || c.Example == "" {
				t.Errorf("%q lacks a short description or an example", c.CommandPath())
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := newRootCommand()
	root.InitDefaultCompletionCmd()
	walk(root)
}

func TestCompletion(t *testing.T) {
	code, out, _ := runCLI("completion", "bash")
	if code != 0 || !strings.Contains(out, "keyceremony") {
		t.Fatalf("completion bash: %d", code)
	}
}

// denied are the packages and modules the release binary must not hold:
// test oracles and test machinery (docs/dependencies.md). A package path
// is denied when it equals an entry or lies beneath it.
var denied = []string{
	"github.com/theupdateframework/go-tuf", // test oracle
	"github.com/sigstore",                  // go-tuf's dependencies
	"github.com/rogpeppe/go-internal",      // testscript
	"github.com/keyceremony/keyceremony/hsm/pivemu",
	"github.com/keyceremony/keyceremony/hsm/hsmtest",
	"github.com/keyceremony/keyceremony/cmd/pivemu",
	"github.com/keyceremony/keyceremony/internal/tufjs", // runs tuf-js in tests
	deniedSynth,
}

// deniedSynth is the synthetic export generator (tests and benchmarks
// only; the demo has its own small generator).
const deniedSynth = "github.com/keyceremony/keyceremony/stableset/synth"

// TestReleaseBinaryHoldsNoTestMachinery checks every package the release
// binary links, with and without cgo, against the deny list.
func TestReleaseBinaryHoldsNoTestMachinery(t *testing.T) {
	for _, cgo := range []string{"1", "0"} {
		cmd := exec.Command("go", "list", "-deps", ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps (CGO_ENABLED=%s): %v", cgo, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, "github.com/keyceremony/keyceremony/ceremony") {
			t.Fatalf("go list -deps (CGO_ENABLED=%s) does not list the ceremony package: %q", cgo, deps)
		}
		if bad := deniedIn(deps); len(bad) > 0 {
			t.Errorf("CGO_ENABLED=%s: the release binary links %q", cgo, bad)
		}
	}
}

// deniedIn returns the packages of deps that the deny list names.
func deniedIn(deps []string) []string {
	var bad []string
	for _, dep := range deps {
		for _, d := range denied {
			if d != "" && (dep == d || strings.HasPrefix(dep, d+"/")) {
				bad = append(bad, dep)
			}
		}
	}
	return bad
}

// TestDenyList: the deny list catches what it names and only that.
func TestDenyList(t *testing.T) {
	deps := []string{
		"fmt",
		"github.com/theupdateframework/go-tuf/v2/metadata",
		"github.com/keyceremony/keyceremony/hsm/pivemu",
		"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest",
		"github.com/keyceremony/keyceremony/hsm/piv",
		"github.com/keyceremony/keyceremony/hsm/pivemulator",
		"github.com/rogpeppe/go-internal/testscript",
		"github.com/keyceremony/keyceremony/cmd/pivemu",
	}
	want := []string{deps[1], deps[2], deps[3], deps[6], deps[7]}
	if got := deniedIn(deps); !slices.Equal(got, want) {
		t.Fatalf("deniedIn = %q, want %q", got, want)
	}
}

var (
	demoOnce sync.Once
	demoDir  string
	demoErr  error
)

func demoRepo(t *testing.T) string {
	t.Helper()
	dir, err := sharedDemo()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// sharedDemo runs the demo (soft devices at the test KDF cost) once per
// test binary; tests and scripts copy what they edit.
func sharedDemo() (string, error) {
	demoOnce.Do(func() {
		base, err := os.MkdirTemp("", "kc-cli-demo-")
		if err != nil {
			demoErr = err
			return
		}
		demoDir = filepath.Join(base, "demo")
		_, demoErr = (&ceremony.Demo{Out: demoDir, Now: time.Now().UTC(), DeviceKDF: soft.KDFTest}).Run()
	})
	return demoDir, demoErr
}

// copyTree copies the demo repository's metadata, which the tamper
// tests edit, and links its other top-level entries (the targets, the
// devices, the media), which they do not.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "metadata" {
			if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	repo := dst
	src, dst = filepath.Join(src, "metadata"), filepath.Join(dst, "metadata")
	err = filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestVerifyRejectsTamperedDemo edits copies of the demo repository; each
// must fail, naming the file at fault.
func TestVerifyRejectsTamperedDemo(t *testing.T) {
	dir := demoRepo(t)
	stable := func(md string) string {
		m, _ := filepath.Glob(filepath.Join(md, "*.stable.json"))
		var newest string
		for _, f := range m {
			if !strings.HasPrefix(filepath.Base(f), "1.") {
				newest = f
			}
		}
		return newest
	}
	cases := []struct {
		name string
		edit func(t *testing.T, md string) string // returns the file it broke
		want string
	}{
		{"flipped signature byte in stable", func(t *testing.T, md string) string {
			f := stable(md)
			replaceIn(t, f, `"sig":"30`, `"sig":"31`)
			return filepath.Base(f)
		}, "stable"},
		{"edited target length in a bin", func(t *testing.T, md string) string {
			bins, _ := filepath.Glob(filepath.Join(md, "2.stable-*.json"))
			for _, b := range bins {
				if data, _ := os.ReadFile(b); bytes.Contains(data, []byte(`"length":`)) {
					replaceIn(t, b, `"length":`, `"length":1`)
					return filepath.Base(b)
				}
			}
			t.Fatal("no bin lists a target")
			return ""
		}, "stable-"},
		{"stable no longer first in targets", func(t *testing.T, md string) string {
			f := filepath.Join(md, "1.targets.json")
			replaceIn(t, f, `"name": "stable"`, `"name": "tmp"`)
			replaceIn(t, f, `"name": "unstable"`, `"name": "stable"`)
			replaceIn(t, f, `"name": "tmp"`, `"name": "unstable"`)
			return "1.targets.json"
		}, "targets"},
		{"snapshot edited", func(t *testing.T, md string) string {
			replaceIn(t, filepath.Join(md, "1.snapshot.json"), `"version": 1`, `"version": 2`)
			return "1.snapshot.json"
		}, "snapshot"},
		{"unknown field in root", func(t *testing.T, md string) string {
			replaceIn(t, filepath.Join(md, "1.root.json"), `"consistent_snapshot"`, `"x": 1, "consistent_snapshot"`)
			return "1.root.json"
		}, "root"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp := copyTree(t, dir)
			trusted := filepath.Join(t.TempDir(), "root.json")
			b, _ := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
			os.WriteFile(trusted, b, 0o644)
			file := tc.edit(t, filepath.Join(cp, "metadata"))
			if tc.name == "unknown field in root" {
				trusted = filepath.Join(cp, "metadata", "1.root.json")
			}
			code, _, errOut := runCLI("verify", "--root", trusted, cp)
			if code != 1 || !strings.Contains(errOut, file) || !strings.HasPrefix(errOut, "keyceremony: error: ") {
				t.Fatalf("want failure naming %s, got %d %q", file, code, errOut)
			}
		})
	}
}

func replaceIn(t *testing.T, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	// Scripts run "keyceremony" as this test binary calling run.
	code := testscript.RunMain(m, map[string]func() int{
		"keyceremony": func() int { return run(os.Args[1:], os.Stdout, os.Stderr) },
	})
	if demoDir != "" {
		os.RemoveAll(filepath.Dir(demoDir))
	}
	if pivemuBin != "" {
		os.RemoveAll(filepath.Dir(pivemuBin))
	}
	os.Exit(code)
}
