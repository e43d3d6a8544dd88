package ceremony

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/tuf"
)

// delegationPolicy is policy.json delegating project to the developers'
// keys, two of two, each key's proof signed by prover(i) for repository
// and stable version.
func delegationPolicy(t *testing.T, project, repository string, version int64, devs []keys.Signer, prover func(int) keys.Signer) []byte {
	t.Helper()
	type keyJSON struct {
		Key   *keys.Key       `json:"key"`
		Proof json.RawMessage `json:"proof"`
	}
	var ks []keyJSON
	for i, s := range devs {
		p := s
		if prover != nil {
			p = prover(i)
		}
		proof, err := delegation.SignProof(p, delegation.Proof{Repository: repository, Project: project, StableVersion: version, KeyID: p.Key().ID()})
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, keyJSON{s.Key(), proof})
	}
	b, err := json.MarshalIndent(map[string]any{"delegations": []any{map[string]any{"project": project, "threshold": len(devs), "keys": ks}}}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestDelegationWithTufJS: a stable signing by the real pipeline, on the
// demo's export, with a policy delegating foobar to its developers (their
// proofs for this ceremony, a delegate decision). The medium reads back
// and verify accepts it, with and without the export; the published
// repository, after the developers sign and publish their role, resolves
// in tuf-js: foobar's files and page through the developers' role, a
// foobar file the online role lists and the developers did not sign to
// nothing (the delegation terminates), another project's file through
// stable's bins. A delegation whose proof another key made, or proves
// another ceremony, is refused before any PIN is asked.
func TestDelegationWithTufJS(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC().Truncate(time.Second)
	dir := t.TempDir()
	b := f.bootstrap()
	bk := withBackup(t, b)
	boot, err := b.Run(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	exportFile := filepath.Join(dir, "export.jsonl")
	recs, content, err := writeDemoExport(exportFile, now)
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]export.Record{}
	for _, r := range recs {
		byFile[r.Filename] = r
	}
	var devs []keys.Signer
	for _, gen := range []func() (keys.Signer, error){keys.GenerateEd25519, func() (keys.Signer, error) { return keys.GenerateECDSA() }} {
		s, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, s)
	}
	const repository = "demo" // the demo export's
	ds, err := decisions.Parse([]byte(`{"project": "foobar", "decision": "delegate", "reason": "foobar's maintainers sign their releases (ticket 7001)"}`+"\n"), "decisions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	signing := func(pol []byte) *StableSigning {
		t.Helper()
		p, err := policy.Parse(pol, "policy.json")
		if err != nil {
			t.Fatal(err)
		}
		return &StableSigning{Root: boot.Root, Published: filepath.Join(dir, "boot"), Export: exportFile, Devices: f.devices, PIN: f.pins, Now: now, Backup: bk, Policy: p, Decisions: ds}
	}

	// As the attacker would: a key nobody holds, its proof made by
	// another key; the proofs of another ceremony.
	other, err := keys.GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pol  []byte
		msg  string
	}{
		{"a proof by another key", delegationPolicy(t, "foobar", repository, 2, devs, func(i int) keys.Signer {
			if i == 0 {
				return other
			}
			return devs[i]
		}), "not by the key delegated to"},
		{"the proofs of another ceremony", delegationPolicy(t, "foobar", repository, 3, devs, nil), "stable v3"},
	} {
		if d, err := signing(c.pol).Diff(); !errors.Is(err, delegation.ErrProof) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want ErrProof saying %q", c.name, err, c.msg)
			if d != nil {
				d.Close()
			}
		}
	}

	pol := delegationPolicy(t, "foobar", repository, 2, devs, nil)

	// A colliding pattern: in an export where project foobar-2 has
	// foobar-2-1.0.tar.gz, foobar's patterns would capture it; refused,
	// naming the file. Then the insider: the stable keyholders sign, from
	// a doctored export listing that file as foobar's, the delegation
	// whose patterns capture it, and a signed diff naming the real export;
	// verify --export recomputes from the real one and refuses, naming
	// the file.
	clash := byFile["foobar-1.0.tar.gz"]
	clash.Filename, clash.Project = "foobar-2-1.0.tar.gz", "foobar-2"
	clash.BLAKE2b256 = sha256.Sum256([]byte("foobar-2's sdist"))
	clash.Path = export.TargetPath(clash.BLAKE2b256, clash.Filename)
	realExport := writeExportWith(t, filepath.Join(dir, "real.jsonl"), now, recs, clash)
	doctored := clash
	doctored.Project = "foobar"
	doctoredExport := writeExportWith(t, filepath.Join(dir, "doctored.jsonl"), now, recs, doctored)
	insiderBackup := filepath.Join(dir, "backup-insider")
	if err := copyDir(bk, insiderBackup); err != nil {
		t.Fatal(err)
	}
	s := signing(pol)
	s.Export = realExport
	if d, err := s.Diff(); !errors.Is(err, delegation.ErrCollision) || !strings.Contains(err.Error(), "matches "+clash.Path+", a file of project foobar-2") {
		t.Errorf("a colliding pattern: %v", err)
		if d != nil {
			d.Close()
		}
	}
	s.Export, s.Backup = doctoredExport, insiderBackup
	d, err := s.Diff()
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(dir, "forged")
	fres, err := s.Sign(d.Digest, forged)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	fres.Diff.Close()
	fx := &auditFixture{targets: boot.Targets, devices: f.devices}
	realSum, err := exportTrailerSum(realExport)
	if err != nil {
		t.Fatal(err)
	}
	fx.resign(t, forged, func(st *signeddiff.Statement) { st.Export.SHA256 = realSum })
	rootFile := filepath.Join(dir, "boot", "metadata", "1.root.json")
	_, err = Audit(AuditOptions{Root: rootFile, Dir: forged, Repository: filepath.Join(dir, "boot"), Previous: filepath.Join(dir, "boot"), Export: realExport})
	if !errors.Is(err, delegation.ErrCollision) || !strings.Contains(err.Error(), clash.Path) {
		t.Errorf("verify --export of the insider's medium: %v, want the collision naming %s", err, clash.Path)
	}

	ss := signing(pol)
	d, err = ss.Diff()
	if err != nil {
		t.Fatal(err)
	}
	digest := d.Digest
	d.Close()
	media := filepath.Join(dir, "media")
	// The read-back and verify walk the new ledger for the delegations
	// once each (the step that reports them takes the check the media's
	// read made).
	var walks []string
	ledgerWalkHook = func(name string) { walks = append(walks, name) }
	defer func() { ledgerWalkHook = nil }()
	sres, err := ss.Sign(digest, media)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Diff.Close()
	if len(walks) != 1 || walks[0] != "ledger/2.ledger" {
		t.Errorf("the read-back walked the ledgers %q for the delegations, want ledger/2.ledger once", walks)
	}
	walks = nil
	if n := len(sres.Diff.Delegations); n != 1 || sres.Diff.Delegations[0].Files != 5 {
		t.Fatalf("delegations %+v", sres.Diff.Delegations)
	}

	// verify: the proofs and the delegation, without and with the export.
	rep, err := Audit(AuditOptions{Root: rootFile, Dir: media, Repository: filepath.Join(dir, "boot")})
	if err != nil {
		t.Fatal(err)
	}
	if c := findCheck(rep, "developer delegations"); c == nil || !strings.Contains(c.Detail, "1 projects delegated") || !strings.Contains(c.Detail, "held against the") || !strings.Contains(c.Detail, "not checked without --export") {
		t.Errorf("verify without the export: %+v", c)
	}
	if len(walks) != 1 {
		t.Errorf("verify walked the ledgers %q for the delegations, want once", walks)
	}
	rep, err = Audit(AuditOptions{Root: rootFile, Dir: media, Repository: filepath.Join(dir, "boot"), Previous: filepath.Join(dir, "boot"), Export: exportFile})
	if err != nil {
		t.Fatal(err)
	}
	if c := findCheck(rep, "signed diff recomputed"); c == nil || !strings.Contains(c.Detail, "1 developer delegations") {
		t.Errorf("verify with the export: %+v", c)
	}

	// As the insider holding the stable keys: stable re-signed to
	// delegate foobar more than the pipeline derived. A wildcard is
	// refused from the medium alone; another project's file by its exact
	// path is refused against the ledger's files (without --export), and
	// against the pass recomputed from the export.
	other3 := byFile["sampleproject-3.0.0.tar.gz"].Path
	for _, c := range []struct {
		name, extra, msg string
		err              error
	}{
		{"a wildcard beyond the derived patterns", "packages/*/*/*/*", "beyond the derived patterns only exact paths of distribution files are delegated", ErrDelegationMismatch},
		{"another project's file by its exact path", other3, "delegates project-foobar the path " + other3 + ", a file of project sampleproject", delegation.ErrCollision},
	} {
		tampered := filepath.Join(t.TempDir(), "media")
		if err := copyDir(media, tampered); err != nil {
			t.Fatal(err)
		}
		fx.resignTargets(t, filepath.Join(tampered, "stable", "metadata", "2.stable.json"), "stable", func(tg *tuf.Targets) {
			r := &tg.Delegations.Roles[0]
			if r.Name != tuf.DeveloperRole("foobar") {
				t.Fatalf("stable's first delegation is %s", r.Name)
			}
			r.Paths = append(r.Paths, c.extra)
		}, nil)
		for _, o := range []AuditOptions{
			{Root: rootFile, Dir: tampered, Repository: filepath.Join(dir, "boot")},
			{Root: rootFile, Dir: tampered, Repository: filepath.Join(dir, "boot"), Previous: filepath.Join(dir, "boot"), Export: exportFile},
		} {
			if _, err := Audit(o); !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s (export %q): %v, want %v saying %q", c.name, o.Export, err, c.err, c.msg)
			}
		}
	}

	// The repository publishes the medium, the online role listing every
	// foobar file (and its own bytes for the young one).
	pristine := filepath.Join(dir, "repo")
	out, err := outdir.New(pristine)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	young := byFile["foobar-2.0.1.tar.gz"]
	online := []byte("the online role's foobar-2.0.1.tar.gz\n")
	unstable, err := f.repo.signUnstable(1, map[string]tuf.TargetFile{young.Path: {Length: int64(len(online)), Hashes: map[string]string{"sha256": sha256Hex(online)}}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(boot.Targets, unstable, filepath.Join(media, "stable"), sres.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.publish(out, "metadata", boot.Root, files); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	// The developers sign their role: foobar's two old files and its
	// page, not 2.0.1; the repository serves it.
	devRole := tuf.NewTargets(1, now.Add(30*24*time.Hour))
	page := []byte("<!DOCTYPE html><title>foobar, as its developers publish it</title>\n")
	signed := map[string][]byte{"simple/foobar/index.html": page}
	for _, fn := range []string{"foobar-1.0.tar.gz", "foobar-2.0.tar.gz"} {
		signed[byFile[fn].Path] = content[byFile[fn].Path]
	}
	a := &tufjs.Attacker{Dir: pristine, Snapshot: f.repo.snapshot, Timestamp: f.repo.timestamp, Unstable: f.repo.unstable}
	for p, b := range signed {
		devRole.Signed.Targets[p] = tuf.TargetFile{Length: int64(len(b)), Hashes: map[string]string{"sha256": sha256Hex(b)}}
		if err := a.ServeTarget(p, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ServeTarget(young.Path, online); err != nil {
		t.Fatal(err)
	}
	if err := devRole.Sign(devs...); err != nil {
		t.Fatal(err)
	}
	rb, err := devRole.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddRole(tuf.DeveloperRole("foobar"), 1, rb); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(); err != nil {
		t.Fatal(err)
	}
	pub := readPublished(t, filepath.Join(pristine, "metadata"))
	ask := []string{byFile["foobar-1.0.tar.gz"].Path, byFile["foobar-2.0.tar.gz"].Path, "simple/foobar/index.html", young.Path, other3}
	run, err := tufjs.ResolveWith(pristine, filepath.Join(pristine, "metadata", "1.root.json"), ask, tufjs.Options{BLAKE2b256: true})
	if err != nil {
		t.Fatal(err)
	}
	if !run.RefreshOK {
		t.Fatalf("refresh: %s", run.RefreshError)
	}
	for _, p := range ask[:3] {
		r, _ := run.ByPath(p)
		if !r.Found || !r.Downloaded || r.Hashes["sha256"] != sha256Hex(signed[p]) {
			t.Errorf("%s: %+v, want the developers' entry, downloaded", p, r)
		}
	}
	if r, _ := run.ByPath(young.Path); r.Found {
		t.Errorf("%s, which only the online role lists: %+v, want nothing (the developers' role terminates)", young.Path, r)
	}
	if r, _ := run.ByPath(other3); !sameEntry(r, pub.stable[other3]) {
		t.Errorf("%s: %+v, want stable's entry %+v", other3, r, pub.stable[other3])
	}
	if !slices.Contains(pub.mids, tuf.DeveloperRole("foobar")) {
		t.Errorf("stable's delegations %q do not include the developers' role", pub.mids)
	}
}

// writeExportWith writes the demo's records and extra as an export.
func writeExportWith(t *testing.T, file string, gen time.Time, recs []export.Record, extra ...export.Record) string {
	t.Helper()
	all := append(slices.Clone(recs), extra...)
	slices.SortFunc(all, func(a, b export.Record) int { return strings.Compare(a.Path, b.Path) })
	fh, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	w, err := export.NewWriter(fh, export.Header{Format: export.FormatName, Version: export.FormatVersion, Repository: "demo", Generated: gen})
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if err := w.Write(&all[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}
