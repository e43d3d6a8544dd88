package stableset

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestSortedEntriesMerged holds the external merge of a large part of
// SortedEntries to the order of the in-memory sort: one project of
// hundreds of files and many projects of one first letter, listed with
// parts sorted whole and again with every part over a few kilobytes
// sorted in runs and merged, give byte-identical full text and JSON;
// the runs' work files are gone afterwards.
func TestSortedEntriesMerged(t *testing.T) {
	c := newCeremony(t)
	var files []file
	for i := range 400 {
		v := fmt.Sprintf("1.%d", i%37)
		files = append(files, file{"big", v, fmt.Sprintf("big-%s-%d.tar.gz", v, i), fmt.Sprint("big", i), old})
	}
	for i := range 60 {
		p := fmt.Sprintf("b%02d", i)
		files = append(files, file{p, "2.0", p + "-2.0.tar.gz", p, old}, file{p, "10.0", p + "-10.0.tar.gz", p + "x", t1})
	}
	files = append(files, file{"zed", "1.9", "zed-1.9.tar.gz", "z", old}, file{"abc", "1.0", "abc-1.0.tar.gz", "a", old})
	d, err := ComputeDiff(c.config(exportOf(t, t1, files), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	listing := func() (string, string) {
		var text, js bytes.Buffer
		if err := d.WriteFullText(&text); err != nil {
			t.Fatal(err)
		}
		if err := d.WriteFullJSON(&js); err != nil {
			t.Fatal(err)
		}
		return text.String(), js.String()
	}
	wholeText, wholeJSON := listing()
	prev := sortPartMax
	sortPartMax = 4 << 10
	defer func() { sortPartMax = prev }()
	mergedText, mergedJSON := listing()
	if n := strings.Count(wholeText, "big-"); n < 400 {
		t.Fatalf("the listing names %d of big's 400 files", n)
	}
	if mergedText != wholeText {
		t.Errorf("merged full text differs from the whole sort:\n%s\nwant:\n%s", mergedText, wholeText)
	}
	if mergedJSON != wholeJSON {
		t.Errorf("merged full JSON differs from the whole sort")
	}
	left := func(when string) {
		t.Helper()
		es, err := os.ReadDir(d.run.work)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if strings.HasPrefix(e.Name(), "sorted-") {
				t.Errorf("%s: work file %s left", when, e.Name())
			}
		}
	}
	left("after the listings")
	// fn failing in a merged part, and in the part after it, while the
	// next parts' runs are sorted ahead: its error, and no work file
	// left.
	errStop := errors.New("stop")
	for _, stopAt := range []int{1, 150, 420, 470} {
		n := 0
		err := d.SortedEntries(func(e *DiffEntry) error {
			if n++; n == stopAt {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Errorf("fn failing at entry %d: %v", stopAt, err)
		}
		left(fmt.Sprintf("fn failing at entry %d", stopAt))
	}
}
