package stableset

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// The review index: what lets the room open one project of a diff of
// millions of entries in well under a second, without the diff in memory.
// After the pass, every entry (the unchanged ones too, so that a project's
// stable view before and after is whole) is written once more, grouped by
// project, into the work file review-entries; review-index says where each
// project's entries are and binds each project's bytes by SHA-256. The
// index is read back as an input (the work directory is on the laptop's
// disk): its own SHA-256 must be the one the pass computed when it wrote
// it, and it is parsed strictly (parseReviewIndex, FuzzReviewIndex);
// every project's bytes are checked against their record when read.

// Work files of the review index.
const (
	reviewEntriesName = "review-entries"
	reviewIndexName   = "review-index"
	reviewIndexMagic  = "keyceremony-review-index 1\n"
	// reviewIndexEnd stands where a record's name length would, before
	// the trailer.
	reviewIndexEnd = 0xffff
)

// ErrReviewIndex: the review index or the entries it points to is not
// what the pass wrote (edited, truncated or corrupt); the error names the
// file and the offset.
var ErrReviewIndex = errors.New("review index refused")

// ReviewProject is one project's record in the review index: where its
// entries are in review-entries, how many, and their SHA-256.
type ReviewProject struct {
	Project string
	Offset  int64
	Length  int64
	Entries int64
	SHA256  [32]byte
}

// appendReviewRecord encodes a record: 2-byte name length, the name, then
// offset, length and entry count as 8-byte big-endian numbers, then the
// SHA-256 of the project's bytes.
func appendReviewRecord(b []byte, p *ReviewProject) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Project)))
	b = append(b, p.Project...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Length))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Entries))
	return append(b, p.SHA256[:]...)
}

// encodeReviewIndex encodes the index of the diff whose digest is digest:
// the magic line, the diff's digest (32 bytes), the records (strictly
// increasing by name, contiguous from offset 0), then 0xffff, the record
// count and the entries file's length (8 bytes each) and the SHA-256 of
// every byte before it. The projects' bytes cover the entries file
// exactly once, in any order.
func encodeReviewIndex(digest [32]byte, ps []ReviewProject) []byte {
	b := append([]byte(reviewIndexMagic), digest[:]...)
	var end int64
	for i := range ps {
		b = appendReviewRecord(b, &ps[i])
		end += ps[i].Length
	}
	b = binary.BigEndian.AppendUint16(b, reviewIndexEnd)
	b = binary.BigEndian.AppendUint64(b, uint64(len(ps)))
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// parseReviewIndex parses an index strictly: it returns the diff digest it
// names and its records, or an error naming name and the byte offset.
func parseReviewIndex(name string, b []byte) ([32]byte, []ReviewProject, error) {
	var digest [32]byte
	off := 0
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: offset %d: %s: %w", name, off, fmt.Sprintf(format, a...), ErrReviewIndex)
	}
	need := func(n int) error {
		if len(b)-off < n {
			return fail("truncated: %d bytes needed, %d left", n, len(b)-off)
		}
		return nil
	}
	if err := need(len(reviewIndexMagic) + 32); err != nil {
		return digest, nil, err
	}
	if string(b[:len(reviewIndexMagic)]) != reviewIndexMagic {
		return digest, nil, fail("not a review index (want %q)", strings.TrimSpace(reviewIndexMagic))
	}
	off = len(reviewIndexMagic)
	copy(digest[:], b[off:])
	off += 32
	var ps []ReviewProject
	var next int64
	for {
		if err := need(2); err != nil {
			return digest, nil, err
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		if n == reviewIndexEnd {
			break
		}
		start := off
		off += 2
		if err := need(n + 8*3 + 32); err != nil {
			return digest, nil, err
		}
		p := ReviewProject{Project: string(b[off : off+n])}
		for i := 0; i < n; i++ {
			if c := b[off+i]; c <= ' ' || c == 0x7f {
				return digest, nil, fail("project name has byte %#x", c)
			}
		}
		if len(ps) > 0 && p.Project <= ps[len(ps)-1].Project {
			off = start
			return digest, nil, fail("project %q does not follow %q", p.Project, ps[len(ps)-1].Project)
		}
		off += n
		p.Offset = int64(binary.BigEndian.Uint64(b[off:]))
		p.Length = int64(binary.BigEndian.Uint64(b[off+8:]))
		p.Entries = int64(binary.BigEndian.Uint64(b[off+16:]))
		if p.Length <= 0 || p.Length > 1<<40 || p.Entries <= 0 || p.Entries > p.Length {
			return digest, nil, fail("project %q: length %d, %d entries", p.Project, p.Length, p.Entries)
		}
		next += p.Length
		off += 24
		copy(p.SHA256[:], b[off:])
		off += 32
		ps = append(ps, p)
	}
	off += 2
	if err := need(8 + 8 + 32); err != nil {
		return digest, nil, err
	}
	if c := binary.BigEndian.Uint64(b[off:]); c != uint64(len(ps)) {
		return digest, nil, fail("trailer counts %d projects, the index has %d", c, len(ps))
	}
	if l := binary.BigEndian.Uint64(b[off+8:]); l != uint64(next) {
		return digest, nil, fail("trailer says the entries are %d bytes, the records %d", l, next)
	}
	// The projects' bytes cover the entries file exactly once.
	byOff := slices.Clone(ps)
	slices.SortFunc(byOff, func(a, b ReviewProject) int { return cmp.Compare(a.Offset, b.Offset) })
	var at int64
	for _, p := range byOff {
		if p.Offset != at {
			return digest, nil, fail("project %q's entries start at %d, not %d", p.Project, p.Offset, at)
		}
		at += p.Length
	}
	off += 16
	if sum := sha256.Sum256(b[:off]); !bytes.Equal(sum[:], b[off:off+32]) {
		return digest, nil, fail("trailer digest does not match")
	}
	off += 32
	if off != len(b) {
		return digest, nil, fail("%d bytes after the trailer", len(b)-off)
	}
	return digest, ps, nil
}

// reviewKey orders a project's entries: the files by file name (numbers
// as numbers, CompareVersions, so by version), then path; the pages
// (simple/...) after the files.
func reviewKey(a, b *DiffEntry) int { return reviewPathKey(a.Path, b.Path) }

// reviewPathKey is reviewKey on the entries' paths.
func reviewPathKey(a, b string) int {
	pa, pb := strings.HasPrefix(a, pagesPrefix), strings.HasPrefix(b, pagesPrefix)
	if pa != pb {
		if pa {
			return 1
		}
		return -1
	}
	if c := CompareVersions(path.Base(a), path.Base(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// reviewPartKind names the work files of every entry's review line by
// project bucket, which the pass writes as the entries stream by
// (classify's format); reviewSortedKind, each bucket's lines sorted by
// project, then reviewKey (pageBucket, on every core).
const (
	reviewPartKind   = "reviewpart"
	reviewSortedKind = "reviewsorted"
)

// reviewItem is a review line with what ordering it needs, found once
// per line rather than in every comparison: offsets into the line of
// its path (the third field), the path's base name and its project (the
// fourth), 40 bytes an entry.
type reviewItem struct {
	line                string
	path, base, baseEnd uint32
	project, projectEnd uint32
	page                bool // the path is under pagesPrefix
	odd                 bool // path.Base(path) is not the path's tail: compared by reviewPathKey
}

func (it *reviewItem) pathOf() string { return it.line[it.path : it.project-1] }

func (it *reviewItem) projectOf() string {
	if p := it.line[it.project:it.projectEnd]; p != "-" {
		return p
	}
	return ""
}

// newReviewItem finds the path and project of a review line (its third
// and fourth of 11 tab-separated fields; the tests hold it to a plain
// split, reviewFields), and the path's base name.
func newReviewItem(line string) (reviewItem, error) {
	if len(line) >= 1<<31 {
		return reviewItem{}, errSpill
	}
	var ends [4]int
	pos := 0
	for i := range ends {
		j := strings.IndexByte(line[pos:], '\t')
		if j < 0 {
			return reviewItem{}, errSpill
		}
		ends[i] = pos + j
		pos += j + 1
	}
	if strings.Count(line[pos:], "\t") != 6 {
		return reviewItem{}, errSpill
	}
	it := reviewItem{line: line, path: uint32(ends[1] + 1), project: uint32(ends[2] + 1), projectEnd: uint32(ends[3])}
	p := it.pathOf()
	it.page = strings.HasPrefix(p, pagesPrefix)
	// path.Base, as offsets: the last element after trailing slashes.
	e := len(p)
	for e > 0 && p[e-1] == '/' {
		e--
	}
	if e == 0 || e != len(p) {
		it.odd = true // "", "/", or a trailing slash (never a target path)
		return it, nil
	}
	it.base, it.baseEnd = it.path+uint32(strings.LastIndexByte(p, '/')+1), it.path+uint32(e)
	return it, nil
}

// compareReviewItems is reviewPathKey on the items' paths.
func compareReviewItems(a, b *reviewItem) int {
	if a.odd || b.odd {
		return reviewPathKey(a.pathOf(), b.pathOf())
	}
	if a.page != b.page {
		if a.page {
			return 1
		}
		return -1
	}
	if c := compareVersionsTail(a.line[a.base:a.baseEnd], b.line[b.base:b.baseEnd]); c != 0 {
		return c
	}
	return strings.Compare(a.pathOf(), b.pathOf())
}

// compareVersionsTail is CompareVersions, starting at the run (of digits
// or of non-digits) in which a and b first differ: the runs before it are
// the same bytes in both, so they compare equal, and the lengths left
// differ as the whole strings' do. A project's file names share a long
// prefix (the name, often the version's first parts).
func compareVersionsTail(a, b string) int {
	k := 0
	for k < len(a) && k < len(b) && a[k] == b[k] {
		k++
	}
	if k == 0 {
		return CompareVersions(a, b)
	}
	// The run holding a[k-1] starts at the same place in both.
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	s, d := k-1, digit(a[k-1])
	for s > 0 && digit(a[s-1]) == d {
		s--
	}
	return CompareVersions(a[s:], b[s:])
}

// reviewChunk is how many bytes of a project's review lines
// sortReviewBucket gathers before it hashes and writes them.
const reviewChunk = 64 << 10

// sortReviewBucket sorts one project bucket's review lines (data, then
// extra) by project, then reviewKey, writes them to w and returns the
// bucket's projects, their offsets counted from off.
func sortReviewBucket(data string, extra []string, w io.Writer, off int64) ([]ReviewProject, int64, error) {
	its := make([]reviewItem, 0, strings.Count(data, "\n")+len(extra))
	add := func(line string) error {
		it, err := newReviewItem(line)
		if err != nil {
			return err
		}
		its = append(its, it)
		return nil
	}
	for len(data) > 0 {
		i := strings.IndexByte(data, '\n')
		if i < 0 {
			return nil, off, errSpill
		}
		if err := add(data[:i+1]); err != nil {
			return nil, off, err
		}
		data = data[i+1:]
	}
	for _, l := range extra {
		if err := add(l); err != nil {
			return nil, off, err
		}
	}
	// By project first, through the bucket's distinct projects (about 28
	// lines each at PyPI's shape), then each project's lines by
	// reviewPathKey: the costly comparison runs within a project only.
	groups := map[string][]int32{}
	for i := range its {
		p := its[i].projectOf()
		groups[p] = append(groups[p], int32(i))
	}
	idx := make([]int32, 0, len(its))
	for _, p := range slices.Sorted(maps.Keys(groups)) {
		g := groups[p]
		slices.SortFunc(g, func(i, j int32) int { return compareReviewItems(&its[i], &its[j]) })
		idx = append(idx, g...)
	}
	// Each project's lines gathered, hashed and written in chunks of at
	// most reviewChunk bytes (a project can hold a large share of a
	// bucket: its bytes are not copied whole).
	var (
		ps  []ReviewProject
		buf = make([]byte, 0, reviewChunk+4096)
		h   = sha256.New()
	)
	flush := func() error {
		h.Write(buf)
		_, err := w.Write(buf)
		buf = buf[:0]
		if err != nil {
			return fmt.Errorf("writing the review entries: %w", err)
		}
		return nil
	}
	for k := 0; k < len(idx); {
		proj := its[idx[k]].projectOf()
		p := ReviewProject{Project: strings.Clone(proj), Offset: off}
		h.Reset()
		for ; k < len(idx) && its[idx[k]].projectOf() == proj; k++ {
			if len(buf) >= reviewChunk {
				if err := flush(); err != nil {
					return nil, off, err
				}
			}
			l := its[idx[k]].line
			buf = append(buf, l...)
			p.Entries++
			p.Length += int64(len(l))
		}
		if err := flush(); err != nil {
			return nil, off, err
		}
		h.Sum(p.SHA256[:0])
		off += p.Length
		ps = append(ps, p)
	}
	return ps, off, nil
}

// reviewBucket sorts project bucket pb's review lines, with the review
// lines of its page entries (pages), into its reviewSortedKind work file
// and records its projects for writeReviewIndex. It runs in pageBucket,
// on every core.
func (r *run) reviewBucket(pb int, pages []DiffEntry) error {
	data, err := readFileString(r.bucketPath(reviewPartKind, pb))
	if err != nil {
		return err
	}
	extra := make([]string, len(pages))
	var line []byte
	for i := range pages {
		line = pages[i].appendCanonical(line[:0])
		extra[i] = string(appendWorkLine(nil, line, "", 0, time.Time{}))
	}
	wf := r.workFile(reviewSortedKind, pb, 256<<10)
	defer wf.Close()
	ps, n, err := sortReviewBucket(data, extra, wf, 0)
	if err != nil {
		return err
	}
	if err := wf.Close(); err != nil {
		return fmt.Errorf("writing the review entries: %w", err)
	}
	os.Remove(r.bucketPath(reviewPartKind, pb))
	r.reviewParts[pb], r.reviewSizes[pb] = ps, n
	return nil
}

// writeReviewIndex joins the sorted buckets into review-entries (in
// bucket order, copied by the kernel) and writes review-index for the
// diff's digest, once the pass has ended; it returns the index's SHA-256.
func (r *run) writeReviewIndex(d *Diff) ([32]byte, error) {
	var sum [32]byte
	ef, err := createWork(filepath.Join(r.work, reviewEntriesName))
	if err != nil {
		return sum, fmt.Errorf("creating the review entries: %w", err)
	}
	defer ef.Close()
	var ps []ReviewProject
	var base int64
	for b := range r.reviewParts {
		if r.reviewSizes[b] > 0 {
			name := r.bucketPath(reviewSortedKind, b)
			f, err := os.Open(name)
			if err != nil {
				return sum, fmt.Errorf("opening the review entries: %w", err)
			}
			n, err := io.Copy(ef, f)
			f.Close()
			if err != nil || n != r.reviewSizes[b] {
				return sum, fmt.Errorf("writing the review entries: %d of %d bytes: %v", n, r.reviewSizes[b], err)
			}
			os.Remove(name)
		}
		for _, p := range r.reviewParts[b] {
			p.Offset += base
			ps = append(ps, p)
		}
		base += r.reviewSizes[b]
		r.reviewParts[b] = nil
	}
	if err := ef.Close(); err != nil {
		return sum, fmt.Errorf("writing the review entries: %w", err)
	}
	return r.writeIndexFile(d, ps)
}

// writeIndexFile writes review-index of the projects ps (the records by
// name; the projects' bytes stay in bucket order, and the parser checks
// that they cover the entries exactly once).
func (r *run) writeIndexFile(d *Diff, ps []ReviewProject) ([32]byte, error) {
	var sum [32]byte
	slices.SortFunc(ps, func(a, b ReviewProject) int { return strings.Compare(a.Project, b.Project) })
	dg, err := digestBytes32(d.Digest)
	if err != nil {
		return sum, err
	}
	idx := encodeReviewIndex(dg, ps)
	f, err := createWork(filepath.Join(r.work, reviewIndexName))
	if err != nil {
		return sum, fmt.Errorf("creating the review index: %w", err)
	}
	if _, err := f.Write(idx); err != nil {
		f.Close()
		return sum, fmt.Errorf("writing the review index: %w", err)
	}
	if err := f.Close(); err != nil {
		return sum, fmt.Errorf("writing the review index: %w", err)
	}
	return sha256.Sum256(idx), nil
}

// buildReviewIndex writes review-entries and review-index into the work
// directory from the diff's entries and returns the index's SHA-256: for
// a diff whose pass did not write them (a kept pass reopened by
// OpenReviewed). The entries are spilled by project bucket as they are
// walked (by checkPass's own walk with Config.ReviewKept, otherwise by a
// walk here), then each bucket is sorted as the pass sorts it
// (reviewBucket, on every core), so the index is the pass's byte for
// byte. Memory: one project bucket's entries per worker.
func (r *run) buildReviewIndex(d *Diff) ([32]byte, error) {
	var sum [32]byte
	os.Remove(filepath.Join(r.work, reviewEntriesName))
	os.Remove(filepath.Join(r.work, reviewIndexName))
	if !r.reviewSpilled {
		r.removeReviewBuckets()
		parts := r.buckets(reviewPartKind, numProjBucket, 32<<10)
		defer parts.close()
		var line []byte
		err := d.Entries(func(e *DiffEntry) error {
			line = e.appendCanonical(line[:0])
			line = appendWorkLine(line[:0], line, e.Version, e.Legacy, e.Uploaded)
			_, err := parts[projBucket(e.Project)].Write(line)
			return err
		})
		if err != nil {
			return sum, err
		}
		if err := parts.close(); err != nil {
			return sum, err
		}
	}
	r.reviewSpilled = false
	if err := r.parallel(numProjBucket, func(pb int) error { return r.reviewBucket(pb, nil) }); err != nil {
		return sum, err
	}
	return r.writeReviewIndex(d)
}

// removeReviewBuckets removes the review's bucket work files an earlier
// run left.
func (r *run) removeReviewBuckets() {
	for b := 0; b < numProjBucket; b++ {
		os.Remove(r.bucketPath(reviewPartKind, b))
		os.Remove(r.bucketPath(reviewSortedKind, b))
	}
}

// keptReview is a kept pass's review index and entries, set aside.
type keptReview struct{ index, entries string }

// keptSuffix names a kept pass's review files once set aside.
const keptSuffix = ".kept"

// setAsideReview renames the kept pass's review files (written by the
// pass that `stable diff` kept) out of buildReviewIndex's way.
func (r *run) setAsideReview() (*keptReview, error) {
	k := &keptReview{index: filepath.Join(r.work, reviewIndexName+keptSuffix), entries: filepath.Join(r.work, reviewEntriesName+keptSuffix)}
	for _, f := range []struct{ from, to string }{{reviewIndexName, k.index}, {reviewEntriesName, k.entries}} {
		from := filepath.Join(r.work, f.from)
		if err := os.Rename(from, f.to); err != nil {
			return nil, fmt.Errorf("%s: the kept pass's review file: %w: %w: %w", from, err, ErrPassEdited, ErrReviewIndex)
		}
	}
	return k, nil
}

// checkKeptReview holds the kept pass's review index and entries against
// the index made again from the checked entries (in r.work): the same
// bytes, or an error naming the first project whose record or bytes
// differ (ErrPassEdited and ErrReviewIndex). The kept files are removed.
func (r *run) checkKeptReview(d *Diff, k *keptReview) error {
	defer os.Remove(k.index)
	defer os.Remove(k.entries)
	edited := func(format string, a ...any) error {
		return fmt.Errorf("%s: the kept pass's review: %s: %w: %w", r.work, fmt.Sprintf(format, a...), ErrPassEdited, ErrReviewIndex)
	}
	fresh, err := os.ReadFile(filepath.Join(r.work, reviewIndexName))
	if err != nil {
		return fmt.Errorf("reading the review index: %w", err)
	}
	_, want, err := parseReviewIndex(reviewIndexName, fresh)
	if err != nil {
		return err
	}
	kb, err := os.ReadFile(k.index)
	if err != nil {
		return fmt.Errorf("reading the review index: %w", err)
	}
	kd, got, err := parseReviewIndex(k.index, kb)
	if err != nil {
		return edited("%v", err)
	}
	// Record by record, in name order: the first project whose record
	// is missing, extra or of other entries; then one at another offset
	// (the bytes before it differ, or their order).
	for _, offsets := range []bool{false, true} {
		for i, j := 0, 0; i < len(want) || j < len(got); {
			switch {
			case j == len(got) || i < len(want) && want[i].Project < got[j].Project:
				return edited("project %s (%d entries) has no record in the kept index", projectName(want[i].Project), want[i].Entries)
			case i == len(want) || got[j].Project < want[i].Project:
				return edited("the kept index has project %s (%d entries), which the pass does not have", projectName(got[j].Project), got[j].Entries)
			}
			w, g := &want[i], &got[j]
			if w.Entries != g.Entries || w.Length != g.Length || w.SHA256 != g.SHA256 || offsets && w.Offset != g.Offset {
				return edited("project %s: the kept index records %d entries, %d bytes at offset %d, sha256 %x; the pass makes %d entries, %d bytes at offset %d, sha256 %x", projectName(w.Project), g.Entries, g.Length, g.Offset, g.SHA256, w.Entries, w.Length, w.Offset, w.SHA256)
			}
			i++
			j++
		}
	}
	if dg, _ := digestBytes32(d.Digest); kd != dg {
		return edited("the kept index names diff %x, not %s", kd, d.Digest)
	}
	if !bytes.Equal(kb, fresh) {
		return edited("%s differs from the index the pass makes", k.index)
	}
	// The same records: each project's kept bytes must have its hash.
	ef, err := os.Open(k.entries)
	if err != nil {
		return edited("%v", err)
	}
	defer ef.Close()
	byOff := slices.Clone(want)
	slices.SortFunc(byOff, func(a, b ReviewProject) int { return cmp.Compare(a.Offset, b.Offset) })
	br := bufio.NewReaderSize(ef, 1<<20)
	h := sha256.New()
	for i := range byOff {
		p := &byOff[i]
		h.Reset()
		if n, err := io.CopyN(h, br, p.Length); err != nil {
			return edited("%s: offset %d: project %s: %d of its %d bytes: %v", k.entries, p.Offset, projectName(p.Project), n, p.Length, err)
		}
		var sum [32]byte
		if h.Sum(sum[:0]); sum != p.SHA256 {
			return edited("%s: offset %d: project %s's %d bytes have sha256 %x, not the %x the pass makes", k.entries, p.Offset, projectName(p.Project), p.Length, sum, p.SHA256)
		}
	}
	if n, _ := io.Copy(io.Discard, br); n > 0 {
		return edited("%s: %d bytes after the last project's", k.entries, n)
	}
	return nil
}

// digestBytes32 decodes a diff digest (64 hex digits).
func digestBytes32(s string) ([32]byte, error) {
	var b [32]byte
	if n, err := hex.Decode(b[:], []byte(s)); err != nil || n != 32 || len(s) != 64 {
		return b, fmt.Errorf("digest %q is not 64 hex digits", s)
	}
	return b, nil
}

// Review browses a diff through its review index: one project at a time,
// a search by project or path, never the whole diff in memory.
type Review struct {
	d        *Diff
	projects []ReviewProject
	entries  *os.File
	name     string // the entries file, for errors
}

// Review builds the diff's review index (once; later calls reuse it) and
// opens it: the index file must hash to what was written and parse
// strictly, and name this diff's digest. Close the Review before the
// Diff.
func (d *Diff) Review() (*Review, error) {
	if d.run == nil || d.run.work == "" {
		return nil, fmt.Errorf("diff is closed")
	}
	r := d.run
	if !r.reviewBuilt {
		// A kept pass reopened by OpenReviewed: its review files are
		// set aside, the index is made again from the checked entries,
		// and the kept one must be that index byte for byte
		// (checkKeptReview).
		var kept *keptReview
		if r.canonFile != "" {
			var err error
			if kept, err = r.setAsideReview(); err != nil {
				return nil, err
			}
		}
		sum, err := r.buildReviewIndex(d)
		if err != nil {
			return nil, fmt.Errorf("writing the review index: %w", err)
		}
		if kept != nil {
			if err := r.checkKeptReview(d, kept); err != nil {
				return nil, err
			}
		}
		r.reviewSum, r.reviewBuilt = sum, true
	}
	return openReview(d, filepath.Join(r.work, reviewIndexName), filepath.Join(r.work, reviewEntriesName), r.reviewSum)
}

// openReview reads the index at path, which must hash to want and name
// d's digest, and opens the entries file.
func openReview(d *Diff, index, entries string, want [32]byte) (*Review, error) {
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("reading the review index: %w", err)
	}
	digest, ps, err := parseReviewIndex(index, b)
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(b); got != want {
		return nil, fmt.Errorf("%s: sha256 %x, but the pass wrote %x: %w", index, got, want, ErrReviewIndex)
	}
	dg, err := digestBytes32(d.Digest)
	if err != nil {
		return nil, err
	}
	if digest != dg {
		return nil, fmt.Errorf("%s: offset %d: indexes diff %x, not %s: %w", index, len(reviewIndexMagic), digest, d.Digest, ErrReviewIndex)
	}
	f, err := os.Open(entries)
	if err != nil {
		return nil, fmt.Errorf("opening the review entries: %w", err)
	}
	return &Review{d: d, projects: ps, entries: f, name: entries}, nil
}

// Close closes the entries file.
func (rv *Review) Close() error { return rv.entries.Close() }

// Projects returns the index's records, sorted by name.
func (rv *Review) Projects() []ReviewProject { return rv.projects }

// FindProjects returns the projects whose name contains query, compared
// as the repository normalizes names (case, runs of - _ .); those that
// begin with it first, each group in name order.
func (rv *Review) FindProjects(query string) []ReviewProject {
	q := export.NormalizeProject(query)
	var pre, in []ReviewProject
	for _, p := range rv.projects {
		n := export.NormalizeProject(p.Project)
		switch {
		case strings.HasPrefix(n, q):
			pre = append(pre, p)
		case strings.Contains(n, q):
			in = append(in, p)
		}
	}
	return append(pre, in...)
}

// lookup returns the record of a project, by its exact or its normalized
// name.
func (rv *Review) lookup(project string) (*ReviewProject, bool) {
	i, ok := slices.BinarySearchFunc(rv.projects, project, func(p ReviewProject, n string) int { return strings.Compare(p.Project, n) })
	if ok {
		return &rv.projects[i], true
	}
	n := export.NormalizeProject(project)
	if n == project {
		return nil, false
	}
	i, ok = slices.BinarySearchFunc(rv.projects, n, func(p ReviewProject, n string) int { return strings.Compare(p.Project, n) })
	if ok {
		return &rv.projects[i], true
	}
	return nil, false
}

// ErrNoProject: the diff has no such project.
var ErrNoProject = errors.New("no such project in this diff")

// read returns a project's entries, checked against its record.
func (rv *Review) read(p *ReviewProject) ([]DiffEntry, error) {
	buf := make([]byte, p.Length)
	if _, err := rv.entries.ReadAt(buf, p.Offset); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: offset %d: truncated: project %q needs %d bytes: %w", rv.name, p.Offset, p.Project, p.Length, ErrReviewIndex)
		}
		return nil, fmt.Errorf("reading the review entries: %w", err)
	}
	if sum := sha256.Sum256(buf); sum != p.SHA256 {
		return nil, fmt.Errorf("%s: offset %d: project %q's %d bytes have sha256 %x, the index says %x: %w", rv.name, p.Offset, p.Project, p.Length, sum, p.SHA256, ErrReviewIndex)
	}
	es := make([]DiffEntry, 0, p.Entries)
	for off := 0; off < len(buf); {
		i := bytes.IndexByte(buf[off:], '\n')
		if i < 0 {
			return nil, fmt.Errorf("%s: offset %d: project %q: unterminated line: %w", rv.name, p.Offset+int64(off), p.Project, ErrReviewIndex)
		}
		e, err := parseCanonical(buf[off : off+i+1])
		if err != nil || e.Project != p.Project {
			return nil, fmt.Errorf("%s: offset %d: project %q: bad entry: %w", rv.name, p.Offset+int64(off), p.Project, ErrReviewIndex)
		}
		es = append(es, e)
		off += i + 1
	}
	if int64(len(es)) != p.Entries {
		return nil, fmt.Errorf("%s: offset %d: project %q has %d entries, the index says %d: %w", rv.name, p.Offset, p.Project, len(es), p.Entries, ErrReviewIndex)
	}
	return es, nil
}

// ProjectView is one project's drill-down: its counts and every entry,
// unchanged ones included, sorted by file name (so by version), then
// path, the pages last.
type ProjectView struct {
	Project string
	Counts  Counts
	Entries []DiffEntry
}

// Project returns a project's drill-down, by exact or normalized name
// (ErrNoProject otherwise).
func (rv *Review) Project(project string) (*ProjectView, error) {
	p, ok := rv.lookup(project)
	if !ok {
		return nil, fmt.Errorf("%q: %w", project, ErrNoProject)
	}
	es, err := rv.read(p)
	if err != nil {
		return nil, err
	}
	return &ProjectView{Project: p.Project, Counts: rv.counts(p.Project), Entries: es}, nil
}

// FindPaths calls fn for every entry whose path contains query, project
// by project in name order, each project's bytes checked against the
// index as they are read; it reads the whole entries file, one project at
// a time.
func (rv *Review) FindPaths(query string, fn func(*DiffEntry) error) error {
	for i := range rv.projects {
		es, err := rv.read(&rv.projects[i])
		if err != nil {
			return err
		}
		for j := range es {
			if strings.Contains(es[j].Path, query) {
				if err := fn(&es[j]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
