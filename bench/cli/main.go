// Command cli measures the stable ceremony as the administrator runs it:
// the real keyceremony binary (built here, without cgo: soft devices),
// each command a child process measured by its own rusage (wall, CPU) and
// its peak RSS (VmHWM, polled):
//
//   - setup, not timed: three soft devices, a bootstrap (root, targets,
//     stable 2 of 3), two synthetic exports a period apart (kept in -dir
//     and reused while their dates hold);
//   - the first ceremony: `stable diff --backup` (which keeps its pass),
//     then `stable sign --batch --approve DIGEST` (which signs from it);
//   - the repository's part, not timed: publishing the media beside the
//     bootstrap's metadata;
//   - the second ceremony (the routine one): `stable diff`, `stable sign`,
//     then `verify` of its media against the bootstrap media;
//   - the sizes of its media and of one lookup, fresh and holding the
//     first ceremony's metadata, beside the estimates (bench/internal/sizes);
//   - at 1 M files and below (or with -baseline=true), the go-tuf v2
//     baseline (bench/gotufbaseline, built here, a child like the others)
//     on the second ceremony's export, and the ratio of the routine
//     ceremony (diff and sign) to it, wall and CPU.
//
// With -profile DIR the binary is built with the tag benchprofile
// (cmd/keyceremony/profile_bench.go) and each measured command writes a
// CPU and a heap profile into DIR/<command>/ (for `go tool pprof`).
//
// It refuses to start when the file system of -dir has less free space
// than the run needs (5.5 KB a file; 3.25 KB measured at 10 M).
//
//	go run ./bench/cli -n 1000000
//	go run ./bench/cli -n 25000000 -dir /big/disk/bench -rm
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/bench/internal/measure"
	"github.com/keyceremony/keyceremony/bench/internal/sizes"
)

// bytesPerFile is the disk a run needs per file of the export: both
// exports (about 520 bytes a file each), the kept pass of the ceremony
// running (about 1.25 KB a file: 12.5 GB at 10 M; the undecided pass of
// the second ceremony is removed before its decided diff, the signed one
// by its signing) and its work files, the first medium (about 1.7 KB a
// file, 17 GB at 10 M, of which its index pages and diff texts are
// removed once published) and the second. Measured at 10 M: 32.5 GB at
// the peak (3.25 KB a file).
const bytesPerFile = 5500

// profileDir is -profile's directory ("": no profiles).
var profileDir string

// profileName is a command's label as a directory name.
func profileName(label string) string {
	return strings.NewReplacer(" ", "-", ":", "", "/", "-").Replace(label)
}

// profiled has a measured command write its profiles into
// profileDir/<label, dashed>/, when -profile is given.
func profiled(c *exec.Cmd, label string) (*exec.Cmd, error) {
	if profileDir == "" {
		return c, nil
	}
	d, err := filepath.Abs(filepath.Join(profileDir, profileName(label)))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	c.Env = append(os.Environ(), "KEYCEREMONY_BENCH_PROFILE="+d)
	return c, nil
}

func main() {
	n := flag.Int64("n", 1_000_000, "files in the export (1 M by default; 10 M and 25 M are documented in docs/stable-pipeline.md)")
	dir := flag.String("dir", "", "work directory (default $TMPDIR/keyceremony-clibench-N); the exports are kept there and reused")
	rm := flag.Bool("rm", false, "remove the work directory, exports included, at the end")
	baseline := flag.String("baseline", "auto", "run the go-tuf baseline on the second export: true, false or auto (at 1 M files and below)")
	flag.StringVar(&profileDir, "profile", "", "write each measured command's CPU and heap profiles into this directory (a binary built with the tag benchprofile)")
	mode := flag.String("mode", "files+pages", "the policy's target_mode: files+pages or pages")
	first := flag.Bool("first", false, "the first ceremony only, and the size report of its media (a fresh client's lookup): about half the disk")
	flag.Parse()
	if *dir == "" {
		*dir = filepath.Join(os.TempDir(), fmt.Sprintf("keyceremony-clibench-%d", *n))
	}
	if *mode != "files+pages" && *mode != "pages" {
		fmt.Fprintf(os.Stderr, "cli bench: error: -mode %q: use files+pages or pages\n", *mode)
		os.Exit(2)
	}
	if *baseline != "true" && *baseline != "false" && *baseline != "auto" {
		fmt.Fprintf(os.Stderr, "cli bench: error: -baseline %q: use true, false or auto\n", *baseline)
		os.Exit(2)
	}
	if err := run(*dir, *n, *rm, !*first && (*baseline == "true" || *baseline == "auto" && *n <= 1_000_000), *mode, *first); err != nil {
		fmt.Fprintf(os.Stderr, "cli bench: error: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, n int64, rm, baseline bool, mode string, first bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if rm {
		defer os.RemoveAll(dir)
	}
	need := n * bytesPerFile
	if first {
		need /= 2
	}
	if err := measure.CheckSpace(dir, need); err != nil {
		return err
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("cli benchmark: %d files, %s, nproc %s, load %s, %s\n", n, mode, measure.Nproc(), strings.Join(strings.Fields(string(load))[:3], " "), runtime.Version())

	// A clean slate but for the exports.
	for _, d := range []string{"devs", "boot", "backup", "media1", "media2", "pub2", "work"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return err
		}
	}
	bin := filepath.Join(dir, "keyceremony")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/keyceremony")
	if profileDir != "" {
		build.Args = append(build.Args[:2], append([]string{"-tags", "benchprofile"}, build.Args[2:]...)...)
	}
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building keyceremony (run from the module root): %w", err)
	}
	kc := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Dir = dir
		return c
	}
	quiet := func(args ...string) error {
		_, err := measure.Child(kc(args...))
		return err
	}

	// Setup: soft devices, a bootstrap.
	if err := quiet("soft", "ca", "--dir", "devs/ca"); err != nil {
		return err
	}
	var softs []string
	for _, s := range []string{"1001", "1002", "1003"} {
		if err := quiet("soft", "create", "--dir", "devs/"+s, "--serial", s, "--ca", "devs/ca", "--kdf-cost", "test"); err != nil {
			return err
		}
		softs = append(softs, "--soft", "devs/"+s)
	}
	softs = append(softs, "--soft-ca", "devs/ca", "--pin-file", "pins.txt")
	if err := os.WriteFile(filepath.Join(dir, "pins.txt"), []byte("1001 123456\n1002 123456\n1003 123456\n"), 0o600); err != nil {
		return err
	}
	if err := writeConfig(filepath.Join(dir, "bootstrap.json")); err != nil {
		return err
	}
	// The benchmark measures the pipeline, not the room's decisions: the
	// confirm_above limits out of reach, and no project-loss flag (a
	// project would have to lose more than all its stable files).
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), measure.Policy(mode), 0o644); err != nil {
		return err
	}
	for _, d := range []string{"backup", "work"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	ack, err := upInterfaces()
	if err != nil {
		return err
	}
	if err := quiet(append([]string{"bootstrap", "--config", "bootstrap.json", "--out", "boot", "--backup", "backup", "--network-ack", ack}, softs...)...); err != nil {
		return err
	}

	// The exports: the second generated an hour ago, the first a period
	// before; by the hour, so that runs within the hour reuse them.
	gen1 := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	gen0 := gen1.Add(-91 * 24 * time.Hour)
	e0, e1 := filepath.Join(dir, "export0.jsonl"), filepath.Join(dir, "export1.jsonl")
	if err := measure.Generate(dir, e0, e1, n, gen0, gen1); err != nil {
		return err
	}
	st, err := os.Stat(e1)
	if err != nil {
		return err
	}
	fmt.Printf("export: %d MiB (second ceremony's)\n\n", st.Size()>>20)
	measure.Header(os.Stdout)
	exec.Command("cat", e0, e1).Run() // both exports from the page cache

	var routine measure.Result // the second ceremony's diff and sign
	ceremony := func(label, export, published, media string) error {
		common := []string{"--export", export, "--published", published, "--root", "boot/metadata/1.root.json", "--backup", "backup", "--policy", "policy.json", "--work-dir", "work"}
		var out bytes.Buffer
		diff := kc(append([]string{"stable", "diff", "--format", "json"}, common...)...)
		diff.Stdout = &out
		diff, err := profiled(diff, label+": stable diff")
		if err != nil {
			return err
		}
		rd, err := measure.Child(diff)
		if err != nil {
			return err
		}
		// The synthetic next period lists files claiming an upload
		// before the previous listing (backdated: always a red flag).
		// The room confirms them (they stay held); the diff it then
		// runs with the decisions is the one measured and reused.
		if dec, n, err := confirmFlags(out.Bytes()); err != nil {
			return fmt.Errorf("stable diff's output: %w", err)
		} else if n > 0 {
			name := "decisions-" + strings.ReplaceAll(label, " ", "-") + ".jsonl"
			if err := os.WriteFile(filepath.Join(dir, name), dec, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "  %s: %d red flags confirmed in %s; stable diff again with them\n", label, n, name)
			// The undecided pass is never signed: it stays in the work
			// directory (docs/runbook-stable.md) until removed, as the
			// administrator would before the signing.
			und, err := parseDigest(out.Bytes())
			if err != nil {
				return fmt.Errorf("stable diff's output: %w", err)
			}
			if err := os.RemoveAll(filepath.Join(dir, "work", "keyceremony-reviewed-"+und)); err != nil {
				return err
			}
			common = append(common, "--decisions", name)
			if profileDir != "" { // the undecided run's profiles aside
				d := filepath.Join(profileDir, profileName(label+": stable diff"))
				os.RemoveAll(d + "-undecided")
				if err := os.Rename(d, d+"-undecided"); err != nil {
					return err
				}
			}
			out.Reset()
			diff = kc(append([]string{"stable", "diff", "--format", "json"}, common...)...)
			diff.Stdout = &out
			if diff, err = profiled(diff, label+": stable diff"); err != nil {
				return err
			}
			if rd, err = measure.Child(diff); err != nil {
				return err
			}
		}
		digest, err := parseDigest(out.Bytes())
		if err != nil {
			return fmt.Errorf("stable diff's output: %w", err)
		}
		sign := kc(append(append([]string{"stable", "sign", "--batch", "--approve", digest, "--media", media, "--network-ack", ack}, common...), softs...)...)
		var sout bytes.Buffer
		sign.Stdout = &sout
		if sign, err = profiled(sign, label+": stable sign"); err != nil {
			return err
		}
		rs, err := measure.Child(sign)
		if err != nil {
			return err
		}
		if !bytes.Contains(sout.Bytes(), []byte("reusing the reviewed pass")) {
			return fmt.Errorf("stable sign did not reuse the reviewed pass:\n%s", sout.Bytes())
		}
		measure.Row(os.Stdout, label+": stable diff", rd)
		measure.Row(os.Stdout, label+": stable sign --batch", rs)
		routine = measure.Result{Wall: rd.Wall + rs.Wall, CPU: rd.CPU + rs.CPU, Peak: max(rd.Peak, rs.Peak)}
		measure.Row(os.Stdout, label+": total", routine)
		return nil
	}
	if err := ceremony("first ceremony", "export0.jsonl", "boot", "media1"); err != nil {
		return err
	}
	if first {
		return sizes.PrintDir(os.Stdout, dir, true)
	}
	// The repository publishes the media beside the bootstrap's metadata.
	if err := publish(dir, filepath.Join(dir, "pub2")); err != nil {
		return err
	}
	// What the repository does not publish of the first medium (its index
	// pages and diff texts, served from elsewhere) is not needed again:
	// removed, so that 10 M files fit on a smaller disk. pub2 holds its own
	// links to the published files, and the size report reads only
	// media1/stable's metadata and snapshot fragment.
	for _, d := range []string{"stable/pages", "diff.txt", "diff.canonical"} {
		if err := os.RemoveAll(filepath.Join(dir, "media1", d)); err != nil {
			return err
		}
	}
	if err := ceremony("second ceremony", "export1.jsonl", "pub2", "media2"); err != nil {
		return err
	}
	vc, err := profiled(kc("verify", "--root", "boot/metadata/1.root.json", "--repository", "boot", "media2"), "second ceremony: verify")
	if err != nil {
		return err
	}
	rv, err := measure.Child(vc)
	if err != nil {
		return err
	}
	measure.Row(os.Stdout, "second ceremony: verify of its media", rv)
	if du, err := exec.Command("du", "-sm", filepath.Join(dir, "media2")).Output(); err == nil {
		fmt.Fprintf(os.Stderr, "  second ceremony's media: %s", du)
	}
	if err := sizes.PrintDir(os.Stdout, dir, false); err != nil {
		return err
	}
	if !baseline {
		return nil
	}
	// The go-tuf baseline on the same export, in the same run.
	gt := filepath.Join(dir, "gotufbaseline")
	gb := exec.Command("go", "build", "-o", gt, "./bench/gotufbaseline")
	gb.Stdout, gb.Stderr = os.Stderr, os.Stderr
	if err := gb.Run(); err != nil {
		return fmt.Errorf("building the go-tuf baseline (run from the module root): %w", err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "gotuf-out")); err != nil {
		return err
	}
	var gout bytes.Buffer
	bl := exec.Command(gt, "-export", e1, "-out", filepath.Join(dir, "gotuf-out"))
	bl.Stdout = &gout
	rb, err := measure.Child(bl)
	if err != nil {
		return err
	}
	measure.Row(os.Stdout, "go-tuf v2 baseline: total", rb)
	fmt.Printf("\nroutine ceremony (stable diff + stable sign --batch) vs the go-tuf v2 baseline: %.1fx less wall time, %.1fx less CPU\n",
		rb.Wall.Seconds()/routine.Wall.Seconds(), rb.CPU.Seconds()/routine.CPU.Seconds())
	fmt.Fprintf(os.Stderr, "  the baseline's stages:\n%s", gout.Bytes())
	return nil
}

// parseDigest returns the digest `stable diff --format json` printed.
// confirmFlags writes a decisions file confirming every undecided red
// flag of stable diff's JSON output that "confirm" settles, and how many
// it confirmed; a flag that needs another choice is an error (the
// benchmark's policy raises none).
func confirmFlags(out []byte) ([]byte, int, error) {
	var d struct {
		Flags []struct {
			Kind     string          `json:"kind"`
			Subject  string          `json:"subject"`
			Choices  []string        `json:"choices"`
			Decision json.RawMessage `json:"decision"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return nil, 0, err
	}
	var b bytes.Buffer
	n := 0
	for _, f := range d.Flags {
		if len(f.Decision) > 0 && string(f.Decision) != "null" {
			continue
		}
		if !slices.Contains(f.Choices, "confirm") {
			return nil, 0, fmt.Errorf("flag %s %s needs one of %v", f.Kind, f.Subject, f.Choices)
		}
		line, err := json.Marshal(map[string]string{"flag": f.Kind, "subject": f.Subject, "decision": "confirm", "reason": "benchmark: the synthetic period's " + f.Kind + " files"})
		if err != nil {
			return nil, 0, err
		}
		b.Write(append(line, '\n'))
		n++
	}
	return b.Bytes(), n, nil
}

func parseDigest(out []byte) (string, error) {
	var d struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return "", err
	}
	if _, err := hex.DecodeString(d.Digest); err != nil || len(d.Digest) != 64 {
		return "", fmt.Errorf("no digest of 64 hex digits: %q", d.Digest)
	}
	return d.Digest, nil
}

// writeConfig writes a bootstrap configuration for the three soft
// devices, with a throwaway online key.
func writeConfig(name string) error {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	key := fmt.Sprintf(`{"threshold": 1, "keys": [{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": %q}}]}`, hex.EncodeToString(pub))
	slots := func(slot string) string {
		return fmt.Sprintf(`[{"device": 1001, "slot": %q}, {"device": 1002, "slot": %q}, {"device": 1003, "slot": %q}]`, slot, slot, slot)
	}
	cfg := fmt.Sprintf(`{"repository": "pypi", "expires_days": {"root": 365, "targets": 365, "stable": 120},
"key_policy": {"algorithm": "p256", "pin_policy": "always", "touch_policy": "never"},
"root": {"threshold": 2, "keys": %s},
"targets": {"threshold": 1, "keys": %s},
"stable": {"threshold": 2, "keys": %s},
"online": {"snapshot": %s, "timestamp": %s, "unstable": %s},
"target_paths": ["packages/*/*/*/*", "simple/*/index.html", "simple/*/index.json"]}
`, slots("9c"), slots("82"), slots("83"), key, key, key)
	return os.WriteFile(name, []byte(cfg), 0o644)
}

// publish lays out what the repository hands the next ceremony: the
// bootstrap's metadata, the first ceremony's stable metadata and ledger.
func publish(dir, pub string) error {
	for _, d := range []string{"metadata", "ledger"} {
		if err := os.MkdirAll(filepath.Join(pub, d), 0o755); err != nil {
			return err
		}
	}
	for _, src := range []string{"boot/metadata", "media1/stable/metadata", "media1/stable/ledger"} {
		ents, err := os.ReadDir(filepath.Join(dir, src))
		if err != nil {
			return err
		}
		for _, e := range ents {
			to := filepath.Join(pub, filepath.Base(src), e.Name())
			if err := os.Link(filepath.Join(dir, src, e.Name()), to); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		}
	}
	return nil
}

// upInterfaces is what --network-ack must name: the interfaces up
// besides loopback.
func upInterfaces() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	var up []string
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			up = append(up, i.Name)
		}
	}
	return strings.Join(up, ","), nil
}
