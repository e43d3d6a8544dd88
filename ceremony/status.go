package ceremony

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// ErrExpiresSoon is what Status returns when a role has expired or
// expires within the margin; check it with errors.Is.
var ErrExpiresSoon = errors.New("expiry warning")

// StatusOptions are a status report's inputs.
type StatusOptions struct {
	// Dir is a medium (DetectMedium): bootstrap media, stable media or a
	// repository.
	Dir string
	// At is the time the report is made for; zero means now.
	At time.Time
	// Margin: a role that expires sooner than this after At is a warning.
	Margin time.Duration
}

// StatusEntry is one role, or a group of roles (the stable mid roles,
// the stable leaf bins), and when it expires: for a group, the member
// that expires first.
type StatusEntry struct {
	Role      string    `json:"role"`
	Count     int       `json:"count"`
	File      string    `json:"file"`
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires"`
	Remaining string    `json:"remaining"`
	// State is "ok", "within margin" or "expired".
	State string `json:"state"`
}

// StatusReport says what in a medium expires when.
type StatusReport struct {
	Medium Medium        `json:"medium"`
	Dir    string        `json:"dir"`
	At     time.Time     `json:"at"`
	Margin string        `json:"margin"`
	Roles  []StatusEntry `json:"roles"`
	// NextStableCeremony is the time by which the next stable ceremony
	// must have published: the first expiry among stable and its bins.
	NextStableCeremony *time.Time `json:"next_stable_ceremony_by,omitempty"`
	Warnings           []string   `json:"warnings"`
	// Notes name delegated roles a medium does not carry (the
	// repository's online unstable role on bootstrap media).
	Notes []string `json:"notes,omitempty"`
	OK    bool     `json:"ok"`
}

// Status reads the newest metadata of every role in a medium (in a
// repository, the versions its snapshot lists) and reports when each
// expires, the deadline for the next stable ceremony, and a warning for
// each role expired or expiring within o.Margin of o.At. It reads files
// strictly but verifies no signature: run Audit for that. The error is
// ErrUnreadable-class if the medium could not be read, and wraps
// ErrExpiresSoon if there is any warning (the report is complete then).
func Status(o StatusOptions) (*StatusReport, error) {
	if o.At.IsZero() {
		o.At = time.Now()
	}
	rep := &StatusReport{Dir: o.Dir, At: o.At.UTC().Truncate(time.Second), Margin: FormatDuration(o.Margin), Warnings: []string{}}
	fail := func(err error) (*StatusReport, error) {
		return rep, &AuditError{Check: "status", Err: err, unreadable: true}
	}
	m, err := DetectMedium(o.Dir)
	if err != nil {
		return fail(err)
	}
	rep.Medium = m
	s := &statusReader{md: metadataDir(m, o.Dir), groups: map[string]*StatusEntry{}}
	if err := s.read(m); err != nil {
		return fail(err)
	}
	rep.Notes = s.notes
	for _, name := range s.order {
		e := s.groups[name]
		e.Remaining, e.State = remaining(e.Expires, o.At, o.Margin)
		rep.Roles = append(rep.Roles, *e)
		if strings.HasPrefix(e.Role, stableset.StableRole) && (rep.NextStableCeremony == nil || e.Expires.Before(*rep.NextStableCeremony)) {
			t := e.Expires
			rep.NextStableCeremony = &t
		}
		switch e.State {
		case "expired":
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s (%s, version %d) expired at %s", e.Role, e.File, e.Version, e.Expires.Format(time.RFC3339)))
		case "within margin":
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s (%s, version %d) expires at %s, in %s, within the margin of %s", e.Role, e.File, e.Version, e.Expires.Format(time.RFC3339), e.Remaining, rep.Margin))
		}
	}
	rep.OK = len(rep.Warnings) == 0
	if !rep.OK {
		return rep, fmt.Errorf("%d of %d roles or groups have expired or expire within %s: %w", len(rep.Warnings), len(rep.Roles), rep.Margin, ErrExpiresSoon)
	}
	return rep, nil
}

// statusReader walks a medium's metadata.
type statusReader struct {
	md     string
	snap   *tuf.Snapshot // the repository's, if any
	groups map[string]*StatusEntry
	order  []string
	notes  []string
}

func (s *statusReader) add(group, file string, version int64, expires tuf.Expiry) {
	e, ok := s.groups[group]
	if !ok {
		e = &StatusEntry{Role: group}
		s.groups[group] = e
		s.order = append(s.order, group)
	}
	e.Count++
	if e.Count == 1 || expires.Time().Before(e.Expires) {
		e.File, e.Version, e.Expires = file, version, expires.Time().UTC()
	}
}

func (s *statusReader) read(m Medium) error {
	switch m {
	case MediumRenewal, MediumRotation, MediumHandover:
		return s.partial()
	}
	fsys := os.DirFS(s.md)
	if m != MediumStable {
		n, err := tuf.Newest(fsys, tuf.RoleRoot)
		if err != nil {
			return fmt.Errorf("%s: %w", s.md, err)
		}
		root, file, err := loadFile[tuf.Root](s.md, fmt.Sprintf("%d.root.json", n))
		if err != nil {
			return err
		}
		s.add(tuf.RoleRoot, file, root.Signed.Version, root.Signed.Expires)
	}
	if m == MediumRepository {
		ts, file, err := loadFile[tuf.Timestamp](s.md, "timestamp.json")
		if err != nil {
			return err
		}
		s.add(tuf.RoleTimestamp, file, ts.Signed.Version, ts.Signed.Expires)
		sv := ts.Signed.Meta["snapshot.json"].Version
		snap, file, err := loadFile[tuf.Snapshot](s.md, fmt.Sprintf("%d.snapshot.json", sv))
		if err != nil {
			return err
		}
		s.add(tuf.RoleSnapshot, file, snap.Signed.Version, snap.Signed.Expires)
		s.snap = &snap.Signed
	}
	if m == MediumStable {
		return s.walk(stableset.StableRole, stableset.StableRole, 0)
	}
	return s.walk(tuf.RoleTargets, tuf.RoleTargets, 0)
}

// partial reads a renewal's, rotation's or handover's medium: it carries
// only the roles the ceremony re-signed (a handover none), so each of
// root, targets and stable is reported when present, and targets'
// delegations are left to the repository's status.
func (s *statusReader) partial() error {
	fsys := os.DirFS(s.md)
	for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets, stableset.StableRole} {
		n, err := tuf.Newest(fsys, role)
		if errors.Is(err, tuf.ErrNoVersion) || errors.Is(err, fs.ErrNotExist) {
			s.notes = append(s.notes, fmt.Sprintf("%s: not re-signed on this medium", role))
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.md, err)
		}
		file := fmt.Sprintf("%d.%s.json", n, role)
		if role == tuf.RoleRoot {
			root, file, err := loadFile[tuf.Root](s.md, file)
			if err != nil {
				return err
			}
			s.add(role, file, root.Signed.Version, root.Signed.Expires)
			continue
		}
		t, file, err := loadFile[tuf.Targets](s.md, file)
		if err != nil {
			return err
		}
		s.add(role, file, t.Signed.Version, t.Signed.Expires)
	}
	return nil
}

// version is the version of role to read: what snapshot lists in a
// repository, else the newest on the medium.
func (s *statusReader) version(role string) (int64, error) {
	if s.snap != nil {
		mf, ok := s.snap.Meta[role+".json"]
		if !ok {
			return 0, fmt.Errorf("%s.json is not listed in snapshot: %w", role, tuf.ErrMissing)
		}
		return mf.Version, nil
	}
	n, err := tuf.Newest(os.DirFS(s.md), role)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.md, err)
	}
	return n, nil
}

// walk reads role and every role it delegates to; group names the
// stable bins by level below stable.
func (s *statusReader) walk(role, group string, level int) error {
	n, err := s.version(role)
	if s.snap == nil && level == 0 && role != tuf.RoleTargets && role != stableset.StableRole && errors.Is(err, tuf.ErrNoVersion) {
		// Media carry the ceremony's roles, not the repository's.
		s.notes = append(s.notes, fmt.Sprintf("%s: delegated, not on this medium", role))
		return nil
	}
	if err != nil {
		return err
	}
	file := fmt.Sprintf("%d.%s.json", n, role)
	b, err := os.ReadFile(filepath.Join(s.md, file))
	if err != nil {
		return err
	}
	// A leaf bin parses fast; a role that delegates is not a bin.
	if bin, err := tuf.ParseBin(b, file); err == nil {
		s.add(group, file, bin.Version, bin.Expires)
		return nil
	} else if !errors.Is(err, tuf.ErrNotBin) {
		return err
	}
	t, err := tuf.Load[tuf.Targets](b, file)
	if err != nil {
		return err
	}
	s.add(group, file, t.Signed.Version, t.Signed.Expires)
	if t.Signed.Delegations == nil {
		return nil
	}
	for _, d := range t.Signed.Delegations.Roles {
		g := d.Name
		switch {
		case role == stableset.StableRole && tuf.IsPathRole(&d):
			// A path role before the bins (the takedown role): its
			// own line, counted with stable for the next ceremony.
			if err := s.walk(d.Name, stableset.StableRole+" "+d.Name, 0); err != nil {
				return err
			}
			continue
		case role == stableset.StableRole || (level > 0 && strings.HasPrefix(group, stableset.StableRole)):
			g = stableBinGroup(level + 1)
			if err := s.walk(d.Name, g, level+1); err != nil {
				return err
			}
			continue
		}
		if err := s.walk(d.Name, g, 0); err != nil {
			return err
		}
	}
	return nil
}

func stableBinGroup(level int) string {
	switch level {
	case 1:
		return "stable mid roles"
	case 2:
		return "stable leaf bins"
	}
	return fmt.Sprintf("stable bins (level %d)", level)
}

func loadFile[T tuf.Signed](md, file string) (*tuf.Metadata[T], string, error) {
	b, err := os.ReadFile(filepath.Join(md, file))
	if err != nil {
		return nil, file, err
	}
	m, err := tuf.Load[T](b, file)
	return m, file, err
}

// remaining says how long until e, and whether that is ok, within the
// margin or expired.
func remaining(e, at time.Time, margin time.Duration) (string, string) {
	d := e.Sub(at)
	switch {
	case d <= 0:
		return "expired " + FormatDuration(-d) + " ago", "expired"
	case d < margin:
		return FormatDuration(d), "within margin"
	}
	return FormatDuration(d), "ok"
}

// FormatDuration writes d in days and hours ("29d 23h"), rounded down to
// the hour.
func FormatDuration(d time.Duration) string {
	h := int64(d / time.Hour)
	if h < 24 {
		return fmt.Sprintf("%dh", h)
	}
	if h%24 == 0 {
		return fmt.Sprintf("%dd", h/24)
	}
	return fmt.Sprintf("%dd %dh", h/24, h%24)
}

// WriteJSON writes the report as indented JSON (the same content as
// WriteText).
func (r *StatusReport) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the report for people: one line per role or group,
// the deadline of the next stable ceremony, and the warnings.
func (r *StatusReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s media %s at %s (margin %s); signatures are not checked here: run keyceremony verify\n", r.Medium, r.Dir, r.At.Format(time.RFC3339), r.Margin)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tCOUNT\tVERSION\tEXPIRES\tREMAINING\tSTATE\tFIRST TO EXPIRE")
	roles := append([]StatusEntry(nil), r.Roles...)
	sort.SliceStable(roles, func(i, j int) bool { return roles[i].Expires.Before(roles[j].Expires) })
	for _, e := range roles {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", e.Role, e.Count, e.Version, e.Expires.Format(time.RFC3339), e.Remaining, e.State, e.File)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.NextStableCeremony != nil {
		d, _ := remaining(*r.NextStableCeremony, r.At, 0)
		fmt.Fprintf(w, "next stable ceremony: publish by %s (%s)\n", r.NextStableCeremony.Format(time.RFC3339), d)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	if r.OK {
		_, err := fmt.Fprintf(w, "OK: nothing expires within %s\n", r.Margin)
		return err
	}
	return nil
}
