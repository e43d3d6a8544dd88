package stableset

import (
	"hash/maphash"
	"slices"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
)

// Red flags from what the export shows (docs/policy.md, "Red flags"),
// beside project-loss (flags.go): each about a path, each switched by
// the policy (red_flags.*, on by default).
//
//   - added-to-stable-release: a path new to the listing in a release
//     (project and version) that had stable files at the previous
//     ceremony, as the previous ledger's project records name them.
//     PyPI has refused new files on releases older than 14 days since
//     mid-2026, so the online side adding one to a release old enough
//     to be stable is an anomaly.
//   - name-collision: a file whose name ties it to no project under
//     today's rule (export.LegacyMismatch) but whose name part
//     normalises to another project of the export: the export lists
//     under one project a file named as another's.
//   - yanked-stable: a file of the previous stable set that the export
//     marks yanked and the previous ledger did not (a version 4 ledger
//     has no yanked mark: each is raised once, after it).
//
// The pass only collects, off its common path (an added path, a yanked
// or mismatched file): the flags are raised once the export is read,
// from r.seen, by the same code after ComputeDiff's pass and the
// reviewed pass's walk. For added-to-stable-release the pass keeps the
// releases of the added paths and a hash of each path; the previous
// projects, read after the files, name the releases that had stable
// files; the added paths in those are then read from the exceptions.

// Flag kinds raised from the export.
const (
	FlagAddedToStableRelease = "added-to-stable-release"
	FlagNameCollision        = "name-collision"
	FlagYankedStable         = "yanked-stable"
)

func init() {
	flagKinds[FlagAddedToStableRelease] = &FlagKind{
		Name: FlagAddedToStableRelease, About: "path",
		Choices: []decisions.Choice{decisions.Confirm, decisions.Drop},
		Means: map[decisions.Choice]string{
			decisions.Confirm: "the room expects the file: it is decided as any new file (held until old enough)",
			decisions.Drop:    "the file is kept out of the stable set, now and at later ceremonies, until a lift decision",
		},
		Threshold: "red_flags.added_to_stable_release",
	}
	flagKinds[FlagNameCollision] = &FlagKind{
		Name: FlagNameCollision, About: "path",
		Choices:   []decisions.Choice{decisions.Confirm},
		Means:     map[decisions.Choice]string{decisions.Confirm: "the file belongs to the project the export lists it under; its page lists it"},
		Threshold: "red_flags.name_collision",
	}
	flagKinds[FlagYankedStable] = &FlagKind{
		Name: FlagYankedStable, About: "path",
		Choices:   []decisions.Choice{decisions.Confirm},
		Means:     map[decisions.Choice]string{decisions.Confirm: "the yank is what the room expects; the stable page shows the file yanked"},
		Threshold: "red_flags.yanked_stable",
	}
}

// exportSeen is what the pass collects for these flags.
type exportSeen struct {
	// added are the releases of the paths new to the listing, by project
	// then version (only with a previous ledger and the switch on), and
	// addedPaths the paths' hashes (seed): 8 bytes per new path, so that
	// at PyPI's size (about 900,000 new files a period) they cost some
	// 7 MB, where the paths themselves would cost over 100 MB.
	added      map[string]map[string]bool
	addedPaths []uint64
	seed       maphash.Seed
	// hits are the releases of added paths that had stable files at the
	// previous ceremony, found as the previous projects are read: the
	// added paths in them are found in the exceptions once the pass ends
	// (none, at an honest ceremony).
	hits map[string]map[string]bool
	// yanked are the previous stable files the export newly marks
	// yanked; mismatched the files whose names tie them to no project.
	yanked     []seenFile
	mismatched []seenFile
}

type seenFile struct{ path, project, version, filename, note string }

// addedFile collects a path new to the listing (there is a previous
// ledger) and applies its flag's drop decision if there is one: true
// when it did (the file is then held, reason dropped).
func (r *run) addedFile(rec *export.Record, d *decision) bool {
	if !r.cfg.Policy.RedFlags.AddedToStableRelease {
		return false
	}
	r.seen.addAdded(rec.Path, rec.Project, rec.Version)
	return r.dropFlag(FlagAddedToStableRelease, rec.Path, d)
}

// addAdded collects a path new to the listing: its release, and its
// hash. It allocates only for a release not seen yet.
func (s *exportSeen) addAdded(path, project, version string) {
	if s.added == nil {
		s.added = map[string]map[string]bool{}
		s.seed = maphash.MakeSeed()
	}
	vs, ok := s.added[project]
	if !ok {
		vs = map[string]bool{}
		s.added[strings.Clone(project)] = vs
	}
	if !vs[version] {
		vs[strings.Clone(version)] = true
	}
	s.addedPaths = append(s.addedPaths, maphash.String(s.seed, path))
}

// sawFile collects a yanked or mismatched file of the listing, prev being
// its previous ledger record (nil if none).
func (r *run) sawFile(rec *export.Record, prev *ledger.RawEntry) {
	rf := &r.cfg.Policy.RedFlags
	if rec.Yanked && rf.YankedStable && prev != nil && prev.Stable && !prev.Yanked {
		r.seen.yanked = append(r.seen.yanked, seenFile{strings.Clone(rec.Path), strings.Clone(rec.Project), strings.Clone(rec.Version), "", strings.Clone(rec.YankedReason)})
	}
	if rec.Legacy&export.LegacyMismatch != 0 && rf.NameCollision {
		r.seen.mismatched = append(r.seen.mismatched, seenFile{strings.Clone(rec.Path), strings.Clone(rec.Project), strings.Clone(rec.Version), strings.Clone(rec.Filename), ""})
	}
}

// prevProject holds a previous project record against the releases of
// the added paths: those among its releases with stable files are hits.
func (s *exportSeen) prevProject(p *ledger.Project) {
	vs, ok := s.added[p.Project]
	if !ok {
		return
	}
	for v := range vs {
		if _, found := slices.BinarySearch(p.Versions, v); found {
			if s.hits == nil {
				s.hits = map[string]map[string]bool{}
			}
			if s.hits[p.Project] == nil {
				s.hits[p.Project] = map[string]bool{}
			}
			s.hits[p.Project][v] = true
		}
	}
}

// raiseExportFlags raises the flags of this file from what the pass
// collected; the diff's projects are known and its exceptions written.
func (r *run) raiseExportFlags() error {
	s := &r.seen
	if len(s.hits) > 0 {
		// The added paths in those releases: listed files not in the
		// stable set, so in the exceptions, and new to the listing.
		slices.Sort(s.addedPaths)
		err := r.readExceptions(func(e *DiffEntry) error {
			if e.Category != Added && e.Category != Held || !s.hits[e.Project][e.Version] {
				return nil
			}
			if _, ok := slices.BinarySearch(s.addedPaths, maphash.String(s.seed, e.Path)); !ok {
				return nil
			}
			r.raise(FlagAddedToStableRelease, e.Path,
				Fact{"project", e.Project}, Fact{"release", e.Version},
				Fact{"why", "the release had files in the stable set at the previous ceremony (stable v" + strconv.FormatInt(r.version-1, 10) + "); PyPI refuses new files on releases older than 14 days"})
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, f := range s.yanked {
		// The release and the yank's reason are known to the pass, not
		// to the reviewed pass's walk (an unchanged entry has neither).
		facts := []Fact{{"project", f.project}}
		if f.version != "" {
			facts = append(facts, Fact{"release", f.version})
		}
		if f.note != "" {
			facts = append(facts, Fact{"yanked reason", f.note})
		}
		r.raise(FlagYankedStable, f.path, append(facts, Fact{"why", "in the stable set, and not yanked at the previous ceremony"})...)
	}
	for _, f := range s.mismatched {
		if other := r.namedProject(f.filename, f.project, f.version); other != "" {
			r.raise(FlagNameCollision, f.path, Fact{"listed under", f.project}, Fact{"filename", f.filename},
				Fact{"names project", other}, Fact{"why", "the filename's name part normalises (PEP 503) to another project of the export"})
		}
	}
	return nil
}

// namedProject returns a project of the diff other than listed that
// filename belongs to by today's rule (a prefix ending before a '-'
// normalises to it, and what follows starts with a digit or the
// version), the longest such; "" if none.
func (r *run) namedProject(filename, listed, version string) string {
	for i := len(filename) - 1; i > 0; i-- {
		if filename[i] != '-' {
			continue
		}
		rest := filename[i+1:]
		if rest == "" || !(rest[0] >= '0' && rest[0] <= '9' || version != "" && len(rest) >= len(version) && strings.EqualFold(rest[:len(version)], version)) {
			continue
		}
		n := export.NormalizeProject(filename[:i])
		if n == listed {
			continue
		}
		if _, ok := slices.BinarySearchFunc(r.diff.Projects, n, func(p ProjectSummary, name string) int { return strings.Compare(p.Project, name) }); ok {
			return n
		}
	}
	return ""
}
