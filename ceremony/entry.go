package ceremony

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/internal/hint"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/policy"
)

// The entry points below take a ceremony's inputs as the command line
// names them (files and directories) and run the whole flow: the command
// line makes one call and prints the result.

// BootstrapOptions are a bootstrap's inputs by name.
type BootstrapOptions struct {
	// Config is the bootstrap configuration file.
	Config string
	// Out is the new output directory.
	Out     string
	Devices DeviceOptions
	// AllowAffectedFirmware: see Bootstrap.
	AllowAffectedFirmware bool
	// Backup is the new backup medium (see Bootstrap.Backup).
	Backup  string
	Now     time.Time
	Show    io.Writer
	Version string
	// Guide leads a guided ceremony (nil: batch). NetworkAck names the
	// network interfaces up that the batch form acknowledges;
	// Interfaces lists them (nil: the machine's).
	Guide      *Guide
	NetworkAck []string
	Interfaces airgap.Lister
}

// RunBootstrap loads the configuration, opens the devices and runs the
// bootstrap into o.Out.
func RunBootstrap(o BootstrapOptions) (*BootstrapResult, error) {
	cfg, err := LoadConfig(o.Config)
	if err != nil {
		return nil, err
	}
	net, err := networkCheck(o.Guide, o.Interfaces, o.NetworkAck)
	if err != nil {
		return nil, err
	}
	o.Devices.Late = o.Guide != nil
	devs, err := OpenDevices(o.Devices)
	if err != nil {
		return nil, err
	}
	defer devs.Close()
	b := &Bootstrap{Config: cfg, Devices: devs.BySerial, PIN: devs.PIN, Roots: devs.Roots, Now: o.Now, Show: o.Show, Version: o.Version, AllowAffectedFirmware: o.AllowAffectedFirmware, Backup: o.Backup, Guide: o.Guide, Airgap: net}
	if o.Guide != nil {
		o.Guide.guideDevices(devs)
	}
	return b.Run(o.Out)
}

// StableOptions are a stable signing's inputs by name.
type StableOptions struct {
	// Export is the repository export file.
	Export string
	// Published is the directory with the published metadata/ and ledger/.
	Published string
	// Root is the trusted root file.
	Root string
	// Policy is the policy file; empty means the built-in policy.
	Policy string
	// Decisions is the room's decisions file (docs/policy.md,
	// "Decisions"); empty means none.
	Decisions string
	// WorkDir is the directory for temporary work files; empty means the
	// system's temporary directory.
	WorkDir string
	// Backup is the backup medium the ceremony keeps (backup.go).
	Backup  string
	Now     time.Time
	Version string
}

// signing loads the trusted root and the policy o names.
func (o StableOptions) signing() (*StableSigning, error) {
	root, err := LoadTrustedRoot(o.Root)
	if err != nil {
		return nil, err
	}
	pol := policy.Default()
	if o.Policy != "" {
		if pol, err = policy.Load(o.Policy); err != nil {
			return nil, err
		}
	}
	var dec *decisions.Set
	if o.Decisions != "" {
		if dec, err = decisions.Load(o.Decisions); err != nil {
			return nil, err
		}
	}
	return &StableSigning{
		Root: root, Published: o.Published, Export: o.Export, Policy: pol, Decisions: dec,
		Now: o.Now, Version: o.Version, TempDir: o.WorkDir, Backup: o.Backup,
	}, nil
}

// RunStableDiff computes the diff o's inputs give, signing and writing
// nothing. The caller closes it.
func RunStableDiff(o StableOptions) (*stableset.Diff, error) {
	s, err := o.signing()
	if err != nil {
		return nil, err
	}
	return s.Diff()
}

// RunStableReviewed returns the diff of the pass that `stable diff
// --backup` kept in o.WorkDir for digest, for `stable review --pass`:
// stableset.OpenReviewed with the inputs o names checks it against the
// digest, the export and the signed previous ledger, and refuses an
// edited pass. When there is no kept pass for digest or an input differs,
// it says why on show and makes the pass again, as RunStableDiff.
func RunStableReviewed(o StableOptions, digest string, show io.Writer) (*stableset.Diff, error) {
	s, err := o.signing()
	if err != nil {
		return nil, err
	}
	cfg, f, _, backup, err := s.config()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg.ReviewKept = true // the check's walk spills the review's lines: one walk, not two
	d, err := stableset.OpenReviewed(cfg, digest)
	if errors.Is(err, stableset.ErrPassStale) {
		fmt.Fprintf(show, "not reusing the reviewed pass: %v\nreading the export again\n", err)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("reading the export again: %w", err)
		}
		d, err = stableset.ComputeDiff(cfg)
	} else if err == nil {
		fmt.Fprintf(show, "reviewing the kept pass %s (export, policy, decisions and previous ledger unchanged; checked against the digest)\n", stableset.ReviewedDir(s.TempDir, digest))
	}
	if err != nil {
		return nil, err
	}
	if backup != nil {
		if err := checkDiffState(backup, d); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// StableSignOptions are a stable signing's inputs by name, with the
// approved digest, the devices and the new media directory.
type StableSignOptions struct {
	StableOptions
	// Approve is the diff digest the keyholders approved.
	Approve string
	// Media is the new output directory on the removable media.
	Media   string
	Devices DeviceOptions
	Show    io.Writer
	// Config is the bootstrap configuration: the guided form's script
	// (keyholders and devices).
	Config string
	// Guide, NetworkAck, Interfaces: as in BootstrapOptions.
	Guide      *Guide
	NetworkAck []string
	Interfaces airgap.Lister
}

// RunStableSign opens the devices and runs the stable signing. The
// caller closes the result's Diff.
func RunStableSign(o StableSignOptions) (*StableResult, error) {
	s, err := o.signing()
	if err != nil {
		return nil, err
	}
	if o.Guide != nil && o.Config != "" {
		cfg, err := LoadConfig(o.Config)
		if err != nil {
			return nil, err
		}
		o.Guide.Script = StableSteps(cfg, nil)
	}
	if s.Airgap, err = networkCheck(o.Guide, o.Interfaces, o.NetworkAck); err != nil {
		return nil, err
	}
	o.Devices.Late = o.Guide != nil
	devs, err := OpenDevices(o.Devices)
	if err != nil {
		return nil, err
	}
	defer devs.Close()
	s.Devices, s.PIN, s.Show, s.Guide = devs.BySerial, devs.PIN, o.Show, o.Guide
	if o.Guide != nil {
		o.Guide.guideDevices(devs)
	}
	res, err := s.Sign(o.Approve, o.Media)
	switch {
	case errors.Is(err, stableset.ErrApproval):
		return nil, approvalError{err}
	case errors.Is(err, stableset.ErrUndecided), errors.Is(err, stableset.ErrExpediteUndecided), errors.Is(err, stableset.ErrPolicyChangeUndecided):
		return nil, undecidedError{err}
	}
	return res, err
}

// undecidedError is a crossed limit or a red flag without a decision
// (a flag of flags.go, an expedited file, a change to the policy's
// lists), with advice.
type undecidedError struct{ err error }

func (e undecidedError) Error() string { return e.err.Error() }
func (e undecidedError) Unwrap() error { return e.err }
func (e undecidedError) Hint() string {
	return "review each flagged item, write a decisions file (docs/policy.md, \"Decisions\"), pass it as --decisions to 'stable diff' and 'stable sign', and approve the new digest"
}

var _ hint.Hinter = undecidedError{}

// approvalError is a refused approval, with advice for the room.
type approvalError struct{ err error }

func (e approvalError) Error() string { return e.err.Error() }
func (e approvalError) Unwrap() error { return e.err }
func (e approvalError) Hint() string {
	return "the export, the published set or the policy differ from what was reviewed; run 'stable diff' again"
}

var _ hint.Hinter = approvalError{}
