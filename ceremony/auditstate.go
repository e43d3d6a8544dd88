package ceremony

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// targetsSource is the root chain and targets a stable medium is checked
// against: a stable medium carries neither.
type targetsSource struct {
	dir     string
	root    *tuf.Metadata[tuf.Root]
	targets *tuf.Metadata[tuf.Targets]
	deleg   *tuf.DelegatedRole
}

// loadTargetsSource walks the root chain of the medium in dir (bootstrap
// media or a repository) from trusted and returns its newest targets and
// their stable delegation.
func loadTargetsSource(trusted *tuf.Metadata[tuf.Root], dir string) (*targetsSource, error) {
	m, err := DetectMedium(dir)
	if err != nil {
		return nil, err
	}
	if m == MediumStable {
		return nil, fmt.Errorf("%s is stable media: %w", dir, ErrNoTargets)
	}
	root, t, err := trustedTargets(trusted, metadataDir(m, dir))
	if err != nil {
		return nil, err
	}
	d, _ := t.Signed.Delegation(stableset.StableRole)
	return &targetsSource{dir: dir, root: root, targets: t, deleg: d}, nil
}

// mediumState is what a medium's verified metadata say: the newest
// version of each top-level role it holds, the signed bytes of each, and
// the digest of the ledger its stable metadata binds (if any).
type mediumState struct {
	medium    Medium
	versions  map[string]int64
	signed    map[string][]byte
	ledger    [32]byte
	hasLedger bool
	// takedowns are the paths stable delegates to the takedown role.
	takedowns []string
}

// readState reads the newest root, targets, stable (and, in a
// repository, snapshot and timestamp) of the medium in dir, each checked
// against the keys its parent gives it from the trusted root (ts gives
// them for stable media). Expiry is not checked: a previous medium may
// well have expired.
func readState(m Medium, dir string, trusted *tuf.Metadata[tuf.Root], ts *targetsSource) (*mediumState, error) {
	s := &mediumState{medium: m, versions: map[string]int64{}, signed: map[string][]byte{}}
	md := metadataDir(m, dir)
	if m == MediumRotation {
		return s, s.rotation(md, trusted)
	}
	var deleg *tuf.DelegatedRole
	var keyring *tuf.Targets
	if m == MediumStable {
		if ts == nil {
			return nil, fmt.Errorf("%s: %w", dir, ErrNoTargets)
		}
		deleg, keyring = ts.deleg, &ts.targets.Signed
	} else {
		root, err := tuf.VerifyRootChain(trusted, md)
		if err != nil {
			return nil, err
		}
		if err := s.add(tuf.RoleRoot, root.Signed.Version, root.SignedBytes); err != nil {
			return nil, err
		}
		by, err := root.Signed.RoleKeys(tuf.RoleTargets)
		if err != nil {
			return nil, err
		}
		t, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, tuf.RoleTargets, by)
		if err != nil {
			return nil, err
		}
		if err := s.add(tuf.RoleTargets, n, t.SignedBytes); err != nil {
			return nil, err
		}
		d, ok := t.Signed.Delegation(stableset.StableRole)
		if !ok {
			return nil, fmt.Errorf("%s: %w", md, ErrNoTrustedTargets)
		}
		deleg, keyring = d, &t.Signed
		if m == MediumRepository {
			if err := s.online(md, root); err != nil {
				return nil, err
			}
		}
	}
	by := tuf.RoleKeys{Role: stableset.StableRole, KeyIDs: deleg.KeyIDs, Threshold: deleg.Threshold, Keys: keyring.Delegations.Keys}
	st, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by)
	if err != nil {
		return nil, err
	}
	if err := s.add(stableset.StableRole, n, st.SignedBytes); err != nil {
		return nil, err
	}
	s.takedowns = stableset.TakedownPaths(&st.Signed)
	for p, tf := range st.Signed.Targets {
		if strings.HasPrefix(p, "ledger/") {
			if _, err := hex.Decode(s.ledger[:], []byte(tf.Hashes["sha256"])); err != nil {
				return nil, fmt.Errorf("%s: ledger %s: %w", md, p, ErrMediumContent)
			}
			s.hasLedger = true
		}
	}
	return s, nil
}

// rotation reads a rotation medium's new metadata: its root (when it
// holds one) from the trusted root, which must be the root the rotation
// started from or one its chain reaches; its targets (when it holds one),
// signed by the targets keys of that root. A rotation medium holds no
// root chain before its own version, and no stable.
func (s *mediumState) rotation(md string, trusted *tuf.Metadata[tuf.Root]) error {
	root := trusted
	if roots, _ := filepath.Glob(filepath.Join(md, "*.root.json")); len(roots) > 0 {
		r, err := tuf.VerifyRootChain(trusted, md)
		if err != nil {
			return fmt.Errorf("the rotation's root from the trusted root v%d (give as --root the root the rotation started from): %w", trusted.Signed.Version, err)
		}
		if r.Signed.Version == trusted.Signed.Version {
			// Trusting the rotation's own root is trusting what it wrote
			// (VerifyRootChain compared the two); a medium whose roots
			// the chain does not reach is named.
			if _, err := os.Stat(filepath.Join(md, fmt.Sprintf("%d.root.json", r.Signed.Version))); err != nil {
				return fmt.Errorf("%s: the chain from the trusted root v%d reaches no root of the rotation (give as --root the root the rotation started from): %w", md, trusted.Signed.Version, tuf.ErrVersion)
			}
		}
		root = r
		if err := s.add(tuf.RoleRoot, r.Signed.Version, r.SignedBytes); err != nil {
			return err
		}
	}
	if ts, _ := filepath.Glob(filepath.Join(md, "*.targets.json")); len(ts) == 0 {
		return nil
	}
	by, err := root.Signed.RoleKeys(tuf.RoleTargets)
	if err != nil {
		return err
	}
	t, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, tuf.RoleTargets, by)
	if err != nil {
		return err
	}
	return s.add(tuf.RoleTargets, n, t.SignedBytes)
}

// online adds a repository's snapshot and timestamp, signed by the keys
// root gives them.
func (s *mediumState) online(md string, root *tuf.Metadata[tuf.Root]) error {
	b, err := os.ReadFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		return err
	}
	ts, err := tuf.Load[tuf.Timestamp](b, filepath.Join(md, "timestamp.json"))
	if err != nil {
		return err
	}
	by, err := root.Signed.RoleKeys(tuf.RoleTimestamp)
	if err != nil {
		return err
	}
	msg, err := ts.SignedBytes()
	if err != nil {
		return err
	}
	if _, err := by.Verify(msg, ts.Signatures); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(md, "timestamp.json"), err)
	}
	if err := s.add(tuf.RoleTimestamp, ts.Signed.Version, ts.SignedBytes); err != nil {
		return err
	}
	if by, err = root.Signed.RoleKeys(tuf.RoleSnapshot); err != nil {
		return err
	}
	snap, n, err := tuf.LoadNewest[tuf.Snapshot](os.DirFS(md), md, tuf.RoleSnapshot, by)
	if err != nil {
		return err
	}
	return s.add(tuf.RoleSnapshot, n, snap.SignedBytes)
}

func (s *mediumState) add(role string, version int64, signed func() ([]byte, error)) error {
	b, err := signed()
	if err != nil {
		return err
	}
	s.versions[role], s.signed[role] = version, b
	return nil
}

// monotonic compares the state of a medium with that of a previous one:
// no role's version may go back, and one version of a role must be one
// document.
func monotonic(cur, prev *mediumState, curDir, prevDir string) error {
	for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets, stableset.StableRole, tuf.RoleSnapshot, tuf.RoleTimestamp} {
		c, okc := cur.versions[role]
		p, okp := prev.versions[role]
		if !okc || !okp {
			continue
		}
		if c < p {
			return fmt.Errorf("%s version %d on %s goes back from version %d on the previous medium %s: %w", role, c, curDir, p, prevDir, ErrReplay)
		}
		if c == p && !bytes.Equal(cur.signed[role], prev.signed[role]) {
			return fmt.Errorf("%s version %d on %s differs from %s version %d on the previous medium %s: %w", role, c, curDir, role, p, prevDir, ErrFork)
		}
	}
	return nil
}
