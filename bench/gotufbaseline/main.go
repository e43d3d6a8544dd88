// Command gotufbaseline builds and signs the same hashed bins as the
// pipeline with go-tuf v2's metadata API, as the speed baseline of
// `make bench`. It is a separate program so that the keyceremony binary
// never links go-tuf.
//
//	go run ./bench/gotufbaseline -n 1000000
package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	n := flag.Int64("n", 1_000_000, "files")
	flag.Parse()
	dir, err := os.MkdirTemp("", "keyceremony-gotuf-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	exp := filepath.Join(dir, "export.jsonl")
	f, _ := os.Create(exp)
	if err := synth.Generate(f, synth.Params{Seed: 1, Files: *n}); err != nil {
		panic(err)
	}
	f.Close()

	w0, c0 := time.Now(), cpuNow()
	in, _ := os.Open(exp)
	x, err := stableset.NewExportReader(in, exp)
	if err != nil {
		panic(err)
	}
	layout, _ := tuf.NewBinLayout("stable", tuf.BinBitsFor(*n, 640))
	bins := make([]*metadata.Metadata[metadata.TargetsType], layout.NumBins())
	expires := time.Now().Add(120 * 24 * time.Hour)
	for i := range bins {
		bins[i] = metadata.Targets(expires)
	}
	for {
		r, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		b := bins[layout.BinOf(r.Path)]
		h, _ := hex.DecodeString(hex.EncodeToString(r.SHA256[:]))
		b.Signed.Targets[r.Path] = &metadata.TargetFiles{Length: r.Length, Hashes: metadata.Hashes{"sha256": h}, Path: r.Path}
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		panic(err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	for i, b := range bins {
		if _, err := b.Sign(signer); err != nil {
			panic(err)
		}
		data, err := b.ToBytes(false)
		if err != nil {
			panic(err)
		}
		if err := os.WriteFile(filepath.Join(out, layout.Name(i)+".json"), data, 0o644); err != nil {
			panic(err)
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("| %-34s | %8.2f s | %8.2f s | %7d MiB |\n", "go-tuf v2 baseline (parse+bins+sign)", time.Since(w0).Seconds(), (cpuNow() - c0).Seconds(), ru.Maxrss>>10)
}
