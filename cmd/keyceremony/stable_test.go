package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// TestStableCeremonyCLI runs a rehearsal through the command line only:
// soft devices, bootstrap, stable diff, a refused approval, stable sign.
func TestStableCeremonyCLI(t *testing.T) {
	dir := t.TempDir()
	p := func(elem ...string) string { return filepath.Join(append([]string{dir}, elem...)...) }
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(args...)
		if code != 0 {
			t.Fatalf("keyceremony %s: %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	mustRun("soft", "ca", "--dir", p("devs", "ca"))
	var pins strings.Builder
	var softArgs []string
	for _, serial := range []int{1001, 1002, 1003} {
		d := p("devs", fmt.Sprint(serial))
		mustRun("soft", "create", "--dir", d, "--serial", fmt.Sprint(serial), "--ca", p("devs", "ca"))
		fmt.Fprintf(&pins, "%d 123456\n", serial)
		softArgs = append(softArgs, "--soft", d)
	}
	softArgs = append(softArgs, "--soft-ca", p("devs", "ca"), "--pin-file", p("pins.txt"))
	if err := os.WriteFile(p("pins.txt"), []byte(pins.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	online, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	kj, _ := json.Marshal(online.Key())
	spec := func(th int, slot string, serials ...int) string {
		var ks []string
		for _, s := range serials {
			ks = append(ks, fmt.Sprintf(`{"device": %d, "slot": %q}`, s, slot))
		}
		return fmt.Sprintf(`{"threshold": %d, "keys": [%s]}`, th, strings.Join(ks, ", "))
	}
	onl := fmt.Sprintf(`{"threshold": 1, "keys": [%s]}`, kj)
	cfg := fmt.Sprintf(`{"repository": "pypi", "expires_days": {"root": 365, "targets": 365, "stable": 120},
"key_policy": {"algorithm": "p256", "pin_policy": "always", "touch_policy": "never"},
"root": %s, "targets": %s, "stable": %s,
"online": {"snapshot": %s, "timestamp": %s, "unstable": %s},
"target_paths": ["packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"]}`,
		spec(2, "9c", 1001, 1002, 1003), spec(1, "82", 1001, 1002), spec(2, "83", 1001, 1002, 1003), onl, onl, onl)
	if err := os.WriteFile(p("bootstrap.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustRun(append([]string{"bootstrap", "--config", p("bootstrap.json"), "--out", p("boot")}, softArgs...)...)
	if !strings.Contains(out, "transcript digest") {
		t.Fatalf("bootstrap output: %s", out)
	}
	// The repository's export: 3000 synthetic PyPI-like files.
	ef, err := os.Create(p("export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(ef, synth.Params{Seed: 1, Files: 3000, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ef.Close()
	common := []string{"--export", p("export.jsonl"), "--published", p("boot"), "--root", p("boot", "metadata", "1.root.json")}
	var diff struct {
		Digest  string `json:"digest"`
		Summary struct {
			Added int64 `json:"added"`
		} `json:"summary"`
	}
	jsonOut := mustRun(append([]string{"stable", "diff", "--format", "json"}, common...)...)
	if err := json.Unmarshal([]byte(jsonOut), &diff); err != nil || len(diff.Digest) != 64 || diff.Summary.Added == 0 {
		t.Fatalf("stable diff --format json: %v %+v", err, diff)
	}
	text := mustRun(append([]string{"stable", "diff"}, common...)...)
	if !strings.Contains(text, diff.Digest) {
		t.Fatal("the text diff does not show the digest")
	}
	// A wrong approval signs nothing and writes nothing.
	wrong := strings.Repeat("0", 64)
	code, _, errOut := runCLI(append(append([]string{"stable", "sign", "--media", p("media"), "--approve", wrong}, common...), softArgs...)...)
	if code != 1 || !strings.Contains(errOut, "approv") || !strings.Contains(errOut, "hint: ") {
		t.Fatalf("wrong approval: %d %q", code, errOut)
	}
	if _, err := os.Stat(p("media")); !os.IsNotExist(err) {
		t.Fatal("a refused signing left the media directory")
	}
	out = mustRun(append(append([]string{"stable", "sign", "--media", p("media"), "--approve", diff.Digest}, common...), softArgs...)...)
	if !strings.Contains(out, "stable v2 written") {
		t.Fatalf("stable sign: %s", out)
	}
	for _, f := range []string{"signed-diff.json", "diff.canonical", "diff.txt", "transcript.jsonl", "stable/metadata/2.stable.json", "stable/ledger/2.ledger", "stable/snapshot-fragment.json"} {
		if _, err := os.Stat(p("media", f)); err != nil {
			t.Errorf("media lacks %s", f)
		}
	}
	// Signing again into the same media is refused.
	code, _, _ = runCLI(append(append([]string{"stable", "sign", "--media", p("media"), "--approve", diff.Digest}, common...), softArgs...)...)
	if code != 1 {
		t.Fatal("signing into existing media was not refused")
	}
}
