// Package signeddiff is the signed diff: a DSSE envelope in which the
// stable keyholders sign what a ceremony compared and the digest of the
// full canonical diff, for auditors to recompute (docs/signed-diff.md).
//
// What it promises:
//
//   - Sign validates the statement, signs it with every signer and checks
//     each signature right after it is made.
//   - Load and DecodeStatement are strict: they accept only the one
//     canonical form Marshal and MarshalPayload write.
//   - Verify counts a signature only from a distinct key among the keys it
//     is given, with the key id recomputed, and says why each signature
//     did not count.
package signeddiff
