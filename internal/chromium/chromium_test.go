package chromium

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/internal/hint"
)

// Without chromium on PATH the error says so and carries the advice.
func TestNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := PrintPDF(context.Background(), []byte("<p>x</p>"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if hint.Of(err) == "" {
		t.Fatalf("no hint: %v", err)
	}
}

// fakeChromium puts a "chromium" on PATH that runs script (sh), with the
// --print-to-pdf=FILE argument's FILE as $out and a count of its runs in
// $dir/runs.
func fakeChromium(t *testing.T, script string) string {
	dir := t.TempDir()
	prog := "#!/bin/sh\nfor a; do case $a in --print-to-pdf=*) out=${a#--print-to-pdf=};; esac; done\n" +
		"echo run >>" + dir + "/runs\n" + script + "\n"
	if err := os.WriteFile(filepath.Join(dir, Program), []byte(prog), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+"/usr/bin"+string(os.PathListSeparator)+"/bin")
	return dir
}

func runs(t *testing.T, dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	return strings.Count(string(b), "run")
}

// A Chromium that aborts at its first start is tried once more; one that
// aborts every time, or fails by its own exit status, is not retried
// forever: the error names how it ended and what it said.
func TestAbortRetriedOnce(t *testing.T) {
	dir := fakeChromium(t, `n=$(grep -c run "$(dirname "$0")/runs")
if [ "$n" = 1 ]; then echo "zygote: broken pipe" >&2; kill -ABRT $$; fi
printf '%%PDF-1.4 fake' >"$out"`)
	pdf, err := PrintPDF(context.Background(), []byte("<p>x</p>"))
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF") {
		t.Fatalf("after one abort: %q, %v", pdf, err)
	}
	if n := runs(t, dir); n != 2 {
		t.Fatalf("ran %d times, want 2", n)
	}

	dir = fakeChromium(t, `echo "zygote: broken pipe" >&2; kill -ABRT $$`)
	_, err = PrintPDF(context.Background(), []byte("<p>x</p>"))
	if err == nil || !strings.Contains(err.Error(), "signal: aborted") || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("aborting every time: %v", err)
	}
	if n := runs(t, dir); n != 2 {
		t.Fatalf("ran %d times, want 2", n)
	}

	dir = fakeChromium(t, `echo "bad flag" >&2; exit 3`)
	_, err = PrintPDF(context.Background(), []byte("<p>x</p>"))
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("exiting 3: %v", err)
	}
	if n := runs(t, dir); n != 1 {
		t.Fatalf("a failure by exit status ran %d times, want 1", n)
	}
}
