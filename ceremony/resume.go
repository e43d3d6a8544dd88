package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
)

// Resuming a bootstrap.
//
// A bootstrap that died (the laptop lost power, the process was killed)
// or failed after it generated keys leaves its journal: in its working
// directory beside the output (.OUT.partial-PID-N/transcript.jsonl, while
// that process no longer runs) or, for a run that failed, in
// OUT.failed-TIME/transcript.jsonl. Run the same command again and the
// bootstrap reads the newest such journal before anything else. When the
// configuration's digest is the one the journal's first entry recorded,
// the keys it records as generated and attested (role, device serial,
// slot, public key) are not generated again: pre-flight reads each of
// those slots back and requires exactly that public key there, the key is
// attested again (chain, serial, slot, policies, as for a new key), its
// key id and check words are shown again for the room to compare with the
// run sheet, and the new journal records it with the journal it came
// from. Every other key is generated as usual.
//
// The journal is an input, not a proof: it decides only which slots are
// expected to hold this ceremony's keys. A slot that holds another key,
// or some journal slots empty while others hold their keys, is refused
// (ErrResume) before anything is generated. When every slot it names is
// empty (the orphan keys were cleared, as the failed run said to), and
// when the configuration changed, the bootstrap starts over and says why.

// ErrResume means the journal of an interrupted bootstrap names keys that
// are not on the devices.
var ErrResume = hint.New("the interrupted bootstrap's journal does not match the devices", "a slot the journal names holds another key or none: inspect the devices (keyceremony device list) and the journal; clear the slots it names (see docs/runbook-bootstrap.md) and remove or move the journal's directory to start over")

// resumedKey is a key an interrupted run generated and attested, as its
// journal records it.
type resumedKey struct {
	Role   string
	Serial uint32
	Slot   hsm.Slot
	Key    *keys.Key
}

// resumption is what an interrupted bootstrap's journal lets the rerun
// skip.
type resumption struct {
	Journal string // the journal's path
	Digest  [32]byte
	Entries int
	Keys    []resumedKey
}

// key returns the resumed key for a slot, if any.
func (r *resumption) key(serial uint32, slot hsm.Slot) *resumedKey {
	if r == nil {
		return nil
	}
	for i := range r.Keys {
		if r.Keys[i].Serial == serial && r.Keys[i].Slot == slot {
			return &r.Keys[i]
		}
	}
	return nil
}

// configDigest is the SHA-256 of the configuration as parsed (its JSON
// encoding): the bootstrap's input, recorded at its start.
func configDigest(c *Config) string {
	b, err := json.Marshal(c)
	if err != nil {
		// A Config holds strings, numbers and keys: encoding cannot fail.
		panic(fmt.Sprintf("ceremony: encoding the configuration: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// journals lists the journals a rerun of a bootstrap writing outDir may
// resume from, newest first: the working directories of dead runs, then
// the failed runs' directories.
func journals(outDir string) []string {
	var out []string
	dead, _ := outdir.Interrupted(outDir)
	for _, d := range dead {
		out = append(out, filepath.Join(d.Path, JournalFile))
	}
	failed, _ := filepath.Glob(filepath.Clean(outDir) + ".failed-*")
	slices.Sort(failed) // their names end in the UTC time
	slices.Reverse(failed)
	for _, d := range failed {
		out = append(out, filepath.Join(d, JournalFile))
	}
	return out
}

// readJournal reads a journal that a killed run may have cut mid-line:
// the complete lines must chain (VerifyTranscript); a last line without
// its newline is dropped.
func readJournal(path string) ([]TranscriptEntry, [32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return parseJournal(data, path)
}

// parseJournal is readJournal on the journal's bytes; name is used in
// errors.
func parseJournal(data []byte, name string) ([]TranscriptEntry, [32]byte, error) {
	if i := bytes.LastIndexByte(data, '\n'); i+1 != len(data) {
		data = data[:i+1]
	}
	digest, n, err := VerifyTranscript(bytes.NewReader(data), name)
	if err != nil {
		return nil, digest, err
	}
	es := make([]TranscriptEntry, 0, n)
	for line := range bytes.Lines(data) {
		var e TranscriptEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, digest, fmt.Errorf("%s: %w", name, err)
		}
		es = append(es, e)
	}
	return es, digest, nil
}

// resumeSay prints a resume line on show, if set.
func resumeSay(show io.Writer, format string, a ...any) {
	if show != nil {
		fmt.Fprintf(show, "resume: "+format+"\n", a...)
	}
}

// newestJournal returns the first of paths that holds a journal whose
// first step is first, parsed; nil entries when there is none or the
// newest journal found does not verify (said on show: the run starts
// over).
func newestJournal(paths []string, first string, show io.Writer) (string, []TranscriptEntry, [32]byte) {
	for _, path := range paths {
		es, digest, err := readJournal(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			resumeSay(show, "the interrupted run's journal %s does not verify (%v): starting over", path, err)
			return "", nil, digest
		}
		if es[0].Step == first {
			return path, es, digest
		}
	}
	return "", nil, [32]byte{}
}

// findResumption looks for an interrupted run's journal (journals) and
// returns what it lets this run skip, or nil to start over; show says
// which journal was found and, when it is not used, why.
func (b *Bootstrap) findResumption(outDir string) *resumption {
	say := func(format string, a ...any) { resumeSay(b.Show, format, a...) }
	path, es, digest := newestJournal(journals(outDir), "bootstrap started", b.Show)
	if es == nil {
		return nil
	}
	want := configDigest(b.Config)
	if got, _ := es[0].Detail["config_sha256"].(string); got != want {
		say("starting over: the configuration changed since the interrupted run (its journal %s recorded config sha256 %q, the configuration now has %s)", path, got, want)
		return nil
	}
	r := &resumption{Journal: path, Digest: digest, Entries: len(es)}
	for _, e := range es {
		if e.Step != "key generated and attested" {
			continue
		}
		k, err := journalKey(e)
		if err != nil {
			say("the interrupted run's journal %s, entry %d: %v: starting over", path, e.Seq, err)
			return nil
		}
		if r.key(k.Serial, k.Slot) == nil {
			r.Keys = append(r.Keys, *k)
		}
	}
	say("found the journal of an interrupted run, %s (%d entries); it generated %d of the keys", path, len(es), len(r.Keys))
	for _, k := range r.Keys {
		say("  %s key in slot %s of device %d: key id %s", k.Role, k.Slot, k.Serial, k.Key.ID())
	}
	if len(r.Keys) == 0 {
		return nil
	}
	return r
}

// journalKey reads a "key generated and attested" entry back: the key's
// public half must give the recorded key id.
func journalKey(e TranscriptEntry) (*resumedKey, error) {
	role, _ := e.Detail["role"].(string)
	serial, _ := e.Detail["device"].(float64)
	slotName, _ := e.Detail["slot"].(string)
	id, _ := e.Detail["keyid"].(string)
	raw, err := json.Marshal(e.Detail["public_key"])
	if err != nil {
		return nil, err
	}
	var k keys.Key
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("public_key: %w", err)
	}
	if _, err := k.Public(); err != nil {
		return nil, fmt.Errorf("public_key: %w", err)
	}
	if k.ID() != id {
		return nil, fmt.Errorf("public_key has key id %s, the entry says %s", k.ID(), id)
	}
	slot, err := hsm.ParseSlot(slotName)
	if err != nil {
		return nil, fmt.Errorf("slot: %w", err)
	}
	if role == "" || serial <= 0 || serial != float64(uint32(serial)) {
		return nil, fmt.Errorf("role %q or device %v missing or malformed", role, e.Detail["device"])
	}
	return &resumedKey{Role: role, Serial: uint32(serial), Slot: slot, Key: &k}, nil
}

// check reads back, from the devices, every slot the journal names: all
// empty (the keys were cleared) drops the resumption; all holding their
// recorded keys keeps it; anything else is ErrResume.
func (r *resumption) check(s *session, show io.Writer) (*resumption, error) {
	if r == nil {
		return nil, nil
	}
	var empty []string
	held := 0
	for _, k := range r.Keys {
		d, err := s.present(k.Serial, " to compare its keys with the interrupted run's journal")
		if err != nil {
			return nil, err
		}
		pub, err := d.PublicKey(k.Slot)
		if errors.Is(err, hsm.ErrSlotEmpty) {
			empty = append(empty, fmt.Sprintf("slot %s of %s", k.Slot, d.Info()))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading slot %s of %s: %w", k.Slot, d.Info(), err)
		}
		got, err := keys.FromPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("slot %s of %s: %w", k.Slot, d.Info(), err)
		}
		if got.ID() != k.Key.ID() {
			return nil, fmt.Errorf("the journal %s names the %s key %s in slot %s of %s, but the slot holds key %s: %w", r.Journal, k.Role, k.Key.ID(), k.Slot, d.Info(), got.ID(), ErrResume)
		}
		held++
	}
	if held == 0 {
		resumeSay(show, "starting over: every slot the journal %s names is empty again (the keys were cleared)", r.Journal)
		return nil, nil
	}
	if len(empty) > 0 {
		return nil, fmt.Errorf("the journal %s names keys in %d slots; %d hold them, but %v are empty: %w", r.Journal, len(r.Keys), held, empty, ErrResume)
	}
	return r, nil
}

// record writes the resumption into the new journal: the journal it came
// from, by path and digest, and the keys it will not generate again.
func (r *resumption) record(tr *Transcript) error {
	list := make([]map[string]any, len(r.Keys))
	for i, k := range r.Keys {
		list[i] = map[string]any{"role": k.Role, "device": k.Serial, "slot": k.Slot.String(), "keyid": k.Key.ID()}
	}
	return tr.Record("resuming an interrupted bootstrap", map[string]any{
		"journal": r.Journal, "journal_sha256": hex.EncodeToString(r.Digest[:]), "journal_entries": r.Entries, "keys": list,
	})
}

// Resuming a stable signing.
//
// A stable signing that died leaves its journal in its working directory
// beside the media (.MEDIA.partial-PID-N/transcript.jsonl). The rerun of
// the same command reads it before anything else; after its own pass over
// the export it compares the inputs the journal recorded (stableInputs:
// the export file's SHA-256, the policy's, the decisions', the previous
// ledger's and the diff digest they give) with its own. When every one is
// unchanged and the interrupted run recorded the room's approval of that
// diff digest ("diff approved": guided, written once a keyholder's
// check words were accepted, recordApproval), the guided review (the
// diff's summary and the reading of its digest) is not presented again:
// its steps are recorded as done in
// the interrupted run, and each keyholder still sees and confirms what
// they sign before their PIN. Otherwise the signing starts over and says
// which input changed. The journal decides nothing else: the diff is
// computed again from the inputs and every check runs as on a first run.
// The red-flag decisions the room typed in the interrupted run are in its
// journal ("red flag decided": flag, subject, choice, reason): when the
// export, the policy, the published ledger and the decisions given on
// the command line are unchanged and the room approved the diff, the
// guided rerun takes them from the journal instead of asking again
// (guide_review.go), and the diff they give must have the digest the
// room approved; if it does not (the journal was edited, or names flags
// this diff does not raise), the room decides again and the screen says
// why. The rerun says what the journal records as done: the last step
// begun and the devices whose signatures were verified. Those signatures are
// not kept (they lived in the killed process and its working directory,
// which the rerun removes): each keyholder signs again.

// stableInputs are the digests a stable signing's review depends on, in
// the order a change is reported.
var stableInputs = []struct{ key, what string }{
	{"export_sha256", "the export"},
	{"policy_sha256", "the policy"},
	{"given_decisions_sha256", "the decisions given (--decisions)"},
	{"decisions_sha256", "the decisions"},
	{"previous_ledger_sha256", "the published ledger"},
	{"diff_digest", "the diff"},
}

// inputs are a stable signing's input digests, for the journal; given is
// the digest of the decisions given before the room decided any
// (givenDecisions).
func (s *StableSigning) inputs(d *stableset.Diff, given string) map[string]any {
	dec := sha256.Sum256(s.Decisions.Marshal())
	return map[string]any{
		"given_decisions_sha256": given,
		"export":                 s.Export, "export_sha256": hex.EncodeToString(d.ExportFileSHA256[:]),
		"export_trailer_sha256": hex.EncodeToString(d.Export.SHA256[:]),
		"policy_sha256":         d.Header.PolicySHA256, "decisions_sha256": hex.EncodeToString(dec[:]),
		"previous_ledger_sha256": d.Header.PreviousLedgerSHA256, "diff_digest": d.Digest,
	}
}

// givenDecisions is the digest of the decisions a stable signing has
// before the room decides any: those of --decisions.
func (s *StableSigning) givenDecisions() string {
	sum := sha256.Sum256(s.Decisions.Marshal())
	return hex.EncodeToString(sum[:])
}

// stableResumption is what an interrupted stable signing's journal
// recorded: its inputs, the red-flag decisions made in the room and, if
// the room approved the diff, when.
type stableResumption struct {
	Journal   string
	Inputs    map[string]any
	Approved  string // the approval entry's time; "" if none
	Decisions []roomDecision
}

// roomDecision is a red-flag decision typed in the room, as the journal
// records it ("red flag decided").
type roomDecision struct {
	Flag, Subject, Choice, Reason string
}

// replayable tells whether the room's decisions recorded in the journal
// may be taken instead of asking again: the room approved the diff they
// gave, and the inputs they were made on (the export, the policy, the
// published ledger and the decisions given) are this run's, as d (the
// pass before any decision of the room) and given say. When the journal
// records decisions that are not taken, show says why.
func (r *stableResumption) replayable(d *stableset.Diff, given string, show io.Writer) bool {
	if r == nil || len(r.Decisions) == 0 {
		return false
	}
	if r.Approved == "" {
		resumeSay(show, "the room decides the red flags again: the interrupted run ended before the room approved the diff")
		return false
	}
	now := map[string]any{
		"export_sha256": hex.EncodeToString(d.ExportFileSHA256[:]), "policy_sha256": d.Header.PolicySHA256,
		"previous_ledger_sha256": d.Header.PreviousLedgerSHA256, "given_decisions_sha256": given,
	}
	for _, in := range stableInputs {
		if v, ok := now[in.key]; ok && r.Inputs[in.key] != v {
			resumeSay(show, "the room decides the red flags again: %s changed since the interrupted run (%s now %v, the journal %s recorded %v)", in.what, in.key, v, r.Journal, r.Inputs[in.key])
			return false
		}
	}
	return true
}

// findStableResumption reads the newest journal a dead stable signing
// writing outDir left, if any; show says which.
func findStableResumption(outDir string, show io.Writer) *stableResumption {
	var paths []string
	dead, _ := outdir.Interrupted(outDir)
	for _, d := range dead {
		paths = append(paths, filepath.Join(d.Path, JournalFile))
	}
	path, es, _ := newestJournal(paths, "stable signing started", show)
	if es == nil {
		return nil
	}
	r := &stableResumption{Journal: path}
	last := ""          // the last step recorded as begun
	var signed []uint32 // the devices whose signatures were verified
	for _, e := range es {
		switch {
		case e.Step == "stable inputs":
			r.Inputs = e.Detail
		case e.Step == "diff approved":
			if r.Inputs != nil && e.Detail["diff_digest"] == r.Inputs["diff_digest"] {
				r.Approved = e.Time
			}
		case e.Step == "red flag decided":
			var dc roomDecision
			dc.Flag, _ = e.Detail["flag"].(string)
			dc.Subject, _ = e.Detail["subject"].(string)
			dc.Choice, _ = e.Detail["decision"].(string)
			dc.Reason, _ = e.Detail["reason"].(string)
			r.Decisions = append(r.Decisions, dc)
		case e.Step == "signature verified":
			if d, ok := e.Detail["device"].(float64); ok && !slices.Contains(signed, uint32(d)) {
				signed = append(signed, uint32(d))
			}
		case strings.HasPrefix(e.Step, "step "):
			last = e.Step + " at " + e.Time
		}
	}
	resumeSay(show, "found the journal of an interrupted run, %s (%d entries)", path, len(es))
	if last != "" {
		resumeSay(show, "  the last step it began: %s", last)
	}
	if len(signed) > 0 {
		resumeSay(show, "  signatures it made and verified, by devices %v: they are not kept; each keyholder signs again", signed)
	}
	return r
}

// resumes tells whether the review can be skipped, given this run's
// inputs: every input digest unchanged and the diff approved. Otherwise
// it says (on show) why the signing starts over.
func (r *stableResumption) resumes(inputs map[string]any, show io.Writer) bool {
	if r == nil {
		return false
	}
	say := func(format string, a ...any) { resumeSay(show, format, a...) }
	if r.Inputs == nil {
		say("starting over: the interrupted run ended before its pass over the export")
		return false
	}
	for _, in := range stableInputs {
		if got, was := inputs[in.key], r.Inputs[in.key]; got != was {
			name := ""
			if in.key == "export_sha256" {
				name = fmt.Sprintf(" %v", inputs["export"])
			}
			say("starting over: %s%s changed since the interrupted run (%s now %v, the journal %s recorded %v)", in.what, name, in.key, got, r.Journal, was)
			return false
		}
	}
	if r.Approved == "" {
		say("starting over the review: every input is unchanged, but the interrupted run ended before the room approved the diff")
		return false
	}
	say("every input digest is unchanged and the room approved diff %v at %s: the review is not repeated", inputs["diff_digest"], r.Approved)
	return true
}
