package ceremony

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/internal/progress"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
)

// The guided review, one red flag at a time (docs/runbook-stable.md,
// "The review"): after the summary, each flag that no decision settles
// is shown on its own screen with its facts and the choices that settle
// it; the room types the choice, by name, and a reason. The decisions so
// made join those of --decisions, the pass runs again with them, and the
// final summary, which the keyholders approve by its digest, shows every
// decision. They are written to the medium as decisions.jsonl, which the
// digest and the signed diff cover like any decisions file.

// maxRoomFlags is how many flags the room decides one at a time; more
// are refused, naming the count: a decisions file (--decisions) settles
// them, made and reviewed beforehand.
const maxRoomFlags = 1000

// decideFlags, guided, has the room decide every red flag the diff
// leaves undecided, then runs the pass again with the decisions and
// returns that diff (d is closed). A decision can raise another flag (a
// dropped file can empty its project's stable view): the room decides
// those too, at most maxRounds times. Resuming (resume.go), the
// decisions the interrupted run's journal records are taken instead of
// asking, if they give the diff digest the room approved; otherwise the
// room decides again, told why. Without a guide, or with nothing to
// decide, it returns d. On an error it returns the diff still open (d,
// or a newer one), for the caller to close.
func (s *StableSigning) decideFlags(tr *Transcript, cfg stableset.Config, f *os.File, d *stableset.Diff, resume *stableResumption) (*stableset.Diff, error) {
	g := s.Guide
	if g == nil || undecidedFlags(d) == 0 {
		return d, nil
	}
	if resume.replayable(d, s.givenDecisions(), s.Show) {
		d2, err := s.replayDecisions(tr, cfg, f, d, resume)
		if err != nil || d2 != d {
			return d2, err
		}
	}
	g.printf("\n")
	if err := d.WriteText(g.Out); err != nil {
		return d, err
	}
	var all []decisions.Decision
	for round := 1; undecidedFlags(d) > 0; round++ {
		if round > maxRounds {
			return d, fmt.Errorf("the decisions made in the room raise red flags again after %d rounds: settle them in a decisions file (--decisions): %w", maxRounds, stableset.ErrUndecided)
		}
		if round > 1 {
			g.printf("\n  the decisions raise red flags of their own.\n")
		}
		made, err := g.decideOpen(d)
		if err != nil {
			return d, err
		}
		set, err := s.Decisions.With(DecisionsFile, made...)
		if err != nil {
			return d, err
		}
		g.printf("\n  %d decisions made; the export is read again with them.\n", len(made))
		d2, err := s.passWith(cfg, f, set)
		if err != nil {
			return d, err
		}
		d.Close()
		d, s.Decisions = d2, set
		all = append(all, made...)
		if err := tr.Record("decisions made in the room", map[string]any{"decisions": len(made), "all_decisions": set.Len(), "diff_digest": d.Digest}); err != nil {
			return d, err
		}
	}
	g.printf("\n  the decisions made in the room, which the digest below covers:\n")
	for _, dc := range all {
		g.printf("    %-10s %s\n    %-10s because: %s\n", dc.Choice, dc.Names(), "", dc.Reason)
	}
	return d, nil
}

// passWith reads the export again (f, from its start) with the
// decisions set.
func (s *StableSigning) passWith(cfg stableset.Config, f *os.File, set *decisions.Set) (*stableset.Diff, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading the export again: %w", err)
	}
	cfg.Decisions = set
	cfg.Export = f
	if fi, err := f.Stat(); err == nil {
		if s.bar = s.newBar("reading the export again", fi.Size(), "bytes"); s.bar != nil {
			cfg.Export = &progress.Reader{R: f, Bar: s.bar}
		}
	}
	d, err := stableset.ComputeDiff(cfg)
	s.endProgress()
	return d, err
}

// replayDecisions takes the room's decisions from the interrupted run's
// journal, round by round as the room made them, and returns the diff
// they give (d is closed) when its digest is the one the room approved;
// each is shown and recorded as taken from the journal. When they do
// not give that digest, or do not settle this diff's flags, it says why
// and returns d, open, for the room to decide again.
func (s *StableSigning) replayDecisions(tr *Transcript, cfg stableset.Config, f *os.File, d *stableset.Diff, r *stableResumption) (*stableset.Diff, error) {
	say := func(format string, a ...any) { resumeSay(s.Show, format, a...) }
	given := s.Decisions
	byFlag := make(map[[2]string]roomDecision, len(r.Decisions))
	for _, dc := range r.Decisions {
		byFlag[[2]string{dc.Flag, dc.Subject}] = dc
	}
	var taken []roomDecision
	cur := d
	fail := func(format string, a ...any) (*stableset.Diff, error) {
		if cur != d {
			cur.Close()
		}
		s.Decisions = given
		say("the room decides the red flags again: "+format, a...)
		return d, nil
	}
	for round := 1; undecidedFlags(cur) > 0; round++ {
		if round > maxRounds {
			return fail("the decisions the journal %s records raise red flags again after %d rounds", r.Journal, maxRounds)
		}
		var made []decisions.Decision
		for i := range cur.Flags {
			fl := &cur.Flags[i]
			if fl.Decision != nil {
				continue
			}
			dc, ok := byFlag[[2]string{fl.Kind, fl.Subject}]
			if !ok {
				return fail("the journal %s records no decision for %s", r.Journal, fl.Names())
			}
			if !slices.Contains(fl.Choices, decisions.Choice(dc.Choice)) || decisions.CheckReason(dc.Reason) != nil {
				return fail("the journal %s records %q because %q for %s, which does not settle it", r.Journal, dc.Choice, dc.Reason, fl.Names())
			}
			made = append(made, cur.FlagDecision(fl, decisions.Choice(dc.Choice), dc.Reason))
			taken = append(taken, dc)
		}
		set, err := s.Decisions.With(DecisionsFile, made...)
		if err != nil {
			return fail("%v", err)
		}
		say("taking %d decisions made in the interrupted run from its journal; the export is read again with them", len(made))
		next, err := s.passWith(cfg, f, set)
		if err != nil {
			if cur != d {
				cur.Close()
			}
			s.Decisions = given
			return d, err
		}
		if cur != d {
			cur.Close()
		}
		cur, s.Decisions = next, set
	}
	if len(taken) != len(r.Decisions) {
		return fail("the journal %s records %d decisions, this diff's flags take %d", r.Journal, len(r.Decisions), len(taken))
	}
	if want := r.Inputs["diff_digest"]; cur.Digest != want {
		return fail("the decisions recorded in the interrupted run's journal %s give diff digest %s, not %v, the one the room approved", r.Journal, cur.Digest, want)
	}
	d.Close()
	say("decisions made in the interrupted run (%d), which the digest the room approved covers:", len(taken))
	for _, dc := range taken {
		say("  %-10s flag %s %s because: %s", dc.Choice, dc.Flag, dc.Subject, dc.Reason)
		if err := tr.Record("red flag decided", map[string]any{"flag": dc.Flag, "subject": dc.Subject, "decision": dc.Choice, "reason": dc.Reason, "from_journal": r.Journal}); err != nil {
			return cur, err
		}
	}
	if err := tr.Record("decisions made in the room", map[string]any{"decisions": len(taken), "all_decisions": s.Decisions.Len(), "diff_digest": cur.Digest, "from_journal": r.Journal}); err != nil {
		return cur, err
	}
	return cur, nil
}

// maxRounds is how many times the room decides flags that its own
// decisions raised.
const maxRounds = 3

// undecidedFlags counts the diff's flags without a decision.
func undecidedFlags(d *stableset.Diff) int {
	n := 0
	for i := range d.Flags {
		if d.Flags[i].Decision == nil {
			n++
		}
	}
	return n
}

// decideOpen has the room decide each flag of d without a decision, in
// the diff's order, each recorded in the transcript if there is one.
func (g *Guide) decideOpen(d *stableset.Diff) ([]decisions.Decision, error) {
	var open []*stableset.Flag
	for i := range d.Flags {
		if d.Flags[i].Decision == nil {
			open = append(open, &d.Flags[i])
		}
	}
	if len(open) > maxRoomFlags {
		return nil, fmt.Errorf("%d red flags have no decision, more than the %d the room decides one at a time: settle them in a decisions file (--decisions): %w", len(open), maxRoomFlags, stableset.ErrUndecided)
	}
	g.printf("\n  %d red flags have no decision. Each is shown on its own; type the decision by name, then the reason (it goes into the signed diff).\n", len(open))
	made := make([]decisions.Decision, 0, len(open))
	for i, fl := range open {
		dec, err := g.decideFlag(i+1, len(open), d, fl)
		if err != nil {
			return nil, err
		}
		made = append(made, dec)
		if err := g.record("red flag decided", map[string]any{"flag": fl.Kind, "subject": fl.Subject, "decision": string(dec.Choice), "reason": dec.Reason}); err != nil {
			return nil, err
		}
	}
	return made, nil
}

// DecideFlags has the person at term decide, one at a time as the guided
// signing does, every red flag of d that no decision settles, and
// returns the decisions made (none when every flag is decided). Nothing
// is written: the caller joins them to its decisions (decisions.Set.With)
// and computes the diff again.
func DecideFlags(term Prompter, out io.Writer, d *stableset.Diff) ([]decisions.Decision, error) {
	if undecidedFlags(d) == 0 {
		return nil, nil
	}
	g := &Guide{Term: term, Out: out}
	return g.decideOpen(d)
}

// decideFlag shows one flag on its own screen and reads its decision:
// one of its choices by name, then a reason in words. A wrong choice or
// an empty reason is asked again; "abort" stops the ceremony.
func (g *Guide) decideFlag(n, of int, d *stableset.Diff, f *stableset.Flag) (decisions.Decision, error) {
	k := f.KindOf()
	if g.Terminal {
		// A screen of its own: the terminal keeps what was above in its
		// scrollback.
		g.printf("\x1b[H\x1b[2J")
	}
	head := fmt.Sprintf("== Red flag %d of %d · %s ", n, of, f.Kind)
	g.printf("\n%s%s\n", head, strings.Repeat("=", max(0, 76-len([]rune(head)))))
	g.printf("  %s %s\n", k.About, f.Subject)
	nw := len("threshold")
	for _, fc := range f.Facts {
		nw = max(nw, len(fc.Name))
	}
	for _, fc := range f.Facts {
		g.printf("    %-*s  %s\n", nw, fc.Name, fc.Value)
	}
	if k.Threshold != "" {
		g.printf("    %-*s  %s\n", nw, "threshold", k.Threshold)
	}
	names := make([]string, len(f.Choices))
	g.printf("  choices:\n")
	for i, c := range f.Choices {
		names[i] = string(c)
		g.printf("    %-10s  %s\n", c, k.Means[c])
	}
	list := strings.Join(names, ", ")
	var choice decisions.Choice
	for {
		l, err := g.ask(fmt.Sprintf("  decision for red flag %d of %d (%s; or abort): ", n, of, list))
		if err != nil {
			return decisions.Decision{}, err
		}
		if slices.Contains(names, strings.ToLower(l)) {
			choice = decisions.Choice(strings.ToLower(l))
			break
		}
		g.printf("  REFUSED: %q does not settle this flag: type one of %s.\n", l, list)
	}
	for {
		l, err := g.ask(fmt.Sprintf("  reason for %s (in words, for the signed diff): ", choice))
		if err != nil {
			return decisions.Decision{}, err
		}
		if err := decisions.CheckReason(l); err != nil {
			g.printf("  REFUSED: the reason: %v.\n", err)
			continue
		}
		g.printf("  decided: %s %s: %s, because %s\n", f.Kind, f.Subject, choice, l)
		return d.FlagDecision(f, choice, l), nil
	}
}
