package stableset

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// zed1 is a project whose pages the second ceremony does not change.
var zed1 = file{"zed", "1.0", "zed-1.0.tar.gz", "zed one", old}

// reviewedFixture is a first ceremony signed into pub, and the second
// ceremony's export and decisions (one of each category: unchanged,
// added, changed kept-old, removed, backdated, too young, pages changed,
// pages unchanged).
type reviewedFixture struct {
	c       *ceremony
	dir     string
	pub     string
	export2 []byte
}

func newReviewedFixture(t *testing.T) *reviewedFixture {
	t.Helper()
	f := &reviewedFixture{c: newCeremony(t), dir: t.TempDir()}
	f.pub = filepath.Join(f.dir, "one")
	f.c.sign(t, f.c.config(exportOf(t, t1, []file{foo1, foo2, bar1, bar09, zed1}), ""), f.pub)
	f.export2 = exportOf(t, t2, []file{foo1, foo2, bar1evil, baz1, qux3, zed1})
	f.c.decisions = mustDecisions(t, `{"path": "`+rec(bar1evil).Path+`", "decision": "keep-old", "reason": "PyPI never re-uploads a file"}`+"\n"+`{"flag": "backdated", "subject": "`+rec(baz1).Path+`", "decision": "confirm", "reason": "held back; the repository is asked why"}`)
	return f
}

// config is the second ceremony's configuration, work files in work.
func (f *reviewedFixture) config(work string) Config {
	cfg := f.c.config(f.export2, f.pub)
	cfg.TempDir = work
	return cfg
}

// keep runs `stable diff`'s part: the pass, kept in a new work directory.
func (f *reviewedFixture) keep(t *testing.T) (work string, d *Diff, digest string) {
	t.Helper()
	work = t.TempDir()
	d, err := ComputeDiff(f.config(work))
	if err != nil {
		t.Fatal(err)
	}
	digest = d.Digest
	if _, err := d.Keep(work); err != nil {
		t.Fatal(err)
	}
	return work, d, digest
}

// diffFields is a diff without its run, to compare.
func diffFields(d *Diff) Diff {
	c := *d
	c.run = nil
	return c
}

// TestReviewedPassReused: `stable diff` keeps its pass; signing with the
// same inputs reuses it (the export is only hashed), gives the diff the
// pass computed, field by field, the same full text and canonical form,
// and signs the same ledger, pages and bin targets as a signing that runs
// the pass again.
func TestReviewedPassReused(t *testing.T) {
	f := newReviewedFixture(t)
	fresh, err := ComputeDiff(f.config(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	var freshText, freshCanon bytes.Buffer
	fresh.WriteFullText(&freshText)
	fresh.WriteCanonical(&freshCanon)

	work, _, digest := f.keep(t)
	d, err := OpenReviewed(f.config(work), digest)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, want := diffFields(d), diffFields(fresh); !reflect.DeepEqual(got, want) {
		t.Errorf("reused diff:\n%+v\nwant\n%+v", got, want)
	}
	var text, canon bytes.Buffer
	d.WriteFullText(&text)
	d.WriteCanonical(&canon)
	if text.String() != freshText.String() || canon.String() != freshCanon.String() {
		t.Error("the reused pass writes another diff text or canonical form")
	}
	// The canonical form the check made again, which the signing copies.
	if _, ok := fresh.CanonicalFile(); ok {
		t.Error("a fresh pass has a checked canonical file")
	}
	cf, ok := d.CanonicalFile()
	if !ok {
		t.Fatal("the reused pass has no checked canonical file")
	}
	if b, err := os.ReadFile(cf); err != nil || string(b) != freshCanon.String() {
		t.Errorf("the checked canonical file differs from the fresh pass's canonical form (%v)", err)
	}
	out := filepath.Join(f.dir, "reused")
	res, err := d.Sign(SignParams{Approve: digest, Signers: f.c.stableSigners, BinKeys: f.c.binKeys, Now: t2, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	outFresh := filepath.Join(f.dir, "fresh")
	resFresh, err := fresh.Sign(SignParams{Approve: digest, Signers: f.c.stableSigners, BinKeys: f.c.binKeys, Now: t2, OutDir: outFresh})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != resFresh.Pages || res.Layout != resFresh.Layout {
		t.Errorf("reused: %d pages, %+v; fresh: %d, %+v", res.Pages, res.Layout, resFresh.Pages, resFresh.Layout)
	}
	_, bins := loadStable(t, f.c, out, 2)
	_, binsFresh := loadStable(t, f.c, outFresh, 2)
	if !reflect.DeepEqual(stableTargets(bins), stableTargets(binsFresh)) {
		t.Error("the reused pass signs other targets")
	}
	for _, p := range []string{"ledger/2.ledger"} {
		a, _ := os.ReadFile(filepath.Join(out, p))
		b, _ := os.ReadFile(filepath.Join(outFresh, p))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs", p)
		}
	}
	if !reflect.DeepEqual(readTars(t, out), readTars(t, outFresh)) {
		t.Error("the reused pass writes other pages")
	}
}

// TestReviewedPassStale: each input that differs from the pass's is named,
// and the pass is not used (ErrPassStale: the caller runs it again).
func TestReviewedPassStale(t *testing.T) {
	f := newReviewedFixture(t)
	work, _, digest := f.keep(t)
	other, err := policy.Parse([]byte(`{"min_age_days": 30}`), "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit   func(*Config) string
		reason string
	}{
		"export": {func(c *Config) string {
			c.Export = bytes.NewReader(exportOf(t, t2, []file{foo1, foo2, bar1evil, baz1}))
			return digest
		}, "the export export.jsonl has sha256"},
		"policy":    {func(c *Config) string { c.Policy = other; return digest }, "the policy's sha256"},
		"decisions": {func(c *Config) string { c.Decisions = nil; return digest }, "the decisions' sha256"},
		"digest":    {func(c *Config) string { return strings.Repeat("0", 64) }, "no reviewed pass"},
		"previous ledger": {func(c *Config) string {
			pub := filepath.Join(f.dir, "other")
			first := *f.c
			first.decisions = nil
			first.sign(t, first.config(exportOf(t, t1, []file{foo1, bar1}), ""), pub)
			c.Published = pub
			return digest
		}, "the previous ledger's sha256"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := f.config(work)
			approve := tc.edit(&cfg)
			_, err := OpenReviewed(cfg, approve)
			if !errors.Is(err, ErrPassStale) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got %v, want ErrPassStale naming %q", err, tc.reason)
			}
		})
	}
}

// rewriteLedger rewrites the kept pass's ledger as an attacker would, a
// well-formed ledger with a valid trailer, editing each record.
func rewriteLedger(t *testing.T, path string, file func(*ledger.Entry) bool, project func(*ledger.Project) bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := ledger.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	lw, err := ledger.NewWriter(&out, lr.Header())
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if file == nil || file(e) {
			if err := lw.Add(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	for {
		p, err := lr.NextProject()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if project == nil || project(p) {
			if err := lw.AddProject(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rewriteTargets rewrites the work file of bin targets holding path.
func rewriteTargets(t *testing.T, work, kind, path string, edit func(*tuf.BinTarget)) {
	t.Helper()
	h := sha256.Sum256([]byte(path))
	name := filepath.Join(work, fmt.Sprintf("%s-%03d", kind, h[0]))
	ts, err := readBinTargets(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	found := false
	for i := range ts {
		if ts[i].Path == path {
			edit(&ts[i])
			found = true
		}
		b = appendBinTarget(b, &ts[i])
	}
	if !found {
		t.Fatalf("%s not in %s", path, name)
	}
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReviewedPassEdited is the attacker with the laptop's disk between
// `stable diff` and `stable sign`: each edit of the kept pass, made
// consistent where the format has digests of its own, is refused with
// ErrPassEdited, and nothing is signed or written.
func TestReviewedPassEdited(t *testing.T) {
	f := newReviewedFixture(t)
	evil := sha256.Sum256([]byte("evil"))
	bar := rec(bar1evil).Path
	for name, edit := range map[string]func(t *testing.T, work string){
		// The changed file's kept stable entry swapped for the new
		// (attacker's) content, in the ledger and the bin targets alike.
		"kept entry swapped": func(t *testing.T, work string) {
			r := rec(bar1evil)
			rewriteLedger(t, filepath.Join(work, "ledger-000"), func(e *ledger.Entry) bool {
				if e.Path == bar {
					e.Kept, e.StableLength, e.StableSHA256 = false, 0, [32]byte{}
				}
				return true
			}, nil)
			rewriteTargets(t, work, "stable", bar, func(bt *tuf.BinTarget) { bt.Length, bt.SHA256 = r.Length, r.SHA256 })
		},
		// A young file made stable: ledger, exceptions and targets.
		"held file made stable": func(t *testing.T, work string) {
			rewriteLedger(t, filepath.Join(work, "ledger-000"), func(e *ledger.Entry) bool {
				if e.Path == rec(qux3).Path {
					e.Stable = true
				}
				return true
			}, nil)
		},
		// The exceptions file says the young file is added.
		"exception edited": func(t *testing.T, work string) {
			p := filepath.Join(work, "exceptions-000")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte("held\ttoo-young"), []byte("added\t-"), 1), 0o600)
		},
		// A bin target's hash changed in its work file only.
		"bin target edited": func(t *testing.T, work string) {
			rewriteTargets(t, work, "stable", rec(foo1).Path, func(bt *tuf.BinTarget) { bt.SHA256 = evil })
		},
		// A stable page's hash changed in the ledger and the page targets.
		"page swapped": func(t *testing.T, work string) {
			hp, _ := simpleindex.LayoutPEP458.PagePaths("foo")
			rewriteLedger(t, filepath.Join(work, "ledger-000"), nil, func(p *ledger.Project) bool {
				if p.Project == "foo" {
					p.HTMLSHA256 = evil
				}
				return true
			})
			rewriteTargets(t, work, "pagetargets", hp, func(bt *tuf.BinTarget) { bt.SHA256 = evil })
		},
		// An unchanged page (no entry: the previous ledger's) swapped in
		// the ledger and the page targets alike.
		"unchanged page swapped": func(t *testing.T, work string) {
			_, jp := simpleindex.LayoutPEP458.PagePaths("zed")
			rewriteLedger(t, filepath.Join(work, "ledger-000"), nil, func(p *ledger.Project) bool {
				if p.Project == "zed" {
					p.JSONSHA256 = evil
				}
				return true
			})
			rewriteTargets(t, work, "pagetargets", jp, func(bt *tuf.BinTarget) { bt.SHA256 = evil })
		},
		// A project's pages dropped, so that clients fall through to the
		// online role's page.
		"project dropped": func(t *testing.T, work string) {
			rewriteLedger(t, filepath.Join(work, "ledger-000"), nil, func(p *ledger.Project) bool { return p.Project != "bar" })
		},
		// The pages of a project with a stable file given to one without
		// (qux's only file is too young): stable would list qux's pages.
		"pages moved to a project without a stable file": func(t *testing.T, work string) {
			rewriteLedger(t, filepath.Join(work, "ledger-000"), nil, func(p *ledger.Project) bool {
				if p.Project == "zed" {
					p.Project = "qux"
				}
				return true
			})
		},
		// A page's BLAKE2b-256 changed in the ledger only.
		"page blake2b edited": func(t *testing.T, work string) {
			rewriteLedger(t, filepath.Join(work, "ledger-000"), nil, func(p *ledger.Project) bool {
				if p.Project == "bar" {
					p.JSONBLAKE2b = evil
				}
				return true
			})
		},
		// The manifest's record of the export's trailer.
		"manifest count": func(t *testing.T, work string) {
			p := filepath.Join(work, passFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"export_count": 6`), []byte(`"export_count": 7`), 1), 0o600)
		},
	} {
		t.Run(name, func(t *testing.T) {
			work, _, digest := f.keep(t)
			edit(t, ReviewedDir(work, digest))
			out := filepath.Join(t.TempDir(), "out")
			d, err := OpenReviewed(f.config(work), digest)
			if err == nil {
				defer d.Close()
				_, err = d.Sign(SignParams{Approve: digest, Signers: f.c.stableSigners, BinKeys: f.c.binKeys, Now: t2, OutDir: out})
			}
			if !errors.Is(err, ErrPassEdited) {
				t.Fatalf("got %v, want ErrPassEdited", err)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			assertNothing(t, filepath.Dir(out), out)
		})
	}
}

// TestReviewedPassScanFirst: the export scan runs beside the pass walk,
// but its verdict comes first, as if it had run alone: with the pass
// edited (the walk refuses it) and another export, the pass is stale
// (ErrPassStale, so the signing reads the export again), and with an
// export that fails to read, the read error; either way the export has
// been read to its end (or its failure) before OpenReviewed returns.
func TestReviewedPassScanFirst(t *testing.T) {
	f := newReviewedFixture(t)
	edit := func(t *testing.T, work, digest string) {
		rewriteLedger(t, filepath.Join(ReviewedDir(work, digest), "ledger-000"), func(e *ledger.Entry) bool {
			if e.Path == rec(qux3).Path {
				e.Stable = true
			}
			return true
		}, nil)
	}
	t.Run("edited, untouched export", func(t *testing.T) {
		work, _, digest := f.keep(t)
		edit(t, work, digest)
		if _, err := OpenReviewed(f.config(work), digest); !errors.Is(err, ErrPassEdited) {
			t.Fatalf("got %v, want the walk's ErrPassEdited", err)
		}
	})
	t.Run("edited, another export", func(t *testing.T) {
		work, _, digest := f.keep(t)
		edit(t, work, digest)
		cfg := f.config(work)
		x := bytes.NewReader(exportOf(t, t2, []file{foo1, foo2, bar1evil, baz1}))
		cfg.Export = x
		_, err := OpenReviewed(cfg, digest)
		if !errors.Is(err, ErrPassStale) || errors.Is(err, ErrPassEdited) || !strings.Contains(err.Error(), "the export export.jsonl has sha256") {
			t.Fatalf("got %v, want ErrPassStale naming the export", err)
		}
		if x.Len() != 0 {
			t.Fatalf("OpenReviewed returned with %d bytes of the export unread", x.Len())
		}
	})
	t.Run("edited, export read error", func(t *testing.T) {
		work, _, digest := f.keep(t)
		edit(t, work, digest)
		cfg := f.config(work)
		cfg.Export = failingReader{}
		_, err := OpenReviewed(cfg, digest)
		if !errors.Is(err, errDisk) || errors.Is(err, ErrPassEdited) || errors.Is(err, ErrPassStale) {
			t.Fatalf("got %v, want the export's read error", err)
		}
	})
}

// FuzzPassManifest: the kept pass's manifest is read strictly (an
// attacker writes it): anything but a complete manifest of this format,
// with no unknown field, is ErrPassEdited, and what is accepted survives
// marshalling and reading again.
func FuzzPassManifest(f *testing.F) {
	valid := `{"format": "keyceremony-reviewed-pass 1", "digest": "` + strings.Repeat("a", 64) + `", "export_file_sha256": "` + strings.Repeat("b", 64) + `",
 "export_count": 5, "export_trailer_sha256": "` + strings.Repeat("c", 64) + `", "policy_sha256": "p", "decisions_sha256": "d",
 "previous_ledger_sha256": "-", "stable_version": 2, "repository": "pypi", "listing_time": "2026-04-02T00:00:00Z", "pages": 4}`
	f.Add([]byte(valid))
	f.Add([]byte(valid[:len(valid)/2]))
	f.Add([]byte(strings.Replace(valid, `"pages"`, `"extra"`, 1)))
	f.Add([]byte(strings.Replace(valid, "pass 1", "pass 2", 1)))
	f.Add([]byte(`{}`))
	f.Add([]byte(valid + ` {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, passFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := readPassManifest(dir)
		if err != nil {
			if !errors.Is(err, ErrPassEdited) {
				t.Fatalf("error %v is not ErrPassEdited", err)
			}
			return
		}
		if m.Format != passFormat {
			t.Fatalf("accepted format %q", m.Format)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, passFile), b, 0o600)
		m2, err := readPassManifest(dir)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if b2, _ := json.Marshal(m2); !bytes.Equal(b, b2) {
			t.Fatalf("round trip: %s != %s", b2, b)
		}
	})
}

// editWorkLine sets field i of the work line (exceptions or review
// entries format) of path in file name, as an attacker would.
func editWorkLine(t *testing.T, name, path string, i int, value string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	found := false
	for k, l := range lines {
		f := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
		if len(f) == 11 && f[2] == path {
			f[i] = value
			lines[k] = strings.Join(f, "\t") + "\n"
			found = true
		}
	}
	if !found {
		t.Fatalf("%s not in %s", path, name)
	}
	if err := os.WriteFile(name, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// foo1whl is a file added to release foo 1.0, stable since the first
// ceremony: an added-to-stable-release flag.
var foo1whl = file{"foo", "1.0", "foo-1.0-py3-none-any.whl", "foo one wheel", t2.Add(-24 * time.Hour)}

// TestReviewedPassShownEdited is the attacker with the laptop's disk
// editing what the kept pass shows beside its canonical form (the
// versions, legacy flags and claimed upload times, which the approved
// digest does not cover): opening the pass for signing refuses each edit
// with ErrPassEdited, naming the file, its project and what it shows
// against what the export lists; untouched, the pass opens and raises
// the flag the edit would have hidden.
func TestReviewedPassShownEdited(t *testing.T) {
	f := newReviewedFixture(t)
	f.export2 = exportOf(t, t2, []file{foo1, foo1whl, foo2, bar1evil, baz1, qux3, zed1})
	whl, baz := rec(foo1whl).Path, rec(baz1).Path
	exc := func(work string) string { return filepath.Join(work, "exceptions-000") }
	for name, tc := range map[string]struct {
		edit func(t *testing.T, work string)
		want []string
	}{
		// The new file's release changed, so that it is no longer in a
		// release that was stable: its flag is not raised.
		"version edited, flag hidden": {func(t *testing.T, work string) { editWorkLine(t, exc(work), whl, 8, "1.0.post1") },
			[]string{"project foo", whl, `version "1.0.post1"`, `the export lists version "1.0"`}},
		// The upload time a backdated file claims.
		"claimed upload time edited": {func(t *testing.T, work string) {
			editWorkLine(t, exc(work), baz, 10, fmt.Sprint(t2.Add(-time.Hour).Unix()))
		}, []string{"project baz", baz, "upload time " + t2.Add(-time.Hour).UTC().Format(time.RFC3339), "the export lists version \"1.0\", upload time " + old.UTC().Format(time.RFC3339)}},
		// A legacy flag that would raise name-collision, or hide one.
		"legacy flag edited": {func(t *testing.T, work string) { editWorkLine(t, exc(work), rec(qux3).Path, 9, "mismatch") },
			[]string{"project qux", rec(qux3).Path, `legacy flag "mismatch"`}},
		// A file gone from the listing given a version.
		"removed file given a version": {func(t *testing.T, work string) { editWorkLine(t, exc(work), rec(bar09).Path, 8, "0.9") },
			[]string{rec(bar09).Path, "which the export cannot give it"}},
		// A stable file's yanked mark in the kept ledger (yanked-stable
		// is raised from it).
		"yanked mark edited": {func(t *testing.T, work string) {
			rewriteLedger(t, filepath.Join(work, "ledger-000"), func(e *ledger.Entry) bool {
				if e.Path == rec(foo1).Path {
					e.Yanked = true
				}
				return true
			}, nil)
		}, []string{"project foo: its ledger marks " + rec(foo1).Path + " yanked, the export not yanked"}},
		// The export's trailer digest, which the signed diff names.
		"manifest trailer": {func(t *testing.T, work string) {
			p := filepath.Join(work, passFile)
			b, _ := os.ReadFile(p)
			var m passManifest
			json.Unmarshal(b, &m)
			b = bytes.Replace(b, []byte(m.ExportTrailerSHA256), []byte(strings.Repeat("0", 64)), 1)
			os.WriteFile(p, b, 0o600)
		}, []string{"export trailer", "is not the export's"}},
	} {
		t.Run(name, func(t *testing.T) {
			work, _, digest := f.keep(t)
			tc.edit(t, ReviewedDir(work, digest))
			d, err := OpenReviewed(f.config(work), digest)
			if err == nil {
				d.Close()
				t.Fatal("the edited pass opened")
			}
			if !errors.Is(err, ErrPassEdited) {
				t.Fatalf("got %v, want ErrPassEdited", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("untouched", func(t *testing.T) {
		work, _, digest := f.keep(t)
		d, err := OpenReviewed(f.config(work), digest)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		raised := false
		for _, fl := range d.Flags {
			raised = raised || fl.Kind == FlagAddedToStableRelease && fl.Subject == whl
		}
		if !raised {
			t.Errorf("the kept pass does not raise %s %s: %+v", FlagAddedToStableRelease, whl, d.Flags)
		}
	})
}

// FuzzScanExport: the export and the kept exceptions are both an
// attacker's to write (beside the pass's ledger); scanning them never panics, always hashes every
// byte of the export (its SHA-256 decides whether the pass fits), and
// accepts the pair the pass wrote.
func FuzzScanExport(f *testing.F) {
	exp := exportOf(f, t2, []file{foo1, foo2, bar1evil, baz1, qux3})
	cfg := Config{Export: bytes.NewReader(exp), ExportName: "export.jsonl", Now: t2, Policy: policy.Default(), TempDir: f.TempDir()}
	d, err := ComputeDiff(cfg)
	if err != nil {
		f.Fatal(err)
	}
	exc, err := os.ReadFile(d.run.bucketPath("exceptions", 0))
	if err != nil {
		f.Fatal(err)
	}
	led, err := os.ReadFile(d.run.bucketPath("ledger", 0))
	if err != nil {
		f.Fatal(err)
	}
	m := &passManifest{ExportCount: d.Export.Count, ExportTrailerSHA256: fmt.Sprintf("%x", d.Export.SHA256)}
	d.Close()
	f.Add(exp, exc)
	f.Add(exp[:len(exp)/2], exc)
	f.Add(exp, exc[:len(exc)/3])
	f.Add(bytes.Replace(exp, []byte(`"version":"3.0"`), []byte(`"version":"3.1"`), 1), exc)
	f.Add([]byte{}, []byte("x\n"))
	f.Fuzz(func(t *testing.T, export, exceptions []byte) {
		r := &run{work: t.TempDir()}
		if err := os.WriteFile(r.bucketPath("exceptions", 0), exceptions, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r.bucketPath("ledger", 0), led, 0o600); err != nil {
			t.Fatal(err)
		}
		sum, edited, err := r.scanExport(bytes.NewReader(export), m)
		if err != nil {
			t.Fatal(err)
		}
		if sum != sha256.Sum256(export) {
			t.Fatal("the scan's digest is not the export's SHA-256")
		}
		if edited != nil && !errors.Is(edited, ErrPassEdited) {
			t.Fatalf("%v is not ErrPassEdited", edited)
		}
		if bytes.Equal(export, exp) && bytes.Equal(exceptions, exc) && edited != nil {
			t.Fatalf("the pass's own export and exceptions: %v", edited)
		}
	})
}

// TestAsyncTee: every writer gets every byte, in order, across chunk
// boundaries (writes smaller and larger than a chunk), and only once
// Close has returned; a second Close does nothing.
func TestAsyncTee(t *testing.T) {
	var buf bytes.Buffer
	h := sha256.New()
	tee := newAsyncTee(&buf, h)
	var want []byte
	for i := 0; i < 3000; i++ {
		n := (i * 7919) % 4000
		if i%1000 == 999 {
			n = teeChunk + 17 // larger than a chunk
		}
		b := bytes.Repeat([]byte{byte(i)}, n)
		tee.Write(b)
		want = append(want, b...)
	}
	tee.Close()
	tee.Close()
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("the writer got %d bytes, not the %d written in order", buf.Len(), len(want))
	}
	if got, w := h.Sum(nil), sha256.Sum256(want); !bytes.Equal(got, w[:]) {
		t.Fatalf("the hash got %x, want %x", got, w)
	}
}
