package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/tuf"
)

// The backup medium is the ceremony's own memory: a directory on a medium
// the ceremony keeps (never the repository's), holding state/N.json, one
// file per ceremony, N being the stable version that ceremony left
// published (1 for the bootstrap). A stable key rotation, which signs
// stable again at version+1 over the same ledger and bins, writes one too.
// Each state names the repository, the root, the stable version, the
// ledger's digest and listing time, the stable metadata's, the signed
// diff's and the transcript's digests, and the digest of the state before
// it. The next ceremony refuses a published state (stable
// version, ledger, listing time) that is not the newest the backup medium
// knows: the repository cannot hand back an older published directory,
// nor the bootstrap media to get a "first ceremony" that trusts upload
// times again. Files are created with O_EXCL and fsynced, never
// overwritten. See docs/threat-model.md, "Rollback".

// Errors of the backup medium; check them with errors.Is.
var (
	// ErrBackup: the backup medium is missing, unreadable, malformed, or
	// for another repository or root.
	ErrBackup = errors.New("backup medium refused")
	// ErrRollback: the published state is not the newest state the
	// backup medium knows.
	ErrRollback = errors.New("published state does not match the backup medium")
	// ErrClock: the ceremony's clock is earlier than a time the offline
	// side has already seen.
	ErrClock = errors.New("ceremony clock refused")
)

// StateFormat is the format name of a backup state file.
const StateFormat = "keyceremony-backup-state"

// StateFormatVersion is the version of the backup state format.
const StateFormatVersion = 1

// Ceremony kinds a state records.
const (
	StateBootstrap = "bootstrap"
	StateStable    = "stable"
	// StateRotation is a stable key rotation (rotate stable): stable
	// signed again by the new keys at the next version, its ledger, bins
	// and delegations those of the state before it.
	StateRotation = "rotation"
)

// maxStateFile bounds a state file's size (a state is a few hundred
// bytes).
const maxStateFile = 64 << 10

// BackupState is one ceremony's state on the backup medium. Digests are
// lowercase hex SHA-256; times RFC 3339 UTC, whole seconds.
type BackupState struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	Repository    string `json:"repository"`
	// RootSHA256 is the SHA-256 of the canonical signed bytes of the
	// root the ceremony trusts (root v1 of the bootstrap).
	RootSHA256 string `json:"root_sha256"`
	// Ceremony is StateBootstrap, StateStable or StateRotation.
	Ceremony string `json:"ceremony"`
	// StableVersion is the stable version the ceremony left published:
	// 1 for the bootstrap's empty stable.
	StableVersion int64 `json:"stable_version"`
	// LedgerSHA256 and ListingTime are the new ledger's digest and its
	// listing time (the export's generation time); empty for the
	// bootstrap, which has no ledger. A rotation's are the state before
	// it's: it re-signs the same ledger.
	LedgerSHA256 string `json:"ledger_sha256,omitempty"`
	ListingTime  string `json:"listing_time,omitempty"`
	// CeremonyTime is the ceremony's clock.
	CeremonyTime string `json:"ceremony_time"`
	// SignedDiffSHA256 is the digest of signed-diff.json (stable only).
	SignedDiffSHA256 string `json:"signed_diff_sha256,omitempty"`
	// StableSHA256 is the digest of the stable metadata file the
	// ceremony wrote for the repository to publish as it is
	// (metadata/N.stable.json, N StableVersion): required in a rotation
	// state, written by every stable ceremony (a state written before it
	// was added has none), never in a bootstrap state. The next ceremony
	// or rotation refuses a published stable of other bytes.
	StableSHA256 string `json:"stable_sha256,omitempty"`
	// PreviousStateSHA256 is the digest of the state file before this
	// one (stable and rotation).
	PreviousStateSHA256 string `json:"previous_state_sha256,omitempty"`
	// TranscriptSHA256 is the transcript's digest (its last entry's
	// hash), as read aloud at the end of the ceremony.
	TranscriptSHA256 string `json:"transcript_sha256"`
}

// CheckDigest is the digest the check words are made of: SHA-256 over
// the state's fields but the transcript digest (which the transcript,
// recording the check words, cannot contain), one "name value" line
// each, in this order: repository, root-sha256, ceremony,
// stable-version, ledger-sha256, listing-time, ceremony-time,
// signed-diff-sha256, previous-state-sha256, and stable-sha256 when the
// state has one (so that a state without it keeps its check words); an
// empty value is "-".
func (s *BackupState) CheckDigest() [32]byte {
	var b bytes.Buffer
	kvs := [][2]string{
		{"repository", s.Repository}, {"root-sha256", s.RootSHA256}, {"ceremony", s.Ceremony},
		{"stable-version", strconv.FormatInt(s.StableVersion, 10)}, {"ledger-sha256", s.LedgerSHA256},
		{"listing-time", s.ListingTime}, {"ceremony-time", s.CeremonyTime},
		{"signed-diff-sha256", s.SignedDiffSHA256}, {"previous-state-sha256", s.PreviousStateSHA256},
	}
	if s.StableSHA256 != "" {
		kvs = append(kvs, [2]string{"stable-sha256", s.StableSHA256})
	}
	for _, kv := range kvs {
		v := kv[1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "%s %s\n", kv[0], v)
	}
	return sha256.Sum256(b.Bytes())
}

// CheckWords are the PGP words of CheckDigest, for the paper run sheet.
func (s *BackupState) CheckWords() string {
	d := s.CheckDigest()
	return strings.Join(keys.PGPWords(d[:]), " ")
}

// recordFields is what the transcript records of a state.
func (s *BackupState) recordFields() map[string]any {
	d := s.CheckDigest()
	return map[string]any{
		"repository": s.Repository, "root_sha256": s.RootSHA256, "ceremony": s.Ceremony,
		"stable_version": s.StableVersion, "ledger_sha256": s.LedgerSHA256, "listing_time": s.ListingTime,
		"ceremony_time": s.CeremonyTime, "signed_diff_sha256": s.SignedDiffSHA256,
		"previous_state_sha256": s.PreviousStateSHA256, "stable_sha256": s.StableSHA256,
		"check_sha256": hex.EncodeToString(d[:]), "check_words": s.CheckWords(),
	}
}

// Marshal encodes the state as its file: indented JSON and a newline.
func (s *BackupState) Marshal() []byte {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // strings and integers only
	}
	return append(b, '\n')
}

// ParseState parses a state file strictly (internal/strictjson) and
// checks every field: the format, a non-empty repository, hex digests,
// RFC 3339 UTC times, a bootstrap state at stable version 1 without
// ledger, listing time, signed diff, stable digest or previous state, a
// stable state above version 1 with all of them (the stable digest
// optional), a rotation state above version 1 with the previous state and
// the stable digest, no signed diff, and the ledger and listing time both
// or neither (neither: it re-signed the bootstrap's empty stable). name
// is used in errors.
func ParseState(data []byte, name string) (*BackupState, error) {
	if len(data) > maxStateFile {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: %w", name, len(data), maxStateFile, ErrBackup)
	}
	var s BackupState
	if err := strictjson.Decode(data, name, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBackup, err)
	}
	fail := func(field, format string, a ...any) error {
		return fmt.Errorf("%s: %s: %s: %w", name, field, fmt.Sprintf(format, a...), ErrBackup)
	}
	if s.Format != StateFormat {
		return nil, fail("format", "%q, want %q", s.Format, StateFormat)
	}
	if s.FormatVersion != StateFormatVersion {
		return nil, fail("format_version", "%d, want %d", s.FormatVersion, StateFormatVersion)
	}
	if s.Repository == "" || strings.ContainsFunc(s.Repository, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fail("repository", "%q: empty or not one printable word", s.Repository)
	}
	digest := func(field, v string, want bool) error {
		if !want {
			if v != "" {
				return fail(field, "%q in a %s state", v, s.Ceremony)
			}
			return nil
		}
		if len(v) != 64 || strings.ToLower(v) != v {
			return fail(field, "%q: want 64 lowercase hex digits", v)
		}
		if _, err := hex.DecodeString(v); err != nil {
			return fail(field, "%q: want 64 lowercase hex digits", v)
		}
		return nil
	}
	stable, rotation := s.Ceremony == StateStable, s.Ceremony == StateRotation
	switch {
	case s.Ceremony == StateBootstrap && s.StableVersion != 1:
		return nil, fail("stable_version", "%d in a bootstrap state, want 1", s.StableVersion)
	case (stable || rotation) && s.StableVersion < 2:
		return nil, fail("stable_version", "%d in a %s state, want 2 or more", s.StableVersion, s.Ceremony)
	case s.Ceremony != StateBootstrap && !stable && !rotation:
		return nil, fail("ceremony", "%q, want %q, %q or %q", s.Ceremony, StateBootstrap, StateStable, StateRotation)
	}
	// A rotation's ledger is the state before it's: both fields or
	// neither; a stable state's are required.
	withLedger := stable || (rotation && (s.LedgerSHA256 != "" || s.ListingTime != ""))
	for _, d := range []struct {
		field, v string
		want     bool
	}{
		{"root_sha256", s.RootSHA256, true}, {"transcript_sha256", s.TranscriptSHA256, true},
		{"ledger_sha256", s.LedgerSHA256, withLedger}, {"signed_diff_sha256", s.SignedDiffSHA256, stable},
		{"stable_sha256", s.StableSHA256, rotation || (stable && s.StableSHA256 != "")},
		{"previous_state_sha256", s.PreviousStateSHA256, stable || rotation},
	} {
		if err := digest(d.field, d.v, d.want); err != nil {
			return nil, err
		}
	}
	if _, err := parseStateTime(s.CeremonyTime); err != nil {
		return nil, fail("ceremony_time", "%v", err)
	}
	if !withLedger && s.ListingTime != "" {
		return nil, fail("listing_time", "%q in a %s state without a ledger", s.ListingTime, s.Ceremony)
	}
	if withLedger {
		if _, err := parseStateTime(s.ListingTime); err != nil {
			return nil, fail("listing_time", "%v", err)
		}
	}
	return &s, nil
}

func parseStateTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || t.Format(time.RFC3339) != v || t.Location() != time.UTC {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 UTC time in whole seconds, such as 2026-01-02T15:04:05Z", v)
	}
	return t, nil
}

func formatStateTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// listing is the state's listing time (zero for the bootstrap).
func (s *BackupState) listing() time.Time {
	t, _ := parseStateTime(s.ListingTime)
	return t
}

func (s *BackupState) ceremonyTime() time.Time {
	t, _ := parseStateTime(s.CeremonyTime)
	return t
}

// Backup is a backup medium as read: every state, oldest first.
type Backup struct {
	Dir    string
	States []*BackupState
	// marked: the medium carries its MarkerFile (one made before
	// markers gets it with its next state).
	marked bool
	// newestSum is the SHA-256 of the newest state file's bytes.
	newestSum [32]byte
}

// Newest is the newest state.
func (b *Backup) Newest() *BackupState { return b.States[len(b.States)-1] }

// NewestFile is the path of the newest state file.
func (b *Backup) NewestFile() string {
	return stateFile(b.Dir, b.Newest().StableVersion)
}

func stateFile(dir string, n int64) string {
	return filepath.Join(dir, "state", strconv.FormatInt(n, 10)+".json")
}

// ReadBackup reads every state of the backup medium dir and checks that
// they form one history: state/1.json the bootstrap's (only a bootstrap
// state is at stable version 1), then one state per
// stable version with no gap, each naming the digest of the one before,
// all for one repository and one root. Any other file in state/ is
// refused, naming it.
func ReadBackup(dir string) (*Backup, error) {
	if dir == "" {
		return nil, fmt.Errorf("no backup medium given: %w", ErrBackup)
	}
	m, err := refuseMarked(dir, "the backup medium", RoleBackup)
	if err != nil {
		return nil, err
	}
	sd := filepath.Join(dir, "state")
	ents, err := os.ReadDir(sd)
	if err != nil {
		return nil, fmt.Errorf("reading the backup medium: %w: %w", ErrBackup, err)
	}
	var ns []int64
	for _, e := range ents {
		n, ok := stateNumber(e.Name())
		if !ok || !e.Type().IsRegular() {
			return nil, fmt.Errorf("%s: not a state file (state/N.json): %w", filepath.Join(sd, e.Name()), ErrBackup)
		}
		ns = append(ns, n)
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("%s holds no state: a backup medium is made by bootstrap --backup: %w", sd, ErrBackup)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	b := &Backup{Dir: dir, marked: m != nil}
	var prevSum [32]byte
	for i, n := range ns {
		name := stateFile(dir, n)
		if n != int64(i)+1 {
			return nil, fmt.Errorf("%s: state %d is missing before it: %w", name, i+1, ErrBackup)
		}
		data, err := readLimited(name, maxStateFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBackup, err)
		}
		s, err := ParseState(data, name)
		if err != nil {
			return nil, err
		}
		if s.StableVersion != n {
			return nil, fmt.Errorf("%s: stable_version %d in state file %d: %w", name, s.StableVersion, n, ErrBackup)
		}
		if i > 0 {
			first := b.States[0]
			if s.Repository != first.Repository {
				return nil, fmt.Errorf("%s: repository %q, state 1's is %q: %w", name, s.Repository, first.Repository, ErrBackup)
			}
			if s.RootSHA256 != first.RootSHA256 {
				return nil, fmt.Errorf("%s: root_sha256 %s, state 1's is %s: %w", name, s.RootSHA256, first.RootSHA256, ErrBackup)
			}
			if want := hex.EncodeToString(prevSum[:]); s.PreviousStateSHA256 != want {
				return nil, fmt.Errorf("%s: previous_state_sha256 %s, state %d hashes to %s: %w", name, s.PreviousStateSHA256, n-1, want, ErrBackup)
			}
			// A rotation re-signs the ledger of the state before it.
			if prev := b.States[i-1]; s.Ceremony == StateRotation && (s.LedgerSHA256 != prev.LedgerSHA256 || s.ListingTime != prev.ListingTime) {
				return nil, fmt.Errorf("%s: a rotation state with ledger_sha256 %s and listing_time %s, state %d names %s and %s: a rotation re-signs the same ledger: %w",
					name, orNone(s.LedgerSHA256), orNone(s.ListingTime), n-1, orNone(prev.LedgerSHA256), orNone(prev.ListingTime), ErrBackup)
			}
		}
		prevSum = sha256.Sum256(data)
		b.States = append(b.States, s)
	}
	b.newestSum = prevSum
	return b, nil
}

// orNone names an empty state field in an error.
func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// stateNumber parses "N.json", N a decimal without leading zeros.
func stateNumber(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".json")
	if !ok || s == "" || s[0] == '0' || len(s) > 18 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", name, limit)
	}
	return buf.Bytes(), nil
}

// CheckNewBackup checks, before a bootstrap generates any key, that dir
// can become a new backup medium: a directory whose state/ is absent or
// empty.
func CheckNewBackup(dir string) error {
	if dir == "" {
		return fmt.Errorf("no backup medium given: %w", ErrBackup)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("the backup medium: %w: %w", ErrBackup, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the backup medium %s is not a directory: %w", dir, ErrBackup)
	}
	if _, err := refuseMarked(dir, "the backup medium", RoleBackup); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(dir, "state"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the backup medium: %w: %w", ErrBackup, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s already holds %s: a bootstrap starts a new backup medium: %w", filepath.Join(dir, "state"), ents[0].Name(), ErrBackup)
	}
	return nil
}

// writeState writes s as state/N.json (N its stable version) in dir:
// created with O_EXCL, written, fsynced, and the directory fsynced. An
// existing file is never overwritten; a crash midway leaves a file the
// strict parser refuses, naming it.
func writeState(dir string, s *BackupState) (string, error) {
	name := stateFile(dir, s.StableVersion)
	if err := writeNewFile(name, s.Marshal()); err != nil {
		return "", fmt.Errorf("writing the backup state %s: %w", name, err)
	}
	return name, nil
}

// writeBackupMarker writes the backup medium's MarkerFile, as writeState
// writes a state.
func writeBackupMarker(dir string, created time.Time) error {
	name := filepath.Join(dir, MarkerFile)
	if err := writeNewFile(name, newMarker(RoleBackup, StateBootstrap, created).Marshal()); err != nil {
		return fmt.Errorf("writing the backup medium's marker %s: %w", name, err)
	}
	return nil
}

// writeNewFile writes data as name, creating its directory: created with
// O_EXCL, written, fsynced, and the directory (and its parent) fsynced.
// An existing file is never overwritten; a crash midway leaves a file
// the strict parsers refuse, naming it.
func writeNewFile(name string, data []byte) error {
	sd := filepath.Dir(name)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(sd)
	}
	if err == nil {
		err = syncDir(filepath.Dir(sd))
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RootDigest is the digest a state names the trusted root by: SHA-256 of
// its canonical signed bytes.
func RootDigest(root *tuf.Metadata[tuf.Root]) (string, error) {
	b, err := root.SignedBytes()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// BootstrapState is the state a bootstrap leaves: stable v1, no ledger.
// TranscriptSHA256 is filled in once the transcript is final.
func BootstrapState(repository string, root *tuf.Metadata[tuf.Root], now time.Time) (*BackupState, error) {
	rd, err := RootDigest(root)
	if err != nil {
		return nil, err
	}
	return &BackupState{
		Format: StateFormat, FormatVersion: StateFormatVersion, Repository: repository, RootSHA256: rd,
		Ceremony: StateBootstrap, StableVersion: 1, CeremonyTime: formatStateTime(now),
	}, nil
}

// WriteBootstrapBackup writes a bootstrap's state as state/1.json of a
// new backup medium dir (CheckNewBackup).
func WriteBootstrapBackup(dir string, s *BackupState) (string, error) {
	if err := CheckNewBackup(dir); err != nil {
		return "", err
	}
	if m, err := readMarker(dir); err != nil {
		return "", err
	} else if m == nil {
		if err := writeBackupMarker(dir, s.ceremonyTime()); err != nil {
			return "", err
		}
	}
	return writeState(dir, s)
}

// publishedState is what the published directory claims as its state: the
// newest stable version the trusted delegation signs, and, unless it is
// the bootstrap's empty stable, the ledger it lists (digest) and that
// ledger's header.
type publishedState struct {
	file       string // the newest stable metadata file
	fileSHA256 string // its bytes' digest
	version    int64
	first      bool // the bootstrap's empty stable: a first ceremony
	ledgerSum  string
	ledgerFile string
	ledger     ledger.Header
}

// readPublishedState reads the state the published directory claims. It
// is cheap: stable metadata and a ledger header.
func readPublishedState(published string, d *tuf.DelegatedRole, keyring map[string]*keys.Key) (*publishedState, error) {
	md := filepath.Join(published, "metadata")
	by := tuf.RoleKeys{Role: stableset.StableRole, KeyIDs: d.KeyIDs, Threshold: d.Threshold, Keys: keyring}
	m, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", stableset.ErrPublished, err)
	}
	p := &publishedState{file: filepath.Join(md, fmt.Sprintf("%d.%s.json", n, stableset.StableRole)), version: n}
	data, err := os.ReadFile(p.file) // LoadNewest has just read and verified it whole
	if err != nil {
		return nil, fmt.Errorf("%w: %w", stableset.ErrPublished, err)
	}
	p.fileSHA256 = sha256Hex(data)
	if len(m.Signed.Targets) == 0 && m.Signed.Delegations == nil {
		p.first = true
		return p, nil
	}
	lpath, _, tf, ok, err := stableset.LedgerTarget(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.file, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s lists no ledger (ledger/<N>.ledger): %w", p.file, stableset.ErrPublished)
	}
	p.ledgerSum = tf.Hashes["sha256"]
	p.ledgerFile = filepath.Join(published, filepath.FromSlash(lpath))
	f, err := os.Open(p.ledgerFile)
	if err != nil {
		return nil, fmt.Errorf("opening the published ledger: %w", err)
	}
	defer f.Close()
	lr, err := ledger.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.ledgerFile, err)
	}
	p.ledger = lr.Header()
	return p, nil
}

// describe names a published state in an error.
func (p *publishedState) describe() string {
	if p.first {
		return fmt.Sprintf("stable v%d, the bootstrap's empty stable (%s)", p.version, p.file)
	}
	return fmt.Sprintf("stable v%d (%s)", p.version, p.file)
}

// describeState names a backup state in an error.
func describeState(s *BackupState, file string) string {
	switch s.Ceremony {
	case StateBootstrap:
		return fmt.Sprintf("stable v%d, the bootstrap of %s (%s)", s.StableVersion, s.CeremonyTime, file)
	case StateRotation:
		return fmt.Sprintf("stable v%d, re-signed by the stable key rotation of %s (%s)", s.StableVersion, s.CeremonyTime, file)
	}
	return fmt.Sprintf("stable v%d, signed %s (%s)", s.StableVersion, s.CeremonyTime, file)
}

// checkPublished refuses a published state that is not the backup
// medium's newest: another stable version (naming both), the bootstrap's
// empty stable after a stable ceremony (the "first ceremony" mode exists
// only while no stable ceremony has signed: after the bootstrap and the
// rotations that re-signed its empty stable), other stable bytes than
// the state names, another ledger digest, listing time or repository.
func checkPublished(b *Backup, p *publishedState) error {
	s, file := b.Newest(), b.NewestFile()
	if p.first && s.LedgerSHA256 != "" {
		return fmt.Errorf("the published state is %s, a first ceremony that would trust upload times, but the backup medium's newest state is %s: the first ceremony exists only directly after bootstrap: %w",
			p.describe(), describeState(s, file), ErrRollback)
	}
	if p.version != s.StableVersion {
		return fmt.Errorf("the published state is %s, the backup medium's newest state is %s: %w", p.describe(), describeState(s, file), ErrRollback)
	}
	if s.StableSHA256 != "" && p.fileSHA256 != s.StableSHA256 {
		return fmt.Errorf("%s has sha256 %s, the backup medium's newest state (%s) names %s: it is not the stable metadata the %s ceremony wrote: %w", p.file, p.fileSHA256, file, s.StableSHA256, s.Ceremony, ErrRollback)
	}
	if p.first {
		return nil
	}
	if s.LedgerSHA256 == "" {
		return fmt.Errorf("the published state is %s with a ledger, the backup medium's newest state is %s: %w", p.describe(), describeState(s, file), ErrRollback)
	}
	if p.ledgerSum != s.LedgerSHA256 {
		return fmt.Errorf("%s lists ledger sha256 %s, the backup medium's newest state (%s) names %s: %w", p.file, p.ledgerSum, file, s.LedgerSHA256, ErrRollback)
	}
	if lt := formatStateTime(p.ledger.ListingTime); lt != s.ListingTime {
		return fmt.Errorf("%s: listing time %s, the backup medium's newest state (%s) names %s: %w", p.ledgerFile, lt, file, s.ListingTime, ErrRollback)
	}
	if p.ledger.Repository != s.Repository {
		return fmt.Errorf("%s: repository %q, the backup medium's (%s) is %q: %w", p.ledgerFile, p.ledger.Repository, file, s.Repository, stableset.ErrRepository)
	}
	return nil
}

// checkClock refuses a ceremony clock earlier, by more than skew, than a
// time the offline side has already seen: the published ledger's listing
// time, and the backup medium's newest ceremony and listing times. The
// error names the latest of them.
func checkClock(now time.Time, skew time.Duration, p *publishedState, b *Backup) error {
	if now.IsZero() {
		return fmt.Errorf("no ceremony clock given: %w", ErrClock)
	}
	type seen struct {
		what string
		t    time.Time
	}
	var ts []seen
	if p != nil && !p.first {
		ts = append(ts, seen{fmt.Sprintf("the listing time of %s", p.ledgerFile), p.ledger.ListingTime})
	}
	if b != nil {
		s := b.Newest()
		ts = append(ts, seen{fmt.Sprintf("the ceremony time of %s", b.NewestFile()), s.ceremonyTime()})
		if s.ListingTime != "" {
			ts = append(ts, seen{fmt.Sprintf("the listing time of %s", b.NewestFile()), s.listing()})
		}
	}
	// The latest time seen is the one named.
	var latest *seen
	for i := range ts {
		if latest == nil || ts[i].t.After(latest.t) {
			latest = &ts[i]
		}
	}
	if latest != nil && now.Add(skew).Before(latest.t) {
		return fmt.Errorf("the ceremony's clock %s is earlier than %s, %s, by more than %s: %w",
			formatStateTime(now), latest.what, formatStateTime(latest.t), skew, ErrClock)
	}
	return nil
}

// checkExportRepository reads the export's header and refuses an export
// for another repository than the backup medium's.
func checkExportRepository(exportFile string, b *Backup) error {
	f, err := os.Open(exportFile)
	if err != nil {
		return fmt.Errorf("opening the export: %w", err)
	}
	defer f.Close()
	x, err := export.NewReader(f, exportFile)
	if err != nil {
		return err
	}
	if got, want := x.Header().Repository, b.Newest().Repository; got != want {
		return fmt.Errorf("%s: repository %q, the backup medium's (%s) is %q: %w", exportFile, got, b.NewestFile(), want, stableset.ErrRepository)
	}
	return nil
}

// checkBackupRoot refuses a backup medium made for another root than the
// one the ceremony trusts.
func checkBackupRoot(b *Backup, root *tuf.Metadata[tuf.Root]) error {
	rd, err := RootDigest(root)
	if err != nil {
		return err
	}
	if s := b.Newest(); s.RootSHA256 != rd {
		return fmt.Errorf("%s: root_sha256 %s, the trusted root's is %s: the backup medium is another repository's: %w", b.NewestFile(), s.RootSHA256, rd, ErrBackup)
	}
	return nil
}

// stableState is the state a stable signing leaves, before its
// transcript digest is known; stableFile is the SHA-256 of the stable
// metadata file it wrote.
func (b *Backup) stableState(d *stableset.Diff, signedDiff []byte, stableFile [32]byte, now time.Time) *BackupState {
	prev := b.Newest()
	sd := sha256.Sum256(signedDiff)
	return &BackupState{
		Format: StateFormat, FormatVersion: StateFormatVersion, Repository: prev.Repository, RootSHA256: prev.RootSHA256,
		Ceremony: StateStable, StableVersion: d.Header.StableVersion,
		LedgerSHA256: hex.EncodeToString(d.NewLedgerSHA256[:]), ListingTime: formatStateTime(d.Header.ListingTime),
		CeremonyTime: formatStateTime(now), SignedDiffSHA256: hex.EncodeToString(sd[:]),
		StableSHA256: hex.EncodeToString(stableFile[:]), PreviousStateSHA256: hex.EncodeToString(b.newestSum[:]),
	}
}

// rotationState is the state a stable key rotation leaves, before its
// transcript digest is known: stable version+1, stableFile the bytes of
// the stable metadata it wrote, the ledger of the newest state.
func (b *Backup) rotationState(stableFile []byte, now time.Time) *BackupState {
	prev := b.Newest()
	return &BackupState{
		Format: StateFormat, FormatVersion: StateFormatVersion, Repository: prev.Repository, RootSHA256: prev.RootSHA256,
		Ceremony: StateRotation, StableVersion: prev.StableVersion + 1,
		LedgerSHA256: prev.LedgerSHA256, ListingTime: prev.ListingTime,
		CeremonyTime: formatStateTime(now), StableSHA256: sha256Hex(stableFile),
		PreviousStateSHA256: hex.EncodeToString(b.newestSum[:]),
	}
}

// append writes s, the state after the newest, as a new state file.
func (b *Backup) append(s *BackupState) (string, error) {
	if s.StableVersion != b.Newest().StableVersion+1 {
		return "", fmt.Errorf("new backup state for stable v%d after v%d: %w", s.StableVersion, b.Newest().StableVersion, ErrBackup)
	}
	if _, err := ParseState(s.Marshal(), "new state"); err != nil {
		return "", err
	}
	if !b.marked {
		// A backup medium made before markers: it gets its marker with
		// its next state, dated by its bootstrap.
		if err := writeBackupMarker(b.Dir, b.States[0].ceremonyTime()); err != nil {
			return "", err
		}
		b.marked = true
	}
	return writeState(b.Dir, s)
}

// checkDiffState checks the diff's own view of the previous state (read
// by stableset from the published directory) against the backup
// medium's newest state once more: the published files cannot change
// between the first check and the pass.
func checkDiffState(b *Backup, d *stableset.Diff) error {
	s, h := b.Newest(), d.Header
	first := s.LedgerSHA256 == "" // the bootstrap, or rotations re-signing its empty stable
	switch {
	case h.TrustsUploadTimes != first || h.StableVersion != s.StableVersion+1:
		return fmt.Errorf("the diff signs stable v%d (first ceremony: %v), the backup medium's newest state is %s: %w",
			h.StableVersion, h.TrustsUploadTimes, describeState(s, b.NewestFile()), ErrRollback)
	case !first && h.PreviousLedgerSHA256 != s.LedgerSHA256:
		return fmt.Errorf("the diff starts from ledger sha256 %s, the backup medium's newest state (%s) names %s: %w",
			h.PreviousLedgerSHA256, b.NewestFile(), s.LedgerSHA256, ErrRollback)
	case h.Repository != s.Repository:
		return fmt.Errorf("the diff is for repository %q, the backup medium's (%s) is %q: %w", h.Repository, b.NewestFile(), s.Repository, stableset.ErrRepository)
	}
	return nil
}

// save completes s with the transcript's digest and writes it as the
// backup medium's new state. media is named in the error: it was written
// and verified, but without its state the next ceremony refuses it.
func (b *Backup) save(s *BackupState, transcript [32]byte, media string) (string, error) {
	s.TranscriptSHA256 = hex.EncodeToString(transcript[:])
	name, err := b.append(s)
	if err != nil {
		return "", fmt.Errorf("%s was written and verified, but its state was not recorded on the backup medium %s (do not publish it; sign again once the backup medium is writable): %w", media, b.Dir, err)
	}
	return name, nil
}

// PreviousFromBackup reads the backup medium dir and describes its newest
// state for the next ceremony's run sheet.
func PreviousFromBackup(dir string) (*PreviousCeremony, error) {
	b, err := ReadBackup(dir)
	if err != nil {
		return nil, err
	}
	s := b.Newest()
	p := &PreviousCeremony{File: b.NewestFile(), Ceremony: s.Ceremony, StableVersion: s.StableVersion, Time: s.ceremonyTime(),
		StateSHA256: s.CheckDigest(), Repository: s.Repository}
	if _, err := hex.Decode(p.TranscriptSHA256[:], []byte(s.TranscriptSHA256)); err != nil {
		return nil, fmt.Errorf("%s: transcript_sha256: %w", p.File, err)
	}
	return p, nil
}
