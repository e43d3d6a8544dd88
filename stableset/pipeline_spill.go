package stableset

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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

type spillReader struct {
	br  *bufio.Reader
	buf []byte
}

func (s *spillReader) str() (string, error) {
	n, err := binary.ReadUvarint(s.br)
	if err != nil {
		return "", err
	}
	if n > 1<<20 {
		return "", errSpill
	}
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.br, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// next reads one record, io.EOF at the end.
func (s *spillReader) next(r *spillRec) error {
	kind, err := s.br.ReadByte()
	if err != nil {
		return err
	}
	*r = spillRec{Kind: kind}
	if r.Hold, err = s.br.ReadByte(); err != nil {
		return errSpill
	}
	if r.Path, err = s.str(); err != nil {
		return errSpill
	}
	if r.Project, err = s.str(); err != nil {
		return errSpill
	}
	if kind == spillGone {
		return nil
	}
	if kind != spillNew {
		return errSpill
	}
	if r.Version, err = s.str(); err != nil {
		return errSpill
	}
	if r.Filename, err = s.str(); err != nil {
		return errSpill
	}
	if r.Reason, err = s.str(); err != nil {
		return errSpill
	}
	l, err := binary.ReadUvarint(s.br)
	if err != nil {
		return errSpill
	}
	r.Length = int64(l)
	if _, err := io.ReadFull(s.br, r.SHA256[:]); err != nil {
		return errSpill
	}
	if r.UploadTime, err = binary.ReadVarint(s.br); err != nil {
		return errSpill
	}
	flags, err := s.br.ReadByte()
	if err != nil {
		return errSpill
	}
	r.Yanked, r.HasCore = flags&1 != 0, flags&2 != 0
	if r.YankedReason, err = s.str(); err != nil {
		return errSpill
	}
	if r.RequiresPython, err = s.str(); err != nil {
		return errSpill
	}
	if r.HasCore {
		if _, err := io.ReadFull(s.br, r.CoreSHA256[:]); err != nil {
			return errSpill
		}
	}
	return nil
}

// readSpill reads a whole spill file.
func readSpill(path string) ([]spillRec, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	sr := &spillReader{br: bufio.NewReaderSize(f, 256<<10)}
	var out []spillRec
	for {
		var r spillRec
		if err := sr.next(&r); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, fmt.Errorf("reading %s: %w", path, errSpill)
		}
		out = append(out, r)
	}
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
