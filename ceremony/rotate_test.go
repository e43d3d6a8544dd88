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
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// rotationFixture is a published repository whose root keyholder on
// device lost lost it, and the rotation that replaced that key.
type rotationFixture struct {
	f        *fixture
	boot     *BootstrapResult
	repo     string // the published repository before the rotation
	rootFile string // its 1.root.json
	lost     uint32
	revoked  string
	spare    hsm.Device // the replacement device
	media    string     // the rotation's output
	res      *RotationResult
	target   string // a path unstable lists
	now      time.Time
}

const rotationTarget = "packages/aa/bb/cc/example-1.0.tar.gz"

// newRotationFixture bootstraps with a root threshold of 1 (so that one
// compromised key alone would sign a root the old root accepts: the
// attack the rotation must stop), publishes the repository, and rotates
// the root key of the first device to a new device.
func newRotationFixture(t *testing.T) *rotationFixture {
	t.Helper()
	f := newFixture(t)
	f.cfg.Root.Threshold = 1
	dir := t.TempDir()
	rf := &rotationFixture{f: f, repo: filepath.Join(dir, "repo"), media: filepath.Join(dir, "rotation"), lost: demoSerials[0], target: rotationTarget, now: time.Now().UTC().Truncate(time.Second)}
	boot, err := f.bootstrap().Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	rf.boot = boot
	content := []byte("example 1.0\n")
	unstable, err := f.repo.signUnstable(1, map[string]tuf.TargetFile{rotationTarget: {Length: int64(len(content)), Hashes: map[string]string{"sha256": sha256Hex(content)}}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(boot.Targets, unstable, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := boot.Stable.MarshalFile()
	files["stable.json"] = publishedMeta{version: 1, data: sb}
	out, err := outdir.New(rf.repo)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	if err := f.repo.publish(out, "metadata", boot.Root, files); err != nil {
		t.Fatal(err)
	}
	if err := out.WriteFile(filepath.Join("targets", targetFileName(rotationTarget, sha256Hex(content))), content); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	rf.rootFile = filepath.Join(rf.repo, "metadata", "1.root.json")
	for _, g := range boot.Keys {
		if g.Role == "root" && g.Device.Serial == rf.lost {
			rf.revoked = g.Key.ID()
		}
	}
	spare, err := soft.Create(filepath.Join(dir, "spare"), 10000009, f.ca, soft.CreateOptions{KDF: soft.KDFTest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spare.Close() })
	rf.spare = spare
	rf.res, err = rf.rotation(rf.media).Run(rf.media)
	if err != nil {
		t.Fatal(err)
	}
	return rf
}

// rotation is the rotation of the lost device's root key, with every
// device but the lost one connected, and the spare.
func (rf *rotationFixture) rotation(string) *RootRotation {
	devs := map[uint32]hsm.Device{rf.spare.Info().Serial: rf.spare}
	for s, d := range rf.f.devices {
		if s != rf.lost {
			devs[s] = d
		}
	}
	return &RootRotation{Root: rf.boot.Root, Published: rf.repo, Config: rf.f.cfg, Replace: rf.revoked, New: KeySpec{Device: rf.spare.Info().Serial, Slot: "9c"},
		Reason: "device lost", Devices: devs, PIN: rf.f.pins, Roots: rf.f.ca.Pool(), Now: rf.now, Version: "test"}
}

// attackerSigner is the compromised root key, as whoever holds the lost
// device signs with it.
func (rf *rotationFixture) attackerSigner(t *testing.T) keys.Signer {
	t.Helper()
	sg, err := hsm.NewSigner(rf.f.devices[rf.lost], 0x9c, soft.DefaultPIN)
	if err != nil {
		t.Fatal(err)
	}
	if sg.Key().ID() != rf.revoked {
		t.Fatalf("the lost device's root key is %s, not %s", sg.Key().ID(), rf.revoked)
	}
	return sg
}

// forgeRoot writes into md root version v: a copy of base with the
// compromised key made the only root key, signed by that key alone.
func (rf *rotationFixture) forgeRoot(t *testing.T, md string, base *tuf.Metadata[tuf.Root], v int64) {
	t.Helper()
	sg := rf.attackerSigner(t)
	m, err := renewed(base, v, rf.now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	m.Signed.Roles["root"] = &tuf.Role{KeyIDs: []string{sg.Key().ID()}, Threshold: 1}
	m.Signed.Keys[sg.Key().ID()] = sg.Key()
	if err := m.Sign(sg); err != nil {
		t.Fatal(err)
	}
	b, _ := m.MarshalFile()
	if err := os.WriteFile(filepath.Join(md, fmt.Sprintf("%d.root.json", v)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fetched(run *tufjs.Run, path string, status int) bool {
	for _, q := range run.Requests {
		if q.Path == path && q.Status == status {
			return true
		}
	}
	return false
}

// TestRotateRootWithTufJS: tuf-js holding root v1 follows the rotation
// to root v2 and still resolves the repository's targets; a root v3 that
// the holder of the revoked key signs is refused. Without the rotation,
// the same forgery (as v2) is accepted: the rotation is what stops it.
func TestRotateRootWithTufJS(t *testing.T) {
	if err := tufjs.Check(); err != nil {
		t.Fatal(err)
	}
	rf := newRotationFixture(t)
	copyRepo := func(t *testing.T) string {
		dst := filepath.Join(t.TempDir(), "repo")
		if err := copyDir(rf.repo, dst); err != nil {
			t.Fatal(err)
		}
		return dst
	}

	// The attack without a rotation: the compromised key alone signs a
	// root v2 that root v1 accepts.
	plain := copyRepo(t)
	rf.forgeRoot(t, filepath.Join(plain, "metadata"), rf.boot.Root, 2)
	run, err := tufjs.Resolve(plain, rf.rootFile, []string{rf.target})
	if err != nil {
		t.Fatal(err)
	}
	if !run.RefreshOK || !fetched(run, "/metadata/2.root.json", 200) {
		t.Fatalf("control: tuf-js refused the forged root v2 before any rotation (%s); the test proves nothing", run.RefreshError)
	}

	// The rotation published.
	rotated := copyRepo(t)
	copyFile(t, filepath.Join(rf.media, rf.res.File), filepath.Join(rotated, "metadata", "2.root.json"))
	run, err = tufjs.Resolve(rotated, rf.rootFile, []string{rf.target})
	if err != nil {
		t.Fatal(err)
	}
	if !run.RefreshOK || !fetched(run, "/metadata/2.root.json", 200) || !fetched(run, "/metadata/3.root.json", 404) {
		t.Fatalf("tuf-js did not follow the rotation: %s; fetched %v", run.RefreshError, run.Files())
	}
	if r, _ := run.ByPath(rf.target); !r.Found || !r.Downloaded {
		t.Fatalf("after the rotation: %+v", r)
	}

	// The attacker, holding the revoked key, signs root v3.
	v2, err := tuf.Load[tuf.Root](mustRead(t, filepath.Join(rotated, "metadata", "2.root.json")), "2.root.json")
	if err != nil {
		t.Fatal(err)
	}
	rf.forgeRoot(t, filepath.Join(rotated, "metadata"), v2, 3)
	run, err = tufjs.Resolve(rotated, rf.rootFile, []string{rf.target})
	if err != nil {
		t.Fatal(err)
	}
	if run.RefreshOK || !fetched(run, "/metadata/3.root.json", 200) || !strings.Contains(run.RefreshError, "root was signed by 0/1 keys") {
		t.Fatalf("tuf-js accepted root v3 signed by the revoked key: ok=%v %q", run.RefreshOK, run.RefreshError)
	}
	t.Logf("tuf-js refused root v3: %s", run.RefreshError)
	// Our own verifier refuses it too.
	if _, err := tuf.VerifyRootChain(rf.boot.Root, filepath.Join(rotated, "metadata")); !errors.Is(err, tuf.ErrThreshold) {
		t.Fatalf("VerifyRootChain: %v", err)
	}
}

// TestAuditRotation: verify recognises the rotation's medium, accepts it
// against the repository it started from (walking the chain from the
// trusted root) with the new key's attestation, and refuses copies edited
// as an attacker would: a root v2 that only the new key signed, one that
// keeps the revoked key, an attestation missing or of another key, a
// transcript that names other keys.
func TestAuditRotation(t *testing.T) {
	rf := newRotationFixture(t)
	caPath := filepath.Join(caDir, "ca")
	o := AuditOptions{Root: rf.rootFile, Dir: rf.media, Previous: rf.repo, SoftCA: caPath, At: rf.now}
	rep, err := Audit(o)
	if err != nil || rep.Medium != MediumRotation || rep.Versions["root"] != 2 || len(rep.Keys) != 1 || rep.Keys[0].KeyID != rf.res.Added[0] {
		t.Fatalf("%v %+v", err, rep)
	}
	newKey := rf.res.Key
	sess := &session{devices: map[uint32]hsm.Device{rf.spare.Info().Serial: rf.spare}, pin: rf.f.pins, pins: map[uint32]string{}}
	newSigner, err := sess.signer(rf.spare.Info().Serial, 0x9c)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(t *testing.T, dir string, edit func(*tuf.Metadata[tuf.Root]), signers ...keys.Signer) {
		file := filepath.Join(dir, rf.res.File)
		m, err := tuf.Load[tuf.Root](mustRead(t, file), "2.root.json")
		if err != nil {
			t.Fatal(err)
		}
		edit(m)
		m.Signatures = nil
		if err := m.Sign(signers...); err != nil {
			t.Fatal(err)
		}
		b, _ := m.MarshalFile()
		os.WriteFile(file, b, 0o644)
		sum := sha256Hex(b)
		rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
			if e.Step == "rotation finished" {
				e.Detail["sha256"] = sum
			}
		})
	}
	oldSigners, err := roleSigners(&session{devices: rf.f.devices, pin: rf.f.pins, pins: map[uint32]string{}}, "root", rf.boot.Root.Signed.Roles["root"].KeyIDs, 1, map[string]bool{rf.revoked: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(t *testing.T, dir string)
		want string
	}{
		{"signed only by the new threshold", func(t *testing.T, dir string) {
			resign(t, dir, func(*tuf.Metadata[tuf.Root]) {}, newSigner)
		}, "a new root must be signed by the threshold of root v1 (the previous medium's newest) and by its own: 2.root.json: role root: 0 of 1 required signatures valid"},
		{"keeps the revoked key", func(t *testing.T, dir string) {
			resign(t, dir, func(m *tuf.Metadata[tuf.Root]) {
				m.Signed.Roles["root"].KeyIDs = append(m.Signed.Roles["root"].KeyIDs, rf.revoked)
				m.Signed.Keys[rf.revoked] = rf.attackerSigner(t).Key()
			}, append(oldSigners, newSigner)...)
		}, `drops root keys [] and adds ["` + newKey.Key.ID() + `"]; the transcript`},
		{"the targets threshold changed too", func(t *testing.T, dir string) {
			resign(t, dir, func(m *tuf.Metadata[tuf.Root]) { m.Signed.Roles["targets"].Threshold = 2 }, append(oldSigners, newSigner)...)
		}, "changes more than the root role's keys"},
		{"attestation missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "keys", "root-10000009-9c.attestation.pem"))
		}, "root-10000009-9c.attestation.pem: no such file"},
		{"attestation of another device's key", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(filepath.Dir(rf.repo), "boot", "keys", "root-10000002-9c.attestation.pem"), filepath.Join(dir, "keys", "root-10000009-9c.attestation.pem"))
		}, "keys/root-10000009-9c.attestation.pem (transcript.jsonl:6): chained to the soft CA"},
		{"transcript revokes another key", func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "rotation finished" {
					e.Detail["revoked"] = []any{oldSigners[0].Key().ID()}
				}
			})
		}, "the transcript (line"},
		{"transcript cut", func(t *testing.T, dir string) {
			dropLine(t, filepath.Join(dir, "transcript.jsonl"), -1)
		}, "the transcript is cut"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := copyDir(rf.media, dir); err != nil {
				t.Fatal(err)
			}
			c.edit(t, dir)
			o := o
			o.Dir = dir
			_, err := Audit(o)
			if !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want invalid naming %q", err, c.want)
			}
		})
	}
}

// TestRotateRootRefuses: a key that is not a root key, too few old keys
// without the revoked one, an occupied slot, a replacement device that
// holds another root key; each before the new key is generated, and
// nothing is written.
func TestRotateRootRefuses(t *testing.T) {
	rf := newRotationFixture(t)
	for _, c := range []struct {
		name string
		edit func(r *RootRotation)
		want error
		msg  string
	}{
		{"not a root key", func(r *RootRotation) { r.Replace = rf.res.Added[0] }, ErrNotRootKey, "root v1's root keys are"},
		{"no old key left", func(r *RootRotation) {
			r.Devices = map[uint32]hsm.Device{rf.spare.Info().Serial: rf.spare}
		}, ErrTooFewKeyholders, "the old root's threshold without the revoked key: 0 of the root role's keys"},
		{"occupied slot", func(r *RootRotation) {}, hsm.ErrSlotOccupied, "slot 9c of"},
		{"replacement holds a root key", func(r *RootRotation) { r.New = KeySpec{Device: demoSerials[1], Slot: "9d"} }, ErrReplacementDevice, "holds root key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			r := rf.rotation(out)
			c.edit(r)
			_, err := r.Run(out)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v naming %q", err, c.want, c.msg)
			}
			var oe *OrphanKeysError
			if errors.As(err, &oe) {
				t.Fatalf("a key was generated: %v", err)
			}
			assertNothingWritten(t, out)
		})
	}
}

// publishRepo writes a repository as the repository publishes it:
// roots (every version given), targets, unstable (signed by repo's
// unstable key, listing content as rotationTarget), stable, and
// snapshot and timestamp by repo's keys.
func publishRepo(t *testing.T, dir string, repo *simRepo, roots []*tuf.Metadata[tuf.Root], targets, stable *tuf.Metadata[tuf.Targets], content []byte) {
	t.Helper()
	unstable, err := repo.signUnstable(1, map[string]tuf.TargetFile{rotationTarget: {Length: int64(len(content)), Hashes: map[string]string{"sha256": sha256Hex(content)}}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(targets, unstable, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := stable.MarshalFile()
	files["stable.json"] = publishedMeta{version: stable.Signed.Version, data: sb}
	out, err := outdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	for _, r := range roots[:len(roots)-1] {
		b, _ := r.MarshalFile()
		if err := out.WriteFile(fmt.Sprintf("metadata/%d.root.json", r.Signed.Version), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.publish(out, "metadata", roots[len(roots)-1], files); err != nil {
		t.Fatal(err)
	}
	if err := out.WriteFile(filepath.Join("targets", targetFileName(rotationTarget, sha256Hex(content))), content); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestRotateOnlineWithTufJS: the repository's servers were compromised.
// Before the rotation, the attacker's unstable entry (signed with the
// online keys) is what tuf-js downloads: the control. After root v2 and
// targets v2 are published, with snapshot, timestamp and unstable
// re-signed by the new keys, tuf-js holding root v1 follows and gets the
// repository's file; the attacker's metadata signed with the old keys is
// refused: a new timestamp, and (even were it listed in a valid snapshot)
// an unstable.
func TestRotateOnlineWithTufJS(t *testing.T) {
	if err := tufjs.Check(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	boot, err := f.bootstrap().Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	good, evil := []byte("example 1.0\n"), []byte("malicious example 1.0\n")
	before := filepath.Join(dir, "before")
	publishRepo(t, before, f.repo, []*tuf.Metadata[tuf.Root]{boot.Root}, boot.Targets, boot.Stable, good)
	rootFile := filepath.Join(before, "metadata", "1.root.json")
	attack := func(t *testing.T, repoDir string, snapshot, timestamp, unstable keys.Signer) *tufjs.Run {
		t.Helper()
		a := &tufjs.Attacker{Dir: repoDir, Snapshot: snapshot, Timestamp: timestamp, Unstable: unstable}
		if err := a.ListUnstable(rotationTarget, evil); err != nil {
			t.Fatal(err)
		}
		if err := a.Publish(); err != nil {
			t.Fatal(err)
		}
		run, err := tufjs.Resolve(repoDir, rootFile, []string{rotationTarget})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	copyRepo := func(t *testing.T, src string) string {
		dst := filepath.Join(t.TempDir(), "repo")
		if err := copyDir(src, dst); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	old := f.repo
	run := attack(t, copyRepo(t, before), old.snapshot, old.timestamp, old.unstable)
	if r, _ := run.ByPath(rotationTarget); !run.RefreshOK || !r.Downloaded || r.Hashes["sha256"] != sha256Hex(evil) {
		t.Fatalf("control: before the rotation the attacker's entry was not served (%s, %+v); the test proves nothing", run.RefreshError, r)
	}

	// The ceremony: new online keys from the repository's clean servers.
	fresh, err := newSimRepo(now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *f.cfg
	cfg.Online = fresh.online()
	media := filepath.Join(dir, "rotate-online")
	rot := &OnlineRotation{Root: boot.Root, Published: before, Config: &cfg, Reason: "servers compromised", Devices: f.devices, PIN: f.pins, Now: now, Version: "test"}
	res, err := rot.Run(media)
	if err != nil {
		t.Fatal(err)
	}
	if res.RootVersion != 2 || res.TargetsVersion != 2 || len(res.Revoked) != 3 || len(res.Added) != 3 {
		t.Fatalf("result %+v", res)
	}
	root2, err := tuf.Load[tuf.Root](mustRead(t, filepath.Join(media, res.RootFile)), "2.root.json")
	if err != nil {
		t.Fatal(err)
	}
	targets2, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(media, res.TargetsFile)), "2.targets.json")
	if err != nil {
		t.Fatal(err)
	}
	after := filepath.Join(dir, "after")
	publishRepo(t, after, fresh, []*tuf.Metadata[tuf.Root]{boot.Root, root2}, targets2, boot.Stable, good)
	run, err = tufjs.Resolve(after, rootFile, []string{rotationTarget})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := run.ByPath(rotationTarget); !run.RefreshOK || !fetched(run, "/metadata/2.root.json", 200) || !r.Downloaded || r.Hashes["sha256"] != sha256Hex(good) {
		t.Fatalf("tuf-js did not follow the rotation: %s, %+v", run.RefreshError, r)
	}

	// The attacker still holds the old keys.
	run = attack(t, copyRepo(t, after), old.snapshot, old.timestamp, old.unstable)
	if run.RefreshOK || !strings.Contains(run.RefreshError, "timestamp was signed by 0/1 keys") {
		t.Fatalf("tuf-js accepted a timestamp signed with the old key: ok=%v %q", run.RefreshOK, run.RefreshError)
	}
	t.Logf("old timestamp key: %s", run.RefreshError)
	run = attack(t, copyRepo(t, after), fresh.snapshot, fresh.timestamp, old.unstable)
	r, _ := run.ByPath(rotationTarget)
	if !run.RefreshOK || r.Found || r.Downloaded || !strings.Contains(r.Error, "unstable was signed by 0/1 keys") {
		t.Fatalf("tuf-js used an unstable signed with the old key: %s, %+v", run.RefreshError, r)
	}
	t.Logf("old unstable key: %s", r.Error)
}

// onlineRotationFixture: a published repository and the rotation of its
// online keys.
func onlineRotationFixture(t *testing.T) (f *fixture, before, media string, res *OnlineRotationResult, now time.Time) {
	t.Helper()
	f = newFixture(t)
	dir := t.TempDir()
	now = time.Now().UTC().Truncate(time.Second)
	boot, err := f.bootstrap().Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	before = filepath.Join(dir, "before")
	publishRepo(t, before, f.repo, []*tuf.Metadata[tuf.Root]{boot.Root}, boot.Targets, boot.Stable, []byte("example\n"))
	fresh, err := newSimRepo(now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *f.cfg
	cfg.Online = fresh.online()
	media = filepath.Join(dir, "rotate-online")
	res, err = (&OnlineRotation{Root: boot.Root, Published: before, Config: &cfg, Devices: f.devices, PIN: f.pins, Now: now}).Run(media)
	if err != nil {
		t.Fatal(err)
	}
	return f, before, media, res, now
}

// TestAuditOnlineRotation: verify accepts the online rotation's medium
// against the repository it started from, and refuses copies the
// keyholders or someone handling the media made to do more: an online key
// kept, another delegation changed, a file missing.
func TestAuditOnlineRotation(t *testing.T) {
	f, before, media, res, now := onlineRotationFixture(t)
	rootFile := filepath.Join(before, "metadata", "1.root.json")
	o := AuditOptions{Root: rootFile, Dir: media, Previous: before, At: now}
	rep, err := Audit(o)
	if err != nil || rep.Medium != MediumRotation || rep.Versions["root"] != 2 || rep.Versions["targets"] != 2 {
		t.Fatalf("%v %+v", err, rep)
	}
	sess := &session{devices: f.devices, pin: f.pins, pins: map[uint32]string{}}
	boot, _ := LoadTrustedRoot(rootFile)
	rootSigners, err := roleSigners(sess, "root", boot.Signed.Roles["root"].KeyIDs, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	targetsSigners, err := roleSigners(sess, "targets", boot.Signed.Roles["targets"].KeyIDs, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	resum := func(t *testing.T, dir, key, file string) {
		sum := sha256Hex(mustRead(t, filepath.Join(dir, file)))
		rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
			if e.Step == "rotation finished" {
				e.Detail[key] = sum
			}
		})
	}
	for _, c := range []struct {
		name string
		edit func(t *testing.T, dir string)
		want string
	}{
		{"the old timestamp key kept", func(t *testing.T, dir string) {
			file := filepath.Join(dir, res.RootFile)
			m, _ := tuf.Load[tuf.Root](mustRead(t, file), "2.root.json")
			oldID := boot.Signed.Roles["timestamp"].KeyIDs[0]
			m.Signed.Roles["timestamp"].KeyIDs = append(m.Signed.Roles["timestamp"].KeyIDs, oldID)
			m.Signed.Keys[oldID] = boot.Signed.Keys[oldID]
			m.Signatures = nil
			m.Sign(rootSigners...)
			b, _ := m.MarshalFile()
			os.WriteFile(file, b, 0o644)
			resum(t, dir, "sha256", res.RootFile)
		}, "timestamp keeps key"},
		{"stable's threshold changed too", func(t *testing.T, dir string) {
			file := filepath.Join(dir, res.TargetsFile)
			m, _ := tuf.Load[tuf.Targets](mustRead(t, file), "2.targets.json")
			d, _ := m.Signed.Delegation("stable")
			d.Threshold = 1
			m.Signatures = nil
			m.Sign(targetsSigners...)
			b, _ := m.MarshalFile()
			os.WriteFile(file, b, 0o644)
			resum(t, dir, "targets_sha256", res.TargetsFile)
		}, "2.targets.json changes more than unstable's keys"},
		{"targets missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, res.TargetsFile))
		}, "metadata/ holds metadata/2.root.json; the transcript (line"},
		{"root signed by one root key", func(t *testing.T, dir string) {
			file := filepath.Join(dir, res.RootFile)
			m, _ := tuf.Load[tuf.Root](mustRead(t, file), "2.root.json")
			m.Signatures = m.Signatures[:1]
			b, _ := m.MarshalFile()
			os.WriteFile(file, b, 0o644)
			resum(t, dir, "sha256", res.RootFile)
		}, "1 of 2 required signatures valid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := copyDir(media, dir); err != nil {
				t.Fatal(err)
			}
			c.edit(t, dir)
			o := o
			o.Dir = dir
			_, err := Audit(o)
			if !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want invalid naming %q", err, c.want)
			}
		})
	}
}

// TestRotateOnlineRefuses: an online key kept, a new online key that is
// an offline role's; nothing is written.
func TestRotateOnlineRefuses(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	boot, err := f.bootstrap().Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := newSimRepo(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var rootKey *keys.Key
	for _, g := range boot.Keys {
		if g.Role == "root" {
			rootKey = g.Key
		}
	}
	for _, c := range []struct {
		name string
		edit func(on map[string]OnlineRole)
		want error
		msg  string
	}{
		{"unstable kept", func(on map[string]OnlineRole) { on["unstable"] = f.repo.online()["unstable"] }, ErrOnlineKeyKept, "online.unstable.keys[0]"},
		{"a root key as the timestamp key", func(on map[string]OnlineRole) {
			on["timestamp"] = OnlineRole{Threshold: 1, Keys: []*keys.Key{rootKey}}
		}, ErrConfig, "online.timestamp.keys[0] (key id " + rootKey.ID() + ") is a root key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := *f.cfg
			cfg.Online = fresh.online()
			c.edit(cfg.Online)
			out := filepath.Join(t.TempDir(), "out")
			_, err := (&OnlineRotation{Root: boot.Root, Published: filepath.Join(dir, "boot"), Config: &cfg, Devices: f.devices, PIN: f.pins, Now: time.Now()}).Run(out)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v naming %q", err, c.want, c.msg)
			}
			assertNothingWritten(t, out)
		})
	}
}

// TestRotateReadBackRejects: a root rotation whose media fail the
// read-back (here, the new root replaced on the medium by the old one,
// which the old keys signed)
// leaves nothing under the success name, keeps the media as
// <target>.rejected-TIME, and reports the key it generated as an orphan.
func TestRotateReadBackRejects(t *testing.T) {
	rf := newRotationFixture(t)
	spare, err := soft.Create(filepath.Join(t.TempDir(), "spare2"), 10000010, rf.f.ca, soft.CreateOptions{KDF: soft.KDFTest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spare.Close() })
	target := filepath.Join(t.TempDir(), "rotation")
	r := rf.rotation(target)
	r.Devices[spare.Info().Serial] = spare
	r.New = KeySpec{Device: spare.Info().Serial, Slot: "9c"}
	setHook(t, func(d string) error {
		b, err := os.ReadFile(rf.rootFile)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(d, "metadata", "2.root.json"), b, 0o644)
	})
	_, err = r.Run(target)
	var oe *OrphanKeysError
	var re *outdir.RejectedError
	if !errors.As(err, &oe) || !errors.As(err, &re) || !errors.Is(err, outdir.ErrRejected) {
		t.Fatalf("Run = %v, want orphan keys after a rejected read-back of the root", err)
	}
	if len(oe.Keys) != 1 || oe.Keys[0].Device.Serial != spare.Info().Serial || oe.Keys[0].Slot.String() != "9c" {
		t.Errorf("orphans %+v, want the new key in slot 9c of %d", oe.Keys, spare.Info().Serial)
	}
	if !strings.Contains(err.Error(), "the failed rotation left 1 orphan keys") {
		t.Errorf("error %q does not name the failed rotation's orphan key", err)
	}
	if !strings.Contains(err.Error(), "2.root.json") || !strings.Contains(err.Error(), re.Dir) {
		t.Errorf("error %q names neither the edited root nor %s", err, re.Dir)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a failed read-back", target)
	}
	if rej, _ := filepath.Glob(target + ".rejected-*"); len(rej) != 1 || rej[0] != re.Dir {
		t.Errorf("rejected directories %q, error names %q", rej, re.Dir)
	}
	if _, err := os.Stat(filepath.Join(re.Dir, "metadata", "2.root.json")); err != nil {
		t.Errorf("the rejected media lost their root: %v", err)
	}
}
