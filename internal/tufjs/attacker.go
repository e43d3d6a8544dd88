package tufjs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// Attacker rewrites a published repository (DIR/metadata, DIR/targets) as
// someone who holds only the repository's online keys can: the snapshot,
// timestamp and unstable keys. It never touches a file an offline key
// signed except to copy its bytes under another name.
type Attacker struct {
	Dir                           string
	Snapshot, Timestamp, Unstable keys.Signer

	snap     *tuf.Metadata[tuf.Snapshot]
	unstable *tuf.Metadata[tuf.Targets]
}

func (a *Attacker) metaDir() string { return filepath.Join(a.Dir, "metadata") }

// load reads the snapshot timestamp.json names.
func (a *Attacker) load() error {
	if a.snap != nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(a.metaDir(), "timestamp.json"))
	if err != nil {
		return err
	}
	ts, err := tuf.Load[tuf.Timestamp](b, "timestamp.json")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)
	b, err = os.ReadFile(filepath.Join(a.metaDir(), name))
	if err != nil {
		return err
	}
	a.snap, err = tuf.Load[tuf.Snapshot](b, name)
	return err
}

// SwapRole serves role from's current metadata file under role to's name:
// the same bytes at from's version, and a snapshot entry for to that gives
// from's file's version, length and hash.
func (a *Attacker) SwapRole(from, to string) error {
	if err := a.load(); err != nil {
		return err
	}
	mf, ok := a.snap.Signed.Meta[from+".json"]
	if !ok {
		return fmt.Errorf("%s.json is not in the snapshot", from)
	}
	if _, ok := a.snap.Signed.Meta[to+".json"]; !ok {
		return fmt.Errorf("%s.json is not in the snapshot", to)
	}
	b, err := os.ReadFile(filepath.Join(a.metaDir(), strconv.FormatInt(mf.Version, 10)+"."+from+".json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.metaDir(), strconv.FormatInt(mf.Version, 10)+"."+to+".json"), b, 0o644); err != nil {
		return err
	}
	a.snap.Signed.Meta[to+".json"] = entry(mf.Version, b)
	return nil
}

// ListUnstable makes unstable list content under targetPath, and serves
// content as that target.
func (a *Attacker) ListUnstable(targetPath string, content []byte) error {
	if err := a.load(); err != nil {
		return err
	}
	if a.unstable == nil {
		mf, ok := a.snap.Signed.Meta["unstable.json"]
		if !ok {
			return fmt.Errorf("unstable.json is not in the snapshot")
		}
		name := strconv.FormatInt(mf.Version, 10) + ".unstable.json"
		b, err := os.ReadFile(filepath.Join(a.metaDir(), name))
		if err != nil {
			return err
		}
		if a.unstable, err = tuf.Load[tuf.Targets](b, name); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(content)
	h := hex.EncodeToString(sum[:])
	a.unstable.Signed.Targets[targetPath] = tuf.TargetFile{Length: int64(len(content)), Hashes: map[string]string{"sha256": h}}
	file := filepath.Join(a.Dir, "targets", filepath.FromSlash(path.Join(path.Dir(targetPath), h+"."+path.Base(targetPath))))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, content, 0o644)
}

// Publish signs what changed with the online keys: unstable (if edited)
// at the next version, then a new snapshot and timestamp.
func (a *Attacker) Publish() error {
	if err := a.load(); err != nil {
		return err
	}
	if a.unstable != nil {
		a.unstable.Signed.Version++
		a.unstable.Signatures = nil
		if err := a.unstable.Sign(a.Unstable); err != nil {
			return err
		}
		b, err := a.unstable.MarshalFile()
		if err != nil {
			return err
		}
		if err := a.write(fmt.Sprintf("%d.unstable.json", a.unstable.Signed.Version), b); err != nil {
			return err
		}
		a.snap.Signed.Meta["unstable.json"] = entry(a.unstable.Signed.Version, b)
	}
	a.snap.Signed.Version++
	a.snap.Signatures = nil
	if err := a.snap.Sign(a.Snapshot); err != nil {
		return err
	}
	sb, err := a.snap.MarshalFile()
	if err != nil {
		return err
	}
	if err := a.write(fmt.Sprintf("%d.snapshot.json", a.snap.Signed.Version), sb); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(a.metaDir(), "timestamp.json"))
	if err != nil {
		return err
	}
	ts, err := tuf.Load[tuf.Timestamp](b, "timestamp.json")
	if err != nil {
		return err
	}
	ts.Signed.Version++
	ts.Signed.Meta["snapshot.json"] = entry(a.snap.Signed.Version, sb)
	ts.Signatures = nil
	if err := ts.Sign(a.Timestamp); err != nil {
		return err
	}
	tb, err := ts.MarshalFile()
	if err != nil {
		return err
	}
	return a.write("timestamp.json", tb)
}

func (a *Attacker) write(name string, b []byte) error {
	return os.WriteFile(filepath.Join(a.metaDir(), name), b, 0o644)
}

func entry(version int64, b []byte) tuf.MetaFile {
	sum := sha256.Sum256(b)
	return tuf.MetaFile{Version: version, Length: int64(len(b)), Hashes: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
}

// AddRole serves file as role's metadata at version, and lists it in the
// next snapshot (Publish): how the repository publishes a role whose
// metadata someone else signed (a developer role, whose keys the
// developers hold).
func (a *Attacker) AddRole(role string, version int64, file []byte) error {
	if err := a.load(); err != nil {
		return err
	}
	if err := a.write(fmt.Sprintf("%d.%s.json", version, role), file); err != nil {
		return err
	}
	a.snap.Signed.Meta[role+".json"] = entry(version, file)
	return nil
}

// ServeTarget serves content as targetPath, under its consistent-snapshot
// name (sha256 prefix).
func (a *Attacker) ServeTarget(targetPath string, content []byte) error {
	sum := sha256.Sum256(content)
	file := filepath.Join(a.Dir, "targets", filepath.FromSlash(path.Join(path.Dir(targetPath), hex.EncodeToString(sum[:])+"."+path.Base(targetPath))))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, content, 0o644)
}
