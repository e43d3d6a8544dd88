package ceremony

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/blake2b"
)

// demoFile is one distribution file of the demo's built-in repository.
// Its content is real, so a TUF client can download and check it.
type demoFile struct {
	Project, Version, Filename string
	Age                        time.Duration // how long ago it was uploaded
	RequiresPython             string
	Yanked                     string // reason; empty if not yanked
}

const day = 24 * time.Hour

// demoFiles is a small repository: old releases that become stable, young
// ones that stay with unstable, a yanked file and a project whose newest
// release is too young.
var demoFiles = []demoFile{
	{"foobar", "1.0", "foobar-1.0.tar.gz", 900 * day, ">=3.7", ""},
	{"foobar", "2.0", "foobar-2.0.tar.gz", 200 * day, ">=3.8", ""},
	{"foobar", "2.0", "foobar-2.0-py3-none-any.whl", 200 * day, ">=3.8", ""},
	{"foobar", "2.0.1", "foobar-2.0.1.tar.gz", 5 * day, ">=3.8", ""},
	{"foobar", "2.0.1", "foobar-2.0.1-py3-none-any.whl", 5 * day, ">=3.8", ""},
	{"sampleproject", "3.0.0", "sampleproject-3.0.0.tar.gz", 400 * day, ">=3.8", ""},
	{"sampleproject", "3.0.0", "sampleproject-3.0.0-py3-none-any.whl", 400 * day, ">=3.8", ""},
	{"sampleproject", "4.0.0", "sampleproject-4.0.0.tar.gz", 120 * day, ">=3.9", "broken build"},
	{"tiny-lib", "0.1", "tiny_lib-0.1-py2.py3-none-any.whl", 3000 * day, "", ""},
	{"brand-new", "0.0.1", "brand_new-0.0.1.tar.gz", 2 * day, ">=3.12", ""},
}

// content is the file's bytes: deterministic, different for every file.
func (f demoFile) content() []byte {
	return []byte(strings.Repeat(fmt.Sprintf("demo distribution %s of %s %s\n", f.Filename, f.Project, f.Version), 8))
}

// targetPath is the file's path on PyPI's file host, derived from the
// BLAKE2b-256 digest of its content.
func (f demoFile) targetPath() string {
	sum := blake2b.Sum256(f.content())
	h := hex.EncodeToString(sum[:])
	return fmt.Sprintf("packages/%s/%s/%s/%s", h[0:2], h[2:4], h[4:], f.Filename)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
