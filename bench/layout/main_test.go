package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/bench/internal/measure"
	"github.com/keyceremony/keyceremony/bench/internal/sizes"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// exportBytes is bench/cli's first export of n files.
func exportBytes(t *testing.T, n int64, generated time.Time) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := synth.Generate(&b, synth.Params{Seed: 1, Files: n, Generated: generated}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func ecdsaSigners(t *testing.T, n int) []keys.Signer {
	t.Helper()
	var out []keys.Signer
	for range n {
		k, err := keys.GenerateECDSA()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// unsigned is a metadata file without what differs between two signings
// of the same content by other keys: the signatures' values (an ECDSA
// signature's DER is 70 to 72 bytes), the key ids and the public keys
// (the same length for every P-256 key), and the ledger's sha256 (the
// build's ledger has made-up page digests; its length is the real one).
// Everything else, every byte of every target entry, is kept.
func unsigned(t *testing.T, name string, data []byte) (string, int) {
	t.Helper()
	m, err := tuf.Load[tuf.Targets](data, name)
	if err != nil {
		t.Fatal(err)
	}
	sigLen := 0
	for _, s := range m.Signatures {
		sigLen += len(s.Sig)
	}
	s := string(data)
	for _, sg := range m.Signatures {
		s = strings.ReplaceAll(s, sg.Sig, "SIG")
		s = strings.ReplaceAll(s, sg.KeyID, "KEYID")
	}
	if d := m.Signed.Delegations; d != nil {
		for id, k := range d.Keys {
			s = strings.ReplaceAll(s, id, "KEYID")
			pk, err := json.Marshal(k)
			if err != nil {
				t.Fatal(err)
			}
			s = strings.ReplaceAll(s, string(pk), "KEY")
		}
	}
	for _, tf := range m.Signed.Targets {
		if tf.Hashes["blake2b-256"] == "" { // the ledger
			s = strings.ReplaceAll(s, tf.Hashes["sha256"], "LEDGERSUM")
		}
	}
	return s, len(data) - sigLen
}

// TestAgainstPipeline: for the same synthetic export, in both target
// modes, the build writes what stableset's pipeline (ComputeDiff, then
// Sign, the first ceremony) writes: the same metadata files, every leaf's
// signed bytes identical (every target, its length and both hashes, the
// index pages' included), the mids and stable.json identical but for
// their keys and signatures, the ledger's length (stable's one target)
// the same; so the size report over both is the same, but for the
// signatures' few bytes. A change to the pipeline's bins, pages, ledger or
// layout that the build does not follow fails here.
func TestAgainstPipeline(t *testing.T) {
	gen := time.Date(2026, 9, 4, 19, 0, 0, 0, time.UTC)
	now := gen.Add(91*24*time.Hour + time.Hour)
	data := exportBytes(t, 20_000, gen)
	for _, mode := range []string{"files+pages", "pages"} {
		t.Run(mode, func(t *testing.T) {
			raw := measure.Policy(mode)
			pol, err := policy.Parse(raw, "policy.json")
			if err != nil {
				t.Fatal(err)
			}
			// The pipeline.
			pipe := filepath.Join(t.TempDir(), "medium")
			d, err := stableset.ComputeDiff(stableset.Config{Export: bytes.NewReader(data), ExportName: "export.jsonl", Now: now, Policy: pol, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			res, err := d.Sign(stableset.SignParams{Approve: d.Digest, Signers: ecdsaSigners(t, 3), BinKeys: stableset.EphemeralBinKeys, Now: now, OutDir: pipe})
			if err != nil {
				t.Fatal(err)
			}
			// The build.
			mine := filepath.Join(t.TempDir(), "stable")
			b, err := build(buildConfig{Export: bytes.NewReader(data), ExportName: "export.jsonl", Policy: pol, PolicyRaw: raw, Now: now,
				Version: res.StableVersion, Signers: 3, Dir: mine, Work: t.TempDir(), Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if b.Layout != res.Layout || b.Listed != 20_000 {
				t.Fatalf("layout %+v of %d files, the pipeline's %+v", b.Layout, b.Listed, res.Layout)
			}
			if mode == "pages" && b.Files != 0 || mode == "files+pages" && (b.Files < 15_000 || b.Files >= 20_000) || b.Pages != 2*b.Projects || b.Projects < 500 {
				t.Fatalf("%d files, %d pages of %d projects", b.Files, b.Pages, b.Projects)
			}

			// The same files, in the fragments and on disk.
			pf, err := os.ReadFile(filepath.Join(pipe, stableset.FragmentFile))
			if err != nil {
				t.Fatal(err)
			}
			want, err := stableset.ParseFragment(pf, "pipeline's fragment")
			if err != nil {
				t.Fatal(err)
			}
			mf, err := os.ReadFile(filepath.Join(mine, stableset.FragmentFile))
			if err != nil {
				t.Fatal(err)
			}
			got, err := stableset.ParseFragment(mf, "build's fragment")
			if err != nil {
				t.Fatal(err)
			}
			names := func(f *stableset.Fragment) []string {
				var ns []string
				for n := range f.Meta {
					ns = append(ns, n)
				}
				slices.Sort(ns)
				return ns
			}
			if !slices.Equal(names(got), names(want)) {
				t.Fatalf("the build's fragment lists %d roles, the pipeline's %d", len(got.Meta), len(want.Meta))
			}
			var pipeMD, mineMD []string
			for _, dir := range []struct {
				d  string
				to *[]string
			}{{filepath.Join(pipe, "metadata"), &pipeMD}, {filepath.Join(mine, "metadata"), &mineMD}} {
				ents, err := os.ReadDir(dir.d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					*dir.to = append(*dir.to, e.Name())
				}
			}
			if !slices.Equal(pipeMD, mineMD) || len(pipeMD) != len(want.Meta) {
				t.Fatalf("the build wrote %d metadata files, the pipeline %d", len(mineMD), len(pipeMD))
			}
			leaves := 0
			for _, name := range pipeMD {
				pb, err := os.ReadFile(filepath.Join(pipe, "metadata", name))
				if err != nil {
					t.Fatal(err)
				}
				mb, err := os.ReadFile(filepath.Join(mine, "metadata", name))
				if err != nil {
					t.Fatal(err)
				}
				if _, signed, ok := bytes.Cut(pb, []byte(`],"signed":`)); ok && bytes.HasPrefix(pb, []byte(`{"signatures":[`)) {
					// A leaf, as tuf.AppendBinFile writes it.
					_, msigned, _ := bytes.Cut(mb, []byte(`],"signed":`))
					if !bytes.Equal(signed, msigned) {
						t.Errorf("%s: the build's signed bytes differ from the pipeline's (%d and %d bytes)", name, len(msigned), len(signed))
					}
					leaves++
					continue
				}
				ps, pn := unsigned(t, name, pb)
				ms, mn := unsigned(t, name, mb)
				if ps != ms || pn != mn {
					t.Errorf("%s: the build's differs from the pipeline's but for keys and signatures:\n%.400s\n%.400s", name, ms, ps)
				}
			}
			if leaves != res.Layout.NumLeaves() {
				t.Errorf("%d leaves compared, the layout has %d", leaves, res.Layout.NumLeaves())
			}

			// The size report over both.
			tf := filepath.Join(t.TempDir(), "1.targets.json")
			if _, err := writeTargets(tf, now, simpleindex.Layout(pol.Naming)); err != nil {
				t.Fatal(err)
			}
			ps, err := sizes.Measure("", pipe, tf, pol.TargetMode)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := sizes.Measure("", mine, tf, pol.TargetMode)
			if err != nil {
				t.Fatal(err)
			}
			if ms.Targets != ps.Targets || ms.Targets != b.Files+b.Pages || ms.Layout != ps.Layout || ms.FragEntries != ps.FragEntries || ms.Path != ps.Path {
				t.Errorf("report: %d targets, %d x %d, %d entries, sampled %s; pipeline's: %d, %d x %d, %d, %s",
					ms.Targets, ms.Layout.NumMids(), ms.Layout.LeavesPerMid(), ms.FragEntries, ms.Path, ps.Targets, ps.Layout.NumMids(), ps.Layout.LeavesPerMid(), ps.FragEntries, ps.Path)
			}
			// A file's size may differ by its signatures' DER lengths
			// only (a few bytes each), the snapshot's by those of the
			// lengths it lists.
			near := func(what string, got, want, slack int64) {
				if got < want-slack || got > want+slack {
					t.Errorf("report: %s %d, the pipeline's %d", what, got, want)
				}
			}
			near("stable.json", ms.Stable, ps.Stable, 3*4)
			near("largest mid", ms.MidMax, ps.MidMax, 4)
			near("largest leaf", ms.LeafMax, ps.LeafMax, 4)
			near("snapshot share", ms.SnapShare, ps.SnapShare, ms.FragEntries)
			for i, r := range ms.Lookup {
				near(r.What, r.Bytes, ps.Lookup[i].Bytes, 3*4+ms.FragEntries)
			}
			var out strings.Builder
			ms.Print(&out)
			t.Logf("%s", out.String())
		})
	}
}

// TestBuildRefuses: a truncated export is refused with the reader's
// error, naming it, and leaves no medium; a directory that exists is
// refused before anything is read.
func TestBuildRefuses(t *testing.T) {
	gen := time.Date(2026, 9, 4, 19, 0, 0, 0, time.UTC)
	data := exportBytes(t, 2_000, gen)
	raw := measure.Policy("files+pages")
	pol, err := policy.Parse(raw, "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "stable")
	cfg := buildConfig{Export: bytes.NewReader(data[:len(data)/2]), ExportName: "cut.jsonl", Policy: pol, PolicyRaw: raw, Now: gen,
		Version: 2, Signers: 3, Dir: dir, Work: t.TempDir(), Workers: 2}
	_, err = build(cfg)
	var xe *export.Error
	if !errors.As(err, &xe) || !strings.Contains(err.Error(), "cut.jsonl") {
		t.Fatalf("a truncated export: %v", err)
	}
	for _, d := range []string{dir, dir + ".partial"} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after a failed build: %v", d, err)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Export = bytes.NewReader(data)
	if _, err := build(cfg); !errors.Is(err, ErrDirExists) {
		t.Errorf("an existing directory: %v", err)
	}
}

// TestRun: the command at a small size prints the build's line and the
// size report over what it built, and removes what it wrote, leaving a
// file of the caller's in -dir.
func TestRun(t *testing.T) {
	gen := time.Date(2026, 9, 4, 19, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mine"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run(&out, dir, 5_000, "pages", gen, gen.Add(92*24*time.Hour), false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"layout benchmark: 5000 files, pages, export generated 2026-09-04T19:00:00Z", "5000 files listed", "(0 files, ",
		"first ceremony's media", "| stable.json ", "leaf, largest (", "| its leaf 2.stable-", "total (and a 404 for the next root)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "mine" {
		t.Errorf("left in -dir: %v, %v", ents, err)
	}
}
