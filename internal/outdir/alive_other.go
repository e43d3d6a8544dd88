//go:build !unix

package outdir

// alive cannot tell here: every process is taken to run, so nothing is
// swept.
func alive(int) bool { return true }
