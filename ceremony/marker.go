package ceremony

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/strictjson"
)

// MarkerFile names a medium's role and the ceremony that made it, at the
// top of every medium keyceremony writes: each output medium (covered by
// its SHA256SUMS) and the backup medium. It only guards against
// mistakes, a medium put in the wrong slot or passed as the wrong
// argument: anyone holding a medium can write one, so no check trusts
// it for anything else (docs/audit.md, "Medium markers").
const MarkerFile = "KEYCEREMONY-MEDIUM.json"

// MarkerFormat is the format name of MarkerFile.
const MarkerFormat = "keyceremony-medium"

// MarkerFormatVersion is the version of MarkerFile's format.
const MarkerFormatVersion = 1

// Medium roles a marker names.
const (
	// RoleOutput: a ceremony's output medium (bootstrap, stable,
	// renewal, rotation, handover).
	RoleOutput = "output"
	// RoleBackup: the backup medium bootstrap starts (state/N.json).
	RoleBackup = "backup"
	// RoleInput: the repository's export medium. keyceremony never
	// writes one; the repository may, and a marker there is only
	// checked not to name another role.
	RoleInput = "input"
)

// maxMarkerFile bounds a marker's size (it is about 150 bytes).
const maxMarkerFile = 4 << 10

// ErrWrongMedium means a medium's marker names another role or ceremony
// than the argument it was given as.
var ErrWrongMedium = hint.New("wrong medium", "each medium's KEYCEREMONY-MEDIUM.json names its role and the ceremony that wrote it: insert or name the medium the command asks for")

// ErrMarker means a medium's marker is malformed.
var ErrMarker = errors.New("medium marker refused")

// MediumMarker is MarkerFile's content.
type MediumMarker struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	// Role is RoleOutput, RoleBackup or RoleInput.
	Role string `json:"role"`
	// Ceremony is the kind of ceremony that made the medium: for an
	// output medium the Medium verify recognises (bootstrap, stable,
	// renewal, rotation, handover), for the backup medium "bootstrap",
	// for an input medium "export".
	Ceremony string `json:"ceremony"`
	// Created is the ceremony's clock when the medium was made, RFC
	// 3339 UTC in whole seconds.
	Created string `json:"created"`
}

// markerCeremonies are the ceremonies each role may name.
var markerCeremonies = map[string][]string{
	RoleOutput: {string(MediumBootstrap), string(MediumStable), string(MediumRenewal), string(MediumRotation), string(MediumHandover)},
	RoleBackup: {StateBootstrap},
	RoleInput:  {"export"},
}

// describe names the medium a marker describes in an error.
func (m *MediumMarker) describe() string {
	switch m.Role {
	case RoleBackup:
		return fmt.Sprintf("a backup medium (made by the bootstrap of %s)", m.Created)
	case RoleInput:
		return fmt.Sprintf("the repository's export medium (made %s)", m.Created)
	}
	return fmt.Sprintf("the output medium of a %s ceremony (%s)", m.Ceremony, m.Created)
}

// Marshal encodes the marker as its file: indented JSON and a newline.
func (m *MediumMarker) Marshal() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // strings and integers only
	}
	return append(b, '\n')
}

func newMarker(role, ceremony string, created time.Time) *MediumMarker {
	return &MediumMarker{Format: MarkerFormat, FormatVersion: MarkerFormatVersion, Role: role, Ceremony: ceremony, Created: formatStateTime(created)}
}

// ParseMarker parses a marker strictly (internal/strictjson): the format
// and its version, a known role, a ceremony that role may name, an RFC
// 3339 UTC time in whole seconds. name is used in errors, which name the
// field.
func ParseMarker(data []byte, name string) (*MediumMarker, error) {
	if len(data) > maxMarkerFile {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: %w", name, len(data), maxMarkerFile, ErrMarker)
	}
	var m MediumMarker
	if err := strictjson.Decode(data, name, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMarker, err)
	}
	fail := func(field, format string, a ...any) error {
		return fmt.Errorf("%s: %s: %s: %w", name, field, fmt.Sprintf(format, a...), ErrMarker)
	}
	if m.Format != MarkerFormat {
		return nil, fail("format", "%q, want %q", m.Format, MarkerFormat)
	}
	if m.FormatVersion != MarkerFormatVersion {
		return nil, fail("format_version", "%d, want %d", m.FormatVersion, MarkerFormatVersion)
	}
	cs, ok := markerCeremonies[m.Role]
	if !ok {
		return nil, fail("role", "%q, want %q, %q or %q", m.Role, RoleOutput, RoleBackup, RoleInput)
	}
	found := false
	for _, c := range cs {
		found = found || c == m.Ceremony
	}
	if !found {
		return nil, fail("ceremony", "%q on a medium of role %s, want one of %q", m.Ceremony, m.Role, cs)
	}
	if _, err := parseStateTime(m.Created); err != nil {
		return nil, fail("created", "%v", err)
	}
	return &m, nil
}

// readMarker reads dir's marker; it returns nil and no error when dir has
// none (a directory that is no medium, or one made before markers).
func readMarker(dir string) (*MediumMarker, error) {
	name := filepath.Join(dir, MarkerFile)
	if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	data, err := readLimited(name, maxMarkerFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMarker, err)
	}
	return ParseMarker(data, name)
}

// refuseMarked refuses dir, given as what ("the output directory", "the
// published directory"…), when it carries a marker of a role not in
// allowed, naming the medium found. It returns the marker (nil if none).
func refuseMarked(dir, what string, allowed ...string) (*MediumMarker, error) {
	m, err := readMarker(dir)
	if err != nil || m == nil {
		return nil, err
	}
	for _, r := range allowed {
		if m.Role == r {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%s %s is %s: %w", what, dir, m.describe(), ErrWrongMedium)
}

// newOutputMedium is outdir.New for a ceremony's output medium of kind
// kind: before anything is made, it refuses a target that is another
// medium, naming it (a backup or export medium: ErrWrongMedium; an
// output medium: outdir.ErrOutputExists), then writes the marker first.
func newOutputMedium(dir string, kind Medium, now time.Time) (*outdir.Dir, error) {
	m, err := refuseMarked(dir, "the output directory", RoleOutput)
	if err != nil {
		return nil, err
	}
	if m != nil {
		return nil, fmt.Errorf("%s already holds %s: %w", dir, m.describe(), outdir.ErrOutputExists)
	}
	out, err := outdir.New(dir)
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile(MarkerFile, newMarker(RoleOutput, string(kind), now).Marshal()); err != nil {
		out.Abort()
		return nil, err
	}
	return out, nil
}

// checkMarkerOf checks that dir's marker names the output medium
// DetectMedium sees in dir (for the read-back, which knows the kind by
// its files as verify does).
func checkMarkerOf(dir string) error {
	kind, err := DetectMedium(dir)
	if err != nil {
		return err
	}
	return checkOutputMarker(dir, kind)
}

// checkOutputMarker checks, for the read-back and verify, that dir's
// marker names an output medium of kind kind.
func checkOutputMarker(dir string, kind Medium) error {
	m, err := readMarker(dir)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("%s is missing: every output medium names its role and ceremony: %w", MarkerFile, ErrMarker)
	}
	if m.Role != RoleOutput || m.Ceremony != string(kind) {
		return fmt.Errorf("%s: names %s, the medium holds %s media: %w", MarkerFile, m.describe(), kind, ErrWrongMedium)
	}
	return nil
}
