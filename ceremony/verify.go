package ceremony

import (
	"fmt"
	"os"

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
