package tuf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keyceremony/keyceremony/keys"
)

// Errors; check them with errors.Is.
var (
	ErrMalformed     = errors.New("malformed metadata")
	ErrUnknownField  = errors.New("unknown field")
	ErrMissingField  = errors.New("missing field")
	ErrDuplicateKey  = errors.New("duplicate key")
	ErrTrailingData  = errors.New("trailing data after the document")
	ErrNotCanonical  = errors.New("value does not round-trip exactly")
	ErrWrongType     = errors.New("wrong metadata type")
	ErrKeyIDMismatch = errors.New("key id is not the hash of its key")
	ErrSpecVersion   = errors.New("unsupported spec_version")
)

// LoadError is a refusal to load a metadata file. Field is a path such as
// "signed.delegations.roles[0].paths", empty if the whole file is at fault.
type LoadError struct {
	File  string
	Field string
	Err   error
}

func (e *LoadError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: field %s: %v", e.File, e.Field, e.Err)
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

// decodeStrict decodes data into a new T and proves that T re-encodes to
// exactly the same JSON tree, which rejects unknown, missing, misspelt and
// null fields and non-canonical values.
func decodeStrict[T any](data []byte, name string) (*T, error) {
	if !utf8.Valid(data) {
		return nil, &LoadError{File: name, Err: fmt.Errorf("not valid UTF-8: %w", ErrMalformed)}
	}
	orig, err := parseTree(data)
	if err != nil {
		return nil, withFile(err, name)
	}
	if err := noNulls(orig, ""); err != nil {
		var le *LoadError
		if errors.As(err, &le) {
			le.File = name
		}
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &LoadError{File: name, Field: jsonPath(te.Field), Err: fmt.Errorf("%s where %s belongs: %w", te.Value, te.Type, ErrMalformed)}
		}
		var le *LoadError
		if errors.As(err, &le) {
			le.File = name
			return nil, le
		}
		return nil, &LoadError{File: name, Err: fmt.Errorf("%v: %w", err, ErrMalformed)}
	}
	again, err := json.Marshal(v)
	if err != nil {
		return nil, &LoadError{File: name, Err: fmt.Errorf("re-encoding: %v: %w", err, ErrMalformed)}
	}
	enc, err := parseTree(again)
	if err != nil {
		return nil, &LoadError{File: name, Err: err}
	}
	if field, err := compareTree(orig, enc, ""); err != nil {
		return nil, &LoadError{File: name, Field: field, Err: err}
	}
	return v, nil
}

// parseTree parses one JSON value into maps, slices, strings, bools,
// json.Number and nil, refusing duplicate keys and trailing data.
func parseTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailingData
	}
	return v, nil
}

func parseValue(dec *json.Decoder, path string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("%v: %w", err, ErrMalformed)
				}
				k := kt.(string)
				if _, dup := obj[k]; dup {
					return nil, &LoadError{Field: join(path, k), Err: ErrDuplicateKey}
				}
				v, err := parseValue(dec, join(path, k))
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			_, err := dec.Token()
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := parseValue(dec, fmt.Sprintf("%s[%d]", path, len(arr)))
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v: %w", t, ErrMalformed)
	default:
		return t, nil
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// noNulls refuses null anywhere except inside a "custom" object, which
// TUF leaves to the application. "custom": null itself is refused: go-tuf
// drops it when it re-encodes, which breaks the signature.
func noNulls(v any, path string) error {
	switch t := v.(type) {
	case nil:
		return &LoadError{Field: path, Err: fmt.Errorf("null: %w", ErrMalformed)}
	case map[string]any:
		for k, c := range t {
			if k == "custom" && c != nil {
				continue
			}
			if err := noNulls(c, join(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, c := range t {
			if err := noNulls(c, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
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

// jsonPath turns encoding/json's field path, which names embedded structs
// ("signed.Common.version"), into the document's ("signed.version").
func jsonPath(goPath string) string {
	parts := strings.Split(goPath, ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "Common" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
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
