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
	// BinKeys gives the key that signs each bin role (BinKeySource).
	BinKeys BinKeySource
	// Now is the signing time; stable and its bins expire Now + Period +
	// Grace (defaults DefaultPeriod and DefaultGrace).
	Now           time.Time
	Period, Grace time.Duration
	// OutDir is created, complete, by one rename; it must not exist, or be
	// an empty directory.
	OutDir string
}

// BinKeySource gives the key that signs the bin role named role. Sign asks
// it once for each bin role, in bin order, before it signs any bin, and
// delegates each role to the key given for it. It may give one key for
// several roles.
type BinKeySource func(role string) (keys.DigestSigner, error)

// OneBinKey is the BinKeySource that gives k for every bin role.
func OneBinKey(k keys.DigestSigner) BinKeySource {
	return func(string) (keys.DigestSigner, error) { return k, nil }
}

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
	Layout        tuf.BinLayout
	Meta          []MetaEntry // stable first, then the bins in order
	Pages         int         // index pages rendered (two per project)
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
// folding, no trimming), then builds the stable index pages and the bins
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
	var total int64
	for b := range r.nStable {
		total += r.nStable[b] + r.nPages[b]
	}
	layout, err := tuf.NewBinLayout(StableRole, tuf.BinBitsFor(total, targetsPerBin))
	if err != nil {
		return nil, err
	}
	bk, err := binKeys(layout, p.BinKeys)
	if err != nil {
		return nil, err
	}
	expires := tuf.NewExpiry(p.Now.Add(p.Period + p.Grace))
	meta := make([]MetaEntry, layout.NumBins())
	if err := r.signBins(out, layout, bk, expires, meta); err != nil {
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
	st.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{}, Roles: make([]tuf.DelegatedRole, 0, layout.NumBins())}
	for i := 0; i < layout.NumBins(); i++ {
		st.Signed.Delegations.Keys[bk.ids[i]] = bk.signers[i].Key()
		st.Signed.Delegations.Roles = append(st.Signed.Delegations.Roles, layout.Delegation(i, []string{bk.ids[i]}))
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
	all := append([]MetaEntry{{Name: StableRole + ".json", File: metadataDir + "/" + sfile, Version: r.version, Length: int64(len(data)), SHA256: sha256.Sum256(data)}}, meta...)
	if err := writeFragment(out, all); err != nil {
		return nil, err
	}
	return &SignResult{StableVersion: r.version, Layout: layout, Meta: all, Pages: r.pages}, nil
}

// binKeySet is the key of every bin role, by bin index, and its key id.
type binKeySet struct {
	signers []keys.DigestSigner
	ids     []string
}

// binKeys asks src for the key of every bin role of l.
func binKeys(l tuf.BinLayout, src BinKeySource) (*binKeySet, error) {
	n := l.NumBins()
	bk := &binKeySet{signers: make([]keys.DigestSigner, n), ids: make([]string, n)}
	ids := map[keys.DigestSigner]string{}
	for i := 0; i < n; i++ {
		k, err := src(l.Name(i))
		if err != nil {
			return nil, fmt.Errorf("the key of bin %s: %w", l.Name(i), err)
		}
		if k == nil {
			return nil, fmt.Errorf("no key for bin %s", l.Name(i))
		}
		id, ok := ids[k]
		if !ok {
			id = k.Key().ID()
			ids[k] = id
		}
		bk.signers[i], bk.ids[i] = k, id
	}
	return bk, nil
}

// binWritten, when set (by tests), is called after each bin is written with
// the number written so far; an error it returns fails the signing.
var binWritten func(n int64) error

// signBins builds, signs and writes the bins.
func (r *run) signBins(out *outdir.Dir, l tuf.BinLayout, bk *binKeySet, expires tuf.Expiry, meta []MetaEntry) error {
	var units, bucketsPer int
	if l.Bits >= 8 {
		units, bucketsPer = numBuckets, 1
	} else {
		units, bucketsPer = l.NumBins(), numBuckets/l.NumBins()
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
		}
		if bucketsPer > 1 {
			slices.SortFunc(ts, func(a, b tuf.BinTarget) int { return strings.Compare(a.Path, b.Path) })
		}
		// Split by bin, keeping path order within each.
		first := l.BinOfHash(&[32]byte{byte(u * bucketsPer)})
		last := first + max(1, l.NumBins()/numBuckets) - 1
		if l.Bits < 8 {
			last = first
		}
		per := make([][]tuf.BinTarget, last-first+1)
		for _, t := range ts {
			h := sha256.Sum256([]byte(t.Path))
			i := l.BinOfHash(&h) - first
			per[i] = append(per[i], t)
		}
		var buf, file []byte
		for k, bt := range per {
			i := first + k
			var err error
			buf, err = tuf.AppendBinSigned(buf[:0], r.version, expires, bt)
			if err != nil {
				return fmt.Errorf("bin %s: %w", l.Name(i), err)
			}
			// Signed and verified over one SHA-256 of the signed bytes.
			digest := sha256.Sum256(buf)
			k := bk.signers[i]
			der, err := k.SignDigest(&digest)
			if err != nil {
				return fmt.Errorf("signing bin %s: %w", l.Name(i), err)
			}
			if err := k.VerifyDigest(&digest, der); err != nil {
				return fmt.Errorf("bin %s: its key made a signature that does not verify: %w", l.Name(i), err)
			}
			sig := tuf.Signature{KeyID: bk.ids[i], Sig: hex.EncodeToString(der)}
			file = tuf.AppendBinFile(file[:0], buf, []tuf.Signature{sig})
			name := fmt.Sprintf("%d.%s.json", r.version, l.Name(i))
			if err := out.WriteFile(metadataDir+"/"+name, file); err != nil {
				return err
			}
			meta[i] = MetaEntry{Name: l.Name(i) + ".json", File: metadataDir + "/" + name, Version: r.version, Length: int64(len(file)), SHA256: sha256.Sum256(file)}
			if n := written.Add(1); binWritten != nil {
				if err := binWritten(n); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Fragment is the snapshot fragment file: the new metadata for the online
// snapshot to list.
type Fragment struct {
	Type string                  `json:"_type"`
	Meta map[string]tuf.MetaFile `json:"meta"`
}

func writeFragment(out *outdir.Dir, all []MetaEntry) error {
	fr := Fragment{Type: "keyceremony-snapshot-fragment", Meta: map[string]tuf.MetaFile{}}
	for _, m := range all {
		fr.Meta[m.Name] = tuf.MetaFile{Version: m.Version, Length: m.Length, Hashes: map[string]string{"sha256": hex.EncodeToString(m.SHA256[:])}}
	}
	data, err := json.MarshalIndent(fr, "", " ")
	if err != nil {
		return err
	}
	return out.WriteFile(FragmentFile, append(data, '\n'))
}
