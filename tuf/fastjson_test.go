package tuf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"

	"github.com/keyceremony/keyceremony/keys"
)

var testExpiry = time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)

// toTargets is the slow, reflective form of a bin.
func toTargets(version int64, exp time.Time, ts []BinTarget) *Metadata[Targets] {
	m := NewTargets(version, exp)
	for _, bt := range ts {
		h := map[string]string{"sha256": hex.EncodeToString(bt.SHA256[:])}
		if bt.HasBLAKE2b {
			h["blake2b-256"] = hex.EncodeToString(bt.BLAKE2b256[:])
		}
		m.Signed.Targets[bt.Path] = TargetFile{Length: bt.Length, Hashes: h}
	}
	return m
}

func randomPath(r *rand.Rand) string {
	const alphabet = "abcXYZ019-_.~/\\\"'<>&é€😀 \x7f"
	rs := []rune(alphabet)
	n := 1 + r.IntN(40)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteRune(rs[r.IntN(len(rs))])
	}
	return b.String()
}

func sortedUnique(ts []BinTarget) []BinTarget {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Path < ts[j].Path })
	out := ts[:0]
	for i, t := range ts {
		if i == 0 || t.Path != ts[i-1].Path {
			out = append(out, t)
		}
	}
	return out
}

// TestAppendBinSignedMatchesCJSON is the property test: on random bins the
// fast path and cjson give the same bytes.
func TestAppendBinSignedMatchesCJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		n := r.IntN(50)
		ts := make([]BinTarget, n)
		for i := range ts {
			ts[i].Path = randomPath(r)
			ts[i].Length = r.Int64N(1 << 40)
			if r.IntN(5) == 0 {
				ts[i].Length = int64(r.IntN(3))
			}
			for j := range ts[i].SHA256 {
				ts[i].SHA256[j] = byte(r.Uint32())
				ts[i].BLAKE2b256[j] = byte(r.Uint32())
			}
			if ts[i].HasBLAKE2b = r.IntN(3) > 0; !ts[i].HasBLAKE2b {
				ts[i].BLAKE2b256 = [32]byte{}
			}
		}
		ts = sortedUnique(ts)
		version := 1 + r.Int64N(1<<50)
		exp := time.Unix(r.Int64N(4e9), 0).UTC()
		fast, err := AppendBinSigned(nil, version, NewExpiry(exp), ts)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := cjson.EncodeCanonical(toTargets(version, exp, ts).Signed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("fast and cjson differ:\n%s\n%s", fast, slow)
		}
		// The file parses back, on the fast path, to the same targets.
		file := AppendBinFile(nil, fast, []Signature{{KeyID: strings.Repeat("ab", 32), Sig: "00ff"}})
		b, ok := parseBinFast(file)
		if !ok {
			t.Fatalf("fast parser refused %s", file)
		}
		if fmt.Sprint(b.Targets) != fmt.Sprint(ts) && len(ts) > 0 {
			t.Fatalf("the parsed targets differ from those encoded")
		}
		// The reflective path (Load) gives the same bin.
		m, err := Load[Targets](file, "bin.json")
		if err != nil {
			t.Fatal(err)
		}
		sb, err := binFromTargets(m, "bin.json")
		if err != nil || !bytes.Equal(sb.Signed, fast) {
			t.Fatalf("binFromTargets: %v", err)
		}
	}
}

func FuzzAppendBinSigned(f *testing.F) {
	f.Add("packages/ab/cd/ef/foo-1.0.tar.gz", "simple/foo/index.html", int64(12), int64(99))
	f.Add(`a"b\c`, "é€", int64(0), int64(1<<40))
	f.Fuzz(func(t *testing.T, p1, p2 string, l1, l2 int64) {
		ts := sortedUnique([]BinTarget{{Path: p1, Length: l1, SHA256: sha256.Sum256([]byte(p1)), BLAKE2b256: sha256.Sum256([]byte(p2)), HasBLAKE2b: l1%2 == 0}, {Path: p2, Length: l2}})
		fast, err := AppendBinSigned(nil, 7, NewExpiry(testExpiry), ts)
		valid := l1 >= 0 && l2 >= 0
		for _, x := range ts {
			if x.Path == "" || !utf8.ValidString(x.Path) || strings.ContainsFunc(x.Path, func(r rune) bool { return r < 0x20 }) {
				valid = false
			}
		}
		if !valid {
			if err == nil {
				t.Fatalf("invalid bin %+v encoded", ts)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		slow, err := cjson.EncodeCanonical(toTargets(7, testExpiry, ts).Signed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("fast and cjson differ:\n%s\n%s", fast, slow)
		}
		file := AppendBinFile(nil, fast, []Signature{{KeyID: strings.Repeat("ab", 32), Sig: "00ff"}})
		b, err := ParseBin(file, "bin.json")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Signed, fast) || len(b.Targets) != len(ts) {
			t.Fatal("parse did not give back the bin")
		}
		if _, err := Load[Targets](file, "bin.json"); err != nil {
			t.Fatalf("file does not load: %v", err)
		}
	})
}

func FuzzParseBin(f *testing.F) {
	ts := []BinTarget{{Path: "a", Length: 1}, {Path: `b"\`, Length: 2}}
	signed, _ := AppendBinSigned(nil, 3, NewExpiry(testExpiry), ts)
	f.Add(AppendBinFile(nil, signed, []Signature{{KeyID: strings.Repeat("ab", 32), Sig: "00ff"}}))
	f.Add([]byte(`{"signatures":[],"signed":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBin(data, "bin.json")
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LoadError", err)
			}
			return
		}
		// Whatever parses re-encodes to signed bytes that cjson agrees with.
		m := toTargets(b.Version, b.Expires.Time(), b.Targets)
		slow, err := cjson.EncodeCanonical(m.Signed)
		if err != nil || !bytes.Equal(slow, b.Signed) {
			t.Fatalf("parsed bin's signed bytes differ from cjson: %v", err)
		}
	})
}

func TestParseBinAndVerify(t *testing.T) {
	ck, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	ts := []BinTarget{{Path: "packages/aa/bb/cc/x-1.tar.gz", Length: 5, SHA256: sha256.Sum256([]byte("x"))}, {Path: "simple/x/index.html", Length: 9}}
	signed, err := AppendBinSigned(nil, 4, NewExpiry(testExpiry), ts)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignBytes(signed, ck)
	if err != nil {
		t.Fatal(err)
	}
	file := AppendBinFile(nil, signed, []Signature{sig})
	parent := NewTargets(1, testExpiry)
	parent.Signed.AddDelegation(DelegatedRole{Name: "stable-0", KeyIDs: []string{ck.Key().ID()}, Threshold: 1, PathHashPrefixes: []string{"0"}}, ck.Key())

	// The fast form, and the same metadata written the slow way, parse to
	// the same bin and verify.
	m := toTargets(4, testExpiry, ts)
	m.Signatures = []Signature{sig}
	slowFile, err := m.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"fast": file, "indented": slowFile} {
		b, err := ParseBin(data, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := b.Verify(&parent.Signed, "stable-0"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fmt.Sprint(b.Targets) != fmt.Sprint(ts) || b.Version != 4 {
			t.Fatalf("%s: got %+v", name, b)
		}
	}
	if _, err := Load[Targets](file, "bin.json"); err != nil {
		t.Fatal(err)
	}
	// Tampering is refused or fails verification.
	for _, tc := range []struct{ from, to string }{
		{`"length":5`, `"length":6`},
		{`"length":5`, `"length":05`},
		{`"version":4`, `"version":5`},
		{`"sha256":"2d`, `"sha256":"2e`},
		{`"sha256":"2d`, `"sha256":"2D`},
	} {
		bad := bytes.Replace(file, []byte(tc.from), []byte(tc.to), 1)
		b, err := ParseBin(bad, "bin.json")
		if err == nil {
			err = b.Verify(&parent.Signed, "stable-0")
		}
		if err == nil {
			t.Errorf("%s -> %s accepted", tc.from, tc.to)
		}
	}
	// Delegations make it not a bin.
	withDeleg := NewTargets(1, testExpiry)
	withDeleg.Signed.AddDelegation(DelegatedRole{Name: "x", KeyIDs: []string{ck.Key().ID()}, Threshold: 1, Paths: []string{"*"}}, ck.Key())
	data, _ := withDeleg.MarshalFile()
	if _, err := ParseBin(data, "x.json"); !errors.Is(err, ErrNotBin) {
		t.Errorf("targets with delegations: %v", err)
	}
}

func BenchmarkAppendBinSigned(b *testing.B) {
	ts := benchTargets(600)
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = AppendBinSigned(buf[:0], 3, NewExpiry(testExpiry), ts)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkCJSONBin(b *testing.B) {
	m := toTargets(3, testExpiry, benchTargets(600))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cjson.EncodeCanonical(m.Signed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBin(b *testing.B) {
	signed, _ := AppendBinSigned(nil, 3, NewExpiry(testExpiry), benchTargets(600))
	file := AppendBinFile(nil, signed, []Signature{{KeyID: strings.Repeat("ab", 32), Sig: strings.Repeat("cd", 64)}})
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBin(file, "bin.json"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadBin(b *testing.B) {
	signed, _ := AppendBinSigned(nil, 3, NewExpiry(testExpiry), benchTargets(600))
	file := AppendBinFile(nil, signed, []Signature{{KeyID: strings.Repeat("ab", 32), Sig: strings.Repeat("cd", 64)}})
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		if _, err := Load[Targets](file, "bin.json"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTargets(n int) []BinTarget {
	ts := make([]BinTarget, n)
	for i := range ts {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		ts[i] = BinTarget{Path: fmt.Sprintf("packages/%x/%x/%x/project%d-1.%d.0-py3-none-any.whl", h[0:1], h[1:2], h[2:32], i, i), Length: int64(i) * 1000, SHA256: h}
	}
	return sortedUnique(ts)
}

// TestParseBinHex: a bin's hashes decode to their bytes, and a hash with
// any byte that is not a lowercase hex digit (those next to the digits'
// ranges included) is refused.
func TestParseBinHex(t *testing.T) {
	var sum, b2 [32]byte
	for i := range sum {
		sum[i], b2[i] = byte(i*37+1), byte(255-i*11)
	}
	ts := []BinTarget{{Path: "p", Length: 7, SHA256: sum, BLAKE2b256: b2, HasBLAKE2b: true}}
	signed, err := AppendBinSigned(nil, 1, NewExpiry(testExpiry), ts)
	if err != nil {
		t.Fatal(err)
	}
	file := AppendBinFile(nil, signed, nil)
	b, err := ParseBin(file, "bin.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Targets[0]; got.SHA256 != sum || got.BLAKE2b256 != b2 || !got.HasBLAKE2b {
		t.Fatalf("parsed %x and %x, want %x and %x", got.SHA256, got.BLAKE2b256, sum, b2)
	}
	for _, h := range []string{hex.EncodeToString(sum[:]), hex.EncodeToString(b2[:])} {
		at := bytes.Index(file, []byte(h))
		for _, pos := range []int{0, 1, 31, 63} {
			for _, c := range []byte{'/', ':', '`', 'g', 'A', 'F', 0, 0xff} {
				bad := bytes.Clone(file)
				bad[at+pos] = c
				if _, err := ParseBin(bad, "bin.json"); err == nil {
					t.Errorf("a hash with %q at %d parsed", c, pos)
				}
			}
		}
	}
}

// TestParseBinCanonical: the fast path takes a bin only in the form
// AppendBinSigned writes, which it no longer writes again to compare:
// each way a bin's signed bytes could differ from that form in one part
// (paths out of order, twice, empty or not UTF-8, a number with a
// leading zero or sign, version 0, an expiry in another form, an escape
// AppendBinSigned does not write) is refused by the fast path, and
// ParseBin then gives what Load and the canonical re-encoding give: an
// error, or a bin whose signed bytes are canonical (not the file's).
func TestParseBinCanonical(t *testing.T) {
	ts := []BinTarget{{Path: "a", Length: 10}, {Path: "b", Length: 20}, {Path: `c\"`, Length: 30}}
	signed, err := AppendBinSigned(nil, 3, NewExpiry(testExpiry), ts)
	if err != nil {
		t.Fatal(err)
	}
	file := AppendBinFile(nil, signed, []Signature{{KeyID: strings.Repeat("ab", 32), Sig: "00ff"}})
	if b, ok := parseBinFast(file); !ok || !bytes.Equal(b.Signed, signed) || fmt.Sprint(b.Targets) != fmt.Sprint(ts) {
		t.Fatalf("the canonical form: fast path %v", ok)
	}
	exp := NewExpiry(testExpiry).Time().UTC().Format(expiryLayout)
	for _, c := range []struct{ name, from, to string }{
		{"paths out of order", `"a":{`, `"d":{`},
		{"a path twice", `"b":{`, `"a":{`},
		{"an empty path", `"a":{`, `"":{`},
		{"a path not UTF-8", `"a":{`, "\"\xff\":{"},
		{"a path with a control character", `"a":{`, "\"\x01\":{"},
		{"an escape not written", `"b":{`, `"\u0062":{`},
		{"a length with a leading zero", `"length":10`, `"length":010`},
		{"a negative length", `"length":10`, `"length":-10`},
		{"version 0", `"version":3`, `"version":0`},
		{"a version with a leading zero", `"version":3`, `"version":03`},
		{"an expiry with a fraction", exp, strings.TrimSuffix(exp, "Z") + ".5Z"},
		{"an expiry with an offset", exp, strings.TrimSuffix(exp, "Z") + "+00:00"},
	} {
		bad := bytes.Replace(file, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, file) {
			t.Fatalf("%s: %q is not in the bin", c.name, c.from)
		}
		if _, ok := parseBinFast(bad); ok {
			t.Errorf("%s: the fast path takes it", c.name)
		}
		b, err := ParseBin(bad, "bin.json")
		if err != nil {
			continue
		}
		// Load's route: its signed bytes are the canonical encoding.
		again, aerr := AppendBinSigned(nil, b.Version, b.Expires, b.Targets)
		if aerr != nil || !bytes.Equal(again, b.Signed) {
			t.Errorf("%s: ParseBin's signed bytes are not canonical: %v", c.name, aerr)
		}
	}
}

// TestBinParserInt: the bin parser reads a number exactly when
// strconv.ParseInt reads it and strconv.FormatInt writes it back the
// same (digits, no sign, no leading zero but in "0", within int64), and
// stops where the digits end.
func TestBinParserInt(t *testing.T) {
	for _, s := range []string{"0", "7", "10", "599000", "007", "00", "", "-1", "+1", "1a", "a",
		"9223372036854775807", "9223372036854775808", "9223372036854775810", "99999999999999999999", "1e3"} {
		p := &binParser{b: []byte(s + "}"), ok: true}
		got := p.int()
		digits := strings.IndexFunc(s+"}", func(r rune) bool { return r < '0' || r > '9' })
		v, err := strconv.ParseInt(s[:digits], 10, 64)
		want := err == nil && strconv.FormatInt(v, 10) == s[:digits]
		if p.ok != want || want && (got != v || p.pos != digits) {
			t.Errorf("%q: read %d (ok %v, at %d), want ok %v and %d at %d", s, got, p.ok, p.pos, want, v, digits)
		}
	}
}

// TestParseBinSignaturesApart: a bin's signatures (the key ids an audit
// keeps for its report) do not share the copy of the file its paths are
// substrings of, so keeping them does not keep the bin.
func TestParseBinSignaturesApart(t *testing.T) {
	signed, err := AppendBinSigned(nil, 3, NewExpiry(testExpiry), benchTargets(50))
	if err != nil {
		t.Fatal(err)
	}
	file := AppendBinFile(nil, signed, []Signature{{KeyID: strings.Repeat("ab", 32), Sig: strings.Repeat("cd", 64)}})
	b, err := ParseBin(file, "bin.json")
	if err != nil {
		t.Fatal(err)
	}
	p := b.Targets[0].Path
	base := uintptr(unsafe.Pointer(unsafe.StringData(p))) - uintptr(bytes.Index(file, []byte(`"`+p+`"`))+1)
	within := func(s string) bool {
		a := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return a >= base && a < base+uintptr(len(file))
	}
	if !within(b.Targets[len(b.Targets)-1].Path) {
		t.Fatal("the paths are not substrings of one copy of the file (the test's premise)")
	}
	for _, s := range b.Signatures {
		if within(s.KeyID) || within(s.Sig) {
			t.Errorf("signature %s shares the bin's copy", s.KeyID)
		}
	}
}
