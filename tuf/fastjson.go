package tuf

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keyceremony/keyceremony/internal/hexsum"
)

// A fast path for hashed-bin metadata.
//
// A bin is targets metadata whose targets each have a length, a sha256
// and optionally a blake2b-256 hash, and no custom; it
// has no delegations. Millions of
// targets go through bins in a ceremony, so they are encoded and parsed
// here without reflection. AppendBinSigned produces exactly the bytes
// cjson.EncodeCanonical produces for the same Targets value (a property
// test and a fuzz target compare them); ParseBin accepts exactly what
// AppendBinFile writes and falls back to Load for anything else.

// BinTarget is one target of a bin.
type BinTarget struct {
	Path   string
	Length int64
	SHA256 [32]byte
	// BLAKE2b256 is listed as the "blake2b-256" hash when HasBLAKE2b is
	// true (PyPI names its files by it).
	BLAKE2b256 [32]byte
	HasBLAKE2b bool
}

// ErrNotBin means targets metadata is not a plain bin (it has
// delegations, custom data or hashes other than sha256).
var ErrNotBin = errors.New("not a hashed-bin role")

// AppendBinSigned appends the canonical JSON of the signed part of a bin to
// dst. targets must be sorted by path, strictly increasing in byte order;
// every path valid UTF-8 without control characters, every length
// non-negative.
func AppendBinSigned(dst []byte, version int64, expires Expiry, targets []BinTarget) ([]byte, error) {
	if version < 1 {
		return nil, fmt.Errorf("bin version %d: %w", version, ErrMalformed)
	}
	dst = append(dst, `{"_type":"targets","expires":"`...)
	dst = time2(dst, expires)
	dst = append(dst, `","spec_version":"`+SpecVersion+`","targets":{`...)
	for i := range targets {
		t := &targets[i]
		if i > 0 {
			if targets[i-1].Path >= t.Path {
				return nil, fmt.Errorf("target %q after %q: paths must be strictly increasing: %w", t.Path, targets[i-1].Path, ErrMalformed)
			}
			dst = append(dst, ',')
		}
		if t.Path == "" {
			return nil, fmt.Errorf("empty target path: %w", ErrMalformed)
		}
		if t.Length < 0 {
			return nil, fmt.Errorf("target %q: negative length: %w", t.Path, ErrMalformed)
		}
		var err error
		if dst, err = appendCanonicalString(dst, t.Path); err != nil {
			return nil, err
		}
		dst = append(dst, `:{"hashes":{`...)
		if t.HasBLAKE2b {
			dst = append(dst, `"blake2b-256":"`...)
			dst = hex.AppendEncode(dst, t.BLAKE2b256[:])
			dst = append(dst, `",`...)
		}
		dst = append(dst, `"sha256":"`...)
		dst = hex.AppendEncode(dst, t.SHA256[:])
		dst = append(dst, `"},"length":`...)
		dst = strconv.AppendInt(dst, t.Length, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `},"version":`...)
	dst = strconv.AppendInt(dst, version, 10)
	return append(dst, '}'), nil
}

func time2(dst []byte, e Expiry) []byte { return e.Time().UTC().AppendFormat(dst, expiryLayout) }

// appendCanonicalString writes s as cjson does: quoted, with only '\' and
// '"' escaped. Strings cjson would change (invalid UTF-8) or that would make
// the file invalid JSON (control characters) are refused.
func appendCanonicalString(dst []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("string %q is not valid UTF-8: %w", s, ErrMalformed)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20:
			return nil, fmt.Errorf("string %q has a control character: %w", s, ErrMalformed)
		case c == '\\' || c == '"':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), nil
}

// AppendBinFile appends the file form of a bin: the canonical JSON of the
// whole metadata (signatures, then the signed bytes as given) and a
// newline. The result is valid JSON that Load accepts.
func AppendBinFile(dst, signed []byte, sigs []Signature) []byte {
	dst = append(dst, `{"signatures":[`...)
	for i, s := range sigs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"keyid":"`...)
		dst = append(dst, s.KeyID...)
		dst = append(dst, `","sig":"`...)
		dst = append(dst, s.Sig...)
		dst = append(dst, `"}`...)
	}
	dst = append(dst, `],"signed":`...)
	dst = append(dst, signed...)
	return append(dst, "}\n"...)
}

// Bin is a parsed bin.
type Bin struct {
	Version     int64
	Expires     Expiry
	SpecVersion string
	// Targets are sorted by path. Parsed from the form AppendBinFile
	// writes, their paths are substrings of one copy of the file:
	// keeping a path keeps that copy (clone it to keep it alone).
	Targets    []BinTarget
	Signatures []Signature
	Signed     []byte // the canonical signed bytes, the message of the signatures
}

// ParseBin parses bin metadata. The form AppendBinFile writes is parsed
// directly, each part in the one form AppendBinSigned writes it (so the
// signed bytes are canonical without encoding them again); anything else
// goes through
// Load, so the same documents are accepted either way, and any error is a
// *LoadError. A valid targets document that is not a plain bin is refused
// with ErrNotBin.
func ParseBin(data []byte, name string) (*Bin, error) {
	if b, ok := parseBinFast(data); ok {
		return b, nil
	}
	m, err := Load[Targets](data, name)
	if err != nil {
		return nil, err
	}
	return binFromTargets(m, name)
}

func binFromTargets(m *Metadata[Targets], name string) (*Bin, error) {
	t := &m.Signed
	if t.Delegations != nil {
		return nil, &LoadError{File: name, Field: "signed.delegations", Err: ErrNotBin}
	}
	if t.SpecVersion != SpecVersion {
		return nil, &LoadError{File: name, Field: "signed.spec_version", Err: fmt.Errorf("%q, bins are written as %q: %w", t.SpecVersion, SpecVersion, ErrSpecVersion)}
	}
	b := &Bin{Version: t.Version, Expires: t.Expires, SpecVersion: t.SpecVersion, Signatures: m.Signatures}
	b.Targets = make([]BinTarget, 0, len(t.Targets))
	for p, tf := range t.Targets {
		b2, hasB2 := tf.Hashes["blake2b-256"]
		if n := len(tf.Hashes); len(tf.Custom) != 0 || tf.Hashes["sha256"] == "" || n > 2 || n == 2 && !hasB2 {
			return nil, &LoadError{File: name, Field: "signed.targets." + p, Err: fmt.Errorf("a bin target has length, sha256 and optionally blake2b-256 only: %w", ErrNotBin)}
		}
		bt := BinTarget{Path: p, Length: tf.Length, HasBLAKE2b: hasB2}
		if _, err := hex.Decode(bt.SHA256[:], []byte(tf.Hashes["sha256"])); err != nil {
			return nil, &LoadError{File: name, Field: "signed.targets." + p, Err: ErrMalformed}
		}
		if hasB2 {
			if n, err := hex.Decode(bt.BLAKE2b256[:], []byte(b2)); err != nil || n != 32 {
				return nil, &LoadError{File: name, Field: "signed.targets." + p + ".hashes.blake2b-256", Err: ErrMalformed}
			}
		}
		b.Targets = append(b.Targets, bt)
	}
	sort.Slice(b.Targets, func(i, j int) bool { return b.Targets[i].Path < b.Targets[j].Path })
	signed, err := AppendBinSigned(nil, b.Version, b.Expires, b.Targets)
	if err != nil {
		return nil, &LoadError{File: name, Err: err}
	}
	b.Signed = signed
	return b, nil
}

// Verify checks the bin's signatures against delegation d in parent.
func (b *Bin) Verify(parent *Targets, name string) error {
	return parent.VerifyDelegate(name, b.Signed, b.Signatures)
}

// binParser walks the exact form AppendBinFile writes.
type binParser struct {
	b []byte
	// s is b as one string, which str's strings without an escape are
	// substrings of (one allocation a bin, not one a target; see
	// Bin.Targets).
	s   string
	pos int
	ok  bool
}

func (p *binParser) lit(s string) {
	if p.ok && bytes.HasPrefix(p.b[p.pos:], []byte(s)) {
		p.pos += len(s)
		return
	}
	p.ok = false
}

// str reads a canonical string: only \\ and \" escapes.
func (p *binParser) str() string {
	if !p.ok || p.pos >= len(p.b) || p.b[p.pos] != '"' {
		p.ok = false
		return ""
	}
	p.pos++
	start := p.pos
	esc := false
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			raw := p.b[start:p.pos]
			p.pos++
			if !esc {
				if p.s != "" {
					return p.s[start : p.pos-1]
				}
				return string(raw)
			}
			out := make([]byte, 0, len(raw))
			for i := 0; i < len(raw); i++ {
				if raw[i] == '\\' {
					i++
				}
				out = append(out, raw[i])
			}
			return string(out)
		case c == '\\':
			if p.pos+1 >= len(p.b) || (p.b[p.pos+1] != '\\' && p.b[p.pos+1] != '"') {
				p.ok = false
				return ""
			}
			esc = true
			p.pos += 2
		case c < 0x20:
			p.ok = false
			return ""
		default:
			p.pos++
		}
	}
	p.ok = false
	return ""
}

func (p *binParser) hex32(dst *[32]byte) {
	if !p.ok || p.pos+64 > len(p.b) {
		p.ok = false
		return
	}
	// One pass through a table (lowercase hex only): each bin lists
	// two of these a target.
	if !hexsum.Decode(dst, p.b[p.pos:p.pos+64], &hexsum.Lower) {
		p.ok = false
		return
	}
	p.pos += 64
}

// int reads a non-negative int64 in the one form strconv.AppendInt
// writes it: digits, no leading zero but in "0", no overflow (without
// the string ParseInt and FormatInt would make of each length).
func (p *binParser) int() int64 {
	start := p.pos
	var v int64
	for p.ok && p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
		d := int64(p.b[p.pos] - '0')
		if v > (math.MaxInt64-d)/10 {
			p.ok = false
			return 0
		}
		v = v*10 + d
		p.pos++
	}
	if n := p.pos - start; !p.ok || n == 0 || n > 1 && p.b[start] == '0' {
		p.ok = false
	}
	return v
}

func (p *binParser) peek(c byte) bool { return p.ok && p.pos < len(p.b) && p.b[p.pos] == c }

func parseBinFast(data []byte) (*Bin, bool) {
	p := &binParser{b: data, s: string(data), ok: true}
	b := &Bin{}
	p.lit(`{"signatures":[`)
	for p.ok && !p.peek(']') {
		if len(b.Signatures) > 0 {
			p.lit(",")
		}
		p.lit(`{"keyid":`)
		id := p.str()
		p.lit(`,"sig":`)
		sig := p.str()
		p.lit("}")
		// Copied: a caller keeps the key ids that signed (an audit's
		// report), which as substrings would keep the whole bin.
		b.Signatures = append(b.Signatures, Signature{KeyID: strings.Clone(id), Sig: strings.Clone(sig)})
	}
	p.lit(`],"signed":`)
	start := p.pos
	p.lit(`{"_type":"targets","expires":`)
	exp := p.str()
	p.lit(`,"spec_version":"` + SpecVersion + `","targets":{`)
	n := bytes.Count(data[p.pos:], []byte(`:{"hashes":{"`))
	b.Targets = make([]BinTarget, 0, n)
	for p.ok && !p.peek('}') {
		if len(b.Targets) > 0 {
			p.lit(",")
		}
		var t BinTarget
		t.Path = p.str()
		// What AppendBinSigned refuses or would write otherwise: an
		// empty path, one out of strictly increasing order, invalid
		// UTF-8 (str takes only the escapes it writes, \\ and \").
		if n := len(b.Targets); t.Path == "" || n > 0 && b.Targets[n-1].Path >= t.Path || !utf8.ValidString(t.Path) {
			return nil, false
		}
		p.lit(`:{"hashes":{"`)
		if t.HasBLAKE2b = p.peek('b'); t.HasBLAKE2b {
			p.lit(`blake2b-256":"`)
			p.hex32(&t.BLAKE2b256)
			p.lit(`","`)
		}
		p.lit(`sha256":"`)
		p.hex32(&t.SHA256)
		p.lit(`"},"length":`)
		t.Length = p.int()
		p.lit("}")
		b.Targets = append(b.Targets, t)
	}
	p.lit(`},"version":`)
	b.Version = p.int()
	p.lit("}")
	end := p.pos
	p.lit("}\n")
	if !p.ok || p.pos != len(data) {
		return nil, false
	}
	var e Expiry
	if err := e.UnmarshalJSON([]byte(`"` + exp + `"`)); err != nil {
		return nil, false
	}
	b.Expires, b.SpecVersion = e, SpecVersion
	for _, s := range b.Signatures {
		if !keyIDRE.MatchString(s.KeyID) || len(s.Sig) == 0 || len(s.Sig)%2 != 0 || !hexRE.MatchString(s.Sig) {
			return nil, false
		}
	}
	if b.Version < 1 {
		return nil, false
	}
	// Every part of the signed bytes was read in the exact form
	// AppendBinSigned writes (the literals, each string, hash, length and
	// the version in their one form, the paths in order, the expiry
	// formatted again by UnmarshalJSON): they are its bytes, which
	// FuzzParseBin and TestParseBinCanonical hold, without encoding
	// the bin again.
	b.Signed = data[start:end:end]
	return b, true
}
