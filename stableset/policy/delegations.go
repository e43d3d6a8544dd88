package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/export"
)

// Delegation hands one project to its developers (docs/policy.md,
// "Developer delegations"): stable delegates the project's paths, before
// the bins and terminating, to the role delegation.RoleName(Project),
// whose metadata Threshold of Keys sign.
type Delegation struct {
	Project   string
	Threshold int
	// Keys are the developers' keys, in the policy's order, each with
	// its proof of possession (a DSSE envelope, compact JSON) as the
	// input medium delivered it.
	Keys []DeveloperKey
}

// DeveloperKey is one developer key and its proof of possession.
type DeveloperKey struct {
	Key   *keys.Key
	Proof []byte
}

// KeyIDs returns the delegation's key ids, in the policy's order.
func (d *Delegation) KeyIDs() []string {
	out := make([]string, len(d.Keys))
	for i, k := range d.Keys {
		out[i] = k.Key.ID()
	}
	return out
}

// Delegated returns the policy's delegation of project.
func (p *Policy) Delegated(project string) (*Delegation, bool) {
	for i := range p.Delegations {
		if p.Delegations[i].Project == project {
			return &p.Delegations[i], true
		}
	}
	return nil, false
}

// MaxDeveloperKeys bounds the keys of one delegation.
const MaxDeveloperKeys = 16

// delegationFile is one entry of the policy's delegations list.
type delegationFile struct {
	Project   string             `json:"project"`
	Threshold int64              `json:"threshold"`
	Keys      []developerKeyFile `json:"keys"`
}

type developerKeyFile struct {
	Key   keys.Key        `json:"key"`
	Proof json.RawMessage `json:"proof"`
}

// delegations checks the policy's delegations: each project
// PEP 503-normalised, listed once, not excluded; 1 to MaxDeveloperKeys
// keys, each a valid ed25519 or ECDSA P-256 key in TUF form, none twice;
// a threshold from 1 to the number of keys; each key with a proof (a
// JSON object; VerifyProofs checks it for a ceremony).
func (f *policyFile) delegations(p *Policy, fail func(field string, sentinel error, format string, args ...any) error) error {
	p.Delegations = []Delegation{}
	if f.Delegations == nil {
		return nil
	}
	seen := map[string]bool{}
	for i, df := range *f.Delegations {
		field := "delegations[" + strconv.Itoa(i) + "]"
		if err := export.CheckProject(df.Project); err != nil {
			return fail(field+".project", err, "")
		}
		if seen[df.Project] {
			return fail(field+".project", export.ErrBadValue, "%q is delegated twice", df.Project)
		}
		seen[df.Project] = true
		if p.excluded[df.Project] {
			return fail(field+".project", export.ErrBadValue, "%q is also excluded: an excluded project stays with the online role, a delegated one goes to its developers", df.Project)
		}
		if len(df.Keys) == 0 || len(df.Keys) > MaxDeveloperKeys {
			return fail(field+".keys", export.ErrBadValue, "%d keys, want 1 to %d", len(df.Keys), MaxDeveloperKeys)
		}
		if df.Threshold < 1 || df.Threshold > int64(len(df.Keys)) {
			return fail(field+".threshold", export.ErrBadValue, "%d, want 1 to the number of keys (%d)", df.Threshold, len(df.Keys))
		}
		d := Delegation{Project: df.Project, Threshold: int(df.Threshold)}
		ids := map[string]int{}
		for j, kf := range df.Keys {
			kfield := field + ".keys[" + strconv.Itoa(j) + "]"
			k := kf.Key
			if _, err := k.Public(); err != nil {
				return fail(kfield+".key", export.ErrBadValue, "%v", err)
			}
			if k.KeyType == keys.KeyTypeECDSALegacy {
				return fail(kfield+".key.keytype", export.ErrBadValue, "%q: write %q", k.KeyType, keys.KeyTypeECDSA)
			}
			id := k.ID()
			if o, dup := ids[id]; dup {
				return fail(kfield+".key", export.ErrBadValue, "key %s is keys[%d] too", id, o)
			}
			ids[id] = j
			var proof bytes.Buffer
			if err := json.Compact(&proof, kf.Proof); err != nil || !bytes.HasPrefix(proof.Bytes(), []byte("{")) {
				return fail(kfield+".proof", export.ErrType, "want the proof's DSSE envelope, a JSON object")
			}
			d.Keys = append(d.Keys, DeveloperKey{Key: &k, Proof: proof.Bytes()})
		}
		p.Delegations = append(p.Delegations, d)
	}
	slices.SortFunc(p.Delegations, func(a, b Delegation) int { return strings.Compare(a.Project, b.Project) })
	return nil
}

// VerifyProofs checks every key's proof of possession for the ceremony
// that signs stable version version of repository: each must be signed by
// its key alone over a statement naming the repository, the project, that
// version and the key (delegation.VerifyProof). The error names the
// policy file and the field, and wraps delegation.ErrProof.
func (p *Policy) VerifyProofs(name, repository string, version int64) error {
	for i := range p.Delegations {
		d := &p.Delegations[i]
		for j, k := range d.Keys {
			field := fmt.Sprintf("%s: delegations (%s) keys[%d].proof", name, d.Project, j)
			want := delegation.Proof{Repository: repository, Project: d.Project, StableVersion: version, KeyID: k.Key.ID()}
			if err := delegation.VerifyProof(k.Proof, field, k.Key, want); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendDelegations encodes the delegations for MarshalJSON.
func (p *Policy) appendDelegations(b *bytes.Buffer) {
	if len(p.Delegations) == 0 {
		return
	}
	b.WriteString(",\n  \"delegations\": [")
	for i, d := range p.Delegations {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, "\n    {\"project\": %q, \"threshold\": %d, \"keys\": [", d.Project, d.Threshold)
		for j, k := range d.Keys {
			if j > 0 {
				b.WriteByte(',')
			}
			key, _ := json.Marshal(k.Key)
			fmt.Fprintf(b, "\n      {\"key\": %s,\n       \"proof\": %s}", key, k.Proof)
		}
		b.WriteString("]}")
	}
	b.WriteString("\n  ]")
}
