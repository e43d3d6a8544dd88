package ceremony

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"text/template"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/templates"
	"github.com/keyceremony/keyceremony/tuf"
)

// PINSource supplies the PIN of a device, told how many tries are left
// (-1 if the device cannot say): from the terminal in a real ceremony,
// from a PIN file (soft devices only) in scripted runs.
type PINSource func(info hsm.Info, triesLeft int) (string, error)

// ErrMissingDevice means the configuration names a device that is not
// connected.
var ErrMissingDevice = hint.New("configured device is not connected", "plug in every device the configuration names ('keyceremony device list' shows the YubiKeys seen), or pass --soft for each soft device")

// Bootstrap is a first ceremony: keys are generated on the devices and
// root v1, targets v1 and an empty stable v1 are written.
type Bootstrap struct {
	Config  *Config
	Devices map[uint32]hsm.Device
	PIN     PINSource
	// Roots are the attestation roots accepted: keys.YubicoRoots() for
	// real devices, a soft or emulator CA only when explicitly chosen.
	Roots   *x509.CertPool
	Now     time.Time
	Show    io.Writer // progress for the people in the room
	Version string    // the tool's version, for the run sheet
	// AllowAffectedFirmware permits root keys on firmware that a security
	// advisory (YSA-2024-03) applies to. The override is recorded in the
	// transcript.
	AllowAffectedFirmware bool
	// Backup, when set, is a new backup medium (backup.go): checked before
	// any key is generated (its state/ absent or empty), it receives the
	// bootstrap's state as state/1.json after the media is written. The
	// command line requires it.
	Backup string
	// Guide leads the room through the guided ceremony (guide.go); nil
	// is the batch form. Airgap is the batch form's network check, for
	// the transcript.
	Guide  *Guide
	Airgap *airgap.Result

	// resume is what an interrupted run's journal lets this run skip
	// (resume.go), once checked against the devices.
	resume *resumption
}

// GeneratedKey is a key made on a device during the ceremony, with the
// attestation that proves where it lives.
type GeneratedKey struct {
	Role     string
	Device   hsm.Info
	Slot     hsm.Slot
	Key      *keys.Key
	Attested *keys.Attested
	Att      *hsm.Attestation
}

// BootstrapResult is what a successful bootstrap produced.
type BootstrapResult struct {
	Root       *tuf.Metadata[tuf.Root]
	Targets    *tuf.Metadata[tuf.Targets]
	Stable     *tuf.Metadata[tuf.Targets]
	Keys       []GeneratedKey
	Transcript [32]byte
	// Sums is the digest of the medium's SHA256SUMS, written last.
	Sums [32]byte
	// State is the state written to the backup medium as StateFile (nil
	// without Backup).
	State     *BackupState
	StateFile string
}

// session caches each device's PIN for the length of one ceremony, and
// remembers every slot a key generation was attempted in.
type session struct {
	devices map[uint32]hsm.Device
	pin     PINSource
	pins    map[uint32]string
	tried   []attempt
	// guide, in a guided ceremony: waits for missing devices and reads
	// PINs; optional lets a keyholder be absent (stable).
	guide    *Guide
	optional bool
}

func (s *session) device(serial uint32) (hsm.Device, error) {
	if s.guide != nil {
		return s.guide.waitDevice(s, serial)
	}
	d, ok := s.devices[serial]
	if !ok {
		return nil, fmt.Errorf("device %d: %w", serial, ErrMissingDevice)
	}
	return d, nil
}

// present is the device with serial, in a guided bootstrap asked for
// (for purpose) if it is not in, without presenting its steps: a look
// at it outside its turns (the interrupted run's keys).
func (s *session) present(serial uint32, purpose string) (hsm.Device, error) {
	if _, ok := s.devices[serial]; ok && s.guide != nil && !s.optional {
		return s.guide.turnFor(s, serial, purpose)
	}
	return s.device(serial)
}

func (s *session) pinFor(d hsm.Device) (string, error) {
	serial := d.Info().Serial
	if p, ok := s.pins[serial]; ok {
		return p, nil
	}
	if s.guide != nil {
		p, err := s.guide.guidedPIN(d)
		if err != nil {
			return "", err
		}
		s.pins[serial] = p
		return p, nil
	}
	tries, _, err := d.Retries()
	if err != nil {
		tries = -1
	}
	if tries == 0 {
		return "", fmt.Errorf("%s: PIN %w", d.Info(), hsm.ErrBlocked)
	}
	p, err := s.pin(d.Info(), tries)
	if err != nil {
		return "", fmt.Errorf("reading the PIN of %s: %w", d.Info(), err)
	}
	if err := d.VerifyPIN(p); err != nil {
		return "", fmt.Errorf("%s: %w", d.Info(), err)
	}
	s.pins[serial] = p
	return p, nil
}

func (s *session) signer(serial uint32, slot hsm.Slot) (keys.Signer, error) {
	d, err := s.device(serial)
	if err != nil {
		return nil, err
	}
	pin, err := s.pinFor(d)
	if err != nil {
		return nil, err
	}
	return hsm.NewSigner(d, slot, pin)
}

// signers returns signers for every key of a role (all keyholders sign,
// so that the metadata carries more than the bare threshold).
func (s *session) signers(spec RoleSpec) ([]keys.Signer, error) {
	var out []keys.Signer
	for _, k := range spec.Keys {
		slot, err := hsm.ParseSlot(k.Slot)
		if err != nil {
			return nil, err
		}
		sg, err := s.signer(k.Device, slot)
		if err != nil {
			return nil, err
		}
		out = append(out, sg)
	}
	return out, nil
}

// Run performs the bootstrap and writes everything into outDir, which
// must not exist or be empty. Nothing is written unless every step
// succeeds, with one exception: a run that fails after it generated keys
// returns an *OrphanKeysError listing every slot that now holds a key and
// the command that clears it, shows the list, and writes its transcript
// (ending with that list) into a new directory beside outDir named
// outDir.failed-TIME. The media are read back with verify's bootstrap
// checks before they get their name; refused, they are renamed
// outDir.rejected-TIME (*outdir.RejectedError) and never appear as outDir.
//
// A full or removed medium is ErrMediumWrite.
func (b *Bootstrap) Run(outDir string) (*BootstrapResult, error) {
	res, err := b.runOnto(outDir)
	return res, mediumFailure(err, outDir)
}

func (b *Bootstrap) runOnto(outDir string) (*BootstrapResult, error) {
	if err := b.checkMedia(outDir); err != nil {
		return nil, err
	}
	if b.Backup != "" {
		if err := CheckNewBackup(b.Backup); err != nil {
			return nil, err
		}
	}
	// Read before New removes the dead runs' working directories.
	b.resume = b.findResumption(outDir)
	out, err := newOutputMedium(outDir, MediumBootstrap, b.Now)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	showDebris(b.Show, out.Swept)
	tr, err := openJournal(out, b.Show, b.Guide)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	s := &session{devices: b.Devices, pin: b.PIN, pins: map[uint32]string{}, guide: b.Guide}
	res, err := b.run(out, tr, s)
	if err == nil {
		err = tr.Close()
	}
	if err == nil {
		err = b.signJournal(out, tr, s, res)
	}
	if err != nil {
		return nil, b.failed(outDir, s, tr, err)
	}
	// Read everything back, with verify's checks, before the media get
	// their name: refused, they are renamed outDir.rejected-TIME.
	if err := out.Verify(readBackBootstrap(res.Root, b.Roots, b.Now)); err != nil {
		return nil, b.failed(outDir, s, tr, err)
	}
	if res.Sums, err = sealMedium(out, nil); err != nil {
		return nil, b.failed(outDir, s, tr, err)
	}
	showSums(b.Show, b.Guide, res.Sums)
	res.Transcript = tr.Digest()
	if res.State != nil {
		res.State.TranscriptSHA256 = hex.EncodeToString(res.Transcript[:])
		if res.StateFile, err = WriteBootstrapBackup(b.Backup, res.State); err != nil {
			return nil, fmt.Errorf("%s was written, but its state was not recorded on the backup medium %s (bootstrap again onto new media): %w", outDir, b.Backup, err)
		}
	}
	if b.Guide != nil {
		b.Guide.closing(res.Transcript)
	}
	return res, nil
}

// failed turns a bootstrap's error into an *OrphanKeysError when keys
// were generated: the orphans are recorded in the transcript, shown, and
// the transcript written beside outDir.
func (b *Bootstrap) failed(outDir string, s *session, tr *Transcript, cause error) error {
	orphans := s.orphans(s.tried)
	if len(orphans) == 0 {
		return cause
	}
	list := make([]map[string]any, len(orphans))
	for i, o := range orphans {
		list[i] = map[string]any{"role": o.Role, "device": o.Device.Serial, "kind": o.Device.Kind, "slot": o.Slot.String(), "keyid": o.KeyID, "clear": o.Clear}
	}
	e := &OrphanKeysError{Err: cause, Keys: orphans}
	// Recorded in the journal if it is still open (a failure after the
	// journal was closed, at read-back or commit, is recorded in the copy
	// only).
	if err := tr.Record("bootstrap failed: orphan keys left on the devices", map[string]any{"error": cause.Error(), "orphan_keys": list}); err != nil {
		return e
	}
	showOrphans(b.Show, orphans)
	fd, dir, err := failedDir(outDir, b.Now)
	if err != nil {
		return e
	}
	defer fd.Abort()
	if fd.WriteFile("transcript.jsonl", tr.Bytes()) == nil && fd.Commit() == nil {
		e.Transcript = filepath.Join(dir, "transcript.jsonl")
	}
	return e
}

// failedDir prepares OUT.failed-TIME for a failed run's transcript, or
// OUT.failed-TIME-NN when an earlier failure in the same second holds that
// name: the names still sort by time, and no failed run's copy replaces
// another's.
func failedDir(outDir string, now time.Time) (*outdir.Dir, string, error) {
	base := filepath.Clean(outDir) + ".failed-" + now.UTC().Format("20060102T150405Z")
	for n := 1; ; n++ {
		dir := base
		if n > 1 {
			dir = fmt.Sprintf("%s-%02d", base, n)
		}
		fd, err := outdir.New(dir)
		if errors.Is(err, outdir.ErrOutputExists) && n < 100 {
			continue
		}
		return fd, dir, err
	}
}

// signJournal has every root key sign the end of the closed journal
// (JournalEnvelopeFile): the PINs the ceremony verified are reused, and a
// key whose touch policy requires it is touched once more.
func (b *Bootstrap) signJournal(out *outdir.Dir, tr *Transcript, s *session, res *BootstrapResult) error {
	g := b.Guide
	if g == nil {
		signers, err := s.signers(b.Config.Root)
		if err != nil {
			return err
		}
		return signJournal(out, tr, CeremonyBootstrap, b.Config.Repository, signers)
	}
	// Each root device in its turn (the PIN typed at its pre-flight is
	// reused); each YubiKey that needs a touch says so, a missed touch is
	// asked again, and each signature is verified; on the screen only,
	// the journal being closed.
	g.journalClosed()
	var signers []keys.Signer
	for _, ks := range b.Config.Root.Keys {
		k, err := generatedKey(res.Keys, "root", ks)
		if err != nil {
			return err
		}
		ps := &portSigner{g: g, sess: s, serial: ks.Device, slot: k.Slot, key: k.Key, purpose: " to sign the end of the transcript"}
		signers = append(signers, &turnFirst{ps: ps, inner: g.signer(fmt.Sprintf("sign/root/%d", ks.Device), ks.Device, ps, nil)})
	}
	g.say("the root keyholders sign the end of the transcript, one YubiKey at a time (touch each when it blinks).")
	return signJournal(out, tr, CeremonyBootstrap, b.Config.Repository, signers)
}

func (b *Bootstrap) run(out *outdir.Dir, tr *Transcript, s *session) (*BootstrapResult, error) {
	c := b.Config
	opts, err := c.KeyOptions()
	if err != nil {
		return nil, err
	}
	if err := tr.Record("bootstrap started", map[string]any{"repository": c.Repository, "tool_version": b.Version, "config_sha256": configDigest(c)}); err != nil {
		return nil, err
	}
	if err := b.opening(tr); err != nil {
		return nil, err
	}
	guided := b.Guide != nil
	if !guided {
		// The batch form: every device plugged in at once.
		for _, serial := range c.Devices() {
			if err := b.connected(s, tr, serial); err != nil {
				return nil, err
			}
		}
	}
	if b.resume, err = b.resume.check(s, b.Show); err != nil {
		return nil, err
	}
	if b.resume != nil {
		if err := b.resume.record(tr); err != nil {
			return nil, err
		}
	}
	if err := b.Guide.stepTo("preflight/metadata"); err != nil {
		return nil, err
	}
	if guided {
		// Each device in turn (one port is enough): connected, then its
		// pre-flight.
		if err := b.preflightConfig(); err != nil {
			return nil, err
		}
		b.Guide.setPurpose(" for its pre-flight")
		for _, serial := range c.Devices() {
			if err := b.connected(s, tr, serial); err != nil {
				return nil, err
			}
			if err := b.preflightDevice(s, serial); err != nil {
				return nil, err
			}
			if err := b.Guide.turnDone(serial, "pre-flight passed"); err != nil {
				return nil, err
			}
		}
	} else if err := b.preflight(s); err != nil {
		return nil, err
	}
	b.Guide.say("pre-flight passed: the configuration's metadata checked; every PIN verified, target slot empty and attestation certificate chained.")
	if err := tr.Record("pre-flight passed", map[string]any{"devices": len(c.Devices())}); err != nil {
		return nil, err
	}
	if b.resume != nil {
		// From here on the resumed keys are this run's: a failure lists
		// them as orphans like the keys it generates. Not before: a run
		// stopped in its pre-flight leaves them to the next rerun, which
		// resumes from the same journal, and telling the room to clear
		// them would throw away keys that are still good.
		for _, k := range b.resume.Keys {
			s.tried = append(s.tried, attempt{role: k.Role, serial: k.Serial, slot: k.Slot})
		}
	}
	res := &BootstrapResult{}
	roles := b.roles()
	// gen[role][i] is the key of the role's i-th key spec. The batch form
	// generates role by role; guided, each device generates all its keys
	// in one turn.
	type job struct {
		role string
		i    int
		ks   KeySpec
	}
	var jobs []job
	gen := map[string][]*GeneratedKey{}
	for _, r := range roles {
		gen[r.name] = make([]*GeneratedKey, len(r.spec.Keys))
		for i, ks := range r.spec.Keys {
			jobs = append(jobs, job{r.name, i, ks})
		}
	}
	if guided {
		sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].ks.Device < jobs[j].ks.Device })
	}
	b.Guide.setPurpose(" to generate its keys")
	for n, jb := range jobs {
		g, err := b.generate(s, jb.role, jb.ks, opts)
		if err != nil {
			return nil, err
		}
		gen[jb.role][jb.i] = g
		if err := b.recordKey(out, tr, g); err != nil {
			return nil, err
		}
		res.Keys = append(res.Keys, *g)
		if guided && (n == len(jobs)-1 || jobs[n+1].ks.Device != jb.ks.Device) {
			if err := b.Guide.turnDone(jb.ks.Device, "keys generated"); err != nil {
				return nil, err
			}
		}
	}
	roleKeys := map[string][]*keys.Key{}
	for _, r := range roles {
		for _, g := range gen[r.name] {
			roleKeys[r.name] = append(roleKeys[r.name], g.Key)
		}
	}

	root, targets, stable, err := b.buildMetadata(roleKeys)
	if err != nil {
		return nil, err
	}
	if err := b.sign(s, gen, root, targets, stable, tr); err != nil {
		return nil, err
	}
	// The same checks as the pre-flight's, on the real keys and
	// signatures, before anything is written.
	if err := b.Guide.stepTo("selfcheck"); err != nil {
		return nil, err
	}
	if err := b.checkMetadata(root, targets, stable, 0); err != nil {
		return nil, fmt.Errorf("self-check of the new metadata: %w", err)
	}
	return b.finish(out, tr, res, root, targets, stable)
}

// recordKey records a key just generated and writes its public key and
// attestation chain.
func (b *Bootstrap) recordKey(out *outdir.Dir, tr *Transcript, g *GeneratedKey) error {
	detail := map[string]any{
		"role": g.Role, "device": g.Device.Serial, "slot": g.Slot.String(), "keyid": g.Key.ID(), "public_key": g.Key,
		"pin_policy": g.Attested.PINPolicy, "touch_policy": g.Attested.TouchPolicy,
	}
	if b.resume.key(g.Device.Serial, g.Slot) != nil {
		detail["resumed_from"] = b.resume.Journal
	}
	if err := tr.Record("key generated and attested", detail); err != nil {
		return err
	}
	return writeKey(out, g)
}

// sign has every key sign its role's v1: in the batch form role by
// role; guided, device by device (signInTurns), each device signing
// everything its keys sign in one turn.
func (b *Bootstrap) sign(s *session, gen map[string][]*GeneratedKey, root *tuf.Metadata[tuf.Root], targets, stable *tuf.Metadata[tuf.Targets], tr *Transcript) error {
	c := b.Config
	steps := []roleSigning{
		{"root", c.Root, root.SignedBytes, root.Sign},
		{"targets", c.Targets, targets.SignedBytes, targets.Sign},
		{"stable", c.Stable, stable.SignedBytes, stable.Sign},
	}
	var turns map[string][]keys.Signer
	if b.Guide != nil {
		var err error
		if turns, err = b.signInTurns(s, steps, gen); err != nil {
			return err
		}
	}
	for _, step := range steps {
		signers := turns[step.role]
		if signers == nil {
			var err error
			if signers, err = s.signers(step.spec); err != nil {
				return err
			}
		}
		if err := step.sign(signers...); err != nil {
			return fmt.Errorf("signing %s: %w", step.role, err)
		}
		ids := make([]string, len(signers))
		for i, sg := range signers {
			ids[i] = sg.Key().ID()
		}
		if err := tr.Record(step.role+" v1 signed", map[string]any{"keyids": ids}); err != nil {
			return err
		}
	}
	return nil
}

// finish writes the metadata and the run sheet, and records the end.
func (b *Bootstrap) finish(out *outdir.Dir, tr *Transcript, res *BootstrapResult, root *tuf.Metadata[tuf.Root], targets, stable *tuf.Metadata[tuf.Targets]) (*BootstrapResult, error) {
	c := b.Config
	b.Guide.say("self-check passed: root %d-of-%d, targets %d-of-%d and stable %d-of-%d verified.", c.Root.Threshold, len(c.Root.Keys), c.Targets.Threshold, len(c.Targets.Keys), c.Stable.Threshold, len(c.Stable.Keys))
	if err := b.Guide.stepTo("readback"); err != nil {
		return nil, err
	}
	for name, m := range map[string]interface{ MarshalFile() ([]byte, error) }{
		"metadata/1.root.json": root, "metadata/1.targets.json": targets, "metadata/1.stable.json": stable,
	} {
		data, err := m.MarshalFile()
		if err != nil {
			return nil, err
		}
		if err := out.WriteFile(name, data); err != nil {
			return nil, err
		}
	}
	sheet, err := b.runSheet(res)
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile("runsheet.md", sheet); err != nil {
		return nil, err
	}
	if b.Backup != "" {
		if res.State, err = BootstrapState(c.Repository, root, b.Now); err != nil {
			return nil, err
		}
		if err := tr.Record("backup state", res.State.recordFields()); err != nil {
			return nil, err
		}
	}
	if err := tr.Record("bootstrap finished", map[string]any{
		"root_keyids": root.Signed.Roles[tuf.RoleRoot].KeyIDs, "root_threshold": c.Root.Threshold,
	}); err != nil {
		return nil, err
	}
	res.Root, res.Targets, res.Stable = root, targets, stable
	return res, nil
}

// DelegationFor builds a non-terminating delegation covering paths.
func DelegationFor(name string, ks []*keys.Key, threshold int, paths []string) tuf.DelegatedRole {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID()
	}
	sort.Strings(ids)
	return tuf.DelegatedRole{Name: name, KeyIDs: ids, Threshold: threshold, Terminating: false, Paths: append([]string(nil), paths...)}
}

// connected records a device as connected (guided: it is asked for if
// it is not in).
func (b *Bootstrap) connected(s *session, tr *Transcript, serial uint32) error {
	d, err := s.device(serial)
	if err != nil {
		return err
	}
	info := d.Info()
	return tr.Record("device connected", map[string]any{"serial": info.Serial, "kind": info.Kind, "firmware": info.Firmware, "form_factor": info.FormFactor, "insecure": info.Insecure})
}

// preflight checks, before the first key is generated, everything that
// can be checked without changing a device: the metadata the
// configuration describes, built and signed with placeholder keys, passes
// every check the written metadata must pass (dryRun); every slot is named
// once (preflightConfig); every root key is allowed on its device's
// firmware and every target slot empty (deviceSlots); every device's
// attestation certificate chains to the trusted roots at the ceremony's
// time; and every device's PIN is right (read and verified once, then
// kept for the ceremony), in that order, so that a refusal that needs no
// PIN comes before any PIN is asked. The guided form checks the devices
// one at a time instead (preflightDevice). A bootstrap that fails here
// leaves every device as it was.
func (b *Bootstrap) preflight(s *session) error {
	if err := b.preflightConfig(); err != nil {
		return err
	}
	for _, serial := range b.Config.Devices() {
		if err := b.deviceSlots(s, serial); err != nil {
			return err
		}
	}
	for _, serial := range b.Config.Devices() {
		d, err := s.device(serial)
		if err != nil {
			return err
		}
		if err := b.checkAttestationRoot(d); err != nil {
			return err
		}
	}
	for _, serial := range b.Config.Devices() {
		d, err := s.device(serial)
		if err != nil {
			return err
		}
		if _, err := s.pinFor(d); err != nil {
			return err
		}
	}
	return nil
}

// preflightConfig is the pre-flight's part that needs no device: the
// metadata with placeholder keys (dryRun) and every slot named once.
func (b *Bootstrap) preflightConfig() error {
	opts, err := b.Config.KeyOptions()
	if err != nil {
		return err
	}
	if err := b.dryRun(opts.Algorithm); err != nil {
		return err
	}
	type place struct {
		serial uint32
		slot   hsm.Slot
	}
	seen := map[place]string{}
	for _, r := range b.roles() {
		for _, ks := range r.spec.Keys {
			slot, err := hsm.ParseSlot(ks.Slot)
			if err != nil {
				return fmt.Errorf("%s key on %d: %w", r.name, ks.Device, err)
			}
			p := place{ks.Device, slot}
			if other, ok := seen[p]; ok {
				return fmt.Errorf("slot %s of device %d is named for the %s key and the %s key: %w", slot, ks.Device, other, r.name, ErrConfig)
			}
			seen[p] = r.name
		}
	}
	return nil
}

// preflightDevice is one device's pre-flight, in its turn: every root
// key it will hold allowed on its firmware, every target slot empty
// (unless it was opened to replace keys, or an interrupted run's journal
// names the key in it), its attestation certificate chained to the
// trusted roots, and its PIN.
func (b *Bootstrap) preflightDevice(s *session, serial uint32) error {
	if err := b.deviceSlots(s, serial); err != nil {
		return err
	}
	d, err := s.device(serial)
	if err != nil {
		return err
	}
	if err := b.checkAttestationRoot(d); err != nil {
		return err
	}
	_, err = s.pinFor(d)
	return err
}

// deviceSlots checks a device's firmware for the root keys it will hold
// and that every target slot is empty.
func (b *Bootstrap) deviceSlots(s *session, serial uint32) error {
	opts, err := b.Config.KeyOptions()
	if err != nil {
		return err
	}
	d, err := s.device(serial)
	if err != nil {
		return err
	}
	for _, r := range b.roles() {
		for _, ks := range r.spec.Keys {
			if ks.Device != serial {
				continue
			}
			slot, err := hsm.ParseSlot(ks.Slot)
			if err != nil {
				return fmt.Errorf("%s key on %d: %w", r.name, ks.Device, err)
			}
			if r.name == "root" {
				if err := piv.CheckRootKey(d.Info(), opts.Algorithm, b.AllowAffectedFirmware); err != nil {
					return err
				}
			}
			// A slot an interrupted run's journal names holds its key
			// (resume.check); every other must be empty.
			resumed := b.resume.key(ks.Device, slot) != nil
			if kr, ok := d.(hsm.KeyReplacer); !resumed && (!ok || !kr.ReplacesKeys()) {
				if pub, err := d.PublicKey(slot); err == nil {
					if b.resume != nil {
						// Most likely the key the interrupted run generated
						// just before it died, before its journal said so.
						id := "(of a kind keyceremony does not use)"
						if k, err := keys.FromPublicKey(pub); err == nil {
							id = k.ID()
						}
						return fmt.Errorf("the %s key's slot %s of %s holds key %s, which the interrupted run's journal %s does not name: a run stopped between generating a key and recording it leaves one; if the device is this ceremony's, clear that slot alone (%s) and run again to resume: %w", r.name, slot, d.Info(), id, b.resume.Journal, clearCommand(d, slot), hsm.ErrSlotOccupied)
					}
					return fmt.Errorf("the %s key's slot %s of %s: %w", r.name, slot, d.Info(), hsm.ErrSlotOccupied)
				} else if !errors.Is(err, hsm.ErrSlotEmpty) {
					return fmt.Errorf("reading slot %s of %s: %w", slot, d.Info(), err)
				}
			}
		}
	}
	return nil
}

// roles are the offline roles in ceremony order.
func (b *Bootstrap) roles() []struct {
	name string
	spec RoleSpec
} {
	c := b.Config
	return []struct {
		name string
		spec RoleSpec
	}{{"root", c.Root}, {"targets", c.Targets}, {"stable", c.Stable}}
}

func (b *Bootstrap) generate(s *session, role string, ks KeySpec, opts hsm.KeyOptions) (*GeneratedKey, error) {
	d, err := s.device(ks.Device)
	if err != nil {
		return nil, err
	}
	slot, err := hsm.ParseSlot(ks.Slot)
	if err != nil {
		return nil, err
	}
	if err := s.guide.stepTo(fmt.Sprintf("generate/%s/%d", role, ks.Device)); err != nil {
		return nil, err
	}
	info := d.Info()
	for _, adv := range piv.Advisories(info, opts.Algorithm) {
		if b.Show != nil {
			fmt.Fprintf(b.Show, "     WARNING: %s: %s\n", info, adv)
		}
	}
	if role == "root" {
		if err := piv.CheckRootKey(info, opts.Algorithm, b.AllowAffectedFirmware); err != nil {
			return nil, err
		}
	}
	var pub crypto.PublicKey
	if rk := b.resume.key(info.Serial, slot); rk != nil {
		// Generated by the interrupted run: read back (resume.check saw
		// the journal's key there), attested again below.
		if b.Show != nil {
			fmt.Fprintf(b.Show, "     the %s key in slot %s of %s was generated by the interrupted run: read back and attested again\n", role, slot, info)
		}
		b.Guide.say("the %s key in slot %s was generated by the interrupted run; compare its check words with the run sheet.", role, slot)
		if pub, err = d.PublicKey(slot); err != nil {
			return nil, fmt.Errorf("reading back the %s key in slot %s of %s: %w", role, slot, info, err)
		}
		if k, err := keys.FromPublicKey(pub); err != nil || k.ID() != rk.Key.ID() {
			return nil, fmt.Errorf("slot %s of %s no longer holds the key the journal %s names: %w", slot, info, b.resume.Journal, ErrResume)
		}
	} else {
		pin, err := s.pinFor(d)
		if err != nil {
			return nil, err
		}
		if b.Show != nil {
			fmt.Fprintf(b.Show, "     generating the %s key in slot %s of %s\n", role, slot, info)
		}
		s.tried = append(s.tried, attempt{role: role, serial: info.Serial, slot: slot})
		if pub, err = d.GenerateKey(pin, slot, opts); err != nil {
			return nil, fmt.Errorf("generating the %s key in slot %s of %s: %w", role, slot, info, err)
		}
	}
	k, err := keys.FromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%s key from %s: %w", role, info, err)
	}
	if n := len(s.tried); n > 0 && s.tried[n-1].serial == info.Serial && s.tried[n-1].slot == slot {
		s.tried[n-1].keyID = k.ID()
	}
	att, err := d.Attest(slot)
	if err != nil {
		return nil, fmt.Errorf("attesting slot %s of %s: %w", slot, info, err)
	}
	a, err := b.checkAttestation(info, slot, opts, k, att)
	if err != nil {
		return nil, err
	}
	if b.Show != nil {
		fmt.Fprintf(b.Show, "     key id %s\n", k.ID())
	}
	s.guide.showKey(role, info.Serial, k)
	return &GeneratedKey{Role: role, Device: info, Slot: slot, Key: k, Attested: a, Att: att}, nil
}

func writeKey(out *outdir.Dir, g *GeneratedKey) error {
	base := fmt.Sprintf("keys/%s-%d-%s", g.Role, g.Device.Serial, g.Slot)
	kj, err := json.MarshalIndent(g.Key, "", " ")
	if err != nil {
		return err
	}
	if err := out.WriteFile(base+".pub.json", append(kj, '\n')); err != nil {
		return err
	}
	var chain bytes.Buffer
	for _, c := range g.Att.Certificates() {
		if err := pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return err
		}
	}
	return out.WriteFile(base+".attestation.pem", chain.Bytes())
}

// buildMetadata makes root v1, targets v1 and an empty stable v1 from the
// configuration and the offline roles' keys, unsigned.
func (b *Bootstrap) buildMetadata(roleKeys map[string][]*keys.Key) (*tuf.Metadata[tuf.Root], *tuf.Metadata[tuf.Targets], *tuf.Metadata[tuf.Targets], error) {
	c := b.Config
	root := tuf.NewRoot(1, b.Now.AddDate(0, 0, c.ExpiresDays.Root))
	for _, r := range []struct {
		name string
		spec RoleSpec
	}{{tuf.RoleRoot, c.Root}, {tuf.RoleTargets, c.Targets}} {
		for _, k := range roleKeys[r.name] {
			if err := root.Signed.AddKey(r.name, k); err != nil {
				return nil, nil, nil, err
			}
		}
		root.Signed.Roles[r.name].Threshold = r.spec.Threshold
	}
	for _, name := range []string{tuf.RoleSnapshot, tuf.RoleTimestamp} {
		o := c.Online[name]
		for _, k := range o.Keys {
			if err := root.Signed.AddKey(name, k); err != nil {
				return nil, nil, nil, err
			}
		}
		root.Signed.Roles[name].Threshold = o.Threshold
	}

	targets := tuf.NewTargets(1, b.Now.AddDate(0, 0, c.ExpiresDays.Targets))
	targets.Signed.AddDelegation(DelegationFor("stable", roleKeys["stable"], c.Stable.Threshold, stableset.StablePaths(c.TargetPaths)), roleKeys["stable"]...)
	unstable := c.Online["unstable"]
	targets.Signed.AddDelegation(DelegationFor("unstable", unstable.Keys, unstable.Threshold, c.TargetPaths), unstable.Keys...)

	stable := tuf.NewTargets(1, b.Now.AddDate(0, 0, c.ExpiresDays.Stable))
	return root, targets, stable, nil
}

// placeholderSlack is how many bytes a real signature may take beyond a
// placeholder's in the written file: a DER ECDSA signature is 70 to 72
// bytes (hex: up to 8 characters more, and rarely shorter placeholders).
const placeholderSlack = 16

// dryRun builds the metadata the configuration describes with placeholder
// keys of the configured algorithm, made in memory and dropped, signs it
// with every key as the ceremony will, and runs checkMetadata on it, so
// that a configuration whose metadata would be refused is refused before
// any key is generated on any device.
func (b *Bootstrap) dryRun(alg hsm.Algorithm) error {
	c := b.Config
	roleKeys := map[string][]*keys.Key{}
	signers := map[string][]keys.Signer{}
	for _, r := range []struct {
		name string
		spec RoleSpec
	}{{"root", c.Root}, {"targets", c.Targets}, {"stable", c.Stable}} {
		for range r.spec.Keys {
			var sg keys.Signer
			var err error
			if alg == hsm.AlgEd25519 {
				sg, err = keys.GenerateEd25519()
			} else {
				sg, err = keys.GenerateECDSA()
			}
			if err != nil {
				return err
			}
			roleKeys[r.name] = append(roleKeys[r.name], sg.Key())
			signers[r.name] = append(signers[r.name], sg)
		}
	}
	root, targets, stable, err := b.buildMetadata(roleKeys)
	if err == nil {
		err = root.Sign(signers["root"]...)
	}
	if err == nil {
		err = targets.Sign(signers["targets"]...)
	}
	if err == nil {
		err = stable.Sign(signers["stable"]...)
	}
	if err == nil {
		err = b.checkMetadata(root, targets, stable, placeholderSlack)
	}
	if err != nil {
		return fmt.Errorf("%w: the metadata it describes would be refused (pre-flight with placeholder keys; no key was generated): %w", ErrConfig, err)
	}
	return nil
}

// checkMetadata runs every check the bootstrap's metadata must pass before
// it is written: each file within its client size limit (less slack bytes
// per signature, for placeholder signatures), loadable by the strict
// loader (thresholds within the keys, key ids, no key twice), signed by
// each role's threshold, the delegations laid out as clients need them
// (stable first, both non-terminating, the same paths, no key shared), no
// online key among the offline roles' keys, and every expiry after the
// ceremony's time.
func (b *Bootstrap) checkMetadata(root *tuf.Metadata[tuf.Root], targets, stable *tuf.Metadata[tuf.Targets], slack int) error {
	for _, f := range []struct {
		name  string
		m     interface{ MarshalFile() ([]byte, error) }
		sigs  int
		limit int
		load  func([]byte, string) error
	}{
		{"1.root.json", root, len(root.Signatures), tuf.MaxRootBytes, func(d []byte, n string) error { _, err := tuf.Load[tuf.Root](d, n); return err }},
		{"1.targets.json", targets, len(targets.Signatures), tuf.MaxTargetsBytes, func(d []byte, n string) error { _, err := tuf.Load[tuf.Targets](d, n); return err }},
		{"1.stable.json", stable, len(stable.Signatures), tuf.MaxTargetsBytes, func(d []byte, n string) error { _, err := tuf.Load[tuf.Targets](d, n); return err }},
	} {
		data, err := f.m.MarshalFile()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if n := len(data) + slack*f.sigs; n > f.limit {
			return fmt.Errorf("%s: %d bytes, over the client limit of %d: %w", f.name, n, f.limit, tuf.ErrTooLarge)
		}
		if err := f.load(data, f.name); err != nil {
			return err
		}
	}
	msg, err := root.SignedBytes()
	if err != nil {
		return err
	}
	if err := root.Signed.VerifyRole(tuf.RoleRoot, msg, root.Signatures); err != nil {
		return fmt.Errorf("1.root.json: %w", err)
	}
	if msg, err = targets.SignedBytes(); err != nil {
		return err
	}
	if err := root.Signed.VerifyRole(tuf.RoleTargets, msg, targets.Signatures); err != nil {
		return fmt.Errorf("1.targets.json: %w", err)
	}
	if msg, err = stable.SignedBytes(); err != nil {
		return err
	}
	if err := targets.Signed.VerifyDelegate("stable", msg, stable.Signatures); err != nil {
		return fmt.Errorf("1.stable.json: %w", err)
	}
	if err := tuf.CheckTopLayout(&targets.Signed); err != nil {
		return fmt.Errorf("1.targets.json: %w", err)
	}
	offline := map[string]string{}
	for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets} {
		for _, id := range root.Signed.Roles[role].KeyIDs {
			offline[id] = role
		}
	}
	if d, ok := targets.Signed.Delegation("stable"); ok {
		for _, id := range d.KeyIDs {
			offline[id] = "stable"
		}
	}
	for _, name := range OnlineRoles {
		for i, k := range b.Config.Online[name].Keys {
			if role, ok := offline[k.ID()]; ok {
				return fmt.Errorf("online.%s.keys[%d] (key id %s) is also a %s key: an online key must not sign an offline role: %w", name, i, k.ID(), role, ErrConfig)
			}
		}
	}
	for _, e := range []struct {
		name    string
		expires tuf.Expiry
	}{{"1.root.json", root.Signed.Expires}, {"1.targets.json", targets.Signed.Expires}, {"1.stable.json", stable.Signed.Expires}} {
		if !e.expires.Time().After(b.Now) {
			return fmt.Errorf("%s: expires %s, not after the ceremony time %s: %w", e.name, e.expires, b.Now.UTC().Format(time.RFC3339), ErrConfig)
		}
	}
	return nil
}

func (b *Bootstrap) runSheet(res *BootstrapResult) ([]byte, error) {
	t, err := template.New("runsheet").Parse(string(templates.MustRead("runsheet-bootstrap.md")))
	if err != nil {
		return nil, fmt.Errorf("run sheet template: %w", err)
	}
	var devs, ks []string
	for _, serial := range b.Config.Devices() {
		devs = append(devs, b.Devices[serial].Info().String())
	}
	for _, g := range res.Keys {
		ks = append(ks, fmt.Sprintf("%-8s device %d slot %s key id %s", g.Role, g.Device.Serial, g.Slot, g.Key.ID()))
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, map[string]any{
		"Repository": b.Config.Repository, "Date": b.Now.UTC().Format(time.RFC3339), "Version": b.Version,
		"Devices": devs, "Keys": ks,
	})
	return buf.Bytes(), err
}
