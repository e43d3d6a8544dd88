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
