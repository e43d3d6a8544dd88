package tuf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gotuf "github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/keys"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenEd25519 is a fixed ed25519 key: its signatures are deterministic.
func goldenEd25519(t testing.TB, n int) keys.Signer {
	seed := sha256.Sum256([]byte(fmt.Sprintf("keyceremony golden key %d", n)))
	s, err := keys.NewMemorySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenECDSA is a fixed P-256 key; it is only listed, never signs, in
// golden files (ECDSA signatures are randomised).
func goldenECDSA(t testing.TB, n int) *keys.Key {
	d := sha256.Sum256([]byte(fmt.Sprintf("keyceremony golden ecdsa key %d", n)))
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.FromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// goldenFiles are the files in testdata, in an order where each
// delegator comes before what it delegates to.
var goldenFiles = []string{"root.json", "timestamp.json", "snapshot.json", "targets.json", "stable.json", "stable-0.json", "unstable.json"}

// makeGolden builds the golden repository: every role kind, a PEM key in a
// keyring, paths and hex-prefix delegations, a target with custom data.
func makeGolden(t testing.TB) map[string][]byte {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	r1, r2, tk, sn, ts, st, bin, un := goldenEd25519(t, 1), goldenEd25519(t, 2), goldenEd25519(t, 3),
		goldenEd25519(t, 4), goldenEd25519(t, 5), goldenEd25519(t, 6), goldenEd25519(t, 7), goldenEd25519(t, 8)
	marshal := func(m interface{ MarshalFile() ([]byte, error) }) []byte {
		b, err := m.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sign := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]byte{}

	root := NewRoot(1, exp)
	for _, k := range []*keys.Key{r1.Key(), r2.Key(), goldenECDSA(t, 1)} {
		sign(root.Signed.AddKey(RoleRoot, k))
	}
	root.Signed.Roles[RoleRoot].Threshold = 2
	sign(root.Signed.AddKey(RoleTargets, tk.Key()))
	sign(root.Signed.AddKey(RoleSnapshot, sn.Key()))
	sign(root.Signed.AddKey(RoleTimestamp, ts.Key()))
	sign(root.Sign(r1, r2))
	out["root.json"] = marshal(root)

	targets := NewTargets(1, exp)
	targets.Signed.AddDelegation(DelegatedRole{Name: "stable", KeyIDs: []string{goldenECDSA(t, 2).ID(), st.Key().ID()}, Threshold: 1,
		Paths: pathPatterns}, goldenECDSA(t, 2), st.Key())
	targets.Signed.AddDelegation(DelegatedRole{Name: "unstable", KeyIDs: []string{un.Key().ID()}, Threshold: 1, Paths: pathPatterns}, un.Key())
	sign(targets.Sign(tk))
	out["targets.json"] = marshal(targets)

	stable := NewTargets(2, exp)
	stable.Signed.AddDelegation(DelegatedRole{Name: "stable-0", KeyIDs: []string{bin.Key().ID()}, Threshold: 1,
		PathHashPrefixes: []string{"0", "1", "2", "3", "4", "5", "6", "7"}}, bin.Key())
	sign(stable.Sign(st))
	out["stable.json"] = marshal(stable)

	bin0 := NewTargets(2, exp)
	bin0.Signed.Targets["simple/bar/index.html"] = targetFile("<html>bar</html>") // sha256 prefix 0
	yanked := targetFile("foo 1.0")
	yanked.Custom = []byte(`{"yanked":true,"note":"line\nbreak"}`)
	bin0.Signed.Targets["packages/11/22/33445566/bar-2.0.tar.gz"] = yanked // prefix 1
	sign(bin0.Sign(bin))
	out["stable-0.json"] = marshal(bin0)

	unstable := NewTargets(3, exp)
	unstable.Signed.Targets["packages/aa/bb/ccddeeff/foo-1.1.tar.gz"] = targetFile("foo 1.1")
	sign(unstable.Sign(un))
	out["unstable.json"] = marshal(unstable)

	snap := NewSnapshot(4, exp)
	snap.Signed.Meta["targets.json"] = MetaFile{Version: 1}
	snap.Signed.Meta["stable.json"] = MetaFile{Version: 2}
	snap.Signed.Meta["stable-0.json"] = metaOf(out["stable-0.json"], true, 2)
	snap.Signed.Meta["unstable.json"] = MetaFile{Version: 3}
	sign(snap.Sign(sn))
	out["snapshot.json"] = marshal(snap)

	tsm := NewTimestamp(5, exp, metaOf(out["snapshot.json"], true, 4))
	sign(tsm.Sign(ts))
	out["timestamp.json"] = marshal(tsm)
	return out
}

func golden(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What MarshalFile writes is byte for byte the golden file, loads back to
// the same bytes, and verifies with our code and with go-tuf v2.
func TestGoldenFiles(t *testing.T) {
	files := makeGolden(t)
	for _, name := range goldenFiles {
		if *update {
			if err := os.WriteFile(filepath.Join("testdata", name), files[name], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := files[name], golden(t, name); !bytes.Equal(got, want) {
			t.Errorf("%s: MarshalFile wrote\n%s\nwant (testdata/%s; -update rewrites)\n%s", name, got, name, want)
		}
	}
	var again []byte
	var err error
	load := func(name string) {
		t.Helper()
		b := golden(t, name)
		switch name {
		case "root.json":
			var m *Metadata[Root]
			if m, err = Load[Root](b, name); err == nil {
				again, err = m.MarshalFile()
			}
		case "timestamp.json":
			var m *Metadata[Timestamp]
			if m, err = Load[Timestamp](b, name); err == nil {
				again, err = m.MarshalFile()
			}
		case "snapshot.json":
			var m *Metadata[Snapshot]
			if m, err = Load[Snapshot](b, name); err == nil {
				again, err = m.MarshalFile()
			}
		default:
			var m *Metadata[Targets]
			if m, err = Load[Targets](b, name); err == nil {
				again, err = m.MarshalFile()
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("%s does not re-marshal to itself:\n%s", name, again)
		}
	}
	for _, name := range goldenFiles {
		load(name)
	}

	// Our verification.
	root, _ := Load[Root](golden(t, "root.json"), "root.json")
	targets, _ := Load[Targets](golden(t, "targets.json"), "targets.json")
	stable, _ := Load[Targets](golden(t, "stable.json"), "stable.json")
	for _, c := range []struct {
		name string
		err  func(msg []byte, sigs []Signature) error
	}{
		{"root.json", func(m []byte, s []Signature) error { return root.Signed.VerifyRole(RoleRoot, m, s) }},
		{"timestamp.json", func(m []byte, s []Signature) error { return root.Signed.VerifyRole(RoleTimestamp, m, s) }},
		{"snapshot.json", func(m []byte, s []Signature) error { return root.Signed.VerifyRole(RoleSnapshot, m, s) }},
		{"targets.json", func(m []byte, s []Signature) error { return root.Signed.VerifyRole(RoleTargets, m, s) }},
		{"stable.json", func(m []byte, s []Signature) error { return targets.Signed.VerifyDelegate("stable", m, s) }},
		{"unstable.json", func(m []byte, s []Signature) error { return targets.Signed.VerifyDelegate("unstable", m, s) }},
		{"stable-0.json", func(m []byte, s []Signature) error { return stable.Signed.VerifyDelegate("stable-0", m, s) }},
	} {
		msg, sigs := signedParts(t, c.name)
		if err := c.err(msg, sigs); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	bin, _ := Load[Targets](golden(t, "stable-0.json"), "stable-0.json")
	d, _ := stable.Signed.Delegation("stable-0")
	for p := range bin.Signed.Targets {
		if !d.Matches(p) {
			t.Errorf("golden stable-0 lists %s outside its prefixes", p)
		}
	}

	// go-tuf v2, an independent implementation, agrees.
	gr, err := gotuf.Root().FromBytes(golden(t, "root.json"))
	must(t, err)
	gt, err := gotuf.Targets().FromBytes(golden(t, "targets.json"))
	must(t, err)
	gs, err := gotuf.Targets().FromBytes(golden(t, "stable.json"))
	must(t, err)
	gsn, err := gotuf.Snapshot().FromBytes(golden(t, "snapshot.json"))
	must(t, err)
	gts, err := gotuf.Timestamp().FromBytes(golden(t, "timestamp.json"))
	must(t, err)
	gu, err := gotuf.Targets().FromBytes(golden(t, "unstable.json"))
	must(t, err)
	gb, err := gotuf.Targets().FromBytes(golden(t, "stable-0.json"))
	must(t, err)
	for _, c := range []struct {
		what string
		err  error
	}{
		{"root by root", gr.VerifyDelegate(RoleRoot, gr)},
		{"timestamp by root", gr.VerifyDelegate(RoleTimestamp, gts)},
		{"snapshot by root", gr.VerifyDelegate(RoleSnapshot, gsn)},
		{"targets by root", gr.VerifyDelegate(RoleTargets, gt)},
		{"stable by targets", gt.VerifyDelegate("stable", gs)},
		{"unstable by targets", gt.VerifyDelegate("unstable", gu)},
		{"stable-0 by stable", gs.VerifyDelegate("stable-0", gb)},
		{"snapshot hashes", gts.Signed.Meta["snapshot.json"].VerifyLengthHashes(golden(t, "snapshot.json"))},
		{"bin hashes", gsn.Signed.Meta["stable-0.json"].VerifyLengthHashes(golden(t, "stable-0.json"))},
	} {
		if c.err != nil {
			t.Errorf("go-tuf: %s: %v", c.what, c.err)
		}
	}
	if got := gt.Signed.Delegations.Roles[0].Name; got != "stable" {
		t.Errorf("go-tuf sees %q as the first delegation", got)
	}
}

func signedParts(t *testing.T, name string) ([]byte, []Signature) {
	t.Helper()
	b := golden(t, name)
	var msg []byte
	var sigs []Signature
	var err error
	switch name {
	case "root.json":
		m, _ := Load[Root](b, name)
		msg, err = m.SignedBytes()
		sigs = m.Signatures
	case "timestamp.json":
		m, _ := Load[Timestamp](b, name)
		msg, err = m.SignedBytes()
		sigs = m.Signatures
	case "snapshot.json":
		m, _ := Load[Snapshot](b, name)
		msg, err = m.SignedBytes()
		sigs = m.Signatures
	default:
		m, _ := Load[Targets](b, name)
		msg, err = m.SignedBytes()
		sigs = m.Signatures
	}
	must(t, err)
	return msg, sigs
}

// go-tuf v2 loads and verifies every file of a repository written with
// MarshalFile, ECDSA (DER) signatures and a root rotation included.
func TestGoTUFAcceptsWhatWeWrite(t *testing.T) {
	r := newTestRepo(t)
	dir := r.build()
	r1, r2 := gtRoot(t, dir, "1.root.json"), gtRoot(t, dir, "2.root.json")
	tg := gtTargets(t, dir, "1.targets.json")
	st := gtTargets(t, dir, "3.stable.json")
	sn, err := gotuf.Snapshot().FromBytes(readFile(t, dir, "7.snapshot.json"))
	must(t, err)
	ts, err := gotuf.Timestamp().FromBytes(readFile(t, dir, "timestamp.json"))
	must(t, err)
	for _, c := range []struct {
		what string
		err  error
	}{
		{"root v2 by v1", r1.VerifyDelegate(RoleRoot, r2)},
		{"root v2 by itself", r2.VerifyDelegate(RoleRoot, r2)},
		{"timestamp", r2.VerifyDelegate(RoleTimestamp, ts)},
		{"snapshot", r2.VerifyDelegate(RoleSnapshot, sn)},
		{"targets", r2.VerifyDelegate(RoleTargets, tg)},
		{"stable", tg.VerifyDelegate("stable", st)},
		{"unstable", tg.VerifyDelegate("unstable", gtTargets(t, dir, "5.unstable.json"))},
		{"stable-0", st.VerifyDelegate("stable-0", gtTargets(t, dir, "3.stable-0.json"))},
		{"stable-1", st.VerifyDelegate("stable-1", gtTargets(t, dir, "3.stable-1.json"))},
	} {
		if c.err != nil {
			t.Errorf("go-tuf: %s: %v", c.what, c.err)
		}
	}
}

// Every strictness rule of the package doc, each broken once in a golden
// file: Load refuses it with a *LoadError naming the file and the field.
func TestLoadStrict(t *testing.T) {
	rootKeyID := goldenEd25519(t, 1).Key().ID()
	rootSigIndex := -1
	_, rootSigs := signedParts(t, "root.json")
	for i, s := range rootSigs {
		if s.KeyID == rootKeyID {
			rootSigIndex = i
		}
	}
	sigOf := func(file string) string {
		_, sigs := signedParts(t, file)
		return sigs[0].Sig
	}
	replace := func(old, new string) func(t *testing.T, b []byte) []byte {
		return func(t *testing.T, b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("golden file lacks %q", old)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}
	signed := func(f func(s map[string]any)) func(t *testing.T, b []byte) []byte {
		return func(t *testing.T, b []byte) []byte {
			return editJSON(t, b, func(doc map[string]any) { f(doc["signed"].(map[string]any)) })
		}
	}
	role := func(s map[string]any, i int) map[string]any {
		return s["delegations"].(map[string]any)["roles"].([]any)[i].(map[string]any)
	}
	cases := []struct {
		name, file string
		edit       func(t *testing.T, b []byte) []byte
		field      string
		err        error
	}{
		// Fields.
		{"unknown field", "root.json", signed(func(s map[string]any) { s["mirrors"] = true }), "signed.mirrors", ErrUnknownField},
		{"unknown top-level field", "snapshot.json", func(t *testing.T, b []byte) []byte {
			return editJSON(t, b, func(d map[string]any) { d["signed_by"] = "me" })
		}, "signed_by", ErrUnknownField},
		{"nested unknown field", "targets.json", signed(func(s map[string]any) { role(s, 0)["mirrors"] = []any{} }), "signed.delegations.roles[0].mirrors", ErrUnknownField},
		{"unknown field in a key", "root.json", signed(func(s map[string]any) {
			s["keys"].(map[string]any)[rootKeyID].(map[string]any)["keyid_hash_algorithms"] = []any{"sha256"}
		}), "signed.keys." + rootKeyID + ".keyid_hash_algorithms", ErrUnknownField},
		{"case-folded key in a key", "root.json", signed(func(s map[string]any) {
			k := s["keys"].(map[string]any)[rootKeyID].(map[string]any)
			k["KeyType"] = k["keytype"]
			delete(k, "keytype")
		}), "signed.keys." + rootKeyID + ".KeyType", ErrUnknownField},
		{"missing field", "root.json", signed(func(s map[string]any) { delete(s, "consistent_snapshot") }), "signed.consistent_snapshot", ErrMissingField},
		{"missing targets", "unstable.json", signed(func(s map[string]any) { delete(s, "targets") }), "signed.targets", ErrMissingField},
		{"misspelt field", "timestamp.json", replace(`"spec_version"`, `"specversion"`), "signed.spec_version", ErrMissingField},
		{"field in another case", "targets.json", replace(`"threshold"`, `"Threshold"`), "signed.delegations.roles[0].Threshold", ErrUnknownField},
		{"null field", "unstable.json", signed(func(s map[string]any) { s["targets"] = nil }), "signed.targets", ErrMalformed},
		{"null signatures", "unstable.json", func(t *testing.T, b []byte) []byte {
			return editJSON(t, b, func(d map[string]any) { d["signatures"] = nil })
		}, "signatures", ErrMalformed},
		{"custom null", "unstable.json", signed(func(s map[string]any) {
			s["targets"].(map[string]any)["packages/aa/bb/ccddeeff/foo-1.1.tar.gz"].(map[string]any)["custom"] = nil
		}), "signed.targets.packages/aa/bb/ccddeeff/foo-1.1.tar.gz.custom", ErrMalformed},
		{"empty paths list", "targets.json", signed(func(s map[string]any) { role(s, 1)["path_hash_prefixes"] = []any{} }), "signed.delegations.roles[1].path_hash_prefixes", ErrUnknownField},
		{"zero length in snapshot meta", "snapshot.json", signed(func(s map[string]any) {
			s["meta"].(map[string]any)["targets.json"].(map[string]any)["length"] = 0
		}), "signed.meta.targets.json.length", ErrUnknownField},
		{"root without a role", "root.json", signed(func(s map[string]any) { delete(s["roles"].(map[string]any), "timestamp") }), "signed.roles.timestamp", ErrMissingField},
		{"root with an extra role", "root.json", signed(func(s map[string]any) {
			s["roles"].(map[string]any)["mirror"] = map[string]any{"keyids": []any{rootKeyID}, "threshold": 1}
		}), "signed.roles.mirror", ErrUnknownField},
		// JSON syntax.
		{"duplicate key", "timestamp.json", replace(`"version": 5,`, `"version": 5, "version": 5,`), "signed.version", ErrDuplicateKey},
		{"duplicate key in keys", "root.json", replace(`"keys": {`, `"keys": {"`+rootKeyID+`": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "00"}}, `), "signed.keys." + rootKeyID, ErrDuplicateKey},
		{"trailing data", "timestamp.json", func(t *testing.T, b []byte) []byte { return append(b, "{}"...) }, "", ErrTrailingData},
		{"two documents", "timestamp.json", func(t *testing.T, b []byte) []byte { return append(b, b...) }, "", ErrTrailingData},
		{"not UTF-8", "unstable.json", replace(`foo-1.1`, "foo-1.1\xff"), "", ErrMalformed},
		{"truncated", "timestamp.json", func(t *testing.T, b []byte) []byte { return b[:len(b)/2] }, "", ErrMalformed},
		// Types and numbers.
		{"wrong type", "root.json", signed(func(s map[string]any) { s["consistent_snapshot"] = "true" }), "signed.consistent_snapshot", ErrMalformed},
		{"string version", "timestamp.json", replace(`"version": 5,`, `"version": "5",`), "signed.version", ErrMalformed},
		{"version 5.0", "timestamp.json", replace(`"version": 5,`, `"version": 5.0,`), "signed.version", ErrMalformed},
		{"version 5e0", "timestamp.json", replace(`"version": 5,`, `"version": 5e0,`), "signed.version", ErrMalformed},
		{"threshold 1.0", "targets.json", replace(`"threshold": 1`, `"threshold": 1.0`), "signed.delegations.roles[0].threshold", ErrMalformed},
		{"array for object", "snapshot.json", signed(func(s map[string]any) { s["meta"] = []any{} }), "signed.meta", ErrMalformed},
		// Values.
		{"wrong _type", "root.json", replace(`"_type": "root"`, `"_type": "Root"`), "signed._type", ErrWrongType},
		{"targets loaded as root", "targets.json", nil, "signed.consistent_snapshot", ErrMissingField},
		{"expiry with fraction", "root.json", replace(`"2030-01-02T03:04:05Z"`, `"2030-01-02T03:04:05.000Z"`), "signed.expires", ErrMalformed},
		{"expiry with offset", "root.json", replace(`"2030-01-02T03:04:05Z"`, `"2030-01-02T03:04:05+00:00"`), "signed.expires", ErrMalformed},
		{"expiry lowercase", "root.json", replace(`"2030-01-02T03:04:05Z"`, `"2030-01-02t03:04:05z"`), "signed.expires", ErrMalformed},
		{"expiry as a number", "root.json", replace(`"2030-01-02T03:04:05Z"`, `1893553445`), "signed.expires", ErrMalformed},
		{"expiry out of range", "root.json", replace(`"2030-01-02T03:04:05Z"`, `"2030-13-02T03:04:05Z"`), "signed.expires", ErrMalformed},
		{"spec_version 2.0.0", "root.json", replace(`"spec_version": "1.0.31"`, `"spec_version": "2.0.0"`), "signed.spec_version", ErrSpecVersion},
		{"spec_version 1", "root.json", replace(`"spec_version": "1.0.31"`, `"spec_version": "1"`), "signed.spec_version", ErrSpecVersion},
		{"spec_version with suffix", "root.json", replace(`"spec_version": "1.0.31"`, `"spec_version": "1.0.31-rc1"`), "signed.spec_version", ErrSpecVersion},
		{"version 0", "timestamp.json", replace(`"version": 5,`, `"version": 0,`), "signed.version", ErrMalformed},
		{"negative version", "timestamp.json", replace(`"version": 5,`, `"version": -5,`), "signed.version", ErrMalformed},
		{"meta version 0", "snapshot.json", signed(func(s map[string]any) {
			s["meta"].(map[string]any)["targets.json"].(map[string]any)["version"] = 0
		}), "signed.meta.targets.json.version", ErrMalformed},
		{"timestamp lists more than snapshot", "timestamp.json", signed(func(s map[string]any) {
			s["meta"].(map[string]any)["targets.json"] = map[string]any{"version": 1}
		}), "signed.meta", ErrMalformed},
		{"negative target length", "unstable.json", signed(func(s map[string]any) {
			s["targets"].(map[string]any)["packages/aa/bb/ccddeeff/foo-1.1.tar.gz"].(map[string]any)["length"] = -1
		}), "signed.targets.packages/aa/bb/ccddeeff/foo-1.1.tar.gz.length", ErrMalformed},
		{"no hashes", "unstable.json", signed(func(s map[string]any) {
			s["targets"].(map[string]any)["packages/aa/bb/ccddeeff/foo-1.1.tar.gz"].(map[string]any)["hashes"] = map[string]any{}
		}), "signed.targets.packages/aa/bb/ccddeeff/foo-1.1.tar.gz.hashes", ErrMalformed},
		{"unknown hash algorithm", "unstable.json", signed(func(s map[string]any) {
			s["targets"].(map[string]any)["packages/aa/bb/ccddeeff/foo-1.1.tar.gz"].(map[string]any)["hashes"] = map[string]any{"md5": strings.Repeat("0", 32)}
		}), "signed.targets.packages/aa/bb/ccddeeff/foo-1.1.tar.gz.hashes.md5", ErrMalformed},
		// Keys and signatures.
		{"key id not the hash of its key", "root.json", replace(`"`+rootKeyID+`": {`, `"`+strings.Repeat("0", 64)+`": {`), "signed.keys." + strings.Repeat("0", 64), ErrKeyIDMismatch},
		{"uppercase key id", "root.json", replace(`"keyid": "`+rootKeyID, `"keyid": "`+strings.ToUpper(rootKeyID)), fmt.Sprintf("signatures[%d].keyid", rootSigIndex), ErrMalformed},
		{"uppercase signature", "timestamp.json", replace(sigOf("timestamp.json"), strings.ToUpper(sigOf("timestamp.json"))), "signatures[0].sig", ErrMalformed},
		{"odd-length signature", "timestamp.json", replace(sigOf("timestamp.json"), sigOf("timestamp.json")+"0"), "signatures[0].sig", ErrMalformed},
		{"uppercase hash", "timestamp.json", signed(func(s map[string]any) {
			h := s["meta"].(map[string]any)["snapshot.json"].(map[string]any)["hashes"].(map[string]any)
			h["sha256"] = strings.ToUpper(h["sha256"].(string))
		}), "signed.meta.snapshot.json.hashes.sha256", ErrMalformed},
		{"uppercase ed25519 key", "root.json", signed(func(s map[string]any) {
			kv := s["keys"].(map[string]any)[rootKeyID].(map[string]any)["keyval"].(map[string]any)
			kv["public"] = strings.ToUpper(kv["public"].(string))
		}), "signed.keys." + rootKeyID, keys.ErrMalformedKey},
		{"unknown scheme", "root.json", signed(func(s map[string]any) {
			s["keys"].(map[string]any)[rootKeyID].(map[string]any)["scheme"] = "ed25519-ph"
		}), "signed.keys." + rootKeyID, keys.ErrUnsupportedKey},
		{"role key not in keyring", "root.json", signed(func(s map[string]any) {
			s["roles"].(map[string]any)["targets"].(map[string]any)["keyids"] = []any{strings.Repeat("a", 64)}
		}), "signed.roles.targets.keyids[0]", ErrMalformed},
		{"role key listed twice", "root.json", signed(func(s map[string]any) {
			s["roles"].(map[string]any)["root"].(map[string]any)["keyids"] = []any{rootKeyID, rootKeyID}
		}), "signed.roles.root.keyids[1]", ErrMalformed},
		{"threshold 0", "root.json", signed(func(s map[string]any) { s["roles"].(map[string]any)["root"].(map[string]any)["threshold"] = 0 }), "signed.roles.root.threshold", ErrMalformed},
		{"threshold above key count", "root.json", signed(func(s map[string]any) { s["roles"].(map[string]any)["root"].(map[string]any)["threshold"] = 4 }), "signed.roles.root.threshold", ErrMalformed},
		// Delegations.
		{"paths and prefixes", "targets.json", signed(func(s map[string]any) { role(s, 0)["path_hash_prefixes"] = []any{"0"} }), "signed.delegations.roles[0]", ErrMalformed},
		{"neither paths nor prefixes", "targets.json", signed(func(s map[string]any) { delete(role(s, 0), "paths") }), "signed.delegations.roles[0]", ErrMalformed},
		{"uppercase prefix", "stable.json", signed(func(s map[string]any) { role(s, 0)["path_hash_prefixes"] = []any{"A"} }), "signed.delegations.roles[0].path_hash_prefixes[0]", ErrMalformed},
		{"non-hex prefix", "stable.json", signed(func(s map[string]any) { role(s, 0)["path_hash_prefixes"] = []any{"g"} }), "signed.delegations.roles[0].path_hash_prefixes[0]", ErrMalformed},
		{"delegation to root", "targets.json", signed(func(s map[string]any) { role(s, 1)["name"] = "root" }), "signed.delegations.roles[1].name", ErrMalformed},
		{"role delegated twice", "targets.json", signed(func(s map[string]any) { role(s, 1)["name"] = "stable" }), "signed.delegations.roles[1].name", ErrMalformed},
		{"delegation key not in keyring", "stable.json", signed(func(s map[string]any) { role(s, 0)["keyids"] = []any{rootKeyID} }), "signed.delegations.roles[0].keyids[0]", ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := golden(t, tc.file)
			if tc.edit != nil {
				b = tc.edit(t, b)
			}
			var err error
			switch {
			case tc.file == "root.json" || tc.name == "targets loaded as root":
				_, err = Load[Root](b, tc.file)
			case tc.file == "timestamp.json":
				_, err = Load[Timestamp](b, tc.file)
			case tc.file == "snapshot.json":
				_, err = Load[Snapshot](b, tc.file)
			default:
				_, err = Load[Targets](b, tc.file)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *LoadError", err)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %q is not %q", err, tc.err)
			}
			if le.File != tc.file || le.Field != tc.field {
				t.Errorf("error names file %q field %q, want %q %q (%v)", le.File, le.Field, tc.file, tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), tc.file+":") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

// Layout freedoms that are not strictness: key order and whitespace.
func TestLoadAcceptsReformatted(t *testing.T) {
	for _, name := range goldenFiles {
		b := editJSON(t, golden(t, name), func(map[string]any) {}) // sorted keys, other indentation
		b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n\t"))
		var err error
		switch name {
		case "root.json":
			_, err = Load[Root](b, name)
		case "timestamp.json":
			_, err = Load[Timestamp](b, name)
		case "snapshot.json":
			_, err = Load[Snapshot](b, name)
		default:
			_, err = Load[Targets](b, name)
		}
		if err != nil {
			t.Errorf("%s reformatted: %v", name, err)
		}
	}
}
