package export

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"testing"
)

// TestExportReaderTrailer: after io.EOF the reader reports the verified
// trailer, whose digest is the SHA-256 of every line before it.
func TestExportReaderTrailer(t *testing.T) {
	data, err := os.ReadFile("testdata/small.export.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewReader(bytes.NewReader(data), "small")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Trailer(); ok {
		t.Fatal("a trailer before the end")
	}
	n := int64(0)
	for {
		_, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	tr, ok := x.Trailer()
	body := data[:bytes.LastIndex(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))+1]
	if !ok || tr.Count != n || tr.SHA256 != sha256.Sum256(body) {
		t.Fatalf("trailer %+v ok=%v, want count %d", tr, ok, n)
	}
}
