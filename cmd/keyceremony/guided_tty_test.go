package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/internal/airgap"
	"github.com/keyceremony/keyceremony/stableset/synth"
)

var (
	hexLine  = regexp.MustCompile(`^\s+[0-9a-f]{4}( [0-9a-f]{2,4})*$`)
	wordLine = regexp.MustCompile(`^ {6}[A-Za-z]+( [A-Za-z]+)*$`)
	nWords   = regexp.MustCompile(`type the (\d+) check words`)
)

// checkWords reads, from the last statement on the screen ("You sign:"),
// the first n PGP words, as the witness reads them aloud.
func checkWords(t *testing.T, s string) string {
	t.Helper()
	m := nWords.FindAllStringSubmatch(s, -1)
	if m == nil {
		t.Fatalf("no check words prompt:\n%s", s)
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	var words []string
	for _, l := range strings.Split(s[strings.LastIndex(s, "You sign:"):], "\n") {
		if wordLine.MatchString(l) && !hexLine.MatchString(l) {
			words = append(words, strings.Fields(l)...)
		}
	}
	if len(words) < n {
		t.Fatalf("the statement shows %d words, want at least %d:\n%s", len(words), n, s)
	}
	return strings.Join(words[:n], " ")
}

// upInterfaces are this machine's interfaces up besides loopback, as the
// built binary sees them.
func upInterfaces(t *testing.T) []string {
	t.Helper()
	up, err := airgap.Up(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range up {
		names = append(names, u.Name)
	}
	return names
}

// transcriptSteps reads a transcript's entries.
func transcriptEntries(t *testing.T, path string) []ceremony.TranscriptEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ceremony.TranscriptEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e ceremony.TranscriptEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// guidedAnswers drives a guided ceremony to its end: each step confirmed,
// the interfaces up acknowledged (a wrong name first), the clock
// confirmed, a late device inserted while the screen waits for it, the
// first PIN typed wrong then right, the first check words typed wrong then
// right, and absent keyholders declared. It returns the final screen.
// lateDevice is a device the screen asks for: why is what the screen
// says while it waits ("not connected", "held by another program"), make
// makes it usable.
// whyNow, if set, says it instead, at the time the screen asks.
// before, if set, runs before Enter is pressed.
type lateDevice struct {
	why    string
	make   func()
	whyNow func() string
	before func()
}

func guidedAnswers(t *testing.T, tm *tmuxTerm, late map[uint32]lateDevice, absent map[uint32]bool) string {
	t.Helper()
	return guidedAnswersAs(t, tm, "123456", late, absent)
}

// guidedAnswersPIN is guidedAnswers with pin the devices' PIN and no
// keyholder absent.
func guidedAnswersPIN(t *testing.T, tm *tmuxTerm, pin string, late map[uint32]lateDevice) string {
	t.Helper()
	return guidedAnswersAs(t, tm, pin, late, nil)
}

func guidedAnswersAs(t *testing.T, tm *tmuxTerm, pin string, late map[uint32]lateDevice, absent map[uint32]bool) string {
	t.Helper()
	wrongPIN, wrongWords, wrongAck := true, true, true
	var first time.Time
	for answered := 0; ; answered++ {
		p, s := tm.nextPrompt(answered)
		// The transcript records each step's time to the second
		// (checkGuidedTranscript wants them to differ from the start's):
		// the second answer waits for the clock's next second after the
		// first prompt, which came after the start.
		switch answered {
		case 0:
			first = time.Now()
		case 1:
			time.Sleep(time.Until(first.Truncate(time.Second).Add(time.Second)))
		}
		if tm.onPrompt != nil && p != "EXIT=" {
			tm.onPrompt(p, s)
		}
		switch p {
		case "EXIT=":
			return s
		case "press Enter when ready (or type abort): ", "Type last try":
			if p == "Type last try" {
				t.Fatalf("asked to spend the last PIN try:\n%s", s)
			}
			tm.send("Enter")
		case "separated by commas (or abort): ":
			if wrongAck {
				wrongAck = false
				tm.send("wlan9", "Enter")
				continue
			}
			tm.send(strings.Join(upInterfaces(t), ","), "Enter")
		case "Press Enter when the right medium is in":
			if tm.wrongMedium == nil {
				t.Fatalf("a medium was refused:\n%s", s)
			}
			tm.wrongMedium()
			tm.wrongMedium = nil
			tm.send("Enter")
		case "Type yes if the clock agrees":
			tm.send("yes", "Enter")
		case "Press Enter when it is in (or type":
			m := regexp.MustCompile(`Insert the YubiKey with serial (\d+)`).FindAllStringSubmatch(s, -1)
			serial64, _ := strconv.ParseUint(m[len(m)-1][1], 10, 32)
			serial := uint32(serial64)
			if absent[serial] {
				tm.send("absent", "Enter")
				continue
			}
			dev, ok := late[serial]
			if !ok {
				t.Fatalf("asked for device %d, which is connected:\n%s", serial, s)
			}
			if dev.before != nil {
				dev.before()
			}
			// Enter first: the screen looks for the device until it
			// comes.
			tm.send("Enter")
			why := dev.why
			if dev.whyNow != nil {
				why = dev.whyNow()
			}
			tm.waitFor(fmt.Sprintf("the YubiKey with serial %d: %s", serial, why), 1)
			dev.make()
			tm.waitFor(fmt.Sprintf("serial %d firmware", serial), 1)
		case "PIN for the YubiKey with serial ":
			// Echo is off once the prompt shows: the keys go in at once.
			if wrongPIN {
				wrongPIN = false
				tm.typeSecret("654321", "Enter")
				tm.waitFor("wrong PIN: 2 tries left.", 1)
				answered++ // the prompt asked again
				tm.nextPrompt(answered)
			}
			tm.typeSecret(pin, "Enter")
		case "check words as read aloud: ":
			w := checkWords(t, s)
			if wrongWords {
				wrongWords = false
				tm.send("acme adrift "+w, "Enter")
				tm.waitFor("REFUSED", 1)
				answered++
				tm.nextPrompt(answered)
			}
			tm.send(w, "Enter")
		}
	}
}

// TestGuidedCeremonies runs the built binary in a real terminal through a
// full guided bootstrap and then a full guided stable signing with soft
// devices, as the room would: every numbered step confirmed, the network
// acknowledged, the clock confirmed, a device inserted late, a wrong PIN
// then the right one, wrong check words refused, a keyholder absent.
func TestGuidedCeremonies(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	args := softRehearsal(t, dir)
	cfgPath := filepath.Join(dir, "bootstrap.json")
	var cfg map[string]any
	if err := json.Unmarshal([]byte(mustReadFile(t, cfgPath)), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["keyholders"] = map[string]string{"1001": "Alice Example", "1002": "Bob Example", "1003": "Carol Example"}
	cj, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, cj, 0o644); err != nil {
		t.Fatal(err)
	}
	// Device 1003 is not plugged in when the ceremony starts.
	d1003 := filepath.Join(dir, "1003")
	if err := os.Rename(d1003, d1003+".bag"); err != nil {
		t.Fatal(err)
	}
	insert := func() {
		if err := os.Rename(d1003+".bag", d1003); err != nil {
			t.Error(err)
		}
	}
	boot := filepath.Join(dir, "boot")
	tm := startTmux(t, dir, fmt.Sprintf("%s %s --out %s; echo EXIT=$?; sleep 120", bin, strings.Join(args, " "), boot))
	s := guidedAnswers(t, tm, map[uint32]lateDevice{1003: {why: "not connected; looking again", make: insert}}, nil)
	if !strings.Contains(s, "EXIT=0") {
		t.Fatalf("guided bootstrap failed:\n%s", s)
	}
	for _, want := range []string{
		"bootstrap ceremony for pypi: 39 steps",
		"== Step 1 of 39 · Opening",
		"== Step 10 of 39 · Pre-flight",
		"who    keyholder Carol Example (device 1003)",
		"Insert the YubiKey with serial 1003 (keyholder: Carol Example) for its pre-flight.",
		"PIN for the YubiKey with serial 1001 (keyholder: Alice Example, 3 tries left):",
		"wrong PIN: 2 tries left.",
		"PIN for the YubiKey with serial 1001 (keyholder: Alice Example, 2 tries left):",
		"REFUSED: the check words typed do not match: nothing was signed.",
		"You sign: root v1 of pypi, with the root key on the YubiKey with serial 1001.",
		"pre-flight passed",
		"self-check passed: root 2-of-3, targets 1-of-3 and stable 2-of-3 verified.",
		"== Step 39 of 39 · Closing",
		"transcript digest",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	if strings.Contains(s, "123456") || strings.Contains(s, "654321") {
		t.Errorf("a PIN was shown on the screen")
	}
	if n := strings.Count(s, "verified against its public key"); n != 12 {
		t.Errorf("%d signatures reported verified, want 12 (3 keyholders x root, targets, stable, and the 3 root keys on the transcript's end)", n)
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}
	tr := transcriptEntries(t, filepath.Join(boot, "transcript.jsonl"))
	checkGuidedTranscript(t, tr, 39, map[string]int{"clock confirmed": 1, "wrong PIN": 1, "check words refused": 1, "check words confirmed": 9,
		"signature verified": 9, "device connected late": 1})

	// The stable signing: keyholder Carol is absent; Alice and Bob meet
	// the threshold of two.
	exp := filepath.Join(dir, "export.jsonl")
	f, err := os.Create(exp)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Generate(f, synth.Params{Seed: 1, Files: 300, Generated: time.Now().UTC().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	media := filepath.Join(dir, "media")
	stable := []string{bin, "stable", "sign", "--config", cfgPath, "--export", exp, "--published", boot, "--root", filepath.Join(boot, "metadata", "1.root.json"),
		"--media", media, "--backup", filepath.Join(dir, "backup"), "--soft-ca", filepath.Join(dir, "ca")}
	for _, s := range []string{"1001", "1002", "1003"} {
		stable = append(stable, "--soft", filepath.Join(dir, s))
	}
	// The backup medium is in where the new output medium should be:
	// the screen names it, and the administrator swaps it for a new one.
	// (Made before the ceremony starts: it checks the media at once.)
	if err := os.Mkdir(media, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(media, ceremony.MarkerFile)
	if err := os.WriteFile(marker, []byte(mustReadFile(t, filepath.Join(dir, "backup", ceremony.MarkerFile))), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(d1003, d1003+".bag")
	tm2 := &tmuxTerm{t: t, sock: filepath.Join(dir, "tmux2.sock")}
	if out, err := tm2.run("start-server", ";", "set-option", "-g", "history-limit", "100000", ";",
		"new-session", "-d", "-x", "200", "-y", "50", "-c", dir, strings.Join(stable, " ")+"; echo EXIT=$?; sleep 120"); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { tm2.run("kill-server") })
	tm2.wrongMedium = func() {
		if err := os.Remove(marker); err != nil {
			t.Error(err)
		}
	}
	s = guidedAnswers(t, tm2, nil, map[uint32]bool{1003: true})
	if !strings.Contains(s, "EXIT=0") {
		t.Fatalf("guided stable signing failed:\n%s", s)
	}
	for _, want := range []string{
		"stable ceremony for pypi",
		"stable diff for pypi: stable v2, the first signed stable set",
		"diff digest of stable v2 (read it aloud as PGP words):",
		"You sign: stable v2 of pypi\n    297 added, 3 held back",
		"The check words are the first 16 words above.",
		"Carol Example recorded as absent.",
		"REFUSED: the check words typed do not match",
		"reading the export",
		"signing the bins",
		"stable v2 written to " + media + " and verified",
		"WRONG MEDIUM: the new output medium (" + media + ") cannot be used: the output directory " + media + " is a backup medium",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	if n := strings.Count(s, "verified against its public key"); n != 6 {
		t.Errorf("%d signatures reported verified, want 6 (2 keyholders x stable, signed diff, transcript's end)", n)
	}
	if t.Failed() {
		t.Fatalf("screen:\n%s", s)
	}
	st := transcriptEntries(t, filepath.Join(media, "transcript.jsonl"))
	checkTranscriptDigest(t, filepath.Join(media, "transcript.jsonl"), filepath.Join(dir, "backup"))
	n := len(ceremony.StableSteps(mustConfig(t, cfgPath), nil).Steps())
	checkGuidedTranscript(t, st, n, map[string]int{"wrong medium": 1, "clock confirmed": 1, "keyholder absent": 1, "check words refused": 1, "check words confirmed": 2, "signature verified": 4, "wrong PIN": 1})
}

// checkGuidedTranscript checks a guided ceremony's transcript: the steps
// recorded in order by number (those before the transcript was written),
// with times in order that are the real times of the steps, not all the
// start time; the air gap recorded; and each kind of entry counted.
func checkGuidedTranscript(t *testing.T, tr []ceremony.TranscriptEntry, steps int, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	last, times := 0, map[string]bool{}
	var prev time.Time
	for _, e := range tr {
		got[e.Step]++
		tm, err := time.Parse(time.RFC3339, e.Time)
		if err != nil || tm.Before(prev) {
			t.Errorf("entry %d time %q: not in order", e.Seq, e.Time)
		}
		prev = tm
		times[e.Time] = true
		if strings.HasPrefix(e.Step, "step ") {
			n, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(e.Step, ":", 2)[0], "step "))
			if n != last+1 {
				t.Errorf("transcript entry %q after step %d", e.Step, last)
			}
			last = n
		}
	}
	if last < steps-8 || last >= steps {
		t.Errorf("transcript records steps 1 to %d of %d", last, steps)
	}
	if len(times) < 2 {
		t.Errorf("every entry has the same time: the steps' times are not recorded")
	}
	if got["network interfaces acknowledged"]+got["air gap checked"] != 1 {
		t.Errorf("air gap not recorded once: %v", got)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("transcript has %d %q entries, want %d", got[k], k, n)
		}
	}
}

// checkTranscriptDigest checks that the transcript digest the backup
// medium's newest state records (the one the screen shows and the room
// reads aloud) is the hash of the journal's last line on the medium:
// nothing was recorded after the journal was closed.
func checkTranscriptDigest(t *testing.T, journal, backup string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(mustReadFile(t, journal), "\n"), "\n")
	sum := sha256.Sum256([]byte(lines[len(lines)-1]))
	b, err := ceremony.ReadBackup(backup)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Newest().TranscriptSHA256; got != hex.EncodeToString(sum[:]) {
		t.Errorf("the backup state records transcript digest %s, the journal on the medium ends with %x", got, sum)
	}
}

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustConfig(t *testing.T, p string) *ceremony.Config {
	t.Helper()
	c, err := ceremony.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
