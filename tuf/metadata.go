package tuf

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/keys"
)

// SpecVersion is the TUF specification version written into metadata.
const SpecVersion = "1.0.31"

// Top-level role names.
const (
	RoleRoot      = "root"
	RoleTargets   = "targets"
	RoleSnapshot  = "snapshot"
	RoleTimestamp = "timestamp"
)

// expiryLayout is the only expiry form go-tuf re-encodes unchanged.
const expiryLayout = "2006-01-02T15:04:05Z"

// Expiry is a metadata expiry time, second precision, UTC.
type Expiry time.Time

// NewExpiry truncates t to the second in UTC.
func NewExpiry(t time.Time) Expiry { return Expiry(t.UTC().Truncate(time.Second)) }

// Time returns the expiry as a time.Time.
func (e Expiry) Time() time.Time { return time.Time(e) }

func (e Expiry) String() string { return time.Time(e).UTC().Format(expiryLayout) }

// MarshalJSON writes the exact layout.
func (e Expiry) MarshalJSON() ([]byte, error) {
	return []byte(`"` + e.String() + `"`), nil
}

// UnmarshalJSON accepts only the exact layout. Its errors wrap
// ErrMalformed; the strict decoder names the field.
func (e *Expiry) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a string: %w", ErrMalformed)
	}
	t, err := time.Parse(expiryLayout, s)
	if err != nil || t.Format(expiryLayout) != s {
		return fmt.Errorf("%q is not YYYY-MM-DDTHH:MM:SSZ: %w", s, ErrMalformed)
	}
	*e = Expiry(t)
	return nil
}

// Common holds the fields every signed role has.
type Common struct {
	Type        string `json:"_type"`
	SpecVersion string `json:"spec_version"`
	Version     int64  `json:"version"`
	Expires     Expiry `json:"expires"`
}

// Role is a top-level role in root.
type Role struct {
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
}

// Root is the signed part of root metadata.
type Root struct {
	Common
	ConsistentSnapshot bool                 `json:"consistent_snapshot"`
	Keys               map[string]*keys.Key `json:"keys"`
	Roles              map[string]*Role     `json:"roles"`
}

// TargetFile describes one target.
type TargetFile struct {
	Length int64             `json:"length"`
	Hashes map[string]string `json:"hashes"`
	Custom json.RawMessage   `json:"custom,omitempty"`
}

// DelegatedRole is one entry of delegations.roles. Exactly one of Paths and
// PathHashPrefixes is set.
type DelegatedRole struct {
	Name             string   `json:"name"`
	KeyIDs           []string `json:"keyids"`
	Threshold        int      `json:"threshold"`
	Terminating      bool     `json:"terminating"`
	Paths            []string `json:"paths,omitempty"`
	PathHashPrefixes []string `json:"path_hash_prefixes,omitempty"`
}

// Delegations is the delegations object of a targets role.
type Delegations struct {
	Keys  map[string]*keys.Key `json:"keys"`
	Roles []DelegatedRole      `json:"roles"`
}

// Targets is the signed part of targets metadata (top-level or delegated).
type Targets struct {
	Common
	Targets     map[string]TargetFile `json:"targets"`
	Delegations *Delegations          `json:"delegations,omitempty"`
}

// MetaFile is an entry of snapshot or timestamp meta.
type MetaFile struct {
	Version int64             `json:"version"`
	Length  int64             `json:"length,omitempty"`
	Hashes  map[string]string `json:"hashes,omitempty"`
}

// Snapshot is the signed part of snapshot metadata.
type Snapshot struct {
	Common
	Meta map[string]MetaFile `json:"meta"`
}

// Timestamp is the signed part of timestamp metadata.
type Timestamp struct {
	Common
	Meta map[string]MetaFile `json:"meta"`
}

// Signature is one signature over the canonical signed bytes.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Signed is implemented by the four signed types.
type Signed interface {
	Root | Targets | Snapshot | Timestamp
}

// Metadata is a signed document.
type Metadata[T Signed] struct {
	Signed     T           `json:"signed"`
	Signatures []Signature `json:"signatures"`
}

func newCommon(typ string, version int64, expires time.Time) Common {
	return Common{Type: typ, SpecVersion: SpecVersion, Version: version, Expires: NewExpiry(expires)}
}

// NewRoot returns an empty root with the four top-level roles.
func NewRoot(version int64, expires time.Time) *Metadata[Root] {
	r := Root{
		Common:             newCommon(RoleRoot, version, expires),
		ConsistentSnapshot: true,
		Keys:               map[string]*keys.Key{},
		Roles:              map[string]*Role{},
	}
	for _, name := range []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp} {
		r.Roles[name] = &Role{KeyIDs: []string{}, Threshold: 1}
	}
	return &Metadata[Root]{Signed: r, Signatures: []Signature{}}
}

// AddKey adds key to the keyring and to role's key ids (once).
func (r *Root) AddKey(role string, k *keys.Key) error {
	rl, ok := r.Roles[role]
	if !ok {
		return fmt.Errorf("root has no role %q: %w", role, ErrMalformed)
	}
	id := k.ID()
	r.Keys[id] = k
	for _, have := range rl.KeyIDs {
		if have == id {
			return nil
		}
	}
	rl.KeyIDs = append(rl.KeyIDs, id)
	return nil
}

// NewTargets returns empty targets metadata for role typ "targets".
func NewTargets(version int64, expires time.Time) *Metadata[Targets] {
	return &Metadata[Targets]{
		Signed:     Targets{Common: newCommon(RoleTargets, version, expires), Targets: map[string]TargetFile{}},
		Signatures: []Signature{},
	}
}

// NewSnapshot returns snapshot metadata with an empty meta.
func NewSnapshot(version int64, expires time.Time) *Metadata[Snapshot] {
	return &Metadata[Snapshot]{
		Signed:     Snapshot{Common: newCommon(RoleSnapshot, version, expires), Meta: map[string]MetaFile{}},
		Signatures: []Signature{},
	}
}

// NewTimestamp returns timestamp metadata pointing at a snapshot version.
func NewTimestamp(version int64, expires time.Time, snapshot MetaFile) *Metadata[Timestamp] {
	return &Metadata[Timestamp]{
		Signed:     Timestamp{Common: newCommon(RoleTimestamp, version, expires), Meta: map[string]MetaFile{"snapshot.json": snapshot}},
		Signatures: []Signature{},
	}
}

// AddDelegation appends a delegated role and its keys. Order matters: TUF
// clients search delegations in the order they are listed.
func (t *Targets) AddDelegation(role DelegatedRole, ks ...*keys.Key) {
	if t.Delegations == nil {
		t.Delegations = &Delegations{Keys: map[string]*keys.Key{}, Roles: []DelegatedRole{}}
	}
	for _, k := range ks {
		t.Delegations.Keys[k.ID()] = k
	}
	t.Delegations.Roles = append(t.Delegations.Roles, role)
}

// Delegation returns the delegated role called name.
func (t *Targets) Delegation(name string) (*DelegatedRole, bool) {
	if t.Delegations == nil {
		return nil, false
	}
	for i := range t.Delegations.Roles {
		if t.Delegations.Roles[i].Name == name {
			return &t.Delegations.Roles[i], true
		}
	}
	return nil, false
}
