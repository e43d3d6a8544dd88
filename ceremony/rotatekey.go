package ceremony

import (
	"crypto/x509"
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

// Rotation of a targets or a stable key whose device was lost or whose
// key was compromised (docs/runbook-incident.md). A targets key: root
// vN+1 lists the new key instead of the revoked one for targets (signed
// by the root threshold), and targets vM+1, unchanged but for version and
// expiry, is signed by the new targets threshold, without the revoked
// key. A stable key: targets vM+1 delegates stable to the new key instead
// of the revoked one (signed by the targets threshold), and stable vK+1,
// the published stable vK (checked against the backup medium's newest
// state, byte for byte) unchanged but for version and expiry, is signed
// by the new stable threshold, without the revoked key; its bins and
// their keys stay as they are. The rotation writes the backup medium's
// state K+1, from which the next stable signing goes on to K+2.

// Scenarios of targets and stable key rotations, as the transcript names
// them.
const (
	ScenarioTargetsKeyReplaced = "targets-key-replaced"
	ScenarioStableKeyReplaced  = "stable-key-replaced"
)

// RoleKeyRotation replaces one targets or stable key.
type RoleKeyRotation struct {
	// Role is targets or stable.
	Role      string
	Root      *tuf.Metadata[tuf.Root]
	Published string
	// Config gives the key policy and the new expiries.
	Config  *Config
	Replace string
	New     KeySpec
	Reason  string
	Devices map[uint32]hsm.Device
	PIN     PINSource
	Roots   *x509.CertPool
	// Backup is the stable ceremony's backup medium (stable only,
	// required): the published stable must be its newest state's, and
	// the rotation appends the state of the stable it signs.
	Backup  string
	Now     time.Time
	Show    io.Writer
	Version string
}

// RoleKeyRotationResult is what a targets or stable key rotation wrote.
type RoleKeyRotationResult struct {
	Files          []string // metadata/N.role.json written
	Revoked, Added []string
	Key            GeneratedKey
	// StableStillValid (stable only): the published stable vK meets the
	// new delegation's threshold without the revoked key.
	StableStillValid bool
	// Stable only: the version and expiry of the stable signed again,
	// when its bins expire (zero without bins), and the backup state
	// written.
	StableVersion int64
	StableExpires time.Time
	BinsExpire    time.Time
	State         *BackupState
	StateFile     string
	Transcript    [32]byte
}

// BinsExpireFirst says the bins a rotation kept expire before the stable
// it signed: a stable signing is due before BinsExpire.
func (r *RoleKeyRotationResult) BinsExpireFirst() bool {
	return !r.BinsExpire.IsZero() && r.BinsExpire.Before(r.StableExpires)
}

// Run writes into the new directory outDir the new metadata, keys/ (the
// new key and its attestation), rotation-checklist.md and
// transcript.jsonl, read back and verified.
func (r *RoleKeyRotation) Run(outDir string) (*RoleKeyRotationResult, error) {
	if r.Role != tuf.RoleTargets && r.Role != stableset.StableRole {
		return nil, fmt.Errorf("role %q: want targets or stable (root: RootRotation): %w", r.Role, ErrRenewRole)
	}
	opts, err := r.Config.KeyOptions()
	if err != nil {
		return nil, err
	}
	cur, err := loadCurrent(r.Root, r.Published)
	if err != nil {
		return nil, err
	}
	var ids []string
	var threshold int
	if r.Role == tuf.RoleTargets {
		ids, threshold = cur.root.Signed.Roles[tuf.RoleTargets].KeyIDs, cur.root.Signed.Roles[tuf.RoleTargets].Threshold
	} else {
		d, _ := cur.targets.Signed.Delegation(stableset.StableRole)
		ids, threshold = d.KeyIDs, d.Threshold
	}
	if !slices.Contains(ids, r.Replace) {
		sorted := append([]string(nil), ids...)
		sort.Strings(sorted)
		return nil, fmt.Errorf("key %q: the %s keys are %s: %w", r.Replace, r.Role, strings.Join(sorted, ", "), ErrNotRoleKey)
	}
	slot, err := hsm.ParseSlot(r.New.Slot)
	if err != nil {
		return nil, fmt.Errorf("the new key's slot: %w", err)
	}
	var sp *stablePlan
	if r.Role == stableset.StableRole {
		if sp, err = r.planStable(cur); err != nil {
			return nil, err
		}
	}
	out, tr, err := newMedium(outDir, MediumRotation, r.Now, r.Show)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	defer tr.Close()
	s := &session{devices: r.Devices, pin: r.PIN, pins: map[uint32]string{}}
	res, files, end, err := r.run(out, tr, s, cur, sp, ids, threshold, slot, opts)
	if err != nil {
		return nil, s.orphaned(r.Show, err)
	}
	if err := commitMedium(out, tr, r.Show, end, func(dir string) error { return readBackRenewal(dir, files, nil) }); err != nil {
		return nil, s.orphaned(r.Show, err)
	}
	res.Transcript = tr.Digest()
	if sp != nil {
		// Only a medium read back and verified becomes the state the
		// next stable signing starts from.
		if res.StateFile, err = sp.backup.save(res.State, res.Transcript, outDir); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// stablePlan is what a stable key rotation checked before anything is
// written: the backup medium, and when the kept bins expire.
type stablePlan struct {
	backup     *Backup
	binsExpire time.Time // zero: stable delegates to no bins
}

// planStable checks the published stable against the backup medium's
// newest state (its version, ledger and, byte for byte, its file: the
// stable signed again is the one the last ceremony or rotation wrote, not
// one the revoked key signed), the ceremony's clock, and reads when the
// bins it keeps expire.
func (r *RoleKeyRotation) planStable(cur *current) (*stablePlan, error) {
	if cur.stable == nil {
		return nil, fmt.Errorf("%s holds no stable metadata to sign again: %w", filepath.Join(r.Published, "metadata"), tuf.ErrMissing)
	}
	b, err := ReadBackup(r.Backup)
	if err != nil {
		return nil, err
	}
	if err := checkBackupRoot(b, r.Root); err != nil {
		return nil, err
	}
	d, _ := cur.targets.Signed.Delegation(stableset.StableRole)
	pub, err := readPublishedState(r.Published, d, cur.targets.Signed.Delegations.Keys)
	if err != nil {
		return nil, err
	}
	if err := checkPublished(b, pub); err != nil {
		return nil, err
	}
	if s := b.Newest(); s.StableSHA256 == "" && !pub.first {
		return nil, fmt.Errorf("%s names no stable_sha256 (a state written before keyceremony recorded it): the rotation cannot tell %s from a stable the revoked key signed; sign stable once with the keys left (keyceremony stable sign), then rotate: %w", b.NewestFile(), pub.file, ErrBackup)
	}
	if err := checkClock(r.Now, stableset.DefaultClockSkew, pub, b); err != nil {
		return nil, err
	}
	sp := &stablePlan{backup: b}
	if sp.binsExpire, err = binsExpiry(filepath.Join(r.Published, "metadata"), cur.stable); err != nil {
		return nil, err
	}
	return sp, nil
}

// binsExpiry is the earliest expiry of the bins' mid roles stable
// delegates to (the ceremony that signed them gave every bin the same
// expiry), read from dir at the version of the ceremony that wrote the
// ledger and verified with the key stable delegates to each; zero when
// stable delegates to no bins.
func binsExpiry(dir string, st *tuf.Metadata[tuf.Targets]) (time.Time, error) {
	_, bins := tuf.SplitStable(&st.Signed)
	if len(bins) == 0 {
		return time.Time{}, nil
	}
	_, n, _, ok, err := stableset.LedgerTarget(st)
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, fmt.Errorf("stable v%d delegates to bins but lists no ledger: %w", st.Signed.Version, stableset.ErrPublished)
	}
	var first time.Time
	for _, d := range bins {
		by := tuf.RoleKeys{Role: d.Name, KeyIDs: d.KeyIDs, Threshold: d.Threshold, Keys: st.Signed.Delegations.Keys}
		m, err := tuf.LoadVersion[tuf.Targets](os.DirFS(dir), dir, d.Name, n, by)
		if err != nil {
			return time.Time{}, fmt.Errorf("reading stable's bin role %s (to tell when the bins expire): %w", d.Name, err)
		}
		if e := m.Signed.Expires.Time(); first.IsZero() || e.Before(first) {
			first = e
		}
	}
	return first, nil
}

func (r *RoleKeyRotation) run(out *outdir.Dir, tr *Transcript, s *session, cur *current, sp *stablePlan, ids []string, threshold int, slot hsm.Slot, opts hsm.KeyOptions) (*RoleKeyRotationResult, map[string][]byte, *journalEnd, error) {
	scenario := ScenarioTargetsKeyReplaced
	if r.Role == stableset.StableRole {
		scenario = ScenarioStableKeyReplaced
	}
	if err := tr.Record("rotation started", map[string]any{
		"scenario": scenario, "reason": r.Reason, "previous_version": cur.root.Signed.Version, "targets_previous_version": cur.targets.Signed.Version,
		"revoke": r.Replace, "new_device": r.New.Device, "new_slot": slot.String(), "tool_version": r.Version,
	}); err != nil {
		return nil, nil, nil, err
	}
	if err := recordDevices(tr, r.Devices); err != nil {
		return nil, nil, nil, err
	}
	// Who signs, found before the key is made: targets: the root
	// threshold, and the new targets threshold (the remaining old keys
	// and the new one); stable: the targets threshold, and the new
	// stable threshold (the remaining old keys and the new one).
	rl := cur.root.Signed.Roles[tuf.RoleRoot]
	tl := cur.root.Signed.Roles[tuf.RoleTargets]
	var rootSigners, targetsSigners, stableSigners []keys.Signer
	var err error
	if r.Role == tuf.RoleTargets {
		if rootSigners, err = roleSigners(s, tuf.RoleRoot, rl.KeyIDs, rl.Threshold, nil); err != nil {
			return nil, nil, nil, err
		}
		if targetsSigners, err = roleSigners(s, tuf.RoleTargets, tl.KeyIDs, threshold-1, map[string]bool{r.Replace: true}); err != nil {
			return nil, nil, nil, fmt.Errorf("the new targets threshold needs %d of the remaining targets keys beside the new one: %w", threshold-1, err)
		}
	} else {
		if targetsSigners, err = roleSigners(s, tuf.RoleTargets, tl.KeyIDs, tl.Threshold, nil); err != nil {
			return nil, nil, nil, err
		}
		if stableSigners, err = roleSigners(s, stableset.StableRole, ids, threshold-1, map[string]bool{r.Replace: true}); err != nil {
			return nil, nil, nil, fmt.Errorf("signing stable again needs %d of the remaining stable keys beside the new one: %w", threshold-1, err)
		}
	}
	if err := checkReplacement(s, r.New.Device, slot, r.Role, ids, r.Roots, r.Now); err != nil {
		return nil, nil, nil, err
	}
	if err := tr.Record("pre-flight passed", nil); err != nil {
		return nil, nil, nil, err
	}
	b := &Bootstrap{Config: r.Config, Devices: r.Devices, PIN: r.PIN, Roots: r.Roots, Now: r.Now, Show: r.Show}
	g, err := b.generate(s, r.Role, r.New, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := tr.Record("key generated and attested", map[string]any{
		"role": r.Role, "device": g.Device.Serial, "slot": g.Slot.String(), "keyid": g.Key.ID(),
		"pin_policy": g.Attested.PINPolicy, "touch_policy": g.Attested.TouchPolicy,
	}); err != nil {
		return nil, nil, nil, err
	}
	if err := writeKey(out, g); err != nil {
		return nil, nil, nil, err
	}
	newIDs := slices.DeleteFunc(append([]string(nil), ids...), func(id string) bool { return id == r.Replace })
	newIDs = append(newIDs, g.Key.ID())
	sort.Strings(newIDs)

	files := map[string][]byte{}
	detail := map[string]any{"scenario": scenario, "revoked": []string{r.Replace}, "added": []string{g.Key.ID()}}
	tv := cur.targets.Signed.Version + 1
	targets, err := renewed(cur.targets, tv, r.Now.AddDate(0, 0, r.Config.ExpiresDays.Targets))
	if err != nil {
		return nil, nil, nil, err
	}
	stillValid := false
	var stableRes *RoleKeyRotationResult // stable: what stable vK+1 is
	if r.Role == tuf.RoleTargets {
		rv := cur.root.Signed.Version + 1
		root, err := renewed(cur.root, rv, r.Now.AddDate(0, 0, r.Config.ExpiresDays.Root))
		if err != nil {
			return nil, nil, nil, err
		}
		root.Signed.Roles[tuf.RoleTargets].KeyIDs = newIDs
		root.Signed.Keys[g.Key.ID()] = g.Key
		pruneKeys(root.Signed.Keys, func(id string) bool {
			for _, role := range root.Signed.Roles {
				if slices.Contains(role.KeyIDs, id) {
					return true
				}
			}
			return false
		})
		if err := root.Sign(rootSigners...); err != nil {
			return nil, nil, nil, err
		}
		if err := tr.Record(fmt.Sprintf("root v%d signed", rv), map[string]any{"keyids": keyIDsOf(rootSigners)}); err != nil {
			return nil, nil, nil, err
		}
		data, err := root.MarshalFile()
		if err != nil {
			return nil, nil, nil, err
		}
		if err := checkRotatedRoot(cur.root, data, rv, r.Replace); err != nil {
			return nil, nil, nil, fmt.Errorf("self-check of root v%d: %w", rv, err)
		}
		newSigner, err := s.signer(r.New.Device, slot)
		if err != nil {
			return nil, nil, nil, err
		}
		targetsSigners = append(targetsSigners, newSigner)
		files[fmt.Sprintf("metadata/%d.root.json", rv)] = data
		detail["file"], detail["sha256"], detail["version"], detail["previous_version"] = fmt.Sprintf("metadata/%d.root.json", rv), sha256Hex(data), rv, cur.root.Signed.Version
		if err := targets.Sign(targetsSigners...); err != nil {
			return nil, nil, nil, err
		}
		by, _ := root.Signed.RoleKeys(tuf.RoleTargets)
		if _, err := verifiedBy(by, targets.SignedBytes, targets.Signatures); err != nil {
			return nil, nil, nil, fmt.Errorf("self-check of targets v%d: %w", tv, err)
		}
	} else {
		d, _ := targets.Signed.Delegation(stableset.StableRole)
		d.KeyIDs = newIDs
		targets.Signed.Delegations.Keys[g.Key.ID()] = g.Key
		pruneKeys(targets.Signed.Delegations.Keys, func(id string) bool {
			for _, dr := range targets.Signed.Delegations.Roles {
				if slices.Contains(dr.KeyIDs, id) {
					return true
				}
			}
			return false
		})
		if err := tuf.CheckTopLayout(&targets.Signed); err != nil {
			return nil, nil, nil, err
		}
		if err := targets.Sign(targetsSigners...); err != nil {
			return nil, nil, nil, err
		}
		by, _ := cur.root.Signed.RoleKeys(tuf.RoleTargets)
		if _, err := verifiedBy(by, targets.SignedBytes, targets.Signatures); err != nil {
			return nil, nil, nil, fmt.Errorf("self-check of targets v%d: %w", tv, err)
		}
		if err := tr.Record(fmt.Sprintf("targets v%d signed", tv), map[string]any{"keyids": keyIDsOf(targetsSigners)}); err != nil {
			return nil, nil, nil, err
		}
		nb, _ := targets.Signed.DelegateKeys(stableset.StableRole)
		_, err := verifiedBy(nb, cur.stable.SignedBytes, cur.stable.Signatures)
		stillValid = err == nil
		if err := tr.Record("published stable checked against the new delegation", map[string]any{"stable_version": cur.stable.Signed.Version, "meets_threshold": stillValid}); err != nil {
			return nil, nil, nil, err
		}
		newSigner, err := s.signer(r.New.Device, slot)
		if err != nil {
			return nil, nil, nil, err
		}
		stableSigners = append(stableSigners, newSigner)
		sv := cur.stable.Signed.Version + 1
		st, err := renewed(cur.stable, sv, r.Now.AddDate(0, 0, r.Config.ExpiresDays.Stable))
		if err != nil {
			return nil, nil, nil, err
		}
		if err := st.Sign(stableSigners...); err != nil {
			return nil, nil, nil, err
		}
		if _, err := verifiedBy(nb, st.SignedBytes, st.Signatures); err != nil {
			return nil, nil, nil, fmt.Errorf("self-check of stable v%d against the new delegation: %w", sv, err)
		}
		if same, err := OnlyVersionAndExpiry(cur.stable, st); err != nil || !same {
			return nil, nil, nil, fmt.Errorf("self-check of stable v%d: it differs from stable v%d in more than version and expiry: %w", sv, cur.stable.Signed.Version, ErrMediumContent)
		}
		sdata, err := st.MarshalFile()
		if err != nil {
			return nil, nil, nil, err
		}
		sfile := fmt.Sprintf("metadata/%d.stable.json", sv)
		files[sfile] = sdata
		stableRes = &RoleKeyRotationResult{StableVersion: sv, StableExpires: st.Signed.Expires.Time().UTC(), BinsExpire: sp.binsExpire.UTC(), State: sp.backup.rotationState(sdata, r.Now)}
		rec := map[string]any{"keyids": keyIDsOf(stableSigners), "previous_version": cur.stable.Signed.Version, "expires": st.Signed.Expires.Time().UTC().Format(time.RFC3339)}
		if !sp.binsExpire.IsZero() {
			rec["bins_expire"] = sp.binsExpire.UTC().Format(time.RFC3339)
		}
		if err := tr.Record(fmt.Sprintf("stable v%d signed", sv), rec); err != nil {
			return nil, nil, nil, err
		}
		detail["stable_file"], detail["stable_sha256"], detail["stable_version"], detail["stable_previous_version"] = sfile, sha256Hex(sdata), sv, cur.stable.Signed.Version
	}
	if r.Role == tuf.RoleTargets {
		if err := tr.Record(fmt.Sprintf("targets v%d signed", tv), map[string]any{"keyids": keyIDsOf(targetsSigners)}); err != nil {
			return nil, nil, nil, err
		}
	}
	tdata, err := targets.MarshalFile()
	if err != nil {
		return nil, nil, nil, err
	}
	tfile := fmt.Sprintf("metadata/%d.targets.json", tv)
	files[tfile] = tdata
	detail["targets_file"], detail["targets_sha256"], detail["targets_version"], detail["targets_previous_version"] = tfile, sha256Hex(tdata), tv, cur.targets.Signed.Version
	var names []string
	for name, data := range files {
		names = append(names, name)
		if err := out.WriteFile(name, data); err != nil {
			return nil, nil, nil, err
		}
	}
	sort.Strings(names)
	keyBase := fmt.Sprintf("keys/%s-%d-%s", g.Role, g.Device.Serial, g.Slot)
	cl := r.checklist(names, g, keyBase, tv, cur, stillValid, stableRes)
	if err := out.WriteFile(RotationChecklist, cl); err != nil {
		return nil, nil, nil, err
	}
	detail["checklist_sha256"] = sha256Hex(cl)
	if stableRes != nil {
		if stableRes.BinsExpireFirst() && r.Show != nil {
			fmt.Fprintf(r.Show, "WARNING: the bins stable v%d keeps expire %s, before stable v%d itself (%s): hold a stable signing before then.\n",
				stableRes.StableVersion, stableRes.BinsExpire.Format(time.RFC3339), stableRes.StableVersion, stableRes.StableExpires.Format(time.RFC3339))
		}
		if err := tr.Record("backup state", stableRes.State.recordFields()); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := tr.Record("rotation finished", detail); err != nil {
		return nil, nil, nil, err
	}
	// The role that authorised the rotation signs the end: root for a
	// targets key (root vN+1 names the new key), targets for a stable key
	// (targets vM+1 delegates to it), with the keys the published
	// metadata give it.
	endSigners, endRole := rootSigners, tuf.RoleRoot
	if r.Role == stableset.StableRole {
		endSigners, endRole = targetsSigners, tuf.RoleTargets
	}
	by, err := cur.root.Signed.RoleKeys(endRole)
	if err != nil {
		return nil, nil, nil, err
	}
	end := &journalEnd{ceremony: CeremonyRotation, repository: r.Config.Repository, signers: endSigners, by: []tuf.RoleKeys{by}}
	files[RotationChecklist] = cl // read back with the metadata
	res := &RoleKeyRotationResult{Files: names, Revoked: []string{r.Replace}, Added: []string{g.Key.ID()}, Key: *g, StableStillValid: stillValid}
	if stableRes != nil {
		res.StableVersion, res.StableExpires, res.BinsExpire, res.State = stableRes.StableVersion, stableRes.StableExpires, stableRes.BinsExpire, stableRes.State
	}
	return res, files, end, nil
}

func (r *RoleKeyRotation) checklist(names []string, g *GeneratedKey, keyBase string, tv int64, cur *current, stillValid bool, sr *RoleKeyRotationResult) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Rotation: %s key %s revoked\n\n", r.Role, r.Replace)
	if r.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n\n", r.Reason)
	}
	fmt.Fprintf(&b, "The %s key %s is replaced by key %s, generated and attested in slot %s of device %d.\n\n", r.Role, r.Replace, g.Key.ID(), g.Slot, g.Device.Serial)
	b.WriteString("For the repository's operators, in this order:\n\n")
	b.WriteString("1. Verify this medium from the trusted root, against the metadata it started from:\n")
	b.WriteString("   `keyceremony verify --root 1.root.json --previous PUBLISHED THIS-MEDIUM`.\n")
	n := 2
	if sr != nil {
		fmt.Fprintf(&b, "%d. Stable v%d is signed again as v%d by the new stable threshold (the revoked key is not among its signers), unchanged but for version and expiry (%s): the same ledger, the same bins and bin keys, which are not signed again.", n, cur.stable.Signed.Version, sr.StableVersion, sr.StableExpires.Format(time.RFC3339))
		if !stillValid {
			fmt.Fprintf(&b, " The published stable v%d does NOT meet the new delegation's threshold: clients that fetch targets v%d without stable v%d lose every stable entry.", cur.stable.Signed.Version, tv, sr.StableVersion)
		}
		b.WriteString("\n")
		n++
	}
	fmt.Fprintf(&b, "%d. Copy %s into the repository's metadata directory as they are (root first, if there is one).\n", n, "`"+strings.Join(names, "`, `")+"`")
	n++
	if sr != nil {
		fmt.Fprintf(&b, "%d. Sign ONE new snapshot listing targets.json at version %d and stable.json at version %d (every bin at the version it has now), then a new timestamp; publish them last. Never publish one without the other.\n", n, tv, sr.StableVersion)
		n++
		if sr.BinsExpireFirst() {
			fmt.Fprintf(&b, "%d. WARNING: the bins expire %s, before stable v%d (%s). Hold a stable signing (`keyceremony stable sign`) before then.\n", n, sr.BinsExpire.Format(time.RFC3339), sr.StableVersion, sr.StableExpires.Format(time.RFC3339))
			n++
		} else if !sr.BinsExpire.IsZero() {
			fmt.Fprintf(&b, "%d. The bins expire %s, after stable v%d.\n", n, sr.BinsExpire.Format(time.RFC3339), sr.StableVersion)
			n++
		}
		fmt.Fprintf(&b, "%d. The backup medium holds state %d (this rotation's): write its check words on the run sheet. The next stable signing starts from stable v%d and signs v%d.\n", n, sr.StableVersion, sr.StableVersion, sr.StableVersion+1)
		n++
	} else {
		fmt.Fprintf(&b, "%d. Sign a new snapshot listing targets.json at version %d, then a new timestamp; publish them last.\n", n, tv)
		n++
	}
	fmt.Fprintf(&b, "%d. Fetch with a TUF client that trusts the old root and check that it refreshes.\n", n)
	n++
	fmt.Fprintf(&b, "%d. Revoke: if the old device turns up, clear its %s slot. In the ceremony configuration, replace the lost device's %s entry with device %d slot %s; file `%s.pub.json` and `%s.attestation.pem` with the bootstrap media.\n", n, r.Role, r.Role, g.Device.Serial, g.Slot, keyBase, keyBase)
	return []byte(b.String())
}

// RotateKeyOptions are a targets or stable key rotation's inputs by name.
type RotateKeyOptions struct {
	Role                           string
	Root, Published, Config, Media string
	Replace                        string
	New                            KeySpec
	Reason                         string
	Devices                        DeviceOptions
	Backup                         string // stable: the backup medium
	Now                            time.Time
	Show                           io.Writer
	Version                        string
}

// RunRotateKey loads the trusted root and the configuration, opens the
// devices and rotates the targets or stable key into o.Media.
func RunRotateKey(o RotateKeyOptions) (*RoleKeyRotationResult, error) {
	root, cfg, devs, err := offlineInputs(o.Root, o.Config, o.Media, o.Devices)
	if err != nil {
		return nil, err
	}
	defer devs.Close()
	r := &RoleKeyRotation{Role: o.Role, Root: root, Published: o.Published, Config: cfg, Replace: o.Replace, New: o.New, Reason: o.Reason,
		Devices: devs.BySerial, PIN: devs.PIN, Roots: devs.Roots, Backup: o.Backup, Now: o.Now, Show: o.Show, Version: o.Version}
	return r.Run(o.Media)
}
