package ceremony

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
)

// The read-back: a ceremony's media are checked, before they get their
// name, by the same checks `keyceremony verify` makes (auditor.stableMedium,
// auditor.bootstrap), and a failure leaves them renamed
// <target>.rejected-<UTC time> (outdir.Verify). Beyond the signatures,
// the checks here: no file on a stable medium that it may not hold, every
// index page in stable/pages/*.tar against the bins and the signed diff,
// the snapshot fragment against the metadata written, and the
// transcript's recorded values against the signed diff.

// ErrUnexpectedFile means a medium holds a file that no ceremony writes.
var ErrUnexpectedFile = errors.New("file a medium does not hold")

// readBackHook, when set by a test, runs on the written media before the
// read-back (to tamper as a fault would).
var readBackHook func(dir string) error

// relErr is a read-back error whose message names the media's files
// relative to the media, not under their temporary name.
type relErr struct {
	err error
	dir string
}

func (e *relErr) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.dir+string(filepath.Separator), "")
}
func (e *relErr) Unwrap() error { return e.err }

// readBack returns the check outdir.Verify runs on a medium: run's checks
// on the directory, with errors naming files relative to it.
func readBack(run func(dir string) error) func(string) error {
	return func(dir string) error {
		if readBackHook != nil {
			if err := readBackHook(dir); err != nil {
				return err
			}
		}
		err := run(dir)
		if err == nil {
			err = checkMarkerOf(dir)
		}
		if err != nil {
			return &relErr{err: err, dir: dir}
		}
		return nil
	}
}

// readBackStable checks the stable media in dir as verify does, from the
// trusted root and the verified targets the ceremony signed against, with
// expiries at now; it adds to read (if set) the SHA-256 of each file it
// read whole.
func readBackStable(trusted *tuf.Metadata[tuf.Root], targets *tuf.Metadata[tuf.Targets], deleg *tuf.DelegatedRole, now time.Time, read readSums) func(string) error {
	return readBack(func(dir string) error {
		a := &auditor{o: AuditOptions{Dir: dir, At: now}, rep: &AuditReport{Dir: dir, Versions: map[string]int64{}, trusted: trusted}, read: read}
		return a.stableMedium(&targetsSource{targets: targets, deleg: deleg})
	})
}

// readBackBootstrap checks the bootstrap media in dir as verify does,
// from the root the bootstrap signed, with the attestation roots it
// accepted (nil: Yubico's) and expiries at now.
func readBackBootstrap(root *tuf.Metadata[tuf.Root], roots *x509.CertPool, now time.Time) func(string) error {
	return readBack(func(dir string) error {
		if roots == nil {
			roots = keys.YubicoRoots()
		}
		a := &auditor{o: AuditOptions{Dir: dir, At: now}, rep: &AuditReport{Dir: dir, Versions: map[string]int64{}, trusted: root},
			roots: &attestationRoots{yubico: roots}}
		return a.bootstrap()
	})
}

// sweepDebris removes what killed stable signings left, their work
// directories in workParent (os.TempDir() if empty), and says so on show
// with the partial media out.New swept beside its target. What could not
// be removed is said too: debris never stops a ceremony.
func sweepDebris(show io.Writer, out *outdir.Dir, workParent string) {
	if workParent == "" {
		workParent = os.TempDir()
	}
	work, err := outdir.Sweep(workParent, outdir.Prefixed(stableset.WorkPrefix))
	showDebris(show, append(slices.Clone(out.Swept), work...))
	if err != nil && show != nil {
		fmt.Fprintf(show, "debris: %v\n", err)
	}
}

// showDebris says on show (if set) what was swept.
func showDebris(show io.Writer, swept []outdir.Debris) {
	if show == nil {
		return
	}
	for _, d := range swept {
		fmt.Fprintf(show, "debris: %s\n", d)
	}
}

// The files a stable medium may hold.
var (
	stableTopFiles = []string{"signed-diff.json", PolicyFile, DecisionsFile, "diff.txt", "diff.canonical", JournalFile, JournalEnvelopeFile, MarkerFile}
	stableMetaName = regexp.MustCompile(`^([1-9][0-9]{0,18})\.([^/\\]+)\.json$`)
	stableLedger   = regexp.MustCompile(`^[1-9][0-9]{0,18}\.ledger$`)
	stablePageTar  = regexp.MustCompile(`^[0-9a-f]{2}\.tar$`)
)

// stableListing is what a stable medium holds, by kind.
type stableListing struct {
	meta    []string // stable/metadata/ file names
	tars    []string // stable/pages/ tar names
	ledgers []string // stable/ledger/ file names
	top     []string // the files beside stable/
}

// checkLedgers refuses a ledger on the medium that stable does not list
// (VerifyStableMedia checks those it lists).
func checkLedgers(st *tuf.Metadata[tuf.Targets], ledgers []string) error {
	for _, l := range ledgers {
		if _, ok := st.Signed.Targets["ledger/"+l]; !ok {
			return fmt.Errorf("stable/ledger/%s: stable version %d does not list it: %w", l, st.Signed.Version, ErrUnexpectedFile)
		}
	}
	return nil
}

// listStableMedium lists dir and refuses, with ErrUnexpectedFile, anything
// a stable signing does not write: besides stableTopFiles (and SumsFile,
// written after the read-back, which verify requires), only
// stable/metadata/<version>.<role>.json, stable/ledger/<version>.ledger,
// stable/pages/<hex byte>.tar and stable/snapshot-fragment.json, each a
// regular file (no link, no other directory).
func listStableMedium(dir string) (*stableListing, error) {
	var l stableListing
	err := walkMedium(dir, "a stable medium does", func(parent, base string, isDir, isFile bool) bool {
		ok := false
		switch parent {
		case "":
			ok = (isDir && base == "stable") || (isFile && (slices.Contains(stableTopFiles, base) || base == SumsFile))
		case "stable/":
			ok = (isDir && (base == "metadata" || base == "ledger" || base == "pages")) || (isFile && base == stableset.FragmentFile)
		case "stable/metadata/":
			ok = isFile && stableMetaName.MatchString(base)
			if ok {
				l.meta = append(l.meta, base)
			}
		case "stable/ledger/":
			ok = isFile && stableLedger.MatchString(base)
			if ok {
				l.ledgers = append(l.ledgers, base)
			}
		case "stable/pages/":
			ok = isFile && stablePageTar.MatchString(base)
			if ok {
				l.tars = append(l.tars, base)
			}
		}
		if ok && parent == "" && isFile {
			l.top = append(l.top, base)
		}
		return ok
	})
	if err != nil {
		return nil, err
	}
	for _, f := range stableTopFiles {
		if !slices.Contains(l.top, f) {
			return nil, fmt.Errorf("%s is missing: a stable medium holds %s: %w", f, strings.Join(stableTopFiles, ", "), tuf.ErrMissing)
		}
	}
	return &l, nil
}

// walkMedium walks dir and refuses, with ErrUnexpectedFile naming the
// entry, any entry that allow does not accept (medium is the subject of
// the message with its verb: "bootstrap media do"); allow gets the entry's
// parent ("" at the top, else "a/b/") and base name, and whether it is a
// directory or a regular file (a link is neither).
func walkMedium(dir, medium string, allow func(parent, base string, isDir, isFile bool) bool) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		parent, base := path.Split(rel)
		if !allow(parent, base, e.IsDir(), e.Type().IsRegular()) {
			return fmt.Errorf("%s: a %s that %s not hold: %w", rel, kindOf(e), medium, ErrUnexpectedFile)
		}
		return nil
	})
}

func kindOf(e fs.DirEntry) string {
	switch {
	case e.IsDir():
		return "directory"
	case e.Type().IsRegular():
		return "file"
	case e.Type()&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// pageSet is every index page in stable/pages/*.tar, sorted by the
// SHA-256 of its path, for the bins to be checked against. The tars are
// read once: both hashes of every page are taken in that read (the
// read-back's checks and targetCheck's use the same set).
type pageSet struct {
	mu   sync.Mutex // guards flags: the bins are read on every core
	dir  string     // the medium
	tars []string
	// tarSums is the SHA-256 of each tar, by index in tars, as read
	// (nil unless asked for).
	tarSums [][32]byte
	pages   []pageEntry
	flags   []byte // pageListed, pageFound, by index in pages
}

type pageEntry struct {
	key    [32]byte // SHA-256 of the path
	sum    [32]byte
	b2     [32]byte // BLAKE2b-256
	length int64
	tar    int
}

// Flags of a page, set as the bins list it (kept apart from the entries,
// which the workers read while others set flags).
const (
	pageListed byte = 1 << iota // pageSet.visit found it in a bin
	pageFound                   // targetCheck.target found it in a bin
)

// find returns the index of the page whose path hashes to k.
func (ps *pageSet) find(k [32]byte) (int, bool) {
	return slices.BinarySearchFunc(ps.pages, k, func(p pageEntry, k [32]byte) int { return bytes.Compare(p.key[:], k[:]) })
}

// mark sets flag f of page i.
func (ps *pageSet) mark(i int, f byte) {
	ps.mu.Lock()
	ps.flags[i] |= f
	ps.mu.Unlock()
}

// readPages reads every tar in stable/pages: each entry a regular file
// under simple/, its path clean and in no other entry. The tars are read
// on every core, each whole; with sums, each one's SHA-256 is kept in
// tarSums (for SHA256SUMS). The first failing tar in order is the error.
func readPages(dir string, tars []string, sums bool) (*pageSet, error) {
	ps := &pageSet{dir: dir, tars: tars}
	if sums {
		ps.tarSums = make([][32]byte, len(tars))
	}
	res := make([][]pageEntry, len(tars))
	err := inOrder(len(tars), func() func(int) error {
		b2 := must(blake2b.New256(nil))
		return func(i int) error {
			var sum *[32]byte
			if sums {
				sum = &ps.tarSums[i]
			}
			var err error
			res[i], err = readTar(dir, tars, i, b2, sum)
			return err
		}
	})
	if err != nil {
		return nil, err
	}
	n := 0
	for i := range res {
		n += len(res[i])
	}
	ps.pages = make([]pageEntry, 0, n)
	for i := range res {
		ps.pages = append(ps.pages, res[i]...)
	}
	sort.Slice(ps.pages, func(i, j int) bool { return bytes.Compare(ps.pages[i].key[:], ps.pages[j].key[:]) < 0 })
	for i := 1; i < len(ps.pages); i++ {
		if ps.pages[i].key == ps.pages[i-1].key {
			p := &ps.pages[i]
			return nil, fmt.Errorf("stable/pages/%s: %s is in two entries: %w", ps.tars[p.tar], ps.name(dir, p), ErrMediumContent)
		}
	}
	ps.flags = make([]byte, len(ps.pages))
	return ps, nil
}

// readTar reads tar i of tars (b2 its worker's BLAKE2b-256, reset for
// each page): its pages' entries, and (if sum is set) the SHA-256 of the
// whole file into sum.
func readTar(dir string, tars []string, i int, b2 hash.Hash, sum *[32]byte) ([]pageEntry, error) {
	name := tars[i]
	rel := "stable/pages/" + name
	f, err := os.Open(filepath.Join(dir, "stable", "pages", name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var in io.Reader = bufio.NewReaderSize(f, 256<<10)
	whole := sha256.New()
	if sum != nil {
		in = io.TeeReader(in, whole)
	}
	tr := tar.NewReader(in)
	var pages []pageEntry
	s := sha256.New()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", rel, err, ErrMediumContent)
		}
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(h.Name, "simple/") || path.Clean(h.Name) != h.Name {
			return nil, fmt.Errorf("%s: entry %q (type %q) is not an index page under simple/: %w", rel, h.Name, h.Typeflag, ErrMediumContent)
		}
		s.Reset()
		b2.Reset()
		n, err := io.Copy(io.MultiWriter(s, b2), tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w: %w", rel, h.Name, err, ErrMediumContent)
		}
		p := pageEntry{key: sha256.Sum256([]byte(h.Name)), length: n, tar: i}
		s.Sum(p.sum[:0])
		b2.Sum(p.b2[:0])
		pages = append(pages, p)
	}
	if sum != nil {
		// The rest of the file (the end-of-archive blocks and padding
		// past them), for the whole file's SHA-256.
		if _, err := io.Copy(io.Discard, in); err != nil {
			return nil, fmt.Errorf("reading %s: %w", rel, err)
		}
		whole.Sum(sum[:0])
	}
	return pages, nil
}

// name finds the path of p again in its tar (for messages only).
func (ps *pageSet) name(dir string, p *pageEntry) string {
	f, err := os.Open(filepath.Join(dir, "stable", "pages", ps.tars[p.tar]))
	if err != nil {
		return fmt.Sprintf("the page whose path hashes to %x", p.key)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return fmt.Sprintf("the page whose path hashes to %x", p.key)
		}
		if sha256.Sum256([]byte(h.Name)) == p.key {
			return h.Name
		}
	}
}

// visit checks one bin's target against the pages: a page the tars hold
// must have the length and hash the bin lists.
func (ps *pageSet) visit(bin string, t *tuf.BinTarget) error {
	if !strings.HasPrefix(t.Path, "simple/") {
		return nil
	}
	i, ok := ps.find(sha256.Sum256([]byte(t.Path)))
	if !ok {
		return nil
	}
	p := &ps.pages[i]
	if p.length != t.Length || p.sum != t.SHA256 {
		return fmt.Errorf("stable/pages/%s: %s has length %d and sha256 %x, %s lists length %d and sha256 %x: %w",
			ps.tars[p.tar], t.Path, p.length, p.sum, bin, t.Length, t.SHA256, tuf.ErrHash)
	}
	ps.mark(i, pageListed)
	return nil
}

// unlisted refuses a page in the tars that no bin listed.
func (ps *pageSet) unlisted(dir string) error {
	for i := range ps.pages {
		if p := &ps.pages[i]; ps.flags[i]&pageListed == 0 {
			return fmt.Errorf("stable/pages/%s holds %s, which no stable bin lists: %w", ps.tars[p.tar], ps.name(dir, p), ErrMediumContent)
		}
	}
	return nil
}

// againstDiff checks the pages against diff.canonical (whose digest the
// signed diff binds): every page the diff adds or changes is in the tars
// with the diff's new length and SHA-256, and no page it removes is. It
// returns the number of pages the diff names.
func (ps *pageSet) againstDiff(dir string) (int, error) {
	f, err := os.Open(filepath.Join(dir, "diff.canonical"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n, pages := 0, 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("page-")) {
			continue
		}
		fl := strings.Split(string(line), "\t")
		if len(fl) != 8 {
			continue // not an entry (ParseCanonical refused malformed ones)
		}
		cat, path := stableset.Category(fl[0]), fl[2]
		k := sha256.Sum256([]byte(path))
		i, ok := slices.BinarySearchFunc(ps.pages, k, func(p pageEntry, k [32]byte) int { return bytes.Compare(p.key[:], k[:]) })
		pages++
		switch cat {
		case stableset.PageAdded, stableset.PageChanged:
			if !ok {
				return 0, fmt.Errorf("diff.canonical:%d: %s %s (length %s, sha256 %s), which stable/pages does not hold: %w", n, cat, path, fl[6], fl[7], tuf.ErrMissing)
			}
			p := &ps.pages[i]
			if fmt.Sprint(p.length) != fl[6] || hex.EncodeToString(p.sum[:]) != fl[7] {
				return 0, fmt.Errorf("diff.canonical:%d: %s %s with length %s and sha256 %s, stable/pages/%s holds length %d and sha256 %x: %w", n, cat, path, fl[6], fl[7], ps.tars[p.tar], p.length, p.sum, tuf.ErrHash)
			}
		case stableset.PageRemoved:
			if ok {
				return 0, fmt.Errorf("diff.canonical:%d: %s %s, which stable/pages/%s holds: %w", n, cat, path, ps.tars[ps.pages[i].tar], ErrMediumContent)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("diff.canonical:%d: %w", n+1, err)
	}
	return pages, nil
}

// checkFragment checks stable/snapshot-fragment.json against the
// metadata in stable/metadata: one entry per file, named for its role,
// with its version, length and SHA-256, and one file per role stable
// delegates to (two levels), all of stable's version. A file in read
// (what sumBins read) is not read again; one read here is added to it.
func checkFragment(dir string, st *tuf.Metadata[tuf.Targets], meta []string, read map[string]fileSum) (int, error) {
	const name = "stable/" + stableset.FragmentFile
	b, err := os.ReadFile(filepath.Join(dir, "stable", stableset.FragmentFile))
	if err != nil {
		return 0, err
	}
	fr, err := stableset.ParseFragment(b, name)
	if err != nil {
		return 0, err
	}
	md := filepath.Join(dir, "stable", "metadata")
	v := st.Signed.Version
	roles := map[string]bool{stableset.StableRole: true}
	if st.Signed.Delegations != nil {
		for _, r := range st.Signed.Delegations.Roles {
			if _, dev := tuf.DeveloperProject(r.Name); dev {
				// The developers' metadata is theirs: never on the
				// medium, never in the fragment.
				continue
			}
			roles[r.Name] = true
			file := fmt.Sprintf("%d.%s.json", v, r.Name)
			mb, err := os.ReadFile(filepath.Join(md, file))
			if err != nil {
				return 0, err
			}
			mid, err := tuf.Load[tuf.Targets](mb, file)
			if err != nil {
				return 0, err
			}
			if mid.Signed.Delegations != nil {
				for _, lr := range mid.Signed.Delegations.Roles {
					roles[lr.Name] = true
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range meta {
		rel := "stable/metadata/" + f
		m := stableMetaName.FindStringSubmatch(f)
		role := m[2]
		if m[1] != fmt.Sprint(v) || !roles[role] {
			return 0, fmt.Errorf("%s: stable version %d delegates to no role of this name and version: %w", rel, v, ErrUnexpectedFile)
		}
		got, ok := read[f] // as sumBins read it
		if !ok {
			data, err := os.ReadFile(filepath.Join(md, f))
			if err != nil {
				return 0, err
			}
			got = fileSum{int64(len(data)), sha256.Sum256(data)}
			if read != nil {
				read[f] = got
			}
		}
		key := role + ".json"
		e, ok := fr.Meta[key]
		if !ok {
			return 0, fmt.Errorf("%s lists no %s, which %s holds: %w", name, key, rel, ErrMediumContent)
		}
		sum := got.sha256
		switch {
		case e.Version != v:
			return 0, fmt.Errorf("%s: meta[%q].version is %d, %s is version %d: %w", name, key, e.Version, rel, v, tuf.ErrVersion)
		case e.Length != got.length:
			return 0, fmt.Errorf("%s: meta[%q].length is %d, %s is %d bytes: %w", name, key, e.Length, rel, got.length, tuf.ErrHash)
		case e.Hashes["sha256"] != hex.EncodeToString(sum[:]):
			return 0, fmt.Errorf("%s: meta[%q].hashes.sha256 is %s, %s hashes to %x: %w", name, key, e.Hashes["sha256"], rel, sum, tuf.ErrHash)
		}
		seen[role] = true
	}
	for k := range fr.Meta {
		if r := strings.TrimSuffix(k, ".json"); !seen[r] {
			return 0, fmt.Errorf("%s lists %s, and stable/metadata holds no %d.%s: %w", name, k, v, k, ErrMediumContent)
		}
	}
	for r := range roles {
		if !seen[r] {
			return 0, fmt.Errorf("stable version %d delegates to %s, and stable/metadata holds no %d.%s.json: %w", v, r, v, r, tuf.ErrMissing)
		}
	}
	return len(fr.Meta), nil
}

// checkStableTranscriptValues checks what the transcript recorded against
// the signed diff and the stable metadata: the approval's diff digest,
// stable version, counts, decisions and layout; the signed diff's
// digest; each step once.
//
// roles is the number of metadata files stable's tree has (stable, its
// mids and leaves: checkFragment's count); signers the keys whose
// signatures on stable verify.
func checkStableTranscriptValues(dir string, es []TranscriptEntry, stmt *signeddiff.Statement, st *tuf.Metadata[tuf.Targets], roles int, signers []string, read readSums) error {
	find := func(step string) (*TranscriptEntry, error) {
		var found *TranscriptEntry
		for i := range es {
			if es[i].Step == step {
				if found != nil {
					return nil, fmt.Errorf("transcript.jsonl:%d: a second %q (the first at line %d): %w", es[i].Seq, step, found.Seq, ErrTranscript)
				}
				found = &es[i]
			}
		}
		if found == nil {
			return nil, fmt.Errorf("transcript.jsonl records no %q: %w", step, ErrTranscript)
		}
		return found, nil
	}
	in, err := find("stable inputs")
	if err != nil {
		return err
	}
	if err := checkStableInputs(dir, in, stmt); err != nil {
		return err
	}
	ap, err := find("diff approved and stable signed")
	if err != nil {
		return err
	}
	c := stmt.Counts
	var held int64
	for _, h := range c.HeldBack {
		held += h.Count
	}
	pathRoles, bins := tuf.SplitStable(&st.Signed)
	mids, takenDown, written := len(bins), 0, 0
	for _, r := range pathRoles {
		if r.Name == tuf.TakedownRole {
			takenDown = len(r.Paths)
		}
		// Developer roles are delegated, not written: the developers
		// sign them.
		if _, dev := tuf.DeveloperProject(r.Name); !dev {
			written++
		}
	}
	if got, ok := ap.Detail["taken_down"]; ok != (takenDown > 0) || ok && jsonValue(got) != fmt.Sprint(takenDown) {
		return fmt.Errorf("transcript.jsonl:%d: taken_down is %v, stable version %d delegates %d paths to %s: %w", ap.Seq, jsonValue(got), st.Signed.Version, takenDown, tuf.TakedownRole, ErrTranscript)
	}
	for _, w := range []struct {
		field string
		want  any
	}{
		{"diff_digest", hex.EncodeToString(stmt.DiffSHA256[:])},
		{"stable_version", stmt.StableVersion},
		{"added", c.Added}, {"held", held}, {"removed", c.Removed},
		{"changed", c.ChangedAccepted + c.ChangedRefused + c.ChangedDropped}, {"dropped", c.ChangedDropped},
		{"unchanged", c.Unchanged}, {"decisions", len(stmt.Decisions)},
		{"mid_roles", mids}, {"leaf_bins", roles - 1 - mids - written}, {"role_keys", roles - 1},
	} {
		if got := jsonValue(ap.Detail[w.field]); got != fmt.Sprint(w.want) {
			return fmt.Errorf("transcript.jsonl:%d: %s is %v, the signed diff and stable version %d give %v: %w", ap.Seq, w.field, got, st.Signed.Version, w.want, ErrTranscript)
		}
	}
	var recorded []string
	if list, ok := ap.Detail["signers"].([]any); ok {
		for _, v := range list {
			id, _ := v.(string)
			recorded = append(recorded, id)
		}
	}
	slices.Sort(recorded)
	signed := slices.Sorted(slices.Values(signers))
	if !slices.Equal(recorded, signed) {
		return fmt.Errorf("transcript.jsonl:%d: signers are %q, stable version %d is signed by %q: %w", ap.Seq, recorded, st.Signed.Version, signed, ErrTranscript)
	}
	sd, err := find("signed diff written")
	if err != nil {
		return err
	}
	if got, want := jsonValue(sd.Detail["diff_sha256"]), hex.EncodeToString(stmt.DiffSHA256[:]); got != want {
		return fmt.Errorf("transcript.jsonl:%d: diff_sha256 is %s, the signed diff names %s: %w", sd.Seq, got, want, ErrTranscript)
	}
	// What was written: diff.canonical's digest is the signed diff's
	// (verifyStableMedia hashed the file); diff.txt is hashed again here.
	if got, want := jsonValue(sd.Detail["diff_canonical_sha256"]), hex.EncodeToString(stmt.DiffSHA256[:]); got != want {
		return fmt.Errorf("transcript.jsonl:%d: diff_canonical_sha256 is %s, the signed diff names %s: %w", sd.Seq, got, want, ErrTranscript)
	}
	sum, err := fileSHA256(filepath.Join(dir, "diff.txt"))
	if err != nil {
		return err
	}
	read.add("diff.txt", sum)
	if got, want := hex.EncodeToString(sum[:]), jsonValue(sd.Detail["diff_txt_sha256"]); got != want {
		return fmt.Errorf("diff.txt hashes to %s, transcript.jsonl:%d records diff_txt_sha256 %s as written: %w", got, sd.Seq, want, tuf.ErrHash)
	}
	return nil
}

// checkStableInputs checks the inputs the transcript recorded after the
// pass over the export (entry in, "stable inputs") against the signed
// diff: the export's trailer digest, the policy's and the previous
// ledger's digests, the diff's digest, and the decisions' digest against
// the medium's decisions.jsonl (the signed diff's decisions, checked by
// CheckSignedDiff). A journal that recorded other inputs than those signed
// is refused, naming the field.
func checkStableInputs(dir string, in *TranscriptEntry, stmt *signeddiff.Statement) error {
	dec, err := fileSHA256(filepath.Join(dir, DecisionsFile))
	if err != nil {
		return err
	}
	prev := ""
	if stmt.PreviousLedgerSHA256 != ([32]byte{}) {
		prev = hex.EncodeToString(stmt.PreviousLedgerSHA256[:])
	}
	for _, w := range []struct{ field, want, from string }{
		{"export_trailer_sha256", hex.EncodeToString(stmt.Export.SHA256[:]), "the signed diff's export.sha256"},
		{"policy_sha256", hex.EncodeToString(stmt.PolicySHA256[:]), "the signed diff's policy_sha256"},
		{"previous_ledger_sha256", prev, "the signed diff's previous_ledger_sha256"},
		{"diff_digest", hex.EncodeToString(stmt.DiffSHA256[:]), "the signed diff's diff_sha256"},
		{"decisions_sha256", hex.EncodeToString(dec[:]), DecisionsFile + "'s SHA-256"},
	} {
		got, ok := in.Detail[w.field].(string)
		if !ok {
			return fmt.Errorf("transcript.jsonl:%d: %q records no %s: %w", in.Seq, in.Step, w.field, ErrTranscript)
		}
		if got != w.want {
			return fmt.Errorf("transcript.jsonl:%d: %q records %s %q, %s is %q: %w", in.Seq, in.Step, w.field, got, w.from, w.want, ErrTranscript)
		}
	}
	return nil
}

// teeSHA256 wraps write so that what it writes is hashed into *sum.
func teeSHA256(sum *[32]byte, write func(io.Writer) error) func(io.Writer) error {
	return func(w io.Writer) error {
		h := sha256.New()
		if err := write(io.MultiWriter(w, h)); err != nil {
			return err
		}
		h.Sum(sum[:0])
		return nil
	}
}

// fileSHA256 hashes the file p, streamed.
func fileSHA256(p string) ([32]byte, error) {
	_, sum, err := fileLengthSHA256(p)
	return sum, err
}

// fileLengthSHA256 returns the length and SHA-256 of the file p, streamed.
func fileLengthSHA256(p string) (int64, [32]byte, error) {
	var sum [32]byte
	f, err := os.Open(p)
	if err != nil {
		return 0, sum, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, sum, fmt.Errorf("reading %s: %w", p, err)
	}
	h.Sum(sum[:0])
	return n, sum, nil
}

// readingBack wraps the read-back check in plain progress lines on Show
// (the batch form: the guided form says it on the terminal).
func (s *StableSigning) readingBack(check func(string) error) func(string) error {
	if s.Guide != nil || s.Show == nil {
		return check
	}
	return func(dir string) error {
		const label = "     reading back the media"
		start := time.Now()
		fmt.Fprintf(s.Show, "%s: started\n", label)
		if err := check(dir); err != nil {
			return err
		}
		fmt.Fprintf(s.Show, "%s: done in %s\n", label, time.Since(start).Round(time.Second))
		return nil
	}
}

// jsonValue formats a decoded JSON value as fmt.Sprint formats the Go
// value it was encoded from (integers without an exponent).
func jsonValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	if v == nil {
		return "missing"
	}
	return fmt.Sprint(v)
}
