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
