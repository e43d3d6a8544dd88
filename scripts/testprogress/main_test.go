package main

import (
	"strings"
	"testing"
)

const stream = `{"Action":"start","Package":"a"}
{"Action":"run","Package":"a","Test":"TestOK"}
{"Action":"output","Package":"a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"a","Test":"TestOK","Elapsed":1.5}
{"Action":"output","Package":"a","Test":"TestBad","Output":"    a_test.go:9: the reason\n"}
{"Action":"output","Package":"a","Test":"TestBad/sub","Output":"    a_test.go:12: the sub reason\n"}
{"Action":"fail","Package":"a","Test":"TestBad/sub","Elapsed":0}
{"Action":"fail","Package":"a","Test":"TestBad","Elapsed":0.25}
{"Action":"output","Package":"a","Output":"FAIL\n"}
{"Action":"fail","Package":"a","Elapsed":2}
{"Action":"pass","Package":"b","Elapsed":3}
no test files
`

func TestFilter(t *testing.T) {
	var out strings.Builder
	failed, err := filter(strings.NewReader(stream), &out)
	if err != nil || !failed {
		t.Fatalf("filter = %v, %v; want failed", failed, err)
	}
	got := out.String()
	for _, want := range []string{"--- PASS: a TestOK (1.50s)\n", "a_test.go:9: the reason", "a_test.go:12: the sub reason", "FAIL a 2.0s\n", "ok   b 3.0s\n", "no test files\n", "\ntests: 1 passed, 2 failed, 0 skipped\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN") {
		t.Errorf("a passing test's output was shown:\n%s", got)
	}
	failed, err = filter(strings.NewReader(`{"Action":"pass","Package":"b","Elapsed":3}`+"\n"), &out)
	if err != nil || failed {
		t.Fatalf("all passing: %v, %v", failed, err)
	}
}

func TestFilterBuildFailure(t *testing.T) {
	var out strings.Builder
	in := `{"ImportPath":"a [a.test]","Action":"build-output","Output":"a/x.go:1: syntax error\n"}
{"ImportPath":"a [a.test]","Action":"build-fail"}
`
	failed, _ := filter(strings.NewReader(in), &out)
	if !failed || !strings.Contains(out.String(), "a/x.go:1: syntax error") {
		t.Errorf("a build failure: failed %v, output %q", failed, out.String())
	}
}

func FuzzFilter(f *testing.F) {
	f.Add(stream)
	f.Fuzz(func(t *testing.T, s string) {
		var out strings.Builder
		filter(strings.NewReader(s), &out)
	})
}
