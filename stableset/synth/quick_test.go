package synth

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset"
)

func TestQuick(t *testing.T) {
	var buf bytes.Buffer
	t0 := time.Now()
	if err := Generate(&buf, Params{Seed: 1, Files: 200000}); err != nil {
		t.Fatal(err)
	}
	t.Logf("generate: %v, %d bytes", time.Since(t0), buf.Len())
	t.Logf("%s", bytes.Join(bytes.SplitN(buf.Bytes(), []byte("\n"), 8)[:7], []byte("\n")))
	x, err := stableset.NewExportReader(bytes.NewReader(buf.Bytes()), "g")
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	for {
		_, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("read: %v", time.Since(t0))
}
