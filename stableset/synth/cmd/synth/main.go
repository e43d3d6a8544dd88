// Command synth writes a synthetic PyPI-like repository export to standard
// output, or the next period's export from a previous one.
//
//	go run ./stableset/synth/cmd/synth -files 1000000 -seed 1 > export.jsonl
//	go run ./stableset/synth/cmd/synth -next export.jsonl -new 10000 -changed 2 -backdated 2 > next.jsonl
//	go run ./stableset/synth/cmd/synth -check export.jsonl
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

func main() {
	files := flag.Int64("files", 1000, "number of files (Generate)")
	seed := flag.Uint64("seed", 1, "seed")
	next := flag.String("next", "", "previous export: write the next period's export instead")
	newFiles := flag.Int("new", 10000, "new files (with -next)")
	deleted := flag.Int("deleted", 10, "deleted files (with -next)")
	changed := flag.Int("changed", 1, "changed-hash attacks (with -next)")
	backdated := flag.Int("backdated", 1, "backdated-file attacks (with -next)")
	added := flag.Int("added-to-stable", 0, "new files in releases with stable files (with -next; the added-to-stable-release flag)")
	loss := flag.Int("project-loss", 0, "projects that keep one of their stable files (with -next; the project-loss flag)")
	collision := flag.Int("name-collision", 0, "new files named as another project (with -next; the name-collision flag)")
	yanked := flag.Int("yanked", 0, "stable files now yanked (with -next; the yanked-stable flag)")
	period := flag.Duration("period", 90*24*time.Hour, "time between the exports (with -next)")
	check := flag.String("check", "", "read this export with the strict reader and print its record count, instead")
	flag.Parse()
	if *check != "" {
		if err := checkExport(*check); err != nil {
			fmt.Fprintln(os.Stderr, "synth: error:", err)
			os.Exit(1)
		}
		return
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	var err error
	if *next == "" {
		err = synth.Generate(out, synth.Params{Seed: *seed, Files: *files})
	} else {
		var f *os.File
		if f, err = os.Open(*next); err == nil {
			var inj synth.Injected
			inj, err = synth.Next(f, out, synth.NextParams{Seed: *seed, Period: *period, NewFiles: *newFiles,
				Deletions: *deleted, ChangedHash: *changed, Backdated: *backdated,
				AddedToStable: *added, ProjectLoss: *loss, NameCollision: *collision, Yanked: *yanked})
			f.Close()
			if err == nil {
				for _, p := range inj.Changed {
					fmt.Fprintln(os.Stderr, "changed:", p)
				}
				for _, l := range []struct {
					what string
					list []string
				}{{"backdated", inj.Backdated}, {"added-to-stable-release", inj.AddedToStable}, {"project-loss", inj.ProjectLoss},
					{"name-collision", inj.NameCollision}, {"yanked-stable", inj.Yanked}} {
					for _, p := range l.list {
						fmt.Fprintln(os.Stderr, l.what+":", p)
					}
				}
			}
		}
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "synth: error:", err)
		os.Exit(1)
	}
}

func checkExport(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	x, err := export.NewReader(f, path)
	if err != nil {
		return err
	}
	for {
		if _, err := x.Next(); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	fmt.Println(x.Count())
	return nil
}
