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
	"strings"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
)

// ErrCanonicalDiff is wrapped by every refusal of a canonical diff file.
var ErrCanonicalDiff = errors.New("not a canonical diff")

// canonicalMagic is the canonical form's first line.
const canonicalMagic = "keyceremony-stable-diff 4"

// canonicalKeys are the header lines after the first, in order.
var canonicalKeys = []string{"repository", "listing-time", "previous-stable-version", "previous-ledger-sha256", "stable-version", "policy-sha256", "target-mode", "naming"}

// Canonical is what ParseCanonical read from a canonical diff: its
// digest, the header's values, the decisions, and the entries counted by
// category and reason.
type Canonical struct {
	Digest    string            // hex SHA-256 of the whole form
	Header    map[string]string // by key: "repository", "policy-sha256", …
	Decisions []decisions.Decision
	// Reasons counts the file entries (packages/…, not simple/…) by
	// category and reason, in the order Diff.Reasons has; Pages counts
	// the page entries by category.
	Reasons []ReasonCount
	Pages   map[Category]int64
	// Expedited are the files added because the policy expedites them
	// (reason "expedited"), by path, with the SHA-256 added.
	Expedited []ExpeditedEntry
}

// ExpeditedEntry is an expedited file of a canonical diff.
type ExpeditedEntry struct {
	Path   string
	SHA256 string // hex
}

// CanonicalDigest recomputes a diff's digest from its canonical form (as
// Diff.WriteCanonical writes it and docs/stable-pipeline.md defines it);
// see ParseCanonical.
func CanonicalDigest(r io.Reader) (string, error) {
	c, err := ParseCanonical(r)
	if err != nil {
		return "", err
	}
	return c.Digest, nil
}

// ParseCanonical reads a canonical diff so that an auditor can check a
// signed diff without the export: the digest is the SHA-256 of the whole
// form, after checking that it is one: the version 4 header (nine
// lines, the target mode and naming layout last), "decisions N" and N decision lines in canonical order, then
// lines of eight tab-separated fields whose paths strictly increase.
func ParseCanonical(r io.Reader) (*Canonical, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	h := sha256.New()
	c := &Canonical{Header: map[string]string{}, Pages: map[Category]int64{}}
	n := 0
	next := func() bool {
		if !sc.Scan() {
			return false
		}
		n++
		h.Write(sc.Bytes())
		h.Write([]byte{'\n'})
		return true
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("line %d: %s: %w", n, fmt.Sprintf(format, args...), ErrCanonicalDiff)
	}
	if !next() {
		return nil, fmt.Errorf("empty: %w", ErrCanonicalDiff)
	}
	if sc.Text() != canonicalMagic {
		return nil, bad("%s, want %q", snippet(sc.Bytes()), canonicalMagic)
	}
	for _, k := range canonicalKeys {
		if !next() {
			return nil, fmt.Errorf("header has %d lines, want %d: %w", n, len(canonicalKeys)+1, ErrCanonicalDiff)
		}
		v, ok := strings.CutPrefix(sc.Text(), k+" ")
		if !ok {
			return nil, bad("%s, want %q", snippet(sc.Bytes()), k+" …")
		}
		c.Header[k] = v
		if k == "target-mode" && v != string(policy.ModeFilesPages) && v != string(policy.ModePages) ||
			k == "naming" && v != string(policy.NamingPEP458) && v != string(policy.NamingWarehouse) {
			return nil, bad("%s %s is not a known value", k, snippet([]byte(v)))
		}
	}
	if !next() {
		return nil, fmt.Errorf("no decisions line: %w", ErrCanonicalDiff)
	}
	ns, ok := strings.CutPrefix(sc.Text(), "decisions ")
	nd, err := strconv.Atoi(ns)
	if !ok || err != nil || nd < 0 || strconv.Itoa(nd) != ns || nd > decisions.MaxDecisions {
		return nil, bad("%s, want \"decisions N\"", snippet(sc.Bytes()))
	}
	var prev string
	for i := 0; i < nd; i++ {
		if !next() {
			return nil, fmt.Errorf("%d of %d decision lines: %w", i, nd, ErrCanonicalDiff)
		}
		d, err := decisions.ParseLine(sc.Text())
		if err != nil {
			return nil, bad("decision: %v", err)
		}
		if i > 0 && decisions.SortKey(&d) <= prev {
			return nil, bad("decision out of canonical order")
		}
		prev = decisions.SortKey(&d)
		c.Decisions = append(c.Decisions, d)
	}
	var rc reasonCounts
	var last []byte
	for next() {
		line := sc.Bytes()
		if bytes.Count(line, []byte{'\t'}) != 7 {
			return nil, bad("want 8 fields")
		}
		f := bytes.SplitN(line, []byte{'\t'}, 4)
		path := f[2]
		if last != nil && bytes.Compare(path, last) <= 0 {
			return nil, bad("%s out of canonical order", snippet(path))
		}
		last = append(last[:0], path...)
		cat, reason := Category(f[0]), string(f[1])
		if reason == "-" {
			reason = ""
		}
		if bytes.HasPrefix(path, []byte(pagesPrefix)) {
			c.Pages[cat]++
		} else {
			rc.add(cat, reason)
		}
		if cat == Added && reason == ReasonExpedited {
			f := bytes.Split(line, []byte{'\t'})
			c.Expedited = append(c.Expedited, ExpeditedEntry{Path: string(path), SHA256: string(f[7])})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w: %w", n+1, err, ErrCanonicalDiff)
	}
	c.Digest = hex.EncodeToString(h.Sum(nil))
	c.Reasons = rc.sorted()
	return c, nil
}

// snippet quotes at most 40 bytes of b for an error message.
func snippet(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "…"
	}
	return strconv.Quote(string(b))
}
