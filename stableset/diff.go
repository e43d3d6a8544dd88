package stableset

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/internal/hexsum"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
)

// Category is what the diff says about one path.
type Category string

// The diff's categories.
const (
	Added     Category = "added"     // eligible now, enters the stable set
	Held      Category = "held"      // listed but not (yet) stable: see Reason
	Removed   Category = "removed"   // in the stable set, gone from the listing
	Changed   Category = "changed"   // same path, different length or hash
	Unchanged Category = "unchanged" // in the stable set and listed as it is

	// Index pages (simple/<project>/index.html and index.json); unchanged
	// pages are not entries.
	PageAdded   Category = "page-added"   // a project enters the stable set
	PageChanged Category = "page-changed" // the page is made again: reason "files" or "attributes"
	PageRemoved Category = "page-removed" // a project leaves the stable set
)

// Reasons that are not the policy's.
const (
	ReasonBackdated = "backdated" // claims an upload before the previous listing but was not in it
	ReasonRelisted  = "relisted"  // listed before with different content
	ReasonKeptOld   = "kept-old"  // a change not accepted: the stable entry stays
	ReasonAccepted  = "accepted"  // a change accepted by path: the new entry replaces it
	ReasonDropped   = "dropped"   // a change decided "drop": the path leaves the stable set
)

// DiffEntry is one path of the diff.
type DiffEntry struct {
	Category Category
	Reason   string
	Path     string
	Project  string // empty for a removed path the previous ledger did not name
	// Version is the release's version from the export ("" for removed
	// paths and pages); not part of the canonical form, used to sort
	// the review.
	Version string
	// Legacy is the file's legacy name flag from the export
	// (export.Legacy; zero for removed paths and pages); not part of the
	// canonical form, it is shown in the review. A listed file with a
	// legacy name is an entry of the exceptions even when unchanged.
	Legacy export.Legacy
	// Uploaded is the upload time the export claims for a listed file
	// (zero for unchanged entries, removed paths and pages); not part of
	// the canonical form, the review shows it (a backdated file's claim).
	Uploaded  time.Time
	HasOld    bool
	OldLength int64
	OldSHA256 [32]byte
	HasNew    bool
	NewLength int64
	NewSHA256 [32]byte
}

// appendCanonical appends the entry's canonical line (docs/stable-pipeline.md):
// category, reason, path, project, old length, old sha256, new length,
// new sha256, separated by tabs, absent values "-", ending in a newline.
func (e *DiffEntry) appendCanonical(b []byte) []byte {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	b = append(b, e.Category...)
	b = append(b, '\t')
	b = append(b, dash(e.Reason)...)
	b = append(b, '\t')
	b = append(b, e.Path...)
	b = append(b, '\t')
	b = append(b, dash(e.Project)...)
	for _, side := range []struct {
		has bool
		l   int64
		h   *[32]byte
	}{{e.HasOld, e.OldLength, &e.OldSHA256}, {e.HasNew, e.NewLength, &e.NewSHA256}} {
		if side.has {
			b = append(b, '\t')
			b = strconv.AppendInt(b, side.l, 10)
			b = append(b, '\t')
			b = hex.AppendEncode(b, side.h[:])
		} else {
			b = append(b, "\t-\t-"...)
		}
	}
	return append(b, '\n')
}

// appendWorkLine appends an entry's line in the exceptions work file:
// its canonical line (with its LF) with the version as a ninth field, the
// legacy name flag as a tenth and the claimed upload time (Unix seconds,
// "-" when zero) as an eleventh.
func appendWorkLine(b, canon []byte, version string, legacy export.Legacy, uploaded time.Time) []byte {
	b = append(b, canon[:len(canon)-1]...)
	b = append(b, '\t')
	if version == "" {
		version = "-"
	}
	b = append(b, version...)
	b = append(b, '\t')
	if legacy == 0 {
		b = append(b, '-')
	} else {
		b = append(b, legacy.String()...)
	}
	b = append(b, '\t')
	if uploaded.IsZero() {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, uploaded.Unix(), 10)
	}
	return append(b, '\n')
}

// parseCanonical parses a line of the exceptions work file
// (appendWorkLine): parseWorkLine on a copy of line.
func parseCanonical(line []byte) (DiffEntry, error) {
	return parseWorkLine(string(line))
}

// parseWorkLine parses a line of the exceptions work file
// (appendWorkLine), with or without its LF. The entry's strings are
// substrings of line: nothing is copied, so that a part read whole
// (SortedEntries) is parsed without an allocation per field.
func parseWorkLine(line string) (DiffEntry, error) {
	line = strings.TrimSuffix(line, "\n")
	var f [11]string
	for i := range 10 {
		j := strings.IndexByte(line, '\t')
		if j < 0 {
			return DiffEntry{}, errSpill
		}
		f[i], line = line[:j], line[j+1:]
	}
	if strings.IndexByte(line, '\t') >= 0 {
		return DiffEntry{}, errSpill
	}
	f[10] = line
	und := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	e := DiffEntry{Category: Category(f[0]), Reason: und(f[1]), Path: f[2], Project: und(f[3]), Version: und(f[8])}
	var ok bool
	if e.Legacy, ok = export.ParseLegacy(und(f[9])); !ok {
		return e, errSpill
	}
	if u := und(f[10]); u != "" {
		t, err := strconv.ParseInt(u, 10, 64)
		// The export allows 1970-01-01T00:00:00Z, written 0.
		if err != nil || t < 0 {
			return e, errSpill
		}
		e.Uploaded = time.Unix(t, 0).UTC()
	}
	side := func(l, h string, has *bool, n *int64, sum *[32]byte) error {
		if l == "-" {
			return nil
		}
		*has = true
		var err error
		if *n, err = strconv.ParseInt(l, 10, 64); err != nil {
			return errSpill
		}
		if !parseSum(sum, h) {
			return errSpill
		}
		return nil
	}
	if err := side(f[4], f[5], &e.HasOld, &e.OldLength, &e.OldSHA256); err != nil {
		return e, err
	}
	return e, side(f[6], f[7], &e.HasNew, &e.NewLength, &e.NewSHA256)
}

// parseSum decodes 64 hex digits (either case) into sum; ok is false
// for anything else.
func parseSum(sum *[32]byte, h string) bool { return hexsum.Decode(sum, h, &hexsum.Either) }

// Counts are the number of paths in each category.
type Counts struct {
	Added     int64 `json:"added"`
	Held      int64 `json:"held"`
	Backdated int64 `json:"backdated"` // among Held
	Removed   int64 `json:"removed"`
	Changed   int64 `json:"changed"`
	Accepted  int64 `json:"accepted"` // among Changed
	Dropped   int64 `json:"dropped"`  // among Changed: decided "drop", no longer stable
	Unchanged int64 `json:"unchanged"`
	// Legacy counts the files, among the listed ones above, whose name or
	// version follows only the rules PyPI applied in the past
	// (export.Legacy).
	Legacy int64 `json:"legacy_names"`

	PagesAdded   int64 `json:"pages_added"`
	PagesChanged int64 `json:"pages_changed"`
	PagesRemoved int64 `json:"pages_removed"`
}

func (c *Counts) add(e *DiffEntry) {
	switch e.Category {
	case Added:
		c.Added++
	case Held:
		c.Held++
		if e.Reason == ReasonBackdated {
			c.Backdated++
		}
	case Removed:
		c.Removed++
	case Changed:
		c.Changed++
		switch e.Reason {
		case ReasonAccepted:
			c.Accepted++
		case ReasonDropped:
			c.Dropped++
		}
	case Unchanged:
		c.Unchanged++
	case PageAdded:
		c.PagesAdded++
	case PageChanged:
		c.PagesChanged++
	case PageRemoved:
		c.PagesRemoved++
	}
}

func (c *Counts) plus(o *Counts) {
	c.Added += o.Added
	c.Held += o.Held
	c.Backdated += o.Backdated
	c.Removed += o.Removed
	c.Changed += o.Changed
	c.Accepted += o.Accepted
	c.Dropped += o.Dropped
	c.Unchanged += o.Unchanged
	c.Legacy += o.Legacy
	c.PagesAdded += o.PagesAdded
	c.PagesChanged += o.PagesChanged
	c.PagesRemoved += o.PagesRemoved
}

// Stable is the number of files in the resulting stable set.
func (c *Counts) Stable() int64 { return c.Added + c.Unchanged + c.Changed - c.Dropped }

// ProjectSummary is one project's counts.
type ProjectSummary struct {
	Project string `json:"project"`
	Counts
}

// DiffHeader names what was compared.
type DiffHeader struct {
	Repository            string    `json:"repository"`
	ListingTime           time.Time `json:"listing_time"`
	PreviousStableVersion int64     `json:"previous_stable_version"` // 0 at the first ceremony
	PreviousListingTime   time.Time `json:"previous_listing_time"`   // zero at the first ceremony
	PreviousLedgerSHA256  string    `json:"previous_ledger_sha256"`  // "" at the first ceremony
	StableVersion         int64     `json:"stable_version"`
	PolicySHA256          string    `json:"policy_sha256"` // of the policy file's exact bytes
	// TargetMode and Naming are the policy's: what the stable role lists
	// as targets ("files+pages" or "pages") and the index pages' naming
	// layout ("pep458" or "warehouse").
	TargetMode string `json:"target_mode"`
	Naming     string `json:"naming"`
	// TrustsUploadTimes is true at the first ceremony: with no ledger, the
	// repository's upload times cannot be checked.
	TrustsUploadTimes bool `json:"trusts_upload_times"`
}

// Diff is the reviewed difference between the published stable set and
// the one the export makes.
type Diff struct {
	Header   DiffHeader
	Summary  Counts
	Projects []ProjectSummary // sorted by name; the empty name collects removed paths of unknown project
	Digest   string           // hex SHA-256 of the canonical form
	// Export is the export's verified trailer: what the diff was computed
	// from, as the signed diff names it. ExportFileSHA256 is the SHA-256
	// of the export file's bytes.
	Export           export.Trailer
	ExportFileSHA256 [32]byte
	ExportName       string // as Config named it
	// Reasons counts the files per category and reason, from the pass
	// (pages are in Summary).
	Reasons []ReasonCount
	// LegacyNames counts the listed files with a legacy name, per kind
	// (export.Legacy), every kind always present; a file of two kinds
	// counts in both (Summary.Legacy counts files).
	LegacyNames []LegacyCount
	// Takedowns are the paths the new stable delegates to the empty
	// takedown role, sorted: the published stable's, plus this diff's
	// take-down decisions, less its lifts.
	Takedowns []string
	// Delegations are the projects the new stable delegates to their
	// developers, by project (delegations.go).
	Delegations []DelegatedProject
	// Decisions are the decisions applied, in canonical order; Limits
	// the policy's confirm_above limits as the diff meets them.
	Decisions []decisions.Decision
	Limits    []Limit
	// Flags are the red flags the diff raises (flags.go), by kind then
	// subject, each with its decision if one settles it.
	Flags []Flag
	// Expedited are the policy's expedite entries, by path, as the diff
	// met them (nil when the policy expedites nothing).
	Expedited []ExpeditedFile
	// PolicyChanges are the projects that entered or left the policy's
	// nominated or excluded list since the previous ceremony, by project
	// (nil at the first ceremony or when none did).
	PolicyChanges []PolicyChange
	// NewLedgerLength and NewLedgerSHA256 are the new ledger's, as the
	// signing writes it.
	NewLedgerLength int64
	NewLedgerSHA256 [32]byte

	run *run
}

func newDiff(r *run) *Diff {
	d := &Diff{}
	ps := sha256.Sum256(r.cfg.Policy.Bytes())
	d.Header = DiffHeader{Repository: r.hdr.Repository, ListingTime: r.hdr.Generated, StableVersion: r.version, TrustsUploadTimes: r.pub == nil,
		PolicySHA256: hex.EncodeToString(ps[:]), TargetMode: string(r.cfg.Policy.TargetMode), Naming: string(r.cfg.Policy.Naming)}
	d.Decisions = r.cfg.Decisions.All()
	d.ExportName = r.cfg.ExportName
	if r.pub != nil {
		d.Header.PreviousStableVersion = r.pub.version
		d.Header.PreviousLedgerSHA256 = hex.EncodeToString(r.pub.ledgerSum[:])
		d.Header.PreviousListingTime = r.prevLedger.ListingTime
	}
	return d
}

// canonicalHeader is the first part of the digested form: the header
// lines, then the decisions.
func (d *Diff) canonicalHeader() []byte {
	var b []byte
	b = append(b, canonicalMagic+"\n"...)
	b = append(b, "repository "+d.Header.Repository+"\n"...)
	b = append(b, "listing-time "+d.Header.ListingTime.UTC().Format(time.RFC3339)+"\n"...)
	b = append(b, "previous-stable-version "+strconv.FormatInt(d.Header.PreviousStableVersion, 10)+"\n"...)
	pl := "-"
	if d.Header.PreviousLedgerSHA256 != "" {
		pl = d.Header.PreviousLedgerSHA256
	}
	b = append(b, "previous-ledger-sha256 "+pl+"\n"...)
	b = append(b, "stable-version "+strconv.FormatInt(d.Header.StableVersion, 10)+"\n"...)
	b = append(b, "policy-sha256 "+d.Header.PolicySHA256+"\n"...)
	b = append(b, "target-mode "+d.Header.TargetMode+"\n"...)
	b = append(b, "naming "+d.Header.Naming+"\n"...)
	b = append(b, "decisions "+strconv.Itoa(len(d.Decisions))+"\n"...)
	for i := range d.Decisions {
		b = decisions.AppendLine(b, &d.Decisions[i])
	}
	return b
}

func (d *Diff) finish(sum [32]byte, projects []ProjectSummary) {
	d.Digest = hex.EncodeToString(sum[:])
	d.Projects = projects
	slices.SortFunc(d.Projects, func(a, b ProjectSummary) int { return strings.Compare(a.Project, b.Project) })
}

// Entries calls fn for every entry in canonical order (by path: the files,
// then the index pages). Only valid before Close. Unchanged entries are
// made from the run's new ledger, the others read from its exceptions
// file.
func (d *Diff) Entries(fn func(*DiffEntry) error) error {
	return d.entriesWith(func(e *DiffEntry, _ *ledger.RawEntry) error {
		if e == nil {
			return nil
		}
		return fn(e)
	}, nil)
}

// entriesWith is Entries, giving fn with each entry the new ledger's
// record of its path (nil for a path the ledger does not hold), and
// calling fn(nil, le) for a ledger record that is neither unchanged nor
// named by an entry (the pass never writes one: checkPass refuses it).
// le is valid only during the call. lw, if set, is given the ledger's
// reader before the walk (fn may read the project records from it once
// the file records are done, which is when the page entries come) and
// called to end before the file is closed.
func (d *Diff) entriesWith(fn func(*DiffEntry, *ledger.RawEntry) error, lw ledgerWalker) error {
	if d.run == nil || d.run.work == "" {
		return fmt.Errorf("diff is closed")
	}
	f, err := openWork(d.run.bucketPath("ledger", 0))
	if err != nil {
		return fmt.Errorf("opening the work file for the ledger: %w", err)
	}
	defer f.Close()
	lr, err := ledger.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return err
	}
	if lw != nil {
		lw.start(lr)
	}
	le, lerr := lr.NextRaw()
	var u DiffEntry
	unchangedBefore := func(path string) error {
		for lerr == nil && (path == "" || string(le.PathBytes) < path) {
			if le.Stable && !le.Kept {
				u = DiffEntry{Category: Unchanged, Path: string(le.PathBytes), Project: string(le.ProjectBytes), HasOld: true, OldLength: le.Length, OldSHA256: le.SHA256,
					HasNew: true, NewLength: le.Length, NewSHA256: le.SHA256}
				if err := fn(&u, le); err != nil {
					return err
				}
			} else if err := fn(nil, le); err != nil {
				return err
			}
			le, lerr = lr.NextRaw()
		}
		if lerr != nil && lerr != io.EOF {
			return lerr
		}
		return nil
	}
	err = d.exceptions(func(e *DiffEntry) error {
		if err := unchangedBefore(e.Path); err != nil {
			return err
		}
		if lerr == nil && string(le.PathBytes) == e.Path {
			if err := fn(e, le); err != nil {
				return err
			}
			le, lerr = lr.NextRaw()
			return nil
		}
		return fn(e, nil)
	})
	if err != nil {
		return err
	}
	if err := unchangedBefore(""); err != nil {
		return err
	}
	if lw != nil {
		return lw.end()
	}
	return nil
}

// ledgerWalker reads the rest of a new ledger beside entriesWith.
type ledgerWalker interface {
	start(*ledger.Reader)
	end() error
}

// exceptions calls fn for every entry but the unchanged ones (files of legacy
// name are included even when unchanged), in canonical
// order.
func (d *Diff) exceptions(fn func(*DiffEntry) error) error {
	if d.run == nil {
		return fmt.Errorf("diff is closed")
	}
	return d.run.readExceptions(fn)
}

// readExceptions reads the exceptions work file, once written.
func (r *run) readExceptions(fn func(*DiffEntry) error) error {
	if r.work == "" {
		return fmt.Errorf("diff is closed")
	}
	f, err := openWork(r.bucketPath("exceptions", 0))
	if err != nil {
		return fmt.Errorf("opening the work file for the diff: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		e, err := parseCanonical(sc.Bytes())
		if err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the work file for the diff: %w", err)
	}
	return nil
}

// CanonicalFile returns, for a diff OpenReviewed checked, the file in its
// work directory holding the canonical form that check made again and
// hashed to Digest (what WriteCanonical writes), so that the signing
// copies it instead of walking the entries again; ok is false for a diff
// ComputeDiff made, or after Close. The file is removed with the work
// directory.
func (d *Diff) CanonicalFile() (path string, ok bool) {
	if d.run == nil || d.run.work == "" || d.run.canonFile == "" {
		return "", false
	}
	return d.run.canonFile, true
}

// WriteCanonical writes the canonical form whose SHA-256 is Digest: the
// header, then every entry's line.
func (d *Diff) WriteCanonical(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(d.canonicalHeader()); err != nil {
		return err
	}
	var line []byte
	err := d.Entries(func(e *DiffEntry) error {
		line = e.appendCanonical(line[:0])
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// Close removes the diff's work directory.
func (d *Diff) Close() error {
	if d.run == nil || d.run.work == "" {
		return nil
	}
	err := os.RemoveAll(d.run.work)
	d.run.work = ""
	return err
}
