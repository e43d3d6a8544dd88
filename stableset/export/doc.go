// Package export reads and writes the repository export: the full listing
// of a PyPI-like repository's files that the repository hands the offline
// side (format v1, docs/export-format.md).
//
// What it promises:
//
//   - The reader is streaming and strict. An export is accepted only if
//     every line is in the one canonical form the format allows, every
//     record is valid on its own (hashes, lengths, path layout, project
//     names, times), the records are sorted by path with no duplicates, and
//     the trailer's count and SHA-256 digest match what came before it, and
//     no two records share a filename. A truncated, edited or malformed
//     export is refused with an *Error naming the file, the line and the
//     field; its cause is one of the Err* sentinels, checkable with
//     errors.Is.
//   - One pass reports every refused record: a bad record does not stop
//     the reader, the good ones keep streaming, and the pass ends with an
//     *Errors listing the first MaxErrors refusals, by line, and
//     counting the rest.
//   - Legacy names are history, not errors: a file whose name or version
//     follows only rules PyPI applied in the past is accepted, kept in the
//     project the export names, and flagged (Record.Legacy). What could
//     let a name escape its place (separators, dot segments, control
//     characters) stays refused.
//   - Reading in parallel (Reader.Batches) accepts exactly what Next
//     accepts, with the same errors, and delivers the records in order.
//   - Nothing the reader accepts is ambiguous: re-encoding the parsed
//     records with Writer gives back the same bytes.
//   - Bad input never panics.
package export
