package tuf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	gotuf "github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/keys"
)

// verifyAt is the time the test repository is verified at.
var verifyAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// tsigner signs as a key id; tampered cases replace it with one that lies.
type tsigner struct {
	id   string
	sign func(msg []byte) []byte
}

func signerOf(t *testing.T, s keys.Signer) tsigner {
	return tsigner{id: s.Key().ID(), sign: func(msg []byte) []byte {
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}}
}

// testRepo is a small repository shaped like the one the tool writes:
// root v1 → v2 rotation, targets delegating to stable (first) and
// unstable (second), stable delegating to two hex-prefix bins, each with
// a key of its own.
type testRepo struct {
	t       *testing.T
	keys    map[string]keys.Signer
	signers map[string][]tsigner // by metadata name: root1, root2, targets, stable, …

	root1, root2                             *Metadata[Root]
	targets, stable, unstable, bin0, bin1    *Metadata[Targets]
	snapshot                                 *Metadata[Snapshot]
	timestamp                                *Metadata[Timestamp]
	edit                                     func(r *testRepo, name string)
	file                                     func(r *testRepo, name string, b []byte) []byte
	written                                  map[string]string // metadata name → file name
	stableTargets, unstableTargets, allPaths []string
}

var binNames = []string{"stable-0", "stable-1"}

var pathPatterns = []string{"packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"}

func ecdsaSigner(t *testing.T) keys.Signer {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewMemorySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func edSigner(t *testing.T) keys.Signer {
	s, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func targetFile(content string) TargetFile {
	sum := sha256.Sum256([]byte(content))
	return TargetFile{Length: int64(len(content)), Hashes: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
}

func pathHash(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r := &testRepo{t: t, keys: map[string]keys.Signer{}, signers: map[string][]tsigner{}}
	for _, n := range []string{"R1", "R2", "R4", "S1", "TS1", "ST3", "U1", "B1", "B2", "X"} {
		r.keys[n] = edSigner(t)
	}
	for _, n := range []string{"R3", "R5", "T1", "ST1", "ST2"} {
		r.keys[n] = ecdsaSigner(t)
	}
	k := func(n string) *keys.Key { return r.keys[n].Key() }
	year := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

	mkRoot := func(version int64, rootKeys ...string) *Metadata[Root] {
		m := NewRoot(version, year)
		for _, n := range rootKeys {
			must(t, m.Signed.AddKey(RoleRoot, k(n)))
		}
		m.Signed.Roles[RoleRoot].Threshold = 2
		must(t, m.Signed.AddKey(RoleTargets, k("T1")))
		must(t, m.Signed.AddKey(RoleSnapshot, k("S1")))
		must(t, m.Signed.AddKey(RoleTimestamp, k("TS1")))
		return m
	}
	r.root1 = mkRoot(1, "R1", "R2", "R3")
	r.root2 = mkRoot(2, "R3", "R4", "R5")

	r.targets = NewTargets(1, year)
	stableRole := DelegatedRole{Name: "stable", Threshold: 2, Paths: pathPatterns}
	for _, n := range []string{"ST1", "ST2", "ST3"} {
		stableRole.KeyIDs = append(stableRole.KeyIDs, k(n).ID())
	}
	r.targets.Signed.AddDelegation(stableRole, k("ST1"), k("ST2"), k("ST3"))
	r.targets.Signed.AddDelegation(DelegatedRole{Name: "unstable", KeyIDs: []string{k("U1").ID()}, Threshold: 1, Paths: pathPatterns}, k("U1"))

	r.stable = NewTargets(3, year)
	r.stable.Signed.AddDelegation(DelegatedRole{Name: "stable-0", KeyIDs: []string{k("B1").ID()}, Threshold: 1,
		PathHashPrefixes: []string{"0", "1", "2", "3", "4", "5", "6", "7"}}, k("B1"))
	r.stable.Signed.AddDelegation(DelegatedRole{Name: "stable-1", KeyIDs: []string{k("B2").ID()}, Threshold: 1,
		PathHashPrefixes: []string{"8", "9", "a", "b", "c", "d", "e", "f"}}, k("B2"))
	r.bin0, r.bin1 = NewTargets(3, year), NewTargets(3, year)

	r.stableTargets = []string{
		"packages/0a/1b/2c3d4e5f/foo-1.0.tar.gz",
		"packages/9f/8e/7d6c5b4a/foo-1.0-py3-none-any.whl",
		"packages/11/22/33445566/bar-2.0.tar.gz",
		"simple/foo/index.html", "simple/foo/index.json",
		"simple/bar/index.html", "simple/bar/index.json",
	}
	for _, p := range r.stableTargets {
		bin := r.bin0
		if pathHash(p)[0] >= '8' {
			bin = r.bin1
		}
		bin.Signed.Targets[p] = targetFile("stable " + p)
	}
	if len(r.bin0.Signed.Targets) == 0 || len(r.bin1.Signed.Targets) == 0 {
		t.Fatal("test paths do not fill both bins")
	}
	r.unstable = NewTargets(5, year)
	r.unstableTargets = []string{
		"packages/0a/1b/2c3d4e5f/foo-1.0.tar.gz", // also stable, different hash
		"packages/aa/bb/ccddeeff/foo-1.1.tar.gz", // only unstable
		"simple/foo/index.html",
	}
	for _, p := range r.unstableTargets {
		r.unstable.Signed.Targets[p] = targetFile("unstable " + p)
	}
	r.snapshot = NewSnapshot(7, year)
	r.timestamp = NewTimestamp(7, year, MetaFile{Version: 7})

	sig := func(names ...string) []tsigner {
		var out []tsigner
		for _, n := range names {
			out = append(out, signerOf(t, r.keys[n]))
		}
		return out
	}
	r.signers = map[string][]tsigner{
		"root1": sig("R1", "R3"), "root2": sig("R1", "R3", "R4"),
		"targets": sig("T1"), "stable": sig("ST1", "ST2"), "unstable": sig("U1"),
		"stable-0": sig("B1"), "stable-1": sig("B2"),
		"snapshot": sig("S1"), "timestamp": sig("TS1"),
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func signWith(t *testing.T, signed any, signers []tsigner) []Signature {
	msg, err := Canonical(signed)
	must(t, err)
	sigs := []Signature{}
	for _, s := range signers {
		sigs = append(sigs, Signature{KeyID: s.id, Sig: hex.EncodeToString(s.sign(msg))})
	}
	return sigs
}

// finish signs and marshals one document, applying the hooks.
func finish[T Signed](r *testRepo, name string, m *Metadata[T]) []byte {
	if r.edit != nil {
		r.edit(r, name)
	}
	m.Signatures = signWith(r.t, m.Signed, r.signers[name])
	b, err := m.MarshalFile()
	must(r.t, err)
	if r.file != nil {
		b = r.file(r, name, b)
	}
	return b
}

func metaOf(b []byte, withHashes bool, version int64) MetaFile {
	mf := MetaFile{Version: version}
	if withHashes {
		mf.Length = int64(len(b))
		mf.Hashes = map[string]string{"sha256": pathHash(string(b))}
	}
	return mf
}

// build writes the repository into a new directory and returns it.
func (r *testRepo) build() string {
	t := r.t
	dir := t.TempDir()
	r.written = map[string]string{}
	write := func(name, file string, b []byte) {
		must(t, os.WriteFile(filepath.Join(dir, file), b, 0o644))
		r.written[name] = file
	}
	write("root1", "1.root.json", finish(r, "root1", r.root1))
	write("root2", "2.root.json", finish(r, "root2", r.root2))

	type doc struct {
		name string
		m    *Metadata[Targets]
	}
	docs := []doc{{"targets", r.targets}, {"stable", r.stable}, {"stable-0", r.bin0}, {"stable-1", r.bin1}, {"unstable", r.unstable}}
	files := map[string][]byte{}
	for _, d := range docs {
		files[d.name] = finish(r, d.name, d.m)
	}
	// Snapshot lists the bins with length and hashes, the others without.
	for _, d := range docs {
		bin := strings.HasPrefix(d.name, "stable-")
		r.snapshot.Signed.Meta[d.name+".json"] = metaOf(files[d.name], bin, d.m.Signed.Version)
	}
	snap := finish(r, "snapshot", r.snapshot)
	for _, d := range docs {
		version := d.m.Signed.Version
		if mf, ok := r.snapshot.Signed.Meta[d.name+".json"]; ok {
			version = mf.Version
		}
		write(d.name, fmt.Sprintf("%d.%s.json", version, d.name), files[d.name])
	}
	r.timestamp.Signed.Meta["snapshot.json"] = metaOf(snap, true, r.snapshot.Signed.Version)
	ts := finish(r, "timestamp", r.timestamp)
	write("snapshot", fmt.Sprintf("%d.snapshot.json", r.timestamp.Signed.Meta["snapshot.json"].Version), snap)
	write("timestamp", "timestamp.json", ts)
	return dir
}

// trusted returns a copy of root v1 as an auditor would hold it.
func (r *testRepo) trusted(dir string) *Metadata[Root] {
	b, err := os.ReadFile(filepath.Join(dir, "1.root.json"))
	must(r.t, err)
	m, err := Load[Root](b, "1.root.json")
	must(r.t, err)
	return m
}

// editJSON rewrites a metadata file's JSON without signing it again.
func editJSON(t *testing.T, b []byte, f func(doc map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	must(t, dec.Decode(&doc))
	f(doc)
	out, err := json.MarshalIndent(doc, "", " ")
	must(t, err)
	return append(out, '\n')
}

// resignJSON edits the signed part and signs it again with signers: a
// validly signed document that is malformed in some way.
func resignJSON(t *testing.T, b []byte, f func(signed map[string]any), signers []tsigner) []byte {
	t.Helper()
	return editJSON(t, b, func(doc map[string]any) {
		signed := doc["signed"].(map[string]any)
		f(signed)
		msg, err := cjson.EncodeCanonical(signed)
		must(t, err)
		var sigs []any
		for _, s := range signers {
			sigs = append(sigs, map[string]any{"keyid": s.id, "sig": hex.EncodeToString(s.sign(msg))})
		}
		doc["signatures"] = sigs
	})
}

func sigsOf(doc map[string]any) []any { return doc["signatures"].([]any) }

// rawRS rewrites one DER ECDSA signature as raw r||s, which go-tuf accepts.
func rawRS(t *testing.T, b []byte, keyID string) []byte {
	return editJSON(t, b, func(doc map[string]any) {
		done := false
		for _, s := range sigsOf(doc) {
			s := s.(map[string]any)
			if s["keyid"] != keyID {
				continue
			}
			der, err := hex.DecodeString(s["sig"].(string))
			must(t, err)
			var v struct{ R, S *big.Int }
			_, err = asn1.Unmarshal(der, &v)
			must(t, err)
			raw := make([]byte, 64)
			v.R.FillBytes(raw[:32])
			v.S.FillBytes(raw[32:])
			s["sig"] = hex.EncodeToString(raw)
			done = true
		}
		if !done {
			t.Fatal("no signature by that key")
		}
	})
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	must(t, err)
	return b
}

func gtRoot(t *testing.T, dir, name string) *gotuf.Metadata[gotuf.RootType] {
	t.Helper()
	m, err := gotuf.Root().FromBytes(readFile(t, dir, name))
	must(t, err)
	return m
}

func gtTargets(t *testing.T, dir, name string) *gotuf.Metadata[gotuf.TargetsType] {
	t.Helper()
	m, err := gotuf.Targets().FromBytes(readFile(t, dir, name))
	must(t, err)
	return m
}

func TestVerifyRepository(t *testing.T) {
	r := newTestRepo(t)
	dir := r.build()
	rep, err := VerifyRepository(r.trusted(dir), dir, VerifyOptions{At: verifyAt})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ file, role, by string }{
		{"1.root.json", "root", "root"},
		{"2.root.json", "root", "root"},
		{"timestamp.json", "timestamp", "root"},
		{"7.snapshot.json", "snapshot", "root"},
		{"1.targets.json", "targets", "root"},
		{"3.stable.json", "stable", "targets"},
		{"3.stable-0.json", "stable-0", "stable"},
		{"3.stable-1.json", "stable-1", "stable"},
		{"5.unstable.json", "unstable", "targets"},
	}
	if len(rep.Files) != len(want) {
		t.Fatalf("report has %d files, want %d: %+v", len(rep.Files), len(want), rep.Files)
	}
	for i, w := range want {
		f := rep.Files[i]
		if f.File != w.file || f.Role != w.role || f.Delegator != w.by {
			t.Errorf("report[%d] = %s %s by %s, want %s %s by %s", i, f.File, f.Role, f.Delegator, w.file, w.role, w.by)
		}
	}
	id := func(n string) string { return r.keys[n].Key().ID() }
	rot := rep.Files[1]
	if len(rot.Checks) != 2 || rot.Checks[0].By != "1.root.json" || rot.Checks[0].Threshold != 2 ||
		!equalSets(rot.Checks[0].Signers, []string{id("R1"), id("R3")}) ||
		!equalSets(rot.Checks[1].Signers, []string{id("R3"), id("R4")}) {
		t.Errorf("rotation checks = %+v", rot.Checks)
	}
	st := rep.Files[5]
	if st.Version != 3 || st.Checks[0].By != "1.targets.json" || st.Checks[0].Threshold != 2 ||
		!equalSets(st.Checks[0].Signers, []string{id("ST1"), id("ST2")}) || !st.Expires.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("stable report = %+v", st)
	}
	var buf bytes.Buffer
	must(t, rep.WriteText(&buf))
	for _, s := range []string{"3.stable-0.json", id("B1"), "2027-01-01T00:00:00Z", "checked at 2026-06-01T00:00:00Z"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("printout lacks %q:\n%s", s, buf.String())
		}
	}

	// The trusted root alone, without 2.root.json, is as good a start.
	must(t, os.Remove(filepath.Join(dir, "2.root.json")))
	if _, err := VerifyRepository(r.trusted(dir), dir, VerifyOptions{At: verifyAt}); err != nil {
		t.Errorf("without the rotation: %v", err)
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

// Each case tampers with the test repository in one way. VerifyRepository
// must refuse it with an error that errors.Is wantErr, that names the file
// and the role, and that says what is wrong. Where go-tuf v2 accepts the
// tampered metadata (NOTES.md), gotuf shows it.
func TestVerifyRepositoryTampered(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(r *testRepo, name string)
		file     func(r *testRepo, name string, b []byte) []byte
		post     func(t *testing.T, r *testRepo, dir string)
		at       time.Time
		wantFile string
		wantRole string
		wantErr  error
		wantMsg  []string
		gotuf    func(t *testing.T, dir string) error
	}{
		{
			name: "flipped signature byte",
			file: func(r *testRepo, name string, b []byte) []byte {
				if name != "stable" {
					return b
				}
				return editJSON(r.t, b, func(doc map[string]any) {
					s := sigsOf(doc)[0].(map[string]any)
					sig := []byte(s["sig"].(string))
					if sig[len(sig)-1] == '0' {
						sig[len(sig)-1] = '1'
					} else {
						sig[len(sig)-1] = '0'
					}
					s["sig"] = string(sig)
				})
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrThreshold,
			wantMsg: []string{"1 of 2 required signatures valid", "signature does not verify"},
		},
		{
			name: "signature by a wrong key",
			edit: func(r *testRepo, name string) {
				if name == "unstable" {
					r.signers[name] = []tsigner{signerOf(r.t, r.keys["X"])}
				}
			},
			wantFile: "5.unstable.json", wantRole: "unstable", wantErr: ErrThreshold,
			wantMsg: []string{"0 of 1", "is not a key of role unstable", "delegated by 1.targets.json"},
		},
		{
			name: "below threshold",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					r.signers[name] = r.signers[name][:1]
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrThreshold,
			wantMsg: []string{"1 of 2 required signatures valid"},
		},
		{
			name: "same key signs twice",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					// Two distinct valid ECDSA signatures by ST1.
					r.signers[name] = []tsigner{signerOf(r.t, r.keys["ST1"]), signerOf(r.t, r.keys["ST1"])}
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrThreshold,
			wantMsg: []string{"1 of 2 required signatures valid", "signed more than once"},
		},
		{
			name: "expired bin",
			edit: func(r *testRepo, name string) {
				if name == "stable-1" {
					r.bin1.Signed.Expires = NewExpiry(verifyAt.Add(-24 * time.Hour))
				}
			},
			wantFile: "3.stable-1.json", wantRole: "stable-1", wantErr: ErrExpired,
			wantMsg: []string{"expired at 2026-05-31T00:00:00Z", "checked at 2026-06-01T00:00:00Z"},
		},
		{
			name: "expired timestamp",
			edit: func(r *testRepo, name string) {
				if name == "timestamp" {
					r.timestamp.Signed.Expires = NewExpiry(verifyAt)
				}
			},
			wantFile: "timestamp.json", wantRole: "timestamp", wantErr: ErrExpired,
			wantMsg: []string{"expired at 2026-06-01T00:00:00Z"},
		},
		{
			name: "bin rolled back behind snapshot",
			edit: func(r *testRepo, name string) {
				switch name {
				case "stable-0":
					r.bin0.Signed.Version = 2
				case "snapshot":
					mf := r.snapshot.Signed.Meta["stable-0.json"]
					mf.Version = 3
					r.snapshot.Signed.Meta["stable-0.json"] = mf
				}
			},
			wantFile: "3.stable-0.json", wantRole: "stable-0", wantErr: ErrVersion,
			wantMsg: []string{"version 2, 7.snapshot.json lists version 3"},
		},
		{
			name: "snapshot version differs from timestamp",
			edit: func(r *testRepo, name string) {
				if name == "timestamp" {
					r.timestamp.Signed.Meta["snapshot.json"] = MetaFile{Version: 8}
				}
			},
			wantFile: "8.snapshot.json", wantRole: "snapshot", wantErr: ErrVersion,
			wantMsg: []string{"version 7, timestamp.json lists version 8"},
		},
		{
			name: "delegation order swapped",
			file: func(r *testRepo, name string, b []byte) []byte {
				if name != "targets" {
					return b
				}
				return editJSON(r.t, b, func(doc map[string]any) {
					roles := doc["signed"].(map[string]any)["delegations"].(map[string]any)["roles"].([]any)
					roles[0], roles[1] = roles[1], roles[0]
				})
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrThreshold,
			wantMsg: []string{"0 of 1 required signatures valid"},
		},
		{
			name: "edited target entry in a bin",
			file: func(r *testRepo, name string, b []byte) []byte {
				if name != "stable-0" {
					return b
				}
				return editJSON(r.t, b, func(doc map[string]any) {
					for _, tf := range doc["signed"].(map[string]any)["targets"].(map[string]any) {
						tf.(map[string]any)["hashes"] = map[string]any{"sha256": strings.Repeat("ab", 32)}
						break
					}
				})
			},
			wantFile: "3.stable-0.json", wantRole: "stable-0", wantErr: ErrThreshold,
			wantMsg: []string{"0 of 1 required signatures valid", "delegated by 3.stable.json"},
		},
		{
			name: "bin edited after snapshot",
			post: func(t *testing.T, r *testRepo, dir string) {
				p := filepath.Join(dir, "3.stable-1.json")
				b := readFile(t, dir, "3.stable-1.json")
				must(t, os.WriteFile(p, bytes.Replace(b, []byte(`"length": `), []byte(`"length": 1`), 1), 0o644))
			},
			wantFile: "3.stable-1.json", wantRole: "stable-1", wantErr: ErrHash,
			wantMsg: []string{"7.snapshot.json says"},
		},
		{
			name: "snapshot edited after timestamp",
			post: func(t *testing.T, r *testRepo, dir string) {
				p := filepath.Join(dir, "7.snapshot.json")
				must(t, os.WriteFile(p, append(readFile(t, dir, "7.snapshot.json"), ' '), 0o644))
			},
			wantFile: "7.snapshot.json", wantRole: "snapshot", wantErr: ErrHash,
			wantMsg: []string{"timestamp.json says"},
		},
		{
			name: "bin missing from snapshot",
			edit: func(r *testRepo, name string) {
				if name == "snapshot" {
					delete(r.snapshot.Signed.Meta, "stable-1.json")
				}
			},
			wantFile: "7.snapshot.json", wantRole: "stable-1", wantErr: ErrMissing,
			wantMsg: []string{"stable-1.json not listed in snapshot"},
		},
		{
			name: "snapshot lists a role nothing delegates to",
			edit: func(r *testRepo, name string) {
				if name == "snapshot" {
					r.snapshot.Signed.Meta["ghost.json"] = MetaFile{Version: 1}
				}
			},
			wantFile: "7.snapshot.json", wantRole: "snapshot", wantErr: ErrUnreachable,
			wantMsg: []string{"ghost.json"},
		},
		{
			name: "metadata file missing",
			post: func(t *testing.T, r *testRepo, dir string) {
				must(t, os.Remove(filepath.Join(dir, "5.unstable.json")))
			},
			wantFile: "5.unstable.json", wantRole: "unstable", wantErr: ErrMissing,
			wantMsg: []string{"no such file"},
		},
		{
			name: "target outside its bin's prefixes",
			edit: func(r *testRepo, name string) {
				if name == "stable-0" {
					for p, tf := range r.bin1.Signed.Targets {
						r.bin0.Signed.Targets[p] = tf
						break
					}
				}
			},
			wantFile: "3.stable-0.json", wantRole: "stable-0", wantErr: ErrDelegation,
			wantMsg: []string{"not in the delegation to stable-0"},
		},
		{
			name: "target outside stable's paths",
			edit: func(r *testRepo, name string) {
				if name == "stable-1" {
					for _, p := range []string{"a/b", "c/d", "e/f", "g/h"} {
						if pathHash(p)[0] >= '8' {
							r.bin1.Signed.Targets[p] = targetFile(p)
							return
						}
					}
					r.t.Fatal("no path for bin 1")
				}
			},
			wantFile: "3.stable-1.json", wantRole: "stable-1", wantErr: ErrDelegation,
			wantMsg: []string{"not in the delegation to stable)"},
		},
		{
			name: "unknown field inside signed",
			file: func(r *testRepo, name string, b []byte) []byte {
				if name != "unstable" {
					return b
				}
				return resignJSON(r.t, b, func(s map[string]any) { s["x_extra"] = "1" }, r.signers["unstable"])
			},
			wantFile: "5.unstable.json", wantRole: "unstable", wantErr: ErrUnknownField,
			wantMsg: []string{"field signed.x_extra"},
			gotuf: func(t *testing.T, dir string) error {
				return gtTargets(t, dir, "1.targets.json").VerifyDelegate("unstable", gtTargets(t, dir, "5.unstable.json"))
			},
		},
		{
			name: "unknown field outside signed",
			file: func(r *testRepo, name string, b []byte) []byte {
				if name != "stable" {
					return b
				}
				return editJSON(r.t, b, func(doc map[string]any) { doc["comment"] = "trust me" })
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrUnknownField,
			wantMsg: []string{"field comment"},
			gotuf: func(t *testing.T, dir string) error {
				return gtTargets(t, dir, "1.targets.json").VerifyDelegate("stable", gtTargets(t, dir, "3.stable.json"))
			},
		},
		{
			name: "key id not the hash of its key",
			edit: func(r *testRepo, name string) {
				if name != "targets" {
					return
				}
				u := r.keys["U1"]
				fake := strings.Repeat("0f", 32)
				d := r.targets.Signed.Delegations
				delete(d.Keys, u.Key().ID())
				d.Keys[fake] = u.Key()
				d.Roles[1].KeyIDs = []string{fake}
				s := signerOf(r.t, u)
				s.id = fake
				r.signers["unstable"] = []tsigner{s}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrKeyIDMismatch,
			wantMsg: []string{"field signed.delegations.keys." + strings.Repeat("0f", 32)},
			gotuf: func(t *testing.T, dir string) error {
				return gtTargets(t, dir, "1.targets.json").VerifyDelegate("unstable", gtTargets(t, dir, "5.unstable.json"))
			},
		},
		{
			name: "raw r||s ECDSA signature",
			file: func(r *testRepo, name string, b []byte) []byte {
				if name != "root2" {
					return b
				}
				return rawRS(r.t, b, r.keys["R3"].Key().ID())
			},
			wantFile: "2.root.json", wantRole: "root", wantErr: ErrThreshold,
			wantMsg: []string{"checked against 1.root.json", "1 of 2", "not strict DER"},
			gotuf: func(t *testing.T, dir string) error {
				r1, r2 := gtRoot(t, dir, "1.root.json"), gtRoot(t, dir, "2.root.json")
				if err := r1.VerifyDelegate("root", r2); err != nil {
					return err
				}
				return r2.VerifyDelegate("root", r2)
			},
		},
		{
			name: "unknown signature scheme",
			edit: func(r *testRepo, name string) {
				if name != "targets" {
					return
				}
				u := r.keys["U1"]
				weird := *u.Key()
				weird.Scheme = "ed25519-sha512-custom"
				d := r.targets.Signed.Delegations
				delete(d.Keys, u.Key().ID())
				d.Keys[weird.ID()] = &weird
				d.Roles[1].KeyIDs = []string{weird.ID()}
				s := signerOf(r.t, u)
				s.id = weird.ID()
				r.signers["unstable"] = []tsigner{s}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: keys.ErrUnsupportedKey,
			wantMsg: []string{`scheme "ed25519-sha512-custom"`},
			gotuf: func(t *testing.T, dir string) error {
				return gtTargets(t, dir, "1.targets.json").VerifyDelegate("unstable", gtTargets(t, dir, "5.unstable.json"))
			},
		},
		{
			name: "spec_version 2.0",
			edit: func(r *testRepo, name string) {
				if name == "snapshot" {
					r.snapshot.Signed.SpecVersion = "2.0.0"
				}
			},
			wantFile: "7.snapshot.json", wantRole: "snapshot", wantErr: ErrSpecVersion,
			wantMsg: []string{"field signed.spec_version", `"2.0.0"`},
			gotuf: func(t *testing.T, dir string) error {
				s, err := gotuf.Snapshot().FromBytes(readFile(t, dir, "7.snapshot.json"))
				if err != nil {
					return err
				}
				return gtRoot(t, dir, "2.root.json").VerifyDelegate("snapshot", s)
			},
		},
		{
			name: "version 0",
			edit: func(r *testRepo, name string) {
				if name == "timestamp" {
					r.timestamp.Signed.Version = 0
				}
			},
			wantFile: "timestamp.json", wantRole: "timestamp", wantErr: ErrMalformed,
			wantMsg: []string{"field signed.version", "must be at least 1"},
			gotuf: func(t *testing.T, dir string) error {
				ts, err := gotuf.Timestamp().FromBytes(readFile(t, dir, "timestamp.json"))
				if err != nil {
					return err
				}
				return gtRoot(t, dir, "2.root.json").VerifyDelegate("timestamp", ts)
			},
		},
		{
			name: "expiry not in the exact form",
			file: func(r *testRepo, name string, b []byte) []byte {
				if name != "stable-1" {
					return b
				}
				return resignJSON(r.t, b, func(s map[string]any) { s["expires"] = "2027-01-01T00:00:00+00:00" }, r.signers["stable-1"])
			},
			wantFile: "3.stable-1.json", wantRole: "stable-1", wantErr: ErrMalformed,
			wantMsg: []string{"field signed.expires", "not YYYY-MM-DDTHH:MM:SSZ"},
		},
		{
			name: "root rotation signed only by the new keys",
			edit: func(r *testRepo, name string) {
				if name == "root2" {
					r.signers[name] = []tsigner{signerOf(r.t, r.keys["R4"]), signerOf(r.t, r.keys["R5"])}
				}
			},
			wantFile: "2.root.json", wantRole: "root", wantErr: ErrThreshold,
			wantMsg: []string{"checked against 1.root.json", "0 of 2", "is not a key of role root"},
		},
		{
			name: "root rotation not signed by the new keys",
			edit: func(r *testRepo, name string) {
				if name == "root2" {
					r.signers[name] = []tsigner{signerOf(r.t, r.keys["R1"]), signerOf(r.t, r.keys["R2"])}
				}
			},
			wantFile: "2.root.json", wantRole: "root", wantErr: ErrThreshold,
			wantMsg: []string{"checked against itself", "0 of 2"},
		},
		{
			name: "root version skips",
			edit: func(r *testRepo, name string) {
				if name == "root2" {
					r.root2.Signed.Version = 3
				}
			},
			wantFile: "2.root.json", wantRole: "root", wantErr: ErrVersion,
			wantMsg: []string{"version 3 follows version 1"},
		},
		{
			name: "gap in the root chain",
			post: func(t *testing.T, r *testRepo, dir string) {
				must(t, os.Rename(filepath.Join(dir, "2.root.json"), filepath.Join(dir, "3.root.json")))
			},
			wantFile: "3.root.json", wantRole: "root", wantErr: ErrVersion,
			wantMsg: []string{"2.root.json is missing"},
		},
		{
			name: "snapshot signed by the rotated-out key set",
			edit: func(r *testRepo, name string) {
				if name == "root2" {
					// Root v2 replaces the snapshot key; the snapshot is still signed by S1.
					r.root2.Signed.Keys = map[string]*keys.Key{}
					for _, n := range []string{"R3", "R4", "R5"} {
						r.root2.Signed.Keys[r.keys[n].Key().ID()] = r.keys[n].Key()
					}
					for _, role := range []struct{ role, key string }{{RoleTargets, "T1"}, {RoleSnapshot, "X"}, {RoleTimestamp, "TS1"}} {
						r.root2.Signed.Roles[role.role].KeyIDs = nil
						must(r.t, r.root2.Signed.AddKey(role.role, r.keys[role.key].Key()))
					}
				}
			},
			wantFile: "7.snapshot.json", wantRole: "snapshot", wantErr: ErrThreshold,
			wantMsg: []string{"0 of 1", "is not a key of role snapshot"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRepo(t)
			r.edit, r.file = tc.edit, tc.file
			dir := r.build()
			if tc.post != nil {
				tc.post(t, r, dir)
			}
			_, err := VerifyRepository(r.trusted(dir), dir, VerifyOptions{At: verifyAt})
			if err == nil {
				t.Fatal("tampered repository verified")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %q", err, tc.wantErr)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %q is not a *VerifyError", err)
			}
			if ve.File != tc.wantFile || ve.Role != tc.wantRole {
				t.Errorf("error names file %q role %q, want %q %q (%v)", ve.File, ve.Role, tc.wantFile, tc.wantRole, err)
			}
			msg := err.Error()
			for _, s := range append([]string{tc.wantFile + ": ", "role " + tc.wantRole}, tc.wantMsg...) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not say %q", msg, s)
				}
			}
			if tc.gotuf != nil {
				if err := tc.gotuf(t, dir); err != nil {
					t.Errorf("go-tuf v2 refuses this too (%v): drop the comparison", err)
				}
			}
		})
	}
}

// Expired metadata verifies at an earlier time.
func TestVerifyRepositoryAt(t *testing.T) {
	r := newTestRepo(t)
	r.edit = func(r *testRepo, name string) {
		if name == "stable-1" {
			r.bin1.Signed.Expires = NewExpiry(verifyAt.Add(-24 * time.Hour))
		}
	}
	dir := r.build()
	if _, err := VerifyRepository(r.trusted(dir), dir, VerifyOptions{At: verifyAt}); !errors.Is(err, ErrExpired) {
		t.Fatalf("at %v: %v, want ErrExpired", verifyAt, err)
	}
	if _, err := VerifyRepository(r.trusted(dir), dir, VerifyOptions{At: verifyAt.Add(-48 * time.Hour)}); err != nil {
		t.Fatalf("two days earlier: %v", err)
	}
	// The zero At means now; the test repository expires in 2027.
	_, err := VerifyRepository(r.trusted(dir), dir, VerifyOptions{})
	if time.Now().Before(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) != errors.Is(err, ErrExpired) {
		t.Fatalf("now: %v", err)
	}
}

// A trusted root that disagrees with the directory's copy of it is refused.
func TestVerifyRepositoryTrustedRootDiffers(t *testing.T) {
	other := newTestRepo(t)
	otherDir := other.build()
	r := newTestRepo(t)
	dir := r.build()
	_, err := VerifyRepository(other.trusted(otherDir), dir, VerifyOptions{At: verifyAt})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.File != "1.root.json" || !errors.Is(err, ErrVersion) {
		t.Fatalf("got %v", err)
	}
}

// TestVerifyRepositoryKeepsIOCauses: a missing file is ErrMissing with
// the file system's own error kept, and a copy of the trusted root that
// cannot be read (here a directory in its place) is refused, not taken for
// an absent one.
func TestVerifyRepositoryKeepsIOCauses(t *testing.T) {
	r := newTestRepo(t)
	dir := r.build()
	trusted := r.trusted(dir)
	must(t, os.Remove(filepath.Join(dir, "timestamp.json")))
	_, err := VerifyRepository(trusted, dir, VerifyOptions{At: verifyAt})
	if !errors.Is(err, ErrMissing) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing timestamp: %v, want ErrMissing and fs.ErrNotExist", err)
	}
	dir = r.build()
	must(t, os.Remove(filepath.Join(dir, "1.root.json")))
	must(t, os.Mkdir(filepath.Join(dir, "1.root.json"), 0o755))
	_, err = VerifyRootChain(trusted, dir)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.File != "1.root.json" || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unreadable 1.root.json: %v", err)
	}
}

// BenchmarkVerifyRepository verifies a repository of 256 bins holding
// 40,000 targets in all, each bin with a key of its own; b.N repetitions, bytes reported are metadata read.
func BenchmarkVerifyRepository(b *testing.B) {
	const bins, perBin = 256, 157
	k, err := keys.GenerateEd25519()
	if err != nil {
		b.Fatal(err)
	}
	exp := time.Now().Add(24 * time.Hour)
	dir := b.TempDir()
	total := 0
	write := func(name string, m interface{ MarshalFile() ([]byte, error) }) []byte {
		out, err := m.MarshalFile()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			b.Fatal(err)
		}
		total += len(out)
		return out
	}
	root := NewRoot(1, exp)
	for _, r := range []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp} {
		if err := root.Signed.AddKey(r, k.Key()); err != nil {
			b.Fatal(err)
		}
	}
	if err := root.Sign(k); err != nil {
		b.Fatal(err)
	}
	write("1.root.json", root)
	snap := NewSnapshot(1, exp)
	targets := NewTargets(1, exp)
	// Every delegated role has a key of its own, as verify demands.
	newKey := func() keys.Signer {
		s, err := keys.GenerateECDSA()
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	stableKey, unstableKey := newKey(), newKey()
	targets.Signed.AddDelegation(DelegatedRole{Name: "stable", KeyIDs: []string{stableKey.Key().ID()}, Threshold: 1, Paths: pathPatterns}, stableKey.Key())
	targets.Signed.AddDelegation(DelegatedRole{Name: "unstable", KeyIDs: []string{unstableKey.Key().ID()}, Threshold: 1, Paths: pathPatterns}, unstableKey.Key())
	stable := NewTargets(1, exp)
	binMeta := make([]*Metadata[Targets], bins)
	binKeys := make([]keys.Signer, bins)
	for i := range binMeta {
		name := fmt.Sprintf("bin-%02x", i)
		binKeys[i] = newKey()
		stable.Signed.AddDelegation(DelegatedRole{Name: name, KeyIDs: []string{binKeys[i].Key().ID()}, Threshold: 1, PathHashPrefixes: []string{fmt.Sprintf("%02x", i)}}, binKeys[i].Key())
		binMeta[i] = NewTargets(1, exp)
	}
	for n := 0; n < bins*perBin; n++ {
		p := fmt.Sprintf("packages/%02x/%02x/%08x/project%d-1.0.tar.gz", n%256, n/256%256, n, n)
		h := pathHash(p)
		i, _ := strconv.ParseUint(h[:2], 16, 8)
		binMeta[i].Signed.Targets[p] = targetFile(p)
	}
	for i, m := range binMeta {
		name := fmt.Sprintf("bin-%02x", i)
		if err := m.Sign(binKeys[i]); err != nil {
			b.Fatal(err)
		}
		snap.Signed.Meta[name+".json"] = metaOf(write("1."+name+".json", m), true, 1)
	}
	for _, d := range []struct {
		name string
		m    *Metadata[Targets]
		k    keys.Signer
	}{{"targets", targets, k}, {"stable", stable, stableKey}, {"unstable", NewTargets(1, exp), unstableKey}} {
		if err := d.m.Sign(d.k); err != nil {
			b.Fatal(err)
		}
		write("1."+d.name+".json", d.m)
		snap.Signed.Meta[d.name+".json"] = MetaFile{Version: 1}
	}
	if err := snap.Sign(k); err != nil {
		b.Fatal(err)
	}
	ts := NewTimestamp(1, exp, metaOf(write("1.snapshot.json", snap), true, 1))
	if err := ts.Sign(k); err != nil {
		b.Fatal(err)
	}
	write("timestamp.json", ts)
	b.SetBytes(int64(total))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := VerifyRepository(root, dir, VerifyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Files) != bins+6 {
			b.Fatalf("%d files in the report", len(rep.Files))
		}
	}
}

// TestVerifyRootChain: the chain walk a ceremony uses returns the newest
// root, and refuses a gap and a rotation the old root did not sign.
func TestVerifyRootChain(t *testing.T) {
	r := newTestRepo(t)
	dir := r.build()
	root, err := VerifyRootChain(r.trusted(dir), dir)
	if err != nil || root.Signed.Version != 2 {
		t.Fatalf("newest root: %v %v", root, err)
	}
	// A gap: 3.root.json missing, 4.root.json present.
	must(t, os.WriteFile(filepath.Join(dir, "4.root.json"), readFile(t, dir, "2.root.json"), 0o644))
	if _, err := VerifyRootChain(r.trusted(dir), dir); err == nil {
		t.Fatal("a gap in the root chain was accepted")
	}
	must(t, os.Remove(filepath.Join(dir, "4.root.json")))
	// 2.root.json with a flipped signature no longer verifies.
	b := readFile(t, dir, "2.root.json")
	must(t, os.WriteFile(filepath.Join(dir, "2.root.json"), []byte(strings.Replace(string(b), `"sig": "3`, `"sig": "4`, 1)), 0o644))
	if _, err := VerifyRootChain(r.trusted(dir), dir); !errors.Is(err, ErrThreshold) {
		t.Fatalf("tampered rotation: %v", err)
	}
}
