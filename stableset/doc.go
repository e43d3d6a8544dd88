// Package stableset decides what the offline stable role signs.
//
// It reads the repository export (the full listing of a PyPI-like
// repository's files, format v1, documented in docs/export-format.md) and
// the ceremony policy (docs/policy.md), and says which files are eligible
// for the stable set.
//
// What it promises:
//
//   - The export parser is streaming and strict. An export is accepted only
//     if every line is in the one canonical form the format allows, every
//     record is valid on its own (hashes, lengths, path layout, project
//     names, times), the records are sorted by path with no duplicates, and
//     the trailer's count and SHA-256 digest match what came before it. A
//     truncated, edited or malformed export is refused with an
//     *ExportError naming the file, the line and the field; its cause is
//     one of the Err* sentinels, checkable with errors.Is.
//   - Nothing the parser accepts is ambiguous: re-encoding the parsed
//     records with ExportWriter gives back the same bytes.
//   - The policy file is parsed strictly: unknown, duplicate or mistyped
//     fields are refused with a *PolicyError naming the field.
//   - The stable pipeline (ComputeDiff, then (*Diff).Sign) reads the export
//     once, parsing it on every core with the same strictness, and knows
//     the previous stable set only from the ledger that the published,
//     threshold-signed stable metadata binds by its digest; it verifies
//     both before returning a diff, and signs nothing unless the approval
//     names the diff's digest. Its output appears whole, by one rename, or
//     not at all (docs/stable-pipeline.md).
//   - Bad input never panics.
package stableset
