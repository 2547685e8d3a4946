"""Tests for pipeline.prove / `catalogmark prove`: a kit from an archived, timestamped run (loopback TSA,
tests/tsa.py) whose VERIFY.md commands the test runs as a reviewer would (no catalogmark), each failing once a
byte of the file it checks is changed; a found copy traced to its record; an offline run without a token."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.ledger import Ledger, hashed_fields, record_hash
from tests.conftest import product_on_white
from tests.helpers import cm
from tests.tsa import OPENSSL, LocalTSA


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    with LocalTSA(tmp_path_factory.mktemp("tsa")) as server:
        yield server


def _camera_jpeg(path: Path, seed: int) -> None:
    im = Image.fromarray(product_on_white((640, 480), seed))
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS R6"  # Model
    exif.get_ifd(0x8769)[0x9003] = "2026:10:01 12:34:56"  # DateTimeOriginal
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, "JPEG", quality=92, exif=exif)


def _setup(base: Path, tsa: LocalTSA | None) -> Path:
    assert cm("keygen", "--key-file", str(base / "owner.key"), cwd=base).returncode == 0
    for sku, seed in (("MUG-1", 1), ("LAMP-2", 2), ("VASE-3", 3)):
        _camera_jpeg(base / "cat" / sku / "a_main.jpg", seed)
    text = '[owner]\nname = "Example Studio"\ncopyright = "(c) 2026 Example Studio"\n'
    if tsa is not None:
        text += f'\n[timestamp]\ntsa = ["{tsa.url}"]\nca_file = "{tsa.ca_file}"\ntimeout = 10\n'
    (base / "catalogmark.toml").write_text(text)
    r = cm("run", str(base / "cat"), "--preset", "ebay", "--out", str(base / "out"), "--ledger",
           str(base / "l.sqlite"), "--key-file", str(base / "owner.key"), "--archive", str(base / "archive"),
           "--json", "--quiet", cwd=base)
    assert r.returncode == 0, r.stderr
    return base


@pytest.fixture(scope="module")
def stamped(tmp_path_factory, tsa) -> Path:
    return _setup(tmp_path_factory.mktemp("stamped"), tsa)


def _prove(base: Path, *args: str) -> subprocess.CompletedProcess:
    return cm("prove", *args, "--ledger", str(base / "l.sqlite"), "--key-file", str(base / "owner.key"), cwd=base)


def verify_commands(kit: Path) -> list[str]:
    """Every command of VERIFY.md's ```sh blocks, in order (comments left out)."""
    text = (kit / "VERIFY.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def run_sh(command: str, kit: Path) -> subprocess.CompletedProcess:
    """One VERIFY.md command as a reviewer runs it: a POSIX shell in the kit folder, nothing of catalogmark."""
    env = {"PATH": os.path.dirname(OPENSSL) + os.pathsep + "/usr/bin:/bin", "LC_ALL": "C"}
    return subprocess.run(command, shell=True, cwd=kit, env=env, capture_output=True, text=True, timeout=60)


def _flip(path: Path, index: int) -> None:
    data = bytearray(path.read_bytes())
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def _export(base: Path, sku: str = "MUG-1") -> Path:
    (out,) = (base / "out" / "ebay").rglob(f"{sku}*.jpg")
    return out


def test_kit_of_an_export_holds_everything_and_every_verify_command_passes(stamped, tsa, tmp_path):
    export = _export(stamped)
    kit = tmp_path / "kit"
    r = _prove(stamped, str(export), "--archive", str(stamped / "archive"), "--out", str(kit), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "export" and doc["proof_verifies"] and doc["original"] and doc["export"]
    names = sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file())
    original = doc["original"]
    assert names == sorted([
        "STATEMENT.md", "VERIFY.md", "verify_kit.py", "SHA256SUMS", "kit.json", "record.json", "proof.json",
        "root.txt", "run.json", "claim.json", "claim.sig", "owner-public-key.pem", original,
        f"export/{export.name}", "timestamps/1.tsr", "timestamps/1-ca.pem"])
    # the original byte for byte (EXIF included) and our export
    src = stamped / "cat" / "MUG-1" / "a_main.jpg"
    assert (kit / original).read_bytes() == src.read_bytes()
    assert Image.open(kit / original).getexif()[0x010F] == "Canon"
    assert (kit / "export" / export.name).read_bytes() == export.read_bytes()
    # record.json is exactly what the ledger hashed; the proof ends at the run's root; the token is the TSA's
    with Ledger.open(stamped / "l.sqlite") as led:
        stored = led.get(doc["record_id"])
        assert stored is not None
        assert record_hash(stored.prev_hash, hashed_fields(stored)) == stored.record_hash
        (token,) = led.timestamps(stored.run_id)
    data = (kit / "record.json").read_bytes()
    assert json.loads(data)["prev_hash"] == stored.prev_hash
    assert hashlib.sha256(bytes.fromhex(stored.prev_hash) + data).hexdigest() == stored.record_hash
    assert (kit / "root.txt").read_text() == doc["merkle_root"]
    assert (kit / "timestamps" / "1.tsr").read_bytes() == token.token
    assert (kit / "timestamps" / "1-ca.pem").read_text() == tsa.ca_file.read_text()
    # the statement in plain words
    statement = (kit / "STATEMENT.md").read_text()
    src_sha = stored.record.source_sha256
    assert f"This photograph, SHA-256 `{src_sha}`, captured on 2026-10-01 12:34:56 (camera time) with a Canon " \
           "EOS R6, by Example Studio, was recorded in the owner's signed, timestamped ledger on" in statement
    assert "RFC 3161 timestamp by CN=catalogmark test TSA" in statement
    # the zip holds the same files
    with zipfile.ZipFile(doc["zip"]) as zf:
        assert sorted(n.removeprefix("kit/") for n in zf.namelist()) == names
        assert zf.read(f"kit/{original}") == src.read_bytes()
    # every command of VERIFY.md passes, run as a stranger would
    commands = verify_commands(kit)
    assert "python3 verify_kit.py" in commands and "sha256sum -c SHA256SUMS" in commands
    assert "openssl ts -verify -data root.txt -in timestamps/1.tsr -CAfile timestamps/1-ca.pem" in commands
    assert ("openssl pkeyutl -verify -rawin -pubin -inkey owner-public-key.pem -in claim.json -sigfile claim.sig"
            in commands)
    for command in commands:
        res = run_sh(command, kit)
        assert res.returncode == 0, (command, res.stdout, res.stderr)
    assert "Verification: OK" in run_sh(commands[commands.index(
        "openssl ts -verify -data root.txt -in timestamps/1.tsr -CAfile timestamps/1-ca.pem")], kit).stdout
    out = run_sh("python3 verify_kit.py", kit).stdout
    assert "FAIL" not in out and "all checks passed" in out

    # one byte changed in a kit file: the command that checks it fails
    def tampered(edit, *failing: str) -> None:
        copy = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        shutil.copytree(kit, copy)
        edit(copy)
        for command in failing:
            res = run_sh(command, copy)
            assert res.returncode != 0, (command, res.stdout)

    tampered(lambda k: _flip(k / original, 2000), "python3 verify_kit.py", "sha256sum -c SHA256SUMS")
    tampered(lambda k: _flip(k / "export" / export.name, 3000), "python3 verify_kit.py", "sha256sum -c SHA256SUMS")
    sku_at = data.index(b'"sku":"MUG-1"') + 8
    tampered(lambda k: _flip(k / "record.json", sku_at), "python3 verify_kit.py")
    tampered(lambda k: _flip(k / "timestamps" / "1.tsr", len(token.token) - 3),
             "openssl ts -verify -data root.txt -in timestamps/1.tsr -CAfile timestamps/1-ca.pem")

    def edit_proof(k: Path) -> None:
        p = json.loads((k / "proof.json").read_text())
        first = p["audit_path"][0]
        p["audit_path"][0] = ("0" if first[0] != "0" else "1") + first[1:]
        (k / "proof.json").write_text(json.dumps(p))

    tampered(edit_proof, "python3 verify_kit.py")

    def edit_root(k: Path) -> None:
        root = (k / "root.txt").read_text()
        (k / "root.txt").write_text(("0" if root[0] != "0" else "1") + root[1:])

    tampered(edit_root, "python3 verify_kit.py",
             "openssl ts -verify -data root.txt -in timestamps/1.tsr -CAfile timestamps/1-ca.pem")
    sig_cmd = "openssl pkeyutl -verify -rawin -pubin -inkey owner-public-key.pem -in claim.json -sigfile claim.sig"
    tampered(lambda k: _flip(k / "claim.sig", 10), sig_cmd, "python3 verify_kit.py")
    tampered(lambda k: _flip(k / "claim.json", 30), sig_cmd, "python3 verify_kit.py")


def test_a_found_copy_is_traced_and_the_statement_counts_the_days(stamped, tmp_path):
    export = _export(stamped, "LAMP-2")
    rgb = np.asarray(Image.open(export).convert("RGB"))
    h, w = rgb.shape[:2]
    copy = tmp_path / "downloaded from a marketplace.jpg"
    Image.fromarray(rgb).resize((w * 9 // 10, h * 9 // 10)).save(copy, quality=85)  # smaller, re-encoded
    kit = tmp_path / "kit"
    r = _prove(stamped, str(copy), "--archive", str(stamped / "archive"), "--out", str(kit), "--seen",
               "2027-01-15", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "copy" and doc["how"].startswith("traced (false-match probability ≤ ")
    assert doc["found"] == "found/downloaded_from_a_marketplace.jpg"
    assert (kit / doc["found"]).read_bytes() == copy.read_bytes()
    with Ledger.open(stamped / "l.sqlite") as led:
        stored = led.get(doc["record_id"])
    assert stored is not None and stored.record.sku == "LAMP-2"
    days = doc["priority"]["days_before"]
    assert days is not None and days > 0
    statement = (kit / "STATEMENT.md").read_text()
    assert f"— {days} days before the copy downloaded_from_a_marketplace.jpg was found on 2027-01-15" in statement
    for command in verify_commands(kit):
        assert run_sh(command, kit).returncode == 0, command
    # without --seen: the copy's file time
    os.utime(copy, (1_800_000_000, 1_800_000_000))  # 2027-01-15T08:00:00Z
    r = _prove(stamped, str(copy), "--out", str(tmp_path / "kit2"), "--json")
    assert r.returncode == 0, r.stderr
    doc2 = json.loads(r.stdout)
    assert doc2["priority"]["seen_at"] == "2027-01-15T08:00:00Z" and doc2["original"] is None
    assert "was found (its file time)" in (tmp_path / "kit2" / "STATEMENT.md").read_text()
    assert "the original is not in this kit: no --archive folder was given" in r.stderr
    # a picture that is none of ours is refused, with trace's reason
    other = tmp_path / "other.jpg"
    Image.fromarray(product_on_white((500, 500), 77)[::-1].copy()).save(other)
    r = _prove(stamped, str(other), "--out", str(tmp_path / "kit3"))
    assert r.returncode == 2 and "trace does not match it to a record" in r.stderr and "Traceback" not in r.stderr
    r = _prove(stamped, "no-such-record", "--out", str(tmp_path / "kit4"))
    assert r.returncode == 2 and "neither a file nor a record id" in r.stderr


def test_an_offline_run_says_it_has_no_timestamp(tmp_path):
    base = _setup(tmp_path, None)
    with Ledger.open(base / "l.sqlite") as led:
        (record_id,) = [s.record.record_id for s in led.find_by_output_sha256(
            hashlib.sha256(_export(base, "VASE-3").read_bytes()).hexdigest())]
    kit = tmp_path / "kit"
    r = _prove(base, record_id, "--archive", str(base / "archive"), "--out", str(kit))
    assert r.returncode == 0, r.stderr
    assert "timestamp: none" in r.stdout
    statement = (kit / "STATEMENT.md").read_text()
    assert "recorded in the owner's signed ledger on" in statement and "by the owner's own clock" in statement
    assert "**No timestamp**: this run was sealed without an RFC 3161 timestamp" in statement
    verify = (kit / "VERIFY.md").read_text()
    assert "None: this run was sealed without an RFC 3161 timestamp" in verify
    assert not (kit / "timestamps").exists() and "openssl ts" not in verify
    commands = verify_commands(kit)
    assert commands and all(run_sh(c, kit).returncode == 0 for c in commands)
    # the kit exists: refused without --force, replaced with it
    r = _prove(base, record_id, "--out", str(kit))
    assert r.returncode == 2 and "already exists" in r.stderr
    r = _prove(base, record_id, "--out", str(kit), "--force")
    assert r.returncode == 0 and not (kit / "original").exists()
    assert "not in this kit: no --archive folder was given" in (kit / "STATEMENT.md").read_text()
