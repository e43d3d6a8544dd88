//go:build unix

package outdir

import (
	"errors"
	"syscall"
)

// alive tells whether process pid may still run: only "no such process"
// says it does not.
func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
