package stableset

import (
	"errors"
	"strings"
	"testing"
)

const canonHeader = "keyceremony-stable-diff 4\nrepository demo\nlisting-time 2026-11-25T12:00:00Z\nprevious-stable-version 0\nprevious-ledger-sha256 -\nstable-version 2\npolicy-sha256 " + zeros + "\ntarget-mode files+pages\nnaming pep458\ndecisions 0\n"

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

const canonDecided = "keyceremony-stable-diff 4\nrepository demo\nlisting-time 2026-11-25T12:00:00Z\nprevious-stable-version 0\nprevious-ledger-sha256 -\nstable-version 2\npolicy-sha256 " + zeros + "\ntarget-mode files+pages\nnaming pep458\ndecisions 2\n" +
	"limit\tadded\t2\tconfirm\tfirst ceremony\npath\ta\t-\tkeep-old\tan attack\n"

func TestCanonicalDigestRefusals(t *testing.T) {
	// Entries come sorted by path.
	ok := canonHeader + "added\t-\ta\tp\t-\t-\t1\t00\nadded\t-\tb\tp\t-\t-\t1\t00\n"
	if _, err := CanonicalDigest(strings.NewReader(ok)); err != nil {
		t.Fatalf("canonical order refused: %v", err)
	}
	for name, in := range map[string]string{
		"short header":           "keyceremony-stable-diff 4\n",
		"version 3":              strings.Replace(strings.Replace(canonHeader, "diff 4", "diff 3", 1), "target-mode files+pages\nnaming pep458\n", "", 1),
		"no target mode":         strings.Replace(canonHeader, "target-mode files+pages\n", "", 1),
		"unknown target mode":    strings.Replace(canonHeader, "target-mode files+pages", "target-mode files", 1),
		"unknown naming":         strings.Replace(canonHeader, "naming pep458", "naming pypi", 1),
		"out of order":           canonHeader + "added\t-\tb\tp\t-\t-\t1\t00\nadded\t-\ta\tp\t-\t-\t1\t00\n",
		"version 2":              strings.Replace(canonHeader, "diff 4", "diff 2", 1),
		"no decisions":           strings.Replace(canonHeader, "decisions 0\n", "", 1),
		"decisions 01":           strings.Replace(canonHeader, "decisions 0\n", "decisions 00\n", 1),
		"missing decision line":  strings.Replace(canonDecided, "decisions 2", "decisions 3", 1),
		"decisions out of order": strings.Replace(canonDecided, "limit\tadded\t2\tconfirm\tfirst ceremony\npath\ta\t-\tkeep-old\tan attack\n", "path\ta\t-\tkeep-old\tan attack\nlimit\tadded\t2\tconfirm\tfirst ceremony\n", 1),
		"bad decision":           strings.Replace(canonDecided, "keep-old", "keep", 1),
		"misnamed key":           strings.Replace(canonHeader, "policy-sha256", "policy", 1),
		"duplicate":              canonHeader + "added\t-\ta\tp\t-\t-\t1\t00\nadded\t-\ta\tp\t-\t-\t1\t00\n",
		"too few fields":         canonHeader + "added\t-\n",
		"empty":                  "",
	} {
		if _, err := CanonicalDigest(strings.NewReader(in)); !errors.Is(err, ErrCanonicalDiff) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// The decisions are read and counted; the entries counted by
	// category and reason.
	c, err := ParseCanonical(strings.NewReader(canonDecided + "added\t-\tpackages/a\tp\t-\t-\t1\t00\nheld\ttoo-young\tpackages/b\tp\t-\t-\t1\t00\npage-added\t-\tsimple/p/index.html\tp\t-\t-\t1\t00\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Decisions) != 2 || c.Decisions[1].Reason != "an attack" || c.Header["policy-sha256"] != zeros || c.Pages[PageAdded] != 1 ||
		len(c.Reasons) != 2 || c.Reasons[1] != (ReasonCount{Category: Held, Reason: "too-young", Count: 1}) {
		t.Errorf("parsed %+v", c)
	}
	// The digest depends on every line.
	d1, _ := CanonicalDigest(strings.NewReader(ok))
	d2, _ := CanonicalDigest(strings.NewReader(strings.Replace(ok, "\t1\t00\n", "\t2\t00\n", 1)))
	if d1 == d2 {
		t.Fatal("an edited line kept the digest")
	}
	// The target mode and the naming are bound into the digest.
	for _, edit := range [][2]string{{"target-mode files+pages", "target-mode pages"}, {"naming pep458", "naming warehouse"}} {
		c, err := ParseCanonical(strings.NewReader(strings.Replace(ok, edit[0], edit[1], 1)))
		if err != nil {
			t.Fatalf("%s: %v", edit[1], err)
		}
		if c.Digest == d1 || c.Header[strings.Fields(edit[1])[0]] != strings.Fields(edit[1])[1] {
			t.Errorf("%s: digest %s header %v", edit[1], c.Digest, c.Header)
		}
	}
}

func FuzzCanonicalDigest(f *testing.F) {
	f.Add([]byte(canonHeader + "added\t-\tb\tp\t-\t-\t1\t00\n"))
	f.Add([]byte(canonDecided + "added\t-\tb\tp\t-\t-\t1\t00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := CanonicalDigest(strings.NewReader(string(b)))
		if err == nil && len(d) != 64 {
			t.Fatalf("digest %q", d)
		}
	})
}
