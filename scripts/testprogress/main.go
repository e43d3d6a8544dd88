// Command testprogress turns the event stream of `go test -json` into
// progress lines as the tests run: one line per finished top-level test
// (with its package and time), one per finished package, and the full
// output of every test or package that failed. It exits 1 if anything
// failed, so that `go test -json ./... | testprogress` fails when the
// tests fail even without the shell's pipefail.
//
//	go test -count=1 -json ./... | go run ./scripts/testprogress
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	ImportPath  string // build events
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

func main() {
	failed, err := filter(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testprogress: %v\n", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// filter copies progress from the event stream r to w and reports whether
// any test, package or build failed. Lines that are not events (go
// test's own messages) are copied as they are.
//
// At the end it prints one closing line counting the tests (subtests
// included) that passed, failed and were skipped:
//
//	tests: 250 passed, 0 failed, 0 skipped
func filter(r io.Reader, w io.Writer) (failed bool, err error) {
	output := map[string]*strings.Builder{} // package or package/test -> output so far
	var passed, nfailed, skipped int
	defer func() {
		if err == nil {
			fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", passed, nfailed, skipped)
		}
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		var e event
		if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil {
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		key := e.Package
		if e.Test != "" {
			key += "/" + e.Test
		}
		if e.Action == "build-output" || e.Action == "build-fail" {
			key = "build " + e.ImportPath
		}
		switch e.Action {
		case "output", "build-output":
			if output[key] == nil {
				output[key] = &strings.Builder{}
			}
			output[key].WriteString(e.Output)
		case "build-fail":
			failed = true
			fmt.Fprint(w, text(output[key]))
		case "pass", "skip", "fail":
			if e.Action == "fail" {
				failed = true
			}
			if e.Test != "" {
				switch e.Action {
				case "pass":
					passed++
				case "fail":
					nfailed++
				default:
					skipped++
				}
			}
			switch {
			case e.Test == "":
				if e.Action == "fail" {
					fmt.Fprint(w, text(output[key]))
				}
				if e.Action != "skip" {
					fmt.Fprintf(w, "%-4s %s %.1fs\n", map[string]string{"pass": "ok", "fail": "FAIL"}[e.Action], e.Package, e.Elapsed)
				}
			case e.Action == "fail":
				fmt.Fprint(w, text(output[key]))
			case !strings.Contains(e.Test, "/"):
				fmt.Fprintf(w, "  --- %s: %s %s (%.2fs)\n", strings.ToUpper(e.Action), e.Package, e.Test, e.Elapsed)
			}
			delete(output, key)
		}
	}
	return failed, sc.Err()
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}
