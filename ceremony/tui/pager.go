package tui

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/term"
)

// The pager: long text (the full diff, a project's drill-down) shown a
// screen at a time on the terminal, in the process itself. No external
// pager is run: on the air-gapped laptop nothing the environment names
// ($PAGER) is executed, and the pager works where less is not installed.
// The text is spilled to a file (in the directory given: the work
// directory) with the offset of every 64th line, so memory stays small
// whatever the text's length.

// pagerStride is how many lines lie between two remembered offsets.
const pagerStride = 64

// spill writes what write produces to f and counts its lines.
type spill struct {
	w     *bufio.Writer
	off   int64
	lines int64
	marks []int64 // offset of line k*pagerStride
	open  bool    // inside a line
}

func (s *spill) Write(p []byte) (int, error) {
	for i, c := range p {
		if !s.open {
			if s.lines%pagerStride == 0 {
				s.marks = append(s.marks, s.off+int64(i))
			}
			s.open = true
		}
		if c == '\n' {
			s.lines++
			s.open = false
		}
	}
	s.off += int64(len(p))
	return s.w.Write(p)
}

// Page shows what write produces: at once if it fits the screen, else a
// screen at a time on the terminal's alternate screen (space or f: next page, b: previous, j or Enter or
// down: next line, k or up: previous, g: top, G: end, q: quit). The text
// goes through a temporary file in dir, removed on return.
func (t *Terminal) Page(dir string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, "keyceremony-pager-")
	if err != nil {
		return fmt.Errorf("pager: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	s := &spill{w: bufio.NewWriterSize(f, 64<<10)}
	if err := write(s); err != nil {
		return err
	}
	if s.open {
		s.lines++
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("pager: %w", err)
	}
	fd := int(t.in.Fd())
	width, height, err := term.GetSize(fd)
	if err != nil || height < 3 {
		width, height = 80, 24
	}
	if s.lines < int64(height) {
		_, err := io.Copy(t.out, io.NewSectionReader(f, 0, s.off))
		return err
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("pager: %w", err)
	}
	// The alternate screen, as less uses it: on quitting, the terminal
	// shows again what it showed before, once it is back in line mode:
	// keys typed as soon as the pager is gone are read as a line.
	fmt.Fprint(t.out, "\x1b[?1049h")
	defer func() {
		term.Restore(fd, old)
		fmt.Fprint(t.out, "\x1b[?1049l")
	}()
	p := &pager{f: f, s: s, rows: int64(height - 1), width: width}
	key := make([]byte, 8)
	for {
		if err := p.draw(t.out); err != nil {
			return err
		}
		n, err := t.in.Read(key)
		if err != nil {
			return fmt.Errorf("reading from the terminal: %w", err)
		}
		switch k := string(key[:n]); k {
		case "q", "Q", "\x03", "\x1b":
			return nil
		case " ", "f", "\x1b[6~":
			p.top += p.rows
		case "b", "\x1b[5~":
			p.top -= p.rows
		case "j", "\r", "\n", "\x1b[B", "\x1bOB":
			p.top++
		case "k", "\x1b[A", "\x1bOA":
			p.top--
		case "g", "<", "\x1b[H":
			p.top = 0
		case "G", ">", "\x1b[F":
			p.top = s.lines
		}
		p.top = max(0, min(p.top, s.lines-p.rows))
	}
}

type pager struct {
	f     *os.File
	s     *spill
	top   int64
	rows  int64
	width int
}

// draw shows the screen from line top, and a status line.
func (p *pager) draw(w io.Writer) error {
	mark := p.top / pagerStride
	br := bufio.NewReader(io.NewSectionReader(p.f, p.s.marks[mark], p.s.off-p.s.marks[mark]))
	for i := mark * pagerStride; i < p.top; i++ {
		if _, err := br.ReadSlice('\n'); err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	var out bytes.Buffer
	out.WriteString("\x1b[H\x1b[2J")
	for i := int64(0); i < p.rows; i++ {
		line, err := br.ReadString('\n')
		out.WriteString(clip(line, p.width))
		out.WriteString("\r\n")
		if err != nil {
			break
		}
	}
	last := min(p.top+p.rows, p.s.lines)
	fmt.Fprintf(&out, "\x1b[7m lines %d-%d of %d  space/b page  j/k line  g/G top/end  q quit \x1b[0m", p.top+1, last, p.s.lines)
	_, err := w.Write(out.Bytes())
	return err
}

// clip drops the line's end of line and cuts it to width characters.
func clip(line string, width int) string {
	line = string(bytes.TrimRight([]byte(line), "\r\n"))
	if utf8.RuneCountInString(line) <= width {
		return line
	}
	n := 0
	for i := range line {
		if n == width-1 {
			return line[:i] + "…"
		}
		n++
	}
	return line
}
