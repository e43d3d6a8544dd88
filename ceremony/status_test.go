package ceremony

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/tuf"
)

// TestStatus: what the second stable medium and the bootstrap media say
// about expiry, at times injected around the expiries written in them.
func TestStatus(t *testing.T) {
	fx := auditMedia(t)
	b, err := os.ReadFile(filepath.Join(fx.media2, "stable", "metadata", "3.stable.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := tuf.Load[tuf.Targets](b, "3.stable.json")
	if err != nil {
		t.Fatal(err)
	}
	stableExp := st.Signed.Expires.Time()
	mids := len(st.Signed.Delegations.Roles)
	month := 30 * 24 * time.Hour

	// Long before: nothing within 30 days.
	rep, err := Status(StatusOptions{Dir: fx.media2, At: stableExp.Add(-2 * month), Margin: month})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Warnings) != 0 || rep.Medium != MediumStable || rep.NextStableCeremony == nil || !rep.NextStableCeremony.Equal(stableExp) {
		t.Fatalf("report %+v", rep)
	}
	groups := map[string]StatusEntry{}
	for _, e := range rep.Roles {
		groups[e.Role] = e
	}
	if g := groups["stable mid roles"]; g.Count != mids || g.Version != 3 || g.State != "ok" {
		t.Fatalf("mid roles %+v, want %d", g, mids)
	}
	if g := groups["stable leaf bins"]; g.Count < mids || !strings.HasPrefix(g.File, "3.stable-") || strings.Count(g.File, ".") != 3 {
		t.Fatalf("leaf bins %+v", g)
	}
	if g := groups["stable"]; g.Count != 1 || g.File != "3.stable.json" || !g.Expires.Equal(stableExp) || g.Remaining != "60d" {
		t.Fatalf("stable %+v", g)
	}

	// Ten days before: within the margin, every stable group warned.
	rep, err = Status(StatusOptions{Dir: fx.media2, At: stableExp.Add(-10 * 24 * time.Hour), Margin: month})
	if !errors.Is(err, ErrExpiresSoon) || errors.Is(err, ErrUnreadable) || rep.OK || len(rep.Warnings) != 3 {
		t.Fatalf("within the margin: %v %+v", err, rep)
	}
	if !strings.Contains(rep.Warnings[0], "expires at "+stableExp.UTC().Format(time.RFC3339)+", in 10d, within the margin of 30d") {
		t.Fatalf("warning %q", rep.Warnings[0])
	}
	// The same time with a margin of a week: nothing.
	if _, err := Status(StatusOptions{Dir: fx.media2, At: stableExp.Add(-10 * 24 * time.Hour), Margin: 7 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	// After: expired.
	rep, err = Status(StatusOptions{Dir: fx.media2, At: stableExp.Add(time.Hour), Margin: month})
	if !errors.Is(err, ErrExpiresSoon) || rep.Roles[0].State != "expired" || !strings.Contains(rep.Warnings[0], "expired at") {
		t.Fatalf("expired: %v %+v", err, rep)
	}

	// Bootstrap media: root, targets and the empty stable; unstable is the
	// repository's.
	rep, err = Status(StatusOptions{Dir: fx.boot, At: fx.root.Signed.Expires.Time().Add(-24 * time.Hour), Margin: month})
	if !errors.Is(err, ErrExpiresSoon) {
		t.Fatalf("a day before root expires: %v", err)
	}
	var roles []string
	for _, e := range rep.Roles {
		roles = append(roles, e.Role+":"+e.State)
	}
	if got := strings.Join(roles, " "); got != "root:within margin targets:within margin stable:expired" {
		t.Fatalf("roles %s", got)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "unstable") {
		t.Fatalf("notes %q", rep.Notes)
	}

	// Not a medium: could not run.
	if _, err := Status(StatusOptions{Dir: t.TempDir()}); !errors.Is(err, ErrUnreadable) || !errors.Is(err, ErrUnknownMedium) {
		t.Fatalf("empty directory: %v", err)
	}
}
