package ceremony

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
)

func validConfigJSON(t *testing.T) map[string]any {
	t.Helper()
	s, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	online := map[string]OnlineRole{}
	for _, r := range OnlineRoles {
		online[r] = OnlineRole{Threshold: 1, Keys: []*keys.Key{s.Key()}}
	}
	b, err := json.Marshal(demoConfig(online))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(m map[string]any)
		field string // "" means valid
	}{
		{"valid", func(m map[string]any) {}, ""},
		{"missing field", func(m map[string]any) { delete(m, "stable") }, "stable"},
		{"unknown field", func(m map[string]any) { m["extra"] = 1 }, "extra"},
		{"threshold above keys", func(m map[string]any) { m["root"].(map[string]any)["threshold"] = 4 }, "root.threshold"},
		{"zero threshold", func(m map[string]any) { m["stable"].(map[string]any)["threshold"] = 0 }, "stable.threshold"},
		{"bad slot", func(m map[string]any) {
			m["targets"].(map[string]any)["keys"].([]any)[0].(map[string]any)["slot"] = "9b"
		}, "targets.keys[0].slot"},
		{"slot used twice", func(m map[string]any) {
			m["targets"].(map[string]any)["keys"].([]any)[0].(map[string]any)["slot"] = "9c"
		}, "targets.keys[0]"},
		{"two keys of a role on one device", func(m map[string]any) {
			k := m["stable"].(map[string]any)["keys"].([]any)
			k[1].(map[string]any)["device"] = k[0].(map[string]any)["device"]
		}, "stable.keys[1].device"},
		{"bad algorithm", func(m map[string]any) { m["key_policy"].(map[string]any)["algorithm"] = "rsa2048" }, "key_policy"},
		{"pin policy never", func(m map[string]any) { m["key_policy"].(map[string]any)["pin_policy"] = "never" }, "key_policy"},
		{"online role missing", func(m map[string]any) { delete(m["online"].(map[string]any), "timestamp") }, "online.timestamp"},
		{"unknown online role", func(m map[string]any) {
			m["online"].(map[string]any)["mirror"] = m["online"].(map[string]any)["unstable"]
		}, "online.mirror"},
		{"bad online key", func(m map[string]any) {
			k := m["online"].(map[string]any)["unstable"].(map[string]any)["keys"].([]any)[0].(map[string]any)
			k["keyval"] = map[string]any{"public": "zz"}
		}, "online.unstable.keys[0]"},
		{"online key listed twice", func(m map[string]any) {
			u := m["online"].(map[string]any)["unstable"].(map[string]any)
			ks := u["keys"].([]any)
			u["keys"], u["threshold"] = []any{ks[0], ks[0]}, 2
		}, "online.unstable.keys[1]"},
		{"expiry out of range", func(m map[string]any) { m["expires_days"].(map[string]any)["root"] = 0 }, "expires_days.root"},
		{"empty paths", func(m map[string]any) { m["target_paths"] = []any{} }, "target_paths"},
		{"wrong type", func(m map[string]any) { m["repository"] = 7 }, "repository"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := validConfigJSON(t)
			tc.edit(m)
			b, _ := json.Marshal(m)
			_, err := ParseConfig(b, "cfg.json")
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("want *ConfigError, got %v", err)
			}
			if !strings.Contains(ce.Field, tc.field) && !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error does not name %q: %v", tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), "cfg.json:") {
				t.Fatalf("error does not name the file: %v", err)
			}
		})
	}
	if _, err := ParseConfig([]byte(`{} {}`), "x.json"); err == nil {
		t.Fatal("trailing data accepted")
	}
}

// TestParseConfigStrict is the strict decoder's table for the bootstrap
// configuration: the two holes the old decoder had (a second "root" object
// silently replacing the first; "Threshold" accepted for "threshold") and
// the other structural refusals, each naming the line and the field path.
func TestParseConfigStrict(t *testing.T) {
	b, err := json.MarshalIndent(validConfigJSON(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	if _, err := ParseConfig(b, "bootstrap.json"); err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		t.Helper()
		if !strings.Contains(good, old) {
			t.Fatalf("config lacks %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	lineOf := func(s, sub string) int { return 1 + strings.Count(s[:strings.Index(s, sub)], "\n") }
	rootAt := `"root": {`
	for _, tc := range []struct {
		name, in, path string
		err            error
		line           func(in string) int
	}{
		{"second root object", edit(rootAt, `"root": {"threshold": 1, "keys": [{"device": 1, "slot": "9a"}]}, `+rootAt), "root", strictjson.ErrDuplicateKey,
			func(in string) int { return lineOf(in, rootAt) }},
		{"Threshold for threshold", edit(`"threshold": 2`, `"Threshold": 2`), "root.Threshold", strictjson.ErrUnknownField,
			func(in string) int { return lineOf(in, `"Threshold"`) }},
		{"duplicate nested key", edit(`"slot": "9c"`, `"slot": "9c", "slot": "9e"`), "root.keys[0].slot", strictjson.ErrDuplicateKey,
			func(in string) int { return lineOf(in, `"slot": "9e"`) }},
		{"nested unknown field", edit(`"slot": "9c"`, `"slot": "9c", "pin": "123456"`), "root.keys[0].pin", strictjson.ErrUnknownField,
			func(in string) int { return lineOf(in, `"pin"`) }},
		{"unknown field in an online key", edit(`"keytype"`, `"comment": "", "keytype"`), "online.snapshot.keys[0].comment", strictjson.ErrUnknownField,
			func(in string) int { return lineOf(in, `"comment"`) }},
		{"null", edit(`"target_paths": [`, `"target_paths": null, "x": [`), "target_paths", strictjson.ErrNull,
			func(in string) int { return lineOf(in, `null`) }},
		{"trailing data", good + "\n{}", "", strictjson.ErrTrailingData,
			func(in string) int { return 1 + strings.Count(in, "\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.in), "bootstrap.json")
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) || !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want a *ConfigError wrapping %v", err, tc.err)
			}
			if ce.Field != tc.path || ce.Line != tc.line(tc.in) {
				t.Fatalf("err = %q names line %d field %q, want line %d field %q", err, ce.Line, ce.Field, tc.line(tc.in), tc.path)
			}
			if !strings.HasPrefix(err.Error(), "bootstrap.json:") || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("message %q does not name the file and field", err)
			}
		})
	}
	// A validation error after decoding keeps its cause and finds its line.
	_, err = ParseConfig([]byte(edit(`"slot": "9c"`, `"slot": "9b"`)), "bootstrap.json")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "root.keys[0].slot" || ce.Line != lineOf(good, `"slot": "9c"`) {
		t.Fatalf("bad slot: %v", err)
	}
	// The cause is kept beside ErrConfig: a caller can tell a bad slot from
	// a bad key.
	if !errors.Is(err, ErrConfig) || !errors.Is(err, hsm.ErrBadSlot) || errors.Is(err, keys.ErrMalformedKey) {
		t.Fatalf("bad slot: %v does not keep hsm.ErrBadSlot as its cause", err)
	}
	_, err = ParseConfig([]byte(edit(`"keytype": "ed25519"`, `"keytype": "rsa"`)), "bootstrap.json")
	if !errors.Is(err, ErrConfig) || !errors.Is(err, keys.ErrUnsupportedKey) {
		t.Fatalf("bad online key: %v does not keep keys.ErrUnsupportedKey as its cause", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"repository":"x"}`))
	f.Add([]byte(`{}`))
	if seed, err := os.ReadFile("testdata/runsheet-config.json"); err == nil {
		f.Add(seed) // valid, with keyholders
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "fuzz.json")
		if err == nil && c.validate() != nil {
			t.Fatal("accepted an invalid config")
		}
	})
}

func TestTranscriptChain(t *testing.T) {
	var buf strings.Builder
	tr := NewTranscript(&buf, nil, nil)
	for _, s := range []string{"a", "b", "c"} {
		if err := tr.Record(s, map[string]any{"k": s}); err != nil {
			t.Fatal(err)
		}
	}
	d, n, err := VerifyTranscript(strings.NewReader(buf.String()), "t")
	if err != nil || n != 3 || d != tr.Digest() {
		t.Fatalf("verify: %v %d", err, n)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	for name, bad := range map[string]string{
		"line removed":  lines[0] + lines[2],
		"lines swapped": lines[1] + lines[0] + lines[2],
		"line edited":   lines[0] + strings.Replace(lines[1], `"k":"b"`, `"k":"x"`, 1) + lines[2],
		"empty":         "",
		"unknown field": strings.Replace(lines[0], `"seq"`, `"x":1,"seq"`, 1),
	} {
		if _, _, err := VerifyTranscript(strings.NewReader(bad), "t"); !errors.Is(err, ErrTranscript) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	// Editing the last line is not caught by the chain, but changes the
	// digest that witnesses read aloud.
	edited := lines[0] + lines[1] + strings.Replace(lines[2], `"k":"c"`, `"k":"x"`, 1)
	if d2, _, err := VerifyTranscript(strings.NewReader(edited), "t"); err != nil || d2 == d {
		t.Fatal("editing the last line must change the digest")
	}
}

// TestVerifyTranscriptStrict is the strict decoder's table for transcript
// lines: each refusal names the file, the line and the field path. (The
// hash chain would catch an edited middle line anyway; these are edits of
// the last line, which only the decoder can refuse.)
func TestVerifyTranscriptStrict(t *testing.T) {
	var buf strings.Builder
	tr := NewTranscript(&buf, nil, nil)
	for _, s := range []string{"a", "b", "c"} {
		if err := tr.Record(s, map[string]any{"k": s, "n": map[string]any{"x": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	last := lines[2]
	for _, tc := range []struct {
		name, old, new, path string
		err                  error
	}{
		{"duplicate key", `"step":"c"`, `"step":"c","step":"d"`, "step", strictjson.ErrDuplicateKey},
		{"duplicate key in detail", `"k":"c"`, `"k":"c","k":"d"`, "detail.k", strictjson.ErrDuplicateKey},
		{"case-folded key", `"step"`, `"Step"`, "Step", strictjson.ErrUnknownField},
		{"nested unknown field", `"seq":3`, `"seq":3,"signer":{"name":"x"}`, "signer", strictjson.ErrUnknownField},
		{"missing field", `"prev":`, `"prv":`, "prev", strictjson.ErrMissingField},
		{"wrong type", `"seq":3`, `"seq":"3"`, "seq", strictjson.ErrType},
		{"trailing data", `}` + "\n", `}{}` + "\n", "", strictjson.ErrTrailingData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := strings.LastIndex(last, tc.old)
			if i < 0 {
				t.Fatalf("line lacks %q", tc.old)
			}
			bad := lines[0] + lines[1] + last[:i] + tc.new + last[i+len(tc.old):]
			_, _, err := VerifyTranscript(strings.NewReader(bad), "transcript.jsonl")
			var se *strictjson.Error
			if !errors.Is(err, ErrTranscript) || !errors.Is(err, tc.err) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want ErrTranscript and %v", err, tc.err)
			}
			if se.File != "transcript.jsonl" || se.Line != 3 || se.Path != tc.path {
				t.Fatalf("err = %q names %s:%d %q, want transcript.jsonl:3 %q", err, se.File, se.Line, se.Path, tc.path)
			}
		})
	}
}

// FuzzVerifyTranscript: the transcript parser never panics, and whatever
// it accepts re-verifies to the same digest.
func FuzzVerifyTranscript(f *testing.F) {
	var buf strings.Builder
	tr := NewTranscript(&buf, nil, nil)
	tr.Record("a", map[string]any{"k": 1})
	tr.Record("b", nil)
	f.Add([]byte(buf.String()))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, n, err := VerifyTranscript(strings.NewReader(string(b)), "fuzz")
		if err != nil {
			return
		}
		d2, n2, err := VerifyTranscript(strings.NewReader(string(b)), "fuzz")
		if err != nil || d2 != d || n2 != n {
			t.Fatal("verification is not deterministic")
		}
	})
}
