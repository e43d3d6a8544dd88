package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// clock is a clock the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTerminalBar(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	b := New(&out, "signing the bins", 200, Options{Terminal: true, Unit: "bins", Now: c.now})
	c.t = c.t.Add(10 * time.Second)
	b.Set(50)
	c.t = c.t.Add(50 * time.Millisecond)
	b.Set(60) // within a tenth of a second: not redrawn
	c.t = c.t.Add(10 * time.Second)
	b.Set(100)
	c.t = c.t.Add(20 * time.Second)
	b.Set(200)
	b.Done()
	b.Done() // once only
	want := "\r\x1b[Ksigning the bins [#######.......................] 50 of 200 bins (25%), about 30s left" +
		"\r\x1b[Ksigning the bins [###############...............] 100 of 200 bins (50%), about 20s left" +
		"\r\x1b[Ksigning the bins [##############################] 200 of 200 bins (100%)" +
		"\r\x1b[Ksigning the bins 200 bins  done in 40s\n"
	if got := out.String(); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestPlainLines(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	b := New(&out, "reading the export", 4_000_000, Options{Unit: "bytes", Now: c.now, Interval: 5 * time.Second})
	r := &Reader{R: strings.NewReader(strings.Repeat("x", 4_000_000)), Bar: b}
	buf := make([]byte, 1_000_000)
	for {
		c.t = c.t.Add(2 * time.Second)
		if _, err := r.Read(buf); err != nil {
			break
		}
	}
	b.Done()
	want := "reading the export: started (4.0 MB)\n" +
		"reading the export: 3.0 of 4.0 MB (75%), about 2s left\n" +
		"reading the export: done, 4.0 MB in 10s\n"
	if got := out.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestUnknownTotal(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	b := New(&out, "writing", 0, Options{Terminal: true, Now: c.now})
	c.t = c.t.Add(time.Second)
	b.Add(7)
	b.Done()
	if got, want := out.String(), "\r\x1b[Kwriting 7\r\x1b[Kwriting 7  done in 1s\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestWriter(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	var out, dst bytes.Buffer
	b := New(&out, "writing diff.txt", 0, Options{Unit: "bytes", Now: c.now, Interval: time.Second})
	w := &Writer{W: &dst, Bar: b}
	for i := 0; i < 3; i++ {
		c.t = c.t.Add(time.Second)
		if _, err := w.Write(make([]byte, 500_000)); err != nil {
			t.Fatal(err)
		}
	}
	b.Done()
	want := "writing diff.txt: started\n" +
		"writing diff.txt: 0.5 MB\n" +
		"writing diff.txt: 1.0 MB\n" +
		"writing diff.txt: 1.5 MB\n" +
		"writing diff.txt: done, 1.5 MB in 3s\n"
	if got := out.String(); got != want || dst.Len() != 1_500_000 {
		t.Fatalf("got\n%s(%d bytes written), want\n%s", got, dst.Len(), want)
	}
}
