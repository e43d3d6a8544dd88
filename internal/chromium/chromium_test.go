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

// Chromium aborts ("Socket path too long") when its singleton socket's
// path, under $TMPDIR, is longer than a socket address holds; a long
// TMPDIR (a test harness's, or a deep home directory) must still print.
func TestLongTempDir(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 90))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	pdf, err := PrintPDF(context.Background(), []byte("<p>printed</p>"))
	if err != nil {
		t.Fatalf("TMPDIR of %d bytes: %v", len(long), err)
	}
	if !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("not a PDF: %.20q", pdf)
	}
}
