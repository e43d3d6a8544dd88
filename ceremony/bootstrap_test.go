package ceremony

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

type fixture struct {
	cfg     *Config
	devices map[uint32]hsm.Device
	ca      *soft.CA
	pins    PINSource
	repo    *simRepo
}

var (
	caOnce sync.Once
	testCA *soft.CA
	caDir  string
	caErr  error
)

// sharedCA is one soft attestation CA for the package's tests (it is only
// read), in caDir, which TestMain removes.
func sharedCA(t *testing.T) *soft.CA {
	t.Helper()
	caOnce.Do(func() {
		caDir, caErr = os.MkdirTemp("", "kc-ceremony-ca-")
		if caErr == nil {
			testCA, caErr = soft.CreateCA(filepath.Join(caDir, "ca"))
		}
	})
	if caErr != nil {
		t.Fatal(caErr)
	}
	return testCA
}

// newFixture makes three factory-fresh soft devices (at the test KDF
// cost) certified by the shared CA; each test gets its own, since
// bootstrap writes keys into them.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	ca := sharedCA(t)
	f := &fixture{ca: ca, devices: map[uint32]hsm.Device{}}
	for _, s := range demoSerials {
		d, err := soft.Create(filepath.Join(dir, fmt.Sprint(s)), s, ca, soft.CreateOptions{KDF: soft.KDFTest})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		f.devices[s] = d
	}
	repo, err := newSimRepo(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = demoConfig(repo.online())
	f.repo = repo
	f.pins = func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }
	return f
}

func (f *fixture) bootstrap() *Bootstrap {
	return &Bootstrap{Config: f.cfg, Devices: f.devices, PIN: f.pins, Roots: f.ca.Pool(), Now: time.Now().UTC(), Version: "test"}
}

func assertNothingWritten(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists after a failed bootstrap", out)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range entries {
		if strings.Contains(e.Name(), "partial") {
			t.Fatalf("left behind %s", e.Name())
		}
	}
}

func TestBootstrapWritesVerifiedMetadata(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "media")
	res, err := f.bootstrap().Run(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"metadata/1.root.json", "metadata/1.targets.json", "metadata/1.stable.json", "runsheet.md", "transcript.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("missing %s", p)
		}
	}
	root, err := tuf.Load[tuf.Root](mustRead(t, filepath.Join(out, "metadata/1.root.json")), "1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := root.Signed.Roles["root"]; got.Threshold != 2 || len(got.KeyIDs) != 3 {
		t.Fatalf("root role: %+v", got)
	}
	targets, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(out, "metadata/1.targets.json")), "1.targets.json")
	if err != nil {
		t.Fatal(err)
	}
	roles := targets.Signed.Delegations.Roles
	if roles[0].Name != "stable" || roles[1].Name != "unstable" || roles[0].Terminating || roles[1].Terminating {
		t.Fatalf("delegations: %+v", roles)
	}
	// Each generated key is on disk with an attestation that verifies
	// and names the device and key.
	if len(res.Keys) != 8 {
		t.Fatalf("%d keys generated, want 8", len(res.Keys))
	}
	for _, g := range res.Keys {
		a, err := keys.VerifyAttestation(g.Att.Leaf, g.Att.Intermediate, f.ca.Pool())
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.CheckAttested(a, g.Device.Serial, g.Key); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(out, "keys", fmt.Sprintf("%s-%d-%s.attestation.pem", g.Role, g.Device.Serial, g.Slot))); err != nil {
			t.Error(err)
		}
	}
	tf, _ := os.Open(filepath.Join(out, "transcript.jsonl"))
	defer tf.Close()
	d, n, err := VerifyTranscript(tf, "transcript.jsonl")
	if err != nil || d != res.Transcript || n < 10 {
		t.Fatalf("transcript: %v, %d entries", err, n)
	}
	sheet := mustRead(t, filepath.Join(out, "runsheet.md"))
	if !bytes.Contains(sheet, []byte(res.Keys[0].Key.ID())) {
		t.Error("run sheet does not list the key ids")
	}
	// No PIN in anything written.
	filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && bytes.Contains(mustRead(t, p), []byte(soft.DefaultPIN)) {
			t.Errorf("%s contains the PIN", p)
		}
		return nil
	})
}

func TestBootstrapRefusesOccupiedSlot(t *testing.T) {
	f := newFixture(t)
	d := f.devices[demoSerials[2]]
	before, err := d.GenerateKey(soft.DefaultPIN, 0x83, hsm.KeyOptions{Algorithm: hsm.AlgECCP256, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "media")
	_, err = f.bootstrap().Run(out)
	if !errors.Is(err, hsm.ErrSlotOccupied) || !strings.Contains(err.Error(), "83") {
		t.Fatalf("want ErrSlotOccupied naming the slot, got %v", err)
	}
	after, err := d.PublicKey(0x83)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := keys.FromPublicKey(before)
	ka, _ := keys.FromPublicKey(after)
	if !kb.Equal(ka) {
		t.Fatal("the existing key was replaced")
	}
	assertNothingWritten(t, out)
}

func TestBootstrapRefusesUnknownAttestationRoot(t *testing.T) {
	f := newFixture(t)
	other, err := soft.CreateCA(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	b := f.bootstrap()
	b.Roots = other.Pool()
	out := filepath.Join(t.TempDir(), "media")
	if _, err := b.Run(out); !errors.Is(err, keys.ErrAttestationChain) || !errors.Is(err, ErrAttestationRoots) {
		t.Fatalf("want ErrAttestationChain and ErrAttestationRoots, got %v", err)
	}
	assertNothingWritten(t, out)
	// The pre-flight found it: no device holds a key.
	assertNoNewKeys(t, f, nil)
}

func TestBootstrapRefusesMissingDevice(t *testing.T) {
	f := newFixture(t)
	delete(f.devices, demoSerials[1])
	out := filepath.Join(t.TempDir(), "media")
	if _, err := f.bootstrap().Run(out); !errors.Is(err, ErrMissingDevice) || !strings.Contains(err.Error(), fmt.Sprint(demoSerials[1])) {
		t.Fatalf("want ErrMissingDevice naming the device, got %v", err)
	}
	assertNothingWritten(t, out)
}

func TestBootstrapWrongPIN(t *testing.T) {
	f := newFixture(t)
	f.pins = func(hsm.Info, int) (string, error) { return "999999", nil }
	out := filepath.Join(t.TempDir(), "media")
	_, err := f.bootstrap().Run(out)
	var ae *hsm.AuthError
	if !errors.As(err, &ae) || ae.Retries != 2 {
		t.Fatalf("want AuthError with 2 tries left, got %v", err)
	}
	assertNothingWritten(t, out)
}

// assertNoNewKeys checks that no configured slot of any device holds a
// key, except those listed in keep.
func assertNoNewKeys(t *testing.T, f *fixture, keep map[uint32]hsm.Slot) {
	t.Helper()
	for _, serial := range demoSerials {
		for _, slot := range []hsm.Slot{0x9c, 0x82, 0x83} {
			if s, ok := keep[serial]; ok && s == slot {
				continue
			}
			if _, err := f.devices[serial].PublicKey(slot); !errors.Is(err, hsm.ErrSlotEmpty) {
				t.Errorf("slot %s of %d after the refused bootstrap: %v, want empty (the pre-flight must refuse before any key is made)", slot, serial, err)
			}
		}
	}
}

// A wrong PIN on the last device, or an occupied slot there, is found by
// the pre-flight: no device holds an orphan key, and a rerun with the
// mistake corrected succeeds on the same devices.
func TestBootstrapPreflight(t *testing.T) {
	t.Run("wrong PIN on the last device", func(t *testing.T) {
		f := newFixture(t)
		f.pins = func(info hsm.Info, _ int) (string, error) {
			if info.Serial == demoSerials[2] {
				return "999999", nil
			}
			return soft.DefaultPIN, nil
		}
		out := filepath.Join(t.TempDir(), "media")
		var ae *hsm.AuthError
		if _, err := f.bootstrap().Run(out); !errors.As(err, &ae) {
			t.Fatalf("want AuthError, got %v", err)
		}
		assertNothingWritten(t, out)
		assertNoNewKeys(t, f, nil)
		f.pins = func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }
		if _, err := f.bootstrap().Run(out); err != nil {
			t.Fatalf("the rerun with the right PIN: %v", err)
		}
	})
	t.Run("occupied slot on the last device", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.devices[demoSerials[2]].GenerateKey(soft.DefaultPIN, 0x83, hsm.KeyOptions{Algorithm: hsm.AlgECCP256, PINPolicy: hsm.PINPolicyAlways, TouchPolicy: hsm.TouchPolicyNever}); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "media")
		if _, err := f.bootstrap().Run(out); !errors.Is(err, hsm.ErrSlotOccupied) {
			t.Fatalf("want ErrSlotOccupied, got %v", err)
		}
		assertNothingWritten(t, out)
		assertNoNewKeys(t, f, map[uint32]hsm.Slot{demoSerials[2]: 0x83})
	})
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
