package ceremony

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// TestRotateTargetsAndStableKeysWithTufJS: a targets key, then (in its own
// repository) a stable key, is lost to an attacker who also holds the
// online keys, with thresholds of 1, so that the key alone signs. Before
// the rotation, tuf-js holding root v1 downloads the attacker's file
// (the control); after the rotation is published, it follows, gets the
// repository's file, and refuses the attacker's metadata signed with the
// revoked key. verify accepts each rotation's medium and refuses it when
// only the revoked key signed the new targets.
func TestRotateTargetsAndStableKeysWithTufJS(t *testing.T) {
	if err := tufjs.Check(); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"targets", "stable"} {
		t.Run(role, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.Targets.Threshold, f.cfg.Stable.Threshold = 1, 1
			dir := t.TempDir()
			now := time.Now().UTC().Truncate(time.Second)
			bs := f.bootstrap()
			backup := withBackup(t, bs)
			boot, err := bs.Run(filepath.Join(dir, "boot"))
			if err != nil {
				t.Fatal(err)
			}
			good, evil := []byte("example 1.0\n"), []byte("malicious example 1.0\n")
			before := filepath.Join(dir, "before")
			publishRepo(t, before, f.repo, []*tuf.Metadata[tuf.Root]{boot.Root}, boot.Targets, boot.Stable, good)
			rootFile := filepath.Join(before, "metadata", "1.root.json")
			lost := demoSerials[0]
			slot := hsm.Slot(0x82)
			if role == "stable" {
				slot = 0x83
			}
			revokedSigner, err := hsm.NewSigner(f.devices[lost], slot, soft.DefaultPIN)
			if err != nil {
				t.Fatal(err)
			}
			// The attacker's metadata, signed with the lost key alone:
			// targets listing the file itself, or stable listing it.
			forge := func(t *testing.T, base *tuf.Metadata[tuf.Targets], v int64) *tuf.Metadata[tuf.Targets] {
				m, err := renewed(base, v, now.AddDate(0, 1, 0))
				if err != nil {
					t.Fatal(err)
				}
				m.Signed.Targets[rotationTarget] = tuf.TargetFile{Length: int64(len(evil)), Hashes: map[string]string{"sha256": sha256Hex(evil)}}
				if err := m.Sign(revokedSigner); err != nil {
					t.Fatal(err)
				}
				return m
			}
			serve := func(t *testing.T, roots []*tuf.Metadata[tuf.Root], targets, stable *tuf.Metadata[tuf.Targets]) *tufjs.Run {
				repo := filepath.Join(t.TempDir(), "repo")
				publishRepo(t, repo, f.repo, roots, targets, stable, good)
				p := filepath.Join(repo, "targets", targetFileName(rotationTarget, sha256Hex(evil)))
				if err := os.WriteFile(p, evil, 0o644); err != nil {
					t.Fatal(err)
				}
				run, err := tufjs.Resolve(repo, rootFile, []string{rotationTarget})
				if err != nil {
					t.Fatal(err)
				}
				return run
			}
			gotEvil := func(run *tufjs.Run) bool {
				r, _ := run.ByPath(rotationTarget)
				return run.RefreshOK && r.Downloaded && r.Hashes["sha256"] == sha256Hex(evil)
			}
			// The control.
			var run *tufjs.Run
			if role == "targets" {
				run = serve(t, []*tuf.Metadata[tuf.Root]{boot.Root}, forge(t, boot.Targets, 2), boot.Stable)
			} else {
				run = serve(t, []*tuf.Metadata[tuf.Root]{boot.Root}, boot.Targets, forge(t, boot.Stable, 2))
			}
			if !gotEvil(run) {
				t.Fatalf("control: before the rotation tuf-js did not take the attacker's file (%s); the test proves nothing", run.RefreshError)
			}

			spare, err := soft.Create(filepath.Join(dir, "spare"), 10000009, f.ca, soft.CreateOptions{KDF: soft.KDFTest})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { spare.Close() })
			devs := map[uint32]hsm.Device{10000009: spare}
			for s, d := range f.devices {
				if s != lost {
					devs[s] = d
				}
			}
			media := filepath.Join(dir, "rotate-"+role)
			rot := &RoleKeyRotation{Role: role, Root: boot.Root, Published: before, Config: f.cfg, Replace: revokedSigner.Key().ID(), New: KeySpec{Device: 10000009, Slot: slot.String()},
				Reason: "device lost", Devices: devs, PIN: f.pins, Roots: f.ca.Pool(), Backup: backup, Now: now, Version: "test"}
			res, err := rot.Run(media)
			if err != nil {
				t.Fatal(err)
			}
			if role == "stable" && !res.StableStillValid {
				t.Fatal("the bootstrap's stable, signed by every stable key, no longer meets a threshold of 1")
			}
			roots := []*tuf.Metadata[tuf.Root]{boot.Root}
			if role == "targets" {
				r2, err := tuf.Load[tuf.Root](mustRead(t, filepath.Join(media, "metadata", "2.root.json")), "2.root.json")
				if err != nil {
					t.Fatal(err)
				}
				roots = append(roots, r2)
			}
			t2, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(media, "metadata", "2.targets.json")), "2.targets.json")
			if err != nil {
				t.Fatal(err)
			}
			stable := boot.Stable
			if role == "stable" {
				// The bootstrap's empty stable, signed again as v2.
				if stable, err = tuf.Load[tuf.Targets](mustRead(t, filepath.Join(media, "metadata", "2.stable.json")), "2.stable.json"); err != nil {
					t.Fatal(err)
				}
			}
			run = serve(t, roots, t2, stable)
			if r, _ := run.ByPath(rotationTarget); !run.RefreshOK || !r.Downloaded || r.Hashes["sha256"] != sha256Hex(good) {
				t.Fatalf("tuf-js did not follow the rotation: %s, %+v", run.RefreshError, r)
			}
			// The attacker tries again with the revoked key.
			want := "targets was signed by 0/1 keys"
			if role == "targets" {
				run = serve(t, roots, forge(t, t2, 3), stable)
				if run.RefreshOK || !strings.Contains(run.RefreshError, want) {
					t.Fatalf("tuf-js accepted targets signed by the revoked key: ok=%v %q", run.RefreshOK, run.RefreshError)
				}
			} else {
				want = "stable was signed by 0/1 keys"
				run = serve(t, roots, t2, forge(t, stable, 3))
				r, _ := run.ByPath(rotationTarget)
				if !run.RefreshOK || r.Found || !strings.Contains(r.Error, want) {
					t.Fatalf("tuf-js used a stable signed by the revoked key: %s, %+v", run.RefreshError, r)
				}
			}

			// verify, and a medium whose targets only the revoked key signed.
			o := AuditOptions{Root: rootFile, Dir: media, Previous: before, SoftCA: filepath.Join(caDir, "ca"), At: now}
			rep, err := Audit(o)
			if err != nil || rep.Medium != MediumRotation || rep.Versions["targets"] != 2 || len(rep.Keys) != 1 || rep.Keys[0].Role != role {
				t.Fatalf("verify: %v %+v", err, rep)
			}
			bad := filepath.Join(t.TempDir(), "m")
			if err := copyDir(media, bad); err != nil {
				t.Fatal(err)
			}
			t2.Signatures = nil
			if err := t2.Sign(revokedSigner); err != nil {
				t.Fatal(err)
			}
			b, _ := t2.MarshalFile()
			os.WriteFile(filepath.Join(bad, "metadata", "2.targets.json"), b, 0o644)
			rewriteTranscript(t, filepath.Join(bad, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "rotation finished" {
					e.Detail["targets_sha256"] = sha256Hex(b)
				}
			})
			o.Dir = bad
			if _, err := Audit(o); !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), "2.targets.json: role targets: 0 of 1 required signatures valid") {
				t.Fatalf("targets signed by the revoked key: %v", err)
			}
		})
	}
}

// TestRotateRoleKeyRefuses: a key that is not the role's; the root key
// named as a targets key; nothing is written.
func TestRotateRoleKeyRefuses(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	boot, err := f.bootstrap().Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	var rootKey *keys.Key
	for _, g := range boot.Keys {
		if g.Role == "root" {
			rootKey = g.Key
		}
	}
	for _, role := range []string{"targets", "stable"} {
		out := filepath.Join(t.TempDir(), "out")
		r := &RoleKeyRotation{Role: role, Root: boot.Root, Published: filepath.Join(dir, "boot"), Config: f.cfg, Replace: rootKey.ID(), New: KeySpec{Device: demoSerials[0], Slot: "9d"}, Devices: f.devices, PIN: f.pins, Roots: f.ca.Pool(), Now: time.Now()}
		if _, err := r.Run(out); !errors.Is(err, ErrNotRoleKey) || !strings.Contains(err.Error(), fmt.Sprintf("the %s keys are", role)) {
			t.Fatalf("%s: %v", role, err)
		}
		assertNothingWritten(t, out)
	}
}

// TestRotateStableKeyKeepsStable: after a stable ceremony (stable v2 with
// bins), the stable key of device 0 is lost to an attacker who also
// holds the online keys; thresholds of 1, so that the key alone signs.
// Before the rotation, the attacker's stable (signed by that key alone,
// delegating to no bins) sends tuf-js to the attacker's unstable entry
// for a stable path: the control. rotate stable writes targets v2 and
// stable v3 (the same bins, signed by the new key set) and the backup
// state 3; published in one snapshot, tuf-js holding root v1 follows and
// resolves stable paths to stable's entries at once, before any stable
// signing, and refuses the attacker's next stable signed by the revoked
// key. verify accepts the rotation's medium; the next stable signing
// starts from stable v3 and the backup medium, and signs v4.
func TestRotateStableKeyKeepsStable(t *testing.T) {
	if err := tufjs.Check(); err != nil {
		t.Fatal(err)
	}
	h := newHistoryWith(t, func(f *fixture) { f.cfg.Targets.Threshold, f.cfg.Stable.Threshold = 1, 1 })
	h.export(synth.NextParams{})
	r1 := h.ceremony()
	media1 := filepath.Join(h.dir, "media1")
	if r1.StableVersion != 2 {
		t.Fatalf("the ceremony signed stable v%d", r1.StableVersion)
	}
	stable2 := stableEntries(t, media1, 2)
	var paths []string
	for p := range stable2 {
		if strings.HasPrefix(p, "packages/") {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	if len(paths) < 12 {
		t.Fatalf("stable v2 lists %d files", len(paths))
	}
	victim, sample := paths[0], paths[1:11]
	evil := []byte("the attacker's file\n")
	unstable := map[string]tuf.TargetFile{victim: {Length: int64(len(evil)), Hashes: map[string]string{"sha256": sha256Hex(evil)}}}
	rootFile := filepath.Join(h.dir, "boot", "metadata", "1.root.json")
	lost := demoSerials[0]
	revoked, err := hsm.NewSigner(h.f.devices[lost], 0x83, soft.DefaultPIN)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(media1, "stable", "metadata", "2.stable.json")), "2.stable.json")
	if err != nil {
		t.Fatal(err)
	}
	// The attacker's stable: the ledger, no bins, signed by the revoked key.
	forged := func(t *testing.T, v int64) []byte {
		m, err := renewed(st2, v, st2.Signed.Expires.Time())
		if err != nil {
			t.Fatal(err)
		}
		m.Signed.Delegations = nil
		if err := m.Sign(revoked); err != nil {
			t.Fatal(err)
		}
		b, _ := m.MarshalFile()
		return b
	}
	attack := func(t *testing.T, repo string, v int64) *tufjs.Run {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "attacked")
		if err := copyDir(repo, dir); err != nil {
			t.Fatal(err)
		}
		a := &tufjs.Attacker{Dir: dir, Snapshot: h.f.repo.snapshot, Timestamp: h.f.repo.timestamp, Unstable: h.f.repo.unstable}
		if err := a.AddRole(stableset.StableRole, v, forged(t, v)); err != nil {
			t.Fatal(err)
		}
		if err := a.ServeTarget(victim, evil); err != nil {
			t.Fatal(err)
		}
		if err := a.Publish(); err != nil {
			t.Fatal(err)
		}
		run, err := tufjs.Resolve(dir, rootFile, []string{victim})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	before := filepath.Join(h.dir, "repo-before")
	drillRepo(t, before, h.f.repo, []*tuf.Metadata[tuf.Root]{h.boot.Root}, h.boot.Targets, media1, r1, unstable)
	if run := attack(t, before, 3); func() bool {
		r, _ := run.ByPath(victim)
		return !run.RefreshOK || r.Hashes["sha256"] != sha256Hex(evil)
	}() {
		t.Fatalf("control: before the rotation tuf-js did not take the attacker's entry (%s); the test proves nothing", run.RefreshError)
	}

	spare, err := soft.Create(filepath.Join(h.dir, "spare"), 10000009, h.f.ca, soft.CreateOptions{KDF: soft.KDFTest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spare.Close() })
	devs := map[uint32]hsm.Device{10000009: spare}
	for s, d := range h.f.devices {
		if s != lost {
			devs[s] = d
		}
	}
	now := generated(t, h.exports[0]).Add(2 * time.Hour)
	rotation := func(published, backup string, show io.Writer) *RoleKeyRotation {
		return &RoleKeyRotation{Role: "stable", Root: h.boot.Root, Published: published, Config: h.f.cfg, Replace: revoked.Key().ID(), New: KeySpec{Device: 10000009, Slot: "83"},
			Reason: "device lost", Devices: devs, PIN: h.f.pins, Roots: h.f.ca.Pool(), Backup: backup, Now: now, Show: show, Version: "test"}
	}
	// No backup medium; one whose newest state names no stable digest
	// (written before it was recorded): refused, nothing written.
	oldBackup := filepath.Join(h.dir, "backup-old")
	if err := copyDir(h.backup, oldBackup); err != nil {
		t.Fatal(err)
	}
	s2, err := ParseState(mustRead(t, filepath.Join(oldBackup, "state", "2.json")), "2.json")
	if err != nil {
		t.Fatal(err)
	}
	s2.StableSHA256 = ""
	if err := os.WriteFile(filepath.Join(oldBackup, "state", "2.json"), s2.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ backup, want string }{
		{"", "no backup medium given"},
		{oldBackup, "2.json names no stable_sha256 (a state written before keyceremony recorded it): the rotation cannot tell"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		if _, err := rotation(h.published[1], c.backup, nil).Run(out); !errors.Is(err, ErrBackup) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("backup %q: %v, want %q", c.backup, err, c.want)
		}
		assertNothingWritten(t, out)
	}
	// The attacker's stable v2 in the published directory (the same
	// version and ledger, no bins, signed by the revoked key): the
	// rotation does not sign it again, and writes nothing.
	swapped := filepath.Join(h.dir, "published-swapped")
	if err := copyDir(h.published[1], swapped); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(swapped, "metadata", "2.stable.json"), forged(t, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rotation(swapped, h.backup, nil).Run(filepath.Join(h.dir, "rotate-swapped")); !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "2.stable.json has sha256 ") ||
		!strings.Contains(err.Error(), "it is not the stable metadata the stable ceremony wrote") {
		t.Fatalf("a rotation of the attacker's stable: %v", err)
	}
	assertNothingWritten(t, filepath.Join(h.dir, "rotate-swapped"))
	if b, err := ReadBackup(h.backup); err != nil || len(b.States) != 2 {
		t.Fatalf("the refused rotation changed the backup medium: %v", err)
	}
	rotMedia := filepath.Join(h.dir, "rotate-stable")
	var show strings.Builder
	res, err := rotation(h.published[1], h.backup, &show).Run(rotMedia)
	if err != nil {
		t.Fatal(err)
	}
	if res.StableVersion != 3 || res.StateFile != filepath.Join(h.backup, "state", "3.json") || res.State.Ceremony != StateRotation || res.State.LedgerSHA256 != r1.State.LedgerSHA256 {
		t.Fatalf("rotation: stable v%d, state %s %+v", res.StableVersion, res.StateFile, res.State)
	}
	// The bins keep the first ceremony's expiry, an hour before the new
	// stable's: said on screen and in the checklist.
	cl := string(mustRead(t, filepath.Join(rotMedia, RotationChecklist)))
	if !res.BinsExpireFirst() || !strings.Contains(show.String(), "WARNING: the bins stable v3 keeps expire") || !strings.Contains(show.String(), "[07] targets v2 signed\n[08] published stable checked against the new delegation\n[09] stable v3 signed") || !strings.Contains(cl, "WARNING: the bins expire") ||
		!strings.Contains(cl, "Sign ONE new snapshot listing targets.json at version 2 and stable.json at version 3") {
		t.Fatalf("bins expire %s, stable %s; screen %q; checklist %q", res.BinsExpire, res.StableExpires, show.String(), cl)
	}
	t2, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(rotMedia, "metadata", "2.targets.json")), "2.targets.json")
	if err != nil {
		t.Fatal(err)
	}
	s3 := mustRead(t, filepath.Join(rotMedia, "metadata", "3.stable.json"))
	if strings.Contains(string(s3), revoked.Key().ID()) {
		t.Fatal("stable v3 names the revoked key")
	}

	// Published: targets v2 and stable v3 in one snapshot, the bins as
	// they were.
	after := filepath.Join(h.dir, "repo-after")
	us, err := h.f.repo.signUnstable(1, unstable)
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(t2, us, filepath.Join(media1, "stable"), r1.Meta)
	if err != nil {
		t.Fatal(err)
	}
	files["stable.json"] = publishedMeta{version: 3, data: s3}
	out, err := outdir.New(after)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.f.repo.publish(out, "metadata", h.boot.Root, files); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	run, err := tufjs.Resolve(after, rootFile, append([]string{victim}, sample...))
	if err != nil {
		t.Fatal(err)
	}
	if !run.RefreshOK || !fetched(run, "/metadata/3.stable.json", 200) {
		t.Fatalf("tuf-js did not follow the rotation: %s", run.RefreshError)
	}
	for _, p := range append([]string{victim}, sample...) {
		if r, _ := run.ByPath(p); !sameEntry(r, stable2[p]) {
			t.Errorf("%s after the rotation: tuf-js returned %+v, want stable's entry %+v", p, r, stable2[p])
		}
	}
	// The attacker signs stable v4 with the revoked key: refused.
	run = attack(t, after, 4)
	if r, _ := run.ByPath(victim); !run.RefreshOK || r.Found || r.Downloaded || !strings.Contains(r.Error, "stable was signed by 0/1 keys") {
		t.Fatalf("tuf-js used a stable signed by the revoked key: %s, %+v", run.RefreshError, r)
	}

	// verify, the published repository after the rotation, and the
	// medium against the published state the rotation started from.
	if rep, err := Audit(AuditOptions{Root: rootFile, Dir: after}); err != nil || !rep.Valid || rep.Versions[stableset.StableRole] != 3 {
		t.Fatalf("verify the repository after the rotation: %v %+v", err, rep)
	}
	rep, err := Audit(AuditOptions{Root: rootFile, Dir: rotMedia, Previous: before, SoftCA: filepath.Join(caDir, "ca"), At: now})
	if err != nil || rep.Versions[stableset.StableRole] != 3 || rep.Versions["targets"] != 2 {
		t.Fatalf("verify: %v %+v", err, rep)
	}

	// The next stable signing, from the rotation's published state and
	// the backup medium: stable v4.
	pubRot := filepath.Join(h.dir, "published-rotated")
	if err := copyDir(h.published[1], pubRot); err != nil {
		t.Fatal(err)
	}
	copyInto(t, filepath.Join(rotMedia, "metadata"), filepath.Join(pubRot, "metadata"))
	h.export(synth.NextParams{Seed: 5, NewFiles: 50})
	// The published state before the rotation is now a rollback.
	if _, err := h.signing(h.published[1]).Diff(); !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "re-signed by the stable key rotation") {
		t.Fatalf("a signing from stable v2 after the rotation: %v", err)
	}
	s := h.signing(pubRot)
	s.Devices = devs
	d, err := s.Diff()
	if err != nil {
		t.Fatal(err)
	}
	approve := d.Digest
	d.Close()
	media2 := filepath.Join(h.dir, "media2")
	r2, err := s.Sign(approve, media2)
	if err != nil {
		t.Fatal(err)
	}
	r2.Diff.Close()
	if r2.StableVersion != 4 || r2.State.Ceremony != StateStable || r2.State.PreviousStateSHA256 != sha256File(t, res.StateFile) {
		t.Fatalf("the signing after the rotation: stable v%d, state %+v", r2.StableVersion, r2.State)
	}
	if rep, err := Audit(AuditOptions{Root: rootFile, Dir: media2, Repository: after, Previous: after}); err != nil || !rep.Valid {
		t.Fatalf("verify the signing after the rotation: %v %+v", err, rep)
	}
}
