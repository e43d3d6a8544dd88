package tuf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"

	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
)

// Errors; check them with errors.Is. The structural refusals are the
// strict decoder's (internal/strictjson) own sentinels.
var (
	ErrMalformed     = errors.New("malformed metadata")
	ErrUnknownField  = strictjson.ErrUnknownField
	ErrMissingField  = strictjson.ErrMissingField
	ErrDuplicateKey  = strictjson.ErrDuplicateKey
	ErrTrailingData  = strictjson.ErrTrailingData
	ErrNotCanonical  = errors.New("value does not round-trip exactly")
	ErrWrongType     = errors.New("wrong metadata type")
	ErrKeyIDMismatch = errors.New("key id is not the hash of its key")
	ErrSpecVersion   = errors.New("unsupported spec_version")
)

// LoadError is a refusal to load a metadata file. Field is a path such as
// "signed.delegations.roles[0].paths", empty if the whole file is at fault;
// Line is the 1-based line the strict decoder found it on, 0 when the
// error is about a decoded value.
type LoadError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *LoadError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return s + ": " + e.Err.Error()
	}
	return s + ": field " + e.Field + ": " + e.Err.Error()
}

func (e *LoadError) Unwrap() error { return e.Err }

// Load parses and validates a metadata document of type T strictly.
// name is used in errors (usually the file name).
func Load[T Signed](data []byte, name string) (*Metadata[T], error) {
	m, err := decodeStrict[Metadata[T]](data, name)
	if err != nil {
		return nil, err
	}
	if err := validateMetadata(m, name); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeStrict decodes data into a new T with the one strict decoder
// (unknown, duplicate, case-folded, missing and null fields, wrong types
// and trailing data are refused there), then proves that T re-encodes to
// exactly the same JSON tree, which refuses non-canonical values and
// explicitly written empty optional fields, which go-tuf would drop.
func decodeStrict[T any](data []byte, name string) (*T, error) {
	v := new(T)
	if err := strictjson.Decode(data, name, v); err != nil {
		var se *strictjson.Error
		if !errors.As(err, &se) {
			return nil, &LoadError{File: name, Err: err}
		}
		le := &LoadError{File: name, Line: se.Line, Field: se.Path, Err: se.Err}
		for _, s := range []error{strictjson.ErrSyntax, strictjson.ErrType, strictjson.ErrNull, strictjson.ErrUnsupported} {
			if errors.Is(se.Err, s) {
				le.Err = fmt.Errorf("%w: %w", se.Err, ErrMalformed)
			}
		}
		return nil, le
	}
	orig, err := parseTree(data)
	if err != nil {
		return nil, &LoadError{File: name, Err: fmt.Errorf("%w: %w", err, ErrMalformed)}
	}
	again, err := json.Marshal(v)
	if err != nil {
		return nil, &LoadError{File: name, Err: fmt.Errorf("re-encoding: %w: %w", err, ErrMalformed)}
	}
	enc, err := parseTree(again)
	if err != nil {
		return nil, &LoadError{File: name, Err: fmt.Errorf("re-encoding: %w: %w", err, ErrMalformed)}
	}
	if field, err := compareTree(orig, enc, ""); err != nil {
		return nil, &LoadError{File: name, Field: field, Err: err}
	}
	return v, nil
}

// parseTree parses one JSON value, which the strict decoder has already
// accepted, into maps, slices, strings, bools, json.Number and nil.
func parseTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// compareTree returns the first path at which the decoded document (a) and
// its re-encoding (b) differ, in sorted key order so errors are stable.
func compareTree(a, b any, path string) (string, error) {
	switch at := a.(type) {
	case map[string]any:
		bt, ok := b.(map[string]any)
		if !ok {
			return path, ErrNotCanonical
		}
		names := make([]string, 0, len(at)+len(bt))
		for k := range at {
			names = append(names, k)
		}
		for k := range bt {
			if _, ok := at[k]; !ok {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			av, inA := at[k]
			bv, inB := bt[k]
			switch {
			case !inB:
				return join(path, k), ErrUnknownField
			case !inA:
				return join(path, k), ErrMissingField
			}
			if f, err := compareTree(av, bv, join(path, k)); err != nil {
				return f, err
			}
		}
		return "", nil
	case []any:
		bt, ok := b.([]any)
		if !ok || len(at) != len(bt) {
			return path, ErrNotCanonical
		}
		for i := range at {
			if f, err := compareTree(at[i], bt[i], path+"["+strconv.Itoa(i)+"]"); err != nil {
				return f, err
			}
		}
		return "", nil
	default:
		if !reflect.DeepEqual(a, b) {
			return path, ErrNotCanonical
		}
		return "", nil
	}
}

var (
	specVersionRE = regexp.MustCompile(`^1\.[0-9]+(\.[0-9]+)?$`)
	hexRE         = regexp.MustCompile(`^[0-9a-f]+$`)
	keyIDRE       = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// hashLengths are the hash algorithms metadata may name, with hex lengths.
var hashLengths = map[string]int{"sha256": 64, "sha512": 128, "blake2b-256": 64}

func validateMetadata[T Signed](m *Metadata[T], name string) error {
	fail := func(field string, err error) error { return &LoadError{File: name, Field: field, Err: err} }
	for i, s := range m.Signatures {
		if !keyIDRE.MatchString(s.KeyID) {
			return fail(fmt.Sprintf("signatures[%d].keyid", i), fmt.Errorf("not 64 lowercase hex digits: %w", ErrMalformed))
		}
		if len(s.Sig) == 0 || len(s.Sig)%2 != 0 || !hexRE.MatchString(s.Sig) {
			return fail(fmt.Sprintf("signatures[%d].sig", i), fmt.Errorf("not lowercase hex: %w", ErrMalformed))
		}
	}
	var c *Common
	want := ""
	switch s := any(&m.Signed).(type) {
	case *Root:
		c, want = &s.Common, RoleRoot
		if err := validateRoot(s); err != nil {
			return withFile(err, name)
		}
	case *Targets:
		c, want = &s.Common, RoleTargets
		if err := validateTargets(s); err != nil {
			return withFile(err, name)
		}
	case *Snapshot:
		c, want = &s.Common, RoleSnapshot
		if err := validateMeta(s.Meta, "signed.meta"); err != nil {
			return withFile(err, name)
		}
	case *Timestamp:
		c, want = &s.Common, RoleTimestamp
		if _, ok := s.Meta["snapshot.json"]; !ok || len(s.Meta) != 1 {
			return fail("signed.meta", fmt.Errorf("must list exactly snapshot.json: %w", ErrMalformed))
		}
		if err := validateMeta(s.Meta, "signed.meta"); err != nil {
			return withFile(err, name)
		}
	}
	if c.Type != want {
		return fail("signed._type", fmt.Errorf("%q where %q belongs: %w", c.Type, want, ErrWrongType))
	}
	if !specVersionRE.MatchString(c.SpecVersion) {
		return fail("signed.spec_version", fmt.Errorf("%q: %w", c.SpecVersion, ErrSpecVersion))
	}
	if c.Version < 1 {
		return fail("signed.version", fmt.Errorf("%d: must be at least 1: %w", c.Version, ErrMalformed))
	}
	return nil
}

// withFile names the file in a *LoadError, or wraps any other error in one.
func withFile(err error, name string) error {
	var le *LoadError
	if errors.As(err, &le) {
		le.File = name
		return err
	}
	return &LoadError{File: name, Err: err}
}

func validateKeys(ks map[string]*keys.Key, path string) error {
	for id, k := range ks {
		if _, err := k.Public(); err != nil {
			return &LoadError{Field: path + "." + id, Err: err}
		}
		if k.ID() != id {
			return &LoadError{Field: path + "." + id, Err: fmt.Errorf("the key hashes to %s: %w", k.ID(), ErrKeyIDMismatch)}
		}
	}
	return nil
}

func validateKeyIDs(ids []string, threshold int, ks map[string]*keys.Key, path string) error {
	if threshold < 1 {
		return &LoadError{Field: path + ".threshold", Err: fmt.Errorf("%d: must be at least 1: %w", threshold, ErrMalformed)}
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if _, ok := ks[id]; !ok {
			return &LoadError{Field: fmt.Sprintf("%s.keyids[%d]", path, i), Err: fmt.Errorf("key %s is not in the keyring: %w", id, ErrMalformed)}
		}
		if seen[id] {
			return &LoadError{Field: fmt.Sprintf("%s.keyids[%d]", path, i), Err: fmt.Errorf("key %s listed twice: %w", id, ErrMalformed)}
		}
		seen[id] = true
	}
	if threshold > len(ids) {
		return &LoadError{Field: path + ".threshold", Err: fmt.Errorf("%d exceeds the %d keys: %w", threshold, len(ids), ErrMalformed)}
	}
	return nil
}

func validateRoot(r *Root) error {
	if err := validateKeys(r.Keys, "signed.keys"); err != nil {
		return err
	}
	for _, name := range []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp} {
		if _, ok := r.Roles[name]; !ok {
			return &LoadError{Field: "signed.roles." + name, Err: ErrMissingField}
		}
	}
	for name, rl := range r.Roles {
		switch name {
		case RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp:
		default:
			return &LoadError{Field: "signed.roles." + name, Err: ErrUnknownField}
		}
		if err := validateKeyIDs(rl.KeyIDs, rl.Threshold, r.Keys, "signed.roles."+name); err != nil {
			return err
		}
	}
	return nil
}

func validateHashes(h map[string]string, path string) error {
	if len(h) == 0 {
		return &LoadError{Field: path, Err: fmt.Errorf("no hashes: %w", ErrMalformed)}
	}
	for alg, v := range h {
		n, ok := hashLengths[alg]
		if !ok {
			return &LoadError{Field: path + "." + alg, Err: fmt.Errorf("unknown hash algorithm: %w", ErrMalformed)}
		}
		if len(v) != n || !hexRE.MatchString(v) {
			return &LoadError{Field: path + "." + alg, Err: fmt.Errorf("not %d lowercase hex digits: %w", n, ErrMalformed)}
		}
	}
	return nil
}

func validateTargets(t *Targets) error {
	for p, tf := range t.Targets {
		if p == "" {
			return &LoadError{Field: "signed.targets", Err: fmt.Errorf("empty target path: %w", ErrMalformed)}
		}
		if tf.Length < 0 {
			return &LoadError{Field: "signed.targets." + p + ".length", Err: fmt.Errorf("negative: %w", ErrMalformed)}
		}
		if err := validateHashes(tf.Hashes, "signed.targets."+p+".hashes"); err != nil {
			return err
		}
	}
	d := t.Delegations
	if d == nil {
		return nil
	}
	if err := validateKeys(d.Keys, "signed.delegations.keys"); err != nil {
		return err
	}
	names := map[string]bool{}
	for i, r := range d.Roles {
		path := fmt.Sprintf("signed.delegations.roles[%d]", i)
		switch r.Name {
		case "", RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp:
			return &LoadError{Field: path + ".name", Err: fmt.Errorf("%q is not a delegated role name: %w", r.Name, ErrMalformed)}
		}
		if names[r.Name] {
			return &LoadError{Field: path + ".name", Err: fmt.Errorf("%q delegated twice: %w", r.Name, ErrMalformed)}
		}
		names[r.Name] = true
		if err := validateKeyIDs(r.KeyIDs, r.Threshold, d.Keys, path); err != nil {
			return err
		}
		if (len(r.Paths) == 0) == (len(r.PathHashPrefixes) == 0) {
			return &LoadError{Field: path, Err: fmt.Errorf("exactly one of paths and path_hash_prefixes must be given: %w", ErrMalformed)}
		}
		for j, p := range r.PathHashPrefixes {
			if p == "" || !hexRE.MatchString(p) || len(p) > 64 {
				return &LoadError{Field: fmt.Sprintf("%s.path_hash_prefixes[%d]", path, j), Err: fmt.Errorf("%q is not a lowercase hex prefix: %w", p, ErrMalformed)}
			}
		}
	}
	return nil
}

func validateMeta(meta map[string]MetaFile, path string) error {
	for name, mf := range meta {
		if mf.Version < 1 {
			return &LoadError{Field: path + "." + name + ".version", Err: fmt.Errorf("%d: must be at least 1: %w", mf.Version, ErrMalformed)}
		}
		if mf.Length < 0 {
			return &LoadError{Field: path + "." + name + ".length", Err: fmt.Errorf("negative: %w", ErrMalformed)}
		}
		if mf.Hashes != nil {
			if err := validateHashes(mf.Hashes, path+"."+name+".hashes"); err != nil {
				return err
			}
		}
	}
	return nil
}
