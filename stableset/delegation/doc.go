// Package delegation is what the stable role needs to hand a project to
// its developers (docs/policy.md, "Developer delegations"): the path
// patterns of a project's files and index pages, checked against every
// file of an export so that they match no other project's file, and the
// proof of possession each developer key signs so that a key nobody holds
// cannot be delegated to.
//
// What it promises:
//
//   - Patterns derives, from the PEP 503 name alone, TUF path patterns
//     (shell-style, one "/"-separated segment at a time, as tuf-js and
//     the spec match them) that match every spelling PyPI gives the
//     project's filenames (case, and "-", "_" or "." between name
//     parts, as sdists and wheels write them) followed by "-" and a
//     version that starts with a digit, and its two index pages. The
//     patterns use only "*", "[Xx]" classes of one letter in both cases,
//     and literal characters, where path.Match and tuf-js's minimatch
//     agree (tested against tuf-js).
//   - Check holds the patterns against every record of an export: a
//     pattern that matches another project's file is refused naming the
//     file and its project (ErrCollision); a file of the project the
//     patterns miss (a legacy name) is added as its exact path, or
//     refused when its path could be read as a pattern.
//   - VerifyProof accepts a proof only when it is a DSSE envelope of
//     payload type ProofPayloadType, signed once, by exactly the key
//     being delegated to, over a statement naming the repository, the
//     project, the stable version of the ceremony and that key
//     (ErrProof otherwise, saying which).
//   - LoadPrivateKey and ParsePrivateKey read a developer's key only
//     from one unencrypted PKCS#8 ed25519 or ECDSA P-256 PEM block, as
//     openssl genpkey writes it, refusing anything else with
//     ErrPrivateKey naming the file and what it holds, never its bytes;
//     Prove makes the policy's {key, proof} entry for it.
//   - Parsers are strict and never panic on bad input (fuzzed).
package delegation
