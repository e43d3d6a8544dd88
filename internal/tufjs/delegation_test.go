package tufjs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/tuf"
)

// TestDeveloperDelegationWithTufJS: stable hands project foo-bar to its
// developers: a role delegated stableset/delegation's patterns for
// foo-bar, before the bins and terminating, whose metadata the
// developers sign with their own keys (two of two: ed25519 and ECDSA
// P-256). tuf-js, as published, resolves foo-bar's files and page
// through the developers' role; a foo-bar file the developers did not
// sign, which the online role lists, resolves to nothing (the delegation
// terminates); files of foo and foo-barbaz, whose names share foo-bar's
// prefix, are not captured: foo's resolves to stable's bin, foo-barbaz's
// to unstable.
func TestDeveloperDelegationWithTufJS(t *testing.T) {
	dir := t.TempDir()
	expires := time.Now().Add(30 * 24 * time.Hour)
	rootKey, targetsKey, stableKey, binKey, snapKey, tsKey, unstableKey := gen(t), gen(t), gen(t), gen(t), gen(t), gen(t), gen(t)
	devEd := gen(t)
	devEC, err := keys.GenerateECDSA()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{
		"wheel":     "packages/1a/2b/3c4d/foo_bar-1.0-py3-none-any.whl",
		"sdist":     "packages/5e/6f/7a8b/Foo.Bar-1.0.tar.gz",
		"unsigned":  "packages/9c/0d/1e2f/foo_bar-1.1-py3-none-any.whl",
		"page":      "simple/foo-bar/index.html",
		"foo":       "packages/aa/bb/ccdd/foo-1.0.tar.gz",
		"foobarbaz": "packages/ee/ff/0011/foo_barbaz-1.0-py3-none-any.whl",
	}
	content := func(who, p string) []byte { return []byte(who + "'s bytes of " + p + "\n") }

	root := tuf.NewRoot(1, expires)
	for role, k := range map[string]keys.Signer{tuf.RoleRoot: rootKey, tuf.RoleTargets: targetsKey, tuf.RoleSnapshot: snapKey, tuf.RoleTimestamp: tsKey} {
		if err := root.Signed.AddKey(role, k.Key()); err != nil {
			t.Fatal(err)
		}
	}
	targets := tuf.NewTargets(1, expires)
	targets.Signed.AddDelegation(tuf.DelegatedRole{Name: "stable", KeyIDs: []string{stableKey.Key().ID()}, Threshold: 1, Paths: fixturePaths}, stableKey.Key())
	targets.Signed.AddDelegation(tuf.DelegatedRole{Name: "unstable", KeyIDs: []string{unstableKey.Key().ID()}, Threshold: 1, Paths: fixturePaths}, unstableKey.Key())

	// stable: the developers' role first, terminating, then one bin
	// covering every hash, non-terminating.
	stable := tuf.NewTargets(1, expires)
	dev := tuf.DelegatedRole{Name: "project-foo-bar", KeyIDs: []string{devEd.Key().ID(), devEC.Key().ID()}, Threshold: 2, Terminating: true,
		Paths: delegation.Patterns("foo-bar", "simple/foo-bar/index.html", "simple/foo-bar/index.json")}
	stable.Signed.AddDelegation(dev, devEd.Key(), devEC.Key())
	stable.Signed.AddDelegation(tuf.DelegatedRole{Name: "stable-0-f", KeyIDs: []string{binKey.Key().ID()}, Threshold: 1, PathHashPrefixes: digits(0, 15)}, binKey.Key())

	devRole := tuf.NewTargets(1, expires)
	for _, k := range []string{"wheel", "sdist", "page"} {
		devRole.Signed.Targets[paths[k]] = targetEntry(content("developers", paths[k]))
	}
	bin := tuf.NewTargets(1, expires)
	bin.Signed.Targets[paths["foo"]] = targetEntry(content("stable", paths["foo"]))
	// The repository, with the online key, lists everything, and its own
	// bytes for foo-bar's files.
	unstable := tuf.NewTargets(1, expires)
	for _, p := range paths {
		unstable.Signed.Targets[p] = targetEntry(content("online", p))
	}

	f := &fixture{dir: dir}
	for who, list := range map[string]*tuf.Metadata[tuf.Targets]{"developers": devRole, "stable": bin, "online": unstable} {
		for p := range list.Signed.Targets {
			f.writeTarget(t, p, content(who, p))
		}
	}
	snap := tuf.NewSnapshot(1, expires)
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "metadata"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "metadata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(role string, m *tuf.Metadata[tuf.Targets], s ...keys.Signer) {
		t.Helper()
		if err := m.Sign(s...); err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("1.%s.json", role), b)
		snap.Signed.Meta[role+".json"] = entry(1, b)
	}
	if err := root.Sign(rootKey); err != nil {
		t.Fatal(err)
	}
	rb, _ := root.MarshalFile()
	write("1.root.json", rb)
	publish("targets", targets, targetsKey)
	publish("unstable", unstable, unstableKey)
	publish("stable", stable, stableKey)
	publish("project-foo-bar", devRole, devEd, devEC)
	publish("stable-0-f", bin, binKey)
	if err := snap.Sign(snapKey); err != nil {
		t.Fatal(err)
	}
	sb, _ := snap.MarshalFile()
	write("1.snapshot.json", sb)
	ts := tuf.NewTimestamp(1, expires, entry(1, sb))
	if err := ts.Sign(tsKey); err != nil {
		t.Fatal(err)
	}
	tb, _ := ts.MarshalFile()
	write("timestamp.json", tb)

	order := []string{"wheel", "sdist", "page", "unsigned", "foo", "foobarbaz"}
	var ask []string
	for _, k := range order {
		ask = append(ask, paths[k])
	}
	run := mustResolve(t, dir, f.root(), ask...)
	if !run.RefreshOK {
		t.Fatalf("refresh: %s", run.RefreshError)
	}
	want := map[string]string{"wheel": "developers", "sdist": "developers", "page": "developers", "unsigned": "", "foo": "stable", "foobarbaz": "online"}
	for _, k := range order {
		p := paths[k]
		r, _ := run.ByPath(p)
		who := want[k]
		switch {
		case who == "" && (r.Found || r.Error != ""):
			t.Errorf("%s (%s): %+v, want not found: the developers did not sign it and their role terminates", k, p, r)
		case who != "" && (!r.Found || !r.Downloaded || r.Hashes["sha256"] != hexOf(content(who, p))):
			t.Errorf("%s (%s): %+v, want the %s' entry, downloaded", k, p, r, who)
		}
	}

	// Without the second developer's signature the threshold is not met:
	// tuf-js refuses the role and finds nothing for foo-bar, still never
	// the online role's entry.
	devRole.Signatures = nil
	publish("project-foo-bar", devRole, devEd)
	snap.Signatures = nil
	if err := snap.Sign(snapKey); err != nil {
		t.Fatal(err)
	}
	sb, _ = snap.MarshalFile()
	write("1.snapshot.json", sb)
	ts = tuf.NewTimestamp(1, expires, entry(1, sb))
	if err := ts.Sign(tsKey); err != nil {
		t.Fatal(err)
	}
	tb, _ = ts.MarshalFile()
	write("timestamp.json", tb)
	run = mustResolve(t, dir, f.root(), paths["wheel"])
	if r, _ := run.ByPath(paths["wheel"]); r.Found || r.Error == "" {
		t.Errorf("one developer signature of two: %+v, want refused", r)
	}
}
