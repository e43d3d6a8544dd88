package stableset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/tuf"
)

// The reviewed pass (docs/stable-pipeline.md, "The reviewed pass"):
// `stable diff` keeps its work directory, named by the digest it shows,
// with a small manifest of the inputs it read; `stable sign --approve
// DIGEST` signs from it instead of reading the export again when every
// input digest is the same. The directory is an input an attacker with
// the laptop's disk could edit, so nothing in it is trusted: before
// anything is signed, the canonical form is made again from its ledger
// and its exceptions file and must hash to the approved digest; every
// ledger record must be what its entry says; every page record must be
// its page entry's or the previous (signed) ledger's; the counts, the
// per-project summary, the limits and the new ledger's digest are
// computed again from that walk; and the bin targets read from the work
// files must be exactly what the ledger makes (checked as each bucket is
// read, before the bins are signed).

// ReviewedPrefix begins the name of a kept pass, ReviewedPrefix + digest,
// in the work directory's parent (Config.TempDir).
const ReviewedPrefix = "keyceremony-reviewed-"

// passFile is the manifest inside a kept pass.
const (
	passFile   = "pass.json"
	passFormat = "keyceremony-reviewed-pass 1"
	maxPass    = 64 << 10
)

// Errors of the reviewed pass; check them with errors.Is.
var (
	// ErrPassStale: there is no kept pass for the approved digest, or an
	// input it was made from differs from the signing's; the pass is run
	// again (the error says which input).
	ErrPassStale = errors.New("the reviewed pass does not fit these inputs")
	// ErrPassEdited: the kept pass does not agree with itself, with the
	// approved digest or with the signed previous ledger: it was edited
	// or damaged. Nothing is signed.
	ErrPassEdited = errors.New("the reviewed pass does not agree with the approved digest")
)

// passManifest is what a kept pass records of its inputs, and what the
// walk cannot recompute (the export's trailer and the pages made again,
// a count for the screen).
type passManifest struct {
	Format               string    `json:"format"`
	Digest               string    `json:"digest"`
	ExportFileSHA256     string    `json:"export_file_sha256"`
	ExportCount          int64     `json:"export_count"`
	ExportTrailerSHA256  string    `json:"export_trailer_sha256"`
	PolicySHA256         string    `json:"policy_sha256"`
	DecisionsSHA256      string    `json:"decisions_sha256"`
	PreviousLedgerSHA256 string    `json:"previous_ledger_sha256"`
	StableVersion        int64     `json:"stable_version"`
	Repository           string    `json:"repository"`
	ListingTime          time.Time `json:"listing_time"`
	Pages                int       `json:"pages"`
}

// ReviewedDir is where a pass kept in workDir (default os.TempDir()) for
// digest lives.
func ReviewedDir(workDir, digest string) string {
	if workDir == "" {
		workDir = os.TempDir()
	}
	return filepath.Join(workDir, ReviewedPrefix+digest)
}

func decisionsSHA256(s *decisions.Set) string {
	sum := sha256.Sum256(s.Marshal())
	return hex.EncodeToString(sum[:])
}

func (r *run) previousLedgerHex() string {
	if r.pub == nil {
		return "-"
	}
	return hex.EncodeToString(r.pub.ledgerSum[:])
}

// Keep keeps the diff's work directory for `stable sign` as
// ReviewedDir(workDir, Digest), replacing a pass kept earlier for the same
// digest, and returns its path. The diff is closed: its entries are no
// longer readable. A diff that was signed cannot be kept.
func (d *Diff) Keep(workDir string) (string, error) {
	r := d.run
	if r == nil || r.work == "" || r.signed {
		return "", ErrDiffUsed
	}
	m := passManifest{
		Format: passFormat, Digest: r.digest,
		ExportFileSHA256: hex.EncodeToString(d.ExportFileSHA256[:]), ExportCount: d.Export.Count, ExportTrailerSHA256: hex.EncodeToString(d.Export.SHA256[:]),
		PolicySHA256: d.Header.PolicySHA256, DecisionsSHA256: decisionsSHA256(r.cfg.Decisions), PreviousLedgerSHA256: r.previousLedgerHex(),
		StableVersion: r.version, Repository: r.hdr.Repository, ListingTime: r.hdr.Generated.UTC(), Pages: r.pages,
	}
	data, err := json.MarshalIndent(&m, "", " ")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(r.work, passFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("keeping the reviewed pass: %w", err)
	}
	_, werr := f.Write(append(data, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("keeping the reviewed pass: %w", werr)
	}
	dest := ReviewedDir(r.cfg.TempDir, r.digest)
	if workDir != "" {
		dest = ReviewedDir(workDir, r.digest)
	}
	if err := os.RemoveAll(dest); err != nil {
		return "", fmt.Errorf("replacing the reviewed pass %s: %w", dest, err)
	}
	if err := os.Rename(r.work, dest); err != nil {
		return "", fmt.Errorf("keeping the reviewed pass: %w", err)
	}
	r.work = ""
	return dest, nil
}

// OpenReviewed returns the diff kept by Keep for the approved digest, in
// cfg.TempDir, ready to sign, when it was made from the same inputs: the
// export file's SHA-256 (cfg.Export is read to its end), the policy's,
// the decisions', and the previous ledger the published stable signs.
// An input that differs, or no kept pass, is ErrPassStale naming it (the
// caller runs the pass again); a pass that does not agree with the
// approved digest or the previous ledger is ErrPassEdited (the caller
// refuses). Close removes the directory.
func OpenReviewed(cfg Config, approve string) (*Diff, error) {
	if cfg.Policy == nil {
		return nil, errors.New("no policy given")
	}
	if err := checkDelegationCovers(cfg.StableDelegation, cfg.Policy); err != nil {
		return nil, err
	}
	if len(cfg.Policy.Delegations) > 0 {
		// The delegated patterns come from every file of the export:
		// the pass runs again.
		return nil, fmt.Errorf("a policy with developer delegations is signed from a new pass over the export: %w", ErrPassStale)
	}
	dir := ReviewedDir(cfg.TempDir, approve)
	if strings.ContainsAny(approve, `/\`) || approve == "" {
		return nil, fmt.Errorf("no reviewed pass for digest %q: %w", approve, ErrPassStale)
	}
	m, err := readPassManifest(dir)
	if err != nil {
		return nil, err
	}
	pub, base, err := readPublished(&cfg)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: &cfg, pub: pub, version: base + 1, workers: cfg.Workers, eligible: PolicyEligible(cfg.Policy), work: dir}
	if r.workers < 1 {
		r.workers = runtime.GOMAXPROCS(0)
	}
	ps := sha256.Sum256(cfg.Policy.Bytes())
	for _, c := range []struct{ what, got, want string }{
		{"the digest", approve, m.Digest},
		{"the policy's sha256", hex.EncodeToString(ps[:]), m.PolicySHA256},
		{"the decisions' sha256", decisionsSHA256(cfg.Decisions), m.DecisionsSHA256},
		{"the previous ledger's sha256", r.previousLedgerHex(), m.PreviousLedgerSHA256},
		{"the new stable version", fmt.Sprint(r.version), fmt.Sprint(m.StableVersion)},
	} {
		if c.got != c.want {
			return nil, fmt.Errorf("%s: %s is %s, the reviewed pass's %s: %w", dir, c.what, c.got, c.want, ErrPassStale)
		}
	}
	// The export is read to its end beside the kept exceptions
	// (reviewedexport.go): what the pass shows of it that the digest
	// does not cover must be the export's. The scan only reads, and so
	// does the walk below but for the work files it writes (the
	// canonical form, the review's lines): the scan runs on a core of
	// its own beside the walk. Its verdict comes first, as if it had run
	// alone: a read error, then another export (ErrPassStale), then what
	// the pass shows that the export does not; only then anything the
	// rest found. Nothing returns before the scan has ended (the caller
	// reads the export again after ErrPassStale).
	scanDone := make(chan scanResult, 1)
	go func() {
		var res scanResult
		res.sum, res.edited, res.err = r.scanExport(cfg.Export, m)
		scanDone <- res
	}()
	var (
		es      [32]byte
		scanned bool
		scanErr error
	)
	scan := func() error {
		if scanned {
			return scanErr
		}
		scanned = true
		res := <-scanDone
		switch got := hex.EncodeToString(res.sum[:]); {
		case res.err != nil:
			scanErr = fmt.Errorf("reading %s: %w", cfg.ExportName, res.err)
		case got != m.ExportFileSHA256:
			scanErr = fmt.Errorf("%s: the export %s has sha256 %s, the reviewed pass's %s: %w", dir, cfg.ExportName, got, m.ExportFileSHA256, ErrPassStale)
		default:
			scanErr = res.edited
		}
		es = res.sum
		return scanErr
	}
	d, err := r.openChecked(approve, m, pub, scan)
	if serr := scan(); serr != nil {
		if d != nil {
			d.run = nil
		}
		return nil, serr
	}
	if err != nil {
		return nil, err
	}
	d.ExportFileSHA256 = es
	return d, nil
}

// scanResult is what scanExport returns.
type scanResult struct {
	sum    [32]byte
	edited error
	err    error
}

// openChecked is OpenReviewed's part beside the export scan: the
// previous ledger opened, the takedown set, and the walk that checks the
// pass (checkPass). scan waits for the scan's verdict; with
// Config.ReviewKept the walk waits for it (the walk replaces the
// review's work files, which a pass the scan finds stale keeps).
func (r *run) openChecked(approve string, m *passManifest, pub *published, scan func() error) (*Diff, error) {
	cfg := r.cfg
	dir := r.work
	r.hdr = export.Header{Repository: m.Repository, Generated: m.ListingTime}
	var prev *ledger.Reader
	if pub != nil {
		f, err := os.Open(pub.ledgerPath)
		if err != nil {
			return nil, fmt.Errorf("opening the previous ledger: %w", err)
		}
		defer f.Close()
		if prev, err = ledger.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s: %w", pub.ledgerPath, err)
		}
		h := prev.Header()
		r.prevLedger = &h
		if h.StableVersion != pub.ledgerVersion {
			return nil, fmt.Errorf("ledger %s is for stable version %d: %w", pub.ledgerPath, h.StableVersion, ErrPublished)
		}
		if n := string(cfg.Policy.Naming); h.Naming != n {
			return nil, fmt.Errorf("policy naming %q, but stable v%d named its pages %q (%s): %w", n, h.StableVersion, h.Naming, pub.ledgerPath, ErrNamingChanged)
		}
	}
	if err := r.checkExportTime(); err != nil {
		return nil, err
	}
	r.diff = newDiff(r)
	// The takedown set: the published stable's, plus the take-downs,
	// less the lifts (the walk holds each entry's reason against it).
	if err := r.takedowns(); err != nil {
		return nil, err
	}
	r.expediteAt = r.expediteIndex()
	r.diff.Export.Count = m.ExportCount
	if _, err := hex.Decode(r.diff.Export.SHA256[:], []byte(m.ExportTrailerSHA256)); err != nil || len(m.ExportTrailerSHA256) != 64 {
		return nil, fmt.Errorf("%s: export_trailer_sha256: %w", filepath.Join(dir, passFile), ErrPassEdited)
	}
	r.pages = m.Pages
	r.diff.run = r
	if cfg.ReviewKept {
		if err := scan(); err != nil {
			r.diff.run = nil
			return nil, err
		}
	}
	if err := r.checkPass(approve, prev); err != nil {
		r.diff.run = nil
		return nil, err
	}
	return r.diff, nil
}

// Release ends the use of a diff OpenReviewed opened and leaves its kept
// pass in place (for `stable review --pass`, after which `stable sign
// --batch` still signs from it); Close, for any other diff, removes its
// work directory. The diff is no longer readable.
func (d *Diff) Release() {
	if r := d.run; r != nil && r.canonFile != "" {
		r.work = ""
	}
}

// Kept reports whether the diff is a kept pass OpenReviewed opened.
func (d *Diff) Kept() bool { return d.run != nil && d.run.work != "" && d.run.canonFile != "" }

func readPassManifest(dir string) (*passManifest, error) {
	name := filepath.Join(dir, passFile)
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no reviewed pass %s (run 'keyceremony stable diff' with the same inputs and --work-dir): %w", dir, ErrPassStale)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPass+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxPass {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", name, maxPass, ErrPassEdited)
	}
	var m passManifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.Format != passFormat {
		return nil, fmt.Errorf("%s: not a %q manifest: %w", name, passFormat, ErrPassEdited)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: data after the manifest: %w", name, ErrPassEdited)
	}
	return &m, nil
}

// passCheck is what checkPass expects of the work files signBins reads:
// per path bucket, the SHA-256 of the stable file targets in path order,
// and the sum of the page targets' digests (their order is not kept).
type passCheck struct {
	files [numBuckets][32]byte
	pages [numBuckets][32]byte
}

// addDigest adds SHA-256(b) to s, modulo 2^256: a digest of a set.
func addDigest(s *[32]byte, b []byte) {
	d := sha256.Sum256(b)
	carry := 0
	for i := 31; i >= 0; i-- {
		v := int(s[i]) + int(d[i]) + carry
		s[i], carry = byte(v), v>>8
	}
}

// passWalk checks a kept pass's entries against its new ledger, and its
// new ledger's projects against the page entries and the previous ledger.
type passWalk struct {
	r      *run
	canon  hash.Hash
	out    *workFile // the canonical form, as hashed
	tee    *asyncTee // to canon and out, off the walking goroutine
	files  [numBuckets]hash.Hash
	check  *passCheck
	pages  map[string]pageSeen // page entries by path: what end checks of each
	inProj map[string]*projectWalk
	stable int // projects with a stable file
	nFiles int64
	lr     *ledger.Reader // the kept pass's new ledger
	prev   *ledger.Reader // the previous ledger, nil at the first ceremony
	prevAt prevCursor     // its files, in step with the entries (dropped.go)
	enc    []byte
	review bucketFiles // the review's lines by project bucket (Config.ReviewKept), or nil
	line   []byte
}

// projectWalk is what the walk counts of a project: its summary, and
// whether it has a stable file (so that one map lookup an entry does).
type projectWalk struct {
	ProjectSummary
	stable bool
}

// pageSeen is what the walk keeps of a page entry until end checks it
// against the ledgers' project records: at a first ceremony every page
// is an entry (two a project, about 2.4 M at PyPI's size), so not the
// whole entry.
type pageSeen struct {
	Category  Category
	HasNew    bool
	NewLength int64
	NewSHA256 [32]byte
}

func (w *passWalk) edited(format string, a ...any) error {
	return fmt.Errorf("%s: %s: %w", w.r.work, fmt.Sprintf(format, a...), ErrPassEdited)
}

func (w *passWalk) start(lr *ledger.Reader) { w.lr = lr }

// checkPass walks a kept pass (see the top of this file) and fills in
// the run and the diff as ComputeDiff would.
func (r *run) checkPass(approve string, prev *ledger.Reader) error {
	w := &passWalk{r: r, prev: prev, canon: sha256.New(), check: &passCheck{}, pages: map[string]pageSeen{}, inProj: map[string]*projectWalk{}}
	for b := range w.files {
		w.files[b] = sha256.New()
	}
	// The canonical form is written as it is hashed (the signing copies
	// it to the media, rather than walking the entries again).
	w.out = r.workFile("canonical", 0, 1<<20)
	defer w.out.Close()
	os.Remove(w.out.path) // left by an earlier signing that stopped
	// Hashed and written on a goroutine of its own while the walk
	// encodes the next entries (about a third of the walk's CPU).
	w.tee = newAsyncTee(w.canon, w.out)
	defer w.tee.Close()
	w.tee.Write(r.diff.canonicalHeader())
	if r.cfg.ReviewKept {
		r.removeReviewBuckets()
		w.review = r.buckets(reviewPartKind, numProjBucket, 32<<10)
		defer w.review.close()
	}
	err := r.diff.entriesWith(w.entry, w)
	if err == nil && w.review != nil {
		if err = w.review.close(); err == nil {
			r.reviewSpilled = true
		}
	}
	if err != nil {
		if errors.Is(err, errSpill) || errors.As(err, new(*ledger.Error)) {
			return w.edited("%v", err)
		}
		return err
	}
	w.tee.Close()
	var sum [32]byte
	w.canon.Sum(sum[:0])
	if got := hex.EncodeToString(sum[:]); got != approve {
		return w.edited("its entries make a canonical form of digest %s, not the approved %s", got, approve)
	}
	if w.nFiles != r.diff.Export.Count {
		return w.edited("its ledger lists %d files, the export's trailer %d", w.nFiles, r.diff.Export.Count)
	}
	if err := w.out.Close(); err != nil {
		return fmt.Errorf("writing the canonical diff: %w", err)
	}
	r.canonFile = w.out.path
	for b := range w.files {
		w.files[b].Sum(w.check.files[b][:0])
	}
	for b := 0; b < len(r.pageTar); b++ {
		if _, err := os.Stat(r.bucketPath("pages", b)); err == nil {
			r.pageTar[b] = true
		}
	}
	projects := make([]ProjectSummary, 0, len(w.inProj))
	for _, p := range w.inProj {
		projects = append(projects, p.ProjectSummary)
		r.diff.Summary.plus(&p.Counts)
	}
	r.diff.finish(sum, projects)
	r.digest = r.diff.Digest
	r.diff.NewLedgerLength, r.diff.NewLedgerSHA256 = r.ledgerLen, r.ledgerSum
	r.expect = w.check
	// The red flags ComputeDiff finds beside the limits: expedited files
	// (from the walk) and changes to the policy's lists (from the
	// previous ledger, whose digest the walk checked).
	if err := r.checkExpedited(); err != nil {
		return err
	}
	if err := r.policyChanges(); err != nil {
		return err
	}
	if err := r.checkPolicyDecisions(); err != nil {
		return err
	}
	return r.checkLimits()
}

// entry checks one entry against the ledger's record of its path and
// counts it.
func (w *passWalk) entry(e *DiffEntry, le *ledger.RawEntry) error {
	r := w.r
	if e == nil {
		return w.edited("its ledger records %s, which no entry of the diff names", le.PathBytes)
	}
	w.enc = e.appendCanonical(w.enc[:0])
	w.tee.Write(w.enc)
	if w.review != nil {
		w.line = appendWorkLine(w.line[:0], w.enc, e.Version, e.Legacy, e.Uploaded)
		if _, err := w.review[projBucket(e.Project)].Write(w.line); err != nil {
			return err
		}
	}
	ps := w.inProj[e.Project]
	if ps == nil {
		ps = &projectWalk{ProjectSummary: ProjectSummary{Project: e.Project}}
		w.inProj[e.Project] = ps
	}
	ps.Counts.add(e)
	switch e.Category {
	case PageAdded, PageChanged, PageRemoved:
		if le != nil {
			return w.edited("its ledger records a file at the page path %s", e.Path)
		}
		if _, dup := w.pages[e.Path]; dup {
			return w.edited("two entries for page %s", e.Path)
		}
		w.pages[e.Path] = pageSeen{e.Category, e.HasNew, e.NewLength, e.NewSHA256}
		return nil
	}
	// A path of the takedown set is removed (it was stable) or held,
	// reason taken-down, and no other path has that reason.
	if down := e.Reason == ReasonTakenDown; down != r.takenDown[e.Path] || down && e.Category != Removed && e.Category != Held {
		return w.edited("%s is %s, but the takedown set (the published stable's and the decisions') makes it otherwise", e.Path, e.label())
	}
	if e.Category == Removed {
		if e.Reason == ReasonTakenDown {
			r.markDecided(e.Path)
		}
		if le == nil {
			// Gone from the listing.
			r.reasons.add(e.Category, e.Reason)
			return nil
		}
		if e.Reason != ReasonTakenDown {
			return w.edited("%s is removed, but its ledger still records it", e.Path)
		}
		// A listed stable file taken down: listed, not stable.
	}
	if le == nil {
		return w.edited("%s is %s, but its ledger does not record it", e.Path, e.Category)
	}
	r.reasons.add(e.Category, e.Reason)
	if e.Legacy != 0 {
		r.legacy.add(e.Legacy)
		ps.Counts.Legacy++
	}
	w.nFiles++
	if i, ok := r.expediteAt[e.Path]; ok {
		rec := export.Record{Path: e.Path, Project: e.Project, Version: e.Version, SHA256: e.NewSHA256}
		if err := r.expedite(i, &rec); err != nil {
			return err
		}
		if err := r.expedited(i, &rec, &decision{cat: e.Category, reason: e.Reason}); err != nil {
			return err
		}
	} else if e.Reason == ReasonExpedited {
		return w.edited("%s is added as expedited, which the policy does not expedite", e.Path)
	}
	// What the ledger must say: listed as the entry's new side; stable,
	// with which content, by category and reason.
	stable, kept := false, false
	switch {
	case e.Category == Unchanged, e.Category == Added:
		stable = true
	case e.Category == Changed:
		r.noteChanged(e.Path, e.Project, e.Version, e.Uploaded, e.OldLength, e.OldSHA256, e.NewLength, e.NewSHA256)
		dec, ok := r.changedDecision(e.Path)
		if ok {
			if r.decided == nil {
				r.decided = map[string]bool{}
			}
			r.decided[e.Path] = true
		}
		want := ReasonKeptOld
		switch {
		case ok && dec.Choice == decisions.AcceptNew:
			want, stable = ReasonAccepted, true
		case ok && dec.Choice == decisions.Drop:
			want = ReasonDropped
		default:
			stable, kept = true, true
			if !ok {
				r.undecided++
				if len(r.undecidedPaths) < maxUndecidedNamed {
					r.undecidedPaths = append(r.undecidedPaths, e.Path)
				}
			}
		}
		if e.Reason != want {
			return w.edited("%s is changed %s, the decisions make it %s", e.Path, e.Reason, want)
		}
	case e.Category == Removed:
		// Taken down (above).
	case e.Category == Held:
		if e.Reason == ReasonBackdated {
			r.noteBackdated(e.Path, e.Project, e.Version, e.Uploaded, e.NewLength, e.NewSHA256)
		}
	default:
		return w.edited("%s: unknown category %q", e.Path, e.Category)
	}
	ok := e.HasNew && string(le.ProjectBytes) == e.Project && le.Length == e.NewLength && le.SHA256 == e.NewSHA256 &&
		le.Stable == stable && le.Kept == kept
	if ok && kept {
		ok = e.HasOld && le.StableLength == e.OldLength && le.StableSHA256 == e.OldSHA256
	}
	if !ok {
		return w.edited("its ledger's record of %s is not what its %s entry says", e.Path, e.Category)
	}
	if err := w.marks(e, le, stable); err != nil {
		return err
	}
	if !stable {
		return nil
	}
	if !ps.stable {
		ps.stable = true
		w.stable++
	}
	if !r.cfg.Policy.TargetMode.ListsFiles() {
		return nil
	}
	b2, okb := export.PathBLAKE2b(e.Path)
	if !okb {
		return w.edited("stable file %s has no BLAKE2b-256 in its path", e.Path)
	}
	l, s := le.StableContent()
	t := tuf.BinTarget{Path: e.Path, Length: l, SHA256: s, BLAKE2b256: b2}
	h := sha256.Sum256([]byte(e.Path))
	w.enc = appendBinTarget(w.enc[:0], &t)
	w.files[h[0]].Write(w.enc)
	r.nStable[h[0]]++
	return nil
}

// end reads the new ledger's projects beside the previous ledger's: each
// project's two pages are its page entries' new side or, without an
// entry, the previous ledger's; a project with stable files has pages,
// one without has none.
func (w *passWalk) end() error {
	r := w.r
	lh := w.lr.Header()
	if lh.Repository != r.hdr.Repository || !lh.ListingTime.Equal(r.hdr.Generated) || lh.StableVersion != r.version || lh.Naming != string(r.cfg.Policy.Naming) {
		return w.edited("its ledger's header is not the diff's")
	}
	next := func(lr *ledger.Reader, name string) (*ledger.Project, error) {
		if lr == nil {
			return nil, nil
		}
		p, err := lr.NextProject()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c := *p
		if lr == w.prev {
			r.seen.prevProject(&c)
		}
		return &c, nil
	}
	prev := w.prev
	if prev != nil {
		for {
			if _, err := prev.NextRaw(); err == io.EOF {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", r.pub.ledgerPath, err)
			}
		}
	}
	naming := r.naming()
	np, err := next(w.lr, "the reviewed ledger")
	if err != nil {
		return w.edited("%v", err)
	}
	op, err := next(prev, r.pub.pathOr())
	if err != nil {
		return err
	}
	nProj := 0
	for np != nil || op != nil {
		c := 0
		switch {
		case np == nil:
			c = 1
		case op == nil:
			c = -1
		default:
			c = ledger.ProjectOrder(np.Project, op.Project)
		}
		name := ""
		if c <= 0 {
			name = np.Project
		} else {
			name = op.Project
		}
		hp, jp := naming.PagePaths(name)
		for _, pg := range []struct {
			path           string
			nl, ol         int64
			nsum, osum     [32]byte
			nb2, ob2       [32]byte
			hasNew, hasOld bool
		}{
			{path: hp, hasNew: c <= 0, hasOld: c >= 0},
			{path: jp, hasNew: c <= 0, hasOld: c >= 0},
		} {
			if pg.hasNew {
				pg.nl, pg.nsum, pg.nb2 = np.HTMLLength, np.HTMLSHA256, np.HTMLBLAKE2b
				if pg.path == jp {
					pg.nl, pg.nsum, pg.nb2 = np.JSONLength, np.JSONSHA256, np.JSONBLAKE2b
				}
			}
			if pg.hasOld {
				pg.ol, pg.osum, pg.ob2 = op.HTMLLength, op.HTMLSHA256, op.HTMLBLAKE2b
				if pg.path == jp {
					pg.ol, pg.osum, pg.ob2 = op.JSONLength, op.JSONSHA256, op.JSONBLAKE2b
				}
			}
			e, seen := w.pages[pg.path]
			delete(w.pages, pg.path)
			var ok bool
			switch {
			case !seen:
				ok = pg.hasNew && pg.hasOld && pg.nl == pg.ol && pg.nsum == pg.osum && pg.nb2 == pg.ob2
			case e.Category == PageRemoved:
				ok = !pg.hasNew
			default:
				ok = pg.hasNew && e.HasNew && e.NewLength == pg.nl && e.NewSHA256 == pg.nsum && (e.Category == PageChanged) == pg.hasOld
			}
			if !ok {
				return w.edited("its ledger's page %s is neither its entry's nor the previous ledger's", pg.path)
			}
			if pg.hasNew {
				t := tuf.BinTarget{Path: pg.path, Length: pg.nl, SHA256: pg.nsum, BLAKE2b256: pg.nb2}
				h := sha256.Sum256([]byte(pg.path))
				w.enc = appendBinTarget(w.enc[:0], &t)
				addDigest(&w.check.pages[h[0]], w.enc)
				r.nPages[h[0]]++
			}
		}
		if c <= 0 {
			if p := w.inProj[name]; p == nil || !p.stable {
				return w.edited("its ledger has pages for %s, which has no stable file", name)
			}
			nProj++
			if np, err = next(w.lr, "the reviewed ledger"); err != nil {
				return w.edited("%v", err)
			}
		}
		if c >= 0 {
			if op, err = next(prev, r.pub.pathOr()); err != nil {
				return err
			}
		}
	}
	if nProj != w.stable {
		return w.edited("%d projects have stable files, its ledger has pages for %d", w.stable, nProj)
	}
	for p := range w.pages {
		return w.edited("page entry %s names no project of the ledgers", p)
	}
	size, sum, done := w.lr.FileDigest()
	if !done {
		return w.edited("its ledger was not read to its end")
	}
	r.ledgerLen, r.ledgerSum = size, sum
	if prev != nil {
		size, sum, _ := prev.FileDigest()
		if size != r.pub.ledgerLen || sum != r.pub.ledgerSum {
			return fmt.Errorf("%s does not match the digest stable %d signed: %w", r.pub.ledgerPath, r.pub.version, ErrPublished)
		}
	}
	return nil
}

// pathOr names the previous ledger for errors.
func (p *published) pathOr() string {
	if p == nil {
		return "the previous ledger"
	}
	return p.ledgerPath
}

// checkBucket holds the targets signBins read from bucket b's work files
// (files, then pages) against what checkPass expects.
func (c *passCheck) checkBucket(work string, b int, files, pages []tuf.BinTarget) error {
	h := sha256.New()
	var enc []byte
	for i := range files {
		enc = appendBinTarget(enc[:0], &files[i])
		h.Write(enc)
	}
	var fs, ps [32]byte
	h.Sum(fs[:0])
	for i := range pages {
		enc = appendBinTarget(enc[:0], &pages[i])
		addDigest(&ps, enc)
	}
	if fs != c.files[b] || ps != c.pages[b] {
		return fmt.Errorf("%s: the bin targets of path bucket %d are not what its ledger makes: %w", work, b, ErrPassEdited)
	}
	return nil
}
