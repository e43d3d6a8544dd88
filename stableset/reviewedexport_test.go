package stableset

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// TestExportYankedMark: a line the export writer writes holds
// exportYanked exactly when its file is yanked, whatever its strings
// hold (a reason, requires_python, a project or file name spelling the
// mark or the key around it).
func TestExportYankedMark(t *testing.T) {
	up := time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)
	var recs []export.Record
	for i, c := range []struct {
		project, filename, reason, python string
		yanked                            bool
	}{
		{"plain", "plain-1.0.tar.gz", "", "", false},
		{"plain", "plain-2.0.tar.gz", "broken", "", true},
		{"yanked", "yanked-1.0.tar.gz", "", "", false},
		{"yanked-true", "yanked_true-1.0.tar.gz", "", `>=3.8; yanked":true,`, false},
		{"q", "q-1.0.tar.gz", `"yanked":true,`, `yanked":true,`, true},
		{"r", "r-1.0.tar.gz", `","yanked":true,"`, "", true},
		{"s", "s-1.0.tar.gz", "", `","yanked":true,"`, false},
	} {
		b2 := [32]byte{byte(i + 1)}
		recs = append(recs, export.Record{Path: export.TargetPath(b2, c.filename), Project: c.project, Version: "1.0", Filename: c.filename,
			Length: 1, BLAKE2b256: b2, UploadTime: up, Yanked: c.yanked, YankedReason: c.reason, RequiresPython: c.python})
	}
	data := exportOfRecords(t, up.Add(time.Hour), recs)
	sc := bufio.NewScanner(bytes.NewReader(data))
	byPath := map[string]bool{}
	for _, r := range recs {
		byPath[r.Path] = r.Yanked
	}
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, exportPathKey) {
			continue
		}
		p := line[len(exportPathKey):]
		p = p[:bytes.IndexByte(p, '"')]
		want, ok := byPath[string(p)]
		if !ok {
			t.Fatalf("line for %s, which no record has", p)
		}
		n++
		if got := bytes.Contains(line, exportYanked); got != want {
			t.Errorf("%s: the mark found %v, yanked %v", line, got, want)
		}
	}
	if n != len(recs) {
		t.Fatalf("%d record lines, want %d", n, len(recs))
	}
}
