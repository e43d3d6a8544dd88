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
	"github.com/keyceremony/keyceremony/hsm/hsmtest"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// bootedStable is a bootstrap on fake devices and the first stable
// signing after it, over a small export, not yet run.
func bootedStable(t *testing.T) (*fakeFixture, *StableSigning) {
	t.Helper()
	f := newFakeFixture(t)
	f.cfg.Repository = "pypi" // synth's exports
	dir := t.TempDir()
	b := f.bootstrap()
	bk := withBackup(t, b)
	boot, err := b.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(dir, "export.jsonl")
	w, err := os.Create(exp)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(w, synth.Params{Seed: 5, Files: 2000, Generated: f.now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	pin := func(hsm.Info, int) (string, error) { return hsmtest.DefaultPIN, nil }
	return f, &StableSigning{Root: boot.Root, Published: filepath.Join(dir, "boot"), Export: exp, Devices: f.devs, PIN: pin, Now: f.now, Backup: bk, TempDir: t.TempDir()}
}

// A stable keyholder's device that dies after its first signature (stable
// is signed, the signed diff is not): the error names the device and the
// injected failure, nothing appears under the media's name or as a
// partial directory beside it, the backup medium keeps only the
// bootstrap's state, and the rerun with the device working completes.
func TestStableSignDeviceFailsAfterSignatures(t *testing.T) {
	f, sg := bootedStable(t)
	dir, bk := t.TempDir(), sg.Backup
	d, err := sg.Diff()
	if err != nil {
		t.Fatal(err)
	}
	approve := d.Digest
	d.Close()

	failing := demoSerials[0]
	f.fakes[failing].SetFaults(hsmtest.Faults{FailSign: 2})
	media := filepath.Join(dir, "media")
	_, err = sg.Sign(approve, media)
	if !errors.Is(err, hsmtest.ErrInjected) || !strings.Contains(err.Error(), fmt.Sprint(failing)) {
		t.Fatalf("got %v, want the injected failure naming device %d", err, failing)
	}
	if _, serr := os.Stat(media); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("a failed signing left %s", media)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".media.*")); len(left) != 0 {
		t.Fatalf("a failed signing left %q", left)
	}
	if states, _ := filepath.Glob(filepath.Join(bk, "state", "*.json")); len(states) != 1 {
		t.Fatalf("the backup medium holds %q after a failed signing, want the bootstrap's state only", states)
	}

	f.fakes[failing].SetFaults(hsmtest.Faults{})
	res, err := sg.Sign(approve, media)
	if err != nil {
		t.Fatalf("the rerun with the device working: %v", err)
	}
	res.Diff.Close()
	if _, err := os.Stat(filepath.Join(bk, "state", "2.json")); err != nil {
		t.Errorf("the rerun recorded no state: %v", err)
	}
}
