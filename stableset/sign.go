package stableset

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

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
	// Now is the signing time; stable and its bins expire Now + Period +
	// Grace (defaults DefaultPeriod and DefaultGrace).
	Now           time.Time
	Period, Grace time.Duration
	// OutDir is created, complete, by one rename; it must not exist.
	OutDir string
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
	CeremonyKey   *keys.Key
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
	if p.OutDir == "" || len(p.Signers) == 0 {
		return errors.New("signing needs an output directory and at least one stable signer")
	}
	if _, err := os.Lstat(p.OutDir); err == nil {
		return fmt.Errorf("%s: %w", p.OutDir, ErrOutputExists)
	}
	return nil
}

// ErrDiffUsed is returned by (*Diff).Sign on a diff that was already
// signed or closed.
var ErrDiffUsed = errors.New("diff already signed or closed")

// Sign refuses unless p.Approve names the diff's digest exactly (no case
// folding, no trimming), then builds the stable index pages and the bins
// from what ComputeDiff decided, signs the bins with a ceremony key made
// for this call and discarded, signs stable with p.Signers, and writes
// everything into p.OutDir at once. It does not read the export again. A
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
	defer tuneGC()()
	if p.Period == 0 {
		p.Period = DefaultPeriod
	}
	if p.Grace == 0 {
		p.Grace = DefaultGrace
	}
	parent := filepath.Dir(filepath.Clean(p.OutDir))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(p.OutDir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("making the output directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	res, err := r.build(tmp, &p)
	if err != nil {
		return nil, err
	}
	if err := commitDir(tmp, p.OutDir); err != nil {
		return nil, err
	}
	done = true
	res.Diff = d
	return res, nil
}

func (r *run) build(out string, p *SignParams) (*SignResult, error) {
	for _, d := range []string{metadataDir, ledgerDir, pagesDir} {
		if err := os.Mkdir(filepath.Join(out, d), 0o755); err != nil {
			return nil, err
		}
	}
	// The index pages made again (renderPages wrote them into the work
	// directory); the others are published already.
	for pb, ok := range r.pageTar {
		if ok {
			if err := moveFile(r.bucketPath("pages", pb), filepath.Join(out, pagesDir, fmt.Sprintf("%02x.tar", pb))); err != nil {
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
	// The ceremony key: ECDSA P-256 (ecdsa-sha2-nistp256), because its
	// signature hashes the bins once with SHA-256 (SHA-NI), where ed25519
	// hashes them twice with SHA-512, and once more to verify.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the ceremony key: %w", err)
	}
	ck, err := keys.NewMemorySigner(priv)
	if err != nil {
		return nil, err
	}
	expires := tuf.NewExpiry(p.Now.Add(p.Period + p.Grace))
	meta := make([]MetaEntry, layout.NumBins())
	if err := r.signBins(out, layout, priv, ck.Key().ID(), expires, meta); err != nil {
		return nil, err
	}

	// The ledger, bound into stable as its one target.
	lname := fmt.Sprintf("%d.ledger", r.version)
	// Linked, not moved: Entries reads the work copy until Close.
	if err := linkFile(r.bucketPath("ledger", 0), filepath.Join(out, ledgerDir, lname)); err != nil {
		return nil, err
	}
	st := tuf.NewTargets(r.version, expires.Time())
	st.Signed.Targets[ledgerDir+"/"+lname] = tuf.TargetFile{Length: r.ledgerLen, Hashes: map[string]string{"sha256": hex.EncodeToString(r.ledgerSum[:])}}
	ids := []string{ck.Key().ID()}
	st.Signed.Delegations = &tuf.Delegations{Keys: map[string]*keys.Key{ids[0]: ck.Key()}, Roles: make([]tuf.DelegatedRole, 0, layout.NumBins())}
	for i := 0; i < layout.NumBins(); i++ {
		st.Signed.Delegations.Roles = append(st.Signed.Delegations.Roles, layout.Delegation(i, ids))
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
	if err := os.WriteFile(filepath.Join(out, metadataDir, sfile), data, 0o644); err != nil {
		return nil, err
	}
	all := append([]MetaEntry{{Name: StableRole + ".json", File: metadataDir + "/" + sfile, Version: r.version, Length: int64(len(data)), SHA256: sha256.Sum256(data)}}, meta...)
	if err := writeFragment(filepath.Join(out, FragmentFile), all); err != nil {
		return nil, err
	}
	return &SignResult{StableVersion: r.version, Layout: layout, CeremonyKey: ck.Key(), Meta: all, Pages: r.pages}, nil
}

// signBins builds, signs and writes the bins.
func (r *run) signBins(out string, l tuf.BinLayout, ck *ecdsa.PrivateKey, keyID string, expires tuf.Expiry, meta []MetaEntry) error {
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
			if ts, err = readBinTargets(r.bucketPath("stable", b), ts); err != nil || int64(len(ts)-n0) != r.nStable[b] {
				return fmt.Errorf("reading decided targets: %w", errSpill)
			}
			n1 := len(ts)
			if ts, err = readBinTargets(r.bucketPath("pagetargets", b), ts); err != nil || int64(len(ts)-n1) != r.nPages[b] {
				return fmt.Errorf("reading index page targets: %w", errSpill)
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
			der, err := ecdsa.SignASN1(rand.Reader, ck, digest[:])
			if err != nil {
				return fmt.Errorf("signing bin %s: %w", l.Name(i), err)
			}
			if !ecdsa.VerifyASN1(&ck.PublicKey, digest[:], der) {
				return fmt.Errorf("bin %s: the ceremony key made a signature that does not verify", l.Name(i))
			}
			sig := tuf.Signature{KeyID: keyID, Sig: hex.EncodeToString(der)}
			file = tuf.AppendBinFile(file[:0], buf, []tuf.Signature{sig})
			name := fmt.Sprintf("%d.%s.json", r.version, l.Name(i))
			if err := os.WriteFile(filepath.Join(out, metadataDir, name), file, 0o644); err != nil {
				return err
			}
			meta[i] = MetaEntry{Name: l.Name(i) + ".json", File: metadataDir + "/" + name, Version: r.version, Length: int64(len(file)), SHA256: sha256.Sum256(file)}
			if n := written.Add(1); r.cfg.failAfterBins > 0 && n >= int64(r.cfg.failAfterBins) {
				return ErrInjectedFailure
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

func writeFragment(path string, all []MetaEntry) error {
	fr := Fragment{Type: "keyceremony-snapshot-fragment", Meta: map[string]tuf.MetaFile{}}
	for _, m := range all {
		fr.Meta[m.Name] = tuf.MetaFile{Version: m.Version, Length: m.Length, Hashes: map[string]string{"sha256": hex.EncodeToString(m.SHA256[:])}}
	}
	data, err := json.MarshalIndent(fr, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// moveFile renames from to to, or copies it across file systems.
func moveFile(from, to string) error {
	if err := os.Rename(from, to); err == nil {
		return nil
	}
	return copyFile(from, to)
}

// linkFile hard-links to to from, or copies it across file systems.
func linkFile(from, to string) error {
	if err := os.Link(from, to); err == nil {
		return nil
	}
	return copyFile(from, to)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// commitDir makes tmp durable and renames it to dst.
func commitDir(tmp, dst string) error {
	syscall.Sync()
	for _, d := range []string{metadataDir, ledgerDir, pagesDir, "."} {
		if err := syncDir(filepath.Join(tmp, d)); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s: %w", dst, ErrOutputExists)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("renaming the output into place: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
