package main

import (
	"encoding/json"
	"os"
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
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"gen-export": cmdGenExport,
			"getdigest":  cmdGetDigest,
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
