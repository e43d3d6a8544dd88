//go:build cgo

package pivemu_test

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

// TestYkman drives the emulated cards with ykman, a third client written
// against real YubiKeys, in both versions an administrator may have:
// Debian bookworm's 4.0.9 and 5.6.1 (pcsctest.Ykmans). Each must list
// them, read their PIV state on every firmware profile the emulator has
// (5.2.7, before GET METADATA; 5.4.3; 5.7.1; 5.7.4, Yubico's newer
// attestation hierarchy), and attest and export what piv-go put on them.
// ykman 5 reads every slot's metadata in piv info, and crashed on the
// emulator's status words before they were a YubiKey's (6A88).
func TestYkman(t *testing.T) {
	ca, err := pivemu.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	firmware := []string{"5.7.1", "5.4.3", "5.7.4", "5.2.7"}
	env := pcsctest.Start(t, 4,
		pivemu.Config{Serial: 77777777, CA: ca, FormFactor: pivemu.FormFactorUSBCNano},
		pivemu.Config{Serial: 88888888, CA: ca, Version: pivemu.Version{Major: 5, Minor: 4, Patch: 3}},
		pivemu.Config{Serial: 99999999, CA: ca, Version: pivemu.Version{Major: 5, Minor: 7, Patch: 4}},
		pivemu.Config{Serial: 66666666, CA: ca, Version: pivemu.Version{Major: 5, Minor: 2, Patch: 7}})
	dir := t.TempDir()
	ykmans := pcsctest.Ykmans(t)

	// piv-go generates and stores a certificate on every card; ykman
	// sees both.
	pubs := make([]any, len(env.Cards))
	made := make([]*x509.Certificate, len(env.Cards))
	for i, reader := range env.Readers {
		yk := openCard(t, reader)
		pub, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotSignature,
			piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
		if err != nil {
			t.Fatal(err)
		}
		pubs[i], made[i] = pub, bigCert(t, pub)
		if err := yk.SetCertificate(piv.DefaultManagementKey, piv.SlotSignature, made[i]); err != nil {
			t.Fatal(err)
		}
		yk.Close()
	}

	for _, y := range ykmans {
		t.Run(y.String(), func(t *testing.T) {
			out := run(t, env, "", y.Path, "list", "--serials")
			if strings.Fields(out)[0] != "77777777" || !strings.Contains(out, "66666666") {
				t.Errorf("ykman list --serials:\n%s", out)
			}
			out = run(t, env, "", y.Path, "list")
			for _, fw := range firmware {
				if !strings.Contains(out, "("+fw+")") {
					t.Errorf("ykman list lacks firmware %s:\n%s", fw, out)
				}
			}
			out = run(t, env, "", y.Path, "--reader", env.Readers[0], "info")
			for _, want := range []string{"Serial number: 77777777", "Firmware version: 5.7.1", "Form factor: Nano (USB-C)"} {
				if !strings.Contains(out, want) {
					t.Errorf("ykman info lacks %q:\n%s", want, out)
				}
			}
		})
	}

	// Card by card, each in its own reader, at the same time (ykman
	// holds a reader exclusively, so the two versions take turns on
	// each card).
	for i, reader := range env.Readers {
		t.Run("firmware "+firmware[i], func(t *testing.T) {
			t.Parallel()
			for _, y := range ykmans {
				// The two versions align and capitalise differently ("Slot
				// 9c:", "Slot 9C (SIGNATURE):"): compared in lower case with
				// single spaces. Before 5.3 there is no GET METADATA, so no
				// default-value warnings and no maximum tries.
				out := run(t, env, "", y.Path, "--reader", reader, "piv", "info")
				norm := strings.ToLower(strings.Join(strings.Fields(out), " "))
				wants := []string{"pin tries remaining: 3/3", "warning: using default pin!", "warning: using default management key!"}
				if firmware[i] == "5.2.7" {
					wants = []string{"pin tries remaining: 3 "}
				}
				for _, want := range append(wants, "piv version: "+firmware[i], "slot 9c", "subject dn: cn=pivemu test") {
					if !strings.Contains(norm, want) {
						t.Errorf("%s: ykman piv info lacks %q:\n%s", y, want, out)
					}
				}
				if firmware[i] == "5.2.7" && strings.Contains(norm, "default") {
					t.Errorf("%s on 5.2.7 (no GET METADATA): piv info knows the defaults:\n%s", y, out)
				}
				if firmware[i] != "5.2.7" && y.Version != "4.0.9" {
					// The slot's metadata: the policies piv-go generated
					// with (ykman 4.0.9 has no piv keys info).
					out = run(t, env, "", y.Path, "--reader", reader, "piv", "keys", "info", "9c")
					norm := strings.ToLower(strings.Join(strings.Fields(out), " "))
					for _, want := range []string{"algorithm: eccp256", "origin: generated", "pin required for use: once", "touch required for use: never"} {
						if !strings.Contains(norm, want) {
							t.Errorf("%s: ykman piv keys info 9c lacks %q:\n%s", y, want, out)
						}
					}
				}
				attPath := filepath.Join(dir, fmt.Sprintf("att-%d-%s.pem", i, y.Version))
				run(t, env, "", y.Path, "--reader", reader, "piv", "keys", "attest", "9c", attPath)
				att := parseCert(t, readFile(t, attPath))
				if !publicEqual(att.PublicKey, pubs[i]) || att.Subject.CommonName != "YubiKey PIV Attestation 9c" {
					t.Errorf("%s: ykman's attestation is for %q, another key", y, att.Subject.CommonName)
				}
				f9 := env.Cards[i].AttestationCertificate()
				if err := att.CheckSignatureFrom(f9); err != nil {
					t.Errorf("%s: ykman's attestation is not signed by the card's f9 key: %v", y, err)
				}
				certPath := filepath.Join(dir, fmt.Sprintf("9c-%d-%s.pem", i, y.Version))
				run(t, env, "", y.Path, "--reader", reader, "piv", "certificates", "export", "9c", certPath)
				if got := parseCert(t, readFile(t, certPath)); !got.Equal(made[i]) {
					t.Errorf("%s: ykman exported another certificate", y)
				}
				f9Path := filepath.Join(dir, fmt.Sprintf("f9-%d-%s.pem", i, y.Version))
				run(t, env, "", y.Path, "--reader", reader, "piv", "certificates", "export", "f9", f9Path)
				if got := parseCert(t, readFile(t, f9Path)); !got.Equal(f9) {
					t.Errorf("%s: ykman exported another f9 certificate", y)
				}
				// An empty slot is an error that says so, not a crash.
				cmd := exec.Command(y.Path, "--reader", reader, "piv", "keys", "attest", "9a", attPath)
				cmd.Env = env.Environ()
				if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "Attestation failed") || strings.Contains(string(b), "Traceback") {
					t.Errorf("%s: ykman attest of an empty slot: %v\n%s", y, err, b)
				}
			}
		})
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
