package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
)

// cmdDemoMedia copies the shared demo (or one of its subdirectories) into
// the script's work directory: demo-media DIR [SUBDIR].
func cmdDemoMedia(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: demo-media DIR [SUBDIR]")
	}
	src, err := sharedDemo()
	ts.Check(err)
	if len(args) == 2 {
		src = filepath.Join(src, filepath.FromSlash(args[1]))
	}
	ts.Check(copyAll(src, ts.MkAbs(args[0])))
}

func copyAll(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
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
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
}

// cmdReplace replaces the first OLD by NEW in the first file matching
// GLOB that holds OLD: replace GLOB OLD NEW.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace GLOB OLD NEW")
	}
	files, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		ts.Check(err)
		if bytes.Contains(b, []byte(args[1])) {
			ts.Check(os.WriteFile(f, bytes.Replace(b, []byte(args[1]), []byte(args[2]), 1), 0o644))
			ts.Logf("edited %s", f)
			return
		}
	}
	ts.Fatalf("no file matching %s holds %q", args[0], args[1])
}

// cmdDropLine removes line N (from 1; negative counts from the end) of
// FILE: dropline FILE N.
func cmdDropLine(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: dropline FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	lines := strings.SplitAfter(strings.TrimSuffix(ts.ReadFile(args[0]), "\n"), "\n")
	if n < 0 {
		n = len(lines) + 1 + n
	}
	if n < 1 || n > len(lines) {
		ts.Fatalf("%s has %d lines", args[0], len(lines))
	}
	out := strings.Join(append(lines[:n-1:n-1], lines[n:]...), "")
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(out), 0o644))
}

// cmdResignDiff signs MEDIA's signed diff again, with one more file
// counted as added, with the stable keys (slot 83, PIN 123456) of the
// soft devices named, as keyholders whose tool lied would:
// resign-diff MEDIA ROOTFILE DEVDIR...
func cmdResignDiff(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: resign-diff MEDIA BOOTSTRAP DEVDIR...")
	}
	file := ts.MkAbs(filepath.Join(args[0], "signed-diff.json"))
	b, err := os.ReadFile(file)
	ts.Check(err)
	env, err := signeddiff.Load(b, file)
	ts.Check(err)
	tb, err := os.ReadFile(ts.MkAbs(filepath.Join(args[1], "metadata", "1.targets.json")))
	ts.Check(err)
	targets, err := tuf.Load[tuf.Targets](tb, "1.targets.json")
	ts.Check(err)
	d, _ := targets.Signed.Delegation("stable")
	st, err := signeddiff.Verify(env, targets.Signed.Delegations.Keys, d.KeyIDs, d.Threshold)
	ts.Check(err)
	st.Counts.Added++
	var signers []keys.Signer
	for _, dir := range args[2:] {
		dev, err := soft.Open(ts.MkAbs(dir))
		ts.Check(err)
		defer dev.Close()
		sg, err := hsm.NewSigner(dev, hsm.Slot(0x83), "123456")
		ts.Check(err)
		signers = append(signers, sg)
	}
	env, err = signeddiff.Sign(st, signers)
	ts.Check(err)
	b, err = signeddiff.Marshal(env)
	ts.Check(err)
	ts.Check(os.WriteFile(file, b, 0o644))
}

// cmdExpiryAt sets VAR to the expiry of the metadata in FILE moved by
// OFFSET (a Go duration), in RFC 3339, so that scripts inject times
// relative to what a ceremony wrote: expiry-at VAR FILE OFFSET.
func cmdExpiryAt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: expiry-at VAR FILE OFFSET")
	}
	var m struct {
		Signed struct {
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &m))
	d, err := time.ParseDuration(args[2])
	ts.Check(err)
	ts.Setenv(args[0], m.Signed.Expires.Add(d).UTC().Format(time.RFC3339))
}

// TestVerifyExitCodes: 0 verified, 1 invalid, 2 could not verify, for
// verify and status.
func TestVerifyExitCodes(t *testing.T) {
	dir := demoRepo(t)
	root := filepath.Join(dir, "metadata", "1.root.json")
	tampered := copyTree(t, dir)
	replaceIn(t, filepath.Join(tampered, "metadata", "1.snapshot.json"), `"version": 1`, `"version": 2`)
	boot, stable1 := filepath.Join(dir, "ceremony", "bootstrap"), filepath.Join(dir, "ceremony", "stable-1")
	exp := filepath.Join(dir, "repository", "export.jsonl")
	// Another export: the demo's with its second line dropped.
	lines := strings.SplitAfter(mustReadFile(t, exp), "\n")
	otherExport := filepath.Join(t.TempDir(), "other.jsonl")
	if err := os.WriteFile(otherExport, []byte(lines[0]+strings.Join(lines[2:], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"verify", "--root", root, dir}, 0, ""},
		{[]string{"verify", "--root", root, "--soft-ca", filepath.Join(dir, "devices", "ca"), filepath.Join(dir, "ceremony", "bootstrap")}, 0, ""},
		{[]string{"verify", "--root", root, "--repository", filepath.Join(dir, "ceremony", "bootstrap"), filepath.Join(dir, "ceremony", "stable-1")}, 0, ""},
		{[]string{"verify", "--root", root, tampered}, 1, "1.snapshot.json"},
		{[]string{"verify", "--root", root, filepath.Join(dir, "ceremony", "bootstrap")}, 1, "does not chain to a trusted root"},
		{[]string{"verify", "--root", root, "--previous", dir, "--soft-ca", filepath.Join(dir, "devices", "ca"), filepath.Join(dir, "ceremony", "bootstrap")}, 1, "goes back"},
		{[]string{"verify", "--root", root, filepath.Join(dir, "ceremony", "stable-1")}, 2, "pass --repository"},
		{[]string{"verify", "--root", root, filepath.Join(dir, "nothing")}, 2, "no such file"},
		{[]string{"verify", "--root", root, filepath.Join(dir, "devices")}, 2, "not a medium keyceremony writes"},
		{[]string{"verify", "--root", filepath.Join(dir, "nothing.json"), dir}, 2, "reading the trusted root"},
		{[]string{"verify", "--root", root, "--previous", filepath.Join(dir, "nothing"), dir}, 2, "previous medium"},
		{[]string{"verify", "--root", root, "--previous", boot, "--export", exp, stable1}, 0, ""},
		{[]string{"verify", "--root", root, "--previous", boot, "--export", otherExport, stable1}, 1, "another export than the one the diff was computed from"},
		{[]string{"verify", "--root", root, "--previous", boot, "--export", filepath.Join(dir, "nothing.jsonl"), stable1}, 2, "nothing.jsonl: no such file"},
		{[]string{"verify", "--root", root, "--repository", boot, "--previous", filepath.Join(dir, "nothing"), "--export", exp, stable1}, 2, "previous medium"},
		{[]string{"verify", "--root", root, "--repository", boot, "--previous", filepath.Join(dir, "metadata"), "--export", exp, stable1}, 2, "metadata directory holds no ledger"},
		{[]string{"verify", "--root", root, "--repository", boot, "--export", exp, stable1}, 2, "name the previous medium with --previous"},
		{[]string{"verify", dir}, 2, "--root is required"},
		{[]string{"verify", "--root", root}, 2, "verify takes one directory"},
		{[]string{"verify", "--root", root, "--format", "yaml", dir}, 2, "--format"},
		{[]string{"verify", "--root", root, "--no-such-flag", dir}, 2, "unknown flag"},
		{[]string{"verify", "--root", root, "--soft-ca", "x", "--attestation-ca", "y", dir}, 2, "cannot be combined"},
		{[]string{"status", "--margin", "1d", dir}, 0, ""},
		{[]string{"status", dir}, 1, "expire within 30d"},
		{[]string{"status", "--at", "2099-01-01T00:00:00Z", filepath.Join(dir, "ceremony", "bootstrap")}, 1, "have expired"},
		{[]string{"status", filepath.Join(dir, "nothing")}, 2, "no such file"},
		{[]string{"status", "--margin", "-3d", dir}, 2, "--margin"},
		{[]string{"status"}, 2, "status takes one directory"},
	} {
		t.Run(fmt.Sprintf("%s exit %d %s", c.args[0], c.code, c.err), func(t *testing.T) {
			code, _, stderr := runCLI(c.args...)
			if code != c.code || !strings.Contains(stderr, c.err) {
				t.Fatalf("%q: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, stderr, c.err)
			}
		})
	}
}

// TestVerifyRecomputedJSON: verify --format json says whether the signed
// diff was recomputed.
func TestVerifyRecomputedJSON(t *testing.T) {
	dir := demoRepo(t)
	args := []string{"verify", "--format", "json", "--root", filepath.Join(dir, "metadata", "1.root.json"), "--previous", filepath.Join(dir, "ceremony", "bootstrap")}
	for _, c := range []struct {
		extra []string
		want  bool
	}{
		{nil, false},
		{[]string{"--export", filepath.Join(dir, "repository", "export.jsonl")}, true},
	} {
		code, out, stderr := runCLI(append(append(args[:len(args):len(args)], c.extra...), filepath.Join(dir, "ceremony", "stable-1"))...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.extra, code, stderr)
		}
		var r struct {
			SignedDiff struct {
				Recomputed *bool `json:"recomputed"`
			} `json:"signed_diff"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.SignedDiff.Recomputed == nil || *r.SignedDiff.Recomputed != c.want {
			t.Fatalf("%v: signed_diff.recomputed %v, want %v", c.extra, r.SignedDiff.Recomputed, c.want)
		}
	}
}

// auditJSON is the documented shape of verify --format json
// (docs/audit.md); decoding refuses any other field.
type auditJSON struct {
	Medium  string `json:"medium"`
	Dir     string `json:"dir"`
	At      string `json:"checked_at"`
	Valid   bool   `json:"valid"`
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
	Checks  []struct {
		Check, Detail string
		OK            bool
	} `json:"checks"`
	Versions map[string]int64 `json:"versions"`
	Files    []struct {
		File       string `json:"file"`
		Role       string `json:"role"`
		Delegator  string `json:"delegated_by"`
		Version    int64  `json:"version"`
		Expires    string `json:"expires"`
		Signatures []struct {
			By        string   `json:"checked_by"`
			Threshold int      `json:"threshold"`
			Signers   []string `json:"signed_by"`
		} `json:"signatures"`
	} `json:"files"`
	Keys []struct {
		Role, Slot, Firmware string
		FormFactor           string `json:"form_factor"`
		Device               uint32
		KeyID                string `json:"keyid"`
		PINPolicy            string `json:"pin_policy"`
		TouchPolicy          string `json:"touch_policy"`
		ChainsTo             string `json:"chains_to"`
	} `json:"keys"`
	Transcript *struct {
		File    string `json:"file"`
		Entries int    `json:"entries"`
		Digest  string `json:"digest"`
	} `json:"transcript"`
	SignedDiff json.RawMessage `json:"signed_diff"`
	Previous   json.RawMessage `json:"previous"`
	Notes      []string        `json:"notes"`
}

// TestVerifyJSONShape: the JSON report has the documented fields and
// the same content as the text report.
func TestVerifyJSONShape(t *testing.T) {
	dir := demoRepo(t)
	args := []string{"verify", "--root", filepath.Join(dir, "metadata", "1.root.json"), "--soft-ca", filepath.Join(dir, "devices", "ca"), filepath.Join(dir, "ceremony", "bootstrap")}
	code, text, _ := runCLI(args...)
	if code != 0 {
		t.Fatalf("text: exit %d", code)
	}
	code, out, _ := runCLI(append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("json: exit %d", code)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var r auditJSON
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Medium != "bootstrap" || !r.Valid || r.Outcome != "valid" || r.Error != "" || len(r.Checks) < 8 || len(r.Keys) != 8 || len(r.Files) != 3 || r.Transcript == nil || r.Transcript.Entries == 0 {
		t.Fatalf("report %+v", r)
	}
	if r.Versions["root"] != 1 || r.Versions["targets"] != 1 || r.Versions["stable"] != 1 {
		t.Fatalf("versions %v", r.Versions)
	}
	for _, c := range r.Checks {
		if !c.OK || !strings.Contains(text, c.Check) || !strings.Contains(text, c.Detail) {
			t.Errorf("check %q (%q) is not in the text report", c.Check, c.Detail)
		}
	}
	for _, k := range r.Keys {
		if len(k.KeyID) != 64 || !strings.Contains(text, k.KeyID) || k.PINPolicy == "" || k.TouchPolicy == "" || !strings.Contains(k.ChainsTo, "INSECURE") {
			t.Errorf("key %+v", k)
		}
	}
	for _, f := range r.Files {
		for _, s := range f.Signatures {
			for _, id := range s.Signers {
				if !strings.Contains(text, id) {
					t.Errorf("signer %s of %s is not in the text report", id, f.File)
				}
			}
		}
	}
	if !strings.Contains(text, r.Transcript.Digest) || !strings.Contains(text, fmt.Sprintf("OK: %d metadata files verified", len(r.Files))) {
		t.Errorf("text report lacks the transcript digest or the count:\n%s", text)
	}
	// A refusal is a report too, with the error.
	code, out, _ = runCLI("verify", "--root", filepath.Join(dir, "metadata", "1.root.json"), "--format", "json", filepath.Join(dir, "ceremony", "bootstrap"))
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var bad auditJSON
	if err := json.Unmarshal([]byte(out), &bad); err != nil || bad.Valid || bad.Outcome != "invalid" || !strings.Contains(bad.Error, "attestations:") || bad.Checks[len(bad.Checks)-1].OK {
		t.Fatalf("refusal report %v %+v", err, bad)
	}
}

// FuzzParseMargin: --margin never panics, is never negative, and N days
// are N times 24 hours.
func FuzzParseMargin(f *testing.F) {
	for _, s := range []string{"30d", "0d", "36h", "-3d", "1.5h", "d", "99999d", "-1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseMargin(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
		if n, ok := strings.CutSuffix(s, "d"); ok {
			v, _ := strconv.ParseUint(n, 10, 16)
			if d != time.Duration(v)*24*time.Hour {
				t.Fatalf("%q: %v", s, d)
			}
		}
	})
}
