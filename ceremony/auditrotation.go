package ceremony

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/tuf"
)

// The checks of a renewal's and a rotation's media. Neither medium holds
// the root chain up to the version it replaces: both are checked against
// the medium they started from, named with --previous (bootstrap media or
// a repository), whose chain is walked from the trusted root first.

// The media of renewal and rotation.
const (
	// MediumRenewal is a renewal's output: metadata/N.<role>.json,
	// renewal-checklist.md, transcript.jsonl and its signed end
	// transcript.dsse.json.
	MediumRenewal Medium = "renewal"
	// MediumRotation is a rotation's output: metadata/N.root.json, keys/
	// (the new keys and their attestations), rotation-checklist.md,
	// transcript.jsonl and its signed end transcript.dsse.json.
	MediumRotation Medium = "rotation"
	// MediumHandover is a keyholder handover's record:
	// handover-statement.txt, handover-checklist.md, transcript.jsonl and
	// its signed end transcript.dsse.json.
	MediumHandover Medium = "handover"
)

// ErrNeedPrevious means a renewal's or a rotation's medium was given
// without the medium it started from.
var ErrNeedPrevious = errors.New("a renewal's or a rotation's medium is checked against the medium it started from: name it with --previous (bootstrap media or the repository as it was)")

// detectRenewalOrRotation tells the two media by their checklists.
func detectRenewalOrRotation(dir string) (Medium, bool) {
	for m, f := range map[Medium]string{MediumRenewal: RenewalChecklist, MediumRotation: RotationChecklist, MediumHandover: HandoverChecklist} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			return m, true
		}
	}
	return "", false
}

// previousCurrent reads the state the medium started from: the root
// chain of the previous medium from the trusted root, its targets and
// its newest stable.
func (a *auditor) previousCurrent() (*current, error) {
	prev := a.o.Previous
	var cur *current
	err := a.input("the medium it started from", func() (string, error) {
		if prev == "" {
			return "", ErrNeedPrevious
		}
		m, err := DetectMedium(prev)
		if err != nil {
			return "", err
		}
		switch m {
		case MediumBootstrap, MediumRepository:
		default:
			return "", fmt.Errorf("%s is %s media, which holds no root chain: %w", prev, m, ErrNeedPrevious)
		}
		md := metadataDir(m, prev)
		root, targets, err := trustedTargets(a.rep.trusted, md)
		if err != nil {
			return "", err
		}
		cur = &current{root: root, targets: targets}
		by, _ := targets.Signed.DelegateKeys(stableset.StableRole)
		if st, _, err := tuf.LoadNewest[tuf.Targets](os.DirFS(md), md, stableset.StableRole, by); err == nil {
			cur.stable = st
		}
		return fmt.Sprintf("%s (%s media): root v%d, targets v%d, from the trusted root", prev, m, root.Signed.Version, targets.Signed.Version), nil
	})
	return cur, err
}

// detailString and detailInt read a transcript entry's detail.
func detailString(e TranscriptEntry, k string) string { s, _ := e.Detail[k].(string); return s }
func detailInt(e TranscriptEntry, k string) int64     { f, _ := e.Detail[k].(float64); return int64(f) }

// detailStrings reads a list of strings, sorted.
func detailStrings(e TranscriptEntry, k string) []string {
	l, _ := e.Detail[k].([]any)
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// mediumTranscript checks the transcript's chain, its first and its last
// step, and returns its entries.
func (a *auditor) mediumTranscript(first, last string) ([]TranscriptEntry, error) {
	var es []TranscriptEntry
	err := a.check("transcript", func() (string, error) {
		var err error
		if es, err = a.transcript(filepath.Join(a.o.Dir, "transcript.jsonl")); err != nil {
			return "", err
		}
		if es[0].Step != first {
			return "", fmt.Errorf("transcript.jsonl:1: step %q, want %q: %w", es[0].Step, first, ErrTranscript)
		}
		if l := es[len(es)-1]; l.Step != last {
			return "", fmt.Errorf("transcript.jsonl:%d: the last step is %q, want %q (the transcript is cut): %w", len(es), l.Step, last, ErrTranscript)
		}
		return fmt.Sprintf("%d entries, hash chain intact, from %q to %q", len(es), first, last), nil
	})
	return es, err
}

// onlyFiles checks that the medium's metadata/ holds exactly the files
// the transcript's last entry (line seq) names, each with the SHA-256 it
// names ({file, sha256} pairs), and returns their bytes.
func (a *auditor) onlyFiles(seq int, files ...[2]string) ([][]byte, error) {
	md := filepath.Join(a.o.Dir, "metadata")
	ents, err := os.ReadDir(md)
	if err != nil {
		return nil, err
	}
	var names, want []string
	for _, e := range ents {
		names = append(names, "metadata/"+e.Name())
	}
	for _, f := range files {
		want = append(want, f[0])
	}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		return nil, fmt.Errorf("metadata/ holds %s; the transcript (line %d) names only %s: %w", strings.Join(names, ", "), seq, strings.Join(want, ", "), ErrMediumContent)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(a.o.Dir, filepath.FromSlash(f[0])))
		if err != nil {
			return nil, err
		}
		if got := sha256Hex(b); got != f[1] {
			return nil, fmt.Errorf("%s has sha256 %s, the transcript (line %d) names %s: %w", f[0], got, seq, f[1], ErrMediumContent)
		}
		out = append(out, b)
	}
	return out, nil
}

// journalEnd checks the medium's JournalEnvelopeFile: each of by (the
// keys that authorised the medium, as the previous medium and the new
// metadata give them) signed the end of its journal with its threshold,
// and no other key signed it.
func (a *auditor) journalEnd(ceremony string, by ...tuf.RoleKeys) error {
	return a.check("transcript's signed end", func() (string, error) {
		if _, err := checkJournalEnvelope(a.o.Dir, ceremony, by...); err != nil {
			return "", err
		}
		var parts []string
		for _, b := range by {
			parts = append(parts, fmt.Sprintf("the %s threshold (%d)", b.Role, b.Threshold))
		}
		return fmt.Sprintf("%s signed by %s", JournalEnvelopeFile, strings.Join(parts, " and ")), nil
	})
}

// checklist checks that the checklist is there, is the one the
// transcript's last entry names by its SHA-256 (the signed end signs it
// so), and names file.
func (a *auditor) checklist(name, file string, last TranscriptEntry) error {
	return a.check("checklist", func() (string, error) {
		b, err := os.ReadFile(filepath.Join(a.o.Dir, name))
		if err != nil {
			return "", err
		}
		if got, want := sha256Hex(b), detailString(last, "checklist_sha256"); got != want {
			return "", fmt.Errorf("%s has sha256 %s, the transcript (line %d) names %s: the checklist is not the one the ceremony wrote: %w", name, got, last.Seq, orUnknown(want), ErrMediumContent)
		}
		if file != "" && !strings.Contains(string(b), file) {
			return "", fmt.Errorf("%s does not name %s: %w", name, file, ErrMediumContent)
		}
		return name + " is the one the transcript names" + map[bool]string{true: "", false: " and names " + file}[file == ""], nil
	})
}

func (a *auditor) renewal() error {
	cur, err := a.previousCurrent()
	if err != nil {
		return err
	}
	es, err := a.mediumTranscript("renewal started", "renewal finished")
	if err != nil {
		return err
	}
	last := es[len(es)-1]
	role, file := detailString(last, "role"), detailString(last, "file")
	v, prevV := detailInt(last, "version"), detailInt(last, "previous_version")
	st := &mediumState{medium: MediumRenewal, versions: map[string]int64{}, signed: map[string][]byte{}}
	var renewedBy tuf.RoleKeys
	if err := a.check("renewed "+role, func() (string, error) {
		bs, err := a.onlyFiles(last.Seq, [2]string{file, detailString(last, "sha256")})
		if err != nil {
			return "", err
		}
		b, name := bs[0], filepath.Base(file)
		var (
			old    int64
			signed []byte
			by     tuf.RoleKeys
			common tuf.Common
			same   bool
			checks []AuditSignature
		)
		switch role {
		case tuf.RoleRoot:
			old = cur.root.Signed.Version
			by, _ = cur.root.Signed.RoleKeys(tuf.RoleRoot)
			root, files, err := rootChain(cur.root, filepath.Join(a.o.Dir, "metadata"))
			if err != nil {
				return "", fmt.Errorf("a new root must be signed by the threshold of root v%d (the previous medium's newest) and by its own: %w", old, err)
			}
			if root.Signed.Version != old+1 {
				return "", fmt.Errorf("%s: the chain from root v%d ends at v%d: %w", name, old, root.Signed.Version, tuf.ErrVersion)
			}
			a.rep.Files = append(a.rep.Files, files[1:]...)
			if same, err = OnlyVersionAndExpiry(cur.root, root); err != nil {
				return "", err
			}
			signed, _ = root.SignedBytes()
			common = root.Signed.Common
		case tuf.RoleTargets, stableset.StableRole:
			prev := cur.targets
			by, _ = cur.root.Signed.RoleKeys(tuf.RoleTargets)
			delegator := fmt.Sprintf("%d.root.json", cur.root.Signed.Version)
			if role == stableset.StableRole {
				if cur.stable == nil {
					return "", fmt.Errorf("the previous medium %s holds no stable metadata: %w", a.o.Previous, tuf.ErrMissing)
				}
				prev = cur.stable
				by, _ = cur.targets.Signed.DelegateKeys(stableset.StableRole)
				delegator = fmt.Sprintf("%d.targets.json", cur.targets.Signed.Version)
			}
			old = prev.Signed.Version
			m, err := tuf.Load[tuf.Targets](b, name)
			if err != nil {
				return "", err
			}
			signers, err := verifiedBy(by, m.SignedBytes, m.Signatures)
			if err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
			checks = []AuditSignature{{By: delegator, Threshold: by.Threshold, Signers: signers}}
			if same, err = OnlyVersionAndExpiry(prev, m); err != nil {
				return "", err
			}
			signed, _ = m.SignedBytes()
			common = m.Signed.Common
			a.rep.Files = append(a.rep.Files, AuditFile{File: name, Role: role, Delegator: by.Role, Version: common.Version, Expires: common.Expires.Time().UTC(), Checks: checks})
		default:
			return "", fmt.Errorf("transcript.jsonl:%d: role %q: %w", last.Seq, role, ErrRenewRole)
		}
		if file != fmt.Sprintf("metadata/%d.%s.json", common.Version, role) || common.Version != v || v != old+1 || prevV != old {
			return "", fmt.Errorf("%s is version %d; the transcript (line %d) renews version %d to %d; the previous medium holds version %d: %w", file, common.Version, last.Seq, prevV, v, old, tuf.ErrVersion)
		}
		if !same {
			return "", fmt.Errorf("%s differs from %s v%d on the previous medium in more than version and expires: %w", name, role, old, ErrMediumContent)
		}
		if err := notExpired(name, common.Expires, a.o.At); err != nil {
			return "", err
		}
		st.versions[role], st.signed[role] = v, signed
		a.rep.Versions[role] = v
		renewedBy = by
		return fmt.Sprintf("%s: version %d to %d, signed by the role's keys as the previous medium gives them, nothing changed but version and expires (now %s); not expired", name, old, v, common.Expires), nil
	}); err != nil {
		return err
	}
	if err := a.journalEnd(CeremonyRenewal, renewedBy); err != nil {
		return err
	}
	if err := a.checklist(RenewalChecklist, file, es[len(es)-1]); err != nil {
		return err
	}
	a.rep.state = st
	return nil
}

// rotation checks a root rotation's medium: its root follows the
// previous medium's newest root, signed by that root's threshold and by
// its own (a root only the new keys signed is refused); it drops exactly
// the keys the transcript revokes and adds exactly the keys it
// generated, each with an attestation chain to the trusted attestation
// roots matching the transcript; the checklist names the new root.
func (a *auditor) rotation() error {
	cur, err := a.previousCurrent()
	if err != nil {
		return err
	}
	es, err := a.mediumTranscript("rotation started", "rotation finished")
	if err != nil {
		return err
	}
	last := es[len(es)-1]
	switch sc := detailString(last, "scenario"); sc {
	case ScenarioRootKeyReplaced, ScenarioRootKeyAdded:
		return a.rootKeyRotation(cur, es, sc)
	case ScenarioOnlineKeysReplaced:
		return a.onlineRotation(cur, es)
	case ScenarioTargetsKeyReplaced, ScenarioStableKeyReplaced:
		return a.roleKeyRotation(cur, es, sc)
	default:
		return a.check("rotation", func() (string, error) {
			return "", fmt.Errorf("transcript.jsonl:%d: scenario %q (known: %s): %w", last.Seq, sc, strings.Join([]string{ScenarioRootKeyReplaced, ScenarioRootKeyAdded, ScenarioOnlineKeysReplaced, ScenarioTargetsKeyReplaced, ScenarioStableKeyReplaced}, ", "), ErrMediumContent)
		})
	}
}

func (a *auditor) rootKeyRotation(cur *current, es []TranscriptEntry, scenario string) error {
	last := es[len(es)-1]
	file := detailString(last, "file")
	v, prevV := detailInt(last, "version"), detailInt(last, "previous_version")
	var root *tuf.Metadata[tuf.Root]
	if err := a.check("rotated root", func() (string, error) {
		if _, err := a.onlyFiles(last.Seq, [2]string{file, detailString(last, "sha256")}); err != nil {
			return "", err
		}
		old := cur.root.Signed.Version
		r, files, err := rootChain(cur.root, filepath.Join(a.o.Dir, "metadata"))
		if err != nil {
			return "", fmt.Errorf("a new root must be signed by the threshold of root v%d (the previous medium's newest) and by its own: %w", old, err)
		}
		if r.Signed.Version != old+1 || v != old+1 || prevV != old || file != fmt.Sprintf("metadata/%d.root.json", v) {
			return "", fmt.Errorf("%s: the chain from root v%d on the previous medium ends at v%d; the transcript (line %d) rotates v%d to v%d: %w", file, old, r.Signed.Version, last.Seq, prevV, v, tuf.ErrVersion)
		}
		a.rep.Files = append(a.rep.Files, files[1:]...)
		if err := notExpired(filepath.Base(file), r.Signed.Expires, a.o.At); err != nil {
			return "", err
		}
		oldIDs, newIDs := cur.root.Signed.Roles[tuf.RoleRoot].KeyIDs, r.Signed.Roles[tuf.RoleRoot].KeyIDs
		gone, came := keyIDsDiff(oldIDs, newIDs)
		if rv, ad := detailStrings(last, "revoked"), detailStrings(last, "added"); !slices.Equal(gone, rv) || !slices.Equal(came, ad) {
			return "", fmt.Errorf("%s drops root keys %q and adds %q; the transcript (line %d) revokes %q and adds %q: %w", file, gone, came, last.Seq, rv, ad, ErrMediumContent)
		}
		// A replacement revokes one key and adds one; a keyholder joining
		// adds one and revokes none.
		if wantGone := map[string]int{ScenarioRootKeyReplaced: 1, ScenarioRootKeyAdded: 0}[scenario]; len(gone) != wantGone || len(came) != 1 {
			return "", fmt.Errorf("%s drops %d root key(s) and adds %d; a %s rotation drops %d and adds 1: %w", file, len(gone), len(came), scenario, wantGone, ErrMediumContent)
		}
		if ot, nt := cur.root.Signed.Roles[tuf.RoleRoot].Threshold, r.Signed.Roles[tuf.RoleRoot].Threshold; ot != nt {
			return "", fmt.Errorf("%s sets the root threshold to %d; root v%d's is %d, and a key rotation keeps it: %w", file, nt, old, ot, ErrMediumContent)
		}
		for name, role := range r.Signed.Roles {
			for _, id := range gone {
				if slices.Contains(role.KeyIDs, id) {
					return "", fmt.Errorf("%s still lists the revoked key %s for %s: %w", file, id, name, ErrMediumContent)
				}
			}
		}
		// Nothing but the root role's keys, version and expiry changes.
		probe, err := renewed(r, r.Signed.Version, r.Signed.Expires.Time())
		if err != nil {
			return "", err
		}
		probe.Signed.Roles[tuf.RoleRoot] = cur.root.Signed.Roles[tuf.RoleRoot]
		probe.Signed.Keys = cur.root.Signed.Keys
		if same, err := OnlyVersionAndExpiry(cur.root, probe); err != nil || !same {
			return "", fmt.Errorf("%s changes more than the root role's keys, the version and the expiry: %w", file, ErrMediumContent)
		}
		root = r
		return fmt.Sprintf("%s follows root v%d: signed by its threshold and by its own; revokes %d root key(s), adds %d; nothing else changed; not expired", filepath.Base(file), old, len(gone), len(came)), nil
	}); err != nil {
		return err
	}
	if err := a.newKeys(tuf.RoleRoot, es, "serial, slot, PIN and touch policy and public key matching the transcript"); err != nil {
		return err
	}
	by, err := rotatedRootKeys(cur.root, root)
	if err != nil {
		return err
	}
	if err := a.journalEnd(CeremonyRotation, by...); err != nil {
		return err
	}
	if err := a.checklist(RotationChecklist, file, last); err != nil {
		return err
	}
	signed, _ := root.SignedBytes()
	a.rep.state = &mediumState{medium: MediumRotation, versions: map[string]int64{tuf.RoleRoot: v}, signed: map[string][]byte{tuf.RoleRoot: signed}}
	a.rep.Versions[tuf.RoleRoot] = v
	return nil
}

// checkNewKeys checks that keys/ holds exactly the added keys of role, each
// with its attestation (checkKeyFile).
func checkNewKeys(keysDir, role string, added []string, es []TranscriptEntry, roots *attestationRoots) ([]AuditKey, error) {
	generated := map[string]TranscriptEntry{}
	for _, e := range es {
		if e.Step == "key generated and attested" {
			generated[detailString(e, "keyid")] = e
		}
	}
	ents, err := os.ReadDir(keysDir)
	if err != nil {
		return nil, err
	}
	var out []AuditKey
	for _, ent := range ents {
		base, ok := strings.CutSuffix(ent.Name(), ".pub.json")
		if !ok {
			if !strings.HasSuffix(ent.Name(), ".attestation.pem") {
				return out, fmt.Errorf("keys/%s: not a public key or an attestation: %w", ent.Name(), ErrMediumContent)
			}
			continue
		}
		k, err := checkKeyFile(keysDir, base, map[string][]string{role: added}, generated, roots)
		if err != nil {
			return out, err
		}
		out = append(out, *k)
	}
	if len(out) != len(added) || len(generated) != len(added) {
		return out, fmt.Errorf("keys/ holds %d keys, the transcript generates %d and adds %d to root: %w", len(out), len(generated), len(added), ErrMediumContent)
	}
	return out, nil
}

// onlineRotation checks an online key rotation's medium: root vN+1
// follows the previous medium's root (its threshold and its own) and
// changes nothing but the snapshot and timestamp keys, all new; targets
// vM+1 is signed by the new root's targets threshold and changes nothing
// but unstable's keys, all new; the transcript revokes exactly the old
// online keys and adds exactly the new ones.
func (a *auditor) onlineRotation(cur *current, es []TranscriptEntry) error {
	last := es[len(es)-1]
	rootFile, targetsFile := detailString(last, "file"), detailString(last, "targets_file")
	rv, tv := detailInt(last, "version"), detailInt(last, "targets_version")
	var root *tuf.Metadata[tuf.Root]
	var targets *tuf.Metadata[tuf.Targets]
	if err := a.check("rotated online keys", func() (string, error) {
		bs, err := a.onlyFiles(last.Seq, [2]string{rootFile, detailString(last, "sha256")}, [2]string{targetsFile, detailString(last, "targets_sha256")})
		if err != nil {
			return "", err
		}
		oldRoot, oldTargets := cur.root, cur.targets
		r, files, err := rootChain(oldRoot, filepath.Join(a.o.Dir, "metadata"))
		if err != nil {
			return "", fmt.Errorf("a new root must be signed by the threshold of root v%d (the previous medium's newest) and by its own: %w", oldRoot.Signed.Version, err)
		}
		if r.Signed.Version != oldRoot.Signed.Version+1 || rv != r.Signed.Version || rootFile != fmt.Sprintf("metadata/%d.root.json", rv) {
			return "", fmt.Errorf("%s: the chain from root v%d on the previous medium ends at v%d; the transcript (line %d) names v%d: %w", rootFile, oldRoot.Signed.Version, r.Signed.Version, last.Seq, rv, tuf.ErrVersion)
		}
		a.rep.Files = append(a.rep.Files, files[1:]...)
		name := filepath.Base(targetsFile)
		t, err := tuf.Load[tuf.Targets](bs[1], name)
		if err != nil {
			return "", err
		}
		by, _ := r.Signed.RoleKeys(tuf.RoleTargets)
		signers, err := verifiedBy(by, t.SignedBytes, t.Signatures)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if t.Signed.Version != oldTargets.Signed.Version+1 || tv != t.Signed.Version || targetsFile != fmt.Sprintf("metadata/%d.targets.json", tv) {
			return "", fmt.Errorf("%s is version %d; the previous medium holds targets v%d; the transcript (line %d) names v%d: %w", targetsFile, t.Signed.Version, oldTargets.Signed.Version, last.Seq, tv, tuf.ErrVersion)
		}
		if err := tuf.CheckTopLayout(&t.Signed); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		a.rep.Files = append(a.rep.Files, AuditFile{File: name, Role: tuf.RoleTargets, Delegator: tuf.RoleRoot, Version: t.Signed.Version, Expires: t.Signed.Expires.Time().UTC(),
			Checks: []AuditSignature{{By: filepath.Base(rootFile), Threshold: by.Threshold, Signers: signers}}})
		for _, f := range []struct {
			name string
			e    tuf.Expiry
		}{{filepath.Base(rootFile), r.Signed.Expires}, {name, t.Signed.Expires}} {
			if err := notExpired(f.name, f.e, a.o.At); err != nil {
				return "", err
			}
		}
		// Each online role's keys are all new.
		oldU, _ := oldTargets.Signed.Delegation("unstable")
		newU, ok := t.Signed.Delegation("unstable")
		if !ok {
			return "", fmt.Errorf("%s delegates to no unstable role: %w", name, tuf.ErrLayout)
		}
		var revoked, added []string
		for _, c := range []struct {
			role     string
			old, new []string
		}{
			{tuf.RoleSnapshot, oldRoot.Signed.Roles[tuf.RoleSnapshot].KeyIDs, r.Signed.Roles[tuf.RoleSnapshot].KeyIDs},
			{tuf.RoleTimestamp, oldRoot.Signed.Roles[tuf.RoleTimestamp].KeyIDs, r.Signed.Roles[tuf.RoleTimestamp].KeyIDs},
			{"unstable", oldU.KeyIDs, newU.KeyIDs},
		} {
			for _, id := range c.new {
				if slices.Contains(c.old, id) {
					return "", fmt.Errorf("%s keeps key %s, which the previous medium gives it: after a compromise every online key is replaced: %w", c.role, id, ErrOnlineKeyKept)
				}
			}
			revoked, added = append(revoked, c.old...), append(added, c.new...)
		}
		sort.Strings(revoked)
		sort.Strings(added)
		revoked, added = slices.Compact(revoked), slices.Compact(added)
		if rv, ad := detailStrings(last, "revoked"), detailStrings(last, "added"); !slices.Equal(revoked, rv) || !slices.Equal(added, ad) {
			return "", fmt.Errorf("the new metadata revoke online keys %q and add %q; the transcript (line %d) revokes %q and adds %q: %w", revoked, added, last.Seq, rv, ad, ErrMediumContent)
		}
		// Nothing else changes.
		pr, err := renewed(r, r.Signed.Version, r.Signed.Expires.Time())
		if err != nil {
			return "", err
		}
		pr.Signed.Roles[tuf.RoleSnapshot], pr.Signed.Roles[tuf.RoleTimestamp] = oldRoot.Signed.Roles[tuf.RoleSnapshot], oldRoot.Signed.Roles[tuf.RoleTimestamp]
		pr.Signed.Keys = oldRoot.Signed.Keys
		if same, err := OnlyVersionAndExpiry(oldRoot, pr); err != nil || !same {
			return "", fmt.Errorf("%s changes more than the snapshot and timestamp keys, the version and the expiry: %w", rootFile, ErrMediumContent)
		}
		pt, err := renewed(t, t.Signed.Version, t.Signed.Expires.Time())
		if err != nil {
			return "", err
		}
		d, _ := pt.Signed.Delegation("unstable")
		d.KeyIDs, d.Threshold = oldU.KeyIDs, oldU.Threshold
		pt.Signed.Delegations.Keys = oldTargets.Signed.Delegations.Keys
		if same, err := OnlyVersionAndExpiry(oldTargets, pt); err != nil || !same {
			return "", fmt.Errorf("%s changes more than unstable's keys, the version and the expiry: %w", targetsFile, ErrMediumContent)
		}
		root, targets = r, t
		return fmt.Sprintf("%s and %s follow root v%d and targets v%d: every snapshot, timestamp and unstable key replaced (%d revoked, %d added), nothing else changed; not expired", filepath.Base(rootFile), name, oldRoot.Signed.Version, oldTargets.Signed.Version, len(revoked), len(added)), nil
	}); err != nil {
		return err
	}
	if err := a.recoveryComparison(cur, es); err != nil {
		return err
	}
	rootBy, err := cur.root.Signed.RoleKeys(tuf.RoleRoot)
	if err != nil {
		return err
	}
	if err := a.journalEnd(CeremonyRotation, rootBy); err != nil {
		return err
	}
	if err := a.checklist(RotationChecklist, rootFile, last); err != nil {
		return err
	}
	rs, _ := root.SignedBytes()
	ts, _ := targets.SignedBytes()
	a.rep.state = &mediumState{medium: MediumRotation, versions: map[string]int64{tuf.RoleRoot: rv, tuf.RoleTargets: tv}, signed: map[string][]byte{tuf.RoleRoot: rs, tuf.RoleTargets: ts}}
	a.rep.Versions[tuf.RoleRoot], a.rep.Versions[tuf.RoleTargets] = rv, tv
	return nil
}

// roleKeyRotation checks a targets or stable key rotation's medium.
// Targets: root vN+1 follows the previous root (its threshold and its
// own) and changes nothing but the targets keys; targets vM+1 is signed
// by the new root's targets threshold and changes nothing but version and
// expiry. Stable: targets vM+1 is signed by the previous root's targets
// threshold and changes nothing but the stable delegation's keys, and
// stable vK+1 is signed by the threshold targets vM+1 delegates stable to
// (the revoked key does not count) and changes nothing of the previous
// medium's stable vK but version and expiry (the same ledger and bin
// delegations); the backup state the transcript records names it. Either:
// exactly the revoked and the added key, the new key's attestation.
func (a *auditor) roleKeyRotation(cur *current, es []TranscriptEntry, scenario string) error {
	last := es[len(es)-1]
	role := tuf.RoleTargets
	if scenario == ScenarioStableKeyReplaced {
		role = stableset.StableRole
	}
	targetsFile, tv := detailString(last, "targets_file"), detailInt(last, "targets_version")
	want := [][2]string{{targetsFile, detailString(last, "targets_sha256")}}
	rootFile := detailString(last, "file")
	if role == tuf.RoleTargets {
		want = append(want, [2]string{rootFile, detailString(last, "sha256")})
	}
	stableFile := detailString(last, "stable_file")
	if role == stableset.StableRole {
		want = append(want, [2]string{stableFile, detailString(last, "stable_sha256")})
	}
	st := &mediumState{medium: MediumRotation, versions: map[string]int64{}, signed: map[string][]byte{}}
	if err := a.check("rotated "+role+" key", func() (string, error) {
		bs, err := a.onlyFiles(last.Seq, want...)
		if err != nil {
			return "", err
		}
		oldRoot, oldTargets := cur.root, cur.targets
		root := oldRoot
		var oldIDs, newIDs []string
		if role == tuf.RoleTargets {
			r, files, err := rootChain(oldRoot, filepath.Join(a.o.Dir, "metadata"))
			if err != nil {
				return "", fmt.Errorf("a new root must be signed by the threshold of root v%d (the previous medium's newest) and by its own: %w", oldRoot.Signed.Version, err)
			}
			if r.Signed.Version != oldRoot.Signed.Version+1 || rootFile != fmt.Sprintf("metadata/%d.root.json", r.Signed.Version) {
				return "", fmt.Errorf("%s: the chain from root v%d ends at v%d: %w", rootFile, oldRoot.Signed.Version, r.Signed.Version, tuf.ErrVersion)
			}
			a.rep.Files = append(a.rep.Files, files[1:]...)
			if err := notExpired(filepath.Base(rootFile), r.Signed.Expires, a.o.At); err != nil {
				return "", err
			}
			pr, err := renewed(r, r.Signed.Version, r.Signed.Expires.Time())
			if err != nil {
				return "", err
			}
			pr.Signed.Roles[tuf.RoleTargets], pr.Signed.Keys = oldRoot.Signed.Roles[tuf.RoleTargets], oldRoot.Signed.Keys
			if same, err := OnlyVersionAndExpiry(oldRoot, pr); err != nil || !same {
				return "", fmt.Errorf("%s changes more than the targets keys, the version and the expiry: %w", rootFile, ErrMediumContent)
			}
			oldIDs, newIDs = oldRoot.Signed.Roles[tuf.RoleTargets].KeyIDs, r.Signed.Roles[tuf.RoleTargets].KeyIDs
			rs, _ := r.SignedBytes()
			st.versions[tuf.RoleRoot], st.signed[tuf.RoleRoot] = r.Signed.Version, rs
			a.rep.Versions[tuf.RoleRoot] = r.Signed.Version
			root = r
		}
		name := filepath.Base(targetsFile)
		t, err := tuf.Load[tuf.Targets](bs[0], name)
		if err != nil {
			return "", err
		}
		by, _ := root.Signed.RoleKeys(tuf.RoleTargets)
		signers, err := verifiedBy(by, t.SignedBytes, t.Signatures)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if t.Signed.Version != oldTargets.Signed.Version+1 || tv != t.Signed.Version || targetsFile != fmt.Sprintf("metadata/%d.targets.json", tv) {
			return "", fmt.Errorf("%s is version %d; the previous medium holds targets v%d; the transcript (line %d) names v%d: %w", targetsFile, t.Signed.Version, oldTargets.Signed.Version, last.Seq, tv, tuf.ErrVersion)
		}
		if err := tuf.CheckTopLayout(&t.Signed); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if err := notExpired(name, t.Signed.Expires, a.o.At); err != nil {
			return "", err
		}
		a.rep.Files = append(a.rep.Files, AuditFile{File: name, Role: tuf.RoleTargets, Delegator: tuf.RoleRoot, Version: t.Signed.Version, Expires: t.Signed.Expires.Time().UTC(),
			Checks: []AuditSignature{{By: fmt.Sprintf("%d.root.json", root.Signed.Version), Threshold: by.Threshold, Signers: signers}}})
		pt, err := renewed(t, t.Signed.Version, t.Signed.Expires.Time())
		if err != nil {
			return "", err
		}
		if role == stableset.StableRole {
			od, _ := oldTargets.Signed.Delegation(stableset.StableRole)
			nd, ok := t.Signed.Delegation(stableset.StableRole)
			if !ok {
				return "", fmt.Errorf("%s delegates to no stable role: %w", name, tuf.ErrLayout)
			}
			oldIDs, newIDs = od.KeyIDs, nd.KeyIDs
			pd, _ := pt.Signed.Delegation(stableset.StableRole)
			pd.KeyIDs = od.KeyIDs
			pt.Signed.Delegations.Keys = oldTargets.Signed.Delegations.Keys
		}
		if same, err := OnlyVersionAndExpiry(oldTargets, pt); err != nil || !same {
			return "", fmt.Errorf("%s changes more than the %s keys, the version and the expiry: %w", targetsFile, role, ErrMediumContent)
		}
		if role == stableset.StableRole {
			if err := a.resignedStable(cur, t, stableFile, bs[1], es); err != nil {
				return "", err
			}
		}
		gone, came := keyIDsDiff(oldIDs, newIDs)
		if rv, ad := detailStrings(last, "revoked"), detailStrings(last, "added"); !slices.Equal(gone, rv) || !slices.Equal(came, ad) || len(gone) == 0 {
			return "", fmt.Errorf("the new metadata drop %s keys %q and add %q; the transcript (line %d) revokes %q and adds %q: %w", role, gone, came, last.Seq, rv, ad, ErrMediumContent)
		}
		ts, _ := t.SignedBytes()
		st.versions[tuf.RoleTargets], st.signed[tuf.RoleTargets] = t.Signed.Version, ts
		a.rep.Versions[tuf.RoleTargets] = t.Signed.Version
		if role == stableset.StableRole {
			sb, _ := tuf.Load[tuf.Targets](bs[1], filepath.Base(stableFile))
			ss, _ := sb.SignedBytes()
			st.versions[stableset.StableRole], st.signed[stableset.StableRole] = sb.Signed.Version, ss
			return fmt.Sprintf("stable key %s replaced by %s: %s signed by the threshold the root gives targets, %s by the new stable threshold, nothing else changed (the same ledger and bins); not expired",
				gone[0], came[0], filepath.Base(targetsFile), filepath.Base(stableFile)), nil
		}
		return fmt.Sprintf("%s key %s replaced by %s: %s signed by the threshold the root gives targets, nothing else changed; not expired", role, gone[0], came[0], strings.Join(func() []string {
			var n []string
			for _, w := range want {
				n = append(n, filepath.Base(w[0]))
			}
			return n
		}(), " and ")), nil
	}); err != nil {
		return err
	}
	if err := a.newKeys(role, es, "matching the transcript"); err != nil {
		return err
	}
	// Root authorised a targets key (root vN+1 names it), targets a
	// stable key (targets vM+1 delegates to it).
	endRole := tuf.RoleRoot
	if role == stableset.StableRole {
		endRole = tuf.RoleTargets
	}
	endBy, err := cur.root.Signed.RoleKeys(endRole)
	if err != nil {
		return err
	}
	if err := a.journalEnd(CeremonyRotation, endBy); err != nil {
		return err
	}
	if err := a.checklist(RotationChecklist, targetsFile, last); err != nil {
		return err
	}
	a.rep.state = st
	return nil
}

// resignedStable checks the stable a stable key rotation signed again
// (data, the medium's file named file): signed by the threshold targets
// (the rotation's targets vM+1) delegates stable to; version K+1, K the
// previous medium's newest stable; nothing else changed (the ledger, the
// bins and their keys stay); not expired; the backup state the
// transcript records names its version, its bytes and its ledger.
func (a *auditor) resignedStable(cur *current, targets *tuf.Metadata[tuf.Targets], file string, data []byte, es []TranscriptEntry) error {
	name := filepath.Base(file)
	if cur.stable == nil {
		return fmt.Errorf("the previous medium %s holds no stable metadata to compare %s with: %w", a.o.Previous, name, tuf.ErrMissing)
	}
	m, err := tuf.Load[tuf.Targets](data, name)
	if err != nil {
		return err
	}
	by, err := targets.Signed.DelegateKeys(stableset.StableRole)
	if err != nil {
		return err
	}
	signers, err := verifiedBy(by, m.SignedBytes, m.Signatures)
	if err != nil {
		return fmt.Errorf("%s, against the stable keys targets v%d delegates to: %w", name, targets.Signed.Version, err)
	}
	last := es[len(es)-1]
	old := cur.stable.Signed.Version
	if v := m.Signed.Version; v != old+1 || file != fmt.Sprintf("metadata/%d.stable.json", v) || detailInt(last, "stable_version") != v || detailInt(last, "stable_previous_version") != old {
		return fmt.Errorf("%s is stable version %d; the previous medium holds stable v%d, so the rotation signs v%d; the transcript (line %d) names v%d: %w", file, v, old, old+1, last.Seq, detailInt(last, "stable_version"), tuf.ErrVersion)
	}
	if same, err := OnlyVersionAndExpiry(cur.stable, m); err != nil || !same {
		return fmt.Errorf("%s differs from stable v%d on the previous medium in more than version and expires (its ledger, bins and bin keys must stay): %w", name, old, ErrMediumContent)
	}
	if err := notExpired(name, m.Signed.Expires, a.o.At); err != nil {
		return err
	}
	// The backup state the rotation wrote names this stable.
	var state *TranscriptEntry
	for i := range es {
		if es[i].Step == "backup state" {
			state = &es[i]
		}
	}
	if state == nil {
		return fmt.Errorf("the transcript records no backup state for %s: %w", name, ErrTranscript)
	}
	var lsum string
	if _, _, tf, ok, _ := stableset.LedgerTarget(m); ok {
		lsum = tf.Hashes["sha256"]
	}
	for _, c := range []struct{ field, got, want string }{
		{"ceremony", StateRotation, detailString(*state, "ceremony")},
		{"stable_version", fmt.Sprint(m.Signed.Version), fmt.Sprint(detailInt(*state, "stable_version"))},
		{"stable_sha256", sha256Hex(data), detailString(*state, "stable_sha256")},
		{"ledger_sha256", lsum, detailString(*state, "ledger_sha256")},
	} {
		if c.got != c.want {
			return fmt.Errorf("transcript.jsonl:%d: the backup state names %s %s, %s gives %s: %w", state.Seq, c.field, orUnknown(c.want), name, orUnknown(c.got), ErrTranscript)
		}
	}
	a.rep.Files = append(a.rep.Files, AuditFile{File: name, Role: stableset.StableRole, Delegator: tuf.RoleTargets, Version: m.Signed.Version, Expires: m.Signed.Expires.Time().UTC(),
		Checks: []AuditSignature{{By: fmt.Sprintf("%d.targets.json", targets.Signed.Version), Threshold: by.Threshold, Signers: signers}}})
	a.rep.Versions[stableset.StableRole] = m.Signed.Version
	return nil
}

// handover checks a keyholder handover's record: the statement is the
// one the transcript's end names (by SHA-256) and names the device, both
// keyholders and the time; every key the transcript says the device holds
// is a key the previous medium gives that role, and its signature over
// the statement verifies; the new keyholder's PIN change is recorded.
func (a *auditor) handover() error {
	cur, err := a.previousCurrent()
	if err != nil {
		return err
	}
	es, err := a.mediumTranscript("handover started", "handover finished")
	if err != nil {
		return err
	}
	first, last := es[0], es[len(es)-1]
	// A handover changes no metadata: no version to compare.
	a.rep.state = &mediumState{medium: MediumHandover, versions: map[string]int64{}, signed: map[string][]byte{}}
	var held []string
	if err := a.check("handover", func() (string, error) {
		st, err := os.ReadFile(filepath.Join(a.o.Dir, HandoverStatement))
		if err != nil {
			return "", err
		}
		if got, want := sha256Hex(st), detailString(last, "statement_sha256"); got != want {
			return "", fmt.Errorf("%s has sha256 %s, the transcript (line %d) names %s: %w", HandoverStatement, got, last.Seq, want, ErrMediumContent)
		}
		// The statement's time is the ceremony's; the entry's own time is
		// when it was recorded.
		at, err := time.Parse(time.RFC3339, detailString(first, "statement_time"))
		if err != nil {
			return "", fmt.Errorf("transcript.jsonl:1: statement_time %q: %w", detailString(first, "statement_time"), ErrTranscript)
		}
		device := uint32(detailInt(last, "device"))
		want := handoverStatement(detailString(first, "repository"), device, detailString(last, "from"), detailString(last, "to"), at)
		if !bytes.Equal(st, want) || detailInt(first, "device") != int64(device) || detailString(first, "to") != detailString(last, "to") {
			return "", fmt.Errorf("%s does not state the handover the transcript records (device %d from %q to %q at %s): %w", HandoverStatement, device, detailString(last, "from"), detailString(last, "to"), detailString(first, "statement_time"), ErrMediumContent)
		}
		ids := cur.roleKeyIDs()
		keyring := cur.keyring()
		var signed []string
		pinChanged := false
		for _, e := range es {
			switch e.Step {
			case "PIN changed by the new keyholder":
				pinChanged = detailInt(e, "device") == int64(device)
			case "key held and signed the statement":
				role, id := detailString(e, "role"), detailString(e, "keyid")
				if !slices.Contains(ids[role], id) {
					return "", fmt.Errorf("transcript.jsonl:%d: key %s is not a %s key of the previous medium: %w", e.Seq, id, role, ErrMediumContent)
				}
				k := keyring[id]
				raw, err := hex.DecodeString(detailString(e, "sig"))
				if err != nil || k == nil || k.Verify(st, raw) != nil {
					return "", fmt.Errorf("transcript.jsonl:%d: the %s key %s's signature over %s does not verify: %w", e.Seq, role, id, HandoverStatement, tuf.ErrThreshold)
				}
				signed = append(signed, id)
			}
		}
		sort.Strings(signed)
		if len(signed) == 0 || !slices.Equal(signed, detailStrings(last, "keyids")) {
			return "", fmt.Errorf("the transcript's keys that signed (%q) are not those its end names (%q): %w", signed, detailStrings(last, "keyids"), ErrMediumContent)
		}
		if !pinChanged {
			return "", fmt.Errorf("the transcript records no PIN change by the new keyholder: %w", ErrTranscript)
		}
		held = signed
		return fmt.Sprintf("device %d from %q to %q: %d key(s) of the metadata signed the statement; the new keyholder set a new PIN", device, detailString(last, "from"), detailString(last, "to"), len(signed)), nil
	}); err != nil {
		return err
	}
	if err := a.checklist(HandoverChecklist, "", last); err != nil {
		return err
	}
	// Every key the device holds, as the previous medium gives them,
	// signs the end.
	return a.journalEnd(CeremonyHandover, handoverKeys(uint32(detailInt(last, "device")), held, cur.keyring()))
}

// keyIDsDiff returns, sorted, the key ids of old not in new (gone) and of
// new not in old (came).
func keyIDsDiff(old, new []string) (gone, came []string) {
	for _, id := range old {
		if !slices.Contains(new, id) {
			gone = append(gone, id)
		}
	}
	for _, id := range new {
		if !slices.Contains(old, id) {
			came = append(came, id)
		}
	}
	sort.Strings(gone)
	sort.Strings(came)
	return gone, came
}

// newKeys checks, as "attestations", that keys/ holds exactly the role's
// keys the transcript's last entry adds, each attested (checkNewKeys);
// what says how the report describes the match.
func (a *auditor) newKeys(role string, es []TranscriptEntry, what string) error {
	roots, err := a.attestationRoots()
	if err != nil {
		return err
	}
	last := es[len(es)-1]
	return a.check("attestations", func() (string, error) {
		ks, err := checkNewKeys(filepath.Join(a.o.Dir, "keys"), role, detailStrings(last, "added"), es, roots)
		a.rep.Keys = ks
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d new key(s), each generated on its device (attestation chain to %s), %s", len(ks), roots.describe(), what), nil
	})
}

// recoveryComparison checks an online rotation's recovery comparison
// (RecoveryComparison): the file is the one the transcript names, in its
// canonical form, its summary is the transcript's, it compares against
// the newest stable of the previous medium and that stable's ledger; with
// --export, it is recomputed from the export and the previous medium's
// ledger and must be the same, or the first differing path is named.
func (a *auditor) recoveryComparison(cur *current, es []TranscriptEntry) error {
	last := es[len(es)-1]
	file := detailString(last, "recovery_file")
	var found *stableset.Recovery
	err := a.check("recovery comparison", func() (string, error) {
		if file == "" {
			if _, err := os.Stat(filepath.Join(a.o.Dir, RecoveryComparison)); err == nil {
				return "", fmt.Errorf("%s is on the medium but the transcript (line %d) names no comparison: %w", RecoveryComparison, last.Seq, ErrMediumContent)
			}
			if a.o.Export != "" {
				return "", fmt.Errorf("the rotation made no recovery comparison to check --export %s against: %w", a.o.Export, ErrMediumContent)
			}
			return "none made (the rotation was given no export)", nil
		}
		if file != RecoveryComparison {
			return "", fmt.Errorf("transcript.jsonl:%d: recovery_file %q, want %q: %w", last.Seq, file, RecoveryComparison, ErrMediumContent)
		}
		b, err := os.ReadFile(filepath.Join(a.o.Dir, file))
		if err != nil {
			return "", err
		}
		if got, want := sha256Hex(b), detailString(last, "recovery_sha256"); got != want {
			return "", fmt.Errorf("%s has sha256 %s, the transcript (line %d) names %s: %w", file, got, last.Seq, want, ErrMediumContent)
		}
		rec, err := stableset.ParseRecovery(b, file)
		if err != nil {
			return "", err
		}
		var step *TranscriptEntry
		for i := range es {
			if es[i].Step == recoveryStep {
				step = &es[i]
			}
		}
		if step == nil {
			return "", fmt.Errorf("the transcript has no %q entry for %s: %w", recoveryStep, file, ErrTranscript)
		}
		for _, c := range []struct {
			field     string
			got, want string
		}{
			{"stable_version", fmt.Sprint(rec.StableVersion), fmt.Sprint(detailInt(*step, "stable_version"))},
			{"stable_paths", fmt.Sprint(rec.Stable), fmt.Sprint(detailInt(*step, "stable_paths"))},
			{"changed", fmt.Sprint(rec.Count(stableset.RecoveryChanged)), fmt.Sprint(detailInt(*step, "changed"))},
			{"missing", fmt.Sprint(rec.Count(stableset.RecoveryMissing)), fmt.Sprint(detailInt(*step, "missing"))},
			{"ledger_sha256", hex.EncodeToString(rec.LedgerSHA256[:]), detailString(*step, "ledger_sha256")},
			{"export_sha256", hex.EncodeToString(rec.ExportSHA256[:]), detailString(*step, "export_sha256")},
			{"sha256", sha256Hex(b), detailString(*step, "sha256")},
		} {
			if c.got != c.want {
				return "", fmt.Errorf("%s says %s %s; the transcript (line %d) says %s: %w", file, c.field, c.got, step.Seq, c.want, ErrMediumContent)
			}
		}
		// It compares against the stable set the previous medium holds.
		var sv int64
		var lsum string
		if cur.stable != nil {
			sv = cur.stable.Signed.Version
			if _, _, tf, ok, _ := stableset.LedgerTarget(cur.stable); ok {
				lsum = tf.Hashes["sha256"]
			}
		}
		if rec.StableVersion != sv || (rec.StableVersion > 0 && hex.EncodeToString(rec.LedgerSHA256[:]) != lsum) {
			return "", fmt.Errorf("%s compares against stable version %d (ledger %x); the previous medium's newest stable is version %d (ledger %s): %w", file, rec.StableVersion, rec.LedgerSHA256, sv, orUnknown(lsum), ErrMediumContent)
		}
		found = rec
		return fmt.Sprintf("%s: stable version %d, %d stable paths, %d changed, %d missing, as the transcript records", file, rec.StableVersion, rec.Stable, rec.Count(stableset.RecoveryChanged), rec.Count(stableset.RecoveryMissing)), nil
	})
	if err != nil || found == nil || a.o.Export == "" {
		return err
	}
	return a.input("recovery comparison recomputed", func() (string, error) {
		again, err := compareRecovery(cur.targets, a.o.Previous, a.o.Export)
		if err != nil {
			return "", err
		}
		if d := found.FirstDifference(again); d != "" {
			return "", fmt.Errorf("%s does not match the comparison of %s with the previous medium's ledger: %s: %w", RecoveryComparison, a.o.Export, d, stableset.ErrRecovery)
		}
		return fmt.Sprintf("from %s and the previous medium's ledger: the same %d findings", a.o.Export, len(again.Findings)), nil
	})
}
