package ceremony

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/soft"
)

// TestHandover: device 1 passes from Alice to Dora. Its three keys sign
// the statement, the new PIN replaces the old one (the old one no longer
// opens the device), and verify accepts the record; it refuses one whose
// statement names someone else, whose signature is another key's, or
// that lacks the PIN change. A device holding no key is refused, and so
// is a handover to the current holder.
func TestHandover(t *testing.T) {
	f := newFixture(t)
	f.cfg.Keyholders = map[string]string{"10000001": "Alice", "10000002": "Bob", "10000003": "Carol"}
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot")
	res, err := f.bootstrap().Run(boot)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	serial := demoSerials[0]
	h := &Handover{Root: res.Root, Published: boot, Config: f.cfg, Device: serial, To: "Dora", Devices: f.devices, PIN: f.pins,
		NewPIN: func(hsm.Info) (string, error) { return "24681357", nil }, Now: now, Version: "test"}
	for _, c := range []struct {
		name string
		edit func(h *Handover)
		want string
	}{
		{"the same holder", func(h *Handover) { h.To = "Alice" }, `held by "Alice" already`},
		{"the outgoing keyholder's PIN kept", func(h *Handover) {
			h.NewPIN = func(hsm.Info) (string, error) { return soft.DefaultPIN, nil }
		}, "the new PIN is the one the outgoing keyholder typed"},
		{"a device without keys", func(h *Handover) {
			d, err := soft.Create(filepath.Join(t.TempDir(), "spare"), 10000009, f.ca, soft.CreateOptions{KDF: soft.KDFTest})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			h.Devices, h.Device = map[uint32]hsm.Device{10000009: d}, 10000009
		}, "holds no root, targets or stable key"},
	} {
		bad := *h
		c.edit(&bad)
		out := filepath.Join(t.TempDir(), "out")
		if _, err := bad.Run(out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v", c.name, err)
		}
		assertNothingWritten(t, out)
	}
	media := filepath.Join(dir, "handover")
	hr, err := h.Run(media)
	if err != nil {
		t.Fatal(err)
	}
	if hr.From != "Alice" || hr.To != "Dora" || len(hr.Keys) != 3 {
		t.Fatalf("result %+v", hr)
	}
	d := f.devices[serial]
	if err := d.VerifyPIN(soft.DefaultPIN); err == nil {
		t.Fatal("the old PIN still opens the device")
	}
	if err := d.VerifyPIN("24681357"); err != nil {
		t.Fatalf("the new PIN: %v", err)
	}
	rootFile := filepath.Join(boot, "metadata", "1.root.json")
	o := AuditOptions{Root: rootFile, Dir: media, Previous: boot, At: now}
	rep, err := Audit(o)
	if err != nil || rep.Medium != MediumHandover {
		t.Fatalf("%v %+v", err, rep)
	}
	otherSig := ""
	for _, c := range []struct {
		name string
		edit func(t *testing.T, dir string)
		want string
	}{
		{"statement names another person", func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, HandoverStatement), "to: Dora", "to: Eve")
			sum := sha256Hex(mustRead(t, filepath.Join(dir, HandoverStatement)))
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "handover finished" {
					e.Detail["statement_sha256"] = sum
				}
			})
		}, "does not state the handover the transcript records"},
		{"another key's signature", func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "key held and signed the statement" {
					if otherSig == "" {
						otherSig = e.Detail["sig"].(string)
					} else {
						e.Detail["sig"] = otherSig
					}
				}
			})
		}, "signature over handover-statement.txt does not verify"},
		{"no PIN change", func(t *testing.T, dir string) {
			rewriteTranscript(t, filepath.Join(dir, "transcript.jsonl"), func(e *TranscriptEntry) {
				if e.Step == "PIN changed by the new keyholder" {
					e.Step = "PIN kept"
				}
			})
		}, "no PIN change by the new keyholder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := copyDir(media, dir); err != nil {
				t.Fatal(err)
			}
			c.edit(t, dir)
			o := o
			o.Dir = dir
			if _, err := Audit(o); !errors.Is(err, ErrInvalidMedium) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want invalid naming %q", err, c.want)
			}
		})
	}
}
