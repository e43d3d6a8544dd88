package ceremony

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// TestGuidedFlagDecisions: the room decides, one flag at a time, a
// second period with a changed file, a backdated file and removals above
// the limit; a wrong choice and an empty reason are asked again; the
// pass runs again with the decisions, which settle every flag, change
// the digest, and are what the signed diff names, each with its reason.
func TestGuidedFlagDecisions(t *testing.T) {
	h := newHistory(t)
	h.export(synth.NextParams{})
	h.ceremony()
	_, inj := h.export(synth.NextParams{Seed: 5, NewFiles: 20, Deletions: 3, ChangedHash: 1, Backdated: 1})
	pol, err := policy.Parse([]byte(`{"confirm_above": {"added": 2000000, "removed": 2, "changed": 0}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	run := func(answers ...string) (*stableset.Diff, string, string, error) {
		t.Helper()
		s := h.signing(h.published[1])
		s.Policy = pol
		var screen, journal bytes.Buffer
		s.Guide = &Guide{Term: &scripted{out: &screen, answers: answers}, Out: &screen}
		cfg, f, _, _, err := s.config()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d, err := stableset.ComputeDiff(cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := d.Digest
		tr := NewTranscript(&journal, nil, nil)
		s.Guide.tr = tr
		d, err = s.decideFlags(tr, cfg, f, d, nil)
		t.Cleanup(func() { d.Close() })
		if err == nil {
			st, serr := s.statement(d)
			if serr != nil {
				t.Fatal(serr)
			}
			var names []string
			for _, dc := range st.Decisions {
				names = append(names, dc.Names()+" "+string(dc.Choice)+" "+dc.Reason)
			}
			screen.WriteString("\nSIGNED DIFF NAMES: " + strings.Join(names, "; ") + "\n")
			if !bytes.Equal(s.Decisions.Marshal(), (&decisionsOf{d}).marshal()) {
				t.Errorf("the decisions kept for the medium are not the diff's")
			}
		}
		return d, before, screen.String() + journal.String(), err
	}
	// By kind, then subject: backdated, changed, limit removed, and the
	// project the deletions empty (project-loss).
	d, before, screen, err := run(
		"confirm", "", "held back; the repository is asked why",
		"accept", "drop", "both contents are suspect",
		"confirm", "the releases were deleted by their owners",
		"confirm", "its owner deleted it",
	)
	if err != nil {
		t.Fatalf("%v\n%s", err, screen)
	}
	if d.Undecided() != nil || d.Digest == before || d.Summary.Dropped != 1 {
		t.Fatalf("after the room's decisions: %v, digest %s (before %s), %+v", d.Undecided(), d.Digest, before, d.Summary)
	}
	for _, want := range []string{
		"4 red flags have no decision",
		"== Red flag 1 of 4 · backdated", "path " + inj.Backdated[0], "upload time claimed", "previous listing", "which did not list it",
		"REFUSED: the reason: bad value: empty: say why.",
		"== Red flag 2 of 4 · changed", "path " + inj.Changed[0], "stable entry", "listed now",
		`REFUSED: "accept" does not settle this flag: type one of keep-old, accept-new, drop.`,
		"== Red flag 3 of 4 · limit", "count removed", "confirm_above.removed is 2",
		"== Red flag 4 of 4 · project-loss", "lost                     100%",
		"the export is read again with them",
		"SIGNED DIFF NAMES: limit removed confirm the releases were deleted by their owners; flag backdated " + inj.Backdated[0] + " confirm held back; the repository is asked why; flag changed " + inj.Changed[0] + " drop both contents are suspect; flag project-loss ",
		`"step":"red flag decided"`, `"step":"decisions made in the room"`,
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen or journal lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", screen)
	}
	// Keeping the old entry instead: another digest.
	d2, _, _, err := run("confirm", "held back; the repository is asked why", "keep-old", "PyPI never re-uploads a file", "confirm", "the releases were deleted by their owners", "confirm", "its owner deleted it")
	if err != nil || d2.Digest == d.Digest || d2.Digest == before || d2.Summary.Dropped != 0 {
		t.Errorf("kept old: %v, digest %s", err, d2.Digest)
	}
	// With a loss above 3% a red flag, dropping the changed file takes
	// its project (one file of 46 deleted, 2%) above it: a flag of the
	// room's own making, decided in a second round.
	pol, err = policy.Parse([]byte(`{"confirm_above": {"added": 2000000, "removed": 2, "changed": 0}, "red_flags": {"project_loss_percent": 3}}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	s3 := h.signing(h.published[1])
	s3.Policy = pol
	var screen3, journal3 bytes.Buffer
	s3.Guide = &Guide{Term: answerer(func(prompt string) string {
		switch {
		case strings.Contains(prompt, "(keep-old, accept-new, drop; or abort)"):
			return "drop"
		case strings.Contains(prompt, "; or abort)"):
			return "confirm"
		}
		return "agreed by the room"
	}), Out: &screen3}
	cfg, f, _, _, err := s3.config()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d3, err := stableset.ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTranscript(&journal3, nil, nil)
	s3.Guide.tr = tr
	d3, err = s3.decideFlags(tr, cfg, f, d3, nil)
	defer d3.Close()
	if err != nil || d3.Undecided() != nil || !strings.Contains(screen3.String(), "the decisions raise red flags of their own") ||
		strings.Count(journal3.String(), `"step":"decisions made in the room"`) != 2 {
		t.Errorf("second round: %v, %v\n%s", err, d3.Undecided(), screen3.String())
	}
	// abort stops the ceremony.
	if _, _, _, err := run("abort"); !errors.Is(err, ErrAborted) {
		t.Errorf("abort: %v", err)
	}
}

// decisionsOf marshals a diff's decisions as the medium's file holds them.
type decisionsOf struct{ d *stableset.Diff }

func (o *decisionsOf) marshal() []byte {
	set, err := (*decisions.Set)(nil).With("x", o.d.Decisions...)
	if err != nil {
		return nil
	}
	return set.Marshal()
}

// answerer is a terminal that answers each prompt as a function says.
type answerer func(prompt string) string

func (a answerer) Line(prompt string) (string, error)   { return a(prompt), nil }
func (a answerer) Secret(prompt string) (string, error) { return a(prompt), nil }
