// Package chromium prints a self-contained HTML document to PDF, or
// renders it to a PNG screenshot, with headless Chromium (Debian's
// chromium package), found on PATH. keyceremony runs it only when a PDF
// is asked for (runsheet --pdf); the binary builds and runs without it.
//
// The document is written to a private temporary directory and loaded
// from there with a throwaway profile; HOME and the XDG directories point
// into that directory, and every network request goes to a closed port
// on loopback, so a run touches nothing outside it. The directory is
// removed when the call returns. The document should carry no external
// resources (the run sheet's Content-Security-Policy allows none).
package chromium

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/internal/hint"
)

// Program is the name looked up on PATH.
const Program = "chromium"

// Timeout bounds one run of Chromium.
const Timeout = 60 * time.Second

// ErrNotFound means there is no chromium on PATH.
var ErrNotFound = hint.New("chromium not found on PATH", "install it (Debian: apt-get install chromium), or write the HTML alone and print it from a browser")

// ErrFailed means Chromium ran but produced no output.
var ErrFailed = errors.New("chromium produced no output")

// PrintPDF prints html to PDF, with the page size and margins its print
// stylesheet sets and no header or footer of Chromium's own.
func PrintPDF(ctx context.Context, html []byte) ([]byte, error) {
	return run(ctx, html, "out.pdf", "--no-pdf-header-footer", "--print-to-pdf=%s")
}

// Screenshot renders html as a screen shows it, in a window of the given
// size in pixels, to PNG.
func Screenshot(ctx context.Context, html []byte, width, height int) ([]byte, error) {
	return run(ctx, html, "out.png", fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", "--screenshot=%s")
}

// maxTempBase is the longest temporary directory Chromium's own is made
// in: with "/keyceremony-chromium-" and its random suffix, then
// "/org.chromium.Chromium.XXXXXX/SingletonSocket", the socket's path stays
// within 107 bytes.
const maxTempBase = 107 - len("/keyceremony-chromium-1234567890/org.chromium.Chromium.XXXXXX/SingletonSocket")

// run loads html in headless Chromium with args, in which %s stands for
// the output file, and returns the output.
func run(ctx context.Context, html []byte, outName string, args ...string) ([]byte, error) {
	prog, err := exec.LookPath(Program)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	// Chromium listens on a Unix socket under $TMPDIR
	// (org.chromium.Chromium.XXXXXX/SingletonSocket) and aborts when the
	// socket's path is longer than an address holds (107 bytes): its
	// temporary directory, which it gets as $TMPDIR, is made under a
	// short base.
	base := os.TempDir()
	if len(base) > maxTempBase {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "keyceremony-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	doc, out := filepath.Join(dir, "document.html"), filepath.Join(dir, outName)
	if err := os.WriteFile(doc, html, 0o600); err != nil {
		return nil, err
	}
	argv := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--disable-crash-reporter",
		"--proxy-server=http://127.0.0.1:9", "--user-data-dir=" + filepath.Join(dir, "profile"),
	}
	for _, a := range args {
		if strings.Contains(a, "%s") {
			a = fmt.Sprintf(a, out)
		}
		argv = append(argv, a)
	}
	argv = append(argv, "file://"+doc)
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, argv...)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir, "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir, "XDG_DATA_HOME="+dir)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	runErr := cmd.Run()
	data, err := os.ReadFile(out)
	if runErr != nil || err != nil || len(data) == 0 {
		if runErr == nil {
			runErr = ErrFailed
		}
		return nil, fmt.Errorf("%s: %w%s", prog, runErr, tail(stderr.String()))
	}
	return data, nil
}

// tail is the end of Chromium's messages, for an error.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	return "; chromium said: " + strings.Join(lines[max(0, len(lines)-3):], " | ")
}
