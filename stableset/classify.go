package stableset

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
)

// Classifying: the export read once, merged with the previous ledger.
//
// Four kinds of goroutine: the export's reader and parsers
// (export.Reader.Batches); the merger, which alone walks the previous ledger
// and decides each path's category, batch by batch; formatters, which
// encode a batch's canonical diff lines, ledger records and work file
// records in parallel; and the writer, which takes the encoded batches in
// order, hashes the canonical form and the ledger, and writes them.

// Category codes in entry records (the project bucket work files).
const (
	codeUnchanged = iota
	codeAdded
	codeHeld
	codeRemoved
	codeChanged
	codeBackdated = 8   // with codeHeld
	codeAccepted  = 16  // with codeChanged
	codeStable    = 32  // a page record follows
	codeDropped   = 64  // with codeChanged: the path leaves the stable set
	codeLegacy    = 128 // with any: the file's name is legacy (export.Legacy)
)

// decision is what the merger decided for one record.
type decision struct {
	cat    Category
	reason string
	hasOld bool
	oldLen int64
	oldSum [32]byte
	stable bool // in the new stable set, with the old content if kept
	kept   bool
}

// removedEntry is a stable path of the previous ledger missing from the
// export, placed before record at.
type removedEntry struct {
	at      int
	reason  string // "" or ReasonTakenDown
	path    string
	project string
	length  int64
	sum     [32]byte
}

// errStopped means the pass stopped before the export's last batch: a bug,
// never bad input.
var errStopped = errors.New("the pass over the export stopped early")

// passBatch is one block of the export on its way through classify.
type passBatch struct {
	eb       export.Batch
	dec      []decision
	removed  []removedEntry
	prevPath string // the path before the batch's first, for the ledger

	// Made by a formatter.
	out     *fmtBufs
	nLedger int
	nStab   [numBuckets]int32
	done    chan struct{}
}

// fmtBufs are a formatted batch's bytes; the writer returns them to
// fmtPool.
type fmtBufs struct {
	canon, exc, ledger []byte
	stab               [numBuckets][]byte
	ents               [numProjBucket][]byte
	// rev: every entry's line for the review index (reviewindex.go),
	// by project bucket.
	rev [numProjBucket][]byte
}

var fmtPool = sync.Pool{New: func() any { return new(fmtBufs) }}

// checkExportTime holds the export's header against what the offline
// side knows: the ceremony's clock and the previous ledger (its listing
// time and repository).
func (r *run) checkExportTime() error {
	if r.cfg.Now.IsZero() {
		return fmt.Errorf("no ceremony clock given: %w", ErrExportTime)
	}
	skew := r.cfg.ClockSkew
	if skew == 0 {
		skew = DefaultClockSkew
	}
	g := r.hdr.Generated
	if g.After(r.cfg.Now.Add(skew)) {
		return fmt.Errorf("%s: generated %s, later than the ceremony's clock %s by more than %s: %w",
			r.cfg.ExportName, g.UTC().Format(time.RFC3339), r.cfg.Now.UTC().Format(time.RFC3339), skew, ErrExportTime)
	}
	if p := r.prevLedger; p != nil {
		if p.Repository != r.hdr.Repository {
			return fmt.Errorf("%s: repository %q, the previous ledger's is %q: %w", r.cfg.ExportName, r.hdr.Repository, p.Repository, ErrRepository)
		}
		if g.Before(p.ListingTime) {
			return fmt.Errorf("%s: generated %s, before the previous listing (stable v%d) of %s: %w",
				r.cfg.ExportName, g.UTC().Format(time.RFC3339), p.StableVersion, p.ListingTime.UTC().Format(time.RFC3339), ErrExportTime)
		}
	}
	return nil
}

// evalTime is when the policy's ages are evaluated: the earlier of the
// export's generation time and the ceremony's clock.
func (r *run) evalTime() time.Time {
	if r.cfg.Now.Before(r.hdr.Generated) {
		return r.cfg.Now
	}
	return r.hdr.Generated
}

// classify reads the export once: it classifies every path, hashes the
// canonical diff lines, writes the non-unchanged ones, the new ledger's
// files, the stable targets by path bucket and every entry's record
// (project, category, and for a stable file what its page shows) by
// project bucket.
func (r *run) classify() error {
	// The export file's SHA-256 is the reader's (export.Reader.FileSHA256:
	// the trailer's digest of the lines carried on over the trailer), so
	// the file is hashed once.
	x, err := export.NewReader(r.cfg.Export, r.cfg.ExportName)
	if err != nil {
		return err
	}
	r.hdr = x.Header()
	x.SetWorkDir(r.work)
	if ra, ok := r.cfg.Export.(io.ReaderAt); ok {
		// To name the paths of two records with one filename.
		x.SetSource(ra)
	}

	var lr *ledger.Reader
	if r.pub != nil {
		f, err := os.Open(r.pub.ledgerPath)
		if err != nil {
			return fmt.Errorf("opening the previous ledger: %w", err)
		}
		defer f.Close()
		if lr, err = ledger.NewReader(f); err != nil {
			return fmt.Errorf("%s: %w", r.pub.ledgerPath, err)
		}
		h := lr.Header()
		r.prevLedger = &h
		if h.StableVersion != r.pub.ledgerVersion {
			return fmt.Errorf("ledger %s is for stable version %d: %w", r.pub.ledgerPath, h.StableVersion, ErrPublished)
		}
		if n := string(r.cfg.Policy.Naming); h.Naming != n {
			return fmt.Errorf("policy naming %q, but stable v%d named its pages %q (%s): the pages would move and their old paths stay listed nowhere: %w", n, h.StableVersion, h.Naming, r.pub.ledgerPath, ErrNamingChanged)
		}
	}
	if err := r.checkExportTime(); err != nil {
		return err
	}
	r.diff = newDiff(r)
	if err := r.takedowns(); err != nil {
		return err
	}
	r.expediteAt = r.expediteIndex()
	if err := r.setupDelegations(); err != nil {
		return err
	}

	// The ledger and the exceptions file stay open for renderPages; prepare
	// closes them on failure.
	lf, err := createWork(r.bucketPath("ledger", 0))
	if err != nil {
		return fmt.Errorf("creating the work file for the ledger: %w", err)
	}
	r.ledgerFile = lf
	lw, err := ledger.NewWriter(lf, ledger.Header{Repository: r.hdr.Repository, ListingTime: r.hdr.Generated, StableVersion: r.version, Naming: string(r.cfg.Policy.Naming), Policy: r.cfg.Policy.Bytes()})
	if err != nil {
		return err
	}
	r.ledger = lw
	exc, err := createWork(r.bucketPath("exceptions", 0))
	if err != nil {
		return fmt.Errorf("creating the work file for the diff: %w", err)
	}
	r.excFile = exc
	r.exc = bufio.NewWriterSize(exc, 256<<10)
	r.canon = newAsyncHash()
	r.canon.Write(r.diff.canonicalHeader())
	stable := r.buckets("stable", numBuckets, 32<<10)
	defer stable.close()
	entries := r.buckets("entries", numProjBucket, 64<<10)
	defer entries.close()
	review := r.buckets(reviewPartKind, numProjBucket, 64<<10)
	defer review.close()

	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	defer halt()
	batches := x.Batches(r.workers, stop)

	// Formatters and the writer.
	jobs := make(chan *passBatch, r.workers)
	order := make(chan *passBatch, 2*r.workers+2)
	for w := 0; w < r.workers; w++ {
		go func() {
			for pb := range jobs {
				r.format(pb)
				close(pb.done)
			}
		}()
	}
	werr := make(chan error, 1)
	go func() {
		var err error
		defer func() { werr <- err }() // once it writes no more
		for pb := range order {
			select {
			case <-pb.done:
			case <-stop:
				return
			}
			if err != nil {
				continue
			}
			o := pb.out
			r.canon.Write(o.canon)
			r.exc.Write(o.exc)
			if err = lw.AddEncoded(o.ledger, pb.nLedger, pb.lastPath()); err != nil {
				err = fmt.Errorf("writing the ledger: %w", err)
				continue
			}
			for b := range o.stab {
				if len(o.stab[b]) > 0 {
					stable[b].Write(o.stab[b])
					r.nStable[b] += int64(pb.nStab[b])
				}
			}
			for b := range o.ents {
				if len(o.ents[b]) > 0 {
					entries[b].Write(o.ents[b])
				}
				if len(o.rev[b]) > 0 {
					review[b].Write(o.rev[b])
				}
			}
			pb.out = nil
			fmtPool.Put(o)
		}
	}()
	merr := r.merge(lr, batches, jobs, order, stop)
	close(jobs)
	close(order)
	if merr != nil {
		halt()
	}
	// The writer has stopped before any return closes the files it
	// writes (the deferred closes, prepare's on failure).
	wErr := <-werr
	if merr != nil {
		return merr
	}
	tr, ok := x.Trailer()
	if !ok {
		return fmt.Errorf("%s: the trailer was not verified: %w", r.cfg.ExportName, export.ErrTruncated)
	}
	r.diff.Export = tr
	if r.diff.ExportFileSHA256, ok = x.FileSHA256(); !ok {
		return fmt.Errorf("%s: the file's digest was not computed: %w", r.cfg.ExportName, export.ErrTruncated)
	}
	if wErr != nil {
		return wErr
	}
	if err := stable.close(); err != nil {
		return err
	}
	if err := entries.close(); err != nil {
		return err
	}
	if err := review.close(); err != nil {
		return err
	}
	if lr != nil {
		// The previous projects, by project bucket, for renderPages.
		prev := r.buckets("prevproj", numProjBucket, 16<<10)
		defer prev.close()
		var sb []byte
		for {
			p, err := lr.NextProject()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", r.pub.ledgerPath, err)
			}
			sb = appendLedgerProject(sb[:0], p)
			prev[projBucket(p.Project)].Write(sb)
			r.seen.prevProject(p)
		}
		if err := prev.close(); err != nil {
			return err
		}
		size, sum, _ := lr.FileDigest()
		if size != r.pub.ledgerLen || sum != r.pub.ledgerSum {
			return fmt.Errorf("%s does not match the digest stable %d signed: %w", r.pub.ledgerPath, r.pub.version, ErrPublished)
		}
	}
	return nil
}

func (pb *passBatch) lastPath() string {
	if n := len(pb.eb.Records); n > 0 {
		return pb.eb.Records[n-1].Path
	}
	return pb.prevPath
}

// merge walks the batches and the previous ledger in path order and
// decides every path; it hands each batch to the formatters and the
// writer.
func (r *run) merge(lr *ledger.Reader, batches <-chan export.Batch, jobs, order chan<- *passBatch, stop <-chan struct{}) error {
	var (
		le       *ledger.RawEntry
		lerr     error
		at       = r.evalTime()
		listing  time.Time
		prevPath string
	)
	advance := func() error {
		le, lerr = lr.NextRaw()
		if lerr != nil && lerr != io.EOF {
			return fmt.Errorf("%s: %w", r.pub.ledgerPath, lerr)
		}
		return nil
	}
	if lr != nil {
		listing = r.prevLedger.ListingTime
		if err := advance(); err != nil {
			return err
		}
	}
	removed := func(pb *passBatch, i int) {
		if le.Stable {
			path, reason := string(le.PathBytes), ""
			if r.takenDown[path] {
				// Taken down and gone from the listing too: the
				// take-down decision is applied all the same.
				reason = ReasonTakenDown
				r.markDecided(path)
			}
			r.reasons.add(Removed, reason)
			l, sum := le.StableContent()
			pb.removed = append(pb.removed, removedEntry{at: i, reason: reason, path: path, project: string(le.ProjectBytes), length: l, sum: sum})
		}
	}
	last := false
	for eb := range batches {
		pb := &passBatch{eb: eb, prevPath: prevPath, dec: make([]decision, len(eb.Records)), done: make(chan struct{})}
		for i := range eb.Records {
			rec := &eb.Records[i]
			for lr != nil && lerr == nil && string(le.PathBytes) < rec.Path {
				removed(pb, i)
				if err := advance(); err != nil {
					return err
				}
			}
			d := &pb.dec[i]
			var prev *ledger.RawEntry
			if lr != nil && lerr == nil && string(le.PathBytes) == rec.Path {
				prev = le
			}
			xi, expedite := -1, false
			if r.expediteAt != nil {
				if xi, expedite = r.expediteAt[rec.Path]; expedite {
					if err := r.expedite(xi, rec); err != nil {
						return err
					}
				}
			}
			if r.checker != nil {
				if err := r.checker.Add(rec); err != nil {
					return err
				}
			}
			switch {
			case r.delegated[rec.Project]:
				wasStable := prev != nil && prev.Stable
				if wasStable {
					d.hasOld = true
					d.oldLen, d.oldSum = prev.StableContent()
				}
				if err := r.delegate(rec, wasStable, d); err != nil {
					return err
				}
			case r.takenDown[rec.Path]:
				wasStable := prev != nil && prev.Stable
				if wasStable {
					d.hasOld = true
					d.oldLen, d.oldSum = prev.StableContent()
				}
				r.takeDown(rec.Path, wasStable, d)
			case prev != nil && prev.Stable:
				ol, osum := prev.StableContent()
				d.hasOld, d.oldLen, d.oldSum, d.stable = true, ol, osum, true
				switch {
				case ol == rec.Length && osum == rec.SHA256:
					d.cat = Unchanged
				default:
					r.decideChanged(rec.Path, d)
					r.noteChanged(rec.Path, rec.Project, rec.Version, rec.UploadTime, ol, osum, rec.Length, rec.SHA256)
				}
			default:
				ok, why := r.eligible(rec, at)
				switch {
				case prev != nil && prev.Dropped && r.keepsDropped(rec.Path):
					d.cat, d.reason = Held, ReasonDropped
				case lr != nil && prev == nil && r.addedFile(rec, d):
					// Dropped by its added-to-stable-release flag.
				case lr != nil && prev == nil && rec.UploadTime.Before(listing):
					d.cat, d.reason = Held, ReasonBackdated
					r.noteBackdated(rec.Path, rec.Project, rec.Version, rec.UploadTime, rec.Length, rec.SHA256)
				case prev != nil && (prev.Length != rec.Length || prev.SHA256 != rec.SHA256):
					d.cat, d.reason = Held, ReasonRelisted
				case !ok && expedite && why == reasonTooYoung:
					d.cat, d.reason, d.stable = Added, ReasonExpedited, true
				case !ok:
					d.cat, d.reason = Held, sanitize(why)
				default:
					d.cat, d.stable = Added, true
				}
			}
			if expedite {
				if err := r.expedited(xi, rec, d); err != nil {
					return err
				}
			}
			if (rec.Yanked || rec.Legacy&export.LegacyMismatch != 0) && d.cat != Removed {
				r.sawFile(rec, prev)
			}
			r.reasons.add(d.cat, d.reason)
			if rec.Legacy != 0 {
				r.legacy.add(rec.Legacy)
			}
			if prev != nil {
				if err := advance(); err != nil {
					return err
				}
			}
		}
		if eb.Err != nil {
			return eb.Err
		}
		if eb.Last {
			for lr != nil && lerr == nil {
				removed(pb, len(eb.Records))
				if err := advance(); err != nil {
					return err
				}
			}
			last = true
		}
		prevPath = pb.lastPath()
		select {
		case order <- pb:
		case <-stop:
			return errStopped
		}
		select {
		case jobs <- pb:
		case <-stop:
			return errStopped
		}
		if last {
			return nil
		}
	}
	return fmt.Errorf("reading %s: %w", r.cfg.ExportName, errStopped)
}

// format encodes a batch: canonical lines, exceptions, ledger records,
// stable targets by path bucket, entry records by project bucket.
func (r *run) format(pb *passBatch) {
	recs := pb.eb.Records
	o := fmtPool.Get().(*fmtBufs)
	o.canon, o.exc, o.ledger = o.canon[:0], o.exc[:0], o.ledger[:0]
	for b := range o.stab {
		o.stab[b] = o.stab[b][:0]
	}
	for b := range o.ents {
		o.ents[b] = o.ents[b][:0]
		o.rev[b] = o.rev[b][:0]
	}
	pb.out = o
	var (
		e    DiffEntry
		ent  ledger.Entry
		prev = []byte(pb.prevPath)
	)
	stab, ents := &o.stab, &o.ents
	entry := func(project string, code byte) {
		b := projBucket(project)
		ents[b] = appendStr(ents[b], project)
		ents[b] = append(ents[b], code)
	}
	emit := func() {
		n := len(o.canon)
		o.canon = e.appendCanonical(o.canon)
		b := projBucket(e.Project)
		if e.Category != Unchanged || e.Legacy != 0 {
			m := len(o.exc)
			o.exc = appendWorkLine(o.exc, o.canon[n:], e.Version, e.Legacy, e.Uploaded)
			o.rev[b] = append(o.rev[b], o.exc[m:]...)
		} else {
			// As Diff.Entries gives an unchanged entry: from the
			// ledger, which has no version or upload time.
			o.rev[b] = appendWorkLine(o.rev[b], o.canon[n:], "", 0, time.Time{})
		}
	}
	k := 0
	removedUpTo := func(i int) {
		for ; k < len(pb.removed) && pb.removed[k].at <= i; k++ {
			rm := &pb.removed[k]
			e = DiffEntry{Category: Removed, Reason: rm.reason, Path: rm.path, Project: rm.project, HasOld: true, OldLength: rm.length, OldSHA256: rm.sum}
			emit()
			entry(rm.project, codeRemoved)
		}
	}
	for i := range recs {
		removedUpTo(i)
		rec, d := &recs[i], &pb.dec[i]
		e = DiffEntry{Category: d.cat, Reason: d.reason, Path: rec.Path, Project: rec.Project, Version: rec.Version, HasNew: true, NewLength: rec.Length, NewSHA256: rec.SHA256,
			HasOld: d.hasOld, OldLength: d.oldLen, OldSHA256: d.oldSum, Legacy: rec.Legacy, Uploaded: rec.UploadTime}
		emit()
		ent = ledger.Entry{Path: rec.Path, Project: rec.Project, Length: rec.Length, SHA256: rec.SHA256, Stable: d.stable,
			Dropped: !d.stable && d.reason == ReasonDropped, Yanked: rec.Yanked}
		if d.kept {
			ent.Kept, ent.StableLength, ent.StableSHA256 = true, d.oldLen, d.oldSum
		}
		o.ledger = ledger.AppendEntry(o.ledger, &ent, prev)
		prev = append(prev[:0], rec.Path...)
		var code byte
		switch d.cat {
		case Unchanged:
			code = codeUnchanged
		case Added:
			code = codeAdded
		case Removed: // a listed file taken down
			code = codeRemoved
		case Held:
			code = codeHeld
			if d.reason == ReasonBackdated {
				code |= codeBackdated
			}
		case Changed:
			code = codeChanged
			switch d.reason {
			case ReasonAccepted:
				code |= codeAccepted
			case ReasonDropped:
				code |= codeDropped
			}
		}
		if rec.Legacy != 0 {
			code |= codeLegacy
		}
		if !d.stable {
			entry(rec.Project, code)
			continue
		}
		length, sum := rec.Length, &rec.SHA256
		if d.kept {
			length, sum = d.oldLen, &d.oldSum
		}
		if r.cfg.Policy.TargetMode.ListsFiles() { // in pages mode the pages alone are targets
			h := pb.eb.PathSHA256[i][0]
			pb.nStab[h]++
			stab[h] = appendStr(stab[h], rec.Path)
			stab[h] = binary.AppendUvarint(stab[h], uint64(length))
			stab[h] = append(stab[h], sum[:]...)
			stab[h] = append(stab[h], rec.BLAKE2b256[:]...) // the path's own: PyPI names files by it
		}
		b := projBucket(rec.Project)
		ents[b] = appendStr(ents[b], rec.Project)
		ents[b] = append(ents[b], code|codeStable)
		ents[b] = appendPageRec(ents[b], rec, length, sum)
	}
	removedUpTo(len(recs))
	pb.nLedger = len(recs)
	pb.dec = nil
}
