package stableset

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/tuf"
)

// TestLedgerTarget: stable binds the ledger of its own version, or of an
// earlier one (re-signed by a key rotation); anything else is refused,
// naming what it lists.
func TestLedgerTarget(t *testing.T) {
	entry := tuf.TargetFile{Length: 3, Hashes: map[string]string{"sha256": strings.Repeat("ab", 32)}}
	for _, c := range []struct {
		targets []string
		version int64
		want    int64
		err     string
	}{
		{[]string{"ledger/7.ledger"}, 7, 7, ""},
		{[]string{"ledger/6.ledger"}, 7, 6, ""},
		{[]string{"packages/a/b/c/d.whl"}, 7, 0, ""},
		{nil, 1, 0, ""},
		{[]string{"ledger/8.ledger"}, 7, 0, `lists ledger "ledger/8.ledger": want ledger/<N>.ledger, N a stable version up to 7`},
		{[]string{"ledger/07.ledger"}, 7, 0, `lists ledger "ledger/07.ledger"`},
		{[]string{"ledger/+7.ledger"}, 7, 0, `lists ledger "ledger/+7.ledger"`},
		{[]string{"ledger/-1.ledger"}, 7, 0, `lists ledger "ledger/-1.ledger"`},
		{[]string{"ledger/7.json"}, 7, 0, `lists ledger "ledger/7.json"`},
		{[]string{"ledger/.ledger"}, 7, 0, `lists ledger "ledger/.ledger"`},
		{[]string{"ledger/7.ledger", "ledger/6.ledger"}, 7, 0, "lists two ledgers, ledger/6.ledger and ledger/7.ledger"},
	} {
		m := tuf.NewTargets(c.version, time.Now())
		for _, p := range c.targets {
			m.Signed.Targets[p] = entry
		}
		path, n, tf, ok, err := LedgerTarget(m)
		if c.err != "" {
			if !errors.Is(err, ErrPublished) || !strings.Contains(err.Error(), c.err) || ok {
				t.Errorf("%q at v%d: %v, want %q", c.targets, c.version, err, c.err)
			}
			continue
		}
		if err != nil || ok != (c.want != 0) || n != c.want || (ok && (path != c.targets[0] || tf.Length != 3)) {
			t.Errorf("%q at v%d: %q %d %v %v", c.targets, c.version, path, n, ok, err)
		}
	}
}

// FuzzLedgerTarget: whatever path stable lists under ledger/, a ledger
// accepted is named ledger/<N>.ledger, N in canonical decimal, at most
// stable's version.
func FuzzLedgerTarget(f *testing.F) {
	for _, p := range []string{"ledger/7.ledger", "ledger/6.ledger", "ledger/07.ledger", "ledger/8.ledger", "ledger/-1.ledger", "ledger/a/1.ledger", "ledger/1e3.ledger"} {
		f.Add(p, int64(7))
	}
	f.Fuzz(func(t *testing.T, p string, version int64) {
		m := tuf.NewTargets(version, time.Now())
		m.Signed.Targets[p] = tuf.TargetFile{Length: 1}
		path, n, _, ok, err := LedgerTarget(m)
		if err != nil {
			if !errors.Is(err, ErrPublished) || ok {
				t.Fatalf("%q: %v", p, err)
			}
			return
		}
		if !ok {
			if strings.HasPrefix(p, "ledger/") {
				t.Fatalf("%q under ledger/ not found", p)
			}
			return
		}
		if path != p || p != "ledger/"+strconv.FormatInt(n, 10)+".ledger" || n > version || n < 1 {
			t.Fatalf("%q at v%d accepted as ledger %d", p, version, n)
		}
	})
}
