package tuf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/keys"
)

// Two-level hashed bins.
//
// A TwoLevel layout splits the space of SHA-256(target path) twice: the
// base role (stable) delegates to 2^MidBits mid roles, and each mid role
// delegates to 2^LeafBits leaf bins, which list the targets. Every
// delegation is explicit and non-terminating, with hex path_hash_prefixes:
// mid i covers the hashes whose first MidBits bits are i; leaf j of mid i
// covers those whose first MidBits+LeafBits bits are i<<LeafBits | j, so
// its prefixes lie inside its mid's, and siblings partition their parent.
// Each role has its own key (so that no role's file verifies as another's).
//
// A level with b bits writes prefixes of ceil(b/4) hex digits. Roles are
// named after the prefixes they cover:
//
//	mid:  <base>-<first>-<last>              e.g. stable-00-03
//	leaf: <mid>.<first>-<last>               e.g. stable-00-03.000-03f
//	      (<base>-<prefix>, <mid>.<prefix> when a role covers one prefix)
//
// so a name says which hashes the role holds, and a leaf's name says its
// mid. Role files are N.<name>.json like every other role.

// Limits on a two-level layout.
const (
	MinLevelBits = 1
	MaxLevelBits = 12
	MaxTotalBits = 20
)

// TwoLevel is a two-level hashed-bin layout under Base.
type TwoLevel struct {
	Base              string
	MidBits, LeafBits int
}

// NewTwoLevel checks the numbers of bits and the base name.
func NewTwoLevel(base string, midBits, leafBits int) (TwoLevel, error) {
	for _, b := range []int{midBits, leafBits} {
		if b < MinLevelBits || b > MaxLevelBits {
			return TwoLevel{}, fmt.Errorf("%d bits in a level, want %d to %d: %w", b, MinLevelBits, MaxLevelBits, ErrBinLayout)
		}
	}
	if midBits+leafBits > MaxTotalBits {
		return TwoLevel{}, fmt.Errorf("%d+%d bits, want at most %d: %w", midBits, leafBits, MaxTotalBits, ErrBinLayout)
	}
	if base == "" || strings.ContainsAny(base, "/\\.") {
		return TwoLevel{}, fmt.Errorf("base name %q: %w", base, ErrBinLayout)
	}
	return TwoLevel{Base: base, MidBits: midBits, LeafBits: leafBits}, nil
}

// NumMids is 2^MidBits; LeavesPerMid is 2^LeafBits; NumLeaves their product.
func (l TwoLevel) NumMids() int      { return 1 << l.MidBits }
func (l TwoLevel) LeavesPerMid() int { return 1 << l.LeafBits }
func (l TwoLevel) NumLeaves() int    { return 1 << (l.MidBits + l.LeafBits) }

// levelPrefixes returns the hex prefixes of index g in a level of bits bits.
func levelPrefixes(g, bits int) []string {
	digits := (bits + 3) / 4
	n := 1 << (4*digits - bits)
	out := make([]string, n)
	for k := range out {
		s := strconv.FormatInt(int64(g*n+k), 16)
		out[k] = strings.Repeat("0", digits-len(s)) + s
	}
	return out
}

func rangeName(ps []string) string {
	if len(ps) == 1 {
		return ps[0]
	}
	return ps[0] + "-" + ps[len(ps)-1]
}

// MidPrefixes and MidName describe mid role i.
func (l TwoLevel) MidPrefixes(i int) []string { return levelPrefixes(i, l.MidBits) }
func (l TwoLevel) MidName(i int) string       { return l.Base + "-" + rangeName(l.MidPrefixes(i)) }

// LeafPrefixes and LeafName describe leaf j of mid i.
func (l TwoLevel) LeafPrefixes(i, j int) []string {
	return levelPrefixes(i<<l.LeafBits|j, l.MidBits+l.LeafBits)
}
func (l TwoLevel) LeafName(i, j int) string {
	return l.MidName(i) + "." + rangeName(l.LeafPrefixes(i, j))
}

// LeafOfHash returns the mid and leaf holding a target whose path hashes
// to h.
func (l TwoLevel) LeafOfHash(h *[32]byte) (mid, leaf int) {
	v := uint32(h[0])<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
	g := int(v >> (32 - l.MidBits - l.LeafBits))
	return g >> l.LeafBits, g & (l.LeavesPerMid() - 1)
}

// MidDelegation and LeafDelegation return the delegated roles, threshold 1
// over the role's own key, non-terminating.
func (l TwoLevel) MidDelegation(i int, k *keys.Key) DelegatedRole {
	return DelegatedRole{Name: l.MidName(i), KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: l.MidPrefixes(i)}
}
func (l TwoLevel) LeafDelegation(i, j int, k *keys.Key) DelegatedRole {
	return DelegatedRole{Name: l.LeafName(i, j), KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: l.LeafPrefixes(i, j)}
}

// The metadata budget.
//
// Every targets-role file the layout makes (stable, each mid, each leaf)
// must be estimated at no more than 80 % of the clients' 5,000,000-byte
// default (MaxTargetsBytes): the largest leaf is already estimated at the
// mean plus five standard deviations, the layout is sized again at every
// ceremony, and the 20 % margin covers longer paths than measured and
// more than a year's growth (4 M files a year is 16 % of 25 M). The
// entries the layout adds to the repository's snapshot must stay within
// half of the 2,000,000-byte snapshot default (MaxSnapshotBytes), leaving
// the other half to the repository's own roles. A lookup visits at most
// MaxRolesVisited delegated roles.
const (
	MaxRoleFileBudget      = MaxTargetsBytes * 4 / 5
	MaxSnapshotShareBudget = MaxSnapshotBytes / 2
	MaxRolesVisited        = 32
)

// ErrBudget is returned when no layout keeps the metadata within budget.
var ErrBudget = errors.New("layout exceeds the metadata budget")

// BudgetError names the limit that cannot be met and the numbers.
type BudgetError struct {
	Targets int64
	Limit   string // which limit
	Max     int64  // the budget, in bytes or roles
	Need    int64  // the smallest estimate any allowed shape reaches
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("%d targets: %s needs %d, budget %d", e.Targets, e.Limit, e.Need, e.Max)
}

func (e *BudgetError) Unwrap() error { return ErrBudget }

// Estimate is the byte cost of the pieces of a layout's files, measured
// from real entries in the form the stable pipeline writes them: compact
// JSON, the leaves as AppendBinFile makes them (TestEstimates checks each
// against such files; TestLookupBytesWithTufJS in package ceremony
// against what the pipeline really wrote and a client downloaded).
type Estimate struct {
	// EntryBytes is one target entry in a leaf file: a PyPI path, the
	// length, sha256 and blake2b-256.
	EntryBytes int64
	// DelegationBytes is one delegated role in its parent's file: the role
	// entry with its prefixes and its own ECDSA P-256 key.
	DelegationBytes int64
	// SnapshotEntryBytes is one role's entry in snapshot meta (version,
	// length, sha256), in the indented form a repository commonly writes
	// (compact is smaller).
	SnapshotEntryBytes int64
	// FileBytes is a role file's fixed part: the signed header, an empty
	// delegations object and one signature.
	FileBytes int64
}

// Estimates for the two target modes: distribution files and index pages
// (files+pages, PEP 458) and index pages only (pages).
var (
	EstimateFiles = Estimate{EntryBytes: 340, DelegationBytes: 590, SnapshotEntryBytes: 195, FileBytes: 440}
	EstimatePages = Estimate{EntryBytes: 240, DelegationBytes: 590, SnapshotEntryBytes: 195, FileBytes: 440}
)

// EstimateKeyBytes is one ECDSA P-256 key in a delegations keyring (its id
// and PEM key), the part of DelegationBytes a role sharing its key with
// its siblings does not repeat.
const EstimateKeyBytes = 330

// EstimateSignatureBytes is one ECDSA P-256 signature in a file's
// signatures (key id and DER signature, hex). stable.json is signed by
// the stable threshold of hardware keys: its estimate allows for
// StableSignatures of them, where FileBytes counts one.
const (
	EstimateSignatureBytes = 240
	StableSignatures       = 3
)

// Shape is a sized layout and its estimated sizes in bytes.
type Shape struct {
	Layout  TwoLevel
	Targets int64
	// StableBytes, MidBytes and LeafBytes estimate stable.json, the
	// largest mid and the largest leaf.
	StableBytes, MidBytes, LeafBytes int64
	// SnapshotEntries is how many entries the layout adds to the
	// repository's snapshot; SnapshotBytes their estimated bytes.
	SnapshotEntries, SnapshotBytes int64
	// RolesVisited is the most delegated roles a lookup visits (stable,
	// a mid, a leaf, then unstable).
	RolesVisited int
	// LookupBytes estimates what one lookup downloads of the layout's
	// making: its share of the snapshot, stable, one mid, one leaf.
	LookupBytes int64
}

// largestLeaf estimates the most entries any of bins leaves holds when n
// targets hash uniformly: the mean plus five standard deviations.
func largestLeaf(n int64, bins int) int64 {
	mean := float64(n) / float64(bins)
	return int64(math.Ceil(mean + 5*math.Sqrt(mean)))
}

// EstimateShape returns the estimated sizes of layout l holding n targets.
func EstimateShape(l TwoLevel, n int64, est Estimate) Shape {
	s := Shape{Layout: l, Targets: n}
	// stable also lists the ledger, one entry, and carries the stable
	// threshold's signatures.
	s.StableBytes = est.FileBytes + (StableSignatures-1)*EstimateSignatureBytes + int64(l.NumMids())*est.DelegationBytes + est.EntryBytes
	s.MidBytes = est.FileBytes + int64(l.LeavesPerMid())*est.DelegationBytes
	s.LeafBytes = est.FileBytes + largestLeaf(n, l.NumLeaves())*est.EntryBytes
	s.SnapshotEntries = int64(1 + l.NumMids() + l.NumLeaves())
	s.SnapshotBytes = s.SnapshotEntries * est.SnapshotEntryBytes
	s.RolesVisited = 4
	s.LookupBytes = s.SnapshotBytes + s.StableBytes + s.MidBytes + s.LeafBytes
	return s
}

// SizeTwoLevel chooses the two-level layout for n targets: of every shape
// within the budget (each file, the snapshot share, the roles visited),
// the one whose lookup downloads least (LookupBytes), fewer roles on a
// tie. It returns a *BudgetError naming the limit when no shape fits.
func SizeTwoLevel(base string, n int64, est Estimate) (Shape, error) {
	if n < 0 {
		return Shape{}, fmt.Errorf("%d targets: %w", n, ErrBinLayout)
	}
	var best Shape
	found := false
	// The shape that misses by the smallest factor names the binding limit.
	var miss *BudgetError
	missBy := math.Inf(1)
	for mb := MinLevelBits; mb <= MaxLevelBits; mb++ {
		for lb := MinLevelBits; lb <= MaxLevelBits && mb+lb <= MaxTotalBits; lb++ {
			l, err := NewTwoLevel(base, mb, lb)
			if err != nil {
				return Shape{}, err
			}
			s := EstimateShape(l, n, est)
			worst, worstBy := (*BudgetError)(nil), 1.0
			for _, c := range []struct {
				limit     string
				max, need int64
			}{
				{"stable.json", MaxRoleFileBudget, s.StableBytes},
				{"a mid role's file", MaxRoleFileBudget, s.MidBytes},
				{"a leaf bin's file", MaxRoleFileBudget, s.LeafBytes},
				{"stable's share of the snapshot", MaxSnapshotShareBudget, s.SnapshotBytes},
				{"delegated roles visited per lookup", MaxRolesVisited, int64(s.RolesVisited)},
			} {
				if by := float64(c.need) / float64(c.max); by > worstBy {
					worst, worstBy = &BudgetError{Targets: n, Limit: c.limit, Max: c.max, Need: c.need}, by
				}
			}
			if worst != nil {
				if worstBy < missBy {
					miss, missBy = worst, worstBy
				}
				continue
			}
			if !found || s.LookupBytes < best.LookupBytes ||
				s.LookupBytes == best.LookupBytes && s.SnapshotEntries < best.SnapshotEntries {
				best, found = s, true
			}
		}
	}
	if !found {
		return Shape{}, miss
	}
	return best, nil
}

// EstimateOneLevel returns the estimated sizes of today's one-level
// layout (NewBinLayout with BinBitsFor(n, targetsPerBin) bins under
// stable, all sharing one key): stable.json holds every bin's delegation
// (est.DelegationBytes less the key it does not repeat) and the key once,
// and a lookup visits stable and one bin.
func EstimateOneLevel(n, targetsPerBin int64, est Estimate) Shape {
	keyBytes := int64(EstimateKeyBytes)
	bits := BinBitsFor(n, targetsPerBin)
	bins := int64(1) << bits
	s := Shape{Targets: n}
	s.StableBytes = est.FileBytes + (StableSignatures-1)*EstimateSignatureBytes + bins*(est.DelegationBytes-keyBytes) + keyBytes + est.EntryBytes
	s.LeafBytes = est.FileBytes + largestLeaf(n, int(bins))*est.EntryBytes
	s.SnapshotEntries = 1 + bins
	s.SnapshotBytes = s.SnapshotEntries * est.SnapshotEntryBytes
	s.RolesVisited = 3
	s.LookupBytes = s.SnapshotBytes + s.StableBytes + s.LeafBytes
	return s
}
