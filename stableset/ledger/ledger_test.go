package ledger

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"
)

var t1 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sampleLedger(t testing.TB) []byte { return sampleLedgerVersion(t, Version) }

func sampleLedgerVersion(t testing.TB, version int) []byte {
	var buf bytes.Buffer
	w, err := newWriter(&buf, Header{Repository: "pypi", ListingTime: t1, StableVersion: 3, Naming: "warehouse", Policy: []byte(`{"excluded": ["certifi"]}`)}, version)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"packages/00/aa/x/a-1.tar.gz", "packages/00/ab/y/b-1.tar.gz", "packages/ff/00/z/c-2.whl"} {
		e := Entry{Path: p, Project: p[len(p)-10:][:1], Length: int64(len(p)), SHA256: sha256.Sum256([]byte(p)), Stable: i > 0}
		if i == 2 {
			e.Kept, e.StableLength, e.StableSHA256 = true, 3, sha256.Sum256([]byte("old"))
		}
		if version == Version {
			e.Dropped, e.Yanked = i == 0, i == 1
		} else if err := w.Add(&Entry{Path: p, Project: "a", Dropped: true}); !errors.Is(err, ErrLedgerFormat) {
			t.Fatalf("dropped mark in a version %d ledger: %v", version, err)
		}
		if err := w.Add(&e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(&Entry{Path: "packages/00/aa/x/a-1.tar.gz", Project: "a"}); !errors.Is(err, ErrLedgerOrder) {
		t.Fatalf("unsorted add: %v", err)
	}
	if err := w.Add(&Entry{Path: "packages/ff/00/z/d-1.whl", Project: "d", Kept: true}); !errors.Is(err, ErrLedgerFormat) {
		t.Fatalf("kept but not stable: %v", err)
	}
	if err := w.Add(&Entry{Path: "packages/ff/00/z/d-1.whl", Project: "d", Stable: true, Dropped: true}); !errors.Is(err, ErrLedgerFormat) {
		t.Fatalf("dropped and stable: %v", err)
	}
	// Projects in page path order: "a-b/" sorts before "a/".
	for _, p := range []string{"a-b", "a", "b"} {
		pr := Project{Project: p, PageDigest: sha256.Sum256([]byte(p)), HTMLLength: 10, JSONLength: 20, HTMLBLAKE2b: sha256.Sum256([]byte("h" + p)), JSONBLAKE2b: sha256.Sum256([]byte("j" + p))}
		if version == Version {
			pr.Versions = []string{"1.0", "1.0.post1", "2"}
			for _, bad := range [][]string{{}, {"2", "1.0"}, {"1", "1"}, {""}, {"1\n"}} {
				b := pr
				b.Versions = bad
				if err := w.AddProject(&b); err == nil {
					t.Fatalf("releases %q accepted", bad)
				}
			}
		}
		if err := w.AddProject(&pr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddProject(&Project{Project: "a-c"}); !errors.Is(err, ErrLedgerOrder) {
		t.Fatalf("unsorted project: %v", err)
	}
	if err := w.Add(&Entry{Path: "packages/ff/ff/z/e-1.whl", Project: "e"}); !errors.Is(err, ErrLedgerOrder) {
		t.Fatalf("file after the projects: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(data []byte) ([]Entry, []Project, *Reader, error) {
	lr, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, nil, err
	}
	var out []Entry
	for {
		e, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, nil, err
		}
		out = append(out, *e)
	}
	var ps []Project
	for {
		p, err := lr.NextProject()
		if err == io.EOF {
			return out, ps, lr, nil
		}
		if err != nil {
			return nil, nil, nil, err
		}
		ps = append(ps, *p)
	}
}

func TestLedgerRoundTrip(t *testing.T) {
	data := sampleLedger(t)
	es, ps, lr, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	h := lr.Header()
	if len(es) != 3 || es[2].Path != "packages/ff/00/z/c-2.whl" || h.Repository != "pypi" || !h.ListingTime.Equal(t1) || h.StableVersion != 3 || h.Naming != "warehouse" || string(h.Policy) != `{"excluded": ["certifi"]}` {
		t.Fatalf("got %+v %+v", h, es)
	}
	if es[0].Stable || !es[1].Stable || es[1].Kept || !es[2].Kept || es[2].StableLength != 3 {
		t.Fatalf("stable flags: %+v", es)
	}
	if !es[0].Dropped || es[1].Dropped || es[0].Yanked || !es[1].Yanked || es[2].Yanked || lr.Version() != Version {
		t.Fatalf("dropped and yanked marks: %+v", es)
	}
	if v := ps[1].Versions; len(v) != 3 || v[0] != "1.0" || v[2] != "2" {
		t.Fatalf("releases: %q", v)
	}
	if l, _ := es[2].StableContent(); l != 3 {
		t.Fatal("StableContent of a kept entry is not the stable one")
	}
	if len(ps) != 3 || ps[0].Project != "a-b" || ps[1].Project != "a" || ps[2].JSONLength != 20 || ps[2].PageDigest != sha256.Sum256([]byte("b")) ||
		ps[2].HTMLBLAKE2b != sha256.Sum256([]byte("hb")) || ps[2].JSONBLAKE2b != sha256.Sum256([]byte("jb")) {
		t.Fatalf("projects: %+v", ps)
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
		"version 1":      {append([]byte("KCLEDGER\x01"), data[9:]...), ErrLedgerFormat},
		"version 3":      {append([]byte("KCLEDGER\x03"), data[9:]...), ErrLedgerFormat},
		"version 6":      {append([]byte("KCLEDGER\x06"), data[9:]...), ErrLedgerFormat},
		// A v5 ledger relabelled v4: its marks are not v4 flags.
		"v5 as v4": {append([]byte("KCLEDGER\x04"), data[9:]...), ErrLedgerFormat},
	} {
		_, _, _, err := readAll(tc.data)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		var le *Error
		if !errors.As(err, &le) {
			t.Errorf("%s: %T is not a *Error", name, err)
		}
	}
	_ = time.Second
}

// A version 4 ledger, the previous format, is still read: no marks, no
// releases.
func TestLedgerPreviousVersion(t *testing.T) {
	data := sampleLedgerVersion(t, PreviousVersion)
	es, ps, lr, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	if lr.Version() != PreviousVersion || len(es) != 3 || !es[2].Kept || len(ps) != 3 {
		t.Fatalf("v4: version %d, %+v %+v", lr.Version(), es, ps)
	}
	for _, e := range es {
		if e.Dropped || e.Yanked {
			t.Fatalf("v4 entry with a mark: %+v", e)
		}
	}
	for _, p := range ps {
		if p.Versions != nil {
			t.Fatalf("v4 project with releases: %+v", p)
		}
	}
	// A v4 ledger relabelled v5: its projects lack the releases.
	if _, _, _, err := readAll(append([]byte("KCLEDGER\x05"), data[9:]...)); !errors.Is(err, ErrLedgerFormat) && !errors.Is(err, ErrLedgerTruncated) {
		t.Fatalf("v4 as v5: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}

func FuzzLedger(f *testing.F) {
	f.Add(sampleLedger(f))
	f.Add(sampleLedgerVersion(f, PreviousVersion))
	f.Add([]byte(ledgerMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, ps, lr, err := readAll(data)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("%T is not a *Error", err)
			}
			return
		}
		// What reads re-encodes to the same bytes.
		var buf bytes.Buffer
		w, err := newWriter(&buf, lr.Header(), lr.Version())
		if err != nil {
			t.Fatal(err)
		}
		for i := range es {
			if err := w.Add(&es[i]); err != nil {
				t.Fatal(err)
			}
		}
		for i := range ps {
			if err := w.AddProject(&ps[i]); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatal("re-encoding differs")
		}
	})
}

// failAfter reads data, then fails with err.
type failAfter struct {
	data []byte
	err  error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// readFrom reads a whole ledger from r, returning the first error.
func readFrom(r io.Reader) error {
	lr, err := NewReader(r)
	if err != nil {
		return err
	}
	for err == nil {
		_, err = lr.Next()
	}
	if err != io.EOF {
		return err
	}
	for {
		if _, err := lr.NextProject(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// A read error is returned as itself wherever it strikes, even after the
// last byte, never as a malformed or truncated ledger.
func TestLedgerReadError(t *testing.T) {
	data := sampleLedger(t)
	if err := readFrom(&failAfter{data: data, err: io.EOF}); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("injected: input/output error")
	for n := 0; n <= len(data); n++ {
		err := readFrom(&failAfter{data: data[:n], err: errDisk})
		if !errors.Is(err, errDisk) {
			t.Fatalf("read error after %d of %d bytes: %v", n, len(data), err)
		}
		for _, s := range []error{ErrLedgerFormat, ErrLedgerTruncated, ErrLedgerDigest} {
			if errors.Is(err, s) {
				t.Fatalf("read error after %d bytes is also %v: %v", n, s, err)
			}
		}
	}
}
