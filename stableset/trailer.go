package stableset

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// ExportTrailer is what an export's last line says of the export.
type ExportTrailer struct {
	Count  int64
	SHA256 [32]byte
}

// ReadExportTrailer reads the trailer line of an export file without
// reading the rest. It does not verify the digest: it is for naming an
// export that ExportReader has already read whole, e.g. in a signed diff.
func ReadExportTrailer(path string) (*ExportTrailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading export trailer: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading export trailer: %w", err)
	}
	const tail = 512
	off := max(st.Size()-tail, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading export trailer of %s: %w", path, err)
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	line := buf[bytes.LastIndexByte(buf, '\n')+1:]
	var t struct {
		Trailer *struct {
			Count  int64  `json:"count"`
			SHA256 string `json:"sha256"`
		} `json:"trailer"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || t.Trailer == nil {
		return nil, &ExportError{File: path, Field: "trailer", Err: ErrTruncated}
	}
	sum, err := hex.DecodeString(t.Trailer.SHA256)
	if err != nil || len(sum) != 32 {
		return nil, &ExportError{File: path, Field: "trailer.sha256", Err: ErrBadHash}
	}
	out := &ExportTrailer{Count: t.Trailer.Count}
	copy(out.SHA256[:], sum)
	return out, nil
}
