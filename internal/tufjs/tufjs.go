// Package tufjs runs tuf-js, an independent TUF client (npm, the client npm
// and sigstore-js use), against a repository directory, for tests only. It
// is never linked into the keyceremony binary (a test in cmd/keyceremony
// checks that).
//
// It promises:
//   - The repository is served on 127.0.0.1 only (net/http/httptest), laid
//     out as a client fetches it: DIR/metadata/ (1.root.json,
//     timestamp.json, N.snapshot.json, N.<role>.json) and DIR/targets/
//     (<sha256>.<name>, consistent snapshots); nothing else is reachable.
//   - What comes back is tuf-js's own answer, parsed from its output: the
//     entry getTargetInfo found (length and hashes), whether downloadTarget
//     fetched and verified the file, and the error text. Nothing here
//     resolves, matches or verifies anything itself.
//   - A missing node or tuf-js installation is an error naming the fix
//     (make deps), never a skip.
package tufjs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNotInstalled means node or the pinned tuf-js is not installed.
var ErrNotInstalled = errors.New("tuf-js is not installed (run make deps)")

// Result is tuf-js's answer for one target path.
type Result struct {
	Path string `json:"path"`
	// Found: getTargetInfo returned an entry.
	Found  bool              `json:"found"`
	Length int64             `json:"length"`
	Hashes map[string]string `json:"hashes"`
	// Downloaded: downloadTarget fetched the file and verified its length
	// and hashes.
	Downloaded bool `json:"downloaded"`
	// Error is the text of the error tuf-js raised for this path, if any.
	Error string `json:"error"`
}

// Request is one file the client fetched from the server.
type Request struct {
	Path   string // URL path, e.g. /metadata/2.stable.json
	Status int
	Bytes  int64 // body bytes served
}

// Run is one run of the client: a refresh, then each path in turn.
type Run struct {
	RefreshOK    bool
	RefreshError string
	Results      []Result
	// Requests lists every request the server answered, in order.
	Requests []Request
}

// ByPath returns the result for path p.
func (r *Run) ByPath(p string) (Result, bool) {
	for _, res := range r.Results {
		if res.Path == p {
			return res, true
		}
	}
	return Result{}, false
}

// BytesServed sums the bytes served for requests whose path starts with
// prefix ("" for all).
func (r *Run) BytesServed(prefix string) int64 {
	var n int64
	for _, q := range r.Requests {
		if strings.HasPrefix(q.Path, prefix) {
			n += q.Bytes
		}
	}
	return n
}

// Dir is the directory holding package.json, the lockfile and resolve.mjs.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "tuf", "testdata", "tufjs")
}

// Check reports whether node and the pinned tuf-js are installed.
func Check() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node: %w: %w", ErrNotInstalled, err)
	}
	pkg := filepath.Join(Dir(), "node_modules", "tuf-js", "package.json")
	if _, err := os.Stat(pkg); err != nil {
		return fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	return nil
}

// Options change how the client runs.
type Options struct {
	// BLAKE2b256 teaches node's crypto the TUF hash name "blake2b-256"
	// (tuf/testdata/tufjs/blake2b.mjs) before tuf-js starts. tuf-js
	// verifies a download against every hash its entry lists and refuses
	// one whose name node does not know; node knows no "blake2b-256", so
	// without this no entry listing it downloads. tuf-js itself is
	// unchanged: it still routes, fetches and compares every hash.
	BLAKE2b256 bool
	// StateDir, when not empty, is the client's own directory, kept
	// between runs as an installed client keeps it: its metadata cache
	// (StateDir/metadata) and downloads (StateDir/targets). The first run
	// in an empty StateDir starts from trustedRoot; later runs start from
	// what the client cached (its newest trusted root, timestamp,
	// snapshot and every role it loaded), so they fetch only what changed.
	StateDir string
}

// Resolve serves repoDir (metadata/ and targets/ beneath it), starts a
// client that trusts the root file trustedRoot, and asks it for each path:
// getTargetInfo, then downloadTarget for what it found. An error means the
// client could not be run or its output not read; tuf-js's refusals are in
// the Run. tuf-js runs as published.
func Resolve(repoDir, trustedRoot string, paths []string) (*Run, error) {
	return ResolveWith(repoDir, trustedRoot, paths, Options{})
}

// ResolveWith is Resolve with options.
func ResolveWith(repoDir, trustedRoot string, paths []string, opt Options) (*Run, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	for _, p := range paths {
		if p == "" || strings.ContainsAny(p, "\n\r") {
			return nil, fmt.Errorf("target path %q: not one non-empty line", p)
		}
	}
	var (
		mu   sync.Mutex
		reqs []Request
	)
	mux := http.NewServeMux()
	for _, sub := range []string{"metadata", "targets"} {
		fs := http.StripPrefix("/"+sub+"/", http.FileServer(http.Dir(filepath.Join(repoDir, sub))))
		mux.Handle("/"+sub+"/", fs)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(cw, r)
		mu.Lock()
		reqs = append(reqs, Request{Path: r.URL.Path, Status: cw.status, Bytes: cw.n})
		mu.Unlock()
	}))
	defer srv.Close()

	work := opt.StateDir
	if work == "" {
		tmp, err := os.MkdirTemp("", "kc-tufjs-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	// A bound on a hung client, not a measure of speed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := []string{filepath.Join(Dir(), "resolve.mjs"), srv.URL + "/metadata/", srv.URL + "/targets/", trustedRoot, work}
	if opt.BLAKE2b256 {
		args = append(args, "--blake2b-256")
	}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = Dir()
	cmd.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("running tuf-js: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	var out struct {
		Refresh struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"refresh"`
		Results []Result `json:"results"`
	}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("reading tuf-js output: %w", err)
	}
	if len(out.Results) != len(paths) {
		return nil, fmt.Errorf("tuf-js answered for %d paths, asked %d", len(out.Results), len(paths))
	}
	for i, r := range out.Results {
		if r.Path != paths[i] {
			return nil, fmt.Errorf("tuf-js answer %d is for %q, asked %q", i, r.Path, paths[i])
		}
	}
	srv.Close() // wait for every handler before reading reqs
	mu.Lock()
	defer mu.Unlock()
	return &Run{RefreshOK: out.Refresh.OK, RefreshError: out.Refresh.Error, Results: out.Results, Requests: reqs}, nil
}

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Files returns the metadata file names the client fetched successfully,
// sorted, for reports.
func (r *Run) Files() []string {
	var out []string
	for _, q := range r.Requests {
		if q.Status == http.StatusOK {
			out = append(out, q.Path)
		}
	}
	sort.Strings(out)
	return out
}
