package tuf

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
)

func TestSignLoadRoundTrip(t *testing.T) {
	s, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	root := NewRoot(1, time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, r := range []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp} {
		if err := root.Signed.AddKey(r, s.Key()); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Sign(s); err != nil {
		t.Fatal(err)
	}
	b, err := root.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load[Root](b, "root.json")
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := got.SignedBytes()
	if err := got.Signed.VerifyRole(RoleRoot, msg, got.Signatures); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"expires": "2027-01-02T03:04:05Z"`) {
		t.Errorf("expiry not in exact form:\n%s", b)
	}
	// A misspelt field is refused, naming it.
	bad := strings.Replace(string(b), `"consistent_snapshot"`, `"Consistent_snapshot"`, 1)
	_, err = Load[Root]([]byte(bad), "root.json")
	var le *LoadError
	if !errors.As(err, &le) || le.Field != "signed.Consistent_snapshot" || !errors.Is(err, ErrUnknownField) {
		t.Fatalf("misspelt field: got %v", err)
	}
}

func TestMatches(t *testing.T) {
	d := DelegatedRole{Paths: []string{"packages/*/*/*/*", "simple/*/index.html"}}
	for p, want := range map[string]bool{
		"packages/ab/cd/ef/foo-1.0.tar.gz": true,
		"packages/ab/cd/foo-1.0.tar.gz":    false,
		"simple/foo/index.html":            true,
		"simple/foo/bar/index.html":        false,
	} {
		if got := d.Matches(p); got != want {
			t.Errorf("Matches(%q) = %v, want %v", p, got, want)
		}
	}
	// sha256("a") = ca978112...
	h := DelegatedRole{PathHashPrefixes: []string{"ca97"}}
	if !h.Matches("a") || h.Matches("b") {
		t.Error("hex prefix routing wrong")
	}
}
