package ceremony

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// deadJournal writes journal as the journal of a dead run writing media
// (its working directory, named with a process id no process has).
func deadJournal(t *testing.T, media string, journal []byte) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(media), "."+filepath.Base(media)+".partial-2147483646-1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, JournalFile), journal, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGuidedStableResumeTakesRoomDecisions: the room decides a red flag
// (a backdated file) and approves the diff; the run is killed. The rerun
// does not ask for the decision: it takes it from the killed run's
// journal, shows it, gets the digest the room approved, records the
// decision as taken from that journal, and skips the review. As the
// attacker: the journal edited (and its hash chain made again) to change
// the recorded reason gives another digest, so the rerun says so and the
// room decides again.
func TestGuidedStableResumeTakesRoomDecisions(t *testing.T) {
	h := newHistory(t)
	h.export(synth.NextParams{})
	h.ceremony()
	h.export(synth.NextParams{Seed: 5, NewFiles: 20, Backdated: 1})
	media := filepath.Join(h.dir, "media-resumed")
	const reason = "held back; the repository is asked why"

	// pass runs a guided signing up to its inputs: the first pass, the
	// room's decisions (resume, if any) and the inputs recorded.
	var pol *policy.Policy // nil: the default
	pass := func(resume *stableResumption, show *bytes.Buffer, answers ...string) (*stableset.Diff, map[string]any, *scripted, *bytes.Buffer) {
		t.Helper()
		s := h.signing(h.published[1])
		s.Policy = pol
		var screen, journal bytes.Buffer
		term := &scripted{out: &screen, answers: answers}
		clock := time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)
		s.Guide = &Guide{Term: term, Out: &screen}
		s.Show = show
		tr := NewTranscript(&journal, nil, func() time.Time { return clock })
		s.Guide.tr = tr
		if err := tr.Record("stable signing started", map[string]any{"export": filepath.Base(s.Export)}); err != nil {
			t.Fatal(err)
		}
		cfg, f, _, _, err := s.config()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d, err := stableset.ComputeDiff(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Flags) != 1 || d.Flags[0].Kind != "backdated" {
			t.Fatalf("flags %+v, want one backdated", d.Flags)
		}
		given := s.givenDecisions()
		d, err = s.decideFlags(tr, cfg, f, d, resume)
		t.Cleanup(func() { d.Close() })
		if err != nil {
			t.Fatalf("deciding: %v\n%s%s", err, screen.String(), show.String())
		}
		inputs := s.inputs(d, given)
		if err := tr.Record("stable inputs", inputs); err != nil {
			t.Fatal(err)
		}
		return d, inputs, term, &journal
	}

	// The interrupted run: the room decides and approves.
	d1, _, _, journal := pass(nil, &bytes.Buffer{}, "confirm", reason)
	if d1.Undecided() != nil {
		t.Fatal(d1.Undecided())
	}
	approved := d1.Digest
	killed := append([]byte(nil), journal.Bytes()...)
	es, _, err := parseJournal(killed, "killed")
	if err != nil {
		t.Fatal(err)
	}
	// The approval, then the kill.
	var j bytes.Buffer
	jt := NewTranscript(&j, nil, func() time.Time { return time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC) })
	for _, e := range es {
		if err := jt.Record(e.Step, e.Detail); err != nil {
			t.Fatal(err)
		}
	}
	if err := jt.Record("diff approved", map[string]any{"diff_digest": approved}); err != nil {
		t.Fatal(err)
	}
	killed = j.Bytes()
	if !bytes.Contains(killed, []byte(`"step":"red flag decided"`)) || !bytes.Contains(killed, []byte(`"reason":"`+reason+`"`)) {
		t.Fatalf("the journal does not record the decision:\n%s", killed)
	}

	// The rerun: no answer to give, the decision comes from the journal.
	deadJournal(t, media, killed)
	var show bytes.Buffer
	r := findStableResumption(media, &show)
	d2, inputs, term, journal2 := pass(r, &show)
	if d2.Digest != approved {
		t.Fatalf("resumed digest %s, approved %s\n%s", d2.Digest, approved, show.String())
	}
	if !r.resumes(inputs, &show) {
		t.Fatalf("the review is repeated:\n%s", show.String())
	}
	s := show.String()
	for _, want := range []string{
		"resume: decisions made in the interrupted run (1), which the digest the room approved covers:",
		"confirm    flag backdated " + d1.Flags[0].Subject + " because: " + reason,
		"the review is not repeated",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(term.out.String(), "decision for red flag") {
		t.Errorf("the rerun asked for the decision again:\n%s", term.out.String())
	}
	if !strings.Contains(journal2.String(), `"from_journal":`) || !strings.Contains(journal2.String(), `"reason":"`+reason+`"`) {
		t.Errorf("the new journal does not record the decision taken:\n%s", journal2.String())
	}

	// Another policy: the decisions are not taken, and the screen says
	// why before the room decides.
	if pol, err = policy.Parse([]byte(`{"confirm_above": {"added": 1999999}}`), "policy.json"); err != nil {
		t.Fatal(err)
	}
	show.Reset()
	_, _, term, _ = pass(findStableResumption(media, &show), &show, "confirm", reason)
	if !strings.Contains(show.String(), "resume: the room decides the red flags again: the policy changed since the interrupted run (policy_sha256 now ") ||
		!strings.Contains(term.out.String(), "decision for red flag 1 of 1") {
		t.Errorf("another policy: the decisions were taken or the screen does not say why:\n%s%s", show.String(), term.out.String())
	}
	pol = nil

	// The attacker edits the recorded decision and chains the journal
	// again: another reason gives another digest; another choice does
	// not settle the flag.
	for _, edit := range []struct{ field, value, want string }{
		{"reason", "the owner re-uploaded it, nothing to see", "the decisions recorded in the interrupted run's journal"},
		{"decision", "drop", `records "drop" because`},
	} {
		t.Run(edit.field, func(t *testing.T) {
			es, _, err := parseJournal(killed, "killed")
			if err != nil {
				t.Fatal(err)
			}
			var edited bytes.Buffer
			et := NewTranscript(&edited, nil, func() time.Time { return time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC) })
			for _, e := range es {
				if e.Step == "red flag decided" {
					e.Detail[edit.field] = edit.value
				}
				if err := et.Record(e.Step, e.Detail); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.RemoveAll(filepath.Join(filepath.Dir(media), "."+filepath.Base(media)+".partial-2147483646-1")); err != nil {
				t.Fatal(err)
			}
			deadJournal(t, media, edited.Bytes())
			var show bytes.Buffer
			r := findStableResumption(media, &show)
			d3, _, term, journal3 := pass(r, &show, "confirm", reason)
			s := show.String()
			if !strings.Contains(s, "resume: the room decides the red flags again: ") || !strings.Contains(s, edit.want) {
				t.Errorf("the edited journal's decision was not refused (%q):\n%s", edit.want, s)
			}
			if edit.field == "reason" && !strings.Contains(s, "not "+approved+", the one the room approved") {
				t.Errorf("the digest mismatch is not named:\n%s", s)
			}
			if !strings.Contains(term.out.String(), "decision for red flag 1 of 1") || len(term.answers) != 0 {
				t.Errorf("the room was not asked again:\n%s", term.out.String())
			}
			if strings.Contains(journal3.String(), "from_journal") || strings.Contains(journal3.String(), edit.value) {
				t.Errorf("the edited decision entered the new journal:\n%s", journal3.String())
			}
			if d3.Digest != approved {
				t.Errorf("decided again as before: digest %s, want %s", d3.Digest, approved)
			}
		})
	}
}
