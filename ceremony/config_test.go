package ceremony

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
			if !strings.HasPrefix(err.Error(), "cfg.json: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
		})
	}
	if _, err := ParseConfig([]byte(`{} {}`), "x.json"); err == nil {
		t.Fatal("trailing data accepted")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"repository":"x"}`))
	f.Add([]byte(`{}`))
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
