package stableset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
)

// PEP 458's recovery comparison: after a repository compromise, every
// stable path whose content in the repository's current export differs
// from what the last stable set signed, and every stable path the export
// no longer lists. The stable set is the published ledger, verified by the
// digest the published stable metadata signed; the export is read strictly
// (export.Reader) and both are merged as sorted streams, so the comparison
// holds one entry of each at a time.

// RecoveryFormat is the first line of a recovery comparison file.
const RecoveryFormat = "# keyceremony recovery comparison 1"

// ErrRecovery is a recovery comparison that does not match its inputs or
// its own summary.
var ErrRecovery = errors.New("recovery comparison does not match")

// Recovery findings.
const (
	RecoveryChanged = "changed" // the export lists the path with another length or sha256
	RecoveryMissing = "missing" // the export does not list the path
)

// RecoveryFinding is one stable path the export does not carry as stable
// signed it.
type RecoveryFinding struct {
	Finding      string // RecoveryChanged or RecoveryMissing
	Path         string
	StableLength int64
	StableSHA256 [32]byte
	// ExportLength and ExportSHA256 are the export's, with RecoveryChanged.
	ExportLength int64
	ExportSHA256 [32]byte
}

// Recovery is the comparison of an export against the published stable
// set.
type Recovery struct {
	StableVersion int64    // 0: nothing was ever signed into stable
	LedgerSHA256  [32]byte // the published ledger's, as stable signed it
	ExportSHA256  [32]byte // the export file's bytes
	Stable        int64    // stable paths compared
	Findings      []RecoveryFinding
}

// Count returns the number of findings of kind f.
func (r *Recovery) Count(f string) int {
	n := 0
	for _, x := range r.Findings {
		if x.Finding == f {
			n++
		}
	}
	return n
}

// CompareRecovery compares cfg.Export against the stable set published in
// cfg.Published (verified with cfg.StableDelegation and cfg.StableKeys).
// Only those fields of cfg are read. Nothing is returned unless the whole
// export and the whole ledger were read and the ledger matches the digest
// stable signed.
func CompareRecovery(cfg Config) (*Recovery, error) {
	pub, base, err := readPublished(&cfg)
	if err != nil {
		return nil, err
	}
	rec := &Recovery{StableVersion: base}
	sum := sha256.New()
	x, err := export.NewReader(io.TeeReader(cfg.Export, sum), cfg.ExportName)
	if err != nil {
		return nil, err
	}
	var lr *ledger.Reader
	if pub != nil {
		f, err := os.Open(pub.ledgerPath)
		if err != nil {
			return nil, fmt.Errorf("opening the published ledger: %w", err)
		}
		defer f.Close()
		if lr, err = ledger.NewReader(bufio.NewReaderSize(f, 1<<20)); err != nil {
			return nil, fmt.Errorf("%s: %w", pub.ledgerPath, err)
		}
		if h := lr.Header(); h.StableVersion != pub.ledgerVersion {
			return nil, fmt.Errorf("ledger %s is for stable version %d, not %d: %w", pub.ledgerPath, h.StableVersion, pub.ledgerVersion, ErrPublished)
		}
		rec.LedgerSHA256 = pub.ledgerSum
	}
	var le *ledger.Entry
	nextLedger := func() error {
		if lr == nil {
			return nil
		}
		for {
			e, err := lr.Next()
			if err == io.EOF {
				le = nil
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", pub.ledgerPath, err)
			}
			if e.Stable {
				c := *e
				le = &c
				return nil
			}
		}
	}
	missing := func() {
		l, s := le.StableContent()
		rec.Stable++
		rec.Findings = append(rec.Findings, RecoveryFinding{Finding: RecoveryMissing, Path: le.Path, StableLength: l, StableSHA256: s})
	}
	if err := nextLedger(); err != nil {
		return nil, err
	}
	for {
		r, err := x.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for le != nil && le.Path < r.Path {
			missing()
			if err := nextLedger(); err != nil {
				return nil, err
			}
		}
		if le == nil || le.Path != r.Path {
			continue
		}
		rec.Stable++
		if l, s := le.StableContent(); l != r.Length || s != r.SHA256 {
			rec.Findings = append(rec.Findings, RecoveryFinding{Finding: RecoveryChanged, Path: le.Path, StableLength: l, StableSHA256: s, ExportLength: r.Length, ExportSHA256: r.SHA256})
		}
		if err := nextLedger(); err != nil {
			return nil, err
		}
	}
	for le != nil {
		missing()
		if err := nextLedger(); err != nil {
			return nil, err
		}
	}
	if lr != nil {
		for {
			if _, err := lr.NextProject(); err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", pub.ledgerPath, err)
			}
		}
		if size, s, _ := lr.FileDigest(); size != pub.ledgerLen || s != pub.ledgerSum {
			return nil, fmt.Errorf("%s does not match the digest stable %d signed: %w", pub.ledgerPath, pub.version, ErrPublished)
		}
	}
	copy(rec.ExportSHA256[:], sum.Sum(nil))
	return rec, nil
}

// Marshal returns the comparison as its file: RecoveryFormat, a summary
// (one "key: value" line each), then one tab-separated line per finding in
// path order: "changed", path, stable length, stable sha256, export
// length, export sha256; or "missing", path, stable length, stable sha256.
func (r *Recovery) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nstable-version: %d\nledger-sha256: %x\nexport-sha256: %x\nstable-paths: %d\nchanged: %d\nmissing: %d\n",
		RecoveryFormat, r.StableVersion, r.LedgerSHA256, r.ExportSHA256, r.Stable, r.Count(RecoveryChanged), r.Count(RecoveryMissing))
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s\t%s\t%d\t%x", f.Finding, f.Path, f.StableLength, f.StableSHA256)
		if f.Finding == RecoveryChanged {
			fmt.Fprintf(&b, "\t%d\t%x", f.ExportLength, f.ExportSHA256)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseRecovery reads a comparison file written by Marshal, strictly:
// every line is checked, the summary's counts must match the findings,
// and Marshal of the result gives back b. Errors name the line
// (name:line) and wrap ErrRecovery.
func ParseRecovery(b []byte, name string) (*Recovery, error) {
	fail := func(n int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s: %w", name, n, fmt.Sprintf(format, args...), ErrRecovery)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, fail(0, "empty or not ending in a newline")
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	keys := []string{"stable-version", "ledger-sha256", "export-sha256", "stable-paths", "changed", "missing"}
	if len(lines) < 1+len(keys) || lines[0] != RecoveryFormat {
		return nil, fail(1, "want %q and a summary of %d lines", RecoveryFormat, len(keys))
	}
	var rec Recovery
	var counts [2]int64
	for i, k := range keys {
		v, ok := strings.CutPrefix(lines[1+i], k+": ")
		if !ok {
			return nil, fail(2+i, "want %q", k+": ")
		}
		var err error
		switch k {
		case "ledger-sha256":
			err = decodeSum(v, &rec.LedgerSHA256)
		case "export-sha256":
			err = decodeSum(v, &rec.ExportSHA256)
		default:
			var n int64
			n, err = strconv.ParseInt(v, 10, 64)
			switch k {
			case "stable-version":
				rec.StableVersion = n
			case "stable-paths":
				rec.Stable = n
			case "changed":
				counts[0] = n
			case "missing":
				counts[1] = n
			}
		}
		if err != nil {
			return nil, fail(2+i, "%s: %v", k, err)
		}
	}
	prev := ""
	for i, l := range lines[1+len(keys):] {
		n := 2 + len(keys) + i
		fs := strings.Split(l, "\t")
		var f RecoveryFinding
		f.Finding = fs[0]
		switch {
		case f.Finding == RecoveryChanged && len(fs) == 6, f.Finding == RecoveryMissing && len(fs) == 4:
		default:
			return nil, fail(n, "want a changed (6 fields) or missing (4 fields) line")
		}
		f.Path = fs[1]
		if f.Path <= prev {
			return nil, fail(n, "path %q is not after %q", f.Path, prev)
		}
		prev = f.Path
		var err error
		if f.StableLength, err = strconv.ParseInt(fs[2], 10, 64); err == nil {
			err = decodeSum(fs[3], &f.StableSHA256)
		}
		if err == nil && f.Finding == RecoveryChanged {
			if f.ExportLength, err = strconv.ParseInt(fs[4], 10, 64); err == nil {
				err = decodeSum(fs[5], &f.ExportSHA256)
			}
		}
		if err != nil {
			return nil, fail(n, "%v", err)
		}
		rec.Findings = append(rec.Findings, f)
	}
	if int64(rec.Count(RecoveryChanged)) != counts[0] || int64(rec.Count(RecoveryMissing)) != counts[1] {
		return nil, fail(6, "the summary counts %d changed and %d missing; the file lists %d and %d", counts[0], counts[1], rec.Count(RecoveryChanged), rec.Count(RecoveryMissing))
	}
	if !bytes.Equal(rec.Marshal(), b) {
		return nil, fail(0, "not in its canonical form")
	}
	return &rec, nil
}

func decodeSum(s string, dst *[32]byte) error {
	if len(s) != 64 || strings.ToLower(s) != s {
		return errors.New("want 64 lowercase hex digits")
	}
	_, err := hex.Decode(dst[:], []byte(s))
	return err
}

// FirstDifference names the first finding where r and o differ, or
// returns "" when they are the same comparison.
func (r *Recovery) FirstDifference(o *Recovery) string {
	for i := 0; i < len(r.Findings) || i < len(o.Findings); i++ {
		switch {
		case i >= len(r.Findings):
			return fmt.Sprintf("%s %s is not in the comparison", o.Findings[i].Finding, o.Findings[i].Path)
		case i >= len(o.Findings):
			return fmt.Sprintf("%s %s should not be in the comparison", r.Findings[i].Finding, r.Findings[i].Path)
		case r.Findings[i] != o.Findings[i]:
			return fmt.Sprintf("%s %s differs from the recomputed %s %s", r.Findings[i].Finding, r.Findings[i].Path, o.Findings[i].Finding, o.Findings[i].Path)
		}
	}
	if !bytes.Equal(r.Marshal(), o.Marshal()) {
		return "the summary differs from the recomputed one"
	}
	return ""
}
