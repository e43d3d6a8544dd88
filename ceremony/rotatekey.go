package ceremony

import (
	"crypto/x509"
	"fmt"
	"io"
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
// of the revoked one (signed by the targets threshold); stable itself is
// signed again at the next stable signing, and the rotation says whether
// the published stable still meets the new delegation's threshold.

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
	Now     time.Time
	Show    io.Writer
	Version string
}

// RoleKeyRotationResult is what a targets or stable key rotation wrote.
type RoleKeyRotationResult struct {
	Files            []string // metadata/N.role.json written
	Revoked, Added   []string
	Key              GeneratedKey
	StableStillValid bool // stable only: the published stable meets the new delegation
	Transcript       [32]byte
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
	out, tr, err := newMedium(outDir, MediumRotation, r.Now, r.Show)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	defer tr.Close()
	s := &session{devices: r.Devices, pin: r.PIN, pins: map[uint32]string{}}
	res, files, end, err := r.run(out, tr, s, cur, ids, threshold, slot, opts)
	if err != nil {
		return nil, s.orphaned(r.Show, err)
	}
	if err := commitMedium(out, tr, r.Show, end, func(dir string) error { return readBackRenewal(dir, files, nil) }); err != nil {
		return nil, s.orphaned(r.Show, err)
	}
	res.Transcript = tr.Digest()
	return res, nil
}

func (r *RoleKeyRotation) run(out *outdir.Dir, tr *Transcript, s *session, cur *current, ids []string, threshold int, slot hsm.Slot, opts hsm.KeyOptions) (*RoleKeyRotationResult, map[string][]byte, *journalEnd, error) {
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
	// and the new one); stable: the targets threshold.
	rl := cur.root.Signed.Roles[tuf.RoleRoot]
	tl := cur.root.Signed.Roles[tuf.RoleTargets]
	var rootSigners, targetsSigners []keys.Signer
	var err error
	if r.Role == tuf.RoleTargets {
		if rootSigners, err = roleSigners(s, tuf.RoleRoot, rl.KeyIDs, rl.Threshold, nil); err != nil {
			return nil, nil, nil, err
		}
		if targetsSigners, err = roleSigners(s, tuf.RoleTargets, tl.KeyIDs, threshold-1, map[string]bool{r.Replace: true}); err != nil {
			return nil, nil, nil, fmt.Errorf("the new targets threshold needs %d of the remaining targets keys beside the new one: %w", threshold-1, err)
		}
	} else if targetsSigners, err = roleSigners(s, tuf.RoleTargets, tl.KeyIDs, tl.Threshold, nil); err != nil {
		return nil, nil, nil, err
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
		if cur.stable != nil {
			nb, _ := targets.Signed.DelegateKeys(stableset.StableRole)
			_, err := verifiedBy(nb, cur.stable.SignedBytes, cur.stable.Signatures)
			stillValid = err == nil
			if err := tr.Record("published stable checked against the new delegation", map[string]any{"stable_version": cur.stable.Signed.Version, "meets_threshold": stillValid}); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	if err := tr.Record(fmt.Sprintf("targets v%d signed", tv), map[string]any{"keyids": keyIDsOf(targetsSigners)}); err != nil {
		return nil, nil, nil, err
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
	cl := r.checklist(names, g, keyBase, tv, cur, stillValid)
	if err := out.WriteFile(RotationChecklist, cl); err != nil {
		return nil, nil, nil, err
	}
	detail["checklist_sha256"] = sha256Hex(cl)
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
	return &RoleKeyRotationResult{Files: names, Revoked: []string{r.Replace}, Added: []string{g.Key.ID()}, Key: *g, StableStillValid: stillValid}, files, end, nil
}

func (r *RoleKeyRotation) checklist(names []string, g *GeneratedKey, keyBase string, tv int64, cur *current, stillValid bool) []byte {
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
	if r.Role == stableset.StableRole {
		if cur.stable != nil && !stillValid {
			fmt.Fprintf(&b, "%d. The published stable v%d does NOT meet the new delegation's threshold without the revoked key: run a stable signing now (`keyceremony stable sign`, with the published metadata and this medium's `%s` as its targets) and publish its output together with this targets.\n", n, cur.stable.Signed.Version, names[len(names)-1])
		} else {
			fmt.Fprintf(&b, "%d. The published stable still meets the new delegation's threshold without the revoked key. Stable is signed again, with the new key among the keyholders', at the next stable signing (`keyceremony stable sign`); hold it early if the revoked key's signature is in doubt.\n", n)
		}
		n++
	}
	fmt.Fprintf(&b, "%d. Copy %s into the repository's metadata directory as they are (root first, if there is one).\n", n, "`"+strings.Join(names, "`, `")+"`")
	n++
	fmt.Fprintf(&b, "%d. Sign a new snapshot listing targets.json at version %d, then a new timestamp; publish them last.\n", n, tv)
	n++
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
		Devices: devs.BySerial, PIN: devs.PIN, Roots: devs.Roots, Now: o.Now, Show: o.Show, Version: o.Version}
	return r.Run(o.Media)
}
