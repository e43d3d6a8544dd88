package stableset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Spill records: the compact binary form records take between the phases
// of the pipeline (see pipeline.go). They live only in the pipeline's
// temporary work directory.

const (
	spillNew  = 'N' // a record of the export
	spillGone = 'G' // a path of the previous ledger missing from the export
)

// Hold codes kept in spill records; the text is in holdText.
const (
	holdNone uint8 = iota
	holdPolicy
	holdBackdated
	holdRelisted
)

// spillRec is one spilled record.
type spillRec struct {
	Kind           byte
	Hold           uint8
	Path           string
	Project        string
	Version        string
	Filename       string
	Reason         string // the policy's hold reason when Hold is holdPolicy
	Length         int64
	SHA256         [32]byte
	UploadTime     int64
	Yanked         bool
	YankedReason   string
	RequiresPython string
	CoreSHA256     [32]byte
	HasCore        bool
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (r *spillRec) append(b []byte) []byte {
	b = append(b, r.Kind, r.Hold)
	b = appendStr(b, r.Path)
	b = appendStr(b, r.Project)
	if r.Kind == spillGone {
		return b
	}
	b = appendStr(b, r.Version)
	b = appendStr(b, r.Filename)
	b = appendStr(b, r.Reason)
	b = binary.AppendUvarint(b, uint64(r.Length))
	b = append(b, r.SHA256[:]...)
	b = binary.AppendVarint(b, r.UploadTime)
	var flags byte
	if r.Yanked {
		flags |= 1
	}
	if r.HasCore {
		flags |= 2
	}
	b = append(b, flags)
	b = appendStr(b, r.YankedReason)
	b = appendStr(b, r.RequiresPython)
	if r.HasCore {
		b = append(b, r.CoreSHA256[:]...)
	}
	return b
}

var errSpill = errors.New("corrupt spill file")

// readFileString reads a whole file into one string, so that what is
// parsed out of it can be substrings: one allocation per file, not one per
// field. A missing file is empty.
func readFileString(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	defer f.Close()
	var sb strings.Builder
	if st, err := f.Stat(); err == nil {
		sb.Grow(int(st.Size()))
	}
	if _, err := io.Copy(&sb, f); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// spillDec decodes spill records from a string.
type spillDec struct {
	s   string
	i   int
	bad bool
}

func (d *spillDec) uvarint() uint64 {
	var x uint64
	var sh uint
	for k := 0; k < 10 && d.i < len(d.s); k++ {
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			return x | uint64(c)<<sh
		}
		x |= uint64(c&0x7f) << sh
		sh += 7
	}
	d.bad = true
	return 0
}

func (d *spillDec) byte() byte {
	if d.i >= len(d.s) {
		d.bad = true
		return 0
	}
	d.i++
	return d.s[d.i-1]
}

func (d *spillDec) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)-d.i) {
		d.bad = true
		return ""
	}
	v := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return v
}

func (d *spillDec) sum(dst *[32]byte) {
	if len(d.s)-d.i < 32 {
		d.bad = true
		return
	}
	copy(dst[:], d.s[d.i:d.i+32])
	d.i += 32
}

func (d *spillDec) next(r *spillRec) {
	*r = spillRec{Kind: d.byte(), Hold: d.byte()}
	r.Path = d.str()
	r.Project = d.str()
	if r.Kind == spillGone {
		return
	}
	if r.Kind != spillNew {
		d.bad = true
		return
	}
	r.Version = d.str()
	r.Filename = d.str()
	r.Reason = d.str()
	r.Length = int64(d.uvarint())
	d.sum(&r.SHA256)
	u := d.uvarint()
	r.UploadTime = int64(u>>1) ^ -int64(u&1)
	flags := d.byte()
	r.Yanked, r.HasCore = flags&1 != 0, flags&2 != 0
	r.YankedReason = d.str()
	r.RequiresPython = d.str()
	if r.HasCore {
		d.sum(&r.CoreSHA256)
	}
}

// readSpill reads a whole spill file.
func readSpill(path string) ([]spillRec, error) {
	data, err := readFileString(path)
	if err != nil {
		return nil, err
	}
	// Count first: growing a slice of these records costs more than
	// decoding them twice.
	d := &spillDec{s: data}
	n := 0
	var tmp spillRec
	for d.i < len(d.s) && !d.bad {
		d.next(&tmp)
		n++
	}
	out := make([]spillRec, n)
	d = &spillDec{s: data, bad: d.bad}
	for k := 0; k < n && !d.bad; k++ {
		d.next(&out[k])
	}
	if d.bad {
		return nil, fmt.Errorf("reading %s: %w", path, errSpill)
	}
	return out, nil
}

func (r *spillRec) pageFile() (PageFile, error) {
	u, err := FileURL("", r.Path)
	if err != nil {
		return PageFile{}, err
	}
	pf := PageFile{
		Filename: r.Filename, Version: r.Version, URL: u, SHA256: r.SHA256,
		RequiresPython: r.RequiresPython, Yanked: r.Yanked, YankedReason: r.YankedReason,
		CoreMetadataSHA256: r.CoreSHA256, HasCoreMetadata: r.HasCore, Size: r.Length,
	}
	if r.UploadTime != 0 {
		pf.UploadTime = time.Unix(r.UploadTime, 0).UTC()
	}
	return pf, nil
}
