package ceremony

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/internal/tufjs"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/ledger"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// drillRepo publishes a repository as a client fetches it: the root chain
// roots, targets, unstable (signed by repo's online key, listing
// unstableFiles), the stable files the signing res wrote on media, and
// snapshot and timestamp signed by repo's online keys.
func drillRepo(t *testing.T, dir string, repo *simRepo, roots []*tuf.Metadata[tuf.Root], targets *tuf.Metadata[tuf.Targets], media string, res *StableResult, unstableFiles map[string]tuf.TargetFile) {
	t.Helper()
	unstable, err := repo.signUnstable(1, unstableFiles)
	if err != nil {
		t.Fatal(err)
	}
	files, err := repoFiles(targets, unstable, filepath.Join(media, "stable"), res.Meta)
	if err != nil {
		t.Fatal(err)
	}
	out, err := outdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	for _, r := range roots[:len(roots)-1] {
		b, _ := r.MarshalFile()
		if err := out.WriteFile(filepath.Join("metadata", filepath.Base(rootFileName(r))), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.publish(out, "metadata", roots[len(roots)-1], files); err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
}

func rootFileName(r *tuf.Metadata[tuf.Root]) string { return itoa(r.Signed.Version) + ".root.json" }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// stableEntries reads every target the leaf bins of a stable medium list.
func stableEntries(t *testing.T, media string, version int64) map[string]tuf.TargetFile {
	t.Helper()
	md := filepath.Join(media, "stable", "metadata")
	files, err := filepath.Glob(filepath.Join(md, itoa(version)+".stable-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]tuf.TargetFile{}
	for _, f := range files {
		m, err := tuf.Load[tuf.Targets](mustRead(t, f), f)
		if err != nil {
			t.Fatal(err)
		}
		for p, tf := range m.Signed.Targets {
			out[p] = tf
		}
	}
	return out
}

// TestIncidentDrill is issue 11's incident drill as one test: a bootstrap,
// two stable ceremonies, a repository compromise (the attacker's unstable
// lists swapped files at stable paths), `rotate online`, a stable
// ceremony that takes one stable file down, and a third ceremony after
// it. verify passes on every medium and on the published repository; a
// tuf-js client that trusted the first root ends on the new keys, gets
// stable's entries for stable paths (the one the attacker swapped
// included) and nothing for the taken-down path, even with the new
// online keys' unstable listing a file there.
func TestIncidentDrill(t *testing.T) {
	if err := tufjs.Check(); err != nil {
		t.Fatal(err)
	}
	h := newHistory(t)
	h.export(synth.NextParams{})
	h.ceremony()
	h.export(synth.NextParams{Seed: 5, NewFiles: 100, Deletions: 3})
	r2 := h.ceremony()
	media1, media2 := filepath.Join(h.dir, "media1"), filepath.Join(h.dir, "media2")
	stable2 := stableEntries(t, media2, r2.StableVersion)
	var paths []string
	for p := range stable2 {
		if strings.HasPrefix(p, "packages/") {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	if len(paths) < 20 {
		t.Fatalf("stable v%d lists %d files", r2.StableVersion, len(paths))
	}
	victim, swapped := paths[0], paths[1] // taken down; swapped by the attacker
	sample := paths[2:12]
	// The victim's project, from the ledger, and its stable HTML page.
	lf, err := os.Open(filepath.Join(media2, "stable", "ledger", itoa(r2.StableVersion)+".ledger"))
	if err != nil {
		t.Fatal(err)
	}
	lr, err := ledger.NewReader(lf)
	if err != nil {
		t.Fatal(err)
	}
	project := ""
	for {
		e, err := lr.Next()
		if err != nil {
			break
		}
		if e.Path == victim {
			project = e.Project
		}
	}
	lf.Close()
	page, _ := simpleindex.PagePaths(project)
	if _, ok := stable2[page]; project == "" || !ok {
		t.Fatalf("no stable page %q for the victim's project %q", page, project)
	}
	rootFile := filepath.Join(h.dir, "boot", "metadata", "1.root.json")
	evil := func(p string) []byte { return []byte("the attacker's file at " + p + "\n") }

	// The compromise: the published repository's online keys are the
	// attacker's; their unstable lists other files at two stable paths.
	// Stable's entries win (the control: what stable protects).
	repo2 := filepath.Join(h.dir, "repo2")
	drillRepo(t, repo2, h.f.repo, []*tuf.Metadata[tuf.Root]{h.boot.Root}, h.boot.Targets, media2, r2, map[string]tuf.TargetFile{})
	attacked := filepath.Join(h.dir, "attacked")
	if err := copyDir(repo2, attacked); err != nil {
		t.Fatal(err)
	}
	a := &tufjs.Attacker{Dir: attacked, Snapshot: h.f.repo.snapshot, Timestamp: h.f.repo.timestamp, Unstable: h.f.repo.unstable}
	for _, p := range []string{victim, swapped} {
		if err := a.ListUnstable(p, evil(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Publish(); err != nil {
		t.Fatal(err)
	}
	run, err := tufjs.Resolve(attacked, rootFile, []string{victim, swapped})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{victim, swapped} {
		if r, _ := run.ByPath(p); !run.RefreshOK || !sameEntry(r, stable2[p]) {
			t.Fatalf("during the compromise, %s: %s %+v, want stable's entry", p, run.RefreshError, r)
		}
	}

	// rotate online: new keys from the repository's clean servers.
	fresh, err := newSimRepo(h.base)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *h.f.cfg
	cfg.Online = fresh.online()
	rotMedia := filepath.Join(h.dir, "rotate-online")
	rot, err := (&OnlineRotation{Root: h.boot.Root, Published: h.published[2], Config: &cfg, Reason: "servers compromised", Devices: h.f.devices, PIN: h.f.pins, Now: generated(t, h.exports[len(h.exports)-1]).Add(2 * time.Hour), Version: "test"}).Run(rotMedia)
	if err != nil {
		t.Fatal(err)
	}
	root2, err := tuf.Load[tuf.Root](mustRead(t, filepath.Join(rotMedia, rot.RootFile)), "2.root.json")
	if err != nil {
		t.Fatal(err)
	}
	targets2, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(rotMedia, rot.TargetsFile)), "2.targets.json")
	if err != nil {
		t.Fatal(err)
	}
	// The repository publishes the rotation: root v2, targets v2, new
	// online keys.
	repoRot := filepath.Join(h.dir, "repo-rotated")
	drillRepo(t, repoRot, fresh, []*tuf.Metadata[tuf.Root]{h.boot.Root, root2}, targets2, media2, r2, map[string]tuf.TargetFile{})
	// The published state the next ceremonies start from: the rotation's
	// root and targets beside the stable metadata.
	pubRot := filepath.Join(h.dir, "published-rotated")
	if err := copyDir(h.published[2], pubRot); err != nil {
		t.Fatal(err)
	}
	copyInto(t, filepath.Join(rotMedia, "metadata"), filepath.Join(pubRot, "metadata"))

	// The takedown: a stable ceremony whose decisions take the victim
	// down, with its reason.
	sign := func(name, published string, dec *decisions.Set) (string, *StableResult) {
		t.Helper()
		s := h.signing(published)
		s.Decisions = dec
		d, err := s.Diff()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		approve := d.Digest
		d.Close()
		media := filepath.Join(h.dir, name)
		r, err := s.Sign(approve, media)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r.Diff.Close()
		pub := filepath.Join(h.dir, "published-"+name)
		if err := copyDir(pubRot, pub); err != nil {
			t.Fatal(err)
		}
		copyInto(t, filepath.Join(media, "stable", "metadata"), filepath.Join(pub, "metadata"))
		copyInto(t, filepath.Join(media, "stable", "ledger"), filepath.Join(pub, "ledger"))
		return media, r
	}
	h.export(synth.NextParams{Seed: 6, NewFiles: 50})
	decFile := filepath.Join(h.dir, "takedown.jsonl")
	if err := os.WriteFile(decFile, []byte(`{"path": "`+victim+`", "decision": "take-down", "reason": "malware found in a stable file (incident 2026-12)"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dec, err := decisions.Load(decFile)
	if err != nil {
		t.Fatal(err)
	}
	media3, r3 := sign("takedown", pubRot, dec)
	// An auditor's own recount of the takedown's signed diff, with no
	// keyceremony decoder (docs/signed-diff.md), and the diff recomputed.
	auditSignedDiff(t, media3, h.exports[len(h.exports)-1], pubRot, h.boot.Root, r3.Diff.Digest, h.signing(pubRot).Now)
	h.export(synth.NextParams{Seed: 7, NewFiles: 50})
	media4, r4 := sign("third", filepath.Join(h.dir, "published-takedown"), nil)
	t.Logf("stable.json: %d bytes before the takedown, %d with it; takedown.json %d bytes", r2.Meta[0].Length, r3.Meta[0].Length, r3.Meta[1].Length)
	for _, c := range []struct {
		media string
		r     *StableResult
	}{{media3, r3}, {media4, r4}} {
		st := stableEntries(t, c.media, c.r.StableVersion)
		if _, ok := st[victim]; ok {
			t.Fatalf("%s: the taken-down file is in a bin", c.media)
		}
		m, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(c.media, "stable", "metadata", itoa(c.r.StableVersion)+".stable.json")), "stable.json")
		if err != nil {
			t.Fatal(err)
		}
		if d := m.Signed.Delegations.Roles[0]; d.Name != tuf.TakedownRole || !d.Terminating || !slices.Equal(d.Paths, []string{victim}) {
			t.Fatalf("%s: stable's first delegation %+v, want the takedown role for %s", c.media, d, victim)
		}
	}

	// The takedown ceremony made the victim's project's pages again
	// without it: no page on its medium names the file.
	// (The first ceremony's pages, every project's, do name it.)
	name := path.Base(victim)
	pageBytes := map[string][]byte{}
	listing := func(media string) (pages int, naming []string) {
		tars, _ := filepath.Glob(filepath.Join(media, "stable", "pages", "*.tar"))
		for _, tf := range tars {
			f, err := os.Open(tf)
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(f)
			for {
				hd, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(tr)
				pages++
				if media == media3 {
					pageBytes[hd.Name] = b
				}
				if strings.Contains(string(b), name) {
					naming = append(naming, hd.Name)
				}
			}
			f.Close()
		}
		return pages, naming
	}
	if _, naming := listing(media1); len(naming) == 0 {
		t.Fatalf("no page of the first ceremony names %s: the check below proves nothing", name)
	}
	if pages, naming := listing(media3); pages == 0 || len(naming) > 0 {
		t.Errorf("the takedown ceremony made %d pages, these still name %s: %v", pages, name, naming)
	}
	if _, made := pageBytes[page]; !made {
		t.Errorf("the takedown ceremony did not make %s again", page)
	}

	// verify, on every medium.
	for _, o := range []AuditOptions{
		{Dir: filepath.Join(h.dir, "boot"), SoftCA: filepath.Join(caDir, "ca")},
		{Dir: media1, Previous: filepath.Join(h.dir, "boot")},
		{Dir: media2, Repository: filepath.Join(h.dir, "boot"), Previous: media1},
		{Dir: rotMedia, Previous: repo2},
		{Dir: media3, Repository: repoRot, Previous: media2},
		{Dir: media4, Repository: repoRot, Previous: media3},
	} {
		o.Root = rootFile
		rep, err := Audit(o)
		if err != nil || !rep.Valid {
			t.Fatalf("verify %s: %v %+v", o.Dir, err, rep)
		}
		// The takedown is carried from medium to medium.
		if o.Dir == media3 || o.Dir == media4 {
			found := false
			for _, c := range rep.Checks {
				found = found || c.Check == "versions against the previous medium" && strings.Contains(c.Detail, "1 paths taken down")
			}
			if !found {
				t.Errorf("verify %s does not say it checked the takedown against the previous medium: %+v", o.Dir, rep.Checks)
			}
		}
		if o.Dir == media3 && !slices.Equal(rep.SignedDiff.TakenDown, []string{victim}) {
			t.Errorf("verify %s: signed diff takes down %q", o.Dir, rep.SignedDiff.TakenDown)
		}
	}

	// The repository after the incident: root v2, targets v2, the new
	// online keys, stable from the third ceremony; the unstable signed
	// with the new key lists a file at the taken-down path and another at
	// a stable path. keyceremony verify accepts it; tuf-js, holding root
	// v1, follows the rotation, finds nothing for the taken-down path and
	// stable's entries elsewhere.
	final := filepath.Join(h.dir, "repo-final")
	unstable := map[string]tuf.TargetFile{}
	for _, p := range []string{victim, swapped} {
		b := evil(p)
		unstable[p] = tuf.TargetFile{Length: int64(len(b)), Hashes: map[string]string{"sha256": sha256Hex(b)}}
	}
	drillRepo(t, final, fresh, []*tuf.Metadata[tuf.Root]{h.boot.Root, root2}, targets2, media4, r4, unstable)
	if rep, err := Audit(AuditOptions{Root: rootFile, Dir: final}); err != nil || !rep.Valid {
		t.Fatalf("verify the repository: %v %+v", err, rep)
	}
	// status lists the takedown role on its own line, with stable's expiry.
	st, err := Status(StatusOptions{Dir: final})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	found := false
	for _, e := range st.Roles {
		found = found || e.Role == "stable "+tuf.TakedownRole && e.Count == 1 && e.Version == r4.StableVersion
	}
	if !found {
		t.Errorf("status does not list the takedown role: %+v", st.Roles)
	}
	stable4 := stableEntries(t, media4, r4.StableVersion)
	run, err = tufjs.Resolve(final, rootFile, append([]string{victim, swapped, page}, sample...))
	if err != nil {
		t.Fatal(err)
	}
	if !run.RefreshOK || !fetched(run, "/metadata/2.root.json", 200) {
		t.Fatalf("tuf-js did not follow the rotation: %s", run.RefreshError)
	}
	if r, _ := run.ByPath(victim); r.Found || r.Downloaded {
		t.Errorf("the taken-down path resolved: %+v", r)
	}
	for _, p := range append([]string{swapped}, sample...) {
		if r, _ := run.ByPath(p); !sameEntry(r, stable4[p]) {
			t.Errorf("%s: tuf-js returned %+v, want stable's entry %+v", p, r, stable4[p])
		}
	}
	// The project's page: stable's entry, the page made without the file.
	if r, _ := run.ByPath(page); !sameEntry(r, stable4[page]) || r.Hashes["sha256"] != sha256Hex(pageBytes[page]) {
		t.Errorf("%s: tuf-js returned %+v, want stable's entry for the page the takedown made (sha256 %s)", page, r, sha256Hex(pageBytes[page]))
	}
	if !fetched(run, "/metadata/"+itoa(r4.StableVersion)+"."+tuf.TakedownRole+".json", 200) {
		t.Error("tuf-js did not fetch the takedown role")
	}
}

// TestTakedownsKept: a stable medium that drops a takedown without a lift
// decision, or takes down a path no decision names, is refused against
// its predecessor, naming both sets.
func TestTakedownsKept(t *testing.T) {
	st := func(v int64, paths ...string) *mediumState {
		return &mediumState{versions: map[string]int64{"stable": v}, takedowns: paths}
	}
	down := []decisions.Decision{{Path: "p/b", Choice: decisions.TakeDown}}
	lift := []decisions.Decision{{Path: "p/a", Choice: decisions.Lift}}
	for _, c := range []struct {
		name      string
		cur, prev *mediumState
		ds        []decisions.Decision
		n         int
		msg       string
	}{
		{"kept", st(5, "p/a"), st(4, "p/a"), nil, 1, ""},
		{"taken down", st(5, "p/a", "p/b"), st(4, "p/a"), down, 2, ""},
		{"lifted", st(5), st(4, "p/a"), lift, 0, ""},
		{"dropped without a lift", st(5), st(4, "p/a"), nil, 0, `stable version 5 takes down []; the previous medium prev took down ["p/a"], and the signed diff's decisions make that ["p/a"]`},
		{"taken down without a decision", st(5, "p/a", "p/b"), st(4, "p/a"), nil, 0, `make that ["p/a"]`},
		{"kept after a lift", st(5, "p/a"), st(4, "p/a"), lift, 0, `make that []`},
	} {
		n, err := takedownsKept(c.cur, c.prev, "prev", c.ds)
		switch {
		case c.msg == "" && (err != nil || n != c.n):
			t.Errorf("%s: %d, %v; want %d", c.name, n, err, c.n)
		case c.msg != "" && (!errors.Is(err, ErrMediumContent) || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("%s: %v, want ErrMediumContent saying %q", c.name, err, c.msg)
		}
	}
}
