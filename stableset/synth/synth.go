// Package synth generates synthetic PyPI-like repository exports, for
// tests, demos and benchmarks.
//
// What it promises: the output is a valid export (format v1, see
// docs/export-format.md), determined entirely by the parameters and seed
// (same parameters, same bytes, for a given Go version); Generate streams
// any number of files in memory proportional to the number of projects
// (about 8 bytes each), never to the number of files. The digests are made
// up, not hashes of real content.
//
// The repository it imitates: projects whose sizes follow a long-tailed
// (Pareto) distribution, about 28 files each on average as on PyPI, with a
// third of them still releasing, names of lowercase letters, digits and
// dashes about as long as real ones,
// releases spread over the project's life since 2005, sdists and wheels
// (pure and binary: manylinux, musllinux, macOS, Windows) with real
// filename shapes, log-normal sizes calibrated on a real PyPI sample, a
// few yanked releases, requires-python specifiers and core-metadata hashes
// for wheels.
package synth

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
)

// Params says what Generate makes.
type Params struct {
	Seed       uint64
	Files      int64     // the number of files, 0 to 1e9
	Repository string    // default "pypi"
	Generated  time.Time // default 2026-11-25T12:00:00Z; truncated to whole seconds
	Start      time.Time // the earliest upload; default 2005-03-01
}

// DefaultGenerated is the Generated time used when Params leaves it zero.
var DefaultGenerated = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var defaultStart = time.Date(2005, 3, 1, 0, 0, 0, 0, time.UTC)

// ErrParams is returned for parameters out of range.
var ErrParams = errors.New("synth: bad parameters")

func (p *Params) fill() error {
	if p.Files < 0 || p.Files > 1e9 {
		return ErrParams
	}
	if p.Repository == "" {
		p.Repository = "pypi"
	}
	if p.Generated.IsZero() {
		p.Generated = DefaultGenerated
	}
	p.Generated = p.Generated.UTC().Truncate(time.Second)
	if p.Start.IsZero() {
		p.Start = defaultStart
	}
	if !p.Start.Before(p.Generated) {
		return ErrParams
	}
	return nil
}

// mix is splitmix64's finaliser: a bijection on uint64 with good avalanche.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// h hashes a seed, a domain and two numbers into 64 random-looking bits.
func h(seed, domain, a, b uint64) uint64 {
	return mix(mix(mix(seed^domain*0x9e3779b97f4a7c15)^a) ^ b*0xd1b54a32d192ed03)
}

// unit maps 64 bits to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// normal returns a standard normal variate from two hashes (Box-Muller).
func normal(x, y uint64) float64 {
	u := unit(x)
	if u == 0 {
		u = 1.0 / (1 << 53)
	}
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*unit(y))
}

// Hash domains.
const (
	dProjectSize = iota + 1
	dProjectStyle
	dProjectTime
	dName
	dPerm
	dB2
	dSHA
	dMeta
	dSize
	dYank
	dVersion
	dNext
	dLegacy
)

// legacyShare is one in how many releases before legacyBefore whose
// sdist has a legacy name (export.Legacy): about 0.1 % of all files, as
// about 0.13 % of real PyPI's files are such sdists.
const (
	legacyShare  = 30
	legacyBefore = 2014
)

// legacyKind returns which legacy name, if any, release r's sdist has:
// 0 none, 1 spaces ("Foo Bar-1.0.tar.gz"), 2 another spelling
// ("pyFoo-1.0.tar.gz"), 3 no version ("foo.tar.gz", the first release
// only, so that no two files share a name), 4 a version that is not
// PEP 440 ("1.0 alpha", sdist-only projects), 5 "foo.1.0.src.tar.gz".
func (p *project) legacyKind(seed uint64, r int64) int {
	x := h(seed, dLegacy, p.id, uint64(r))
	if x%legacyShare != 0 || p.style == styleWheel || p.releaseTime(r).Year() >= legacyBefore {
		return 0
	}
	k := 1 + int(x>>16%5)
	switch {
	case k == 1 && !strings.Contains(p.dist, "-") && !strings.Contains(p.dist, "_"):
		k = 2
	case k == 3 && r != 0:
		k = 5
	case k == 4 && p.style != styleSdist:
		k = 5
	}
	return k
}

// project is everything about a project that Generate derives from its
// index, in O(1).
type project struct {
	id       uint64
	name     string // normalised
	dist     string // the name as its filenames spell it
	files    int64
	perRel   int64 // files per release
	releases int64
	style    int // 0 sdist only, 1 sdist + pure wheel, 2 pure wheel only, 3 binary
	pythons  []string
	start    time.Time
	end      time.Time
	versions int // version scheme
	sizeMu   float64
	reqpy    string
	zip      bool
}

const (
	styleSdist = iota
	stylePure
	styleWheel
	styleBinary
)

// platforms are binary wheels' platform tags, the most common first (as
// often as they are in the real sample): a project builds the first few.
var platforms = []string{
	"win_amd64",
	"musllinux_1_2_x86_64",
	"macosx_11_0_arm64",
	"manylinux_2_17_x86_64.manylinux2014_x86_64",
	"musllinux_1_2_aarch64",
	"manylinux_2_17_aarch64.manylinux2014_aarch64",
	"macosx_14_0_arm64",
	"win_arm64",
	"win32",
	"macosx_10_9_x86_64",
	"manylinux_2_27_x86_64.manylinux_2_28_x86_64",
}

// projectSize draws the number of files of a project: a Pareto tail
// (alpha 0.84, capped at 30,000) on top of a handful. That makes about 28
// files per project on average with a median of 3 or 4, as PyPI's about
// 20.8 million files in about 740,000 projects (August 2026) do.
func projectSize(seed, id uint64) int64 {
	u := unit(h(seed, dProjectSize, id, 0))
	n := math.Pow(1-u, -1/0.84)
	if n > 30000 {
		n = 30000
	}
	return int64(n) + int64(h(seed, dProjectSize, id, 1)%3)
}

func makeProject(seed, id uint64, files int64, gen, start time.Time) *project {
	p := &project{id: id, files: files}
	p.name, p.dist = projectName(seed, id)
	st := h(seed, dProjectStyle, id, 0)
	span := gen.Sub(start)
	// Uploads grow over time: the start's density rises linearly.
	p.start = start.Add(time.Duration(math.Sqrt(unit(h(seed, dProjectTime, id, 0))) * float64(span))).Truncate(time.Second)
	life := gen.Sub(p.start)
	// A third of the projects are still active (their last release within
	// the last month); the others stopped somewhere in their life. That
	// puts about 4 % of the files under 90 days old, as PyPI's 10,000 new
	// files a day against 21 million do.
	if u := unit(h(seed, dProjectTime, id, 2)); u < 1.0/3 {
		p.end = gen.Add(-time.Duration(u * 3 * float64(30*24*time.Hour)))
		if p.end.Before(p.start) {
			p.end = p.start
		}
	} else {
		p.end = p.start.Add(time.Duration((0.2 + 0.8*unit(h(seed, dProjectTime, id, 1))) * float64(life)))
	}
	year := p.start.Year()
	switch r := st % 100; {
	case year < 2013 && r < 60 || r < 8:
		p.style = styleSdist
	case r < 80:
		p.style = stylePure
	case r < 83:
		p.style = styleWheel
	default:
		p.style = styleBinary
	}
	switch p.style {
	case styleSdist, styleWheel:
		p.perRel = 1
	case stylePure:
		p.perRel = 2
	case styleBinary:
		// Python versions current when the project started, a few of them.
		minor := max(6, min(13, year-2012))
		n := 2 + int(st>>8%4)
		for v := minor; v < minor+n && v <= 14; v++ {
			p.pythons = append(p.pythons, "cp3"+strconv.Itoa(v))
		}
		np := 2 + int(st>>16%uint64(len(platforms)-1))
		p.perRel = 1 + int64(len(p.pythons)*np)
	}
	p.perRel = min(p.perRel, max(files, 1))
	p.releases = (files + p.perRel - 1) / p.perRel
	p.versions = int(st >> 24 % 10)
	p.sizeMu = 0.9 * normal(h(seed, dSize, id, 0), h(seed, dSize, id, 1))
	switch {
	case year < 2015 && st>>32%2 == 0:
		p.reqpy = ""
	default:
		p.reqpy = ">=3." + strconv.Itoa(max(6, min(10, p.end.Year()-2014)))
	}
	p.zip = year < 2011 && st>>40%5 == 0
	return p
}

// Name syllables: consonant-vowel pairs from these sets never spell the
// prefixes and suffixes below, which is what keeps names unique.
const (
	consonants = "bdfghklmnprstvz"
	vowels     = "aeiou"
)

var (
	prefixes = []string{"django-", "pytest-", "types-", "flask-", "azure-", "google-cloud-", "sphinx-", "odoo-addon-"}
	suffixes = []string{"-py", "-client", "-sdk", "-utils", "-api", "2", "3", "-cli"}
	// words follow the syllables after a dash, before any suffix. Each
	// holds a letter the syllables never use (c, j, q, w, x or y), none
	// ends another or spells a suffix, and none has a dash or a digit: a
	// name still splits one way only into prefix, syllables, word and
	// suffix, so names stay unique.
	words = []string{"json", "async", "crypto", "toolkit", "schema", "query", "web", "cloud", "extensions", "mypy", "lexer", "widgets", "compat", "proxy", "jupyter", "yaml"}
)

// projectName returns a unique normalised name for id, and the spelling
// its filenames use.
func projectName(seed, id uint64) (name, dist string) {
	// Length class: 3 syllables for the first 75³, 4 for the next 75⁴…
	n, rank := 3, id
	for size := uint64(75 * 75 * 75); rank >= size; size *= 75 {
		rank -= size
		n++
	}
	mod := uint64(1)
	for range n {
		mod *= 75
	}
	// A bijection of [0, 75^n): multiply by a number prime to 75.
	hi, lo := bits.Mul64(rank, 1000003)
	_, x := bits.Div64(hi%mod, lo, mod)
	r := h(seed, dName, id, 0)
	w := h(seed, dName, id, 1)
	b := make([]byte, 0, 48)
	if r%10 == 0 {
		b = append(b, prefixes[r>>8%uint64(len(prefixes))]...)
	}
	dash := -1
	if n >= 3 && r>>16%3 == 0 {
		dash = 1 + int(r>>20%uint64(n-2))
	}
	for k := range n {
		if k == dash {
			b = append(b, '-')
		}
		s := x % 75
		x /= 75
		b = append(b, consonants[s/5], vowels[s%5])
	}
	if w%2 == 0 {
		b = append(b, '-')
		b = append(b, words[w>>8%uint64(len(words))]...)
	}
	if r>>24%8 == 0 {
		b = append(b, suffixes[r>>32%uint64(len(suffixes))]...)
	}
	name = string(b)
	d := []byte(name)
	switch r >> 40 % 10 {
	case 0: // a capitalised display name: Foo-bar
		d[0] -= 'a' - 'A'
	case 1, 2, 3, 4:
		for i, c := range d { // the wheel/PEP 625 spelling
			if c == '-' {
				d[i] = '_'
			}
		}
	}
	return name, string(d)
}

func (p *project) version(seed uint64, r int64) string {
	v := h(seed, dVersion, p.id, 0)
	b := make([]byte, 0, 16)
	switch p.versions {
	case 0: // calendar versions
		t := p.releaseTime(r)
		b = strconv.AppendInt(b, int64(t.Year()), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(t.Month()), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, r, 10)
	case 1: // major.minor
		m := 3 + int64(v%8)
		b = strconv.AppendInt(b, r/m, 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, r%m, 10)
	default: // major.minor.patch
		q := 1 + int64(v%6)
		m := 2 + int64(v>>8%10)
		base := int64(v >> 16 % 2)
		b = strconv.AppendInt(b, base+r/(q*m), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, r/q%m, 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, r%q, 10)
	}
	if p.legacyKind(seed, r) == 4 {
		b = append(b, " alpha"...)
		return string(b)
	}
	switch h(seed, dVersion, p.id, uint64(r)) % 40 {
	case 0:
		b = append(b, "rc1"...)
	case 1:
		b = append(b, "b2"...)
	case 2:
		b = append(b, ".post1"...)
	case 3:
		b = append(b, ".dev0"...)
	}
	return string(b)
}

func (p *project) releaseTime(r int64) time.Time {
	if p.releases <= 1 {
		return p.start
	}
	d := p.end.Sub(p.start)
	return p.start.Add(time.Duration(float64(d) * float64(r) / float64(p.releases-1))).Truncate(time.Second)
}

// filename returns the filename of file f of a release, whether it is a
// wheel, and the log-normal size parameters.
func (p *project) filename(seed uint64, r int64, version string, f int64) (name string, wheel bool, mu, sigma float64) {
	b := make([]byte, 0, 96)
	sdist := f == 0 && p.style != styleWheel
	if sdist {
		switch p.legacyKind(seed, r) {
		case 1:
			d := []byte(p.dist)
			for i, c := range d {
				if c == '-' || c == '_' {
					d[i] = ' '
				}
			}
			if d[0] >= 'a' && d[0] <= 'z' {
				d[0] -= 'a' - 'A'
			}
			return string(d) + "-" + version + ".tar.gz", false, math.Log(100e3), 2.0
		case 2:
			d := []byte(p.dist)
			if d[0] >= 'a' && d[0] <= 'z' {
				d[0] -= 'a' - 'A'
			}
			return "py" + string(d) + "-" + version + ".tar.gz", false, math.Log(100e3), 2.0
		case 3:
			return p.dist + ".tar.gz", false, math.Log(100e3), 2.0
		case 5:
			return p.dist + "." + version + ".src.tar.gz", false, math.Log(100e3), 2.0
		}
		b = append(b, p.dist...)
		b = append(b, '-')
		b = append(b, version...)
		if p.zip {
			b = append(b, ".zip"...)
		} else {
			b = append(b, ".tar.gz"...)
		}
		return string(b), false, math.Log(100e3), 2.0
	}
	for i := 0; i < len(p.dist); i++ {
		c := p.dist[i]
		if c == '-' {
			c = '_'
		}
		b = append(b, c)
	}
	b = append(b, '-')
	b = append(b, version...)
	if p.style != styleBinary {
		if p.start.Year() < 2020 {
			b = append(b, "-py2.py3-none-any.whl"...)
		} else {
			b = append(b, "-py3-none-any.whl"...)
		}
		return string(b), true, math.Log(50e3), 1.8
	}
	w := f - 1
	py := p.pythons[w%int64(len(p.pythons))]
	plat := platforms[w/int64(len(p.pythons))%int64(len(platforms))]
	b = append(b, '-')
	b = append(b, py...)
	b = append(b, '-')
	b = append(b, py...)
	b = append(b, '-')
	b = append(b, plat...)
	b = append(b, ".whl"...)
	return string(b), true, math.Log(1.2e6), 1.7
}

var yankReasons = []string{"", "broken build", "Security issue, upgrade to the next release", "Wrong files uploaded", "Released by mistake; use the previous version"}

// fill sets the fields of rec that depend on the project and the file,
// everything except the path and BLAKE2b-256.
func (p *project) fill(seed uint64, k int64, key uint64, rec *export.Record, gen time.Time) {
	r, f := k/p.perRel, k%p.perRel
	rec.Project = p.name
	rec.Version = p.version(seed, r)
	var mu, sigma float64
	var wheel bool
	rec.Filename, wheel, mu, sigma = p.filename(seed, r, rec.Version, f)
	size := math.Exp(mu + p.sizeMu + sigma*0.9*normal(h(seed, dSize, key, 2), h(seed, dSize, key, 3)))
	rec.Length = int64(min(size, 5e9)) + 200
	put(&rec.SHA256, seed, dSHA, key)
	rec.HasCoreMetadata = wheel
	rec.CoreMetadataSHA256 = [32]byte{}
	if wheel {
		put(&rec.CoreMetadataSHA256, seed, dMeta, key)
	}
	t := p.releaseTime(r).Add(time.Duration(f*37) * time.Second)
	if t.After(gen) {
		t = gen
	}
	rec.UploadTime = t
	y := h(seed, dYank, p.id, uint64(r))
	rec.Yanked = y%200 == 0
	rec.YankedReason = ""
	if rec.Yanked {
		rec.YankedReason = yankReasons[y>>8%uint64(len(yankReasons))]
	}
	rec.RequiresPython = p.reqpy
}

// put fills a digest with made-up bytes.
func put(d *[32]byte, seed, domain, key uint64) {
	for i := range 4 {
		binary.BigEndian.PutUint64(d[8*i:], h(seed, domain, key, uint64(i)))
	}
}

// permutation is a bijection of [0, n) (a Feistel network on the
// smallest even power of two at least n, with cycle walking).
type permutation struct {
	n     uint64
	half  uint
	mask  uint64
	seed  uint64
	round [4]uint64
}

func newPermutation(n, seed uint64) *permutation {
	bitsN := uint(bits.Len64(max(n-1, 1)))
	bitsN += bitsN % 2
	p := &permutation{n: n, half: bitsN / 2, mask: 1<<(bitsN/2) - 1, seed: seed}
	for i := range p.round {
		p.round[i] = h(seed, dPerm, uint64(i), 0)
	}
	return p
}

func (p *permutation) at(i uint64) uint64 {
	for {
		l, r := i>>p.half, i&p.mask
		for _, k := range p.round {
			l, r = r, l^(mix(r^k)&p.mask)
		}
		i = l<<p.half | r
		if i < p.n {
			return i
		}
	}
}

// Generate writes an export of p.Files files to w.
//
// The records come out sorted because BLAKE2b-256 digests are made from
// the output position: the top 64 bits of record i lie in the i-th of
// Files equal slices of [0, 2⁶⁴). Which file sits at position i is chosen
// by a pseudo-random permutation of the files, which are numbered project
// by project, release by release.
func Generate(w io.Writer, p Params) error {
	if err := p.fill(); err != nil {
		return err
	}
	g := newGenerator(p)
	x, err := export.NewWriter(w, export.Header{Repository: p.Repository, Generated: p.Generated})
	if err != nil {
		return err
	}
	var rec export.Record
	for i := range p.Files {
		g.record(uint64(i), &rec)
		if err := x.Write(&rec); err != nil {
			return err
		}
	}
	return x.Close()
}

type generator struct {
	p       Params
	offsets []int64 // offsets[k] is the index of project k's first file
	perm    *permutation
	width   uint64
	cache   *project
}

func newGenerator(p Params) *generator {
	g := &generator{p: p}
	var total int64
	for id := uint64(0); total < p.Files; id++ {
		g.offsets = append(g.offsets, total)
		total += max(1, projectSize(p.Seed, id))
	}
	if p.Files > 0 {
		g.perm = newPermutation(uint64(p.Files), p.Seed)
		g.width = math.MaxUint64 / uint64(p.Files)
	}
	return g
}

func (g *generator) project(id int) *project {
	if g.cache != nil && g.cache.id == uint64(id) {
		return g.cache
	}
	end := g.p.Files
	if id+1 < len(g.offsets) {
		end = g.offsets[id+1]
	}
	g.cache = makeProject(g.p.Seed, uint64(id), end-g.offsets[id], g.p.Generated, g.p.Start)
	return g.cache
}

func (g *generator) record(i uint64, rec *export.Record) {
	j := g.perm.at(i)
	id := sort.Search(len(g.offsets), func(k int) bool { return g.offsets[k] > int64(j) }) - 1
	pr := g.project(id)
	k := int64(j) - g.offsets[id]
	pr.fill(g.p.Seed, k, j, rec, g.p.Generated)
	top := i*g.width + h(g.p.Seed, dB2, j, 0)%g.width
	binary.BigEndian.PutUint64(rec.BLAKE2b256[:8], top)
	for q := 1; q < 4; q++ {
		binary.BigEndian.PutUint64(rec.BLAKE2b256[8*q:], h(g.p.Seed, dB2, j, uint64(q)))
	}
	rec.Path = export.TargetPath(rec.BLAKE2b256, rec.Filename)
}
