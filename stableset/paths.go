package stableset

// LedgerPattern is the delegation path pattern that covers the ledger the
// stable role binds as its one target (ledger/<version>.ledger). Only
// stable is delegated it: the online role cannot list a ledger.
const LedgerPattern = "ledger/*"

// StablePaths returns the paths the stable role is delegated: the
// repository's target path shapes and the ledger.
func StablePaths(targetPaths []string) []string {
	out := append([]string(nil), targetPaths...)
	for _, p := range out {
		if p == LedgerPattern {
			return out
		}
	}
	return append(out, LedgerPattern)
}
