package ceremony

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// copyInto copies the files of src (recursively) into dst.
func copyInto(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTwoStableCeremonies follows docs/runbook-stable.md twice: a first
// ceremony after the bootstrap (trusting upload times), then a second one
// from the published state and the next period's export, into which the
// generator injected a changed hash and a backdated file. The second must
// keep the old entry for the change, hold back and flag the backdated
// file, drop deleted files, and sign stable v3.
func TestTwoStableCeremonies(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	f.cfg.Repository = "pypi" // synth's exports
	b := f.bootstrap()
	bk := withBackup(t, b)
	boot, err := b.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	gen1 := now.Add(-91 * 24 * time.Hour)
	exp1 := filepath.Join(dir, "export1.jsonl")
	w, _ := os.Create(exp1)
	if err := synth.Generate(w, synth.Params{Seed: 3, Files: 3000, Generated: gen1}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	first := &StableSigning{Root: boot.Root, Published: filepath.Join(dir, "boot"), Export: exp1, Devices: f.devices, PIN: f.pins, Now: now, Backup: bk}
	d1, err := first.Diff()
	if err != nil {
		t.Fatal(err)
	}
	if !d1.Header.TrustsUploadTimes {
		t.Fatal("the first ceremony must say it trusts upload times")
	}
	approve := d1.Digest
	d1.Close()
	r1, err := first.Sign(approve, filepath.Join(dir, "media1"))
	if err != nil {
		t.Fatal(err)
	}
	r1.Diff.Close()

	// The published state: the root chain and targets, the newest stable
	// metadata and its ledger.
	pub := filepath.Join(dir, "published")
	copyInto(t, filepath.Join(dir, "boot", "metadata"), filepath.Join(pub, "metadata"))
	copyInto(t, filepath.Join(dir, "media1", "stable", "metadata"), filepath.Join(pub, "metadata"))
	copyInto(t, filepath.Join(dir, "media1", "stable", "ledger"), filepath.Join(pub, "ledger"))

	exp2 := filepath.Join(dir, "export2.jsonl")
	in, _ := os.Open(exp1)
	w, _ = os.Create(exp2)
	inj, err := synth.Next(in, w, synth.NextParams{Seed: 4, NewFiles: 300, Deletions: 5, ChangedHash: 2, Backdated: 2})
	in.Close()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	second := &StableSigning{Root: boot.Root, Published: pub, Export: exp2, Devices: f.devices, PIN: f.pins, Now: now, Backup: bk}
	d2, err := second.Diff()
	if err != nil {
		t.Fatal(err)
	}
	// The diff names the export by its verified trailer.
	ef, _ := os.Open(exp2)
	xr, err := export.NewReader(ef, exp2)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := xr.Next(); err != nil {
			break
		}
	}
	ef.Close()
	if want, ok := xr.Trailer(); !ok || d2.Export != want || want.Count == 0 {
		t.Fatalf("diff names export %+v, the export's trailer is %+v (%v)", d2.Export, want, ok)
	}
	got := map[string]*stableset.DiffEntry{}
	if err := d2.Entries(func(e *stableset.DiffEntry) error {
		c := *e
		got[e.Path] = &c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d2.Header.TrustsUploadTimes || d2.Header.PreviousStableVersion != 2 || d2.Header.StableVersion != 3 {
		t.Fatalf("second ceremony header: %+v", d2.Header)
	}
	for _, p := range inj.Changed {
		if e := got[p]; e == nil || e.Category != stableset.Changed || e.Reason != stableset.ReasonKeptOld {
			t.Errorf("changed %s: %+v", p, e)
		}
	}
	if len(inj.Changed) != 2 {
		t.Fatalf("%d changed files injected", len(inj.Changed))
	}
	// confirm_above.changed is 0: without a decision for each changed
	// file, nothing is signed, and the refusal names the limit and the
	// count.
	if _, err := second.Sign(d2.Digest, filepath.Join(dir, "refused")); !errors.Is(err, stableset.ErrUndecided) ||
		!strings.Contains(err.Error(), "confirm_above.changed is 0 and the diff changes 2 files; 2 have no decision") {
		t.Fatalf("undecided changes: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "refused")); !os.IsNotExist(err) {
		t.Fatal("a refused signing left a directory")
	}
	d2.Close()
	// The policy now expedites one young file, a security release, and
	// excludes the project of another: each is a red flag of its own.
	var young []*stableset.DiffEntry
	for _, e := range got {
		if e.Category == stableset.Held && e.Reason == "too-young" {
			young = append(young, e)
		}
	}
	slices.SortFunc(young, func(a, b *stableset.DiffEntry) int { return strings.Compare(a.Path, b.Path) })
	var fix, other *stableset.DiffEntry
	for _, e := range young {
		if fix == nil {
			fix = e
		} else if e.Project != fix.Project {
			other = e
			break
		}
	}
	if fix == nil || other == nil {
		t.Fatalf("no two young files of two projects in the export")
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"excluded": [%q], "expedite": [{"path": %q, "sha256": "%x", "reason": "PYSEC-2026-17"}]}`, other.Project, fix.Path, fix.NewSHA256)), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	second.Policy = pol
	// The room decides: keep the first one's old entry, drop the second,
	// expedite the fix, exclude the project.
	kept, dropped := inj.Changed[0], inj.Changed[1]
	decFile := filepath.Join(dir, "decisions.jsonl")
	os.WriteFile(decFile, []byte(`{"path": "`+dropped+`", "decision": "drop", "reason": "both contents are suspect"}
{"path": "`+kept+`", "decision": "keep-old", "reason": "PyPI never re-uploads a file"}
{"path": "`+fix.Path+`", "decision": "expedite", "reason": "advisory checked"}
{"project": "`+other.Project+`", "decision": "exclude", "reason": "must update fast"}
{"flag": "backdated", "subject": "`+inj.Backdated[0]+`", "decision": "confirm", "reason": "held back; the repository is asked why"}
{"flag": "backdated", "subject": "`+inj.Backdated[1]+`", "decision": "confirm", "reason": "held back; the repository is asked why"}
`), 0o644)
	if second.Decisions, err = decisions.Load(decFile); err != nil {
		t.Fatal(err)
	}
	undecided := d2.Digest
	if d2, err = second.Diff(); err != nil {
		t.Fatal(err)
	}
	if d2.Digest == undecided || d2.Undecided() != nil {
		t.Fatalf("decided diff: digest %s (undecided %s), %v", d2.Digest, undecided, d2.Undecided())
	}
	if d2.ExpeditedCount() != 1 || len(d2.PolicyChanges) != 1 || !d2.PolicyChanges[0].Decided {
		t.Fatalf("expedited %d, policy changes %+v", d2.ExpeditedCount(), d2.PolicyChanges)
	}
	for _, p := range inj.Backdated {
		if e := got[p]; e == nil || e.Category != stableset.Held || e.Reason != stableset.ReasonBackdated {
			t.Errorf("backdated %s: %+v", p, e)
		}
	}
	approve = d2.Digest
	d2.Close()
	// A wrong digest signs nothing.
	if _, err := second.Sign(strings.Repeat("a", 64), filepath.Join(dir, "refused")); !errors.Is(err, stableset.ErrApproval) {
		t.Fatalf("want ErrApproval, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "refused")); !os.IsNotExist(err) {
		t.Fatal("a refused signing left a directory")
	}
	r2, err := second.Sign(approve, filepath.Join(dir, "media2"))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Diff.Close()
	if r2.StableVersion != 3 {
		t.Fatalf("stable version %d", r2.StableVersion)
	}
	// The new stable keeps the old entries of the changed paths.
	st, err := os.ReadFile(filepath.Join(dir, "media2", "stable", "metadata", "3.stable.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tuf.Load[tuf.Targets](st, "3.stable.json"); err != nil {
		t.Fatal(err)
	}
	bins, _ := filepath.Glob(filepath.Join(dir, "media2", "stable", "metadata", "3.stable-*.json"))
	listed := map[string]tuf.TargetFile{}
	for _, bf := range bins {
		b, err := os.ReadFile(bf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := tuf.Load[tuf.Targets](b, bf)
		if err != nil {
			t.Fatal(err)
		}
		for p, tf := range m.Signed.Targets {
			listed[p] = tf
		}
	}
	if tf, ok := listed[kept]; !ok || tf.Hashes["sha256"] != hex.EncodeToString(got[kept].OldSHA256[:]) || tf.Length != got[kept].OldLength {
		t.Errorf("stable v3 does not keep the old entry of changed %s: %+v", kept, tf)
	}
	if tf, ok := listed[fix.Path]; !ok || tf.Hashes["sha256"] != hex.EncodeToString(fix.NewSHA256[:]) {
		t.Errorf("stable v3 does not list the expedited %s: %+v", fix.Path, tf)
	}
	if tf, ok := listed[dropped]; ok {
		t.Errorf("stable v3 lists dropped %s: %+v", dropped, tf)
	}
	for _, p := range inj.Backdated {
		if _, ok := listed[p]; ok {
			t.Errorf("stable v3 lists backdated %s", p)
		}
	}
	for _, p := range inj.Deleted {
		if _, ok := listed[p]; ok {
			t.Errorf("stable v3 still lists deleted %s", p)
		}
	}
	if err := VerifyStableMedia(filepath.Join(dir, "media2"), mustDelegation(t, boot.Targets), boot.Targets.Signed.Delegations.Keys); err != nil {
		t.Fatal(err)
	}
	auditSignedDiff(t, filepath.Join(dir, "media2"), exp2, pub, boot.Root, r2.Diff.Digest, time.Now())
	if stmt := r2.Diff; stmt.Summary.Dropped == 0 {
		t.Error("the audited ceremony dropped nothing")
	}
	// The signed diff names each decision with its reason.
	envb, _ := os.ReadFile(filepath.Join(dir, "media2", "signed-diff.json"))
	env, err := signeddiff.Load(envb, "signed-diff.json")
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := signeddiff.Verify(env, boot.Targets.Signed.Delegations.Keys, mustDelegation(t, boot.Targets).KeyIDs, mustDelegation(t, boot.Targets).Threshold)
	if err != nil {
		t.Fatal(err)
	}
	want := []decisions.Decision{
		{Path: dropped, Choice: decisions.Drop, Reason: "both contents are suspect"},
		{Path: kept, Choice: decisions.KeepOld, Reason: "PyPI never re-uploads a file"},
		{Path: fix.Path, Choice: decisions.Expedite, Reason: "advisory checked"},
		{Project: other.Project, Choice: decisions.Exclude, Reason: "must update fast"},
		{Flag: "backdated", Subject: inj.Backdated[0], Choice: decisions.Confirm, Reason: "held back; the repository is asked why"},
		{Flag: "backdated", Subject: inj.Backdated[1], Choice: decisions.Confirm, Reason: "held back; the repository is asked why"},
	}
	slices.SortFunc(want, func(a, b decisions.Decision) int {
		return strings.Compare(decisions.SortKey(&a), decisions.SortKey(&b))
	})
	if !slices.Equal(stmt.Decisions, want) || stmt.Counts.ChangedDropped != 1 || stmt.Counts.ChangedRefused != 1 {
		t.Errorf("signed diff decisions %+v, counts %+v; want %+v", stmt.Decisions, stmt.Counts, want)
	}
}

func mustDelegation(t *testing.T, m *tuf.Metadata[tuf.Targets]) *tuf.DelegatedRole {
	t.Helper()
	d, ok := m.Signed.Delegation("stable")
	if !ok {
		t.Fatal("no stable delegation")
	}
	return d
}

func TestEntrySum(t *testing.T) {
	var h1, h2 [32]byte
	h2[0] = 1
	var a, b, c entrySum
	a.add("x", 1, h1, h2)
	a.add("y", 2, h2, h1)
	b.add("y", 2, h2, h1)
	b.add("x", 1, h1, h2)
	if a != b {
		t.Fatal("the sum depends on order")
	}
	c.add("x", 1, h1, h2)
	c.add("y", 3, h2, h1)
	if a == c {
		t.Fatal("a different length gave the same sum")
	}
	var e entrySum
	e.add("x", 1, h1, h1)
	e.add("y", 2, h2, h1)
	if a == e {
		t.Fatal("a different blake2b-256 gave the same sum")
	}
	var d entrySum
	d.add("x", 1, h1, h2)
	if d == a {
		t.Fatal("a missing entry gave the same sum")
	}
}

// TestStableMediaRefusesSwappedRole: the read-back refuses media on which
// one role's file stands in for another's, a leaf's or a mid's: each role
// has its own key, so the file fails its delegator's threshold.
func TestStableMediaRefusesSwappedRole(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	f.cfg.Repository = "pypi" // synth's exports
	b := f.bootstrap()
	bk := withBackup(t, b)
	boot, err := b.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(dir, "export.jsonl")
	w, _ := os.Create(exp)
	if err := synth.Generate(w, synth.Params{Seed: 5, Files: 2000, Generated: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ss := &StableSigning{Root: boot.Root, Published: filepath.Join(dir, "boot"), Export: exp, Devices: f.devices, PIN: f.pins, Now: now, Backup: bk}
	d, err := ss.Diff()
	if err != nil {
		t.Fatal(err)
	}
	approve := d.Digest
	d.Close()
	media := filepath.Join(dir, "media")
	res, err := ss.Sign(approve, media)
	if err != nil {
		t.Fatal(err)
	}
	res.Diff.Close()
	deleg, keyring := mustDelegation(t, boot.Targets), boot.Targets.Signed.Delegations.Keys
	if err := VerifyStableMedia(media, deleg, keyring); err != nil {
		t.Fatal(err)
	}
	l := res.Layout
	if l.NumMids() < 2 || l.LeavesPerMid() < 2 {
		t.Fatalf("layout %+v", l)
	}
	for _, swap := range [][2]string{{l.LeafName(0, 1), l.LeafName(0, 0)}, {l.LeafName(1, 0), l.LeafName(0, 0)}, {l.MidName(1), l.MidName(0)}} {
		bad := filepath.Join(t.TempDir(), "media")
		copyInto(t, media, bad)
		md := filepath.Join(bad, "stable", "metadata")
		file := func(role string) string { return filepath.Join(md, fmt.Sprintf("%d.%s.json", res.StableVersion, role)) }
		b, err := os.ReadFile(file(swap[0]))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file(swap[1]), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := VerifyStableMedia(bad, deleg, keyring); !errors.Is(err, tuf.ErrThreshold) {
			t.Errorf("%s's file as %s: %v, want a threshold refusal", swap[0], swap[1], err)
		}
	}
	// The media carry the policy file the room reviewed, byte for byte,
	// and the signed diff names it: an edited copy is refused.
	pol, err := os.ReadFile(filepath.Join(media, PolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pol, policy.Default().Bytes()) {
		t.Fatalf("%s on the media is not the policy applied", PolicyFile)
	}
	bad := filepath.Join(t.TempDir(), "media")
	copyInto(t, media, bad)
	edited := bytes.Replace(pol, []byte("90"), []byte("1"), 1)
	if bytes.Equal(edited, pol) {
		t.Fatal("the default policy has no 90 to edit")
	}
	if err := os.Remove(filepath.Join(bad, PolicyFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, PolicyFile), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := VerifyStableMedia(bad, deleg, keyring); !errors.Is(err, tuf.ErrHash) || !strings.Contains(err.Error(), PolicyFile) {
		t.Errorf("an edited %s: %v, want a hash refusal naming it", PolicyFile, err)
	}
	// The ledgers and diff.canonical are read beside the bins, but the
	// verdicts come in the order of a read in sequence: with the ledger,
	// a leaf bin and diff.canonical all edited, the ledger's refusal;
	// with the leaf and diff.canonical, the leaf's.
	for _, tc := range []struct {
		name   string
		ledger bool
		want   error
		names  string
	}{
		{"ledger, leaf and diff.canonical", true, tuf.ErrHash, "does not match what"},
		{"leaf and diff.canonical", false, tuf.ErrThreshold, ""},
	} {
		bad := filepath.Join(t.TempDir(), "media")
		copyInto(t, media, bad)
		md := filepath.Join(bad, "stable", "metadata")
		file := func(role string) string { return filepath.Join(md, fmt.Sprintf("%d.%s.json", res.StableVersion, role)) }
		b, err := os.ReadFile(file(l.LeafName(0, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file(l.LeafName(0, 0)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		flip := func(p string) {
			b, err := os.ReadFile(p)
			if err != nil || len(b) < 100 {
				t.Fatalf("%s: %v", p, err)
			}
			b[len(b)/2] ^= 0x01
			os.Remove(p) // the media's files may be linked to the work files
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		flip(filepath.Join(bad, "diff.canonical"))
		if tc.ledger {
			flip(filepath.Join(bad, "stable", "ledger", fmt.Sprintf("%d.ledger", res.StableVersion)))
		}
		err = VerifyStableMedia(bad, deleg, keyring)
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.names) || strings.Contains(fmt.Sprint(err), "diff.canonical") {
			t.Errorf("%s edited: %v, want %v", tc.name, err, tc.want)
		}
	}
}
