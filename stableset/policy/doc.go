// Package policy is the stable keyholders' policy: which files the stable
// role may sign (a minimum age, nominated and excluded projects) and the
// limits that demand extra confirmation (docs/policy.md).
//
// What it promises:
//
//   - Parse and Load are strict: unknown, duplicate or mistyped fields,
//     invalid or unnormalised project names and trailing data are refused
//     with an *Error naming the file and the field.
//   - Default is the documented default policy, parsed from the one copy
//     in templates/files/policy.json.
//   - Eligible depends only on the record and the time it is given.
package policy
