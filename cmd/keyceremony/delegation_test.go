package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keyceremony/keyceremony/stableset/policy"
)

// cmdCheckProofs puts the {key, proof} entries printed by 'delegation
// prove' into a policy's delegation of PROJECT, writes it to POLICY, and
// runs the ceremony's checks on it: policy.Parse, then VerifyProofs for
// REPOSITORY at stable version VERSION: check-proofs POLICY REPOSITORY
// VERSION PROJECT ENTRY...
func cmdCheckProofs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 5 {
		ts.Fatalf("usage: check-proofs POLICY REPOSITORY VERSION PROJECT ENTRY...")
	}
	version, err := strconv.ParseInt(args[2], 10, 64)
	ts.Check(err)
	var entries []json.RawMessage
	for _, f := range args[4:] {
		entries = append(entries, json.RawMessage(ts.ReadFile(f)))
	}
	b, err := json.MarshalIndent(map[string]any{"delegations": []any{map[string]any{"project": args[3], "threshold": len(entries), "keys": entries}}}, "", "  ")
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
	p, err := policy.Parse(b, args[0])
	if err == nil {
		err = p.VerifyProofs(args[0], args[1], version)
	}
	if neg {
		if err == nil {
			ts.Fatalf("the proofs were accepted")
		}
		ts.Logf("refused: %v", err)
		return
	}
	ts.Check(err)
}

// cmdPEMBody sets VAR to a regular expression matching the first line of
// base64 of a PEM file, the key's bytes: pem-body FILE VAR.
func cmdPEMBody(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: pem-body FILE VAR")
	}
	lines := strings.Split(ts.ReadFile(args[0]), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "-----BEGIN ") || len(lines[1]) < 40 {
		ts.Fatalf("%s: not a PEM file with a body", args[0])
	}
	ts.Setenv(args[1], regexp.QuoteMeta(lines[1][:40]))
}
