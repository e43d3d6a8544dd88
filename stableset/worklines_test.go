package stableset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// TestParseWorkLine holds parseWorkLine (in place) and parseCanonical (a
// copy) to appendWorkLine: every field back as it was written, with and
// without the LF, and every malformed line refused as a corrupt work
// file, a hash of the wrong length included (it used to be decoded in
// part, or to panic).
func TestParseWorkLine(t *testing.T) {
	sum := func(b byte) (s [32]byte) {
		for i := range s {
			s[i] = b + byte(i)*7
		}
		return s
	}
	up := time.Unix(1700000000, 0).UTC()
	for _, e := range []DiffEntry{
		{Category: Added, Path: "packages/ab/cd/x/foo-1.0.tar.gz", Project: "foo", Version: "1.0", Uploaded: up, HasNew: true, NewLength: 12, NewSHA256: sum(1)},
		{Category: Added, Reason: ReasonExpedited, Path: "packages/x/ünï-2.whl", Project: "ünï", Version: "2", HasNew: true, NewLength: 1 << 40, NewSHA256: sum(0xf0)},
		{Category: Removed, Path: "packages/old.tar.gz", HasOld: true, OldLength: 0, OldSHA256: sum(9)},
		{Category: Changed, Reason: ReasonKeptOld, Path: "packages/p.tar.gz", Project: "p", Version: "0.1", Legacy: export.LegacySpelling | export.LegacyVersion, Uploaded: up,
			HasOld: true, OldLength: 5, OldSHA256: sum(3), HasNew: true, NewLength: 6, NewSHA256: sum(4)},
		{Category: Held, Reason: ReasonBackdated, Path: "packages/q.tar.gz", Project: "q", Legacy: export.LegacyNoVersion, HasNew: true, NewLength: 7, NewSHA256: sum(5)},
		{Category: Unchanged, Path: "simple/foo/index.html", Project: "foo"},
		// The export's earliest time, the epoch, is an upload time.
		{Category: Added, Path: "packages/e.tar.gz", Project: "e", Version: "0", Uploaded: time.Unix(0, 0).UTC(), HasNew: true, NewLength: 1, NewSHA256: sum(6)},
	} {
		line := appendWorkLine(nil, e.appendCanonical(nil), e.Version, e.Legacy, e.Uploaded)
		for _, l := range []string{string(line), strings.TrimSuffix(string(line), "\n")} {
			got, err := parseWorkLine(l)
			if err != nil || got != e {
				t.Errorf("parseWorkLine(%q) = %+v, %v\nwant %+v", l, got, err, e)
			}
		}
		if got, err := parseCanonical(line); err != nil || got != e {
			t.Errorf("parseCanonical(%q) = %+v, %v\nwant %+v", line, got, err, e)
		}
	}
	good := "added\t-\tpackages/a.tar.gz\ta\t-\t-\t3\t" + strings.Repeat("ab", 32) + "\t1.0\t-\t1700000000\n"
	if _, err := parseWorkLine(good); err != nil {
		t.Fatalf("the good line: %v", err)
	}
	field := func(i int, v string) string {
		f := strings.Split(strings.TrimSuffix(good, "\n"), "\t")
		f[i] = v
		return strings.Join(f, "\t") + "\n"
	}
	for _, bad := range []string{
		"", "\n", strings.Replace(good, "\t1.0", "", 1), strings.Replace(good, "\n", "\tx\n", 1),
		field(6, "x"), field(6, ""), field(7, strings.Repeat("ab", 31)), field(7, strings.Repeat("ab", 33)),
		field(7, strings.Repeat("ab", 31)+"ag"), field(7, strings.Repeat("a", 63)), field(4, "1"),
		field(10, "-5"), field(10, "1.5"), field(9, "bogus"), field(9, "version+version"),
	} {
		if e, err := parseWorkLine(bad); !errors.Is(err, errSpill) {
			t.Errorf("parseWorkLine(%q) = %+v, %v; want a corrupt work file", bad, e, err)
		}
	}
}

// TestLineReader: the lines of a file read in blocks, each one still
// itself once later blocks are read (WriteFullText keeps the previous
// project), across block boundaries, longer than a block, and a file
// whose last line has no LF is corrupt.
func TestLineReader(t *testing.T) {
	var want []string
	var sb strings.Builder
	for i := range 5000 {
		l := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i%300))
		if i == 2500 {
			l = strings.Repeat("long", lineBlock) + "\n"
		}
		want = append(want, l)
		sb.WriteString(l)
	}
	for _, r := range []func() io.Reader{
		func() io.Reader { return strings.NewReader(sb.String()) },
		func() io.Reader { return iotest.HalfReader(strings.NewReader(sb.String())) },
	} {
		lr := lineReader{r: r()}
		var got []string
		for {
			l, ok, err := lr.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, l)
		}
		if len(got) != len(want) {
			t.Fatalf("%d lines, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("line %d = %.40q…, want %.40q…", i, got[i], want[i])
			}
		}
	}
	lr := lineReader{r: strings.NewReader("a\nb")}
	if l, ok, err := lr.next(); l != "a\n" || !ok || err != nil {
		t.Fatalf("first line %q, %v, %v", l, ok, err)
	}
	if _, _, err := lr.next(); !errors.Is(err, errSpill) {
		t.Errorf("a last line without LF: %v, want a corrupt work file", err)
	}
	lr = lineReader{r: iotest.ErrReader(errDisk)}
	if _, _, err := lr.next(); !errors.Is(err, errDisk) || errors.Is(err, errSpill) {
		t.Errorf("a read error: %v, want it as itself", err)
	}
}

// TestSortOrder holds sortOrder (projects and versions ranked, then the
// ranks compared) to compareKeys over projects that share their first
// bytes, are prefixes of each other, hold NUL or bytes over 0x7f,
// versions CompareVersions calls equal ("1.9", "01.9"), and holds
// workLineKey's keys to parseWorkLine's fields.
func TestSortOrder(t *testing.T) {
	projects := []string{"", "a", "ab", "ab\x00", "ab\x00c", "abcdefgh", "abcdefghi", "abcdefgh\x00", "abcdefgha", "abcdefgi",
		"abcdefg", "b", "ünï", "ü", "\xff\xff\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\x01", "zzzzzzzzzzzz"}
	versions := []string{"", "1.0", "1.10", "1.9", "01.9", "2!1", "1.0a1"}
	var keys []sortKey
	for i, p := range projects {
		for j, v := range versions {
			keys = append(keys, sortKey{p, v, fmt.Sprintf("packages/%02d/%d", (i*7+j*3)%17, j)})
		}
	}
	// A fixed shuffle.
	for i := range keys {
		j := (i*7919 + 13) % len(keys)
		keys[i], keys[j] = keys[j], keys[i]
	}
	idx := sortOrder(keys)
	if len(idx) != len(keys) {
		t.Fatalf("%d indexes for %d keys", len(idx), len(keys))
	}
	seen := map[int32]bool{}
	for n, i := range idx {
		if seen[i] {
			t.Fatalf("index %d twice", i)
		}
		seen[i] = true
		if n > 0 {
			if c := compareKeys(&keys[idx[n-1]], &keys[i]); c >= 0 {
				t.Errorf("%q then %q: compareKeys %d", keys[idx[n-1]], keys[i], c)
			}
		}
	}
	for _, k := range keys[:20] {
		e := DiffEntry{Category: Added, Path: k.path, Project: k.project, Version: k.version, HasNew: true, NewLength: 1}
		line := string(appendWorkLine(nil, e.appendCanonical(nil), e.Version, e.Legacy, e.Uploaded))
		got, ok := workLineKey(line)
		p, err := parseWorkLine(line)
		if !ok || err != nil || got != (sortKey{p.Project, p.Version, p.Path}) || got != k {
			t.Errorf("workLineKey(%q) = %q, %v; parseWorkLine gives %q %q %q, %v", line, got, ok, p.Project, p.Version, p.Path, err)
		}
	}
	if _, ok := workLineKey("added\t-\tpath\tproject\t-\t-\t-\t-\tversion\t-"); ok {
		t.Error("workLineKey took a line of ten fields")
	}
}

// TestEpochUploadTime: the export allows an upload time of
// 1970-01-01T00:00:00Z (docs/export-format.md, "Times"), which a work
// line writes as 0. The kept pass's check makes from that line the
// export line's prefix with that time, as the export writes it.
func TestEpochUploadTime(t *testing.T) {
	e := DiffEntry{Category: Added, Path: "packages/ab/cd/" + strings.Repeat("ef", 30) + "/e-0.tar.gz", Project: "e", Version: "0", Uploaded: time.Unix(0, 0).UTC(), HasNew: true, NewLength: 1}
	line := appendWorkLine(nil, e.appendCanonical(nil), e.Version, e.Legacy, e.Uploaded)
	var f [11][]byte
	if !workFields(bytes.TrimSuffix(line, []byte("\n")), &f) {
		t.Fatalf("work line %q: not 11 fields", line)
	}
	prefix, ok := exportPrefix(nil, &f)
	if !ok || !bytes.HasSuffix(prefix, []byte(`"upload_time":"1970-01-01T00:00:00Z",`)) {
		t.Fatalf("exportPrefix of %q = %q, %v; want the epoch as the export writes it", line, prefix, ok)
	}
	if got := unixOrDash(f[10]); got != "1970-01-01T00:00:00Z" {
		t.Errorf("unixOrDash(%q) = %s", f[10], got)
	}
}
