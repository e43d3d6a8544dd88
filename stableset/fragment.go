package stableset

import (
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/keyceremony/keyceremony/internal/strictjson"
)

// FragmentType is the _type of a snapshot fragment.
const FragmentType = "keyceremony-snapshot-fragment"

// ErrFragment means a snapshot fragment is not one the ceremony writes.
var ErrFragment = errors.New("snapshot fragment is malformed")

var (
	fragmentName = regexp.MustCompile(`^[^/\\]+\.json$`)
	sha256Hex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseFragment decodes a snapshot fragment (FragmentFile) strictly (no
// unknown, duplicate or missing field) and checks its form: _type is
// FragmentType, and every entry of meta is named "<role>.json" and has a
// version of at least 1, a length of at least 1 and exactly one hash, a
// lowercase hex sha256. It does not say whether the entries match any
// metadata. Errors name name and the entry, and wrap ErrFragment (or the
// *strictjson.Error).
func ParseFragment(data []byte, name string) (*Fragment, error) {
	var fr Fragment
	if err := strictjson.Decode(data, name, &fr); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrFragment)
	}
	if fr.Type != FragmentType {
		return nil, fmt.Errorf("%s: _type is %q, want %q: %w", name, fr.Type, FragmentType, ErrFragment)
	}
	keys := make([]string, 0, len(fr.Meta))
	for k := range fr.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad entry, always the same one
	for _, k := range keys {
		m := fr.Meta[k]
		switch {
		case !fragmentName.MatchString(k):
			return nil, fmt.Errorf("%s: meta[%q]: not a metadata file name: %w", name, k, ErrFragment)
		case m.Version < 1:
			return nil, fmt.Errorf("%s: meta[%q].version is %d, want at least 1: %w", name, k, m.Version, ErrFragment)
		case m.Length < 1:
			return nil, fmt.Errorf("%s: meta[%q].length is %d, want at least 1: %w", name, k, m.Length, ErrFragment)
		case len(m.Hashes) != 1 || !sha256Hex.MatchString(m.Hashes["sha256"]):
			return nil, fmt.Errorf("%s: meta[%q].hashes is %v, want one lowercase hex sha256: %w", name, k, m.Hashes, ErrFragment)
		}
	}
	return &fr, nil
}
