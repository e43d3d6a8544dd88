// Package stableset decides what the offline stable role signs, and signs
// it: the diff of a repository export against the published stable set,
// and the pipeline that turns an approved diff into the stable metadata,
// its two levels of hashed bins, the stable index pages and the ledger.
//
// The formats it works on live in packages of their own beneath it:
// export (the repository export), ledger (what each ceremony saw), policy
// (which files may be signed), decisions (what the room decided about
// each red flag), simpleindex (the index pages) and signeddiff (the
// signed diff).
//
// What it promises:
//
//   - ComputeDiff reads the export once, parsing it on every core with the
//     export package's full strictness, and knows the previous stable set
//     only from the ledger that the published, threshold-signed stable
//     metadata binds by its digest; it verifies both before returning a
//     diff.
//   - The digest covers every entry, the policy's exact bytes (by
//     digest) and the room's decisions with their reasons
//     (stableset/decisions); a decision that does not match the diff is
//     refused (ErrDecision).
//   - The review's summary (WriteText, WriteJSON) comes from the counts
//     the pass made, never from the entries; the full list is sorted by
//     project, then version.
//   - (*Diff).Sign signs nothing unless the approval names the diff's
//     digest and every confirm_above limit the diff crosses is settled by
//     a decision (ErrUndecided names the limit and the count). stable delegates to mid roles and each mid to its leaf
//     bins (tuf.TwoLevel, sized by tuf.SizeTwoLevel so that every file
//     and the snapshot entries stay within the clients' limits; a count
//     that cannot fit is refused before anything is signed). Every mid
//     and leaf is signed by a key of its own, which the caller's
//     BinKeySource gives (EphemeralBinKeys: made in memory, never
//     stored); a key given for two roles is refused, so that no role's
//     file verifies as another's. Every signature is verified right after
//     it is made. Its output appears whole, by one rename, every file written and
//     every directory fsynced, or not at all (internal/outdir).
//   - A take-down decision takes a path of the previous stable set out
//     of it in the same diff (removed, reason taken-down; its pages made
//     again) and stable delegates exactly the taken-down paths, first
//     and terminating, to the empty takedown role with a key of its own
//     (tuf.TakedownRole); the set is read back from the published
//     stable and kept, held, until a lift decision (takedown.go).
//   - It changes no process-wide state: the GC settings the pipeline is
//     measured with are set by main (internal/gctune).
//   - Errors keep their causes: an I/O error reading or writing the work
//     directory is returned as itself, never as a corrupt work file.
//   - Work files are created only for the buckets that receive data, and
//     the work directory is removed when the diff is closed or fails.
//   - Bad input never panics.
package stableset
