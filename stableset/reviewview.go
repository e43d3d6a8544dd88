package stableset

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// What the room sees of one project, of a search, in text (numbers in
// aligned columns) and in JSON for tools (the same content).

// stableBefore reports whether the entry was in the previous stable set,
// and as what.
func (e *DiffEntry) stableBefore() bool {
	switch e.Category {
	case Unchanged, Changed, Removed, PageChanged, PageRemoved:
		return e.HasOld
	}
	return false
}

// stableAfter reports whether the entry is in the new stable set, and
// with which side: the old (a change kept) or the new.
func (e *DiffEntry) stableAfter() (in, old bool) {
	switch e.Category {
	case Unchanged, Added, PageAdded, PageChanged:
		return true, false
	case Changed:
		switch e.Reason {
		case ReasonAccepted:
			return true, false
		case ReasonDropped:
			return false, false
		}
		return true, true
	}
	return false, false
}

// label is an entry's category and reason.
func (e *DiffEntry) label() string {
	if e.Reason == "" {
		return string(e.Category)
	}
	return string(e.Category) + " " + e.Reason
}

// flagged: a change, a backdated or relisted file.
func (e *DiffEntry) flagged() bool {
	return e.Category == Changed || e.Reason == ReasonBackdated || e.Reason == ReasonRelisted
}

// reviewRow is one entry as a row of the drill-down.
type reviewRow struct {
	mark, before, after, label, version, uploaded, length, name string
	e                                                           *DiffEntry
}

func rowOf(e *DiffEntry) reviewRow {
	r := reviewRow{mark: " ", before: "-", after: "-", label: e.label(), version: e.Version, uploaded: "-", name: path.Base(e.Path), e: e}
	if e.flagged() {
		r.mark = "!"
	}
	if strings.HasPrefix(e.Path, pagesPrefix) {
		r.name = e.Path
	}
	if e.Legacy != 0 {
		r.label += " legacy:" + e.Legacy.String()
	}
	if r.version == "" {
		r.version = "-"
	}
	if e.stableBefore() {
		r.before = "yes"
	}
	if in, old := e.stableAfter(); in && old {
		r.after = "old"
	} else if in {
		r.after = "yes"
	}
	if !e.Uploaded.IsZero() {
		r.uploaded = e.Uploaded.UTC().Format(time.RFC3339)
	}
	n := e.NewLength
	if !e.HasNew {
		n = e.OldLength
	}
	r.length = strconv.FormatInt(n, 10)
	return r
}

// WriteProjectText writes a project's drill-down: its counts, its stable
// view before and after (how many files, and for every file whether it
// was and will be stable), then every entry with its category and reason,
// version, claimed upload time (the time a backdated file claims), length
// and file name, aligned in columns; a changed file's two sides follow it.
func (v *ProjectView) WriteProjectText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var before, after int64
	rows := make([]reviewRow, len(v.Entries))
	wd := [5]int{len("stable"), len("now"), len("category"), len("version"), len("length")}
	for i := range v.Entries {
		e := &v.Entries[i]
		rows[i] = rowOf(e)
		if e.stableBefore() && e.Category != PageChanged && e.Category != PageRemoved {
			before++
		}
		if in, _ := e.stableAfter(); in && e.Category != PageAdded && e.Category != PageChanged {
			after++
		}
		r := &rows[i]
		for k, s := range []string{r.before, r.after, r.label, r.version, r.length} {
			wd[k] = max(wd[k], len(s))
		}
	}
	c := v.Counts
	fmt.Fprintf(bw, "project %s: %d stable files before, %d after\n", projectName(v.Project), before, after)
	fmt.Fprintf(bw, "  %9s %9s %9s %9s %9s %9s %9s %9s\n", "added", "held", "backdated", "removed", "changed", "accepted", "dropped", "unchanged")
	fmt.Fprintf(bw, "  %9d %9d %9d %9d %9d %9d %9d %9d\n", c.Added, c.Held, c.Backdated, c.Removed, c.Changed, c.Accepted, c.Dropped, c.Unchanged)
	fmt.Fprintf(bw, "\n  %-*s %-*s %-*s %-*s %-20s %*s  %s\n", wd[0], "stable", wd[1], "now", wd[2], "category", wd[3], "version", "uploaded (claimed)", wd[4], "length", "file")
	for _, r := range rows {
		fmt.Fprintf(bw, "%s %-*s %-*s %-*s %-*s %-20s %*s  %s\n", r.mark, wd[0], r.before, wd[1], r.after, wd[2], r.label, wd[3], r.version, r.uploaded, wd[4], r.length, r.name)
		e := r.e
		if e.Category == Changed || e.Category == Removed || e.flagged() || e.Legacy != 0 {
			ind := wd[0] + wd[1] + wd[2] + 4
			fmt.Fprintf(bw, "  %-*s path %s\n", ind, "", e.Path)
			if e.HasOld && e.Category != Unchanged {
				fmt.Fprintf(bw, "  %-*s stable: %d bytes sha256 %x\n", ind, "", e.OldLength, e.OldSHA256)
			}
			if e.HasNew && e.Category != Unchanged {
				fmt.Fprintf(bw, "  %-*s listed: %d bytes sha256 %x\n", ind, "", e.NewLength, e.NewSHA256)
			}
		}
	}
	fmt.Fprintf(bw, "\n  stable: yes in the previous stable set; now: yes stable after this ceremony, old the stable entry is kept for a changed file\n")
	return bw.Flush()
}

// sideJSON is one side (stable or listed) of an entry.
type sideJSON struct {
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

// projectEntryJSON is one entry of the drill-down in JSON.
type projectEntryJSON struct {
	Category Category  `json:"category"`
	Reason   string    `json:"reason,omitempty"`
	Path     string    `json:"path"`
	Version  string    `json:"version,omitempty"`
	Legacy   string    `json:"legacy,omitempty"`
	Uploaded string    `json:"uploaded,omitempty"` // the upload time the export claims
	Before   bool      `json:"stable_before"`
	After    bool      `json:"stable_after"`
	KeptOld  bool      `json:"kept_old,omitempty"` // stable after with the old entry
	Old      *sideJSON `json:"old,omitempty"`
	New      *sideJSON `json:"new,omitempty"`
}

func entryJSON(e *DiffEntry) projectEntryJSON {
	j := projectEntryJSON{Category: e.Category, Reason: e.Reason, Path: e.Path, Version: e.Version, Legacy: e.Legacy.String(), Before: e.stableBefore()}
	j.After, j.KeptOld = e.stableAfter()
	if !e.Uploaded.IsZero() {
		j.Uploaded = e.Uploaded.UTC().Format(time.RFC3339)
	}
	if e.HasOld {
		j.Old = &sideJSON{e.OldLength, hex.EncodeToString(e.OldSHA256[:])}
	}
	if e.HasNew {
		j.New = &sideJSON{e.NewLength, hex.EncodeToString(e.NewSHA256[:])}
	}
	return j
}

// WriteProjectJSON writes the drill-down as one JSON object: the project,
// its counts and every entry, in the text's order.
func (v *ProjectView) WriteProjectJSON(w io.Writer) error {
	out := struct {
		Format  string             `json:"format"`
		Project string             `json:"project"`
		Counts  Counts             `json:"counts"`
		Entries []projectEntryJSON `json:"entries"`
	}{Format: "keyceremony-review-project", Project: v.Project, Counts: v.Counts, Entries: []projectEntryJSON{}}
	for i := range v.Entries {
		out.Entries = append(out.Entries, entryJSON(&v.Entries[i]))
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteSearchText writes what a search found: the projects whose name
// matches query with their counts in columns, then every entry whose path
// contains it (at most limit entries, the rest counted).
func (rv *Review) WriteSearchText(w io.Writer, query string, limit int) error {
	bw := bufio.NewWriter(w)
	ps := rv.FindProjects(query)
	nw := len("project")
	for _, p := range ps {
		nw = max(nw, len(projectName(p.Project)))
	}
	fmt.Fprintf(bw, "projects matching %q: %d\n", query, len(ps))
	if len(ps) > 0 {
		fmt.Fprintf(bw, "  %-*s %9s %9s %9s %9s %9s\n", nw, "project", "added", "held", "removed", "changed", "unchanged")
	}
	for _, p := range ps {
		c := rv.counts(p.Project)
		fmt.Fprintf(bw, "  %-*s %9d %9d %9d %9d %9d\n", nw, projectName(p.Project), c.Added, c.Held, c.Removed, c.Changed, c.Unchanged)
	}
	var found, shown int
	fmt.Fprintf(bw, "\npaths containing %q\n", query)
	err := rv.FindPaths(query, func(e *DiffEntry) error {
		found++
		if shown < limit {
			shown++
			mark := " "
			if e.flagged() {
				mark = "!"
			}
			fmt.Fprintf(bw, "%s %-24s %-28s %s\n", mark, projectName(e.Project), e.label(), e.Path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if found > shown {
		fmt.Fprintf(bw, "  … %d more (%d in all): search for a longer part of the path\n", found-shown, found)
	} else {
		fmt.Fprintf(bw, "  %d found\n", found)
	}
	return bw.Flush()
}

// WriteSearchJSON writes the same as WriteSearchText as one JSON object
// with every path found, streamed (one entry a line).
func (rv *Review) WriteSearchJSON(w io.Writer, query string) error {
	type proj struct {
		Project string `json:"project"`
		Counts
	}
	head := struct {
		Format   string `json:"format"`
		Query    string `json:"query"`
		Projects []proj `json:"projects"`
	}{Format: "keyceremony-review-search", Query: query, Projects: []proj{}}
	for _, p := range rv.FindProjects(query) {
		head.Projects = append(head.Projects, proj{p.Project, rv.counts(p.Project)})
	}
	b, err := json.MarshalIndent(head, "", " ")
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.Write(b[:len(b)-2])
	bw.WriteString(",\n \"paths\": [")
	first := true
	err = rv.FindPaths(query, func(e *DiffEntry) error {
		line, err := json.Marshal(entryJSON(e))
		if err != nil {
			return err
		}
		if !first {
			bw.WriteString(",")
		}
		first = false
		bw.WriteString("\n  ")
		bw.Write(line)
		return nil
	})
	if err != nil {
		return err
	}
	bw.WriteString("\n ]\n}\n")
	return bw.Flush()
}

// counts returns a project's counts from the pass.
func (rv *Review) counts(project string) Counts {
	for lo, hi := 0, len(rv.d.Projects); lo < hi; {
		m := (lo + hi) / 2
		switch p := rv.d.Projects[m].Project; {
		case p == project:
			return rv.d.Projects[m].Counts
		case p < project:
			lo = m + 1
		default:
			hi = m
		}
	}
	return Counts{}
}
