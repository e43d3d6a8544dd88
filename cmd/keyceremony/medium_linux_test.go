//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/keyceremony/keyceremony/stableset/synth"
)

// ext4Medium is a small ext4 file system on a loop device, mounted in
// dir: a removable medium that the test can pull out from under the
// ceremony (shutdown) and put back (remount).
type ext4Medium struct {
	t          *testing.T
	img, mount string
}

func newExt4Medium(t *testing.T, dir string) *ext4Medium {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the removed-medium test mounts an ext4 image on a loop device: run the tests as root, as CI does")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: run scripts/install-test-deps (%v)", tool, err)
		}
	}
	m := &ext4Medium{t: t, img: filepath.Join(dir, "usb.img"), mount: filepath.Join(dir, "usb")}
	if err := os.Mkdir(m.mount, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("truncate", "-s", "32M", m.img).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", m.img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	m.attach()
	t.Cleanup(m.detach)
	return m
}

// attach mounts the image (mount -o loop detaches the loop device at
// umount).
func (m *ext4Medium) attach() {
	m.t.Helper()
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop", m.img, m.mount).CombinedOutput(); err != nil {
		m.t.Fatalf("mount: %v %s", err, out)
	}
}

func (m *ext4Medium) detach() {
	if out, err := exec.Command("umount", m.mount).CombinedOutput(); err != nil && !strings.Contains(string(out), "not mounted") {
		m.t.Errorf("umount %s: %v %s", m.mount, err, out)
	}
}

// pull shuts the file system down as if the medium were pulled out:
// from now on every read and write on it fails with EIO
// (EXT4_IOC_SHUTDOWN, without flushing the journal).
func (m *ext4Medium) pull() {
	m.t.Helper()
	const ext4IOCShutdown = 0x8004587d // _IOR('X', 125, __u32)
	const goingFlagsNoLogFlush = 2
	f, err := os.Open(m.mount)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	flag := uint32(goingFlagsNoLogFlush)
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), ext4IOCShutdown, uintptr(unsafe.Pointer(&flag))); errno != 0 {
		m.t.Fatalf("EXT4_IOC_SHUTDOWN: %v", errno)
	}
}

// TestGuidedStableMediumRemoved runs a guided stable signing in a real
// terminal onto an ext4 medium that is pulled out (shut down) once the
// bins, stable and the start of the journal are on it, at the step that
// writes the rest: the run stops, the screen says the output medium
// could not be written, that nothing has its name and the backup medium
// is unchanged; the backup medium and the published media are byte for
// byte as before, and with the medium put back nothing on it has the
// medium's name.
func TestGuidedStableMediumRemoved(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	p := func(e ...string) string { return filepath.Join(append([]string{dir}, e...)...) }
	boot := softRehearsal(t, dir)
	if err := os.WriteFile(p("pins.txt"), []byte("1001 123456\n1002 123456\n1003 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	devs := []string{"--soft", p("1001"), "--soft", p("1002"), "--soft", p("1003"), "--soft-ca", p("ca"), "--pin-file", p("pins.txt")}
	bootArgs := append(boot, "--out", p("boot"), "--pin-file", p("pins.txt"), "--batch", "--network-ack="+strings.Join(upInterfaces(t), ","))
	if out, err := exec.Command(bin, bootArgs...).CombinedOutput(); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	f, err := os.Create(p("export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(f, synth.Params{Seed: 1, Files: 200, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	usb := newExt4Medium(t, dir)
	media := filepath.Join(usb.mount, "stable-2")
	backupBefore, bootBefore := treeDigest(t, p("backup")), treeDigest(t, p("boot"))

	args := append([]string{bin, "stable", "sign", "--config", p("bootstrap.json"), "--export", p("export.jsonl"), "--published", p("boot"),
		"--root", p("boot", "metadata", "1.root.json"), "--media", media, "--backup", p("backup")}, devs...)
	tm := startTmux(t, dir, strings.Join(args, " ")+"; echo EXIT=$?; sleep 120")
	pulled := false
	tm.onPrompt = func(prompt, s string) {
		// The read-back step (Media): stable and the bins are written,
		// the journal is open on the medium; the rest is written next.
		h := strings.LastIndex(s, "== Step ")
		if pulled || h < 0 || !strings.Contains(strings.SplitN(s[h:], "\n", 2)[0], "· Media") {
			return
		}
		if es, err := os.ReadDir(usb.mount); err != nil || len(es) == 0 {
			t.Fatalf("nothing written to the medium before it is pulled: %v %v", es, err)
		}
		usb.pull()
		pulled = true
	}
	s := guidedAnswers(t, tm, nil, nil)
	if !pulled {
		t.Fatalf("the run ended before the medium was pulled:\n%s", s)
	}
	for _, want := range []string{
		"EXIT=1",
		"the output medium could not be written (full, removed or read-only)",
		"input/output error",
		"nothing was published under the medium's name and the backup medium is unchanged",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}
	if treeDigest(t, p("backup")) != backupBefore {
		t.Error("the backup medium changed")
	}
	if treeDigest(t, p("boot")) != bootBefore {
		t.Error("the published media changed")
	}
	// The medium put back: the partial media are there, never under the
	// medium's name.
	usb.detach()
	usb.attach()
	if _, err := os.Lstat(media); !os.IsNotExist(err) {
		t.Errorf("%s exists after the medium was pulled mid-write (%v)", media, err)
	}
	es, _ := os.ReadDir(usb.mount)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if !strings.Contains(strings.Join(names, " "), ".stable-2.partial-") {
		t.Errorf("on the medium put back: %q, want the partial media written before it was pulled", names)
	}
}
