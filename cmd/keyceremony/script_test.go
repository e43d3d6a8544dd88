package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keyceremony/keyceremony/stableset/synth"
)

// TestScript runs the command-line scripts in testdata/script: every
// command's success path, its refusals, and that a refused command left no
// file behind. The keyceremony command in a script is this test binary
// running main's run (see TestMain).
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			// No script talks to a smart card service: device commands
			// find none, whatever runs on this machine.
			e.Setenv("PCSCLITE_CSOCK_NAME", e.WorkDir+"/no-pcscd/pcscd.comm")
			// KEYCEREMONY_BIN is the directory holding only the
			// keyceremony command: PATH=$KEYCEREMONY_BIN hides every
			// other program (runsheet.txtar: no chromium).
			p, err := exec.LookPath("keyceremony")
			if err != nil {
				return err
			}
			e.Setenv("KEYCEREMONY_BIN", filepath.Dir(p))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"gen-export":   cmdGenExport,
			"getdigest":    cmdGetDigest,
			"getcount":     cmdGetCount,
			"expandenv":    cmdExpandEnv,
			"demo-media":   cmdDemoMedia,
			"replace":      cmdReplace,
			"dropline":     cmdDropLine,
			"resign-diff":  cmdResignDiff,
			"expiry-at":    cmdExpiryAt,
			"keyid":        cmdKeyID,
			"check-proofs": cmdCheckProofs,
			"their-proof":  cmdTheirProof,
			"pem-body":     cmdPEMBody,
		},
	})
}

// cmdGenExport writes a synthetic PyPI-like export (stableset/synth, test
// machinery the release binary does not hold): gen-export FILE COUNT,
// generated an hour ago.
func cmdGenExport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gen-export FILE COUNT")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Check(synth.Generate(f, synth.Params{Seed: 1, Files: n, Generated: time.Now().UTC().Add(-time.Hour)}))
	ts.Check(f.Close())
}

// cmdGetDigest sets an environment variable to the digest of a diff
// printed by 'stable diff --format json': getdigest FILE VAR.
func cmdGetDigest(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: getdigest FILE VAR")
	}
	var d struct {
		Digest string `json:"digest"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &d))
	if len(d.Digest) != 64 {
		ts.Fatalf("%s: digest %q is not 64 hex digits", args[0], d.Digest)
	}
	ts.Setenv(args[1], d.Digest)
}

// cmdGetCount sets an environment variable to one of the summary's counts
// in a diff printed by 'stable diff --format json': getcount FILE FIELD
// VAR (FIELD such as added or held).
func cmdGetCount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: getcount FILE FIELD VAR")
	}
	var d struct {
		Summary map[string]int64 `json:"summary"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &d))
	n, ok := d.Summary[args[1]]
	if !ok {
		ts.Fatalf("%s: no summary.%s", args[0], args[1])
	}
	ts.Setenv(args[2], strconv.FormatInt(n, 10))
}

// cmdExpandEnv writes a file with $VAR and ${VAR} replaced by the
// script's environment: expandenv SRC DST.
func cmdExpandEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: expandenv SRC DST")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(os.Expand(ts.ReadFile(args[0]), ts.Getenv)), 0o644))
}
