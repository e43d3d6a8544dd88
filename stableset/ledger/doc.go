// Package ledger reads and writes the ledger: what a stable ceremony saw
// of the repository (every file of its export, whether it entered the
// stable set, and each stable project's index pages), in a compact binary
// form that the stable metadata binds by its digest
// (docs/stable-pipeline.md, "Ledger").
//
// What it promises:
//
//   - Writer writes only well-formed ledgers: file paths strictly
//     increasing, then projects strictly increasing by page path, then a
//     trailer with the counts and the SHA-256 of everything before it.
//   - Reader is streaming and strict: it refuses anything Writer would not
//     have written, and a truncated or edited ledger, with an *Error at a
//     byte offset wrapping one of the ErrLedger* sentinels; FileDigest
//     gives the digest of the whole file to compare with what stable
//     signed.
//   - Bad input never panics.
package ledger
