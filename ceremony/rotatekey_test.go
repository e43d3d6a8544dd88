package ceremony

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/keys"
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
