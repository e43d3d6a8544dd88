package main

import (
	"encoding/json"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keyceremony/keyceremony/keys"
)

// cmdKeyID sets an environment variable to the TUF key id of a public key
// file a ceremony wrote (keys/*.pub.json): keyid FILE VAR.
func cmdKeyID(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: keyid FILE VAR")
	}
	var k keys.Key
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &k))
	ts.Setenv(args[1], k.ID())
}
