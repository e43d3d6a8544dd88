package ceremony

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// errKilled stands for the process killed at a prompt: the terminal
// gives no answer and the run ends there.
var errKilled = errors.New("killed at the prompt")

// TestGuidedApprovalAfterCheckWords: the journal records the room's
// approval of the diff only once a keyholder's check words are accepted.
// A run killed at the first check-words prompt leaves a journal with the
// inputs and no approval, and its rerun reviews the diff again (it does
// not take it as approved). There, a keyholder types wrong words twice,
// the PIN among them, as a keyholder might by mistake: each refusal is
// recorded without what was typed, and still no approval; the right
// words are then recorded as the approval, once, with the device, after
// "check words confirmed" and before the first signature.
func TestGuidedApprovalAfterCheckWords(t *testing.T) {
	h := newHistory(t)
	h.export(synth.NextParams{})
	d, err := h.signing(h.published[0]).Diff()
	if err != nil {
		t.Fatal(err)
	}
	digest := d.Digest
	d.Close()
	sum, err := hex.DecodeString(digest)
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Join(keys.PGPWords(sum[:StableCheckBytes]), " ")
	media := filepath.Join(h.dir, "media")
	const mistake = "97531864" // a PIN typed at the check-words prompt

	// run signs guided; atWords answers the n-th check-words prompt
	// (from 1), with the journal as it is on disk at that moment.
	run := func(atWords func(n int, journal string) (string, error)) (string, error) {
		t.Helper()
		s := h.signing(h.published[0])
		var screen, show bytes.Buffer
		n := 0
		s.Show = &show
		s.Guide = &Guide{Out: &screen, Script: StableSteps(h.f.cfg, nil), PIN: h.f.pins,
			Interfaces: func() ([]airgap.Interface, error) { return nil, nil }}
		s.Guide.Term = &hookTerm{out: &screen, answer: func(p string) (string, error) {
			switch {
			case strings.Contains(p, "Type yes if the clock agrees"):
				return "yes", nil
			case strings.Contains(p, "check words as read aloud"):
				n++
				js, _ := filepath.Glob(filepath.Join(h.dir, ".media.partial-*", JournalFile))
				if len(js) != 1 {
					t.Fatalf("journals on disk at the check words: %q", js)
				}
				b, err := os.ReadFile(js[0])
				if err != nil {
					t.Fatal(err)
				}
				return atWords(n, string(b))
			case strings.Contains(p, "press Enter when ready"):
				return "", nil
			}
			t.Fatalf("unexpected prompt %q\n%s", p, screen.String())
			return "", nil
		}}
		res, err := s.Sign("", media)
		if err == nil {
			res.Diff.Close()
		}
		return show.String() + screen.String(), err
	}

	var killed string
	_, err = run(func(n int, journal string) (string, error) {
		killed = journal
		return "", errKilled
	})
	if !errors.Is(err, errKilled) {
		t.Fatalf("the killed run: %v", err)
	}
	if !strings.Contains(killed, `"step":"stable inputs"`) || !strings.Contains(killed, `"diff_digest":"`+digest+`"`) {
		t.Fatalf("the journal at the check words lacks the inputs:\n%s", killed)
	}
	if strings.Contains(killed, `"step":"diff approved"`) {
		t.Fatalf("the journal records the approval before any check words were typed:\n%s", killed)
	}
	deadJournal(t, media, []byte(killed))

	screen, err := run(func(n int, journal string) (string, error) {
		switch n {
		case 1:
			return mistake, nil
		case 2:
			return "acme adrift " + words, nil
		case 3:
			for _, not := range []string{`"step":"diff approved"`, mistake, "acme adrift"} {
				if strings.Contains(journal, not) {
					t.Errorf("after two refusals the journal holds %q:\n%s", not, journal)
				}
			}
			if !strings.Contains(journal, `"step":"check words refused","detail":{"attempt":1,`) || !strings.Contains(journal, `"step":"check words refused","detail":{"attempt":2,`) {
				t.Errorf("the refusals are not recorded:\n%s", journal)
			}
		}
		return words, nil
	})
	if err != nil {
		t.Fatalf("the rerun: %v\n%s", err, screen)
	}
	for _, want := range []string{
		"resume: starting over the review: every input is unchanged, but the interrupted run ended before the room approved the diff",
		"(read it aloud as PGP words):",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the rerun's screen lacks %q", want)
		}
	}
	if strings.Contains(screen, "the review is not repeated") || strings.Contains(screen, "reviewed in the interrupted run") {
		t.Errorf("the rerun took the diff as approved")
	}
	es := transcriptOf(t, filepath.Join(media, JournalFile))
	approvals, confirmed, signed := -1, -1, -1
	for i, e := range es {
		switch e.Step {
		case "diff approved":
			if approvals >= 0 {
				t.Errorf("entry %d: a second approval", i)
			}
			approvals = i
			if e.Detail["diff_digest"] != digest || e.Detail["device"] == nil {
				t.Errorf("the approval records %v, want digest %s and the device", e.Detail, digest)
			}
		case "check words confirmed":
			if confirmed < 0 {
				confirmed = i
			}
		case "signature verified":
			if signed < 0 {
				signed = i
			}
		}
	}
	if approvals < 0 || confirmed < 0 || signed < 0 || !(confirmed < approvals && approvals < signed) {
		t.Errorf("entries: check words confirmed %d, diff approved %d, first signature %d; want them in that order", confirmed, approvals, signed)
	}
	if t.Failed() {
		t.Logf("screen:\n%s", screen)
	}
}

// transcriptOf reads a transcript's entries.
func transcriptOf(t *testing.T, path string) []TranscriptEntry {
	t.Helper()
	es, _, err := readJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	return es
}
