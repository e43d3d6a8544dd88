package ceremony

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/internal/chromium"
	"github.com/keyceremony/keyceremony/keys"
)

// TestRunSheetPDF prints the stable run sheet through the command's own
// path (WriteRunSheet, headless Chromium) and reads the PDF back with an
// independent program, poppler's pdftotext: every step number, every
// keyholder's name, the blanks' labels and the last ceremony's check
// words, one line of PGP words as printed. It then renders the HTML to
// PNG and checks that the page is drawn. Chromium and pdftotext are test
// dependencies (scripts/install-test-deps); without them the test fails.
func TestRunSheetPDF(t *testing.T) {
	for _, prog := range []string{chromium.Program, "pdftotext"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s is not installed (run scripts/install-test-deps): %v", prog, err)
		}
	}
	c := loadRunSheetConfig(t)
	prev := testPrevious()
	dir := t.TempDir()
	out, pdf := filepath.Join(dir, "sheet.html"), filepath.Join(dir, "sheet.pdf")
	err := WriteRunSheet(context.Background(), RunSheetOptions{Ceremony: CeremonyStable, Config: runSheetConfig, Previous: prev,
		Out: out, PDF: pdf, Now: runSheetTime, Version: "v0.0.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(pdf)
	if err != nil || !bytes.HasPrefix(raw, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %v", err)
	}
	cmd := exec.Command("pdftotext", "-layout", pdf, "-")
	var text bytes.Buffer
	cmd.Stdout, cmd.Stderr = &text, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	txt := text.String()
	// pdftotext -layout keeps a printed line on one line, with runs of
	// spaces between columns.
	norm := regexp.MustCompile(`[ \t]+`).ReplaceAllString(txt, " ")
	s := StableSteps(c, prev)
	for _, st := range s.Steps() {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^ ?%d %s`, st.Number, regexp.QuoteMeta(firstWord(st.Actor.String())))).MatchString(norm) {
			t.Errorf("step %d (%s) not found in the PDF's text", st.Number, st.Actor)
		}
	}
	words := keys.PGPWords(prev.StateSHA256[:])
	for _, want := range []string{
		"Alice Example", "Bob <Example> & Co", "Carol Example",
		"initials: keyholder", "time (UTC)", "diff digest (PGP words)", "backup state check words (PGP words)",
		strings.Join(words[:4], " "), strings.Join(words[28:], " "),
		"page 1 of", "keyceremony run sheet: stable signing ceremony, pypi",
	} {
		if !strings.Contains(norm, want) {
			t.Errorf("the PDF's text lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("pdftotext:\n%s", txt)
	}

	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromium.Screenshot(context.Background(), html, 900, 1200)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 900 || b.Dy() != 1200 {
		t.Fatalf("screenshot %v", b)
	}
	if dark := darkFraction(img); dark < 0.005 || dark > 0.5 {
		t.Fatalf("screenshot: %.4f of the pixels dark: the page is not drawn as text on white", dark)
	}
}

func firstWord(s string) string { return strings.Fields(s)[0] }

// darkFraction is the share of pixels darker than mid-grey.
func darkFraction(img image.Image) float64 {
	b := img.Bounds()
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if (r+g+bl)/3 < 0x8000 {
				dark++
			}
		}
	}
	return float64(dark) / float64(b.Dx()*b.Dy())
}

// BenchmarkRunSheetPDF is the cost of printing the bootstrap run sheet to
// PDF: one start of headless Chromium per sheet.
func BenchmarkRunSheetPDF(b *testing.B) {
	c, err := LoadConfig(runSheetConfig)
	if err != nil {
		b.Fatal(err)
	}
	html, err := RenderRunSheet(BootstrapSteps(c), RunSheetPage{Now: runSheetTime})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := chromium.PrintPDF(context.Background(), html); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderRunSheet is the cost of the HTML alone.
func BenchmarkRenderRunSheet(b *testing.B) {
	c, err := LoadConfig(runSheetConfig)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := RenderRunSheet(BootstrapSteps(c), RunSheetPage{Now: runSheetTime}); err != nil {
			b.Fatal(err)
		}
	}
}
