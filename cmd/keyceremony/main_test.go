package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestErrorFormat(t *testing.T) {
	code, _, errOut := runCLI("demo")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(errOut, "keyceremony: error: --out is required\nhint: ") {
		t.Fatalf("stderr: %q", errOut)
	}
	code, _, errOut = runCLI("no-such-command")
	if code != 1 || !strings.HasPrefix(errOut, "keyceremony: error: ") {
		t.Fatalf("unknown command: %d %q", code, errOut)
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

// TestBinaryDoesNotLinkGoTUF: go-tuf is a test oracle only, and the
// synthetic export generator is for tests and benchmarks; the shipped
// binary must contain neither (docs/dependencies.md).
func TestBinaryDoesNotLinkGoTUF(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "theupdateframework") || strings.Contains(dep, "sigstore") || strings.HasSuffix(dep, "/internal/tufjs") || strings.HasSuffix(dep, "/stableset/synth") {
			t.Errorf("the binary links %s", dep)
		}
	}
}

var (
	demoOnce sync.Once
	demoDir  string
	demoErr  error
)

func demoRepo(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		base, err := os.MkdirTemp("", "kc-cli-demo-")
		if err != nil {
			demoErr = err
			return
		}
		demoDir = filepath.Join(base, "demo")
		_, demoErr = (&ceremony.Demo{Out: demoDir, Now: time.Now().UTC(), DeviceKDF: soft.KDFTest}).Run()
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoDir
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

func TestVerifyDemo(t *testing.T) {
	dir := demoRepo(t)
	code, out, errOut := runCLI("verify", "--root", filepath.Join(dir, "metadata", "1.root.json"), dir)
	if code != 0 || !strings.Contains(out, "OK: ") {
		t.Fatalf("verify: %d\n%s\n%s", code, out, errOut)
	}
	// Far in the future everything has expired.
	code, _, errOut = runCLI("verify", "--root", filepath.Join(dir, "metadata", "1.root.json"), "--at", "2099-01-01T00:00:00Z", dir)
	if code != 1 || !strings.Contains(errOut, "expired") {
		t.Fatalf("verify --at 2099: %d %q", code, errOut)
	}
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
	code := m.Run()
	if demoDir != "" {
		os.RemoveAll(filepath.Dir(demoDir))
	}
	os.Exit(code)
}
