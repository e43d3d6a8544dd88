package main

import (
	"bufio"
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// The build, in four passes, none holding the targets in memory:
//
//  1. the export, read once in path order: each file's ledger record
//     (the ledger's length is stable's one target), and for each file
//     the policy lets in, its target (files+pages mode) into one of 256
//     target buckets on disk by the first byte of its path's SHA-256, as
//     the pipeline's, and its page record into one of 256 project
//     buckets by its project's name;
//  2. each project bucket: its projects' two pages rendered
//     (simpleindex.Renderer, the pipeline's renderer), hashed, their
//     targets into the target buckets, and the project's ledger record;
//  3. the layout sized from the count (tuf.SizeTwoLevel, as the
//     pipeline), then the leaves built a bucket (or a leaf) at a time:
//     sorted by path, tuf.AppendBinSigned, signed with a key of their own,
//     tuf.AppendBinFile;
//  4. the mids, stable.json and the snapshot fragment, as the pipeline
//     writes them.

// numBuckets is the number of target buckets and of project buckets.
const numBuckets = 256

// Causes of build errors.
var (
	// ErrWorkFile: a work file read back is not what was written.
	ErrWorkFile = errors.New("corrupt work file")
	// ErrDirExists: the output directory exists already.
	ErrDirExists = errors.New("output directory exists")
)

// buildConfig is what a build reads and where it writes.
type buildConfig struct {
	Export     io.Reader
	ExportName string
	Policy     *policy.Policy
	PolicyRaw  []byte    // the policy file's bytes, as the ledger holds them
	Now        time.Time // the ceremony's clock: the policy is evaluated at the earlier of it and the export's time
	Version    int64     // the stable version written
	Signers    int       // stable's signatures (the bench's ceremony: all 3 of its devices)
	Dir        string    // the medium's stable directory, made: Dir/metadata/, Dir/snapshot-fragment.json
	Work       string    // the work directory for the buckets (removed by the caller)
	Workers    int
}

// built is what a build made.
type built struct {
	Files, Pages, Projects int64 // targets of files and of pages; projects with a stable file
	Listed                 int64 // files in the export
	Layout                 tuf.TwoLevel
	LedgerLength           int64
	Generated              time.Time // the export's
}

// bucketSet is numBuckets work files written by several goroutines.
type bucketSet struct {
	files []*os.File
	ws    []*bufio.Writer
	mu    []sync.Mutex
}

func newBuckets(dir, kind string) (*bucketSet, error) {
	bs := &bucketSet{files: make([]*os.File, numBuckets), ws: make([]*bufio.Writer, numBuckets), mu: make([]sync.Mutex, numBuckets)}
	for b := range numBuckets {
		f, err := os.Create(bucketName(dir, kind, b))
		if err != nil {
			bs.close()
			return nil, err
		}
		bs.files[b], bs.ws[b] = f, bufio.NewWriterSize(f, 64<<10)
	}
	return bs, nil
}

func bucketName(dir, kind string, b int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%02x", kind, b))
}

func (bs *bucketSet) write(b int, rec []byte) {
	bs.mu[b].Lock()
	bs.ws[b].Write(rec) // an error is the file's, returned by close
	bs.mu[b].Unlock()
}

// close flushes and closes every file, returning the first error.
func (bs *bucketSet) close() error {
	var first error
	for b, f := range bs.files {
		if f == nil {
			continue
		}
		if err := bs.ws[b].Flush(); err != nil && first == nil {
			first = err
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
		bs.files[b] = nil
	}
	return first
}

// Work file records: strings and numbers as uvarints, digests as 32 bytes.

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type dec struct {
	b   []byte
	bad bool
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) sum(s *[32]byte) {
	if len(d.b) < 32 {
		d.bad, d.b = true, nil
		return
	}
	copy(s[:], d.b)
	d.b = d.b[32:]
}

// A target record: path, length, sha256, blake2b-256.
func appendTarget(b []byte, t *tuf.BinTarget) []byte {
	b = appendStr(b, t.Path)
	b = binary.AppendUvarint(b, uint64(t.Length))
	b = append(b, t.SHA256[:]...)
	return append(b, t.BLAKE2b256[:]...)
}

func readTargets(name string, ts []tuf.BinTarget) ([]tuf.BinTarget, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return ts, err
	}
	for d := (&dec{b: data}); len(d.b) > 0; {
		t := tuf.BinTarget{HasBLAKE2b: true}
		t.Path = d.str()
		t.Length = int64(d.uvarint())
		d.sum(&t.SHA256)
		d.sum(&t.BLAKE2b256)
		if d.bad {
			return ts, fmt.Errorf("%s: %w", name, ErrWorkFile)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// A page record: a stable file as its project's pages list it.
func appendPageRecord(b []byte, r *export.Record) []byte {
	b = appendStr(b, r.Project)
	b = appendStr(b, r.Path)
	b = appendStr(b, r.Filename)
	b = appendStr(b, r.Version)
	b = binary.AppendUvarint(b, uint64(r.Length))
	b = append(b, r.SHA256[:]...)
	b = binary.AppendVarint(b, r.UploadTime.Unix())
	var flags byte
	if r.Yanked {
		flags |= 1
	}
	if r.HasCoreMetadata {
		flags |= 2
	}
	b = append(b, flags)
	b = appendStr(b, r.YankedReason)
	b = appendStr(b, r.RequiresPython)
	if r.HasCoreMetadata {
		b = append(b, r.CoreMetadataSHA256[:]...)
	}
	return b
}

func (d *dec) pageRecord() (project string, pf simpleindex.PageFile, err error) {
	project = d.str()
	path := d.str()
	pf.Filename = d.str()
	pf.Version = d.str()
	pf.Size = int64(d.uvarint())
	d.sum(&pf.SHA256)
	t, n := binary.Varint(d.b)
	if n <= 0 || len(d.b) <= n {
		return "", pf, ErrWorkFile
	}
	d.b = d.b[n:]
	pf.UploadTime = time.Unix(t, 0).UTC()
	flags := d.b[0]
	d.b = d.b[1:]
	pf.Yanked, pf.HasCoreMetadata = flags&1 != 0, flags&2 != 0
	pf.YankedReason = d.str()
	pf.RequiresPython = d.str()
	if pf.HasCoreMetadata {
		d.sum(&pf.CoreMetadataSHA256)
	}
	if d.bad {
		return "", pf, ErrWorkFile
	}
	pf.URL, err = simpleindex.FileURL("", path)
	return project, pf, err
}

// A project record: what the ledger lists of a project (its digests are
// made up: only their length, fixed, counts).
func appendProject(b []byte, p *ledger.Project) []byte {
	b = appendStr(b, p.Project)
	b = binary.AppendUvarint(b, uint64(p.HTMLLength))
	b = binary.AppendUvarint(b, uint64(p.JSONLength))
	b = binary.AppendUvarint(b, uint64(len(p.Versions)))
	for _, v := range p.Versions {
		b = appendStr(b, v)
	}
	return b
}

func (d *dec) project(p *ledger.Project) bool {
	p.Project = d.str()
	p.HTMLLength = int64(d.uvarint())
	p.JSONLength = int64(d.uvarint())
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return false
	}
	p.Versions = make([]string, n)
	for i := range p.Versions {
		p.Versions[i] = d.str()
	}
	return !d.bad
}

func projectBucket(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % numBuckets)
}

// parallel runs f(0) … f(n-1) on workers goroutines and returns the
// first error.
func parallel(workers, n int, f func(int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// build writes the layout's metadata for the export into cfg.Dir.
func build(cfg buildConfig) (*built, error) {
	if _, err := os.Stat(cfg.Dir); !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", cfg.Dir, ErrDirExists)
	}
	// Written beside it, renamed to it when complete: a failed build
	// leaves nothing.
	out := cfg.Dir + ".partial"
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	md := filepath.Join(out, "metadata")
	if err := os.MkdirAll(md, 0o755); err != nil {
		return nil, err
	}
	res := &built{}
	targets, err := newBuckets(cfg.Work, "targets")
	if err != nil {
		return nil, err
	}
	defer targets.close()

	// 1. The export.
	lw, err := readExport(cfg, res, targets)
	if err != nil {
		return nil, err
	}
	// 2. The pages, and the ledger's projects.
	if err := renderPages(cfg, res, targets, lw); err != nil {
		return nil, err
	}
	if err := lw.Close(); err != nil {
		return nil, fmt.Errorf("the ledger: %w", err)
	}
	ledgerLen, ledgerSum := lw.Digest()
	res.LedgerLength = ledgerLen
	if err := targets.close(); err != nil {
		return nil, fmt.Errorf("writing the target buckets: %w", err)
	}

	// 3. The layout and the leaves.
	est := tuf.EstimateFiles
	if !cfg.Policy.TargetMode.ListsFiles() {
		est = tuf.EstimatePages
	}
	shape, err := tuf.SizeTwoLevel(stableset.StableRole, res.Files+res.Pages, est)
	if err != nil {
		return nil, err
	}
	l := shape.Layout
	res.Layout = l
	expires := tuf.NewExpiry(cfg.Now.Add(stableset.DefaultPeriod + stableset.DefaultGrace))
	leafKeys := make([]keys.DigestSigner, l.NumLeaves())
	meta := map[string]tuf.MetaFile{}
	var metaMu sync.Mutex
	put := func(role string, data []byte) error {
		if err := os.WriteFile(filepath.Join(md, fmt.Sprintf("%d.%s.json", cfg.Version, role)), data, 0o644); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		metaMu.Lock()
		meta[role+".json"] = tuf.MetaFile{Version: cfg.Version, Length: int64(len(data)), Hashes: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
		metaMu.Unlock()
		return nil
	}
	if err := buildLeaves(cfg, l, expires, leafKeys, put, res); err != nil {
		return nil, err
	}

	// 4. The mids, stable, the fragment.
	midKeys := make([]keys.DigestSigner, l.NumMids())
	err = parallel(cfg.Workers, l.NumMids(), func(i int) error {
		k, err := keys.GenerateECDSA()
		if err != nil {
			return err
		}
		midKeys[i] = k
		m := tuf.NewTargets(cfg.Version, expires.Time())
		m.Signed.Delegations = &tuf.Delegations{Keys: make(map[string]*keys.Key, l.LeavesPerMid()), Roles: make([]tuf.DelegatedRole, 0, l.LeavesPerMid())}
		for j := range l.LeavesPerMid() {
			lk := leafKeys[i<<l.LeafBits|j].Key()
			m.Signed.AddDelegation(l.LeafDelegation(i, j, lk), lk)
		}
		if err := m.Sign(k); err != nil {
			return fmt.Errorf("signing %s: %w", l.MidName(i), err)
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return put(l.MidName(i), append(data, '\n'))
	})
	if err != nil {
		return nil, err
	}
	st := tuf.NewTargets(cfg.Version, expires.Time())
	st.Signed.Targets[fmt.Sprintf("ledger/%d.ledger", cfg.Version)] = tuf.TargetFile{Length: ledgerLen, Hashes: map[string]string{"sha256": hex.EncodeToString(ledgerSum[:])}}
	st.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{}, Roles: make([]tuf.DelegatedRole, 0, l.NumMids())}
	for i, k := range midKeys {
		st.Signed.AddDelegation(l.MidDelegation(i, k.Key()), k.Key())
	}
	var signers []keys.Signer
	for range cfg.Signers {
		k, err := keys.GenerateECDSA()
		if err != nil {
			return nil, err
		}
		signers = append(signers, k)
	}
	if err := st.Sign(signers...); err != nil {
		return nil, fmt.Errorf("signing stable: %w", err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if err := put(stableset.StableRole, append(data, '\n')); err != nil {
		return nil, err
	}
	fb, err := json.MarshalIndent(stableset.Fragment{Type: stableset.FragmentType, Meta: meta}, "", " ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, stableset.FragmentFile), append(fb, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(out, cfg.Dir); err != nil {
		return nil, err
	}
	return res, nil
}

// readExport reads the export once: the ledger's file records, and each
// stable file's target and page record into the buckets.
func readExport(cfg buildConfig, res *built, targets *bucketSet) (*ledger.Writer, error) {
	x, err := export.NewReader(cfg.Export, cfg.ExportName)
	if err != nil {
		return nil, err
	}
	x.SetWorkDir(cfg.Work)
	hdr := x.Header()
	res.Generated = hdr.Generated
	at := cfg.Now
	if hdr.Generated.Before(at) {
		at = hdr.Generated
	}
	lw, err := ledger.NewWriter(io.Discard, ledger.Header{Repository: hdr.Repository, ListingTime: hdr.Generated, StableVersion: cfg.Version, Naming: string(cfg.Policy.Naming), Policy: cfg.PolicyRaw})
	if err != nil {
		return nil, err
	}
	pages, err := newBuckets(cfg.Work, "pages")
	if err != nil {
		return nil, err
	}
	defer pages.close()
	files := cfg.Policy.TargetMode.ListsFiles()
	var buf []byte
	stop := make(chan struct{})
	defer close(stop)
	for eb := range x.Batches(cfg.Workers, stop) {
		for i := range eb.Records {
			r := &eb.Records[i]
			ok, _ := cfg.Policy.Eligible(r, at)
			if err := lw.Add(&ledger.Entry{Path: r.Path, Project: r.Project, Length: r.Length, SHA256: r.SHA256, Stable: ok, Yanked: r.Yanked}); err != nil {
				return nil, fmt.Errorf("the ledger: %w", err)
			}
			res.Listed++
			if !ok {
				continue
			}
			if files {
				t := tuf.BinTarget{Path: r.Path, Length: r.Length, SHA256: r.SHA256, BLAKE2b256: r.BLAKE2b256, HasBLAKE2b: true}
				targets.write(int(eb.PathSHA256[i][0]), appendTarget(buf[:0], &t))
				res.Files++
			}
			buf = appendPageRecord(buf[:0], r)
			pages.write(projectBucket(r.Project), buf)
		}
		if eb.Err != nil {
			return nil, eb.Err
		}
	}
	if err := pages.close(); err != nil {
		return nil, fmt.Errorf("writing the page buckets: %w", err)
	}
	return lw, nil
}

// renderPages renders every stable project's pages, a project bucket at
// a time, writes their targets into the target buckets and adds the
// projects to the ledger in its order.
func renderPages(cfg buildConfig, res *built, targets *bucketSet, lw *ledger.Writer) error {
	naming := simpleindex.Layout(cfg.Policy.Naming)
	var mu sync.Mutex
	err := parallel(cfg.Workers, numBuckets, func(pb int) error {
		data, err := os.ReadFile(bucketName(cfg.Work, "pages", pb))
		if err != nil {
			return err
		}
		byProject := map[string][]simpleindex.PageFile{}
		for d := (&dec{b: data}); len(d.b) > 0; {
			name, pf, err := d.pageRecord()
			if err != nil {
				return fmt.Errorf("%s: %w", bucketName(cfg.Work, "pages", pb), err)
			}
			byProject[name] = append(byProject[name], pf)
		}
		data = nil
		names := make([]string, 0, len(byProject))
		for n := range byProject {
			names = append(names, n)
		}
		slices.SortFunc(names, ledger.ProjectOrder)
		var rnd simpleindex.Renderer
		b2, err := blake2b.New256(nil)
		if err != nil {
			return err
		}
		var buf, out []byte
		for _, name := range names {
			html, js, err := rnd.Render(name, byProject[name])
			if err != nil {
				return err
			}
			p := ledger.Project{Project: name, HTMLLength: int64(len(html)), JSONLength: int64(len(js)), Versions: rnd.Versions()}
			out = appendProject(out, &p)
			hp, jp := naming.PagePaths(name)
			for _, pg := range []struct {
				path string
				data []byte
			}{{hp, html}, {jp, js}} {
				t := tuf.BinTarget{Path: pg.path, Length: int64(len(pg.data)), SHA256: sha256.Sum256(pg.data), HasBLAKE2b: true}
				b2.Reset()
				b2.Write(pg.data)
				b2.Sum(t.BLAKE2b256[:0])
				h := sha256.Sum256([]byte(pg.path))
				targets.write(int(h[0]), appendTarget(buf[:0], &t))
			}
			delete(byProject, name)
		}
		mu.Lock()
		res.Projects += int64(len(names))
		res.Pages += 2 * int64(len(names))
		mu.Unlock()
		return os.WriteFile(bucketName(cfg.Work, "projects", pb), out, 0o644)
	})
	if err != nil {
		return err
	}
	return mergeProjects(cfg.Work, lw)
}

// projectHeap merges the buckets' project records, each bucket sorted, in
// the ledger's project order.
type projectHeap []*projectStream

type projectStream struct {
	d    dec
	head ledger.Project
}

func (h projectHeap) Len() int { return len(h) }
func (h projectHeap) Less(i, j int) bool {
	return ledger.ProjectOrder(h[i].head.Project, h[j].head.Project) < 0
}
func (h projectHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *projectHeap) Push(x any)   { *h = append(*h, x.(*projectStream)) }
func (h *projectHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func mergeProjects(work string, lw *ledger.Writer) error {
	var h projectHeap
	for pb := range numBuckets {
		data, err := os.ReadFile(bucketName(work, "projects", pb))
		if err != nil {
			return err
		}
		s := &projectStream{d: dec{b: data}}
		if len(s.d.b) > 0 {
			if !s.d.project(&s.head) {
				return fmt.Errorf("%s: %w", bucketName(work, "projects", pb), ErrWorkFile)
			}
			h = append(h, s)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		s := h[0]
		if err := lw.AddProject(&s.head); err != nil {
			return fmt.Errorf("the ledger: %w", err)
		}
		if len(s.d.b) == 0 {
			heap.Pop(&h)
			continue
		}
		if !s.d.project(&s.head) {
			return fmt.Errorf("a projects work file: %w", ErrWorkFile)
		}
		heap.Fix(&h, 0)
	}
	return nil
}

// buildLeaves builds, signs and writes every leaf: a unit is one target
// bucket when leaves are no wider than a bucket, else one leaf (as the
// pipeline's signBins).
func buildLeaves(cfg buildConfig, l tuf.TwoLevel, expires tuf.Expiry, leafKeys []keys.DigestSigner, put func(string, []byte) error, res *built) error {
	bits := l.MidBits + l.LeafBits
	units, bucketsPer, leavesPer := numBuckets, 1, l.NumLeaves()/numBuckets
	if bits < 8 {
		units, bucketsPer, leavesPer = l.NumLeaves(), numBuckets/l.NumLeaves(), 1
	}
	leafIndex := func(h *[32]byte) int {
		m, j := l.LeafOfHash(h)
		return m<<l.LeafBits | j
	}
	return parallel(cfg.Workers, units, func(u int) error {
		var ts []tuf.BinTarget
		for b := u * bucketsPer; b < (u+1)*bucketsPer; b++ {
			var err error
			if ts, err = readTargets(bucketName(cfg.Work, "targets", b), ts); err != nil {
				return err
			}
			os.Remove(bucketName(cfg.Work, "targets", b))
		}
		slices.SortFunc(ts, func(a, b tuf.BinTarget) int { return strings.Compare(a.Path, b.Path) })
		first := leafIndex(&[32]byte{byte(u * bucketsPer)})
		per := make([][]tuf.BinTarget, leavesPer)
		for _, t := range ts {
			h := sha256.Sum256([]byte(t.Path))
			i := leafIndex(&h) - first
			if i < 0 || i >= leavesPer {
				return fmt.Errorf("%s in target bucket %d: %w", t.Path, u*bucketsPer, ErrWorkFile)
			}
			per[i] = append(per[i], t)
		}
		var signed, file []byte
		for k, bt := range per {
			g := first + k
			name := l.LeafName(g>>l.LeafBits, g&(l.LeavesPerMid()-1))
			key, err := keys.GenerateECDSA()
			if err != nil {
				return err
			}
			leafKeys[g] = key
			if signed, err = tuf.AppendBinSigned(signed[:0], cfg.Version, expires, bt); err != nil {
				return fmt.Errorf("bin %s: %w", name, err)
			}
			digest := sha256.Sum256(signed)
			der, err := key.SignDigest(&digest)
			if err != nil {
				return fmt.Errorf("signing bin %s: %w", name, err)
			}
			file = tuf.AppendBinFile(file[:0], signed, []tuf.Signature{{KeyID: key.Key().ID(), Sig: hex.EncodeToString(der)}})
			if err := put(name, file); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeTargets writes a targets.json of the bootstrap's form (the
// bench's: stable 2 of 3 P-256 keys, unstable one Ed25519 key, both
// delegated the PEP 458 paths, stable the ledger's too; signed by the
// three targets keys) as the repository publishes it, and returns its
// size.
func writeTargets(name string, now time.Time, naming simpleindex.Layout) (int, error) {
	t := tuf.NewTargets(1, now.Add(365*24*time.Hour))
	t.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{}}
	var ids []string
	var ks []*keys.Key
	for range 3 {
		k, err := keys.GenerateECDSA()
		if err != nil {
			return 0, err
		}
		ids, ks = append(ids, k.Key().ID()), append(ks, k.Key())
	}
	slices.Sort(ids)
	paths := append([]string{"packages/*/*/*/*"}, naming.TargetPatterns()...)
	t.Signed.AddDelegation(tuf.DelegatedRole{Name: stableset.StableRole, KeyIDs: ids, Threshold: 2, Paths: append(slices.Clone(paths), "ledger/*")}, ks...)
	u, err := keys.GenerateEd25519()
	if err != nil {
		return 0, err
	}
	t.Signed.AddDelegation(tuf.DelegatedRole{Name: "unstable", KeyIDs: []string{u.Key().ID()}, Threshold: 1, Paths: paths}, u.Key())
	var signers []keys.Signer
	for range 3 {
		k, err := keys.GenerateECDSA()
		if err != nil {
			return 0, err
		}
		signers = append(signers, k)
	}
	if err := t.Sign(signers...); err != nil {
		return 0, err
	}
	b, err := t.MarshalFile()
	if err != nil {
		return 0, err
	}
	return len(b), os.WriteFile(name, b, 0o644)
}
