// Package tuf reads, writes, signs and verifies TUF 1.0 metadata: root,
// targets (with delegations to explicit roles by paths or by hex
// path_hash_prefixes), snapshot and timestamp.
//
// It promises:
//   - Loading is strict. A document must round-trip exactly: an unknown,
//     missing, misspelt or null field, a duplicate object key, a wrong type,
//     a number in a non-canonical form, trailing data, a malformed expiry,
//     an unknown spec_version, version 0, a key id that is not the hash of
//     its key, uppercase hex: each is a *LoadError naming the file and the
//     field (and the line, for what the one strict decoder,
//     internal/strictjson, refuses). What loads is therefore exactly what
//     go-tuf and python-tuf re-encode before they verify.
//   - There is one way to read trusted metadata from a directory:
//     Newest/Versions find N.<role>.json (N a canonical positive decimal; a
//     name like 01.root.json is refused), RoleKeys/DelegateKeys give the
//     keys and threshold a parent grants a role, and LoadVersion/LoadNewest
//     load the file strictly, check that it holds version N and that the
//     threshold signed it.
//   - The signed bytes are go-securesystemslib cjson of the signed object;
//     files are ordinary indented JSON (cjson leaves control characters raw,
//     which breaks PEM keys), and end with a newline.
//   - Verification recomputes every key id, counts each distinct key once,
//     and accepts only the schemes and encodings package keys accepts.
//   - Expiry is always "YYYY-MM-DDTHH:MM:SSZ" in UTC.
//   - VerifyRepository checks the layout stable's promise rests on
//     (verifylayout.go): stable first, then unstable; under stable, the
//     path roles (terminating delegations by paths: the takedown role,
//     exact and empty, and developer roles) before the hash bins, which
//     partition their parent's prefixes, each role with a key of its own
//     (pathroles.go).
package tuf
