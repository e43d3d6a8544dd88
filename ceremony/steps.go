package ceremony

import (
	"fmt"
	"strconv"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
)

// A ceremony is a script of numbered steps, as the IANA root KSK
// ceremonies write theirs: each step says who acts, what is done, what is
// checked or read aloud, and leaves blanks for what the room writes down
// (initials, times, digests as PGP words). The script is built from the
// configuration alone, before the ceremony, so that the printed run sheet
// (runsheet.go) and the screens of the guided ceremony number the same
// steps the same way; the transcript names steps by their ID.

// ActorKind is who performs a step.
type ActorKind string

// The people in the room.
const (
	ActorAdministrator ActorKind = "administrator"
	ActorKeyholder     ActorKind = "keyholder"
	ActorWitness       ActorKind = "witness"
	ActorAll           ActorKind = "all"
)

// Actor is who acts in a step: the administrator, a witness, everyone, or
// the keyholder of one device (named when the configuration names
// keyholders).
type Actor struct {
	Kind   ActorKind
	Device uint32 // the keyholder's device
	Name   string // the keyholder's name; "" when none is configured
}

func (a Actor) String() string {
	switch a.Kind {
	case ActorKeyholder:
		if a.Name == "" {
			return fmt.Sprintf("keyholder of device %d", a.Device)
		}
		return fmt.Sprintf("keyholder %s (device %d)", a.Name, a.Device)
	case ActorWitness:
		return "witnesses"
	case ActorAll:
		return "everyone in the room"
	}
	return string(a.Kind)
}

// BlankKind is what the room writes into a blank.
type BlankKind string

// Blanks on the run sheet.
const (
	BlankInitials  BlankKind = "initials"
	BlankTime      BlankKind = "time"      // UTC, hh:mm
	BlankText      BlankKind = "text"      // a short free text: a bag number, a name
	BlankTick      BlankKind = "tick"      // a box ticked when the check holds
	BlankWords     BlankKind = "words"     // a digest as PGP words, one per byte
	BlankHex       BlankKind = "hex"       // a digest as hex, in groups of four digits
	BlankSignature BlankKind = "signature" // a person's signature
)

// Blank is one field the room fills in.
type Blank struct {
	Kind  BlankKind
	Label string
	// Bytes is the length of the digest a words or hex blank holds.
	Bytes int
}

// Comparison is a value printed on the run sheet for the room to compare
// with what the screen shows, such as the check words the last ceremony
// wrote down.
type Comparison struct {
	Label  string
	Digest []byte
}

// Step is one numbered step of a ceremony.
type Step struct {
	// Number is the step's number, from 1, in the order of the ceremony:
	// the run sheet and the screens show it.
	Number int
	// ID names the step stably ("generate/root/10000001"), for the
	// screens and the transcript.
	ID    string
	Actor Actor
	// Do is what is done; Check what is checked or read aloud.
	Do    string
	Check string
	// Touch: the step uses a device key whose touch policy asks for a
	// touch (the screen says "touch the YubiKey with serial N now").
	Touch bool
	// Device and Slot: the device (and slot) the step uses, if any;
	// Role the TUF role whose key is generated or signs.
	Device  uint32
	Slot    string
	Role    string
	Blanks  []Blank
	Compare []Comparison
}

// Section is a group of steps, printed on its own pages.
type Section struct {
	Title string
	Steps []Step
}

// ScriptKey is one key of an offline role: where it lives and who holds
// it.
type ScriptKey struct {
	Device    uint32
	Slot      string
	Keyholder string
}

// ScriptRole is an offline role of the ceremony.
type ScriptRole struct {
	Name      string
	Threshold int
	Keys      []ScriptKey
}

// Script is a whole ceremony, numbered.
type Script struct {
	// Ceremony is "bootstrap" or "stable".
	Ceremony   string
	Repository string
	Roles      []ScriptRole
	KeyPolicy  KeyPolicy
	// Previous is the last ceremony as the backup medium knows it, when
	// given (stable only).
	Previous *PreviousCeremony
	Sections []Section
}

// Steps returns every step in order.
func (s *Script) Steps() []Step {
	var out []Step
	for _, sec := range s.Sections {
		out = append(out, sec.Steps...)
	}
	return out
}

// Step returns the step with the given ID.
func (s *Script) Step(id string) (Step, bool) {
	for _, st := range s.Steps() {
		if st.ID == id {
			return st, true
		}
	}
	return Step{}, false
}

// PreviousCeremony is what the last ceremony left on the backup medium,
// for the room to compare with the last run sheet and with the screen.
type PreviousCeremony struct {
	// File is the state file on the backup medium.
	File string
	// Ceremony is "bootstrap" or "stable"; StableVersion the stable
	// version it left; Time its clock.
	Ceremony      string
	StableVersion int64
	Time          time.Time
	// StateSHA256 is the digest the state's check words are made of
	// (BackupState.CheckDigest): the check words the last ceremony read
	// aloud and wrote on its run sheet.
	StateSHA256 [32]byte
	// TranscriptSHA256 is the last ceremony's transcript digest.
	TranscriptSHA256 [32]byte
	// Repository is the repository the backup medium is for.
	Repository string
}

// Ceremonies the scripts describe.
const (
	CeremonyBootstrap = "bootstrap"
	CeremonyStable    = "stable"
	CeremonyRenewal   = "renewal"
	CeremonyRotation  = "rotation"
	CeremonyHandover  = "handover"
)

// KeyIDCheckBytes is how much of a key id the room reads aloud and writes
// down: the first 8 bytes, as 4 groups of hex and 8 PGP words.
const KeyIDCheckBytes = 8

// digestBlanks are the blanks for a SHA-256 digest read aloud.
func digestBlanks(what string) []Blank {
	return []Blank{{Kind: BlankWords, Label: what + " (PGP words)", Bytes: 32}}
}

func initialsTime(who ...string) []Blank {
	var out []Blank
	for _, w := range who {
		out = append(out, Blank{Kind: BlankInitials, Label: "initials: " + w})
	}
	return append(out, Blank{Kind: BlankTime, Label: "time (UTC)"})
}

// scriptBuilder numbers steps as they are added.
type scriptBuilder struct {
	s *Script
	n int
}

func (b *scriptBuilder) section(title string) {
	b.s.Sections = append(b.s.Sections, Section{Title: title})
}

func (b *scriptBuilder) add(st Step) {
	b.n++
	st.Number = b.n
	sec := &b.s.Sections[len(b.s.Sections)-1]
	sec.Steps = append(sec.Steps, st)
}

func (c *Config) keyholder(serial uint32) Actor {
	return Actor{Kind: ActorKeyholder, Device: serial, Name: c.Keyholder(serial)}
}

// offlineRoles lists the configuration's offline roles in ceremony order.
func (c *Config) offlineRoles() []ScriptRole {
	var out []ScriptRole
	for _, r := range []struct {
		name string
		spec RoleSpec
	}{{"root", c.Root}, {"targets", c.Targets}, {"stable", c.Stable}} {
		sr := ScriptRole{Name: r.name, Threshold: r.spec.Threshold}
		for _, k := range r.spec.Keys {
			sr.Keys = append(sr.Keys, ScriptKey{Device: k.Device, Slot: k.Slot, Keyholder: c.Keyholder(k.Device)})
		}
		out = append(out, sr)
	}
	return out
}

// touches reports whether signing with a key of the configuration's
// policy asks for a touch.
func (c *Config) touches() bool {
	return hsm.TouchPolicy(c.KeyPolicy.TouchPolicy) != hsm.TouchPolicyNever
}

func (b *scriptBuilder) opening(c *Config) {
	admin := Actor{Kind: ActorAdministrator}
	b.section("Opening")
	b.add(Step{ID: "airgap", Actor: admin,
		Do:    "Show the room that the laptop is air-gapped: keyceremony lists every network interface that is up other than loopback, and the room acknowledges each one by name.",
		Check: "No interface other than loopback is up, or every one listed is named here and acknowledged.",
		Blanks: append([]Blank{{Kind: BlankText, Label: "interfaces up besides loopback (or \"none\")"}},
			initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "clock", Actor: admin,
		Do:    "Read the laptop's UTC date and time aloud; a witness compares it with an independent clock and the administrator confirms it on the screen.",
		Check: "The two clocks agree within a minute.",
		Blanks: append([]Blank{{Kind: BlankText, Label: "laptop clock (UTC)"}, {Kind: BlankText, Label: "reference clock (UTC)"}},
			initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "binary", Actor: Actor{Kind: ActorWitness},
		Do:    "Compute the sha256 of the keyceremony binary on the laptop (sha256sum) and compare it with the digest of the reproducible build made on two other machines.",
		Check: "Two witnesses read the digest group by group; it matches the reproducible build.",
		Blanks: append([]Blank{{Kind: BlankHex, Label: "sha256 of the keyceremony binary", Bytes: 32}},
			initialsTime("witness 1", "witness 2")...)})
}

func (b *scriptBuilder) devices(c *Config) {
	b.section("Devices")
	for _, serial := range c.Devices() {
		b.add(deviceStep(c, serial))
	}
}

// deviceStep is the step in which a device comes out of its bag.
func deviceStep(c *Config, serial uint32) Step {
	return Step{ID: "device/" + strconv.FormatUint(uint64(serial), 10), Actor: c.keyholder(serial), Device: serial,
		Do:    fmt.Sprintf("Take the YubiKey with serial %d out of its sealed bag and insert it when the screen asks for it.", serial),
		Check: "The bag's number matches the last record and its seal is intact; the serial on the screen is the one printed on the device.",
		Blanks: append([]Blank{{Kind: BlankText, Label: "bag number"}, {Kind: BlankTick, Label: "seal intact"}},
			initialsTime("keyholder", "witness")...)}
}

func (b *scriptBuilder) closing(c *Config) {
	b.section("Closing")
	for _, serial := range c.Devices() {
		b.add(Step{ID: "return/" + strconv.FormatUint(uint64(serial), 10), Actor: c.keyholder(serial), Device: serial,
			Do:     fmt.Sprintf("Remove the YubiKey with serial %d and seal it in a new tamper-evident bag.", serial),
			Check:  "A witness reads the new bag's number aloud.",
			Blanks: append([]Blank{{Kind: BlankText, Label: "new bag number"}}, initialsTime("keyholder", "witness")...)})
	}
	b.add(Step{ID: "exceptions", Actor: Actor{Kind: ActorAdministrator},
		Do:    "Record every exception: a step not done as written, repeated or done differently, with its number, what happened and what the room decided (after a failure, every orphan key the screen lists, with the command that clears it).",
		Check: "The room agrees the list is complete (write \"none\" if there were none).",
		Blanks: []Blank{{Kind: BlankText, Label: "exception (step, what happened, decision)"}, {Kind: BlankText, Label: "exception (step, what happened, decision)"},
			{Kind: BlankText, Label: "exception (step, what happened, decision)"}, {Kind: BlankInitials, Label: "initials: administrator"}}})
	sigs := []Blank{{Kind: BlankSignature, Label: "administrator"}}
	seen := map[uint32]bool{}
	for _, r := range c.offlineRoles() {
		for _, k := range r.Keys {
			if seen[k.Device] {
				continue
			}
			seen[k.Device] = true
			sigs = append(sigs, Blank{Kind: BlankSignature, Label: c.keyholder(k.Device).String()})
		}
	}
	for i := 1; i <= 3; i++ {
		sigs = append(sigs, Blank{Kind: BlankSignature, Label: fmt.Sprintf("witness %d (name)", i)})
	}
	b.add(Step{ID: "signatures", Actor: Actor{Kind: ActorAll},
		Do:     "Everyone in the room signs this run sheet: it is the record of the ceremony.",
		Check:  "Every page is initialled; the digests written here match the transcript.",
		Blanks: sigs})
}

// BootstrapSteps is the script of a bootstrap ceremony for c: opening
// (air gap, clock, binary, media), each device out of its bag, the
// pre-flight of every device, each key generated and attested, each
// signature of root, targets and stable v1, the self-check and read-back,
// the media, and closing.
func BootstrapSteps(c *Config) *Script {
	b := &scriptBuilder{s: &Script{Ceremony: CeremonyBootstrap, Repository: c.Repository, Roles: c.offlineRoles(), KeyPolicy: c.KeyPolicy}}
	admin := Actor{Kind: ActorAdministrator}
	b.opening(c)
	b.add(Step{ID: "media", Actor: admin,
		Do:     "Show the room two new removable media, label one \"bootstrap output\" and the other \"backup\", and insert them.",
		Check:  "Both are empty (the screen lists their contents).",
		Blanks: append([]Blank{{Kind: BlankText, Label: "output medium label"}, {Kind: BlankText, Label: "backup medium label"}}, initialsTime("administrator", "witness")...)})
	// The devices come one at a time (one port is enough): each is
	// inserted for its pre-flight, again to generate all its keys, and
	// again to sign everything its keys sign.
	b.section("Pre-flight")
	b.add(Step{ID: "preflight/metadata", Actor: admin,
		Do:     "keyceremony builds the metadata the configuration describes with placeholder keys made in memory and checks it as the written metadata will be checked: sizes, strict loading, thresholds, delegations, expiry.",
		Check:  "The screen reports the configuration's metadata checked. Nothing is generated yet.",
		Blanks: initialsTime("administrator")})
	for _, serial := range c.Devices() {
		b.add(deviceStep(c, serial))
		b.add(Step{ID: "preflight/" + strconv.FormatUint(uint64(serial), 10), Actor: c.keyholder(serial), Device: serial,
			Do:    fmt.Sprintf("Type the PIN of the YubiKey with serial %d when the screen names it (it shows the tries left). Nothing is generated yet. Take the YubiKey out when the screen says its pre-flight passed.", serial),
			Check: "The screen reports the PIN verified, the firmware allowed for the device's roles, every target slot empty and the device's attestation certificate chained to the trusted roots.",
			Blanks: append([]Blank{{Kind: BlankText, Label: "firmware shown"}, {Kind: BlankTick, Label: "pre-flight passed"}},
				initialsTime("keyholder")...)})
	}
	b.section("Key generation")
	for _, serial := range c.Devices() {
		for _, r := range b.s.Roles {
			for _, k := range r.Keys {
				if k.Device != serial {
					continue
				}
				b.add(Step{ID: fmt.Sprintf("generate/%s/%d", r.Name, k.Device), Actor: c.keyholder(k.Device), Device: k.Device, Slot: k.Slot, Role: r.Name,
					Do: fmt.Sprintf("Insert the YubiKey with serial %d when the screen asks for it (all its keys are generated in one turn). Generate the %s key in slot %s; keyceremony checks the device's attestation that the key was made inside it.", k.Device, r.Name, k.Slot),
					Check: fmt.Sprintf("The screen reports the attestation verified for serial %d, slot %s. Read aloud the key id's first %d bytes (hex and PGP words); a witness writes them here.",
						k.Device, k.Slot, KeyIDCheckBytes),
					Blanks: append([]Blank{{Kind: BlankHex, Label: "key id, first 8 bytes", Bytes: KeyIDCheckBytes}, {Kind: BlankWords, Label: "key id, first 8 bytes (PGP words)", Bytes: KeyIDCheckBytes}},
						initialsTime("keyholder", "witness")...)})
			}
		}
	}
	b.section("Signatures")
	for _, serial := range c.Devices() {
		for _, r := range b.s.Roles {
			for _, k := range r.Keys {
				if k.Device != serial {
					continue
				}
				do := fmt.Sprintf("Insert the YubiKey with serial %d when the screen asks for it (it signs everything its keys sign in one turn). Sign %s v1 with the %s key (slot %s).", k.Device, r.Name, r.Name, k.Slot)
				if c.touches() {
					do += " Touch the YubiKey when the screen says so (it blinks)."
				}
				b.add(Step{ID: fmt.Sprintf("sign/%s/%d", r.Name, k.Device), Actor: c.keyholder(k.Device), Device: k.Device, Slot: k.Slot, Role: r.Name, Touch: c.touches(),
					Do:     do,
					Check:  "The screen reports the signature verified against the key generated in this ceremony.",
					Blanks: initialsTime("keyholder")})
			}
		}
	}
	b.add(Step{ID: "selfcheck", Actor: admin,
		Do:     "keyceremony verifies root v1, targets v1 and stable v1 as a TUF client would: every signature, threshold and delegation.",
		Check:  fmt.Sprintf("The screen reports root %d-of-%d, targets %d-of-%d and stable %d-of-%d verified.", c.Root.Threshold, len(c.Root.Keys), c.Targets.Threshold, len(c.Targets.Keys), c.Stable.Threshold, len(c.Stable.Keys)),
		Blanks: initialsTime("administrator", "witness")})
	b.section("Media")
	b.add(Step{ID: "readback", Actor: admin,
		Do:     "keyceremony writes the output medium (metadata, public keys, attestation chains, transcript), reads every file back, and writes SHA256SUMS last.",
		Check:  "The screen reports the read-back verified. The administrator reads the SHA256SUMS digest aloud as PGP words; a witness writes them here.",
		Blanks: append(digestBlanks(SumsFile+" digest"), initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "transcript", Actor: Actor{Kind: ActorAll},
		Do:     "The administrator reads the transcript digest aloud as PGP words; a witness writes them here; everyone compares with the screen.",
		Check:  "The words written match the screen word for word.",
		Blanks: append(digestBlanks("transcript digest"), initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "backup", Actor: admin,
		Do:     "keyceremony writes the first state of the backup medium; the administrator reads its check words aloud and a witness writes them here. The next ceremony compares them.",
		Check:  "The words written match the screen word for word.",
		Blanks: append(digestBlanks("backup state check words"), initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "seal-media", Actor: admin,
		Do:     "Unmount and remove both media. Seal the output medium in a bag for the repository (it publishes metadata/) and give a copy of metadata/1.root.json to the auditors; seal the backup medium in a bag that stays with the ceremony's custodian.",
		Check:  "A witness reads both bag numbers aloud.",
		Blanks: append([]Blank{{Kind: BlankText, Label: "output medium bag number"}, {Kind: BlankText, Label: "backup medium bag number"}}, initialsTime("administrator", "witness")...)})
	b.closing(c)
	return b.s
}

// StableSteps is the script of a stable signing for the stable role c
// configures (the bootstrap configuration: its stable keys and
// keyholders). prev, if not nil, is the last ceremony as the backup medium
// knows it: its check words are printed for the room to compare.
func StableSteps(c *Config, prev *PreviousCeremony) *Script {
	b := &scriptBuilder{s: &Script{Ceremony: CeremonyStable, Repository: c.Repository, KeyPolicy: c.KeyPolicy, Previous: prev}}
	for _, r := range c.offlineRoles() {
		if r.Name == "stable" {
			b.s.Roles = []ScriptRole{r}
		}
	}
	admin := Actor{Kind: ActorAdministrator}
	b.opening(c)
	if prev != nil {
		for i := range b.s.Sections[0].Steps {
			if st := &b.s.Sections[0].Steps[i]; st.ID == "clock" {
				st.Check += fmt.Sprintf(" The clock is after the last ceremony's, %s (keyceremony refuses an earlier one).", prev.Time.UTC().Format(time.RFC3339))
			}
		}
	}
	b.add(Step{ID: "media", Actor: admin,
		Do:     "Insert the input medium from the repository (the export and the published metadata/ and ledger/), the ceremony's backup medium, and a new medium labelled \"stable output\".",
		Check:  "The output medium is empty; the backup medium's bag number matches the last run sheet and its seal is intact.",
		Blanks: append([]Blank{{Kind: BlankText, Label: "backup medium bag number"}, {Kind: BlankText, Label: "output medium label"}}, initialsTime("administrator", "witness")...)})
	b.devices(stableOnly(c))
	b.section("Inputs")
	backup := Step{ID: "backup-check", Actor: Actor{Kind: ActorAll},
		Do:     "keyceremony reads the backup medium's newest state and shows its check words; the administrator reads them aloud.",
		Check:  "They match, word for word, the check words the last ceremony wrote on its run sheet; keyceremony refuses a published state that is not the one the backup medium names.",
		Blanks: append([]Blank{{Kind: BlankTick, Label: "check words match the last run sheet"}}, initialsTime("administrator", "witness")...)}
	if prev != nil {
		backup.Compare = []Comparison{
			{Label: fmt.Sprintf("check words of %s (stable version %d, %s ceremony of %s)", prev.File, prev.StableVersion, prev.Ceremony, prev.Time.UTC().Format(time.RFC3339)), Digest: prev.StateSHA256[:]},
			{Label: "the last ceremony's transcript digest", Digest: prev.TranscriptSHA256[:]},
		}
	} else {
		backup.Blanks = append(digestBlanks("backup state check words, as shown"), backup.Blanks...)
	}
	b.add(backup)
	b.add(Step{ID: "trusted-root", Actor: Actor{Kind: ActorWitness},
		Do:     "Compare the trusted root (the auditors' copy of 1.root.json from the bootstrap) with the one the ceremony uses: sha256sum, read group by group.",
		Check:  "The digests match.",
		Blanks: append([]Blank{{Kind: BlankHex, Label: "sha256 of the trusted root", Bytes: 32}}, initialsTime("witness")...)})
	b.section("Review")
	b.add(Step{ID: "diff", Actor: admin,
		Do:    "keyceremony reads the whole export, verifies the published stable set from the trusted root, applies the policy and shows the one-screen summary: what was compared (the export's and the policy's SHA-256), the files per category and reason, the largest projects by change, the limits and the decisions.",
		Check: "The room reads the summary aloud and writes the counts here; every crossed limit and every changed file is decided, with its reason, in the decisions file, and the diff computed again with it.",
		Blanks: append([]Blank{{Kind: BlankText, Label: "files added"}, {Kind: BlankText, Label: "files held back"}, {Kind: BlankText, Label: "files removed"},
			{Kind: BlankText, Label: "files changed"}, {Kind: BlankText, Label: "decisions made"}, {Kind: BlankText, Label: "new stable version"}}, initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "digest", Actor: Actor{Kind: ActorAll},
		Do:     "The administrator reads the diff digest aloud as PGP words; a witness writes them here; every keyholder compares them with the screen.",
		Check:  "The words match the screen word for word: this digest, and nothing else, is what the keyholders approve and sign.",
		Blanks: append(digestBlanks("diff digest"), initialsTime("administrator", "witness")...)})
	var stable ScriptRole
	if len(b.s.Roles) == 1 {
		stable = b.s.Roles[0]
	}
	b.section(fmt.Sprintf("Approval and signatures (%d of %d stable keyholders)", stable.Threshold, len(stable.Keys)))
	for _, k := range stable.Keys {
		do := fmt.Sprintf("Insert the YubiKey with serial %d when the screen asks for it. Approve the diff digest by typing its check words as read aloud, then sign stable and the signed diff with the stable key (slot %s); take the YubiKey out when the screen says the turn is done (it is asked for once more, for the transcript's end).", k.Device, k.Slot)
		if c.touches() {
			do += " Touch the YubiKey when the screen says so (it blinks)."
		}
		b.add(Step{ID: fmt.Sprintf("sign/stable/%d", k.Device), Actor: c.keyholder(k.Device), Device: k.Device, Slot: k.Slot, Role: "stable", Touch: c.touches(),
			Do:     do,
			Check:  fmt.Sprintf("The screen reports the signature verified. Keyholders not present: tick \"absent\"; at least %d must sign.", stable.Threshold),
			Blanks: append([]Blank{{Kind: BlankTick, Label: "signed"}, {Kind: BlankTick, Label: "absent"}}, initialsTime("keyholder")...)})
	}
	b.section("Media")
	b.add(Step{ID: "readback", Actor: admin,
		Do:     "keyceremony signs the bins with keys made for this ceremony, writes the output medium (stable metadata, ledger, index pages, signed diff, transcript), reads every file back, and writes SHA256SUMS last.",
		Check:  "The screen reports the read-back verified: every signature, the ledger, the signed diff and the transcript. The administrator reads the SHA256SUMS digest aloud as PGP words; a witness writes them here.",
		Blanks: append(digestBlanks(SumsFile+" digest"), initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "transcript", Actor: Actor{Kind: ActorAll},
		Do:     "The administrator reads the transcript digest aloud as PGP words; a witness writes them here; everyone compares with the screen.",
		Check:  "The words written match the screen word for word.",
		Blanks: append(digestBlanks("transcript digest"), initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "backup", Actor: admin,
		Do:     "keyceremony writes the next state of the backup medium; the administrator reads its check words aloud and a witness writes them here. The next ceremony compares them.",
		Check:  "The words written match the screen word for word.",
		Blanks: append(digestBlanks("backup state check words"), initialsTime("administrator", "witness")...)})
	b.add(Step{ID: "seal-media", Actor: admin,
		Do:     "Unmount and remove the media. The input medium goes back to the repository; seal the output medium in a bag for the repository (it publishes stable/ as it is); seal the backup medium in a bag that stays with the ceremony's custodian.",
		Check:  "A witness reads both bag numbers aloud.",
		Blanks: append([]Blank{{Kind: BlankText, Label: "output medium bag number"}, {Kind: BlankText, Label: "backup medium bag number"}}, initialsTime("administrator", "witness")...)})
	b.closing(stableOnly(c))
	return b.s
}

// stableOnly is c with only its stable role's devices, for the steps
// that go through the devices present at a stable signing.
func stableOnly(c *Config) *Config {
	s := *c
	s.Root, s.Targets = RoleSpec{}, RoleSpec{}
	return &s
}
