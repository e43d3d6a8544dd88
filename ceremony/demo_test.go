package ceremony

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	gotufmeta "github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// runDemo runs the demo once per test binary; the tests below inspect it.
func runDemo(t *testing.T) (*DemoResult, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	d := &Demo{Out: dir, Now: time.Now().UTC(), Version: "test"}
	res, err := d.Run()
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	return res, dir
}

// TestDemoWithGoTUF points go-tuf v2's updater, an independent TUF client,
// at the demo repository over HTTP: it must accept every file, resolve a
// path both roles list to stable's entry (so the attacker's swap fails),
// and still resolve a path only unstable lists.
func TestDemoWithGoTUF(t *testing.T) {
	res, dir := runDemo(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	rootBytes, err := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/metadata", rootBytes)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = srv.URL + "/targets"
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = t.TempDir()
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refused the demo repository: %v", err)
	}
	check := func(p string) {
		t.Helper()
		ti, err := up.GetTargetInfo(p)
		if err != nil {
			t.Fatalf("go-tuf cannot resolve %s: %v", p, err)
		}
		_, data, err := up.DownloadTarget(ti, filepath.Join(t.TempDir(), "f"), "")
		if err != nil {
			t.Fatalf("go-tuf download of %s: %v", p, err)
		}
		if !bytes.Equal(data, res.Content[p]) {
			t.Fatalf("go-tuf delivered the wrong bytes for %s: %q", p, data)
		}
	}
	if len(res.Attacked) == 0 || len(res.UnstableOnly) == 0 || len(res.Stable) < 2 {
		t.Fatalf("the demo must exercise both roles: %+v", res)
	}
	for _, p := range res.Attacked {
		check(p) // stable's entry wins over the attacker's
	}
	for _, p := range res.Stable {
		check(p)
	}
	for _, p := range res.UnstableOnly {
		check(p)
	}
}

// TestDemoFilesLoadInGoTUF checks that go-tuf's metadata API loads every
// file the demo writes and that each delegation verifies in go-tuf too.
func TestDemoFilesLoadInGoTUF(t *testing.T) {
	_, dir := runDemo(t)
	md := filepath.Join(dir, "metadata")
	root, err := gotufmeta.Root().FromFile(filepath.Join(md, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("root", root); err != nil {
		t.Fatalf("go-tuf: root does not verify itself: %v", err)
	}
	targets, err := gotufmeta.Targets().FromFile(filepath.Join(md, "1.targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("targets", targets); err != nil {
		t.Fatalf("go-tuf: targets: %v", err)
	}
	roles := targets.Signed.Delegations.Roles
	if len(roles) != 2 || roles[0].Name != "stable" || roles[1].Name != "unstable" || roles[0].Terminating || roles[1].Terminating {
		t.Fatalf("targets must delegate to stable then unstable, both non-terminating: %+v", roles)
	}
	matches, _ := filepath.Glob(filepath.Join(md, "*.stable.json"))
	if len(matches) == 0 {
		t.Fatal("no stable metadata")
	}
	for _, m := range matches {
		st, err := gotufmeta.Targets().FromFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := targets.VerifyDelegate("stable", st); err != nil {
			t.Fatalf("go-tuf: %s: %v", m, err)
		}
	}
	snap, err := gotufmeta.Snapshot().FromFile(filepath.Join(md, "1.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("snapshot", snap); err != nil {
		t.Fatal(err)
	}
	ts, err := gotufmeta.Timestamp().FromFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate("timestamp", ts); err != nil {
		t.Fatal(err)
	}
}

// TestDemoRefusesNonEmptyDir: the demo never writes into a non-empty dir.
func TestDemoRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := (&Demo{Out: dir, Now: time.Now()}).Run()
	if err == nil {
		t.Fatal("demo wrote into a non-empty directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory changed: %v", entries)
	}
	parent, _ := os.ReadDir(filepath.Dir(dir))
	for _, e := range parent {
		if e.Name() != filepath.Base(dir) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
