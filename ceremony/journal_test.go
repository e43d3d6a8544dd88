package ceremony

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
)

// partialJournal reads the journal of the ceremony writing out, from its
// working directory beside out (.<out>.partial-PID-N/transcript.jsonl).
func partialJournal(t *testing.T, out string) []byte {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial-*", JournalFile))
	if err != nil || len(m) != 1 {
		t.Fatalf("journal of %s under its working name: %v %v", out, m, err)
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJournalWrittenAsItHappens reads the journal on the output medium
// while the bootstrap runs, as someone pulling the medium at that moment
// would: when the first PIN is asked, every step so far is there, whole
// lines, chained; each entry carries the real time it was written, not
// the ceremony's configured clock.
func TestJournalWrittenAsItHappens(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "media")
	b := f.bootstrap()
	// The ceremony's clock, confirmed by the room, is two hours ahead of
	// the real one: entries are timed by the real clock.
	b.Now = time.Now().UTC().Add(2 * time.Hour).Truncate(time.Second)
	started := time.Now().UTC().Truncate(time.Second)
	var seen []byte
	b.PIN = func(info hsm.Info, tries int) (string, error) {
		if seen == nil {
			seen = partialJournal(t, out)
		}
		return soft.DefaultPIN, nil
	}
	res, err := b.Run(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(seen, []byte("\n")) {
		t.Fatalf("journal at the first PIN does not end with a whole line: %q", seen)
	}
	_, n, err := VerifyTranscript(bytes.NewReader(seen), JournalFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + len(f.cfg.Devices()); n != want || !strings.Contains(string(seen), `"step":"device connected"`) {
		t.Fatalf("journal at the first PIN has %d entries, want %d (started, every device connected):\n%s", n, want, seen)
	}
	final := mustRead(t, filepath.Join(out, JournalFile))
	if !bytes.HasPrefix(final, seen) {
		t.Fatal("the final journal does not start with what was on the medium at the first PIN")
	}
	digest, _, err := VerifyTranscript(bytes.NewReader(final), JournalFile)
	if err != nil || digest != res.Transcript {
		t.Fatalf("final journal: digest %x, the result says %x: %v", digest, res.Transcript, err)
	}
	ended := time.Now().UTC()
	for _, e := range journalEntries(t, final) {
		at, err := time.Parse(time.RFC3339, e.Time)
		if err != nil || at.Before(started) || at.After(ended) {
			t.Errorf("entry %d (%s) at %s: not within the run's real time %s to %s", e.Seq, e.Step, e.Time, started.Format(time.RFC3339), ended.Format(time.RFC3339))
		}
	}
}

// TestNoPINInAnyWrittenFile runs a bootstrap and a stable signing with
// PINs typed as a keyholder would (one per device, each distinctive) and
// looks for every PIN, as text and as hex, in every file either wrote: the
// bootstrap media, the stable media and the backup medium.
func TestNoPINInAnyWrittenFile(t *testing.T) {
	f := newFixture(t)
	pins := map[uint32]string{}
	for s, d := range f.devices {
		pins[s] = fmt.Sprintf("Pq%04dZ", s%10000)
		if err := d.(*soft.Device).ChangePIN(soft.DefaultPIN, pins[s]); err != nil {
			t.Fatal(err)
		}
	}
	asked := 0
	f.pins = func(info hsm.Info, tries int) (string, error) { asked++; return pins[info.Serial], nil }
	fx := newReadBackFixtureFrom(t, f)
	media := filepath.Join(fx.dir, "stable-2")
	if _, err := fx.ss.Sign(fx.approve, media); err != nil {
		t.Fatal(err)
	}
	written := 0
	for _, root := range []string{fx.bootDir, media, fx.ss.Backup} {
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			written++
			for _, pin := range pins {
				for _, form := range []string{pin, hex.EncodeToString([]byte(pin))} {
					if bytes.Contains(b, []byte(form)) {
						t.Errorf("%s holds the PIN %q (as %q)", p, pin, form)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if written < 20 || asked < 2*len(pins) {
		t.Fatalf("%d files written, %d PINs asked: the search proves nothing", written, asked)
	}
}

// journalEntries parses a journal's lines.
func journalEntries(t *testing.T, b []byte) []TranscriptEntry {
	t.Helper()
	var es []TranscriptEntry
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var e TranscriptEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		es = append(es, e)
	}
	return es
}

// syncLog records a journal's writes and syncs, failing the write
// numbered failAt (from 1; 0 never).
type syncLog struct {
	ops    []string
	failAt int
	writes int
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.writes++
	if l.writes == l.failAt {
		l.ops = append(l.ops, "write failed")
		return 0, errDiskFull
	}
	l.ops = append(l.ops, fmt.Sprintf("write %d lines", bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

func (l *syncLog) Sync() error { l.ops = append(l.ops, "sync"); return nil }

var errDiskFull = fmt.Errorf("no space left on device (injected)")

// TestTranscriptSyncsEachEntry: each entry is one write of one whole line,
// synced before Record returns; a failed write ends the journal (the next
// Record refuses, naming the first failure) and what was recorded before
// it is what Bytes holds.
func TestTranscriptSyncsEachEntry(t *testing.T) {
	l := &syncLog{failAt: 3}
	tr := NewTranscript(l, nil, nil)
	for i := range 2 {
		if err := tr.Record(fmt.Sprintf("step %d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Record("step 2", nil); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("third record: %v, want the write failure", err)
	}
	if err := tr.Record("step 3", nil); err == nil || !strings.Contains(err.Error(), "failed earlier") {
		t.Fatalf("record after a failure: %v, want it refused", err)
	}
	if got, want := strings.Join(l.ops, ", "), "write 1 lines, sync, write 1 lines, sync, write failed"; got != want {
		t.Fatalf("journal operations: %s, want %s", got, want)
	}
	if tr.Entries() != 2 || bytes.Count(tr.Bytes(), []byte("\n")) != 2 {
		t.Fatalf("%d entries, %q recorded: want the two written", tr.Entries(), tr.Bytes())
	}
}
