package ceremony

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The configuration's optional "keyholders" object names the person who
// holds each device, keyed by the device's serial in decimal:
//
//	"keyholders": {"10000001": "Alice Example", "10000002": "Bob Example"}
//
// The run sheet and the ceremony's screens name people by it ("keyholder
// Alice Example, device 10000001"). When it is given it names every
// device the roles use and nothing else, and one person holds at most one
// key of each role: a threshold counts people, and a person holding two
// of a role's devices would meet a threshold of two alone.

// maxKeyholderName bounds a name, in characters: it is printed in tables.
const maxKeyholderName = 64

// checkKeyholders validates c.Keyholders; errors name the field.
func (c *Config) checkKeyholders() error {
	if c.Keyholders == nil {
		return nil
	}
	fail := func(field string, format string, a ...any) error {
		return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
	}
	known := map[uint32]bool{}
	for _, s := range c.Devices() {
		known[s] = true
	}
	serials := make([]string, 0, len(c.Keyholders))
	for k := range c.Keyholders {
		serials = append(serials, k)
	}
	sort.Strings(serials)
	for _, k := range serials {
		field := "keyholders." + k
		n, err := strconv.ParseUint(k, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != k {
			return fail(field, "%q is not a device serial (decimal digits, no leading zero)", k)
		}
		if !known[uint32(n)] {
			return fail(field, "device %d holds no root, targets or stable key", n)
		}
		if err := checkKeyholderName(c.Keyholders[k]); err != nil {
			return fail(field, "%w", err)
		}
	}
	for _, s := range c.Devices() {
		if c.Keyholder(s) == "" {
			return fail("keyholders", "device %d has no keyholder: name the keyholder of every device, or of none", s)
		}
	}
	for _, r := range []struct {
		name string
		spec RoleSpec
	}{{"root", c.Root}, {"targets", c.Targets}, {"stable", c.Stable}} {
		holder := map[string]uint32{}
		for _, ks := range r.spec.Keys {
			who := strings.ToLower(c.Keyholder(ks.Device))
			if other, dup := holder[who]; dup {
				return fail("keyholders."+strconv.FormatUint(uint64(ks.Device), 10),
					"%q holds devices %d and %d, both with a %s key: a threshold needs distinct people", c.Keyholder(ks.Device), other, ks.Device, r.name)
			}
			holder[who] = ks.Device
		}
	}
	return nil
}

// checkKeyholderName accepts a printable name without surrounding or
// doubled spaces, of at most maxKeyholderName characters.
func checkKeyholderName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case !utf8.ValidString(name):
		return fmt.Errorf("not UTF-8")
	case utf8.RuneCountInString(name) > maxKeyholderName:
		return fmt.Errorf("name longer than %d characters", maxKeyholderName)
	case strings.TrimSpace(name) != name || strings.Contains(name, "  "):
		return fmt.Errorf("%q: spaces around the name or doubled", name)
	}
	for _, r := range name {
		// unicode.IsPrint refuses control and format characters
		// (bidirectional overrides among them) and every space but ' '.
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%q: character %U is not printable", name, r)
		}
	}
	return nil
}

// Keyholder returns the name of the person who holds device serial, or ""
// when the configuration names no keyholders.
func (c *Config) Keyholder(serial uint32) string {
	return c.Keyholders[strconv.FormatUint(uint64(serial), 10)]
}
