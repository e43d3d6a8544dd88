package stableset

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"
)

func sampleLedger(t testing.TB) []byte {
	var buf bytes.Buffer
	w, err := NewLedgerWriter(&buf, LedgerHeader{Repository: "pypi", ListingTime: t1, StableVersion: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"packages/00/aa/x/a-1.tar.gz", "packages/00/ab/y/b-1.tar.gz", "packages/ff/00/z/c-2.whl"} {
		if err := w.Add(&LedgerEntry{Path: p, Project: p[len(p)-10:][:1], Length: int64(len(p)), SHA256: sha256.Sum256([]byte(p))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(&LedgerEntry{Path: "packages/00/aa/x/a-1.tar.gz", Project: "a"}); !errors.Is(err, ErrLedgerOrder) {
		t.Fatalf("unsorted add: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(data []byte) ([]LedgerEntry, *LedgerReader, error) {
	lr, err := NewLedgerReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var out []LedgerEntry
	for {
		e, err := lr.Next()
		if err == io.EOF {
			return out, lr, nil
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, *e)
	}
}

func TestLedgerRoundTrip(t *testing.T) {
	data := sampleLedger(t)
	es, lr, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	h := lr.Header()
	if len(es) != 3 || es[2].Path != "packages/ff/00/z/c-2.whl" || h.Repository != "pypi" || !h.ListingTime.Equal(t1) || h.StableVersion != 3 {
		t.Fatalf("got %+v %+v", h, es)
	}
	n, sum, ok := lr.FileDigest()
	if !ok || n != int64(len(data)) || sum != sha256.Sum256(data) {
		t.Fatal("file digest wrong")
	}
	for name, tc := range map[string]struct {
		data []byte
		want error
	}{
		"truncated":      {data[:len(data)-1], ErrLedgerTruncated},
		"no trailer":     {data[:len(data)-34], ErrLedgerTruncated},
		"trailing data":  {append(append([]byte{}, data...), 0), ErrLedgerFormat},
		"bad magic":      {append([]byte("KCLEDGEX"), data[8:]...), ErrLedgerFormat},
		"edited digest":  {flip(data, len(data)-1), ErrLedgerDigest},
		"edited content": {flip(data, len(data)-40), ErrLedgerDigest},
		"empty":          {nil, ErrLedgerFormat},
	} {
		_, _, err := readAll(tc.data)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		var le *LedgerError
		if !errors.As(err, &le) {
			t.Errorf("%s: %T is not a *LedgerError", name, err)
		}
	}
	_ = time.Second
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}

func FuzzLedger(f *testing.F) {
	f.Add(sampleLedger(f))
	f.Add([]byte(ledgerMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, lr, err := readAll(data)
		if err != nil {
			var le *LedgerError
			if !errors.As(err, &le) {
				t.Fatalf("%T is not a *LedgerError", err)
			}
			return
		}
		// What reads re-encodes to the same bytes.
		var buf bytes.Buffer
		w, err := NewLedgerWriter(&buf, lr.Header())
		if err != nil {
			t.Fatal(err)
		}
		for i := range es {
			if err := w.Add(&es[i]); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatal("re-encoding differs")
		}
	})
}
