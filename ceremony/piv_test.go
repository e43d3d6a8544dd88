//go:build cgo

package ceremony

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gotufmeta "github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/piv"
	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// TestCeremonyOnEmulatedYubiKeys runs a full bootstrap (root 2-of-3) and a
// stable signing through the real PIV path: piv-go, libpcsclite, a private
// pcscd, vsmartcard's vpcd and three emulated cards. The cards are
// initialised first as in a real ceremony (new PIN and PUK, random
// management key), so no factory default is accepted. The result must pass
// our verifier and go-tuf's signature checks.
func TestCeremonyOnEmulatedYubiKeys(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	// The second card is a 5.7.4, attested through an intermediate as in
	// Yubico's newer hierarchy.
	cfgs := []pivemu.Config{{CA: ca}, {CA: ca, Version: pivemu.Version{Major: 5, Minor: 7, Patch: 4}}, {CA: ca, Version: pivemu.Version{Major: 5, Minor: 4, Patch: 3}}}
	env := pcsctest.Start(t, 3, cfgs...)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	caFile := filepath.Join(t.TempDir(), "emulator-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	devices := map[uint32]hsm.Device{}
	pins := map[uint32]string{}
	var serials []uint32
	for i, c := range env.Cards {
		d, err := piv.Open(c.Serial(), piv.Options{Roots: roots, Intermediates: c.AttestationIntermediates()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		pin, puk := fmt.Sprintf("%06d", 246800+i), fmt.Sprintf("%08d", 13579100+i)
		if err := d.Initialize(pin, puk); err != nil {
			t.Fatalf("initialising %s: %v", d.Info(), err)
		}
		devices[c.Serial()], pins[c.Serial()] = d, pin
		serials = append(serials, c.Serial())
	}
	pinSource := func(info hsm.Info, _ int) (string, error) { return pins[info.Serial], nil }
	repo, err := newSimRepo(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := demoConfig(repo.online())
	cfg.Repository = "pypi" // synth's exports
	spec := func(th int, slot string, ss ...uint32) RoleSpec {
		r := RoleSpec{Threshold: th}
		for _, s := range ss {
			r.Keys = append(r.Keys, KeySpec{Device: s, Slot: slot})
		}
		return r
	}
	cfg.Root, cfg.Targets, cfg.Stable = spec(2, "9c", serials...), spec(1, "82", serials[0], serials[1]), spec(2, "83", serials...)
	now := time.Now().UTC()
	dir := t.TempDir()

	// Firmware 5.4.3 is affected by YSA-2024-03: no root key there.
	b := &Bootstrap{Config: cfg, Devices: devices, PIN: pinSource, Roots: roots, Now: now}
	if _, err := b.Run(filepath.Join(dir, "refused")); !errors.Is(err, piv.ErrAffectedFirmware) {
		t.Fatalf("want ErrAffectedFirmware for a root key on 5.4.3, got %v", err)
	}
	// The refusal came from the pre-flight: no card holds a new key.
	for _, serial := range serials {
		for _, slot := range []hsm.Slot{0x9c, 0x82, 0x83} {
			if _, err := devices[serial].PublicKey(slot); !errors.Is(err, hsm.ErrSlotEmpty) {
				t.Fatalf("after the refused bootstrap, slot %s of %d: %v, want empty", slot, serial, err)
			}
		}
	}
	// The next run uses other slots all the same, as a ceremony that
	// continues after an exception would.
	cfg.Root, cfg.Targets, cfg.Stable = spec(2, "9a", serials[0], serials[1]), spec(1, "84", serials[0], serials[1]), spec(2, "85", serials...)
	bk := t.TempDir()
	boot, err := (&Bootstrap{Config: cfg, Devices: devices, PIN: pinSource, Roots: roots, Now: now, Backup: bk}).Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range boot.Keys {
		if g.Device.Kind != piv.Kind || g.Device.Insecure {
			t.Fatalf("key not on a YubiKey: %+v", g.Device)
		}
		// The media carry the whole chain below the root, so that an
		// auditor can check it again from the file alone.
		pemBytes, err := os.ReadFile(filepath.Join(dir, "boot", "keys", fmt.Sprintf("%s-%d-%s.attestation.pem", g.Role, g.Device.Serial, g.Slot)))
		if err != nil {
			t.Fatal(err)
		}
		var chain []*x509.Certificate
		for rest := pemBytes; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			chain = append(chain, c)
		}
		want := 2
		if g.Device.Serial == serials[1] {
			want = 3 // slot, f9, the intermediate
		}
		if len(chain) != want {
			t.Fatalf("%s key on %d: %d certificates on the media, want %d", g.Role, g.Device.Serial, len(chain), want)
		}
		if _, err := keys.VerifyAttestationChain(chain[0], chain[1:], roots); err != nil {
			t.Fatalf("%s key on %d: the chain on the media: %v", g.Role, g.Device.Serial, err)
		}
		// openssl, an independent verifier, completes the chain from the
		// media file alone (the file's first certificate is the leaf).
		mediaFile := filepath.Join(dir, "boot", "keys", fmt.Sprintf("%s-%d-%s.attestation.pem", g.Role, g.Device.Serial, g.Slot))
		if out, err := exec.Command("openssl", "verify", "-CAfile", caFile, "-untrusted", mediaFile, mediaFile).CombinedOutput(); err != nil || !strings.Contains(string(out), ": OK") {
			t.Fatalf("%s key on %d: openssl verify of the media's chain: %v\n%s", g.Role, g.Device.Serial, err, out)
		}
	}

	export := filepath.Join(dir, "export.jsonl")
	ef, err := os.Create(export)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(ef, synth.Params{Seed: 7, Files: 2000, Generated: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ef.Close()
	ss := &StableSigning{Root: boot.Root, Published: filepath.Join(dir, "boot"), Export: export, Devices: devices, PIN: pinSource, Now: now, Backup: bk}
	d, err := ss.Diff()
	if err != nil {
		t.Fatal(err)
	}
	digest := d.Digest
	d.Close()
	res, err := ss.Sign(digest, filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Diff.Close()
	if len(res.Signers) != 3 {
		t.Fatalf("%d stable signers, want 3", len(res.Signers))
	}

	// Publish as the repository would, then verify like an auditor and
	// like go-tuf.
	out, err := outdir.New(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	unstable, err := repo.signUnstable(1, map[string]tuf.TargetFile{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(boot.Targets, unstable, filepath.Join(dir, "media", "stable"), res.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.publish(out, "metadata", boot.Root, files); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "repo", "metadata")
	if _, err := tuf.VerifyRepository(boot.Root, md, tuf.VerifyOptions{At: now}); err != nil {
		t.Fatal(err)
	}
	gt, err := gotufmeta.Targets().FromFile(filepath.Join(md, "1.targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	gs, err := gotufmeta.Targets().FromFile(filepath.Join(md, fmt.Sprintf("%d.stable.json", res.StableVersion)))
	if err != nil {
		t.Fatal(err)
	}
	if err := gt.VerifyDelegate(stableset.StableRole, gs); err != nil {
		t.Fatalf("go-tuf: stable signed on emulated YubiKeys: %v", err)
	}
}
