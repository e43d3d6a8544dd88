package stableset

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
)

// The stable signing pipeline (docs/stable-pipeline.md), in three stages,
// each named for what it does:
//
//   - classify (ComputeDiff; classify.go): one pass over the export, merged
//     with the previous ledger. Every record is checked against the policy
//     and the ledger and given its category; the canonical diff is hashed,
//     the new ledger written, and the stable targets and every entry's
//     record spilled into work files by path and by project bucket.
//   - renderPages (ComputeDiff; renderpages.go, per project bucket, in
//     parallel): stable files are grouped by project, the index pages that
//     changed rendered, the new ledger's projects written and the diff
//     finished.
//   - signBins ((*Diff).Sign; sign.go, per path bucket, in parallel):
//     nothing is signed before the approval is checked against the diff
//     digest; then the layout is sized from the target count
//     (tuf.SizeTwoLevel; over budget is refused), a key asked for every
//     mid role and leaf bin, the leaves built, signed with their own keys
//     and written, then the mids (each delegating to its leaves), then
//     stable (delegating to the mids).
//
// Memory stays proportional to one bucket.

// Role and file names.
const (
	StableRole    = "stable"
	metadataDir   = "metadata"
	ledgerDir     = "ledger"
	pagesDir      = "pages"
	FragmentFile  = "snapshot-fragment.json"
	numBuckets    = 256
	numProjBucket = 64
	pagesPrefix   = "simple/"
)

// WorkPrefix begins the name of a pipeline's work directory, which
// outdir.MkdirTemp makes in Config.TempDir.
const WorkPrefix = "keyceremony-stable-"

// DefaultPeriod and DefaultGrace give the expiry of stable and its bins.
const (
	DefaultPeriod = 90 * 24 * time.Hour
	DefaultGrace  = 30 * 24 * time.Hour
)

// Errors of the pipeline; check with errors.Is.
var (
	ErrApproval  = errors.New("approval does not name this diff's digest")
	ErrPublished = errors.New("published stable metadata is not valid")
	// ErrExportTime: the export's generation time does not fit the
	// ceremony's clock or follows no later than the previous listing.
	ErrExportTime = errors.New("export time refused")
	// ErrRepository: the export names another repository than the
	// previous ledger.
	ErrRepository = errors.New("export is for another repository")
	// ErrDecision: a decision names a path that is not a changed file of
	// the diff, or confirms a count the diff does not have.
	ErrDecision = errors.New("decision does not match the diff")
	// ErrUndecided: a confirm_above limit is crossed, or a red flag is
	// raised, and no decision settles it; (*Diff).Sign refuses.
	ErrUndecided = errors.New("undecided: a crossed limit or a red flag without a decision")
)

// DefaultClockSkew is how far after the ceremony's clock an export may be
// dated (the repository's clock and the air-gapped laptop's differ a
// little).
const DefaultClockSkew = 10 * time.Minute

// EligibleFunc says whether a record may enter the stable set at time at,
// and if not, why (a short reason such as "too-young" or "excluded").
type EligibleFunc func(r *export.Record, at time.Time) (ok bool, reason string)

// Config is what a stable diff or signing reads.
type Config struct {
	Export     io.Reader // the repository export
	ExportName string    // for errors

	// Published is the directory holding the published stable metadata
	// (metadata/<N>.stable.json, its bins, ledger/<N>.ledger); empty for
	// the first ceremony.
	Published string
	// PublishedLedger is the published ledger's file when it is not
	// Published/ledger/<N>.ledger: a repository publishes it as a target
	// (targets/ledger/<sha256>.<N>.ledger with consistent snapshots). Its
	// length and digest are checked against stable's entry all the same.
	PublishedLedger string
	// StableKeys and StableDelegation are the trusted delegation to stable
	// (from verified targets metadata): the published stable must carry
	// their threshold of signatures. Required when Published is set.
	StableDelegation *tuf.DelegatedRole
	StableKeys       map[string]*keys.Key

	// Now is the ceremony's clock, and the reference for every age: the
	// policy is evaluated at the earlier of Now and the export's
	// generation time, so an export dated ahead cannot make a young file
	// old. An export dated more than ClockSkew (default
	// DefaultClockSkew) after Now, or before the previous ledger's
	// listing, is refused with ErrExportTime. Required.
	Now       time.Time
	ClockSkew time.Duration

	// Policy decides which files are eligible (at the evaluation time
	// above) and the confirm_above limits; its exact bytes are bound into
	// the digest. Required.
	Policy *policy.Policy
	// Decisions are the room's decisions (stableset/decisions): each
	// changed path kept, accepted or dropped, each count above its limit
	// confirmed. They are bound into the digest; one that does not match
	// the diff is refused (ErrDecision). Nil: none.
	Decisions *decisions.Set

	TempDir string // for the work directory (WorkPrefix…); default os.TempDir()
	Workers int    // default GOMAXPROCS

	// ReviewKept, for OpenReviewed: the check's walk of the kept pass
	// also spills the review's lines by project, so that Diff.Review
	// sorts them without walking the entries again (`stable review
	// --pass`). The signing leaves it off: it does not browse.
	ReviewKept bool
}

// published is what was read of the published stable metadata.
type published struct {
	stable  *tuf.Metadata[tuf.Targets]
	dir     string
	version int64
	// ledgerVersion is the version of the ceremony that wrote the
	// ledger: version, or earlier after a stable key rotation
	// (LedgerTarget).
	ledgerVersion int64
	ledgerPath    string
	ledgerLen     int64
	ledgerSum     [32]byte
}

// readPublished reads and verifies the published stable set. It also
// returns the published stable version, which is 0 when there is none.
func readPublished(cfg *Config) (*published, int64, error) {
	if cfg.Published == "" {
		return nil, 0, nil
	}
	if cfg.StableDelegation == nil {
		return nil, 0, fmt.Errorf("no trusted delegation to stable to verify %s with: %w", cfg.Published, ErrPublished)
	}
	dir := filepath.Join(cfg.Published, metadataDir)
	d := cfg.StableDelegation
	by := tuf.RoleKeys{Role: StableRole, KeyIDs: d.KeyIDs, Threshold: d.Threshold, Keys: cfg.StableKeys}
	m, best, err := tuf.LoadNewest[tuf.Targets](os.DirFS(dir), dir, StableRole, by)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrPublished, err)
	}
	name := filepath.Join(dir, fmt.Sprintf("%d.%s.json", best, StableRole))
	if len(m.Signed.Targets) == 0 && m.Signed.Delegations == nil {
		// The empty stable a bootstrap writes: nothing was ever signed
		// into the stable set, so there is no ledger and no bin, and the
		// next ceremony is the first and trusts upload times.
		return nil, best, nil
	}
	// The published bins are not read: the ledger, which stable binds by
	// its digest, says what is stable (docs/stable-pipeline.md, "Trust").
	p := &published{stable: m, dir: dir, version: best}
	lpath, lv, tf, ok, err := LedgerTarget(m)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	if !ok || len(m.Signed.Targets) != 1 {
		return nil, 0, fmt.Errorf("%s must list exactly its ledger %s/<N>.ledger: %w", name, ledgerDir, ErrPublished)
	}
	p.ledgerVersion = lv
	sum, err := hex.DecodeString(tf.Hashes["sha256"])
	if err != nil || len(sum) != 32 {
		return nil, 0, fmt.Errorf("%s: ledger has no sha256: %w", name, ErrPublished)
	}
	p.ledgerPath, p.ledgerLen = filepath.Join(cfg.Published, filepath.FromSlash(lpath)), tf.Length
	if cfg.PublishedLedger != "" {
		p.ledgerPath = cfg.PublishedLedger
	}
	copy(p.ledgerSum[:], sum)
	return p, best, nil
}

// run is one pipeline run: the work directory and what its stages found.
type run struct {
	cfg     *Config
	pub     *published
	work    string
	hdr     export.Header
	version int64 // the new stable version
	workers int

	eligible EligibleFunc
	// Counted by the merger: files per category and reason, the changed
	// paths without a decision (the first few named), the path decisions
	// applied.
	reasons        reasonCounts
	legacy         legacyCounts
	undecided      int64
	undecidedPaths []string
	decided        map[string]bool
	// pathFlags are the changed and backdated paths (flagspath.go);
	// changedByFlag the changed paths a changed flag decision settles.
	pathFlags     []pathFlag
	changedByFlag map[string]bool
	// takenDown is the ceremony's takedown set (published, plus
	// take-down decisions, less lifts).
	takenDown  map[string]bool
	expediteAt map[string]int // the policy's expedite paths: index in diff.Expedited
	// liftDrop are the lift decisions' paths (dropped.go); flagDrops the
	// "drop" flag decisions, by kind then subject. Both made on first use.
	liftDrop  map[string]bool
	flagDrops map[string]map[string]bool
	// seen is what the pass collects for the red flags raised once the
	// export is read (exportflags.go).
	seen exportSeen
	// The policy's delegated projects, and the checker of their
	// patterns (delegations.go); nil without delegations.
	delegated map[string]bool
	checker   *delegation.Checker

	prevLedger *ledger.Header
	ledgerLen  int64
	ledgerSum  [32]byte

	diff   *Diff
	signed bool   // (*Diff).Sign was called: the work files are consumed
	digest string // the diff's digest, as computed

	// Every project of the diff, with its counts (renderPages).
	projects []ProjectSummary

	ledger     *ledger.Writer
	ledgerFile io.WriteCloser
	exc        *bufio.Writer // the diff entries other than unchanged, canonical lines
	excFile    io.WriteCloser
	canon      *asyncHash // the canonical diff

	nStable [numBuckets]int64 // stable file targets per path bucket
	nPages  [numBuckets]int64 // index page targets per path bucket
	pages   int               // index pages rendered
	pageTar [numProjBucket]bool

	// expect, for a kept pass (OpenReviewed), is what the bin target
	// work files must hold.
	expect *passCheck
	// canonFile, for a kept pass, is the canonical form as checkPass
	// made it again and hashed it to the approved digest.
	canonFile string

	// The review index (reviewindex.go), built once, and its SHA-256 as
	// written; each project bucket's projects and bytes, as the pass
	// sorted them.
	reviewBuilt bool
	reviewSum   [32]byte
	// reviewSpilled: checkPass's walk spilled the review's lines
	// (Config.ReviewKept); buildReviewIndex only sorts them.
	reviewSpilled bool
	reviewParts   [numProjBucket][]ReviewProject
	reviewSizes   [numProjBucket]int64
	// pageReviewBytes is the length of each project bucket's page
	// entries' review lines (pageBucket), part of the bucket's length in
	// review-entries (sortReviewBuckets).
	pageReviewBytes [numProjBucket]int64
}

type lockedWriter struct {
	mu sync.Mutex
	w  *workFile
}

// write writes b; an error is the work file's, returned by its Close.
func (w *lockedWriter) write(b []byte) {
	w.mu.Lock()
	w.w.Write(b)
	w.mu.Unlock()
}

// ComputeDiff computes the diff of the export against the published stable
// set. Its entries stay readable until Close.
func ComputeDiff(cfg Config) (*Diff, error) {
	r, err := prepare(&cfg)
	if err != nil {
		return nil, err
	}
	r.diff.run = r
	return r.diff, nil
}

func prepare(cfg *Config) (*run, error) {
	if cfg.Policy == nil {
		return nil, errors.New("no policy given")
	}
	if err := checkDelegationCovers(cfg.StableDelegation, cfg.Policy); err != nil {
		return nil, err
	}
	pub, base, err := readPublished(cfg)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, pub: pub, version: base + 1, workers: cfg.Workers, eligible: PolicyEligible(cfg.Policy)}
	if r.workers < 1 {
		r.workers = runtime.GOMAXPROCS(0)
	}
	// Named with this process's id, so that a later run can remove it
	// when this one was killed (outdir.Sweep, WorkPrefix).
	r.work, err = outdir.MkdirTemp(cfg.TempDir, WorkPrefix)
	if err != nil {
		return nil, fmt.Errorf("making work directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			for _, f := range []io.WriteCloser{r.ledgerFile, r.excFile} {
				if f != nil {
					f.Close()
				}
			}
			os.RemoveAll(r.work)
		}
	}()
	if err := r.classify(); err != nil {
		return nil, err
	}
	if err := r.renderPages(); err != nil {
		return nil, err
	}
	r.diff.NewLedgerLength, r.diff.NewLedgerSHA256 = r.ledgerLen, r.ledgerSum
	if err := r.checkExpedited(); err != nil {
		return nil, err
	}
	if err := r.policyChanges(); err != nil {
		return nil, err
	}
	if err := r.finishDelegations(); err != nil {
		return nil, err
	}
	if err := r.checkPolicyDecisions(); err != nil {
		return nil, err
	}
	if err := r.checkLimits(); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

func (r *run) bucketPath(kind string, b int) string {
	return filepath.Join(r.work, fmt.Sprintf("%s-%03d", kind, b))
}

// workFile is the work file of kind and bucket b, buffered by size bytes.
func (r *run) workFile(kind string, b, size int) *workFile {
	return &workFile{path: r.bucketPath(kind, b), size: size}
}

// bucketFiles are the n work files kind-000 ..., each created when first
// written to.
type bucketFiles []*workFile

func (r *run) buckets(kind string, n, size int) bucketFiles {
	bf := make(bucketFiles, n)
	for b := range bf {
		bf[b] = r.workFile(kind, b, size)
	}
	return bf
}

// close flushes and closes every file, returning the first error.
func (bf bucketFiles) close() error {
	var first error
	for _, f := range bf {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// projBucket is the project bucket of a project: its page records and
// ledger records go there.
func projBucket(project string) int {
	// FNV-1a: the bucket only spreads the work, nothing depends on it.
	h := uint32(2166136261)
	for i := 0; i < len(project); i++ {
		h ^= uint32(project[i])
		h *= 16777619
	}
	return int(h % numProjBucket)
}

// sanitize keeps a policy reason to one printable token.
func sanitize(s string) string {
	if s == "" {
		return "policy"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '-'
		}
		return r
	}, s)
}

// parallel runs f(0..n-1) on the run's workers, stopping at the first error.
func (r *run) parallel(n int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < r.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// appendBinTarget encodes a bin target for the work files: the path, the
// length, sha256 and blake2b-256 (every target the pipeline makes has
// both).
func appendBinTarget(b []byte, t *tuf.BinTarget) []byte {
	b = appendStr(b, t.Path)
	b = binary.AppendUvarint(b, uint64(t.Length))
	b = append(b, t.SHA256[:]...)
	return append(b, t.BLAKE2b256[:]...)
}

// readBinTargets reads a work file of bin targets; the paths are
// substrings of one string holding the whole file.
func readBinTargets(path string, out []tuf.BinTarget) ([]tuf.BinTarget, error) {
	data, err := readFileString(path)
	if err != nil {
		return nil, err
	}
	d := &spillDec{s: data}
	for d.i < len(d.s) && !d.bad {
		var t tuf.BinTarget
		t.Path = d.str()
		t.Length = int64(d.uvarint())
		d.sum(&t.SHA256)
		d.sum(&t.BLAKE2b256)
		t.HasBLAKE2b = true
		out = append(out, t)
	}
	if d.bad {
		return nil, errSpill
	}
	return out, nil
}

// ErrUnreachable: the delegation to stable does not cover the paths the
// policy's target mode and naming give stable's targets, so no client
// would ask stable for them.
var ErrUnreachable = errors.New("the delegation to stable does not cover the targets it would sign")

// ErrNamingChanged: the policy's naming differs from the one the
// previous ceremony's ledger records; changing it would move every page.
var ErrNamingChanged = errors.New("the page naming differs from the previous ceremony's")

// checkDelegationCovers refuses a policy whose targets the delegation d
// (nil: not known, nothing checked) would never route to stable: the
// naming layout's two page paths and, in files+pages mode, a distribution
// file's path.
func checkDelegationCovers(d *tuf.DelegatedRole, p *policy.Policy) error {
	if d == nil {
		return nil
	}
	hp, jp := simpleindex.Layout(p.Naming).PagePaths("example")
	paths := []string{hp, jp}
	if p.TargetMode.ListsFiles() {
		var b2 [32]byte
		paths = append(paths, export.TargetPath(b2, "example-1.0.tar.gz"))
	}
	for _, t := range paths {
		if !d.Matches(t) {
			return fmt.Errorf("policy target_mode %q, naming %q: a target such as %s matches none of stable's delegated paths %q (bootstrap target_paths): %w",
				p.TargetMode, p.Naming, t, d.Paths, ErrUnreachable)
		}
	}
	return nil
}

// PolicyEligible adapts a Policy to the pipeline.
func PolicyEligible(p *policy.Policy) EligibleFunc {
	return func(r *export.Record, at time.Time) (bool, string) {
		ok, why := p.Eligible(r, at)
		if ok {
			return true, ""
		}
		return false, strings.ReplaceAll(why.String(), " ", "-")
	}
}
