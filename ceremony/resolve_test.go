package ceremony

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/tuf"
)

// prefixMode is how a client compares path_hash_prefixes.
type prefixMode int

const (
	hexPrefixes       prefixMode = iota // the TUF specification and PEP 458
	base64urlPrefixes                   // go-tuf v2.4.2 (metadata.go, IsDelegatedPath)
)

// resolver finds a target the way a TUF client does: a pre-order,
// depth-first search of the delegations from targets, in listed order,
// taking the first role that lists the path and stopping at a terminating
// delegation. Metadata is read from a consistent-snapshot directory at the
// versions snapshot lists.
type resolver struct {
	dir      string
	versions map[string]int64
	mode     prefixMode
	loaded   map[string]*tuf.Targets // each role parsed once: the files do not change
}

func newResolver(t *testing.T, dir string, mode prefixMode) *resolver {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "1.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tuf.Load[tuf.Snapshot](b, "1.snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	r := &resolver{dir: dir, versions: map[string]int64{}, mode: mode, loaded: map[string]*tuf.Targets{}}
	for name, mf := range snap.Signed.Meta {
		r.versions[strings.TrimSuffix(name, ".json")] = mf.Version
	}
	return r
}

func (r *resolver) load(role string) (*tuf.Targets, error) {
	if m, ok := r.loaded[role]; ok {
		return m, nil
	}
	v, ok := r.versions[role]
	if !ok {
		return nil, fmt.Errorf("%s not in snapshot", role)
	}
	name := fmt.Sprintf("%d.%s.json", v, role)
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		return nil, err
	}
	m, err := tuf.Load[tuf.Targets](b, name)
	if err != nil {
		return nil, err
	}
	r.loaded[role] = &m.Signed
	return &m.Signed, nil
}

func (r *resolver) matches(d *tuf.DelegatedRole, p string) bool {
	if len(d.PathHashPrefixes) == 0 || r.mode == hexPrefixes {
		return d.Matches(p)
	}
	sum := sha256.Sum256([]byte(p))
	enc := base64.URLEncoding.EncodeToString(sum[:])
	for _, pre := range d.PathHashPrefixes {
		if strings.HasPrefix(enc, pre) {
			return true
		}
	}
	return false
}

// resolve returns the entry a client would use and the role it came from.
func (r *resolver) resolve(p string) (tuf.TargetFile, string, error) {
	top, err := r.load("targets")
	if err != nil {
		return tuf.TargetFile{}, "", err
	}
	if tf, ok := top.Targets[p]; ok {
		return tf, "targets", nil
	}
	tf, role, _, err := r.walk(top, p)
	if err == nil && role == "" {
		err = fmt.Errorf("%s: no role lists it", p)
	}
	return tf, role, err
}

func (r *resolver) walk(t *tuf.Targets, p string) (tuf.TargetFile, string, bool, error) {
	if t.Delegations == nil {
		return tuf.TargetFile{}, "", false, nil
	}
	for i := range t.Delegations.Roles {
		d := &t.Delegations.Roles[i]
		if !r.matches(d, p) {
			continue
		}
		child, err := r.load(d.Name)
		if err != nil {
			return tuf.TargetFile{}, "", false, err
		}
		if tf, ok := child.Targets[p]; ok {
			return tf, d.Name, true, nil
		}
		tf, role, stop, err := r.walk(child, p)
		if err != nil || role != "" || stop {
			return tf, role, stop, err
		}
		if d.Terminating {
			return tuf.TargetFile{}, "", true, nil
		}
	}
	return tuf.TargetFile{}, "", false, nil
}

// TestResolverHexRouting checks the resolver against vectors computed
// independently (sha256sum): a path routes to the bin whose hex prefix
// starts its SHA-256, and a bin that does not list it falls through.
func TestResolverHexRouting(t *testing.T) {
	// printf 'a' | sha256sum -> ca978112...; base64url -> ypeBEsobvcr6...
	d := &tuf.DelegatedRole{PathHashPrefixes: []string{"ca"}}
	r := &resolver{mode: hexPrefixes}
	if !r.matches(d, "a") {
		t.Fatal("hex prefix ca must route a")
	}
	r.mode = base64urlPrefixes
	if r.matches(d, "a") {
		t.Fatal("base64url mode must not route a by the hex prefix")
	}
	if !r.matches(&tuf.DelegatedRole{PathHashPrefixes: []string{"ype"}}, "a") {
		t.Fatal("base64url mode must route a by ype")
	}
	sum := sha256.Sum256([]byte("a"))
	if hex.EncodeToString(sum[:2]) != "ca97" {
		t.Fatal("sha256 vector")
	}
}
