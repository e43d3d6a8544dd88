package ceremony

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid ceremony configuration")

// ConfigError names the file, the line (when known) and the field at
// fault. It wraps ErrConfig and the cause.
type ConfigError struct {
	File  string
	Line  int // 1-based; 0 when the error is about a decoded value
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() []error { return []error{ErrConfig, e.Err} }

// KeySpec places one key of a role on one device.
type KeySpec struct {
	Device uint32 `json:"device"`
	Slot   string `json:"slot"`
}

// RoleSpec is an offline role: its threshold and where its keys live.
type RoleSpec struct {
	Threshold int       `json:"threshold"`
	Keys      []KeySpec `json:"keys"`
}

// OnlineRole is a role whose keys the repository holds; only their public
// halves reach the ceremony.
type OnlineRole struct {
	Threshold int         `json:"threshold"`
	Keys      []*keys.Key `json:"keys"`
}

// Expiry in days for each role the ceremony signs.
type Expiry struct {
	Root    int `json:"root"`
	Targets int `json:"targets"`
	Stable  int `json:"stable"`
}

// KeyPolicy is how keys are generated on devices.
type KeyPolicy struct {
	Algorithm   string `json:"algorithm"`
	PINPolicy   string `json:"pin_policy"`
	TouchPolicy string `json:"touch_policy"`
}

// Config is the bootstrap configuration. Every field is required but
// Keyholders.
type Config struct {
	Repository  string                `json:"repository"`
	ExpiresDays Expiry                `json:"expires_days"`
	KeyPolicy   KeyPolicy             `json:"key_policy"`
	Root        RoleSpec              `json:"root"`
	Targets     RoleSpec              `json:"targets"`
	Stable      RoleSpec              `json:"stable"`
	Online      map[string]OnlineRole `json:"online"`
	// TargetPaths are the path patterns stable and unstable are delegated;
	// each "*" matches one path segment.
	TargetPaths []string `json:"target_paths"`
	// Keyholders names the person who holds each device, by its serial
	// in decimal (optional; see keyholders.go).
	Keyholders map[string]string `json:"keyholders,omitempty"`
}

// DefaultTargetPaths cover every target path shape of a PyPI-like
// repository: distribution files and the simple index pages.
var DefaultTargetPaths = []string{
	"packages/*/*/*/*",
	"simple/*/index.html",
	"simple/*/index.json",
}

// OnlineRoles are the roles whose public keys the repository supplies.
var OnlineRoles = []string{"snapshot", "timestamp", "unstable"}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading ceremony configuration: %w", err)
	}
	return ParseConfig(b, path)
}

// ParseConfig parses a configuration strictly (internal/strictjson):
// unknown, duplicate, case-folded and missing fields, wrong types, null
// and trailing data are errors naming the line and the field path. name is
// used in errors.
func ParseConfig(data []byte, name string) (*Config, error) {
	var c Config
	if err := strictjson.Decode(data, name, &c); err != nil {
		var se *strictjson.Error
		if errors.As(err, &se) {
			return nil, &ConfigError{File: name, Line: se.Line, Field: se.Path, Err: se.Err}
		}
		return nil, &ConfigError{File: name, Err: err}
	}
	if err := c.validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = name
			ce.Line = strictjson.Line(data, ce.Field)
		}
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate() error {
	fail := func(field string, format string, a ...any) error {
		return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
	}
	if c.Repository == "" {
		return fail("repository", "empty")
	}
	for f, d := range map[string]int{"root": c.ExpiresDays.Root, "targets": c.ExpiresDays.Targets, "stable": c.ExpiresDays.Stable} {
		if d < 1 || d > 3660 {
			return fail("expires_days."+f, "%d days: must be between 1 and 3660", d)
		}
	}
	if _, err := c.KeyOptions(); err != nil {
		return fail("key_policy", "%w", err)
	}
	used := map[KeySpec]string{}
	for _, r := range []struct {
		name string
		spec RoleSpec
	}{{"root", c.Root}, {"targets", c.Targets}, {"stable", c.Stable}} {
		if len(r.spec.Keys) == 0 {
			return fail(r.name+".keys", "no keys")
		}
		if r.spec.Threshold < 1 || r.spec.Threshold > len(r.spec.Keys) {
			return fail(r.name+".threshold", "%d: must be between 1 and the %d keys", r.spec.Threshold, len(r.spec.Keys))
		}
		devices := map[uint32]bool{}
		for i, k := range r.spec.Keys {
			field := fmt.Sprintf("%s.keys[%d]", r.name, i)
			if _, err := hsm.ParseSlot(k.Slot); err != nil {
				return fail(field+".slot", "%w", err)
			}
			if devices[k.Device] {
				return fail(field+".device", "device %d holds two %s keys: a threshold needs distinct devices", k.Device, r.name)
			}
			devices[k.Device] = true
			if other, dup := used[k]; dup {
				return fail(field, "device %d slot %s is already used for %s", k.Device, k.Slot, other)
			}
			used[k] = r.name
		}
	}
	for _, name := range OnlineRoles {
		o, ok := c.Online[name]
		if !ok {
			return fail("online."+name, "missing")
		}
		if len(o.Keys) == 0 || o.Threshold < 1 || o.Threshold > len(o.Keys) {
			return fail("online."+name, "threshold %d with %d keys", o.Threshold, len(o.Keys))
		}
		ids := map[string]int{}
		for i, k := range o.Keys {
			if _, err := k.Public(); err != nil {
				return fail(fmt.Sprintf("online.%s.keys[%d]", name, i), "%w", err)
			}
			// A threshold counts distinct keys: the same key twice
			// would make a threshold of 2 met by one key holder.
			if j, dup := ids[k.ID()]; dup {
				return fail(fmt.Sprintf("online.%s.keys[%d]", name, i), "the same key as keys[%d] (key id %s): a threshold needs distinct keys", j, k.ID())
			}
			ids[k.ID()] = i
		}
	}
	for name := range c.Online {
		known := false
		for _, n := range OnlineRoles {
			known = known || n == name
		}
		if !known {
			return fail("online."+name, "unknown online role (known: %v)", OnlineRoles)
		}
	}
	if len(c.TargetPaths) == 0 {
		return fail("target_paths", "empty")
	}
	return c.checkKeyholders()
}

// KeyOptions converts the key policy to device options.
func (c *Config) KeyOptions() (hsm.KeyOptions, error) {
	o := hsm.KeyOptions{
		Algorithm:   hsm.Algorithm(c.KeyPolicy.Algorithm),
		PINPolicy:   hsm.PINPolicy(c.KeyPolicy.PINPolicy),
		TouchPolicy: hsm.TouchPolicy(c.KeyPolicy.TouchPolicy),
	}
	switch o.Algorithm {
	case hsm.AlgECCP256, hsm.AlgEd25519:
	default:
		return o, fmt.Errorf("algorithm %q: want %q or %q", o.Algorithm, hsm.AlgECCP256, hsm.AlgEd25519)
	}
	switch o.PINPolicy {
	case hsm.PINPolicyOnce, hsm.PINPolicyAlways:
	default:
		return o, fmt.Errorf("pin_policy %q: want once or always", o.PINPolicy)
	}
	switch o.TouchPolicy {
	case hsm.TouchPolicyNever, hsm.TouchPolicyAlways, hsm.TouchPolicyCached:
	default:
		return o, fmt.Errorf("touch_policy %q: want never, always or cached", o.TouchPolicy)
	}
	return o, nil
}

// Devices lists every device serial the configuration names, sorted.
func (c *Config) Devices() []uint32 {
	seen := map[uint32]bool{}
	for _, r := range []RoleSpec{c.Root, c.Targets, c.Stable} {
		for _, k := range r.Keys {
			seen[k.Device] = true
		}
	}
	out := make([]uint32, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
