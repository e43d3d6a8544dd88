// Package ceremony runs the flows that people in the room take part in:
// bootstrap (keys generated on devices, root v1, targets v1 and an empty
// stable v1), stable signing, rotation and verification, plus the demo
// that runs all of it against INSECURE soft devices.
//
// It promises:
//   - Every key that goes into metadata was attested by the device that
//     holds it, for the slot and the PIN and touch policies asked for, with
//     every certificate valid at the ceremony's time, and the attested key
//     is the key written. The ceremony checks this itself for every device
//     kind.
//   - A bootstrap runs every check its metadata must pass, and checks every
//     device's attestation roots, before the first key is generated; if it
//     fails after keys exist, it lists each orphan key with the command
//     that clears it.
//   - Every signature is verified against its public key right after it is
//     made.
//   - Outputs are written into a new directory that appears only when the
//     whole flow succeeded: a failed run leaves nothing behind, and an
//     existing non-empty directory is never written into.
//   - Every step is recorded in a hash-chained transcript that holds public
//     information only: no PIN, PUK or private key is ever passed to it.
//   - A ceremony's steps are numbered from its configuration alone
//     (BootstrapSteps, StableSteps), so the run sheet printed before it
//     (WriteRunSheet) and the screens name the same steps; the run sheet
//     is written only to new files, both HTML and PDF or neither.
//   - A renewal changes nothing but a role's version and expiry; a
//     rotation's new root is signed by the old root's threshold without
//     the revoked keys and by its own, and changes nothing but the keys it
//     replaces (Renewal, RootRotation, RoleKeyRotation, OnlineRotation);
//     a handover changes no metadata, and the device's keys sign it
//     (Handover). Audit checks each against the medium it started from.
//   - The guided ceremony (Guide, guide.go) shows those steps, in order and
//     with their numbers, says who acts, waits for the room and records
//     each with its real time; nothing is signed before the keyholder has
//     typed the check words of what they sign, and no PIN try is spent
//     without the keyholder's say (the last one only when confirmed).
//     Without a guide (the batch form) the same flows run unattended.
//   - Audit trusts nothing on a medium because it is there: every medium
//     is checked from the trusted root the auditor names, and its errors
//     tell an invalid medium (ErrInvalidMedium) from one that could not be
//     read (ErrUnreadable).
package ceremony
