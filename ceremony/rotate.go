package ceremony

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// Rotation: after a root keyholder's device is lost or its key
// compromised, root vN+1 drops that key and adds a new one generated and
// attested on the replacement device, signed by the old root's threshold
// (without the revoked key) and by the new root's, as TUF's client
// workflow (5.3.4) requires; docs/runbook-incident.md, "A root
// keyholder's device is lost or compromised".

// Errors of rotation; check them with errors.Is.
var (
	// ErrNotRootKey is a key to replace that the current root does not
	// list as a root key.
	ErrNotRootKey = errors.New("not a key of the current root")
	// ErrNotRoleKey is a key to replace that the published metadata does
	// not give the role.
	ErrNotRoleKey = errors.New("not a key of the role")
	// ErrReplacementDevice is a replacement device that cannot take the
	// new key: it already holds a root key, or it is the device whose key
	// is revoked.
	ErrReplacementDevice = errors.New("the replacement device cannot hold the new key")
)

// Scenarios of root key rotations, as the transcript names them: a root
// key replaced (a device lost or compromised), and a root key added (a
// keyholder joins with a new device).
const (
	ScenarioRootKeyReplaced = "root-key-replaced"
	ScenarioRootKeyAdded    = "root-key-added"
)

// ErrAddAndReplace is a root rotation told both to add a key and to
// replace one, or neither.
var ErrAddAndReplace = errors.New("a root rotation either replaces a key or adds one")

// RootRotation replaces one root key.
type RootRotation struct {
	// Root is the trusted root; the root chain in Published is verified
	// from it.
	Root *tuf.Metadata[tuf.Root]
	// Published holds the currently published metadata in metadata/.
	Published string
	// Config gives the key policy and the new root's lifetime
	// (expires_days.root).
	Config *Config
	// Replace is the key id of the root key revoked; empty with Add.
	Replace string
	// Add adds the new key and revokes none (a keyholder joins): root
	// vN+1 lists every key of vN and the new one, with vN's threshold.
	Add bool
	// New is where the new root key is generated.
	New KeySpec
	// Reason is what happened ("lost", "compromised", "keyholder left"),
	// recorded in the transcript and the checklist.
	Reason  string
	Devices map[uint32]hsm.Device
	PIN     PINSource
	// Roots are the attestation roots the new key's attestation must
	// chain to.
	Roots                 *x509.CertPool
	AllowAffectedFirmware bool
	Now                   time.Time
	Show                  io.Writer
	Version               string
}

// RotationResult is what a rotation wrote.
type RotationResult struct {
	Previous, Version int64
	File              string
	Revoked, Added    []string
	Signers           []string
	Key               GeneratedKey
	Transcript        [32]byte
	checklist         []byte
}

// Run rotates the root key into the new directory outDir: metadata/N.root.json,
// keys/ (the new key and its attestation chain), rotation-checklist.md
// and transcript.jsonl, read back and verified. Everything that can be
// checked is checked before the new key is generated: the key to replace
// is a root key; the old root's threshold is present without it; the
// replacement slot is empty, on a device that holds no other root key,
// whose attestation chains to Roots. A failure after the key was
// generated is an *OrphanKeysError naming the slot.
func (r *RootRotation) Run(outDir string) (*RotationResult, error) {
	cfg := r.Config
	opts, err := cfg.KeyOptions()
	if err != nil {
		return nil, err
	}
	cur, err := loadCurrent(r.Root, r.Published)
	if err != nil {
		return nil, err
	}
	old := cur.root
	rl := old.Signed.Roles[tuf.RoleRoot]
	if r.Add != (r.Replace == "") {
		return nil, fmt.Errorf("add %v, replace %q: %w", r.Add, r.Replace, ErrAddAndReplace)
	}
	if !r.Add && !slices.Contains(rl.KeyIDs, r.Replace) {
		ids := append([]string(nil), rl.KeyIDs...)
		sort.Strings(ids)
		return nil, fmt.Errorf("key %q: root v%d's root keys are %s: %w", r.Replace, old.Signed.Version, strings.Join(ids, ", "), ErrNotRootKey)
	}
	slot, err := hsm.ParseSlot(r.New.Slot)
	if err != nil {
		return nil, fmt.Errorf("the new key's slot: %w", err)
	}
	out, tr, err := newMedium(outDir, MediumRotation, r.Now, r.Show)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	defer tr.Close()
	s := &session{devices: r.Devices, pin: r.PIN, pins: map[uint32]string{}}
	res, end, err := r.run(out, tr, s, cur, slot, opts)
	if err != nil {
		return nil, s.orphaned(r.Show, err)
	}
	err = commitMedium(out, tr, r.Show, end, func(dir string) error {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(res.File)))
		if err != nil {
			return err
		}
		return readBackRenewal(dir, map[string][]byte{res.File: data, RotationChecklist: res.checklist}, func() error { return checkRotatedRoot(old, data, res.Version, r.Replace) })
	})
	if err != nil {
		return nil, s.orphaned(r.Show, err)
	}
	res.Transcript = tr.Digest()
	return res, nil
}

func (r *RootRotation) run(out *outdir.Dir, tr *Transcript, s *session, cur *current, slot hsm.Slot, opts hsm.KeyOptions) (*RotationResult, *journalEnd, error) {
	fail := func(err error) (*RotationResult, *journalEnd, error) { return nil, nil, err }
	old := cur.root
	rl := old.Signed.Roles[tuf.RoleRoot]
	prevV, v := old.Signed.Version, old.Signed.Version+1
	if err := tr.Record("rotation started", map[string]any{
		"scenario": r.scenario(), "reason": r.Reason, "previous_version": prevV, "revoke": r.Replace,
		"new_device": r.New.Device, "new_slot": slot.String(), "allow_affected_firmware": r.AllowAffectedFirmware, "tool_version": r.Version,
	}); err != nil {
		return fail(err)
	}
	if err := recordDevices(tr, r.Devices); err != nil {
		return fail(err)
	}
	// The old threshold, without the revoked key: a rotation that needs
	// the lost or compromised key cannot be made.
	oldSigners, err := roleSigners(s, tuf.RoleRoot, rl.KeyIDs, rl.Threshold, map[string]bool{r.Replace: true})
	if err != nil {
		return fail(fmt.Errorf("the old root's threshold without the revoked key: %w", err))
	}
	if err := checkReplacement(s, r.New.Device, slot, tuf.RoleRoot, rl.KeyIDs, r.Roots, r.Now); err != nil {
		return fail(err)
	}
	if err := tr.Record("pre-flight passed", map[string]any{"old_threshold_present": len(oldSigners)}); err != nil {
		return fail(err)
	}

	b := &Bootstrap{Config: r.Config, Devices: r.Devices, PIN: r.PIN, Roots: r.Roots, Now: r.Now, Show: r.Show, AllowAffectedFirmware: r.AllowAffectedFirmware}
	g, err := b.generate(s, tuf.RoleRoot, r.New, opts)
	if err != nil {
		return fail(err)
	}
	if err := tr.Record("key generated and attested", map[string]any{
		"role": tuf.RoleRoot, "device": g.Device.Serial, "slot": g.Slot.String(), "keyid": g.Key.ID(),
		"pin_policy": g.Attested.PINPolicy, "touch_policy": g.Attested.TouchPolicy,
	}); err != nil {
		return fail(err)
	}
	if err := writeKey(out, g); err != nil {
		return fail(err)
	}

	m, err := renewed(old, v, r.Now.AddDate(0, 0, r.Config.ExpiresDays.Root))
	if err != nil {
		return fail(err)
	}
	nr := m.Signed.Roles[tuf.RoleRoot]
	nr.KeyIDs = slices.DeleteFunc(nr.KeyIDs, func(id string) bool { return id == r.Replace })
	used := false
	for _, role := range m.Signed.Roles {
		used = used || slices.Contains(role.KeyIDs, r.Replace)
	}
	if !used {
		delete(m.Signed.Keys, r.Replace)
	}
	if err := m.Signed.AddKey(tuf.RoleRoot, g.Key); err != nil {
		return fail(err)
	}
	sort.Strings(nr.KeyIDs)
	newSigner, err := s.signer(r.New.Device, slot)
	if err != nil {
		return fail(err)
	}
	signers := append(append([]keys.Signer(nil), oldSigners...), newSigner)
	if err := m.Sign(signers...); err != nil {
		return fail(fmt.Errorf("signing root v%d: %w", v, err))
	}
	ids := make([]string, len(signers))
	for i, sg := range signers {
		ids[i] = sg.Key().ID()
	}
	if err := tr.Record(fmt.Sprintf("root v%d signed", v), map[string]any{"keyids": ids, "old_threshold": rl.Threshold, "new_threshold": nr.Threshold}); err != nil {
		return fail(err)
	}
	data, err := m.MarshalFile()
	if err != nil {
		return fail(err)
	}
	if err := checkRotatedRoot(old, data, v, r.Replace); err != nil {
		return fail(fmt.Errorf("self-check of root v%d: %w", v, err))
	}
	file := fmt.Sprintf("metadata/%d.root.json", v)
	if err := out.WriteFile(file, data); err != nil {
		return fail(err)
	}
	keyBase := fmt.Sprintf("keys/%s-%d-%s", g.Role, g.Device.Serial, g.Slot)
	cl := rootRotationChecklist(r, prevV, v, nr.Threshold, file, g, keyBase)
	if err := out.WriteFile(RotationChecklist, cl); err != nil {
		return fail(err)
	}
	if err := tr.Record("rotation finished", map[string]any{
		"scenario": r.scenario(), "previous_version": prevV, "version": v, "file": file, "sha256": sha256Hex(data),
		"revoked": r.revoked(), "added": []string{g.Key.ID()}, "root_keyids": nr.KeyIDs, "root_threshold": nr.Threshold,
		"checklist_sha256": sha256Hex(cl),
	}); err != nil {
		return fail(err)
	}
	end, err := rootRotationEnd(old, m, r.Config.Repository, signers)
	if err != nil {
		return fail(err)
	}
	return &RotationResult{Previous: prevV, Version: v, File: file, Revoked: r.revoked(), Added: []string{g.Key.ID()}, Signers: ids, Key: *g, checklist: cl}, end, nil
}

// rootRotationEnd is who signs the end of a root rotation's journal: the
// keys that signed the new root, counted against the old root's threshold
// without the keys the new root drops, and against the new root's own
// threshold (as TUF counts the new root itself).
func rootRotationEnd(old, m *tuf.Metadata[tuf.Root], repository string, signers []keys.Signer) (*journalEnd, error) {
	by, err := rotatedRootKeys(old, m)
	if err != nil {
		return nil, err
	}
	return &journalEnd{ceremony: CeremonyRotation, repository: repository, signers: signers, by: by}, nil
}

// rotatedRootKeys are the two key sets a root rotation's end must meet:
// the old root's root keys that the new root keeps, with the old
// threshold, and the new root's root keys, with the new threshold.
func rotatedRootKeys(old, m *tuf.Metadata[tuf.Root]) ([]tuf.RoleKeys, error) {
	ob, err := old.Signed.RoleKeys(tuf.RoleRoot)
	if err != nil {
		return nil, err
	}
	nb, err := m.Signed.RoleKeys(tuf.RoleRoot)
	if err != nil {
		return nil, err
	}
	n := len(ob.KeyIDs)
	ob.KeyIDs = slices.DeleteFunc(slices.Clone(ob.KeyIDs), func(id string) bool { return !slices.Contains(nb.KeyIDs, id) })
	ob.Role = fmt.Sprintf("root v%d", old.Signed.Version)
	if len(ob.KeyIDs) < n {
		ob.Role += " without the revoked keys"
	}
	nb.Role = fmt.Sprintf("root v%d", m.Signed.Version)
	return []tuf.RoleKeys{ob, nb}, nil
}

func (r *RootRotation) scenario() string {
	if r.Add {
		return ScenarioRootKeyAdded
	}
	return ScenarioRootKeyReplaced
}

// revoked is the root keys the rotation revokes (none when it adds).
func (r *RootRotation) revoked() []string {
	if r.Add {
		return []string{}
	}
	return []string{r.Replace}
}

// checkReplacement checks, before a key is generated, that the slot of
// the replacement device is empty (unless the device was opened to
// replace keys), that the device holds no key of the role (ids), and
// that its attestation certificate chains to roots at now.
func checkReplacement(s *session, serial uint32, slot hsm.Slot, role string, ids []string, roots *x509.CertPool, now time.Time) error {
	dev, err := s.device(serial)
	if err != nil {
		return err
	}
	info := dev.Info()
	for sl := hsm.Slot(0x80); sl <= 0x9e; sl++ {
		if !sl.Valid() {
			continue
		}
		if pub, err := dev.PublicKey(sl); err == nil {
			if k, err := keys.FromPublicKey(pub); err == nil && slices.Contains(ids, k.ID()) {
				return fmt.Errorf("%s holds %s key %s in slot %s: a threshold needs distinct devices: %w", info, role, k.ID(), sl, ErrReplacementDevice)
			}
		}
	}
	if kr, ok := dev.(hsm.KeyReplacer); !ok || !kr.ReplacesKeys() {
		if _, err := dev.PublicKey(slot); err == nil {
			return fmt.Errorf("the new %s key's slot %s of %s: %w", role, slot, info, hsm.ErrSlotOccupied)
		} else if !errors.Is(err, hsm.ErrSlotEmpty) {
			return fmt.Errorf("reading slot %s of %s: %w", slot, info, err)
		}
	}
	dc, ok := dev.(hsm.DeviceCertifier)
	if !ok {
		return fmt.Errorf("%s: %w", info, ErrNoDeviceCertificate)
	}
	f9, above, err := dc.DeviceCertificate()
	if err != nil {
		return fmt.Errorf("reading the attestation certificate of %s: %w", info, err)
	}
	if _, err := keys.AttestationPathAt(f9, above, roots, now); err != nil {
		return fmt.Errorf("%s: %w: %w", info, ErrAttestationRoots, err)
	}
	return nil
}

// checkRotatedRoot loads a new root file and checks it as a client would
// (checkRenewedRoot: the old root's threshold and its own) and that it no
// longer lists the revoked key for any role.
func checkRotatedRoot(old *tuf.Metadata[tuf.Root], b []byte, version int64, revoked string) error {
	if err := checkRenewedRoot(old, b, version); err != nil {
		return err
	}
	m, err := tuf.Load[tuf.Root](b, "")
	if err != nil {
		return err
	}
	for name, role := range m.Signed.Roles {
		if slices.Contains(role.KeyIDs, revoked) {
			return fmt.Errorf("%d.root.json still lists the revoked key %s for %s: %w", version, revoked, name, ErrMediumContent)
		}
	}
	return nil
}

func rootRotationChecklist(r *RootRotation, prev, v int64, threshold int, file string, g *GeneratedKey, keyBase string) []byte {
	var b strings.Builder
	if r.Add {
		fmt.Fprintf(&b, "# Rotation: root key %s added (a keyholder joins)\n\n", g.Key.ID())
	} else {
		fmt.Fprintf(&b, "# Rotation: root key %s revoked\n\n", r.Replace)
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n\n", r.Reason)
	}
	if r.Add {
		fmt.Fprintf(&b, "Root v%d keeps every root key of v%d and adds key %s, generated and attested in slot %s of device %d; the threshold stays %d. ", v, prev, g.Key.ID(), g.Slot, g.Device.Serial, threshold)
		fmt.Fprintf(&b, "It is signed by the threshold of root v%d and by its own, which the new key is part of.\n\n", prev)
	} else {
		fmt.Fprintf(&b, "Root v%d replaces root key %s with key %s, generated and attested in slot %s of device %d. ", v, r.Replace, g.Key.ID(), g.Slot, g.Device.Serial)
		fmt.Fprintf(&b, "It is signed by the threshold of root v%d without the revoked key, and by its own threshold.\n\n", prev)
	}
	b.WriteString("For the repository's operators, in this order:\n\n")
	b.WriteString("1. Verify this medium from the trusted root, against the metadata it started from:\n")
	b.WriteString("   `keyceremony verify --root 1.root.json --previous PUBLISHED THIS-MEDIUM` (it checks the new key's attestation too: add --soft-ca or --attestation-ca only for a rehearsal).\n")
	fmt.Fprintf(&b, "2. Copy `%s` into the repository's metadata directory as it is, beside every older N.root.json (clients walk the chain one version at a time; never delete one).\n", file)
	if r.Add {
		b.WriteString("3. Nothing else needs re-signing: targets, snapshot and timestamp keep their keys. Publish it; nothing is revoked, so there is no hurry beyond the next ceremony, which needs the new keyholder.\n")
		b.WriteString("4. Fetch the repository with a TUF client that trusts the old root and check that it updates to the new root.\n")
		fmt.Fprintf(&b, "5. In the ceremony configuration, add device %d slot %s to root's keys and name its keyholder (`keyholders.%d`); file `%s.pub.json` and `%s.attestation.pem` with the bootstrap media. The next run sheet names the new keyholder.\n", g.Device.Serial, g.Slot, g.Device.Serial, keyBase, keyBase)
		fmt.Fprintf(&b, "6. Root v%d's threshold counts the new key like any other: raising the threshold is its own rotation, once every keyholder has signed with the new root.\n", v)
		return []byte(b.String())
	}
	b.WriteString("3. Nothing else needs re-signing: targets, snapshot and timestamp keep their keys. Publish at once: until clients fetch the new root, the revoked key still counts towards the old threshold.\n")
	b.WriteString("4. Fetch the repository with a TUF client that trusts the old root and check that it updates to the new root.\n")
	fmt.Fprintf(&b, "5. Revoke: if the old device turns up, clear its root slot; record its serial as retired. Replace the root entry of the lost device in the ceremony configuration with device %d slot %s, and file `%s.pub.json` and `%s.attestation.pem` with the bootstrap media.\n", g.Device.Serial, g.Slot, keyBase, keyBase)
	fmt.Fprintf(&b, "6. Keep the old root's threshold in mind: root v%d's threshold still counts the remaining old keys; if more than one key is in doubt, rotate each.\n", v)
	return []byte(b.String())
}

// RotateRootOptions are a root key rotation's inputs by name.
type RotateRootOptions struct {
	Root, Published, Config, Media string
	Replace                        string
	Add                            bool
	New                            KeySpec
	Reason                         string
	Devices                        DeviceOptions
	AllowAffectedFirmware          bool
	Now                            time.Time
	Show                           io.Writer
	Version                        string
}

// RunRotateRoot loads the trusted root and the configuration, opens the
// devices and rotates the root key into o.Media.
func RunRotateRoot(o RotateRootOptions) (*RotationResult, error) {
	root, cfg, devs, err := offlineInputs(o.Root, o.Config, o.Media, o.Devices)
	if err != nil {
		return nil, err
	}
	defer devs.Close()
	r := &RootRotation{Root: root, Published: o.Published, Config: cfg, Replace: o.Replace, Add: o.Add, New: o.New, Reason: o.Reason,
		Devices: devs.BySerial, PIN: devs.PIN, Roots: devs.Roots, AllowAffectedFirmware: o.AllowAffectedFirmware, Now: o.Now, Show: o.Show, Version: o.Version}
	return r.Run(o.Media)
}

// ScenarioOnlineKeysReplaced names, in a rotation's transcript, the
// replacement of the repository's online keys after a compromise.
const ScenarioOnlineKeysReplaced = "online-keys-replaced"

// ErrOnlineKeyKept is an online role whose new keys include a key it had:
// after a repository compromise the attacker may hold every online key.
var ErrOnlineKeyKept = errors.New("an online key the attacker may hold is kept")

// OnlineRotation replaces the repository's online keys after a
// compromise of its servers: root vN+1 gives snapshot and timestamp new
// keys, targets vM+1 delegates unstable to a new key; everything else
// stays. Clients that fetch root vN+1 then refuse every snapshot,
// timestamp and unstable the old keys signed.
type OnlineRotation struct {
	// Root is the trusted root; the root chain and targets in Published
	// are verified from it.
	Root      *tuf.Metadata[tuf.Root]
	Published string
	// Export is the repository's current export (optional): it is
	// compared against the last stable set the ceremony signed (the
	// ledger in Published), PEP 458's recovery step, and the comparison
	// is written to the medium as RecoveryComparison.
	Export string
	// Config holds the new online public keys (online) and the new
	// expiries of root and targets (expires_days).
	Config  *Config
	Reason  string
	Devices map[uint32]hsm.Device
	PIN     PINSource
	Now     time.Time
	Show    io.Writer
	Version string
}

// OnlineRotationResult is what an online key rotation wrote.
type OnlineRotationResult struct {
	RootVersion, TargetsVersion int64
	RootFile, TargetsFile       string
	Revoked, Added              []string
	// Recovery is the comparison of Export against the last stable set
	// (nil without Export).
	Recovery   *stableset.Recovery
	Transcript [32]byte
}

// RecoveryComparison is the file of an online rotation's medium that
// lists every stable path the repository's export no longer carries as
// stable signed it (stableset.Recovery).
const RecoveryComparison = "recovery-comparison.txt"

// recoveryStep is the transcript step that records the comparison.
const recoveryStep = "export compared with the last stable set"

// compareRecovery compares the export file against the stable set
// published in published, trusted through targets.
func compareRecovery(targets *tuf.Metadata[tuf.Targets], published, exportFile string) (*stableset.Recovery, error) {
	d, ok := targets.Signed.Delegation(stableset.StableRole)
	if !ok {
		return nil, fmt.Errorf("targets v%d delegates to no stable role: %w", targets.Signed.Version, ErrNoTrustedTargets)
	}
	f, err := os.Open(exportFile)
	if err != nil {
		return nil, fmt.Errorf("reading the export: %w", err)
	}
	defer f.Close()
	return stableset.CompareRecovery(stableset.Config{Export: f, ExportName: exportFile, Published: published, StableDelegation: d, StableKeys: targets.Signed.Delegations.Keys})
}

// keyIDs returns the key ids of ks, sorted.
func keyIDs(ks []*keys.Key) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID()
	}
	sort.Strings(ids)
	return ids
}

// Run writes, into the new directory outDir, metadata/N.root.json and
// metadata/M.targets.json, rotation-checklist.md and transcript.jsonl,
// read back and verified. Every online role must get keys entirely new:
// one it had is refused (ErrOnlineKeyKept), as is a new online key that
// is an offline role's key.
func (r *OnlineRotation) Run(outDir string) (*OnlineRotationResult, error) {
	cur, err := loadCurrent(r.Root, r.Published)
	if err != nil {
		return nil, err
	}
	oldRoot, oldTargets := cur.root, cur.targets
	unstable, ok := oldTargets.Signed.Delegation("unstable")
	if !ok {
		return nil, fmt.Errorf("targets v%d delegates to no unstable role: %w", oldTargets.Signed.Version, ErrNoTrustedTargets)
	}
	old := map[string][]string{tuf.RoleSnapshot: oldRoot.Signed.Roles[tuf.RoleSnapshot].KeyIDs, tuf.RoleTimestamp: oldRoot.Signed.Roles[tuf.RoleTimestamp].KeyIDs, "unstable": unstable.KeyIDs}
	offline := map[string]string{}
	for _, id := range oldRoot.Signed.Roles[tuf.RoleRoot].KeyIDs {
		offline[id] = tuf.RoleRoot
	}
	for _, id := range oldRoot.Signed.Roles[tuf.RoleTargets].KeyIDs {
		offline[id] = tuf.RoleTargets
	}
	if d, ok := oldTargets.Signed.Delegation("stable"); ok {
		for _, id := range d.KeyIDs {
			offline[id] = "stable"
		}
	}
	var revoked, added []string
	for _, name := range OnlineRoles {
		o := r.Config.Online[name]
		for i, k := range o.Keys {
			id := k.ID()
			if slices.Contains(old[name], id) {
				return nil, fmt.Errorf("online.%s.keys[%d] (key id %s) is a key %s has now: %w", name, i, id, name, ErrOnlineKeyKept)
			}
			if role, ok := offline[id]; ok {
				return nil, fmt.Errorf("online.%s.keys[%d] (key id %s) is a %s key: an online key must not sign an offline role: %w", name, i, id, role, ErrConfig)
			}
			added = append(added, id)
		}
		revoked = append(revoked, old[name]...)
	}
	sort.Strings(revoked)
	revoked = slices.Compact(revoked)
	sort.Strings(added)
	added = slices.Compact(added)
	var rec *stableset.Recovery
	var recData []byte
	if r.Export != "" {
		if rec, err = compareRecovery(oldTargets, r.Published, r.Export); err != nil {
			return nil, fmt.Errorf("comparing the export with the last stable set: %w", err)
		}
		recData = rec.Marshal()
	}

	out, tr, err := newMedium(outDir, MediumRotation, r.Now, r.Show)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	defer tr.Close()
	s := &session{devices: r.Devices, pin: r.PIN, pins: map[uint32]string{}}
	rv, tv := oldRoot.Signed.Version+1, oldTargets.Signed.Version+1
	if err := tr.Record("rotation started", map[string]any{
		"scenario": ScenarioOnlineKeysReplaced, "reason": r.Reason, "previous_version": oldRoot.Signed.Version,
		"targets_previous_version": oldTargets.Signed.Version, "revoke": revoked, "tool_version": r.Version,
	}); err != nil {
		return nil, err
	}
	if err := recordDevices(tr, r.Devices); err != nil {
		return nil, err
	}
	rl := oldRoot.Signed.Roles[tuf.RoleRoot]
	rootSigners, err := roleSigners(s, tuf.RoleRoot, rl.KeyIDs, rl.Threshold, nil)
	if err != nil {
		return nil, err
	}
	tl := oldRoot.Signed.Roles[tuf.RoleTargets]
	targetsSigners, err := roleSigners(s, tuf.RoleTargets, tl.KeyIDs, tl.Threshold, nil)
	if err != nil {
		return nil, err
	}

	root, err := renewed(oldRoot, rv, r.Now.AddDate(0, 0, r.Config.ExpiresDays.Root))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{tuf.RoleSnapshot, tuf.RoleTimestamp} {
		o := r.Config.Online[name]
		root.Signed.Roles[name] = &tuf.Role{KeyIDs: []string{}, Threshold: o.Threshold}
		for _, k := range o.Keys {
			if err := root.Signed.AddKey(name, k); err != nil {
				return nil, err
			}
		}
	}
	pruneKeys(root.Signed.Keys, func(id string) bool {
		for _, role := range root.Signed.Roles {
			if slices.Contains(role.KeyIDs, id) {
				return true
			}
		}
		return false
	})
	targets, err := renewed(oldTargets, tv, r.Now.AddDate(0, 0, r.Config.ExpiresDays.Targets))
	if err != nil {
		return nil, err
	}
	d, _ := targets.Signed.Delegation("unstable")
	o := r.Config.Online["unstable"]
	d.KeyIDs, d.Threshold = keyIDs(o.Keys), o.Threshold
	for _, k := range o.Keys {
		targets.Signed.Delegations.Keys[k.ID()] = k
	}
	pruneKeys(targets.Signed.Delegations.Keys, func(id string) bool {
		for _, dr := range targets.Signed.Delegations.Roles {
			if slices.Contains(dr.KeyIDs, id) {
				return true
			}
		}
		return false
	})
	if err := tuf.CheckTopLayout(&targets.Signed); err != nil {
		return nil, fmt.Errorf("targets v%d: %w", tv, err)
	}
	if err := root.Sign(rootSigners...); err != nil {
		return nil, fmt.Errorf("signing root v%d: %w", rv, err)
	}
	if err := tr.Record(fmt.Sprintf("root v%d signed", rv), map[string]any{"keyids": keyIDsOf(rootSigners)}); err != nil {
		return nil, err
	}
	if err := targets.Sign(targetsSigners...); err != nil {
		return nil, fmt.Errorf("signing targets v%d: %w", tv, err)
	}
	if err := tr.Record(fmt.Sprintf("targets v%d signed", tv), map[string]any{"keyids": keyIDsOf(targetsSigners)}); err != nil {
		return nil, err
	}
	rootData, err := root.MarshalFile()
	if err != nil {
		return nil, err
	}
	targetsData, err := targets.MarshalFile()
	if err != nil {
		return nil, err
	}
	check := func(rb, tb []byte) error {
		if err := checkRenewedRoot(oldRoot, rb, rv); err != nil {
			return err
		}
		nr, err := tuf.Load[tuf.Root](rb, "")
		if err != nil {
			return err
		}
		by, _ := nr.Signed.RoleKeys(tuf.RoleTargets)
		nt, err := tuf.Load[tuf.Targets](tb, fmt.Sprintf("%d.targets.json", tv))
		if err != nil {
			return err
		}
		if _, err := verifiedBy(by, nt.SignedBytes, nt.Signatures); err != nil {
			return fmt.Errorf("%d.targets.json: %w", tv, err)
		}
		return nil
	}
	if err := check(rootData, targetsData); err != nil {
		return nil, fmt.Errorf("self-check: %w", err)
	}
	rootFile, targetsFile := fmt.Sprintf("metadata/%d.root.json", rv), fmt.Sprintf("metadata/%d.targets.json", tv)
	if err := out.WriteFile(rootFile, rootData); err != nil {
		return nil, err
	}
	if err := out.WriteFile(targetsFile, targetsData); err != nil {
		return nil, err
	}
	written := map[string][]byte{rootFile: rootData, targetsFile: targetsData}
	finished := map[string]any{
		"scenario": ScenarioOnlineKeysReplaced, "previous_version": oldRoot.Signed.Version, "version": rv, "file": rootFile, "sha256": sha256Hex(rootData),
		"targets_previous_version": oldTargets.Signed.Version, "targets_version": tv, "targets_file": targetsFile, "targets_sha256": sha256Hex(targetsData),
		"revoked": revoked, "added": added,
	}
	if rec != nil {
		if err := out.WriteFile(RecoveryComparison, recData); err != nil {
			return nil, err
		}
		written[RecoveryComparison] = recData
		finished["recovery_file"], finished["recovery_sha256"] = RecoveryComparison, sha256Hex(recData)
		if err := tr.Record(recoveryStep, map[string]any{
			"stable_version": rec.StableVersion, "ledger_sha256": hex.EncodeToString(rec.LedgerSHA256[:]), "export_sha256": hex.EncodeToString(rec.ExportSHA256[:]),
			"stable_paths": rec.Stable, "changed": rec.Count(stableset.RecoveryChanged), "missing": rec.Count(stableset.RecoveryMissing), "file": RecoveryComparison, "sha256": sha256Hex(recData),
		}); err != nil {
			return nil, err
		}
	}
	cl := onlineRotationChecklist(r.Reason, rootFile, targetsFile, tv, revoked, added, rec)
	if err := out.WriteFile(RotationChecklist, cl); err != nil {
		return nil, err
	}
	written[RotationChecklist], finished["checklist_sha256"] = cl, sha256Hex(cl)
	if err := tr.Record("rotation finished", finished); err != nil {
		return nil, err
	}
	// The root threshold authorised the rotation (root vN+1 names the new
	// keys; its root keys are the old root's): it signs the end.
	rootBy, err := oldRoot.Signed.RoleKeys(tuf.RoleRoot)
	if err != nil {
		return nil, err
	}
	end := &journalEnd{ceremony: CeremonyRotation, repository: r.Config.Repository, signers: rootSigners, by: []tuf.RoleKeys{rootBy}}
	err = commitMedium(out, tr, r.Show, end, func(dir string) error {
		return readBackRenewal(dir, written, func() error { return check(rootData, targetsData) })
	})
	if err != nil {
		return nil, err
	}
	return &OnlineRotationResult{RootVersion: rv, TargetsVersion: tv, RootFile: rootFile, TargetsFile: targetsFile, Revoked: revoked, Added: added, Recovery: rec, Transcript: tr.Digest()}, nil
}

// pruneKeys deletes every key of ks that used does not report in use.
func pruneKeys(ks map[string]*keys.Key, used func(id string) bool) {
	for id := range ks {
		if !used(id) {
			delete(ks, id)
		}
	}
}

func keyIDsOf(ss []keys.Signer) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.Key().ID()
	}
	return ids
}

func onlineRotationChecklist(reason, rootFile, targetsFile string, tv int64, revoked, added []string, rec *stableset.Recovery) []byte {
	var b strings.Builder
	b.WriteString("# Rotation: the repository's online keys replaced\n\n")
	if reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n\n", reason)
	}
	fmt.Fprintf(&b, "Revoked online keys (snapshot, timestamp, unstable): %s\n\nNew online keys: %s\n\n", strings.Join(revoked, ", "), strings.Join(added, ", "))
	b.WriteString("For the repository's operators, in this order:\n\n")
	b.WriteString("1. Keep the servers out of service until the compromise is understood; the old online private keys must be destroyed, and the new ones exist only on clean servers.\n")
	b.WriteString("2. Verify this medium from the trusted root, against the metadata it started from:\n")
	b.WriteString("   `keyceremony verify --root 1.root.json --previous PUBLISHED THIS-MEDIUM`.\n")
	fmt.Fprintf(&b, "3. Copy `%s` and `%s` into the repository's metadata directory as they are, beside every older root.\n", rootFile, targetsFile)
	b.WriteString("4. With the NEW keys only, sign: unstable (listing the repository's files again, from a listing you trust), then a snapshot listing ")
	fmt.Fprintf(&b, "targets.json at version %d and the new unstable, then a timestamp naming that snapshot. Give timestamp, snapshot and unstable versions above any the attacker may have published (the highest seen in your logs or CDN, plus one): a client that kept the attacker's versions refuses lower ones.\n", tv)
	b.WriteString("5. Publish the root first, then targets, unstable, snapshot, and the timestamp last.\n")
	b.WriteString("6. Fetch with a TUF client that trusts the old root: it must update to the new root and accept the new timestamp.\n")
	if rec == nil {
		b.WriteString("7. Compare what unstable listed while the attacker held the keys with the last stable set the ceremony signed (`keyceremony rotate online --export` does it); files that changed are suspect. Run the next stable ceremony soon: stable's entries were never exposed, new releases since the last ceremony were.\n")
		return []byte(b.String())
	}
	fmt.Fprintf(&b, "7. The repository's export was compared with stable version %d (%s): of %d stable paths, %d changed and %d missing. ", rec.StableVersion, RecoveryComparison, rec.Stable, rec.Count(stableset.RecoveryChanged), rec.Count(stableset.RecoveryMissing))
	b.WriteString("Restore each from a copy you trust before unstable lists it again; a changed file is the attacker's until proven otherwise. Run the next stable ceremony soon: stable's entries were never exposed, new releases since the last ceremony were.\n")
	for _, f := range rec.Findings {
		fmt.Fprintf(&b, "   - %s %s (stable: %d bytes, sha256 %x)\n", f.Finding, f.Path, f.StableLength, f.StableSHA256)
	}
	return []byte(b.String())
}

// RotateOnlineOptions are an online key rotation's inputs by name.
type RotateOnlineOptions struct {
	Root, Published, Config, Media string
	Export                         string // optional: the repository's current export, for the recovery comparison
	Reason                         string
	Devices                        DeviceOptions
	Now                            time.Time
	Show                           io.Writer
	Version                        string
}

// RunRotateOnline loads the trusted root and the configuration (with the
// new online keys), opens the devices and rotates into o.Media.
func RunRotateOnline(o RotateOnlineOptions) (*OnlineRotationResult, error) {
	root, cfg, devs, err := offlineInputs(o.Root, o.Config, o.Media, o.Devices)
	if err != nil {
		return nil, err
	}
	defer devs.Close()
	r := &OnlineRotation{Root: root, Published: o.Published, Export: o.Export, Config: cfg, Reason: o.Reason, Devices: devs.BySerial, PIN: devs.PIN, Now: o.Now, Show: o.Show, Version: o.Version}
	return r.Run(o.Media)
}

// newMedium prepares the new output directory outDir of a renewal,
// rotation or handover (kind, its marker dated now), and its journal
// (shown on show, timed by the real clock); the caller defers out.Abort.
func newMedium(outDir string, kind Medium, now time.Time, show io.Writer) (*outdir.Dir, *Transcript, error) {
	out, err := newOutputMedium(outDir, kind, now)
	if err != nil {
		return nil, nil, err
	}
	tr, err := openJournal(out, show, nil)
	if err != nil {
		out.Abort()
		return nil, nil, err
	}
	return out, tr, nil
}

// journalEnd is who signs a medium's closed journal (JournalEnvelopeFile)
// and the key sets whose thresholds the read-back checks that signature
// with (each must be met; docs/audit.md, "Who signs a medium's end").
type journalEnd struct {
	ceremony, repository string
	signers              []keys.Signer
	by                   []tuf.RoleKeys
}

// verifyMedium ends the journal, has end's signers sign its end, and
// reads the media back with check, then the envelope's check, under their
// temporary name: refused, they are renamed <target>.rejected-TIME
// (*outdir.RejectedError) and never get their name. Every medium's end is
// signed: end is required.
func verifyMedium(out *outdir.Dir, tr *Transcript, end *journalEnd, check func(dir string) error) error {
	if err := tr.Close(); err != nil {
		return err
	}
	if end == nil || len(end.signers) == 0 || len(end.by) == 0 {
		return fmt.Errorf("the medium's journal has nobody to sign its end: %w", ErrJournalEnvelope)
	}
	if err := signJournal(out, tr, end.ceremony, end.repository, end.signers); err != nil {
		return err
	}
	return out.Verify(readBack(func(dir string) error {
		if err := check(dir); err != nil {
			return err
		}
		_, err := checkJournalEnvelope(dir, end.ceremony, end.by...)
		return err
	}))
}

// commitMedium is verifyMedium, then SHA256SUMS is written and the media
// get their name; the manifest's digest is shown on show.
func commitMedium(out *outdir.Dir, tr *Transcript, show io.Writer, end *journalEnd, check func(dir string) error) error {
	if err := verifyMedium(out, tr, end, check); err != nil {
		return err
	}
	d, err := sealMedium(out, nil)
	if err != nil {
		return err
	}
	showSums(show, nil, d)
	return nil
}

// offlineInputs are what every renewal, rotation and handover loads
// before it starts: the trusted root, the configuration and the devices
// (the caller closes them); the output directory is checked first.
func offlineInputs(rootFile, config, media string, devices DeviceOptions) (*tuf.Metadata[tuf.Root], *Config, *Devices, error) {
	root, err := LoadTrustedRoot(rootFile)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := LoadConfig(config)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := outdir.Check(media); err != nil {
		return nil, nil, nil, err
	}
	devs, err := OpenDevices(devices)
	if err != nil {
		return nil, nil, nil, err
	}
	return root, cfg, devs, nil
}

// orphaned is err, or, when s generated keys, an *OrphanKeysError naming
// them (shown on show): the run failed after it generated them.
func (s *session) orphaned(show io.Writer, err error) error {
	if orphans := s.orphans(s.tried); len(orphans) > 0 {
		showOrphans(show, orphans)
		return &OrphanKeysError{Err: err, Keys: orphans, Ceremony: "rotation"}
	}
	return err
}
