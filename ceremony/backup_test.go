package ceremony

import "testing"

// withBackup gives b a new backup medium and returns its directory.
func withBackup(t *testing.T, b *Bootstrap) string {
	t.Helper()
	b.Backup = t.TempDir()
	return b.Backup
}
