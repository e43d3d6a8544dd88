package delegation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/export"
)

// ErrPrivateKey: a developer's key file is not one unencrypted PKCS#8
// ed25519 or ECDSA P-256 private key in PEM, as openssl genpkey writes.
var ErrPrivateKey = errors.New("not a developer private key")

// maxKeyFile bounds a key file: a PKCS#8 P-256 key in PEM is under 300
// bytes.
const maxKeyFile = 64 << 10

// LoadPrivateKey reads the developer's private key from the PEM file at
// path (ParsePrivateKey). The key stays in this process's memory; no
// error quotes the file's contents.
func LoadPrivateKey(path string) (keys.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("developer key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("developer key %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: more than %d bytes, not a key file: %w", path, maxKeyFile, ErrPrivateKey)
	}
	return ParsePrivateKey(data, path)
}

// ParsePrivateKey parses data (the file name, for errors) as exactly one
// PEM block "PRIVATE KEY" holding an unencrypted PKCS#8 ed25519 or ECDSA
// P-256 key, as `openssl genpkey -algorithm ed25519` or `-algorithm EC
// -pkeyopt ec_paramgen_curve:P-256` writes it, and nothing else but
// white space around it. Anything else (an encrypted key, a public key, an
// RSA key, another curve, an OpenSSH or SEC 1 key) is refused with
// ErrPrivateKey, naming the file and what it holds; no error quotes the
// file's bytes.
func ParsePrivateKey(data []byte, name string) (keys.Signer, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w", name, fmt.Sprintf(format, args...), ErrPrivateKey)
	}
	const want = "want an unencrypted PKCS#8 ed25519 or ECDSA P-256 private key (BEGIN PRIVATE KEY), as openssl genpkey writes"
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fail("no PEM block; %s", want)
	}
	defer clear(block.Bytes)
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN ")) {
		return nil, fail("text before the PEM block (%s); want the one key alone", blockName(block.Type))
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fail("more after the first PEM block (%s); want the one key alone", blockName(block.Type))
	}
	switch block.Type {
	case "PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		return nil, fail("an encrypted private key, which keyceremony cannot decrypt; %s", want)
	case "PUBLIC KEY":
		return nil, fail("a public key, but the proof needs the private key: %s", want)
	case "RSA PRIVATE KEY":
		return nil, fail("an RSA private key; %s", want)
	case "EC PRIVATE KEY":
		return nil, fail("an EC private key in SEC 1 form; %s (openssl pkey converts it)", want)
	case "OPENSSH PRIVATE KEY":
		return nil, fail("an OpenSSH private key; %s", want)
	default:
		return nil, fail("a PEM block %s; %s", blockName(block.Type), want)
	}
	if len(block.Headers) != 0 {
		return nil, fail("a PEM block with headers (an encrypted legacy key?); %s", want)
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fail("the PRIVATE KEY block is not PKCS#8 keyceremony can read; %s", want)
	}
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		return keys.NewMemorySigner(p)
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, fail("an ECDSA key on curve %s; %s", p.Curve.Params().Name, want)
		}
		return keys.NewMemorySigner(p)
	case *rsa.PrivateKey:
		return nil, fail("an RSA private key; %s", want)
	default:
		return nil, fail("a private key of type %T; %s", priv, want)
	}
}

// blockName quotes a PEM block type, at most 40 bytes of it.
func blockName(t string) string {
	if len(t) > 40 {
		return strconv.Quote(t[:40]) + "…"
	}
	return strconv.Quote(t)
}

// entryJSON is one element of a policy's delegations[].keys[].
type entryJSON struct {
	Key   *keys.Key       `json:"key"`
	Proof json.RawMessage `json:"proof"`
}

// Prove makes what a developer pastes into the policy's
// delegations[].keys[] for p (whose KeyID, if empty, is s's key id): the
// key in TUF form and its proof of possession (SignProof), as one JSON
// object, indented, ending in a newline. The repository must be given,
// the project PEP 503-normalised and the stable version at least 1, as
// the ceremony's check will want them.
func Prove(s keys.Signer, p Proof) ([]byte, error) {
	if p.Repository == "" || strings.ContainsFunc(p.Repository, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("repository %s: want the repository's name, such as pypi: %w", strconv.Quote(p.Repository), ErrProof)
	}
	if err := export.CheckProject(p.Project); err != nil {
		return nil, fmt.Errorf("project: %w: %w", err, ErrProof)
	}
	if p.StableVersion < 1 {
		return nil, fmt.Errorf("stable version %d: want the version the ceremony signs (the published stable's plus one), at least 1: %w", p.StableVersion, ErrProof)
	}
	if p.KeyID == "" {
		p.KeyID = s.Key().ID()
	}
	proof, err := SignProof(s, p)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(entryJSON{Key: s.Key(), Proof: proof}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
