package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/internal/chromium"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/templates"
)

// The run sheet is the script of a ceremony (steps.go) printed before the
// ceremony: a self-contained HTML document with a print stylesheet (A4 or
// US Letter, each section on new pages, a table per step with blanks for
// initials and times, a grid for every digest in PGP words) and, on
// request, its PDF printed by headless Chromium.

// Paper sizes of the run sheet.
const (
	PaperA4     = "a4"
	PaperLetter = "letter"
)

// ErrRunSheet is wrapped by a run sheet request that cannot be carried out
// as given.
var ErrRunSheet = hint.New("run sheet not written", "see keyceremony runsheet --help")

// ErrRunSheetExists means an output file exists: a run sheet never
// overwrites one.
var ErrRunSheetExists = hint.New("output file exists", "choose a new file name; keyceremony never overwrites a file")

// RunSheetOptions is a run sheet request by name.
type RunSheetOptions struct {
	// Ceremony is CeremonyBootstrap or CeremonyStable.
	Ceremony string
	// Config is the bootstrap configuration file (for a stable signing:
	// its stable role and keyholders).
	Config string
	// Previous, for a stable signing, is the last ceremony as the backup
	// medium knows it (nil: the room writes the check words it is shown).
	Previous *PreviousCeremony
	// Backup, for a stable signing, is the backup medium: its newest
	// state becomes Previous (ReadBackup checks the whole medium).
	Backup string
	// Out is the HTML file to create; PDF, if not empty, the PDF file.
	// Neither may exist.
	Out, PDF string
	// Paper is PaperA4 (the default when empty) or PaperLetter.
	Paper   string
	Now     time.Time
	Version string
}

// WriteRunSheet builds the script o names from its configuration and
// writes the run sheet. Both files are created only if they do not exist
// (O_EXCL), and either both are written or neither.
func WriteRunSheet(ctx context.Context, o RunSheetOptions) error {
	if o.Out == "" {
		return fmt.Errorf("no HTML file named: %w", ErrRunSheet)
	}
	cfg, err := LoadConfig(o.Config)
	if err != nil {
		return err
	}
	var s *Script
	switch o.Ceremony {
	case CeremonyBootstrap:
		if o.Previous != nil || o.Backup != "" {
			return fmt.Errorf("a bootstrap has no previous ceremony: %w", ErrRunSheet)
		}
		s = BootstrapSteps(cfg)
	case CeremonyStable:
		prev := o.Previous
		if o.Backup != "" {
			if prev != nil {
				return fmt.Errorf("both a backup medium and a previous ceremony given: %w", ErrRunSheet)
			}
			if prev, err = PreviousFromBackup(o.Backup); err != nil {
				return err
			}
			if prev.Repository != cfg.Repository {
				return fmt.Errorf("the backup medium %s is for repository %q, %s names %q: %w", o.Backup, prev.Repository, o.Config, cfg.Repository, ErrBackup)
			}
		}
		s = StableSteps(cfg, prev)
	default:
		return fmt.Errorf("ceremony %q: want %q or %q: %w", o.Ceremony, CeremonyBootstrap, CeremonyStable, ErrRunSheet)
	}
	html, err := RenderRunSheet(s, RunSheetPage{Paper: o.Paper, Now: o.Now, Version: o.Version, ConfigName: filepath.Base(o.Config)})
	if err != nil {
		return err
	}
	// Refuse existing outputs before Chromium runs.
	if o.PDF != "" && filepath.Clean(o.PDF) == filepath.Clean(o.Out) {
		return fmt.Errorf("the HTML and the PDF are both %s: %w", o.Out, ErrRunSheet)
	}
	for _, f := range []string{o.Out, o.PDF} {
		if f == "" {
			continue
		}
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%s: %w", f, ErrRunSheetExists)
		}
	}
	var pdf []byte
	if o.PDF != "" {
		if pdf, err = chromium.PrintPDF(ctx, html); err != nil {
			return fmt.Errorf("printing the run sheet to PDF: %w", err)
		}
	}
	if err := createNew(o.Out, html); err != nil {
		return err
	}
	if o.PDF != "" {
		if err := createNew(o.PDF, pdf); err != nil {
			os.Remove(o.Out) // created above by this call
			return err
		}
	}
	return nil
}

// createNew writes data to a new file name, never replacing one: into a
// hidden temporary file beside it, synced, then linked under its name
// (which fails if the name exists) and the directory synced, so that the
// name appears only with the whole content. Where the file system has no
// hard links (FAT), the file is created with O_EXCL and written in place,
// and removed if the write fails.
func createNew(name string, data []byte) error {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".partial-")
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if err := writeSync(tmp, data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	err = linkFile(tmp.Name(), name)
	switch {
	case err == nil:
		if d, err := os.Open(dir); err == nil {
			err = d.Sync()
			d.Close()
			if err != nil {
				return fmt.Errorf("syncing %s: %w", dir, err)
			}
		}
		return nil
	case errors.Is(err, os.ErrExist):
		return fmt.Errorf("%s: %w", name, ErrRunSheetExists)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w", name, ErrRunSheetExists)
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if err := writeSync(f, data); err != nil {
		os.Remove(name)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// linkFile is os.Link; tests replace it to act as a file system without
// hard links.
var linkFile = os.Link

// writeSync writes data to f, syncs and closes it.
func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RunSheetPage is how a script is printed.
type RunSheetPage struct {
	// Paper is PaperA4 (the default when empty) or PaperLetter.
	Paper string
	// Now is when the sheet is printed; Version the tool's version;
	// ConfigName the configuration's file name.
	Now        time.Time
	Version    string
	ConfigName string
}

// view types: the script as the template prints it.
type (
	sheetView struct {
		Title, Repository, Printed, Version, ConfigName, PageSize, KeyPolicy string
		// Footer is a CSS string (quoted, escaped by cssString).
		Footer         template.CSS
		ExceptionsStep int
		Roles          []ScriptRole
		Previous       *previousView
		Sections       []sectionView
	}
	previousView struct {
		File, Ceremony, Time string
		StableVersion        int64
	}
	sectionView struct {
		Title       string
		First, Last int
		Steps       []stepView
	}
	stepView struct {
		Number    int
		ID, Actor string
		Do, Check string
		Touch     bool
		Compare   []compareView
		Blanks    []blankView
		// SignOff are the initials and time blanks, printed side by
		// side in the step's last row.
		SignOff []string
	}
	compareView struct {
		Label string
		Hex   []string
		// Words are the PGP words, printedWordsPerLine to a row.
		Words [][]string
	}
	blankView struct {
		Label                string
		Tick, Signature, Hex bool
		// Grid holds the cells of a digest blank: each cell's caption
		// (the word's or hex group's number).
		Grid [][]string
	}
)

// wordsPerLine is how many PGP words a row of a blank holds, and
// printedWordsPerLine how many a row of a printed digest holds (in large
// type).
const (
	wordsPerLine        = 8
	printedWordsPerLine = 4
)

// RenderRunSheet prints s as a self-contained HTML document.
func RenderRunSheet(s *Script, p RunSheetPage) ([]byte, error) {
	size := "A4"
	switch p.Paper {
	case "", PaperA4:
	case PaperLetter:
		size = "letter"
	default:
		return nil, fmt.Errorf("paper %q: want %q or %q: %w", p.Paper, PaperA4, PaperLetter, ErrRunSheet)
	}
	t, err := template.New("runsheet").Parse(string(templates.MustRead("runsheet.html")))
	if err != nil {
		return nil, fmt.Errorf("run sheet template: %w", err)
	}
	title := map[string]string{CeremonyBootstrap: "bootstrap ceremony", CeremonyStable: "stable signing ceremony"}[s.Ceremony]
	v := sheetView{
		Title: title, Repository: s.Repository, Printed: p.Now.UTC().Format(time.RFC3339), Version: p.Version, ConfigName: p.ConfigName,
		PageSize: size, Footer: cssString(fmt.Sprintf("keyceremony run sheet: %s, %s", title, s.Repository)),
		KeyPolicy: fmt.Sprintf("%s, PIN %s, touch %s", s.KeyPolicy.Algorithm, s.KeyPolicy.PINPolicy, s.KeyPolicy.TouchPolicy),
		Roles:     s.Roles,
	}
	if ex, ok := s.Step("exceptions"); ok {
		v.ExceptionsStep = ex.Number
	}
	if pr := s.Previous; pr != nil {
		v.Previous = &previousView{File: pr.File, Ceremony: pr.Ceremony, Time: pr.Time.UTC().Format(time.RFC3339), StableVersion: pr.StableVersion}
	}
	for _, sec := range s.Sections {
		sv := sectionView{Title: sec.Title}
		for _, st := range sec.Steps {
			if sv.First == 0 {
				sv.First = st.Number
			}
			sv.Last = st.Number
			sv.Steps = append(sv.Steps, viewStep(st))
		}
		v.Sections = append(v.Sections, sv)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("run sheet: %w", err)
	}
	return buf.Bytes(), nil
}

func viewStep(st Step) stepView {
	v := stepView{Number: st.Number, ID: st.ID, Actor: st.Actor.String(), Do: st.Do, Check: st.Check, Touch: st.Touch}
	for _, c := range st.Compare {
		words := keys.PGPWords(c.Digest)
		cv := compareView{Label: c.Label, Hex: strings.Split(keys.HexGroups(c.Digest), "\n")}
		for i := 0; i < len(words); i += printedWordsPerLine {
			cv.Words = append(cv.Words, words[i:min(i+printedWordsPerLine, len(words))])
		}
		v.Compare = append(v.Compare, cv)
	}
	for _, b := range st.Blanks {
		bv := blankView{Label: b.Label}
		switch b.Kind {
		case BlankInitials, BlankTime:
			v.SignOff = append(v.SignOff, b.Label)
			continue
		case BlankTick:
			bv.Tick = true
		case BlankSignature:
			bv.Signature = true
		case BlankWords:
			bv.Grid = grid(b.Bytes, "")
		case BlankHex:
			// Groups of four hex digits: two bytes a cell.
			bv.Hex, bv.Grid = true, grid((b.Bytes+1)/2, "hex ")
		}
		v.Blanks = append(v.Blanks, bv)
	}
	return v
}

// grid lays n numbered cells out wordsPerLine to a row.
func grid(n int, prefix string) [][]string {
	var rows [][]string
	for i := 0; i < n; i += wordsPerLine {
		var row []string
		for j := i; j < min(i+wordsPerLine, n); j++ {
			row = append(row, prefix+strconv.Itoa(j+1))
		}
		rows = append(rows, row)
	}
	return rows
}

// cssString quotes s as a CSS string, every character but letters,
// digits, space and ",:.-" written as a CSS escape, so that no
// configuration value can end the string or the style sheet.
func cssString(s string) template.CSS {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(" ,:.-", r):
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "\\%06x", r)
		}
	}
	b.WriteByte('"')
	return template.CSS(b.String())
}
