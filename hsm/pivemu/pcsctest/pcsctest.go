//go:build cgo

// Package pcsctest gives Go tests a private PC/SC stack with emulated
// YubiKeys: its own pcscd (in a mount namespace, so it can run beside a
// system pcscd and beside other test processes), one vsmartcard vpcd
// reader slot per card, and a pivemu.Card inserted in each slot.
//
// It needs root (for unshare -m and mount --bind) and the Debian packages
// that scripts/install-test-deps installs. When they are missing, Start
// fails the test with the command that installs them: it never skips.
//
// Once Start has returned, an Env connects to no card: Insert and Remove
// ask pcscd for the readers' state, so a program under test that uses a
// card meanwhile is never refused by the test's own checks.
package pcsctest

/*
#cgo linux pkg-config: libpcsclite
#include <stdlib.h>
#include <PCSC/winscard.h>
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
)

// InstallHint is the command that installs what the PC/SC tests need.
const InstallHint = "run scripts/install-test-deps as root (apt-get update && apt-get install -y pcscd libpcsclite-dev pkg-config vsmartcard-vpcd yubico-piv-tool opensc yubikey-manager python3-keyring curl; then it unpacks ykman 5.6.1 into .deps/ykman5)"

// Ykman is one version of ykman, the YubiKey Manager CLI, that the tests
// drive as an independent client.
type Ykman struct {
	Version string // "4.0.9"
	Path    string // the program to run
}

func (y Ykman) String() string { return "ykman " + y.Version }

// Ykman5Path is where scripts/install-test-deps puts the wrapper that runs
// ykman 5.6.1 (Debian trixie's yubikey-manager, unpacked beside
// bookworm's 4.0.9), relative to the module's root directory.
const Ykman5Path = ".deps/ykman5/ykman"

var (
	ykmansOnce sync.Once
	ykmans     []Ykman
	ykmansErr  error
)

// Ykmans returns the two ykman versions the tests run: Debian bookworm's
// 4.0.9 (the system ykman) and 5.6.1 (Ykman5Path). It fails the test
// (never skips) when either is missing or says it is another version.
func Ykmans(t testing.TB) []Ykman {
	t.Helper()
	ykmansOnce.Do(func() { ykmans, ykmansErr = findYkmans() })
	if ykmansErr != nil {
		t.Fatalf("pcsctest: %v", ykmansErr)
	}
	return ykmans
}

func findYkmans() ([]Ykman, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	all := []Ykman{{"4.0.9", "ykman"}, {"5.6.1", filepath.Join(root, Ykman5Path)}}
	for _, y := range all {
		out, err := exec.Command(y.Path, "--version").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%s (%s) does not run: %v: %s: %s", y, y.Path, err, bytes.TrimSpace(out), InstallHint)
		}
		if want := "YubiKey Manager (ykman) version: " + y.Version; strings.TrimSpace(string(out)) != want {
			return nil, fmt.Errorf("%s says %q, want %q: %s", y.Path, bytes.TrimSpace(out), want, InstallHint)
		}
	}
	return all, nil
}

// moduleRoot is the directory holding go.mod, above the working directory
// (a package's directory, under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// ReaderPrefix starts every reader name, as a YubiKey 5's USB reader name
// starts ("Yubico YubiKey OTP+FIDO+CCID 00 00"): ykman lists only readers
// whose name contains "Yubico YubiKey", and reads the USB interfaces from
// the rest of the name. Readers are "Yubico YubiKey OTP+FIDO+CCID A 00 00",
// "... A 00 01", "... B 00 00", and so on.
const ReaderPrefix = "Yubico YubiKey OTP+FIDO+CCID"

// VPCDDriver is the vpcd reader driver that the reader.conf entries load.
const VPCDDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// Env is a running private pcscd with emulated cards.
type Env struct {
	// Cards are the emulated cards, in the order of Start's configs.
	Cards []*pivemu.Card
	// Readers[i] is the PC/SC reader name in which Cards[i] sits, e.g.
	// "Yubico YubiKey OTP+FIDO+CCID A 00 00" (pass it to piv.Open,
	// yubico-piv-tool -r or ykman --reader).
	Readers []string
	// Addrs[i] is the vpcd address (127.0.0.1:port) Cards[i] connects to.
	Addrs []string
	// Socket is the pcscd socket; PCSCLITE_CSOCK_NAME points at it.
	Socket string
	// Dir holds reader.conf.d, the socket and pcscd's log.
	Dir string

	cancels []context.CancelFunc
	serving []*serving
	logPath string
}

var (
	// envMu allows one Env per process at a time: libpcsclite reads
	// PCSCLITE_CSOCK_NAME once and keeps it, so every Env of a process
	// uses the same socket path, and an Env waits for the previous one.
	envMu   sync.Mutex
	sockMu  sync.Mutex
	sockDir string // per process, reused by every Env
)

// socketDir returns this process's socket directory, creating it and
// setting PCSCLITE_CSOCK_NAME on first use.
func socketDir() (string, error) {
	sockMu.Lock()
	defer sockMu.Unlock()
	if sockDir != "" {
		// stop removed it; the path must stay the same.
		if err := os.MkdirAll(sockDir, 0o700); err != nil {
			return "", fmt.Errorf("making pcscd socket directory: %w", err)
		}
		return sockDir, nil
	}
	d, err := os.MkdirTemp("", "pcsctest-run-")
	if err != nil {
		return "", fmt.Errorf("making pcscd socket directory: %w", err)
	}
	if err := os.Setenv("PCSCLITE_CSOCK_NAME", filepath.Join(d, "pcscd.comm")); err != nil {
		return "", fmt.Errorf("setting PCSCLITE_CSOCK_NAME: %w", err)
	}
	sockDir = d
	return d, nil
}

// Check reports what is missing for a private PC/SC stack, or nil.
func Check() error {
	var missing []string
	for _, tool := range []string{"pcscd", "unshare", "mount", "opensc-tool", "ykman"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat(VPCDDriver); err != nil {
		missing = append(missing, "vpcd ("+VPCDDriver+")")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: %s", strings.Join(missing, ", "), InstallHint)
	}
	if os.Geteuid() != 0 {
		return errors.New("the private pcscd needs root (unshare -m, mount --bind): run the tests as root, as CI does")
	}
	return nil
}

// Start starts a private pcscd with one vpcd reader slot per card and
// inserts n emulated cards, made from cfgs[i] when given (Addr is filled
// in; a nil CA gets a fresh emulator CA per card). It returns when piv-go
// can open every card, and stops everything when the test ends. It fails
// the test (never skips) when the stack is not installed.
//
// One Env runs per test process at a time; a second Start waits for the
// first Env's test to end, so do not call Start twice in one test.
func Start(t testing.TB, n int, cfgs ...pivemu.Config) *Env {
	t.Helper()
	if n < 1 || len(cfgs) > n {
		t.Fatalf("pcsctest.Start: %d cards with %d configs", n, len(cfgs))
	}
	if err := Check(); err != nil {
		t.Fatalf("pcsctest: %v", err)
	}
	envMu.Lock()
	released := false
	release := func() {
		if !released {
			released = true
			envMu.Unlock()
		}
	}
	e, err := start(n, cfgs)
	if err != nil {
		if e != nil {
			t.Logf("pcscd log:\n%s", e.PCSCDLog())
			e.stop()
		}
		release()
		t.Fatalf("pcsctest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pcscd log (%s):\n%s", e.logPath, tail(e.PCSCDLog(), 4000))
		}
		e.stop()
		release()
	})
	return e
}

type running struct {
	cmd   *exec.Cmd
	locks []*os.File
}

var procs = map[*Env]*running{}

func start(n int, cfgs []pivemu.Config) (*Env, error) {
	sock, err := socketDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pcsctest-")
	if err != nil {
		return nil, fmt.Errorf("making test directory: %w", err)
	}
	e := &Env{Dir: dir, Socket: filepath.Join(sock, "pcscd.comm"), logPath: filepath.Join(dir, "pcscd.log")}
	r := &running{}
	procs[e] = r

	// vpcd gives every reader.conf entry two slots, on PORT and PORT+1.
	entries := (n + 1) / 2
	var conf strings.Builder
	for i := 0; i < entries; i++ {
		port, lock, err := reservePortPair()
		if err != nil {
			return e, err
		}
		r.locks = append(r.locks, lock)
		// vpcd keeps its slots in static variables indexed by slot, not
		// by reader: a second entry with the same LIBPATH takes over the
		// first one's slots. A copy of the driver is a separate instance.
		lib := VPCDDriver
		if i > 0 {
			lib = filepath.Join(dir, fmt.Sprintf("libifdvpcd-%d.so", i))
			if err := copyFile(VPCDDriver, lib); err != nil {
				return e, err
			}
		}
		// Entries with the same FRIENDLYNAME get the same reader names.
		fmt.Fprintf(&conf, "FRIENDLYNAME \"%s %s\"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\nCHANNELID    %d\n\n", ReaderPrefix, entryName(i), port, lib, port)
		for s := 0; s < 2 && len(e.Addrs) < n; s++ {
			e.Addrs = append(e.Addrs, fmt.Sprintf("127.0.0.1:%d", port+s))
		}
	}
	if err := writeStubs(e.stubDir()); err != nil {
		return e, err
	}
	confDir := filepath.Join(dir, "reader.conf.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		return e, fmt.Errorf("making reader.conf.d: %w", err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "vpcd"), []byte(conf.String()), 0o644); err != nil {
		return e, fmt.Errorf("writing reader.conf: %w", err)
	}
	// A stale socket from an earlier Env of this process would make
	// clients talk to nobody until pcscd replaces it.
	os.Remove(e.Socket)
	if err := os.MkdirAll("/run/pcscd", 0o755); err != nil {
		return e, fmt.Errorf("making /run/pcscd mount point: %w", err)
	}
	logf, err := os.Create(e.logPath)
	if err != nil {
		return e, fmt.Errorf("creating pcscd log: %w", err)
	}
	defer logf.Close()
	args := []string{"--foreground", "-c", confDir}
	if os.Getenv("PCSCTEST_DEBUG") != "" {
		args = append(args, "--debug", "--apdu")
	}
	// pcscd ignores PCSCLITE_CSOCK_NAME and always uses /run/pcscd, so it
	// runs in its own mount namespace with our directory mounted there.
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" /run/pcscd && exec pcscd "$@"`, sock}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return e, fmt.Errorf("starting pcscd: %w", err)
	}
	r.cmd = cmd
	// pcscd makes its socket once every reader is loaded; cards that dial
	// vpcd before that may wait in a queue nobody accepts from.
	for deadline := time.Now().Add(insertWait); ; {
		if _, err := os.Stat(e.Socket); err == nil {
			break
		}
		if exited(cmd) || time.Now().After(deadline) {
			return e, fmt.Errorf("pcscd did not start: %s", tail(e.PCSCDLog(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}

	for i := 0; i < n; i++ {
		var cfg pivemu.Config
		if i < len(cfgs) {
			cfg = cfgs[i]
		}
		if cfg.Serial == 0 {
			cfg.Serial = uint32(rand.IntN(80_000_000) + 10_000_000)
		}
		cfg.Addr = e.Addrs[i]
		card, err := pivemu.NewCard(cfg)
		if err != nil {
			return e, fmt.Errorf("making card %d: %w", i, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		e.Cards = append(e.Cards, card)
		e.cancels = append(e.cancels, cancel)
		e.serving = append(e.serving, serve(ctx, card, cfg.Addr))
	}
	if err := e.waitCards(insertWait); err != nil {
		return e, err
	}
	return e, nil
}

// waitCards waits until piv-go opens every card, and learns which reader
// holds which card by its serial.
func (e *Env) waitCards(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	e.Readers = make([]string, len(e.Cards))
	bySerial := map[uint32]int{}
	for i, c := range e.Cards {
		bySerial[c.Serial()] = i
	}
	found := 0
	var lastErr error
	// See Insert: do not piv.Open a card pcscd has not powered yet.
	for _, c := range e.Cards {
		for c.PowerOns() == 0 {
			if exited(procs[e].cmd) {
				return fmt.Errorf("pcscd exited: %s", tail(e.PCSCDLog(), 2000))
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("pcscd did not notice card %d after %v", c.Serial(), timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for {
		if exited(procs[e].cmd) {
			return fmt.Errorf("pcscd exited: %s", tail(e.PCSCDLog(), 2000))
		}
		readers, err := piv.Cards()
		if err != nil {
			lastErr = err
		}
		for _, name := range readers {
			if already(e.Readers, name) {
				continue
			}
			yk, err := piv.Open(name)
			if err != nil {
				lastErr = err
				continue
			}
			serial, err := yk.Serial()
			yk.Close()
			if err != nil {
				lastErr = err
				continue
			}
			if i, ok := bySerial[serial]; ok && e.Readers[i] == "" {
				e.Readers[i] = name
				found++
			}
		}
		if found == len(e.Cards) {
			return nil
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("pcscd shows %d of %d cards after %v (readers %q): %w", found, len(e.Cards), timeout, readers, lastErr)
			}
			return fmt.Errorf("pcscd shows %d of %d cards after %v (readers %q)", found, len(e.Cards), timeout, readers)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func already(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

func exited(cmd *exec.Cmd) bool {
	if cmd == nil || cmd.Process == nil {
		return true
	}
	// Signal 0 fails once the process is gone (it is our child, so it
	// stays a zombie until Wait: check /proc for that).
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return true
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z'
	}
	return false
}

// serving is one run of Card.Serve.
type serving struct {
	done chan struct{} // closed when Serve returns
	err  error
}

func serve(ctx context.Context, card *pivemu.Card, addr string) *serving {
	s := &serving{done: make(chan struct{})}
	go func() {
		s.err = card.Serve(ctx, addr)
		close(s.done)
	}()
	return s
}

// Remove pulls card i out of its reader and waits until pcscd has
// noticed; Insert puts it back.
func (e *Env) Remove(t testing.TB, i int) {
	t.Helper()
	e.cancels[i]()
	<-e.serving[i].done
	if err := waitPresence(e.Readers[i], false, insertWait); err != nil {
		t.Fatalf("pcsctest: %v", err)
	}
}

// WaitRemoved waits until card i has left its reader after a RemoveAfter
// fault, and pcscd has noticed, and returns what its Serve returned
// (pivemu.ErrRemoved). Until pcscd notices (it polls every 0.4 s or so),
// clients can still connect to the reader and only fail on the first
// command; piv.Open then leaks its PC/SC handle (piv-go v2.6.0) and
// blocks the reader for the rest of the process.
func (e *Env) WaitRemoved(t testing.TB, i int) error {
	t.Helper()
	<-e.serving[i].done
	if err := waitPresence(e.Readers[i], false, insertWait); err != nil {
		t.Fatalf("pcsctest: %v", err)
	}
	return e.serving[i].err
}

// waitPresence waits until pcscd reports reader with a card (want) or
// without.
func waitPresence(reader string, want bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := present(reader)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("reader %q: card present %v after %v, want %v: %w", reader, got, timeout, want, err)
			}
			return fmt.Errorf("reader %q: card present %v after %v, want %v", reader, got, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// present asks pcscd whether reader holds a card, with
// SCardGetStatusChange: it connects to no card, so a program under test
// that uses the card meanwhile is never refused. (OpenSC's `opensc-tool
// -l`, used before, connects to every reader to read its features: a
// piv-go open, which is exclusive, failed with a sharing violation
// whenever it fell within one of those connections, about one open in
// thirty while it ran in a loop.)
func present(reader string) (bool, error) {
	var ctx C.SCARDCONTEXT
	if rc := C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx); rc != C.SCARD_S_SUCCESS {
		return false, fmt.Errorf("connecting to pcscd: pc/sc error 0x%08x", uint32(rc))
	}
	defer C.SCardReleaseContext(ctx)
	name := C.CString(reader)
	defer C.free(unsafe.Pointer(name))
	st := []C.SCARD_READERSTATE{{szReader: name, dwCurrentState: C.SCARD_STATE_UNAWARE}}
	if rc := C.SCardGetStatusChange(ctx, 0, &st[0], 1); rc != C.SCARD_S_SUCCESS {
		return false, fmt.Errorf("reader %q: state: pc/sc error 0x%08x", reader, uint32(rc))
	}
	if st[0].dwEventState&C.SCARD_STATE_UNKNOWN != 0 {
		return false, fmt.Errorf("pcscd does not know reader %q", reader)
	}
	// pcscd sets PRESENT once it has powered the card and has its ATR.
	return st[0].dwEventState&C.SCARD_STATE_PRESENT != 0, nil
}

// Insert puts card i back into its reader, with its state, and waits until
// pcscd reports it present, powered, with its ATR: piv-go can open it
// then. It connects to no card itself: a program under test that is
// looking for the card meanwhile (a ceremony waiting for a late YubiKey)
// must never find it held by the test (piv-go connects exclusively).
func (e *Env) Insert(t testing.TB, i int) {
	t.Helper()
	select {
	case <-e.serving[i].done:
	default:
		t.Fatalf("pcsctest: card %d is already inserted", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancels[i] = cancel
	e.serving[i] = serve(ctx, e.Cards[i], e.Addrs[i])
	if err := waitPresence(e.Readers[i], true, insertWait); err != nil {
		t.Fatalf("pcsctest: %v", err)
	}
}

// insertWait bounds Start, Insert and Remove: pcscd polls every 0.4 s or
// so, but on a loaded machine (the whole suite on two cores, several
// pcscds) it can lag far behind. Each wait ends as soon as pcscd is there.
const insertWait = time.Minute

// InsertInto puts card i, taken out before, into the reader card j sits
// in, which must be empty (card j taken out): a laptop with one port,
// through which every card passes in turn. From then on Readers[i] and
// Addrs[i] are card j's.
func (e *Env) InsertInto(t testing.TB, i, j int) {
	t.Helper()
	select {
	case <-e.serving[j].done:
	default:
		if i != j {
			t.Fatalf("pcsctest: card %d is still in the reader card %d is to go into", j, i)
		}
	}
	e.Addrs[i], e.Readers[i] = e.Addrs[j], e.Readers[j]
	e.Insert(t, i)
}

// Environ is os.Environ with PCSCLITE_CSOCK_NAME pointing at this Env's
// pcscd, for exec.Cmd.Env of independent clients (yubico-piv-tool, OpenSC,
// ykman). PATH starts with a directory whose pkill refuses to run: ykman 4
// and 5 run `pkill -9 scdaemon` when a reader is busy, which on a shared
// machine would end other people's processes.
func (e *Env) Environ() []string {
	env := []string{"PCSCLITE_CSOCK_NAME=" + e.Socket, "PATH=" + e.stubDir() + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "PCSCLITE_CSOCK_NAME=") {
			env = append(env, kv)
		}
	}
	return env
}

// PkillStub is the pkill that Environ's PATH finds first: it ends nothing
// and says so on stderr.
const PkillStub = "#!/bin/sh\necho \"pcsctest: pkill $* refused (a test client must end nothing it did not start)\" >&2\nexit 1\n"

func (e *Env) stubDir() string { return filepath.Join(e.Dir, "bin") }

func writeStubs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("making stub directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pkill"), []byte(PkillStub), 0o755); err != nil {
		return fmt.Errorf("writing pkill stub: %w", err)
	}
	return nil
}

// PCSCDLog is what pcscd has logged so far.
func (e *Env) PCSCDLog() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// stop stops the cards and pcscd and removes the test directory.
func (e *Env) stop() {
	for i, cancel := range e.cancels {
		cancel()
		<-e.serving[i].done
	}
	r := procs[e]
	delete(procs, e)
	if r == nil {
		return
	}
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		waited := make(chan struct{})
		go func() { r.cmd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			r.cmd.Process.Kill()
			<-waited
		}
	}
	os.Remove(filepath.Dir(e.Socket)) // empty once pcscd has exited
	for _, l := range r.locks {
		l.Close() // the file stays: removing it would race with other lockers
	}
	os.RemoveAll(e.Dir)
}

// portLockDir holds one lock file per reserved port pair, so that test
// processes running at the same time never pick the same ports. It is
// not under os.TempDir(): make test gives each run a TMPDIR of its own,
// and two runs at once on one machine (two worktrees) share its ports.
const portLockDir = "/tmp/pcsctest-ports"

// reservePortPair finds PORT such that PORT and PORT+1 are free on all
// interfaces (vpcd binds 0.0.0.0) and no other test process holds them.
// The lock is held until the returned file is closed.
func reservePortPair() (int, *os.File, error) {
	if err := os.MkdirAll(portLockDir, 0o755); err != nil {
		return 0, nil, fmt.Errorf("making port lock directory: %w", err)
	}
	for try := 0; try < 200; try++ {
		// Below Linux's ephemeral range (32768-60999), so outgoing
		// connections do not take them meanwhile.
		port := 20000 + 2*rand.IntN(6000)
		f, err := os.OpenFile(filepath.Join(portLockDir, fmt.Sprint(port)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return 0, nil, fmt.Errorf("opening port lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		if free(port) && free(port+1) {
			return port, f, nil
		}
		f.Close()
	}
	return 0, nil, errors.New("no free pair of tcp ports for vpcd")
}

func free(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("reading vpcd driver: %w", err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		return fmt.Errorf("copying vpcd driver: %w", err)
	}
	return nil
}

// entryName names reader.conf entry i: A, B, ..., Z, AA, AB, ...
func entryName(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return entryName(i/26-1) + string(rune('A'+i%26))
}
