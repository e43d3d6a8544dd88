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
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

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
// (classify's format), and sortReviewBuckets sorts into review-entries.
// reviewSortedKind named each bucket's sorted lines when they were
// written to a file of their own and then copied: no longer made, it is
// still removed (removeReviewBuckets) and the tests check none is left.
const (
	reviewPartKind   = "reviewpart"
	reviewSortedKind = "reviewsorted"
)

// reviewItem is a review line with what ordering it needs, found once
// per line rather than in every comparison: offsets into the line of its
// path (the third field) and its project (the fourth), and the path's
// sort key (appendReviewSortKey), 56 bytes an entry and the key.
type reviewItem struct {
	line                      string
	key                       string // unless odd; in reviewKeys' blocks
	path, project, projectEnd uint32
	odd                       bool // the path has no sort key: compared by reviewPathKey
}

func (it *reviewItem) pathOf() string { return it.line[it.path : it.project-1] }

func (it *reviewItem) projectOf() string {
	if p := it.line[it.project:it.projectEnd]; p != "-" {
		return p
	}
	return ""
}

// reviewKeys holds the sort keys of a bucket's items in blocks of 64 KiB
// (one allocation a block, not one a key); scratch is where each key is
// made first.
type reviewKeys struct {
	sb      strings.Builder
	scratch []byte
}

// add returns a copy of key in the current block. The bytes already
// written to a strings.Builder never change, so the strings handed out
// stay valid as the block fills.
func (k *reviewKeys) add(key []byte) string {
	if k.sb.Cap()-k.sb.Len() < len(key) {
		k.sb = strings.Builder{}
		k.sb.Grow(max(64<<10, len(key)))
	}
	start := k.sb.Len()
	k.sb.Write(key)
	return k.sb.String()[start:]
}

// parseReviewItem finds the path and project of a review line (its third
// and fourth of 11 tab-separated fields; the tests hold it to a plain
// split, reviewFields) and appends the path's sort key to key.
func parseReviewItem(line string, key []byte) (reviewItem, []byte, error) {
	if len(line) >= 1<<31 {
		return reviewItem{}, key, errSpill
	}
	var ends [4]int
	pos := 0
	for i := range ends {
		j := strings.IndexByte(line[pos:], '\t')
		if j < 0 {
			return reviewItem{}, key, errSpill
		}
		ends[i] = pos + j
		pos += j + 1
	}
	if strings.Count(line[pos:], "\t") != 6 {
		return reviewItem{}, key, errSpill
	}
	it := reviewItem{line: line, path: uint32(ends[1] + 1), project: uint32(ends[2] + 1), projectEnd: uint32(ends[3])}
	key, ok := appendReviewSortKey(key, it.pathOf())
	it.odd = !ok
	return it, key, nil
}

// newReviewItem is parseReviewItem with the key kept in keys.
func newReviewItem(line string, keys *reviewKeys) (reviewItem, error) {
	it, key, err := parseReviewItem(line, keys.scratch[:0])
	keys.scratch = key
	if err == nil && !it.odd {
		it.key = keys.add(key)
	}
	return it, err
}

// appendReviewSortKey appends p's sort key, whose bytewise order is
// reviewPathKey's but for its last step (the paths themselves, compared
// when the keys are equal): 0 for a file or 1 for a page (pagesPrefix),
// then the version key of path.Base(p) (appendVersionKey). ok is false
// when the base name has no version key.
func appendReviewSortKey(b []byte, p string) ([]byte, bool) {
	mark := byte(0)
	if strings.HasPrefix(p, pagesPrefix) {
		mark = 1
	}
	return appendVersionKey(append(b, mark), path.Base(p))
}

// appendVersionKey appends a key of s whose bytewise order is
// CompareVersions' (and equal keys, CompareVersions 0), so that a sort
// compares keys made once instead of splitting names into runs in every
// comparison. Each run of non-digits is written as it is; each run of
// digits as a mark, the number of its digits after its leading zeros (one
// byte) and those digits. The mark is '0' for a run that starts s (it
// compares with a first byte that is not a digit as any digit does), and
// 0x00 for a run after non-digits (below every byte a longer run of
// non-digits can hold: CompareVersions puts the shorter run first). ok
// is false, and the caller must use CompareVersions, when s has a byte
// below 0x20 or a run of more than 255 digits after its leading zeros.
func appendVersionKey(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 {
			return b, false
		}
		if c < '0' || c > '9' {
			b = append(b, c)
			i++
			continue
		}
		j, k := i, i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		for k < j && s[k] == '0' {
			k++
		}
		if j-k > 255 {
			return b, false
		}
		mark := byte(0)
		if i == 0 {
			mark = '0'
		}
		b = append(b, mark, byte(j-k))
		b = append(b, s[k:j]...)
		i = j
	}
	return b, true
}

// compareReviewItems is reviewPathKey on the items' paths.
func compareReviewItems(a, b *reviewItem) int {
	if a.odd || b.odd {
		return reviewPathKey(a.pathOf(), b.pathOf())
	}
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	return strings.Compare(a.pathOf(), b.pathOf())
}

// reviewChunk is how many bytes of a project's review lines reviewOut
// gathers before it hashes and writes them.
const reviewChunk = 64 << 10

// reviewRunMax is the size of a bucket's review lines above which the
// bucket is sorted in runs of about this size, each written to a work
// file, and the runs merged, one line of each in memory (a variable for
// tests): a bucket holds about 1/64 of the diff's lines, and one project
// can hold many of them.
var reviewRunMax = 16 << 20

// reviewItems parses the review lines in data, then those of extra, with
// their keys in keys.
func reviewItems(data string, extra []string, keys *reviewKeys) ([]reviewItem, error) {
	its := make([]reviewItem, 0, strings.Count(data, "\n")+len(extra))
	for len(data) > 0 {
		i := strings.IndexByte(data, '\n')
		if i < 0 {
			return nil, errSpill
		}
		it, err := newReviewItem(data[:i+1], keys)
		if err != nil {
			return nil, err
		}
		its = append(its, it)
		data = data[i+1:]
	}
	for _, l := range extra {
		it, err := newReviewItem(l, keys)
		if err != nil {
			return nil, err
		}
		its = append(its, it)
	}
	return its, nil
}

// sortReviewItems returns the order of its: by project, then reviewKey.
// By project first, through the bucket's distinct projects (about 28
// lines each at PyPI's shape), then each project's lines by
// compareReviewItems: that comparison runs within a project only.
func sortReviewItems(its []reviewItem) []int32 {
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
	return idx
}

// sortReviewBucket sorts one project bucket's review lines (data, then
// extra) by project, then reviewKey, writes them to w and returns the
// bucket's projects, their offsets counted from off.
func sortReviewBucket(data string, extra []string, w io.Writer, off int64) ([]ReviewProject, int64, error) {
	its, err := reviewItems(data, extra, &reviewKeys{})
	if err != nil {
		return nil, off, err
	}
	out := newReviewOut(w, off)
	for _, i := range sortReviewItems(its) {
		if err := out.add(its[i].projectOf(), its[i].line); err != nil {
			return nil, off, err
		}
	}
	return out.close()
}

// reviewOut writes a bucket's sorted review lines and records its
// projects: each project's lines are gathered, hashed and written in
// chunks of at most reviewChunk bytes (a project can hold a large share
// of a bucket: its bytes are not copied whole).
type reviewOut struct {
	w    io.Writer
	off  int64 // where the next project starts
	ps   []ReviewProject
	cur  ReviewProject
	open bool // cur has lines
	buf  []byte
	h    hash.Hash
}

func newReviewOut(w io.Writer, off int64) *reviewOut {
	return &reviewOut{w: w, off: off, buf: make([]byte, 0, reviewChunk+4096), h: sha256.New()}
}

func (o *reviewOut) flush() error {
	o.h.Write(o.buf)
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	if err != nil {
		return fmt.Errorf("writing the review entries: %w", err)
	}
	return nil
}

// add writes the next line, of project.
func (o *reviewOut) add(project, line string) error {
	if !o.open || project != o.cur.Project {
		if err := o.end(); err != nil {
			return err
		}
		o.cur, o.open = ReviewProject{Project: strings.Clone(project), Offset: o.off}, true
		o.h.Reset()
	}
	if len(o.buf) >= reviewChunk {
		if err := o.flush(); err != nil {
			return err
		}
	}
	o.buf = append(o.buf, line...)
	o.cur.Entries++
	o.cur.Length += int64(len(line))
	return nil
}

// end ends the current project.
func (o *reviewOut) end() error {
	if !o.open {
		return nil
	}
	if err := o.flush(); err != nil {
		return err
	}
	o.h.Sum(o.cur.SHA256[:0])
	o.off += o.cur.Length
	o.ps = append(o.ps, o.cur)
	o.open = false
	return nil
}

// close ends the last project and returns the projects and the offset
// after them.
func (o *reviewOut) close() ([]ReviewProject, int64, error) {
	if err := o.end(); err != nil {
		return nil, o.off, err
	}
	return o.ps, o.off, nil
}

// readLineChunk reads whole lines from br until it holds at least max
// bytes or the input ends (done), into one string (grown to hint first).
func readLineChunk(br *bufio.Reader, limit, hint int) (s string, done bool, err error) {
	var sb strings.Builder
	sb.Grow(hint)
	for {
		line, err := br.ReadSlice('\n')
		sb.Write(line)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			return sb.String(), true, nil
		case err != nil:
			return "", false, fmt.Errorf("reading a work file: %w", err)
		}
		if sb.Len() >= limit {
			break
		}
	}
	if _, err := br.Peek(1); err == io.EOF {
		return sb.String(), true, nil
	} else if err != nil {
		return "", false, fmt.Errorf("reading a work file: %w", err)
	}
	return sb.String(), false, nil
}

// sortReviewBuckets sorts every project bucket's review lines
// (reviewPartKind), with pages the review lines of its page entries too
// (the pageentries work file), into review-entries, on every core: each
// bucket is written straight at its offset (the buckets in order, a
// bucket's length is its lines', known before it is sorted), so the
// sorted lines are written once, not to a file of their own and then
// copied. writeReviewIndex then writes the index of its projects.
func (r *run) sortReviewBuckets(pages bool) error {
	var offs [numProjBucket + 1]int64
	for pb := range numProjBucket {
		n := int64(0)
		fi, err := os.Stat(r.bucketPath(reviewPartKind, pb))
		switch {
		case err == nil:
			n = fi.Size()
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("opening a work file: %w", err)
		}
		if pages {
			n += r.pageReviewBytes[pb]
		}
		offs[pb+1] = offs[pb] + n
	}
	f, err := createWork(filepath.Join(r.work, reviewEntriesName))
	if err != nil {
		return fmt.Errorf("creating the review entries: %w", err)
	}
	defer f.Close()
	wa, ok := f.(io.WriterAt)
	if !ok {
		return errors.New("creating the review entries: the work file cannot be written at an offset")
	}
	err = r.parallel(numProjBucket, func(pb int) error {
		var extra []string
		if pages {
			var err error
			if extra, err = r.pageReviewLines(pb); err != nil {
				return err
			}
		}
		return r.reviewBucket(pb, extra, io.NewOffsetWriter(wa, offs[pb]), offs[pb+1]-offs[pb])
	})
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the review entries: %w", err)
	}
	return nil
}

// pageReviewLines returns the review lines of project bucket pb's page
// entries, from its pageentries work file (their canonical lines, which
// pageBucket wrote): each the line with pageWorkTail for its LF.
func (r *run) pageReviewLines(pb int) ([]string, error) {
	data, err := readFileString(r.bucketPath("pageentries", pb))
	if err != nil {
		return nil, err
	}
	lines := make([]string, 0, strings.Count(data, "\n"))
	var sb strings.Builder
	sb.Grow(len(data) + cap(lines)*(len(pageWorkTail)-1))
	for len(data) > 0 {
		i := strings.IndexByte(data, '\n')
		if i < 0 {
			return nil, fmt.Errorf("page entries: a line without its end: %w", errSpill)
		}
		start := sb.Len()
		sb.WriteString(data[:i])
		sb.Write(pageWorkTail)
		lines = append(lines, sb.String()[start:])
		data = data[i+1:]
	}
	return lines, nil
}

// pageReviewLength is the length of the review line of a page entry whose
// canonical line (with its LF) is n bytes long.
func pageReviewLength(n int) int64 { return int64(n - 1 + len(pageWorkTail)) }

// reviewBucket sorts project bucket pb's review lines, with the review
// lines of its page entries (extra), into w, which must receive exactly
// want bytes, and records its projects for writeReviewIndex, their
// offsets counted from the bucket's start. A bucket over reviewRunMax
// bytes is sorted in runs and merged (mergeReviewRuns).
func (r *run) reviewBucket(pb int, extra []string, w io.Writer, want int64) error {
	part := r.bucketPath(reviewPartKind, pb)
	f, err := openWorkOrEmpty(part)
	if err != nil {
		return err
	}
	defer f.Close()
	hint := 0
	if st, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil {
			hint = int(min(fi.Size(), int64(reviewRunMax)+64<<10))
		}
	}
	br := bufio.NewReaderSize(f, 64<<10)
	data, done, err := readLineChunk(br, reviewRunMax, hint)
	if err != nil {
		return err
	}
	var (
		ps []ReviewProject
		n  int64
	)
	if done {
		ps, n, err = sortReviewBucket(data, extra, w, 0)
	} else {
		ps, n, err = mergeReviewRuns(part, data, br, extra, w)
	}
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("review lines of bucket %d: %d bytes sorted, %d read: %w", pb, n, want, errSpill)
	}
	f.Close()
	os.Remove(part)
	r.reviewParts[pb], r.reviewSizes[pb] = ps, n
	return nil
}

// mergeReviewRuns sorts a bucket too large to sort whole: first, the
// bucket's first reviewRunMax bytes (or more, to the end of a line), then
// the rest of br in runs of that size, then extra, each run sorted
// (sortReviewItems) into a work file next to part; then the runs are
// merged into w, one line of each in memory, in the order the whole sort
// gives (the sort's order is total: no two lines have one path).
func mergeReviewRuns(part, first string, br *bufio.Reader, extra []string, w io.Writer) ([]ReviewProject, int64, error) {
	var runs []string
	defer func() {
		for _, r := range runs {
			os.Remove(r)
		}
	}()
	writeRun := func(data string) error {
		its, err := reviewItems(data, nil, &reviewKeys{})
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s-run%d", part, len(runs))
		runs = append(runs, name)
		rw := &workFile{path: name, size: 4 << 10}
		bw := bufio.NewWriterSize(rw, 256<<10)
		for _, i := range sortReviewItems(its) {
			bw.WriteString(its[i].line)
		}
		bw.Flush()
		return rw.Close()
	}
	for data, done := first, false; ; {
		if err := writeRun(data); err != nil {
			return nil, 0, err
		}
		if done {
			break
		}
		var err error
		if data, done, err = readLineChunk(br, reviewRunMax, reviewRunMax+64<<10); err != nil {
			return nil, 0, err
		}
	}
	if len(extra) > 0 {
		if err := writeRun(strings.Join(extra, "")); err != nil {
			return nil, 0, err
		}
	}
	// The merge: each run's head line, the least written first.
	type head struct {
		br  *bufio.Reader
		it  reviewItem
		key []byte
	}
	advance := func(h *head) (bool, error) {
		line, err := h.br.ReadString('\n')
		if err == io.EOF && line == "" {
			return false, nil
		}
		if err == io.EOF {
			return false, errSpill // a line without its end
		}
		if err != nil {
			return false, fmt.Errorf("reading a work file: %w", err)
		}
		h.it, h.key, err = parseReviewItem(line, h.key[:0])
		return err == nil, err
	}
	less := func(a, b *head) bool {
		if c := strings.Compare(a.it.projectOf(), b.it.projectOf()); c != 0 {
			return c < 0
		}
		if a.it.odd || b.it.odd {
			return reviewPathKey(a.it.pathOf(), b.it.pathOf()) < 0
		}
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c < 0
		}
		return a.it.pathOf() < b.it.pathOf()
	}
	var heads []*head
	for _, name := range runs {
		rf, err := openWork(name)
		if err != nil {
			return nil, 0, fmt.Errorf("opening a work file: %w", err)
		}
		defer rf.Close()
		h := &head{br: bufio.NewReaderSize(rf, 64<<10)}
		ok, err := advance(h)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			heads = append(heads, h)
		}
	}
	out := newReviewOut(w, 0)
	for len(heads) > 0 {
		m := 0
		for i := 1; i < len(heads); i++ {
			if less(heads[i], heads[m]) {
				m = i
			}
		}
		if err := out.add(heads[m].it.projectOf(), heads[m].it.line); err != nil {
			return nil, 0, err
		}
		ok, err := advance(heads[m])
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			heads = slices.Delete(heads, m, m+1)
		}
	}
	return out.close()
}

// writeReviewIndex writes review-index for the diff's digest, once the
// pass has ended and sortReviewBuckets has written review-entries; it
// returns the index's SHA-256.
func (r *run) writeReviewIndex(d *Diff) ([32]byte, error) {
	var ps []ReviewProject
	var base int64
	for b := range r.reviewParts {
		for _, p := range r.reviewParts[b] {
			p.Offset += base
			ps = append(ps, p)
		}
		base += r.reviewSizes[b]
		r.reviewParts[b] = nil
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
	if err := r.sortReviewBuckets(false); err != nil {
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
