package ceremony

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// rotationMedia is one published repository (root 2 of 3, targets 1 of
// 2, stable 2 of 3) and, made from it, the media of every rotation kind
// and of a handover: the root key of device 0 replaced, a root key added
// for a keyholder who joins, device 0's targets key and its stable key
// replaced, the online keys replaced, device 2 handed over.
type rotationMedia struct {
	f        *fixture
	boot     *BootstrapResult
	repo     string
	rootFile string
	spare    hsm.Device // holds the replacement keys (9c, 82, 83)
	joiner   hsm.Device // the joining keyholder's device (9c)
	pins     map[uint32]string
	media    map[string]string // by kind: replace, add, targets, stable, online, handover
	now      time.Time
}

const handedOver = 2 // index in demoSerials of the device handed over

func newRotationMedia(t *testing.T) *rotationMedia {
	t.Helper()
	f := newFixture(t)
	dir := t.TempDir()
	rm := &rotationMedia{f: f, repo: filepath.Join(dir, "repo"), pins: map[uint32]string{}, media: map[string]string{}, now: time.Now().UTC().Truncate(time.Second)}
	f.pins = func(info hsm.Info, _ int) (string, error) {
		if p, ok := rm.pins[info.Serial]; ok {
			return p, nil
		}
		return soft.DefaultPIN, nil
	}
	bs := f.bootstrap()
	backup := withBackup(t, bs)
	boot, err := bs.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	rm.boot = boot
	publishRepo(t, rm.repo, f.repo, []*tuf.Metadata[tuf.Root]{boot.Root}, boot.Targets, boot.Stable, []byte("example 1.0\n"))
	rm.rootFile = filepath.Join(rm.repo, "metadata", "1.root.json")
	for i, p := range []*hsm.Device{&rm.spare, &rm.joiner} {
		d, err := soft.Create(filepath.Join(dir, "spare", string(rune('a'+i))), uint32(10000009+i), f.ca, soft.CreateOptions{KDF: soft.KDFTest})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		*p = d
	}
	lost := demoSerials[0]
	without := map[uint32]hsm.Device{rm.spare.Info().Serial: rm.spare}
	for s, d := range f.devices {
		if s != lost {
			without[s] = d
		}
	}
	spare := rm.spare.Info().Serial
	common := func(kind string) string { rm.media[kind] = filepath.Join(dir, kind); return rm.media[kind] }
	r := &RootRotation{Root: boot.Root, Published: rm.repo, Config: f.cfg, Replace: rm.keyOf(t, "root", lost), New: KeySpec{Device: spare, Slot: "9c"},
		Reason: "device lost", Devices: without, PIN: f.pins, Roots: f.ca.Pool(), Now: rm.now, Version: "test"}
	if _, err := r.Run(common("replace")); err != nil {
		t.Fatal(err)
	}
	all := map[uint32]hsm.Device{rm.joiner.Info().Serial: rm.joiner}
	for s, d := range f.devices {
		all[s] = d
	}
	r = &RootRotation{Root: boot.Root, Published: rm.repo, Config: f.cfg, Add: true, New: KeySpec{Device: rm.joiner.Info().Serial, Slot: "9c"},
		Reason: "Erin joins", Devices: all, PIN: f.pins, Roots: f.ca.Pool(), Now: rm.now, Version: "test"}
	if _, err := r.Run(common("add")); err != nil {
		t.Fatal(err)
	}
	for role, slot := range map[string]string{"targets": "82", "stable": "83"} {
		k := &RoleKeyRotation{Role: role, Root: boot.Root, Published: rm.repo, Config: f.cfg, Replace: rm.keyOf(t, role, lost), New: KeySpec{Device: spare, Slot: slot},
			Reason: "device lost", Devices: without, PIN: f.pins, Roots: f.ca.Pool(), Backup: backup, Now: rm.now, Version: "test"}
		if _, err := k.Run(common(role)); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := newSimRepo(rm.now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *f.cfg
	cfg.Online = fresh.online()
	if _, err := (&OnlineRotation{Root: boot.Root, Published: rm.repo, Config: &cfg, Reason: "servers compromised", Devices: f.devices, PIN: f.pins, Now: rm.now, Version: "test"}).Run(common("online")); err != nil {
		t.Fatal(err)
	}
	ho := demoSerials[handedOver]
	h := &Handover{Root: boot.Root, Published: rm.repo, Config: f.cfg, Device: ho, To: "Dora", Devices: f.devices, PIN: f.pins,
		NewPIN: func(hsm.Info) (string, error) { return "24681357", nil }, Now: rm.now, Version: "test"}
	if _, err := h.Run(common("handover")); err != nil {
		t.Fatal(err)
	}
	rm.pins[ho] = "24681357"
	return rm
}

// keyOf is the key id of role's key on device serial in the bootstrap.
func (rm *rotationMedia) keyOf(t *testing.T, role string, serial uint32) string {
	t.Helper()
	for _, g := range rm.boot.Keys {
		if g.Role == role && g.Device.Serial == serial {
			return g.Key.ID()
		}
	}
	t.Fatalf("no %s key on device %d", role, serial)
	return ""
}

// signer is the key in slot of device serial (a bootstrap device, the
// spare or the joiner).
func (rm *rotationMedia) signer(t *testing.T, serial uint32, slot hsm.Slot) keys.Signer {
	t.Helper()
	devs := map[uint32]hsm.Device{rm.spare.Info().Serial: rm.spare, rm.joiner.Info().Serial: rm.joiner}
	for s, d := range rm.f.devices {
		devs[s] = d
	}
	sg, err := (&session{devices: devs, pin: rm.f.pins, pins: map[uint32]string{}}).signer(serial, slot)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// resign rewrites the medium's metadata file (relative to dir) as edit
// makes it, signed by signers, and the transcript's last entry names its
// new digest under key: what keyholders who sign more than the rotation
// would, or someone who handles the media with a key, can make.
func resign[T tuf.Signed](t *testing.T, dir, file, key string, edit func(*tuf.Metadata[T]), signers ...keys.Signer) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(file))
	m, err := tuf.Load[T](mustRead(t, p), filepath.Base(file))
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	m.Signatures = nil
	if err := m.Sign(signers...); err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256Hex(b)
	setLast(t, dir, func(e *TranscriptEntry) { e.Detail[key] = sum })
}

// setLast edits the transcript's last entry (the chain re-made).
func setLast(t *testing.T, dir string, edit func(*TranscriptEntry)) {
	t.Helper()
	_, last, err := VerifyTranscript(bytes.NewReader(mustRead(t, filepath.Join(dir, JournalFile))), JournalFile)
	if err != nil {
		t.Fatal(err)
	}
	rewriteTranscript(t, filepath.Join(dir, JournalFile), func(e *TranscriptEntry) {
		if e.Seq == last {
			edit(e)
		}
	})
}

// signEnd replaces the medium's signed end with one signers made over
// its journal as it now is.
func signEnd(t *testing.T, dir, ceremony string, signers ...keys.Signer) {
	t.Helper()
	b, err := journalEnvelope(mustRead(t, filepath.Join(dir, JournalFile)), ceremony, "demo", signers)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, JournalEnvelopeFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAuditRefusesTamperedRotationMedia: the media of every rotation kind
// and of a handover, edited as an attacker would (holding a revoked key,
// an online key, or only the media) or as keyholders who sign more than
// the rotation: each is refused by verify, naming what is wrong. Every
// untouched medium passes first.
func TestAuditRefusesTamperedRotationMedia(t *testing.T) {
	rm := newRotationMedia(t)
	d0, d1, d2 := demoSerials[0], demoSerials[1], demoSerials[2]
	spare, joiner := rm.spare.Info().Serial, rm.joiner.Info().Serial
	revokedRoot := rm.signer(t, d0, 0x9c)
	opts := func(dir string) AuditOptions {
		return AuditOptions{Root: rm.rootFile, Dir: dir, Previous: rm.repo, SoftCA: filepath.Join(caDir, "ca"), At: rm.now}
	}
	for kind, dir := range rm.media {
		if _, err := Audit(opts(dir)); err != nil {
			t.Fatalf("the untouched %s medium: %v", kind, err)
		}
	}
	rootV2 := "metadata/2.root.json"
	targetsV2 := "metadata/2.targets.json"
	stableV2 := "metadata/2.stable.json"
	noEdit := func(*tuf.Metadata[tuf.Root]) {}
	// After the rotation was published: a repository at root v2.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := copyDir(rm.repo, moved); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(rm.media["replace"], rootV2), filepath.Join(moved, rootV2))

	for _, c := range []struct {
		name, kind string
		edit       func(t *testing.T, dir string) (previous string)
		want       string
		is         error
	}{
		// A root key replaced.
		{"root signed only by the new threshold", "replace", func(t *testing.T, dir string) string {
			resign(t, dir, rootV2, "sha256", noEdit, rm.signer(t, spare, 0x9c))
			return ""
		}, "a new root must be signed by the threshold of root v1 (the previous medium's newest) and by its own: 2.root.json: role root: 0 of 2 required signatures valid", tuf.ErrThreshold},
		{"root signed only by the old threshold, the revoked key counted", "replace", func(t *testing.T, dir string) string {
			resign(t, dir, rootV2, "sha256", noEdit, revokedRoot, rm.signer(t, d1, 0x9c))
			return ""
		}, "and by its own: 2.root.json: role root: 1 of 2 required signatures valid", tuf.ErrThreshold},
		{"root threshold lowered", "replace", func(t *testing.T, dir string) string {
			resign(t, dir, rootV2, "sha256", func(m *tuf.Metadata[tuf.Root]) { m.Signed.Roles["root"].Threshold = 1 }, rm.signer(t, d1, 0x9c), rm.signer(t, d2, 0x9c), rm.signer(t, spare, 0x9c))
			return ""
		}, "metadata/2.root.json sets the root threshold to 1; root v1's is 2, and a key rotation keeps it", ErrMediumContent},
		{"the old root under the new name", "replace", func(t *testing.T, dir string) string {
			copyFile(t, rm.rootFile, filepath.Join(dir, rootV2))
			sum := sha256Hex(mustRead(t, filepath.Join(dir, rootV2)))
			setLast(t, dir, func(e *TranscriptEntry) { e.Detail["sha256"] = sum })
			return ""
		}, "wrong metadata version", tuf.ErrVersion},
		{"the rotation replayed against the repository that published it", "replace", func(t *testing.T, dir string) string {
			return moved
		}, "metadata/2.root.json: the chain from root v2 on the previous medium ends at v2; the transcript (line", tuf.ErrVersion},
		{"the revoked key signs the end", "replace", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyRotation, rm.signer(t, d1, 0x9c), rm.signer(t, d2, 0x9c), rm.signer(t, spare, 0x9c), revokedRoot)
			return ""
		}, "transcript.dsse.json: key " + revokedRoot.Key().ID() + " signed, but it is not a key of root v1 without the revoked keys or root v2", ErrJournalEnvelope},
		{"the end signed by the new key alone", "replace", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyRotation, rm.signer(t, spare, 0x9c))
			return ""
		}, "transcript.dsse.json: role root v1 without the revoked keys (transcript): 0 of 2 required signatures valid", ErrJournalEnvelope},
		{"the end signed by one remaining old key", "replace", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyRotation, rm.signer(t, d1, 0x9c))
			return ""
		}, "role root v1 without the revoked keys (transcript): 1 of 2 required signatures valid", ErrJournalEnvelope},
		{"the envelope removed", "replace", func(t *testing.T, dir string) string {
			os.Remove(filepath.Join(dir, JournalEnvelopeFile))
			return ""
		}, "transcript.dsse.json is missing: the medium's journal ends with it", tuf.ErrMissing},
		{"the journal re-chained without the keys", "replace", func(t *testing.T, dir string) string {
			rewriteTranscript(t, filepath.Join(dir, JournalFile), func(e *TranscriptEntry) {
				if e.Step == "rotation started" {
					e.Detail["reason"] = "routine"
				}
			})
			return ""
		}, `transcript.dsse.json signs keyceremony-transcript "rotation" with`, ErrJournalEnvelope},
		{"the checklist edited", "replace", func(t *testing.T, dir string) string {
			replaceFile(t, filepath.Join(dir, RotationChecklist), "Publish at once", "Publish next month")
			return ""
		}, "rotation-checklist.md has sha256", ErrMediumContent},
		{"the checklist edited and the journal re-chained to name it", "replace", func(t *testing.T, dir string) string {
			replaceFile(t, filepath.Join(dir, RotationChecklist), "Publish at once", "Publish next month")
			sum := sha256Hex(mustRead(t, filepath.Join(dir, RotationChecklist)))
			setLast(t, dir, func(e *TranscriptEntry) { e.Detail["checklist_sha256"] = sum })
			return ""
		}, `transcript.dsse.json signs keyceremony-transcript "rotation" with`, ErrJournalEnvelope},

		// A keyholder joins.
		{"a join that drops a key", "add", func(t *testing.T, dir string) string {
			gone := rm.keyOf(t, "root", d0)
			resign(t, dir, rootV2, "sha256", func(m *tuf.Metadata[tuf.Root]) {
				r := m.Signed.Roles["root"]
				r.KeyIDs = slices.DeleteFunc(r.KeyIDs, func(id string) bool { return id == gone })
			}, rm.signer(t, d1, 0x9c), rm.signer(t, d2, 0x9c), rm.signer(t, joiner, 0x9c))
			setLast(t, dir, func(e *TranscriptEntry) { e.Detail["revoked"] = []any{gone} })
			return ""
		}, "metadata/2.root.json drops 1 root key(s) and adds 1; a root-key-added rotation drops 0 and adds 1", ErrMediumContent},
		{"a join signed by the new key alone", "add", func(t *testing.T, dir string) string {
			resign(t, dir, rootV2, "sha256", noEdit, rm.signer(t, joiner, 0x9c))
			return ""
		}, "a new root must be signed by the threshold of root v1 (the previous medium's newest) and by its own: 2.root.json: role root: 0 of 2 required signatures valid", tuf.ErrThreshold},
		{"a join's end signed by the new key alone", "add", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyRotation, rm.signer(t, joiner, 0x9c))
			return ""
		}, "role root v1 (transcript): 0 of 2 required signatures valid", ErrJournalEnvelope},

		// A targets key replaced.
		{"targets signed by the revoked key", "targets", func(t *testing.T, dir string) string {
			resign(t, dir, targetsV2, "targets_sha256", func(*tuf.Metadata[tuf.Targets]) {}, rm.signer(t, d0, 0x82))
			return ""
		}, "2.targets.json: role targets: 0 of 1 required signatures valid", tuf.ErrThreshold},
		{"a targets rotation's end signed by the targets key", "targets", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyRotation, rm.signer(t, spare, 0x82))
			return ""
		}, "signed, but it is not a key of root", ErrJournalEnvelope},

		// A stable key replaced.
		{"the revoked stable key kept", "stable", func(t *testing.T, dir string) string {
			gone := rm.keyOf(t, "stable", d0)
			resign(t, dir, targetsV2, "targets_sha256", func(m *tuf.Metadata[tuf.Targets]) {
				d, _ := m.Signed.Delegation("stable")
				d.KeyIDs = append(d.KeyIDs, gone)
				m.Signed.Delegations.Keys[gone] = rm.signer(t, d0, 0x83).Key()
			}, rm.signer(t, d1, 0x82))
			return ""
		}, "the new metadata drop stable keys [] and add", ErrMediumContent},
		{"stable signed again by the revoked key", "stable", func(t *testing.T, dir string) string {
			resign(t, dir, stableV2, "stable_sha256", func(*tuf.Metadata[tuf.Targets]) {}, rm.signer(t, d0, 0x83), rm.signer(t, spare, 0x83))
			return ""
		}, "2.stable.json, against the stable keys targets v2 delegates to: role stable: 1 of 2 required signatures valid", tuf.ErrThreshold},
		{"stable's delegations changed in the rotation", "stable", func(t *testing.T, dir string) string {
			resign(t, dir, stableV2, "stable_sha256", func(m *tuf.Metadata[tuf.Targets]) {
				k := rm.signer(t, d0, 0x83).Key()
				m.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{k.ID(): k},
					Roles: []tuf.DelegatedRole{{Name: "stable-0", KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: []string{"0"}}}}
			}, rm.signer(t, d1, 0x83), rm.signer(t, spare, 0x83))
			return ""
		}, "2.stable.json differs from stable v1 on the previous medium in more than version and expires (its ledger, bins and bin keys must stay)", ErrMediumContent},
		{"stable signed again at another version", "stable", func(t *testing.T, dir string) string {
			resign(t, dir, stableV2, "stable_sha256", func(m *tuf.Metadata[tuf.Targets]) { m.Signed.Version = 3 }, rm.signer(t, d1, 0x83), rm.signer(t, spare, 0x83))
			os.Rename(filepath.Join(dir, stableV2), filepath.Join(dir, "metadata", "3.stable.json"))
			setLast(t, dir, func(e *TranscriptEntry) {
				e.Detail["stable_file"], e.Detail["stable_version"] = "metadata/3.stable.json", 3
			})
			return ""
		}, "metadata/3.stable.json is stable version 3; the previous medium holds stable v1, so the rotation signs v2; the transcript (line", tuf.ErrVersion},
		{"the previous stable under the new name", "stable", func(t *testing.T, dir string) string {
			copyFile(t, filepath.Join(rm.repo, "metadata", "1.stable.json"), filepath.Join(dir, stableV2))
			sum := sha256Hex(mustRead(t, filepath.Join(dir, stableV2)))
			setLast(t, dir, func(e *TranscriptEntry) { e.Detail["stable_sha256"] = sum })
			return ""
		}, "metadata/2.stable.json is stable version 1; the previous medium holds stable v1, so the rotation signs v2", tuf.ErrVersion},
		{"stable left out of the rotation", "stable", func(t *testing.T, dir string) string {
			os.Remove(filepath.Join(dir, stableV2))
			return ""
		}, "metadata/ holds metadata/2.targets.json; the transcript (line", ErrMediumContent},
		{"the backup state names another stable", "stable", func(t *testing.T, dir string) string {
			rewriteTranscript(t, filepath.Join(dir, JournalFile), func(e *TranscriptEntry) {
				if e.Step == "backup state" {
					e.Detail["stable_sha256"] = strings.Repeat("0", 64)
				}
			})
			return ""
		}, "the backup state names stable_sha256 0000", ErrTranscript},
		{"a stable rotation's end signed by the root threshold", "stable", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyRotation, rm.signer(t, d1, 0x9c), rm.signer(t, d2, 0x9c))
			return ""
		}, "signed, but it is not a key of targets", ErrJournalEnvelope},

		// The online keys replaced.
		{"an online rotation's end signed by the targets key", "online", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyRotation, rm.signer(t, d1, 0x82))
			return ""
		}, "signed, but it is not a key of root", ErrJournalEnvelope},
		{"an online rotation's envelope removed", "online", func(t *testing.T, dir string) string {
			os.Remove(filepath.Join(dir, JournalEnvelopeFile))
			return ""
		}, "transcript.dsse.json is missing", tuf.ErrMissing},
		{"an online rotation's checklist edited", "online", func(t *testing.T, dir string) string {
			replaceFile(t, filepath.Join(dir, RotationChecklist), "the timestamp last", "the timestamp first")
			return ""
		}, "rotation-checklist.md has sha256", ErrMediumContent},

		// A device handed over.
		{"a handover's end signed by one of the device's keys", "handover", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyHandover, rm.signer(t, d2, 0x9c))
			return ""
		}, "role device 10000003's keys (transcript): 1 of 2 required signatures valid", ErrJournalEnvelope},
		{"a handover's end signed by another device's keys", "handover", func(t *testing.T, dir string) string {
			signEnd(t, dir, CeremonyHandover, rm.signer(t, d1, 0x9c), rm.signer(t, d1, 0x83))
			return ""
		}, "signed, but it is not a key of device 10000003's keys", ErrJournalEnvelope},
		{"a handover's envelope removed", "handover", func(t *testing.T, dir string) string {
			os.Remove(filepath.Join(dir, JournalEnvelopeFile))
			return ""
		}, "transcript.dsse.json is missing", tuf.ErrMissing},
		{"a handover's checklist edited", "handover", func(t *testing.T, dir string) string {
			replaceFile(t, filepath.Join(dir, HandoverChecklist), "Nothing is published", "Publish")
			return ""
		}, "handover-checklist.md has sha256", ErrMediumContent},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := copyDir(rm.media[c.kind], dir); err != nil {
				t.Fatal(err)
			}
			o := opts(dir)
			if prev := c.edit(t, dir); prev != "" {
				o.Previous = prev
			}
			_, err := Audit(o)
			if !errors.Is(err, ErrInvalidMedium) || !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want invalid (%v) naming %q", err, c.is, c.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// FuzzVerifyJournalEnvelope: whatever transcript.dsse.json holds, checking
// it never panics, refuses with ErrJournalEnvelope, and accepts only an
// envelope whose statement names the journal beside it.
func FuzzVerifyJournalEnvelope(f *testing.F) {
	var journal bytes.Buffer
	tr := NewTranscript(&journal, nil, func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })
	for _, step := range []string{"rotation started", "rotation finished"} {
		if err := tr.Record(step, map[string]any{"scenario": ScenarioRootKeyAdded}); err != nil {
			f.Fatal(err)
		}
	}
	sg, err := keys.GenerateEd25519()
	if err != nil {
		f.Fatal(err)
	}
	env, err := journalEnvelope(journal.Bytes(), CeremonyRotation, "demo", []keys.Signer{sg})
	if err != nil {
		f.Fatal(err)
	}
	by := tuf.RoleKeys{Role: "root", KeyIDs: []string{sg.Key().ID()}, Threshold: 1, Keys: map[string]*keys.Key{sg.Key().ID(): sg.Key()}}
	f.Add(env)
	f.Add(bytes.Replace(env, []byte(`"keyid"`), []byte(`"keyid2"`), 1))
	f.Add([]byte(`{"payloadType":"application/vnd.keyceremony.transcript+json","payload":"e30=","signatures":[]}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := verifyJournalEnvelope(data, journal.Bytes(), CeremonyRotation, by)
		if err != nil {
			if !errors.Is(err, ErrJournalEnvelope) {
				t.Fatalf("refused without ErrJournalEnvelope: %v", err)
			}
			return
		}
		if st.Entries != 2 || st.Ceremony != CeremonyRotation {
			t.Fatalf("accepted a statement of another journal: %+v", st)
		}
	})
}
