package ceremony

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/tuf"
)

// The files bootstrap media may hold: transcript.jsonl, its signed end
// transcript.dsse.json, runsheet.md and the medium's marker
// (and SHA256SUMS, written after the read-back, which verify requires);
// metadata/<version>.<root|targets|stable>.json; and keys/ holding
// <role>-<serial>-<slot>.pub.json with its .attestation.pem.
var (
	bootTopFiles = []string{JournalFile, JournalEnvelopeFile, "runsheet.md", MarkerFile}
	bootMetaFile = regexp.MustCompile(`^[1-9][0-9]{0,18}\.(root|targets|stable)\.json$`)
	bootKeyFile  = regexp.MustCompile(`^(root|targets|stable)-[0-9]{1,10}-[0-9a-f]{2}\.(pub\.json|attestation\.pem)$`)
	bootRequired = []string{JournalFile, JournalEnvelopeFile, "runsheet.md", MarkerFile, "metadata/1.root.json", "metadata/1.targets.json", "metadata/1.stable.json"}
)

// listBootstrapMedium refuses, with ErrUnexpectedFile, anything in dir a
// bootstrap does not write (a link, a stray file or directory), and,
// with tuf.ErrMissing, a missing file of bootRequired. It returns the
// number of files.
func listBootstrapMedium(dir string) (int, error) {
	var files []string
	err := walkMedium(dir, "bootstrap media do", func(parent, base string, isDir, isFile bool) bool {
		ok := false
		switch parent {
		case "":
			ok = (isDir && (base == "metadata" || base == "keys")) || (isFile && (slices.Contains(bootTopFiles, base) || base == SumsFile))
		case "metadata/":
			ok = isFile && bootMetaFile.MatchString(base)
		case "keys/":
			ok = isFile && bootKeyFile.MatchString(base)
		}
		if ok && isFile {
			files = append(files, parent+base)
		}
		return ok
	})
	if err != nil {
		return 0, err
	}
	for _, f := range bootRequired {
		if !slices.Contains(files, f) {
			return 0, fmt.Errorf("%s is missing: bootstrap media hold %s and the keys' files: %w", f, strings.Join(bootRequired, ", "), tuf.ErrMissing)
		}
	}
	return len(files), nil
}
