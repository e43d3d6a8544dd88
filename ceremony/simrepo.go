package ceremony

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// simRepo plays the repository's side in the demo: it holds the online
// keys (in memory, as a server would) and signs unstable, snapshot and
// timestamp. It also plays the attacker who holds the online key.
type simRepo struct {
	snapshot, timestamp, unstable keys.Signer
	expires                       time.Time
}

func newSimRepo(now time.Time) (*simRepo, error) {
	r := &simRepo{expires: now.AddDate(0, 0, 7)}
	for _, p := range []*keys.Signer{&r.snapshot, &r.timestamp, &r.unstable} {
		s, err := keys.GenerateEd25519()
		if err != nil {
			return nil, err
		}
		*p = s
	}
	return r, nil
}

// online returns the public keys the repository hands to the ceremony.
func (r *simRepo) online() map[string]OnlineRole {
	return map[string]OnlineRole{
		"snapshot":  {Threshold: 1, Keys: []*keys.Key{r.snapshot.Key()}},
		"timestamp": {Threshold: 1, Keys: []*keys.Key{r.timestamp.Key()}},
		"unstable":  {Threshold: 1, Keys: []*keys.Key{r.unstable.Key()}},
	}
}

// signUnstable lists every target the repository has.
func (r *simRepo) signUnstable(version int64, files map[string]tuf.TargetFile) (*tuf.Metadata[tuf.Targets], error) {
	m := tuf.NewTargets(version, r.expires)
	for p, f := range files {
		m.Signed.Targets[p] = f
	}
	if err := m.Sign(r.unstable); err != nil {
		return nil, err
	}
	return m, nil
}

// metaEntry describes one metadata file for snapshot.
func metaEntry(version int64, data []byte) tuf.MetaFile {
	sum := sha256.Sum256(data)
	return tuf.MetaFile{Version: version, Length: int64(len(data)), Hashes: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
}

// repoFiles gathers what a repository publishes besides root: targets v1
// and unstable v1, and the stable files a signing wrote under mediaStable
// (nil meta: none).
func repoFiles(targets, unstable *tuf.Metadata[tuf.Targets], mediaStable string, meta []stableset.MetaEntry) (map[string]publishedMeta, error) {
	files := map[string]publishedMeta{}
	for name, m := range map[string]*tuf.Metadata[tuf.Targets]{"targets.json": targets, "unstable.json": unstable} {
		data, err := m.MarshalFile()
		if err != nil {
			return nil, err
		}
		files[name] = publishedMeta{version: m.Signed.Version, data: data}
	}
	for _, m := range meta {
		data, err := os.ReadFile(filepath.Join(mediaStable, m.File))
		if err != nil {
			return nil, fmt.Errorf("reading %s from the media: %w", m.File, err)
		}
		files[m.Name] = publishedMeta{version: m.Version, data: data}
	}
	return files, nil
}

// publish writes root, the given metadata files (name -> version and
// bytes, names without the version prefix), and snapshot and timestamp
// over them, as a client fetches them with consistent snapshots.
func (r *simRepo) publish(out *outdir.Dir, dir string, root *tuf.Metadata[tuf.Root], files map[string]publishedMeta) error {
	rootData, err := root.MarshalFile()
	if err != nil {
		return err
	}
	if err := out.WriteFile(path.Join(dir, fmt.Sprintf("%d.root.json", root.Signed.Version)), rootData); err != nil {
		return err
	}
	snap := tuf.NewSnapshot(1, r.expires)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := files[n]
		snap.Signed.Meta[n] = metaEntry(f.version, f.data)
		if err := out.WriteFile(path.Join(dir, fmt.Sprintf("%d.%s", f.version, n)), f.data); err != nil {
			return err
		}
	}
	if err := snap.Sign(r.snapshot); err != nil {
		return err
	}
	sdata, err := snap.MarshalFile()
	if err != nil {
		return err
	}
	if err := out.WriteFile(path.Join(dir, "1.snapshot.json"), sdata); err != nil {
		return err
	}
	ts := tuf.NewTimestamp(1, r.expires, metaEntry(1, sdata))
	if err := ts.Sign(r.timestamp); err != nil {
		return err
	}
	tdata, err := ts.MarshalFile()
	if err != nil {
		return err
	}
	return out.WriteFile(path.Join(dir, "timestamp.json"), tdata)
}

type publishedMeta struct {
	version int64
	data    []byte
}

// targetFileName is where a consistent-snapshot client fetches a target:
// the file name prefixed with the hex SHA-256 of its content.
func targetFileName(targetPath string, sha256hex string) string {
	return path.Join(path.Dir(targetPath), sha256hex+"."+path.Base(targetPath))
}

// publishTarget publishes a target as a consistent-snapshot client
// fetches it under each hash stable's entries list (PEP 458: one copy per
// hash): <sha256>.<name> and <blake2b-256>.<name>.
func publishTarget(out *outdir.Dir, targetPath string, b []byte) error {
	b2 := blake2b.Sum256(b)
	for _, h := range []string{sha256Hex(b), hex.EncodeToString(b2[:])} {
		if err := out.WriteFile(path.Join("targets", targetFileName(targetPath, h)), b); err != nil {
			return err
		}
	}
	return nil
}

// publishLedger publishes the ledgers a stable signing wrote under
// mediaStable/ledger (the stable role lists its ledger as a target,
// ledger/<N>.ledger) where a client fetches targets.
func publishLedger(out *outdir.Dir, mediaStable string) error {
	files, err := filepath.Glob(filepath.Join(mediaStable, "ledger", "*.ledger"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no ledger under %s", mediaStable)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading the ledger from the media: %w", err)
		}
		p := path.Join("ledger", filepath.Base(f))
		if err := out.WriteFile(path.Join("targets", targetFileName(p, sha256Hex(b))), b); err != nil {
			return err
		}
	}
	return nil
}
