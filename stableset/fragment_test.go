package stableset

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const goodFragment = `{
 "_type": "keyceremony-snapshot-fragment",
 "meta": {
  "stable.json": {"version": 3, "length": 120, "hashes": {"sha256": "` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}}
 }
}
`

func TestParseFragment(t *testing.T) {
	fr, err := ParseFragment([]byte(goodFragment), FragmentFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := fr.Meta["stable.json"]; m.Version != 3 || m.Length != 120 {
		t.Errorf("parsed %+v", fr)
	}
	h := `"hashes": {"sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`
	for name, tc := range map[string]struct{ in, want string }{
		"type":          {strings.Replace(goodFragment, `-fragment"`, `-frag"`, 1), `_type is "keyceremony-snapshot-frag"`},
		"unknown field": {strings.Replace(goodFragment, `"length": 120`, `"length": 120, "size": 1`, 1), "size"},
		"duplicate":     {strings.Replace(goodFragment, `"version": 3`, `"version": 3, "version": 4`, 1), "version"},
		"version 0":     {strings.Replace(goodFragment, `"version": 3`, `"version": 0`, 1), `meta["stable.json"].version is 0`},
		"no length":     {strings.Replace(goodFragment, `"length": 120, `, ``, 1), `meta["stable.json"].length is 0`},
		"upper hex":     {strings.Replace(goodFragment, "0123456789abcdef0123", "0123456789ABCDEF0123", 1), `meta["stable.json"].hashes`},
		"two hashes":    {strings.Replace(goodFragment, `"sha256": "0`, `"sha512": "00", "sha256": "0`, 1), `meta["stable.json"].hashes`},
		"path":          {strings.Replace(goodFragment, `"stable.json"`, `"../stable.json"`, 1), `meta["../stable.json"]: not a metadata file name`},
		"not json name": {strings.Replace(goodFragment, `"stable.json"`, `"stable"`, 1), `meta["stable"]`},
		"trailing":      {goodFragment + "{}", FragmentFile},
		"null meta":     {`{"_type": "keyceremony-snapshot-fragment", "meta": null}`, FragmentFile},
		"two entries":   {strings.Replace(goodFragment, `"stable.json"`, `"a.json": {"version": 1, "length": 1, `+h+`}, "stable.json"`, 1), ""},
	} {
		_, err := ParseFragment([]byte(tc.in), FragmentFile)
		if name == "two entries" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrFragment) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), FragmentFile) {
			t.Errorf("%s: %v, want ErrFragment naming %s and %q", name, err, FragmentFile, tc.want)
		}
	}
}

// FuzzParseFragment: nothing panics, and whatever is accepted survives a
// round trip through the form writeFragment writes.
func FuzzParseFragment(f *testing.F) {
	f.Add([]byte(goodFragment))
	f.Add([]byte(`{"_type":"keyceremony-snapshot-fragment","meta":{}}`))
	f.Add([]byte(`{"_type":"x","meta":{"a.json":{"version":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFragment(data, FragmentFile)
		if err != nil {
			if !errors.Is(err, ErrFragment) {
				t.Fatalf("error %v does not match ErrFragment", err)
			}
			return
		}
		out, err := json.MarshalIndent(fr, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFragment(out, FragmentFile)
		if err != nil {
			t.Fatalf("refused its own encoding %s: %v", out, err)
		}
		out2, _ := json.MarshalIndent(again, "", " ")
		if string(out) != string(out2) {
			t.Fatalf("round trip changed %s to %s", out, out2)
		}
	})
}
