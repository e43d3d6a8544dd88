package ceremony

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/tui"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

// Demo runs a complete dry-run ceremony against three INSECURE soft
// devices and a simulated repository, and leaves a repository that any
// TUF client can be pointed at:
//
//	DIR/metadata/   1.root.json, 1.targets.json, N.stable.json, ...,
//	                1.unstable.json, 1.snapshot.json, timestamp.json
//	DIR/targets/    target files, named <sha256>.<name> (consistent snapshots)
//	DIR/devices/    the soft devices and their CA (INSECURE)
//	DIR/ceremony/   bootstrap and stable-signing outputs as written to media
type Demo struct {
	Out     string
	Now     time.Time
	Show    io.Writer
	Version string
	// DeviceKDF is the soft devices' scrypt cost; empty means
	// soft.KDFStandard. Test suites use soft.KDFTest.
	DeviceKDF soft.KDF
}

// DemoResult tells tests and the printout what the demo built.
type DemoResult struct {
	Dir string
	// Stable lists target paths stable signed; UnstableOnly lists paths
	// only unstable lists; Attacked lists paths for which unstable lists a
	// different file than stable (what an attacker with the online key
	// would do).
	Stable, UnstableOnly, Attacked []string
	// Content maps every target path to the bytes a client must receive.
	Content map[string][]byte
	// StablePages lists the index pages stable signed.
	StablePages []string
	Report      *tuf.Report
}

// demoSerials are the soft devices' serial numbers.
var demoSerials = []uint32{10000001, 10000002, 10000003}

// Run performs the demo. DIR must not exist or be empty; it appears only
// if everything succeeded.
func (d *Demo) Run() (*DemoResult, error) {
	out, err := outdir.New(d.Out)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	say := func(format string, a ...any) {
		if d.Show != nil {
			fmt.Fprintf(d.Show, format+"\n", a...)
		}
	}
	say("keyceremony demo: a complete dry run with INSECURE software devices")
	say("")
	say("== 1. Devices (soft, INSECURE: keys are not protected by hardware)")
	ca, err := soft.CreateCA(out.Path("devices", "ca"))
	if err != nil {
		return nil, err
	}
	devices := map[uint32]hsm.Device{}
	pins := map[uint32]string{}
	for _, serial := range demoSerials {
		dev, err := soft.Create(out.Path("devices", fmt.Sprint(serial)), serial, ca, soft.CreateOptions{KDF: d.DeviceKDF})
		if err != nil {
			return nil, err
		}
		defer dev.Close()
		pin, puk := randomDigits(8), randomDigits(8)
		if err := dev.ChangePIN(soft.DefaultPIN, pin); err != nil {
			return nil, fmt.Errorf("setting the PIN of %s: %w", dev.Info(), err)
		}
		if err := dev.ChangePUK(soft.DefaultPUK, puk); err != nil {
			return nil, fmt.Errorf("setting the PUK of %s: %w", dev.Info(), err)
		}
		devices[serial] = dev
		pins[serial] = pin
		say("   %s: factory PIN and PUK replaced", dev.Info())
	}
	pinSource := func(info hsm.Info, _ int) (string, error) {
		p, ok := pins[info.Serial]
		if !ok {
			return "", fmt.Errorf("no PIN for device %d", info.Serial)
		}
		return p, nil
	}

	repo, err := newSimRepo(d.Now)
	if err != nil {
		return nil, err
	}
	say("")
	say("== 2. Bootstrap: root 2-of-3, targets 1-of-2, stable 2-of-3, on the devices")
	cfg := demoConfig(repo.online())
	// The backup medium the ceremony keeps (a second USB stick in the
	// room): each ceremony's state, checked by the next.
	backup := out.Path("ceremony", "backup")
	if err := os.MkdirAll(backup, 0o755); err != nil {
		return nil, err
	}
	b := &Bootstrap{Config: cfg, Devices: devices, PIN: pinSource, Roots: ca.Pool(), Now: d.Now, Show: d.Show, Version: d.Version, Backup: backup}
	boot, err := b.Run(out.Path("ceremony", "bootstrap"))
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if d.Show != nil {
		tui.ShowDigest(d.Show, "   bootstrap transcript digest (the witnesses read it aloud):", boot.Transcript[:])
		cd := boot.State.CheckDigest()
		tui.ShowDigest(d.Show, "   backup state v1 on ceremony/backup (its check words go on the run sheet):", cd[:])
	}

	say("")
	say("== 3. Stable signing: the repository's export, the policy (files at least 90 days old), the diff, the approval")
	res := &DemoResult{Dir: d.Out, Content: map[string][]byte{}}
	exportPath := out.Path("repository", "export.jsonl")
	records, content, err := writeDemoExport(exportPath, d.Now)
	if err != nil {
		return nil, err
	}
	ss := &StableSigning{
		Root: boot.Root, Published: out.Path("ceremony", "bootstrap"), Export: exportPath,
		Policy: policy.Default(), Devices: devices, PIN: pinSource, Now: d.Now, Show: d.Show, Version: d.Version, Backup: backup,
	}
	diff, err := ss.Diff()
	if err != nil {
		return nil, fmt.Errorf("computing the diff: %w", err)
	}
	if d.Show != nil {
		var text bytes.Buffer
		if err := diff.WriteText(&text); err != nil {
			return nil, err
		}
		lines := strings.SplitAfter(text.String(), "\n")
		const show = 18
		for _, l := range lines[:min(show, len(lines))] {
			fmt.Fprint(d.Show, "   | "+l)
		}
		if len(lines) > show {
			say("   | ... (%d more lines: the whole diff is written to ceremony/stable-1/diff.txt)", len(lines)-show)
		}
	}
	approve := diff.Digest
	diff.Close()
	if d.Show != nil {
		dg, _ := hex.DecodeString(approve)
		tui.ShowDigest(d.Show, "   The keyholders compare this diff digest on every screen and approve it:", dg)
	}
	stableRes, err := ss.Sign(approve, out.Path("ceremony", "stable-1"))
	if err != nil {
		return nil, fmt.Errorf("stable signing: %w", err)
	}
	say("   stable v%d signed by %d stable keys; %d mid roles and %d leaf bins, each signed by a key of its own that no longer exists", stableRes.StableVersion, len(stableRes.Signers), stableRes.Layout.NumMids(), stableRes.Layout.NumLeaves())
	if d.Show != nil {
		cd := stableRes.State.CheckDigest()
		tui.ShowDigest(d.Show, fmt.Sprintf("   backup state v%d written to ceremony/backup; the next ceremony refuses any other published state (check words for the run sheet):", stableRes.StableVersion), cd[:])
	}

	say("")
	say("== 4. The repository side (simulated): publish stable, sign unstable, snapshot, timestamp")
	all := map[string]tuf.TargetFile{}
	byProject := map[string][]simpleindex.PageFile{}
	// Every file is listed by unstable, shown on the repository's index
	// pages and published.
	ex, err := os.Open(exportPath)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	xr, err := export.NewReader(ex, exportPath)
	if err != nil {
		return nil, err
	}
	for {
		r, err := xr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		pf, err := simpleindex.NewPageFile(r, "")
		if err != nil {
			return nil, err
		}
		byProject[r.Project] = append(byProject[r.Project], pf)
	}
	for i := range records {
		r := &records[i]
		c := content[r.Path]
		all[r.Path] = tuf.TargetFile{Length: int64(len(c)), Hashes: map[string]string{"sha256": sha256Hex(c)}}
		if _, builtIn := demoContent[r.Path]; builtIn {
			res.Content[r.Path] = c
		}
		if err := publishTarget(out, r.Path, c); err != nil {
			return nil, err
		}
	}
	// The ledger stable lists as its target, published like any other.
	if err := publishLedger(out, filepath.Join(out.Path("ceremony", "stable-1"), "stable")); err != nil {
		return nil, err
	}
	err = stableRes.Diff.Entries(func(e *stableset.DiffEntry) error {
		if _, builtIn := demoContent[e.Path]; !builtIn {
			return nil // generated: published, but not what the tests and the printout follow
		}
		switch e.Category {
		case stableset.Added, stableset.Unchanged:
			res.Stable = append(res.Stable, e.Path)
		case stableset.Held:
			res.UnstableOnly = append(res.UnstableOnly, e.Path)
		}
		return nil
	})
	stableRes.Diff.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(res.Stable)
	sort.Strings(res.UnstableOnly)
	// The stable index pages, published as the ceremony wrote them.
	stablePages, err := extractPages(filepath.Join(out.Path("ceremony", "stable-1"), "stable", "pages"))
	if err != nil {
		return nil, err
	}
	for p, b := range stablePages {
		res.Content[p] = b
		res.StablePages = append(res.StablePages, p)
		if err := publishTarget(out, p, b); err != nil {
			return nil, err
		}
	}
	sort.Strings(res.StablePages)
	// The repository's own pages list every file, young ones included;
	// for projects with stable files a client sees stable's page instead.
	for project, files := range byProject {
		html, js, err := simpleindex.RenderProjectPages(project, files)
		if err != nil {
			return nil, err
		}
		hp, jp := simpleindex.PagePaths(project)
		for p, b := range map[string][]byte{hp: html, jp: js} {
			all[p] = tuf.TargetFile{Length: int64(len(b)), Hashes: map[string]string{"sha256": sha256Hex(b)}}
			sp, stable := stablePages[p]
			if !stable {
				res.Content[p] = b
				res.UnstableOnly = append(res.UnstableOnly, p)
			}
			if stable && bytes.Equal(sp, b) {
				continue // the same page, already published under its hash
			}
			if err := out.WriteFile(path.Join("targets", targetFileName(p, sha256Hex(b))), b); err != nil {
				return nil, err
			}
		}
	}
	// The attacker holds the online key and swaps a mature file.
	victim := res.Stable[0]
	evil := []byte("malicious replacement of " + path.Base(victim) + "\n")
	all[victim] = tuf.TargetFile{Length: int64(len(evil)), Hashes: map[string]string{"sha256": sha256Hex(evil)}}
	if err := out.WriteFile(path.Join("targets", targetFileName(victim, sha256Hex(evil))), evil); err != nil {
		return nil, err
	}
	res.Attacked = []string{victim}
	say("   unstable lists %d targets; it swaps %s for a malicious file, as an attacker with the online key would", len(all), path.Base(victim))
	unstable, err := repo.signUnstable(1, all)
	if err != nil {
		return nil, err
	}
	files, err := repoFiles(boot.Targets, unstable, filepath.Join(out.Path("ceremony", "stable-1"), "stable"), stableRes.Meta)
	if err != nil {
		return nil, err
	}
	if err := repo.publish(out, "metadata", boot.Root, files); err != nil {
		return nil, err
	}

	say("")
	say("== 5. Verification, as an auditor would run it")
	report, err := tuf.VerifyRepository(boot.Root, out.Path("metadata"), tuf.VerifyOptions{At: d.Now})
	if err != nil {
		return nil, fmt.Errorf("verifying the demo repository: %w", err)
	}
	res.Report = report
	say("   every signature, threshold, version and expiry checked: OK")
	if err := out.Commit(); err != nil {
		return nil, err
	}
	say("")
	say("The repository is in %s: point a TUF client at %s/metadata with %s/metadata/1.root.json as its trusted root.", d.Out, d.Out, d.Out)
	return res, nil
}

func demoConfig(online map[string]OnlineRole) *Config {
	spec := func(threshold int, slot string, serials ...uint32) RoleSpec {
		r := RoleSpec{Threshold: threshold}
		for _, s := range serials {
			r.Keys = append(r.Keys, KeySpec{Device: s, Slot: slot})
		}
		return r
	}
	return &Config{
		Repository:  "demo",
		ExpiresDays: Expiry{Root: 365, Targets: 365, Stable: 120},
		KeyPolicy:   KeyPolicy{Algorithm: "p256", PINPolicy: "always", TouchPolicy: "always"},
		Root:        spec(2, "9c", demoSerials...),
		Targets:     spec(1, "82", demoSerials[0], demoSerials[1]),
		Stable:      spec(2, "83", demoSerials...),
		Online:      online,
		TargetPaths: DefaultTargetPaths,
	}
}

func randomDigits(n int) string {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = byte('0' + v.Int64())
	}
	return string(b)
}
