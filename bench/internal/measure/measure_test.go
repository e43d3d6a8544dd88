package measure

import (
	"errors"
	"strings"
	"testing"
)

// TestParseVmHWM reads the peak RSS line of /proc/PID/status in bytes.
func TestParseVmHWM(t *testing.T) {
	status := "Name:\tkeyceremony\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n"
	if got := ParseVmHWM([]byte(status)); got != 123456<<10 {
		t.Errorf("ParseVmHWM = %d", got)
	}
	if got := ParseVmHWM([]byte("Name:\tx\n")); got != 0 {
		t.Errorf("ParseVmHWM without the line = %d", got)
	}
}

// TestCheckSpace refuses a run that needs more than the disk has, naming
// both figures, and accepts one that fits.
func TestCheckSpace(t *testing.T) {
	dir := t.TempDir()
	if err := CheckSpace(dir, 1); err != nil {
		t.Errorf("1 byte: %v", err)
	}
	err := CheckSpace(dir, 1<<62)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "GB free, the benchmark needs about 4611686018.4 GB") {
		t.Errorf("an exabyte: %v", err)
	}
}

// FuzzParseVmHWM: whatever the status file holds, the peak is a whole
// number of KiB, never negative.
func FuzzParseVmHWM(f *testing.F) {
	for _, s := range []string{"VmHWM:\t  123456 kB\n", "VmHWM: -5 kB\n", "VmHWM: 9223372036854775807 kB\n", "VmHWM: 12\n", "VmHWM:\n", "Name:\tx\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, status []byte) {
		if v := ParseVmHWM(status); v < 0 || v%1024 != 0 {
			t.Fatalf("ParseVmHWM(%q) = %d", status, v)
		}
	})
}
