package ceremony

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/keyceremony/keyceremony/internal/progress"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/export"
)

// ErrNoScript: a guided stable signing was started without the
// configuration that names its keyholders and devices.
var ErrNoScript = errors.New("a guided stable signing needs the bootstrap configuration (--config): it names the keyholders and their devices")

// opening runs the stable signing's opening steps (guided), or records
// the batch form's network check.
func (s *StableSigning) opening(tr *Transcript) error {
	g := s.Guide
	if g == nil {
		return recordAirgap(tr, s.Airgap)
	}
	if g.Script == nil {
		return ErrNoScript
	}
	return g.open(tr, s.dated())
}

// dated is what the clock must not be earlier than: the export's
// generation time and the newest published metadata file.
func (s *StableSigning) dated() []Dated {
	var out []Dated
	if f, err := os.Open(s.Export); err == nil {
		if x, err := export.NewReader(f, s.Export); err == nil {
			out = append(out, Dated{What: "the export's generation time", Time: x.Header().Generated})
		}
		f.Close()
	}
	var newest Dated
	md := filepath.Join(s.Published, "metadata")
	filepath.WalkDir(md, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(newest.Time) {
			newest = Dated{What: "the newest published metadata file, " + p, Time: fi.ModTime()}
		}
		return nil
	})
	return append(out, newest)
}

// exportPass, guided, has each stable keyholder's device inserted (or
// the keyholder declared absent) and presents the input steps; guided or
// not, it reports the pass over the export by bytes read.
func (s *StableSigning) exportPass(f *os.File, r io.Reader) io.Reader {
	if g := s.Guide; g != nil {
		if err := g.stableDevices(&session{devices: s.Devices, guide: g, optional: true}); err != nil {
			return errReader{err}
		}
		if err := g.through("trusted-root"); err != nil {
			return errReader{err}
		}
		if err := g.through("diff"); err != nil {
			return errReader{err}
		}
	}
	var total int64
	if fi, err := f.Stat(); err == nil {
		total = fi.Size()
	}
	if s.bar = s.newBar("reading the export", total, "bytes"); s.bar == nil {
		return r
	}
	return &progress.Reader{R: r, Bar: s.bar}
}

// newBar starts a progress report: redrawn on the guide's terminal,
// plain lines on Show in the batch form, none without either.
func (s *StableSigning) newBar(label string, total int64, unit string) *progress.Bar {
	switch {
	case s.Guide != nil:
		return s.Guide.bar(label, total, unit)
	case s.Show != nil:
		return progress.New(s.Show, "     "+label, total, progress.Options{Unit: unit})
	}
	return nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// endProgress ends the progress report running, if any.
func (s *StableSigning) endProgress() {
	if s.bar == nil {
		return
	}
	s.bar.Done()
	s.bar = nil
}

// binProgress reports the leaf bins signed.
func (s *StableSigning) binProgress() func(done, total int64) {
	if s.Guide == nil && s.Show == nil {
		return nil
	}
	// Called from several goroutines, not necessarily in order: the
	// bar ends, on its own line, when the last bin is done.
	var mu sync.Mutex
	var max int64
	ended := false
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if ended || done <= max {
			return
		}
		max = done
		if s.bar == nil {
			s.bar = s.newBar("signing the bins", total, "bins")
		}
		s.bar.Set(done)
		if done >= total {
			s.endProgress()
			ended = true
		}
	}
}

// review shows the diff's summary and its digest, and returns the
// approval: with a guide and no approval given, the keyholders approve
// on the screen (each types the check words before their PIN; the first
// accepted is recorded as "diff approved", recordApproval). resumed
// (the room approved this diff digest in an interrupted run, resume.go):
// the review's steps are recorded as done then, not presented again.
func (g *Guide) review(d *stableset.Diff, approve string, resumed bool) (string, error) {
	if g == nil {
		return approve, nil
	}
	sum, err := hex.DecodeString(d.Digest)
	if err != nil {
		return "", fmt.Errorf("diff digest: %w", err)
	}
	if resumed {
		if err := g.skipThrough("digest", "reviewed in the interrupted run"); err != nil {
			return "", err
		}
		g.showDigest(fmt.Sprintf("diff digest of stable v%d, approved in the interrupted run (unchanged):", d.Header.StableVersion), sum)
	} else {
		g.printf("\n")
		if err := d.WriteText(g.Out); err != nil {
			return "", err
		}
		if err := g.through("digest"); err != nil {
			return "", err
		}
		g.showDigest(fmt.Sprintf("diff digest of stable v%d (read it aloud as PGP words):", d.Header.StableVersion), sum)
	}
	approved := false // "diff approved" recorded
	g.pinStep = func(serial uint32) error {
		if err := g.through(fmt.Sprintf("sign/stable/%d", serial)); err != nil {
			return err
		}
		c := d.Summary
		g.printf("  You sign: stable v%d of %s\n    %d added, %d held back, %d removed, %d changed (%d dropped), %d unchanged; %d decisions\n",
			d.Header.StableVersion, d.Header.Repository, c.Added, c.Held, c.Removed, c.Changed, c.Dropped, c.Unchanged, len(d.Decisions))
		g.showDigest("  the diff digest you approve:", sum)
		g.printf("  The check words are the first %d words above.\n", StableCheckBytes)
		if err := g.checkWords(serial, keys.PGPWords(sum[:StableCheckBytes])); err != nil {
			return err
		}
		if approved {
			return nil
		}
		approved = true
		return g.record("diff approved", map[string]any{"diff_digest": d.Digest, "device": serial})
	}
	if approve == "" {
		approve = d.Digest
	}
	return approve, nil
}

// recordApproval records the room's approval of the diff digest. In the
// batch form that is now: --approve named it. Guided, the approval is the
// check words a keyholder types before their PIN, so it is recorded
// there, once the first keyholder's words are accepted (review's
// pinStep), never before: a journal cut at the check-words prompt, or
// ending in words refused, records no approval, and a rerun reviews the
// diff again (resume.go).
func (g *Guide) recordApproval(tr *Transcript, digest string) error {
	if g != nil {
		return nil
	}
	return tr.Record("diff approved", map[string]any{"diff_digest": digest})
}

// stableDevices waits for each stable keyholder's device (a keyholder
// may be absent), in the order of the Devices steps.
func (g *Guide) stableDevices(s *session) error {
	if g == nil {
		return nil
	}
	for _, st := range g.steps {
		if st.Actor.Kind != ActorKeyholder || !strings.HasPrefix(st.ID, "device/") {
			continue
		}
		if g.absent[st.Device] {
			continue
		}
		if _, err := s.device(st.Device); err != nil && !errors.Is(err, ErrMissingDevice) {
			return err
		}
	}
	return nil
}

// stableSigner wraps a stable keyholder's signer: touch prompts and each
// signature verified.
func (g *Guide) stableSigner(serial uint32, sg keys.Signer) keys.Signer {
	if g == nil {
		return sg
	}
	return g.signer(fmt.Sprintf("sign/stable/%d", serial), serial, sg, nil)
}

// writeProgress reports a file written by write, by bytes.
func (s *StableSigning) writeProgress(label string, write func(io.Writer) error) func(io.Writer) error {
	return func(w io.Writer) error {
		b := s.newBar(label, 0, "bytes")
		if b == nil {
			return write(w)
		}
		defer b.Done()
		return write(&progress.Writer{W: w, Bar: b})
	}
}
