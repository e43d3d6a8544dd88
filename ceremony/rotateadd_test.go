package ceremony

import (
	"errors"
	"fmt"
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
	"github.com/keyceremony/keyceremony/tuf"
)

// addFixture is a published repository (root threshold 2 of 3) and the
// rotation that added a root key for a keyholder who joins, on device
// 10000009.
type addFixture struct {
	f        *fixture
	boot     *BootstrapResult
	repo     string
	rootFile string
	newcomer hsm.Device
	media    string
	res      *RotationResult
	now      time.Time
}

func newAddFixture(t *testing.T) *addFixture {
	t.Helper()
	f := newFixture(t)
	dir := t.TempDir()
	af := &addFixture{f: f, repo: filepath.Join(dir, "repo"), media: filepath.Join(dir, "add"), now: time.Now().UTC().Truncate(time.Second)}
	boot, err := f.bootstrap().Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	af.boot = boot
	publishRepo(t, af.repo, f.repo, []*tuf.Metadata[tuf.Root]{boot.Root}, boot.Targets, boot.Stable, []byte("example 1.0\n"))
	af.rootFile = filepath.Join(af.repo, "metadata", "1.root.json")
	nd, err := soft.Create(filepath.Join(dir, "newcomer"), 10000009, f.ca, soft.CreateOptions{KDF: soft.KDFTest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	af.newcomer = nd
	if af.res, err = af.rotation().Run(af.media); err != nil {
		t.Fatal(err)
	}
	return af
}

func (af *addFixture) rotation() *RootRotation {
	devs := map[uint32]hsm.Device{af.newcomer.Info().Serial: af.newcomer}
	for s, d := range af.f.devices {
		devs[s] = d
	}
	return &RootRotation{Root: af.boot.Root, Published: af.repo, Config: af.f.cfg, Add: true, New: KeySpec{Device: af.newcomer.Info().Serial, Slot: "9c"},
		Reason: "Erin joins", Devices: devs, PIN: af.f.pins, Roots: af.f.ca.Pool(), Now: af.now, Version: "test"}
}

// signRoot writes root version v into md: base with version v, signed by
// signers alone.
func signRoot(t *testing.T, md string, base *tuf.Metadata[tuf.Root], v int64, now time.Time, signers ...keys.Signer) {
	t.Helper()
	m, err := renewed(base, v, now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Sign(signers...); err != nil {
		t.Fatal(err)
	}
	b, _ := m.MarshalFile()
	if err := os.WriteFile(filepath.Join(md, fmt.Sprintf("%d.root.json", v)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRotateRootAdd: a keyholder joins. Root v2 keeps every root key and
// the threshold and adds the new device's attested key; it is signed by
// the old threshold and the new (the new key among its signers); the
// medium ends signed by both. verify accepts it; tuf-js holding root v1
// follows it and resolves the repository's target, then counts the new
// key as a root key: a root v3 signed by the new key and one old key is
// accepted, by the new key alone refused. Both and neither of add and
// replace are refused before anything is written.
func TestRotateRootAdd(t *testing.T) {
	if err := tufjs.Check(); err != nil {
		t.Fatal(err)
	}
	af := newAddFixture(t)
	old := af.boot.Root.Signed.Roles["root"]
	if len(af.res.Revoked) != 0 || len(af.res.Added) != 1 || af.res.Version != 2 {
		t.Fatalf("result %+v", af.res)
	}
	root2, err := tuf.Load[tuf.Root](mustRead(t, filepath.Join(af.media, af.res.File)), "2.root.json")
	if err != nil {
		t.Fatal(err)
	}
	nr := root2.Signed.Roles["root"]
	for _, id := range old.KeyIDs {
		if !slices.Contains(nr.KeyIDs, id) {
			t.Errorf("root v2 drops root key %s", id)
		}
	}
	if !slices.Contains(nr.KeyIDs, af.res.Added[0]) || len(nr.KeyIDs) != len(old.KeyIDs)+1 || nr.Threshold != old.Threshold {
		t.Fatalf("root v2's root role %+v, want v1's %+v and %s", nr, old, af.res.Added[0])
	}
	if !slices.Contains(af.res.Signers, af.res.Added[0]) {
		t.Errorf("root v2 signers %q lack the new key", af.res.Signers)
	}
	cl := string(mustRead(t, filepath.Join(af.media, RotationChecklist)))
	if !strings.Contains(cl, "added (a keyholder joins)") || !strings.Contains(cl, "add device 10000009 slot 9c to root's keys") {
		t.Errorf("checklist:\n%s", cl)
	}
	rep, err := Audit(AuditOptions{Root: af.rootFile, Dir: af.media, Previous: af.repo, SoftCA: filepath.Join(caDir, "ca"), At: af.now})
	if err != nil || rep.Medium != MediumRotation || rep.Versions["root"] != 2 || len(rep.Keys) != 1 {
		t.Fatalf("verify: %v %+v", err, rep)
	}

	published := filepath.Join(t.TempDir(), "repo")
	if err := copyDir(af.repo, published); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(published, "metadata")
	copyFile(t, filepath.Join(af.media, af.res.File), filepath.Join(md, "2.root.json"))
	run, err := tufjs.Resolve(published, af.rootFile, []string{rotationTarget})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := run.ByPath(rotationTarget); !run.RefreshOK || !fetched(run, "/metadata/2.root.json", 200) || !r.Downloaded {
		t.Fatalf("tuf-js did not follow the added key's root: %s, %+v", run.RefreshError, r)
	}
	sess := &session{devices: af.rotation().Devices, pin: af.f.pins, pins: map[uint32]string{}}
	newSigner, err := sess.signer(af.newcomer.Info().Serial, 0x9c)
	if err != nil {
		t.Fatal(err)
	}
	oldSigners, err := roleSigners(sess, "root", old.KeyIDs, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		signers []keys.Signer
		ok      bool
	}{
		{"the new key alone", []keys.Signer{newSigner}, false},
		{"the new key and one old key", []keys.Signer{newSigner, oldSigners[0]}, true},
	} {
		dir := filepath.Join(t.TempDir(), "repo")
		if err := copyDir(published, dir); err != nil {
			t.Fatal(err)
		}
		signRoot(t, filepath.Join(dir, "metadata"), root2, 3, af.now, c.signers...)
		run, err := tufjs.Resolve(dir, af.rootFile, []string{rotationTarget})
		if err != nil {
			t.Fatal(err)
		}
		if run.RefreshOK != c.ok || !fetched(run, "/metadata/3.root.json", 200) {
			t.Fatalf("%s: root v3 accepted=%v (%s), want %v", c.name, run.RefreshOK, run.RefreshError, c.ok)
		}
		if !c.ok && !strings.Contains(run.RefreshError, "root was signed by 1/2 keys") {
			t.Fatalf("%s: %s", c.name, run.RefreshError)
		}
	}

	for _, c := range []struct {
		name string
		edit func(r *RootRotation)
	}{
		{"add and replace", func(r *RootRotation) { r.Replace = old.KeyIDs[0] }},
		{"neither", func(r *RootRotation) { r.Add = false }},
	} {
		r := af.rotation()
		c.edit(r)
		out := filepath.Join(t.TempDir(), "out")
		if _, err := r.Run(out); !errors.Is(err, ErrAddAndReplace) {
			t.Fatalf("%s: %v", c.name, err)
		}
		assertNothingWritten(t, out)
	}
}

// TestVerifyPreviousRotationMedium: a rotation's medium as verify's
// --previous. The repository that published the rotation passes (its
// root is the rotation's v2); the repository as it was, still serving
// root v1, is a replay of the older root; one serving another root v2,
// which the holder of the revoked key signed, is a fork.
func TestVerifyPreviousRotationMedium(t *testing.T) {
	rf := newRotationFixture(t)
	copyRepo := func(t *testing.T) string {
		dst := filepath.Join(t.TempDir(), "repo")
		if err := copyDir(rf.repo, dst); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	after := copyRepo(t)
	copyFile(t, filepath.Join(rf.media, rf.res.File), filepath.Join(after, "metadata", "2.root.json"))
	o := AuditOptions{Root: rf.rootFile, Dir: after, Previous: rf.media, At: rf.now}
	rep, err := Audit(o)
	if err != nil || rep.Previous == nil || rep.Previous.Medium != MediumRotation || rep.Previous.Versions["root"] != 2 || rep.Versions["root"] != 2 {
		t.Fatalf("the published rotation against its medium: %v %+v", err, rep)
	}
	forged := copyRepo(t)
	rf.forgeRoot(t, filepath.Join(forged, "metadata"), rf.boot.Root, 2)
	for _, c := range []struct {
		name, dir string
		want      error
		msg       string
	}{
		{"the older root replayed", rf.repo, ErrReplay, "root version 1 on " + rf.repo + " goes back from version 2 on the previous medium " + rf.media},
		{"another root v2, signed by the revoked key", forged, ErrFork, "root version 2 on " + forged + " differs from root version 2 on the previous medium"},
	} {
		o := o
		o.Dir = c.dir
		if _, err := Audit(o); !errors.Is(err, ErrInvalidMedium) || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v naming %q", c.name, err, c.want, c.msg)
		}
	}
	// Trusting the rotation's own root v2 is trusting what it wrote; a
	// trusted root v2 of another rotation is named.
	o.Root = filepath.Join(rf.media, rf.res.File)
	if _, err := Audit(o); err != nil {
		t.Errorf("trusted root v2, the rotation's: %v", err)
	}
	o.Root = filepath.Join(forged, "metadata", "2.root.json")
	o.Dir = forged
	if _, err := Audit(o); !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), "the rotation's root from the trusted root v2 (give as --root the root the rotation started from): 2.root.json: role root: differs from the trusted root of the same version") {
		t.Errorf("trusted root v2, another's: %v", err)
	}
}

// TestReadBackRequiresSignedEnd: the read-back of a rotation and of a
// handover refuses a medium whose signed end is missing or signed by the
// wrong keys: the medium is renamed rejected, nothing appears under its
// name, and the handed-over device keeps its old PIN.
func TestReadBackRequiresSignedEnd(t *testing.T) {
	af := newAddFixture(t)
	joiner := af.newcomer.Info().Serial
	sess := &session{devices: af.rotation().Devices, pin: af.f.pins, pins: map[uint32]string{}}
	joinerKey, err := sess.signer(joiner, 0x9c)
	if err != nil {
		t.Fatal(err)
	}
	removeEnd := func(d string) error { return os.Remove(filepath.Join(d, JournalEnvelopeFile)) }
	for _, c := range []struct {
		name, slot string // 9c holds the fixture's added key
		hook       func(d string) error
		want       string
	}{
		{"envelope removed", "9d", removeEnd, "transcript.dsse.json is missing"},
		{"end signed by a key neither root lists", "9e", func(d string) error {
			b, err := journalEnvelope(mustRead(t, filepath.Join(d, JournalFile)), CeremonyRotation, "demo", []keys.Signer{joinerKey})
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(d, JournalEnvelopeFile), b, 0o644)
		}, "key " + joinerKey.Key().ID() + " signed, but it is not a key of root v1 or root v2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setHook(t, c.hook)
			r := af.rotation()
			r.New.Slot = c.slot
			target := filepath.Join(t.TempDir(), "add")
			_, err := r.Run(target)
			var re *outdir.RejectedError
			if !errors.As(err, &re) || !errors.Is(err, ErrJournalEnvelope) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a rejected medium naming %q", err, c.want)
			}
			var oe *OrphanKeysError
			if !errors.As(err, &oe) || len(oe.Keys) != 1 || oe.Keys[0].Slot.String() != c.slot {
				t.Fatalf("got %v, want the key generated in slot %s reported as an orphan", err, c.slot)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists after a refused read-back", target)
			}
		})
	}
	t.Run("handover", func(t *testing.T) {
		setHook(t, removeEnd)
		serial := demoSerials[0]
		h := &Handover{Root: af.boot.Root, Published: af.repo, Config: af.f.cfg, Device: serial, To: "Dora", Devices: af.f.devices, PIN: af.f.pins,
			NewPIN: func(hsm.Info) (string, error) { return "24681357", nil }, Now: af.now, Version: "test"}
		target := filepath.Join(t.TempDir(), "handover")
		if _, err := h.Run(target); !errors.Is(err, ErrJournalEnvelope) || !strings.Contains(err.Error(), "transcript.dsse.json is missing") {
			t.Fatalf("got %v", err)
		}
		if err := af.f.devices[serial].VerifyPIN(soft.DefaultPIN); err != nil {
			t.Fatalf("the old PIN no longer opens the device after a refused handover: %v", err)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists after a refused read-back", target)
		}
	})
}
