// Package decisions is the room's decisions file: what the people who
// review a stable diff decided about each red flag, with their reason
// (docs/policy.md, "Decisions").
//
// A decisions file is JSON Lines, one decision per line:
//
//	{"path": "packages/…/foo-1.0.tar.gz", "decision": "keep-old", "reason": "…"}
//	{"limit": "added", "count": 2104311, "decision": "confirm", "reason": "…"}
//	{"flag": "project-loss", "subject": "foo", "decision": "confirm", "reason": "…"}
//	{"flag": "changed", "subject": "packages/…/bar-1.0.tar.gz", "decision": "drop", "reason": "…"}
//	{"project": "certifi", "decision": "exclude", "reason": "…"}
//
// A path decision settles one changed file (keep-old, accept-new or
// drop), takes a stable file out of the stable set (take-down), ends an
// earlier takedown (lift) or lets in a file the policy expedites
// (expedite); a limit decision confirms a count above the policy's
// confirm_above limit, naming the exact count; a flag decision settles
// one red flag, named by its kind and subject (a changed file's flag,
// "changed", is settled alike by a path decision, the earlier form; one
// file may not hold both for one path); a project decision
// confirms a change to the policy's nominated or excluded list
// (nominate, unnominate, exclude, unexclude). This package checks a flag
// decision's form; which kinds exist and which choices settle each is
// the diff's (stableset, flags.go).
//
// What it promises:
//
//   - Parse and Load are strict: unknown, duplicate, missing or mistyped
//     fields, a value that is not allowed, a path or limit decided twice,
//     blank lines and carriage returns are refused with an *Error naming
//     the file, the line and the field.
//   - A Set's canonical lines (AppendCanonical) depend only on the
//     decisions, not on the file's layout or order, and are what the
//     stable diff's digest covers.
//   - Bad input never panics.
package decisions
