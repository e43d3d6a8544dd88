package ceremony

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/tuf"
)

// Audit: what an auditor runs, anywhere, without hardware, on whatever a
// ceremony wrote (docs/audit.md). Every medium is checked from a root the
// auditor trusts; nothing on the medium is trusted because it is there.

// Medium is the kind of directory Audit checks.
type Medium string

// The media Audit recognises.
const (
	// MediumBootstrap is a bootstrap's output: metadata/ (root, targets,
	// an empty stable), keys/ (public keys and attestation chains),
	// runsheet.md and transcript.jsonl.
	MediumBootstrap Medium = "bootstrap"
	// MediumStable is a stable signing's output: stable/ (metadata,
	// ledger, pages, snapshot fragment), signed-diff.json, policy.json,
	// diff.canonical, diff.txt and transcript.jsonl.
	MediumStable Medium = "stable"
	// MediumRepository is a whole TUF repository (metadata/ with
	// timestamp.json, as a client fetches it), or its metadata directory.
	MediumRepository Medium = "repository"
)

// Classes of audit failures; check them with errors.Is. Every error Audit
// returns matches exactly one of them.
var (
	// ErrInvalidMedium: the medium was read and is wrong: a signature, a
	// hash, a version, an expiry, an attestation, the transcript, or a
	// file the medium must hold is missing or malformed.
	ErrInvalidMedium = errors.New("medium does not verify")
	// ErrUnreadable: the audit could not be carried out: an input named
	// on the command line is missing or unreadable, the directory is not
	// a medium Audit knows, or a file could not be read (permissions, I/O).
	ErrUnreadable = errors.New("could not verify")
)

// Causes of audit failures beyond those of the packages it calls (tuf,
// keys, signeddiff, ledger); check them with errors.Is.
var (
	ErrUnknownMedium = errors.New("not a medium keyceremony writes")
	ErrReplay        = errors.New("version goes back against the previous medium")
	ErrFork          = errors.New("two different documents of one version")
	ErrNoTargets     = errors.New("a stable medium carries no targets metadata: name a medium that does")
	ErrMediumContent = errors.New("medium content does not match what was signed")
)

// AuditError is a failed audit step: Check names the step (as in the
// report), Err the cause.
type AuditError struct {
	Check      string
	Err        error
	unreadable bool
}

func (e *AuditError) Error() string { return e.Check + ": " + e.Err.Error() }

// Unwrap returns the cause and the class (ErrInvalidMedium or
// ErrUnreadable).
func (e *AuditError) Unwrap() []error {
	if e.unreadable {
		return []error{e.Err, ErrUnreadable}
	}
	return []error{e.Err, ErrInvalidMedium}
}

// AuditOptions are an audit's inputs by name.
type AuditOptions struct {
	// Root is the trusted root file (1.root.json from the bootstrap
	// media, compared out of band).
	Root string
	// Dir is the medium.
	Dir string
	// At is the time expiries are checked at; zero means now.
	At time.Time
	// Previous is an earlier medium (optional): versions must not go
	// back against it, and a stable medium's signed diff must start from
	// its stable version and ledger when it is the direct predecessor.
	Previous string
	// Repository is a medium that holds the root chain and targets
	// (bootstrap media or a repository), needed for a stable medium when
	// Previous does not hold them.
	Repository string
	// Export is the repository export a medium's comparison was made
	// from (optional): an online rotation's recovery comparison is
	// recomputed from it and the ledger in Previous.
	Export string
	// AttestationCA is a PEM file of attestation CAs trusted instead of
	// Yubico's roots (rehearsals with the PIV emulator or soft devices).
	AttestationCA string
	// SoftCA is a soft devices' CA directory whose certificate is
	// trusted instead of Yubico's roots (rehearsals with INSECURE soft
	// devices); not with AttestationCA.
	SoftCA string
}

// AuditCheck is one step of an audit.
type AuditCheck struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// AuditKey is one key of a bootstrap medium with what its attestation
// proves.
type AuditKey struct {
	Role        string `json:"role"`
	Device      uint32 `json:"device"`
	Slot        string `json:"slot"`
	KeyID       string `json:"keyid"`
	Firmware    string `json:"firmware"`
	PINPolicy   string `json:"pin_policy"`
	TouchPolicy string `json:"touch_policy"`
	FormFactor  string `json:"form_factor"`
	ChainsTo    string `json:"chains_to"`
}

// AuditTranscript is a verified transcript.
type AuditTranscript struct {
	File    string `json:"file"`
	Entries int    `json:"entries"`
	Digest  string `json:"digest"`
}

// AuditSignedDiff is what a verified signed diff states.
type AuditSignedDiff struct {
	Repository            string   `json:"repository"`
	Ceremony              int64    `json:"ceremony"`
	PreviousStableVersion int64    `json:"previous_stable_version"`
	StableVersion         int64    `json:"stable_version"`
	PreviousLedgerSHA256  string   `json:"previous_ledger_sha256"`
	DiffSHA256            string   `json:"diff_sha256"`
	PolicySHA256          string   `json:"policy_sha256"`
	StableFiles           int64    `json:"stable_files"`
	Projects              int64    `json:"projects"`
	SignedBy              []string `json:"signed_by"`
	// Recomputed is true when the diff was recomputed from the export
	// and the previous medium (verify --export --previous) and matched;
	// false when it was not recomputed.
	Recomputed bool `json:"recomputed"`
	// TakenDown and Lifted are the paths the diff's take-down and lift
	// decisions name.
	TakenDown []string `json:"taken_down,omitempty"`
	Lifted    []string `json:"lifted,omitempty"`

	decisions []decisions.Decision
}

// AuditFile is one metadata file checked.
type AuditFile struct {
	File      string           `json:"file"`
	Role      string           `json:"role"`
	Delegator string           `json:"delegated_by"`
	Version   int64            `json:"version"`
	Expires   time.Time        `json:"expires"`
	Checks    []AuditSignature `json:"signatures"`
}

// AuditSignature is one threshold check of a file.
type AuditSignature struct {
	By        string   `json:"checked_by"`
	Threshold int      `json:"threshold"`
	Signers   []string `json:"signed_by"`
}

// AuditPrevious is the previous medium the versions were compared with.
type AuditPrevious struct {
	Dir      string           `json:"dir"`
	Medium   Medium           `json:"medium"`
	Versions map[string]int64 `json:"versions"`
}

// AuditReport is what an audit checked, in order. Valid is true only if
// every check passed; Error is the refusal otherwise.
type AuditReport struct {
	Medium Medium    `json:"medium"`
	Dir    string    `json:"dir"`
	At     time.Time `json:"checked_at"`
	Valid  bool      `json:"valid"`
	// Outcome is "valid", "invalid" (ErrInvalidMedium) or "could not
	// verify" (ErrUnreadable).
	Outcome    string           `json:"outcome"`
	Error      string           `json:"error,omitempty"`
	Checks     []AuditCheck     `json:"checks"`
	Versions   map[string]int64 `json:"versions"`
	Files      []AuditFile      `json:"files"`
	Keys       []AuditKey       `json:"keys,omitempty"`
	Transcript *AuditTranscript `json:"transcript,omitempty"`
	SignedDiff *AuditSignedDiff `json:"signed_diff,omitempty"`
	Previous   *AuditPrevious   `json:"previous,omitempty"`
	Notes      []string         `json:"notes,omitempty"`
	state      *mediumState     // what the checks established, for --previous
	trusted    *tuf.Metadata[tuf.Root]
	targets    *targetsSource
}

// auditor runs the checks of one audit.
type auditor struct {
	o   AuditOptions
	rep *AuditReport
	// roots, when set, are the attestation roots instead of those the
	// options name (a bootstrap's read-back: the roots it accepted).
	roots *attestationRoots
	// read, when set, gets the SHA-256 of each file of a stable medium
	// the checks read whole: a stable signing's read-back writes its
	// SHA256SUMS from them, verify checks SHA256SUMS against them (each
	// file is read and hashed once).
	read readSums
}

// check runs one step and records it. A failure is returned as an
// *AuditError: unreadable if a file that exists could not be read,
// invalid otherwise.
func (a *auditor) check(name string, fn func() (string, error)) error {
	return a.run(name, false, fn)
}

// input is check for a step that reads what the command line names: a
// missing file there means the audit could not be carried out.
func (a *auditor) input(name string, fn func() (string, error)) error {
	return a.run(name, true, fn)
}

func (a *auditor) run(name string, input bool, fn func() (string, error)) error {
	detail, err := fn()
	if err == nil {
		a.rep.Checks = append(a.rep.Checks, AuditCheck{Check: name, OK: true, Detail: detail})
		return nil
	}
	var ae *AuditError
	if errors.As(err, &ae) {
		return err
	}
	a.rep.Checks = append(a.rep.Checks, AuditCheck{Check: name, OK: false, Detail: err.Error()})
	return &AuditError{Check: name, Err: err, unreadable: unreadable(err, input)}
}

// unreadable tells a file that could not be read from one that is wrong.
func unreadable(err error, input bool) bool {
	if errors.Is(err, ErrUnknownMedium) || errors.Is(err, ErrNoTargets) || errors.Is(err, ErrNeedPrevious) || errors.Is(err, ErrNeedPreviousExport) || errors.Is(err, ErrBareMetadata) {
		return true
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return false
	}
	return input || !errors.Is(err, fs.ErrNotExist)
}

// DetectMedium tells what kind of medium dir is: a renewal's or a
// rotation's output (by its checklist), a stable signing's output
// (stable/metadata), a repository (timestamp.json in dir or in
// dir/metadata) or a bootstrap's output (keys/ and metadata/).
func DetectMedium(dir string) (Medium, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory: %w", dir, ErrUnknownMedium)
	}
	// verify reads output media and repositories, never the backup or
	// an export medium.
	if _, err := refuseMarked(dir, "the directory", RoleOutput); err != nil {
		return "", err
	}
	isDir := func(p ...string) bool {
		st, err := os.Stat(filepath.Join(append([]string{dir}, p...)...))
		return err == nil && st.IsDir()
	}
	isFile := func(p ...string) bool {
		st, err := os.Stat(filepath.Join(append([]string{dir}, p...)...))
		return err == nil && st.Mode().IsRegular()
	}
	if m, ok := detectRenewalOrRotation(dir); ok {
		return m, nil
	}
	switch {
	case isDir("stable", "metadata"):
		return MediumStable, nil
	case isFile("metadata", "timestamp.json") || isFile("timestamp.json"):
		return MediumRepository, nil
	case isDir("keys") && isDir("metadata"):
		return MediumBootstrap, nil
	}
	return "", fmt.Errorf("%s holds neither stable/metadata (stable media), timestamp.json (a repository) nor keys/ and metadata/ (bootstrap media): %w", dir, ErrUnknownMedium)
}

// Audit checks the medium o.Dir from the trusted root o.Root: a
// bootstrap's output, a stable signing's output or a whole repository
// (DetectMedium), and, with o.Previous, that no version went back. The
// report lists every check made until the first failure; the error, an
// *AuditError, names the check and matches ErrInvalidMedium or
// ErrUnreadable.
func Audit(o AuditOptions) (*AuditReport, error) {
	if o.At.IsZero() {
		o.At = time.Now()
	}
	rep := &AuditReport{Dir: o.Dir, At: o.At.UTC().Truncate(time.Second), Versions: map[string]int64{}}
	a := &auditor{o: o, rep: rep}
	err := a.audit()
	switch {
	case err == nil:
		rep.Valid, rep.Outcome = true, "valid"
	case errors.Is(err, ErrUnreadable):
		rep.Error, rep.Outcome = err.Error(), "could not verify"
	default:
		rep.Error, rep.Outcome = err.Error(), "invalid"
	}
	return rep, err
}

func (a *auditor) audit() error {
	o := a.o
	if err := a.input("trusted root", func() (string, error) {
		r, err := LoadTrustedRoot(o.Root)
		if err != nil {
			return "", err
		}
		a.rep.trusted = r
		return fmt.Sprintf("%s: root version %d, threshold %d of %d keys", o.Root, r.Signed.Version,
			r.Signed.Roles[tuf.RoleRoot].Threshold, len(r.Signed.Roles[tuf.RoleRoot].KeyIDs)), nil
	}); err != nil {
		return err
	}
	if err := a.input("medium", func() (string, error) {
		m, err := DetectMedium(o.Dir)
		if err != nil {
			return "", err
		}
		a.rep.Medium = m
		return fmt.Sprintf("%s is %s media", o.Dir, m), nil
	}); err != nil {
		return err
	}
	var err error
	switch a.rep.Medium {
	case MediumBootstrap:
		err = a.bootstrap()
	case MediumStable:
		// SHA256SUMS (last) takes the hashes of the files the checks
		// read whole.
		a.read = readSums{}
		err = a.stable()
	case MediumRepository:
		err = a.repository()
	case MediumRenewal:
		err = a.renewal()
	case MediumRotation:
		err = a.rotation()
	case MediumHandover:
		err = a.handover()
	}
	if err != nil {
		return err
	}
	if a.rep.Medium != MediumRepository {
		if err := a.check(MarkerFile, func() (string, error) {
			if err := checkOutputMarker(o.Dir, a.rep.Medium); err != nil {
				return "", err
			}
			return fmt.Sprintf("names an output medium of a %s ceremony", a.rep.Medium), nil
		}); err != nil {
			return err
		}
		// Last: every other check says what is wrong with a file in
		// its own terms first.
		if err := a.check(SumsFile, func() (string, error) {
			d, n, err := checkSums(o.Dir, a.read)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d files, each with its SHA-256, nothing else on the medium; %s digest %x (%s)", n, SumsFile, d, strings.Join(keys.PGPWords(d[:]), " ")), nil
		}); err != nil {
			return err
		}
	}
	if o.Previous != "" {
		return a.previous()
	}
	return nil
}

// metadataDir is where a medium of kind m keeps its top-level metadata.
func metadataDir(m Medium, dir string) string {
	switch m {
	case MediumStable:
		return filepath.Join(dir, "stable", "metadata")
	case MediumRepository:
		if st, err := os.Stat(filepath.Join(dir, "metadata")); err == nil && st.IsDir() {
			return filepath.Join(dir, "metadata")
		}
		return dir
	}
	return filepath.Join(dir, "metadata")
}

func (a *auditor) repository() error {
	md := metadataDir(MediumRepository, a.o.Dir)
	return a.check("repository", func() (string, error) {
		r, err := tuf.VerifyRepository(a.rep.trusted, md, tuf.VerifyOptions{At: a.o.At})
		if r != nil {
			a.addFiles(r.Files)
		}
		if err != nil {
			return "", err
		}
		for _, f := range r.Files {
			switch f.Role {
			case tuf.RoleRoot, tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp, "stable", "unstable":
				a.rep.Versions[f.Role] = f.Version
			}
		}
		st, err := readState(MediumRepository, a.o.Dir, a.rep.trusted, nil)
		if err != nil {
			return "", err
		}
		a.rep.state = st
		return fmt.Sprintf("%d metadata files: the root chain, timestamp, snapshot, targets and every delegated role down to each stable bin, signatures, thresholds, versions, lengths, hashes, layout and expiry", len(r.Files)), nil
	})
}

func (a *auditor) addFiles(fs []tuf.FileReport) {
	for _, f := range fs {
		af := AuditFile{File: f.File, Role: f.Role, Delegator: f.Delegator, Version: f.Version, Expires: f.Expires.UTC()}
		for _, c := range f.Checks {
			af.Checks = append(af.Checks, AuditSignature{By: c.By, Threshold: c.Threshold, Signers: c.Signers})
		}
		a.rep.Files = append(a.rep.Files, af)
	}
}

// takedownsKept checks that stable in cur delegates to the takedown role
// exactly the paths the previous medium (prev, in dir) did, plus the
// signed diff's take-downs, less its lifts (ds); it returns how many.
func takedownsKept(cur, prev *mediumState, dir string, ds []decisions.Decision) (int, error) {
	want := stableset.NextTakedowns(prev.takedowns, ds)
	got := slices.Sorted(slices.Values(cur.takedowns))
	if !slices.Equal(got, want) {
		return 0, fmt.Errorf("stable version %d takes down %q; the previous medium %s took down %q, and the signed diff's decisions make that %q: %w", cur.versions[stableset.StableRole], got, dir, prev.takedowns, want, ErrMediumContent)
	}
	return len(want), nil
}

// previous compares the medium with the earlier medium o.Previous: no
// version goes back, one version is one document, and a stable medium's
// signed diff starts from the previous medium's stable version and ledger
// when that medium is its direct predecessor.
func (a *auditor) previous() error {
	prev := a.o.Previous
	var m Medium
	if err := a.input("previous medium", func() (string, error) {
		var err error
		if m, err = DetectMedium(prev); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s is %s media", prev, m), nil
	}); err != nil {
		return err
	}
	return a.check("versions against the previous medium", func() (string, error) {
		ts := a.rep.targets
		if ts == nil && a.rep.Medium == MediumRepository {
			var err error
			if ts, err = loadTargetsSource(a.rep.trusted, a.o.Dir); err != nil {
				return "", err
			}
		}
		ps, err := readState(m, prev, a.rep.trusted, ts)
		if err != nil {
			return "", fmt.Errorf("previous medium %s: %w", prev, err)
		}
		a.rep.Previous = &AuditPrevious{Dir: prev, Medium: m, Versions: ps.versions}
		if err := monotonic(a.rep.state, ps, a.o.Dir, prev); err != nil {
			return "", err
		}
		detail := "no version goes back"
		if sd := a.rep.SignedDiff; sd != nil {
			pv, ok := ps.versions[stableset.StableRole]
			if !ps.hasLedger {
				// A bootstrap's empty stable binds no ledger: a diff
				// from it starts from nothing, version 0.
				pv = 0
			}
			switch {
			case !ok:
			case sd.PreviousStableVersion < pv:
				return "", fmt.Errorf("the signed diff starts from stable version %d, older than version %d, which the previous medium %s holds: %w", sd.PreviousStableVersion, pv, prev, ErrReplay)
			case sd.PreviousStableVersion > pv:
				a.rep.Notes = append(a.rep.Notes, fmt.Sprintf("the previous medium holds stable version %d, the signed diff starts from version %d: the previous ledger was not compared", pv, sd.PreviousStableVersion))
			default:
				want := ""
				if ps.hasLedger {
					want = hex.EncodeToString(ps.ledger[:])
				}
				if sd.PreviousLedgerSHA256 != want {
					return "", fmt.Errorf("the signed diff names previous ledger %q, the previous medium %s binds ledger %q into stable version %d: %w", sd.PreviousLedgerSHA256, prev, want, pv, ErrMediumContent)
				}
				// Takedowns are kept until a lift: the new stable
				// delegates the previous medium's taken-down paths,
				// plus the diff's take-downs, less its lifts.
				if a.rep.state != nil {
					n, err := takedownsKept(a.rep.state, ps, prev, sd.decisions)
					if err != nil {
						return "", err
					}
					if n > 0 {
						detail += fmt.Sprintf("; %d paths taken down, as the previous medium's takedowns and the signed diff's decisions give", n)
					}
				}
				if pv == 0 {
					detail += "; the signed diff starts from nothing, as the previous medium binds no ledger"
				} else {
					detail += fmt.Sprintf("; the signed diff starts from the previous medium's stable version %d and its ledger", pv)
				}
			}
		}
		return detail, nil
	})
}
