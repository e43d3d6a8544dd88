"""Verify diff.dsse.json without keyceremony or Go: DSSE PAE by hand,
ed25519 with the 'cryptography' package, TUF key ids recomputed.

Run from stableset/signeddiff/testdata: python3 verify_independently.py
(docs/signed-diff.md shows the same steps for an auditor.)
"""
import base64, hashlib, json

env = json.load(open("diff.dsse.json"))
keyring = json.load(open("keys.json"))
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

body = base64.b64decode(env["payload"], validate=True)
ptype = env["payloadType"].encode()
assert ptype == b"application/vnd.keyceremony.diff+json"
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(body), body)
valid = set()
for s in env["signatures"]:
    key = keyring[s["keyid"]]
    canon = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(canon).hexdigest() == s["keyid"], "key id mismatch"
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["keyval"]["public"])).verify(
        base64.b64decode(s["sig"], validate=True), pae)
    valid.add(s["keyid"])
assert len(valid) >= 2, "below threshold"
stmt = json.loads(body)
print("2-of-3 threshold met; diff_sha256 =", stmt["diff_sha256"])
