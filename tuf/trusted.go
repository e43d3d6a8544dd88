package tuf

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/keys"
)

// The trusted-metadata API: the one way to find the newest N.<role>.json
// in a metadata directory, load it strictly and check it against the keys
// and threshold its parent gives the role.

// Errors of the trusted-metadata API; check them with errors.Is.
var (
	// ErrNoVersion is a directory that holds no N.<role>.json.
	ErrNoVersion = errors.New("no version of the role")
	// ErrVersionName is a file named like a version of the role whose N is
	// not a canonical positive decimal (01.root.json, 0.root.json,
	// +1.root.json): no client would fetch it, so it is refused rather
	// than skipped.
	ErrVersionName = errors.New("not a canonical N.<role>.json name")
)

// VersionOf returns N if file is "N.<role>.json" with N a canonical
// positive decimal. ok is false for a file of another role (including a
// role whose name ends in "."+role); err wraps ErrVersionName for a name
// of this role whose N is not canonical.
func VersionOf(file, role string) (n int64, ok bool, err error) {
	num, isRole := strings.CutSuffix(file, "."+role+".json")
	if !isRole || strings.Contains(num, ".") {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(num, 10, 64)
	if perr != nil || n < 1 || strconv.FormatInt(n, 10) != num {
		return 0, false, fmt.Errorf("%s: %w", file, ErrVersionName)
	}
	return n, true, nil
}

// Versions lists, ascending, the versions N for which fsys holds
// N.<role>.json at its top level.
func Versions(fsys fs.FS, role string) ([]int64, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("listing metadata: %w", err)
	}
	var out []int64
	for _, e := range ents {
		n, ok, err := VersionOf(e.Name(), role)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Newest returns the highest N for which fsys holds N.<role>.json, or an
// error wrapping ErrNoVersion.
func Newest(fsys fs.FS, role string) (int64, error) {
	vs, err := Versions(fsys, role)
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("no <N>.%s.json: %w", role, ErrNoVersion)
	}
	return vs[len(vs)-1], nil
}

// RoleKeys are the keys and threshold a parent gives a role: root for the
// top-level roles, a targets role for its delegations.
type RoleKeys struct {
	Role      string
	KeyIDs    []string
	Threshold int
	Keys      map[string]*keys.Key
}

// RoleKeys returns the keys and threshold this root gives a top-level role.
func (r *Root) RoleKeys(role string) (RoleKeys, error) {
	rl, ok := r.Roles[role]
	if !ok {
		return RoleKeys{}, fmt.Errorf("root has no role %q: %w", role, ErrMalformed)
	}
	return RoleKeys{Role: role, KeyIDs: rl.KeyIDs, Threshold: rl.Threshold, Keys: r.Keys}, nil
}

// DelegateKeys returns the keys and threshold t's delegation gives the
// role called name.
func (t *Targets) DelegateKeys(name string) (RoleKeys, error) {
	d, ok := t.Delegation(name)
	if !ok {
		return RoleKeys{}, fmt.Errorf("no delegation to %q: %w", name, ErrMalformed)
	}
	return RoleKeys{Role: name, KeyIDs: d.KeyIDs, Threshold: d.Threshold, Keys: t.Delegations.Keys}, nil
}

// Verify checks that at least the threshold of distinct keys of the role
// signed msg (a *ThresholdError otherwise), and returns the sorted ids of
// the keys whose signatures counted.
func (k RoleKeys) Verify(msg []byte, sigs []Signature) ([]string, error) {
	return verifyThreshold(k.Role, msg, sigs, k.KeyIDs, k.Threshold, k.Keys)
}

// LoadVersion reads N.<role>.json from fsys, loads it strictly (Load),
// checks that it holds version N and that the role's threshold of keys in
// by signed it. dir names the directory in errors, which are *VerifyError
// wrapping ErrMissing, *LoadError, ErrVersion or ErrThreshold.
func LoadVersion[T Signed](fsys fs.FS, dir, role string, n int64, by RoleKeys) (*Metadata[T], error) {
	file := strconv.FormatInt(n, 10) + "." + role + ".json"
	name := file
	if dir != "" {
		name = filepath.Join(dir, file)
	}
	fail := func(err error) error { return &VerifyError{File: name, Role: role, Err: err} }
	data, err := fs.ReadFile(fsys, file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fail(fmt.Errorf("%w: %w", ErrMissing, err))
	}
	if err != nil {
		return nil, fail(err)
	}
	m, err := Load[T](data, name)
	if err != nil {
		return nil, fail(err)
	}
	c := commonOf(&m.Signed)
	if c.Version != n {
		return nil, fail(fmt.Errorf("holds version %d: %w", c.Version, ErrVersion))
	}
	msg, err := m.SignedBytes()
	if err != nil {
		return nil, fail(err)
	}
	if by.Role != role {
		return nil, fail(fmt.Errorf("checked against the keys of role %q: %w", by.Role, ErrMalformed))
	}
	if _, err := by.Verify(msg, m.Signatures); err != nil {
		return nil, fail(err)
	}
	return m, nil
}

// LoadNewest is LoadVersion for the newest N.<role>.json in fsys; it also
// returns N.
func LoadNewest[T Signed](fsys fs.FS, dir, role string, by RoleKeys) (*Metadata[T], int64, error) {
	n, err := Newest(fsys, role)
	if err != nil {
		if dir != "" {
			err = fmt.Errorf("%s: %w", dir, err)
		}
		return nil, 0, err
	}
	m, err := LoadVersion[T](fsys, dir, role, n, by)
	if err != nil {
		return nil, 0, err
	}
	return m, n, nil
}

func commonOf[T Signed](s *T) *Common {
	switch s := any(s).(type) {
	case *Root:
		return &s.Common
	case *Targets:
		return &s.Common
	case *Snapshot:
		return &s.Common
	case *Timestamp:
		return &s.Common
	}
	panic("tuf: unreachable")
}
