package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/internal/progress"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// Errors of stable signing; check them with errors.Is.
var (
	ErrNoTrustedTargets = errors.New("no targets metadata that the trusted root signs")
	ErrTooFewSigners    = errors.New("fewer stable keys present than the threshold")
)

// StableSigning is one stable-signing ceremony: the repository export is
// compared with the published stable set under the policy, the people in
// the room review the diff and approve its digest, and the stable
// keyholders sign.
type StableSigning struct {
	// Root is the root the ceremony trusts (from the bootstrap media,
	// compared out of band). The root chain and targets in Published are
	// verified from it.
	Root *tuf.Metadata[tuf.Root]
	// Published holds the currently published metadata: metadata/ with
	// N.root.json, N.targets.json, N.stable.json, the bins, and ledger/.
	Published string
	// Export is the repository export file.
	Export string
	Policy *policy.Policy
	// Decisions are the room's decisions (stableset/decisions): changed
	// paths kept, accepted or dropped, counts above confirm_above
	// confirmed. Nil: none; a crossed limit then refuses the signing.
	Decisions *decisions.Set
	Devices   map[uint32]hsm.Device
	PIN       PINSource
	// Now is the ceremony's clock (confirmed by the room). It is refused
	// when earlier, by more than stableset.DefaultClockSkew, than the
	// published ledger's listing time or the backup medium's newest
	// ceremony or listing time; stableset refuses an export generated
	// later than it by more than that. Required.
	Now time.Time
	// Backup is the backup medium the ceremony keeps (backup.go): its
	// newest state must be the published state, the export must be for
	// its repository, and Sign writes the new state there. Required by
	// Sign; Diff checks it when set.
	Backup  string
	Show    io.Writer
	Version string
	TempDir string
	// Guide leads the room through the guided ceremony (guide.go); nil
	// is the batch form. Airgap is the batch form's network check.
	Guide  *Guide
	Airgap *airgap.Result
	bar    *progress.Bar // the progress report running
}

// StableResult is what a stable signing produced.
type StableResult struct {
	Dir string
	// Diff stays readable until the caller closes it.
	Diff          *stableset.Diff
	StableVersion int64
	// Layout is the two-level bin layout under stable; Meta every
	// metadata file written (stable, the mids, the leaves).
	Layout     tuf.TwoLevel
	Meta       []stableset.MetaEntry
	Signers    []string
	Transcript [32]byte
	// Sums is the digest of the medium's SHA256SUMS, written last.
	Sums [32]byte
	// State is the new state written to the backup medium, as StateFile;
	// its CheckWords go on the paper run sheet.
	State     *BackupState
	StateFile string
}

// trustedTargets walks the root chain in dir from the trusted root and
// returns the newest targets metadata the final root's targets role signs.
func trustedTargets(trusted *tuf.Metadata[tuf.Root], dir string) (*tuf.Metadata[tuf.Root], *tuf.Metadata[tuf.Targets], error) {
	root, err := tuf.VerifyRootChain(trusted, dir)
	if err != nil {
		return nil, nil, err
	}
	by, err := root.Signed.RoleKeys(tuf.RoleTargets)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoTrustedTargets, err)
	}
	t, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(dir), dir, tuf.RoleTargets, by)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoTrustedTargets, err)
	}
	name := filepath.Join(dir, fmt.Sprintf("%d.%s.json", n, tuf.RoleTargets))
	if _, ok := t.Signed.Delegation(stableset.StableRole); !ok {
		return nil, nil, fmt.Errorf("%s delegates to no stable role: %w", name, ErrNoTrustedTargets)
	}
	return root, t, nil
}

// config checks the published state, the backup medium (when given) and
// the ceremony's clock against each other, and returns the pipeline's
// configuration.
func (s *StableSigning) config() (stableset.Config, *os.File, *tuf.Metadata[tuf.Targets], *Backup, error) {
	fail := func(err error) (stableset.Config, *os.File, *tuf.Metadata[tuf.Targets], *Backup, error) {
		return stableset.Config{}, nil, nil, nil, err
	}
	if _, err := refuseMarked(s.Published, "the published directory", RoleOutput); err != nil {
		return fail(err)
	}
	// The repository writes the export medium: its marker, if any, is
	// only checked not to be another medium's.
	if _, err := refuseMarked(filepath.Dir(s.Export), "the export's directory", RoleInput); err != nil {
		return fail(err)
	}
	_, targets, err := trustedTargets(s.Root, filepath.Join(s.Published, "metadata"))
	if err != nil {
		return fail(err)
	}
	d, _ := targets.Signed.Delegation(stableset.StableRole)
	pub, err := readPublishedState(s.Published, d, targets.Signed.Delegations.Keys)
	if err != nil {
		return fail(err)
	}
	var backup *Backup
	if s.Backup != "" {
		if backup, err = ReadBackup(s.Backup); err != nil {
			return fail(err)
		}
		if err := checkBackupRoot(backup, s.Root); err != nil {
			return fail(err)
		}
		if err := checkPublished(backup, pub); err != nil {
			return fail(err)
		}
		if err := checkExportRepository(s.Export, backup); err != nil {
			return fail(err)
		}
	}
	if err := checkClock(s.Now, stableset.DefaultClockSkew, pub, backup); err != nil {
		return fail(err)
	}
	f, err := os.Open(s.Export)
	if err != nil {
		return fail(fmt.Errorf("opening the export: %w", err))
	}
	return stableset.Config{
		Export: f, ExportName: s.Export, Published: s.Published,
		StableDelegation: d, StableKeys: targets.Signed.Delegations.Keys,
		Now: s.Now, ClockSkew: stableset.DefaultClockSkew, Policy: s.policy(), Decisions: s.Decisions, TempDir: s.TempDir,
	}, f, targets, backup, nil
}

// Diff computes the diff without signing anything. The caller closes it.
func (s *StableSigning) Diff() (*stableset.Diff, error) {
	cfg, f, _, backup, err := s.config()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := s.checkSpaceFor("", true); err != nil {
		return nil, err
	}
	d, err := stableset.ComputeDiff(cfg)
	if err != nil {
		return nil, err
	}
	if backup != nil {
		if err := checkDiffState(backup, d); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// stableSigners finds, on the connected devices, the keys the stable
// delegation names, and returns signers for all of them, each shown to
// its keyholder by the guide. Fewer than the threshold is
// ErrTooFewSigners.
func stableSigners(sess *session, d *tuf.DelegatedRole) ([]keys.Signer, error) {
	want := map[string]bool{}
	for _, id := range d.KeyIDs {
		want[id] = true
	}
	var out []keys.Signer
	if g := sess.guide; g != nil {
		// One device at a time: each signs in its keyholder's turn.
		out = g.turnSigners(sess, g.signOrder(sess.devices), want)
	} else {
		var err error
		if out, err = deviceSigners(sess, want, nil); err != nil {
			return nil, err
		}
	}
	if len(out) < d.Threshold {
		return nil, fmt.Errorf("%d of %d stable keys present: %w", len(out), d.Threshold, ErrTooFewSigners)
	}
	return out, nil
}

// deviceSigners returns a signer for every key in want found in a slot of
// a connected device, devices by serial and slots in order; wrap, if not
// nil, wraps each (the guided ceremony's view of a signer).
func deviceSigners(sess *session, want map[string]bool, wrap func(uint32, keys.Signer) keys.Signer) ([]keys.Signer, error) {
	want = maps.Clone(want)
	serials := slices.Sorted(maps.Keys(sess.devices))
	var out []keys.Signer
	for _, serial := range serials {
		dev := sess.devices[serial]
		for slot := hsm.Slot(0x80); slot <= 0x9e; slot++ {
			if !slot.Valid() {
				continue
			}
			pub, err := dev.PublicKey(slot)
			if err != nil {
				continue
			}
			k, err := keys.FromPublicKey(pub)
			if err != nil || !want[k.ID()] {
				continue
			}
			sg, err := sess.signer(serial, slot)
			if err != nil {
				return nil, err
			}
			if wrap != nil {
				sg = wrap(serial, sg)
			}
			out = append(out, sg)
			delete(want, k.ID())
		}
	}
	return out, nil
}

// Sign runs the ceremony: nothing is signed unless the published state is
// the backup medium's newest state (s.Backup, required) and approve
// equals the digest of the diff. outDir (new) receives stable/ (metadata, ledger,
// pages, snapshot fragment), signed-diff.json, policy.json (the exact
// policy file applied), decisions.jsonl (the decisions applied), diff.txt,
// diff.canonical and transcript.jsonl; it appears only when everything
// succeeded and was read back and verified. Only then is the new state
// written to the backup medium (StableResult.StateFile). A rolled-back
// published state, a wrong approval or a crossed limit without a decision
// is refused before any device is asked to sign.
//
// A full or removed medium is ErrMediumWrite: the backup medium is then
// unchanged, and nothing has the medium's name.
func (s *StableSigning) Sign(approve, outDir string) (*StableResult, error) {
	res, err := s.sign(approve, outDir)
	return res, mediumFailure(err, outDir)
}

func (s *StableSigning) sign(approve, outDir string) (*StableResult, error) {
	if s.Backup == "" {
		return nil, fmt.Errorf("no backup medium given: a stable signing checks the published state against it and records its own: %w", ErrBackup)
	}
	// Read before New removes the dead runs' working directories.
	resume := findStableResumption(outDir, s.Show)
	if err := s.Guide.checkOutput(outDir); err != nil {
		return nil, err
	}
	out, err := newOutputMedium(outDir, MediumStable, s.Now)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	sweepDebris(s.Show, out, s.TempDir)
	tr, err := openJournal(out, s.Show, s.Guide)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	if err := tr.Record("stable signing started", map[string]any{"tool_version": s.Version, "export": filepath.Base(s.Export)}); err != nil {
		return nil, err
	}
	if err := s.opening(tr); err != nil {
		return nil, err
	}
	if err := s.checkInputs(); err != nil {
		return nil, err
	}
	cfg, f, targets, backup, err := s.config()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prev := backup.Newest()
	if err := tr.Record("published state matches the backup medium", map[string]any{
		"state_file": filepath.Base(backup.NewestFile()), "ceremony": prev.Ceremony, "stable_version": prev.StableVersion,
		"ledger_sha256": prev.LedgerSHA256, "check_words": prev.CheckWords(),
	}); err != nil {
		return nil, err
	}
	deleg, _ := targets.Signed.Delegation(stableset.StableRole)
	// Before the pass: the free space for it (or for a kept pass's
	// check, in the batch form) and for the medium.
	if err := s.checkSpaceFor(outDir, approve == "" || s.Guide != nil); err != nil {
		return nil, err
	}
	diff, err := s.reviewedOrPass(tr, cfg, f, approve)
	if err != nil {
		return nil, err
	}
	kept := false
	defer func() {
		if !kept {
			diff.Close()
		}
	}()
	if err := checkDiffState(backup, diff); err != nil {
		return nil, err
	}
	// Guided: the room decides each red flag left undecided, one at a
	// time, and the pass runs again with the decisions (guide_review.go).
	given := s.givenDecisions()
	if diff, err = s.decideFlags(tr, cfg, f, diff, resume); err != nil {
		return nil, err
	}
	inputs := s.inputs(diff, given)
	if err := tr.Record("stable inputs", inputs); err != nil {
		return nil, err
	}
	resumed := resume.resumes(inputs, s.Show)
	if resumed {
		if err := tr.Record("review resumed", map[string]any{"journal": resume.Journal, "approved": resume.Approved}); err != nil {
			return nil, err
		}
	}
	if approve, err = s.Guide.review(diff, approve, resumed); err != nil {
		return nil, err
	}
	// A refused approval or an undecided limit is said before any PIN is
	// asked for; diff.Sign checks both again.
	if approve != diff.Digest {
		return nil, fmt.Errorf("approved %q, computed %s: %w", approve, diff.Digest, stableset.ErrApproval)
	}
	if err := diff.Undecided(); err != nil {
		return nil, err
	}
	if err := s.Guide.recordApproval(tr, diff.Digest); err != nil {
		return nil, err
	}
	sess := &session{devices: s.Devices, pin: s.PIN, pins: map[uint32]string{}, guide: s.Guide, optional: true}
	if err := s.Guide.stableDevices(sess); err != nil {
		return nil, err
	}
	signers, err := stableSigners(sess, deleg)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(signers))
	for i, sg := range signers {
		ids[i] = sg.Key().ID()
	}
	// The signed diff's statement depends on the diff alone: in the
	// guided form each keyholder signs it in the same turn as stable.
	st, err := s.statement(diff)
	if err != nil {
		return nil, err
	}
	if err := s.Guide.alsoSign(signeddiff.PayloadType, st.MarshalPayload); err != nil {
		return nil, err
	}
	// Every mid role and leaf bin gets a key of its own that exists only
	// in this process's memory, for this ceremony: ECDSA P-256, whose
	// signature hashes each bin once (SHA-256).
	res, err := diff.Sign(stableset.SignParams{Approve: approve, Signers: signers, BinKeys: stableset.EphemeralBinKeys, Now: s.Now, OutDir: out.Path("stable"), Progress: s.binProgress()})
	s.endProgress()
	if err != nil {
		return nil, err
	}
	signed := map[string]any{
		"diff_digest": diff.Digest, "stable_version": res.StableVersion, "signers": ids,
		"mid_roles": res.Layout.NumMids(), "leaf_bins": res.Layout.NumLeaves(), "role_keys": len(res.Meta) - 1,
		"added": diff.Summary.Added, "held": diff.Summary.Held, "removed": diff.Summary.Removed,
		"changed": diff.Summary.Changed, "dropped": diff.Summary.Dropped, "unchanged": diff.Summary.Unchanged,
		"decisions": len(diff.Decisions),
	}
	if n := len(diff.Takedowns); n > 0 {
		// The paths stable delegates to the empty takedown role (its
		// key is one of role_keys).
		signed["taken_down"] = n
	}
	if err := tr.Record("diff approved and stable signed", signed); err != nil {
		return nil, err
	}
	if err := s.Guide.stepTo("readback"); err != nil {
		return nil, err
	}
	// The diff, for people and for auditors who recompute its digest.
	// Streamed: at PyPI's scale each is gigabytes.
	var txtSum, canonSum [32]byte // what was written, for the read-back
	if err := out.WriteStream("diff.txt", s.writeProgress("writing diff.txt", teeSHA256(&txtSum, diff.WriteFullText))); err != nil {
		return nil, err
	}
	if cf, ok := diff.CanonicalFile(); ok {
		// A reviewed pass: its check made the canonical form again and
		// hashed it to the digest, which is its SHA-256.
		if _, err := hex.Decode(canonSum[:], []byte(diff.Digest)); err != nil {
			return nil, err
		}
		if err := out.Link(cf, "diff.canonical"); err != nil {
			return nil, err
		}
	} else if err := out.WriteStream("diff.canonical", s.writeProgress("writing diff.canonical", teeSHA256(&canonSum, diff.WriteCanonical))); err != nil {
		return nil, err
	}
	env, err := signeddiff.Sign(st, signers)
	if err != nil {
		return nil, fmt.Errorf("signing the diff: %w", err)
	}
	envBytes, err := signeddiff.Marshal(env)
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile("signed-diff.json", envBytes); err != nil {
		return nil, err
	}
	// The policy file the room reviewed, byte for byte, beside the signed
	// diff that names it by SHA-256.
	if err := out.WriteFile(PolicyFile, s.policy().Bytes()); err != nil {
		return nil, err
	}
	// The decisions the digest covers, as a decisions file, so that an
	// auditor can run the diff again (empty when there were none).
	if err := out.WriteFile(DecisionsFile, s.Decisions.Marshal()); err != nil {
		return nil, err
	}
	if err := tr.Record("signed diff written", map[string]any{"diff_sha256": hex.EncodeToString(st.DiffSHA256[:]), "diff_txt_sha256": hex.EncodeToString(txtSum[:]), "diff_canonical_sha256": hex.EncodeToString(canonSum[:])}); err != nil {
		return nil, err
	}
	state := backup.stableState(diff, envBytes, res.Meta[0].SHA256, s.Now)
	if err := tr.Record("backup state", state.recordFields()); err != nil {
		return nil, err
	}
	if err := tr.Record("stable signing finished", nil); err != nil {
		return nil, err
	}
	if err := tr.Close(); err != nil {
		return nil, err
	}
	// The stable keyholders who signed sign the journal's end.
	s.Guide.journalClosed()
	s.Guide.say("the stable keyholders sign the end of the transcript (touch each YubiKey when it blinks).")
	if err := signJournal(out, tr, CeremonyStable, diff.Header.Repository, signers); err != nil {
		return nil, err
	}
	// Read everything back, with verify's checks, before the media get
	// their name: refused, they are renamed outDir.rejected-TIME.
	// SHA256SUMS takes the hashes of the files the read-back read whole.
	read := readSums{}
	if err := out.Verify(s.readingBack(readBackStable(s.Root, targets, deleg, s.Now, read))); err != nil {
		return nil, err
	}
	sums, err := sealMedium(out, read)
	if err != nil {
		return nil, err
	}
	showSums(s.Show, s.Guide, sums)
	// Only media that was read back and verified becomes the state the
	// next ceremony starts from.
	stateFile, err := backup.save(state, tr.Digest(), outDir)
	if err != nil {
		return nil, err
	}
	kept = true
	if s.Guide != nil {
		s.Guide.printf("  read back from %s and verified.\n", outDir)
		s.Guide.closing(tr.Digest())
	}
	return &StableResult{Dir: outDir, Diff: diff, StableVersion: res.StableVersion, Layout: res.Layout, Meta: res.Meta, Signers: ids, Transcript: tr.Digest(), Sums: sums, State: state, StateFile: stateFile}, nil
}

// reviewedOrPass returns the diff to sign: in the batch form, the pass
// that `stable diff` kept for the approved digest
// (stableset.OpenReviewed, which checks it against that digest and the
// signed previous ledger, and refuses an edited one); when there is none
// or an input differs, it says why and runs the pass again.
func (s *StableSigning) reviewedOrPass(tr *Transcript, cfg stableset.Config, f *os.File, approve string) (*stableset.Diff, error) {
	if approve != "" && s.Guide == nil {
		d, err := stableset.OpenReviewed(cfg, approve)
		if err == nil {
			dir := stableset.ReviewedDir(s.TempDir, approve)
			if s.Show != nil {
				fmt.Fprintf(s.Show, "reusing the reviewed pass %s (export, policy, decisions and previous ledger unchanged; checked against the approved digest)\n", dir)
			}
			if err := tr.Record("reviewed pass reused", map[string]any{"dir": dir}); err != nil {
				d.Close()
				return nil, err
			}
			return d, nil
		}
		if !errors.Is(err, stableset.ErrPassStale) {
			return nil, err
		}
		if s.Show != nil {
			fmt.Fprintf(s.Show, "not reusing the reviewed pass: %v\nreading the export again\n", err)
		}
		if err := tr.Record("reviewed pass not reused", map[string]any{"reason": err.Error()}); err != nil {
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("reading the export again: %w", err)
		}
		if err := s.checkSpaceFor("", true); err != nil {
			return nil, err
		}
	}
	cfg.Export = s.exportPass(f, f)
	diff, err := stableset.ComputeDiff(cfg)
	s.endProgress()
	return diff, err
}

// PolicyFile is the name, on the stable media, of the exact policy file
// the ceremony applied.
const PolicyFile = "policy.json"

// DecisionsFile is the name, on the stable media, of the decisions the
// ceremony applied, in canonical order.
const DecisionsFile = "decisions.jsonl"

// policy is the policy the ceremony applies.
func (s *StableSigning) policy() *policy.Policy {
	if s.Policy == nil {
		return policy.Default()
	}
	return s.Policy
}

// statement builds the signed diff's payload from a diff.
func (s *StableSigning) statement(d *stableset.Diff) (*signeddiff.Statement, error) {
	tr := d.Export
	pj := s.policy().Bytes()
	st := &signeddiff.Statement{
		Repository:            d.Header.Repository,
		Ceremony:              d.Header.StableVersion - 1,
		PreviousStableVersion: d.Header.PreviousStableVersion,
		StableVersion:         d.Header.StableVersion,
		TrustsUploadTimes:     d.Header.TrustsUploadTimes,
		Export:                signeddiff.Export{Generated: d.Header.ListingTime.UTC(), Count: tr.Count, SHA256: tr.SHA256},
		PolicySHA256:          sha256.Sum256(pj),
		TargetMode:            d.Header.TargetMode,
		Naming:                d.Header.Naming,
	}
	if d.Header.PreviousLedgerSHA256 != "" {
		if _, err := hex.Decode(st.PreviousLedgerSHA256[:], []byte(d.Header.PreviousLedgerSHA256)); err != nil {
			return nil, fmt.Errorf("previous ledger digest: %w", err)
		}
	}
	if _, err := hex.Decode(st.DiffSHA256[:], []byte(d.Digest)); err != nil {
		return nil, fmt.Errorf("diff digest: %w", err)
	}
	st.NewLedgerSHA256 = d.NewLedgerSHA256
	st.Counts = StatementCounts(d.Reasons)
	for _, dc := range d.Decisions {
		dc.Line = 0
		st.Decisions = append(st.Decisions, dc)
	}
	st.Projects.SummarySHA256, st.Projects.Total, st.Projects.Changed = ProjectSummaryDigest(d.Projects)
	return st, nil
}

// StatementCounts maps the diff's files per category and reason to the
// signed diff's counts: held_back by reason (sorted), changed_accepted
// (accepted), changed_refused (kept-old), changed_dropped (dropped).
func StatementCounts(rs []stableset.ReasonCount) signeddiff.Counts {
	var c signeddiff.Counts
	for _, r := range rs {
		switch r.Category {
		case stableset.Added:
			c.Added += r.Count
		case stableset.Removed:
			c.Removed += r.Count
		case stableset.Unchanged:
			c.Unchanged += r.Count
		case stableset.Held:
			c.HeldBack = append(c.HeldBack, signeddiff.HeldBackCount{Reason: r.Reason, Count: r.Count})
		case stableset.Changed:
			switch r.Reason {
			case stableset.ReasonAccepted:
				c.ChangedAccepted += r.Count
			case stableset.ReasonDropped:
				c.ChangedDropped += r.Count
			default:
				c.ChangedRefused += r.Count
			}
		}
	}
	sort.Slice(c.HeldBack, func(i, j int) bool { return c.HeldBack[i].Reason < c.HeldBack[j].Reason })
	return c
}

// ProjectSummaryDigest is the SHA-256 of the per-project summary in its
// canonical form: one line per project, sorted by name, of
// "project added held backdated removed changed accepted dropped
// unchanged" separated by tabs, each line ending in a newline. It also
// returns the number of projects and of projects whose stable files
// change (any added, removed, accepted or dropped).
func ProjectSummaryDigest(ps []stableset.ProjectSummary) (sum [32]byte, total, changed int64) {
	sorted := append([]stableset.ProjectSummary(nil), ps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Project < sorted[j].Project })
	h := sha256.New()
	for _, p := range sorted {
		c := p.Counts
		fmt.Fprintf(h, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Project, c.Added, c.Held, c.Backdated, c.Removed, c.Changed, c.Accepted, c.Dropped, c.Unchanged)
		total++
		if c.Added+c.Removed+c.Accepted+c.Dropped > 0 {
			changed++
		}
	}
	copy(sum[:], h.Sum(nil))
	return sum, total, changed
}

// VerifyStableMedia reads a stable signing's output back and checks it:
// stable is signed by the delegation's threshold, every mid role by the
// key stable delegates to it, every leaf bin by the key its mid delegates
// to it, no key delegated to two roles, the ledger matches what stable
// signed and lists what the leaves list, and the signed diff carries the
// threshold.
func VerifyStableMedia(dir string, deleg *tuf.DelegatedRole, keyring map[string]*keys.Key) error {
	return verifyStableMedia(dir, deleg, keyring, nil, nil)
}

// verifyStableMedia is VerifyStableMedia, with the medium's pages as
// pages read them (nil: read here), calling pages.visit (if pages is
// given) with every leaf bin's file and each of its targets, and filling
// rec (if set) with what it read of the bins.
func verifyStableMedia(dir string, deleg *tuf.DelegatedRole, keyring map[string]*keys.Key, pages *pageSet, rec *binRecord) error {
	md := filepath.Join(dir, "stable", "metadata")
	by := tuf.RoleKeys{Role: stableset.StableRole, KeyIDs: deleg.KeyIDs, Threshold: deleg.Threshold, Keys: keyring}
	st, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by)
	if errors.Is(err, tuf.ErrNoVersion) {
		return fmt.Errorf("no stable metadata: %w: %w", tuf.ErrMissing, err)
	}
	if err != nil {
		return err
	}
	stableFile := filepath.Join(md, fmt.Sprintf("%d.%s.json", n, stableset.StableRole))
	for _, p := range slices.Sorted(maps.Keys(st.Signed.Targets)) {
		if d := tuf.Outside(p, deleg); d != nil {
			return outsideError(stableFile, p, d)
		}
	}
	// Each ledger stable lists is read once, streamed (about 154 bytes a
	// file): its length and SHA-256 against stable's, and what the checks
	// below take of it (ledgerRead). One core reads them, and another
	// parses diff.canonical, while the checks below read the bins on
	// every core; the verdicts are given in the order of a read in
	// sequence: the ledgers' first, before anything the checks below
	// found; diff.canonical's where checkSignedDiff reads it. Nothing
	// returns before both reads have ended.
	ledgers := map[string]*ledgerRead{}
	ledgersDone := make(chan error, 1)
	go func() {
		ledgersDone <- func() error {
			for p, tf := range st.Signed.Targets {
				lr, err := readLedger(filepath.Join(dir, "stable", filepath.FromSlash(p)))
				if err != nil {
					return fmt.Errorf("%s lists %s: %w", stableFile, p, err)
				}
				if lr.length != tf.Length || hex.EncodeToString(lr.sha256[:]) != tf.Hashes["sha256"] {
					return fmt.Errorf("%s does not match what %s signed: %w", p, stableFile, tuf.ErrHash)
				}
				ledgers[p] = lr
			}
			return nil
		}()
	}()
	var (
		ledgersErr  error
		ledgersRead bool
	)
	waitLedgers := func() error {
		if !ledgersRead {
			ledgersErr, ledgersRead = <-ledgersDone, true
		}
		return ledgersErr
	}
	canonDone := make(chan *canonParse, 1)
	go func() { canonDone <- parseCanonicalFile(dir) }()
	var canon *canonParse
	waitCanon := func() *canonParse {
		if canon == nil {
			canon = <-canonDone
		}
		return canon
	}
	defer waitCanon()
	err = verifyStableRest(dir, deleg, keyring, pages, rec, st, stableFile, ledgers, waitLedgers, waitCanon)
	if lerr := waitLedgers(); lerr != nil {
		return lerr
	}
	return err
}

// verifyStableRest is verifyStableMedia beside the ledgers' read (wait
// gives its verdict; ledgers is read only after it) and diff.canonical's
// parse (canon).
func verifyStableRest(dir string, deleg *tuf.DelegatedRole, keyring map[string]*keys.Key, pages *pageSet, rec *binRecord, st *tuf.Metadata[tuf.Targets], stableFile string, ledgers map[string]*ledgerRead, wait func() error, canon func() *canonParse) error {
	md := filepath.Join(dir, "stable", "metadata")
	env, err := os.ReadFile(filepath.Join(dir, "signed-diff.json"))
	if err != nil {
		return err
	}
	e, err := signeddiff.Load(env, "signed-diff.json")
	if err != nil {
		return err
	}
	stmt, err := signeddiff.Verify(e, keyring, deleg.KeyIDs, deleg.Threshold)
	if err != nil {
		return fmt.Errorf("signed-diff.json: %w", err)
	}
	// The ledger must list exactly what the bins list, in the signed
	// diff's target mode and naming: the next ceremony starts from the
	// ledger, clients from the bins. Compared as sums of per-entry hashes
	// (both hashes), so that neither side is held in memory; the pages on
	// the medium are checked against their entries.
	var tc *targetCheck
	var visit func(bin string, t *tuf.BinTarget) error
	if pages != nil {
		tc, visit = pageTargetCheck(stmt, pages), pages.visit
	} else if tc, err = newTargetCheck(dir, stmt); err != nil {
		return err
	}
	// The path roles before the bins (the takedown role), as verify's
	// layout checks have them, and the signed diff's takedowns and lifts
	// against the takedown role's paths.
	if err := tuf.CheckStableLayout(deleg, &st.Signed); err != nil {
		return fmt.Errorf("%s: %w", stableFile, err)
	}
	if err := checkTakedowns(stableFile, &st.Signed, stmt); err != nil {
		return err
	}
	dc, err := checkDelegations(dir, stableFile, &st.Signed, stmt)
	if err != nil {
		return err
	}
	if rec != nil {
		rec.deleg = &dc
	}
	var inBins, inLedger entrySum
	if err := sumBins(md, deleg, &st.Signed, &inBins, tc, visit, rec); err != nil {
		return err
	}
	if err := tc.done(); err != nil {
		return err
	}
	if err := wait(); err != nil {
		return err
	}
	if rec != nil {
		rec.ledgers = ledgers
	}
	for _, lr := range ledgers {
		if err := lr.sum(tc, &inLedger); err != nil {
			return err
		}
	}
	if err := tc.files(); err != nil {
		return err
	}
	if inBins != inLedger {
		return fmt.Errorf("the ledger and the bins list different stable sets%s: %w", differingBin(dir, &st.Signed, tc), tuf.ErrHash)
	}
	canonical, err := checkSignedDiff(dir, stmt, ledgers[fmt.Sprintf("ledger/%d.ledger", stmt.StableVersion)], canon())
	if err != nil {
		return err
	}
	if rec != nil {
		rec.canonical = canonical
	}
	if stmt.StableVersion != st.Signed.Version {
		return fmt.Errorf("signed diff is for stable %d, metadata is %d: %w", stmt.StableVersion, st.Signed.Version, tuf.ErrVersion)
	}
	tf, err := os.Open(filepath.Join(dir, "transcript.jsonl"))
	if err != nil {
		return err
	}
	defer tf.Close()
	_, _, err = VerifyTranscript(tf, "transcript.jsonl")
	return err
}

// binRecord is what verifyStableMedia read of the bins and the ledger,
// so that the audit reads them once: the report entry of every mid and
// leaf file (the keys whose signatures counted, version, expiry), in the
// order read, each file's length and SHA-256 by name (N.role.json), and
// each ledger stable lists, by its target path (ledger/N.ledger),
// diff.canonical's SHA-256, and the developer delegations' check.
type binRecord struct {
	files   []AuditFile
	sums    map[string]fileSum
	ledgers map[string]*ledgerRead
	// canonical is diff.canonical's SHA-256, when checkSignedDiff could
	// take it from the digest it computed.
	canonical *[32]byte
	// deleg is what checkDelegations found (with delegated projects, a
	// walk of the new ledger), for the audit's report of that step.
	deleg *delegationCheck
}

type fileSum struct {
	length int64
	sha256 [32]byte
}

// add records one role's file, signed as the delegation from delegator
// (its file, by) requires.
func (r *binRecord) add(file, role, delegator, by string, version int64, expires tuf.Expiry, threshold int, signers []string, data []byte) {
	if r == nil {
		return
	}
	r.addSum(file, role, delegator, by, version, expires, threshold, signers, fileSum{int64(len(data)), sha256.Sum256(data)})
}

// addSum is add, given the file's length and SHA-256.
func (r *binRecord) addSum(file, role, delegator, by string, version int64, expires tuf.Expiry, threshold int, signers []string, fs fileSum) {
	if r == nil {
		return
	}
	r.files = append(r.files, AuditFile{File: file, Role: role, Delegator: delegator, Version: version,
		Expires: expires.Time().UTC(), Checks: []AuditSignature{{By: by, Threshold: threshold, Signers: signers}}})
	if r.sums == nil {
		r.sums = map[string]fileSum{}
	}
	r.sums[file] = fs
}

// sumBins reads the two levels of bins under stable (version st.Version,
// in md, delegated by deleg): every mid role verified against stable,
// every leaf bin against its mid, no key delegated to two roles, every
// target inside each delegation on its way (tuf.Outside: deleg's paths,
// the mid's and the leaf's prefixes; a path role's targets inside deleg's
// and its own paths); it adds every leaf's targets to sum, checks each
// against tc (the signed diff's target mode and naming), calls visit (if
// set) with each, and records each file in rec (if set).
func sumBins(md string, deleg *tuf.DelegatedRole, st *tuf.Targets, sum *entrySum, tc *targetCheck, visit func(bin string, t *tuf.BinTarget) error, rec *binRecord) error {
	if st.Delegations == nil {
		return nil
	}
	keyRole := map[string]string{}
	unique := func(t *tuf.Targets) error {
		for _, d := range t.Delegations.Roles {
			for _, id := range d.KeyIDs {
				if other, ok := keyRole[id]; ok {
					return fmt.Errorf("key %s is delegated to %s and to %s: %w", id, other, d.Name, tuf.ErrSharedKey)
				}
				keyRole[id] = d.Name
			}
		}
		return nil
	}
	if err := unique(st); err != nil {
		return err
	}
	base := func(role string) string { return fmt.Sprintf("%d.%s.json", st.Version, role) }
	file := func(role string) string { return filepath.Join(md, base(role)) }
	// load reads one of stable's delegated roles, verifies it against the
	// delegation and records it for the audit.
	load := func(r string) (*tuf.Metadata[tuf.Targets], string, error) {
		name := file(r)
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, name, err
		}
		m, err := tuf.Load[tuf.Targets](b, name)
		if err != nil {
			return nil, name, err
		}
		msg, err := m.SignedBytes()
		if err != nil {
			return nil, name, err
		}
		k, err := st.DelegateKeys(r)
		if err != nil {
			return nil, name, fmt.Errorf("%s: %w", name, err)
		}
		signers, err := k.Verify(msg, m.Signatures)
		if err != nil {
			return nil, name, fmt.Errorf("%s: %w", name, err)
		}
		rec.add(base(r), r, stableset.StableRole, base(stableset.StableRole), m.Signed.Version, m.Signed.Expires, k.Threshold, signers, b)
		return m, name, nil
	}
	pathRoles, mids := tuf.SplitStable(st)
	for i := range pathRoles {
		if _, dev := tuf.DeveloperProject(pathRoles[i].Name); dev {
			// The developers' metadata is theirs: not on the medium.
			continue
		}
		m, name, err := load(pathRoles[i].Name)
		if err != nil {
			return err
		}
		if err := tuf.CheckPathRoleFile(&pathRoles[i], &m.Signed); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, p := range slices.Sorted(maps.Keys(m.Signed.Targets)) {
			if d := tuf.Outside(p, deleg, &pathRoles[i]); d != nil {
				return outsideError(name, p, d)
			}
		}
	}
	// The mids in order (a few dozen, small), then their leaves on every
	// core: each leaf is read, parsed and verified against its mid's
	// delegation on its own; what the audit records of them is added in
	// order after, and the first failing leaf in order is the error.
	type leaf struct {
		mid  *tuf.Metadata[tuf.Targets]
		name string // the mid's role
		role string
		// The delegations to the mid (in stable) and to the leaf (in
		// the mid), for tuf.Outside.
		midDeleg, leafDeleg *tuf.DelegatedRole
		// Filled by the worker.
		file    fileSum
		version int64
		expires tuf.Expiry
		thresh  int
		signers []string
		sum     entrySum
	}
	var leaves []leaf
	for mi := range mids {
		r := &mids[mi]
		mid, name, err := load(r.Name)
		if err != nil {
			return err
		}
		if len(mid.Signed.Targets) != 0 || mid.Signed.Delegations == nil {
			return fmt.Errorf("%s: a mid role lists no target and delegates to its leaves: %w", name, tuf.ErrLayout)
		}
		if err := unique(&mid.Signed); err != nil {
			return err
		}
		for li := range mid.Signed.Delegations.Roles {
			lr := &mid.Signed.Delegations.Roles[li]
			leaves = append(leaves, leaf{mid: mid, name: r.Name, role: lr.Name, midDeleg: r, leafDeleg: lr})
		}
	}
	one := func(l *leaf) error {
		name := file(l.role)
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		bin, err := tuf.ParseBin(b, name)
		if err != nil {
			return err
		}
		lk, err := l.mid.Signed.DelegateKeys(l.role)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		ls, err := lk.Verify(bin.Signed, bin.Signatures)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		l.file = fileSum{int64(len(b)), sha256.Sum256(b)}
		l.version, l.expires, l.thresh, l.signers = bin.Version, bin.Expires, lk.Threshold, ls
		for i := range bin.Targets {
			t := &bin.Targets[i]
			// Inside every delegation on the way: a target a bin lists
			// outside its prefixes is one no client looks up there (a
			// file moved to another bin).
			if d := tuf.Outside(t.Path, deleg, l.midDeleg, l.leafDeleg); d != nil {
				return outsideError(name, t.Path, d)
			}
			// visit first: the read-back's message names the page's
			// tar, length and sha256; tc then checks blake2b-256 and
			// the mode.
			if visit != nil {
				if err := visit(name, t); err != nil {
					return err
				}
			}
			if err := tc.target(name, t); err != nil {
				return err
			}
			l.sum.add(t.Path, t.Length, t.SHA256, t.BLAKE2b256)
		}
		return nil
	}
	if err := inOrder(len(leaves), func() func(int) error {
		return func(i int) error { return one(&leaves[i]) }
	}); err != nil {
		return err
	}
	for i := range leaves {
		l := &leaves[i]
		rec.addSum(base(l.role), l.role, l.name, base(l.name), l.version, l.expires, l.thresh, l.signers, l.file)
		sum.plus(&l.sum)
	}
	return nil
}

// outsideError names a target that file lists outside delegation d.
func outsideError(file, target string, d *tuf.DelegatedRole) error {
	scope := fmt.Sprintf("paths %q", d.Paths)
	if len(d.PathHashPrefixes) > 0 {
		sum := sha256.Sum256([]byte(target))
		scope = fmt.Sprintf("path_hash_prefixes %v; the target's path hashes to %x", d.PathHashPrefixes, sum)
	}
	return fmt.Errorf("%s lists %s, outside the delegation to %s (%s): %w", file, target, d.Name, scope, tuf.ErrDelegation)
}

// checkTakedowns holds the signed diff's takedown decisions against
// stable (held in file): every path a take-down decision names is
// delegated to the takedown role, no path a lift names is.
func checkTakedowns(file string, st *tuf.Targets, stmt *signeddiff.Statement) error {
	down := map[string]bool{}
	pathRoles, _ := tuf.SplitStable(st)
	for _, r := range pathRoles {
		if r.Name == tuf.TakedownRole {
			for _, p := range r.Paths {
				down[p] = true
			}
		}
	}
	for _, d := range stmt.Decisions {
		switch {
		case d.Choice == decisions.TakeDown && !down[d.Path]:
			return fmt.Errorf("%s: the signed diff takes down %s, which stable does not delegate to %s: %w", file, d.Path, tuf.TakedownRole, ErrMediumContent)
		case d.Choice == decisions.Lift && down[d.Path]:
			return fmt.Errorf("%s: the signed diff lifts the takedown of %s, which stable still delegates to %s: %w", file, d.Path, tuf.TakedownRole, ErrMediumContent)
		}
	}
	return nil
}

// entrySum is an order-independent digest of a set of target entries: the
// sum, modulo 2^256, of SHA-256(path, length, sha256, blake2b-256) over the
// entries. It guards against our own bugs (both sides come from one run),
// not against an adversary choosing entries.
type entrySum [32]byte

func (s *entrySum) add(path string, length int64, sum, b2 [32]byte) {
	d := entryDigest(path, length, sum, b2)
	s.plus(&d)
}

// entryDigest is one entry's term of an entrySum.
func entryDigest[P string | []byte](path P, length int64, sum, b2 [32]byte) entrySum {
	var buf [512]byte
	b := append(buf[:0], path...)
	b = append(b, 0)
	b = strconv.AppendInt(b, length, 10)
	b = append(b, 0)
	b = append(b, sum[:]...)
	b = append(b, b2[:]...)
	return entrySum(sha256.Sum256(b))
}

// plus adds o to s, modulo 2^256.
func (s *entrySum) plus(o *entrySum) {
	carry := 0
	for i := 31; i >= 0; i-- {
		v := int(s[i]) + int(o[i]) + carry
		s[i], carry = byte(v), v>>8
	}
}

// sumLedger adds what the bins must list of a ledger to sum: every
// stable file (unless the target mode is pages only, their blake2b-256
// the one their path names) and every stable project's two pages, at
// the naming layout's paths.
func sumLedger(file string, tc *targetCheck, add func(path string, length int64, sum, b2 [32]byte)) error {
	_, err := walkLedger(file, func(h *ledger.Header) error { return checkNaming(file, h, tc) }, func(page bool, path []byte, length int64, sum, b2 [32]byte) {
		if page || tc.mode.ListsFiles() {
			add(string(path), length, sum, b2)
		}
	}, &tc.ledgerFiles)
	return err
}

// checkNaming refuses a ledger (file, header h) whose naming is not the
// signed diff's (tc's).
func checkNaming(file string, h *ledger.Header, tc *targetCheck) error {
	if h.Naming != string(tc.naming) {
		return fmt.Errorf("%s names its pages %q, the signed diff %q: %w", file, h.Naming, tc.naming, ErrTargetMode)
	}
	return nil
}

// walkLedger reads the ledger file to its end (its trailer checked):
// once its header is read, header (if set) may refuse it; then add gets
// every stable file's entry (page false; its blake2b-256 the one its
// path names) and every stable project's two pages (page true), at the
// paths its naming layout gives, and *stable counts the stable files. It
// returns the reader, whose FileDigest is the file's. Errors name file.
func walkLedger(file string, header func(*ledger.Header) error, add func(page bool, path []byte, length int64, sum, b2 [32]byte), stable *int64) (*ledger.Reader, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lr, err := ledger.NewReader(f) // it buffers
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	h := lr.Header()
	if header != nil {
		if err := header(&h); err != nil {
			return nil, err
		}
	}
	for {
		e, err := lr.NextRaw()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if e.Stable {
			*stable++
			l, sum := e.StableContent()
			b2, _ := export.PathBLAKE2b(string(e.PathBytes)) // not kept: no allocation
			add(false, e.PathBytes, l, sum, b2)
		}
	}
	naming := simpleindex.Layout(h.Naming)
	for {
		p, err := lr.NextProject()
		if err == io.EOF {
			return lr, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		html, js := naming.PagePaths(p.Project)
		add(true, []byte(html), p.HTMLLength, p.HTMLSHA256, p.HTMLBLAKE2b)
		add(true, []byte(js), p.JSONLength, p.JSONSHA256, p.JSONBLAKE2b)
	}
}

// ledgerRead is what one read of a ledger on a stable medium gave the
// read-back's checks of it (stable's hash, the bins' entries, the signed
// diff's digest and statement): the whole file's length and SHA-256, its
// header, its stable files' count, the sums of its stable files' entries
// and of its projects' pages (entrySum), and the error that refused it
// (header: its header; else its records), which those checks give in
// their turn.
type ledgerRead struct {
	file         string // its path on the medium
	length       int64
	sha256       [32]byte
	header       ledger.Header
	headerErr    error
	stableFiles  int64
	files, pages entrySum
	err          error
}

// readLedger reads the ledger file once. A ledger that does not read to
// its end is hashed again as bytes, for stable's check of it; the error
// is kept for the checks that read its records. Only a file that cannot
// be opened or read is an error here.
func readLedger(file string) (*ledgerRead, error) {
	r := &ledgerRead{file: file}
	headerRead := false
	lr, err := walkLedger(file, func(h *ledger.Header) error {
		r.header, headerRead = *h, true
		return nil
	}, func(page bool, path []byte, length int64, sum, b2 [32]byte) {
		d := entryDigest(path, length, sum, b2)
		if page {
			r.pages.plus(&d)
		} else {
			r.files.plus(&d)
		}
	}, &r.stableFiles)
	if err == nil {
		var ok bool
		if r.length, r.sha256, ok = lr.FileDigest(); ok {
			return r, nil
		}
		err = fmt.Errorf("%s: not read to its end", file) // walkLedger reads to io.EOF
	}
	if !headerRead {
		r.headerErr = err
	}
	r.err = err
	if r.length, r.sha256, err = fileLengthSHA256(file); err != nil {
		return nil, err
	}
	return r, nil
}

// sum adds what the bins must list of the ledger to sum, as sumLedger
// does (tc: the signed diff's naming and target mode), from the read;
// it refuses a ledger that did not read, or named its pages otherwise.
func (r *ledgerRead) sum(tc *targetCheck, sum *entrySum) error {
	if r.headerErr != nil {
		return r.headerErr
	}
	if err := checkNaming(r.file, &r.header, tc); err != nil {
		return err
	}
	if r.err != nil {
		return r.err
	}
	tc.ledgerFiles += r.stableFiles
	if tc.mode.ListsFiles() {
		sum.plus(&r.files)
	}
	sum.plus(&r.pages)
	return nil
}

// differingBin names, for a message, the first leaf bin (in delegation
// order) whose entries differ from those the ledger gives its prefixes
// (" (first in FILE, prefixes [...])"), or a ledger entry no leaf's
// prefixes cover; "" if it cannot tell. It runs only once the two stable
// sets are known to differ: it reads the bins and the ledger again,
// holding one sum per leaf.
func differingBin(dir string, st *tuf.Targets, tc *targetCheck) string {
	md := filepath.Join(dir, "stable", "metadata")
	type leaf struct {
		file            string
		prefixes        []string
		inBin, inLedger entrySum
	}
	var leaves []*leaf
	byPrefix := map[string]*leaf{}
	lengths := map[int]bool{}
	_, mids := tuf.SplitStable(st)
	for _, r := range mids {
		b, err := os.ReadFile(filepath.Join(md, fmt.Sprintf("%d.%s.json", st.Version, r.Name)))
		if err != nil {
			return ""
		}
		mid, err := tuf.Load[tuf.Targets](b, r.Name)
		if err != nil || mid.Signed.Delegations == nil {
			return ""
		}
		for _, lr := range mid.Signed.Delegations.Roles {
			l := &leaf{file: fmt.Sprintf("%d.%s.json", st.Version, lr.Name), prefixes: lr.PathHashPrefixes}
			lb, err := os.ReadFile(filepath.Join(md, l.file))
			if err != nil {
				return ""
			}
			bin, err := tuf.ParseBin(lb, l.file)
			if err != nil {
				return ""
			}
			for _, t := range bin.Targets {
				l.inBin.add(t.Path, t.Length, t.SHA256, t.BLAKE2b256)
			}
			for _, p := range lr.PathHashPrefixes {
				byPrefix[p], lengths[len(p)] = l, true
			}
			leaves = append(leaves, l)
		}
	}
	stray := ""
	again := *tc
	for p := range st.Targets {
		if !strings.HasPrefix(p, "ledger/") {
			continue
		}
		err := sumLedger(filepath.Join(dir, "stable", filepath.FromSlash(p)), &again, func(path string, length int64, sum, b2 [32]byte) {
			h := sha256.Sum256([]byte(path))
			x := hex.EncodeToString(h[:])
			for n := range lengths {
				if l, ok := byPrefix[x[:n]]; ok {
					l.inLedger.add(path, length, sum, b2)
					return
				}
			}
			if stray == "" {
				stray = path
			}
		})
		if err != nil {
			return ""
		}
	}
	if stray != "" {
		return fmt.Sprintf(" (the ledger's %s is in no leaf bin's prefixes)", stray)
	}
	for _, l := range leaves {
		if l.inBin != l.inLedger {
			return fmt.Sprintf(" (first in stable/metadata/%s, prefixes %v: an entry's path, length or hashes differ from the ledger's)", l.file, l.prefixes)
		}
	}
	return ""
}

// CheckSignedDiff checks a verified signed diff's statement against the
// files beside it on the stable media, as docs/signed-diff.md tells an
// auditor to: diff.canonical hashes to diff_sha256, and its header names
// the policy_sha256, the previous ledger and the versions; its decisions
// are the statement's, and so are those of decisions.jsonl; its entries,
// counted by category and reason, give the statement's counts;
// policy.json hashes to policy_sha256; every file diff.canonical adds as
// expedited is one policy.json expedites with that SHA-256 and has its
// expedite decision, and every expedite decision names one; the new
// ledger hashes to new_ledger_sha256 and holds policy.json's bytes.
func CheckSignedDiff(dir string, stmt *signeddiff.Statement) error {
	_, err := checkSignedDiff(dir, stmt, nil, parseCanonicalFile(dir))
	return err
}

// checkSignedDiff is CheckSignedDiff, with the new ledger as the
// read-back read it (lr, nil: read here). It returns diff.canonical's
// SHA-256 when the digest is that (canonFile), else nil.
func checkSignedDiff(dir string, stmt *signeddiff.Statement, lr *ledgerRead, cp *canonParse) (*[32]byte, error) {
	if cp.err != nil {
		return nil, cp.err
	}
	c, canon := cp.c, cp.file
	mismatch := func(what string, got, want any) error {
		return fmt.Errorf("diff.canonical: %s is %v, the signed diff names %v: %w", what, got, want, tuf.ErrHash)
	}
	if c.Digest != hex.EncodeToString(stmt.DiffSHA256[:]) {
		return nil, mismatch("the digest", c.Digest, hex.EncodeToString(stmt.DiffSHA256[:]))
	}
	prev := "-"
	if stmt.PreviousLedgerSHA256 != [32]byte{} {
		prev = hex.EncodeToString(stmt.PreviousLedgerSHA256[:])
	}
	for k, want := range map[string]string{
		"repository": stmt.Repository, "policy-sha256": hex.EncodeToString(stmt.PolicySHA256[:]), "previous-ledger-sha256": prev,
		"previous-stable-version": fmt.Sprint(stmt.PreviousStableVersion), "stable-version": fmt.Sprint(stmt.StableVersion),
		"listing-time": stmt.Export.Generated.UTC().Format(time.RFC3339),
		"target-mode":  stmt.TargetMode, "naming": stmt.Naming,
	} {
		if c.Header[k] != want {
			return nil, mismatch(k, c.Header[k], want)
		}
	}
	if !slices.Equal(c.Decisions, stmt.Decisions) {
		return nil, mismatch("the decisions", c.Decisions, stmt.Decisions)
	}
	if got := StatementCounts(c.Reasons); !countsEqual(got, stmt.Counts) {
		return nil, mismatch("the counts", got, stmt.Counts)
	}
	df, err := os.ReadFile(filepath.Join(dir, DecisionsFile))
	if err != nil {
		return nil, err
	}
	set, err := decisions.Parse(df, DecisionsFile)
	if err != nil {
		return nil, err
	}
	var fileDecisions []decisions.Decision
	for _, d := range set.All() {
		d.Line = 0
		fileDecisions = append(fileDecisions, d)
	}
	if !slices.Equal(fileDecisions, stmt.Decisions) {
		return nil, fmt.Errorf("%s holds other decisions than the signed diff: %w", DecisionsFile, tuf.ErrHash)
	}
	pol, err := os.ReadFile(filepath.Join(dir, PolicyFile))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(pol); sum != stmt.PolicySHA256 {
		return nil, fmt.Errorf("%s has digest %x, the signed diff names %x: %w", PolicyFile, sum, stmt.PolicySHA256, tuf.ErrHash)
	}
	p, err := policy.Parse(pol, PolicyFile)
	if err != nil {
		return nil, err
	}
	if string(p.TargetMode) != stmt.TargetMode || string(p.Naming) != stmt.Naming {
		return nil, fmt.Errorf("%s has target_mode %q and naming %q, the signed diff names %q and %q: %w", PolicyFile, p.TargetMode, p.Naming, stmt.TargetMode, stmt.Naming, ErrTargetMode)
	}
	if err := checkExpedited(c, p, stmt); err != nil {
		return nil, err
	}
	lp := filepath.Join(dir, "stable", "ledger", fmt.Sprintf("%d.ledger", stmt.StableVersion))
	if lr == nil || lr.file != lp || lr.headerErr != nil {
		// Not read by the read-back (or its header did not read): its
		// bytes hashed and its header read here.
		lf, err := os.Open(lp)
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		lh := sha256.New()
		if _, err := io.Copy(lh, lf); err != nil {
			return nil, err
		}
		lr = &ledgerRead{file: lp, sha256: [32]byte(lh.Sum(nil))}
		if lr.sha256 == stmt.NewLedgerSHA256 {
			if _, err := lf.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			r, err := ledger.NewReader(lf)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", lp, err)
			}
			lr.header = r.Header()
		}
	}
	if lr.sha256 != stmt.NewLedgerSHA256 {
		return nil, fmt.Errorf("%s has digest %x, the signed diff names %x: %w", lp, lr.sha256, stmt.NewLedgerSHA256, tuf.ErrHash)
	}
	// The next ceremony reviews policy changes against the policy the
	// ledger holds: it must be policy.json.
	if !bytes.Equal(lr.header.Policy, pol) {
		return nil, fmt.Errorf("%s holds another policy than %s: %w", lp, PolicyFile, tuf.ErrHash)
	}
	if sum, ok := canon.sum(c.Digest); ok {
		return &sum, nil
	}
	return nil, nil
}

// canonParse is diff.canonical parsed (parseCanonicalFile), or the error
// that opening or parsing it gave.
type canonParse struct {
	c    *stableset.Canonical
	file *canonFile
	err  error
}

// parseCanonicalFile parses dir's diff.canonical (checkSignedDiff checks
// what it holds).
func parseCanonicalFile(dir string) *canonParse {
	f, err := os.Open(filepath.Join(dir, "diff.canonical"))
	if err != nil {
		return &canonParse{err: err}
	}
	defer f.Close()
	canon := &canonFile{r: f}
	c, err := stableset.ParseCanonical(canon)
	if err != nil {
		return &canonParse{err: fmt.Errorf("diff.canonical: %w", err)}
	}
	return &canonParse{c: c, file: canon}
}

// canonFile reads diff.canonical for ParseCanonical, whose digest hashes
// its lines, each ended by a newline: that is the SHA-256 of the file's
// bytes when the file holds no carriage return (which a line's end
// would drop) and ends with a newline, which canonFile watches as it
// reads, so that the file is not hashed a second time for SHA256SUMS.
type canonFile struct {
	r      io.Reader
	cr     bool // a carriage return was read
	last   byte
	n      int64
	theEnd bool // r returned io.EOF
}

func (c *canonFile) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.cr = c.cr || bytes.IndexByte(p[:n], '\r') >= 0
		c.last, c.n = p[n-1], c.n+int64(n)
	}
	c.theEnd = c.theEnd || err == io.EOF
	return n, err
}

// sum returns the file's SHA-256 given ParseCanonical's digest (hex), if
// the digest is that.
func (c *canonFile) sum(digest string) ([32]byte, bool) {
	var sum [32]byte
	if !c.theEnd || c.cr || c.n == 0 || c.last != '\n' {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(digest)); err != nil || len(digest) != 64 {
		return sum, false
	}
	return sum, true
}

// checkExpedited holds the expedited files of a canonical diff against
// the policy and the signed decisions: each was named by the policy's
// expedite with the SHA-256 added, and has its expedite decision; each
// expedite decision names one of them.
func checkExpedited(c *stableset.Canonical, p *policy.Policy, stmt *signeddiff.Statement) error {
	decided := map[string]bool{}
	for _, d := range stmt.Decisions {
		if d.Choice == decisions.Expedite {
			decided[d.Path] = true
		}
	}
	for _, e := range c.Expedited {
		x, ok := p.ExpeditedFile(e.Path)
		if !ok || hex.EncodeToString(x.SHA256[:]) != e.SHA256 {
			return fmt.Errorf("diff.canonical: %s is added as expedited with sha256 %s, which %s does not expedite: %w", e.Path, e.SHA256, PolicyFile, stableset.ErrExpedite)
		}
		if !decided[e.Path] {
			return fmt.Errorf("diff.canonical: %s is added as expedited without an expedite decision: %w", e.Path, stableset.ErrExpedite)
		}
		delete(decided, e.Path)
	}
	if left := slices.Sorted(maps.Keys(decided)); len(left) > 0 {
		return fmt.Errorf("the signed diff decides to expedite %s, which diff.canonical does not add as expedited: %w", left[0], stableset.ErrExpedite)
	}
	return nil
}

func countsEqual(a, b signeddiff.Counts) bool {
	return a.Added == b.Added && a.Removed == b.Removed && a.Unchanged == b.Unchanged && a.ChangedAccepted == b.ChangedAccepted &&
		a.ChangedRefused == b.ChangedRefused && a.ChangedDropped == b.ChangedDropped && slices.Equal(a.HeldBack, b.HeldBack)
}
