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
