package stableset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strconv"
	"time"

	"github.com/keyceremony/keyceremony/stableset/export"
	"github.com/keyceremony/keyceremony/stableset/ledger"
)

// What a kept pass shows beside its canonical form: every exception's
// version, legacy flag and claimed upload time (the review shows them; the
// red flags added-to-stable-release and name-collision are raised from
// them) are not in the approved digest. They are the export's, and the
// export is read to its end anyway (its SHA-256 decides whether the pass
// fits): scanExport reads it beside the kept exceptions, both in path
// order, and holds each exception of a listed file against the export's
// line for its path. The export is in its canonical form (docs/
// export-format.md), so the line must begin with exactly the bytes those
// fields make; nothing is parsed. The trailer the manifest records is
// checked against the export's own the same way, and every listed file's
// yanked mark in the kept ledger (the yanked-stable flag is raised from
// it) against the export's line.

// exportLineMax is a line the pass would have refused (65,536 bytes and
// the newline), within the scanner's buffer.
const exportLineMax = 1 << 20

// exportScan reads an export's lines in order, hashing every byte.
type exportScan struct {
	br      *bufio.Reader
	h       hash.Hash
	line    []byte // the current record line; nil after the last
	path    []byte // its path
	records int64
	trailer []byte   // the trailer line, as read
	prefix  [32]byte // SHA-256 of the bytes before it
	odd     string   // what makes the file no export the pass read
	started bool
	err     error
	// onRecord is called with each record line and its path.
	onRecord func(path, line []byte)
}

// read reads one line, which the caller hashes; ok is false at the end of
// the file (anything after the last newline is hashed).
func (s *exportScan) read() (line []byte, ok bool) {
	for {
		b, err := s.br.ReadSlice('\n')
		switch {
		case err == nil:
			return b, true
		case errors.Is(err, bufio.ErrBufferFull):
			s.h.Write(b)
			s.oddly("a line longer than %d bytes", exportLineMax)
			continue
		case err == io.EOF:
			s.h.Write(b)
			if len(b) > 0 {
				s.oddly("no newline at its end")
			}
		default:
			s.err = err
		}
		return nil, false
	}
}

func (s *exportScan) oddly(format string, a ...any) {
	if s.odd == "" {
		s.odd = fmt.Sprintf(format, a...)
	}
}

var (
	exportPathKey    = []byte(`{"path":"`)
	exportTrailerKey = []byte(`{"trailer":`)
	// exportYanked is in a yanked file's line, and in no other: no value
	// before the key can hold a '"', and one after it holds '"' only
	// escaped (`\"`), which the '"' after "yanked" rules out. It starts
	// with 'y', rarer in a line than '"' (which starts every key and
	// value), so bytes.Contains meets fewer false starts: about 2.5 times
	// faster over an export's lines.
	exportYanked = []byte(`yanked":true,`)
)

func yankedWord(y bool) string {
	if y {
		return "yanked"
	}
	return "not yanked"
}

// next moves to the next record line (the header is skipped), keeping the
// trailer line and the digest of what came before it.
func (s *exportScan) next() {
	s.line, s.path = nil, nil
	for {
		if !s.started {
			// The header.
			s.started = true
			b, ok := s.read()
			if !ok {
				s.oddly("no header")
				return
			}
			s.h.Write(b)
		}
		if s.trailer != nil {
			if b, ok := s.read(); ok {
				s.h.Write(b)
				s.oddly("lines after its trailer")
				continue
			}
			return
		}
		b, ok := s.read()
		if !ok {
			s.oddly("no trailer")
			return
		}
		if bytes.HasPrefix(b, exportTrailerKey) {
			s.h.Sum(s.prefix[:0])
			s.h.Write(b)
			s.trailer = append([]byte(nil), b...)
			continue
		}
		s.h.Write(b)
		rest, ok := bytes.CutPrefix(b, exportPathKey)
		i := bytes.IndexByte(rest, '"')
		if !ok || i < 0 {
			s.oddly("a line that is not a record in its canonical form")
			continue
		}
		s.records++
		s.line, s.path = b, rest[:i]
		if s.onRecord != nil {
			s.onRecord(s.path, s.line)
		}
		return
	}
}

// drain reads the rest of the export.
func (s *exportScan) drain() {
	for s.line != nil {
		s.next()
	}
}

// workFields splits an exceptions work line (without its newline) into
// its 11 fields; ok is false for any other count.
func workFields(line []byte, f *[11][]byte) bool {
	for i := 0; i < 10; i++ {
		j := bytes.IndexByte(line, '\t')
		if j < 0 {
			return false
		}
		f[i], line = line[:j], line[j+1:]
	}
	f[10] = line
	return bytes.IndexByte(line, '\t') < 0
}

// exportPrefix appends the bytes an export line for this exception must
// begin with: every field up to and including upload_time. ok is false
// when the exception cannot be a listed file's (no BLAKE2b-256 in its
// path, an upload time that is not one).
func exportPrefix(b []byte, f *[11][]byte) ([]byte, bool) {
	p := string(f[2])
	b2, ok := export.PathBLAKE2b(p)
	if !ok {
		return b, false
	}
	up, err := strconv.ParseInt(string(f[10]), 10, 64)
	if err != nil || up < 0 {
		return b, false
	}
	b = append(b, exportPathKey...)
	b = append(b, f[2]...)
	b = append(b, `","project":"`...)
	b = append(b, f[3]...)
	b = append(b, `","version":"`...)
	b = append(b, f[8]...)
	b = append(b, `","filename":"`...)
	b = append(b, path.Base(p)...)
	b = append(b, `","length":`...)
	b = append(b, f[6]...)
	b = append(b, `,"sha256":"`...)
	b = append(b, f[7]...)
	b = append(b, `","blake2b_256":"`...)
	b = hex.AppendEncode(b, b2[:])
	b = append(b, `","upload_time":"`...)
	b = time.Unix(up, 0).UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	return append(b, `",`...), true
}

// exportField returns the string value of key in an export line, "?" if
// there is none.
func exportField(line []byte, key string) string {
	k := []byte(`"` + key + `":"`)
	i := bytes.Index(line, k)
	if i < 0 {
		return "?"
	}
	rest := line[i+len(k):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return "?"
}

// scanExport reads the export x to its end beside the kept pass's
// exceptions and returns the export file's SHA-256, and, as edited, the
// first thing the kept pass says of the export that the export does not:
// an exception's version, legacy flag or upload time, a listed file the
// export does not list, the manifest's trailer. The caller holds the
// file's SHA-256 against the manifest's first (another export is a stale
// pass, not an edited one). err is a read error.
func (r *run) scanExport(x io.Reader, m *passManifest) (sum [32]byte, edited, err error) {
	s := &exportScan{br: bufio.NewReaderSize(x, exportLineMax), h: sha256.New()}
	fail := func(format string, a ...any) {
		if edited == nil {
			edited = fmt.Errorf("%s: %s: %w", r.work, fmt.Sprintf(format, a...), ErrPassEdited)
		}
	}
	// Every listed file's yanked mark in the kept ledger (the flag
	// yanked-stable is raised from it) must be the export's.
	lf, lerr := os.Open(r.bucketPath("ledger", 0))
	var lr *ledger.Reader
	if lerr == nil {
		defer lf.Close()
		lr, lerr = ledger.NewReader(lf)
	}
	if lerr != nil {
		fail("its ledger: %v", lerr)
	}
	var le *ledger.RawEntry
	s.onRecord = func(p, line []byte) {
		if edited != nil || lr == nil {
			return
		}
		if le == nil && lerr == nil {
			le, lerr = lr.NextRaw()
		}
		for lerr == nil && bytes.Compare(le.PathBytes, p) < 0 {
			le, lerr = lr.NextRaw()
		}
		switch {
		case lerr != nil && lerr != io.EOF:
			fail("its ledger: %v", lerr)
		case lerr == io.EOF || !bytes.Equal(le.PathBytes, p):
			fail("the export lists %s, which its ledger does not record", p)
		case bytes.Contains(line, exportYanked) != le.Yanked:
			fail("project %s: its ledger marks %s %s, the export %s", le.ProjectBytes, p, yankedWord(le.Yanked), yankedWord(!le.Yanked))
		}
	}
	s.next()
	excName := r.bucketPath("exceptions", 0)
	ef, oerr := openWork(excName)
	if oerr != nil {
		fail("its exceptions: %v", oerr)
	} else {
		defer ef.Close()
		sc := bufio.NewScanner(ef)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var (
			f    [11][]byte
			want []byte
			n    int
		)
		for sc.Scan() && edited == nil {
			n++
			line := sc.Bytes()
			if !workFields(line, &f) {
				fail("exceptions line %d: not 11 fields", n)
				break
			}
			if bytes.HasPrefix(f[2], []byte(pagesPrefix)) || string(f[6]) == "-" {
				// A page or a file gone from the listing: the export
				// gives it no version, legacy flag or upload time.
				if string(f[8]) != "-" || string(f[9]) != "-" || string(f[10]) != "-" {
					fail("exceptions line %d: %s is given version %q, legacy %q, upload time %q, which the export cannot give it", n, f[2], f[8], f[9], f[10])
				}
				continue
			}
			for s.line != nil && bytes.Compare(s.path, f[2]) < 0 {
				s.next()
			}
			if s.line == nil || !bytes.Equal(s.path, f[2]) {
				fail("exceptions line %d: %s is listed (%s), but the export does not list it", n, f[2], f[0])
				break
			}
			var ok bool
			want, ok = exportPrefix(want[:0], &f)
			if !ok || !bytes.HasPrefix(s.line, want) {
				fail("exceptions line %d: project %s: %s is shown with version %q, upload time %s; the export lists version %q, upload time %s", n, f[3], f[2], f[8], unixOrDash(f[10]), exportField(s.line, "version"), exportField(s.line, "upload_time"))
				break
			}
			ver := string(f[8])
			if ver == "-" {
				ver = ""
			}
			legacy := string(f[9])
			if legacy == "-" {
				legacy = ""
			}
			if l := export.LegacyOf(path.Base(string(f[2])), string(f[3]), ver); l.String() != legacy {
				fail("exceptions line %d: project %s: %s is shown with legacy flag %q; its name and version make it %q", n, f[3], f[2], legacy, l.String())
				break
			}
		}
		if err := sc.Err(); err != nil && edited == nil {
			fail("its exceptions: %v", err)
		}
	}
	s.drain()
	if s.err != nil {
		return sum, nil, s.err
	}
	s.h.Sum(sum[:0])
	switch {
	case s.odd != "":
		fail("the export has %s", s.odd)
	case s.records != m.ExportCount:
		fail("pass.json records %d files, the export lists %d", m.ExportCount, s.records)
	case string(s.trailer) != fmt.Sprintf(`{"trailer":{"count":%d,"sha256":"%s"}}`+"\n", m.ExportCount, m.ExportTrailerSHA256) || hex.EncodeToString(s.prefix[:]) != m.ExportTrailerSHA256:
		fail("pass.json's export trailer (count %d, sha256 %s) is not the export's", m.ExportCount, m.ExportTrailerSHA256)
	}
	return sum, edited, nil
}

// unixOrDash formats a work line's upload time for a message.
func unixOrDash(b []byte) string {
	t, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || t < 0 {
		return strconv.Quote(string(b))
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}
