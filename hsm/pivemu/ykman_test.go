//go:build cgo

package pivemu_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

// TestYkman drives the emulated cards with ykman (Debian's
// yubikey-manager), a third client written against real YubiKeys: it must
// list them, read their PIV state, and attest and export what piv-go put
// on them.
func TestYkman(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	env := pcsctest.Start(t, 2,
		pivemu.Config{Serial: 77777777, CA: ca, FormFactor: pivemu.FormFactorUSBCNano},
		pivemu.Config{Serial: 88888888, CA: ca, Version: pivemu.Version{Major: 5, Minor: 4, Patch: 3}})
	dir := t.TempDir()

	out := run(t, env, "", "ykman", "list", "--serials")
	if strings.Fields(out)[0] != "77777777" || !strings.Contains(out, "88888888") {
		t.Errorf("ykman list --serials:\n%s", out)
	}
	out = run(t, env, "", "ykman", "list")
	if !strings.Contains(out, "Serial: 77777777") || !strings.Contains(out, "(5.7.1)") || !strings.Contains(out, "(5.4.3)") {
		t.Errorf("ykman list:\n%s", out)
	}
	out = run(t, env, "", "ykman", "--reader", env.Readers[0], "info")
	for _, want := range []string{"Serial number: 77777777", "Firmware version: 5.7.1", "Form factor: Nano (USB-C)"} {
		if !strings.Contains(out, want) {
			t.Errorf("ykman info lacks %q:\n%s", want, out)
		}
	}

	for i, reader := range env.Readers {
		out = run(t, env, "", "ykman", "--reader", reader, "piv", "info")
		for _, want := range []string{"WARNING: Using default PIN!", "PIN tries remaining: 3/3", "WARNING: Using default Management key!"} {
			if !strings.Contains(out, want) {
				t.Errorf("card %d: ykman piv info lacks %q:\n%s", i, want, out)
			}
		}
		// piv-go generates and stores a certificate; ykman sees both.
		yk := openCard(t, reader)
		pub, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotSignature,
			piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
		if err != nil {
			t.Fatal(err)
		}
		made := bigCert(t, pub)
		if err := yk.SetCertificate(piv.DefaultManagementKey, piv.SlotSignature, made); err != nil {
			t.Fatal(err)
		}
		yk.Close()

		out = run(t, env, "", "ykman", "--reader", reader, "piv", "info")
		if !strings.Contains(out, "Slot 9c:") || !strings.Contains(out, "pivemu test") {
			t.Errorf("card %d: ykman piv info does not show slot 9c:\n%s", i, out)
		}
		attPath := filepath.Join(dir, "att.pem")
		run(t, env, "", "ykman", "--reader", reader, "piv", "keys", "attest", "9c", attPath)
		att := parseCert(t, readFile(t, attPath))
		if !publicEqual(att.PublicKey, pub) || att.Subject.CommonName != "YubiKey PIV Attestation 9c" {
			t.Errorf("card %d: ykman's attestation is for %q, another key", i, att.Subject.CommonName)
		}
		f9 := env.Cards[i].AttestationCertificate()
		if err := att.CheckSignatureFrom(f9); err != nil {
			t.Errorf("card %d: ykman's attestation is not signed by the card's f9 key: %v", i, err)
		}
		certPath := filepath.Join(dir, "9c.pem")
		run(t, env, "", "ykman", "--reader", reader, "piv", "certificates", "export", "9c", certPath)
		if got := parseCert(t, readFile(t, certPath)); !got.Equal(made) {
			t.Errorf("card %d: ykman exported another certificate", i)
		}
		// An empty slot is an error that says so, not a crash.
		cmd := exec.Command("ykman", "--reader", reader, "piv", "keys", "attest", "9a", attPath)
		cmd.Env = env.Environ()
		if b, err := cmd.CombinedOutput(); err == nil || strings.Contains(string(b), "Traceback") {
			t.Errorf("card %d: ykman attest of an empty slot: %v\n%s", i, err, b)
		}
	}
}

// TestPkillStub checks that the clients' PATH ends nothing: ykman runs
// `pkill -9 scdaemon` when a reader is busy.
func TestPkillStub(t *testing.T) {
	env := pcsctest.Start(t, 1)
	// env -i runs pkill with exactly the clients' environment, PATH included.
	b, err := exec.Command("env", append(append([]string{"-i"}, env.Environ()...), "pkill", "-9", "scdaemon")...).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "pkill -9 scdaemon refused") {
		t.Fatalf("pkill through the clients' PATH: %v\n%s", err, b)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
