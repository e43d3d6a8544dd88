package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/keys"
	"github.com/keyceremony/keyceremony/stableset/delegation"
	"github.com/keyceremony/keyceremony/stableset/export"
)

func TestDefaultPolicyMatchesTemplate(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "templates", "files", "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(tmpl) != defaultPolicyJSON {
		t.Fatalf("templates/files/policy.json and defaultPolicyJSON differ")
	}
	p := Default()
	if p.MinAgeDays != 90 || !p.AllNominated || len(p.Excluded) != 0 || p.ConfirmAbove != (Limits{2000000, 10000, 0}) {
		t.Errorf("default policy = %+v", p)
	}
	enc, _ := p.MarshalJSON()
	if string(enc) != defaultPolicyJSON {
		t.Errorf("MarshalJSON(default) =\n%s\nwant\n%s", enc, defaultPolicyJSON)
	}
	// An empty object is the default policy too.
	q, err := Parse([]byte(`{}`), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if !samePolicy(p, q) {
		t.Errorf("{} = %+v, want the default %+v", q, p)
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := Parse([]byte(`{"min_age_days": 30, "nominated": ["requests", "django"], "excluded": ["boto3"],
		"confirm_above": {"changed": 5}}`), "p.json")
	if err != nil {
		t.Fatal(err)
	}
	if p.MinAgeDays != 30 || p.AllNominated || !reflect.DeepEqual(p.Nominated, []string{"django", "requests"}) ||
		!reflect.DeepEqual(p.Excluded, []string{"boto3"}) || p.ConfirmAbove != (Limits{2000000, 10000, 5}) {
		t.Errorf("policy = %+v", p)
	}
	enc, _ := p.MarshalJSON()
	q, err := Parse(enc, "again")
	if err != nil {
		t.Fatal(err)
	}
	if !samePolicy(p, q) {
		t.Errorf("round trip: %+v, want %+v", q, p)
	}
}

// TestPolicyDocExample parses the example in docs/policy.md.
func TestPolicyDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i := strings.LastIndex(s, "```json\n")
	j := strings.LastIndex(s, "```\n")
	p, err := Parse([]byte(s[i+len("```json\n"):j]), "docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	if p.MinAgeDays != 120 || !reflect.DeepEqual(p.Excluded, []string{"certifi", "tzdata"}) {
		t.Errorf("example = %+v", p)
	}
}

func TestParsePolicyRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		field    string
		err      error
	}{
		{"unknown field", "{\n  \"min_age\": 3\n}", 2, "min_age", export.ErrUnknownField},
		{"unknown nested", `{"confirm_above": {"add": 3}}`, 1, "confirm_above.add", export.ErrUnknownField},
		{"duplicate field", `{"min_age_days": 3, "min_age_days": 4}`, 1, "min_age_days", export.ErrDuplicateField},
		{"case-folded field", "{\n\"Min_Age_Days\": 3}", 2, "Min_Age_Days", export.ErrUnknownField},
		{"case-folded nested field", `{"confirm_above": {"Added": 3}}`, 1, "confirm_above.Added", export.ErrUnknownField},
		{"null field", `{"excluded": null}`, 1, "excluded", export.ErrType},
		{"duplicate nested", `{"confirm_above": {"added": 3, "added": 3}}`, 1, "confirm_above.added", export.ErrDuplicateField},
		{"string age", `{"min_age_days": "90"}`, 1, "min_age_days", export.ErrType},
		{"float age", `{"min_age_days": 1.5}`, 1, "min_age_days", export.ErrType},
		{"negative age", `{"min_age_days": -1}`, 1, "min_age_days", export.ErrBadValue},
		{"huge age", `{"min_age_days": 36500}`, 1, "min_age_days", export.ErrBadValue},
		{"negative limit", `{"confirm_above": {"removed": -1}}`, 1, "confirm_above.removed", export.ErrBadValue},
		{"loss above 100", `{"red_flags": {"project_loss_percent": 101}}`, 1, "red_flags.project_loss_percent", export.ErrBadValue},
		{"loss as a fraction", `{"red_flags": {"project_loss_percent": 0.5}}`, 1, "red_flags.project_loss_percent", export.ErrType},
		{"unknown red flag", `{"red_flags": {"yanked": 1}}`, 1, "red_flags.yanked", export.ErrUnknownField},
		{"switch as a number", `{"red_flags": {"yanked_stable": 1}}`, 1, "red_flags.yanked_stable", export.ErrType},
		{"switch as a string", `{"red_flags": {"name_collision": "false"}}`, 1, "red_flags.name_collision", export.ErrType},
		{"switch null", `{"red_flags": {"added_to_stable_release": null}}`, 1, "red_flags.added_to_stable_release", export.ErrType},
		{"nominated string", `{"nominated": "*"}`, 1, "nominated", export.ErrType},
		{"nominated number", `{"nominated": [1]}`, 1, "nominated[0]", export.ErrType},
		{"not normalised", "{\n\"excluded\": [\"ok\",\n \"Django\"]}", 3, "excluded[1]", export.ErrBadProject},
		{"underscore", `{"nominated": ["foo_bar"]}`, 1, "nominated[0]", export.ErrBadProject},
		{"listed twice", `{"excluded": ["a", "a"]}`, 1, "excluded[1]", export.ErrBadValue},
		{"empty nominated", `{"nominated": []}`, 1, "nominated", export.ErrBadValue},
		{"star and names", `{"nominated": ["*", "a"]}`, 1, "nominated", export.ErrBadValue},
		{"star excluded", `{"excluded": ["*"]}`, 1, "excluded[0]", export.ErrBadProject},
		{"nominated and excluded", "{\"nominated\": [\"a\"],\n \"excluded\": [\"a\"]}", 2, "excluded", export.ErrBadValue},
		{"not an object", `[]`, 1, "", export.ErrType},
		{"trailing data", `{} {}`, 1, "", export.ErrSyntax},
		{"syntax", `{"min_age_days": }`, 1, "min_age_days", export.ErrSyntax},
		{"truncated", `{"min_age_days": 3`, 1, "", export.ErrSyntax},
		{"empty file", ``, 1, "", export.ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "p.json")
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *Error", err)
			}
			if !errors.Is(err, tc.err) || pe.Line != tc.line || pe.Field != tc.field || pe.File != "p.json" {
				t.Fatalf("err = %q (line %d, field %q), want line %d, field %q, cause %q", err, pe.Line, pe.Field, tc.line, tc.field, tc.err)
			}
			t.Log(err)
		})
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(path, []byte(`{"min_age_days": 7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil || p.MinAgeDays != 7 {
		t.Fatalf("Load = %+v, %v", p, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestEligible(t *testing.T) {
	p, err := Parse([]byte(`{"min_age_days": 90, "nominated": ["foo", "bar"], "excluded": ["baz"]}`), "p")
	if err != nil {
		t.Fatal(err)
	}
	all := Default()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-90 * 24 * time.Hour)
	for _, tc := range []struct {
		p       *Policy
		project string
		upload  time.Time
		ok      bool
		reason  HoldReason
	}{
		{p, "foo", cutoff, true, HoldNone},
		{p, "foo", cutoff.Add(time.Second), false, HoldTooYoung},
		{p, "foo", now, false, HoldTooYoung},
		{p, "qux", cutoff.Add(-time.Hour), false, HoldNotNominated},
		{p, "baz", cutoff.Add(-time.Hour), false, HoldExcluded},
		{all, "qux", cutoff.Add(-time.Hour), true, HoldNone},
		{all, "qux", cutoff.Add(time.Hour), false, HoldTooYoung},
	} {
		r := export.Record{Project: tc.project, UploadTime: tc.upload}
		ok, reason := tc.p.Eligible(&r, now)
		if ok != tc.ok || reason != tc.reason {
			t.Errorf("Eligible(%s, %s) = %v, %v; want %v, %v", tc.project, tc.upload, ok, reason, tc.ok, tc.reason)
		}
	}
	if HoldBackdated.String() != "backdated" || HoldTooYoung.String() != "too young" {
		t.Error("HoldReason.String")
	}
}

// FuzzParsePolicy checks that Parse never panics, that errors are
// located, and that an accepted policy re-encodes to one that parses equal.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(defaultPolicyJSON))
	f.Add([]byte(`{"min_age_days": 30, "nominated": ["requests", "django"], "excluded": ["boto3"], "confirm_above": {"changed": 5}}`))
	f.Add([]byte(`{"nominated": ["*", "a"]}`))
	f.Add([]byte(`{"target_mode": "pages", "naming": "warehouse"}`))
	f.Add([]byte(`{"red_flags": {"project_loss_percent": 0}}`))
	f.Add([]byte(`{"red_flags": {"added_to_stable_release": false, "name_collision": true, "yanked_stable": false}}`))
	f.Add([]byte(`{"expedite": [{"path": "packages/aa/bb/cc/foo-1.0.1.tar.gz", "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", "reason": "PYSEC-2026-17"}, {"path": "packages/aa/bb/cc/foo-1.0.2.tar.gz", "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", "reason": "r\u00e9sum\u00e9 of GHSA-xxxx"}]}`))
	ed, ec := devSigner(f, false), devSigner(f, true)
	f.Add(delegationJSON(f, "foo-bar", 2, []keys.Signer{ed, ec}, nil, delegation.Proof{Repository: "pypi", Project: "foo-bar", StableVersion: 3}))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz")
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 || pe.File != "fuzz" {
				t.Fatalf("error %v is not a located *Error", err)
			}
			return
		}
		enc, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(enc, "again")
		if err != nil {
			t.Fatalf("re-encoded policy refused: %v\n%s", err, enc)
		}
		if !samePolicy(p, q) {
			t.Fatalf("re-encoded policy differs: %+v, want %+v", q, p)
		}
		enc2, _ := q.MarshalJSON()
		if string(enc) != string(enc2) {
			t.Fatalf("encoding is not stable")
		}
	})
}

// samePolicy compares what two policies decide, not the bytes they were
// parsed from (a re-encoded policy has other bytes).
func samePolicy(p, q *Policy) bool {
	a, b := *p, *q
	a.raw, b.raw = nil, nil
	return reflect.DeepEqual(a, b)
}

func TestBytesAreTheFile(t *testing.T) {
	data := []byte("{\n  \"min_age_days\": 30 ,\n  \"excluded\": [\"boto3\"]\n}\n")
	p, err := Parse(data, "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Bytes(), data) {
		t.Fatalf("Bytes() = %q, want the file as parsed", p.Bytes())
	}
	p.Bytes()[0] = 'X'
	if !bytes.Equal(p.Bytes(), data) {
		t.Fatal("Bytes() shares its array with the caller")
	}
	if !bytes.Equal(Default().Bytes(), []byte(defaultPolicyJSON)) {
		t.Fatal("the default policy's bytes are not the built-in file")
	}
}

func TestTargetModeAndNaming(t *testing.T) {
	p := Default()
	if p.TargetMode != ModeFilesPages || p.Naming != NamingPEP458 || !p.TargetMode.ListsFiles() {
		t.Fatalf("default mode %q naming %q", p.TargetMode, p.Naming)
	}
	p, err := Parse([]byte(`{"target_mode": "pages", "naming": "warehouse"}`), "p.json")
	if err != nil {
		t.Fatal(err)
	}
	if p.TargetMode != ModePages || p.Naming != NamingWarehouse || p.TargetMode.ListsFiles() {
		t.Fatalf("mode %q naming %q", p.TargetMode, p.Naming)
	}
	enc, _ := p.MarshalJSON()
	q, err := Parse(enc, "again")
	if err != nil || !samePolicy(p, q) {
		t.Fatalf("round trip: %v %+v\n%s", err, q, enc)
	}
	for _, c := range []struct{ in, field, want string }{
		{"{\n\"target_mode\": \"files\"\n}", "target_mode", `"files", want "files+pages" or "pages"`},
		{"{\n\"target_mode\": \"Pages\"\n}", "target_mode", `"Pages"`},
		{"{\n\n\"naming\": \"pypi\"\n}", "naming", `"pypi", want "pep458" or "warehouse"`},
	} {
		_, err := Parse([]byte(c.in), "p.json")
		var pe *Error
		if !errors.As(err, &pe) || pe.Field != c.field || !errors.Is(err, export.ErrBadValue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if want := strings.Count(c.in[:strings.Index(c.in, c.field)], "\n") + 1; pe.Line != want {
			t.Errorf("%s: line %d, want %d", c.in, pe.Line, want)
		}
	}
	if _, err := Parse([]byte(`{"target_mode": 1}`), "p.json"); !errors.Is(err, export.ErrType) {
		t.Errorf("number mode: %v", err)
	}
}

// red_flags.project_loss_percent: 50 when absent, any of 0 to 100 read
// and encoded back (only when not the default, so that the default
// still encodes as the template).
func TestRedFlagsThreshold(t *testing.T) {
	if p := Default(); p.RedFlags.ProjectLossPercent != DefaultProjectLossPercent {
		t.Errorf("default: %d", p.RedFlags.ProjectLossPercent)
	}
	for _, n := range []int64{0, 30, 100} {
		p, err := Parse([]byte(`{"red_flags": {"project_loss_percent": `+strconv.FormatInt(n, 10)+`}}`), "p.json")
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := p.MarshalJSON()
		q, err := Parse(enc, "again")
		if err != nil || q.RedFlags.ProjectLossPercent != n || p.RedFlags.ProjectLossPercent != n {
			t.Errorf("%d: %v, %+v\n%s", n, err, q, enc)
		}
	}
}

// The red flags' switches: on when absent, each read and encoded back.
func TestRedFlagsSwitches(t *testing.T) {
	if rf := Default().RedFlags; !rf.AddedToStableRelease || !rf.NameCollision || !rf.YankedStable {
		t.Errorf("default: %+v", rf)
	}
	for _, tc := range []struct {
		json string
		want RedFlags
	}{
		{`{"added_to_stable_release": false}`, RedFlags{ProjectLossPercent: 50, NameCollision: true, YankedStable: true}},
		{`{"name_collision": false}`, RedFlags{ProjectLossPercent: 50, AddedToStableRelease: true, YankedStable: true}},
		{`{"yanked_stable": false, "project_loss_percent": 10}`, RedFlags{ProjectLossPercent: 10, AddedToStableRelease: true, NameCollision: true}},
		{`{"yanked_stable": true}`, DefaultRedFlags},
	} {
		p, err := Parse([]byte(`{"red_flags": `+tc.json+`}`), "p.json")
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := p.MarshalJSON()
		q, err := Parse(enc, "again")
		if err != nil || p.RedFlags != tc.want || q.RedFlags != tc.want {
			t.Errorf("%s: %v, %+v %+v\n%s", tc.json, err, p.RedFlags, q, enc)
		}
	}
}

// The expedite list: each file by path and sha256 with a reason, kept in
// path order; every malformed entry is refused at its line and field.
func TestExpedite(t *testing.T) {
	const (
		a   = "packages/aa/bb/cccc/foo-1.0.1.tar.gz"
		b   = "packages/11/22/3333/bar-2.0.1-py3-none-any.whl"
		sum = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	)
	p, err := Parse([]byte(`{"expedite": [
  {"path": "`+a+`", "sha256": "`+sum+`", "reason": "PYSEC-2026-17"},
  {"path": "`+b+`", "sha256": "`+sum+`", "reason": "CVE-2026-0001, fixed in 2.0.1"}
]}`), "p.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Expedite) != 2 || p.Expedite[0].Path != b || p.Expedite[1].Path != a || p.Expedite[1].Reason != "PYSEC-2026-17" {
		t.Fatalf("expedite %+v", p.Expedite)
	}
	if x, ok := p.ExpeditedFile(a); !ok || x.Reason != "PYSEC-2026-17" || x.SHA256[0] != 0x58 {
		t.Errorf("ExpeditedFile(%s) = %+v, %v", a, x, ok)
	}
	if _, ok := p.ExpeditedFile("packages/aa/bb/cccc/foo-1.0.tar.gz"); ok {
		t.Error("a path the policy does not name is expedited")
	}
	if _, ok := Default().ExpeditedFile(a); ok || Default().Expedite == nil {
		t.Error("the default policy expedites, or its list is nil")
	}
	enc, _ := p.MarshalJSON()
	q, err := Parse(enc, "again")
	if err != nil || !samePolicy(p, q) {
		t.Fatalf("round trip: %v\n%s", err, enc)
	}
	entry := func(path, sha, reason string) string {
		return "{\n\"expedite\": [\n{\"path\": \"" + path + "\", \"sha256\": \"" + sha + "\", \"reason\": \"" + reason + "\"}\n]}"
	}
	for _, c := range []struct{ in, field, want string }{
		{entry("simple/foo/index.html", sum, "x"), "expedite[0].path", `"simple/foo/index.html": a distribution file's target path starts with packages/`},
		{entry("packages/aa//foo-1.0.tar.gz", sum, "x"), "expedite[0].path", "an empty, . or .. segment"},
		{entry("packages/aa/../foo-1.0.tar.gz", sum, "x"), "expedite[0].path", "an empty, . or .. segment"},
		{entry("packages/aa/b c/foo-1.0.tar.gz", sum, "x"), "expedite[0].path", "no white space"},
		{entry(a, strings.ToUpper(sum), "x"), "expedite[0].sha256", "want 64 lowercase hex digits"},
		{entry(a, sum[:62], "x"), "expedite[0].sha256", "want 64 lowercase hex digits"},
		{entry(a, sum, " "), "expedite[0].reason", "empty: say why"},
		{entry(a, sum, `a\tb`), "expedite[0].reason", "no tabs"},
		{"{\n\"expedite\": [\n{\"path\": \"" + a + "\", \"sha256\": \"" + sum + "\", \"reason\": \"x\"},\n{\"path\": \"" + a + "\", \"sha256\": \"" + sum + "\", \"reason\": \"y\"}]}", "expedite[1].path", "is listed twice"},
	} {
		_, err := Parse([]byte(c.in), "p.json")
		var pe *Error
		if !errors.As(err, &pe) || pe.Field != c.field || !errors.Is(err, export.ErrBadValue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s: %s", c.in, err, c.field, c.want)
			continue
		}
		if pe.Line != 3 && pe.Line != 4 {
			t.Errorf("%s: line %d", c.in, pe.Line)
		}
	}
	for _, in := range []string{`{"expedite": [{"path": "` + a + `", "sha256": "` + sum + `"}]}`, `{"expedite": [{"path": "` + a + `", "sha256": "` + sum + `", "reason": "x", "advisory": "y"}]}`} {
		if _, err := Parse([]byte(in), "p.json"); !errors.Is(err, export.ErrUnknownField) {
			t.Errorf("%s: %v", in, err)
		}
	}
}
