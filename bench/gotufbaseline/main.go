// Command gotufbaseline builds and signs the same hashed bins as the
// stable pipeline with go-tuf v2's metadata API, the speed baseline of
// `make bench` (bench/pipeline runs it as a child on the same export). It
// is a separate program so that the keyceremony binary never links go-tuf.
//
// The work is the pipeline's minus what go-tuf has no part in (the diff
// against a published set, the ledger): parse the export with the same
// strict reader, apply the same default policy at the export's generation
// time, render the same index pages (with the pipeline's renderer, kept in
// memory), build one go-tuf Targets per bin with the same layout and the
// same targets (eligible files and pages), sign each with an ECDSA P-256
// key (the pipeline's ceremony key type) through go-tuf (canonical JSON via cjson), serialise, write one file per
// bin, sync. Signing and serialising run on every CPU, as the pipeline's
// do. It prints a row per stage (wall, CPU, peak RSS).
//
//	go run ./bench/gotufbaseline -export export.jsonl -out DIR
package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/policy"
	"github.com/keyceremony/keyceremony/stableset/simpleindex"
	"github.com/keyceremony/keyceremony/tuf"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func resetPeak() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peak() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			var kb int64
			fmt.Sscan(string(bytes.TrimSpace(v)), &kb)
			return kb << 10
		}
	}
	return 0
}

func stage(name string, f func() error) {
	resetPeak()
	w0, c0 := time.Now(), cpuNow()
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "gotufbaseline: %s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("| %-40s | %8.2f s | %8.2f s | %7d MiB |\n", "go-tuf v2 baseline: "+name, time.Since(w0).Seconds(), (cpuNow() - c0).Seconds(), peak()>>20)
}

type target struct {
	path   string
	length int64
	sha256 [32]byte
}

func main() {
	exp := flag.String("export", "", "the export to read")
	out := flag.String("out", "", "output directory (must not exist; removed at the end)")
	flag.Parse()
	if *exp == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: gotufbaseline -export FILE -out DIR")
		os.Exit(2)
	}
	if err := os.Mkdir(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(*out)

	var (
		targets  []target
		projects = map[string][]simpleindex.PageFile{}
	)
	stage("parse, policy", func() error {
		f, err := os.Open(*exp)
		if err != nil {
			return err
		}
		defer f.Close()
		x, err := export.NewReader(bufio.NewReaderSize(f, 1<<20), *exp)
		if err != nil {
			return err
		}
		eligible := stableset.PolicyEligible(policy.Default())
		at := x.Header().Generated
		for {
			r, err := x.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if ok, _ := eligible(r, at); !ok {
				continue
			}
			targets = append(targets, target{r.Path, r.Length, r.SHA256})
			pf, err := simpleindex.NewPageFile(r, "")
			if err != nil {
				return err
			}
			projects[r.Project] = append(projects[r.Project], pf)
		}
	})
	stage("index pages", func() error {
		for p, files := range projects {
			html, js, err := simpleindex.RenderProjectPages(p, files)
			if err != nil {
				return err
			}
			hp, jp := simpleindex.PagePaths(p)
			targets = append(targets, target{hp, int64(len(html)), sha256.Sum256(html)}, target{jp, int64(len(js)), sha256.Sum256(js)})
		}
		projects = nil
		return nil
	})

	layout, _ := tuf.NewBinLayout("stable", tuf.BinBitsFor(int64(len(targets)), 640))
	bins := make([]*metadata.Metadata[metadata.TargetsType], layout.NumBins())
	expires := time.Now().Add(120 * 24 * time.Hour).UTC().Truncate(time.Second)
	stage("build go-tuf bins", func() error {
		for i := range bins {
			bins[i] = metadata.Targets(expires)
		}
		for _, t := range targets {
			b := bins[layout.BinOf(t.path)]
			b.Signed.Targets[t.path] = &metadata.TargetFiles{Length: t.length, Hashes: metadata.Hashes{"sha256": t.sha256[:]}, Path: t.path}
		}
		targets = nil
		return nil
	})
	stage("sign, serialise, write, sync", func() error {
		// The pipeline's ceremony key type: ECDSA P-256 over SHA-256.
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		signer, err := signature.LoadSigner(priv, crypto.SHA256)
		if err != nil {
			return err
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
			next  = make(chan int)
		)
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					b := bins[i]
					_, err := b.Sign(signer)
					var data []byte
					if err == nil {
						data, err = b.ToBytes(false)
					}
					if err == nil {
						err = os.WriteFile(filepath.Join(*out, fmt.Sprintf("1.%s.json", layout.Name(i))), data, 0o644)
					}
					bins[i] = nil
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
					}
				}
			}()
		}
		for i := range bins {
			next <- i
		}
		close(next)
		wg.Wait()
		syscall.Sync()
		return first
	})
	names, _ := os.ReadDir(*out)
	sort.Slice(names, func(i, j int) bool { return names[i].Name() < names[j].Name() })
	fmt.Fprintf(os.Stderr, "  go-tuf baseline: %d bins written\n", len(names))
}
