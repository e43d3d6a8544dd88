//go:build cgo

package pivemu_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

const opensc = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// run runs an independent PC/SC client against env's pcscd.
func run(t *testing.T, env *pcsctest.Env, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env.Environ()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestIndependentClients checks that yubico-piv-tool and OpenSC, written
// against real cards, accept the emulator and agree with piv-go.
func TestIndependentClients(t *testing.T) {
	// yubico-piv-tool 2.2.0 (Debian bookworm) authenticates with 3DES only.
	env := pcsctest.Start(t, 1, pivemu.Config{Serial: 66666666, ManagementKeyAlgorithm: pivemu.Alg3DES})
	reader := env.Readers[0]
	dir := t.TempDir()

	out := run(t, env, "", "yubico-piv-tool", "-r", reader, "-a", "status")
	for _, want := range []string{"Version:\t5.7.1", "Serial Number:\t66666666", "PIN tries left:\t3"} {
		if !strings.Contains(out, want) {
			t.Errorf("yubico-piv-tool status lacks %q:\n%s", want, out)
		}
	}

	// piv-go generates; yubico-piv-tool reads the public key back.
	yk := openCard(t, reader)
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotSignature,
		piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	yk.Close()
	// (2.2.0 has no read-public-key: the attestation carries the key.)
	pemOut := run(t, env, "", "yubico-piv-tool", "-r", reader, "-s", "9c", "-a", "attest")
	if got := parseCert(t, pemOut).PublicKey; !publicEqual(got, pub) {
		t.Fatalf("yubico-piv-tool read a different public key")
	}

	// yubico-piv-tool generates in 9a and stores a certificate for the
	// key (made here: 2.2.0's selfsign-certificate fails with OpenSSL 3
	// before it talks to the card).
	pubPath := filepath.Join(dir, "9a.pem")
	run(t, env, "", "yubico-piv-tool", "-r", reader, "-s", "9a", "-A", "ECCP256", "-a", "generate", "-o", pubPath)
	pubPEM, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		t.Fatalf("generate wrote no PEM:\n%s", pubPEM)
	}
	pub9a, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(dir, "9a.crt")
	made := bigCert(t, pub9a)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: made.Raw}), 0o600)
	run(t, env, "", "yubico-piv-tool", "-r", reader, "-s", "9a", "-i", certPath, "-a", "import-certificate")
	certOut := run(t, env, "", "yubico-piv-tool", "-r", reader, "-s", "9a", "-a", "read-certificate")
	cert := parseCert(t, certOut)
	if !cert.Equal(made) {
		t.Errorf("yubico-piv-tool read back a different certificate")
	}
	yk = openCard(t, reader)
	if c, err := yk.Certificate(piv.SlotAuthentication); err != nil || !c.Equal(cert) {
		t.Errorf("piv-go reads a different certificate: %v", err)
	}
	yk.Close()

	// A wrong PIN through yubico-piv-tool shows in piv-go's retry count.
	cmd := exec.Command("yubico-piv-tool", "-r", reader, "-P", "000000", "-a", "verify-pin")
	cmd.Env = env.Environ()
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("wrong PIN accepted:\n%s", out)
	}
	yk = openCard(t, reader)
	if n, err := yk.Retries(); err != nil || n != 2 {
		t.Errorf("retries after one wrong PIN = %d, %v; want 2", n, err)
	}
	yk.Close()

	// OpenSC sees the token and the key with its certificate, and signs
	// with the key piv-go generated; the signature verifies in Go.
	out = run(t, env, "", "pkcs11-tool", "--module", opensc, "-L")
	if !strings.Contains(out, "piv_II") || !strings.Contains(out, reader) {
		t.Errorf("pkcs11-tool -L shows no PIV token:\n%s", out)
	}
	out = run(t, env, "", "pkcs15-tool", "--list-public-keys")
	if !strings.Contains(out, "PIV AUTH") {
		t.Errorf("pkcs15-tool --list-public-keys lacks the 9a key:\n%s", out)
	}
	msg := []byte("signed by OpenSC through pivemu")
	digest := sha256.Sum256(msg)
	in := filepath.Join(dir, "digest")
	sigPath := filepath.Join(dir, "sig")
	os.WriteFile(in, digest[:], 0o600)
	run(t, env, "", "pkcs11-tool", "--module", opensc, "--login", "--pin", piv.DefaultPIN,
		"--sign", "--id", "01", "-m", "ECDSA", "--signature-format", "openssl", "-i", in, "-o", sigPath)
	sig, err := os.ReadFile(sigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Errorf("OpenSC's signature does not verify")
	}
}

func parseCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatalf("no PEM in:\n%s", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
