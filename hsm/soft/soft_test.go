package soft

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/hsmtest"
	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

var (
	caOnce  sync.Once
	testCA  *CA
	testCAd string
	caErr   error
)

// The tests make their devices at KDFTest (scrypt N=2^10): Standard
// (N=2^16) took about 160 ms per derivation here (BenchmarkSign: 2
// derivations). TestStandardKDF keeps full strength end to end.
func TestMain(m *testing.M) {
	code := m.Run()
	if testCAd != "" {
		os.RemoveAll(testCAd)
	}
	os.Exit(code)
}

// sharedCA is one soft CA for the whole test binary, in testCAd.
func sharedCA(t testing.TB) *CA {
	caOnce.Do(func() {
		testCAd, caErr = os.MkdirTemp("", "soft-ca-")
		if caErr != nil {
			return
		}
		testCA, caErr = CreateCA(testCAd)
	})
	if caErr != nil {
		t.Fatal(caErr)
	}
	return testCA
}

func newTestDevice(t testing.TB, serial uint32) *Device {
	t.Helper()
	d, err := Create(filepath.Join(t.TempDir(), "dev"), serial, sharedCA(t), CreateOptions{KDF: KDFTest})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	serial := uint32(1000000)
	hsmtest.Run(t, func(t *testing.T) hsm.Device {
		serial++
		return newTestDevice(t, serial)
	}, sharedCA(t).Pool())
}

func TestInfoInsecure(t *testing.T) {
	d := newTestDevice(t, 42)
	info := d.Info()
	if info.Kind != "soft" || !info.Insecure || info.Serial != 42 || !strings.Contains(info.FormFactor, "INSECURE") {
		t.Errorf("Info = %+v", info)
	}
	if !strings.Contains(info.String(), "INSECURE") {
		t.Errorf("Info.String() = %q", info.String())
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	d := newTestDevice(t, 77)
	pub, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgEd25519, TouchPolicy: hsm.TouchPolicyCached})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ChangePIN(DefaultPIN, "24681357"); err != nil {
		t.Fatal(err)
	}
	var ae *hsm.AuthError
	if err := d.VerifyPIN("000000"); !errors.As(err, &ae) {
		t.Fatal(err)
	}
	d.Close()

	d2, err := Open(d.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.Info() != d.Info() {
		t.Errorf("reopened Info %+v, was %+v", d2.Info(), d.Info())
	}
	if pin, puk, _ := d2.Retries(); pin != 2 || puk != 3 {
		t.Errorf("reopened retries %d/%d, want 2/3", pin, puk)
	}
	got, err := d2.PublicKey(hsm.SlotSignature)
	if err != nil || !pub.(ed25519.PublicKey).Equal(got) {
		t.Fatalf("reopened PublicKey = %v, %v", got, err)
	}
	sig, err := d2.Sign("24681357", hsm.SlotSignature, []byte("m"))
	if err != nil || !ed25519.Verify(pub.(ed25519.PublicKey), []byte("m"), sig) {
		t.Fatalf("Sign after reopen: %v", err)
	}
	// Defaults recorded at generation: PIN always for 9c, touch as asked.
	att, err := d2.Attest(hsm.SlotSignature)
	if err != nil {
		t.Fatal(err)
	}
	a, err := keys.VerifyAttestation(att.Leaf, att.Intermediate, sharedCA(t).Pool())
	if err != nil {
		t.Fatal(err)
	}
	if a.PINPolicy != "always" || a.TouchPolicy != "cached" || a.Serial != 77 {
		t.Errorf("attested %+v", a)
	}
}

func TestLoadCA(t *testing.T) {
	ca := sharedCA(t)
	loaded, err := LoadCA(testCAd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.Certificate().Raw, ca.Certificate().Raw) {
		t.Fatal("loaded CA certificate differs")
	}
	// A device made with the reloaded CA verifies under the original pool.
	d, err := Create(filepath.Join(t.TempDir(), "d"), 5, loaded, CreateOptions{KDF: KDFTest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		t.Fatal(err)
	}
	att, err := d.Attest(hsm.SlotSignature)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.VerifyAttestation(att.Leaf, att.Intermediate, ca.Pool()); err != nil {
		t.Fatal(err)
	}
	// ...but not under another installation's CA, nor under Yubico's roots.
	other, err := CreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, pool := range map[string]*x509.CertPool{"other soft CA": other.Pool(), "Yubico": keys.YubicoRoots()} {
		if _, err := keys.VerifyAttestation(att.Leaf, att.Intermediate, pool); !errors.Is(err, keys.ErrAttestationChain) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadCA(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadCA(empty dir) = %v", err)
	}
}

func TestCreateRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, 1, sharedCA(t), CreateOptions{KDF: KDFTest}); !errors.Is(err, os.ErrExist) {
		t.Errorf("Create in a non-empty dir = %v", err)
	}
	if _, err := CreateCA(dir); !errors.Is(err, os.ErrExist) {
		t.Errorf("CreateCA in a non-empty dir = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if b, _ := os.ReadFile(keep); len(entries) != 1 || string(b) != "mine" {
		t.Errorf("the directory was changed: %d entries", len(entries))
	}
	// Nor over an existing device.
	d := newTestDevice(t, 9)
	if _, err := Create(d.Dir(), 10, sharedCA(t), CreateOptions{KDF: KDFTest}); !errors.Is(err, os.ErrExist) {
		t.Errorf("Create over a device = %v", err)
	}
	if got, _ := Open(d.Dir()); got == nil || got.Info().Serial != 9 {
		t.Error("existing device damaged")
	}
}

func TestCreateArguments(t *testing.T) {
	if _, err := Create(t.TempDir(), 0, sharedCA(t), CreateOptions{KDF: KDFTest}); err == nil {
		t.Error("serial 0 accepted")
	}
	if _, err := Create(t.TempDir(), 1, nil, CreateOptions{KDF: KDFTest}); err == nil {
		t.Error("nil CA accepted")
	}
	dir := t.TempDir()
	if _, err := Create(dir, 1, sharedCA(t), CreateOptions{KDF: "legacy"}); !errors.Is(err, ErrUnknownKDF) {
		t.Errorf("kdf cost legacy: %v, want ErrUnknownKDF", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused Create left %d files", len(entries))
	}
}

func TestOpenNoDevice(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		if _, err := Open(dir); !errors.Is(err, hsm.ErrNoDevice) {
			t.Errorf("Open(%s) = %v, want ErrNoDevice", dir, err)
		}
	}
}

// Every file the soft device and CA write says INSECURE, and only the
// expected files are left (no temporary files).
func TestFilesSayInsecure(t *testing.T) {
	d := newTestDevice(t, 11)
	if _, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		t.Fatal(err)
	}
	d.VerifyPIN("000000")
	for dir, want := range map[string][]string{d.Dir(): {readmeFile, stateFile}, testCAd: {readmeFile, caFile}} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("INSECURE")) {
				t.Errorf("%s does not say INSECURE", e.Name())
			}
			if fi, _ := e.Info(); fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %04o", e.Name(), fi.Mode().Perm())
			}
		}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("%s holds %v, want %v", dir, names, want)
		}
	}
}

// No file holds a PIN, a PUK, the device key or a private key in the clear
// (raw, hex or base64).
func TestNoSecretsOnDisk(t *testing.T) {
	d := newTestDevice(t, 12)
	const pin, puk = "24681357", "97531864"
	if err := d.ChangePIN(DefaultPIN, pin); err != nil {
		t.Fatal(err)
	}
	if err := d.ChangePUK(DefaultPUK, puk); err != nil {
		t.Fatal(err)
	}
	for slot, alg := range map[hsm.Slot]hsm.Algorithm{hsm.SlotSignature: hsm.AlgECCP256, hsm.SlotAuthentication: hsm.AlgEd25519} {
		if _, err := d.GenerateKey(pin, slot, hsm.KeyOptions{Algorithm: alg}); err != nil {
			t.Fatal(err)
		}
	}
	// Dig the secrets out the way the device does.
	s, err := d.read()
	if err != nil {
		t.Fatal(err)
	}
	devKey, err := decrypt(s.PINWrapped, []byte(pin), s.KDF)
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{[]byte(pin), []byte(puk), devKey}
	for name, sl := range s.Slots {
		der, err := decrypt(sl.PrivateKey, devKey, s.KDF)
		if err != nil {
			t.Fatalf("slot %s: %v", name, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, der)
		switch p := priv.(type) {
		case *ecdsa.PrivateKey:
			raw, _ := p.Bytes()
			secrets = append(secrets, raw)
		case ed25519.PrivateKey:
			secrets = append(secrets, p.Seed())
		}
	}
	att, err := decrypt(s.Attest.Key, []byte(AttestationPassphrase), "")
	if err != nil {
		t.Fatal(err)
	}
	_ = att // encrypted under a public passphrase by design; not a secret
	var forms [][]byte
	for _, sec := range secrets {
		b64, _ := json.Marshal(sec) // base64 in a JSON string
		forms = append(forms, sec, []byte(hexString(sec)), bytes.Trim(b64, `"`))
	}
	entries, _ := os.ReadDir(d.Dir())
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(d.Dir(), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range forms {
			if bytes.Contains(b, f) {
				t.Errorf("%s contains secret %d in the clear", e.Name(), i)
			}
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestCorruptState(t *testing.T) {
	d := newTestDevice(t, 13)
	if _, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	good, err := os.ReadFile(filepath.Join(d.Dir(), stateFile))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	slot := func(m map[string]any) map[string]any { return m["slots"].(map[string]any)["9c"].(map[string]any) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not JSON", []byte("INSECURE")},
		{"trailing data", append(append([]byte{}, good...), []byte("{}")...)},
		{"unknown field", edit(func(m map[string]any) { m["pin"] = "123456" })},
		{"no warning", edit(func(m map[string]any) { delete(m, "warning") })},
		{"other format", edit(func(m map[string]any) { m["format"] = "x" })},
		{"version 1", edit(func(m map[string]any) { m["version"] = 1 })},
		{"version 3", edit(func(m map[string]any) { m["version"] = 3 })},
		{"no kdf", edit(func(m map[string]any) { delete(m, "kdf") })},
		{"unknown kdf", edit(func(m map[string]any) { m["kdf"] = "legacy" })},
		// The secrets are at the test cost: a state that claims another
		// cost than its values use is refused.
		{"kdf not the secrets' cost", edit(func(m map[string]any) { m["kdf"] = "standard" })},
		{"legacy scrypt N", edit(func(m map[string]any) {
			m["pin_wrapped_device_key"].(map[string]any)["kdf"].(map[string]any)["params"].(map[string]any)["N"] = 1 << 15
		})},
		{"slot key at another cost", edit(func(m map[string]any) {
			slot(m)["private_key"].(map[string]any)["kdf"].(map[string]any)["params"].(map[string]any)["N"] = 1 << 16
		})},
		{"serial 0", edit(func(m map[string]any) { m["serial"] = 0 })},
		{"serial negative", edit(func(m map[string]any) { m["serial"] = -1 })},
		{"firmware word", edit(func(m map[string]any) { m["firmware"] = "five" })},
		{"firmware 256", edit(func(m map[string]any) { m["firmware"] = "5.256.1" })},
		{"pin retries 4", edit(func(m map[string]any) { m["pin_retries"] = 4 })},
		{"puk retries -1", edit(func(m map[string]any) { m["puk_retries"] = -1 })},
		{"wrapped key not an object", edit(func(m map[string]any) { m["pin_wrapped_device_key"] = "abc" })},
		{"huge scrypt N", edit(func(m map[string]any) {
			m["pin_wrapped_device_key"].(map[string]any)["kdf"].(map[string]any)["params"].(map[string]any)["N"] = 1 << 30
		})},
		{"short nonce", edit(func(m map[string]any) {
			m["puk_wrapped_device_key"].(map[string]any)["cipher"].(map[string]any)["nonce"] = "AAAA"
		})},
		{"bad attestation certificate", edit(func(m map[string]any) { m["attestation"].(map[string]any)["certificate"] = "x" })},
		{"no slots", edit(func(m map[string]any) { delete(m, "slots") })},
		{"uppercase slot", edit(func(m map[string]any) {
			sl := m["slots"].(map[string]any)
			sl["9C"] = sl["9c"]
			delete(sl, "9c")
		})},
		{"slot f9", edit(func(m map[string]any) {
			sl := m["slots"].(map[string]any)
			sl["f9"] = sl["9c"]
		})},
		{"null slot", edit(func(m map[string]any) { m["slots"].(map[string]any)["9a"] = nil })},
		{"algorithm mismatch", edit(func(m map[string]any) { slot(m)["algorithm"] = "ed25519" })},
		{"unknown algorithm", edit(func(m map[string]any) { slot(m)["algorithm"] = "rsa2048" })},
		{"unknown policy", edit(func(m map[string]any) { slot(m)["pin_policy"] = "sometimes" })},
		{"bad public key", edit(func(m map[string]any) {
			slot(m)["public_key"] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
		})},
		{"private key missing", edit(func(m map[string]any) { delete(slot(m), "private_key") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseState(tt.data); !errors.Is(err, ErrBadState) {
				t.Errorf("parseState = %v, want ErrBadState", err)
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, stateFile), tt.data, 0o600)
			if _, err := Open(dir); err == nil {
				t.Error("Open accepted it")
			}
		})
	}
	if _, err := parseState(good); err != nil {
		t.Fatalf("the unedited state does not parse: %v", err)
	}
}

// TestStateStrict is the strict decoder's table for state.json: duplicate,
// case-folded and nested unknown keys are refused, naming the field path.
func TestStateStrict(t *testing.T) {
	d := newTestDevice(t, 15)
	if _, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	good, err := os.ReadFile(filepath.Join(d.Dir(), stateFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, path string
		err                  error
	}{
		// A second serial must not replace the first.
		{"duplicate key", `"serial":`, `"serial": 1, "serial":`, "serial", strictjson.ErrDuplicateKey},
		{"duplicate key in a slot", `"pin_policy":`, `"pin_policy": "never", "pin_policy":`, "slots.9c.pin_policy", strictjson.ErrDuplicateKey},
		{"duplicate key in an encrypted value", `"ciphertext":`, `"ciphertext": "", "ciphertext":`, "pin_wrapped_device_key.ciphertext", strictjson.ErrDuplicateKey},
		{"case-folded key", `"pin_retries"`, `"PIN_retries"`, "PIN_retries", strictjson.ErrUnknownField},
		{"case-folded nested key", `"public_key"`, `"Public_Key"`, "slots.9c.Public_Key", strictjson.ErrUnknownField},
		{"nested unknown field", `"algorithm"`, `"backup": "x", "algorithm"`, "slots.9c.backup", strictjson.ErrUnknownField},
		{"unknown field in attestation", `"certificate"`, `"chain": [], "certificate"`, "attestation.chain", strictjson.ErrUnknownField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(string(good), tc.old, tc.new, 1)
			if in == string(good) {
				t.Fatalf("state.json lacks %q", tc.old)
			}
			_, err := parseState([]byte(in))
			var se *strictjson.Error
			if !errors.Is(err, ErrBadState) || !errors.Is(err, tc.err) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want ErrBadState and %v", err, tc.err)
			}
			if se.File != stateFile || se.Path != tc.path || se.Line < 1 {
				t.Fatalf("err = %q names %s:%d %q, want %s %q", err, se.File, se.Line, se.Path, stateFile, tc.path)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	d := newTestDevice(f, 14)
	d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgEd25519})
	good, err := os.ReadFile(filepath.Join(d.Dir(), stateFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"warning":"` + Warning + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error not ErrBadState: %v", err)
			}
			return
		}
		// Whatever parses survives a write and a reread.
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseState(again); err != nil {
			t.Fatalf("re-encoded state does not parse: %v", err)
		}
	})
}

func FuzzParseCA(f *testing.F) {
	sharedCA(f)
	good, err := os.ReadFile(filepath.Join(testCAd, caFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseCA(b); err != nil && !errors.Is(err, ErrBadState) && !errors.Is(err, errWrongSecret) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// Standard scrypt costs about this much per PIN check or key decryption.
func BenchmarkSign(b *testing.B) {
	d, err := Create(filepath.Join(b.TempDir(), "dev"), 15, sharedCA(b), CreateOptions{KDF: KDFStandard})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.Sign(DefaultPIN, hsm.SlotSignature, []byte("m")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	ca := sharedCA(b)
	for b.Loop() {
		if _, err := Create(filepath.Join(b.TempDir(), "d"), 1, ca, CreateOptions{KDF: KDFStandard}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStandardKDF keeps full strength end to end: a device created with
// the default options records and uses scrypt N=2^16 for every secret,
// reopens, changes its PIN and signs; go-securesystemslib's encrypted
// package, an independent implementation of the envelope, opens its
// values, and the device opens the package's.
func TestStandardKDF(t *testing.T) {
	d, err := Create(filepath.Join(t.TempDir(), "dev"), 16, sharedCA(t), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.KDF() != KDFStandard || d.Info().FormFactor != "soft (INSECURE)" {
		t.Errorf("default device: kdf %q, Info %+v", d.KDF(), d.Info())
	}
	pub, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgEd25519})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Open(d.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.ChangePIN(DefaultPIN, "654321"); err != nil {
		t.Fatal(err)
	}
	sig, err := d.Sign("654321", hsm.SlotSignature, []byte("m"))
	if err != nil || !ed25519.Verify(pub.(ed25519.PublicKey), []byte("m"), sig) {
		t.Fatalf("Sign at full strength: %v", err)
	}
	s, err := d.read()
	if err != nil {
		t.Fatal(err)
	}
	if s.KDF != KDFStandard {
		t.Errorf("state records kdf %q", s.KDF)
	}
	for name, b := range map[string]json.RawMessage{"pin": s.PINWrapped, "puk": s.PUKWrapped, "9c": s.Slots["9c"].PrivateKey} {
		var v blob
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.KDF.Params != (scryptParams{N: 1 << 16, R: 8, P: 1}) {
			t.Errorf("%s encrypted with scrypt %+v, want N=2^16 r=8 p=1", name, v.KDF.Params)
		}
	}
	// The independent implementation opens the device's values...
	devKey, err := encrypted.Decrypt(s.PINWrapped, []byte("654321"))
	if err != nil {
		t.Fatalf("encrypted.Decrypt of the PIN-wrapped device key: %v", err)
	}
	mine, err := decrypt(s.PUKWrapped, []byte(DefaultPUK), KDFStandard)
	if err != nil || !bytes.Equal(mine, devKey) || len(devKey) != 32 {
		t.Fatalf("the PIN and PUK copies of the device key differ: %v", err)
	}
	// ...and the device opens the package's, at Standard only.
	theirs, err := encrypted.EncryptWithCustomKDFParameters([]byte("secret"), []byte("pass"), encrypted.Standard)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decrypt(theirs, []byte("pass"), KDFStandard); err != nil || string(got) != "secret" {
		t.Fatalf("decrypt of encrypted.Encrypt's value: %q, %v", got, err)
	}
	if _, err := decrypt(theirs, []byte("wrong"), KDFStandard); !errors.Is(err, errWrongSecret) {
		t.Errorf("wrong passphrase: %v", err)
	}
	if _, err := decrypt(theirs, []byte("pass"), KDFTest); !errors.Is(err, ErrBadState) {
		t.Errorf("a Standard value opened as a test-cost one: %v", err)
	}
	legacy, err := encrypted.EncryptWithCustomKDFParameters([]byte("secret"), []byte("pass"), encrypted.Legacy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decrypt(legacy, []byte("pass"), ""); !errors.Is(err, ErrBadState) {
		t.Errorf("a cost this package does not know (Legacy) was accepted: %v", err)
	}
}

// TestTestKDFRecorded: a device created at KDFTest records it, uses it
// for every secret, keeps it across reopening and changes, and says so in
// its Info (which transcripts record).
func TestTestKDFRecorded(t *testing.T) {
	d := newTestDevice(t, 17)
	if !strings.Contains(d.Info().FormFactor, "kdf cost test") || !strings.Contains(d.Info().FormFactor, "INSECURE") {
		t.Errorf("Info does not name the test cost: %+v", d.Info())
	}
	if _, err := d.GenerateKey(DefaultPIN, hsm.SlotSignature, hsm.KeyOptions{Algorithm: hsm.AlgECCP256}); err != nil {
		t.Fatal(err)
	}
	if err := d.ChangePUK(DefaultPUK, "87654321"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err := Open(d.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.KDF() != KDFTest || !strings.Contains(d.Info().FormFactor, "kdf cost test") {
		t.Errorf("reopened: kdf %q, Info %+v", d.KDF(), d.Info())
	}
	s, err := d.read()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]json.RawMessage{"pin": s.PINWrapped, "puk": s.PUKWrapped, "9c": s.Slots["9c"].PrivateKey, "attestation": s.Attest.Key} {
		var v blob
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.KDF.Params != (scryptParams{N: 1 << 10, R: 8, P: 1}) {
			t.Errorf("%s encrypted with scrypt %+v, want N=2^10", name, v.KDF.Params)
		}
	}
	raw, err := os.ReadFile(filepath.Join(d.Dir(), stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"kdf": "test"`)) {
		t.Error("state.json does not record the kdf cost")
	}
}

func TestParseKDF(t *testing.T) {
	for _, k := range KDFs {
		if got, err := ParseKDF(string(k)); err != nil || got != k {
			t.Errorf("ParseKDF(%q) = %q, %v", k, got, err)
		}
	}
	for _, s := range []string{"", "Standard", "legacy", "owasp", "test "} {
		if _, err := ParseKDF(s); !errors.Is(err, ErrUnknownKDF) {
			t.Errorf("ParseKDF(%q) = %v, want ErrUnknownKDF", s, err)
		}
	}
}

// FuzzParseKDF: only a known cost's own name is a KDF; anything else is
// ErrUnknownKDF, named in the error.
func FuzzParseKDF(f *testing.F) {
	for _, k := range KDFs {
		f.Add(string(k))
	}
	for _, s := range []string{"", "Standard", "standard ", "test\x00", "fast"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKDF(s)
		if err != nil {
			if !errors.Is(err, ErrUnknownKDF) || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("ParseKDF(%q): %v", s, err)
			}
			return
		}
		if string(k) != s || !slices.Contains(KDFs, k) {
			t.Fatalf("ParseKDF(%q) = %q", s, k)
		}
	})
}
