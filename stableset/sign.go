package stableset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// SignParams is what signing adds to a Config.
type SignParams struct {
	// Approve must equal the diff's Digest, or nothing is signed.
	Approve string
	// Signers are the stable keyholders' devices; together they must meet
	// the stable threshold (the caller checks the threshold).
	Signers []keys.Signer
	// BinKeys gives the key of each delegated role under stable: every
	// mid role and every leaf bin (BinKeySource; the ceremony passes
	// EphemeralBinKeys).
	BinKeys BinKeySource
	// Now is the signing time; stable and its bins expire Now + Period +
	// Grace (defaults DefaultPeriod and DefaultGrace).
	Now           time.Time
	Period, Grace time.Duration
	// OutDir is created, complete, by one rename; it must not exist, or be
	// an empty directory.
	OutDir string
	// Progress, if set, is called as leaf bins are signed and written,
	// with the number done and the total (for the screen; from several
	// goroutines at once).
	Progress func(done, total int64)
}

// BinKeySource gives the key that signs the delegated role named role: a
// mid role or a leaf bin of the two-level layout. Sign asks it once for
// every such role, before it signs anything, from several goroutines at
// once, and delegates each role to the key given for it. A key given for
// two roles is refused (ErrSharedRoleKey): metadata does not name its
// role, so one role's file would verify as the other's.
type BinKeySource func(role string) (keys.DigestSigner, error)

// EphemeralBinKeys is the BinKeySource of a ceremony: a new ECDSA P-256
// key in this process's memory for every role, never written anywhere,
// gone when the process ends.
func EphemeralBinKeys(string) (keys.DigestSigner, error) { return keys.GenerateECDSA() }

// ErrSharedRoleKey is returned when a BinKeySource gives one key for two
// delegated roles.
var ErrSharedRoleKey = errors.New("one key given for two delegated roles")

// MetaEntry is one new metadata file, as the online snapshot lists it.
type MetaEntry struct {
	Name    string // role name + ".json", as snapshot meta names it
	File    string // path under OutDir
	Version int64
	Length  int64
	SHA256  [32]byte
}

// SignResult describes what was written.
type SignResult struct {
	Diff          *Diff
	StableVersion int64
	Layout        tuf.TwoLevel
	// Meta: stable first, then the takedown role (if any), the mids, the
	// leaves, in order. Developer roles are not among them: their
	// metadata is the developers'.
	Meta  []MetaEntry
	Pages int // index pages rendered (two per project)
}

// Sign computes the diff and signs it: ComputeDiff, then (*Diff).Sign,
// then Close. It reads the export once.
func Sign(cfg Config, p SignParams) (*SignResult, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	d, err := ComputeDiff(cfg)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Sign(p)
}

func (p *SignParams) check() error {
	if p.OutDir == "" || len(p.Signers) == 0 || p.BinKeys == nil {
		return errors.New("signing needs an output directory, at least one stable signer and the bin keys")
	}
	return outdir.Check(p.OutDir)
}

// ErrDiffUsed is returned by (*Diff).Sign on a diff that was already
// signed or closed.
var ErrDiffUsed = errors.New("diff already signed or closed")

// Sign refuses unless p.Approve names the diff's digest exactly (no case
// folding, no trimming) and every crossed confirm_above limit is decided
// (Undecided, ErrUndecided), then builds the stable index pages and the bins
// from what ComputeDiff decided, signs each bin with the key p.BinKeys
// gives for it, signs stable with p.Signers, and writes everything into
// p.OutDir at once. It does not read the export again. A
// diff can be signed once; its entries stay readable until Close.
func (d *Diff) Sign(p SignParams) (*SignResult, error) {
	r := d.run
	if r == nil || r.work == "" || r.signed {
		return nil, ErrDiffUsed
	}
	// r.digest, not the exported d.Digest, which a caller could change.
	if p.Approve != r.digest {
		return nil, fmt.Errorf("approved %q, computed %s: %w", p.Approve, r.digest, ErrApproval)
	}
	if err := d.Undecided(); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	r.signed = true
	if p.Period == 0 {
		p.Period = DefaultPeriod
	}
	if p.Grace == 0 {
		p.Grace = DefaultGrace
	}
	out, err := outdir.New(p.OutDir)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	res, err := r.build(out, &p)
	if err != nil {
		return nil, err
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	res.Diff = d
	return res, nil
}

func (r *run) build(out *outdir.Dir, p *SignParams) (*SignResult, error) {
	var total int64
	for b := range r.nStable {
		total += r.nStable[b] + r.nPages[b]
	}
	// Sized before anything is made, from the targets actually signed (in
	// pages mode the pages alone): a count no layout fits is refused with
	// the *tuf.BudgetError, nothing signed or written.
	est := tuf.EstimateFiles
	if !r.cfg.Policy.TargetMode.ListsFiles() {
		est = tuf.EstimatePages
	}
	shape, err := sizeLayout(total, est)
	if err != nil {
		return nil, err
	}
	layout := shape.Layout
	for _, d := range []string{metadataDir, ledgerDir, pagesDir} {
		if err := out.Mkdir(d); err != nil {
			return nil, err
		}
	}
	// The index pages made again (renderPages wrote them into the work
	// directory); the others are published already.
	for pb, ok := range r.pageTar {
		if ok {
			if err := out.Move(r.bucketPath("pages", pb), fmt.Sprintf("%s/%02x.tar", pagesDir, pb)); err != nil {
				return nil, err
			}
		}
	}
	rk, err := r.roleKeys(layout, p.BinKeys)
	if err != nil {
		return nil, err
	}
	expires := tuf.NewExpiry(p.Now.Add(p.Period + p.Grace))
	leaves := make([]MetaEntry, layout.NumLeaves())
	if err := r.signBins(out, layout, rk, expires, leaves, p.Progress); err != nil {
		return nil, err
	}
	mids := make([]MetaEntry, layout.NumMids())
	if err := r.signMids(out, layout, rk, expires, mids); err != nil {
		return nil, err
	}

	// The ledger, bound into stable as its one target.
	lname := fmt.Sprintf("%d.ledger", r.version)
	// Linked, not moved: Entries reads the work copy until Close.
	if err := out.Link(r.bucketPath("ledger", 0), ledgerDir+"/"+lname); err != nil {
		return nil, err
	}
	st := tuf.NewTargets(r.version, expires.Time())
	st.Signed.Targets[ledgerDir+"/"+lname] = tuf.TargetFile{Length: r.ledgerLen, Hashes: map[string]string{"sha256": hex.EncodeToString(r.ledgerSum[:])}}
	st.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{}, Roles: make([]tuf.DelegatedRole, 0, 1+layout.NumMids())}
	// The takedown role first, before the bins (docs/tuf-layout.md,
	// "Path roles before the bins").
	takedown, err := r.signTakedown(out, rk, p.BinKeys, expires)
	if err != nil {
		return nil, err
	}
	if takedown != nil {
		st.Signed.Delegations.Keys[takedown.id] = takedown.key.Key()
		st.Signed.Delegations.Roles = append(st.Signed.Delegations.Roles, tuf.TakedownDelegation(r.diff.Takedowns, takedown.key.Key()))
	}
	// Then the developer roles, also before the bins and terminating;
	// their metadata is the developers' to sign (delegations.go).
	devRoles, devKeys := r.diff.delegationRoles()
	for id, k := range devKeys {
		if slices.Contains(rk.midIDs, id) || slices.Contains(rk.leafIDs, id) || takedown != nil && takedown.id == id {
			return nil, fmt.Errorf("developer key %s is also a bin's key: %w", id, ErrSharedRoleKey)
		}
		st.Signed.Delegations.Keys[id] = k
	}
	st.Signed.Delegations.Roles = append(st.Signed.Delegations.Roles, devRoles...)
	for i := 0; i < layout.NumMids(); i++ {
		id := rk.midIDs[i]
		st.Signed.Delegations.Keys[id] = rk.mids[i].Key()
		st.Signed.Delegations.Roles = append(st.Signed.Delegations.Roles, tuf.DelegatedRole{Name: layout.MidName(i), KeyIDs: []string{id}, Threshold: 1, PathHashPrefixes: layout.MidPrefixes(i)})
	}
	if err := st.Sign(p.Signers...); err != nil {
		return nil, fmt.Errorf("signing stable: %w", err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	sfile := fmt.Sprintf("%d.%s.json", r.version, StableRole)
	if err := out.WriteFile(metadataDir+"/"+sfile, data); err != nil {
		return nil, err
	}
	all := make([]MetaEntry, 0, 2+len(mids)+len(leaves))
	all = append(all, MetaEntry{Name: StableRole + ".json", File: metadataDir + "/" + sfile, Version: r.version, Length: int64(len(data)), SHA256: sha256.Sum256(data)})
	if takedown != nil {
		all = append(all, takedown.meta)
	}
	all = append(append(all, mids...), leaves...)
	if err := writeFragment(out, all); err != nil {
		return nil, err
	}
	return &SignResult{StableVersion: r.version, Layout: layout, Meta: all, Pages: r.pages}, nil
}

// sizeLayout sizes the two-level layout for n targets with the target
// mode's estimate (a variable so that tests can make a count too large for
// the budget, or see the count signed).
var sizeLayout = func(n int64, est tuf.Estimate) (tuf.Shape, error) {
	return tuf.SizeTwoLevel(StableRole, n, est)
}

// roleKeySet is the key of every delegated role, and its key id: mid i's
// at mids[i], leaf j of mid i's at leaves[i<<LeafBits|j].
type roleKeySet struct {
	mids, leaves    []keys.DigestSigner
	midIDs, leafIDs []string
}

// leafIndex is the index, over all leaves, of the leaf holding a path
// whose SHA-256 is h.
func leafIndex(l tuf.TwoLevel, h *[32]byte) int {
	m, j := l.LeafOfHash(h)
	return m<<l.LeafBits | j
}

func leafName(l tuf.TwoLevel, g int) string {
	return l.LeafName(g>>l.LeafBits, g&(l.LeavesPerMid()-1))
}

// roleKeys asks src, on the run's workers, for the key of every mid and
// leaf of l, and refuses a key given for two roles.
func (r *run) roleKeys(l tuf.TwoLevel, src BinKeySource) (*roleKeySet, error) {
	nm, nl := l.NumMids(), l.NumLeaves()
	rk := &roleKeySet{mids: make([]keys.DigestSigner, nm), leaves: make([]keys.DigestSigner, nl), midIDs: make([]string, nm), leafIDs: make([]string, nl)}
	const chunk = 64
	n := nm + nl
	err := r.parallel((n+chunk-1)/chunk, func(c int) error {
		for k := c * chunk; k < min(n, (c+1)*chunk); k++ {
			name, ks, ids, i := "", rk.mids, rk.midIDs, k
			if k < nm {
				name = l.MidName(k)
			} else {
				i = k - nm
				name, ks, ids = leafName(l, i), rk.leaves, rk.leafIDs
			}
			s, err := src(name)
			if err != nil {
				return fmt.Errorf("the key of %s: %w", name, err)
			}
			if s == nil {
				return fmt.Errorf("no key for %s", name)
			}
			ks[i], ids[i] = s, s.Key().ID()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := make(map[string]string, n)
	for k := 0; k < n; k++ {
		name, id := "", ""
		if k < nm {
			name, id = l.MidName(k), rk.midIDs[k]
		} else {
			name, id = leafName(l, k-nm), rk.leafIDs[k-nm]
		}
		if other, ok := seen[id]; ok {
			return nil, fmt.Errorf("key %s for %s and %s: %w", id, other, name, ErrSharedRoleKey)
		}
		seen[id] = name
	}
	return rk, nil
}

// binWritten, when set (by tests), is called after each leaf bin is
// written with the number written so far; an error it returns fails the
// signing.
var binWritten func(n int64) error

// signBins builds, signs and writes the leaf bins; meta[g] receives leaf
// g's entry.
func (r *run) signBins(out *outdir.Dir, l tuf.TwoLevel, rk *roleKeySet, expires tuf.Expiry, meta []MetaEntry, progress func(done, total int64)) error {
	// A unit is one path bucket (the first byte of the path's hash) when
	// leaves are no wider than a bucket, else one leaf.
	bits := l.MidBits + l.LeafBits
	var units, bucketsPer, leavesPer int
	if bits >= 8 {
		units, bucketsPer, leavesPer = numBuckets, 1, l.NumLeaves()/numBuckets
	} else {
		units, bucketsPer, leavesPer = l.NumLeaves(), numBuckets/l.NumLeaves(), 1
	}
	var written atomic.Int64
	return r.parallel(units, func(u int) error {
		// Each bucket's files come in path order, its pages in any order;
		// every file path sorts before every page path.
		var ts []tuf.BinTarget
		for b := u * bucketsPer; b < (u+1)*bucketsPer; b++ {
			var err error
			n0 := len(ts)
			if ts, err = readBinTargets(r.bucketPath("stable", b), ts); err != nil {
				return fmt.Errorf("reading decided targets: %w", err)
			}
			if int64(len(ts)-n0) != r.nStable[b] {
				return fmt.Errorf("reading decided targets: %d in bucket %d, want %d: %w", len(ts)-n0, b, r.nStable[b], errSpill)
			}
			n1 := len(ts)
			if ts, err = readBinTargets(r.bucketPath("pagetargets", b), ts); err != nil {
				return fmt.Errorf("reading index page targets: %w", err)
			}
			if int64(len(ts)-n1) != r.nPages[b] {
				return fmt.Errorf("reading index page targets: %d in bucket %d, want %d: %w", len(ts)-n1, b, r.nPages[b], errSpill)
			}
			slices.SortFunc(ts[n1:], func(a, b tuf.BinTarget) int { return strings.Compare(a.Path, b.Path) })
			if r.expect != nil {
				if err := r.expect.checkBucket(r.work, b, ts[n0:n1], ts[n1:]); err != nil {
					return err
				}
			}
		}
		if bucketsPer > 1 {
			slices.SortFunc(ts, func(a, b tuf.BinTarget) int { return strings.Compare(a.Path, b.Path) })
		}
		// Split by leaf, keeping path order within each.
		first := leafIndex(l, &[32]byte{byte(u * bucketsPer)})
		per := make([][]tuf.BinTarget, leavesPer)
		for _, t := range ts {
			h := sha256.Sum256([]byte(t.Path))
			i := leafIndex(l, &h) - first
			per[i] = append(per[i], t)
		}
		var buf, file []byte
		for k, bt := range per {
			g := first + k
			name := leafName(l, g)
			var err error
			buf, err = tuf.AppendBinSigned(buf[:0], r.version, expires, bt)
			if err != nil {
				return fmt.Errorf("bin %s: %w", name, err)
			}
			// Signed and verified over one SHA-256 of the signed bytes.
			digest := sha256.Sum256(buf)
			key := rk.leaves[g]
			der, err := key.SignDigest(&digest)
			if err != nil {
				return fmt.Errorf("signing bin %s: %w", name, err)
			}
			if err := key.VerifyDigest(&digest, der); err != nil {
				return fmt.Errorf("bin %s: its key made a signature that does not verify: %w", name, err)
			}
			sig := tuf.Signature{KeyID: rk.leafIDs[g], Sig: hex.EncodeToString(der)}
			file = tuf.AppendBinFile(file[:0], buf, []tuf.Signature{sig})
			fname := fmt.Sprintf("%d.%s.json", r.version, name)
			if err := out.WriteFile(metadataDir+"/"+fname, file); err != nil {
				return err
			}
			meta[g] = MetaEntry{Name: name + ".json", File: metadataDir + "/" + fname, Version: r.version, Length: int64(len(file)), SHA256: sha256.Sum256(file)}
			n := written.Add(1)
			if progress != nil {
				progress(n, int64(l.NumLeaves()))
			}
			if binWritten != nil {
				if err := binWritten(n); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// signMids builds, signs and writes the mid roles: mid i lists no target
// and delegates to its leaves, each to its own key; meta[i] receives its
// entry.
func (r *run) signMids(out *outdir.Dir, l tuf.TwoLevel, rk *roleKeySet, expires tuf.Expiry, meta []MetaEntry) error {
	return r.parallel(l.NumMids(), func(i int) error {
		name := l.MidName(i)
		m := tuf.NewTargets(r.version, expires.Time())
		m.Signed.Delegations = &tuf.Delegations{Keys: make(map[string]*keys.Key, l.LeavesPerMid()), Roles: make([]tuf.DelegatedRole, 0, l.LeavesPerMid())}
		for j := 0; j < l.LeavesPerMid(); j++ {
			g := i<<l.LeafBits | j
			id := rk.leafIDs[g]
			m.Signed.Delegations.Keys[id] = rk.leaves[g].Key()
			// tuf.TwoLevel.LeafDelegation, with the key id computed once.
			m.Signed.Delegations.Roles = append(m.Signed.Delegations.Roles, tuf.DelegatedRole{Name: l.LeafName(i, j), KeyIDs: []string{id}, Threshold: 1, PathHashPrefixes: l.LeafPrefixes(i, j)})
		}
		// Sign verifies the signature it makes.
		if err := m.Sign(rk.mids[i]); err != nil {
			return fmt.Errorf("signing %s: %w", name, err)
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		data = append(data, '\n')
		fname := fmt.Sprintf("%d.%s.json", r.version, name)
		if err := out.WriteFile(metadataDir+"/"+fname, data); err != nil {
			return err
		}
		meta[i] = MetaEntry{Name: name + ".json", File: metadataDir + "/" + fname, Version: r.version, Length: int64(len(data)), SHA256: sha256.Sum256(data)}
		return nil
	})
}

// signedTakedown is the takedown role as signed: its key and its file.
type signedTakedown struct {
	key  keys.DigestSigner
	id   string
	meta MetaEntry
}

// signTakedown signs and writes the takedown role when the diff has
// taken-down paths: no target, no delegation, signed by a key of its own
// from src (refused if it is a mid's or a leaf's: ErrSharedRoleKey). It
// returns nil when nothing is taken down.
func (r *run) signTakedown(out *outdir.Dir, rk *roleKeySet, src BinKeySource, expires tuf.Expiry) (*signedTakedown, error) {
	if len(r.diff.Takedowns) == 0 {
		return nil, nil
	}
	k, err := src(tuf.TakedownRole)
	if err != nil {
		return nil, fmt.Errorf("the key of %s: %w", tuf.TakedownRole, err)
	}
	if k == nil {
		return nil, fmt.Errorf("no key for %s", tuf.TakedownRole)
	}
	id := k.Key().ID()
	if slices.Contains(rk.midIDs, id) || slices.Contains(rk.leafIDs, id) {
		return nil, fmt.Errorf("key %s for %s and a bin: %w", id, tuf.TakedownRole, ErrSharedRoleKey)
	}
	m := tuf.NewTargets(r.version, expires.Time())
	// Sign verifies the signature it makes.
	if err := m.Sign(k); err != nil {
		return nil, fmt.Errorf("signing %s: %w", tuf.TakedownRole, err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	fname := fmt.Sprintf("%d.%s.json", r.version, tuf.TakedownRole)
	if err := out.WriteFile(metadataDir+"/"+fname, data); err != nil {
		return nil, err
	}
	return &signedTakedown{key: k, id: id, meta: MetaEntry{Name: tuf.TakedownRole + ".json", File: metadataDir + "/" + fname, Version: r.version, Length: int64(len(data)), SHA256: sha256.Sum256(data)}}, nil
}

// Fragment is the snapshot fragment file: the new metadata for the online
// snapshot to list.
type Fragment struct {
	Type string                  `json:"_type"`
	Meta map[string]tuf.MetaFile `json:"meta"`
}

func writeFragment(out *outdir.Dir, all []MetaEntry) error {
	fr := Fragment{Type: FragmentType, Meta: map[string]tuf.MetaFile{}}
	for _, m := range all {
		fr.Meta[m.Name] = tuf.MetaFile{Version: m.Version, Length: m.Length, Hashes: map[string]string{"sha256": hex.EncodeToString(m.SHA256[:])}}
	}
	data, err := json.MarshalIndent(fr, "", " ")
	if err != nil {
		return err
	}
	return out.WriteFile(FragmentFile, append(data, '\n'))
}
