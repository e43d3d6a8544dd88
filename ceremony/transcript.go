package ceremony

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

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

// Transcript records the steps of a ceremony as JSON Lines, hash-chained.
// It holds public information only; callers never pass it a secret.
type Transcript struct {
	w    io.Writer
	show io.Writer
	now  func() time.Time
	seq  int
	prev [32]byte
}

// NewTranscript writes entries to w and a human line for each to show
// (which may be nil).
func NewTranscript(w, show io.Writer, now func() time.Time) *Transcript {
	if now == nil {
		now = time.Now
	}
	return &Transcript{w: w, show: show, now: now}
}

// Record appends a step.
func (t *Transcript) Record(step string, detail map[string]any) error {
	t.seq++
	e := TranscriptEntry{Seq: t.seq, Time: t.now().UTC().Format(time.RFC3339), Step: step, Detail: detail, Prev: hex.EncodeToString(t.prev[:])}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("recording %q: %w", step, err)
	}
	if _, err := t.w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing transcript: %w", err)
	}
	t.prev = sha256.Sum256(line)
	if t.show != nil {
		fmt.Fprintf(t.show, "[%02d] %s\n", t.seq, step)
	}
	return nil
}

// Digest is the hash of the last line: it commits to the whole transcript.
func (t *Transcript) Digest() [32]byte { return t.prev }

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
