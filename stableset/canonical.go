package stableset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrCanonicalDiff is wrapped by every refusal of a canonical diff file.
var ErrCanonicalDiff = errors.New("not a canonical diff")

// canonicalHeaderLines is how many lines the canonical header has.
const canonicalHeaderLines = 6

// canonicalMagic is the canonical form's first line.
const canonicalMagic = "keyceremony-stable-diff 2"

// CanonicalDigest recomputes a diff's digest from its canonical form (as
// Diff.WriteCanonical writes it and docs/stable-pipeline.md defines it),
// so that an auditor can check the digest a signed diff names without the
// export: the SHA-256 of the whole form, after checking that it is one:
// the version 2 header, then lines of eight tab-separated fields whose
// paths strictly increase.
func CanonicalDigest(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	h := sha256.New()
	n := 0
	for n < canonicalHeaderLines && sc.Scan() {
		n++
		if n == 1 && sc.Text() != canonicalMagic {
			return "", fmt.Errorf("line 1 is %s, want %q: %w", snippet(sc.Bytes()), canonicalMagic, ErrCanonicalDiff)
		}
		h.Write(sc.Bytes())
		h.Write([]byte{'\n'})
	}
	if n != canonicalHeaderLines {
		return "", fmt.Errorf("header has %d lines, want %d: %w", n, canonicalHeaderLines, ErrCanonicalDiff)
	}
	var last []byte
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if bytes.Count(line, []byte{'\t'}) != 7 {
			return "", fmt.Errorf("line %d: want 8 fields: %w", n, ErrCanonicalDiff)
		}
		f := bytes.SplitN(line, []byte{'\t'}, 4)
		path := f[2]
		if last != nil && bytes.Compare(path, last) <= 0 {
			return "", fmt.Errorf("line %d: %s out of canonical order: %w", n, path, ErrCanonicalDiff)
		}
		h.Write(line)
		h.Write([]byte{'\n'})
		last = append(last[:0], path...)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("line %d: %w: %w", n+1, err, ErrCanonicalDiff)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// snippet quotes at most 40 bytes of b for an error message.
func snippet(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "…"
	}
	return strconv.Quote(string(b))
}
