package ceremony

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keyceremony/keyceremony/tuf"
)

// LoadTrustedRoot reads the root metadata a command is told to trust
// (for example 1.root.json from the bootstrap media, compared out of
// band). It is parsed strictly; its signatures are checked by whatever
// walks the root chain from it.
func LoadTrustedRoot(path string) (*tuf.Metadata[tuf.Root], error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the trusted root: %w", err)
	}
	return tuf.Load[tuf.Root](data, path)
}

// Verify checks the repository in dir (a directory holding metadata/, or
// the metadata directory itself) from the trusted root in rootFile, with
// expiries checked at the time at: the root chain, every role's
// signatures and threshold, versions against snapshot, lengths and
// hashes, and the delegations down to every stable bin. The report says
// what was checked.
func Verify(rootFile, dir string, at time.Time) (*tuf.Report, error) {
	trusted, err := LoadTrustedRoot(rootFile)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(dir, "metadata")); err == nil && st.IsDir() {
		dir = filepath.Join(dir, "metadata")
	}
	return tuf.VerifyRepository(trusted, dir, tuf.VerifyOptions{At: at})
}
