package ceremony

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/strictjson"
)

// ErrTranscript is wrapped by every transcript verification failure.
var ErrTranscript = errors.New("transcript does not verify")

// TranscriptEntry is one line of a transcript. Prev is the hex SHA-256 of
// the previous line's bytes (without its newline), or 64 zeros for the
// first, so that no line can be removed, reordered or edited unnoticed.
type TranscriptEntry struct {
	Seq    int            `json:"seq"`
	Time   string         `json:"time"`
	Step   string         `json:"step"`
	Detail map[string]any `json:"detail,omitempty"`
	Prev   string         `json:"prev"`
}

// Transcript records the steps of a ceremony as JSON Lines, hash-chained:
// the journal of docs/audit.md. It holds public information only; callers
// never pass it a secret.
type Transcript struct {
	w    io.Writer
	show io.Writer
	now  func() time.Time
	seq  int
	prev [32]byte
	// lines is every line written, for a copy kept elsewhere (a failed
	// bootstrap's transcript beside its output).
	lines bytes.Buffer
	// failed is the first write or sync error: the journal no longer
	// matches what was recorded, so nothing more is recorded.
	failed error
}

// NewTranscript writes entries to w and a human line for each to show
// (which may be nil), each entry timed by now (the real clock if nil).
// When w is a file (it has Sync), every entry is written with one write
// and synced before Record returns: the journal on the output medium
// holds every step recorded, in order, even when the run dies.
func NewTranscript(w, show io.Writer, now func() time.Time) *Transcript {
	if now == nil {
		now = time.Now
	}
	return &Transcript{w: w, show: show, now: now}
}

// Record appends a step.
func (t *Transcript) Record(step string, detail map[string]any) error {
	if t.failed != nil {
		return fmt.Errorf("recording %q: the journal failed earlier: %w", step, t.failed)
	}
	e := TranscriptEntry{Seq: t.seq + 1, Time: t.now().UTC().Format(time.RFC3339), Step: step, Detail: detail, Prev: hex.EncodeToString(t.prev[:])}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("recording %q: %w", step, err)
	}
	line = append(line, '\n')
	if t.w != nil {
		if _, err := t.w.Write(line); err != nil {
			t.failed = err
			return fmt.Errorf("writing the journal: %w", err)
		}
		if f, ok := t.w.(interface{ Sync() error }); ok {
			if err := f.Sync(); err != nil {
				t.failed = err
				return fmt.Errorf("syncing the journal: %w", err)
			}
		}
	}
	t.lines.Write(line)
	t.seq++
	t.prev = sha256.Sum256(line[:len(line)-1])
	if t.show != nil {
		fmt.Fprintf(t.show, "[%02d] %s\n", t.seq, step)
	}
	return nil
}

// JournalFile is the journal's name on every ceremony's output medium.
const JournalFile = "transcript.jsonl"

// openJournal starts the journal of a ceremony writing out: JournalFile,
// created at once on the output medium (under out's working name) and
// synced entry by entry. A guided ceremony times entries by the guide's
// clock and shows them through the guide; a batch one by the real clock,
// each step shown on show.
func openJournal(out *outdir.Dir, show io.Writer, g *Guide) (*Transcript, error) {
	f, err := out.Journal(JournalFile)
	if err != nil {
		return nil, err
	}
	if g != nil {
		return NewTranscript(f, nil, g.now), nil
	}
	return NewTranscript(f, show, nil), nil
}

// Close ends the journal on the medium (closing its file, if it has
// one): entries recorded later (a failure found at read-back) are kept in
// Bytes only. It is safe to call more than once.
func (t *Transcript) Close() error {
	c, ok := t.w.(io.Closer)
	t.w = nil
	if !ok {
		return nil
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("closing the journal: %w", err)
	}
	return nil
}

// Digest is the hash of the last line: it commits to the whole transcript.
func (t *Transcript) Digest() [32]byte { return t.prev }

// Entries is the number of entries recorded.
func (t *Transcript) Entries() int { return t.seq }

// Bytes is every line recorded, as the journal holds them.
func (t *Transcript) Bytes() []byte { return t.lines.Bytes() }

// VerifyTranscript checks the hash chain of a transcript and returns the
// digest of its last line and the number of entries.
func VerifyTranscript(r io.Reader, name string) ([32]byte, int, error) {
	var prev [32]byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		var e TranscriptEntry
		if err := strictjson.DecodeLine(line, name, n, &e); err != nil {
			return prev, n, fmt.Errorf("%w: %w", err, ErrTranscript)
		}
		if e.Seq != n {
			return prev, n, fmt.Errorf("%s:%d: seq %d: %w", name, n, e.Seq, ErrTranscript)
		}
		if e.Prev != hex.EncodeToString(prev[:]) {
			return prev, n, fmt.Errorf("%s:%d: prev does not match the hash of line %d: %w", name, n, n-1, ErrTranscript)
		}
		prev = sha256.Sum256(line)
	}
	if err := sc.Err(); err != nil {
		return prev, n, fmt.Errorf("%s: %w: %w", name, err, ErrTranscript)
	}
	if n == 0 {
		return prev, 0, fmt.Errorf("%s: empty: %w", name, ErrTranscript)
	}
	return prev, n, nil
}
