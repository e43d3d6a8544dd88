package ceremony

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/tuf"
)

// auditSignedDiff does what docs/signed-diff.md ("How an auditor checks a
// signed diff") tells an auditor to do with the files on the media, with
// nothing but sha256, JSON and line splitting, never our decoders: the
// payload's digests match diff.canonical, policy.json and the new ledger;
// the canonical form's header names the policy and the previous ledger;
// its decision lines are the payload's decisions; its entries, counted by
// category and reason, are the payload's counts; and the diff recomputed
// from the export, the published state, and the policy.json and
// decisions.jsonl on the media has the digest the keyholders approved.
//
// now is the ceremony's clock, for the recomputation.
func auditSignedDiff(t *testing.T, media, exportFile, published string, root *tuf.Metadata[tuf.Root], approved string, now time.Time) {
	t.Helper()
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(media, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sumHex := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	// Step 1 (the signatures) is verify_independently.py's and
	// VerifyStableMedia's; here, the payload.
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(read("signed-diff.json"), &env); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		StableVersion        int64  `json:"stable_version"`
		PreviousLedgerSHA256 string `json:"previous_ledger_sha256"`
		NewLedgerSHA256      string `json:"new_ledger_sha256"`
		PolicySHA256         string `json:"policy_sha256"`
		TargetMode           string `json:"target_mode"`
		Naming               string `json:"naming"`
		DiffSHA256           string `json:"diff_sha256"`
		Counts               struct {
			Added    int64 `json:"added"`
			HeldBack []struct {
				Reason string `json:"reason"`
				Count  int64  `json:"count"`
			} `json:"held_back"`
			Removed         int64 `json:"removed"`
			ChangedAccepted int64 `json:"changed_accepted"`
			ChangedRefused  int64 `json:"changed_refused"`
			ChangedDropped  int64 `json:"changed_dropped"`
			Unchanged       int64 `json:"unchanged"`
		} `json:"counts"`
		Decisions []struct {
			Kind, Flag, Subject string
			Count               int64
			Decision, Reason    string
		} `json:"decisions"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}

	// Step 2: the inputs.
	if got := sumHex(read(PolicyFile)); got != p.PolicySHA256 {
		t.Errorf("policy.json: sha256 %s, payload %s", got, p.PolicySHA256)
	}
	if got := sumHex(read(fmt.Sprintf("stable/ledger/%d.ledger", p.StableVersion))); got != p.NewLedgerSHA256 {
		t.Errorf("new ledger: sha256 %s, payload %s", got, p.NewLedgerSHA256)
	}
	prevLedgers, _ := filepath.Glob(filepath.Join(published, "ledger", "*.ledger"))
	if len(prevLedgers) != 1 {
		t.Fatalf("published ledgers: %v", prevLedgers)
	}
	prev, _ := os.ReadFile(prevLedgers[0])
	if got := sumHex(prev); got != p.PreviousLedgerSHA256 {
		t.Errorf("previous ledger: sha256 %s, payload %s", got, p.PreviousLedgerSHA256)
	}

	// Step 3: diff.canonical, line by line.
	canon := read("diff.canonical")
	if got := sumHex(canon); got != p.DiffSHA256 || got != approved {
		t.Fatalf("sha256 of diff.canonical %s, payload %s, approved %s", got, p.DiffSHA256, approved)
	}
	sc := bufio.NewScanner(strings.NewReader(string(canon)))
	sc.Buffer(nil, 1<<20)
	var header []string
	for len(header) < 10 && sc.Scan() {
		header = append(header, sc.Text())
	}
	if header[0] != "keyceremony-stable-diff 4" || header[6] != "policy-sha256 "+p.PolicySHA256 || header[4] != "previous-ledger-sha256 "+p.PreviousLedgerSHA256 ||
		header[7] != "target-mode "+p.TargetMode || header[8] != "naming "+p.Naming || p.TargetMode == "" || p.Naming == "" {
		t.Errorf("canonical header: %q", header)
	}
	var nd int
	if _, err := fmt.Sscanf(header[9], "decisions %d", &nd); err != nil || nd != len(p.Decisions) {
		t.Fatalf("%q: the payload has %d decisions", header[9], len(p.Decisions))
	}
	for i := 0; i < nd && sc.Scan(); i++ {
		d := p.Decisions[i]
		count := "-"
		if d.Kind == "limit" {
			count = fmt.Sprint(d.Count)
		}
		mid := []string{d.Subject, count}
		if d.Kind == "flag" {
			mid = []string{d.Flag, d.Subject} // flag TAB kind TAB subject
		}
		if want := strings.Join(append(append([]string{d.Kind}, mid...), d.Decision, d.Reason), "\t"); sc.Text() != want {
			t.Errorf("decision %d: canonical %q, payload %q", i, sc.Text(), want)
		}
	}
	counts := map[string]int64{}
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if strings.HasPrefix(f[2], "simple/") {
			continue
		}
		if f[0] == "removed" || f[0] == "added" {
			// A removed file counts as removed whatever its reason
			// (taken-down: a takedown), an added one as added (expedited too).
			f[1] = "-"
		}
		counts[f[0]+"/"+f[1]]++
	}
	c := p.Counts
	want := map[string]int64{"added/-": c.Added, "removed/-": c.Removed, "unchanged/-": c.Unchanged,
		"changed/accepted": c.ChangedAccepted, "changed/kept-old": c.ChangedRefused, "changed/dropped": c.ChangedDropped}
	for _, h := range c.HeldBack {
		want["held/"+h.Reason] = h.Count
	}
	for k, v := range want {
		if v == 0 {
			delete(want, k)
		}
	}
	if fmt.Sprint(sorted(counts)) != fmt.Sprint(sorted(want)) {
		t.Errorf("counted in diff.canonical %v, payload %v", sorted(counts), sorted(want))
	}
	if len(p.Decisions) == 0 {
		t.Errorf("the audited ceremony made no decision: %+v", p.Decisions)
	}

	// Step 4: the diff again, from the inputs and the files on the media.
	rootFile := filepath.Join(t.TempDir(), "root.json")
	rb, err := root.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(rootFile, rb, 0o644)
	d, err := RunStableDiff(StableOptions{Export: exportFile, Published: published, Root: rootFile,
		Policy: filepath.Join(media, PolicyFile), Decisions: filepath.Join(media, DecisionsFile), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h := sha256.New()
	if err := d.WriteCanonical(h); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); d.Digest != p.DiffSHA256 || got != p.DiffSHA256 {
		t.Errorf("recomputed digest %s (canonical form %s), payload %s", d.Digest, got, p.DiffSHA256)
	}
	var again strings.Builder
	d.WriteCanonical(&again)
	if again.String() != string(canon) {
		t.Error("the recomputed canonical form differs from diff.canonical")
	}
}

func sorted(m map[string]int64) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}
