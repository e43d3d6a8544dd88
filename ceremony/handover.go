package ceremony

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// Handover: a device and its keys pass from one keyholder to another,
// in the room. No key and no metadata changes: the outgoing keyholder
// unlocks the device, every key of the metadata it holds signs a
// statement naming the device, both people and the time (proving the
// device is the one the metadata names), and the incoming keyholder sets
// a new PIN (docs/runbook-incident.md, "A keyholder leaves or joins").

// HandoverChecklist is the name of a handover's checklist: its presence
// is how Audit tells the medium.
const HandoverChecklist = "handover-checklist.md"

// HandoverStatement is the name, on the medium, of the statement the
// device's keys signed.
const HandoverStatement = "handover-statement.txt"

// ErrNoKeyholderKeys is a device that holds no key of root, targets or
// stable.
var ErrNoKeyholderKeys = errors.New("the device holds no root, targets or stable key of the published metadata")

// ErrSamePIN is a handover's new PIN that is the outgoing keyholder's:
// they would keep the device's use.
var ErrSamePIN = errors.New("the new PIN is the one the outgoing keyholder typed")

// NewPINSource asks the incoming keyholder for the device's new PIN.
type NewPINSource func(info hsm.Info) (string, error)

// TerminalNewPIN reads a new PIN twice from the terminal.
func TerminalNewPIN(info hsm.Info) (string, error) {
	t, err := tui.Open()
	if err != nil {
		return "", err
	}
	defer t.Close()
	return t.NewSecret(fmt.Sprintf("The NEW keyholder: new PIN for %s (6 to 8 characters): ", info), hsm.CheckPIN)
}

// Handover records a device passing to a new keyholder.
type Handover struct {
	Root      *tuf.Metadata[tuf.Root]
	Published string
	// Config names the outgoing keyholder (keyholders) and the repository.
	Config *Config
	Device uint32
	// To is the incoming keyholder's name.
	To      string
	Devices map[uint32]hsm.Device
	PIN     PINSource
	NewPIN  NewPINSource
	Now     time.Time
	Show    io.Writer
	Version string
}

// HandoverKey is a key the handed-over device holds.
type HandoverKey struct {
	Role, Slot, KeyID string
}

// HandoverResult is what a handover recorded.
type HandoverResult struct {
	Device     uint32
	From, To   string
	Keys       []HandoverKey
	Transcript [32]byte
}

// handoverStatement is what every key of the device signs.
func handoverStatement(repository string, device uint32, from, to string, at time.Time) []byte {
	return fmt.Appendf(nil, "keyceremony keyholder handover\nrepository: %s\ndevice: %d\nfrom: %s\nto: %s\ntime: %s\n", repository, device, from, to, at.UTC().Format(time.RFC3339))
}

// roleKeyIDs gives the key ids of root, targets and stable in the
// published metadata.
func (c *current) roleKeyIDs() map[string][]string {
	out := map[string][]string{tuf.RoleRoot: c.root.Signed.Roles[tuf.RoleRoot].KeyIDs, tuf.RoleTargets: c.root.Signed.Roles[tuf.RoleTargets].KeyIDs}
	if d, ok := c.targets.Signed.Delegation(stableset.StableRole); ok {
		out[stableset.StableRole] = d.KeyIDs
	}
	return out
}

// Run records the handover into the new directory outDir:
// handover-statement.txt, handover-checklist.md and transcript.jsonl. The
// new PIN is set last, when everything else is written and verified.
func (h *Handover) Run(outDir string) (*HandoverResult, error) {
	if err := checkKeyholderName(h.To); err != nil {
		return nil, fmt.Errorf("the new keyholder's name: %w: %w", err, ErrConfig)
	}
	from := h.Config.Keyholder(h.Device)
	if from == h.To {
		return nil, fmt.Errorf("device %d is held by %q already: %w", h.Device, from, ErrConfig)
	}
	cur, err := loadCurrent(h.Root, h.Published)
	if err != nil {
		return nil, err
	}
	s := &session{devices: h.Devices, pin: h.PIN, pins: map[uint32]string{}}
	dev, err := s.device(h.Device)
	if err != nil {
		return nil, err
	}
	info := dev.Info()
	ids := cur.roleKeyIDs()
	var held []HandoverKey
	for sl := hsm.Slot(0x80); sl <= 0x9e; sl++ {
		if !sl.Valid() {
			continue
		}
		pub, err := dev.PublicKey(sl)
		if err != nil {
			continue
		}
		k, err := keys.FromPublicKey(pub)
		if err != nil {
			continue
		}
		for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets, stableset.StableRole} {
			for _, id := range ids[role] {
				if id == k.ID() {
					held = append(held, HandoverKey{Role: role, Slot: sl.String(), KeyID: id})
				}
			}
		}
	}
	if len(held) == 0 {
		return nil, fmt.Errorf("%s: %w", info, ErrNoKeyholderKeys)
	}
	out, tr, err := newMedium(outDir, MediumHandover, h.Now, h.Show)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	defer tr.Close()
	if err := tr.Record("handover started", map[string]any{"repository": h.Config.Repository, "device": h.Device, "from": from, "to": h.To, "tool_version": h.Version, "statement_time": h.Now.UTC().Format(time.RFC3339)}); err != nil {
		return nil, err
	}
	if err := recordDevices(tr, map[uint32]hsm.Device{h.Device: dev}); err != nil {
		return nil, err
	}
	st := handoverStatement(h.Config.Repository, h.Device, from, h.To, h.Now)
	var keyIDs []string
	var signers []keys.Signer
	for _, k := range held {
		slot, _ := hsm.ParseSlot(k.Slot)
		sg, err := s.signer(h.Device, slot)
		if err != nil {
			return nil, err
		}
		sig, err := tuf.SignBytes(st, sg)
		if err != nil {
			return nil, err
		}
		if err := tr.Record("key held and signed the statement", map[string]any{"role": k.Role, "slot": k.Slot, "keyid": k.KeyID, "sig": sig.Sig}); err != nil {
			return nil, err
		}
		keyIDs = append(keyIDs, k.KeyID)
		signers = append(signers, sg)
	}
	sort.Strings(keyIDs)
	if err := out.WriteFile(HandoverStatement, st); err != nil {
		return nil, err
	}
	cl := handoverChecklist(h, from, held)
	if err := out.WriteFile(HandoverChecklist, cl); err != nil {
		return nil, err
	}
	newPIN, err := h.NewPIN(info)
	if err != nil {
		return nil, fmt.Errorf("reading the new PIN of %s: %w", info, err)
	}
	if err := hsm.CheckPIN(newPIN); err != nil {
		return nil, err
	}
	if newPIN == s.pins[h.Device] {
		return nil, fmt.Errorf("%s: %w", info, ErrSamePIN)
	}
	if err := tr.Record("PIN changed by the new keyholder", map[string]any{"device": h.Device}); err != nil {
		return nil, err
	}
	if err := tr.Record("handover finished", map[string]any{"device": h.Device, "from": from, "to": h.To, "keyids": keyIDs, "statement_sha256": sha256Hex(st), "checklist_sha256": sha256Hex(cl)}); err != nil {
		return nil, err
	}
	// The medium is read back, then the new PIN set, then the medium
	// committed: a failure before leaves the old PIN and no medium.
	end := &journalEnd{ceremony: CeremonyHandover, repository: h.Config.Repository, signers: signers, by: []tuf.RoleKeys{handoverKeys(h.Device, keyIDs, cur.keyring())}}
	if err := verifyMedium(out, tr, end, func(dir string) error {
		return readBackRenewal(dir, map[string][]byte{HandoverStatement: st, HandoverChecklist: cl}, nil)
	}); err != nil {
		return nil, err
	}
	sums, err := writeSums(out, nil)
	if err != nil {
		return nil, err
	}
	if err := dev.ChangePIN(s.pins[h.Device], newPIN); err != nil {
		return nil, fmt.Errorf("changing the PIN of %s: %w", info, err)
	}
	if err := out.Commit(); err != nil {
		return nil, fmt.Errorf("the PIN of %s was changed, but the record could not be written: %w", info, err)
	}
	showSums(h.Show, nil, sums)
	return &HandoverResult{Device: h.Device, From: from, To: h.To, Keys: held, Transcript: tr.Digest()}, nil
}

// handoverKeys is who signs a handover's end: every key of the metadata
// the device holds (ids, from keyring), all of them.
func handoverKeys(device uint32, ids []string, keyring map[string]*keys.Key) tuf.RoleKeys {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	return tuf.RoleKeys{Role: fmt.Sprintf("device %d's keys", device), KeyIDs: ids, Threshold: len(ids), Keys: keyring}
}

// keyring is every key the published root and targets name.
func (c *current) keyring() map[string]*keys.Key {
	out := map[string]*keys.Key{}
	for id, k := range c.root.Signed.Keys {
		out[id] = k
	}
	if c.targets.Signed.Delegations != nil {
		for id, k := range c.targets.Signed.Delegations.Keys {
			out[id] = k
		}
	}
	return out
}

func handoverChecklist(h *Handover, from string, held []HandoverKey) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Handover of device %d from %q to %q\n\n", h.Device, from, h.To)
	b.WriteString("No key and no metadata changed. The device holds:\n\n")
	for _, k := range held {
		fmt.Fprintf(&b, "- the %s key %s in slot %s\n", k.Role, k.KeyID, k.Slot)
	}
	b.WriteString("\nEach signed `" + HandoverStatement + "`; the new keyholder set a new PIN.\n\n")
	b.WriteString("For the administrators:\n\n")
	b.WriteString("1. Verify this medium: `keyceremony verify --root 1.root.json --previous PUBLISHED THIS-MEDIUM`.\n")
	fmt.Fprintf(&b, "2. In the ceremony configuration, set `keyholders.%d` to %q; the next run sheet names the new keyholder.\n", h.Device, h.To)
	b.WriteString("3. If the outgoing keyholder keeps anything that signs (another device) or may have copied nothing but the PIN, the PIN change suffices; if the device was out of anyone's sight, replace its keys instead (`keyceremony rotate root|targets|stable`).\n")
	b.WriteString("4. Nothing is published: the repository's metadata do not change.\n")
	return []byte(b.String())
}

// HandoverOptions are a handover's inputs by name.
type HandoverOptions struct {
	Root, Published, Config, Media string
	Device                         uint32
	To                             string
	Devices                        DeviceOptions
	Now                            time.Time
	Show                           io.Writer
	Version                        string
}

// RunHandover opens the devices and records the handover into o.Media;
// the new PIN is read from the terminal.
func RunHandover(o HandoverOptions) (*HandoverResult, error) {
	root, cfg, devs, err := offlineInputs(o.Root, o.Config, o.Media, o.Devices)
	if err != nil {
		return nil, err
	}
	defer devs.Close()
	h := &Handover{Root: root, Published: o.Published, Config: cfg, Device: o.Device, To: o.To, Devices: devs.BySerial, PIN: devs.PIN, NewPIN: TerminalNewPIN, Now: o.Now, Show: o.Show, Version: o.Version}
	return h.Run(o.Media)
}
