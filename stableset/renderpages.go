package stableset

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/tuf"

	"github.com/keyceremony/keyceremony/stableset/ledger"

	"github.com/keyceremony/keyceremony/stableset/simpleindex"
)

// Rendering the pages: the stable index pages. A project's pages are made again only
// when the digest of its stable files' page records (everything its pages
// show, in path order) differs from the one the previous ledger recorded;
// otherwise the previous pages' lengths and hashes, from the ledger, are
// listed again. Every page that is added, changed or removed is a diff
// entry.

// pageDigest is the digest of a project's page records: SHA-256 of
// "keyceremony-pages 1\n", the project, a zero byte, then each record's
// length (4 bytes, big-endian) and bytes. The records are hashed as they
// are gathered, pageDigestChunk bytes at a time, rather than copied whole
// first (a large project's records are megabytes).
type pageDigest struct {
	h   hash.Hash
	buf []byte
}

// pageDigestChunk is how many bytes of records pageDigest gathers before
// it hashes them.
const pageDigestChunk = 16 << 10

func newPageDigest() *pageDigest {
	return &pageDigest{h: sha256.New(), buf: make([]byte, 0, pageDigestChunk+1024)}
}

// sum returns the digest of project's page records bodies.
func (pd *pageDigest) sum(project string, bodies []string) (sum [32]byte) {
	pd.h.Reset()
	b := append(pd.buf[:0], "keyceremony-pages 1\n"...)
	b = append(b, project...)
	b = append(b, 0)
	for _, body := range bodies {
		if len(b) >= pageDigestChunk {
			pd.h.Write(b)
			b = b[:0]
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
		b = append(b, body...)
	}
	pd.h.Write(b)
	pd.buf = b[:0]
	pd.h.Sum(sum[:0])
	return sum
}

// naming is the policy's naming layout of the pages.
func (r *run) naming() simpleindex.Layout { return simpleindex.Layout(r.cfg.Policy.Naming) }

// renderPages decides every stable project's pages, renders those that change,
// writes the new ledger's projects, and finishes the diff.
func (r *run) renderPages() error {
	pt := r.buckets("pagetargets", numBuckets, 4<<10)
	defer pt.close()
	var mu sync.Mutex
	lws := make([]*lockedWriter, numBuckets)
	for b := range lws {
		lws[b] = &lockedWriter{w: pt[b]}
	}
	err := r.parallel(numProjBucket, func(pb int) error {
		ps, err := r.pageBucket(pb, lws, &mu)
		mu.Lock()
		r.projects = append(r.projects, ps...)
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	if err := pt.close(); err != nil {
		return err
	}
	// The review lines, every bucket's with its page entries', sorted into
	// review-entries.
	if err := r.sortReviewBuckets(true); err != nil {
		return fmt.Errorf("writing the review index: %w", err)
	}
	// The page entries, after every file's (simple/ sorts after
	// packages/): each bucket's are sorted, merge them.
	if err := r.mergePageEntries(); err != nil {
		return err
	}
	for i := range r.projects {
		r.diff.Summary.plus(&r.projects[i].Counts)
	}
	if err := r.exc.Flush(); err != nil {
		return err
	}
	if err := r.excFile.Close(); err != nil {
		return fmt.Errorf("writing the work file for the diff: %w", err)
	}
	// The new ledger's projects: each bucket's are sorted, merge them.
	if err := r.mergeProjects(); err != nil {
		return err
	}
	if err := r.ledger.Close(); err != nil {
		return fmt.Errorf("writing the ledger: %w", err)
	}
	r.ledgerLen, r.ledgerSum = r.ledger.Digest()
	if err := r.ledgerFile.Close(); err != nil {
		return fmt.Errorf("writing the work file for the ledger: %w", err)
	}
	sum := r.canon.Sum()
	r.diff.finish(sum, r.projects)
	r.projects = nil
	r.digest = r.diff.Digest
	// The review index, of the buckets sorted above: `stable review`
	// opens a project without a pass over the diff.
	rs, err := r.writeReviewIndex(r.diff)
	if err != nil {
		return fmt.Errorf("writing the review index: %w", err)
	}
	r.reviewSum, r.reviewBuilt = rs, true
	return nil
}

// pageBucket renders the pages for the projects of one bucket: their counts,
// their pages, their page targets and new ledger records.
func (r *run) pageBucket(pb int, pt []*lockedWriter, mu *sync.Mutex) ([]ProjectSummary, error) {
	prevData, err := readFileString(r.bucketPath("prevproj", pb))
	if err != nil {
		return nil, err
	}
	prev := map[string]*ledger.Project{}
	for d := (&spillDec{s: prevData}); d.i < len(d.s); {
		p := &ledger.Project{}
		if d.ledgerProject(p); d.bad {
			return nil, fmt.Errorf("reading previous projects: %w", errSpill)
		}
		prev[p.Project] = p
	}
	data, err := readFileString(r.bucketPath("entries", pb))
	if err != nil {
		return nil, err
	}
	// Both read whole and read only here: removed now, so that the kept
	// pass is smaller (the entry records are an eighth of it) and their
	// pages in the page cache are free for the pages about to be written.
	os.Remove(r.bucketPath("prevproj", pb))
	os.Remove(r.bucketPath("entries", pb))
	// Every project's counts; the stable files' page records.
	rank := map[string]int32{}
	var projects []ProjectSummary
	var unsorted []entryRec
	for d := (&spillDec{s: data}); d.i < len(d.s); {
		var p entryRec
		if d.entryRec(&p); d.bad {
			return nil, fmt.Errorf("reading entry records: %w", errSpill)
		}
		k, ok := rank[p.project]
		if !ok {
			k = int32(len(projects))
			rank[p.project] = k
			projects = append(projects, ProjectSummary{Project: p.project})
		}
		c := &projects[k].Counts
		if p.code&codeLegacy != 0 {
			c.Legacy++
		}
		switch p.code &^ (codeStable | codeLegacy) {
		case codeUnchanged:
			c.Unchanged++
		case codeAdded:
			c.Added++
		case codeHeld:
			c.Held++
		case codeHeld | codeBackdated:
			c.Held++
			c.Backdated++
		case codeRemoved:
			c.Removed++
		case codeChanged:
			c.Changed++
		case codeChanged | codeAccepted:
			c.Changed++
			c.Accepted++
		case codeChanged | codeDropped:
			c.Changed++
			c.Dropped++
		default:
			return nil, fmt.Errorf("entry code %#x: %w", p.code, errSpill)
		}
		if p.code&codeStable != 0 {
			unsorted = append(unsorted, p)
		}
	}
	// Group the page records by project, in page path order, keeping path
	// order within: a counting sort by the rank of the project's name.
	ids := make([]int32, len(projects))
	for i := range ids {
		ids[i] = int32(i)
	}
	slices.SortFunc(ids, func(a, b int32) int { return ledger.ProjectOrder(projects[a].Project, projects[b].Project) })
	order := make([]int32, len(ids))
	for i, id := range ids {
		order[id] = int32(i)
	}
	start := make([]int, len(ids)+1)
	for i := range unsorted {
		start[order[rank[unsorted[i].project]]+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	recs := make([]entryRec, len(unsorted))
	for _, p := range unsorted {
		k := order[rank[p.project]]
		recs[start[k]] = p
		start[k]++
	}
	unsorted = nil

	var (
		entries  []DiffEntry
		tw       *tar.Writer
		tf       *workFile
		out      []byte
		bodies   []string
		files    []simpleindex.PageFile
		tb       []byte
		rendered int
		paths    []string
	)
	pd := newPageDigest()
	naming := r.naming()
	var rnd simpleindex.Renderer
	ph := newPageHasher()
	nbw := r.workFile("newproj", pb, 64<<10)
	defer nbw.Close()
	pbw := r.workFile("pageentries", pb, 64<<10)
	defer pbw.Close()
	target := func(path string, length int64, sum, b2 [32]byte) {
		h := sha256.Sum256([]byte(path))
		t := tuf.BinTarget{Path: path, Length: length, SHA256: sum, BLAKE2b256: b2, HasBLAKE2b: true}
		tb = appendBinTarget(tb[:0], &t)
		pt[h[0]].write(tb)
		mu.Lock()
		r.nPages[h[0]]++
		mu.Unlock()
	}
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].project == recs[i].project {
			j++
		}
		pi := &projects[rank[recs[i].project]]
		name := pi.Project
		bodies = bodies[:0]
		for k := i; k < j; k++ {
			bodies = append(bodies, recs[k].body)
		}
		lp := ledger.Project{Project: name}
		lp.PageDigest = pd.sum(name, bodies)
		old := prev[name]
		delete(prev, name)
		hp, jp := naming.PagePaths(name)
		if old != nil && old.PageDigest == lp.PageDigest {
			lp.HTMLLength, lp.HTMLSHA256, lp.JSONLength, lp.JSONSHA256 = old.HTMLLength, old.HTMLSHA256, old.JSONLength, old.JSONSHA256
			lp.HTMLBLAKE2b, lp.JSONBLAKE2b = old.HTMLBLAKE2b, old.JSONBLAKE2b
			// The page digest covers the page records, versions
			// included: the same releases, unless a version 4 ledger
			// did not record them.
			lp.Versions = old.Versions
			if lp.Versions == nil {
				if lp.Versions, err = bodyVersions(recs[i:j]); err != nil {
					return nil, err
				}
			}
		} else {
			files, paths = files[:0], paths[:0]
			size := 0
			for k := i; k < j; k++ {
				var pf simpleindex.PageFile
				d := &spillDec{s: recs[k].body}
				path := d.pageFile(&pf)
				if d.bad {
					return nil, fmt.Errorf("reading page records: %w", errSpill)
				}
				files, paths = append(files, pf), append(paths, path)
				size += len(simpleindex.RelativeFileBase) + len(path)
			}
			// The files' URLs, in one string a project (grown only by
			// escapes).
			var urls strings.Builder
			urls.Grow(size)
			for k := range files {
				start := urls.Len()
				if err := simpleindex.WriteFileURL(&urls, "", paths[k]); err != nil {
					return nil, err
				}
				files[k].URL = urls.String()[start:]
			}
			html, js, err := rnd.Render(name, files)
			if err != nil {
				return nil, err
			}
			lp.Versions = rnd.Versions()
			if tw == nil {
				tf = r.workFile("pages", pb, 256<<10)
				defer tf.Close()
				tw = tar.NewWriter(tf)
			}
			rendered += 2
			lp.HTMLLength, lp.JSONLength = int64(len(html)), int64(len(js))
			if lp.HTMLSHA256, lp.HTMLBLAKE2b, err = ph.write(tw, hp, html); err != nil {
				return nil, err
			}
			if lp.JSONSHA256, lp.JSONBLAKE2b, err = ph.write(tw, jp, js); err != nil {
				return nil, err
			}
			reason := "attributes"
			if c := pi.Counts; c.Added+c.Removed+c.Accepted+c.Dropped > 0 {
				reason = "files"
			}
			for _, pg := range []struct {
				path       string
				ol, nl     int64
				osum, nsum [32]byte
			}{{hp, 0, lp.HTMLLength, [32]byte{}, lp.HTMLSHA256}, {jp, 0, lp.JSONLength, [32]byte{}, lp.JSONSHA256}} {
				e := DiffEntry{Category: PageAdded, Path: pg.path, Project: name, HasNew: true, NewLength: pg.nl, NewSHA256: pg.nsum}
				if old != nil {
					e.Category, e.Reason, e.HasOld = PageChanged, reason, true
					if pg.path == hp {
						e.OldLength, e.OldSHA256 = old.HTMLLength, old.HTMLSHA256
					} else {
						e.OldLength, e.OldSHA256 = old.JSONLength, old.JSONSHA256
					}
					if e.OldLength == e.NewLength && e.OldSHA256 == e.NewSHA256 {
						continue
					}
				}
				entries = append(entries, e)
				pi.Counts.add(&e)
			}
		}
		target(hp, lp.HTMLLength, lp.HTMLSHA256, lp.HTMLBLAKE2b)
		target(jp, lp.JSONLength, lp.JSONSHA256, lp.JSONBLAKE2b)
		out = appendLedgerProject(out[:0], &lp)
		nbw.Write(out)
		i = j
	}
	// Projects that had pages and have no stable file left.
	for name, old := range prev {
		hp, jp := naming.PagePaths(name)
		entries = append(entries,
			DiffEntry{Category: PageRemoved, Path: hp, Project: name, HasOld: true, OldLength: old.HTMLLength, OldSHA256: old.HTMLSHA256},
			DiffEntry{Category: PageRemoved, Path: jp, Project: name, HasOld: true, OldLength: old.JSONLength, OldSHA256: old.JSONSHA256})
		k, ok := rank[name]
		if !ok {
			k = int32(len(projects))
			rank[name] = k
			projects = append(projects, ProjectSummary{Project: name})
		}
		projects[k].Counts.PagesRemoved += 2
	}
	if tw != nil {
		if err := tw.Close(); err != nil {
			return nil, err
		}
		if err := tf.Close(); err != nil {
			return nil, err
		}
		mu.Lock()
		r.pageTar[pb] = true
		mu.Unlock()
	}
	mu.Lock()
	r.pages += rendered
	mu.Unlock()
	if err := nbw.Close(); err != nil {
		return nil, err
	}
	// The page entries, in path order, as canonical lines.
	slices.SortFunc(entries, func(a, b DiffEntry) int { return strings.Compare(a.Path, b.Path) })
	var line []byte
	for i := range entries {
		line = entries[i].appendCanonical(line[:0])
		pbw.Write(line)
		r.pageReviewBytes[pb] += pageReviewLength(len(line))
	}
	if err := pbw.Close(); err != nil {
		return nil, err
	}
	// The names are substrings of the bucket's work file: copy them.
	for i := range projects {
		projects[i].Project = strings.Clone(projects[i].Project)
	}
	return projects, nil
}

// mergeProjects writes the new ledger's project records: the union of the
// buckets' sorted newproj files, in page path order, read as streams.
func (r *run) mergeProjects() error {
	var files [numProjBucket]io.ReadCloser
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	rds := make([]*bufio.Reader, numProjBucket)
	srcs := make([]*readErr, numProjBucket)
	heads := make([]ledger.Project, numProjBucket)
	live := make([]bool, numProjBucket)
	advance := func(b int) error {
		ok, err := readLedgerProject(rds[b], srcs[b], &heads[b])
		if err != nil {
			return fmt.Errorf("reading new projects: %w", err)
		}
		live[b] = ok
		return nil
	}
	for b := range rds {
		f, err := openWorkOrEmpty(r.bucketPath("newproj", b))
		if err != nil {
			return err
		}
		srcs[b] = &readErr{r: f}
		files[b], rds[b] = f, bufio.NewReaderSize(srcs[b], 32<<10)
		if err := advance(b); err != nil {
			return err
		}
	}
	for {
		best := -1
		for b := range heads {
			if live[b] && (best < 0 || ledger.ProjectOrder(heads[b].Project, heads[best].Project) < 0) {
				best = b
			}
		}
		if best < 0 {
			return nil
		}
		if err := r.ledger.AddProject(&heads[best]); err != nil {
			return fmt.Errorf("writing the ledger: %w", err)
		}
		if err := advance(best); err != nil {
			return err
		}
	}
}

// readLedgerProject reads a project record as appendLedgerProject wrote
// it from rd, which reads src; ok is false at the end of the stream. A
// record that ends early or is malformed is errSpill, unless reading src
// failed: then the error is src's.
func readLedgerProject(rd *bufio.Reader, src *readErr, p *ledger.Project) (ok bool, err error) {
	bad := func() (bool, error) { return false, src.or(errSpill) }
	tag, err := rd.ReadByte()
	if err == io.EOF && src.err == nil {
		return false, nil
	}
	if err != nil || tag != 2 {
		return bad()
	}
	n, err := binary.ReadUvarint(rd)
	if err != nil || n > ledger.MaxProjectLength {
		return bad()
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(rd, name); err != nil {
		return bad()
	}
	p.Project = string(name)
	if _, err := io.ReadFull(rd, p.PageDigest[:]); err != nil {
		return bad()
	}
	for _, pg := range []struct {
		n     *int64
		h, b2 *[32]byte
	}{{&p.HTMLLength, &p.HTMLSHA256, &p.HTMLBLAKE2b}, {&p.JSONLength, &p.JSONSHA256, &p.JSONBLAKE2b}} {
		l, err := binary.ReadUvarint(rd)
		if err != nil {
			return bad()
		}
		*pg.n = int64(l)
		if _, err := io.ReadFull(rd, pg.h[:]); err != nil {
			return bad()
		}
		if _, err := io.ReadFull(rd, pg.b2[:]); err != nil {
			return bad()
		}
	}
	nv, err := binary.ReadUvarint(rd)
	if err != nil || nv > ledger.MaxVersions {
		return bad()
	}
	p.Versions = nil
	if nv == 0 {
		return true, nil
	}
	var (
		all  []byte
		lens = make([]int, 0, nv)
	)
	for ; nv > 0; nv-- {
		n, err := binary.ReadUvarint(rd)
		if err != nil || n > ledger.MaxVersionLength {
			return bad()
		}
		all = slices.Grow(all, int(n))
		k := len(all)
		all = all[:k+int(n)]
		if _, err := io.ReadFull(rd, all[k:]); err != nil {
			return bad()
		}
		lens = append(lens, int(n))
	}
	p.Versions = ledger.SplitVersions(string(all), lens)
	return true, nil
}

// pageWorkTail ends a page entry's line in the exceptions work file
// (appendWorkLine): no version, no legacy flag, no upload time.
var pageWorkTail = []byte("\t-\t-\t-\n")

// mergePageEntries adds the page entries, each bucket's sorted by path, to
// the canonical diff and the exceptions, merged into path order.
func (r *run) mergePageEntries() error {
	var files [numProjBucket]io.ReadCloser
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	scs := make([]*bufio.Scanner, numProjBucket)
	heads := make([][]byte, numProjBucket)
	paths := make([][]byte, numProjBucket)
	advance := func(b int) error {
		if !scs[b].Scan() {
			heads[b] = nil
			if err := scs[b].Err(); err != nil {
				return fmt.Errorf("reading page entries: %w", err)
			}
			return nil
		}
		heads[b] = scs[b].Bytes()
		f := bytes.SplitN(heads[b], []byte{'\t'}, 4)
		if len(f) < 4 || !bytes.HasPrefix(f[2], []byte(pagesPrefix)) {
			return fmt.Errorf("page entry %q: %w", heads[b], errSpill)
		}
		paths[b] = f[2]
		return nil
	}
	for b := range scs {
		f, err := openWorkOrEmpty(r.bucketPath("pageentries", b))
		if err != nil {
			return err
		}
		files[b] = f
		scs[b] = bufio.NewScanner(f)
		scs[b].Buffer(make([]byte, 32<<10), 1<<20)
		if err := advance(b); err != nil {
			return err
		}
	}
	nl := []byte{'\n'}
	for {
		best := -1
		for b := range heads {
			if heads[b] != nil && (best < 0 || bytes.Compare(paths[b], paths[best]) < 0) {
				best = b
			}
		}
		if best < 0 {
			return nil
		}
		r.canon.Write(heads[best])
		r.canon.Write(nl)
		r.exc.Write(heads[best])
		r.exc.Write(pageWorkTail) // pages have no version
		if err := advance(best); err != nil {
			return err
		}
	}
}

// pageHasher hashes pages (SHA-256 and BLAKE2b-256) as it writes them to
// the pages' tar, a chunk at a time: each chunk is read from memory once
// for the three, where a page of a large project (megabytes) would
// otherwise be read from memory three times.
type pageHasher struct {
	sha, b2 hash.Hash
}

func newPageHasher() *pageHasher {
	b2, err := blake2b.New256(nil)
	if err != nil {
		panic(err) // no key: never
	}
	return &pageHasher{sha: sha256.New(), b2: b2}
}

// pageHashChunk is how many bytes of a page pageHasher takes at a time:
// at least directWrite, so that a large page goes from the renderer's
// buffer to the file without a copy (workFile.Write), and small enough to
// stay in the core's cache for the two hashes and the write.
const pageHashChunk = 128 << 10

// write writes a page to tw as the regular file name and returns its
// SHA-256 and BLAKE2b-256.
func (ph *pageHasher) write(tw *tar.Writer, name string, data []byte) (sum, b2 [32]byte, err error) {
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return sum, b2, err
	}
	ph.sha.Reset()
	ph.b2.Reset()
	for len(data) > 0 {
		c := data[:min(len(data), pageHashChunk)]
		ph.sha.Write(c)
		ph.b2.Write(c)
		if _, err := tw.Write(c); err != nil {
			return sum, b2, err
		}
		data = data[len(c):]
	}
	ph.sha.Sum(sum[:0])
	ph.b2.Sum(b2[:0])
	return sum, b2, nil
}

// pageVersions returns the releases of a project's stable files, sorted
// and distinct: its ledger record's Versions.
func pageVersions(files []simpleindex.PageFile) []string {
	vs := make([]string, len(files))
	for i := range files {
		vs[i] = files[i].Version
	}
	slices.Sort(vs)
	return slices.Compact(vs)
}

// bodyVersions is pageVersions of page records not decoded yet.
func bodyVersions(recs []entryRec) ([]string, error) {
	files := make([]simpleindex.PageFile, len(recs))
	for k := range recs {
		d := &spillDec{s: recs[k].body}
		d.pageFile(&files[k])
		if d.bad {
			return nil, fmt.Errorf("reading page records: %w", errSpill)
		}
	}
	return pageVersions(files), nil
}
