package ceremony

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/keyceremony/keyceremony/internal/outdir"
)

// Wrong media in the guided ceremony: a medium given for one role that is
// another (its marker names it), an output medium that already holds a
// ceremony, or a bootstrap's backup medium that already holds a state is
// named on the screen with why, and the room takes it out, inserts the
// right one at the same path and presses Enter; the check runs again.
// Every such check runs before anything is written to any medium. The
// batch form refuses (the error is returned).

// wrongMedium reports whether err, from the check of the medium of role,
// is one the room can put right by inserting another medium.
func wrongMedium(role string, err error) bool {
	switch {
	case errors.Is(err, ErrWrongMedium):
		return true
	case role == RoleOutput:
		return errors.Is(err, ErrOutputExists)
	case role == RoleBackup:
		return errors.Is(err, ErrBackup)
	}
	return false
}

// checkMedium runs check until it passes. Guided, a wrong medium is
// said, recorded (in the journal once it is open) and checked again
// after the room presses Enter; any other error, or any error in the
// batch form (nil g), is returned.
func (g *Guide) checkMedium(role, label, path string, check func() error) error {
	for {
		err := check()
		if err == nil || g == nil || !wrongMedium(role, err) {
			return err
		}
		g.printf("\n  WRONG MEDIUM: the %s medium (%s) cannot be used: %v.\n", label, path, err)
		g.printf("  Take it out and insert the %s medium, mounted at %s.\n", label, path)
		g.note("wrong medium", map[string]any{"medium": label, "path": path, "problem": err.Error()})
		if _, err := g.ask("  Press Enter when the right medium is in (or type abort): "); err != nil {
			return err
		}
	}
}

// note records an entry, or, before the journal is open (the output
// medium is checked before it holds one), keeps it for the journal's
// start.
func (g *Guide) note(step string, detail map[string]any) {
	if g.tr == nil {
		g.early = append(g.early, earlyEntry{step, detail})
		return
	}
	g.record(step, detail)
}

type earlyEntry struct {
	step   string
	detail map[string]any
}

// flushEarly records the entries noted before the journal was open.
func (g *Guide) flushEarly() error {
	for _, e := range g.early {
		if err := g.record(e.step, e.detail); err != nil {
			return err
		}
	}
	g.early = nil
	return nil
}

// checkOutput checks, guided, that dir can become the output medium.
func (g *Guide) checkOutput(dir string) error {
	if g == nil {
		return nil
	}
	return g.checkMedium(RoleOutput, "new output", dir, func() error {
		m, err := refuseMarked(dir, "the output directory", RoleOutput)
		if err == nil && m != nil {
			err = fmt.Errorf("%s already holds %s: %w", dir, m.describe(), ErrOutputExists)
		}
		if err == nil {
			err = outdir.Check(dir)
		}
		return err
	})
}

// checkInputs checks, guided, the stable signing's input media: the
// published directory (the repository's medium, holding an earlier
// ceremony's output), the export's directory and the backup medium.
func (s *StableSigning) checkInputs() error {
	g := s.Guide
	if g == nil {
		return nil
	}
	if err := g.through("media"); err != nil {
		return err
	}
	if err := g.checkMedium(RoleInput, "input", s.Published, func() error {
		_, err := refuseMarked(s.Published, "the published directory", RoleOutput)
		return err
	}); err != nil {
		return err
	}
	dir := filepath.Dir(s.Export)
	if err := g.checkMedium(RoleInput, "input", dir, func() error {
		_, err := refuseMarked(dir, "the export's directory", RoleInput)
		return err
	}); err != nil {
		return err
	}
	return g.checkMedium(RoleBackup, "backup", s.Backup, func() error {
		_, err := refuseMarked(s.Backup, "the backup medium", RoleBackup)
		return err
	})
}

// checkMedia checks, guided, the bootstrap's backup and output media.
func (b *Bootstrap) checkMedia(outDir string) error {
	g := b.Guide
	if g == nil {
		return nil
	}
	if b.Backup != "" {
		if err := g.checkMedium(RoleBackup, "backup", b.Backup, func() error { return CheckNewBackup(b.Backup) }); err != nil {
			return err
		}
	}
	return g.checkOutput(outDir)
}
