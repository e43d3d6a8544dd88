package tuf

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Hashed bins.
//
// A BinLayout splits the space of SHA-256(target path) into 2^Bits explicit
// delegated roles, each listing the hex path_hash_prefixes it covers. The
// prefixes are PrefixLen hex digits long, PrefixLen = ceil(Bits/4), and bin
// i covers the 2^(4*PrefixLen-Bits) consecutive prefixes starting at
// i<<(4*PrefixLen-Bits). Bin roles are named
//
//	<base>-<first prefix>-<last prefix>   e.g. stable-0000-0003
//	<base>-<prefix>                        when a bin covers one prefix
//
// so a name says exactly which hashes the bin holds.

// Limits on the number of bins.
const (
	MinBinBits = 4  // 16 bins
	MaxBinBits = 16 // 65,536 bins
)

// ErrBinLayout is returned for a bin layout or bin name that is not valid.
var ErrBinLayout = errors.New("bad bin layout")

// BinLayout is a hashed-bin layout: 2^Bits bins named Base-....
type BinLayout struct {
	Base string
	Bits int
}

// NewBinLayout checks bits and returns the layout.
func NewBinLayout(base string, bits int) (BinLayout, error) {
	if bits < MinBinBits || bits > MaxBinBits {
		return BinLayout{}, fmt.Errorf("%d bits, want %d to %d: %w", bits, MinBinBits, MaxBinBits, ErrBinLayout)
	}
	if base == "" || strings.ContainsAny(base, "/\\.") {
		return BinLayout{}, fmt.Errorf("base name %q: %w", base, ErrBinLayout)
	}
	return BinLayout{Base: base, Bits: bits}, nil
}

// BinBitsFor returns the number of bin bits for a role holding about n
// targets: the smallest power of two that keeps a bin at or under
// targetsPerBin targets on average, between MinBinBits and MaxBinBits.
// With targetsPerBin 640, ten million targets give 16,384 bins (PEP 458).
func BinBitsFor(n int64, targetsPerBin int64) int {
	if targetsPerBin < 1 {
		targetsPerBin = 1
	}
	bits := MinBinBits
	for bits < MaxBinBits && n > targetsPerBin<<bits {
		bits++
	}
	return bits
}

// NumBins is 2^Bits.
func (l BinLayout) NumBins() int { return 1 << l.Bits }

// PrefixLen is the length in hex digits of every prefix.
func (l BinLayout) PrefixLen() int { return (l.Bits + 3) / 4 }

// perBin is the number of prefixes each bin lists.
func (l BinLayout) perBin() int { return 1 << (4*l.PrefixLen() - l.Bits) }

func (l BinLayout) prefix(v int) string {
	s := strconv.FormatInt(int64(v), 16)
	return strings.Repeat("0", l.PrefixLen()-len(s)) + s
}

// Prefixes returns the hex prefixes bin i covers, in increasing order.
func (l BinLayout) Prefixes(i int) []string {
	n := l.perBin()
	out := make([]string, n)
	for j := range out {
		out[j] = l.prefix(i*n + j)
	}
	return out
}

// Name returns the role name of bin i.
func (l BinLayout) Name(i int) string {
	n := l.perBin()
	if n == 1 {
		return l.Base + "-" + l.prefix(i)
	}
	return l.Base + "-" + l.prefix(i*n) + "-" + l.prefix(i*n+n-1)
}

// Index returns the bin number of a role name, or ok false if name is not
// a bin of this layout.
func (l BinLayout) Index(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, l.Base+"-")
	if !ok {
		return 0, false
	}
	first, _, _ := strings.Cut(rest, "-")
	if len(first) != l.PrefixLen() {
		return 0, false
	}
	v, err := strconv.ParseUint(first, 16, 32)
	if err != nil || v%uint64(l.perBin()) != 0 {
		return 0, false
	}
	i := int(v) / l.perBin()
	if i >= l.NumBins() || l.Name(i) != name {
		return 0, false
	}
	return i, true
}

// BinOfHash returns the bin holding a target whose path hashes to h.
func (l BinLayout) BinOfHash(h *[32]byte) int {
	v := uint32(h[0])<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
	return int(v >> (32 - l.Bits))
}

// BinOf returns the bin holding targetPath.
func (l BinLayout) BinOf(targetPath string) int {
	h := sha256.Sum256([]byte(targetPath))
	return l.BinOfHash(&h)
}

// Delegation returns the delegated role for bin i: explicit, non-terminating,
// threshold 1 over keyIDs, with hex path_hash_prefixes.
func (l BinLayout) Delegation(i int, keyIDs []string) DelegatedRole {
	return DelegatedRole{
		Name:             l.Name(i),
		KeyIDs:           append([]string(nil), keyIDs...),
		Threshold:        1,
		Terminating:      false,
		PathHashPrefixes: l.Prefixes(i),
	}
}

// LayoutOf recognises the bin layout of a targets role's delegations: every
// delegated role must be a bin of one layout with base name base, listed in
// order, with exactly the prefixes the layout gives it, non-terminating.
func LayoutOf(t *Targets, base string) (BinLayout, error) {
	if t.Delegations == nil || len(t.Delegations.Roles) == 0 {
		return BinLayout{}, fmt.Errorf("no delegations: %w", ErrBinLayout)
	}
	n := len(t.Delegations.Roles)
	bits := 0
	for 1<<bits < n {
		bits++
	}
	l, err := NewBinLayout(base, bits)
	if err != nil || l.NumBins() != n {
		return BinLayout{}, fmt.Errorf("%d delegated roles is not a power of two from %d to %d: %w", n, 1<<MinBinBits, 1<<MaxBinBits, ErrBinLayout)
	}
	for i, r := range t.Delegations.Roles {
		if r.Name != l.Name(i) {
			return BinLayout{}, fmt.Errorf("role %d is %q, want %q: %w", i, r.Name, l.Name(i), ErrBinLayout)
		}
		if r.Terminating || len(r.Paths) != 0 {
			return BinLayout{}, fmt.Errorf("role %q must be non-terminating with path_hash_prefixes only: %w", r.Name, ErrBinLayout)
		}
		want := l.Prefixes(i)
		if strings.Join(r.PathHashPrefixes, ",") != strings.Join(want, ",") {
			return BinLayout{}, fmt.Errorf("role %q has prefixes %v, want %v: %w", r.Name, r.PathHashPrefixes, want, ErrBinLayout)
		}
	}
	return l, nil
}
