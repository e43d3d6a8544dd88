package tuf

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/blake2b"
)

// Errors returned by VerifyRepository inside a *VerifyError; check them
// with errors.Is. Signature shortfalls are ErrThreshold (*ThresholdError)
// and refusals to load are *LoadError.
var (
	ErrExpired     = errors.New("metadata expired")
	ErrVersion     = errors.New("wrong metadata version")
	ErrMissing     = errors.New("metadata missing")
	ErrHash        = errors.New("length or hash mismatch")
	ErrUnreachable = errors.New("listed in snapshot but not reachable by delegation")
	ErrDelegation  = errors.New("target outside the delegated paths")
)

// VerifyError is a refusal by VerifyRepository. File is the metadata file
// at fault (a name inside the metadata directory), Role the role it holds.
type VerifyError struct {
	File string
	Role string
	Err  error
}

func (e *VerifyError) Error() string {
	inner := e.Err.Error()
	var le *LoadError
	if errors.As(e.Err, &le) && le.File == e.File {
		// Do not name the file twice.
		inner = le.Err.Error()
		if le.Field != "" {
			inner = "field " + le.Field + ": " + inner
		}
	}
	var te *ThresholdError
	if errors.As(e.Err, &te) && te.Role == e.Role {
		return e.File + ": " + inner
	}
	return fmt.Sprintf("%s: role %s: %s", e.File, e.Role, inner)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// VerifyOptions tune VerifyRepository.
type VerifyOptions struct {
	// At is the time expiries are checked against; the zero value means
	// now.
	At time.Time
}

// SignatureCheck is one threshold check of a file: by whom (the file that
// holds the keys: a root file or the delegating targets file), how many
// signatures were needed and which keys' signatures counted.
type SignatureCheck struct {
	By        string
	Threshold int
	Signers   []string
}

// FileReport is one metadata file that VerifyRepository checked.
type FileReport struct {
	File      string
	Role      string
	Delegator string // "root" for top-level roles, else the delegating role
	Version   int64
	Expires   time.Time
	Checks    []SignatureCheck
}

// Report lists every file VerifyRepository checked, in the order checked.
type Report struct {
	At    time.Time
	Files []FileReport
}

// WriteText prints the report for people: one line per signature check.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "checked at %s\n", r.At.UTC().Format(expiryLayout))
	fmt.Fprintln(tw, "FILE\tROLE\tDELEGATED BY\tVERSION\tEXPIRES\tCHECKED BY\tTHRESHOLD\tSIGNED BY (key ids)")
	for _, f := range r.Files {
		for i, c := range f.Checks {
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", f.File, f.Role, f.Delegator, f.Version,
					f.Expires.UTC().Format(expiryLayout), c.By, c.Threshold, strings.Join(c.Signers, " "))
			} else {
				fmt.Fprintf(tw, "\t\t\t\t\t%s\t%d\t%s\n", c.By, c.Threshold, strings.Join(c.Signers, " "))
			}
		}
	}
	return tw.Flush()
}

// VerifyRepository checks the metadata in metaDir, laid out as a TUF
// client fetches it from a repository with consistent snapshots
// (1.root.json, 2.root.json, …, timestamp.json, N.snapshot.json,
// N.targets.json, N.<role>.json), against a trusted root, as the TUF
// specification's client workflow (5.3–5.6) does:
//
//   - the root chain from trusted: each next version N+1.root.json is
//     signed by the threshold of the previous root and of itself, and has
//     version N+1; the chain ends at the first missing version, and no
//     later root file may exist; the last root must not be expired;
//   - timestamp.json, signed by the last root's timestamp role;
//   - the snapshot it names, with the version, length and hashes the
//     timestamp gives, signed by the root's snapshot role;
//   - targets and every delegated role reachable from it, in delegation
//     order, depth first, each signed by its delegator's threshold, with
//     the version (and length and hashes, if given) that snapshot lists,
//     listing only targets inside the paths delegated to it;
//   - every role snapshot lists is reachable, and every reachable role is
//     listed; nothing is expired at opts.At.
//
// The trusted root's own signatures are checked too. Files are read one at
// a time and dropped once checked, except for the chain of delegators
// above the role being checked. Any failure is returned as a *VerifyError
// naming the file and role; the report lists what was checked until then.
func VerifyRepository(trusted *Metadata[Root], metaDir string, opts VerifyOptions) (*Report, error) {
	at := opts.At
	if at.IsZero() {
		at = time.Now()
	}
	dir, err := os.OpenRoot(metaDir)
	if err != nil {
		return nil, fmt.Errorf("opening metadata directory: %w", err)
	}
	defer dir.Close()
	v := &verifier{dir: dir, at: at, report: &Report{At: at}, keyRole: map[string]string{}}
	err = v.run(trusted)
	return v.report, err
}

// VerifyRootChain walks the root chain in metaDir from a trusted root, as
// VerifyRepository does (the trusted root checked against itself and any
// copy of the same version, each N+1.root.json signed by the old and the
// new root, no gap), and returns the newest root. Expiry is not checked: a
// ceremony may need to rotate away from an expired root.
func VerifyRootChain(trusted *Metadata[Root], metaDir string) (*Metadata[Root], error) {
	dir, err := os.OpenRoot(metaDir)
	if err != nil {
		return nil, fmt.Errorf("opening metadata directory: %w", err)
	}
	defer dir.Close()
	v := &verifier{dir: dir, report: &Report{}}
	if err := v.rootChain(trusted); err != nil {
		return nil, err
	}
	return v.root, nil
}

type verifier struct {
	dir    *os.Root
	at     time.Time
	report *Report
	root   *Metadata[Root]
	rootF  string
	snap   *Snapshot
	snapF  string
	seen   map[string]bool // delegated roles already checked

	keyRole map[string]string // key id -> the delegated role it was delegated to
}

func (v *verifier) run(trusted *Metadata[Root]) error {
	if err := v.rootChain(trusted); err != nil {
		return err
	}
	root := &v.root.Signed
	if err := v.expiry(v.rootF, RoleRoot, root.Expires); err != nil {
		return err
	}
	snapVersion, err := v.timestamp()
	if err != nil {
		return err
	}
	if err := v.snapshot(snapVersion); err != nil {
		return err
	}
	v.seen = map[string]bool{}
	if err := v.targets(); err != nil {
		return err
	}
	var unreached []string
	for name := range v.snap.Meta {
		role := strings.TrimSuffix(name, ".json")
		if role != RoleTargets && !v.seen[role] {
			unreached = append(unreached, name)
		}
	}
	if len(unreached) > 0 {
		sort.Strings(unreached)
		return &VerifyError{File: v.snapF, Role: RoleSnapshot, Err: fmt.Errorf("%s: %w", strings.Join(unreached, ", "), ErrUnreachable)}
	}
	return nil
}

// fileName is where a client fetches role's metadata of version version.
func (v *verifier) fileName(role string, version int64) string {
	esc := url.PathEscape(role) + ".json"
	if v.root.Signed.ConsistentSnapshot {
		return strconv.FormatInt(version, 10) + "." + esc
	}
	return esc
}

// read reads file, holding role's metadata, refusing it past the length
// listed (0: not listed) or the client limit (readBounded).
func (v *verifier) read(file, role string, listed int64, referrer string) ([]byte, error) {
	b, err := v.readBounded(file, role, listed, referrer)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &VerifyError{File: file, Role: role, Err: fmt.Errorf("%w: %w", ErrMissing, err)}
	}
	if err != nil {
		return nil, &VerifyError{File: file, Role: role, Err: err}
	}
	return b, nil
}

func (v *verifier) expiry(file, role string, e Expiry) error {
	if !v.at.Before(e.Time()) {
		return &VerifyError{File: file, Role: role, Err: fmt.Errorf("expired at %s (checked at %s): %w", e, v.at.UTC().Format(expiryLayout), ErrExpired)}
	}
	return nil
}

func (v *verifier) rootChain(trusted *Metadata[Root]) error {
	if trusted == nil {
		return errors.New("no trusted root")
	}
	n := trusted.Signed.Version
	file := strconv.FormatInt(n, 10) + ".root.json"
	msg, err := trusted.SignedBytes()
	if err != nil {
		return err
	}
	// A trusted root object may not have come through Load: check it.
	if err := validateMetadata(trusted, "trusted root"); err != nil {
		return &VerifyError{File: "trusted root", Role: RoleRoot, Err: err}
	}
	signers, err := trusted.Signed.verifyRole(RoleRoot, msg, trusted.Signatures)
	if err != nil {
		return &VerifyError{File: "trusted root", Role: RoleRoot, Err: err}
	}
	// If the directory holds the trusted version, it must be the same root.
	b, err := v.readBounded(file, RoleRoot, 0, "")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// An unreadable copy is not an absent one.
		return &VerifyError{File: file, Role: RoleRoot, Err: err}
	}
	if err == nil {
		m, err := Load[Root](b, file)
		if err != nil {
			return &VerifyError{File: file, Role: RoleRoot, Err: err}
		}
		got, err := m.SignedBytes()
		if err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return &VerifyError{File: file, Role: RoleRoot, Err: fmt.Errorf("differs from the trusted root of the same version: %w", ErrVersion)}
		}
	} else {
		file = "trusted root"
	}
	v.root, v.rootF = trusted, file
	v.report.Files = append(v.report.Files, FileReport{
		File: file, Role: RoleRoot, Delegator: RoleRoot, Version: n, Expires: trusted.Signed.Expires.Time(),
		Checks: []SignatureCheck{{By: "itself", Threshold: trusted.Signed.Roles[RoleRoot].Threshold, Signers: signers}},
	})
	for {
		next := n + 1
		file := strconv.FormatInt(next, 10) + ".root.json"
		b, err := v.readBounded(file, RoleRoot, 0, "")
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return &VerifyError{File: file, Role: RoleRoot, Err: err}
		}
		m, err := Load[Root](b, file)
		if err != nil {
			return &VerifyError{File: file, Role: RoleRoot, Err: err}
		}
		msg, err := m.SignedBytes()
		if err != nil {
			return err
		}
		old := &v.root.Signed
		oldSigners, err := old.verifyRole(RoleRoot, msg, m.Signatures)
		if err != nil {
			return &VerifyError{File: file, Role: RoleRoot, Err: fmt.Errorf("%w, checked against %s", err, v.rootF)}
		}
		newSigners, err := m.Signed.verifyRole(RoleRoot, msg, m.Signatures)
		if err != nil {
			return &VerifyError{File: file, Role: RoleRoot, Err: fmt.Errorf("%w, checked against itself", err)}
		}
		if m.Signed.Version != next {
			return &VerifyError{File: file, Role: RoleRoot, Err: fmt.Errorf("version %d follows version %d: %w", m.Signed.Version, n, ErrVersion)}
		}
		v.report.Files = append(v.report.Files, FileReport{
			File: file, Role: RoleRoot, Delegator: RoleRoot, Version: next, Expires: m.Signed.Expires.Time(),
			Checks: []SignatureCheck{
				{By: v.rootF, Threshold: old.Roles[RoleRoot].Threshold, Signers: oldSigners},
				{By: "itself", Threshold: m.Signed.Roles[RoleRoot].Threshold, Signers: newSigners},
			},
		})
		v.root, v.rootF, n = m, file, next
	}
	// A gap in the chain hides later roots from clients: refuse it.
	vs, err := Versions(v.dir.FS(), RoleRoot)
	if err != nil {
		return &VerifyError{File: ".", Role: RoleRoot, Err: err}
	}
	if len(vs) > 0 && vs[len(vs)-1] > n {
		return &VerifyError{File: strconv.FormatInt(vs[len(vs)-1], 10) + ".root.json", Role: RoleRoot, Err: fmt.Errorf("the root chain ends at version %d, %d.root.json is missing: %w", n, n+1, ErrVersion)}
	}
	return nil
}

// verifyRole is VerifyRole that also returns the keys that signed.
func (r *Root) verifyRole(role string, msg []byte, sigs []Signature) ([]string, error) {
	k, err := r.RoleKeys(role)
	if err != nil {
		return nil, err
	}
	return k.Verify(msg, sigs)
}

// checkMeta compares a file's bytes with the length and hashes its
// referrer lists for it.
func checkMeta(b []byte, mf MetaFile, referrer string) error {
	if mf.Length != 0 && int64(len(b)) != mf.Length {
		return fmt.Errorf("%d bytes, %s says %d: %w", len(b), referrer, mf.Length, ErrHash)
	}
	algs := make([]string, 0, len(mf.Hashes))
	for alg := range mf.Hashes {
		algs = append(algs, alg)
	}
	sort.Strings(algs)
	for _, alg := range algs {
		var h hash.Hash
		switch alg {
		case "sha256":
			h = sha256.New()
		case "sha512":
			h = sha512.New()
		case "blake2b-256":
			h, _ = blake2b.New256(nil)
		default:
			return fmt.Errorf("%s names unknown hash algorithm %q: %w", referrer, alg, ErrHash)
		}
		h.Write(b)
		if got := hex.EncodeToString(h.Sum(nil)); got != mf.Hashes[alg] {
			return fmt.Errorf("%s %s, %s says %s: %w", alg, got, referrer, mf.Hashes[alg], ErrHash)
		}
	}
	return nil
}

func (v *verifier) timestamp() (MetaFile, error) {
	const file = "timestamp.json"
	b, err := v.read(file, RoleTimestamp, 0, "")
	if err != nil {
		return MetaFile{}, err
	}
	m, err := Load[Timestamp](b, file)
	if err != nil {
		return MetaFile{}, &VerifyError{File: file, Role: RoleTimestamp, Err: err}
	}
	signers, err := v.verifyTop(file, RoleTimestamp, m.SignedBytes, m.Signatures)
	if err != nil {
		return MetaFile{}, err
	}
	if err := v.expiry(file, RoleTimestamp, m.Signed.Expires); err != nil {
		return MetaFile{}, err
	}
	v.addTop(file, RoleTimestamp, m.Signed.Common, signers)
	return m.Signed.Meta["snapshot.json"], nil
}

func (v *verifier) verifyTop(file, role string, signed func() ([]byte, error), sigs []Signature) ([]string, error) {
	msg, err := signed()
	if err != nil {
		return nil, &VerifyError{File: file, Role: role, Err: err}
	}
	signers, err := v.root.Signed.verifyRole(role, msg, sigs)
	if err != nil {
		return nil, &VerifyError{File: file, Role: role, Err: err}
	}
	return signers, nil
}

func (v *verifier) addTop(file, role string, c Common, signers []string) {
	v.report.Files = append(v.report.Files, FileReport{
		File: file, Role: role, Delegator: RoleRoot, Version: c.Version, Expires: c.Expires.Time(),
		Checks: []SignatureCheck{{By: v.rootF, Threshold: v.root.Signed.Roles[role].Threshold, Signers: signers}},
	})
}

func (v *verifier) snapshot(mf MetaFile) error {
	file := v.fileName(RoleSnapshot, mf.Version)
	b, err := v.read(file, RoleSnapshot, mf.Length, "timestamp.json")
	if err != nil {
		return err
	}
	if err := checkMeta(b, mf, "timestamp.json"); err != nil {
		return &VerifyError{File: file, Role: RoleSnapshot, Err: err}
	}
	m, err := Load[Snapshot](b, file)
	if err != nil {
		return &VerifyError{File: file, Role: RoleSnapshot, Err: err}
	}
	signers, err := v.verifyTop(file, RoleSnapshot, m.SignedBytes, m.Signatures)
	if err != nil {
		return err
	}
	if m.Signed.Version != mf.Version {
		return &VerifyError{File: file, Role: RoleSnapshot, Err: fmt.Errorf("version %d, timestamp.json lists version %d: %w", m.Signed.Version, mf.Version, ErrVersion)}
	}
	if err := v.expiry(file, RoleSnapshot, m.Signed.Expires); err != nil {
		return err
	}
	if _, ok := m.Signed.Meta["targets.json"]; !ok {
		return &VerifyError{File: file, Role: RoleSnapshot, Err: fmt.Errorf("targets.json not listed: %w", ErrMissing)}
	}
	v.addTop(file, RoleSnapshot, m.Signed.Common, signers)
	v.snap, v.snapF = &m.Signed, file
	return nil
}

// listed returns what snapshot says about role, or an error naming the
// snapshot file.
func (v *verifier) listed(role string) (MetaFile, error) {
	mf, ok := v.snap.Meta[role+".json"]
	if !ok {
		return MetaFile{}, &VerifyError{File: v.snapF, Role: role, Err: fmt.Errorf("%s.json not listed in snapshot: %w", role, ErrMissing)}
	}
	return mf, nil
}

// loadTargets reads, checks against snapshot and loads role's metadata.
func (v *verifier) loadTargets(role string) (*Metadata[Targets], string, []byte, error) {
	mf, err := v.listed(role)
	if err != nil {
		return nil, "", nil, err
	}
	file := v.fileName(role, mf.Version)
	b, err := v.read(file, role, mf.Length, v.snapF)
	if err != nil {
		return nil, file, nil, err
	}
	if err := checkMeta(b, mf, v.snapF); err != nil {
		return nil, file, nil, &VerifyError{File: file, Role: role, Err: err}
	}
	// A hash bin in the form the pipeline writes is parsed directly (the
	// parser proves the bytes canonical, so it accepts what Load accepts);
	// anything else takes the general path.
	if bin, ok := parseBinFast(b); ok {
		return bin.metadata(), file, bin.Signed, nil
	}
	m, err := Load[Targets](b, file)
	if err != nil {
		return nil, file, nil, &VerifyError{File: file, Role: role, Err: err}
	}
	msg, err := m.SignedBytes()
	if err != nil {
		return nil, file, nil, &VerifyError{File: file, Role: role, Err: err}
	}
	return m, file, msg, nil
}

// afterSignature checks what needs a verified signature first: version
// against snapshot, and expiry.
func (v *verifier) afterSignature(file, role string, c Common) error {
	mf := v.snap.Meta[role+".json"]
	if c.Version != mf.Version {
		return &VerifyError{File: file, Role: role, Err: fmt.Errorf("version %d, %s lists version %d: %w", c.Version, v.snapF, mf.Version, ErrVersion)}
	}
	return v.expiry(file, role, c.Expires)
}

func (v *verifier) targets() error {
	m, file, msg, err := v.loadTargets(RoleTargets)
	if err != nil {
		return err
	}
	signers, err := v.root.Signed.verifyRole(RoleTargets, msg, m.Signatures)
	if err != nil {
		return &VerifyError{File: file, Role: RoleTargets, Err: err}
	}
	if err := v.afterSignature(file, RoleTargets, m.Signed.Common); err != nil {
		return err
	}
	v.addTop(file, RoleTargets, m.Signed.Common, signers)
	return v.delegations(file, RoleTargets, &m.Signed, nil)
}

// delegations checks every role t delegates to, in order, depth first.
// scope is the chain of delegations that led to t: a target any role below
// lists must be inside all of them.
func (v *verifier) delegations(file, role string, t *Targets, scope []*DelegatedRole) error {
	if err := v.checkLayout(file, role, t, scope); err != nil {
		return err
	}
	if t.Delegations == nil {
		return nil
	}
	for i := range t.Delegations.Roles {
		d := &t.Delegations.Roles[i]
		again := v.seen[d.Name]
		v.seen[d.Name] = true
		m, dfile, msg, err := v.loadTargets(d.Name)
		if err != nil {
			return err
		}
		signers, err := verifyThreshold(d.Name, msg, m.Signatures, d.KeyIDs, d.Threshold, t.Delegations.Keys)
		if err != nil {
			return &VerifyError{File: dfile, Role: d.Name, Err: fmt.Errorf("%w, delegated by %s", err, file)}
		}
		if err := v.afterSignature(dfile, d.Name, m.Signed.Common); err != nil {
			return err
		}
		v.report.Files = append(v.report.Files, FileReport{
			File: dfile, Role: d.Name, Delegator: role, Version: m.Signed.Version, Expires: m.Signed.Expires.Time(),
			Checks: []SignatureCheck{{By: file, Threshold: d.Threshold, Signers: signers}},
		})
		if again {
			// Reached before through another delegator: checked against
			// this one's keys too, but not walked twice.
			continue
		}
		inner := append(scope[:len(scope):len(scope)], d)
		if err := outside(m.Signed.Targets, inner); err != nil {
			return &VerifyError{File: dfile, Role: d.Name, Err: err}
		}
		if err := v.delegations(dfile, d.Name, &m.Signed, inner); err != nil {
			return err
		}
	}
	return nil
}

// outside returns an error for the first target (in sorted order) that a
// delegation in scope does not cover.
func outside(targets map[string]TargetFile, scope []*DelegatedRole) error {
	var bad []string
	for p := range targets {
		if d := Outside(p, scope...); d != nil {
			bad = append(bad, p+" (not in the delegation to "+d.Name+")")
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	more := ""
	if len(bad) > 1 {
		more = fmt.Sprintf(" and %d more", len(bad)-1)
	}
	return fmt.Errorf("target %s%s: %w", bad[0], more, ErrDelegation)
}

// metadata converts a parsed bin to targets metadata for verification.
func (b *Bin) metadata() *Metadata[Targets] {
	t := Targets{
		Common:  Common{Type: RoleTargets, SpecVersion: b.SpecVersion, Version: b.Version, Expires: b.Expires},
		Targets: make(map[string]TargetFile, len(b.Targets)),
	}
	for _, bt := range b.Targets {
		t.Targets[bt.Path] = TargetFile{Length: bt.Length, Hashes: map[string]string{"sha256": hex.EncodeToString(bt.SHA256[:])}}
	}
	return &Metadata[Targets]{Signed: t, Signatures: b.Signatures}
}
