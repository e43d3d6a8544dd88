package stableset

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// The stable signing pipeline (docs/stable-pipeline.md).
//
// Phase A (one pass over the export, merged with the previous ledger):
// every record is checked against the policy and the ledger, written to the
// new ledger, and spilled into one of 256 bucket files by the first byte of
// SHA-256(path). Phase B (per bucket, in parallel): the bucket's entries of
// the published bins are read and verified, merged with the bucket's
// records, and each path is classified; the decision is written out and the
// bucket's part of the canonical diff hashed. Nothing is signed before the
// approval is checked against the diff digest. Phase P: stable files are
// grouped by project and the index pages rendered. Phase C (per bucket, in
// parallel): the bins are built, signed with the ceremony key and written.
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
	targetsPerBin = 640
	pagesPrefix   = "simple/"
)

// DefaultPeriod and DefaultGrace give the expiry of stable and its bins.
const (
	DefaultPeriod = 90 * 24 * time.Hour
	DefaultGrace  = 30 * 24 * time.Hour
)

// Errors of the pipeline; check with errors.Is.
var (
	ErrApproval        = errors.New("approval does not name this diff's digest")
	ErrPublished       = errors.New("published stable metadata is not valid")
	ErrOutputExists    = errors.New("output directory already exists")
	ErrInjectedFailure = errors.New("injected failure")
)

// EligibleFunc says whether a record may enter the stable set at time at,
// and if not, why (a short reason such as "too-young" or "excluded").
type EligibleFunc func(r *Record, at time.Time) (ok bool, reason string)

// MinAge is an EligibleFunc admitting files uploaded at least d before the
// evaluation time.
func MinAge(d time.Duration) EligibleFunc {
	return func(r *Record, at time.Time) (bool, string) {
		if r.UploadTime.After(at.Add(-d)) {
			return false, "too-young"
		}
		return true, ""
	}
}

// Config is what a stable diff or signing reads.
type Config struct {
	Export     io.Reader // the repository export
	ExportName string    // for errors

	// Published is the directory holding the published stable metadata
	// (metadata/<N>.stable.json, its bins, ledger/<N>.ledger); empty for
	// the first ceremony.
	Published string
	// StableKeys and StableDelegation are the trusted delegation to stable
	// (from verified targets metadata): the published stable must carry
	// their threshold of signatures. Required when Published is set.
	StableDelegation *tuf.DelegatedRole
	StableKeys       map[string]*keys.Key

	// Eligible applies the policy; ages are evaluated at the export's
	// generation time, so that the diff depends on its inputs only.
	Eligible EligibleFunc
	// Accept lists changed paths whose new content is explicitly accepted.
	Accept map[string]bool

	TempDir string // for the work directory; default os.TempDir()
	Workers int    // default GOMAXPROCS

	// failAfterBins, for tests, fails phase C after writing that many bins.
	failAfterBins int
}

// published is what was read of the published stable metadata.
type published struct {
	stable     *tuf.Metadata[tuf.Targets]
	layout     tuf.BinLayout
	dir        string
	version    int64
	ledgerPath string
	ledgerLen  int64
	ledgerSum  [32]byte
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
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("reading published metadata: %w", err)
	}
	var best int64
	for _, e := range ents {
		v, ok := strings.CutSuffix(e.Name(), "."+StableRole+".json")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n > best && strconv.FormatInt(n, 10) == v {
			best = n
		}
	}
	if best == 0 {
		return nil, 0, fmt.Errorf("no <N>.stable.json in %s: %w", dir, ErrPublished)
	}
	name := filepath.Join(dir, fmt.Sprintf("%d.%s.json", best, StableRole))
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, 0, fmt.Errorf("reading published stable: %w", err)
	}
	m, err := tuf.Load[tuf.Targets](data, name)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrPublished, err)
	}
	msg, err := m.SignedBytes()
	if err != nil {
		return nil, 0, err
	}
	d := cfg.StableDelegation
	if err := tuf.VerifyThreshold(StableRole, msg, m.Signatures, d.KeyIDs, d.Threshold, cfg.StableKeys); err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %w", name, ErrPublished, err)
	}
	if m.Signed.Version != best {
		return nil, 0, fmt.Errorf("%s holds version %d: %w", name, m.Signed.Version, ErrPublished)
	}
	if len(m.Signed.Targets) == 0 && m.Signed.Delegations == nil {
		// The empty stable a bootstrap writes: nothing was ever signed
		// into the stable set, so there is no ledger and no bin, and the
		// next ceremony is the first and trusts upload times.
		return nil, best, nil
	}
	p := &published{stable: m, dir: dir, version: best}
	if p.layout, err = tuf.LayoutOf(&m.Signed, StableRole); err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %w", name, ErrPublished, err)
	}
	lpath := fmt.Sprintf("%s/%d.ledger", ledgerDir, best)
	tf, ok := m.Signed.Targets[lpath]
	if !ok || len(m.Signed.Targets) != 1 {
		return nil, 0, fmt.Errorf("%s must list exactly its ledger %s: %w", name, lpath, ErrPublished)
	}
	sum, err := hex.DecodeString(tf.Hashes["sha256"])
	if err != nil || len(sum) != 32 {
		return nil, 0, fmt.Errorf("%s: ledger has no sha256: %w", name, ErrPublished)
	}
	p.ledgerPath, p.ledgerLen = filepath.Join(cfg.Published, filepath.FromSlash(lpath)), tf.Length
	copy(p.ledgerSum[:], sum)
	return p, best, nil
}

// run is one pipeline run: the work directory and what the phases found.
type run struct {
	cfg     *Config
	pub     *published
	work    string
	hdr     Header
	version int64 // the new stable version
	workers int

	prevLedger *LedgerHeader
	ledgerLen  int64
	ledgerSum  [32]byte

	diff   *Diff
	signed bool   // (*Diff).Sign was called: the work files are consumed
	digest string // the diff's digest, as computed

	mu        sync.Mutex
	projFiles [numProjBucket]*lockedWriter
	decided   [numBuckets]int64 // stable files per bucket
}

type lockedWriter struct {
	mu sync.Mutex
	f  *os.File
	bw *bufio.Writer
}

func (w *lockedWriter) write(b []byte) {
	w.mu.Lock()
	w.bw.Write(b)
	w.mu.Unlock()
}

// Diff computes the diff of the export against the published stable set.
// Its entries stay readable until Close.
func ComputeDiff(cfg Config) (*Diff, error) {
	r, err := prepare(&cfg)
	if err != nil {
		return nil, err
	}
	r.diff.run = r
	return r.diff, nil
}

func prepare(cfg *Config) (*run, error) {
	if cfg.Eligible == nil {
		return nil, errors.New("no eligibility policy given")
	}
	pub, base, err := readPublished(cfg)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, pub: pub, version: base + 1, workers: cfg.Workers}
	if r.workers < 1 {
		r.workers = runtime.GOMAXPROCS(0)
	}
	r.work, err = os.MkdirTemp(cfg.TempDir, "keyceremony-stable-")
	if err != nil {
		return nil, fmt.Errorf("making work directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(r.work)
		}
	}()
	if err := r.phaseA(); err != nil {
		return nil, err
	}
	if err := r.phaseB(); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

func (r *run) bucketPath(kind string, b int) string {
	return filepath.Join(r.work, fmt.Sprintf("%s-%03d", kind, b))
}

// phaseA reads the export once, merged with the previous ledger.
func (r *run) phaseA() error {
	x, err := NewExportReader(r.cfg.Export, r.cfg.ExportName)
	if err != nil {
		return err
	}
	r.hdr = x.Header()

	var lr *LedgerReader
	if r.pub != nil {
		f, err := os.Open(r.pub.ledgerPath)
		if err != nil {
			return fmt.Errorf("opening the previous ledger: %w", err)
		}
		defer f.Close()
		if lr, err = NewLedgerReader(f); err != nil {
			return fmt.Errorf("%s: %w", r.pub.ledgerPath, err)
		}
		h := lr.Header()
		r.prevLedger = &h
		if h.StableVersion != r.pub.version {
			return fmt.Errorf("ledger %s is for stable version %d: %w", r.pub.ledgerPath, h.StableVersion, ErrPublished)
		}
	}

	lf, err := os.Create(filepath.Join(r.work, "ledger"))
	if err != nil {
		return err
	}
	defer lf.Close()
	lhash := sha256.New()
	lcount := &countWriter{}
	lw, err := NewLedgerWriter(io.MultiWriter(lf, lhash, lcount), LedgerHeader{Repository: r.hdr.Repository, ListingTime: r.hdr.Generated, StableVersion: r.version})
	if err != nil {
		return err
	}

	var spills [numBuckets]*bufio.Writer
	var files [numBuckets]*os.File
	for b := range spills {
		f, err := os.Create(r.bucketPath("in", b))
		if err != nil {
			return err
		}
		defer f.Close()
		files[b], spills[b] = f, bufio.NewWriterSize(f, 64<<10)
	}

	// The reader runs on its own goroutine and hands over copies of its
	// records in batches.
	type batch struct {
		recs []Record
		err  error
	}
	ch := make(chan batch, 8)
	free := make(chan []Record, 10)
	for i := 0; i < 10; i++ {
		free <- make([]Record, 0, 1024)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(ch)
		buf := <-free
		for {
			rec, err := x.Next()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				select {
				case ch <- batch{recs: buf, err: err}:
				case <-stop:
				}
				return
			}
			buf = append(buf, *rec)
			if len(buf) == cap(buf) {
				select {
				case ch <- batch{recs: buf}:
				case <-stop:
					return
				}
				select {
				case buf = <-free:
				case <-stop:
					return
				}
			}
		}
	}()

	var (
		le      *LedgerEntry
		lerr    error
		spb     []byte
		sr      spillRec
		at      = r.hdr.Generated
		listing time.Time
	)
	if lr != nil {
		listing = r.prevLedger.ListingTime
		le, lerr = lr.Next()
	}
	advance := func() error {
		le, lerr = lr.Next()
		if lerr != nil && lerr != io.EOF {
			return fmt.Errorf("%s: %w", r.pub.ledgerPath, lerr)
		}
		return nil
	}
	if lerr != nil && lerr != io.EOF {
		return fmt.Errorf("%s: %w", r.pub.ledgerPath, lerr)
	}
	gone := func(e *LedgerEntry) {
		sr = spillRec{Kind: spillGone, Path: e.Path, Project: e.Project}
		h := sha256.Sum256([]byte(e.Path))
		spb = sr.append(spb[:0])
		spills[h[0]].Write(spb)
	}
	var lent LedgerEntry
	for bt := range ch {
		for i := range bt.recs {
			rec := &bt.recs[i]
			hold, reason := holdNone, ""
			// Merge with the previous ledger: both are sorted by path.
			inLedger, sameContent := false, false
			for lr != nil && lerr == nil && le.Path < rec.Path {
				gone(le)
				if err := advance(); err != nil {
					return err
				}
			}
			if lr != nil && lerr == nil && le.Path == rec.Path {
				inLedger = true
				sameContent = le.Length == rec.Length && le.SHA256 == rec.SHA256
				if err := advance(); err != nil {
					return err
				}
			}
			if ok, why := r.cfg.Eligible(rec, at); !ok {
				hold, reason = holdPolicy, sanitize(why)
			}
			if lr != nil {
				switch {
				case !inLedger && rec.UploadTime.Before(listing):
					hold = holdBackdated
				case inLedger && !sameContent:
					hold = holdRelisted
				}
			}
			sr = spillRec{Kind: spillNew, Hold: hold, Path: rec.Path, Project: rec.Project, Version: rec.Version,
				Filename: rec.Filename, Reason: reason, Length: rec.Length, SHA256: rec.SHA256,
				UploadTime: rec.UploadTime.Unix(), Yanked: rec.Yanked, YankedReason: rec.YankedReason,
				RequiresPython: rec.RequiresPython, CoreSHA256: rec.CoreMetadataSHA256, HasCore: rec.HasCoreMetadata}
			h := sha256.Sum256([]byte(rec.Path))
			spb = sr.append(spb[:0])
			spills[h[0]].Write(spb)
			lent = LedgerEntry{Path: rec.Path, Project: rec.Project, Length: rec.Length, SHA256: rec.SHA256}
			if err := lw.Add(&lent); err != nil {
				return fmt.Errorf("writing the ledger: %w", err)
			}
		}
		if bt.err != nil {
			return bt.err
		}
		free <- bt.recs[:0]
	}
	for lr != nil && lerr == nil {
		gone(le)
		if err := advance(); err != nil {
			return err
		}
	}
	if lr != nil {
		size, sum, _ := lr.FileDigest()
		if size != r.pub.ledgerLen || sum != r.pub.ledgerSum {
			return fmt.Errorf("%s does not match the digest stable %d signed: %w", r.pub.ledgerPath, r.pub.version, ErrPublished)
		}
	}
	if err := lw.Close(); err != nil {
		return fmt.Errorf("writing the ledger: %w", err)
	}
	r.ledgerLen = lcount.n
	copy(r.ledgerSum[:], lhash.Sum(nil))
	for b := range spills {
		if err := spills[b].Flush(); err != nil {
			return err
		}
		if err := files[b].Close(); err != nil {
			return err
		}
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

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

// oldTargets returns the published stable targets whose path hash starts
// with byte b, sorted by path, reading and verifying the bins involved.
func (r *run) oldTargets(b int) ([]tuf.BinTarget, error) {
	if r.pub == nil {
		return nil, nil
	}
	l := r.pub.layout
	// Bins covering hashes b<<24 .. (b+1)<<24-1.
	var lo, hi int
	if l.Bits >= 8 {
		lo, hi = b<<(l.Bits-8), (b+1)<<(l.Bits-8)
	} else {
		lo = b >> (8 - l.Bits)
		hi = lo + 1
	}
	var out []tuf.BinTarget
	for i := lo; i < hi; i++ {
		name := l.Name(i)
		file := filepath.Join(r.pub.dir, fmt.Sprintf("%d.%s.json", r.pub.version, name))
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading published bin: %w: %w", ErrPublished, err)
		}
		bin, err := tuf.ParseBin(data, file)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPublished, err)
		}
		if err := bin.Verify(&r.pub.stable.Signed, name); err != nil {
			return nil, fmt.Errorf("%s: %w: %w", file, ErrPublished, err)
		}
		for _, t := range bin.Targets {
			if strings.HasPrefix(t.Path, pagesPrefix) {
				continue // index pages are made afresh from the files
			}
			h := sha256.Sum256([]byte(t.Path))
			// The same test as the delegation's path_hash_prefixes:
			// LayoutOf checked that bin i lists exactly the layout's
			// prefixes for i.
			if l.BinOfHash(&h) != i {
				return nil, fmt.Errorf("%s lists %q, outside its prefixes: %w", file, t.Path, ErrPublished)
			}
			if int(h[0]) == b {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b tuf.BinTarget) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// phaseB classifies every path, bucket by bucket.
func (r *run) phaseB() error {
	d := newDiff(r)
	r.diff = d
	for p := range r.projFiles {
		f, err := os.Create(r.bucketPath("proj", p))
		if err != nil {
			return err
		}
		r.projFiles[p] = &lockedWriter{f: f, bw: bufio.NewWriterSize(f, 64<<10)}
	}
	var chunkSums [numBuckets][32]byte
	err := r.parallel(numBuckets, func(b int) error {
		sum, err := r.bucketB(b)
		chunkSums[b] = sum
		return err
	})
	for _, w := range r.projFiles {
		if e := w.bw.Flush(); err == nil {
			err = e
		}
		if e := w.f.Close(); err == nil {
			err = e
		}
	}
	if err != nil {
		return err
	}
	d.finish(chunkSums[:])
	r.digest = d.Digest
	return nil
}

// bucketB merges bucket b's records with its published targets.
func (r *run) bucketB(b int) ([32]byte, error) {
	recs, err := readSpill(r.bucketPath("in", b))
	if err != nil {
		return [32]byte{}, err
	}
	old, err := r.oldTargets(b)
	if err != nil {
		return [32]byte{}, err
	}
	chunk, err := os.Create(r.bucketPath("diff", b))
	if err != nil {
		return [32]byte{}, err
	}
	defer chunk.Close()
	ch := sha256.New()
	cw := bufio.NewWriterSize(io.MultiWriter(chunk, ch), 64<<10)
	dec, err := os.Create(r.bucketPath("stable", b))
	if err != nil {
		return [32]byte{}, err
	}
	defer dec.Close()
	dw := bufio.NewWriterSize(dec, 64<<10)

	counts := map[string]*Counts{}
	var tot Counts
	gone := map[string]string{}
	var line, sb []byte
	emit := func(e *DiffEntry, keep *spillRec) {
		line = e.appendCanonical(line[:0])
		cw.Write(line)
		c := counts[e.Project]
		if c == nil {
			c = &Counts{}
			// A copy: e.Project may be a substring of the whole spill
			// file, which the diff must not keep alive.
			counts[strings.Clone(e.Project)] = c
		}
		c.add(e)
		tot.add(e)
		if keep != nil {
			var t tuf.BinTarget
			t.Path, t.Length, t.SHA256 = keep.Path, keep.Length, keep.SHA256
			sb = appendBinTarget(sb[:0], &t)
			dw.Write(sb)
			r.decided[b]++
			ph := sha256.Sum256([]byte(keep.Project))
			sb = keep.append(sb[:0])
			r.projFiles[int(ph[0])%numProjBucket].write(sb)
		}
	}
	i, j := 0, 0
	news := recs[:0:0]
	for k := range recs {
		if recs[k].Kind == spillGone {
			gone[recs[k].Path] = recs[k].Project
		} else {
			news = append(news, recs[k])
		}
	}
	for i < len(news) || j < len(old) {
		var e DiffEntry
		switch {
		case j >= len(old) || (i < len(news) && news[i].Path < old[j].Path):
			n := &news[i]
			i++
			e = DiffEntry{Path: n.Path, Project: n.Project, NewLength: n.Length, NewSHA256: n.SHA256, HasNew: true}
			switch n.Hold {
			case holdNone:
				e.Category = Added
				emit(&e, n)
			case holdPolicy:
				e.Category, e.Reason = Held, n.Reason
				emit(&e, nil)
			case holdBackdated:
				e.Category, e.Reason = Held, ReasonBackdated
				emit(&e, nil)
			case holdRelisted:
				e.Category, e.Reason = Held, ReasonRelisted
				emit(&e, nil)
			}
		case i >= len(news) || old[j].Path < news[i].Path:
			o := &old[j]
			j++
			e = DiffEntry{Category: Removed, Path: o.Path, Project: gone[o.Path], OldLength: o.Length, OldSHA256: o.SHA256, HasOld: true}
			emit(&e, nil)
		default:
			n, o := &news[i], &old[j]
			i++
			j++
			e = DiffEntry{Path: n.Path, Project: n.Project, NewLength: n.Length, NewSHA256: n.SHA256, HasNew: true, OldLength: o.Length, OldSHA256: o.SHA256, HasOld: true}
			if n.Length == o.Length && n.SHA256 == o.SHA256 {
				e.Category = Unchanged
				emit(&e, n)
				break
			}
			e.Category = Changed
			if r.cfg.Accept[n.Path] {
				e.Reason = ReasonAccepted
				emit(&e, n)
				break
			}
			e.Reason = ReasonKeptOld
			kept := *n
			kept.Length, kept.SHA256 = o.Length, o.SHA256
			emit(&e, &kept)
		}
	}
	if err := cw.Flush(); err != nil {
		return [32]byte{}, err
	}
	if err := dw.Flush(); err != nil {
		return [32]byte{}, err
	}
	r.diff.merge(counts, &tot)
	var sum [32]byte
	copy(sum[:], ch.Sum(nil))
	return sum, nil
}

func appendBinTarget(b []byte, t *tuf.BinTarget) []byte {
	b = appendStr(b, t.Path)
	b = binary.AppendUvarint(b, uint64(t.Length))
	return append(b, t.SHA256[:]...)
}

func readBinTargets(path string) ([]tuf.BinTarget, error) {
	data, err := readFileString(path)
	if err != nil {
		return nil, err
	}
	d := &spillDec{s: data}
	var out []tuf.BinTarget
	for d.i < len(d.s) && !d.bad {
		var t tuf.BinTarget
		t.Path = d.str()
		t.Length = int64(d.uvarint())
		d.sum(&t.SHA256)
		out = append(out, t)
	}
	if d.bad {
		return nil, errSpill
	}
	return out, nil
}

// PolicyEligible adapts a Policy to the pipeline.
func PolicyEligible(p *Policy) EligibleFunc {
	return func(r *Record, at time.Time) (bool, string) {
		ok, why := p.Eligible(r, at)
		if ok {
			return true, ""
		}
		return false, strings.ReplaceAll(why.String(), " ", "-")
	}
}
