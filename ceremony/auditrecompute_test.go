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
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
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

// auditRepository publishes, under a new directory, the repository the
// second signing started from, as a client fetches it: the bootstrap's
// root and targets, the first signing's stable files, unstable, snapshot
// and timestamp signed by the repository's online keys, and the ledger as
// the target ledger/2.ledger under its consistent-snapshot name.
func auditRepository(t *testing.T, fx *auditFixture) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	drillRepo(t, dir, fx.repo, []*tuf.Metadata[tuf.Root]{fx.root}, fx.targets, fx.media1, &StableResult{Meta: fx.meta1}, map[string]tuf.TargetFile{})
	b := mustRead(t, filepath.Join(fx.media1, "stable", "ledger", "2.ledger"))
	if err := os.MkdirAll(filepath.Join(dir, "targets", "ledger"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "targets", "ledger", sha256Hex(b)+".2.ledger"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAuditRecomputeFromRepository: the recompute reads the previous
// ledger from a repository given as --previous (a target under targets/),
// and the report says the diff was recomputed. The repository's metadata
// directory alone, or a repository without the ledger, is an audit that
// could not be carried out.
func TestAuditRecomputeFromRepository(t *testing.T) {
	fx := auditMedia(t)
	repo := auditRepository(t, fx)
	rep, err := Audit(AuditOptions{Root: fx.rootFile, Dir: fx.media2, Previous: repo, Export: fx.export2})
	if err != nil {
		t.Fatal(err)
	}
	if c := findCheck(rep, "signed diff recomputed"); c == nil || !strings.Contains(c.Detail, "the same canonical diff") || !rep.SignedDiff.Recomputed {
		t.Fatalf("not recomputed: %+v", rep.Checks)
	}
	if c := findCheck(rep, "versions against the previous medium"); c == nil || !strings.Contains(c.Detail, "starts from the previous medium's stable version 2") {
		t.Fatalf("no comparison with the repository: %+v", rep.Checks)
	}
	// Without --export the report says it was not recomputed.
	rep, err = Audit(AuditOptions{Root: fx.rootFile, Dir: fx.media2, Previous: repo})
	if err != nil || rep.SignedDiff.Recomputed {
		t.Fatalf("%v, recomputed %v", err, rep.SignedDiff.Recomputed)
	}
	_, err = Audit(AuditOptions{Root: fx.rootFile, Dir: fx.media2, Previous: filepath.Join(repo, "metadata"), Export: fx.export2})
	if !errors.Is(err, ErrBareMetadata) || !errors.Is(err, ErrUnreadable) {
		t.Fatalf("the bare metadata directory: got %v, want ErrBareMetadata", err)
	}
	ledgers, _ := filepath.Glob(filepath.Join(repo, "targets", "ledger", "*"))
	if err := os.Remove(ledgers[0]); err != nil {
		t.Fatal(err)
	}
	_, err = Audit(AuditOptions{Root: fx.rootFile, Dir: fx.media2, Previous: repo, Export: fx.export2})
	if !errors.Is(err, ErrUnreadable) || errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), "lists ledger/2.ledger, published neither") {
		t.Fatalf("the repository without its ledger: got %v, want could not verify", err)
	}
}

// TestAuditRecomputeTakedowns: an insider holding the stable keys takes a
// stable file down without a decision (stable delegates it to an empty
// takedown role, signed; the medium's files and sums rewritten): every
// signature verifies, and the recompute, whose takedowns are the previous
// stable's plus the decisions', refuses it naming the path.
func TestAuditRecomputeTakedowns(t *testing.T) {
	fx := auditMedia(t)
	dir := filepath.Join(t.TempDir(), "media2")
	if err := copyDir(fx.media2, dir); err != nil {
		t.Fatal(err)
	}
	var victim string
	for p := range stableEntries(t, dir, 3) {
		if strings.HasPrefix(p, "packages/") && (victim == "" || p < victim) {
			victim = p
		}
	}
	k, err := keys.GenerateECDSA()
	if err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "stable", "metadata")
	var expires time.Time
	fx.resignTargets(t, filepath.Join(md, "3.stable.json"), "stable", func(tg *tuf.Targets) {
		expires = tg.Expires.Time()
		tg.Delegations.Keys[k.Key().ID()] = k.Key()
		tg.Delegations.Roles = append([]tuf.DelegatedRole{tuf.TakedownDelegation([]string{victim}, k.Key())}, tg.Delegations.Roles...)
	}, nil)
	td := tuf.NewTargets(3, expires)
	if err := td.Sign(k); err != nil {
		t.Fatal(err)
	}
	b, err := td.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	writeStableMeta(t, dir, tuf.TakedownRole, b)
	rewriteSums(t, dir)
	// Without the recompute, the insider's medium gets as far as the
	// transcript, which counts no takedown.
	if _, err := Audit(AuditOptions{Root: fx.rootFile, Dir: dir, Repository: fx.boot}); err == nil || !strings.Contains(err.Error(), "taken_down") {
		t.Fatalf("without --export: %v", err)
	}
	rep, err := Audit(AuditOptions{Root: fx.rootFile, Dir: dir, Previous: fx.media1, Repository: fx.boot, Export: fx.export2})
	if !errors.Is(err, ErrRecompute) || !errors.Is(err, ErrInvalidMedium) {
		t.Fatalf("got %v, want ErrRecompute", err)
	}
	if last := rep.Checks[len(rep.Checks)-1]; last.Check != "signed diff recomputed" || !strings.Contains(last.Detail, "delegates "+victim+" to takedown, which the diff recomputed") {
		t.Fatalf("the refusal %q (%s) does not name %s", last.Detail, last.Check, victim)
	}
}

// TestAuditRecomputeInsiderSecondCeremony: at a second ceremony (a
// previous ledger, so backdating is caught by the pipeline), the stable
// keyholders doctor the export to drop a stable file, which then falls
// through to the online role; they sign the diff again naming the real
// export, record the real export in the transcript's inputs, chain and
// sign the journal again and rewrite SHA256SUMS. Everything verifies but
// the recompute from the real export, which names the file.
func TestAuditRecomputeInsiderSecondCeremony(t *testing.T) {
	fx := auditMedia(t)
	dir := t.TempDir()
	doctored := filepath.Join(dir, "export.jsonl")
	victim := dropStable(t, fx.export2, doctored, stableEntries(t, fx.media1, 2))
	backup := filepath.Join(dir, "backup")
	if err := copyDir(fx.backup1, backup); err != nil {
		t.Fatal(err)
	}
	ds, err := decisions.Load(fx.media2 + ".decisions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	pins := func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }
	s := &StableSigning{Root: fx.root, Published: fx.published1, Export: doctored, Devices: fx.devices, PIN: pins, Now: time.Now().UTC().Truncate(time.Second), Backup: backup, Decisions: ds}
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
	real, err := exportTrailerSum(fx.export2)
	if err != nil {
		t.Fatal(err)
	}
	realFile, err := fileSHA256(fx.export2)
	if err != nil {
		t.Fatal(err)
	}
	count := signedStatement(t, fx, fx.media2).Export.Count
	fx.resign(t, out, func(st *signeddiff.Statement) { st.Export.SHA256, st.Export.Count = real, count })
	rewriteTranscript(t, filepath.Join(out, JournalFile), func(e *TranscriptEntry) {
		if e.Step == "stable inputs" {
			e.Detail["export_sha256"], e.Detail["export_trailer_sha256"] = hex.EncodeToString(realFile[:]), hex.EncodeToString(real[:])
		}
	})
	fx.resignJournal(t, out, CeremonyStable, 0)
	rewriteSums(t, out)
	// Without the export the forgery verifies: only the recompute sees it.
	if _, err := Audit(AuditOptions{Root: fx.rootFile, Dir: out, Repository: fx.boot, Previous: fx.media1}); err != nil {
		t.Fatalf("the insider's medium without --export: %v", err)
	}
	rep, err := Audit(AuditOptions{Root: fx.rootFile, Dir: out, Repository: fx.boot, Previous: fx.media1, Export: fx.export2})
	if !errors.Is(err, ErrRecompute) {
		t.Fatalf("got %v, want ErrRecompute", err)
	}
	if last := rep.Checks[len(rep.Checks)-1]; last.Check != "signed diff recomputed" || !strings.Contains(last.Detail, victim) || !strings.Contains(last.Detail, "diff.canonical:") {
		t.Fatalf("the refusal %q (%s) does not name diff.canonical's line for %s", last.Detail, last.Check, victim)
	}
}

// dropStable copies the export src to dst without the first file (by
// path) of stable, and returns its path.
func dropStable(t *testing.T, src, dst string, stable map[string]tuf.TargetFile) string {
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
	var victim string
	for p := range stable {
		if strings.HasPrefix(p, "packages/") && (victim == "" || p < victim) {
			victim = p
		}
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w, err := export.NewWriter(bw, x.Header())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for {
		r, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Path == victim {
			found = true
			continue
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
	if !found {
		t.Fatalf("%s is not in %s", victim, src)
	}
	return victim
}
