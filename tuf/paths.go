package tuf

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"
)

// Matches reports whether the delegation covers targetPath. A pattern in
// paths matches segment by segment with shell-style wildcards (so "*" never
// crosses a "/"); a path_hash_prefixes entry matches when the lowercase hex
// SHA-256 of the target path starts with it, as the specification (and
// PEP 458) says.
func (d *DelegatedRole) Matches(targetPath string) bool {
	if len(d.PathHashPrefixes) > 0 {
		sum := sha256.Sum256([]byte(targetPath))
		h := hex.EncodeToString(sum[:])
		for _, p := range d.PathHashPrefixes {
			if strings.HasPrefix(h, p) {
				return true
			}
		}
		return false
	}
	for _, pattern := range d.Paths {
		if matchSegments(pattern, targetPath) {
			return true
		}
	}
	return false
}

func matchSegments(pattern, target string) bool {
	ps := strings.Split(pattern, "/")
	ts := strings.Split(target, "/")
	if len(ps) != len(ts) {
		return false
	}
	for i := range ps {
		ok, err := path.Match(ps[i], ts[i])
		if err != nil || !ok {
			return false
		}
	}
	return true
}
