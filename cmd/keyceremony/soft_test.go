package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm/soft"
)

// TestSoftCreateKDFCost: soft create records full strength unless told
// otherwise, says so when it is told, and refuses a cost it does not know
// without leaving a device behind.
func TestSoftCreateKDFCost(t *testing.T) {
	dir := t.TempDir()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	if code, _, e := runCLI("soft", "ca", "--dir", p("ca")); code != 0 {
		t.Fatal(e)
	}
	for _, tc := range []struct {
		args []string
		want soft.KDF
	}{
		{nil, soft.KDFStandard},
		{[]string{"--kdf-cost", "test"}, soft.KDFTest},
	} {
		name := string(tc.want)
		code, out, errOut := runCLI(append([]string{"soft", "create", "--dir", p(name), "--serial", "7", "--ca", p("ca")}, tc.args...)...)
		if code != 0 {
			t.Fatalf("soft create %v: %d %s", tc.args, code, errOut)
		}
		if warned := strings.Contains(out, "kdf cost test: INSECURE"); warned != (tc.want == soft.KDFTest) {
			t.Errorf("soft create %v printed %q", tc.args, out)
		}
		d, err := soft.Open(p(name))
		if err != nil {
			t.Fatal(err)
		}
		if d.KDF() != tc.want {
			t.Errorf("soft create %v recorded kdf cost %q, want %q", tc.args, d.KDF(), tc.want)
		}
		d.Close()
	}
	code, _, errOut := runCLI("soft", "create", "--dir", p("bad"), "--serial", "8", "--ca", p("ca"), "--kdf-cost", "legacy")
	if code != 1 || !strings.Contains(errOut, "--kdf-cost") || !strings.Contains(errOut, "legacy") {
		t.Fatalf("--kdf-cost legacy: %d %q", code, errOut)
	}
	if _, err := os.Stat(p("bad")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused soft create left %s: %v", p("bad"), err)
	}
}
