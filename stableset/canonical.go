package stableset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ErrCanonicalDiff is wrapped by every refusal of a canonical diff file.
var ErrCanonicalDiff = errors.New("not a canonical diff")

// canonicalHeaderLines is how many lines the canonical header has.
const canonicalHeaderLines = 6

// CanonicalDigest recomputes a diff's digest from its canonical form (as
// Diff.WriteCanonical writes it and docs/stable-pipeline.md defines it),
// so that an auditor can check the digest a signed diff names without the
// export. Entries must come in canonical order.
func CanonicalDigest(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	top := sha256.New()
	n := 0
	for n < canonicalHeaderLines && sc.Scan() {
		n++
		top.Write(sc.Bytes())
		top.Write([]byte{'\n'})
	}
	if n != canonicalHeaderLines {
		return "", fmt.Errorf("header has %d lines, want %d: %w", n, canonicalHeaderLines, ErrCanonicalDiff)
	}
	var chunk hash.Hash = sha256.New()
	cur := 0
	var last []byte
	flushTo := func(b int) {
		for cur < b {
			top.Write(chunk.Sum(nil))
			chunk = sha256.New()
			cur++
			last = last[:0]
		}
	}
	for sc.Scan() {
		n++
		line := sc.Bytes()
		f := bytes.SplitN(line, []byte{'\t'}, 4)
		if len(f) < 4 {
			return "", fmt.Errorf("line %d: too few fields: %w", n, ErrCanonicalDiff)
		}
		path := f[2]
		sum := sha256.Sum256(path)
		b := int(sum[0])
		if b < cur || (b == cur && last != nil && len(last) > 0 && bytes.Compare(path, last) <= 0) {
			return "", fmt.Errorf("line %d: %s out of canonical order: %w", n, path, ErrCanonicalDiff)
		}
		flushTo(b)
		chunk.Write(line)
		chunk.Write([]byte{'\n'})
		last = append(last[:0], path...)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("line %d: %v: %w", n+1, err, ErrCanonicalDiff)
	}
	flushTo(numBuckets)
	return hex.EncodeToString(top.Sum(nil)), nil
}
