package stableset

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"slices"

	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"

	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"

	"github.com/keyceremony/keyceremony/stableset/simpleindex"
)

var (
	t1 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 = t1.Add(91 * 24 * time.Hour)
)

type file struct {
	project, version, filename, content string
	upload                              time.Time
}

func rec(f file) export.Record {
	b2 := sha256.Sum256([]byte("b2:" + f.filename))
	return export.Record{
		Path: export.TargetPath(b2, f.filename), Project: f.project, Version: f.version, Filename: f.filename,
		Length: int64(len(f.content)), SHA256: sha256.Sum256([]byte(f.content)), BLAKE2b256: b2,
		UploadTime: f.upload, RequiresPython: ">=3.8",
	}
}

func exportOf(t testing.TB, gen time.Time, files []file) []byte {
	t.Helper()
	recs := make([]export.Record, len(files))
	for i, f := range files {
		recs[i] = rec(f)
	}
	return exportOfRecords(t, gen, recs)
}

func exportOfRecords(t testing.TB, gen time.Time, recs []export.Record) []byte {
	t.Helper()
	return exportOfRepository(t, "pypi", gen, recs)
}

func exportOfRepository(t testing.TB, repository string, gen time.Time, recs []export.Record) []byte {
	t.Helper()
	sortRecords(recs)
	var buf bytes.Buffer
	w, err := export.NewWriter(&buf, export.Header{Repository: repository, Generated: gen})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortRecords(r []export.Record) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].Path < r[j-1].Path; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

var (
	old      = time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)
	foo1     = file{"foo", "1.0", "foo-1.0.tar.gz", "foo one", old}
	foo2     = file{"foo", "2.0", "foo-2.0.tar.gz", "foo two", t1.Add(-10 * 24 * time.Hour)}
	bar1     = file{"bar", "1.0", "bar-1.0-py3-none-any.whl", "bar one", old}
	bar1evil = file{"bar", "1.0", "bar-1.0-py3-none-any.whl", "bar one EVIL", old}
	bar09    = file{"bar", "0.9", "bar-0.9.tar.gz", "bar nine", old}
	baz1     = file{"baz", "1.0", "baz-1.0.tar.gz", "baz backdated", old}
	qux3     = file{"qux", "3.0", "qux-3.0.tar.gz", "qux young", t2.Add(-24 * time.Hour)}
)

type ceremony struct {
	stableSigners []keys.Signer
	deleg         *tuf.DelegatedRole
	keyring       map[string]*keys.Key
	binKeys       BinKeySource
	// decisions, for every diff config makes.
	decisions *decisions.Set
	// now, when set, is every config's Now (time.Now() otherwise).
	now time.Time
}

func newCeremony(t testing.TB) *ceremony {
	var c ceremony
	c.keyring = map[string]*keys.Key{}
	var ids []string
	for i := 0; i < 2; i++ {
		s, err := keys.GenerateEd25519()
		if err != nil {
			t.Fatal(err)
		}
		c.stableSigners = append(c.stableSigners, s)
		c.keyring[s.Key().ID()] = s.Key()
		ids = append(ids, s.Key().ID())
	}
	c.binKeys = EphemeralBinKeys
	c.deleg = &tuf.DelegatedRole{Name: StableRole, KeyIDs: ids, Threshold: 2, Paths: []string{"packages/*/*/*/*", "simple/*/*"}}
	return &c
}

func (c *ceremony) config(export []byte, published string) Config {
	cfg := Config{Export: bytes.NewReader(export), ExportName: "export.jsonl", Now: time.Now(), Policy: policy.Default(), Decisions: c.decisions, Workers: 2}
	if !c.now.IsZero() {
		cfg.Now = c.now
	}
	if published != "" {
		cfg.Published, cfg.StableDelegation, cfg.StableKeys = published, c.deleg, c.keyring
	}
	return cfg
}

func (c *ceremony) sign(t *testing.T, cfg Config, out string) *SignResult {
	t.Helper()
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: cfg2now(cfg), OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	// A diff signs once.
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: cfg2now(cfg), OutDir: out + ".again"}); !errors.Is(err, ErrDiffUsed) {
		t.Errorf("second Sign of one diff: %v", err)
	}
	return res
}

func cfg2now(Config) time.Time { return t2 }

// loadStable reads and checks what a ceremony wrote, with our strict
// loader: stable verifies against the trusted delegation, every mid role
// against stable and every leaf bin against its mid, each role delegated
// to a key of its own, non-terminating, with the prefixes of the two-level
// layout; every target sits in the leaf its hash routes to. It returns the
// leaves' targets by leaf name.
func loadStable(t *testing.T, c *ceremony, out string, version int64) (*tuf.Metadata[tuf.Targets], map[string]map[string]tuf.TargetFile) {
	t.Helper()
	load := func(role string, delegator *tuf.Targets) *tuf.Metadata[tuf.Targets] {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(out, metadataDir, fmt.Sprintf("%d.%s.json", version, role)))
		if err != nil {
			t.Fatal(err)
		}
		m, err := tuf.Load[tuf.Targets](data, role)
		if err != nil {
			t.Fatalf("%s does not load strictly: %v", role, err)
		}
		msg, _ := m.SignedBytes()
		if delegator == nil {
			err = tuf.VerifyThreshold(StableRole, msg, m.Signatures, c.deleg.KeyIDs, c.deleg.Threshold, c.keyring)
		} else {
			err = delegator.VerifyDelegate(role, msg, m.Signatures)
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Signed.Version != version || !m.Signed.Expires.Time().Equal(t2.Add(120*24*time.Hour)) {
			t.Errorf("%s: version %d expires %v", role, m.Signed.Version, m.Signed.Expires)
		}
		return m
	}
	bitsOf := func(n int) int {
		b := 0
		for 1<<b < n {
			b++
		}
		if 1<<b != n {
			t.Fatalf("%d delegated roles is not a power of two", n)
		}
		return b
	}
	st := load(StableRole, nil)
	if len(st.Signed.Targets) != 1 {
		t.Errorf("stable lists %d targets, want its ledger only", len(st.Signed.Targets))
	}
	pathRoles, mids := tuf.SplitStable(&st.Signed)
	m0 := load(mids[0].Name, &st.Signed)
	layout, err := tuf.NewTwoLevel(StableRole, bitsOf(len(mids)), bitsOf(len(m0.Signed.Delegations.Roles)))
	if err != nil {
		t.Fatal(err)
	}
	keyRole := map[string]string{}
	checkRole := func(d tuf.DelegatedRole, name string, prefixes []string) {
		t.Helper()
		if d.Name != name || d.Terminating || len(d.Paths) != 0 || !slices.Equal(d.PathHashPrefixes, prefixes) || d.Threshold != 1 || len(d.KeyIDs) != 1 {
			t.Errorf("delegation %+v, want %s non-terminating with prefixes %v, one key", d, name, prefixes)
		}
		for _, id := range d.KeyIDs {
			if other, ok := keyRole[id]; ok {
				t.Errorf("roles %s and %s share key %s", other, d.Name, id)
			}
			keyRole[id] = d.Name
		}
	}
	// The takedown role, the one path role a ceremony writes: first,
	// terminating, exact paths, its own key, empty. Developer roles, whose
	// metadata the developers write, are terminating and have no file
	// on the medium.
	for _, d := range pathRoles {
		if _, dev := tuf.DeveloperProject(d.Name); dev {
			if !d.Terminating {
				t.Errorf("developer role %s is not terminating", d.Name)
			}
			if _, err := os.Stat(filepath.Join(out, metadataDir, fmt.Sprintf("%d.%s.json", version, d.Name))); err == nil {
				t.Errorf("the ceremony wrote %s's metadata", d.Name)
			}
			continue
		}
		if d.Name != tuf.TakedownRole || !d.Terminating || d.Threshold != 1 || len(d.KeyIDs) != 1 {
			t.Errorf("path role %+v, want the takedown role, terminating, one key", d)
		}
		for _, id := range d.KeyIDs {
			keyRole[id] = d.Name
		}
		if td := load(d.Name, &st.Signed); len(td.Signed.Targets) != 0 || td.Signed.Delegations != nil {
			t.Errorf("the takedown role lists %d targets, delegations %v", len(td.Signed.Targets), td.Signed.Delegations)
		}
	}
	bins := map[string]map[string]tuf.TargetFile{}
	for i, md := range mids {
		checkRole(md, layout.MidName(i), layout.MidPrefixes(i))
		mid := load(md.Name, &st.Signed)
		if len(mid.Signed.Targets) != 0 || len(mid.Signed.Delegations.Roles) != layout.LeavesPerMid() {
			t.Fatalf("mid %s lists %d targets and %d leaves", md.Name, len(mid.Signed.Targets), len(mid.Signed.Delegations.Roles))
		}
		for j, ld := range mid.Signed.Delegations.Roles {
			checkRole(ld, layout.LeafName(i, j), layout.LeafPrefixes(i, j))
			leaf := load(ld.Name, &mid.Signed)
			if leaf.Signed.Delegations != nil {
				t.Errorf("leaf %s delegates", ld.Name)
			}
			for p := range leaf.Signed.Targets {
				h := sha256.Sum256([]byte(p))
				if mi, lj := layout.LeafOfHash(&h); !md.Matches(p) || !ld.Matches(p) || mi != i || lj != j {
					t.Errorf("%s is in leaf %s, not where its hash routes it", p, ld.Name)
				}
			}
			bins[ld.Name] = leaf.Signed.Targets
		}
	}
	return st, bins
}

func stableTargets(bins map[string]map[string]tuf.TargetFile) map[string]tuf.TargetFile {
	all := map[string]tuf.TargetFile{}
	for _, b := range bins {
		for p, tf := range b {
			all[p] = tf
		}
	}
	return all
}

func TestPipelineTwoCeremonies(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "one"), filepath.Join(dir, "two")

	e1 := exportOf(t, t1, []file{foo1, foo2, bar1, bar09})
	d1, err := ComputeDiff(c.config(e1, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !d1.Header.TrustsUploadTimes || d1.Summary.Added != 3 || d1.Summary.Held != 1 {
		t.Fatalf("first diff: %+v %+v", d1.Header, d1.Summary)
	}
	var text bytes.Buffer
	d1.WriteText(&text)
	if !strings.Contains(text.String(), "upload times are TRUSTED") {
		t.Error("first ceremony does not say it trusts upload times")
	}
	d1.Close()
	res1 := c.sign(t, c.config(e1, ""), out1)
	// 3 files and 4 pages: the sizer's smallest shape, 2 mids of 2 leaves.
	if res1.StableVersion != 1 || res1.Layout.NumMids() != 2 || res1.Layout.LeavesPerMid() != 2 || len(res1.Meta) != 1+2+4 {
		t.Fatalf("first: %+v", res1)
	}
	_, bins1 := loadStable(t, c, out1, 1)
	all1 := stableTargets(bins1)
	// 3 files and 2 pages each for foo and bar.
	if len(all1) != 7 {
		t.Fatalf("stable v1 has %d targets", len(all1))
	}
	if _, ok := all1[rec(foo2).Path]; ok {
		t.Error("a young file entered stable")
	}

	// Ceremony 2: foo2 is now old; bar1 changed; bar09 deleted; baz1 is
	// backdated; qux3 is young.
	e2 := exportOf(t, t2, []file{foo1, foo2, bar1evil, baz1, qux3})
	// The default policy's confirm_above.changed is 0: the changed file
	// needs a decision, or nothing is signed.
	d2u, err := ComputeDiff(c.config(e2, out1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d2u.Sign(SignParams{Approve: d2u.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2})
	if !errors.Is(err, ErrUndecided) || !strings.Contains(err.Error(), "confirm_above.changed is 0 and the diff changes 1 files; 1 have no decision ("+rec(bar1evil).Path+")") ||
		!strings.Contains(err.Error(), "flag backdated "+rec(baz1).Path+" has no decision (confirm)") {
		t.Errorf("undecided change: %v", err)
	}
	assertNothing(t, dir, out2)
	d2u.Close()
	c.decisions = mustDecisions(t, `{"path": "`+rec(bar1evil).Path+`", "decision": "keep-old", "reason": "PyPI never re-uploads a file"}`+"\n"+`{"flag": "backdated", "subject": "`+rec(baz1).Path+`", "decision": "confirm", "reason": "held back; the repository is asked why"}`)
	d2, err := ComputeDiff(c.config(e2, out1))
	if err != nil {
		t.Fatal(err)
	}
	// foo gains foo2 and bar loses bar09: both projects' pages change.
	want := Counts{Added: 1, Held: 2, Backdated: 1, Removed: 1, Changed: 1, Unchanged: 1, PagesChanged: 4}
	if d2.Summary != want {
		t.Errorf("summary %+v, want %+v", d2.Summary, want)
	}
	cats := map[string]string{}
	d2.Entries(func(e *DiffEntry) error { cats[e.Path] = string(e.Category) + "/" + e.Reason; return nil })
	for f, w := range map[file]string{foo1: "unchanged/", foo2: "added/", bar1evil: "changed/kept-old", bar09: "removed/", baz1: "held/backdated", qux3: "held/too-young"} {
		if cats[rec(f).Path] != w {
			t.Errorf("%s: %q, want %q", f.filename, cats[rec(f).Path], w)
		}
	}
	checkGolden(t, "diff2.txt", d2.WriteText)
	checkGolden(t, "diff2.json", d2.WriteJSON)
	checkGolden(t, "diff2-full.txt", d2.WriteFullText)
	checkGolden(t, "diff2-full.json", d2.WriteFullJSON)
	digest := d2.Digest
	d2.Close()

	// A wrong approval signs nothing and writes nothing.
	for _, bad := range []string{"", strings.Repeat("0", 64), strings.ToUpper(digest), digest + " "} {
		_, err := Sign(c.config(e2, out1), SignParams{Approve: bad, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2})
		if !errors.Is(err, ErrApproval) {
			t.Errorf("approve %q: %v", bad, err)
		}
		assertNothing(t, dir, out2)
	}
	// The approval is checked against the digest as computed, not the
	// exported field.
	d2b, err := ComputeDiff(c.config(e2, out1))
	if err != nil {
		t.Fatal(err)
	}
	d2b.Digest = strings.Repeat("0", 64)
	if _, err := d2b.Sign(SignParams{Approve: d2b.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); !errors.Is(err, ErrApproval) {
		t.Errorf("tampered Digest field: %v", err)
	}
	assertNothing(t, dir, out2)
	d2b.Close()
	if _, err := d2b.Sign(SignParams{Approve: digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); !errors.Is(err, ErrDiffUsed) {
		t.Errorf("Sign after Close: %v", err)
	}
	// A failure midway leaves nothing either.
	errInjected := errors.New("injected failure")
	binWritten = func(n int64) error {
		if n >= 2 { // of 4 leaves
			return errInjected
		}
		return nil
	}
	_, err = Sign(c.config(e2, out1), SignParams{Approve: digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2})
	binWritten = nil
	if !errors.Is(err, errInjected) {
		t.Fatalf("injected failure: %v", err)
	}
	assertNothing(t, dir, out2)

	res2 := c.sign(t, c.config(e2, out1), out2)
	if res2.StableVersion != 2 || res2.Diff.Digest != digest {
		t.Fatalf("second: %+v", res2)
	}
	_, bins2 := loadStable(t, c, out2, 2)
	all2 := stableTargets(bins2)
	if tf := all2[rec(bar1).Path]; tf.Length != int64(len(bar1.content)) {
		t.Error("changed file: the old entry was not kept")
	}
	for _, f := range []file{baz1, qux3, bar09} {
		if _, ok := all2[rec(f).Path]; ok {
			t.Errorf("%s is in stable v2", f.filename)
		}
	}
	if _, ok := all2[rec(foo2).Path]; !ok {
		t.Error("foo2 did not enter stable v2")
	}
	// Signing again into an existing directory is refused.
	if _, err := Sign(c.config(e2, out1), SignParams{Approve: digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out2}); !errors.Is(err, outdir.ErrOutputExists) {
		t.Errorf("existing output: %v", err)
	}
	// A tampered published ledger is refused.
	lpath := filepath.Join(out2, ledgerDir, "2.ledger")
	lb, _ := os.ReadFile(lpath)
	lb[len(lb)-1] ^= 1
	os.WriteFile(lpath, lb, 0o644)
	if _, err := ComputeDiff(c.config(e2, out2)); err == nil {
		t.Error("tampered ledger accepted")
	}
	// Accepting the change by path replaces the entry.
	c.decisions = mustDecisions(t, `{"path": "`+rec(bar1evil).Path+`", "decision": "accept-new", "reason": "the admins say so"}`+"\n"+`{"flag": "backdated", "subject": "`+rec(baz1).Path+`", "decision": "confirm", "reason": "held back; the repository is asked why"}`)
	d3, err := ComputeDiff(c.config(e2, out1))
	if err != nil {
		t.Fatal(err)
	}
	if d3.Summary.Accepted != 1 || d3.Digest == digest {
		t.Errorf("accepted change: %+v", d3.Summary)
	}
	d3.Close()
	c.decisions = nil
}

// readTar returns the files of the page tars in dir.
func readTars(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tars, _ := filepath.Glob(filepath.Join(dir, "*.tar"))
	for _, name := range tars {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			out[h.Name] = b
		}
		f.Close()
	}
	return out
}

// Only the pages of projects whose stable view changed are made again; a
// yank of a stable file is such a change, and the diff says so; the
// other pages are listed again with their published hashes.
func TestPipelinePagesOnlyWhenChanged(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1, out2, out3 := filepath.Join(dir, "one"), filepath.Join(dir, "two"), filepath.Join(dir, "three")
	files := []file{foo1, bar1, bar09}
	res1 := c.sign(t, c.config(exportOf(t, t1, files), ""), out1)
	if res1.Pages != 4 {
		t.Fatalf("first ceremony rendered %d pages, want 4", res1.Pages)
	}
	_, bins1 := loadStable(t, c, out1, 1)
	pages1 := readTars(t, filepath.Join(out1, pagesDir))
	if len(pages1) != 4 {
		t.Fatalf("first ceremony wrote %d pages", len(pages1))
	}

	// Nothing changes: no page is made again, the bins list the same pages.
	d2, err := ComputeDiff(c.config(exportOf(t, t2, files), out1))
	if err != nil {
		t.Fatal(err)
	}
	if s := d2.Summary; s.PagesAdded+s.PagesChanged+s.PagesRemoved != 0 || s.Unchanged != 3 {
		t.Errorf("unchanged export: %+v", s)
	}
	d2.Close()
	res2 := c.sign(t, c.config(exportOf(t, t2, files), out1), out2)
	if res2.Pages != 0 || len(readTars(t, filepath.Join(out2, pagesDir))) != 0 {
		t.Errorf("unchanged export: %d pages made again", res2.Pages)
	}
	_, bins2 := loadStable(t, c, out2, 2)
	all1, all2 := stableTargets(bins1), stableTargets(bins2)
	if len(all1) != len(all2) {
		t.Fatalf("%d targets, then %d", len(all1), len(all2))
	}
	for p, tf := range all1 {
		if got, ok := all2[p]; !ok || got.Length != tf.Length || got.Hashes["sha256"] != tf.Hashes["sha256"] {
			t.Errorf("%s: %+v, then %+v", p, tf, got)
		}
	}

	// foo1 is yanked: foo's pages change (reason attributes), bar's do not.
	recs := []export.Record{rec(foo1), rec(bar1), rec(bar09)}
	recs[0].Yanked, recs[0].YankedReason = true, "broken"
	t3 := t2.Add(24 * time.Hour)
	e3 := exportOfRecords(t, t3, recs)
	d3, err := ComputeDiff(c.config(e3, out2))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	d3.Entries(func(e *DiffEntry) error { got[e.Path] = string(e.Category) + "/" + e.Reason; return nil })
	hp, jp := simpleindex.PagePaths("foo")
	want := map[string]string{rec(foo1).Path: "unchanged/", rec(bar1).Path: "unchanged/", rec(bar09).Path: "unchanged/",
		hp: "page-changed/attributes", jp: "page-changed/attributes"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("yank: entries %v, want %v", got, want)
	}
	digest := d3.Digest
	d3.Close()
	// The digest binds the page change: the same export without the yank
	// has another digest.
	d3b, err := ComputeDiff(c.config(exportOfRecords(t, t3, []export.Record{rec(foo1), rec(bar1), rec(bar09)}), out2))
	if err != nil {
		t.Fatal(err)
	}
	if d3b.Digest == digest {
		t.Error("the yank does not change the digest")
	}
	d3b.Close()
	cfg := c.config(e3, out2)
	// The yank of a stable file is a red flag (yanked-stable), confirmed.
	cfg.Decisions = mustDecisions(t, `{"flag": "yanked-stable", "subject": "`+rec(foo1).Path+`", "decision": "confirm", "reason": "foo 1.0 is broken"}`+"\n")
	d, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res3, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: out3})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if res3.Pages != 2 {
		t.Errorf("yank: %d pages made again, want 2", res3.Pages)
	}
	pages3 := readTars(t, filepath.Join(out3, pagesDir))
	if len(pages3) != 2 || !bytes.Contains(pages3[hp], []byte(`data-yanked="broken"`)) || !bytes.Contains(pages3[jp], []byte(`"yanked":"broken"`)) {
		t.Fatalf("yank: pages written %v", pages3)
	}
	_, bins3 := loadStable(t, c, out3, 3)
	all3 := stableTargets(bins3)
	for p, b := range pages3 {
		if tf := all3[p]; tf.Length != int64(len(b)) || tf.Hashes["sha256"] != fmt.Sprintf("%x", sha256.Sum256(b)) {
			t.Errorf("%s: bins list %+v, not the page written", p, tf)
		}
	}
	bhp, bjp := simpleindex.PagePaths("bar")
	for _, p := range []string{bhp, bjp} {
		if all3[p].Hashes["sha256"] != all1[p].Hashes["sha256"] {
			t.Errorf("%s changed", p)
		}
	}
	if all3[hp].Hashes["sha256"] == all1[hp].Hashes["sha256"] {
		t.Error("foo's page did not change")
	}

	// bar09 and bar1 are deleted: bar's pages are removed.
	d4, err := ComputeDiff(c.config(exportOfRecords(t, t3.Add(time.Hour), recs[:1]), out3))
	if err != nil {
		t.Fatal(err)
	}
	if s := d4.Summary; s.PagesRemoved != 2 || s.Removed != 2 || s.PagesChanged != 0 {
		t.Errorf("project gone: %+v", s)
	}
	d4.Close()
}

func assertNothing(t *testing.T, dir, out string) {
	t.Helper()
	if _, err := os.Lstat(out); err == nil {
		t.Fatalf("%s exists after a refusal", out)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("left %s behind", e.Name())
		}
	}
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// mustDecisions parses a decisions file.
func mustDecisions(t testing.TB, file string) *decisions.Set {
	t.Helper()
	s, err := decisions.Parse([]byte(file), "decisions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkGolden(t *testing.T, name string, render func(io.Writer) error) {
	t.Helper()
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the golden file:\n%s", name, buf.Bytes())
	}
}

// The pipeline leaves the process's GC settings alone, while it runs and
// after: they are main's to set.
func TestPipelineLeavesGCSettings(t *testing.T) {
	prevPercent := debug.SetGCPercent(77)
	prevLimit := debug.SetMemoryLimit(5 << 30)
	defer func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}()
	check := func(when string) {
		if p, l := debug.SetGCPercent(77), debug.SetMemoryLimit(5<<30); p != 77 || l != 5<<30 {
			t.Errorf("%s: GOGC %d, memory limit %d", when, p, l)
		}
	}
	c := newCeremony(t)
	d, err := ComputeDiff(c.config(exportOf(t, t1, []file{foo1, bar1}), ""))
	if err != nil {
		t.Fatal(err)
	}
	check("after ComputeDiff")
	binWritten = func(int64) error { check("while signing"); return nil }
	defer func() { binWritten = nil }()
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: c.binKeys, Now: t2, OutDir: filepath.Join(t.TempDir(), "out")}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	check("after Sign")
}

// The pipeline asks the key source once for every delegated role under
// stable (every mid, every leaf), and delegates and signs each role with
// the key it gave for that role; a leaf's file does not verify as another
// leaf, a mid's not as another mid.
func TestPipelineBinKeySource(t *testing.T) {
	c := newCeremony(t)
	var mu sync.Mutex
	given := map[string]keys.DigestSigner{}
	asked := map[string]int{}
	src := func(role string) (keys.DigestSigner, error) {
		k, err := keys.GenerateECDSA()
		mu.Lock()
		defer mu.Unlock()
		asked[role]++
		given[role] = k
		return k, err
	}
	d, err := ComputeDiff(c.config(exportOf(t, t1, []file{foo1, bar1, bar09}), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := filepath.Join(t.TempDir(), "out")
	res, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: src, Now: t2, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	l := res.Layout
	var mids, leaves []string
	for i := 0; i < l.NumMids(); i++ {
		mids = append(mids, l.MidName(i))
		for j := 0; j < l.LeavesPerMid(); j++ {
			leaves = append(leaves, l.LeafName(i, j))
		}
	}
	if len(asked) != len(mids)+len(leaves) {
		t.Errorf("asked for %d roles, want %d", len(asked), len(mids)+len(leaves))
	}
	for _, name := range append(append([]string{}, mids...), leaves...) {
		if asked[name] != 1 {
			t.Errorf("asked for the key of %s %d times", name, asked[name])
		}
	}
	var names []string
	for _, m := range res.Meta {
		names = append(names, strings.TrimSuffix(m.Name, ".json"))
	}
	if want := append(append([]string{StableRole}, mids...), leaves...); !slices.Equal(names, want) {
		t.Errorf("meta lists %v, want %v", names, want)
	}
	st, _ := loadStable(t, c, out, 1) // every role verifies as itself, keys distinct
	if n := len(st.Signed.Delegations.Keys); n != len(mids) {
		t.Errorf("stable delegates %d keys, want %d", n, len(mids))
	}
	delegators := map[string]*tuf.Targets{}
	for i, name := range mids {
		dr, _ := st.Signed.Delegation(name)
		if id := given[name].Key().ID(); !slices.Equal(dr.KeyIDs, []string{id}) {
			t.Errorf("mid %s delegated to %v, want [%s]", name, dr.KeyIDs, id)
		}
		m := loadRole(t, out, 1, name)
		for j := 0; j < l.LeavesPerMid(); j++ {
			leaf := l.LeafName(i, j)
			delegators[leaf] = &m.Signed
			dr, _ := m.Signed.Delegation(leaf)
			if id := given[leaf].Key().ID(); !slices.Equal(dr.KeyIDs, []string{id}) {
				t.Errorf("leaf %s delegated to %v, want [%s]", leaf, dr.KeyIDs, id)
			}
		}
		delegators[name] = &st.Signed
	}
	// The attacker's move: serve one role's file under another's name.
	for _, swap := range [][2]string{{leaves[0], leaves[1]}, {leaves[0], leaves[len(leaves)-1]}, {mids[0], mids[1]}} {
		m := loadRole(t, out, 1, swap[0])
		msg, _ := m.SignedBytes()
		if err := delegators[swap[1]].VerifyDelegate(swap[1], msg, m.Signatures); !errors.Is(err, tuf.ErrThreshold) {
			t.Errorf("%s's file as %s: %v, want a threshold refusal", swap[0], swap[1], err)
		}
	}
}

func loadRole(t *testing.T, out string, version int64, role string) *tuf.Metadata[tuf.Targets] {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, metadataDir, fmt.Sprintf("%d.%s.json", version, role)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := tuf.Load[tuf.Targets](data, role)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A key source that gives one key for two roles is refused before
// anything is signed, and leaves nothing: with a shared key one role's
// file would verify as the other's.
func TestPipelineRefusesSharedRoleKey(t *testing.T) {
	c := newCeremony(t)
	k, err := keys.GenerateECDSA()
	if err != nil {
		t.Fatal(err)
	}
	// The layout 6 targets get (TestPipelineTwoCeremonies).
	l, err := tuf.NewTwoLevel(StableRole, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	for _, tc := range []struct {
		name string
		src  BinKeySource
	}{
		{"one key for every role", func(string) (keys.DigestSigner, error) { return k, nil }},
		{"one leaf shares the first mid's key", func(role string) (keys.DigestSigner, error) {
			if role == l.LeafName(1, 1) || role == l.MidName(0) {
				return k, nil
			}
			return keys.GenerateECDSA()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ComputeDiff(c.config(exportOf(t, t1, []file{foo1, bar1}), ""))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			stable := &countingSigner{Signer: c.stableSigners[0], n: &n}
			_, err = d.Sign(SignParams{Approve: d.Digest, Signers: []keys.Signer{stable, c.stableSigners[1]}, BinKeys: tc.src, Now: t2, OutDir: out})
			if !errors.Is(err, ErrSharedRoleKey) || !strings.Contains(err.Error(), "stable-") {
				t.Fatalf("Sign: %v, want ErrSharedRoleKey naming the roles", err)
			}
			if n.Load() != 0 {
				t.Error("stable was signed")
			}
			assertNothing(t, dir, out)
		})
	}
}

// countingSigner counts its signatures.
type countingSigner struct {
	keys.Signer
	n *atomic.Int64
}

func (s *countingSigner) Sign(msg []byte) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(msg)
}

// A target count no layout fits within the metadata budget is refused
// with the *tuf.BudgetError before any key is asked for or anything
// signed, and leaves nothing.
func TestPipelineRefusesOverBudget(t *testing.T) {
	c := newCeremony(t)
	var got int64
	sizeLayout = func(n int64, _ tuf.Estimate) (tuf.Shape, error) {
		got = n
		// As if the stable set held 200 million more targets.
		return tuf.SizeTwoLevel(StableRole, n+200_000_000, tuf.EstimateFiles)
	}
	defer func() {
		sizeLayout = func(n int64, _ tuf.Estimate) (tuf.Shape, error) {
			return tuf.SizeTwoLevel(StableRole, n, tuf.EstimateFiles)
		}
	}()
	d, err := ComputeDiff(c.config(exportOf(t, t1, []file{foo1, bar1}), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var n atomic.Int64
	var asked atomic.Int64
	src := func(string) (keys.DigestSigner, error) { asked.Add(1); return keys.GenerateECDSA() }
	stable := &countingSigner{Signer: c.stableSigners[0], n: &n}
	_, err = d.Sign(SignParams{Approve: d.Digest, Signers: []keys.Signer{stable, c.stableSigners[1]}, BinKeys: src, Now: t2, OutDir: out})
	var be *tuf.BudgetError
	if !errors.As(err, &be) || !errors.Is(err, tuf.ErrBudget) || be.Targets != 200_000_000+got || be.Need <= be.Max {
		t.Fatalf("Sign: %v, want the budget error", err)
	}
	// foo1 and bar1, and two pages for each project.
	if got != 6 {
		t.Errorf("sized for %d targets, want 6", got)
	}
	if !strings.Contains(err.Error(), "budget 4000000") {
		t.Errorf("error %q does not name the limit", err)
	}
	if n.Load() != 0 || asked.Load() != 0 {
		t.Errorf("%d stable signatures made, %d keys asked for", n.Load(), asked.Load())
	}
	assertNothing(t, dir, out)
}

// A key source that fails fails the signing, with its error, and leaves
// nothing.
func TestPipelineBinKeySourceFails(t *testing.T) {
	c := newCeremony(t)
	errNoKey := errors.New("no key for you")
	d, err := ComputeDiff(c.config(exportOf(t, t1, []file{foo1, bar1}), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	src := func(string) (keys.DigestSigner, error) { return nil, errNoKey }
	if _, err := d.Sign(SignParams{Approve: d.Digest, Signers: c.stableSigners, BinKeys: src, Now: t2, OutDir: out}); !errors.Is(err, errNoKey) {
		t.Fatalf("Sign: %v, want the source's error", err)
	}
	assertNothing(t, dir, out)
}
