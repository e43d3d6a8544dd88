package ceremony

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"path"
	"sort"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/keys"
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
	Report  *tuf.Report
}

// demoSerials are the soft devices' serial numbers.
var demoSerials = []uint32{10000001, 10000002, 10000003}

// Run performs the demo. DIR must not exist or be empty; it appears only
// if everything succeeded.
func (d *Demo) Run() (*DemoResult, error) {
	out, err := NewOutput(d.Out)
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
		dev, err := soft.Create(out.Path("devices", fmt.Sprint(serial)), serial, ca)
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
	pinSource := func(info hsm.Info) (string, error) {
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
	b := &Bootstrap{Config: cfg, Devices: devices, PIN: pinSource, Roots: ca.Pool(), Now: d.Now, Show: d.Show, Version: d.Version}
	boot, err := b.Run(out.Path("ceremony", "bootstrap"))
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	say("   transcript digest: %s", keys.HexGroups(boot.Transcript[:]))

	say("")
	say("== 3. Stable signing: files uploaded at least 90 days ago")
	res := &DemoResult{Dir: d.Out, Content: map[string][]byte{}}
	all := map[string]tuf.TargetFile{}
	stableFiles := map[string]tuf.TargetFile{}
	for _, f := range demoFiles {
		c := f.content()
		p := f.targetPath()
		tf := tuf.TargetFile{Length: int64(len(c)), Hashes: map[string]string{"sha256": sha256Hex(c)}}
		all[p] = tf
		res.Content[p] = c
		if err := out.WriteFile(path.Join("targets", targetFileName(p, sha256Hex(c))), c); err != nil {
			return nil, err
		}
		if f.Age >= 90*day {
			stableFiles[p] = tf
			res.Stable = append(res.Stable, p)
		} else {
			res.UnstableOnly = append(res.UnstableOnly, p)
		}
	}
	sess := &session{devices: devices, pin: pinSource, pins: map[uint32]string{}}
	stableSigners, err := sess.signers(RoleSpec{Threshold: cfg.Stable.Threshold, Keys: cfg.Stable.Keys[:cfg.Stable.Threshold]})
	if err != nil {
		return nil, err
	}
	stable := tuf.NewTargets(2, d.Now.AddDate(0, 0, cfg.ExpiresDays.Stable))
	for p, tf := range stableFiles {
		stable.Signed.Targets[p] = tf
	}
	if err := stable.Sign(stableSigners...); err != nil {
		return nil, fmt.Errorf("signing stable: %w", err)
	}
	say("   stable v2 lists %d files, signed by %d of %d stable keys", len(stableFiles), len(stableSigners), len(cfg.Stable.Keys))

	say("")
	say("== 4. The repository side (simulated): unstable, snapshot, timestamp")
	// The attacker holds the online key and swaps a mature file.
	sort.Strings(res.Stable)
	victim := res.Stable[0]
	evil := []byte("malicious replacement of " + path.Base(victim) + "\n")
	all[victim] = tuf.TargetFile{Length: int64(len(evil)), Hashes: map[string]string{"sha256": sha256Hex(evil)}}
	if err := out.WriteFile(path.Join("targets", targetFileName(victim, sha256Hex(evil))), evil); err != nil {
		return nil, err
	}
	res.Attacked = []string{victim}
	say("   unstable lists %d files; it swaps %s for a malicious file, as an attacker with the online key would", len(all), path.Base(victim))
	unstable, err := repo.signUnstable(1, all)
	if err != nil {
		return nil, err
	}
	files := map[string]publishedMeta{}
	for name, m := range map[string]interface{ MarshalFile() ([]byte, error) }{"targets.json": boot.Targets, "stable.json": stable, "unstable.json": unstable} {
		data, err := m.MarshalFile()
		if err != nil {
			return nil, err
		}
		v := int64(1)
		if name == "stable.json" {
			v = stable.Signed.Version
		}
		files[name] = publishedMeta{version: v, data: data}
	}
	rootData, err := boot.Root.MarshalFile()
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile("metadata/1.root.json", rootData); err != nil {
		return nil, err
	}
	if err := repo.publish(out, "metadata", files); err != nil {
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

var (
	_ = hex.EncodeToString
	_ *x509.CertPool
)
