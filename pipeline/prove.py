"""Priority kits: one record's proof — original, export, record, Merkle path, timestamps, key, statement — in a
folder and a zip that a stranger checks with sha256sum, openssl and python3 alone (``catalogmark prove``).

A kit is built from the ledger (the record, its run's root, the audit path, the timestamp tokens with the CA
certificates kept beside them), the owner's public key and, if the run kept one (``run --archive DIR``), the
archived original, byte for byte. ``VERIFY.md`` lists the commands, ``verify_kit.py`` (:mod:`pipeline.kitcheck`)
does what is awkward in a shell, ``STATEMENT.md`` says in plain words what the kit proves and what it does not.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pipeline.canonical import canonical_json
from pipeline.errors import ConfigError, InputError
from pipeline.files import sha256_of
from pipeline.keys import OwnerKey, PublicKey
from pipeline.ledger import RunInfo, StoredRecord, hashed_fields
from pipeline.merkle import InclusionProof
from pipeline.models import Owner
from pipeline.priority import Priority, pretty_time, priority_of, priority_sentence

TargetKind = Literal["record", "export", "copy"]

ORIGINAL_DIR, EXPORT_DIR, FOUND_DIR, STAMP_DIR = "original", "export", "found", "timestamps"


@dataclass(frozen=True)
class Target:
    """What ``prove`` was given, resolved to one ledger record: a record id, our export, or a found copy."""

    kind: TargetKind
    given: str
    record: StoredRecord
    how: str  # how the record was found, in words
    file: Path | None = None  # the export or the found copy given
    file_sha256: str | None = None
    false_match_probability: float | None = None  # a found copy: trace's bound


@dataclass(frozen=True)
class KitFile:
    """One file of a kit (path relative to the kit folder) and what it is."""

    path: str
    role: str
    sha256: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "role": self.role, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class KitStamp:
    """One timestamp token in the kit: its files and what checking it said when the kit was made."""

    token_file: str
    ca_file: str
    tsa_url: str
    authority: str
    gen_time: str
    verifies: bool
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"token_file": self.token_file, "ca_file": self.ca_file, "tsa_url": self.tsa_url,
                "authority": self.authority, "gen_time": self.gen_time, "verifies": self.verifies,
                "problem": self.problem or None}


@dataclass(frozen=True)
class Kit:
    """A written priority kit: where it is, what is in it, and what it states."""

    folder: Path
    zip_path: Path
    target: Target
    proof: InclusionProof
    files: tuple[KitFile, ...]
    stamps: tuple[KitStamp, ...]
    priority: Priority
    original: str | None  # kit path of the archived original, or None (then original_note says why)
    original_note: str
    export: str | None
    export_note: str
    found: str | None = None
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        r = self.target.record
        return {"folder": str(self.folder), "zip": str(self.zip_path), "target": self.target.given,
                "kind": self.target.kind, "how": self.target.how, "record_id": r.record.record_id, "seq": r.seq,
                "run_id": r.run_id, "record_hash": r.record_hash, "merkle_root": self.proof.root,
                "leaf_index": self.proof.leaf_index, "tree_size": self.proof.tree_size,
                "proof_verifies": self.proof.verifies, "original": self.original, "original_note": self.original_note,
                "export": self.export, "export_note": self.export_note, "found": self.found,
                "timestamps": [s.as_json() for s in self.stamps], "priority": self.priority.as_json(),
                "files": [f.as_json() for f in self.files], "notes": list(self.notes)}


# --- what was given -> which record ----------------------------------------------------------------------------

def resolve_target(store: Any, given: str, *, key: OwnerKey | None = None, owner: Owner | None = None,
                   seq: int | None = None) -> Target:
    """The record ``given`` names: an existing file is our export if a record has exactly its bytes (found via
    the record id in its signed claim, else a scan), else a found copy that trace must match (needs ``key``);
    anything else is a record id (the newest record with it, or the one at ``seq``). InputError if none."""
    path = Path(given)
    if path.is_file():
        data_sha = sha256_of(path)
        exact = _records_with_bytes(store, path, data_sha)
        if exact:
            if seq is not None:
                exact = [s for s in exact if s.seq == seq] or exact
            first = exact[0]  # the earliest record of exactly these bytes: the earliest priority they have
            at_output = Path(first.record.output) == path.resolve()
            return Target(kind="export" if at_output else "copy", given=given, record=first, file=path,
                          file_sha256=data_sha,
                          how=("the file's SHA-256 is the record's output_sha256" if at_output else
                               "an exact copy: the file's SHA-256 is the record's output_sha256"))
        return _traced(store, path, data_sha, key=key, owner=owner)
    history = store.history(given)
    if not history:
        raise InputError(f"{given}: neither a file nor a record id in the ledger")
    if seq is not None:
        chosen = [s for s in history if s.seq == seq]
        if not chosen:
            raise InputError(f"record {given} has no record at seq {seq} (its seqs: "
                             + ", ".join(str(s.seq) for s in history) + ")")
        return Target(kind="record", given=given, record=chosen[0], how=f"record id {given}, seq {seq}")
    return Target(kind="record", given=given, record=history[-1], how=f"record id {given} (its newest record)")


def _records_with_bytes(store: Any, path: Path, sha: str) -> list[StoredRecord]:
    """Records whose output had exactly these bytes: those of the record id the file's claim names, else by
    the file's own path, else a scan of the ledger."""
    record_id = None
    with contextlib.suppress(Exception):  # an unreadable image has no claim; the scan below still runs
        from pipeline.metadata.read import read_embedded

        claim = read_embedded(path).claim
        record_id = None if claim is None else claim.get("record_id")
    if isinstance(record_id, str):
        hits = [s for s in store.history(record_id) if s.record.output_sha256 == sha]
        if hits:
            return hits
    at_path = store.latest_by_outputs([str(path.resolve())]).get(str(path.resolve()))
    if at_path is not None and at_path.record.output_sha256 == sha:
        return [s for s in store.history(at_path.record.record_id) if s.record.output_sha256 == sha]
    return list(store.find_by_output_sha256(sha))


def _traced(store: Any, path: Path, sha: str, *, key: OwnerKey | None, owner: Owner | None) -> Target:
    if key is None:
        raise InputError(f"{path}: not one of our exports byte for byte; tracing it needs the owner key")
    from pipeline.trace.tracer import Tracer

    res = Tracer(store, key, owner=owner).trace_path(path)
    if res.verdict.verdict != "match" or res.record is None:
        why = res.error or (res.verdict.findings[0] if res.verdict.findings else "no match")
        raise InputError(f"{path}: trace does not match it to a record in the ledger ({why})")
    p = res.verdict.false_match_probability
    return Target(kind="copy", given=str(path), record=res.record, file=path, file_sha256=sha,
                  how="traced" + (f" (false-match probability ≤ {p:.1e})" if p is not None else "") + ": "
                  + (res.verdict.findings[0].rstrip(".") if res.verdict.findings else "a match"),
                  false_match_probability=p)


# --- the kit ---------------------------------------------------------------------------------------------------

def _safe_name(name: str, fallback: str) -> str:
    """A file name a shell command can hold without quoting: letters, digits, '.', '_', '-'."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or fallback
    return clean[:120]


def find_archived(archive: Path, source_sha256: str, source: str) -> Path | None:
    """The original in a ``run --archive`` folder: ``ARCHIVE/<sha[:2]>/<sha><.ext>`` (content-addressed)."""
    folder = archive / source_sha256[:2]
    exact = folder / (source_sha256 + Path(source).suffix.lower())
    if exact.is_file():
        return exact
    hits = sorted(folder.glob(source_sha256 + ".*")) if folder.is_dir() else []
    return hits[0] if hits else None


def build_kit(store: Any, target: Target, *, public_key: PublicKey, out: Path, archive: Path | None = None,
              seen: datetime | None = None, force: bool = False) -> Kit:
    """Write the kit for ``target`` to the folder ``out`` and ``out`` + ``.zip``; return what it holds.

    ConfigError if ``public_key`` is not the key that signed the record or ``out`` exists (without ``force``);
    LedgerError (from the ledger) if the record's run is not sealed.
    """
    stored = target.record
    rec = stored.record
    if public_key.fingerprint != rec.key_fingerprint:
        raise ConfigError(f"record {rec.record_id} was signed by key {rec.key_fingerprint}, but the key given is "
                          f"{public_key.fingerprint}: pass that owner's key")
    from pipeline.timestamp import check_stamps

    proof = store.inclusion_proof(rec.record_id, seq=stored.seq)
    run = next((r for r in store.runs() if r.run_id == stored.run_id), None)
    stamps = check_stamps(store.timestamps(stored.run_id), proof.root)
    out = Path(out)
    zip_path = out.with_name(out.name + ".zip")
    if (out.exists() or zip_path.exists()) and not force:
        raise ConfigError(f"{out} (or its .zip) already exists; pass --force to replace it, or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        kit = _write(tmp, out, zip_path, store, target, proof, run, stamps, public_key, archive, seen)
        if force:
            if out.exists():
                shutil.rmtree(out)
            zip_path.unlink(missing_ok=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _zip(out, zip_path)
    return kit


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[KitFile] = []

    def put(self, rel: str, data: bytes, role: str) -> str:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        self.files.append(KitFile(rel, role, hashlib.sha256(data).hexdigest(), len(data)))
        return rel

    def copy(self, rel: str, src: Path, role: str) -> str:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, p)
        self.files.append(KitFile(rel, role, sha256_of(p), p.stat().st_size))
        return rel


def _write(tmp: Path, out: Path, zip_path: Path, store: Any, target: Target, proof: InclusionProof,
           run: RunInfo | None, stamps: list[Any], public_key: PublicKey, archive: Path | None,
           seen: datetime | None) -> Kit:
    stored = target.record
    rec = stored.record
    w = _Writer(tmp)
    notes: list[str] = []
    # the original, byte for byte (EXIF and all), from the run's archive
    original: str | None = None
    if archive is None:
        original_note = ("not in this kit: no --archive folder was given (the original is kept only when the run "
                         "was made with `run --archive DIR`; pass the same folder to `prove --archive DIR`)")
    else:
        found = find_archived(Path(archive), rec.source_sha256, rec.source)
        if found is None:
            original_note = (f"not in this kit: {archive} holds no file {rec.source_sha256[:2]}/{rec.source_sha256}.* "
                             "(was the run made with this --archive folder?)")
        elif sha256_of(found) != rec.source_sha256:
            original_note = f"not in this kit: the archived file {found} does not have the recorded SHA-256 (damaged)"
        else:
            name = _safe_name(Path(rec.source).name, "original" + found.suffix)
            original = w.copy(f"{ORIGINAL_DIR}/{name}", found, "original")
            original_note = f"archived original, byte for byte (from {found})"
    # our export: the file given, else the one at the record's output path, if it still has the recorded bytes
    export: str | None = None
    export_note = ""
    out_name = _safe_name(Path(rec.output).name, "export")
    candidates = ([target.file] if target.kind == "export" and target.file is not None else []) + [Path(rec.output)]
    if target.kind == "copy" and target.file is not None and target.file_sha256 == rec.output_sha256:
        candidates.append(target.file)
    for c in candidates:
        if c.is_file() and sha256_of(c) == rec.output_sha256:
            export = w.copy(f"{EXPORT_DIR}/{out_name}", c, "export")
            export_note = f"our export, as recorded (from {c})"
            break
    if export is None:
        export_note = (f"not in this kit: {rec.output} is gone or no longer has the recorded bytes "
                       "(the record still holds its SHA-256, size and perceptual hashes)")
    found_rel = None
    if target.kind == "copy" and target.file is not None:
        found_rel = w.copy(f"{FOUND_DIR}/{_safe_name(target.file.name, 'copy')}", target.file, "found copy")
    # the record exactly as hashed, its proof, the run root, the run
    w.put("record.json", canonical_json(hashed_fields(stored)).encode("utf-8"), "record")
    w.put("proof.json", (json.dumps(proof.as_json() | {"prev_hash": stored.prev_hash}, indent=2) + "\n").encode(),
          "inclusion proof")
    w.put("root.txt", proof.root.encode("ascii"), "run root")
    if run is not None:
        w.put("run.json", (json.dumps(run.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n").encode(),
              "run (context, not hashed)")
    claim = rec.extra.get("claim") if isinstance(rec.extra, dict) else None
    if isinstance(claim, dict):
        w.put("claim.json", canonical_json(claim).encode("utf-8"), "signed claim")
    else:
        notes.append("the record holds no signed claim (extra.claim): the signature cannot be checked")
    try:
        sig = base64.b64decode(rec.signature, validate=True)
    except ValueError:
        sig = b""
        notes.append("the record's signature is not base64")
    w.put("claim.sig", sig, "Ed25519 signature")
    w.put("owner-public-key.pem", public_key.pem().encode("ascii"), "owner public key")
    kit_stamps: list[KitStamp] = []
    for i, s in enumerate(stamps, 1):
        tok = w.put(f"{STAMP_DIR}/{i}.tsr", s.token.token, "timestamp token")
        ca = w.put(f"{STAMP_DIR}/{i}-ca.pem", s.token.ca_pem.encode("ascii"), "TSA CA certificates")
        kit_stamps.append(KitStamp(tok, ca, s.token.tsa_url, s.authority, s.gen_time, s.verifies, s.check.problem))
        if not s.verifies:
            notes.append(f"the timestamp from {s.token.tsa_url} does not verify: {s.check.problem}")
    seen_what = None
    if target.kind == "copy" and target.file is not None and found_rel is not None:
        if seen is None:
            seen = datetime.fromtimestamp(target.file.stat().st_mtime, UTC).replace(microsecond=0)
            seen_what = f"the copy {Path(found_rel).name} was found (its file time)"
        else:
            seen_what = f"the copy {Path(found_rel).name} was found"
    elif seen is not None:
        seen_what = "the date given"
    priority = priority_of(run.finished_at if run is not None else rec.created_at, stamps, seen, seen_what)
    sums = [(f.sha256, f.path) for f in w.files if f.role in ("original", "export")]
    if sums:
        w.put("SHA256SUMS", "".join(f"{h}  {p}\n" for h, p in sums).encode(), "checksums (from the record)")
    script = Path(__file__).with_name("kitcheck.py").read_bytes()
    w.put("verify_kit.py", script, "checker (python3, standard library only)")
    (tmp / "verify_kit.py").chmod(0o755)
    kit = Kit(folder=out, zip_path=zip_path, target=target, proof=proof, files=(), stamps=tuple(kit_stamps),
              priority=priority, original=original, original_note=original_note, export=export,
              export_note=export_note, found=found_rel, notes=tuple(notes))
    w.put("STATEMENT.md", statement(kit, run).encode("utf-8"), "statement")
    w.put("VERIFY.md", verify_doc(kit, claim is not None).encode("utf-8"), "how to verify")
    files = tuple(w.files) + (KitFile("kit.json", "manifest", "", 0),)
    kit = replace(kit, files=files)
    (tmp / "kit.json").write_text(json.dumps(kit.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return kit


def _zip(folder: Path, zip_path: Path) -> None:
    """The kit folder as one zip (entries under the folder's name, sorted), written atomically."""
    tmp = zip_path.with_name(f".{zip_path.name}.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{folder.name}/{p.relative_to(folder).as_posix()}")
    os.replace(tmp, zip_path)


# --- the words -------------------------------------------------------------------------------------------------

def _captured(rec: Any) -> str:
    cap = rec.capture if isinstance(rec.capture, dict) else {}
    when = cap.get("datetime_original")
    camera = " ".join(str(cap[k]) for k in ("make", "model") if cap.get(k))
    text = f"captured on {_exif_time(when)}" if when else "its capture date not recorded in its EXIF"
    if camera:
        text += f" with a {camera}" + (f" (serial {cap['serial']})" if cap.get("serial") else "")
    return text


def _exif_time(text: str) -> str:
    """EXIF's ``YYYY:MM:DD HH:MM:SS`` as ``YYYY-MM-DD HH:MM:SS`` (camera local time: EXIF has no zone)."""
    m = re.fullmatch(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}:\d{2}:\d{2})", str(text).strip())
    return f"{m[1]}-{m[2]}-{m[3]} {m[4]} (camera time)" if m else str(text)


def statement(kit: Kit, run: RunInfo | None) -> str:
    rec = kit.target.record.record
    stored = kit.target.record
    p = kit.priority
    lines = [
        "# Statement of priority", "",
        f"This photograph, SHA-256 `{rec.source_sha256}`, {_captured(rec)}, by {rec.owner}, was "
        f"{priority_sentence(p)}.", "",
        "## What this kit shows", "",
        f"- **The original** ({rec.source}): " + (f"`{kit.original}`, {kit.original_note}." if kit.original else
                                                  f"{kit.original_note}."),
        f"- **Our export** for {rec.preset} (SKU {rec.sku}, {rec.role} image {rec.position}; {rec.width}x{rec.height} "
        f"{rec.format}, SHA-256 `{rec.output_sha256}`): "
        + (f"`{kit.export}`, {kit.export_note}." if kit.export else f"{kit.export_note}."),
    ]
    if kit.found:
        lines.append(f"- **The copy found**: `{kit.found}` (SHA-256 `{kit.target.file_sha256}`); "
                     f"{kit.target.how}.")
    lines += [
        f"- **The ledger record** `record.json`: record `{rec.record_id}`, number {stored.seq} of the owner's "
        f"hash-chained ledger, in run `{stored.run_id}`; its hash is `{stored.record_hash}`. It holds the "
        "original's and the export's SHA-256, the capture data read from the original, and the owner's signed claim.",
        f"- **Its inclusion proof** `proof.json`: leaf {kit.proof.leaf_index} of the {kit.proof.tree_size} records "
        f"of that run, {len(kit.proof.audit_path)} hashes up to the run's Merkle root `{kit.proof.root}` "
        "(`root.txt`). One record and this path are enough: the rest of the ledger is not needed.",
    ]
    if kit.stamps:
        for s in kit.stamps:
            state = "verified" if s.verifies else f"DOES NOT VERIFY ({s.problem})"
            lines.append(f"- **A timestamp** `{s.token_file}` ({state}): {s.authority} ({s.tsa_url}) signed the "
                         f"run's root at {pretty_time(s.gen_time)}; its CA certificates are `{s.ca_file}`.")
    else:
        lines.append("- **No timestamp**: this run was sealed without an RFC 3161 timestamp (made offline, or no "
                     "TSA configured). The record is in the owner's signed, hash-chained ledger, but no third party "
                     "vouches for when. `catalogmark ledger timestamp` stamps it now; that token proves the run "
                     "existed at the time it is made, not earlier.")
    lines += [
        f"- **The owner's public key** `owner-public-key.pem` (fingerprint `{rec.key_fingerprint}`) and its Ed25519 "
        "signature `claim.sig` of the claim `claim.json`, which names this record, the original's SHA-256, the "
        "owner and the copyright notice.", "",
        "## What it does not show", "",
        "A timestamp proves that the record (and so the original's SHA-256) existed at that time, not who took "
        "the photograph. The capture date and camera come from the original's EXIF, which its owner could have "
        "written; the original file is included so that a reviewer can read them and compare the picture.", "",
        "Every claim above is checked without catalogmark by the commands in `VERIFY.md`.", "",
    ]
    if run is not None:
        lines += [f"Run `{run.run_id}`: {run.status}, sealed at {pretty_time(run.finished_at or '')} by the "
                  f"owner's clock, {run.record_count} records.", ""]
    if kit.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in kit.notes] + [""]
    return "\n".join(lines)


def verify_doc(kit: Kit, has_claim: bool) -> str:
    rec = kit.target.record.record
    fence = "```"
    lines = [
        "# How to check this kit (without catalogmark)", "",
        "Run these in this folder. You need `python3` (standard library only), `sha256sum` and `openssl` "
        "(1.1.1 or later). Every command exits non-zero when its check fails.", "",
        "## 1. Everything that is plain SHA-256", "",
        "`verify_kit.py` is short; read it first. It recomputes the record hash as "
        "`sha256(bytes of prev_hash || record.json)` (record.json is the canonical JSON the ledger hashed, "
        "`prev_hash` is inside it), walks the audit path in `proof.json` up to `root.txt` (RFC 9162 §2.1.3.2: "
        "leaf = sha256(0x00 || record hash), node = sha256(0x01 || left || right)), checks the files' SHA-256 "
        "against the record, the claim against the record and the public key against the record's fingerprint.",
        "", fence + "sh", "python3 verify_kit.py", fence, "",
        "## 2. The files are the ones recorded", "",
        "The same check with coreutils: `SHA256SUMS` lists the SHA-256 values the record holds.", "",
        fence + "sh",
    ]
    if kit.original or kit.export:
        lines.append("sha256sum -c SHA256SUMS")
    if kit.original:
        lines.append(f"grep -c '\"source_sha256\":\"{rec.source_sha256}\"' record.json")
    if kit.export:
        lines.append(f"grep -c '\"output_sha256\":\"{rec.output_sha256}\"' record.json")
    if not (kit.original or kit.export):
        lines.append("# neither the original nor the export is in this kit: nothing to hash")
    lines += [fence, ""]
    if not kit.original:
        lines += [f"The original is not in this kit ({kit.original_note}); the record still holds its SHA-256 "
                  f"`{rec.source_sha256}`, which any later copy of the original can be compared with.", ""]
    lines += ["## 3. The timestamps", ""]
    if kit.stamps:
        lines += ["Each token is an RFC 3161 TimeStampResp over `sha256(root.txt)` (the run's Merkle root as 64 hex "
                  "characters). `openssl ts -verify` checks the TSA's signature, its certificate chain against the "
                  "CA file and the imprint; `-text` prints the time. The CA files came from the owner's ledger: a "
                  "careful reviewer downloads the TSA's CA certificate from the TSA itself and gives that as "
                  "`-CAfile` instead.", "", fence + "sh"]
        for s in kit.stamps:
            lines.append(f"openssl ts -verify -data root.txt -in {s.token_file} -CAfile {s.ca_file}")
            lines.append(f"openssl ts -reply -in {s.token_file} -text | grep -E 'Time stamp:|TSA:'")
        lines += [fence, ""]
    else:
        lines += ["None: this run was sealed without an RFC 3161 timestamp (made offline, or no TSA was configured), "
                  "so nothing here vouches for *when* it was recorded; the hash chain and the signature still "
                  "hold.", ""]
    lines += ["## 4. The owner's signature", ""]
    if has_claim:
        lines += ["`claim.json` is the claim exactly as signed (canonical JSON, UTF-8), `claim.sig` the raw 64-byte "
                  "Ed25519 signature, `owner-public-key.pem` the owner's key (step 1 checked it is the record's "
                  f"`{rec.key_fingerprint}`).", "", fence + "sh",
                  "openssl pkeyutl -verify -rawin -pubin -inkey owner-public-key.pem -in claim.json -sigfile claim.sig",
                  fence, ""]
    else:
        lines += ["The record holds no signed claim: there is no signature to check.", ""]
    lines += ["## 5. By eye", "",
              "Open the original and compare it with the export (and the copy found, if any). Its EXIF (e.g. "
              "`exiftool` on the file in `original/`) holds the capture date and camera the record quotes.", ""]
    return "\n".join(lines)


def default_kit_name(target: Target) -> str:
    rec = target.record.record
    return f"priority-kit-{_safe_name(rec.sku, 'sku')}-{rec.record_id[:12]}"

