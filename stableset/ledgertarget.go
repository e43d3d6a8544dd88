package stableset

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/tuf"
)

// LedgerTarget returns the ledger stable m binds: its one target under
// ledger/, named ledger/<N>.ledger, and N, the stable version of the
// ceremony that wrote the ledger. N is m's own version, or an earlier one
// when stable was signed again without a ceremony: a stable key rotation
// re-signs stable at version+1 with the new keys over the same ledger
// and bins (docs/runbook-incident.md). A stable that lists no ledger
// (the bootstrap's empty stable) gives ok false; one that lists two, or
// a ledger named otherwise or after its own version, is an error
// wrapping ErrPublished.
func LedgerTarget(m *tuf.Metadata[tuf.Targets]) (path string, n int64, tf tuf.TargetFile, ok bool, err error) {
	for p, t := range m.Signed.Targets {
		if !strings.HasPrefix(p, ledgerDir+"/") {
			continue
		}
		if path != "" {
			a, b := path, p
			if b < a {
				a, b = b, a
			}
			return "", 0, tuf.TargetFile{}, false, fmt.Errorf("stable v%d lists two ledgers, %s and %s: %w", m.Signed.Version, a, b, ErrPublished)
		}
		path, tf = p, t
	}
	if path == "" {
		return "", 0, tuf.TargetFile{}, false, nil
	}
	s, _ := strings.CutPrefix(path, ledgerDir+"/")
	s, cut := strings.CutSuffix(s, ".ledger")
	v, perr := strconv.ParseInt(s, 10, 64)
	digits := s != "" && s[0] != '0' && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if !cut || !digits || perr != nil || v > m.Signed.Version {
		return "", 0, tuf.TargetFile{}, false, fmt.Errorf("stable v%d lists ledger %q: want ledger/<N>.ledger, N a stable version up to %d: %w", m.Signed.Version, path, m.Signed.Version, ErrPublished)
	}
	return path, v, tf, true, nil
}
