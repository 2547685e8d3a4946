#!/usr/bin/env python3
"""The priority kit's own checker, copied into every kit as verify_kit.py: Python 3 standard library only.

It imports nothing from catalogmark (a reviewer runs it without installing anything) and checks what is
awkward in a shell: the files against the record's SHA-256 values, the record hash (``sha256(prev_hash bytes
|| record.json)``), the Merkle audit path up to ``root.txt`` (RFC 9162 §2.1.3.2), the signed claim against
the record, and the public key against the record's key fingerprint. The RFC 3161 tokens and the Ed25519
signature are checked with OpenSSL (VERIFY.md): the standard library has neither CMS nor Ed25519.

Usage: ``python3 verify_kit.py [KIT_FOLDER]`` (default: the folder this script is in). Exit 0 if every check
passes, 1 otherwise; one line per check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # DER SubjectPublicKeyInfo of an Ed25519 key


def canonical(value: object) -> bytes:
    """The canonical JSON catalogmark hashes and signs: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def root_from_path(record_hash: str, index: int, size: int, path: list[str]) -> str | None:
    """RFC 9162 §2.1.3.2: the root an audit path proves for leaf ``index`` of ``size``, or None if it cannot."""
    if not 0 <= index < size:
        return None
    r = hashlib.sha256(b"\x00" + bytes.fromhex(record_hash)).digest()
    fn, sn = index, size - 1
    for hex_sibling in path:
        p = bytes.fromhex(hex_sibling)
        if sn == 0 or len(p) != 32:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r.hex() if sn == 0 else None


def key_fingerprint(pem: str) -> str:
    """catalogmark's key fingerprint: ``cm1:`` + the first 32 hex digits of sha256(the raw 32-byte key)."""
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise ValueError("not an Ed25519 public key")
    return "cm1:" + sha256_hex(der[12:])[:32]


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, what: str, why: str = "") -> bool:
        print(("OK    " if ok else "FAIL  ") + what + ("" if ok or not why else f": {why}"))
        self.failed += not ok
        return ok


def check_kit(kit: Path) -> int:
    c = Checks()
    data = (kit / "record.json").read_bytes()
    try:
        fields = json.loads(data)
    except ValueError as exc:
        c.check(False, "record.json is JSON", str(exc))
        return 1
    c.check(canonical(fields) == data, "record.json is canonical JSON (as hashed)")
    try:
        rh = sha256_hex(bytes.fromhex(str(fields.get("prev_hash"))) + data)
    except ValueError:
        c.check(False, "record.json prev_hash is hex")
        return 1
    proof = json.loads((kit / "proof.json").read_text(encoding="utf-8"))
    c.check(rh == proof.get("record_hash"), f"record hash sha256(prev_hash || record.json) = {rh}",
            f"proof.json says {proof.get('record_hash')}")
    root = (kit / "root.txt").read_text(encoding="ascii").strip()
    try:
        computed = root_from_path(rh, int(proof["leaf_index"]), int(proof["tree_size"]), list(proof["audit_path"]))
    except (KeyError, TypeError, ValueError):
        computed = None
    c.check(computed == root, f"Merkle audit path (leaf {proof.get('leaf_index')} of {proof.get('tree_size')}, "
            f"{len(proof.get('audit_path') or [])} hashes) leads to root.txt {root}", f"it leads to {computed}")
    c.check(proof.get("root") == root and proof.get("run_id") == fields.get("run_id"),
            "proof.json names the same root and run as root.txt and the record")
    for folder, name in (("original", "source_sha256"), ("export", "output_sha256")):
        for f in sorted((kit / folder).glob("*")) if (kit / folder).is_dir() else []:
            got = sha256_hex(f.read_bytes())
            c.check(got == fields.get(name), f"{folder}/{f.name}: SHA-256 {got} is the record's {name}",
                    f"the record says {fields.get(name)}")
    claim_bytes = (kit / "claim.json").read_bytes()
    claim = (fields.get("extra") or {}).get("claim") if isinstance(fields.get("extra"), dict) else None
    c.check(claim is not None and canonical(claim) == claim_bytes, "claim.json is the record's signed claim "
            "(extra.claim, canonical JSON)")
    if claim is not None:
        c.check(all(claim.get(k) == fields.get(f) for k, f in (("record_id", "record_id"),
                                                               ("source_sha256", "source_sha256"),
                                                               ("key", "key_fingerprint"))),
                "the claim names this record, its original's SHA-256 and its key")
    try:
        sig = base64.b64decode(str(fields.get("signature")), validate=True)
    except ValueError:
        sig = b""
    c.check((kit / "claim.sig").read_bytes() == sig and len(sig) == 64,
            "claim.sig is the record's Ed25519 signature (64 bytes)")
    try:
        fp = key_fingerprint((kit / "owner-public-key.pem").read_text(encoding="ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        fp = f"unreadable ({exc})"
    c.check(fp == fields.get("key_fingerprint"), f"owner-public-key.pem has the record's key fingerprint {fp}",
            f"the record says {fields.get('key_fingerprint')}")
    print(("all checks passed" if not c.failed else f"{c.failed} check(s) FAILED")
          + "; now run the openssl commands in VERIFY.md (timestamps, signature)")
    return 1 if c.failed else 0


def main(argv: list[str]) -> int:
    kit = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    try:
        return check_kit(kit)
    except (OSError, ValueError, KeyError) as exc:
        print(f"FAIL  the kit cannot be read: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
