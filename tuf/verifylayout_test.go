package tuf

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVerifyLayoutRefusals: validly signed repositories whose layout would
// let the online key win are refused, each naming the file and role.
func TestVerifyLayoutRefusals(t *testing.T) {
	roleOf := func(r *testRepo, name string) *DelegatedRole {
		for _, m := range []*Metadata[Targets]{r.targets, r.stable} {
			if d, ok := m.Signed.Delegation(name); ok {
				return d
			}
		}
		r.t.Fatalf("no delegation %s", name)
		return nil
	}
	cases := []struct {
		name     string
		edit     func(r *testRepo, name string)
		post     func(t *testing.T, dir string)
		wantFile string
		wantRole string
		wantErr  error
		wantMsg  string
	}{
		{
			name: "unstable delegated first",
			edit: func(r *testRepo, name string) {
				if name == "targets" {
					roles := r.targets.Signed.Delegations.Roles
					roles[0], roles[1] = roles[1], roles[0]
				}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrLayout, wantMsg: `the first delegation is to "unstable"`,
		},
		{
			name: "no unstable",
			edit: func(r *testRepo, name string) {
				if name == "targets" {
					roleOf(r, "unstable").Name = "online"
				}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrLayout, wantMsg: "no delegation to unstable",
		},
		{
			name: "terminating stable",
			edit: func(r *testRepo, name string) {
				if name == "targets" {
					roleOf(r, "stable").Terminating = true
				}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrLayout, wantMsg: "the delegation to stable is terminating",
		},
		{
			name: "terminating unstable",
			edit: func(r *testRepo, name string) {
				if name == "targets" {
					roleOf(r, "unstable").Terminating = true
				}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrLayout, wantMsg: "the delegation to unstable is terminating",
		},
		{
			name: "stable and unstable delegated different paths",
			edit: func(r *testRepo, name string) {
				if name == "targets" {
					d := roleOf(r, "stable")
					d.Paths = d.Paths[:len(d.Paths)-1]
				}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrLayout, wantMsg: "want the same patterns",
		},
		{
			name: "ledger delegated to unstable",
			edit: func(r *testRepo, name string) {
				if name == "targets" {
					for _, n := range []string{"stable", "unstable"} {
						d := roleOf(r, n)
						d.Paths = append(append([]string{}, d.Paths...), "ledger/*")
					}
				}
			},
			wantFile: "1.targets.json", wantRole: "targets", wantErr: ErrLayout, wantMsg: `unstable is delegated "ledger/*"`,
		},
		{
			name: "terminating bin",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					roleOf(r, "stable-1").Terminating = true
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrLayout, wantMsg: "bin stable-1 is terminating",
		},
		{
			name: "bin delegated by paths",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					d := roleOf(r, "stable-1")
					d.PathHashPrefixes, d.Paths = nil, []string{"packages/*/*/*/*"}
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrLayout, wantMsg: "bin stable-1 must list path_hash_prefixes",
		},
		{
			name: "overlapping prefixes",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					d := roleOf(r, "stable-1")
					d.PathHashPrefixes = append([]string{"7f"}, d.PathHashPrefixes...)
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrLayout, wantMsg: "bins stable-0 and stable-1 overlap",
		},
		{
			name: "missing prefixes",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					d := roleOf(r, "stable-1")
					d.PathHashPrefixes = []string{"8", "9", "a", "b", "c", "d", "e", "f0", "f1"}
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrLayout, wantMsg: "missing hashes from f200000000000000",
		},
		{
			name: "second-level bin outside its parent's prefixes",
			edit: func(r *testRepo, name string) {
				if name == "stable-0" {
					k := r.keys["X"].Key()
					r.bin0.Signed.AddDelegation(DelegatedRole{Name: "stable-0.0", KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: []string{"0", "1", "2", "3"}}, k)
					r.bin0.Signed.AddDelegation(DelegatedRole{Name: "stable-0.1", KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: []string{"4", "5", "6", "7", "8"}}, k)
				}
			},
			wantFile: "3.stable-0.json", wantRole: "stable-0", wantErr: ErrLayout, wantMsg: "bin stable-0.1: a prefix of [4 5 6 7 8] is outside stable-0's prefixes",
		},
		{
			name: "second-level bins missing part of their parent's prefixes",
			edit: func(r *testRepo, name string) {
				if name == "stable-0" {
					k := r.keys["X"].Key()
					r.bin0.Signed.AddDelegation(DelegatedRole{Name: "stable-0.0", KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: []string{"0", "1", "2", "3"}}, k)
					r.bin0.Signed.AddDelegation(DelegatedRole{Name: "stable-0.1", KeyIDs: []string{k.ID()}, Threshold: 1, PathHashPrefixes: []string{"4", "5", "7"}}, k)
				}
			},
			wantFile: "3.stable-0.json", wantRole: "stable-0", wantErr: ErrLayout, wantMsg: "missing hashes from 6000000000000000",
		},
		{
			name: "key shared by two bins",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					k := r.keys["B1"].Key()
					delete(r.stable.Signed.Delegations.Keys, r.keys["B2"].Key().ID())
					roleOf(r, "stable-1").KeyIDs = []string{k.ID()}
					r.signers["stable-1"] = []tsigner{signerOf(r.t, r.keys["B1"])}
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrSharedKey, wantMsg: "is delegated to stable-0 and to stable-1",
		},
		{
			name: "bin key shared with unstable",
			edit: func(r *testRepo, name string) {
				if name == "stable" {
					k := r.keys["U1"].Key()
					r.stable.Signed.Delegations.Keys[k.ID()] = k
					roleOf(r, "stable-0").KeyIDs = []string{k.ID()}
					r.signers["stable-0"] = []tsigner{signerOf(r.t, r.keys["U1"])}
					roleOf(r, "stable-1").KeyIDs = []string{r.keys["X"].Key().ID()}
					r.stable.Signed.Delegations.Keys[r.keys["X"].Key().ID()] = r.keys["X"].Key()
					r.signers["stable-1"] = []tsigner{signerOf(r.t, r.keys["X"])}
				}
			},
			wantFile: "3.stable.json", wantRole: "stable", wantErr: ErrSharedKey, wantMsg: "is delegated to unstable and to stable-0",
		},
		{
			name: "oversized timestamp.json (64 MiB, sparse)",
			post: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, "timestamp.json"), 64<<20); err != nil {
					t.Fatal(err)
				}
			},
			wantFile: "timestamp.json", wantRole: "timestamp", wantErr: ErrTooLarge, wantMsg: "more than 16384 bytes (the client limit for timestamp)",
		},
		{
			name: "oversized root rotation",
			post: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, "2.root.json"), 512_001); err != nil {
					t.Fatal(err)
				}
			},
			wantFile: "2.root.json", wantRole: "root", wantErr: ErrTooLarge, wantMsg: "more than 512000 bytes (the client limit for root)",
		},
		{
			name: "oversized snapshot the timestamp gives no length for",
			edit: func(r *testRepo, name string) {
				if name == "timestamp" {
					r.timestamp.Signed.Meta["snapshot.json"] = MetaFile{Version: 7}
				}
			},
			post: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, "7.snapshot.json"), 2_000_001); err != nil {
					t.Fatal(err)
				}
			},
			wantFile: "7.snapshot.json", wantRole: "snapshot", wantErr: ErrTooLarge, wantMsg: "more than 2000000 bytes (the client limit for snapshot)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRepo(t)
			r.edit = tc.edit
			dir := r.build()
			if tc.post != nil {
				tc.post(t, dir)
			}
			trusted := r.trusted(dir)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := VerifyRepository(trusted, dir, VerifyOptions{At: verifyAt})
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("verified")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %q", err, tc.wantErr)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.File != tc.wantFile || ve.Role != tc.wantRole {
				t.Errorf("error %q does not name file %s role %s", err, tc.wantFile, tc.wantRole)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			// An oversized file is refused without being read whole.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Errorf("verification allocated %d bytes", alloc)
			}
		})
	}
}

// TestVerifyKeyPerRole: with a key per delegated role the repository
// verifies (a shared key is refused: TestVerifyLayoutRefusals), and the
// refusal needs no option.
func TestVerifyKeyPerRole(t *testing.T) {
	r := newTestRepo(t)
	dir := r.build()
	if _, err := VerifyRepository(r.trusted(dir), dir, VerifyOptions{At: verifyAt}); err != nil {
		t.Fatalf("a key per role: %v", err)
	}
}
