package tuf

import (
	"errors"
	"testing"
	"testing/fstest"
	"time"

	"github.com/keyceremony/keyceremony/keys"
)

func TestVersionOf(t *testing.T) {
	for _, tc := range []struct {
		file    string
		n       int64
		ok, bad bool
	}{
		{"1.root.json", 1, true, false},
		{"12.root.json", 12, true, false},
		{"9223372036854775807.root.json", 9223372036854775807, true, false},
		{"01.root.json", 0, false, true},
		{"0.root.json", 0, false, true},
		{"+1.root.json", 0, false, true},
		{"-1.root.json", 0, false, true},
		{"1e3.root.json", 0, false, true},
		{" 1.root.json", 0, false, true},
		{".root.json", 0, false, true},
		{"9223372036854775808.root.json", 0, false, true},
		{"root.json", 0, false, false},
		{"1.targets.json", 0, false, false},
		{"1.x.root.json", 0, false, false}, // a delegated role named x.root
		{"1.root.json.tmp", 0, false, false},
	} {
		n, ok, err := VersionOf(tc.file, RoleRoot)
		if n != tc.n || ok != tc.ok || errors.Is(err, ErrVersionName) != tc.bad || (err != nil) != tc.bad {
			t.Errorf("VersionOf(%q) = %d, %v, %v; want %d, %v, bad %v", tc.file, n, ok, err, tc.n, tc.ok, tc.bad)
		}
	}
}

func TestNewest(t *testing.T) {
	files := func(names ...string) fstest.MapFS {
		m := fstest.MapFS{}
		for _, n := range names {
			m[n] = &fstest.MapFile{}
		}
		return m
	}
	// Gaps do not matter to Newest: old versions may have been removed.
	if n, err := Newest(files("1.stable.json", "3.stable.json", "10.stable.json", "2.unstable.json", "11.x.stable.json"), "stable"); n != 10 || err != nil {
		t.Errorf("Newest = %d, %v; want 10 (numeric, not lexical, order)", n, err)
	}
	if vs, err := Versions(files("3.root.json", "1.root.json", "2.root.json"), RoleRoot); err != nil || len(vs) != 3 || vs[0] != 1 || vs[2] != 3 {
		t.Errorf("Versions = %v, %v", vs, err)
	}
	if _, err := Newest(files("1.targets.json"), "stable"); !errors.Is(err, ErrNoVersion) {
		t.Errorf("no stable: err = %v, want ErrNoVersion", err)
	}
	// A non-canonical name beside the real ones is refused, not skipped:
	// 02.root.json would sort after 10.root.json for a lexical reader.
	if _, err := Newest(files("1.root.json", "02.root.json"), RoleRoot); !errors.Is(err, ErrVersionName) {
		t.Errorf("02.root.json: err = %v, want ErrVersionName", err)
	}
}

// trustedFixture is a root whose targets role needs 2 of 3 keys, and a
// signer outside the role.
type trustedFixture struct {
	root    *Metadata[Root]
	signers []keys.Signer // the targets role's keys
	other   keys.Signer
}

func newTrustedFixture(t *testing.T) *trustedFixture {
	t.Helper()
	f := &trustedFixture{root: NewRoot(1, time.Now().Add(time.Hour))}
	for i := 0; i < 4; i++ {
		s, err := keys.GenerateEd25519()
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			f.other = s
			break
		}
		f.signers = append(f.signers, s)
		for _, r := range []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp} {
			if err := f.root.Signed.AddKey(r, s.Key()); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.root.Signed.Roles[RoleTargets].Threshold = 2
	return f
}

func (f *trustedFixture) targets(t *testing.T, version int64, signers ...keys.Signer) []byte {
	t.Helper()
	m := NewTargets(version, time.Now().Add(time.Hour))
	if err := m.Sign(signers...); err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadNewest(t *testing.T) {
	f := newTrustedFixture(t)
	by, err := f.root.Signed.RoleKeys(RoleTargets)
	if err != nil {
		t.Fatal(err)
	}
	s := f.signers
	good := f.targets(t, 3, s[0], s[2])
	for _, tc := range []struct {
		name  string
		fsys  fstest.MapFS
		by    RoleKeys
		want  error
		wantN int64
	}{
		{"newest of several, with a gap", fstest.MapFS{"1.targets.json": {Data: f.targets(t, 1, s[0], s[1])}, "3.targets.json": {Data: good}}, by, nil, 3},
		{"below threshold", fstest.MapFS{"3.targets.json": {Data: f.targets(t, 3, s[0])}}, by, ErrThreshold, 0},
		{"one key signing twice", fstest.MapFS{"3.targets.json": {Data: f.targets(t, 3, s[0], s[0])}}, by, ErrThreshold, 0},
		{"wrong signer", fstest.MapFS{"3.targets.json": {Data: f.targets(t, 3, s[0], f.other)}}, by, ErrThreshold, 0},
		// An older, well-signed version does not stand in for a newer,
		// badly signed one.
		{"newest is badly signed", fstest.MapFS{"2.targets.json": {Data: f.targets(t, 2, s[0], s[1])}, "3.targets.json": {Data: f.targets(t, 3, f.other)}}, by, ErrThreshold, 0},
		{"version does not match the name", fstest.MapFS{"4.targets.json": {Data: good}}, by, ErrVersion, 0},
		{"non-canonical name", fstest.MapFS{"03.targets.json": {Data: good}}, by, ErrVersionName, 0},
		{"none", fstest.MapFS{"3.stable.json": {Data: good}}, by, ErrNoVersion, 0},
		{"checked against another role's keys", fstest.MapFS{"3.targets.json": {Data: good}}, RoleKeys{Role: RoleRoot, KeyIDs: by.KeyIDs, Threshold: 1, Keys: by.Keys}, ErrMalformed, 0},
		{"not strict metadata", fstest.MapFS{"3.targets.json": {Data: append(good, "{}"...)}}, by, ErrTrailingData, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, n, err := LoadNewest[Targets](tc.fsys, "meta", RoleTargets, tc.by)
			if tc.want == nil {
				if err != nil || n != tc.wantN || m.Signed.Version != tc.wantN {
					t.Fatalf("LoadNewest = %v, %d, %v", m, n, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || m != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var te *ThresholdError
			if tc.want == ErrThreshold && (!errors.As(err, &te) || te.Need != 2 || te.Valid >= 2) {
				t.Errorf("threshold error %v does not say what was missing", err)
			}
		})
	}
	// The trusted root's own role check is the same one.
	m, err := Load[Targets](good, "3.targets.json")
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := m.SignedBytes()
	if err := f.root.Signed.VerifyRole(RoleTargets, msg, m.Signatures[:1]); !errors.Is(err, ErrThreshold) {
		t.Errorf("VerifyRole with one signature: %v", err)
	}
	if _, err := f.root.Signed.RoleKeys("mirror"); !errors.Is(err, ErrMalformed) {
		t.Errorf("RoleKeys(mirror): %v", err)
	}
}
