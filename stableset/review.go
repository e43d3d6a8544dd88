package stableset

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
)

// The review: the summary a room reads first (one screen, from the
// counts the pass made, never from the entries), and on request the full
// list of every entry but the unchanged ones, by project then version.

// heldReasons are always shown, zero or not (docs/policy.md).
var heldReasons = []string{"too-young", "excluded", "not-nominated", "backdated", "relisted"}

// addedReasons are always shown for added files: the count of expedited
// files is in every summary.
var addedReasons = []string{ReasonExpedited}

// changedReasons are always shown for changed files.
var changedReasons = []string{ReasonKeptOld, ReasonAccepted, ReasonDropped}

// topProjects is how many projects the summary names by size of change.
const topProjects = 10

// reasonCount returns the count of one category and reason ("" : the
// category's total).
func (d *Diff) reasonCount(cat Category, reason string) int64 {
	var n int64
	for _, c := range d.Reasons {
		if c.Category == cat && (reason == "" || c.Reason == reason) {
			n += c.Count
		}
	}
	return n
}

// byReason is the summary's counts: each category with its reasons.
type byReason struct {
	Category Category      `json:"category"`
	Count    int64         `json:"count"`
	Reasons  []ReasonCount `json:"reasons,omitempty"`
}

func (d *Diff) categories() []byReason {
	var out []byReason
	for _, cat := range []Category{Added, Held, Removed, Changed, Unchanged} {
		b := byReason{Category: cat, Count: d.reasonCount(cat, "")}
		var want []string
		switch cat {
		case Added:
			want = addedReasons
		case Held:
			want = heldReasons
		case Changed:
			want = changedReasons
		}
		for _, r := range want {
			b.Reasons = append(b.Reasons, ReasonCount{Category: cat, Reason: r, Count: d.reasonCount(cat, r)})
		}
		for _, c := range d.Reasons {
			if c.Category == cat && c.Reason != "" && !slices.Contains(want, c.Reason) {
				b.Reasons = append(b.Reasons, c)
			}
		}
		out = append(out, b)
	}
	return out
}

// changeSize ranks a project in the summary.
func changeSize(c *Counts) int64 { return c.Added + c.Removed + c.Changed }

// legacyProjects returns the projects with the most files of legacy
// name, at most topProjects, most first, then by name.
func (d *Diff) legacyProjects() []ProjectSummary {
	return topProjectsBy(d.Projects, func(p *ProjectSummary) int64 { return p.Legacy })
}

// topProjectsBy returns the projects of ps whose key is above 0, at most
// topProjects, the largest key first, then by name. They are kept as
// they come: memory for topProjects entries, not a copy of every project
// (about 1 M at PyPI's size).
func topProjectsBy(ps []ProjectSummary, key func(*ProjectSummary) int64) []ProjectSummary {
	order := func(a, b *ProjectSummary) int {
		if c := cmp.Compare(key(b), key(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Project, b.Project)
	}
	top := make([]ProjectSummary, 0, topProjects+1)
	for i := range ps {
		p := &ps[i]
		if key(p) <= 0 || len(top) == topProjects && order(p, &top[len(top)-1]) >= 0 {
			continue
		}
		j, _ := slices.BinarySearchFunc(top, p, func(a ProjectSummary, b *ProjectSummary) int { return order(&a, b) })
		top = slices.Insert(top, j, *p)
		if len(top) > topProjects {
			top = top[:topProjects]
		}
	}
	return top
}

// projectLegacy returns a project's count of files of legacy name.
func (d *Diff) projectLegacy(project string) int64 {
	i, ok := slices.BinarySearchFunc(d.Projects, project, func(p ProjectSummary, name string) int { return strings.Compare(p.Project, name) })
	if !ok {
		return 0
	}
	return d.Projects[i].Legacy
}

// largest returns the projects with the most files added, removed or
// changed, at most topProjects, largest first, then by name.
func (d *Diff) largest() []ProjectSummary {
	return topProjectsBy(d.Projects, func(p *ProjectSummary) int64 { return changeSize(&p.Counts) })
}

// digestBytes is the digest as bytes (for the check words).
func (d *Diff) digestBytes() []byte {
	b, _ := hex.DecodeString(d.Digest)
	return b
}

// WriteText writes the summary for people, one screen: what was compared
// (the export's file and trailer digests, the policy's digest, the
// previous stable version and ledger), counts per category and reason,
// the largest projects by change, the confirm_above limits and what
// crossing them demands, the decisions, and the digest with its check
// words. WriteFullText adds every entry.
func (d *Diff) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	h := d.Header
	t := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if h.TrustsUploadTimes {
		fmt.Fprintf(bw, "stable diff for %s: stable v%d, the first signed stable set\n\n", h.Repository, h.StableVersion)
	} else {
		fmt.Fprintf(bw, "stable diff for %s: stable v%d -> v%d\n\n", h.Repository, h.PreviousStableVersion, h.StableVersion)
	}
	fmt.Fprintf(bw, "  export      %s\n", d.ExportName)
	fmt.Fprintf(bw, "    file      sha256 %x\n", d.ExportFileSHA256)
	fmt.Fprintf(bw, "    trailer   %d records, sha256 %x\n", d.Export.Count, d.Export.SHA256)
	fmt.Fprintf(bw, "    generated %s\n", t(h.ListingTime))
	fmt.Fprintf(bw, "  policy      sha256 %s\n", h.PolicySHA256)
	fmt.Fprintf(bw, "    targets   %s\n", targetModeText(h.TargetMode, h.Naming))
	if h.TrustsUploadTimes {
		fmt.Fprintf(bw, "  previous    none: FIRST CEREMONY, the repository's upload times are TRUSTED as they are\n")
	} else {
		fmt.Fprintf(bw, "  previous    stable v%d, listing of %s\n    ledger    sha256 %s\n", h.PreviousStableVersion, t(h.PreviousListingTime), h.PreviousLedgerSHA256)
	}

	cats := d.categories()
	width := len(strconv.FormatInt(d.Summary.Stable(), 10))
	for _, c := range cats {
		width = max(width, len(strconv.FormatInt(c.Count, 10)))
	}
	fmt.Fprintf(bw, "\n  files\n")
	row := func(indent, label string, n int64) {
		fmt.Fprintf(bw, "  %s%-*s %*d\n", indent, 18-len(indent), label, width, n)
	}
	for _, c := range cats {
		label := string(c.Category)
		if c.Category == Held {
			label = "held back"
		}
		row("  ", label, c.Count)
		for _, r := range c.Reasons {
			row("    ", r.Reason, r.Count)
		}
	}
	row("  ", "stable set", d.Summary.Stable())
	// Always shown, as the expedited count is.
	row("  ", "delegations", int64(len(d.Delegations)))
	row("    ", "their files", int64(d.DelegatedFiles()))
	// Always shown; the kinds when there are any.
	row("  ", "legacy names", d.Summary.Legacy)
	for _, l := range d.LegacyNames {
		if d.Summary.Legacy > 0 {
			row("    ", l.Kind, l.Count)
		}
	}
	s := d.Summary
	fmt.Fprintf(bw, "  index pages added %d, changed %d, removed %d\n", s.PagesAdded, s.PagesChanged, s.PagesRemoved)

	if top := d.largest(); len(top) > 0 {
		nw := len("project")
		for _, p := range top {
			nw = max(nw, len(projectName(p.Project)))
		}
		fmt.Fprintf(bw, "\n  largest changes (top %d by files added, removed, changed)\n", topProjects)
		fmt.Fprintf(bw, "    %-*s %9s %9s %9s %9s %9s\n", nw, "project", "added", "held", "removed", "changed", "unchanged")
		for _, p := range top {
			c := p.Counts
			fmt.Fprintf(bw, "    %-*s %9d %9d %9d %9d %9d\n", nw, projectName(p.Project), c.Added, c.Held, c.Removed, c.Changed, c.Unchanged)
		}
	}

	if top := d.legacyProjects(); len(top) > 0 {
		nw := len("project")
		for _, p := range top {
			nw = max(nw, len(projectName(p.Project)))
		}
		fmt.Fprintf(bw, "\n  legacy names by project (top %d)\n", topProjects)
		fmt.Fprintf(bw, "    %-*s %9s %9s\n", nw, "project", "legacy", "listed")
		for _, p := range top {
			c := p.Counts
			fmt.Fprintf(bw, "    %-*s %9d %9d\n", nw, projectName(p.Project), c.Legacy, c.Added+c.Held+c.Changed+c.Unchanged)
		}
	}

	fmt.Fprintf(bw, "\n  limits (policy confirm_above)\n    %-8s %12s %12s\n", "", "limit", "count")
	for _, l := range d.Limits {
		state := "within"
		switch {
		case l.Crossed && l.Undecided > 0:
			state = "CROSSED: DECISION NEEDED"
		case l.Crossed:
			state = "crossed: decided"
		}
		fmt.Fprintf(bw, "    %-8s %12d %12d  %s\n", l.Name, l.Max, l.Count, state)
	}
	for _, l := range d.Limits {
		if p := l.Problem(); p != "" {
			fmt.Fprintf(bw, "  !!! %s\n", p)
		}
	}
	d.writeFlags(bw)
	if len(d.Decisions) > 0 {
		fmt.Fprintf(bw, "\n  decisions (%d)\n", len(d.Decisions))
		d.writeDecisions(bw, summaryDecisions)
		if n := len(d.Decisions) - summaryDecisions; n > 0 {
			fmt.Fprintf(bw, "    … %d more: --full lists them all\n", n)
		}
	}
	d.writeExpedited(bw)
	d.writeDelegations(bw)
	d.writePolicyChanges(bw)
	if n := d.reasonCount(Changed, ""); n > 0 {
		fmt.Fprintf(bw, "\n  !!! %d CHANGED FILES: same path, different content. PyPI never re-uploads a file: this is an attack or a bug.\n", n)
	}
	takingDown := 0
	for _, dc := range d.Decisions {
		if dc.Choice == decisions.TakeDown {
			takingDown++
		}
	}
	if n := takingDown; n > 0 {
		fmt.Fprintf(bw, "\n  !!! %d FILES TAKEN DOWN: they leave the stable set now and stable delegates them to the empty takedown role, so that clients find nothing for them; each decision above says why.\n", n)
	}
	if n := len(d.Takedowns); n > 0 {
		fmt.Fprintf(bw, "\n  taken down: %d paths delegated to the empty takedown role (kept until a lift decision)\n", n)
	}
	if n := d.reasonCount(Held, ReasonBackdated); n > 0 {
		fmt.Fprintf(bw, "\n  !!! %d BACKDATED FILES: they claim an upload before the previous listing but were not in it. Held back.\n", n)
	}
	if n := d.Summary.Legacy; n > 0 {
		fmt.Fprintf(bw, "\n  !!! %d FILES WITH LEGACY NAMES: their filename or version follows only rules PyPI applied in the past, or names another project (docs/export-format.md). The policy treats them as any file; --full lists every one.\n", n)
	}
	fmt.Fprintf(bw, "\n  digest %s\n", d.Digest)
	words := keys.PGPWords(d.digestBytes())
	for i := 0; i < len(words); i += 8 {
		fmt.Fprintf(bw, "         %s\n", strings.Join(words[i:min(i+8, len(words))], " "))
	}
	return bw.Flush()
}

// writeFlags lists every red flag (flags.go) with its facts, the
// choices that settle it and its decision, or that it has none.
func (d *Diff) writeFlags(w io.Writer) {
	if len(d.Flags) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  red flags (%d)\n", len(d.Flags))
	shown, more, open := map[string]int{}, map[string]int{}, map[string]int{}
	for i := range d.Flags {
		f := &d.Flags[i]
		// At most maxUndecidedNamed of a kind: the summary stays a
		// summary when thousands of files are flagged.
		if shown[f.Kind]++; shown[f.Kind] > maxUndecidedNamed {
			if more[f.Kind]++; f.Decision == nil {
				open[f.Kind]++
			}
			continue
		}
		fmt.Fprintf(w, "    %d. %s %s\n", i+1, f.Kind, f.Subject)
		nw := 0
		for _, fc := range f.Facts {
			nw = max(nw, len(fc.Name))
		}
		for _, fc := range f.Facts {
			fmt.Fprintf(w, "         %-*s  %s\n", nw, fc.Name, fc.Value)
		}
		if f.Decision != nil {
			fmt.Fprintf(w, "         decided %s because: %s\n", f.Decision.Choice, f.Decision.Reason)
		} else {
			fmt.Fprintf(w, "  !!!    NO DECISION: decide %s, with a reason\n", choiceList(f.Choices))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(more)) {
		fmt.Fprintf(w, "    … %d more %s flags, %d without a decision (--format json lists every one)\n", more[k], k, open[k])
	}
}

// writeExpedited lists the policy's expedite entries: each applied one
// is a red flag with the policy's reason and the decision, or the lack
// of one; the others are noted as having no effect.
func (d *Diff) writeExpedited(w io.Writer) {
	if len(d.Expedited) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  policy expedite: %d entries, %d applied (younger than the minimum age)\n", len(d.Expedited), d.ExpeditedCount())
	for _, e := range d.Expedited {
		switch e.State {
		case ExpediteApplied:
			fmt.Fprintf(w, "  !!! expedited: younger than policy: %s %s\n        %s\n        sha256 %s\n        policy:   %s\n", e.Project, e.Version, e.Path, e.SHA256, e.Reason)
			if e.Decided {
				fmt.Fprintf(w, "        decided:  %s\n", e.Decision)
			} else {
				fmt.Fprintf(w, "        DECISION NEEDED: {\"path\": %q, \"decision\": \"expedite\", \"reason\": …}\n", e.Path)
			}
		default:
			fmt.Fprintf(w, "      no effect (%s): %s\n", e.State, e.Path)
		}
	}
}

// writeDelegations lists every developer delegation the new stable
// makes: the role, its threshold and keys, and what its patterns cover.
func (d *Diff) writeDelegations(w io.Writer) {
	if len(d.Delegations) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  developer delegations: %d projects, %d files held by developer roles (before the bins, terminating; the developers sign these roles and the projects' index pages)\n", len(d.Delegations), d.DelegatedFiles())
	for _, dp := range d.Delegations {
		fmt.Fprintf(w, "    %s -> role %s, %d of %d keys, %d files, %d patterns\n", dp.Project, dp.Role, dp.Threshold, len(dp.KeyIDs), dp.Files, len(dp.Patterns))
		for _, id := range dp.KeyIDs {
			fmt.Fprintf(w, "        key %s\n", id)
		}
		for _, p := range dp.Patterns {
			fmt.Fprintf(w, "        path %s\n", p)
		}
	}
}

// writePolicyChanges lists every project that entered or left the
// policy's nominated or excluded list since the previous ceremony, each
// a red flag with its decision's reason or the lack of one.
func (d *Diff) writePolicyChanges(w io.Writer) {
	if d.Header.TrustsUploadTimes && len(d.PolicyChanges) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  policy lists changed since stable v%d: %d\n", d.Header.PreviousStableVersion, len(d.PolicyChanges))
	for _, c := range d.PolicyChanges {
		fmt.Fprintf(w, "  !!! %s: %s %s\n", c.List, c.verb(), c.Project)
		if c.Decided {
			fmt.Fprintf(w, "        decided:  %s\n", c.Reason)
		} else {
			fmt.Fprintf(w, "        DECISION NEEDED: {\"project\": %q, \"decision\": %q, \"reason\": …}\n", c.Project, c.Change)
		}
	}
}

// summaryDecisions is how many decisions the summary lists.
const summaryDecisions = 10

// writeDecisions lists the first n decisions (all when n < 0).
func (d *Diff) writeDecisions(w io.Writer, n int) {
	for i, dc := range d.Decisions {
		if n >= 0 && i >= n {
			return
		}
		subject := dc.Path
		switch {
		case dc.Limit != "":
			subject = fmt.Sprintf("%s %d", dc.Limit, dc.Count)
		case dc.Flag != "":
			subject = dc.Flag + " " + dc.Subject
		case dc.Project != "":
			subject = "project " + dc.Project
		}
		fmt.Fprintf(w, "    %-10s %s\n    %-10s because: %s\n", dc.Choice, subject, "", dc.Reason)
	}
}

func projectName(p string) string {
	if p == "" {
		return "(unknown)"
	}
	return p
}

// WriteFullText writes the summary, then every entry but the unchanged
// ones (a file of legacy name is listed even when unchanged), sorted by
// project, then version, then path.
func (d *Diff) WriteFullText(w io.Writer) error {
	if err := d.WriteText(w); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	if len(d.Decisions) > summaryDecisions {
		fmt.Fprintf(bw, "\nevery decision (%d)\n", len(d.Decisions))
		d.writeDecisions(bw, -1)
	}
	fmt.Fprintf(bw, "\nentries (every one but the unchanged), by project, version, path\n")
	project := "\x00"
	// Each entry's lines appended as fmt would format them (no fmt in
	// the loop: at PyPI's scale it is millions of lines).
	var ln []byte
	err := d.SortedEntries(func(e *DiffEntry) error {
		ln = ln[:0]
		if e.Project != project || project == "\x00" {
			project = e.Project
			ln = append(append(ln, '\n'), projectName(project)...)
			if n := d.projectLegacy(project); n > 0 {
				ln = strconv.AppendInt(append(ln, "  ("...), int64(n), 10)
				ln = append(ln, " with legacy names)"...)
			}
			ln = append(ln, '\n')
		}
		v := e.Version
		if v == "" {
			v = "-"
		}
		mark := byte(' ')
		if e.Category == Changed || e.Reason == ReasonBackdated || e.Reason == ReasonRelisted || e.Reason == ReasonExpedited {
			mark = '!'
		}
		ln = appendPadded(append(ln, mark, ' '), v, 12)
		// The label: category, reason, legacy kind, padded to 24.
		l0 := len(ln) + 1
		ln = append(append(ln, ' '), e.Category...)
		if e.Reason != "" {
			ln = append(append(ln, ' '), e.Reason...)
		}
		if e.Legacy != 0 {
			ln = append(append(ln, " legacy:"...), e.Legacy.String()...)
		}
		ln = padTo(ln, l0, 24)
		ln = append(append(append(ln, ' '), e.Path...), '\n')
		if e.HasOld && (e.Category == Changed || e.Category == Removed) {
			ln = appendContentLine(ln, "stable:", e.OldLength, &e.OldSHA256)
		}
		if e.HasNew && (e.Category != Held || e.Legacy != 0) {
			ln = appendContentLine(ln, "listed:", e.NewLength, &e.NewSHA256)
		}
		_, err := bw.Write(ln)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// appendPadded appends s padded with spaces to width runes, as fmt's
// %-<width>s formats it.
func appendPadded(b []byte, s string, width int) []byte {
	return padTo(append(b, s...), len(b), width)
}

// padTo pads what b holds from start on with spaces to width runes.
func padTo(b []byte, start, width int) []byte {
	for n := utf8.RuneCount(b[start:]); n < width; n++ {
		b = append(b, ' ')
	}
	return b
}

// appendContentLine appends the line fmt.Sprintf("  %-12s %-24s %d bytes
// sha256 %x\n", "", label, length, sum) formats.
func appendContentLine(b []byte, label string, length int64, sum *[32]byte) []byte {
	b = append(b, "               "...) // two spaces, twelve, one
	b = append(appendPadded(b, label, 24), ' ')
	b = strconv.AppendInt(b, length, 10)
	b = append(b, " bytes sha256 "...)
	b = hex.AppendEncode(b, sum[:])
	return append(b, '\n')
}

// summaryJSON is WriteJSON's object.
type summaryJSON struct {
	Format     string           `json:"format"`
	Version    int              `json:"version"`
	Digest     string           `json:"digest"`
	CheckWords string           `json:"check_words"`
	Export     exportIdentity   `json:"export"`
	Header     DiffHeader       `json:"header"`
	Summary    Counts           `json:"summary"`
	Categories []byReason       `json:"categories"`
	Largest    []ProjectSummary `json:"largest"`
	// LegacyNames counts the files of legacy name per kind;
	// LegacyProjects names the projects with the most.
	LegacyNames    []LegacyCount    `json:"legacy_kinds"`
	LegacyProjects []ProjectSummary `json:"legacy_projects"`
	Limits         []Limit          `json:"limits"`
	Decisions      []decisionJSON   `json:"decisions"`
	Flags          []flagJSON       `json:"flags"`
	// Expedited are the policy's expedite entries as the diff met them;
	// PolicyChanges the changes to its lists since the previous ceremony.
	Expedited     []ExpeditedFile `json:"expedited"`
	PolicyChanges []PolicyChange  `json:"policy_changes"`
	// Delegations are the projects stable delegates to their developers.
	Delegations []DelegatedProject `json:"delegations"`
}

// flagJSON is a red flag with its decision, or "decision": null.
type flagJSON struct {
	Flag
	Decided *flagDecisionJSON `json:"decision"`
}

type flagDecisionJSON struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

type exportIdentity struct {
	Name          string `json:"name"`
	FileSHA256    string `json:"file_sha256"`
	TrailerCount  int64  `json:"trailer_count"`
	TrailerSHA256 string `json:"trailer_sha256"`
}

type decisionJSON struct {
	Path     string `json:"path,omitempty"`
	Limit    string `json:"limit,omitempty"`
	Flag     string `json:"flag,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Project  string `json:"project,omitempty"`
	Count    *int64 `json:"count,omitempty"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

func (d *Diff) summaryJSON() summaryJSON {
	s := summaryJSON{
		Format: "keyceremony-stable-diff", Version: 3, Digest: d.Digest, CheckWords: strings.Join(keys.PGPWords(d.digestBytes()), " "),
		Export: exportIdentity{Name: d.ExportName, FileSHA256: hex.EncodeToString(d.ExportFileSHA256[:]),
			TrailerCount: d.Export.Count, TrailerSHA256: hex.EncodeToString(d.Export.SHA256[:])},
		Header: d.Header, Summary: d.Summary, Categories: d.categories(), Largest: d.largest(), Limits: d.Limits,
		LegacyNames: d.LegacyNames, LegacyProjects: d.legacyProjects(),
		Decisions: []decisionJSON{}, Flags: []flagJSON{}, Expedited: d.Expedited, PolicyChanges: d.PolicyChanges,
	}
	if s.PolicyChanges == nil {
		s.PolicyChanges = []PolicyChange{}
	}
	if s.Delegations = d.Delegations; s.Delegations == nil {
		s.Delegations = []DelegatedProject{}
	}
	if s.Expedited == nil {
		s.Expedited = []ExpeditedFile{}
	}
	for _, f := range d.Flags {
		j := flagJSON{Flag: f}
		if f.Decision != nil {
			j.Decided = &flagDecisionJSON{Decision: string(f.Decision.Choice), Reason: f.Decision.Reason}
		}
		s.Flags = append(s.Flags, j)
	}
	if s.Largest == nil {
		s.Largest = []ProjectSummary{}
	}
	if s.LegacyNames == nil {
		s.LegacyNames = []LegacyCount{}
	}
	if s.LegacyProjects == nil {
		s.LegacyProjects = []ProjectSummary{}
	}
	for _, dc := range d.Decisions {
		j := decisionJSON{Path: dc.Path, Limit: dc.Limit, Flag: dc.Flag, Subject: dc.Subject, Project: dc.Project, Decision: string(dc.Choice), Reason: dc.Reason}
		if dc.Limit != "" {
			n := dc.Count
			j.Count = &n
		}
		s.Decisions = append(s.Decisions, j)
	}
	return s
}

// WriteJSON writes the summary WriteText shows as one JSON object, for
// tools. WriteFullJSON adds the entries.
func (d *Diff) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(d.summaryJSON(), "", " ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// jsonEntry is an entry of WriteFullJSON's listing: appendJSONEntry
// writes it as json.Marshal would (TestJSONEntryAsMarshal).
type jsonEntry struct {
	Category  Category `json:"category"`
	Reason    string   `json:"reason,omitempty"`
	Path      string   `json:"path"`
	Project   string   `json:"project"`
	Version   string   `json:"version,omitempty"`
	Legacy    string   `json:"legacy,omitempty"`
	OldLength *int64   `json:"old_length,omitempty"`
	OldSHA256 string   `json:"old_sha256,omitempty"`
	NewLength *int64   `json:"new_length,omitempty"`
	NewSHA256 string   `json:"new_sha256,omitempty"`
}

// WriteFullJSON writes the summary's object with one more field,
// "entries": every entry but the unchanged ones, sorted as WriteFullText
// sorts them, one per line.
func (d *Diff) WriteFullJSON(w io.Writer) error {
	b, err := json.MarshalIndent(d.summaryJSON(), "", " ")
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.Write(bytes.TrimSuffix(b, []byte("\n}")))
	bw.WriteString(",\n \"entries\": [")
	first := true
	// Each entry appended as json.Marshal would give its jsonEntry (no
	// reflection in the loop: millions of lines).
	var line []byte
	err = d.SortedEntries(func(e *DiffEntry) error {
		line = line[:0]
		if !first {
			line = append(line, ',')
		}
		first = false
		line = appendJSONEntry(append(line, "\n  "...), e)
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString("\n ]\n}\n")
	return bw.Flush()
}

// appendJSONEntry appends e as json.Marshal formats its jsonEntry.
func appendJSONEntry(b []byte, e *DiffEntry) []byte {
	b = appendJSONString(append(b, `{"category":`...), string(e.Category))
	if e.Reason != "" {
		b = appendJSONString(append(b, `,"reason":`...), e.Reason)
	}
	b = appendJSONString(append(b, `,"path":`...), e.Path)
	b = appendJSONString(append(b, `,"project":`...), e.Project)
	if e.Version != "" {
		b = appendJSONString(append(b, `,"version":`...), e.Version)
	}
	if l := e.Legacy.String(); l != "" {
		b = appendJSONString(append(b, `,"legacy":`...), l)
	}
	if e.HasOld {
		b = strconv.AppendInt(append(b, `,"old_length":`...), e.OldLength, 10)
		b = append(hex.AppendEncode(append(b, `,"old_sha256":"`...), e.OldSHA256[:]), '"')
	}
	if e.HasNew {
		b = strconv.AppendInt(append(b, `,"new_length":`...), e.NewLength, 10)
		b = append(hex.AppendEncode(append(b, `,"new_sha256":"`...), e.NewSHA256[:]), '"')
	}
	return append(b, '}')
}

// appendJSONString appends s quoted as json.Marshal quotes a string:
// HTML's <, > and & escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped.
func appendJSONString(b []byte, s string) []byte {
	const digits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', digits[c>>4], digits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', digits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}

// SortedEntries calls fn for every entry but the unchanged ones (files of
// legacy name are included even when unchanged), sorted by
// project, then version (CompareVersions), then path. The entries are
// split by the project's first byte into work files, and one part at a
// time is sorted in memory: memory is bounded by the entries of the
// projects that share a first letter.
func (d *Diff) SortedEntries(fn func(*DiffEntry) error) error {
	if d.run == nil || d.run.work == "" {
		return fmt.Errorf("diff is closed")
	}
	// The parts are removed as they are read; a call that failed may
	// have left some.
	for b := 0; b < 256; b++ {
		os.Remove(d.run.bucketPath("sorted", b))
	}
	parts := d.run.buckets("sorted", 256, 32<<10)
	defer parts.close()
	var sizes [256]int64
	// The exceptions' lines are copied as they are, each parsed (in
	// place, nothing copied) only to check it and find its project.
	err := d.exceptionLines(func(line string) error {
		e, err := parseWorkLine(line)
		if err != nil {
			return err
		}
		var b byte
		if e.Project != "" {
			b = e.Project[0]
		}
		sizes[b] += int64(len(line))
		_, err = io.WriteString(parts[b], line)
		return err
	})
	if err != nil {
		return err
	}
	if err := parts.close(); err != nil {
		return err
	}
	// One part read and sorted ahead of the one fn is given (on the
	// other core): at most two parts in memory. A part over sortPartMax
	// bytes is not read whole: it is sorted in runs of about sortPartMax
	// bytes, written to work files (sortRuns, ahead as well), and fn is
	// given their merge (mergeRuns), so that one large project or first
	// letter never takes more than sortPartMax at a time.
	type part struct {
		es   []DiffEntry
		idx  []int32
		runs []string
		err  error
	}
	next := make(chan part, 1)
	stop := make(chan struct{})
	defer func() {
		// The runs sorted ahead of a failure, and the parts left.
		close(stop)
		for p := range next {
			removeAll(p.runs)
		}
		for b := range parts {
			os.Remove(d.run.bucketPath("sorted", b))
		}
	}()
	go func() {
		defer close(next)
		var chunk []byte // sortRuns' buffer, kept from part to part
		for b := range parts {
			var p part
			if sizes[b] > sortPartMax {
				p.runs, chunk, p.err = d.sortRuns(b, chunk)
			} else {
				p.es, p.idx, p.err = d.sortedPart(b)
			}
			select {
			case next <- p:
			case <-stop:
				removeAll(p.runs)
				return
			}
			if p.err != nil {
				return
			}
		}
	}()
	b := 0
	for p := range next {
		if p.err != nil {
			return p.err
		}
		if p.runs != nil {
			err := mergeRuns(p.runs, fn)
			removeAll(p.runs)
			if err != nil {
				return err
			}
		}
		for _, i := range p.idx {
			if err := fn(&p.es[i]); err != nil {
				return err
			}
		}
		os.Remove(d.run.bucketPath("sorted", b))
		b++
	}
	return nil
}

// removeAll removes the work files paths.
func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

// sortPartMax is the size of a part of SortedEntries above which it is
// sorted in runs of about this size and merged (a variable for tests).
var sortPartMax int64 = 16 << 20

// sortedPart reads part b of SortedEntries and returns its entries and
// their order. The entries' strings are substrings of the part's data.
func (d *Diff) sortedPart(b int) ([]DiffEntry, []int32, error) {
	data, err := readFileString(d.run.bucketPath("sorted", b))
	if err != nil {
		return nil, nil, err
	}
	return sortLines(data)
}

// sortLines parses the work lines in data (their strings substrings of
// data) and returns the entries and their order.
func sortLines(data string) ([]DiffEntry, []int32, error) {
	n := strings.Count(data, "\n")
	es := make([]DiffEntry, 0, n)
	keys := make([]sortKey, 0, n)
	for off := 0; off < len(data); {
		i := strings.IndexByte(data[off:], '\n')
		if i < 0 {
			return nil, nil, errSpill
		}
		e, err := parseWorkLine(data[off : off+i+1])
		if err != nil {
			return nil, nil, err
		}
		es = append(es, e)
		keys = append(keys, sortKey{e.Project, e.Version, e.Path})
		off += i + 1
	}
	return es, sortOrder(keys), nil
}

// sortKey is what SortedEntries sorts an entry by.
type sortKey struct{ project, version, path string }

// compareEntries is SortedEntries' order.
func compareEntries(a, b *DiffEntry) int {
	return compareKeys(&sortKey{a.Project, a.Version, a.Path}, &sortKey{b.Project, b.Version, b.Path})
}

// compareKeys is SortedEntries' order: by project, then version
// (CompareVersions), then path.
func compareKeys(a, b *sortKey) int {
	if c := strings.Compare(a.project, b.project); c != 0 {
		return c
	}
	if c := CompareVersions(a.version, b.version); c != 0 {
		return c
	}
	return strings.Compare(a.path, b.path)
}

// sortOrder returns the indexes of keys in compareKeys' order. The
// distinct projects and versions are ranked first (a version's rank is
// shared by those CompareVersions calls equal), so that the sort compares
// one number, project rank then version rank, and reads a string only for
// two entries of one release (their paths). The indexes are sorted, not
// the keys: fewer bytes moved.
func sortOrder(keys []sortKey) []int32 {
	rank := make([]uint64, len(keys))
	projects, versions := map[string]uint32{}, map[string]uint32{}
	for i := range keys {
		projects[keys[i].project] = 0
		versions[keys[i].version] = 0
	}
	rankBy(projects, strings.Compare)
	rankBy(versions, CompareVersions)
	idx := make([]int32, len(keys))
	for i := range keys {
		rank[i] = uint64(projects[keys[i].project])<<32 | uint64(versions[keys[i].version])
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(i, j int32) int {
		if c := cmp.Compare(rank[i], rank[j]); c != 0 {
			return c
		}
		return strings.Compare(keys[i].path, keys[j].path)
	})
	return idx
}

// rankBy sets each key of m to its rank in compare's order, 0 for the
// least; keys that compare equal share a rank.
func rankBy(m map[string]uint32, compare func(a, b string) int) {
	ks := slices.SortedFunc(maps.Keys(m), compare)
	var r uint32
	for i, k := range ks {
		if i > 0 && compare(ks[i-1], k) != 0 {
			r++
		}
		m[k] = r
	}
}

// workLineKey returns the sort key of a work line (appendWorkLine)
// without parsing the rest; ok is false when it has fewer than 11
// fields.
func workLineKey(line string) (k sortKey, ok bool) {
	und := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	for i := range 10 {
		j := strings.IndexByte(line, '\t')
		if j < 0 {
			return k, false
		}
		switch i {
		case 2:
			k.path = line[:j]
		case 3:
			k.project = und(line[:j])
		case 8:
			k.version = und(line[:j])
		}
		line = line[j+1:]
	}
	return k, true
}

// exceptionLines calls fn with every line of the exceptions work file
// (with its LF), as a string that stays valid after fn returns.
func (d *Diff) exceptionLines(fn func(string) error) error {
	f, err := openWork(d.run.bucketPath("exceptions", 0))
	if err != nil {
		return fmt.Errorf("opening the work file for the diff: %w", err)
	}
	defer f.Close()
	lr := lineReader{r: f}
	for {
		line, ok, err := lr.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(line); err != nil {
			return err
		}
	}
}

// lineBlock is how much a lineReader reads at a time.
const lineBlock = 256 << 10

// lineReader reads the lines of a work file as substrings of blocks of
// about lineBlock bytes, each block a string of its own: a line stays
// valid (and keeps its block alive) after the next is read, and there
// is one allocation per block, not one per line.
type lineReader struct {
	r   io.Reader
	s   string // the block
	off int    // where the next line starts in s
	buf []byte
	eof bool
}

// next returns the next line with its LF; ok is false at the end. A file
// that does not end in LF is corrupt (errSpill).
func (lr *lineReader) next() (line string, ok bool, err error) {
	for {
		if i := strings.IndexByte(lr.s[lr.off:], '\n'); i >= 0 {
			line = lr.s[lr.off : lr.off+i+1]
			lr.off += i + 1
			return line, true, nil
		}
		rest := lr.s[lr.off:]
		if lr.eof {
			if rest != "" {
				return "", false, errSpill
			}
			return "", false, nil
		}
		lr.buf = slices.Grow(append(lr.buf[:0], rest...), lineBlock)
		n, err := io.ReadFull(lr.r, lr.buf[len(rest):cap(lr.buf)])
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			lr.eof = true
		case err != nil:
			return "", false, fmt.Errorf("reading a work file: %w", err)
		}
		lr.s, lr.off = string(lr.buf[:len(rest)+n]), 0
	}
}

// sortRuns reads part b of SortedEntries, a part over sortPartMax, in
// runs of about sortPartMax bytes, each sorted and written to a work
// file, and returns the runs' files (none left on failure) and the
// buffer that held a run, for the next call (chunk, which may be nil).
func (d *Diff) sortRuns(b int, chunk []byte) (runs []string, _ []byte, err error) {
	f, err := openWork(d.run.bucketPath("sorted", b))
	if err != nil {
		return nil, chunk, fmt.Errorf("opening a work file: %w", err)
	}
	defer f.Close()
	defer func() {
		if err != nil {
			removeAll(runs)
			runs = nil
		}
	}()
	br := bufio.NewReaderSize(f, 1<<20)
	if int64(cap(chunk)) < sortPartMax+1<<20 {
		chunk = make([]byte, 0, sortPartMax+1<<20)
	}
	for done := false; !done; {
		chunk = chunk[:0]
		for int64(len(chunk)) < sortPartMax {
			line, err := br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				chunk = append(chunk, line...)
				continue
			}
			chunk = append(chunk, line...)
			if err == io.EOF {
				done = true
				break
			}
			if err != nil {
				return runs, chunk, fmt.Errorf("reading a work file: %w", err)
			}
		}
		if len(chunk) == 0 {
			break
		}
		// The part's lines were parsed when spilled: only their keys
		// are read here; the merge parses each line once.
		data := string(chunk)
		keys := make([]sortKey, 0, strings.Count(data, "\n"))
		starts := make([]int32, 0, cap(keys)+1)
		for off := 0; off < len(data); {
			i := strings.IndexByte(data[off:], '\n')
			if i < 0 {
				return runs, chunk, errSpill
			}
			k, ok := workLineKey(data[off : off+i+1])
			if !ok {
				return runs, chunk, errSpill
			}
			keys = append(keys, k)
			starts = append(starts, int32(off))
			off += i + 1
		}
		starts = append(starts, int32(len(data)))
		idx := sortOrder(keys)
		path := fmt.Sprintf("%s-run%d", d.run.bucketPath("sorted", b), len(runs))
		runs = append(runs, path)
		w := &workFile{path: path, size: 1 << 20}
		for _, i := range idx {
			if _, err := w.Write(chunk[starts[i]:starts[i+1]]); err != nil {
				w.Close()
				return runs, chunk, err
			}
		}
		if err := w.Close(); err != nil {
			return runs, chunk, err
		}
	}
	return runs, chunk, nil
}

// mergeRuns gives fn the entries of the sorted runs, in order: a heap of
// the runs' heads, one entry of each in memory, each line parsed once. No
// two entries have one path, so the order is the one sortedPart gives.
func mergeRuns(runs []string, fn func(*DiffEntry) error) error {
	// The merge: a heap of the runs' heads, the least first.
	type head struct {
		e  DiffEntry
		lr lineReader
	}
	advance := func(h *head) (bool, error) {
		line, ok, err := h.lr.next()
		if err != nil || !ok {
			return false, err
		}
		h.e, err = parseWorkLine(line)
		return err == nil, err
	}
	var heads []*head
	for _, r := range runs {
		rf, err := openWork(r)
		if err != nil {
			return fmt.Errorf("opening a work file: %w", err)
		}
		defer rf.Close()
		h := &head{lr: lineReader{r: rf}}
		ok, err := advance(h)
		if err != nil {
			return err
		}
		if ok {
			heads = append(heads, h)
		}
	}
	less := func(i, j int) bool { return compareEntries(&heads[i].e, &heads[j].e) < 0 }
	down := func(i int) {
		for {
			m := i
			if l := 2*i + 1; l < len(heads) && less(l, m) {
				m = l
			}
			if r := 2*i + 2; r < len(heads) && less(r, m) {
				m = r
			}
			if m == i {
				return
			}
			heads[i], heads[m] = heads[m], heads[i]
			i = m
		}
	}
	for i := len(heads)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(heads) > 0 {
		if err := fn(&heads[0].e); err != nil {
			return err
		}
		ok, err := advance(heads[0])
		if err != nil {
			return err
		}
		if !ok {
			heads[0] = heads[len(heads)-1]
			heads = heads[:len(heads)-1]
		}
		down(0)
	}
	return nil
}

// CompareVersions orders version strings for the review: runs of digits
// compare as numbers, other runs as bytes, a shorter string that is a
// prefix of the other first ("1.0" < "1.0.1" < "1.0a1" < "1.2" < "1.10").
// It is an order for reading, not PEP 440's.
func CompareVersions(a, b string) int {
	for a != "" && b != "" {
		ra, na := versionRun(a)
		rb, nb := versionRun(b)
		var c int
		if na && nb {
			ta, tb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if c = cmp.Compare(len(ta), len(tb)); c == 0 {
				c = strings.Compare(ta, tb)
			}
		} else {
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	return cmp.Compare(len(a), len(b))
}

// versionRun returns the leading run of digits or of non-digits of s.
func versionRun(s string) (string, bool) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], digit
}

// targetModeText says in words what the stable role will list.
func targetModeText(mode, naming string) string {
	what := "distribution files and index pages (PEP 458)"
	if mode == string(policy.ModePages) {
		what = "index pages only, which pin each file by hash"
	}
	return fmt.Sprintf("%s: %s; page naming %s", mode, what, naming)
}
