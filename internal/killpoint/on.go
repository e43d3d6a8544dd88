//go:build killpoint

package killpoint

import (
	"bytes"
	"io"
	"os"
	"sync"
	"syscall"
)

func stdout(w io.Writer) io.Writer {
	at := os.Getenv("KEYCEREMONY_KILLPOINT")
	if at == "" {
		return w
	}
	return &watcher{w: w, at: []byte(at)}
}

// watcher passes writes through and stops the whole process (every
// thread) once a complete line holding at has been written.
type watcher struct {
	mu   sync.Mutex
	w    io.Writer
	at   []byte
	line []byte // the line being written, up to its end
	done bool
}

func (x *watcher) Write(p []byte) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, err := x.w.Write(p)
	if x.done {
		return n, err
	}
	x.line = append(x.line, p[:n]...)
	for {
		i := bytes.IndexByte(x.line, '\n')
		if i < 0 {
			return n, err
		}
		if bytes.Contains(x.line[:i], x.at) {
			x.done, x.line = true, nil
			syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			return n, err
		}
		x.line = x.line[i+1:]
	}
}
