package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset"
	"github.com/keyceremony/keyceremony/stableset/decisions"
	"github.com/keyceremony/keyceremony/stableset/signeddiff"
	"github.com/keyceremony/keyceremony/stableset/synth"
	"github.com/keyceremony/keyceremony/tuf"
)

// auditFixture is what three ceremonies wrote: a bootstrap and two
// stable signings (stable v2, then v3 from the published state), on soft
// devices whose stable keys the tests also hold, as a ceremony's
// keyholders do.
type auditFixture struct {
	boot, media1, media2 string
	rootFile, softCA     string
	export1, export2     string // the exports the first and second signings read
	backupBoot           string // a copy of the backup medium as the bootstrap left it
	backup1              string // a copy of the backup medium as the first signing left it
	published1           string // the published state the second signing started from
	meta1                []stableset.MetaEntry
	repo                 *simRepo
	root                 *tuf.Metadata[tuf.Root]
	targets              *tuf.Metadata[tuf.Targets]
	devices              map[uint32]hsm.Device
}

var (
	auditOnce sync.Once
	auditFx   *auditFixture
	auditErr  error
)

// auditMedia builds the fixture once per test binary, under the shared
// CA's directory (which TestMain removes). Tests copy a medium before
// they edit it.
func auditMedia(t *testing.T) *auditFixture {
	t.Helper()
	ca := sharedCA(t)
	auditOnce.Do(func() {
		auditFx, auditErr = buildAuditMedia(ca, filepath.Join(caDir, "ca"), filepath.Join(caDir, "audit"))
	})
	if auditErr != nil {
		t.Fatal(auditErr)
	}
	return auditFx
}

func buildAuditMedia(ca *soft.CA, caPath, dir string) (*auditFixture, error) {
	fx := &auditFixture{devices: map[uint32]hsm.Device{}, softCA: caPath}
	for _, s := range demoSerials {
		d, err := soft.Create(filepath.Join(dir, "devs", fmt.Sprint(s)), s, ca, soft.CreateOptions{KDF: soft.KDFTest})
		if err != nil {
			return nil, err
		}
		fx.devices[s] = d
	}
	pins := func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := newSimRepo(now)
	if err != nil {
		return nil, err
	}
	fx.repo = repo
	fx.boot, fx.media1, fx.media2 = filepath.Join(dir, "boot"), filepath.Join(dir, "media1"), filepath.Join(dir, "media2")
	backup := filepath.Join(dir, "backup")
	if err := os.Mkdir(backup, 0o755); err != nil {
		return nil, err
	}
	cfg := demoConfig(repo.online())
	cfg.Repository = "pypi" // synth's exports
	b := &Bootstrap{Config: cfg, Devices: fx.devices, PIN: pins, Roots: ca.Pool(), Now: now, Version: "test", Backup: backup}
	boot, err := b.Run(fx.boot)
	if err != nil {
		return nil, err
	}
	fx.root, fx.targets, fx.rootFile = boot.Root, boot.Targets, filepath.Join(fx.boot, "metadata", "1.root.json")
	fx.backupBoot = filepath.Join(dir, "backup-boot")
	if err := copyDir(backup, fx.backupBoot); err != nil {
		return nil, err
	}
	gen1 := now.Add(-91 * 24 * time.Hour)
	exp1, exp2 := filepath.Join(dir, "export1.jsonl"), filepath.Join(dir, "export2.jsonl")
	fx.export1, fx.export2 = exp1, exp2
	w, err := os.Create(exp1)
	if err != nil {
		return nil, err
	}
	if err := synth.Generate(w, synth.Params{Seed: 3, Files: 2000, Generated: gen1}); err != nil {
		return nil, err
	}
	w.Close()
	var meta []stableset.MetaEntry
	sign := func(published, export, out string, at time.Time) error {
		s := &StableSigning{Root: boot.Root, Published: published, Export: export, Devices: fx.devices, PIN: pins, Now: at, Backup: backup}
		d, err := s.Diff()
		if err != nil {
			return err
		}
		// The room keeps the first changed file's old entry and drops
		// any other (confirm_above.changed is 0: each needs a decision).
		// Each backdated file is confirmed held back (a red flag too).
		var lines []string
		changed := 0
		if err := d.Entries(func(e *stableset.DiffEntry) error {
			if e.Category == stableset.Changed {
				choice, why := "drop", "both contents are suspect"
				if changed == 0 {
					choice, why = "keep-old", "PyPI never re-uploads a file"
				}
				changed++
				lines = append(lines, `{"path": "`+e.Path+`", "decision": "`+choice+`", "reason": "`+why+`"}`+"\n")
			}
			if e.Reason == stableset.ReasonBackdated {
				lines = append(lines, `{"flag": "backdated", "subject": "`+e.Path+`", "decision": "confirm", "reason": "held back; the repository is asked why"}`+"\n")
			}
			return nil
		}); err != nil {
			return err
		}
		if len(lines) > 0 {
			d.Close()
			decFile := out + ".decisions.jsonl"
			if err := os.WriteFile(decFile, []byte(strings.Join(lines, "")), 0o644); err != nil {
				return err
			}
			if s.Decisions, err = decisions.Load(decFile); err != nil {
				return err
			}
			if d, err = s.Diff(); err != nil {
				return err
			}
		}
		approve := d.Digest
		d.Close()
		r, err := s.Sign(approve, out)
		if err != nil {
			return err
		}
		meta = r.Meta
		return r.Diff.Close()
	}
	if err := sign(fx.boot, exp1, fx.media1, now); err != nil {
		return nil, fmt.Errorf("first stable signing: %w", err)
	}
	fx.meta1, fx.backup1 = meta, filepath.Join(dir, "backup-1")
	if err := copyDir(backup, fx.backup1); err != nil {
		return nil, err
	}
	pub := filepath.Join(dir, "published")
	fx.published1 = pub
	for _, c := range [][2]string{
		{filepath.Join(fx.boot, "metadata"), filepath.Join(pub, "metadata")},
		{filepath.Join(fx.media1, "stable", "metadata"), filepath.Join(pub, "metadata")},
		{filepath.Join(fx.media1, "stable", "ledger"), filepath.Join(pub, "ledger")},
	} {
		if err := copyDir(c[0], c[1]); err != nil {
			return nil, err
		}
	}
	in, err := os.Open(exp1)
	if err != nil {
		return nil, err
	}
	w, err = os.Create(exp2)
	if err != nil {
		return nil, err
	}
	_, err = synth.Next(in, w, synth.NextParams{Seed: 4, NewFiles: 200, Deletions: 5, ChangedHash: 2, Backdated: 2})
	in.Close()
	w.Close()
	if err != nil {
		return nil, err
	}
	if err := sign(pub, exp2, fx.media2, now); err != nil {
		return nil, fmt.Errorf("second stable signing: %w", err)
	}
	return fx, nil
}

func copyDir(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// TestAuditMedia: every medium the three ceremonies wrote verifies from
// the trusted root, each against its predecessor.
func TestAuditMedia(t *testing.T) {
	fx := auditMedia(t)
	for _, c := range []struct {
		name string
		o    AuditOptions
		want Medium
		// detail a check must carry
		check, detail string
	}{
		{"bootstrap", AuditOptions{Dir: fx.boot, SoftCA: fx.softCA}, MediumBootstrap, "attestations", "8 keys"},
		{"first stable", AuditOptions{Dir: fx.media1, Previous: fx.boot}, MediumStable, "versions against the previous medium", "starts from nothing"},
		{"second stable", AuditOptions{Dir: fx.media2, Repository: fx.boot, Previous: fx.media1}, MediumStable, "versions against the previous medium", "starts from the previous medium's stable version 2 and its ledger"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Root = fx.rootFile
			rep, err := Audit(c.o)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Valid || rep.Outcome != "valid" || rep.Medium != c.want {
				t.Fatalf("report %+v", rep)
			}
			found := false
			for _, ck := range rep.Checks {
				found = found || (ck.Check == c.check && ck.OK && strings.Contains(ck.Detail, c.detail))
			}
			if !found {
				t.Fatalf("no check %q saying %q in %+v", c.check, c.detail, rep.Checks)
			}
			if rep.Transcript == nil || rep.Transcript.Entries == 0 || len(rep.Files) == 0 {
				t.Fatalf("report lacks transcript or files: %+v", rep)
			}
		})
	}
}

// TestAuditRefusesTamperedMedia edits a copy of a medium as an attacker
// who handles the media (or an auditor given the wrong inputs) would;
// each must be refused as invalid, naming what is wrong.
func TestAuditRefusesTamperedMedia(t *testing.T) {
	fx := auditMedia(t)
	other := newFixture(t)
	otherBoot, err := other.bootstrap().Run(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	attacker := newAttackerCA(t)
	otherRoot := filepath.Join(t.TempDir(), "other-root.json")
	b, _ := otherBoot.Root.MarshalFile()
	if err := os.WriteFile(otherRoot, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		medium string // boot, media1 or media2
		opts   func(o *AuditOptions)
		edit   func(t *testing.T, dir string)
		want   string
	}{
		{"a leaf bin edited", "media2", nil, func(t *testing.T, dir string) {
			editFirst(t, filepath.Join(dir, "stable", "metadata", "3.stable-*.*.json"), `"length":`, `"length":1`)
		}, "3.stable-"},
		{"stable edited", "media2", nil, func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, "stable", "metadata", "3.stable.json"), `"version":3`, `"version":4`)
		}, "3.stable.json"},
		{"the ledger edited", "media2", nil, func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, "stable", "ledger", "3.ledger"), 200)
		}, "ledger/3.ledger"},
		{"the ledger cut short, stable re-signed over it", "media2", nil, func(t *testing.T, dir string) {
			// The read-back reads the ledger once: its bytes match what
			// stable signs, and the records that do not read are still
			// refused, naming the ledger.
			p := filepath.Join(dir, "stable", "ledger", "3.ledger")
			b := mustRead(t, p)
			b = b[:len(b)/2]
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			fx.resignTargets(t, filepath.Join(dir, "stable", "metadata", "3.stable.json"), "stable", func(tg *tuf.Targets) {
				tg.Targets["ledger/3.ledger"] = tuf.TargetFile{Length: int64(len(b)), Hashes: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
			}, nil)
		}, "stable/ledger/3.ledger: ledger offset"},
		{"a signed diff naming another new ledger", "media2", nil, func(t *testing.T, dir string) {
			fx.resign(t, dir, func(st *signeddiff.Statement) { st.NewLedgerSHA256[0] ^= 1 })
		}, "stable/ledger/3.ledger has digest"},
		{"a signed diff that does not match the ledger", "media2", nil, func(t *testing.T, dir string) {
			fx.resign(t, dir, func(st *signeddiff.Statement) { st.Counts.Added++ })
		}, "diff.canonical: the counts is"},
		{"a signed diff from another previous ledger", "media2", func(o *AuditOptions) { o.Previous = fx.media1 }, func(t *testing.T, dir string) {
			fx.resign(t, dir, func(st *signeddiff.Statement) { st.PreviousLedgerSHA256[0] ^= 1 })
		}, "diff.canonical: previous-ledger-sha256 is"},
		{"the other ceremony's signed diff", "media2", nil, func(t *testing.T, dir string) {
			for _, f := range []string{"signed-diff.json", "diff.canonical", "policy.json", DecisionsFile} {
				copyFile(t, filepath.Join(fx.media1, f), filepath.Join(dir, f))
			}
		}, "stable/ledger/2.ledger: no such file"},
		{"a ceremony that signed a file as expedited that policy.json does not expedite", "media2", nil, func(t *testing.T, dir string) {
			canon := filepath.Join(dir, "diff.canonical")
			b, err := os.ReadFile(canon)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte("\nadded\t-\t"), []byte("\nadded\texpedited\t"), 1)
			if err := os.WriteFile(canon, b, 0o644); err != nil {
				t.Fatal(err)
			}
			fx.resign(t, dir, func(st *signeddiff.Statement) { st.DiffSHA256 = sha256.Sum256(b) })
		}, "which policy.json does not expedite: expedited file refused"},
		{"a signed diff signature edited", "media2", nil, func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, "signed-diff.json"), `"payload": "ey`, `"payload": "ez`)
		}, "signed-diff.json"},
		{"policy.json edited", "media2", nil, func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, "policy.json"), `"min_age_days": 90`, `"min_age_days": 9`)
		}, "policy.json"},
		{"a transcript line removed in the middle", "boot", nil, func(t *testing.T, dir string) {
			dropLine(t, filepath.Join(dir, "transcript.jsonl"), 5)
		}, "transcript.jsonl:5: seq 6"},
		{"the transcript's end cut", "media2", nil, func(t *testing.T, dir string) {
			dropLine(t, filepath.Join(dir, "transcript.jsonl"), -1)
		}, "the transcript is cut"},
		{"the bootstrap transcript's end cut", "boot", nil, func(t *testing.T, dir string) {
			dropLine(t, filepath.Join(dir, "transcript.jsonl"), -1)
		}, "the transcript is cut"},
		{"a transcript re-chained around another diff", "media2", nil, func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "diff approved and stable signed" {
					e.Detail["diff_digest"] = strings.Repeat("ab", 32)
				}
			})
		}, "approved diff abab"},
		{"a transcript re-chained around another export, its end signed by the stable keys", "media2", nil, func(t *testing.T, dir string) {
			rechainInputs(t, fx, dir, "export_trailer_sha256")
		}, `"stable inputs" records export_trailer_sha256 "abab`},
		{"a transcript re-chained around another policy, its end signed by the stable keys", "media2", nil, func(t *testing.T, dir string) {
			rechainInputs(t, fx, dir, "policy_sha256")
		}, `"stable inputs" records policy_sha256 "abab`},
		{"a transcript re-chained around another previous ledger, its end signed by the stable keys", "media2", nil, func(t *testing.T, dir string) {
			rechainInputs(t, fx, dir, "previous_ledger_sha256")
		}, `"stable inputs" records previous_ledger_sha256 "abab`},
		{"a transcript re-chained around another export file, given --export", "media2", func(o *AuditOptions) { o.Previous, o.Export = fx.media1, fx.export2 }, func(t *testing.T, dir string) {
			rechainInputs(t, fx, dir, "export_sha256")
		}, `"stable inputs" records export_sha256 "abab`},
		{"a transcript re-chained with another PIN policy", "boot", nil, func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "key generated and attested" && e.Detail["role"] == "root" {
					e.Detail["pin_policy"] = "never"
				}
			})
			// An insider holding the root keys signs the new end; the
			// attestations still refuse it.
			fx.resignJournal(t, dir, CeremonyBootstrap, 0)
		}, "(transcript.jsonl:6): chained to the soft CA " + fx.softCA + " (INSECURE): attestation pin_policy: always, want never"},
		{"a transcript re-chained to a time the attestations do not cover", "boot", nil, func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "key generated and attested" {
					e.Time = "2001-01-01T00:00:00Z"
				}
			})
			// An insider holding the root keys signs the new end; the
			// attestations still refuse it.
			fx.resignJournal(t, dir, CeremonyBootstrap, 0)
		}, "dates covering the ceremony time 2001-01-01T00:00:00Z"},
		{"a transcript re-chained without the root keys", "boot", nil, func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "key generated and attested" && e.Detail["role"] == "root" {
					e.Detail["pin_policy"] = "never"
				}
			})
		}, "transcript.dsse.json signs keyceremony-transcript \"bootstrap\" with 18 entries ending"},
		{"a transcript's end signed by one stable key", "media2", nil, func(t *testing.T, dir string) {
			fx.resignJournal(t, dir, CeremonyStable, 1)
		}, "stable (transcript)"},
		{"a transcript's envelope removed", "boot", nil, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, JournalEnvelopeFile)); err != nil {
				t.Fatal(err)
			}
		}, "transcript.dsse.json is missing"},
		{"an attestation for another key", "boot", nil, func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "keys", "root-10000002-9c.attestation.pem"), filepath.Join(dir, "keys", "root-10000001-9c.attestation.pem"))
		}, "keys/root-10000001-9c.attestation.pem (transcript.jsonl:6): chained to the soft CA " + fx.softCA + " (INSECURE): attestation serial: 10000002, want 10000001"},
		{"an attestation of another slot", "boot", nil, func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "keys", "targets-10000001-82.attestation.pem"), filepath.Join(dir, "keys", "root-10000001-9c.attestation.pem"))
		}, "keys/root-10000001-9c.attestation.pem (transcript.jsonl:6): chained to the soft CA " + fx.softCA + " (INSECURE): attestation key: "},
		{"another role's key under a root key's name", "boot", nil, func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "keys", "targets-10000001-82.pub.json"), filepath.Join(dir, "keys", "root-10000001-9c.pub.json"))
		}, "is not a root key of the metadata"},
		{"a key's attestation removed", "boot", nil, func(t *testing.T, dir string) {
			for _, s := range []string{".pub.json", ".attestation.pem"} {
				if err := os.Remove(filepath.Join(dir, "keys", "stable-10000003-83"+s)); err != nil {
					t.Fatal(err)
				}
			}
		}, "has no attestation in keys/"},
		{"attestations to the soft CA without --soft-ca", "boot", func(o *AuditOptions) { o.SoftCA = "" }, nil, "attestation does not chain to a trusted root"},
		{"an attestation for the right key chaining to an attacker's CA", "boot", nil, func(t *testing.T, dir string) {
			attacker.forge(t, filepath.Join(dir, "keys"), "root-10000001-9c")
			rewriteSums(t, dir)
		}, `keys/root-10000001-9c.attestation.pem (transcript.jsonl:6): device attestation certificate "keyceremony soft PIV Attestation 10000001 (INSECURE)": attestation does not chain to a trusted root`},
		{"--attestation-ca naming another CA than the one the keys chain to", "boot", func(o *AuditOptions) { o.SoftCA, o.AttestationCA = "", attacker.file }, nil,
			"attestation does not chain to a trusted root: x509: certificate signed by unknown authority (and against " + attacker.file + " (NOT Yubico's)"},
		{"the run sheet naming another repository", "boot", nil, func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, "runsheet.md"), "Repository: pypi", "Repository: evil")
		}, "runsheet.md does not name the repository"},
		{"a replayed stable with --previous", "media1", func(o *AuditOptions) { o.Previous = fx.media2; o.Repository = fx.boot }, nil,
			"stable version 2 on %s goes back from version 3 on the previous medium"},
		{"a replayed bootstrap with --previous", "boot", func(o *AuditOptions) { o.Previous = fx.media2 }, nil,
			"stable version 1 on %s goes back from version 3 on the previous medium"},
		{"the wrong trusted root", "boot", func(o *AuditOptions) { o.Root = otherRoot }, nil, "differs from the trusted root of the same version"},
		{"the wrong trusted root for stable media", "media2", func(o *AuditOptions) { o.Root = otherRoot }, nil, "differs from the trusted root of the same version"},
		{"one leaf bin served under another bin's name", "media2", nil, func(t *testing.T, dir string) {
			bins, _ := filepath.Glob(filepath.Join(dir, "stable", "metadata", "3.stable-*.*.json"))
			copyFile(t, bins[0], bins[1])
		}, "3.stable-0-1.04-07.json: role stable-0-1.04-07: 0 of 1 required signatures valid"},
		{"a leaf bin missing", "media2", nil, func(t *testing.T, dir string) {
			bins, _ := filepath.Glob(filepath.Join(dir, "stable", "metadata", "3.stable-*.*.json"))
			if err := os.Remove(bins[0]); err != nil {
				t.Fatal(err)
			}
		}, "3.stable-0-1.00-03.json: no such file"},
		{"a stray file on stable media", "media2", nil, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "stable", "metadata", "3.evil.json"), []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "3.evil.json"},
		{"an index page that does not match its bin entry", "media2", nil, func(t *testing.T, dir string) {
			tars, _ := filepath.Glob(filepath.Join(dir, "stable", "pages", "*.tar"))
			flipByte(t, tars[0], 700)
		}, "stable/pages/00.tar: simple/giposa/index.html has length 8079 and sha256 54485ee8"},
		{"one stable signature counted twice toward the threshold", "media2", nil, func(t *testing.T, dir string) {
			fx.resignTargets(t, filepath.Join(dir, "stable", "metadata", "3.stable.json"), "stable", nil, func(m *tuf.Metadata[tuf.Targets]) {
				m.Signatures = []tuf.Signature{m.Signatures[0], m.Signatures[0]}
			})
		}, "3.stable.json"},
		{"a bin delegated with terminating set", "media2", nil, func(t *testing.T, dir string) {
			fx.resignTargets(t, filepath.Join(dir, "stable", "metadata", "3.stable.json"), "stable", func(tg *tuf.Targets) {
				tg.Delegations.Roles[0].Terminating = true
			}, nil)
		}, "3.stable.json: bin stable-0-1 is terminating (a path it lacks would never reach unstable)"},
		{"unstable delegated before stable", "boot", nil, func(t *testing.T, dir string) {
			fx.resignTargets(t, filepath.Join(dir, "metadata", "1.targets.json"), "targets", func(tg *tuf.Targets) {
				r := tg.Delegations.Roles
				r[0], r[1] = r[1], r[0]
			}, nil)
		}, "1.targets.json"},
		{"a key id that does not match its key", "boot", nil, func(t *testing.T, dir string) {
			fx.resignTargets(t, filepath.Join(dir, "metadata", "1.targets.json"), "targets", func(tg *tuf.Targets) {
				d := &tg.Delegations.Roles[0]
				k := tg.Delegations.Keys[d.KeyIDs[0]]
				delete(tg.Delegations.Keys, d.KeyIDs[0])
				d.KeyIDs[0] = strings.Repeat("ab", 32)
				tg.Delegations.Keys[d.KeyIDs[0]] = k
			}, nil)
		}, strings.Repeat("ab", 32)},
		{"a root whose version skips", "boot", nil, func(t *testing.T, dir string) {
			fx.resignRoot(t, filepath.Join(dir, "metadata", "1.root.json"), filepath.Join(dir, "metadata", "3.root.json"), 3)
		}, "3.root.json"},
		{"a target moved to another leaf bin, both re-signed by the attacker's key", "media2", nil, func(t *testing.T, dir string) {
			// Without the bins' keys (they never left the ceremony's
			// memory), the attacker signs with their own.
			attacker, err := keys.GenerateECDSA()
			if err != nil {
				t.Fatal(err)
			}
			editLeaves(t, dir, func(leaves map[string]*tuf.Bin, names []string) map[string]keys.Signer {
				moveTarget(leaves[names[0]], leaves[names[1]])
				return map[string]keys.Signer{names[0]: attacker, names[1]: attacker}
			})
		}, "3.stable-0-1.00-03.json: role stable-0-1.00-03: 0 of 1 required signatures valid"},
		{"a leaf target outside its leaf's prefixes, every signature valid", "media2", nil, func(t *testing.T, dir string) {
			// An insider holding the stable keys gives the first mid
			// role a key of theirs, the mid gives each of its leaves
			// one, and a file moves from the first leaf to the second:
			// the same stable set, each file signed by the key
			// delegated to it, but no client looks the file up there.
			fx.forgeMid(t, dir, func(leaves map[string]*tuf.Bin, names []string) { moveTarget(leaves[names[0]], leaves[names[1]]) })
		}, "3.stable-0-1.04-07.json lists packages/"},
		{"two entries' sha256 swapped in a leaf bin, every signature valid", "media2", nil, func(t *testing.T, dir string) {
			fx.forgeMid(t, dir, func(leaves map[string]*tuf.Bin, names []string) {
				var files []*tuf.BinTarget
				for i := range leaves[names[0]].Targets {
					if tg := &leaves[names[0]].Targets[i]; strings.HasPrefix(tg.Path, "packages/") {
						files = append(files, tg)
					}
				}
				files[0].SHA256, files[1].SHA256 = files[1].SHA256, files[0].SHA256
			})
		}, "the ledger and the bins list different stable sets (first in stable/metadata/3.stable-0-1.00-03.json, prefixes [00 01 02 03]: an entry's path, length or hashes differ from the ledger's)"},
		{"stable listing a target outside targets' delegation to it, signed by the stable keys", "media2", nil, func(t *testing.T, dir string) {
			fx.resignTargets(t, filepath.Join(dir, "stable", "metadata", "3.stable.json"), "stable", func(tg *tuf.Targets) {
				tg.Targets["evil.tar.gz"] = tuf.TargetFile{Length: 1, Hashes: map[string]string{"sha256": strings.Repeat("ab", 32)}}
			}, nil)
		}, "3.stable.json lists evil.tar.gz, outside the delegation to stable (paths"},
		{"a bin whose signature's key id is not its delegation's (another bin's file, key id rewritten)", "media2", nil, func(t *testing.T, dir string) {
			mid, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(dir, "stable", "metadata", "3.stable-0-1.json")), "mid")
			if err != nil {
				t.Fatal(err)
			}
			a, b := mid.Signed.Delegations.Roles[0], mid.Signed.Delegations.Roles[1]
			md := filepath.Join(dir, "stable", "metadata")
			bin := mustRead(t, filepath.Join(md, "3."+b.Name+".json"))
			bin = bytes.Replace(bin, []byte(b.KeyIDs[0]), []byte(a.KeyIDs[0]), 1)
			if err := os.WriteFile(filepath.Join(md, "3."+a.Name+".json"), bin, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "3.stable-0-1.00-03.json: role stable-0-1.00-03: 0 of 1 required signatures valid"},
		{"root expired", "boot", func(o *AuditOptions) { o.At = time.Now().AddDate(2, 0, 0) }, nil, "1.root.json expired at"},
		{"stable expired", "media2", func(o *AuditOptions) { o.At = time.Now().AddDate(0, 7, 0) }, nil, "3.stable.json expired at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := map[string]string{"boot": fx.boot, "media1": fx.media1, "media2": fx.media2}[c.medium]
			dir := filepath.Join(t.TempDir(), c.medium)
			if err := copyDir(src, dir); err != nil {
				t.Fatal(err)
			}
			o := AuditOptions{Root: fx.rootFile, Dir: dir, Repository: fx.boot, SoftCA: fx.softCA}
			if c.medium == "boot" {
				o.Repository = ""
			}
			if c.opts != nil {
				c.opts(&o)
			}
			// The untouched copy verifies (unless the options alone are
			// what is wrong).
			if c.edit != nil {
				if _, err := Audit(o); err != nil {
					t.Fatalf("before the edit: %v", err)
				}
				c.edit(t, dir)
			}
			rep, err := Audit(o)
			if err == nil {
				t.Fatal("accepted")
			}
			want := c.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, dir)
			}
			t.Log(err)
			if !errors.Is(err, ErrInvalidMedium) || errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), want) {
				t.Fatalf("want an invalid medium naming %q, got %v", want, err)
			}
			if rep.Valid || rep.Outcome != "invalid" || rep.Error != err.Error() {
				t.Fatalf("report: valid %v outcome %q error %q", rep.Valid, rep.Outcome, rep.Error)
			}
			if last := rep.Checks[len(rep.Checks)-1]; last.OK {
				t.Fatalf("the last check passed: %+v", last)
			}
		})
	}
}

// TestAuditCouldNotVerify: inputs that cannot be read are not an invalid
// medium.
func TestAuditCouldNotVerify(t *testing.T) {
	fx := auditMedia(t)
	empty := t.TempDir()
	for _, c := range []struct {
		name string
		o    AuditOptions
		want error
	}{
		{"no trusted root", AuditOptions{Root: filepath.Join(empty, "root.json"), Dir: fx.boot}, nil},
		{"no such medium", AuditOptions{Root: fx.rootFile, Dir: filepath.Join(empty, "none")}, nil},
		{"not a medium", AuditOptions{Root: fx.rootFile, Dir: empty}, ErrUnknownMedium},
		{"stable media without targets", AuditOptions{Root: fx.rootFile, Dir: fx.media2}, ErrNoTargets},
		{"stable media with stable media as targets", AuditOptions{Root: fx.rootFile, Dir: fx.media2, Repository: fx.media1}, ErrNoTargets},
		{"no such previous medium", AuditOptions{Root: fx.rootFile, Dir: fx.boot, SoftCA: fx.softCA, Previous: filepath.Join(empty, "none")}, nil},
		{"no such attestation CA", AuditOptions{Root: fx.rootFile, Dir: fx.boot, AttestationCA: filepath.Join(empty, "ca.pem")}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Audit(c.o)
			if !errors.Is(err, ErrUnreadable) || errors.Is(err, ErrInvalidMedium) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("want could not verify (%v), got %v", c.want, err)
			}
			if rep.Outcome != "could not verify" {
				t.Fatalf("outcome %q", rep.Outcome)
			}
		})
	}
}

// resignTargets edits the targets-shaped metadata file (edit, then sign
// with the keyholders' role keys: "targets" or "stable"; then sigs edits
// the signatures), as keyholders could.
func (fx *auditFixture) resignTargets(t *testing.T, file, role string, edit func(*tuf.Targets), sigs func(*tuf.Metadata[tuf.Targets])) {
	t.Helper()
	m, err := tuf.Load[tuf.Targets](mustRead(t, file), file)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&m.Signed)
		m.Signatures = nil
		if err := m.Sign(fx.signers(t, role)...); err != nil {
			t.Fatal(err)
		}
	}
	if sigs != nil {
		sigs(m)
	}
	b, err := m.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The snapshot fragment beside a stable medium's metadata carries no
	// signature: whoever edits stable edits it too.
	frag := filepath.Join(filepath.Dir(filepath.Dir(file)), "snapshot-fragment.json")
	if fb, err := os.ReadFile(frag); err == nil && role == "stable" {
		var fr map[string]any
		if err := json.Unmarshal(fb, &fr); err != nil {
			t.Fatal(err)
		}
		fr["meta"].(map[string]any)["stable.json"] = map[string]any{"version": m.Signed.Version, "length": len(b), "hashes": map[string]string{"sha256": sha256Hex(b)}}
		if fb, err = json.Marshal(fr); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(frag, fb, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// moveTarget moves from's first distribution file to to.
func moveTarget(from, to *tuf.Bin) {
	for i, tg := range from.Targets {
		if strings.HasPrefix(tg.Path, "packages/") {
			from.Targets = append(from.Targets[:i], from.Targets[i+1:]...)
			to.Targets = append(to.Targets, tg)
			slices.SortFunc(to.Targets, func(a, b tuf.BinTarget) int { return strings.Compare(a.Path, b.Path) })
			return
		}
	}
	panic("no distribution file in the bin")
}

// editLeaves edits the leaf bins of stable-0-1 on the stable medium dir
// (stable version 3): edit gets them by name (and the names in their
// delegation's order) and returns the signer of each leaf to write again;
// the others are left as they are. The snapshot fragment is updated, as
// whoever edits the metadata would.
func editLeaves(t *testing.T, dir string, edit func(leaves map[string]*tuf.Bin, names []string) map[string]keys.Signer) {
	t.Helper()
	md := filepath.Join(dir, "stable", "metadata")
	mid, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(md, "3.stable-0-1.json")), "mid")
	if err != nil {
		t.Fatal(err)
	}
	leaves, names := map[string]*tuf.Bin{}, []string(nil)
	for _, r := range mid.Signed.Delegations.Roles {
		file := filepath.Join(md, "3."+r.Name+".json")
		b, err := tuf.ParseBin(mustRead(t, file), file)
		if err != nil {
			t.Fatal(err)
		}
		leaves[r.Name], names = b, append(names, r.Name)
	}
	for name, s := range edit(leaves, names) {
		b := leaves[name]
		signed, err := tuf.AppendBinSigned(nil, b.Version, b.Expires, b.Targets)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := tuf.SignBytes(signed, s)
		if err != nil {
			t.Fatal(err)
		}
		writeStableMeta(t, dir, name, tuf.AppendBinFile(nil, signed, []tuf.Signature{sig}))
	}
}

// forgeMid is an insider holding the stable keys: stable delegates its
// first mid role, stable-0-1, to a key of theirs, the mid delegates each
// of its leaves to a key of theirs, and every leaf, edited by edit, is
// signed by its new key. Every signature verifies.
func (fx *auditFixture) forgeMid(t *testing.T, dir string, edit func(leaves map[string]*tuf.Bin, names []string)) {
	t.Helper()
	gen := func() keys.Signer {
		k, err := keys.GenerateECDSA()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	md := filepath.Join(dir, "stable", "metadata")
	midKey := gen()
	fx.resignTargets(t, filepath.Join(md, "3.stable.json"), "stable", func(tg *tuf.Targets) {
		for i := range tg.Delegations.Roles {
			if d := &tg.Delegations.Roles[i]; d.Name == "stable-0-1" {
				delete(tg.Delegations.Keys, d.KeyIDs[0])
				d.KeyIDs = []string{midKey.Key().ID()}
				tg.Delegations.Keys[d.KeyIDs[0]] = midKey.Key()
			}
		}
	}, nil)
	mid, err := tuf.Load[tuf.Targets](mustRead(t, filepath.Join(md, "3.stable-0-1.json")), "mid")
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]keys.Signer{}
	for i := range mid.Signed.Delegations.Roles {
		d := &mid.Signed.Delegations.Roles[i]
		k := gen()
		delete(mid.Signed.Delegations.Keys, d.KeyIDs[0])
		d.KeyIDs = []string{k.Key().ID()}
		mid.Signed.Delegations.Keys[d.KeyIDs[0]] = k.Key()
		signers[d.Name] = k
	}
	mid.Signatures = nil
	if err := mid.Sign(midKey); err != nil {
		t.Fatal(err)
	}
	b, err := mid.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	writeStableMeta(t, dir, "stable-0-1", b)
	editLeaves(t, dir, func(leaves map[string]*tuf.Bin, names []string) map[string]keys.Signer {
		edit(leaves, names)
		return signers
	})
	rewriteSums(t, dir)
}

// rewriteSums writes dir's SHA256SUMS again for what it holds, as anyone
// can: it has no signature.
func rewriteSums(t *testing.T, dir string) {
	t.Helper()
	files, err := mediumFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", sha256Hex(mustRead(t, filepath.Join(dir, filepath.FromSlash(f)))), f)
	}
	if err := os.WriteFile(filepath.Join(dir, SumsFile), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeStableMeta writes role's file of stable version 3 on the stable
// medium dir, and its entry in the snapshot fragment.
func writeStableMeta(t *testing.T, dir, role string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "stable", "metadata", "3."+role+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	frag := filepath.Join(dir, "stable", "snapshot-fragment.json")
	var fr map[string]any
	if err := json.Unmarshal(mustRead(t, frag), &fr); err != nil {
		t.Fatal(err)
	}
	fr["meta"].(map[string]any)[role+".json"] = map[string]any{"version": 3, "length": len(b), "hashes": map[string]string{"sha256": sha256Hex(b)}}
	fb, err := json.Marshal(fr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(frag, fb, 0o644); err != nil {
		t.Fatal(err)
	}
}

// resignRoot writes to dst the root in src at version v, signed by the
// root keyholders.
func (fx *auditFixture) resignRoot(t *testing.T, src, dst string, v int64) {
	t.Helper()
	m, err := tuf.Load[tuf.Root](mustRead(t, src), src)
	if err != nil {
		t.Fatal(err)
	}
	m.Signed.Version, m.Signatures = v, nil
	if err := m.Sign(fx.signers(t, tuf.RoleRoot)...); err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalFile()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signers returns the devices' signers of role (root, targets, stable).
func (fx *auditFixture) signers(t *testing.T, role string) []keys.Signer {
	t.Helper()
	sess := &session{devices: fx.devices, pin: func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }, pins: map[uint32]string{}}
	var ss []keys.Signer
	var err error
	if role == "stable" {
		d, _ := fx.targets.Signed.Delegation("stable")
		ss, err = stableSigners(sess, d)
	} else {
		r := fx.root.Signed.Roles[role]
		ss, err = roleSigners(sess, role, r.KeyIDs, r.Threshold, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func (fx *auditFixture) resign(t *testing.T, dir string, edit func(*signeddiff.Statement)) {
	t.Helper()
	file := filepath.Join(dir, "signed-diff.json")
	st := signedStatement(t, fx, dir)
	d, _ := fx.targets.Signed.Delegation("stable")
	edit(st)
	sess := &session{devices: fx.devices, pin: func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }, pins: map[uint32]string{}}
	signers, err := stableSigners(sess, d)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signeddiff.Sign(st, signers)
	if err != nil {
		t.Fatal(err)
	}
	b, err := signeddiff.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// resignJournal signs dir's journal anew with the keys of the ceremony's
// threshold (bootstrap: root, stable: stable) found on the fixture's
// devices, only the first n of them if n > 0, as an insider holding those
// keys would.
func (fx *auditFixture) resignJournal(t *testing.T, dir, ceremony string, n int) {
	t.Helper()
	want := map[string]bool{}
	ids := fx.root.Signed.Roles["root"].KeyIDs
	if ceremony == CeremonyStable {
		d, _ := fx.targets.Signed.Delegation("stable")
		ids = d.KeyIDs
	}
	for _, id := range ids {
		want[id] = true
	}
	sess := &session{devices: fx.devices, pin: func(hsm.Info, int) (string, error) { return soft.DefaultPIN, nil }, pins: map[uint32]string{}}
	signers, err := deviceSigners(sess, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		signers = signers[:n]
	}
	b, err := journalEnvelope(mustRead(t, filepath.Join(dir, JournalFile)), ceremony, "pypi", signers)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, JournalEnvelopeFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rechainInputs is an insider holding the stable keys who rewrites the
// digest field of the transcript's "stable inputs", chains the journal
// again, signs its end and rewrites SHA256SUMS.
func rechainInputs(t *testing.T, fx *auditFixture, dir, field string) {
	t.Helper()
	rewriteTranscript(t, filepath.Join(dir, JournalFile), func(e *TranscriptEntry) {
		if e.Step == "stable inputs" {
			e.Detail[field] = strings.Repeat("ab", 32)
		}
	})
	fx.resignJournal(t, dir, CeremonyStable, 0)
	rewriteSums(t, dir)
}

// editFirst replaces old by new in the first file matching pattern that
// holds old.
func editFirst(t *testing.T, pattern, old, new string) {
	t.Helper()
	files, _ := filepath.Glob(pattern)
	for _, f := range files {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(old)) {
			replaceFile(t, f, old, new)
			return
		}
	}
	t.Fatalf("no %s holds %q", pattern, old)
}

func replaceFile(t *testing.T, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q", file, old)
	}
	if err := os.WriteFile(file, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, file string, off int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x01
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dropLine removes line n (from 1; negative counts from the end).
func dropLine(t *testing.T, file string, n int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	if n < 0 {
		n = len(lines) + 1 + n
	}
	lines = append(lines[:n-1], lines[n:]...)
	out := strings.Join(lines, "")
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteTranscript edits entries and writes the transcript again with a
// fresh hash chain, as anyone can: the chain has no signature.
func rewriteTranscript(t *testing.T, file string, edit func(*TranscriptEntry)) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var es []TranscriptEntry
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e TranscriptEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		edit(&e)
		es = append(es, e)
	}
	var buf bytes.Buffer
	i := 0
	tr := NewTranscript(&buf, nil, func() time.Time { tm, _ := time.Parse(time.RFC3339, es[i].Time); return tm })
	for i = range es {
		if err := tr.Record(es[i].Step, es[i].Detail); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := VerifyTranscript(bytes.NewReader(buf.Bytes()), "rewritten"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzAuditTranscript: the audit's reading of a transcript (the hash
// chain, then the steps a bootstrap's and a stable signing's must hold)
// never panics on hostile bytes, and accepts nothing whose chain does not
// verify.
func FuzzAuditTranscript(f *testing.F) {
	var buf bytes.Buffer
	tr := NewTranscript(&buf, nil, func() time.Time { return time.Unix(0, 0) })
	tr.Record("stable signing started", nil)
	tr.Record("diff approved and stable signed", map[string]any{"diff_digest": strings.Repeat("ab", 32), "stable_version": 2})
	tr.Record("stable signing finished", nil)
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n"))
	f.Add([]byte(""))
	root := tuf.NewRoot(1, time.Unix(1<<40, 0))
	st := &signeddiff.Statement{StableVersion: 2}
	st.DiffSHA256[0] = 0xab
	f.Fuzz(func(t *testing.T, data []byte) {
		a := &auditor{rep: &AuditReport{}}
		es, err := a.transcriptEntries(data, "transcript.jsonl")
		if err != nil {
			return
		}
		if _, _, err := VerifyTranscript(bytes.NewReader(data), "t"); err != nil {
			t.Fatalf("accepted a transcript VerifyTranscript refuses: %v", err)
		}
		if len(es) == 0 || len(es) != a.rep.Transcript.Entries {
			t.Fatalf("%d entries, report says %d", len(es), a.rep.Transcript.Entries)
		}
		_ = checkBootstrapTranscript(es, root)
		_ = checkStableTranscript(es, st)
	})
}

// BenchmarkAuditStableMedia measures the audit of the second stable
// medium (about 2,200 files, 72 bins): the read-back, every bin's
// signatures again for the report, the ledger against the signed diff.
func BenchmarkAuditStableMedia(b *testing.B) {
	auditOnce.Do(func() {
		// Benchmarks alone: the fixture lives as long as this benchmark.
		dir := b.TempDir()
		ca, err := soft.CreateCA(filepath.Join(dir, "ca"))
		if err != nil {
			auditErr = err
			return
		}
		auditFx, auditErr = buildAuditMedia(ca, filepath.Join(dir, "ca"), filepath.Join(dir, "audit"))
	})
	if auditErr != nil {
		b.Fatal(auditErr)
	}
	fx := auditFx
	for b.Loop() {
		if _, err := Audit(AuditOptions{Root: fx.rootFile, Dir: fx.media2, Repository: fx.boot, Previous: fx.media1}); err != nil {
			b.Fatal(err)
		}
	}
}
