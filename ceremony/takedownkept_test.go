package ceremony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

// TestTakedownFreshAndKept: the administrator's second ceremony with a
// decisions file that takes down a stable file the export still lists,
// signed twice from the same inputs: once from a fresh pass (stable sign
// with no kept pass), once from the pass `stable diff` kept (stable diff
// --backup keeps it, `stable sign --batch --approve DIGEST` signs from it
// after its check). Both sign; the stable metadata, the ledger and the
// signed diff are the same bytes (but for the signatures and the bins'
// keys, new at each ceremony); the taken-down path
// is in no bin. A take-down of a path the stable set does not hold is
// refused the same way by both, naming the path, and writes no medium,
// even when a kept pass for the approved digest lies in the work
// directory.
func TestTakedownFreshAndKept(t *testing.T) {
	h := newHistory(t)
	h.export(synth.NextParams{})
	r1 := h.ceremony()
	media1 := filepath.Join(h.dir, "media1")
	var stable []string
	for p := range stableEntries(t, media1, r1.StableVersion) {
		if strings.HasPrefix(p, "packages/") {
			stable = append(stable, p)
		}
	}
	slices.Sort(stable)
	if len(stable) < 10 {
		t.Fatalf("stable v%d lists %d files", r1.StableVersion, len(stable))
	}
	victim := stable[len(stable)/2]
	export, _ := h.export(synth.NextParams{Seed: 5, NewFiles: 20})
	if b, err := os.ReadFile(export); err != nil || !bytes.Contains(b, []byte(`"`+victim+`"`)) {
		t.Fatalf("the second export does not list %s (%v): the takedown would not be of a listed file", victim, err)
	}
	pub := h.published[len(h.published)-1]
	decs := func(name, path string) *decisions.Set {
		t.Helper()
		f := filepath.Join(h.dir, name)
		if err := os.WriteFile(f, []byte(`{"path": "`+path+`", "decision": "take-down", "reason": "malware reported, PYSEC-2026-77"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := decisions.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	takedown := decs("takedown.jsonl", victim)
	// Each signing has its own copy of the backup medium (each medium
	// has one history) and its own work directory.
	backupOf := func(name string) string {
		t.Helper()
		b := filepath.Join(h.dir, name)
		if err := copyDir(h.backup, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	signing := func(backup, work string, dec *decisions.Set) *StableSigning {
		s := h.signing(pub)
		s.Backup, s.TempDir, s.Decisions = backup, work, dec
		return s
	}
	var show bytes.Buffer

	// Fresh: stable diff without keeping, then stable sign.
	freshWork := t.TempDir()
	s := signing(backupOf("backup-fresh"), freshWork, takedown)
	d, err := s.Diff()
	if err != nil {
		t.Fatalf("fresh diff: %v", err)
	}
	digest := d.Digest
	d.Close()
	s.Show = &show
	fresh := filepath.Join(h.dir, "media-fresh")
	rf, err := s.Sign(digest, fresh)
	if err != nil {
		t.Fatalf("signing from a fresh pass: %v", err)
	}
	rf.Diff.Close()
	if !strings.Contains(show.String(), "not reusing the reviewed pass: no reviewed pass") {
		t.Fatalf("the fresh signing did not make its own pass:\n%s", show.String())
	}

	// Kept: stable diff --backup keeps the pass; the signing reuses it.
	keptWork := t.TempDir()
	keptBackup := backupOf("backup-kept")
	s = signing(keptBackup, keptWork, takedown)
	d, err = s.Diff()
	if err != nil {
		t.Fatalf("kept diff: %v", err)
	}
	if d.Digest != digest {
		t.Fatalf("the second stable diff has digest %s, the first %s", d.Digest, digest)
	}
	if _, err := d.Keep(keptWork); err != nil {
		t.Fatal(err)
	}
	d.Close()
	show.Reset()
	s.Show = &show
	kept := filepath.Join(h.dir, "media-kept")
	rk, err := s.Sign(digest, kept)
	if err != nil {
		t.Fatalf("signing from the kept pass: %v", err)
	}
	rk.Diff.Close()
	if strings.Contains(show.String(), "not reusing") || !strings.Contains(show.String(), "reusing the reviewed pass") {
		t.Fatalf("the signing did not reuse the kept pass:\n%s", show.String())
	}

	// The same stable set, byte for byte but for the signatures.
	v := rf.StableVersion
	if rk.StableVersion != v {
		t.Fatalf("stable v%d from the kept pass, v%d fresh", rk.StableVersion, v)
	}
	// What must match: a TUF file's signed part, with the delegated
	// roles' keys left out (each signing makes new ephemeral bin keys, so
	// their ids differ; every role must still name as many keys), and the
	// signed diff's payload (ECDSA signatures differ each time).
	signed := func(p string) []byte {
		t.Helper()
		b := mustRead(t, p)
		var env struct {
			Payload []byte          `json:"payload"`
			Signed  json.RawMessage `json:"signed"`
		}
		if !strings.HasSuffix(p, ".json") {
			return b
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if env.Payload != nil {
			return env.Payload
		}
		var m map[string]any
		if err := json.Unmarshal(env.Signed, &m); err != nil || m == nil {
			t.Fatalf("%s: no signed part (%v)", p, err)
		}
		if del, ok := m["delegations"].(map[string]any); ok {
			del["keys"] = len(del["keys"].(map[string]any))
			for _, r := range del["roles"].([]any) {
				r := r.(map[string]any)
				r["keyids"] = len(r["keyids"].([]any))
			}
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var names []string
	for _, pat := range []string{"stable/metadata/*.json", "stable/ledger/*", "signed-diff.json", "diff.canonical", "decisions.jsonl"} {
		got, _ := filepath.Glob(filepath.Join(fresh, pat))
		for _, g := range got {
			rel, _ := filepath.Rel(fresh, g)
			names = append(names, rel)
		}
	}
	if len(names) < 6 {
		t.Fatalf("the fresh medium holds only %v", names)
	}
	for _, n := range names {
		a, b := signed(filepath.Join(fresh, n)), signed(filepath.Join(kept, n))
		if !bytes.Equal(a, b) {
			i := 0
			for i < len(a) && i < len(b) && a[i] == b[i] {
				i++
			}
			lo, hi := max(i-80, 0), min(i+80, len(a), len(b))
			t.Errorf("%s differs between the fresh and the kept pass at byte %d: %q, %q", n, i, a[lo:hi], b[lo:hi])
		}
	}
	for _, m := range []string{fresh, kept} {
		if _, ok := stableEntries(t, m, v)[victim]; ok {
			t.Errorf("%s: the taken-down %s is in a bin", m, victim)
		}
		if !bytes.Contains(mustRead(t, filepath.Join(m, "diff.canonical")), []byte(victim)) {
			t.Errorf("%s: the signed diff does not name the taken-down %s", m, victim)
		}
	}

	// A take-down of a path the stable set does not hold (the export does
	// not list it either): refused naming it, by the fresh pass and by
	// the signing that finds a kept pass for the approved digest (the
	// decisions differ, so the pass is made again and refused alike).
	absent := "packages/00/00/00/not-listed-1.0.tar.gz"
	bad := decs("absent.jsonl", absent)
	s = signing(backupOf("backup-absent"), t.TempDir(), bad)
	_, errDiff := s.Diff()
	refusedWork := t.TempDir()
	s = signing(backupOf("backup-absent-kept"), refusedWork, takedown)
	d, err = s.Diff()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Keep(refusedWork); err != nil {
		t.Fatal(err)
	}
	d.Close()
	s.Decisions = bad
	_, errFresh := signing(backupOf("backup-absent-fresh"), t.TempDir(), bad).Sign(digest, filepath.Join(h.dir, "media-absent-fresh"))
	_, errKept := s.Sign(digest, filepath.Join(h.dir, "media-absent-kept"))
	for name, err := range map[string]error{"stable diff": errDiff, "fresh signing": errFresh, "signing beside a kept pass": errKept} {
		if !errors.Is(err, stableset.ErrDecision) || !strings.Contains(fmt.Sprint(err), "absent.jsonl:1: path "+absent+": not in the stable set") {
			t.Errorf("%s with a take-down of %s: %v, want it refused naming the path", name, absent, err)
		}
	}
	for _, m := range []string{"media-absent-fresh", "media-absent-kept"} {
		if _, err := os.Stat(filepath.Join(h.dir, m)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written (%v)", m, err)
		}
	}
}
