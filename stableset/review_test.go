package stableset

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestTopProjectsBy: the bounded selection of the summary's largest
// projects is the sort of every project, cut to topProjects: largest
// first, ties by name, none with nothing to show.
func TestTopProjectsBy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, topProjects, topProjects + 1, 500} {
		var ps []ProjectSummary
		for i := range n {
			ps = append(ps, ProjectSummary{Project: fmt.Sprintf("p%03d", rng.IntN(n+1)*1000+i), Counts: Counts{Legacy: int64(rng.IntN(4))}})
		}
		key := func(p *ProjectSummary) int64 { return p.Legacy }
		var want []ProjectSummary
		for _, p := range ps {
			if p.Legacy > 0 {
				want = append(want, p)
			}
		}
		slices.SortFunc(want, func(a, b ProjectSummary) int {
			if c := cmp.Compare(b.Legacy, a.Legacy); c != 0 {
				return c
			}
			return strings.Compare(a.Project, b.Project)
		})
		want = want[:min(len(want), topProjects)]
		if got := topProjectsBy(ps, key); !slices.Equal(got, want) {
			t.Errorf("%d projects: got %v, want %v", n, got, want)
		}
	}
}
