package ceremony

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/internal/chromium"
	"github.com/keyceremony/keyceremony/keys"
)

var updateRunSheet = flag.Bool("update-runsheet", false, "rewrite the run sheet golden files under testdata")

const runSheetConfig = "testdata/runsheet-config.json"

var runSheetTime = time.Date(2027, 3, 1, 9, 30, 0, 0, time.UTC)

func loadRunSheetConfig(t *testing.T) *Config {
	t.Helper()
	c, err := LoadConfig(runSheetConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testPrevious is a last ceremony as a backup medium would describe it.
func testPrevious() *PreviousCeremony {
	return &PreviousCeremony{
		File: "backup/3.state.json", Ceremony: "stable", StableVersion: 3, Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		StateSHA256: sha256.Sum256([]byte("state 3")), TranscriptSHA256: sha256.Sum256([]byte("transcript 3")),
	}
}

// checkScript holds what every script must be: steps numbered 1..n in
// order, IDs unique, each step with someone acting and something done.
func checkScript(t *testing.T, s *Script) map[string]Step {
	t.Helper()
	byID := map[string]Step{}
	for i, st := range s.Steps() {
		if st.Number != i+1 {
			t.Fatalf("step %d (%s) is numbered %d", i+1, st.ID, st.Number)
		}
		if _, dup := byID[st.ID]; dup {
			t.Fatalf("two steps %s", st.ID)
		}
		if st.Actor.Kind == "" || st.Do == "" {
			t.Fatalf("step %d (%s): no actor or nothing done", st.Number, st.ID)
		}
		byID[st.ID] = st
	}
	for _, sec := range s.Sections {
		if len(sec.Steps) == 0 {
			t.Fatalf("section %q has no step", sec.Title)
		}
	}
	return byID
}

func TestBootstrapSteps(t *testing.T) {
	c := loadRunSheetConfig(t)
	s := BootstrapSteps(c)
	byID := checkScript(t, s)
	// The air gap, the clock and the binary come first, in that order.
	for i, id := range []string{"airgap", "clock", "binary"} {
		if st := byID[id]; st.Number != i+1 {
			t.Errorf("%s is step %d, want %d", id, st.Number, i+1)
		}
	}
	// Every device out of its bag, through the pre-flight and back; every
	// key generated and used to sign, by its keyholder, before the
	// self-check; pre-flight before the first generation.
	firstGen := len(s.Steps())
	for _, serial := range c.Devices() {
		for _, prefix := range []string{"device/", "preflight/", "return/"} {
			st, ok := byID[fmt.Sprintf("%s%d", prefix, serial)]
			if !ok || st.Actor.Kind != ActorKeyholder || st.Actor.Device != serial || st.Actor.Name != c.Keyholder(serial) {
				t.Errorf("%s%d: %+v", prefix, serial, st)
			}
		}
	}
	for _, r := range []struct {
		name string
		spec RoleSpec
	}{{"root", c.Root}, {"targets", c.Targets}, {"stable", c.Stable}} {
		for _, k := range r.spec.Keys {
			gen, ok1 := byID[fmt.Sprintf("generate/%s/%d", r.name, k.Device)]
			sign, ok2 := byID[fmt.Sprintf("sign/%s/%d", r.name, k.Device)]
			if !ok1 || !ok2 || gen.Slot != k.Slot || sign.Slot != k.Slot || gen.Role != r.name || sign.Role != r.name || gen.Actor.Name != c.Keyholder(k.Device) {
				t.Fatalf("%s key on %d: generate %+v sign %+v", r.name, k.Device, gen, sign)
			}
			if !sign.Touch {
				t.Errorf("sign/%s/%d: touch policy always, no touch", r.name, k.Device)
			}
			firstGen = min(firstGen, gen.Number)
			if gen.Number > sign.Number || sign.Number > byID["selfcheck"].Number {
				t.Errorf("%s key on %d generated at %d, signs at %d, self-check at %d", r.name, k.Device, gen.Number, sign.Number, byID["selfcheck"].Number)
			}
			if !hasBlank(gen, BlankWords, KeyIDCheckBytes) {
				t.Errorf("generate/%s/%d has no blank for the key id's words", r.name, k.Device)
			}
		}
	}
	for _, serial := range c.Devices() {
		if p := byID[fmt.Sprintf("preflight/%d", serial)]; p.Number > firstGen {
			t.Errorf("pre-flight of %d (step %d) after the first key generation (step %d)", serial, p.Number, firstGen)
		}
	}
	if n := len(c.Root.Keys) + len(c.Targets.Keys) + len(c.Stable.Keys); countPrefix(s, "generate/") != n || countPrefix(s, "sign/") != n {
		t.Errorf("want %d generations and signatures, got %d and %d", n, countPrefix(s, "generate/"), countPrefix(s, "sign/"))
	}
	for _, id := range []string{"readback", "transcript", "backup"} {
		if !hasBlank(byID[id], BlankWords, 32) {
			t.Errorf("%s: no room for 32 PGP words", id)
		}
	}
	if !hasBlank(byID["binary"], BlankHex, 32) {
		t.Error("binary: no room for its sha256")
	}
	sigs := byID["signatures"]
	if sigs.Number != len(s.Steps()) || len(blanksOf(sigs, BlankSignature)) != 1+len(c.Devices())+3 {
		t.Errorf("signatures: step %d of %d, %d signatures", sigs.Number, len(s.Steps()), len(blanksOf(sigs, BlankSignature)))
	}

	// Without a touch policy, no step asks for a touch; without
	// keyholders, the steps name the device.
	c.KeyPolicy.TouchPolicy, c.Keyholders = "never", nil
	for _, st := range BootstrapSteps(c).Steps() {
		if st.Touch || strings.Contains(st.Do, "Touch") {
			t.Errorf("touch policy never, step %d asks for a touch", st.Number)
		}
		if st.Actor.Kind == ActorKeyholder && st.Actor.String() != fmt.Sprintf("keyholder of device %d", st.Actor.Device) {
			t.Errorf("step %d: %q", st.Number, st.Actor)
		}
	}
}

func TestStableSteps(t *testing.T) {
	c := loadRunSheetConfig(t)
	for _, prev := range []*PreviousCeremony{nil, testPrevious()} {
		s := StableSteps(c, prev)
		byID := checkScript(t, s)
		if len(s.Roles) != 1 || s.Roles[0].Name != "stable" {
			t.Fatalf("roles %+v", s.Roles)
		}
		// Only the stable keyholders sign, each once, after the digest
		// is read aloud; the digest after the diff and the backup check.
		if countPrefix(s, "sign/") != len(c.Stable.Keys) || countPrefix(s, "generate/") != 0 || countPrefix(s, "preflight/") != 0 {
			t.Fatalf("stable signing steps: %d signatures", countPrefix(s, "sign/"))
		}
		for _, k := range c.Stable.Keys {
			st := byID[fmt.Sprintf("sign/stable/%d", k.Device)]
			if st.Actor.Name != c.Keyholder(k.Device) || st.Slot != k.Slot || st.Role != "stable" || st.Number < byID["digest"].Number || !st.Touch {
				t.Errorf("sign/stable/%d: %+v", k.Device, st)
			}
		}
		if !(byID["backup-check"].Number < byID["diff"].Number && byID["diff"].Number < byID["digest"].Number) {
			t.Error("backup check, diff and digest out of order")
		}
		if !hasBlank(byID["digest"], BlankWords, 32) {
			t.Error("digest: no room for its 32 PGP words")
		}
		// The read-back step is the one whose screen shows the
		// SHA256SUMS digest (written last, after the read-back).
		if rb := byID["readback"]; !hasBlank(rb, BlankWords, 32) || !strings.Contains(rb.Blanks[0].Label, SumsFile) {
			t.Errorf("readback: no room for the %s digest's 32 PGP words: %+v", SumsFile, rb.Blanks)
		}
		bc := byID["backup-check"]
		if prev == nil {
			if len(bc.Compare) != 0 || !hasBlank(bc, BlankWords, 32) {
				t.Errorf("without a previous state: %+v", bc)
			}
			continue
		}
		if len(bc.Compare) != 2 || !bytes.Equal(bc.Compare[0].Digest, prev.StateSHA256[:]) || !bytes.Equal(bc.Compare[1].Digest, prev.TranscriptSHA256[:]) {
			t.Errorf("backup check compares %+v", bc.Compare)
		}
		if !strings.Contains(byID["clock"].Check, "2026-12-01T10:00:00Z") {
			t.Errorf("clock step does not name the last ceremony's time: %q", byID["clock"].Check)
		}
	}
}

func countPrefix(s *Script, prefix string) int {
	n := 0
	for _, st := range s.Steps() {
		if strings.HasPrefix(st.ID, prefix) {
			n++
		}
	}
	return n
}

func blanksOf(st Step, kind BlankKind) []Blank {
	var out []Blank
	for _, b := range st.Blanks {
		if b.Kind == kind {
			out = append(out, b)
		}
	}
	return out
}

func hasBlank(st Step, kind BlankKind, bytes int) bool {
	for _, b := range blanksOf(st, kind) {
		if b.Bytes == bytes {
			return true
		}
	}
	return false
}

// TestRunSheetGolden renders both run sheets of a fixed configuration at
// a fixed time and compares them with testdata (regenerate with
// -update-runsheet, then read the diff).
func TestRunSheetGolden(t *testing.T) {
	c := loadRunSheetConfig(t)
	page := RunSheetPage{Now: runSheetTime, Version: "v0.0.0-test", ConfigName: "bootstrap.json"}
	for name, s := range map[string]*Script{
		"runsheet-bootstrap.html": BootstrapSteps(c),
		"runsheet-stable.html":    StableSteps(c, testPrevious()),
	} {
		got, err := RenderRunSheet(s, page)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", name)
		if *updateRunSheet {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file (rerun with -update-runsheet and read the diff)", name)
		}
	}
}

// The HTML escapes what the configuration says and prints what the step
// model holds.
func TestRunSheetHTML(t *testing.T) {
	c := loadRunSheetConfig(t)
	prev := testPrevious()
	s := StableSteps(c, prev)
	h, err := RenderRunSheet(s, RunSheetPage{Now: runSheetTime, Paper: PaperLetter})
	if err != nil {
		t.Fatal(err)
	}
	html := string(h)
	for _, want := range []string{
		"size: letter;", "Bob &lt;Example&gt; &amp; Co", "Printed 2027-03-01T09:30:00Z",
		// The footer, a CSS string.
		`content: "keyceremony run sheet: stable signing ceremony, pypi";`,
		"<td>" + strings.Join(keys.PGPWords(prev.StateSHA256[:4]), "</td><td>") + "</td>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("run sheet lacks %q", want)
		}
	}
	if strings.Contains(html, "Bob <Example>") || strings.Contains(html, "ZgotmplZ") {
		t.Error("unescaped or refused value in the run sheet")
	}
	for _, st := range s.Steps() {
		if !strings.Contains(html, fmt.Sprintf(`<th class="num">%d</th>`, st.Number)) {
			t.Errorf("step %d not printed", st.Number)
		}
	}
	if got := string(cssString(`a"b\c</style>`)); got != `"a\000022b\00005cc\00003c\00002fstyle\00003e"` {
		t.Errorf("cssString: %s", got)
	}
	// A repository name that tries to end the style sheet or the page.
	s.Repository = `x"; } </style><script>alert(1)</script>`
	h, err = RenderRunSheet(s, RunSheetPage{Now: runSheetTime})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(h, []byte("<script")) || bytes.Count(h, []byte("</style>")) != 1 {
		t.Errorf("the repository name escaped its context:\n%s", h[:min(len(h), 2000)])
	}
	if _, err := RenderRunSheet(s, RunSheetPage{Paper: "a3"}); !errors.Is(err, ErrRunSheet) {
		t.Errorf("paper a3: %v", err)
	}
}

// WriteRunSheet never overwrites, and leaves nothing when it fails.
func TestWriteRunSheetRefusals(t *testing.T) {
	dir := t.TempDir()
	out, pdf := filepath.Join(dir, "sheet.html"), filepath.Join(dir, "sheet.pdf")
	opts := RunSheetOptions{Ceremony: CeremonyBootstrap, Config: runSheetConfig, Out: out, Now: runSheetTime}
	if err := WriteRunSheet(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(out)
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("run sheet mode: %v %v", st.Mode(), err)
	}
	opts.Ceremony = CeremonyStable
	if err := WriteRunSheet(context.Background(), opts); !errors.Is(err, ErrRunSheetExists) {
		t.Fatalf("existing HTML: %v", err)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, first) {
		t.Fatal("the existing run sheet was changed")
	}
	// The file appears whole and nothing else is left beside it: the
	// temporary file is gone; the HTML and the PDF cannot be one file.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "sheet.html" {
		t.Fatalf("beside the run sheet: %v", ents)
	}
	opts.Out, opts.PDF = filepath.Join(dir, "same.html"), filepath.Join(dir, ".", "same.html")
	if err := WriteRunSheet(context.Background(), opts); !errors.Is(err, ErrRunSheet) {
		t.Fatalf("HTML and PDF the same file: %v", err)
	}
	// No chromium: no PDF and no HTML either.
	t.Setenv("PATH", t.TempDir())
	opts.Out, opts.PDF = filepath.Join(dir, "new.html"), pdf
	if err := WriteRunSheet(context.Background(), opts); !errors.Is(err, chromium.ErrNotFound) {
		t.Fatalf("without chromium: %v", err)
	}
	for _, f := range []string{opts.Out, pdf} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s written by a failed run", f)
		}
	}
	// An existing PDF is refused before anything is written.
	if err := os.WriteFile(pdf, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteRunSheet(context.Background(), opts); !errors.Is(err, ErrRunSheetExists) {
		t.Fatalf("existing PDF: %v", err)
	}
	if _, err := os.Lstat(opts.Out); err == nil {
		t.Error("HTML written beside a refused PDF")
	}
	// A bad configuration names its field; a bootstrap has no previous
	// ceremony.
	bad := filepath.Join(dir, "bad.json")
	cfg, _ := os.ReadFile(runSheetConfig)
	os.WriteFile(bad, bytes.Replace(cfg, []byte(`"10000003": "Carol Example"`), []byte(`"10000004": "Carol Example"`), 1), 0o644)
	opts = RunSheetOptions{Ceremony: CeremonyBootstrap, Config: bad, Out: filepath.Join(dir, "b.html")}
	var ce *ConfigError
	if err := WriteRunSheet(context.Background(), opts); !errors.As(err, &ce) || ce.Field != "keyholders.10000004" {
		t.Fatalf("bad configuration: %v", err)
	}
	opts.Config, opts.Previous = runSheetConfig, testPrevious()
	if err := WriteRunSheet(context.Background(), opts); !errors.Is(err, ErrRunSheet) {
		t.Fatalf("bootstrap with a previous ceremony: %v", err)
	}
	if _, err := os.Lstat(opts.Out); err == nil {
		t.Error("refused run sheet written")
	}
}

// The runbooks' tables of run sheet sections give the step numbers for
// the README's layout (the configuration in testdata): they must be the
// numbers the run sheet prints.
func TestRunbooksNumberSteps(t *testing.T) {
	c := loadRunSheetConfig(t)
	row := regexp.MustCompile(`(?m)^\| (\d+)–(\d+) \| ([^|]+) \|`)
	for doc, s := range map[string]*Script{
		"../docs/runbook-bootstrap.md": BootstrapSteps(c),
		"../docs/runbook-stable.md":    StableSteps(c, nil),
	} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rows := row.FindAllStringSubmatch(string(b), -1)
		if len(rows) != len(s.Sections) {
			t.Fatalf("%s: %d section rows, the run sheet has %d sections", doc, len(rows), len(s.Sections))
		}
		for i, sec := range s.Sections {
			want := fmt.Sprintf("%d–%d %s", sec.Steps[0].Number, sec.Steps[len(sec.Steps)-1].Number, sec.Title)
			if got := rows[i][1] + "–" + rows[i][2] + " " + strings.TrimSpace(rows[i][3]); !strings.HasPrefix(want, got) {
				t.Errorf("%s: %q, the run sheet prints %q", doc, got, want)
			}
		}
	}
}

// On a file system without hard links (FAT: link fails with EPERM) the
// file is created in place with O_EXCL, still never replacing one.
func TestCreateNewWithoutLinks(t *testing.T) {
	defer func(l func(string, string) error) { linkFile = l }(linkFile)
	linkFile = func(old, new string) error { return &os.LinkError{Op: "link", Old: old, New: new, Err: syscall.EPERM} }
	dir := t.TempDir()
	name := filepath.Join(dir, "sheet.html")
	if err := createNew(name, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := createNew(name, []byte("two")); !errors.Is(err, ErrRunSheetExists) {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "one" {
		t.Fatalf("content %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left beside it: %v", ents)
	}
}
