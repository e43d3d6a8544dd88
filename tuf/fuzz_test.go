package tuf

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzLoad checks the loader's promises on arbitrary input: it never
// panics, and whatever loads re-marshals to a file that loads again to an
// equal value and re-marshals to the same bytes.
func fuzzLoad[T Signed](f *testing.F, seeds ...string) {
	for _, name := range seeds {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// A few near misses, so the fuzzer starts at the edges.
		f.Add(append(b, '{'))
		f.Add(bytes.Replace(b, []byte(`"version": `), []byte(`"version": 0`), 1))
		f.Add(bytes.Replace(b, []byte(`Z"`), []byte(`+00:00"`), 1))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load[T](data, "fuzz.json")
		if err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error %v is a %T, not a *LoadError", err, err)
			}
			return
		}
		b, err := m.MarshalFile()
		if err != nil {
			t.Fatalf("loaded but does not marshal: %v", err)
		}
		again, err := Load[T](b, "again.json")
		if err != nil {
			t.Fatalf("re-marshalled file does not load: %v\n%s", err, b)
		}
		// custom is kept as raw JSON, so compare it by its canonical form:
		// the signed bytes, then everything else.
		s1, err1 := m.SignedBytes()
		s2, err2 := again.SignedBytes()
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
			t.Fatalf("signed bytes differ after a round trip (%v, %v):\n%s\n%s", err1, err2, s1, s2)
		}
		if !reflect.DeepEqual(m.Signatures, again.Signatures) {
			t.Fatalf("signatures differ after a round trip")
		}
		b2, err := again.MarshalFile()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("marshalling is not stable (%v):\n%s\n%s", err, b, b2)
		}
	})
}

func FuzzLoadRoot(f *testing.F)      { fuzzLoad[Root](f, "root.json") }
func FuzzLoadTimestamp(f *testing.F) { fuzzLoad[Timestamp](f, "timestamp.json") }
func FuzzLoadSnapshot(f *testing.F)  { fuzzLoad[Snapshot](f, "snapshot.json") }
func FuzzLoadTargets(f *testing.F) {
	fuzzLoad[Targets](f, "targets.json", "stable.json", "stable-0.json", "unstable.json")
}
