// Package progress reports the progress of a long step of a ceremony (the
// pass over the export, signing the bins, writing and reading back the
// media) to the people in the room: on a terminal, one line redrawn in
// place with a bar, the counts and the time left; otherwise (a log, a
// recording, a pipe) a plain line at most every Interval. It promises
// never to slow the work down by more than a clock read per update, and
// to end every report with a final line giving the count and the time
// taken.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is how often a plain (non-terminal) report prints a line.
const DefaultInterval = 5 * time.Second

// barWidth is the bar's width in characters.
const barWidth = 30

// Bar reports one long step. Its methods may be called from several
// goroutines.
type Bar struct {
	w        io.Writer
	label    string
	unit     string
	total    int64
	terminal bool
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	done  int64
	start time.Time
	last  time.Time
	ended bool
}

// Options configure a Bar.
type Options struct {
	// Terminal redraws one line in place; otherwise a plain line is
	// printed at most every Interval (default DefaultInterval).
	Terminal bool
	Interval time.Duration
	// Unit names what is counted ("bytes" are shown in MB).
	Unit string
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// New starts reporting label on w, total units to do (0 if unknown).
func New(w io.Writer, label string, total int64, o Options) *Bar {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	b := &Bar{w: w, label: label, unit: o.Unit, total: total, terminal: o.Terminal, interval: o.Interval, now: o.Now}
	b.start = b.now()
	b.last = b.start
	switch {
	case b.terminal:
	case total > 0:
		fmt.Fprintf(w, "%s: started (%s)\n", label, b.count(total))
	default:
		fmt.Fprintf(w, "%s: started\n", label)
	}
	return b
}

// Set records that n units are done.
func (b *Bar) Set(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = n
	b.draw(false)
}

// Add records n more units done.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.draw(false)
}

// Done ends the report with a final line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	took := b.now().Sub(b.start).Round(time.Second)
	if b.terminal {
		fmt.Fprintf(b.w, "\r\x1b[K%s %s  done in %s\n", b.label, b.count(b.done), took)
		return
	}
	fmt.Fprintf(b.w, "%s: done, %s in %s\n", b.label, b.count(b.done), took)
}

func (b *Bar) draw(force bool) {
	if b.ended {
		return
	}
	now := b.now()
	if !b.terminal {
		if !force && now.Sub(b.last) < b.interval {
			return
		}
		b.last = now
		fmt.Fprintf(b.w, "%s: %s%s\n", b.label, b.fraction(), b.left(now))
		return
	}
	// A terminal line is redrawn at most ten times a second.
	if !force && now.Sub(b.last) < 100*time.Millisecond && b.done != b.total {
		return
	}
	b.last = now
	bar := ""
	if b.total > 0 {
		fill := int(min(b.done, b.total) * barWidth / b.total)
		bar = "[" + strings.Repeat("#", fill) + strings.Repeat(".", barWidth-fill) + "] "
	}
	fmt.Fprintf(b.w, "\r\x1b[K%s %s%s%s", b.label, bar, b.fraction(), b.left(now))
}

// fraction is "n of total unit (p%)".
func (b *Bar) fraction() string {
	if b.total <= 0 {
		return b.count(b.done)
	}
	return fmt.Sprintf("%s of %s (%d%%)", b.num(b.done), b.count(b.total), min(b.done, b.total)*100/b.total)
}

// left is ", about D left" once something is done.
func (b *Bar) left(now time.Time) string {
	if b.total <= 0 || b.done <= 0 || b.done >= b.total {
		return ""
	}
	el := now.Sub(b.start)
	rem := time.Duration(float64(el) * float64(b.total-b.done) / float64(b.done))
	return fmt.Sprintf(", about %s left", rem.Round(time.Second))
}

func (b *Bar) num(n int64) string {
	if b.unit == "bytes" {
		return fmt.Sprintf("%.1f", float64(n)/1e6)
	}
	return fmt.Sprint(n)
}

func (b *Bar) count(n int64) string {
	switch {
	case b.unit == "bytes":
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case b.unit == "":
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d %s", n, b.unit)
}

// Reader counts the bytes read through it into a Bar.
type Reader struct {
	R   io.Reader
	Bar *Bar
}

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.R.Read(p)
	if n > 0 {
		r.Bar.Add(int64(n))
	}
	return n, err
}

// Writer counts the bytes written through it into a Bar.
type Writer struct {
	W   io.Writer
	Bar *Bar
}

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.W.Write(p)
	if n > 0 {
		w.Bar.Add(int64(n))
	}
	return n, err
}
