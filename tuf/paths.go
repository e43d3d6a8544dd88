package tuf

import (
	"crypto/sha256"
	"path"
	"strings"
	"unsafe"
)

// Matches reports whether the delegation covers targetPath. A pattern in
// paths matches segment by segment with shell-style wildcards (so "*" never
// crosses a "/"); a path_hash_prefixes entry matches when the lowercase hex
// SHA-256 of the target path starts with it, as the specification (and
// PEP 458) says. It does not allocate: it runs once per target and
// delegation when a role's targets are checked (Outside).
func (d *DelegatedRole) Matches(targetPath string) bool {
	var h targetHash
	return d.matches(targetPath, &h)
}

// targetHash is a target path's SHA-256, computed once when first needed.
type targetHash struct {
	sum  [32]byte
	done bool
}

func (h *targetHash) of(targetPath string) *[32]byte {
	if !h.done {
		// The bytes are only read: no copy of the path is made.
		h.sum = sha256.Sum256(unsafe.Slice(unsafe.StringData(targetPath), len(targetPath)))
		h.done = true
	}
	return &h.sum
}

func (d *DelegatedRole) matches(targetPath string, h *targetHash) bool {
	if len(d.PathHashPrefixes) > 0 {
		sum := h.of(targetPath)
		for _, p := range d.PathHashPrefixes {
			if hexPrefix(sum, p) {
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

// Outside returns the first delegation of scope that does not cover
// targetPath, or nil if every one does. scope is the chain of delegations
// that leads to a role (for a stable leaf bin: targets' delegation to
// stable, stable's to the bin's mid role, the mid's to the bin; for a path
// role under stable: stable's and its own), and a target the role lists
// must be inside each of them, or a client that looks the path up never
// reaches that role's entry: it is a target the delegator did not give.
// VerifyRepository, verify's stable media checks and stable sign's
// read-back all check targets with it. It hashes the path once and does
// not allocate.
func Outside(targetPath string, scope ...*DelegatedRole) *DelegatedRole {
	var h targetHash
	for _, d := range scope {
		if !d.matches(targetPath, &h) {
			return d
		}
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// hexPrefix reports whether the lowercase hex form of sum starts with p.
func hexPrefix(sum *[32]byte, p string) bool {
	if len(p) > 2*len(sum) {
		return false
	}
	for i := 0; i < len(p); i++ {
		b := sum[i/2]
		if i%2 == 0 {
			b >>= 4
		}
		if p[i] != hexDigits[b&0x0f] {
			return false
		}
	}
	return true
}

// matchSegments reports whether target has as many "/"-separated segments
// as pattern, each matched by path.Match with the pattern's segment.
func matchSegments(pattern, target string) bool {
	for {
		ps, prest, pmore := strings.Cut(pattern, "/")
		ts, trest, tmore := strings.Cut(target, "/")
		if pmore != tmore {
			return false
		}
		if ok, err := path.Match(ps, ts); err != nil || !ok {
			return false
		}
		if !pmore {
			return true
		}
		pattern, target = prest, trest
	}
}
