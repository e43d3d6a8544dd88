package ceremony

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/internal/strictjson"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// The checks of bootstrap media: the root chain from the trusted root,
// targets, the empty stable, every key's attestation chain, the
// transcript and the run sheet.

func (a *auditor) bootstrap() error {
	dir := a.o.Dir
	md := metadataDir(MediumBootstrap, dir)
	trusted := a.rep.trusted
	if err := a.check("medium files", func() (string, error) {
		n, err := listBootstrapMedium(dir)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("only files a bootstrap writes: %d files, none missing", n), nil
	}); err != nil {
		return err
	}
	var root *tuf.Metadata[tuf.Root]
	if err := a.check("root chain", func() (string, error) {
		r, files, err := rootChain(trusted, md)
		a.rep.Files = append(a.rep.Files, files...)
		if err != nil {
			return "", err
		}
		if err := notExpired(files[len(files)-1].File, r.Signed.Expires, a.o.At); err != nil {
			return "", err
		}
		root = r
		return fmt.Sprintf("versions %d to %d, each signed by the threshold of the previous root and of itself; not expired", trusted.Signed.Version, r.Signed.Version), nil
	}); err != nil {
		return err
	}
	var ts *targetsSource
	if err := a.check("targets", func() (string, error) {
		var err error
		if ts, err = loadTargetsSource(trusted, dir); err != nil {
			return "", err
		}
		t := ts.targets
		file := fmt.Sprintf("%d.targets.json", t.Signed.Version)
		if err := tuf.CheckTopLayout(&t.Signed); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		if err := notExpired(file, t.Signed.Expires, a.o.At); err != nil {
			return "", err
		}
		by, _ := root.Signed.RoleKeys(tuf.RoleTargets)
		signers, err := verifiedBy(by, t.SignedBytes, t.Signatures)
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		a.rep.Files = append(a.rep.Files, AuditFile{File: file, Role: tuf.RoleTargets, Delegator: tuf.RoleRoot, Version: t.Signed.Version, Expires: t.Signed.Expires.Time().UTC(),
			Checks: []AuditSignature{{By: fmt.Sprintf("%d.root.json", root.Signed.Version), Threshold: by.Threshold, Signers: signers}}})
		return fmt.Sprintf("%s signed by %d keys (threshold %d); delegates to stable first, then unstable; not expired", file, len(signers), by.Threshold), nil
	}); err != nil {
		return err
	}
	a.rep.targets = ts
	if err := a.check("empty stable", func() (string, error) {
		by := tuf.RoleKeys{Role: stableset.StableRole, KeyIDs: ts.deleg.KeyIDs, Threshold: ts.deleg.Threshold, Keys: ts.targets.Signed.Delegations.Keys}
		st, n, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by)
		if err != nil {
			return "", err
		}
		file := fmt.Sprintf("%d.stable.json", n)
		if len(st.Signed.Targets) != 0 || st.Signed.Delegations != nil {
			return "", fmt.Errorf("%s lists %d targets and delegations %v; a bootstrap's stable is empty: %w", file, len(st.Signed.Targets), st.Signed.Delegations != nil, ErrMediumContent)
		}
		if err := notExpired(file, st.Signed.Expires, a.o.At); err != nil {
			return "", err
		}
		signers, _ := verifiedBy(by, st.SignedBytes, st.Signatures)
		a.rep.Files = append(a.rep.Files, AuditFile{File: file, Role: stableset.StableRole, Delegator: tuf.RoleTargets, Version: n, Expires: st.Signed.Expires.Time().UTC(),
			Checks: []AuditSignature{{By: fmt.Sprintf("%d.targets.json", ts.targets.Signed.Version), Threshold: by.Threshold, Signers: signers}}})
		return fmt.Sprintf("%s lists nothing, signed by %d stable keys (threshold %d); not expired", file, len(signers), by.Threshold), nil
	}); err != nil {
		return err
	}
	var entries []TranscriptEntry
	if err := a.check("transcript", func() (string, error) {
		var err error
		entries, err = a.transcript(filepath.Join(dir, "transcript.jsonl"))
		if err != nil {
			return "", err
		}
		if err := checkBootstrapTranscript(entries, root); err != nil {
			return "", err
		}
		by, err := root.Signed.RoleKeys(tuf.RoleRoot)
		if err != nil {
			return "", err
		}
		if _, err := checkJournalEnvelope(dir, CeremonyBootstrap, by); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d entries, hash chain intact, from %q to %q naming the root keys; %s signed by the root threshold (%d)", len(entries), entries[0].Step, entries[len(entries)-1].Step, JournalEnvelopeFile, by.Threshold), nil
	}); err != nil {
		return err
	}
	roots, err := a.attestationRoots()
	if err != nil {
		return err
	}
	if err := a.check("attestations", func() (string, error) {
		ks, err := checkAttestations(filepath.Join(dir, "keys"), root, ts, entries, roots)
		a.rep.Keys = ks
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d keys, each generated on its device (attestation chain to %s), serial, slot, PIN and touch policy and public key matching the metadata and the transcript", len(ks), roots.describe()), nil
	}); err != nil {
		return err
	}
	if err := a.check("run sheet", func() (string, error) {
		return checkRunSheet(filepath.Join(dir, "runsheet.md"), entries, a.rep.Keys)
	}); err != nil {
		return err
	}
	st, err := readState(MediumBootstrap, dir, trusted, nil)
	if err != nil {
		return a.check("versions", func() (string, error) { return "", err })
	}
	a.rep.state = st
	for r, v := range st.versions {
		a.rep.Versions[r] = v
	}
	return nil
}

// notExpired refuses metadata that expired at or before at.
func notExpired(file string, e tuf.Expiry, at time.Time) error {
	if !at.Before(e.Time()) {
		return fmt.Errorf("%s expired at %s (checked at %s): %w", file, e, at.UTC().Format(time.RFC3339), tuf.ErrExpired)
	}
	return nil
}

// verifiedBy returns the keys of by whose signatures over signed count.
func verifiedBy(by tuf.RoleKeys, signed func() ([]byte, error), sigs []tuf.Signature) ([]string, error) {
	msg, err := signed()
	if err != nil {
		return nil, err
	}
	return by.Verify(msg, sigs)
}

// rootChain walks the root chain in md from trusted (tuf.VerifyRootChain)
// and lists each root file with the keys that signed it.
func rootChain(trusted *tuf.Metadata[tuf.Root], md string) (*tuf.Metadata[tuf.Root], []AuditFile, error) {
	newest, err := tuf.VerifyRootChain(trusted, md)
	if err != nil {
		return nil, nil, err
	}
	var files []AuditFile
	prev, prevFile := trusted, "trusted root"
	for n := trusted.Signed.Version; n <= newest.Signed.Version; n++ {
		file := strconv.FormatInt(n, 10) + ".root.json"
		m := trusted
		if n > trusted.Signed.Version {
			b, err := os.ReadFile(filepath.Join(md, file))
			if err != nil {
				return nil, files, err
			}
			if m, err = tuf.Load[tuf.Root](b, file); err != nil {
				return nil, files, err
			}
		}
		f := AuditFile{File: file, Role: tuf.RoleRoot, Delegator: tuf.RoleRoot, Version: n, Expires: m.Signed.Expires.Time().UTC()}
		if n > trusted.Signed.Version {
			by, _ := prev.Signed.RoleKeys(tuf.RoleRoot)
			s, err := verifiedBy(by, m.SignedBytes, m.Signatures)
			if err != nil {
				return nil, files, err
			}
			f.Checks = append(f.Checks, AuditSignature{By: prevFile, Threshold: by.Threshold, Signers: s})
		}
		by, _ := m.Signed.RoleKeys(tuf.RoleRoot)
		s, err := verifiedBy(by, m.SignedBytes, m.Signatures)
		if err != nil {
			return nil, files, err
		}
		f.Checks = append(f.Checks, AuditSignature{By: "itself", Threshold: by.Threshold, Signers: s})
		files = append(files, f)
		prev, prevFile = m, file
	}
	return newest, files, nil
}

// transcript reads and verifies a transcript's hash chain (VerifyTranscript)
// and returns its entries.
func (a *auditor) transcript(file string) ([]TranscriptEntry, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return a.transcriptEntries(b, file)
}

func (a *auditor) transcriptEntries(b []byte, file string) ([]TranscriptEntry, error) {
	name := filepath.Base(file)
	digest, n, err := VerifyTranscript(bytes.NewReader(b), name)
	if err != nil {
		return nil, err
	}
	entries := make([]TranscriptEntry, 0, n)
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var e TranscriptEntry
		if err := strictjson.DecodeLine(line, name, i+1, &e); err != nil {
			return nil, fmt.Errorf("%w: %w", err, ErrTranscript)
		}
		entries = append(entries, e)
	}
	a.rep.Transcript = &AuditTranscript{File: file, Entries: n, Digest: hex.EncodeToString(digest[:])}
	return entries, nil
}

// checkBootstrapTranscript checks that a bootstrap's transcript runs from
// its start to its end, and that its end names the root keys of the
// root on the media.
func checkBootstrapTranscript(es []TranscriptEntry, root *tuf.Metadata[tuf.Root]) error {
	if es[0].Step != "bootstrap started" {
		return fmt.Errorf("transcript.jsonl:1: step %q, want \"bootstrap started\": %w", es[0].Step, ErrTranscript)
	}
	last := es[len(es)-1]
	if last.Step != "bootstrap finished" {
		return fmt.Errorf("transcript.jsonl:%d: the last step is %q, want \"bootstrap finished\" (the transcript is cut): %w", len(es), last.Step, ErrTranscript)
	}
	var ids []string
	raw, _ := json.Marshal(last.Detail["root_keyids"])
	_ = json.Unmarshal(raw, &ids)
	want := append([]string(nil), root.Signed.Roles[tuf.RoleRoot].KeyIDs...)
	sort.Strings(ids)
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		return fmt.Errorf("transcript.jsonl:%d: root keys %q, the root on the media has %q: %w", len(es), ids, want, ErrTranscript)
	}
	return nil
}

// attestationRoots are the roots key attestations must chain to.
type attestationRoots struct {
	yubico *x509.CertPool
	// extra: the CA named with --attestation-ca (rehearsals).
	extra      *x509.CertPool
	extraInter []*x509.Certificate
	extraFile  string
}

func (r *attestationRoots) describe() string {
	if r.extra != nil {
		return "Yubico's PIV attestation roots or " + r.extraFile
	}
	return "Yubico's PIV attestation roots"
}

func (a *auditor) attestationRoots() (*attestationRoots, error) {
	if a.roots != nil {
		return a.roots, nil
	}
	r := &attestationRoots{yubico: keys.YubicoRoots()}
	if a.o.SoftCA != "" {
		err := a.input("attestation CA", func() (string, error) {
			ca, err := soft.LoadCA(a.o.SoftCA)
			if err != nil {
				return "", err
			}
			r.extra = x509.NewCertPool()
			r.extra.AddCert(ca.Certificate())
			r.extraFile = "the soft CA " + a.o.SoftCA + " (INSECURE)"
			return fmt.Sprintf("%s: the soft devices' CA trusted beside Yubico's (a rehearsal: INSECURE, NOT Yubico's)", a.o.SoftCA), nil
		})
		return r, err
	}
	if a.o.AttestationCA == "" {
		return r, nil
	}
	err := a.input("attestation CA", func() (string, error) {
		b, err := os.ReadFile(a.o.AttestationCA)
		if err != nil {
			return "", fmt.Errorf("reading the attestation CA: %w", err)
		}
		roots, inter, err := keys.ParseAttestationCAs(b)
		if err != nil {
			return "", fmt.Errorf("%s: %w", a.o.AttestationCA, err)
		}
		r.extra = x509.NewCertPool()
		for _, c := range roots {
			r.extra.AddCert(c)
		}
		r.extraInter, r.extraFile = inter, a.o.AttestationCA+" (NOT Yubico's)"
		return fmt.Sprintf("%s: %d roots trusted beside Yubico's (a rehearsal: NOT Yubico's)", a.o.AttestationCA, len(roots)), nil
	})
	return r, err
}

// verify checks one attestation chain against what the ceremony asked
// for (keys.VerifyAttestationFor) and says which root it reached.
func (r *attestationRoots) verify(leaf *x509.Certificate, chain []*x509.Certificate, want keys.Expected) (*keys.Attested, string, error) {
	att, err := keys.VerifyAttestationFor(leaf, chain, r.yubico, want)
	if err == nil || r.extra == nil || !errors.Is(err, keys.ErrAttestationChain) {
		return att, "Yubico", err
	}
	att, err2 := keys.VerifyAttestationFor(leaf, append(append([]*x509.Certificate(nil), chain...), r.extraInter...), r.extra, want)
	if errors.Is(err2, keys.ErrAttestationChain) {
		return nil, "", fmt.Errorf("%w (and against %s: %w)", err, r.extraFile, err2)
	}
	if err2 != nil {
		// It chains to the extra CA: what it attests is wrong.
		return nil, "", fmt.Errorf("chained to %s: %w", r.extraFile, err2)
	}
	return att, r.extraFile, nil
}

// checkAttestations checks every key file in keysDir: keys/<role>-<serial>-<slot>.pub.json
// and its .attestation.pem (the slot's certificate, the device's f9
// certificate, any intermediates). Each attestation must chain to roots
// and attest that key, on that device, in that slot; the key must be one
// of the role's keys in the metadata, and every key of root, targets and
// stable must have one; the transcript must record its generation with
// the attested policies.
func checkAttestations(keysDir string, root *tuf.Metadata[tuf.Root], ts *targetsSource, es []TranscriptEntry, roots *attestationRoots) ([]AuditKey, error) {
	roleIDs := map[string][]string{
		tuf.RoleRoot:         root.Signed.Roles[tuf.RoleRoot].KeyIDs,
		tuf.RoleTargets:      root.Signed.Roles[tuf.RoleTargets].KeyIDs,
		stableset.StableRole: ts.deleg.KeyIDs,
	}
	generated := map[string]TranscriptEntry{}
	for _, e := range es {
		if e.Step == "key generated and attested" {
			id, _ := e.Detail["keyid"].(string)
			generated[id] = e
		}
	}
	ents, err := os.ReadDir(keysDir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []AuditKey
	for _, ent := range ents {
		name := ent.Name()
		base, ok := strings.CutSuffix(name, ".pub.json")
		if !ok {
			if b, ok := strings.CutSuffix(name, ".attestation.pem"); ok {
				if _, err := os.Stat(filepath.Join(keysDir, b+".pub.json")); err != nil {
					return out, fmt.Errorf("keys/%s has no public key file beside it: %w", name, ErrMediumContent)
				}
				continue
			}
			return out, fmt.Errorf("keys/%s: not a public key or an attestation: %w", name, ErrMediumContent)
		}
		k, err := checkKeyFile(keysDir, base, roleIDs, generated, roots)
		if err != nil {
			return out, err
		}
		if seen[k.KeyID] {
			return out, fmt.Errorf("keys/%s: key %s appears twice: %w", name, k.KeyID, ErrMediumContent)
		}
		seen[k.KeyID] = true
		out = append(out, *k)
	}
	for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets, stableset.StableRole} {
		for _, id := range roleIDs[role] {
			found := false
			for _, k := range out {
				found = found || (k.KeyID == id && k.Role == role)
			}
			if !found {
				return out, fmt.Errorf("%s key %s has no attestation in keys/: %w", role, id, keys.ErrAttestationChain)
			}
		}
	}
	if len(generated) != len(out) {
		return out, fmt.Errorf("the transcript records %d keys generated, keys/ holds %d: %w", len(generated), len(out), ErrMediumContent)
	}
	return out, nil
}

func checkKeyFile(keysDir, base string, roleIDs map[string][]string, generated map[string]TranscriptEntry, roots *attestationRoots) (*AuditKey, error) {
	pubName, attName := "keys/"+base+".pub.json", "keys/"+base+".attestation.pem"
	parts := strings.Split(base, "-")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%s: want keys/<role>-<serial>-<slot>.pub.json: %w", pubName, ErrMediumContent)
	}
	role, slot := parts[0], parts[2]
	serial, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: serial %q: %w", pubName, parts[1], ErrMediumContent)
	}
	ids, ok := roleIDs[role]
	if !ok {
		return nil, fmt.Errorf("%s: unknown role %q: %w", pubName, role, ErrMediumContent)
	}
	b, err := os.ReadFile(filepath.Join(keysDir, base+".pub.json"))
	if err != nil {
		return nil, err
	}
	var key keys.Key
	if err := strictjson.Decode(b, pubName, &key); err != nil {
		return nil, err
	}
	id := key.ID()
	if !slices.Contains(ids, id) {
		return nil, fmt.Errorf("%s: key %s is not a %s key of the metadata: %w", pubName, id, role, keys.ErrAttestationKey)
	}
	pemBytes, err := os.ReadFile(filepath.Join(keysDir, base+".attestation.pem"))
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for rest := pemBytes; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if blk.Type != "CERTIFICATE" || err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", attName, len(certs)+1, keys.ErrAttestationMalformed)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		return nil, fmt.Errorf("%s: %d certificates, want the slot's and the device's (f9) at least: %w", attName, len(certs), keys.ErrAttestationChain)
	}
	// The transcript says what the ceremony asked for and when: the
	// attestation must prove exactly that, with every certificate valid
	// at that time.
	e, ok := generated[id]
	if !ok {
		return nil, fmt.Errorf("%s: the transcript records no generation of key %s: %w", pubName, id, ErrTranscript)
	}
	dev, _ := e.Detail["device"].(float64)
	for _, c := range []struct{ field, got, want string }{
		{"role", fmt.Sprint(e.Detail["role"]), role},
		{"device", strconv.FormatFloat(dev, 'f', -1, 64), strconv.FormatUint(serial, 10)},
		{"slot", fmt.Sprint(e.Detail["slot"]), slot},
	} {
		if c.got != c.want {
			return nil, fmt.Errorf("transcript.jsonl:%d: key %s: %s %q, the key file names %q: %w", e.Seq, id, c.field, c.got, c.want, ErrMediumContent)
		}
	}
	at, err := time.Parse(time.RFC3339, e.Time)
	if err != nil {
		return nil, fmt.Errorf("transcript.jsonl:%d: time %q: %w", e.Seq, e.Time, ErrTranscript)
	}
	pinPolicy, _ := e.Detail["pin_policy"].(string)
	touchPolicy, _ := e.Detail["touch_policy"].(string)
	att, to, err := roots.verify(certs[0], certs[1:], keys.Expected{Serial: uint32(serial), Slot: slot, PINPolicy: pinPolicy, TouchPolicy: touchPolicy, Key: &key, At: at})
	if err != nil {
		return nil, fmt.Errorf("%s (transcript.jsonl:%d): %w", attName, e.Seq, err)
	}
	return &AuditKey{Role: role, Device: uint32(serial), Slot: slot, KeyID: id, Firmware: att.Firmware,
		PINPolicy: att.PINPolicy, TouchPolicy: att.TouchPolicy, FormFactor: att.FormFactor, ChainsTo: to}, nil
}

// checkRunSheet checks that the run sheet is there and names the
// repository and every key.
func checkRunSheet(file string, es []TranscriptEntry, ks []AuditKey) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	repo, _ := es[0].Detail["repository"].(string)
	if !bytes.Contains(b, []byte("Repository: "+repo+"\n")) {
		return "", fmt.Errorf("runsheet.md does not name the repository %q: %w", repo, ErrMediumContent)
	}
	for _, k := range ks {
		if !bytes.Contains(b, []byte(k.KeyID)) {
			return "", fmt.Errorf("runsheet.md does not list the %s key %s: %w", k.Role, k.KeyID, ErrMediumContent)
		}
	}
	return fmt.Sprintf("runsheet.md names repository %q and all %d key ids", repo, len(ks)), nil
}
