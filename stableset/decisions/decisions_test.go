package decisions

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const p1 = "packages/aa/bb/cc/foo-1.0.tar.gz"
const p2 = "packages/11/22/33/bar-2.0-py3-none-any.whl"

// A change to the policy's lists is decided by project: one decision per
// project and list, in canonical order after the paths.
func TestParseProject(t *testing.T) {
	s, err := Parse([]byte(`{"project": "certifi", "decision": "exclude", "reason": "must update fast"}
{"project": "certifi", "decision": "unnominate", "reason": "excluded instead"}
{"project": "*", "decision": "unnominate", "reason": "nominations by name from now on"}
{"path": "`+p1+`", "decision": "drop", "reason": "x"}`), "d.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := s.Project("excluded", "certifi"); !ok || d.Choice != Exclude || d.Line != 1 || d.Names() != "project certifi" {
		t.Errorf("Project(excluded, certifi) = %+v, %v", d, ok)
	}
	if _, ok := s.Project("excluded", "*"); ok {
		t.Error("a project undecided in a list is decided")
	}
	want := "decisions 4\n" +
		"path\t" + p1 + "\t-\tdrop\tx\n" +
		"project\t*\t-\tunnominate\tnominations by name from now on\n" +
		"project\tcertifi\t-\texclude\tmust update fast\n" +
		"project\tcertifi\t-\tunnominate\texcluded instead\n"
	if got := string(s.AppendCanonical(nil)); got != want {
		t.Errorf("canonical\n%s\nwant\n%s", got, want)
	}
	back, err := Parse(s.Marshal(), "again")
	if err != nil || string(back.AppendCanonical(nil)) != want {
		t.Errorf("marshal round trip: %v", err)
	}
	for _, d := range s.All() {
		line := AppendLine(nil, &d)
		if got, err := ParseLine(string(line[:len(line)-1])); err != nil || got.Project != d.Project || got.Choice != d.Choice {
			t.Errorf("ParseLine(%q) = %+v, %v", line, got, err)
		}
	}
}

// An expedited file is decided by path, "expedite", and the decision
// keeps its canonical line.
func TestParseExpedite(t *testing.T) {
	s, err := Parse([]byte(`{"path": "`+p1+`", "decision": "expedite", "reason": "PYSEC-2026-17"}`), "d.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := s.Path(p1)
	if !ok || d.Choice != Expedite || d.Reason != "PYSEC-2026-17" {
		t.Fatalf("%+v", d)
	}
	line := AppendLine(nil, &d)
	if string(line) != "path\t"+p1+"\t-\texpedite\tPYSEC-2026-17\n" {
		t.Errorf("line %q", line)
	}
	if back, err := ParseLine(string(line[:len(line)-1])); err != nil || back.Choice != Expedite {
		t.Errorf("ParseLine: %+v %v", back, err)
	}
	if _, err := Parse([]byte(`{"limit": "added", "count": 1, "decision": "expedite", "reason": "x"}`), "d.jsonl"); !errors.Is(err, ErrBadValue) {
		t.Errorf("a limit decided expedite: %v", err)
	}
}

func TestParse(t *testing.T) {
	file := `{"path": "` + p2 + `", "decision": "drop", "reason": "re-uploaded content; the maintainer did not"}
{"limit": "added", "count": 2104311, "decision": "confirm", "reason": "the first ceremony adds the whole repository"}
{"path": "` + p1 + `", "decision": "accept-new", "reason": "PyPI admins confirmed a \"repair\" (ticket 4411)"}
{"limit":"removed","count":12000,"decision":"confirm","reason":"the spam purge of November"}
{"flag": "project-loss", "subject": "foo", "decision": "confirm", "reason": "foo moved its files to foo2"}
{"flag": "project-loss", "subject": "bar", "decision": "confirm", "reason": "bar's author deleted old releases"}`
	s, err := Parse([]byte(file), "decisions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := s.Flag("project-loss", "foo"); !ok || f.Choice != Confirm || f.Line != 5 || f.Names() != "flag project-loss foo" {
		t.Errorf("flag decision: %+v", f)
	}
	if _, ok := s.Flag("project-loss", "baz"); ok {
		t.Error("an undecided flag is decided")
	}
	if s.Len() != 6 {
		t.Fatalf("len %d", s.Len())
	}
	d, ok := s.Path(p1)
	if !ok || d.Choice != AcceptNew || d.Line != 3 || d.Reason != `PyPI admins confirmed a "repair" (ticket 4411)` {
		t.Errorf("path decision: %+v", d)
	}
	if l, ok := s.Limit(LimitAdded); !ok || l.Count != 2104311 || l.Choice != Confirm || l.Line != 2 {
		t.Errorf("limit decision: %+v", l)
	}
	if _, ok := s.Path("packages/none"); ok {
		t.Error("an undecided path is decided")
	}
	want := "decisions 6\n" +
		"limit\tadded\t2104311\tconfirm\tthe first ceremony adds the whole repository\n" +
		"limit\tremoved\t12000\tconfirm\tthe spam purge of November\n" +
		"path\t" + p2 + "\t-\tdrop\tre-uploaded content; the maintainer did not\n" +
		"path\t" + p1 + "\t-\taccept-new\tPyPI admins confirmed a \"repair\" (ticket 4411)\n" +
		"flag\tproject-loss\tbar\tconfirm\tbar's author deleted old releases\n" +
		"flag\tproject-loss\tfoo\tconfirm\tfoo moved its files to foo2\n"
	if got := string(s.AppendCanonical(nil)); got != want {
		t.Errorf("canonical:\n%s\nwant:\n%s", got, want)
	}
	// The canonical lines do not depend on the file's order or layout.
	again, err := Parse(s.Marshal(), "again")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.AppendCanonical(nil), s.AppendCanonical(nil)) {
		t.Error("Marshal does not round-trip")
	}
	// Every canonical line parses back to its decision.
	for _, d := range s.All() {
		line := strings.TrimSuffix(string(AppendLine(nil, &d)), "\n")
		back, err := ParseLine(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		back.Line = d.Line
		if back != d {
			t.Errorf("ParseLine %q = %+v, want %+v", line, back, d)
		}
	}
	// Takedowns and lifts are path decisions too, and round-trip.
	td, err := Parse([]byte(`{"path": "`+p1+`", "decision": "take-down", "reason": "malware, PYSEC-2026-1"}
{"path": "`+p2+`", "decision": "lift", "reason": "the report was false (ticket 4501)"}`), "td.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := td.Path(p1); d.Choice != TakeDown || d.Reason != "malware, PYSEC-2026-1" {
		t.Errorf("take-down: %+v", d)
	}
	if d, _ := td.Path(p2); d.Choice != Lift {
		t.Errorf("lift: %+v", d)
	}
	for _, d := range td.All() {
		if back, err := ParseLine(strings.TrimSuffix(string(AppendLine(nil, &d)), "\n")); err != nil || back.Choice != d.Choice {
			t.Errorf("%+v: %+v %v", d, back, err)
		}
	}
	var none *Set
	if got := string(none.AppendCanonical(nil)); got != "decisions 0\n" {
		t.Errorf("nil set: %q", got)
	}
	empty, err := Parse(nil, "empty")
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty file: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	ok := `{"path": "` + p1 + `", "decision": "keep-old", "reason": "an attack"}` + "\n"
	for _, c := range []struct{ name, file, msg string }{
		{"unknown field", `{"path": "` + p1 + `", "decision": "keep-old", "reason": "x", "by": "me"}`, "d.jsonl:1: by: malformed decision: unknown field"},
		{"case", `{"Path": "` + p1 + `", "decision": "keep-old", "reason": "x"}`, "d.jsonl:1: Path: malformed decision: unknown field"},
		{"duplicate key", `{"path": "` + p1 + `", "decision": "keep-old", "decision": "drop", "reason": "x"}`, "d.jsonl:1: decision: malformed decision: duplicate key"},
		{"no reason", `{"path": "` + p1 + `", "decision": "keep-old"}`, "d.jsonl:1: reason: malformed decision: missing field"},
		{"empty reason", `{"path": "` + p1 + `", "decision": "keep-old", "reason": "  "}`, "d.jsonl:1: reason: bad value: empty: say why"},
		{"tab in reason", `{"path": "` + p1 + `", "decision": "keep-old", "reason": "a\tb"}`, "d.jsonl:1: reason: bad value: \"a\\tb\": no tabs, line breaks or control characters"},
		{"newline in reason", `{"path": "` + p1 + `", "decision": "keep-old", "reason": "a\nb"}`, "d.jsonl:1: reason: bad value"},
		{"long reason", `{"path": "` + p1 + `", "decision": "keep-old", "reason": "` + strings.Repeat("x", MaxReason+1) + `"}`, "d.jsonl:1: reason: bad value: want at most 1000 bytes"},
		{"bad choice", ok + `{"path": "` + p2 + `", "decision": "accept", "reason": "x"}`, "d.jsonl:2: decision: bad value: \"accept\": a changed path is decided keep-old, accept-new or drop, a stable path take-down, a taken-down path lift, an expedited file expedite"},
		{"confirm on a path", `{"path": "` + p1 + `", "decision": "confirm", "reason": "x"}`, "d.jsonl:1: decision: bad value"},
		{"path and limit", `{"path": "` + p1 + `", "limit": "added", "count": 1, "decision": "confirm", "reason": "x"}`, "d.jsonl:1: limit: bad value: a decision is about a path, a limit, a flag or a project, one of them"},
		{"flag and path", `{"flag": "project-loss", "subject": "foo", "path": "` + p1 + `", "decision": "confirm", "reason": "x"}`, "d.jsonl:1: limit: bad value: a decision is about a path, a limit, a flag or a project, one of them"},
		{"flag without subject", `{"flag": "project-loss", "decision": "confirm", "reason": "x"}`, "d.jsonl:1: subject: malformed decision: missing: a flag decision names the flag's subject"},
		{"subject without flag", `{"subject": "foo", "path": "` + p1 + `", "decision": "drop", "reason": "x"}`, "d.jsonl:1: subject: bad value: only a flag decision has a subject"},
		{"bad kind", `{"flag": "Project_Loss", "subject": "foo", "decision": "confirm", "reason": "x"}`, "d.jsonl:1: flag: bad value: \"Project_Loss\": a flag kind is 1 to 40 lowercase letters"},
		{"flag choice", `{"flag": "project-loss", "subject": "foo", "decision": "ok", "reason": "x"}`, "d.jsonl:1: decision: bad value: \"ok\": a flag is decided keep-old, accept-new, drop or confirm"},
		{"flag count", `{"flag": "project-loss", "subject": "foo", "count": 3, "decision": "confirm", "reason": "x"}`, "d.jsonl:1: count: bad value: only a limit decision has a count"},
		{"space in subject", `{"flag": "project-loss", "subject": "a b", "decision": "confirm", "reason": "x"}`, "d.jsonl:1: subject: bad value"},
		{"flag twice", `{"flag": "project-loss", "subject": "foo", "decision": "confirm", "reason": "x"}` + "\n" + `{"flag": "project-loss", "subject": "foo", "decision": "confirm", "reason": "y"}`, "d.jsonl:2: subject: decided twice: flag project-loss \"foo\" is decided on line 1 too"},
		{"path and project", `{"path": "` + p1 + `", "project": "foo", "decision": "exclude", "reason": "x"}`, "d.jsonl:1: project: bad value: a decision is about a path, a limit, a flag or a project, one of them"},
		{"project choice", `{"project": "foo", "decision": "drop", "reason": "x"}`, "d.jsonl:1: decision: bad value: \"drop\": a project is decided nominate, unnominate, exclude, unexclude, delegate or undelegate"},
		{"project name", `{"project": "Foo", "decision": "exclude", "reason": "x"}`, "d.jsonl:1: project: bad value: \"Foo\": want a PEP 503-normalised project name"},
		{"project star excluded", `{"project": "*", "decision": "exclude", "reason": "x"}`, "d.jsonl:1: project: bad value: \"*\" is only nominated or unnominated"},
		{"project count", `{"project": "foo", "count": 1, "decision": "exclude", "reason": "x"}`, "d.jsonl:1: count: bad value: only a limit decision has a count"},
		{"project twice", `{"project": "foo", "decision": "exclude", "reason": "x"}` + "\n" + `{"project": "foo", "decision": "unexclude", "reason": "y"}`, "d.jsonl:2: project: decided twice: \"foo\" in excluded is decided on line 1 too"},
		{"neither", `{"decision": "confirm", "reason": "x"}`, "d.jsonl:1: path: malformed decision: missing: name a changed path, a limit, a flag, or a project"},
		{"count on a path", `{"path": "` + p1 + `", "count": 3, "decision": "drop", "reason": "x"}`, "d.jsonl:1: count: bad value: only a limit decision has a count"},
		{"limit without count", `{"limit": "added", "decision": "confirm", "reason": "x"}`, "d.jsonl:1: count: malformed decision: missing: a limit decision confirms an exact count"},
		{"negative count", `{"limit": "added", "count": -1, "decision": "confirm", "reason": "x"}`, "d.jsonl:1: count: bad value: -1 is negative"},
		{"float count", `{"limit": "added", "count": 1.5, "decision": "confirm", "reason": "x"}`, "d.jsonl:1: count: malformed decision: wrong type"},
		{"changed limit", `{"limit": "changed", "count": 3, "decision": "confirm", "reason": "x"}`, "d.jsonl:1: limit: bad value: \"changed\": changed files are decided one by one, by path"},
		{"unknown limit", `{"limit": "held", "count": 3, "decision": "confirm", "reason": "x"}`, "d.jsonl:1: limit: bad value: \"held\": want added or removed"},
		{"limit not confirmed", `{"limit": "added", "count": 3, "decision": "accept-new", "reason": "x"}`, "d.jsonl:1: decision: bad value: \"accept-new\": a limit decision is confirm"},
		{"change decided in both forms", ok + `{"flag": "changed", "subject": "` + p1 + `", "decision": "drop", "reason": "x"}`, "d.jsonl:2: subject: decided twice: the change of \"" + p1 + "\" is decided on line 1 too"},
		{"change decided in both forms, flag first", `{"flag": "changed", "subject": "` + p1 + `", "decision": "drop", "reason": "x"}` + "\n" + ok, "d.jsonl:2: path: decided twice: the change of \"" + p1 + "\" is decided on line 1 too"},
		{"path twice", ok + ok, "d.jsonl:2: path: decided twice: \"" + p1 + "\" is decided on line 1 too"},
		{"limit twice", `{"limit": "added", "count": 3, "decision": "confirm", "reason": "x"}` + "\n" + `{"limit": "added", "count": 4, "decision": "confirm", "reason": "y"}`, "d.jsonl:2: limit: decided twice: added is decided on line 1 too"},
		{"blank line", ok + "\n" + ok, "d.jsonl:2: malformed decision: blank line"},
		{"crlf", strings.ReplaceAll(ok, "\n", "\r\n"), "d.jsonl:1: malformed decision: carriage return"},
		{"array", `[` + strings.TrimSpace(ok) + `]`, "d.jsonl:1: malformed decision"},
		{"two on a line", strings.TrimSpace(ok) + " " + strings.TrimSpace(ok), "d.jsonl:1: malformed decision: trailing data"},
		{"null", `{"path": null, "decision": "drop", "reason": "x"}`, "d.jsonl:1: path: malformed decision: null"},
		{"space in path", `{"path": "packages/a b", "decision": "drop", "reason": "x"}`, "d.jsonl:1: path: bad value: \"packages/a b\": a target path has no white space"},
		{"empty path", `{"path": "", "decision": "drop", "reason": "x"}`, "d.jsonl:1: path: bad value"},
		{"not utf-8", "{\"path\": \"" + p1 + "\", \"decision\": \"drop\", \"reason\": \"\xff\"}", "d.jsonl:1: malformed decision"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.file), "d.jsonl")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if !strings.HasPrefix(err.Error(), c.msg) {
				t.Errorf("got  %q\nwant %q…", err, c.msg)
			}
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrBadValue) && !errors.Is(err, ErrDuplicate) {
				t.Errorf("%v wraps no sentinel", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "reading decisions") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte{' '}, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), "big:1: ") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestParseLineRefuses(t *testing.T) {
	for _, l := range []string{
		"", "path\t" + p1 + "\t-\tdrop", "path\t" + p1 + "\t3\tdrop\tx", "limit\tadded\t-\tconfirm\tx",
		"limit\tadded\t007\tconfirm\tx", "limit\tchanged\t1\tconfirm\tx", "other\tx\t-\tdrop\tx", "flag\tBad\tfoo\tconfirm\tx", "flag\tproject-loss\t\tconfirm\tx", "flag\tproject-loss\tfoo\tnominate\tx", "path\t" + p1 + "\t-\tdrop\t ",
	} {
		if d, err := ParseLine(l); err == nil {
			t.Errorf("%q parsed as %+v", l, d)
		}
	}
}

// FuzzParseDecisions: Parse never panics; what it accepts marshals to a
// file that parses to the same canonical lines, whose lines parse back
// one by one.
func FuzzParseDecisions(f *testing.F) {
	f.Add([]byte(`{"path": "` + p1 + `", "decision": "keep-old", "reason": "an attack"}` + "\n"))
	f.Add([]byte(`{"path": "` + p1 + `", "decision": "take-down", "reason": "malware"}` + "\n" + `{"path": "` + p2 + `", "decision": "lift", "reason": "cleared"}`))
	f.Add([]byte(`{"limit": "added", "count": 5, "decision": "confirm", "reason": "first \"ceremony\" \\ ok"}`))
	f.Add([]byte(`{"path": "` + p2 + `", "decision": "expedite", "reason": "PYSEC-2026-17"}` + "\n"))
	f.Add([]byte(`{"project": "certifi", "decision": "exclude", "reason": "r"}` + "\n" + `{"project": "*", "decision": "unnominate", "reason": "by name"}` + "\n"))
	f.Add([]byte("{\"path\": \"a\", \"decision\": \"drop\", \"reason\": \"é\"}\n{\"limit\": \"removed\", \"count\": 0, \"decision\": \"confirm\", \"reason\": \"r\"}\n"))
	f.Add([]byte(`{"flag": "project-loss", "subject": "foo", "decision": "confirm", "reason": "moved"}` + "\n" + `{"flag": "yanked", "subject": "` + p1 + `", "decision": "drop", "reason": "yanked: malware"}`))
	f.Add([]byte(`{"project": "foo", "decision": "exclude", "reason": "r"}` + "\n" + `{"flag": "project-loss", "subject": "foo", "decision": "confirm", "reason": "excluded"}`))
	f.Add([]byte(`{"flag": "changed", "subject": "` + p1 + `", "decision": "keep-old", "reason": "r"}` + "\n" + `{"path": "` + p1 + `", "decision": "drop", "reason": "both forms"}` + "\n"))
	f.Add([]byte(`{"flag": "changed", "subject": "` + p1 + `", "decision": "drop", "reason": "r"}` + "\n" + `{"path": "` + p1 + `", "decision": "take-down", "reason": "not a change decision"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		canon := s.AppendCanonical(nil)
		again, err := Parse(s.Marshal(), "again")
		if err != nil {
			t.Fatalf("Marshal gives a file Parse refuses: %v\n%q", err, s.Marshal())
		}
		if !bytes.Equal(again.AppendCanonical(nil), canon) {
			t.Fatalf("round trip changed the canonical lines")
		}
		for _, d := range s.All() {
			line := strings.TrimSuffix(string(AppendLine(nil, &d)), "\n")
			back, err := ParseLine(line)
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", line, err)
			}
			back.Line = d.Line
			if back != d {
				t.Fatalf("ParseLine(%q) = %+v, want %+v", line, back, d)
			}
		}
	})
}

// Flag decisions and project decisions live in one file: each is looked
// up by its own key, and the canonical order is limits, paths, flags,
// then projects, whatever the file's order.
func TestParseFlagAndProject(t *testing.T) {
	s, err := Parse([]byte(`{"project": "certifi", "decision": "exclude", "reason": "must update fast"}
{"flag": "project-loss", "subject": "certifi", "decision": "confirm", "reason": "excluded: its files leave stable"}
{"path": "`+p1+`", "decision": "expedite", "reason": "PYSEC-2026-17"}
{"limit": "removed", "count": 3, "decision": "confirm", "reason": "x"}`), "d.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := s.Flag("project-loss", "certifi"); !ok || d.Line != 2 || d.Names() != "flag project-loss certifi" {
		t.Errorf("Flag = %+v, %v", d, ok)
	}
	if d, ok := s.Project("excluded", "certifi"); !ok || d.Line != 1 {
		t.Errorf("Project = %+v, %v", d, ok)
	}
	want := "decisions 4\n" +
		"limit\tremoved\t3\tconfirm\tx\n" +
		"path\t" + p1 + "\t-\texpedite\tPYSEC-2026-17\n" +
		"flag\tproject-loss\tcertifi\tconfirm\texcluded: its files leave stable\n" +
		"project\tcertifi\t-\texclude\tmust update fast\n"
	if got := string(s.AppendCanonical(nil)); got != want {
		t.Errorf("canonical\n%s\nwant\n%s", got, want)
	}
	back, err := Parse(s.Marshal(), "again")
	if err != nil || string(back.AppendCanonical(nil)) != want {
		t.Errorf("Marshal round trip: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(want, "\n"), "\n")[1:] {
		d, err := ParseLine(l)
		if err != nil || string(AppendLine(nil, &d)) != l+"\n" {
			t.Errorf("ParseLine(%q): %+v, %v", l, d, err)
		}
	}
	if _, err := Parse([]byte(`{"flag": "project-loss", "subject": "certifi", "project": "certifi", "decision": "confirm", "reason": "x"}`), "d.jsonl"); !errors.Is(err, ErrBadValue) {
		t.Errorf("a flag and a project on one line: %v", err)
	}
}

// TestWith: the room's decisions join the file's, checked as a file is;
// one that repeats a decision of the file is refused.
func TestWith(t *testing.T) {
	s, err := Parse([]byte(`{"path": "`+p1+`", "decision": "keep-old", "reason": "an attack"}`), "d.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.With("room", Decision{Flag: "backdated", Subject: p2, Choice: Confirm, Reason: "seen"}, Decision{Limit: LimitAdded, Count: 7, Choice: Confirm, Reason: "expected"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != 3 || s.Len() != 1 || w.Name() != "room" {
		t.Fatalf("with: %d decisions (file %d), named %q", w.Len(), s.Len(), w.Name())
	}
	if d, ok := w.Limit(LimitAdded); !ok || d.Count != 7 {
		t.Errorf("limit: %+v", d)
	}
	if _, ok := w.Flag("backdated", p2); !ok {
		t.Error("the flag decision is not in the set")
	}
	if _, err := s.With("room", Decision{Flag: FlagChanged, Subject: p1, Choice: AcceptNew, Reason: "x"}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("a change decided again: %v", err)
	}
	if _, err := s.With("room", Decision{Flag: "backdated", Subject: p2, Choice: Confirm, Reason: ""}); !errors.Is(err, ErrBadValue) {
		t.Errorf("an empty reason: %v", err)
	}
}
