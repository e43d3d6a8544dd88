package ceremony

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
)

// The recompute of a stable medium's signed diff (verify --export with
// --previous; docs/signed-diff.md, "Recomputing a signed diff"): the diff
// pass runs again, with the production pipeline, from the export the
// signed diff names, the previous medium's ledger and the medium's
// policy.json and decisions.jsonl, and what it gives must be what was
// signed.

// ErrRecompute means the signed diff is not what its inputs give: the
// export is another than the one it names, or the pass recomputed from
// the export, the previous ledger, the policy and the decisions gives
// another canonical diff, other counts or another ledger.
var ErrRecompute = errors.New("the signed diff is not what its inputs give")

// ErrNeedPreviousExport means --export was given for a stable medium
// without --previous: the recompute needs the previous ledger.
var ErrNeedPreviousExport = errors.New("a stable medium's signed diff is recomputed from the export and the previous medium's ledger: name the previous medium with --previous")

// exportTrailerSum is the SHA-256 of every line of the export file but
// the last (the trailer), as the export's trailer states it.
func exportTrailerSum(file string) (sum [32]byte, err error) {
	f, err := os.Open(file)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	h := sha256.New()
	var prev []byte
	lines := int64(0)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: keep reading it.
			rest := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				rest = append(rest, line...)
			}
			line = rest
		}
		if len(line) > 0 {
			if lines > 0 {
				h.Write(prev)
			}
			prev = append(prev[:0], line...)
			lines++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("%s: %w", file, err)
		}
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// recompute runs the diff pass again from the export a.o.Export, the
// previous medium's ledger and the medium's policy and decisions, and
// holds its result against the signed diff stmt and the medium's
// diff.canonical: the export's digest first, then the canonical form line
// by line (naming the first differing entry), the counts by category and
// reason, the projects and the new ledger's digest.
func (a *auditor) recompute(dir string, stmt *signeddiff.Statement, st *tuf.Metadata[tuf.Targets]) (string, error) {
	if a.o.Previous == "" {
		return "", ErrNeedPreviousExport
	}
	sum, err := exportTrailerSum(a.o.Export)
	if err != nil {
		return "", err
	}
	if sum != stmt.Export.SHA256 {
		return "", fmt.Errorf("%s has digest %x (its lines before the trailer), the signed diff names export %x: another export than the one the diff was computed from: %w", a.o.Export, sum, stmt.Export.SHA256, ErrRecompute)
	}
	m, err := DetectMedium(a.o.Previous)
	if err != nil {
		return "", fmt.Errorf("previous medium %s: %w", a.o.Previous, err)
	}
	ts := a.rep.targets
	published, ledgerFile, err := previousPublished(m, a.o.Previous, ts)
	if err != nil {
		return "", err
	}
	pol, err := os.ReadFile(filepath.Join(dir, PolicyFile))
	if err != nil {
		return "", err
	}
	p, err := policy.Parse(pol, PolicyFile)
	if err != nil {
		return "", err
	}
	ds, err := decisions.Load(filepath.Join(dir, DecisionsFile))
	if err != nil {
		return "", err
	}
	f, err := os.Open(a.o.Export)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The ceremony's clock is not on the medium: the pass evaluates the
	// policy at the export's generation time, which is the ceremony's
	// whenever its clock was not behind the export's.
	d, err := stableset.ComputeDiff(stableset.Config{
		Export: f, ExportName: a.o.Export, Published: published, PublishedLedger: ledgerFile,
		StableDelegation: ts.deleg, StableKeys: ts.targets.Signed.Delegations.Keys,
		Now: stmt.Export.Generated, ClockSkew: stableset.DefaultClockSkew, Policy: p, Decisions: ds,
	})
	if err != nil {
		return "", fmt.Errorf("recomputing the diff from %s and %s: %w", a.o.Export, a.o.Previous, err)
	}
	defer d.Close()
	if err := sameCanonical(d, filepath.Join(dir, "diff.canonical"), a.o.Export); err != nil {
		return "", err
	}
	if d.Digest != hex.EncodeToString(stmt.DiffSHA256[:]) {
		return "", fmt.Errorf("the diff recomputed from %s has digest %s, the signed diff names %x: %w", a.o.Export, d.Digest, stmt.DiffSHA256, ErrRecompute)
	}
	if err := sameCounts(StatementCounts(d.Reasons), stmt.Counts); err != nil {
		return "", err
	}
	psum, total, changed := ProjectSummaryDigest(d.Projects)
	if psum != stmt.Projects.SummarySHA256 || total != stmt.Projects.Total || changed != stmt.Projects.Changed {
		return "", fmt.Errorf("the diff recomputed from %s gives %d projects (%d changed, summary %x), the signed diff names %d (%d changed, summary %x): %w",
			a.o.Export, total, changed, psum, stmt.Projects.Total, stmt.Projects.Changed, stmt.Projects.SummarySHA256, ErrRecompute)
	}
	if d.Export.Count != stmt.Export.Count {
		return "", fmt.Errorf("%s holds %d records, the signed diff names %d: %w", a.o.Export, d.Export.Count, stmt.Export.Count, ErrRecompute)
	}
	if d.NewLedgerSHA256 != stmt.NewLedgerSHA256 {
		return "", fmt.Errorf("the ledger recomputed from %s has digest %x, the signed diff names %x: %w", a.o.Export, d.NewLedgerSHA256, stmt.NewLedgerSHA256, ErrRecompute)
	}
	// The pass refuses a pattern that matches another project's file of
	// the export; the delegated paths must be the ones it derives.
	if err := sameDelegations(fmt.Sprintf("stable version %d", st.Signed.Version), &st.Signed, d, a.o.Export); err != nil {
		return "", err
	}
	if err := sameTakedowns(d.Takedowns, st, a.o.Previous); err != nil {
		return "", err
	}
	a.rep.SignedDiff.Recomputed = true
	return fmt.Sprintf("recomputed from %s (%d records, digest %x), the previous medium %s's ledger, %s and %s: the same canonical diff (digest %s), counts, %d projects, new ledger (digest %x), %d taken-down paths and %d developer delegations (their patterns match only their projects' files)",
		a.o.Export, d.Export.Count, sum, a.o.Previous, PolicyFile, DecisionsFile, d.Digest, total, d.NewLedgerSHA256, len(d.Takedowns), len(d.Delegations)), nil
}

// ErrBareMetadata means a repository's metadata directory was named where
// the repository is needed: the recompute reads the previous ledger,
// which a repository publishes as a target beside metadata/.
var ErrBareMetadata = errors.New("a repository's metadata directory holds no ledger: name the repository's top directory (holding metadata/ and targets/)")

// previousPublished is where the previous medium prev (of kind m) holds
// what a stable signing starts from, as stableset.Config wants it: the
// directory holding metadata/ and, when the ledger is not at
// ledger/<N>.ledger beside it, the ledger's file (a repository publishes
// it as the target ledger/<N>.ledger: under targets/, with or without its
// consistent-snapshot prefix).
func previousPublished(m Medium, prev string, ts *targetsSource) (dir, ledgerFile string, err error) {
	md := metadataDir(m, prev)
	if m != MediumRepository {
		return filepath.Dir(md), "", nil
	}
	if md == prev {
		return "", "", fmt.Errorf("previous medium %s: %w", prev, ErrBareMetadata)
	}
	by := tuf.RoleKeys{Role: stableset.StableRole, KeyIDs: ts.deleg.KeyIDs, Threshold: ts.deleg.Threshold, Keys: ts.targets.Signed.Delegations.Keys}
	st, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by)
	if err != nil {
		return "", "", fmt.Errorf("previous medium %s: %w", prev, err)
	}
	lpath, _, tf, ok, err := stableset.LedgerTarget(st)
	if err != nil {
		return "", "", fmt.Errorf("previous medium %s: %w", prev, err)
	}
	if !ok {
		return prev, "", nil // a bootstrap's empty stable: no ledger
	}
	for _, c := range []string{
		filepath.Join(prev, filepath.FromSlash(lpath)),
		filepath.Join(prev, "targets", "ledger", tf.Hashes["sha256"]+"."+path.Base(lpath)),
		filepath.Join(prev, "targets", filepath.FromSlash(lpath)),
	} {
		if _, err := os.Stat(c); err == nil {
			return prev, c, nil
		}
	}
	return "", "", fmt.Errorf("previous medium %s: stable version %d lists %s, published neither as %s nor under targets/: %w", prev, n, lpath, lpath, &fs.PathError{Op: "open", Path: filepath.Join(prev, "targets", "ledger"), Err: fs.ErrNotExist})
}

// sameTakedowns checks the paths the medium's stable delegates to the
// takedown role against those the recomputed diff gives (the previous
// stable's, plus the diff's take-downs, less its lifts), naming the first
// path that differs.
func sameTakedowns(want []string, st *tuf.Metadata[tuf.Targets], prev string) error {
	got := slices.Sorted(slices.Values(stableset.TakedownPaths(&st.Signed)))
	want = slices.Sorted(slices.Values(want))
	if slices.Equal(got, want) {
		return nil
	}
	for _, p := range got {
		if !slices.Contains(want, p) {
			return fmt.Errorf("stable version %d delegates %s to %s, which the diff recomputed from the previous medium %s and the decisions does not take down: %w", st.Signed.Version, p, tuf.TakedownRole, prev, ErrRecompute)
		}
	}
	for _, p := range want {
		if !slices.Contains(got, p) {
			return fmt.Errorf("stable version %d does not delegate %s to %s, which the diff recomputed from the previous medium %s and the decisions takes down: %w", st.Signed.Version, p, tuf.TakedownRole, prev, ErrRecompute)
		}
	}
	return fmt.Errorf("stable version %d delegates %d paths to %s, the recomputed diff %d: %w", st.Signed.Version, len(got), tuf.TakedownRole, len(want), ErrRecompute)
}

// sameCanonical writes d's canonical form and compares it, line by line,
// with the medium's file: the first line that differs is named with both
// versions (a line of an entry names its path).
func sameCanonical(d *stableset.Diff, file, export string) error {
	mf, err := os.Open(file)
	if err != nil {
		return err
	}
	defer mf.Close()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() { pw.CloseWithError(d.WriteCanonical(pw)); close(done) }()
	defer func() { pr.Close(); <-done }()
	got, want := bufio.NewReaderSize(mf, 1<<16), bufio.NewReaderSize(pr, 1<<16)
	for n := 1; ; n++ {
		g, gerr := got.ReadBytes('\n')
		w, werr := want.ReadBytes('\n')
		if werr != nil && werr != io.EOF {
			return fmt.Errorf("recomputing the diff from %s: %w", export, werr)
		}
		if gerr != nil && gerr != io.EOF {
			return fmt.Errorf("%s: %w", file, gerr)
		}
		if !bytes.Equal(g, w) {
			return fmt.Errorf("%s:%d: the medium has %q, the diff recomputed from %s has %q: %w", filepath.Base(file), n, bytes.TrimSuffix(g, []byte("\n")), export, bytes.TrimSuffix(w, []byte("\n")), ErrRecompute)
		}
		if gerr == io.EOF && werr == io.EOF {
			return nil
		}
	}
}

// sameCounts names the first count by category or held-back reason where
// the recomputed counts differ from the signed ones.
func sameCounts(got, want signeddiff.Counts) error {
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"added", got.Added, want.Added}, {"removed", got.Removed, want.Removed}, {"unchanged", got.Unchanged, want.Unchanged},
		{"changed_accepted", got.ChangedAccepted, want.ChangedAccepted}, {"changed_refused", got.ChangedRefused, want.ChangedRefused},
		{"changed_dropped", got.ChangedDropped, want.ChangedDropped},
	} {
		if c.got != c.want {
			return fmt.Errorf("counts.%s: recomputed %d, the signed diff names %d: %w", c.name, c.got, c.want, ErrRecompute)
		}
	}
	byReason := map[string]int64{}
	for _, h := range want.HeldBack {
		byReason[h.Reason] = h.Count
	}
	for _, h := range got.HeldBack {
		if byReason[h.Reason] != h.Count {
			return fmt.Errorf("counts.held_back %s: recomputed %d, the signed diff names %d: %w", h.Reason, h.Count, byReason[h.Reason], ErrRecompute)
		}
		delete(byReason, h.Reason)
	}
	for _, h := range want.HeldBack {
		if _, ok := byReason[h.Reason]; ok {
			return fmt.Errorf("counts.held_back %s: recomputed 0, the signed diff names %d: %w", h.Reason, h.Count, ErrRecompute)
		}
	}
	return nil
}
