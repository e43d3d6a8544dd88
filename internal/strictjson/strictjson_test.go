package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

type slot struct {
	Device uint32 `json:"device"`
	Slot   string `json:"slot"`
}

type role struct {
	Threshold int    `json:"threshold"`
	Keys      []slot `json:"keys"`
}

type common struct {
	Type    string `json:"_type"`
	Version int64  `json:"version"`
}

// upper is a leaf: its UnmarshalJSON accepts only upper-case strings.
type upper string

var errLower = errors.New("not upper case")

func (u *upper) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if strings.ToUpper(s) != s {
		return fmt.Errorf("%q: %w", s, errLower)
	}
	*u = upper(s)
	return nil
}

type doc struct {
	common
	Root    role              `json:"root"`
	Online  map[string]role   `json:"online"`
	Note    string            `json:"note,omitempty"`
	Opt     *role             `json:"opt,omitempty"`
	Detail  map[string]any    `json:"detail,omitempty"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
	Name    upper             `json:"name,omitempty"`
	Small   int8              `json:"small,omitempty"`
	Pair    [2]int            `json:"pair,omitempty"`
	Blob    []byte            `json:"blob,omitempty"`
	Ratio   float64           `json:"ratio,omitempty"`
	Flag    bool              `json:"flag,omitempty"`
	Hashes  map[string]string `json:"hashes,omitempty"`
	Ignored string            `json:"-"`
	private int
}

const good = `{
  "_type": "t",
  "version": 3,
  "root": {"threshold": 1, "keys": [{"device": 1, "slot": "9a"}, {"device": 2, "slot": "9c"}]},
  "online": {"x": {"threshold": 1, "keys": []}},
  "detail": {"a": [1, "b", null, {"c": true}]},
  "raw": {"any": [1, 2]},
  "name": "ABC",
  "pair": [1, 2],
  "blob": "aGk=",
  "ratio": 0.5
}
`

func TestDecodeGood(t *testing.T) {
	var d doc
	if err := Decode([]byte(good), "good.json", &d); err != nil {
		t.Fatal(err)
	}
	if d.Type != "t" || d.Version != 3 || d.Root.Keys[1].Slot != "9c" || d.Name != "ABC" || string(d.Blob) != "hi" || d.Pair != [2]int{1, 2} {
		t.Errorf("decoded %+v", d)
	}
	if d.Online["x"].Keys == nil {
		t.Error("an empty array decoded to a nil slice; encoding/json gives an empty one")
	}
	var std doc
	if err := json.Unmarshal([]byte(good), &std); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, std) {
		t.Errorf("Decode = %+v\nencoding/json = %+v", d, std)
	}
}

func TestDecodeRefusals(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(good, old) {
			panic("good lacks " + old)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, tc := range []struct {
		name, in string
		line     int
		path     string
		err      error
	}{
		{"duplicate key", edit(`"version": 3,`, `"version": 3, "version": 3,`), 3, "version", ErrDuplicateKey},
		{"nested duplicate key", edit(`"slot": "9c"`, `"slot": "9c", "slot": "9d"`), 4, "root.keys[1].slot", ErrDuplicateKey},
		{"duplicate map key", edit(`"x": {`, `"x": {"threshold": 1, "keys": []}, "x": {`), 5, "online.x", ErrDuplicateKey},
		{"duplicate key in any", edit(`{"c": true}`, `{"c": true, "c": false}`), 6, "detail.a[3].c", ErrDuplicateKey},
		{"duplicate key in an unmarshaler", edit(`{"any": [1, 2]}`, `{"any": 1, "any": 2}`), 7, "raw.any", ErrDuplicateKey},
		{"duplicate unknown key", edit(`"version": 3,`, `"version": 3, "zz": 1, "zz": 2,`), 3, "zz", ErrDuplicateKey},
		{"case-folded key", edit(`"threshold": 1, "keys": [{`, `"Threshold": 1, "keys": [{`), 4, "root.Threshold", ErrUnknownField},
		{"case-folded top-level key", edit(`"root":`, `"Root":`), 4, "Root", ErrUnknownField},
		{"unknown field", edit(`"version": 3,`, `"version": 3, "mirrors": [],`), 3, "mirrors", ErrUnknownField},
		{"nested unknown field", edit(`"slot": "9c"`, `"slot": "9c", "pin": "123456"`), 4, "root.keys[1].pin", ErrUnknownField},
		{"unknown field in a map value", edit(`"keys": []}`, `"keys": [], "extra": {}}`), 5, "online.x.extra", ErrUnknownField},
		{"ignored field is unknown", edit(`"version": 3,`, `"version": 3, "Ignored": "x",`), 3, "Ignored", ErrUnknownField},
		{"private field is unknown", edit(`"version": 3,`, `"version": 3, "private": 1,`), 3, "private", ErrUnknownField},
		{"missing field", edit(`"version": 3,`, ``), 12, "version", ErrMissingField},
		{"nested missing field", edit(`{"device": 1, "slot": "9a"}`, `{"device": 1}`), 4, "root.keys[0].slot", ErrMissingField},
		{"misspelt field is missing", edit(`"version":`, `"versoin":`), 12, "version", ErrMissingField},
		{"string for integer", edit(`"version": 3`, `"version": "3"`), 3, "version", ErrType},
		{"fraction for integer", edit(`"version": 3`, `"version": 3.0`), 3, "version", ErrType},
		{"exponent for integer", edit(`"version": 3`, `"version": 3e0`), 3, "version", ErrType},
		{"out of range", edit(`"pair"`, `"small": 128, "pair"`), 9, "small", ErrType},
		{"negative unsigned", edit(`"device": 2`, `"device": -2`), 4, "root.keys[1].device", ErrType},
		{"array for object", edit(`"root": {"threshold": 1, "keys": [{"device": 1, "slot": "9a"}, {"device": 2, "slot": "9c"}]}`, `"root": []`), 4, "root", ErrType},
		{"object for array", edit(`"keys": []`, `"keys": {}`), 5, "online.x.keys", ErrType},
		{"number for string", edit(`"slot": "9a"`, `"slot": 9`), 4, "root.keys[0].slot", ErrType},
		{"string for bool", edit(`"ratio": 0.5`, `"ratio": 0.5, "flag": "true"`), 11, "flag", ErrType},
		{"short array", edit(`"pair": [1, 2]`, `"pair": [1]`), 9, "pair", ErrType},
		{"long array", edit(`"pair": [1, 2]`, `"pair": [1, 2, 3]`), 9, "pair", ErrType},
		{"not base64", edit(`"aGk="`, `"aGk"`), 10, "blob", ErrType},
		{"null field", edit(`"version": 3`, `"version": null`), 3, "version", ErrNull},
		{"null optional pointer", edit(`"ratio": 0.5`, `"ratio": 0.5, "opt": null`), 11, "opt", ErrNull},
		{"null map", edit(`"online": {"x": {"threshold": 1, "keys": []}}`, `"online": null`), 5, "online", ErrNull},
		{"null slice", edit(`"keys": []`, `"keys": null`), 5, "online.x.keys", ErrNull},
		{"null unmarshaler", edit(`{"any": [1, 2]}`, `null`), 7, "raw", ErrNull},
		{"unmarshaler refuses", edit(`"ABC"`, `"abc"`), 8, "name", errLower},
		{"trailing data", good + `{}`, 13, "", ErrTrailingData},
		{"trailing garbage", good + `x`, 13, "", ErrTrailingData},
		{"two documents", good + good, 13, "", ErrTrailingData},
		{"syntax", edit(`"version": 3,`, `"version": ,`), 3, "version", ErrSyntax},
		{"trailing comma", edit(`"ratio": 0.5`, `"ratio": 0.5,`), 12, "", ErrSyntax},
		{"missing colon", edit(`"version": 3`, `"version" 3`), 3, "version", ErrSyntax},
		{"truncated", good[:len(good)/2], 5, "", ErrSyntax},
		{"empty", ``, 1, "", ErrSyntax},
		{"not UTF-8", edit(`"t"`, "\"t\xff\""), 2, "", ErrSyntax},
		{"not an object", `[]`, 1, "", ErrType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tc.in), "d.json", &d)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if !errors.Is(err, tc.err) || e.File != "d.json" || e.Line != tc.line || e.Path != tc.path {
				t.Fatalf("err = %q (file %q line %d path %q), want line %d path %q, %q", err, e.File, e.Line, e.Path, tc.line, tc.path, tc.err)
			}
			prefix := fmt.Sprintf("d.json:%d: ", tc.line)
			if tc.path != "" {
				prefix += tc.path + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("message %q does not start with %q", err, prefix)
			}
		})
	}
}

func TestDepth(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(`{"detail": {"a": ` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`)
	}
	var v struct {
		Detail map[string]any `json:"detail"`
	}
	if err := Decode(deep(100), "deep.json", &v); err != nil {
		t.Fatal(err)
	}
	// A megabyte of brackets is refused, not a stack overflow.
	if err := Decode(deep(1<<20), "deep.json", &v); !errors.Is(err, ErrSyntax) {
		t.Fatalf("err = %v, want ErrSyntax", err)
	}
}

func TestSyntaxErrorLine(t *testing.T) {
	var v struct {
		A []any `json:"a"`
	}
	err := Decode([]byte("{\"a\": [1,\n\n tru]}"), "s.json", &v)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrSyntax) || e.Line != 3 {
		t.Fatalf("err = %v, want a syntax error on line 3", err)
	}
}

func TestDecodeLine(t *testing.T) {
	var r role
	err := DecodeLine([]byte(`{"threshold": 1, "keys": [], "keys": []}`), "t.jsonl", 7, &r)
	var e *Error
	if !errors.As(err, &e) || e.Line != 7 || e.Path != "keys" || !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("err = %v", err)
	}
	if err := DecodeLine([]byte(`{"threshold": 1, "keys": []}`), "t.jsonl", 7, &r); err != nil {
		t.Fatal(err)
	}
}

func TestUnmarshalerCauseKept(t *testing.T) {
	var v struct {
		T time.Time `json:"t"`
	}
	err := Decode([]byte(`{"t": "yesterday"}`), "t.json", &v)
	var pe *time.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want the *time.ParseError kept as the cause", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "t" {
		t.Fatalf("err = %v, want path t", err)
	}
}

type withStringOption struct {
	N int `json:"n,string"`
}

type withChannel struct {
	C chan int `json:"c"`
}

type withEmbeddedPointer struct{ *common }

func TestUnsupported(t *testing.T) {
	for name, v := range map[string]any{
		"not a pointer":    doc{},
		"nil pointer":      (*doc)(nil),
		"string option":    &withStringOption{},
		"int map keys":     &map[int]string{},
		"channel":          &withChannel{},
		"embedded pointer": &withEmbeddedPointer{},
	} {
		if err := Decode([]byte(`{"n": 1, "c": 1, "1": "x", "_type": "", "version": 1, "a": 1}`), "u.json", v); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
}

func TestLine(t *testing.T) {
	for path, want := range map[string]int{"": 1, "version": 3, "root.keys[1].slot": 4, "online.x": 5, "detail.a[3].c": 6, "ratio": 11, "nope": 0, "root.keys[2]": 0} {
		if got := Line([]byte(good), path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
}

// FuzzDecode checks that Decode never panics, that every error is an
// *Error with a line, that what it accepts encoding/json (an independent
// decoder) decodes to an equal value, and that json.Marshal of an accepted
// value decodes again to an equal value.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"_type":"","version":1,"root":{"threshold":0,"keys":[]},"online":{}}`))
	f.Add([]byte(`{"_type":"","version":1,"root":{"threshold":0,"keys":[]},"online":{},"detail":{"a":{"b":[null,1e3]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		if err := Decode(data, "fuzz", &d); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.File != "fuzz" {
				t.Fatalf("error %v is not a located *Error", err)
			}
			return
		}
		var std doc
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("Decode accepted what encoding/json refuses: %v", err)
		}
		a, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(&std)
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Fatalf("Decode gave %s, encoding/json %s", a, b)
		}
		var again doc
		if err := Decode(a, "again", &again); err != nil {
			t.Fatalf("re-encoding %s does not decode: %v", a, err)
		}
		c, _ := json.Marshal(&again)
		if string(a) != string(c) {
			t.Fatalf("round trip %s -> %s", a, c)
		}
	})
}
