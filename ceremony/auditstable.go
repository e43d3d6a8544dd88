package ceremony

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
)

// The checks of stable media: the stable metadata and its bins against
// the targets the trusted root chain gives, the media's read-back
// (VerifyStableMedia), expiries, the signed diff against the ledger, and
// the transcript against the signed diff.

func (a *auditor) stable() error {
	dir := a.o.Dir
	var ts *targetsSource
	if err := a.input("targets", func() (string, error) {
		src := a.o.Repository
		if src == "" && a.o.Previous != "" {
			if m, err := DetectMedium(a.o.Previous); err == nil && m != MediumStable {
				src = a.o.Previous
			}
		}
		if src == "" {
			return "", fmt.Errorf("%s: pass --repository with bootstrap media or a repository (or --previous with one): %w", dir, ErrNoTargets)
		}
		var err error
		if ts, err = loadTargetsSource(a.rep.trusted, src); err != nil {
			return "", err
		}
		return fmt.Sprintf("from %s: root version %d, targets version %d delegating stable to %d keys, threshold %d",
			src, ts.root.Signed.Version, ts.targets.Signed.Version, len(ts.deleg.KeyIDs), ts.deleg.Threshold), nil
	}); err != nil {
		return err
	}
	return a.stableMedium(ts)
}

// stableMedium runs the checks of stable media against ts: verify's, and
// a stable signing's read-back (readBackStable), the same checks.
func (a *auditor) stableMedium(ts *targetsSource) error {
	dir := a.o.Dir
	a.rep.targets = ts
	keyring := ts.targets.Signed.Delegations.Keys
	var listing *stableListing
	if err := a.check("medium files", func() (string, error) {
		var err error
		if listing, err = listStableMedium(dir); err != nil {
			return "", err
		}
		return fmt.Sprintf("only files a stable signing writes: %d metadata files, %d page archives", len(listing.meta), len(listing.tars)), nil
	}); err != nil {
		return err
	}
	// The bins are read once, here: the expiry and the snapshot
	// fragment's checks take what this read found.
	bins := &binRecord{}
	if err := a.check("stable media", func() (string, error) {
		pages, err := readPages(dir, listing.tars, a.read != nil)
		if err != nil {
			return "", err
		}
		if err := verifyStableMedia(dir, ts.deleg, keyring, pages, bins); err != nil {
			return "", err
		}
		if err := pages.unlisted(dir); err != nil {
			return "", err
		}
		changed, err := pages.againstDiff(dir)
		if err != nil {
			return "", err
		}
		for i, sum := range pages.tarSums {
			a.read.add("stable/pages/"+pages.tars[i], sum)
		}
		for name, lr := range bins.ledgers {
			a.read.add("stable/"+name, lr.sha256)
		}
		if bins.canonical != nil {
			a.read.add("diff.canonical", *bins.canonical)
		}
		return fmt.Sprintf("stable signed by its threshold, every mid role and leaf bin by the key delegated to it alone, the listed files, the ledger against the bins, the %d index pages in stable/pages against the bins and the %d page entries of the diff, the signed diff's signatures, diff.canonical, policy.json and the transcript read back", len(pages.pages), changed), nil
	}); err != nil {
		return err
	}
	md := metadataDir(MediumStable, dir)
	by := tuf.RoleKeys{Role: stableset.StableRole, KeyIDs: ts.deleg.KeyIDs, Threshold: ts.deleg.Threshold, Keys: keyring}
	var st *tuf.Metadata[tuf.Targets]
	if err := a.check("expiry", func() (string, error) {
		var n int64
		var err error
		if st, n, err = tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by); err != nil {
			return "", err
		}
		files, err := stableFiles(st, by, fmt.Sprintf("%d.targets.json", ts.targets.Signed.Version), bins)
		a.rep.Files = append(a.rep.Files, files...)
		if err != nil {
			return "", err
		}
		for _, f := range files {
			if err := notExpired(f.File, tuf.NewExpiry(f.Expires), a.o.At); err != nil {
				return "", err
			}
		}
		a.rep.Versions[stableset.StableRole] = n
		return fmt.Sprintf("stable version %d and its %d delegated roles not expired", n, len(files)-1), nil
	}); err != nil {
		return err
	}
	var roles int
	if err := a.check("snapshot fragment", func() (string, error) {
		if err := checkLedgers(st, listing.ledgers); err != nil {
			return "", err
		}
		n, err := checkFragment(dir, st, listing.meta, bins.sums)
		roles = n
		if err != nil {
			return "", err
		}
		for f, s := range bins.sums {
			a.read.add("stable/metadata/"+f, s.sha256)
		}
		return fmt.Sprintf("%s lists the %d metadata files written, each with its version, length and sha256", stableset.FragmentFile, n), nil
	}); err != nil {
		return err
	}
	var stmt *signeddiff.Statement
	if err := a.check("signed diff", func() (string, error) {
		var err error
		stmt, err = a.signedDiff(dir, ts)
		if err != nil {
			return "", err
		}
		if err := diffMatchesLedger(dir, st, stmt, bins.ledgers); err != nil {
			return "", err
		}
		return fmt.Sprintf("signed by %d stable keys (threshold %d); repository, export time, stable version and stable file count match the ledger", len(a.rep.SignedDiff.SignedBy), ts.deleg.Threshold), nil
	}); err != nil {
		return err
	}
	if err := a.check("developer delegations", func() (string, error) {
		// verifyStableMedia checked them ("stable media", above), from
		// the same stable file and signed diff: not again (with
		// delegated projects it walks the whole new ledger).
		c := bins.deleg
		if c == nil {
			file := filepath.Join(md, fmt.Sprintf("%d.%s.json", st.Signed.Version, stableset.StableRole))
			dc, err := checkDelegations(dir, file, &st.Signed, stmt)
			if err != nil {
				return "", err
			}
			c = &dc
		}
		if c.projects == 0 {
			return fmt.Sprintf("stable delegates no project to its developers, and %s delegates none", PolicyFile), nil
		}
		s := fmt.Sprintf("%d projects delegated as %s gives them: every developer key's proof of possession for %s and stable v%d, the keys and thresholds, terminating, the patterns derived from each name and its index pages and the %d exact paths of legacy names, held against the %d files of the new ledger: none matches another project's file", c.projects, PolicyFile, stmt.Repository, stmt.StableVersion, c.exactPaths, c.files)
		if a.o.Export == "" {
			return s + "; not checked without --export: that the ledger lists the export the ceremony saw (verify --export recomputes it)", nil
		}
		return s + "; the ledger against the export: see \"signed diff recomputed\"", nil
	}); err != nil {
		return err
	}
	if a.o.Export != "" {
		// An input step: an export or previous medium that cannot be
		// read means the audit could not be carried out.
		if err := a.input("signed diff recomputed", func() (string, error) { return a.recompute(dir, stmt, st) }); err != nil {
			return err
		}
	}
	if err := a.check("transcript", func() (string, error) {
		es, err := a.transcript(filepath.Join(dir, "transcript.jsonl"))
		if err != nil {
			return "", err
		}
		if err := checkStableTranscript(es, stmt); err != nil {
			return "", err
		}
		signers, err := verifiedBy(by, st.SignedBytes, st.Signatures)
		if err != nil {
			return "", err
		}
		if err := checkStableTranscriptValues(dir, es, stmt, st, roles, signers, a.read); err != nil {
			return "", err
		}
		if a.o.Export != "" {
			if err := exportRecorded(a.o.Export, es); err != nil {
				return "", err
			}
		}
		if _, err := checkJournalEnvelope(dir, CeremonyStable, by); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d entries, hash chain intact, from %q to %q, naming the signed diff's digest, stable version, counts, decisions, layout and stable's signers; %s signed by the stable threshold (%d)", len(es), es[0].Step, es[len(es)-1].Step, JournalEnvelopeFile, by.Threshold), nil
	}); err != nil {
		return err
	}
	s, err := readState(MediumStable, dir, a.rep.trusted, ts)
	if err != nil {
		return a.check("versions", func() (string, error) { return "", err })
	}
	a.rep.state = s
	return nil
}

// stableFiles lists stable's file and those of its mid roles and leaf
// bins, each with the keys whose signatures counted: stable's checked
// here against by, the others as sumBins read them (bins).
func stableFiles(st *tuf.Metadata[tuf.Targets], by tuf.RoleKeys, delegator string, bins *binRecord) ([]AuditFile, error) {
	v := st.Signed.Version
	signers, err := verifiedBy(by, st.SignedBytes, st.Signatures)
	if err != nil {
		return nil, err
	}
	out := []AuditFile{{File: fmt.Sprintf("%d.%s.json", v, stableset.StableRole), Role: stableset.StableRole, Delegator: tuf.RoleTargets, Version: v,
		Expires: st.Signed.Expires.Time().UTC(), Checks: []AuditSignature{{By: delegator, Threshold: by.Threshold, Signers: signers}}}}
	return append(out, bins.files...), nil
}

// signedDiff verifies signed-diff.json against the stable delegation and
// records what it states and which stable keys signed it.
func (a *auditor) signedDiff(dir string, ts *targetsSource) (*signeddiff.Statement, error) {
	b, err := os.ReadFile(filepath.Join(dir, "signed-diff.json"))
	if err != nil {
		return nil, err
	}
	env, err := signeddiff.Load(b, "signed-diff.json")
	if err != nil {
		return nil, err
	}
	keyring := ts.targets.Signed.Delegations.Keys
	stmt, err := signeddiff.Verify(env, keyring, ts.deleg.KeyIDs, ts.deleg.Threshold)
	if err != nil {
		return nil, fmt.Errorf("signed-diff.json: %w", err)
	}
	var signers []string
	for _, id := range ts.deleg.KeyIDs {
		if _, err := signeddiff.Verify(env, keyring, []string{id}, 1); err == nil {
			signers = append(signers, id)
		}
	}
	sd := &AuditSignedDiff{
		Repository: stmt.Repository, Ceremony: stmt.Ceremony,
		PreviousStableVersion: stmt.PreviousStableVersion, StableVersion: stmt.StableVersion,
		DiffSHA256: hex.EncodeToString(stmt.DiffSHA256[:]), PolicySHA256: hex.EncodeToString(stmt.PolicySHA256[:]),
		StableFiles: stmt.Counts.Added + stmt.Counts.Unchanged + stmt.Counts.ChangedAccepted + stmt.Counts.ChangedRefused,
		Projects:    stmt.Projects.Total, SignedBy: signers,
	}
	if stmt.PreviousLedgerSHA256 != ([32]byte{}) {
		sd.PreviousLedgerSHA256 = hex.EncodeToString(stmt.PreviousLedgerSHA256[:])
	}
	sd.decisions = stmt.Decisions
	for _, d := range stmt.Decisions {
		switch d.Choice {
		case decisions.TakeDown:
			sd.TakenDown = append(sd.TakenDown, d.Path)
		case decisions.Lift:
			sd.Lifted = append(sd.Lifted, d.Path)
		}
	}
	a.rep.SignedDiff = sd
	return stmt, nil
}

// openMediumLedger opens the ledger name (ledger/<version>.ledger) under a
// stable medium's stable/ directory, its header read; the caller closes f.
func openMediumLedger(dir, name string) (f *os.File, lr *ledger.Reader, err error) {
	f, err = os.Open(filepath.Join(dir, "stable", filepath.FromSlash(name)))
	if err != nil {
		return nil, nil, err
	}
	if lr, err = ledger.NewReader(bufio.NewReaderSize(f, 1<<20)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, lr, nil
}

// diffMatchesLedger checks the signed diff's statement against the
// ledger stable binds: the same repository, export time and stable
// version, as many stable files as the diff's counts leave (added,
// unchanged and changed). read holds the ledgers the read-back read
// (verifyStableMedia), by target path; one it does not hold is read
// here.
func diffMatchesLedger(dir string, st *tuf.Metadata[tuf.Targets], stmt *signeddiff.Statement, read map[string]*ledgerRead) error {
	var name string
	for p := range st.Signed.Targets {
		if strings.HasPrefix(p, "ledger/") {
			name = p
		}
	}
	if name == "" {
		return fmt.Errorf("stable version %d binds no ledger: %w", st.Signed.Version, ErrMediumContent)
	}
	// Read to the end (the ledger's trailer is checked there), once: by
	// the read-back, or here. (Its projects are those with stable files;
	// the statement's projects.total counts every project of the diff,
	// held ones included, so the two are not compared.)
	lr, ok := read[name]
	if !ok {
		var err error
		if lr, err = readLedger(filepath.Join(dir, "stable", filepath.FromSlash(name))); err != nil {
			return err
		}
	}
	if lr.err != nil {
		return lr.err
	}
	h, files := lr.header, lr.stableFiles
	want := stmt.Counts.Added + stmt.Counts.Unchanged + stmt.Counts.ChangedAccepted + stmt.Counts.ChangedRefused
	for _, c := range []struct{ field, diff, ledger string }{
		{"repository", stmt.Repository, h.Repository},
		{"export.generated", stmt.Export.Generated.UTC().Format("2006-01-02T15:04:05Z"), h.ListingTime.UTC().Format("2006-01-02T15:04:05Z")},
		{"stable_version", fmt.Sprint(stmt.StableVersion), fmt.Sprint(h.StableVersion)},
		{"stable files (added + unchanged + changed)", fmt.Sprint(want), fmt.Sprint(files)},
	} {
		if c.diff != c.ledger {
			return fmt.Errorf("signed-diff.json says %s %s, %s has %s: %w", c.field, c.diff, name, c.ledger, ErrMediumContent)
		}
	}
	return nil
}

// checkStableTranscript checks that a stable signing's transcript runs
// from its start to its end and names the signed diff's digest and
// stable version.
func checkStableTranscript(es []TranscriptEntry, stmt *signeddiff.Statement) error {
	if es[0].Step != "stable signing started" {
		return fmt.Errorf("transcript.jsonl:1: step %q, want \"stable signing started\": %w", es[0].Step, ErrTranscript)
	}
	if last := es[len(es)-1]; last.Step != "stable signing finished" {
		return fmt.Errorf("transcript.jsonl:%d: the last step is %q, want \"stable signing finished\" (the transcript is cut): %w", len(es), last.Step, ErrTranscript)
	}
	digest := hex.EncodeToString(stmt.DiffSHA256[:])
	for _, e := range es {
		if e.Step != "diff approved and stable signed" {
			continue
		}
		got, _ := e.Detail["diff_digest"].(string)
		v, _ := e.Detail["stable_version"].(float64)
		if got != digest || int64(v) != stmt.StableVersion {
			return fmt.Errorf("transcript.jsonl:%d: approved diff %s for stable %v, the signed diff names %s for stable %d: %w", e.Seq, got, v, digest, stmt.StableVersion, ErrTranscript)
		}
		return nil
	}
	return fmt.Errorf("transcript.jsonl records no approval of the diff: %w", ErrTranscript)
}

// exportRecorded checks that the export file the auditor names is the
// one the transcript's "stable inputs" recorded (export_sha256, the
// SHA-256 of the file's bytes; the signed diff names its trailer's
// digest, which the recompute checked).
func exportRecorded(file string, es []TranscriptEntry) error {
	sum, err := fileSHA256(file)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.Step != "stable inputs" {
			continue
		}
		if got, _ := e.Detail["export_sha256"].(string); got != hex.EncodeToString(sum[:]) {
			return fmt.Errorf("transcript.jsonl:%d: %q records export_sha256 %q, %s has SHA-256 %x: %w", e.Seq, e.Step, got, file, sum, ErrTranscript)
		}
		return nil
	}
	return fmt.Errorf("transcript.jsonl records no \"stable inputs\": %w", ErrTranscript)
}
