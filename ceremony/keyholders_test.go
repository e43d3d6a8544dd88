package ceremony

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// names gives every demo device a keyholder.
func names() map[string]any {
	return map[string]any{"10000001": "Alice Example", "10000002": "Bob Example", "10000003": "Carol Example"}
}

func TestKeyholders(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(k map[string]any)
		field string // "" means valid
		msg   string
	}{
		{"every device named", func(k map[string]any) {}, "", ""},
		{"unicode name", func(k map[string]any) { k["10000001"] = "Zoë Ōtsuka-Müller" }, "", ""},
		{"a device left out", func(k map[string]any) { delete(k, "10000002") }, "keyholders", "device 10000002 has no keyholder"},
		{"a device not in any role", func(k map[string]any) { k["10000009"] = "Dave" }, "keyholders.10000009", "holds no root, targets or stable key"},
		{"leading zero", func(k map[string]any) { k["010000001"] = k["10000001"]; delete(k, "10000001") }, "keyholders.010000001", "not a device serial"},
		{"not a number", func(k map[string]any) { k["alice"] = "Alice" }, "keyholders.alice", "not a device serial"},
		{"beyond uint32", func(k map[string]any) { k["4294967296"] = "Eve" }, "keyholders.4294967296", "not a device serial"},
		{"empty name", func(k map[string]any) { k["10000003"] = "" }, "keyholders.10000003", "empty name"},
		{"spaces around", func(k map[string]any) { k["10000003"] = " Carol" }, "keyholders.10000003", "spaces"},
		{"doubled space", func(k map[string]any) { k["10000003"] = "Carol  Example" }, "keyholders.10000003", "spaces"},
		{"newline", func(k map[string]any) { k["10000003"] = "Carol\nExample" }, "keyholders.10000003", "not printable"},
		{"bidi override", func(k map[string]any) { k["10000003"] = "Carol\u202eelpmaxE" }, "keyholders.10000003", "U+202E"},
		{"too long", func(k map[string]any) { k["10000003"] = strings.Repeat("c", 65) }, "keyholders.10000003", "longer than 64"},
		// Devices 1 and 2 both hold a root, a targets and a stable key.
		{"one person, two devices of a role", func(k map[string]any) { k["10000002"] = "alice example" }, "keyholders.10000002", `"alice example" holds devices 10000001 and 10000002, both with a root key`},
		{"wrong type", func(k map[string]any) { k["10000001"] = 7 }, "keyholders.10000001", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := validConfigJSON(t)
			k := names()
			tc.edit(k)
			m["keyholders"] = k
			b, _ := json.MarshalIndent(m, "", "  ")
			c, err := ParseConfig(b, "cfg.json")
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid keyholders refused: %v", err)
				}
				for s, name := range k {
					var serial uint32
					if err := json.Unmarshal([]byte(s), &serial); err != nil {
						t.Fatal(err)
					}
					if got := c.Keyholder(serial); got != name {
						t.Errorf("Keyholder(%d) = %q, want %q", serial, got, name)
					}
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("want *ConfigError, got %v", err)
			}
			if ce.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", ce.Field, tc.field, err)
			}
			if ce.Line == 0 {
				t.Errorf("no line named: %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

// Without the object nobody is named, and nothing else changes.
func TestKeyholdersOptional(t *testing.T) {
	b, _ := json.Marshal(validConfigJSON(t))
	c, err := ParseConfig(b, "cfg.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Keyholder(10000001); got != "" {
		t.Fatalf("a keyholder without a keyholders object: %q", got)
	}
	if _, err := ParseConfig([]byte(strings.Replace(string(b), `"repository"`, `"keyholders": null, "repository"`, 1)), "cfg.json"); err == nil {
		t.Fatal("keyholders: null accepted")
	}
}
