package chromium

import (
	"context"
	"errors"
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
