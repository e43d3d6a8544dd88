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
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/tuf"

	"github.com/keyceremony/keyceremony/stableset/export"

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
	sortRecords(recs)
	var buf bytes.Buffer
	w, err := export.NewWriter(&buf, export.Header{Repository: "pypi", Generated: gen})
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
}

func newCeremony(t *testing.T) *ceremony {
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
	bk, err := keys.GenerateECDSA()
	if err != nil {
		t.Fatal(err)
	}
	c.binKeys = OneBinKey(bk)
	c.deleg = &tuf.DelegatedRole{Name: StableRole, KeyIDs: ids, Threshold: 2, Paths: []string{"packages/*/*/*/*", "simple/*/*"}}
	return &c
}

func (c *ceremony) config(export []byte, published string) Config {
	cfg := Config{Export: bytes.NewReader(export), ExportName: "export.jsonl", Eligible: MinAge(90 * 24 * time.Hour), Workers: 2}
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
// loader: stable verifies against the trusted delegation, every bin
// against stable, and every target sits in the bin its hash routes to.
func loadStable(t *testing.T, c *ceremony, out string, version int64) (*tuf.Metadata[tuf.Targets], map[string]map[string]tuf.TargetFile) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, metadataDir, fmt.Sprintf("%d.stable.json", version)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := tuf.Load[tuf.Targets](data, "stable.json")
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := st.SignedBytes()
	if err := tuf.VerifyThreshold(StableRole, msg, st.Signatures, c.deleg.KeyIDs, c.deleg.Threshold, c.keyring); err != nil {
		t.Fatal(err)
	}
	layout, err := tuf.LayoutOf(&st.Signed, StableRole)
	if err != nil {
		t.Fatal(err)
	}
	bins := map[string]map[string]tuf.TargetFile{}
	for i := 0; i < layout.NumBins(); i++ {
		name := layout.Name(i)
		data, err := os.ReadFile(filepath.Join(out, metadataDir, fmt.Sprintf("%d.%s.json", version, name)))
		if err != nil {
			t.Fatal(err)
		}
		m, err := tuf.Load[tuf.Targets](data, name)
		if err != nil {
			t.Fatalf("bin %s does not load strictly: %v", name, err)
		}
		msg, _ := m.SignedBytes()
		if err := st.Signed.VerifyDelegate(name, msg, m.Signatures); err != nil {
			t.Fatal(err)
		}
		if m.Signed.Version != version || !m.Signed.Expires.Time().Equal(t2.Add(120*24*time.Hour)) {
			t.Errorf("bin %s: version %d expires %v", name, m.Signed.Version, m.Signed.Expires)
		}
		d, _ := st.Signed.Delegation(name)
		if d.Terminating {
			t.Errorf("bin %s is terminating", name)
		}
		for p := range m.Signed.Targets {
			if !d.Matches(p) || layout.BinOf(p) != i {
				t.Errorf("%s is in bin %s, not where its hash routes it", p, name)
			}
		}
		bins[name] = m.Signed.Targets
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
	if res1.StableVersion != 1 || res1.Layout.NumBins() != 16 {
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
		if n >= 5 {
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
	cfg := c.config(e2, out1)
	cfg.Accept = map[string]bool{rec(bar1evil).Path: true}
	d3, err := ComputeDiff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d3.Summary.Accepted != 1 || d3.Digest == digest {
		t.Errorf("accepted change: %+v", d3.Summary)
	}
	d3.Close()
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

// The pipeline asks the key source once for each bin role, in bin order,
// and delegates and signs each bin with the key it gave for that role; a
// bin signed with one role's key does not verify as another role.
func TestPipelineBinKeySource(t *testing.T) {
	c := newCeremony(t)
	var ks [2]keys.DigestSigner
	for i := range ks {
		k, err := keys.GenerateECDSA()
		if err != nil {
			t.Fatal(err)
		}
		ks[i] = k
	}
	var asked []string
	src := func(role string) (keys.DigestSigner, error) {
		k := ks[len(asked)%2]
		asked = append(asked, role)
		return k, nil
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
	var want []string
	for i := 0; i < res.Layout.NumBins(); i++ {
		want = append(want, res.Layout.Name(i))
	}
	if !slices.Equal(asked, want) {
		t.Fatalf("asked for %v, want %v", asked, want)
	}
	st, _ := loadStable(t, c, out, 1) // every bin verifies as its role
	if n := len(st.Signed.Delegations.Keys); n != 2 {
		t.Errorf("stable delegates %d keys, want 2", n)
	}
	for i, name := range want {
		dr, _ := st.Signed.Delegation(name)
		if id := ks[i%2].Key().ID(); !slices.Equal(dr.KeyIDs, []string{id}) || dr.Threshold != 1 {
			t.Errorf("bin %s delegated to %v (threshold %d), want [%s]", name, dr.KeyIDs, dr.Threshold, id)
		}
	}
	// The attacker's move: serve bin 0's file under bin 1's name.
	data, err := os.ReadFile(filepath.Join(out, metadataDir, "1."+want[0]+".json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := tuf.Load[tuf.Targets](data, want[0])
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := m.SignedBytes()
	if err := st.Signed.VerifyDelegate(want[1], msg, m.Signatures); err == nil {
		t.Errorf("bin %s's file verifies as bin %s", want[0], want[1])
	}
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
