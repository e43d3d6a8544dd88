package ceremony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// Renewal: a short ceremony that re-signs root, targets or an empty
// stable with their current keys, version+1 and a new expiry, changing
// nothing else, so that an unchanged repository never expires by
// accident (docs/runbook-incident.md, "Renewal").

// Errors of renewal and rotation; check them with errors.Is.
var (
	// ErrRenewRole is a role renewal does not handle.
	ErrRenewRole = errors.New("not a role renewal re-signs")
	// ErrRenewStableBins is a stable that delegates to bins: the bins'
	// keys existed only for the ceremony that signed them, so only a
	// stable signing can renew them.
	ErrRenewStableBins = errors.New("stable delegates to bins whose keys no longer exist: renew it with a stable signing ('keyceremony stable sign'), which re-signs every bin")
	// ErrTooFewKeyholders means fewer of a role's keys are on the
	// connected devices than its threshold.
	ErrTooFewKeyholders = errors.New("fewer of the role's keys present than its threshold")
)

// RenewalChecklist and RotationChecklist are the names, on a renewal's
// and a rotation's media, of the operators' checklist: their presence is
// how Audit tells these media from others.
const (
	RenewalChecklist  = "renewal-checklist.md"
	RotationChecklist = "rotation-checklist.md"
)

// RenewableRoles are the roles Renewal re-signs.
var RenewableRoles = []string{tuf.RoleRoot, tuf.RoleTargets, stableset.StableRole}

// Renewal re-signs one offline role with its current keys.
type Renewal struct {
	// Root is the trusted root; the root chain and targets in Published
	// are verified from it.
	Root *tuf.Metadata[tuf.Root]
	// Published holds the currently published metadata in metadata/.
	Published string
	// Role is root, targets or stable.
	Role string
	// ExpiresDays is the role's new lifetime, from the configuration.
	ExpiresDays int
	Devices     map[uint32]hsm.Device
	PIN         PINSource
	Now         time.Time
	Show        io.Writer
	Version     string
}

// RenewalResult is what a renewal wrote.
type RenewalResult struct {
	Role       string
	Previous   int64
	Version    int64
	Expires    tuf.Expiry
	File       string // metadata/N.role.json on the media
	Signers    []string
	Transcript [32]byte
}

// current is the published state a renewal or rotation starts from,
// verified from the trusted root.
type current struct {
	root    *tuf.Metadata[tuf.Root]
	targets *tuf.Metadata[tuf.Targets]
	stable  *tuf.Metadata[tuf.Targets]
}

func loadCurrent(trusted *tuf.Metadata[tuf.Root], published string) (*current, error) {
	if _, err := refuseMarked(published, "the published directory", RoleOutput); err != nil {
		return nil, err
	}
	md := filepath.Join(published, "metadata")
	root, targets, err := trustedTargets(trusted, md)
	if err != nil {
		return nil, err
	}
	c := &current{root: root, targets: targets}
	if by, err := targets.Signed.DelegateKeys(stableset.StableRole); err == nil {
		if st, _, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by); err == nil {
			c.stable = st
		} else if !errors.Is(err, tuf.ErrNoVersion) {
			return nil, err
		}
	}
	return c, nil
}

// roleSigners finds, on the connected devices, the keys among ids (less
// those in skip) and returns signers for them, sorted by key id. Fewer
// than threshold is ErrTooFewKeyholders.
func roleSigners(sess *session, role string, ids []string, threshold int, skip map[string]bool) ([]keys.Signer, error) {
	want := map[string]bool{}
	for _, id := range ids {
		if !skip[id] {
			want[id] = true
		}
	}
	out, err := deviceSigners(sess, want, nil)
	if err != nil {
		return nil, err
	}
	if len(out) < threshold {
		return nil, fmt.Errorf("%d of the %s role's keys found on the %d connected devices, threshold %d: %w", len(out), role, len(sess.devices), threshold, ErrTooFewKeyholders)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key().ID() < out[j].Key().ID() })
	return out, nil
}

// renewed returns a copy of m with only version and expiry changed.
func renewed[T tuf.Signed](m *tuf.Metadata[T], version int64, expires time.Time) (*tuf.Metadata[T], error) {
	b, err := json.Marshal(m.Signed)
	if err != nil {
		return nil, err
	}
	var s T
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	c := commonPtr(&s)
	c.Version, c.Expires = version, tuf.NewExpiry(expires)
	return &tuf.Metadata[T]{Signed: s, Signatures: []tuf.Signature{}}, nil
}

func commonPtr[T tuf.Signed](s *T) *tuf.Common {
	switch v := any(s).(type) {
	case *tuf.Root:
		return &v.Common
	case *tuf.Targets:
		return &v.Common
	case *tuf.Snapshot:
		return &v.Common
	case *tuf.Timestamp:
		return &v.Common
	}
	panic("unreachable")
}

// OnlyVersionAndExpiry reports whether b is a with nothing changed but
// its version and expiry (their signed bytes compared).
func OnlyVersionAndExpiry[T tuf.Signed](a, b *tuf.Metadata[T]) (bool, error) {
	cb := commonPtr(&b.Signed)
	c, err := renewed(a, cb.Version, cb.Expires.Time())
	if err != nil {
		return false, err
	}
	x, err := c.SignedBytes()
	if err != nil {
		return false, err
	}
	y, err := b.SignedBytes()
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

// Run renews the role and writes, into the new directory outDir:
// metadata/N.<role>.json, the operators' checklist and the transcript;
// the directory appears only when everything was written, read back and
// verified.
func (r *Renewal) Run(outDir string) (*RenewalResult, error) {
	known := false
	for _, n := range RenewableRoles {
		known = known || n == r.Role
	}
	if !known {
		return nil, fmt.Errorf("role %q (renewable: %s): %w", r.Role, strings.Join(RenewableRoles, ", "), ErrRenewRole)
	}
	if r.ExpiresDays < 1 || r.ExpiresDays > 3660 {
		return nil, fmt.Errorf("expires_days.%s: %d days: must be between 1 and 3660: %w", r.Role, r.ExpiresDays, ErrConfig)
	}
	cur, err := loadCurrent(r.Root, r.Published)
	if err != nil {
		return nil, err
	}
	out, tr, err := newMedium(outDir, MediumRenewal, r.Now, r.Show)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	defer tr.Close()
	sess := &session{devices: r.Devices, pin: r.PIN, pins: map[uint32]string{}}
	expires := r.Now.AddDate(0, 0, r.ExpiresDays)

	var (
		data     []byte
		prevV, v int64
		signers  []keys.Signer
		check    func([]byte) error // verifies a renewed file's bytes
		signIDs  []string
		by       tuf.RoleKeys // the renewed role's keys
	)
	switch r.Role {
	case tuf.RoleRoot:
		by, _ = cur.root.Signed.RoleKeys(tuf.RoleRoot)
		prevV = cur.root.Signed.Version
	case tuf.RoleTargets:
		by, _ = cur.root.Signed.RoleKeys(tuf.RoleTargets)
		prevV = cur.targets.Signed.Version
	default:
		if cur.stable == nil {
			return nil, fmt.Errorf("%s/metadata holds no stable metadata: %w", r.Published, tuf.ErrMissing)
		}
		if d := cur.stable.Signed.Delegations; d != nil && len(d.Roles) > 0 {
			return nil, fmt.Errorf("stable v%d: %w", cur.stable.Signed.Version, ErrRenewStableBins)
		}
		by, _ = cur.targets.Signed.DelegateKeys(stableset.StableRole)
		prevV = cur.stable.Signed.Version
	}
	v = prevV + 1
	if err := tr.Record("renewal started", map[string]any{"role": r.Role, "previous_version": prevV, "tool_version": r.Version}); err != nil {
		return nil, err
	}
	if err := recordDevices(tr, r.Devices); err != nil {
		return nil, err
	}
	if signers, err = roleSigners(sess, r.Role, by.KeyIDs, by.Threshold, nil); err != nil {
		return nil, err
	}
	switch r.Role {
	case tuf.RoleRoot:
		check = func(b []byte) error { return checkRenewedRoot(cur.root, b, v) }
		data, err = renewOne(cur.root, v, expires, signers, check)
	case tuf.RoleTargets:
		check = func(b []byte) error { return checkRenewedTargets(cur.targets, by, b, v, tuf.RoleTargets) }
		data, err = renewOne(cur.targets, v, expires, signers, check)
	default:
		check = func(b []byte) error { return checkRenewedTargets(cur.stable, by, b, v, stableset.StableRole) }
		data, err = renewOne(cur.stable, v, expires, signers, check)
	}
	if err != nil {
		return nil, fmt.Errorf("self-check of the renewed %s: %w", r.Role, err)
	}
	for _, sg := range signers {
		signIDs = append(signIDs, sg.Key().ID())
	}
	if err := tr.Record(fmt.Sprintf("%s v%d signed", r.Role, v), map[string]any{"keyids": signIDs}); err != nil {
		return nil, err
	}
	file := fmt.Sprintf("metadata/%d.%s.json", v, r.Role)
	if err := out.WriteFile(file, data); err != nil {
		return nil, err
	}
	e := tuf.NewExpiry(expires)
	cl := renewalChecklist(r.Role, prevV, v, e, file)
	if err := out.WriteFile(RenewalChecklist, cl); err != nil {
		return nil, err
	}
	if err := tr.Record("renewal finished", map[string]any{
		"role": r.Role, "previous_version": prevV, "version": v, "expires": e.String(), "file": file, "sha256": sha256Hex(data),
		"checklist_sha256": sha256Hex(cl),
	}); err != nil {
		return nil, err
	}
	end := &journalEnd{ceremony: CeremonyRenewal, signers: signers, by: []tuf.RoleKeys{by}}
	if err := commitMedium(out, tr, r.Show, end, func(dir string) error {
		return readBackRenewal(dir, map[string][]byte{file: data, RenewalChecklist: cl}, func() error { return check(data) })
	}); err != nil {
		return nil, err
	}
	return &RenewalResult{Role: r.Role, Previous: prevV, Version: v, Expires: e, File: file, Signers: signIDs, Transcript: tr.Digest()}, nil
}

// renewOne signs a copy of old with only version and expiry changed,
// checks the file it makes (check) and that nothing else changed, and
// returns the file.
func renewOne[T tuf.Signed](old *tuf.Metadata[T], version int64, expires time.Time, signers []keys.Signer, check func([]byte) error) ([]byte, error) {
	m, err := renewed(old, version, expires)
	if err != nil {
		return nil, err
	}
	if err := m.Sign(signers...); err != nil {
		return nil, err
	}
	same, err := OnlyVersionAndExpiry(old, m)
	if err != nil {
		return nil, err
	}
	if !same {
		return nil, fmt.Errorf("it differs from version %d in more than version and expires: %w", commonPtr(&old.Signed).Version, ErrMediumContent)
	}
	data, err := m.MarshalFile()
	if err != nil {
		return nil, err
	}
	return data, check(data)
}

// checkRenewedRoot loads a new root file and checks it as a client
// would: version old+1, signed by the old root's threshold and by its own.
func checkRenewedRoot(old *tuf.Metadata[tuf.Root], b []byte, version int64) error {
	name := fmt.Sprintf("%d.root.json", version)
	m, err := tuf.Load[tuf.Root](b, name)
	if err != nil {
		return err
	}
	if m.Signed.Version != version {
		return fmt.Errorf("%s: version %d: %w", name, m.Signed.Version, tuf.ErrVersion)
	}
	msg, err := m.SignedBytes()
	if err != nil {
		return err
	}
	if err := old.Signed.VerifyRole(tuf.RoleRoot, msg, m.Signatures); err != nil {
		return fmt.Errorf("%s, checked against root v%d: %w", name, old.Signed.Version, err)
	}
	if err := m.Signed.VerifyRole(tuf.RoleRoot, msg, m.Signatures); err != nil {
		return fmt.Errorf("%s, checked against itself: %w", name, err)
	}
	return nil
}

// checkRenewedTargets loads a targets-typed file and checks its version
// and its signatures against by.
func checkRenewedTargets(old *tuf.Metadata[tuf.Targets], by tuf.RoleKeys, b []byte, version int64, role string) error {
	name := fmt.Sprintf("%d.%s.json", version, role)
	m, err := tuf.Load[tuf.Targets](b, name)
	if err != nil {
		return err
	}
	if m.Signed.Version != version {
		return fmt.Errorf("%s: version %d: %w", name, m.Signed.Version, tuf.ErrVersion)
	}
	msg, err := m.SignedBytes()
	if err != nil {
		return err
	}
	if _, err := by.Verify(msg, m.Signatures); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if same, err := OnlyVersionAndExpiry(old, m); err != nil || !same {
		return fmt.Errorf("%s differs from version %d in more than version and expires: %w", name, old.Signed.Version, ErrMediumContent)
	}
	return nil
}

func recordDevices(tr *Transcript, devs map[uint32]hsm.Device) error {
	serials := make([]uint32, 0, len(devs))
	for s := range devs {
		serials = append(serials, s)
	}
	sort.Slice(serials, func(i, j int) bool { return serials[i] < serials[j] })
	for _, s := range serials {
		info := devs[s].Info()
		if err := tr.Record("device connected", map[string]any{"serial": info.Serial, "kind": info.Kind, "firmware": info.Firmware, "form_factor": info.FormFactor, "insecure": info.Insecure}); err != nil {
			return err
		}
	}
	return nil
}

// readBackRenewal reads the media in dir back: every file of want holds
// what was signed, check (if set) passes, and the transcript verifies.
func readBackRenewal(dir string, want map[string][]byte, check func() error) error {
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		if !bytes.Equal(b, want[name]) {
			return fmt.Errorf("%s differs from what was signed: %w", name, ErrMediumContent)
		}
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	tb, err := os.ReadFile(filepath.Join(dir, "transcript.jsonl"))
	if err != nil {
		return err
	}
	_, n, err := VerifyTranscript(bytes.NewReader(tb), "transcript.jsonl")
	if err != nil {
		return err
	}
	// A hash chain verifies any prefix: the transcript must also reach
	// the ceremony's final entry.
	lines := bytes.Split(bytes.TrimSuffix(tb, []byte("\n")), []byte("\n"))
	var last TranscriptEntry
	if err := strictjson.DecodeLine(lines[len(lines)-1], "transcript.jsonl", n, &last); err != nil {
		return fmt.Errorf("%w: %w", err, ErrTranscript)
	}
	if !strings.HasSuffix(last.Step, " finished") {
		return fmt.Errorf("transcript.jsonl:%d: the last step is %q, not the ceremony's end (the transcript is cut): %w", n, last.Step, ErrTranscript)
	}
	return nil
}

func renewalChecklist(role string, prev, v int64, e tuf.Expiry, file string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Renewal of %s: version %d to %d\n\n", role, prev, v)
	fmt.Fprintf(&b, "%s v%d changes nothing but its version and its expiry, now %s.\n\n", role, v, e)
	b.WriteString("For the repository's operators, in this order:\n\n")
	b.WriteString("1. Verify this medium from the trusted root, against the metadata it renewed:\n")
	b.WriteString("   `keyceremony verify --root 1.root.json --previous PUBLISHED THIS-MEDIUM`.\n")
	switch role {
	case tuf.RoleRoot:
		fmt.Fprintf(&b, "2. Copy `%s` into the repository's metadata directory as it is. Keep every older N.root.json: clients walk the chain one version at a time.\n", file)
		b.WriteString("3. Nothing else needs re-signing: snapshot and timestamp do not list root.\n")
	case tuf.RoleTargets:
		fmt.Fprintf(&b, "2. Copy `%s` into the repository's metadata directory as it is.\n", file)
		fmt.Fprintf(&b, "3. Sign a new snapshot listing targets.json at version %d, then a new timestamp naming that snapshot.\n", v)
	default:
		fmt.Fprintf(&b, "2. Copy `%s` into the repository's metadata directory as it is.\n", file)
		fmt.Fprintf(&b, "3. Sign a new snapshot listing stable.json at version %d, then a new timestamp naming that snapshot.\n", v)
	}
	b.WriteString("4. Publish, then fetch the repository with a TUF client that trusts the old root and check that it refreshes.\n")
	b.WriteString("5. Nothing is revoked: the keys are the same.\n")
	return []byte(b.String())
}

// RenewOptions are a renewal's inputs by name.
type RenewOptions struct {
	// Role is root, targets or stable.
	Role string
	// Root is the trusted root file.
	Root string
	// Published is the directory with the published metadata/.
	Published string
	// Config is the bootstrap configuration: its expires_days give the
	// role's new lifetime.
	Config string
	// Media is the new output directory.
	Media   string
	Devices DeviceOptions
	Now     time.Time
	Show    io.Writer
	Version string
}

// RunRenew loads the trusted root and the configuration, opens the
// devices and renews the role into o.Media.
func RunRenew(o RenewOptions) (*RenewalResult, error) {
	root, cfg, devs, err := offlineInputs(o.Root, o.Config, o.Media, o.Devices)
	if err != nil {
		return nil, err
	}
	defer devs.Close()
	days := map[string]int{tuf.RoleRoot: cfg.ExpiresDays.Root, tuf.RoleTargets: cfg.ExpiresDays.Targets, stableset.StableRole: cfg.ExpiresDays.Stable}
	r := &Renewal{Root: root, Published: o.Published, Role: o.Role, ExpiresDays: days[o.Role], Devices: devs.BySerial, PIN: devs.PIN, Now: o.Now, Show: o.Show, Version: o.Version}
	return r.Run(o.Media)
}
