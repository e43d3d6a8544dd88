package stableset

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"
)

// TestReadPublishedRefuses: the published stable the pipeline starts from
// is found, loaded and checked by tuf's trusted-metadata API, as an
// attacker who controls the published directory would test it.
func TestReadPublishedRefuses(t *testing.T) {
	c := newCeremony(t)
	other, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	stable := func(t *testing.T, version int64, signers ...keys.Signer) []byte {
		m := tuf.NewTargets(version, t2.Add(24*time.Hour))
		if err := m.Sign(signers...); err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s := c.stableSigners
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  error
		n     int64
	}{
		{"the empty stable of a bootstrap", map[string][]byte{"1.stable.json": stable(t, 1, s...)}, nil, 1},
		{"the newest of two", map[string][]byte{"1.stable.json": stable(t, 1, s...), "2.stable.json": stable(t, 2, s...)}, nil, 2},
		{"below threshold", map[string][]byte{"1.stable.json": stable(t, 1, s[0])}, tuf.ErrThreshold, 0},
		{"wrong signer", map[string][]byte{"1.stable.json": stable(t, 1, s[0], other)}, tuf.ErrThreshold, 0},
		{"newest badly signed beside a good older one", map[string][]byte{"1.stable.json": stable(t, 1, s...), "2.stable.json": stable(t, 2, other)}, tuf.ErrThreshold, 0},
		{"version does not match the name", map[string][]byte{"3.stable.json": stable(t, 2, s...)}, tuf.ErrVersion, 0},
		{"non-canonical name", map[string][]byte{"1.stable.json": stable(t, 1, s...), "02.stable.json": stable(t, 2, s...)}, tuf.ErrVersionName, 0},
		{"no stable", map[string][]byte{"1.targets.json": stable(t, 1, s...)}, tuf.ErrNoVersion, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			md := filepath.Join(dir, metadataDir)
			if err := os.MkdirAll(md, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range tc.files {
				if err := os.WriteFile(filepath.Join(md, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := c.config(nil, dir)
			_, n, err := readPublished(&cfg)
			if tc.want == nil {
				if err != nil || n != tc.n {
					t.Fatalf("readPublished = %d, %v; want %d", n, err, tc.n)
				}
				return
			}
			if !errors.Is(err, ErrPublished) || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want ErrPublished and %v", err, tc.want)
			}
		})
	}
}
