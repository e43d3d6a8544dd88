package ceremony

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/internal/outdir"
	"github.com/keyceremony/keyceremony/tuf"
)

// signedWithout returns the "signed" object of a metadata file, decoded
// by the test itself, without the named fields.
func signedWithout(t *testing.T, file string, drop ...string) map[string]any {
	t.Helper()
	var m struct {
		Signed map[string]any `json:"signed"`
	}
	if err := json.Unmarshal(mustRead(t, file), &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range drop {
		delete(m.Signed, f)
	}
	return m.Signed
}

func (f *fixture) renewal(boot, role string, now time.Time) *Renewal {
	root, err := LoadTrustedRoot(filepath.Join(boot, "metadata", "1.root.json"))
	if err != nil {
		panic(err)
	}
	return &Renewal{Root: root, Published: boot, Role: role, ExpiresDays: 400, Devices: f.devices, PIN: f.pins, Now: now, Version: "test"}
}

// TestRenewChangesOnlyVersionAndExpiry renews root, targets and the empty
// stable of a bootstrap: each new file is version+1, expires 400 days
// after the renewal, differs from the old one in nothing else (compared
// by the test on the decoded files), and is signed by the role's current
// keys as a client checks it.
func TestRenewChangesOnlyVersionAndExpiry(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(t.TempDir(), "boot")
	res, err := f.bootstrap().Run(boot)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(300 * 24 * time.Hour).Truncate(time.Second)
	for _, role := range []string{"root", "targets", "stable"} {
		t.Run(role, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "renew-"+role)
			r, err := f.renewal(boot, role, now).Run(out)
			if err != nil {
				t.Fatal(err)
			}
			if r.Previous != 1 || r.Version != 2 || r.File != "metadata/2."+role+".json" {
				t.Fatalf("result %+v", r)
			}
			oldFile, newFile := filepath.Join(boot, "metadata", "1."+role+".json"), filepath.Join(out, r.File)
			if got, want := signedWithout(t, newFile, "version", "expires"), signedWithout(t, oldFile, "version", "expires"); !reflect.DeepEqual(got, want) {
				t.Fatalf("renewed %s differs beyond version and expires:\n%v\n%v", role, got, want)
			}
			s := signedWithout(t, newFile)
			if s["version"] != float64(2) || s["expires"] != now.AddDate(0, 0, 400).Format("2006-01-02T15:04:05Z") {
				t.Fatalf("version %v expires %v", s["version"], s["expires"])
			}
			if s2 := signedWithout(t, oldFile); s2["expires"] == s["expires"] {
				t.Fatal("expiry unchanged")
			}
			b := mustRead(t, newFile)
			switch role {
			case "root":
				m, err := tuf.Load[tuf.Root](b, "2.root.json")
				if err != nil {
					t.Fatal(err)
				}
				msg, _ := m.SignedBytes()
				if err := res.Root.Signed.VerifyRole("root", msg, m.Signatures); err != nil {
					t.Fatal(err)
				}
				// go-tuf's and tuf-js's chain walk: the renewed root
				// follows root v1 in a directory holding both.
				md := filepath.Join(t.TempDir(), "md")
				os.MkdirAll(md, 0o755)
				os.WriteFile(filepath.Join(md, "2.root.json"), b, 0o644)
				got, err := tuf.VerifyRootChain(res.Root, md)
				if err != nil || got.Signed.Version != 2 {
					t.Fatalf("chain: %v", err)
				}
			default:
				m, err := tuf.Load[tuf.Targets](b, r.File)
				if err != nil {
					t.Fatal(err)
				}
				msg, _ := m.SignedBytes()
				verify := res.Root.Signed.VerifyRole
				if role == "stable" {
					verify = func(_ string, msg []byte, sigs []tuf.Signature) error {
						return res.Targets.Signed.VerifyDelegate("stable", msg, sigs)
					}
				}
				if err := verify(role, msg, m.Signatures); err != nil {
					t.Fatal(err)
				}
			}
			list := string(mustRead(t, filepath.Join(out, RenewalChecklist)))
			if !strings.Contains(list, r.File) || (role != "root") != strings.Contains(list, "snapshot listing "+role+".json at version 2") {
				t.Fatalf("checklist:\n%s", list)
			}
			es := readTranscript(t, filepath.Join(out, "transcript.jsonl"))
			last := es[len(es)-1]
			if es[0].Step != "renewal started" || last.Step != "renewal finished" || last.Detail["role"] != role || last.Detail["sha256"] != sha256Hex(b) {
				t.Fatalf("transcript %+v ... %+v", es[0], last)
			}
		})
	}
}

func readTranscript(t *testing.T, file string) []TranscriptEntry {
	t.Helper()
	a := &auditor{rep: &AuditReport{}}
	es, err := a.transcript(file)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestRenewRefuses: fewer keys present than the threshold, a stable with
// bins (whose keys no longer exist), an unknown role; nothing is written.
func TestRenewRefuses(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(t.TempDir(), "boot")
	if _, err := f.bootstrap().Run(boot); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	one := f.renewal(boot, "root", now)
	one.Devices = map[uint32]hsm.Device{demoSerials[0]: f.devices[demoSerials[0]]}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := one.Run(out); !errors.Is(err, ErrTooFewKeyholders) || !strings.Contains(err.Error(), "1 of the root role's keys found on the 1 connected devices, threshold 2") {
		t.Fatalf("one root key: %v", err)
	}
	assertNothingWritten(t, out)
	if _, err := f.renewal(boot, "snapshot", now).Run(out); !errors.Is(err, ErrRenewRole) {
		t.Fatalf("snapshot: %v", err)
	}
	fx := auditMedia(t)
	pub := filepath.Join(caDir, "audit", "published")
	r := &Renewal{Root: fx.root, Published: pub, Role: "stable", ExpiresDays: 30, Devices: fx.devices, PIN: f.pins, Now: now}
	if _, err := r.Run(out); !errors.Is(err, ErrRenewStableBins) || !strings.Contains(err.Error(), "stable v2") {
		t.Fatalf("stable with bins: %v", err)
	}
	assertNothingWritten(t, out)
}

// TestAuditRenewal: verify recognises a renewal's medium and accepts it
// against the medium it renewed, and refuses a copy edited as someone
// who handles the media could, or as keyholders who sign more than a
// renewal would.
func TestAuditRenewal(t *testing.T) {
	f := newFixture(t)
	tmp := t.TempDir()
	boot := filepath.Join(tmp, "boot")
	if _, err := f.bootstrap().Run(boot); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	media := map[string]string{}
	for _, role := range []string{"root", "targets"} {
		media[role] = filepath.Join(tmp, "renew-"+role)
		if _, err := f.renewal(boot, role, now).Run(media[role]); err != nil {
			t.Fatal(err)
		}
	}
	rootFile := filepath.Join(boot, "metadata", "1.root.json")
	for role, dir := range media {
		rep, err := Audit(AuditOptions{Root: rootFile, Dir: dir, Previous: boot, At: now})
		if err != nil || rep.Medium != MediumRenewal || rep.Versions[role] != 2 {
			t.Fatalf("%s: %v %+v", role, err, rep)
		}
		found := false
		for _, c := range rep.Checks {
			found = found || (c.Check == "renewed "+role && strings.Contains(c.Detail, "nothing changed but version and expires"))
		}
		if !found {
			t.Fatalf("%s: checks %+v", role, rep.Checks)
		}
	}
	if _, err := Audit(AuditOptions{Root: rootFile, Dir: media["root"], At: now}); !errors.Is(err, ErrUnreadable) || !errors.Is(err, ErrNeedPrevious) {
		t.Fatalf("without --previous: %v", err)
	}
	sess := &session{devices: f.devices, pin: f.pins, pins: map[uint32]string{}}
	setSum := func(t *testing.T, dir, file string) {
		sum := sha256Hex(mustRead(t, filepath.Join(dir, file)))
		rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
			if e.Step == "renewal finished" {
				e.Detail["sha256"] = sum
			}
		})
	}
	for _, c := range []struct {
		name, role string
		edit       func(t *testing.T, dir string)
		want       string
	}{
		{"root threshold lowered and signed by the keyholders", "root", func(t *testing.T, dir string) {
			file := filepath.Join(dir, "metadata", "2.root.json")
			m, err := tuf.Load[tuf.Root](mustRead(t, file), "2.root.json")
			if err != nil {
				t.Fatal(err)
			}
			m.Signed.Roles["root"].Threshold = 1
			m.Signatures = nil
			signers, err := roleSigners(sess, "root", m.Signed.Roles["root"].KeyIDs, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Sign(signers...); err != nil {
				t.Fatal(err)
			}
			b, _ := m.MarshalFile()
			os.WriteFile(file, b, 0o644)
			setSum(t, dir, "metadata/2.root.json")
		}, "2.root.json differs from root v1 on the previous medium in more than version and expires"},
		{"a second file", "root", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(boot, "metadata", "1.targets.json"), filepath.Join(dir, "metadata", "1.targets.json"))
		}, "metadata/ holds metadata/1.targets.json, metadata/2.root.json; the transcript (line"},
		{"the old targets under the new name", "targets", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(boot, "metadata", "1.targets.json"), filepath.Join(dir, "metadata", "2.targets.json"))
			setSum(t, dir, "metadata/2.targets.json")
		}, "metadata/2.targets.json is version 1; the transcript"},
		{"file edited", "targets", func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, "metadata", "2.targets.json"), `"version": 2`, `"version": 3`)
		}, "metadata/2.targets.json has sha256"},
		{"transcript cut", "root", func(t *testing.T, dir string) {
			dropLine(t, filepath.Join(dir, "transcript.jsonl"), -1)
		}, "the transcript is cut"},
		{"root signature dropped below the threshold", "root", func(t *testing.T, dir string) {
			file := filepath.Join(dir, "metadata", "2.root.json")
			m, _ := tuf.Load[tuf.Root](mustRead(t, file), "2.root.json")
			m.Signatures = m.Signatures[:1]
			b, _ := m.MarshalFile()
			os.WriteFile(file, b, 0o644)
			setSum(t, dir, "metadata/2.root.json")
		}, "1 of 2 required signatures valid"},
		{"the transcript's envelope removed", "root", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, JournalEnvelopeFile)); err != nil {
				t.Fatal(err)
			}
		}, "transcript.dsse.json is missing"},
		{"a transcript re-chained without the keys", "targets", func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "renewal started" {
					e.Detail["tool_version"] = "other"
				}
			})
		}, `transcript.dsse.json signs keyceremony-transcript "renewal" with`},
		{"the transcript's end signed by one root key", "root", func(t *testing.T, dir string) {
			root, _ := tuf.Load[tuf.Root](mustRead(t, rootFile), "1.root.json")
			signers, err := roleSigners(sess, "root", root.Signed.Roles["root"].KeyIDs, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := journalEnvelope(mustRead(t, filepath.Join(dir, JournalFile)), CeremonyRenewal, "", signers[:1])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, JournalEnvelopeFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "root (transcript)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := copyDir(media[c.role], dir); err != nil {
				t.Fatal(err)
			}
			c.edit(t, dir)
			_, err := Audit(AuditOptions{Root: rootFile, Dir: dir, Previous: boot, At: now})
			if !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want invalid naming %q", err, c.want)
			}
		})
	}
}

// A renewal's transcript cut before its last entry is refused by the
// read-back (a hash chain alone verifies any prefix), and the medium is
// renamed rejected.
func TestRenewReadBackRefusesCutTranscript(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(t.TempDir(), "boot")
	if _, err := f.bootstrap().Run(boot); err != nil {
		t.Fatal(err)
	}
	setHook(t, func(d string) error {
		p := filepath.Join(d, "transcript.jsonl")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
		return os.WriteFile(p, []byte(strings.Join(lines[:len(lines)-1], "")), 0o644)
	})
	out := filepath.Join(t.TempDir(), "renewal")
	_, err := f.renewal(boot, "root", time.Now().UTC()).Run(out)
	if !errors.Is(err, outdir.ErrRejected) || !errors.Is(err, ErrTranscript) || !strings.Contains(err.Error(), "the transcript is cut") {
		t.Fatalf("Run = %v, want the cut transcript rejected", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a rejected read-back", out)
	}
}
