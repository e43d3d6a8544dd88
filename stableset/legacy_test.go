package stableset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// TestPipelineLegacyNames: files of legacy name enter stable as the
// policy decides for any file, and are never silent: counted per kind,
// per project and in total in the summary, the JSON and --full (listed
// there even when unchanged), without changing the canonical diff.
func TestPipelineLegacyNames(t *testing.T) {
	c := newCeremony(t)
	dir := t.TempDir()
	out1 := filepath.Join(dir, "one")
	tenjin := file{"tenjin", "0.6.1", "pyTenjin-0.6.1.tar.gz", "tenjin", old}
	distance := file{"distance", "0.1", "distance.tar.gz", "distance", old}
	alpha := file{"foo", "0.2.10 alpha", "foo-0.2.10 alpha.tar.gz", "alpha", t1.Add(-10 * 24 * time.Hour)}
	files := []file{foo1, tenjin, distance, alpha}

	e1 := exportOf(t, t1, files)
	d1, err := ComputeDiff(c.config(e1, ""))
	if err != nil {
		t.Fatal(err)
	}
	// At the first ceremony alpha is too young: held, and still counted.
	if d1.Summary.Added != 3 || d1.Summary.Held != 1 || d1.Summary.Legacy != 3 {
		t.Fatalf("first diff: %+v", d1.Summary)
	}
	d1.Close()
	c.sign(t, c.config(e1, ""), out1)
	_, bins := loadStable(t, c, out1, 1)
	all := stableTargets(bins)
	for _, f := range []file{tenjin, distance} {
		if _, ok := all[rec(f).Path]; !ok {
			t.Errorf("%s did not enter stable", f.filename)
		}
	}

	d2, err := ComputeDiff(c.config(exportOf(t, t2, files), out1))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if s := d2.Summary; s.Added != 1 || s.Unchanged != 3 || s.Legacy != 3 {
		t.Errorf("second diff: %+v", s)
	}
	kinds := map[string]int64{}
	for _, l := range d2.LegacyNames {
		kinds[l.Kind] = l.Count
	}
	if len(d2.LegacyNames) != 5 || kinds["mismatch"] != 1 || kinds["no-version"] != 1 || kinds["version"] != 1 || kinds["spelling"] != 0 {
		t.Errorf("legacy kinds %+v", d2.LegacyNames)
	}
	for _, p := range d2.Projects {
		want := map[string]int64{"tenjin": 1, "distance": 1, "foo": 1}[p.Project]
		if p.Legacy != want {
			t.Errorf("project %s: %d legacy names, want %d", p.Project, p.Legacy, want)
		}
	}

	var text, full, js, fullJS bytes.Buffer
	for _, w := range []struct {
		b *bytes.Buffer
		f func(*bytes.Buffer) error
	}{
		{&text, func(b *bytes.Buffer) error { return d2.WriteText(b) }},
		{&full, func(b *bytes.Buffer) error { return d2.WriteFullText(b) }},
		{&js, func(b *bytes.Buffer) error { return d2.WriteJSON(b) }},
		{&fullJS, func(b *bytes.Buffer) error { return d2.WriteFullJSON(b) }},
	} {
		if err := w.f(w.b); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"    legacy names     3\n", "      mismatch       1\n", "      no-version     1\n",
		"  legacy names by project (top 10)\n", "    tenjin           1         1\n", "!!! 3 FILES WITH LEGACY NAMES"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
	for _, want := range []string{
		"\ntenjin  (1 with legacy names)\n", "  0.6.1        unchanged legacy:mismatch " + rec(tenjin).Path + "\n",
		"  0.1          unchanged legacy:no-version " + rec(distance).Path + "\n",
		"  0.2.10 alpha added legacy:version     " + rec(alpha).Path + "\n",
	} {
		if !strings.Contains(full.String(), want) {
			t.Errorf("--full lacks %q:\n%s", want, full.String())
		}
	}
	for _, want := range []string{`"legacy_names": 3`, `"kind": "mismatch"`, `"legacy_projects": [`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("json lacks %q", want)
		}
	}
	if !strings.Contains(fullJS.String(), `"category":"unchanged","path":"`+rec(tenjin).Path+`","project":"tenjin","version":"0.6.1","legacy":"mismatch"`) {
		t.Errorf("full json lacks the unchanged legacy file:\n%s", fullJS.String())
	}

	// Listing unchanged legacy files among the exceptions changes neither
	// the entries nor the canonical form.
	seen := map[string]int{}
	if err := d2.Entries(func(e *DiffEntry) error { seen[e.Path]++; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if seen[rec(f).Path] != 1 {
			t.Errorf("%s: %d entries", f.filename, seen[rec(f).Path])
		}
	}
	var canon bytes.Buffer
	if err := d2.WriteCanonical(&canon); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(canon.Bytes()); hex.EncodeToString(sum[:]) != d2.Digest {
		t.Error("the canonical form does not hash to the digest")
	}
	if bytes.Contains(canon.Bytes(), []byte("legacy")) {
		t.Error("the canonical form carries the legacy flag")
	}
}

// TestPipelineDuplicateFilename: the pipeline refuses an export in which
// two records share a filename, naming both lines and both paths (it
// hands the reader the export to read again).
func TestPipelineDuplicateFilename(t *testing.T) {
	c := newCeremony(t)
	a := rec(foo1)
	b := rec(file{"foo", "1.0", "foo-1.0.tar.gz", "other content", old})
	b.BLAKE2b256[0] ^= 0xff
	b.Path = export.TargetPath(b.BLAKE2b256, b.Filename)
	recs := []export.Record{a, b}
	sortRecords(recs)
	// The writer refuses such an export: write each record alone and
	// join the lines, with the trailer they make.
	var body []byte
	for i := range recs {
		lines := strings.SplitAfter(string(exportOfRecords(t, t1, recs[i:i+1])), "\n")
		if i == 0 {
			body = append(body, lines[0]...)
		}
		body = append(body, lines[1]...)
	}
	sum := sha256.Sum256(body)
	data := append(body, fmt.Sprintf(`{"trailer":{"count":2,"sha256":"%x"}}`+"\n", sum)...)
	_, err := ComputeDiff(c.config(data, ""))
	want := fmt.Sprintf(`export.jsonl:3: filename: duplicate filename: "foo-1.0.tar.gz" (path %q) is also the filename of the record on line 2 (path %q)`, recs[1].Path, recs[0].Path)
	if !errors.Is(err, export.ErrDuplicateFilename) || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}
