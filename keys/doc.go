// Package keys holds public keys in their TUF form, TUF key ids, signature
// encoding and verification, the signer interface every key holder
// (hardware device or in-memory ceremony key) implements, attestation
// verification, and ways to show a digest to people so that it can be read
// aloud and compared.
//
// It promises:
//   - Key ids are the hex SHA-256 of the canonical JSON of
//     {keytype, scheme, keyval}, and are always recomputed, never trusted.
//   - Only two schemes exist here: "ed25519" (keyval.public is hex) and
//     "ecdsa-sha2-nistp256" (keyval.public is a PKIX "PUBLIC KEY" PEM with its
//     trailing newline). Anything else is ErrUnsupportedKey.
//   - Signatures are raw bytes in memory and lowercase hex in metadata.
//     ECDSA signatures are strict DER over SHA-256 of the message; a raw r||s
//     signature, a signature with trailing bytes or a non-minimal encoding is
//     rejected with ErrBadSignature.
//   - Attestations verify against the roots a caller gives, never the
//     system pool: directly under Yubico's PIV root (firmware before
//     5.7.4) or through Yubico's newer hierarchy (embedded, pinned by
//     fingerprint), and the path found can be written out whole for
//     openssl. ParseAttestationCAs takes only CA certificates, never a
//     device's own attestation certificate.
package keys
