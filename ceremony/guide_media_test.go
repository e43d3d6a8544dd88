package ceremony

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hookTerm is a terminal whose answers come from a function, which can
// act as the room does before answering (swap a medium).
type hookTerm struct {
	out    *bytes.Buffer
	answer func(prompt string) (string, error)
}

func (h *hookTerm) Line(prompt string) (string, error) {
	h.out.WriteString(prompt)
	a, err := h.answer(prompt)
	h.out.WriteString(a + "\n")
	return a, err
}

func (h *hookTerm) Secret(prompt string) (string, error) { return h.Line(prompt) }

func writeMarker(t *testing.T, dir, role, ceremony string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, MarkerFile), newMarker(role, ceremony, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGuideWrongMedium: in the guided ceremony a wrong medium is named
// with why, nothing is written to it, and the room inserts the right one
// (here: the test swaps what is mounted at the path) and presses Enter;
// the check passes and the exception is in the journal once it is open.
// The batch form and an abort at the prompt end with the error.
func TestGuideWrongMedium(t *testing.T) {
	start := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	newGuide := func(answer func(string) (string, error)) (*Guide, *bytes.Buffer) {
		var screen bytes.Buffer
		return &Guide{Term: &hookTerm{out: &screen, answer: answer}, Out: &screen, Now: stepClock(start),
			Script: &Script{Sections: []Section{{Title: "Opening", Steps: []Step{{Number: 1, ID: "media", Actor: Actor{Kind: ActorAdministrator}, Do: "Insert the media."}}}}}}, &screen
	}

	t.Run("the backup medium as the new output medium", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "usb")
		writeMarker(t, out, RoleBackup, StateBootstrap)
		before := snapshotDir(t, out)
		asked := 0
		g, screen := newGuide(func(p string) (string, error) {
			asked++
			if after := snapshotDir(t, out); !maps.Equal(after, before) {
				t.Errorf("the wrong medium was written to")
			}
			// The administrator takes the backup medium out and
			// inserts a new one at the same mount point.
			if err := os.RemoveAll(out); err != nil {
				t.Fatal(err)
			}
			return "", nil
		})
		if err := g.checkOutput(out); err != nil {
			t.Fatal(err)
		}
		s := screen.String()
		for _, want := range []string{
			"WRONG MEDIUM: the new output medium (" + out + ") cannot be used: the output directory " + out + " is a backup medium (made by the bootstrap of 2026-12-01T10:00:00Z): wrong medium.",
			"Take it out and insert the new output medium, mounted at " + out + ".",
			"Press Enter when the right medium is in (or type abort): ",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("the screen lacks %q:\n%s", want, s)
			}
		}
		if asked != 1 {
			t.Errorf("asked %d times, want once", asked)
		}
		var tbuf bytes.Buffer
		g.start(NewTranscript(&tbuf, nil, g.now))
		if err := g.flushEarly(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(tbuf.String(), `"step":"wrong medium"`) || !strings.Contains(tbuf.String(), `"medium":"new output"`) {
			t.Errorf("the journal lacks the wrong medium:\n%s", tbuf.String())
		}
	})

	t.Run("an output medium already written, then the right one", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "usb")
		writeMarker(t, out, RoleOutput, string(MediumStable))
		g, screen := newGuide(func(string) (string, error) { return "", os.RemoveAll(out) })
		if err := g.checkOutput(out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(screen.String(), "already holds the output medium of a stable ceremony") {
			t.Errorf("the screen does not name the medium:\n%s", screen.String())
		}
	})

	t.Run("stable: the output medium as the backup medium", func(t *testing.T) {
		dir := t.TempDir()
		pub, backup, exp := filepath.Join(dir, "pub"), filepath.Join(dir, "backup"), filepath.Join(dir, "in", "export.jsonl")
		writeMarker(t, pub, RoleOutput, string(MediumBootstrap))
		writeMarker(t, filepath.Dir(exp), RoleInput, "export")
		writeMarker(t, backup, RoleOutput, string(MediumBootstrap))
		g, screen := newGuide(func(p string) (string, error) {
			if strings.Contains(p, "right medium") {
				writeMarker(t, backup, RoleBackup, StateBootstrap)
			}
			return "", nil
		})
		g.start(NewTranscript(&bytes.Buffer{}, nil, g.now))
		s := &StableSigning{Guide: g, Published: pub, Export: exp, Backup: backup}
		if err := s.checkInputs(); err != nil {
			t.Fatal(err)
		}
		if want := "WRONG MEDIUM: the backup medium (" + backup + ") cannot be used: the backup medium " + backup + " is the output medium of a bootstrap ceremony"; !strings.Contains(screen.String(), want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen.String())
		}
		if strings.Count(screen.String(), "WRONG MEDIUM") != 1 {
			t.Errorf("the right media were refused:\n%s", screen.String())
		}
	})

	t.Run("abort, and the batch form", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "usb")
		writeMarker(t, out, RoleBackup, StateBootstrap)
		g, _ := newGuide(func(string) (string, error) { return "abort", nil })
		if err := g.checkOutput(out); !errors.Is(err, ErrAborted) {
			t.Fatalf("got %v, want ErrAborted", err)
		}
		var batch *Guide
		err := batch.checkMedium(RoleOutput, "new output", out, func() error {
			_, err := refuseMarked(out, "the output directory", RoleOutput)
			return err
		})
		if !errors.Is(err, ErrWrongMedium) {
			t.Fatalf("batch: got %v, want ErrWrongMedium", err)
		}
	})
}
