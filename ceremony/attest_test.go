package ceremony

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/hsmtest"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// fakeFixture is a bootstrap over three in-memory hsmtest.Fake devices,
// the configuration of the demo (8 keys: root 9c on all three, targets 82
// on the first two, stable 83 on all three).
type fakeFixture struct {
	cfg   *Config
	ca    *hsmtest.FakeCA
	fakes map[uint32]*hsmtest.Fake
	devs  map[uint32]hsm.Device
	pins  int // PIN prompts answered
	show  bytes.Buffer
	now   time.Time
}

func newFakeFixture(t *testing.T) *fakeFixture {
	t.Helper()
	ca, err := hsmtest.NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := newSimRepo(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFixture{cfg: demoConfig(repo.online()), ca: ca, fakes: map[uint32]*hsmtest.Fake{}, devs: map[uint32]hsm.Device{}, now: time.Now().UTC()}
	for _, s := range demoSerials {
		d, err := ca.NewDevice(s)
		if err != nil {
			t.Fatal(err)
		}
		f.fakes[s], f.devs[s] = d, d
	}
	return f
}

func (f *fakeFixture) bootstrap() *Bootstrap {
	return &Bootstrap{
		Config: f.cfg, Devices: f.devs, Roots: f.ca.Pool(), Now: f.now, Show: &f.show, Version: "test",
		PIN: func(hsm.Info, int) (string, error) { f.pins++; return hsmtest.DefaultPIN, nil },
	}
}

// slotsHolding lists "serial/slot" for every configured slot that holds
// a key.
func (f *fakeFixture) slotsHolding(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, s := range demoSerials {
		for _, slot := range []hsm.Slot{0x9c, 0x82, 0x83} {
			_, err := f.devs[s].PublicKey(slot)
			if err == nil {
				out = append(out, fmt.Sprintf("%d/%s", s, slot))
			} else if !errors.Is(err, hsm.ErrSlotEmpty) {
				t.Fatal(err)
			}
		}
	}
	return out
}

// A device that lies in its attestation (or whose backend checked
// nothing: the fake checks nothing) is refused by the ceremony's own check,
// naming the field and both values, for every device kind.
func TestBootstrapChecksAttestation(t *testing.T) {
	now := time.Now().UTC()
	tests := []struct {
		name   string
		faults hsmtest.Faults
		want   error
		field  string
		values []string  // both values, as the message spells them
		at     time.Time // the ceremony's clock, if not now
	}{
		{"wrong slot", hsmtest.Faults{AttestSlot: 0x84}, keys.ErrAttestationSlot, "slot", []string{"84", "want 9c"}, time.Time{}},
		{"wrong PIN policy", hsmtest.Faults{AttestPINPolicy: hsm.PINPolicyOnce}, keys.ErrAttestationPolicy, "pin_policy", []string{"once", "want always"}, time.Time{}},
		{"wrong touch policy", hsmtest.Faults{AttestTouchPolicy: hsm.TouchPolicyNever}, keys.ErrAttestationPolicy, "touch_policy", []string{"never", "want always"}, time.Time{}},
		{"attestation of another key", hsmtest.Faults{AttestOtherKey: true}, keys.ErrAttestationKey, "key", []string{"want "}, time.Time{}},
		{"expired attestation", hsmtest.Faults{LeafNotBefore: now.AddDate(-2, 0, 0), LeafNotAfter: now.AddDate(-1, 0, 0)}, keys.ErrAttestationExpired, "validity",
			[]string{now.AddDate(-1, 0, 0).Format(time.RFC3339), "ceremony time " + now.Format(time.RFC3339)}, time.Time{}},
		{"attestation not yet valid", hsmtest.Faults{LeafNotBefore: now.Add(48 * time.Hour), LeafNotAfter: now.AddDate(1, 0, 0)}, keys.ErrAttestationExpired, "validity",
			[]string{now.Add(48 * time.Hour).Format(time.RFC3339), "ceremony time " + now.Format(time.RFC3339)}, time.Time{}},
		// Valid by the machine's clock, expired by the ceremony's: the
		// ceremony's clock is the reference.
		{"expired at the ceremony's time", hsmtest.Faults{LeafNotAfter: now.Add(24 * time.Hour)}, keys.ErrAttestationExpired, "validity",
			[]string{now.Add(24 * time.Hour).Format(time.RFC3339), "ceremony time " + now.Add(72*time.Hour).Format(time.RFC3339)}, now.Add(72 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFixture(t)
			f.now = now
			if !tt.at.IsZero() {
				f.now = tt.at
			}
			// The second device lies: the first device's root key exists
			// by then, and the lying device's key too.
			liar := demoSerials[1]
			f.fakes[liar].SetFaults(tt.faults)
			out := filepath.Join(t.TempDir(), "media")
			_, err := f.bootstrap().Run(out)
			var m *keys.AttestationMismatch
			if !errors.Is(err, tt.want) || !errors.As(err, &m) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(m.Field, tt.field) {
				t.Errorf("field %q, want %q", m.Field, tt.field)
			}
			for _, v := range append(tt.values, fmt.Sprint(liar), "slot 9c") {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("message %q does not name %q", err, v)
				}
			}
			if tt.want == keys.ErrAttestationKey {
				k, _ := keys.FromPublicKey(mustPublic(t, f.devs[liar], 0x9c))
				if m.Want != k.ID() || m.Got == m.Want {
					t.Errorf("key mismatch names %s and %s, want the generated key %s and another", m.Got, m.Want, k.ID())
				}
			}
			assertNothingWritten(t, out)
			// Both keys made so far are orphans, listed with their clear
			// commands.
			var oe *OrphanKeysError
			if !errors.As(err, &oe) || len(oe.Keys) != 2 || oe.Keys[0].Device.Serial != demoSerials[0] || oe.Keys[1].Device.Serial != liar {
				t.Fatalf("orphans: %+v", oe)
			}
		})
	}
}

func mustPublic(t *testing.T, d hsm.Device, slot hsm.Slot) any {
	t.Helper()
	p, err := d.PublicKey(slot)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The pre-flight checks every device's attestation certificate against
// the trusted roots at the ceremony's time before the first key: a device
// of another CA, one whose certificate expired, or one that cannot show
// its certificate is refused with no key on any device and no PIN asked.
func TestBootstrapPreflightAttestationRoots(t *testing.T) {
	other, err := hsmtest.NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	tests := []struct {
		name    string
		replace func(f *fakeFixture, serial uint32) (hsm.Device, error)
		want    error
		words   []string
	}{
		{"device of an untrusted CA", func(_ *fakeFixture, s uint32) (hsm.Device, error) { return other.NewDevice(s) },
			ErrAttestationRoots, []string{"does not chain"}},
		{"device certificate expired", func(f *fakeFixture, s uint32) (hsm.Device, error) {
			return f.ca.NewDeviceValid(s, now.AddDate(-3, 0, 0), now.AddDate(-1, 0, 0))
		}, keys.ErrAttestationExpired, []string{"f9", now.AddDate(-1, 0, 0).Format(time.RFC3339), now.Format(time.RFC3339)}},
		{"device that cannot show its certificate", func(f *fakeFixture, s uint32) (hsm.Device, error) {
			d, err := f.ca.NewDevice(s)
			return struct{ hsm.Device }{d}, err
		}, ErrNoDeviceCertificate, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFixture(t)
			f.now = now
			last := demoSerials[2]
			d, err := tt.replace(f, last)
			if err != nil {
				t.Fatal(err)
			}
			f.devs[last] = d
			out := filepath.Join(t.TempDir(), "media")
			_, err = f.bootstrap().Run(out)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), fmt.Sprint(last)) {
				t.Fatalf("got %v, want %v naming device %d", err, tt.want, last)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not name %q", err, w)
				}
			}
			if hint.Of(err) == "" {
				t.Errorf("no advice for %v", err)
			}
			if got := f.slotsHolding(t); len(got) != 0 {
				t.Errorf("keys generated before the refusal: %v", got)
			}
			if f.pins != 0 {
				t.Errorf("%d PINs asked before a refusal that needs none", f.pins)
			}
			assertNothingWritten(t, out)
		})
	}
}

// A device that fails on its first generation (the third key of the
// bootstrap) leaves the first two devices' root keys behind: the error,
// the screen and the transcript of the failed run list exactly those slots
// with their key ids and the command that clears each; clearing them as
// told lets the rerun succeed on the same devices.
func TestBootstrapOrphanKeys(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("key kept by the failing device %v", keep), func(t *testing.T) {
			f := newFakeFixture(t)
			failing := demoSerials[2]
			f.fakes[failing].SetFaults(hsmtest.Faults{FailGenerate: 1, KeepKeyOnFailure: keep})
			out := filepath.Join(t.TempDir(), "media")
			_, err := f.bootstrap().Run(out)
			var oe *OrphanKeysError
			if !errors.Is(err, hsmtest.ErrInjected) || !errors.As(err, &oe) {
				t.Fatalf("got %v, want the injected failure with its orphan keys", err)
			}
			assertNothingWritten(t, out)
			holding := f.slotsHolding(t)
			want := []string{fmt.Sprintf("%d/9c", demoSerials[0]), fmt.Sprintf("%d/9c", demoSerials[1])}
			if keep {
				want = append(want, fmt.Sprintf("%d/9c", failing))
			}
			if strings.Join(holding, " ") != strings.Join(want, " ") {
				t.Fatalf("slots holding keys %v, want %v", holding, want)
			}
			if len(oe.Keys) != len(want) {
				t.Fatalf("%d orphans listed, %d slots hold keys: %+v", len(oe.Keys), len(want), oe.Keys)
			}
			shown := f.show.String()
			tdata, rerr := os.ReadFile(oe.Transcript)
			if rerr != nil {
				t.Fatalf("the failed run's transcript: %v", rerr)
			}
			if _, _, err := VerifyTranscript(bytes.NewReader(tdata), oe.Transcript); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(tdata)), "\n")
			last := lines[len(lines)-1]
			for _, o := range oe.Keys {
				k, _ := keys.FromPublicKey(mustPublic(t, f.devs[o.Device.Serial], o.Slot))
				if o.KeyID != k.ID() || o.Role != "root" {
					t.Errorf("orphan %+v, want the root key %s", o, k.ID())
				}
				cmd := f.fakes[o.Device.Serial].ClearKeyCommand(o.Slot)
				if o.Clear != cmd {
					t.Errorf("clear command %q, want %q", o.Clear, cmd)
				}
				for what, text := range map[string]string{"error": err.Error(), "hint": hint.Of(err), "screen": shown, "transcript": last} {
					if what != "hint" && !strings.Contains(text, fmt.Sprint(o.Device.Serial)) {
						t.Errorf("the %s does not name device %d", what, o.Device.Serial)
					}
					if what != "error" && !strings.Contains(text, cmd) {
						t.Errorf("the %s does not give the command %q", what, cmd)
					}
					if (what == "screen" || what == "transcript") && !strings.Contains(text, k.ID()) {
						t.Errorf("the %s does not name key id %s", what, k.ID())
					}
				}
			}
			// Clear exactly what was listed; the rerun then passes.
			for _, o := range oe.Keys {
				if err := f.fakes[o.Device.Serial].DeleteKey(o.Slot); err != nil {
					t.Fatal(err)
				}
			}
			f.fakes[failing].SetFaults(hsmtest.Faults{})
			f.show.Reset()
			if _, err := f.bootstrap().Run(out); err != nil {
				t.Fatalf("the rerun after clearing the listed slots: %v", err)
			}
		})
	}
}

// A failure before any key is generated names no orphan and writes no
// failed-run directory.
func TestBootstrapNoOrphansBeforeGeneration(t *testing.T) {
	f := newFakeFixture(t)
	delete(f.devs, demoSerials[1])
	parent := t.TempDir()
	_, err := f.bootstrap().Run(filepath.Join(parent, "media"))
	var oe *OrphanKeysError
	if !errors.Is(err, ErrMissingDevice) || errors.As(err, &oe) {
		t.Fatalf("got %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}

// A configuration that parses but describes metadata a client or our own
// verifier refuses is refused by the pre-flight: no key on any device, no
// PIN asked, nothing written. Without the dry run, the first case would
// write a layout that 'verify' refuses and the second a root no client
// loads.
func TestBootstrapPreflightMetadata(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, c *Config)
		want error
		in   string
	}{
		{"unstable delegated the ledger", func(t *testing.T, c *Config) {
			c.TargetPaths = append(append([]string(nil), c.TargetPaths...), "ledger/*")
		}, tuf.ErrLayout, "1.targets.json"},
		{"root over the client limit", func(t *testing.T, c *Config) {
			ts := c.Online["timestamp"]
			for len(ts.Keys) < 1800 {
				s, err := keys.GenerateEd25519()
				if err != nil {
					t.Fatal(err)
				}
				ts.Keys = append(ts.Keys, s.Key())
			}
			c.Online["timestamp"] = ts
		}, tuf.ErrTooLarge, "1.root.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFixture(t)
			tt.edit(t, f.cfg)
			if err := f.cfg.validate(); err != nil {
				t.Fatalf("the configuration must pass parsing: %v", err)
			}
			out := filepath.Join(t.TempDir(), "media")
			_, err := f.bootstrap().Run(out)
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.in) {
				t.Fatalf("got %v, want %v and ErrConfig naming %s", err, tt.want, tt.in)
			}
			if got := f.slotsHolding(t); len(got) != 0 {
				t.Errorf("keys generated before the refusal: %v", got)
			}
			if f.pins != 0 {
				t.Errorf("%d PINs asked", f.pins)
			}
			assertNothingWritten(t, out)
		})
	}
}

// The fake devices run a whole bootstrap, and its metadata verifies.
func TestBootstrapFakeDevices(t *testing.T) {
	f := newFakeFixture(t)
	res, err := f.bootstrap().Run(filepath.Join(t.TempDir(), "media"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 8 {
		t.Fatalf("%d keys", len(res.Keys))
	}
}

// On soft devices the orphan keys' command is 'keyceremony soft
// delete-key' for the device's directory and slot, and running it (through
// ClearSoftKey, what the command calls) clears exactly what the rerun
// would refuse.
func TestBootstrapOrphanKeysOnSoftDevices(t *testing.T) {
	sf := newFixture(t)
	ca, err := hsmtest.NewFakeCA()
	if err != nil {
		t.Fatal(err)
	}
	failing, err := ca.NewDevice(demoSerials[2])
	if err != nil {
		t.Fatal(err)
	}
	failing.SetFaults(hsmtest.Faults{FailGenerate: 1})
	sf.devices[demoSerials[2]] = failing
	roots := sf.ca.Pool()
	roots.AddCert(ca.Certificate())
	b := sf.bootstrap()
	b.Roots = roots
	var show bytes.Buffer
	b.Show = &show
	out := filepath.Join(t.TempDir(), "media")
	_, err = b.Run(out)
	var oe *OrphanKeysError
	if !errors.As(err, &oe) || len(oe.Keys) != 2 {
		t.Fatalf("got %v, want two orphan keys", err)
	}
	pinFile := filepath.Join(t.TempDir(), "pins.txt")
	if err := os.WriteFile(pinFile, []byte(fmt.Sprintf("%d 123456\n%d 123456\n", demoSerials[0], demoSerials[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, o := range oe.Keys {
		dir := sf.devices[o.Device.Serial].(interface{ Dir() string }).Dir()
		want := fmt.Sprintf("keyceremony soft delete-key --dir %s --slot %s", dir, o.Slot)
		if o.Clear != want || !strings.Contains(show.String(), want) || !strings.Contains(hint.Of(err), want) {
			t.Fatalf("clear command %q, want %q on screen and in the hint", o.Clear, want)
		}
		if _, err := ClearSoftKey(dir, o.Slot.String(), pinFile); err != nil {
			t.Fatal(err)
		}
	}
	failing.SetFaults(hsmtest.Faults{})
	b.Show = nil
	if _, err := b.Run(out); err != nil {
		t.Fatalf("the rerun after clearing: %v", err)
	}
}

// BenchmarkBootstrapDryRun measures what the metadata pre-flight adds to
// a bootstrap: 8 placeholder keys made, the three files built, signed and
// put through every check.
func BenchmarkBootstrapDryRun(b *testing.B) {
	repo, err := newSimRepo(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	bs := &Bootstrap{Config: demoConfig(repo.online()), Now: time.Now().UTC()}
	for _, alg := range []hsm.Algorithm{hsm.AlgECCP256, hsm.AlgEd25519} {
		b.Run(string(alg), func(b *testing.B) {
			for b.Loop() {
				if err := bs.dryRun(alg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A failure at the very end (the output directory taken by someone else
// during the ceremony, so the commit is refused) still lists all eight
// keys as orphans: no metadata left the room.
func TestBootstrapOrphanKeysAtCommit(t *testing.T) {
	f := newFakeFixture(t)
	out := filepath.Join(t.TempDir(), "media")
	b := f.bootstrap()
	pin := b.PIN
	b.PIN = func(info hsm.Info, tries int) (string, error) {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(out, "someone-else"), nil, 0o644); err != nil {
			return "", err
		}
		return pin(info, tries)
	}
	_, err := b.Run(out)
	var oe *OrphanKeysError
	if !errors.As(err, &oe) || len(oe.Keys) != 8 || oe.Transcript == "" {
		t.Fatalf("got %v, want all 8 keys listed as orphans and the transcript kept", err)
	}
	if _, err := os.Stat(filepath.Join(out, "metadata")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("metadata written into the taken directory: %v", err)
	}
}
