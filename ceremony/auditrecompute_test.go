package ceremony

import (
	"bufio"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
)

// TestAuditRecomputeHonest: each honest stable medium's signed diff is
// what the pass recomputed from its export, the previous medium's
// ledger, its policy and its decisions gives.
func TestAuditRecomputeHonest(t *testing.T) {
	fx := auditMedia(t)
	for _, o := range []AuditOptions{
		{Dir: fx.media1, Previous: fx.boot, Export: fx.export1},
		{Dir: fx.media2, Repository: fx.boot, Previous: fx.media1, Export: fx.export2},
	} {
		o.Root = fx.rootFile
		rep, err := Audit(o)
		if err != nil {
			t.Fatalf("%s: %v", o.Dir, err)
		}
		if c := findCheck(rep, "signed diff recomputed"); c == nil || !strings.Contains(c.Detail, "the same canonical diff") {
			t.Fatalf("%s: no recompute check in %+v", o.Dir, rep.Checks)
		}
	}
}

// TestAuditRecomputeWrongExport: the second medium checked with the first
// ceremony's export is refused before any pass, naming both digests.
func TestAuditRecomputeWrongExport(t *testing.T) {
	fx := auditMedia(t)
	_, err := Audit(AuditOptions{Root: fx.rootFile, Dir: fx.media2, Repository: fx.boot, Previous: fx.media1, Export: fx.export1})
	if !errors.Is(err, ErrRecompute) || !errors.Is(err, ErrInvalidMedium) {
		t.Fatalf("got %v, want ErrRecompute", err)
	}
	got, _ := exportTrailerSum(fx.export1)
	st := signedStatement(t, fx, fx.media2)
	for _, want := range []string{hex.EncodeToString(got[:]), hex.EncodeToString(st.Export.SHA256[:])} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%v does not name %s", err, want)
		}
	}
	// Without --previous there is no ledger to recompute from.
	_, err = Audit(AuditOptions{Root: fx.rootFile, Dir: fx.media2, Repository: fx.boot, Export: fx.export2})
	if !errors.Is(err, ErrNeedPreviousExport) || !errors.Is(err, ErrUnreadable) {
		t.Fatalf("got %v, want ErrNeedPreviousExport", err)
	}
}

// TestAuditRecomputeInsider: the stable keyholders run a first ceremony
// on an export in which they made a young file old, so that it is signed
// as stable, then sign a signed diff naming the repository's real export.
// Every file of their medium is the tool's output and signed by them; the
// recompute from the real export refuses it, naming the path.
func TestAuditRecomputeInsider(t *testing.T) {
	fx := auditMedia(t)
	dir := t.TempDir()
	doctored := filepath.Join(dir, "export.jsonl")
	young := backdateYoung(t, fx.export1, doctored)
	pins := func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }
	backup := filepath.Join(dir, "backup")
	if err := copyDir(fx.backupBoot, backup); err != nil {
		t.Fatal(err)
	}
	s := &StableSigning{Root: fx.root, Published: fx.boot, Export: doctored, Devices: fx.devices, PIN: pins, Now: time.Now().UTC().Truncate(time.Second), Backup: backup}
	d, err := s.Diff()
	if err != nil {
		t.Fatal(err)
	}
	approve := d.Digest
	d.Close()
	out := filepath.Join(dir, "forged")
	r, err := s.Sign(approve, out)
	if err != nil {
		t.Fatal(err)
	}
	r.Diff.Close()
	real, err := exportTrailerSum(fx.export1)
	if err != nil {
		t.Fatal(err)
	}
	fx.resign(t, out, func(st *signeddiff.Statement) { st.Export.SHA256 = real })
	rep, err := Audit(AuditOptions{Root: fx.rootFile, Dir: out, Previous: fx.boot, Export: fx.export1})
	if !errors.Is(err, ErrRecompute) {
		t.Fatalf("got %v, want ErrRecompute", err)
	}
	if last := rep.Checks[len(rep.Checks)-1]; last.Check != "signed diff recomputed" || !strings.Contains(last.Detail, young) {
		t.Fatalf("the refusal %q (%s) does not name %s", last.Detail, last.Check, young)
	}
}

// backdateYoung copies the export src to dst with the first file younger
// than 89 days at its generation time given an upload time 120 days
// before it, and returns that file's path.
func backdateYoung(t *testing.T, src, dst string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	x, err := export.NewReader(bufio.NewReader(in), src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	h := x.Header()
	w, err := export.NewWriter(bw, h)
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for {
		r, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if path == "" && r.UploadTime.After(h.Generated.Add(-89*24*time.Hour)) {
			path, r.UploadTime = r.Path, h.Generated.Add(-120*24*time.Hour)
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if path == "" {
		t.Fatal("the export holds no young file")
	}
	return path
}

func signedStatement(t *testing.T, fx *auditFixture, dir string) *signeddiff.Statement {
	t.Helper()
	file := filepath.Join(dir, "signed-diff.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signeddiff.Load(b, file)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := fx.targets.Signed.Delegation("stable")
	st, err := signeddiff.Verify(env, fx.targets.Signed.Delegations.Keys, d.KeyIDs, d.Threshold)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func findCheck(rep *AuditReport, name string) *AuditCheck {
	for i := range rep.Checks {
		if rep.Checks[i].Check == name {
			return &rep.Checks[i]
		}
	}
	return nil
}
