package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// Devices 1001-1003 at factory PIN 123456, named in a PIN file.
	boot := softRehearsal(t, p("devs"))
	var softArgs []string
	for i := 0; i < len(boot); i++ {
		if boot[i] == "--soft" || boot[i] == "--soft-ca" {
			softArgs = append(softArgs, boot[i], boot[i+1])
		}
	}
	if err := os.WriteFile(p("pins.txt"), []byte("1001 123456\n1002 123456\n1003 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	softArgs = append(softArgs, "--pin-file", p("pins.txt"))
	out := mustRun(append(boot, "--out", p("boot"), "--pin-file", p("pins.txt"))...)
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
