package ceremony

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Two bootstraps that fail in the same second each keep their transcript
// copy: the second gets OUT.failed-TIME-02, and the names sort by time
// (journals reads the newest first).
func TestFailedDirSameSecond(t *testing.T) {
	out := filepath.Join(t.TempDir(), "media")
	now := time.Date(2026, 12, 3, 5, 30, 0, 0, time.UTC)
	var dirs []string
	for i := range 3 {
		fd, dir, err := failedDir(out, now)
		if err != nil {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		if err := fd.WriteFile("transcript.jsonl", []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
		if err := fd.Commit(); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	want := []string{out + ".failed-20261203T053000Z", out + ".failed-20261203T053000Z-02", out + ".failed-20261203T053000Z-03"}
	if !slices.Equal(dirs, want) {
		t.Fatalf("names %q, want %q", dirs, want)
	}
	for i, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "transcript.jsonl"))
		if err != nil || string(b) != string(rune('a'+i)) {
			t.Errorf("%s holds %q (%v): a copy was replaced", d, b, err)
		}
	}
	sorted := slices.Clone(dirs)
	slices.Sort(sorted)
	if !slices.Equal(sorted, dirs) {
		t.Errorf("the names do not sort in the order of the failures: %q", sorted)
	}
}
