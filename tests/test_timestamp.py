"""Tests for pipeline.timestamp against a real TSA on 127.0.0.1 (`openssl ts -reply`, tests/tsa.py): tokens
verified by the library and independently by `openssl ts -verify`, tampering caught by `ledger verify`, a
TSA that is down or answers garbage, runs stamped later; end to end through the real CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.config import TimestampConfig, load_timestamp
from pipeline.errors import ConfigError, TimestampError
from pipeline.ledger import Ledger
from pipeline.merkle import merkle_root
from pipeline.timestamp import check_token, imprint_data, request_token, stamp_runs
from tests.helpers import cm
from tests.test_ledger import make_record
from tests.tsa import LocalTSA, closed_port_url

ROOT = merkle_root(["ab" * 32, "cd" * 32, "ef" * 32])


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    with LocalTSA(tmp_path_factory.mktemp("tsa")) as server:
        yield server


@pytest.fixture(scope="module")
def other_tsa(tmp_path_factory):
    """A second TSA with its own CA (which the first TSA's CA file does not hold)."""
    with LocalTSA(tmp_path_factory.mktemp("tsa2"), name="another TSA") as server:
        yield server


def _ca(t: LocalTSA) -> str:
    return t.ca_file.read_text()


def _config(*servers: LocalTSA | str, ca: str = "", timeout: float = 10.0) -> TimestampConfig:
    urls = tuple(s if isinstance(s, str) else s.url for s in servers)
    pem = ca or "".join(_ca(s) for s in servers if not isinstance(s, str))
    return TimestampConfig(tsa=urls, ca_file="ca.pem", ca_pem=pem, timeout=timeout)


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def _sealed_ledger(path: Path, runs: int = 2) -> Ledger:
    led = Ledger.open(path)
    for r in range(runs):
        led.begin_run(f"run-{r}", {})
        led.append(f"run-{r}", [make_record(10 * r + i) for i in range(3 + r)])
        led.finish_run(f"run-{r}", {})
    return led


# --- the client and the token check ----------------------------------------------------------------------------

def test_token_verifies_in_the_library_and_in_openssl(tsa, tmp_path):
    token = request_token(tsa.url, ROOT, _ca(tsa), timeout=10, run_id="run-x")
    assert (token.run_id, token.tsa_url, token.hash_algorithm) == ("run-x", tsa.url, "sha256")
    assert token.gen_time.endswith("Z") and token.gen_time[:2] == "20"
    check = check_token(token.token, ROOT, _ca(tsa))
    assert check.ok, check.problem
    assert check.gen_time == token.gen_time and "catalogmark test TSA" in check.tsa_name
    r = tsa.openssl_verify(token.token, ROOT, where=tmp_path)
    assert r.returncode == 0 and "Verification: OK" in r.stdout, r.stderr
    assert imprint_data(ROOT.upper()) == ROOT.encode("ascii")


def test_a_token_does_not_verify_for_another_root_or_ca(tsa, other_tsa, tmp_path):
    token = request_token(tsa.url, ROOT, _ca(tsa), timeout=10).token
    other_root = merkle_root(["01" * 32])
    check = check_token(token, other_root, _ca(tsa))
    assert not check.ok and "message imprint is not this run's Merkle root" in check.problem
    assert tsa.openssl_verify(token, other_root, where=tmp_path).returncode != 0
    check = check_token(token, ROOT, _ca(other_tsa))
    assert not check.ok and "does not verify against the CA certificates" in check.problem
    assert tsa.openssl_verify(token, ROOT, ca_file=other_tsa.ca_file, where=tmp_path).returncode != 0
    assert not check_token(token, ROOT, "not pem").ok


def test_every_edited_byte_of_the_signed_part_fails(tsa):
    token = request_token(tsa.url, ROOT, _ca(tsa), timeout=10).token
    resp_gen = check_token(token, ROOT, _ca(tsa)).gen_time  # e.g. 2026-12-02T05:12:36Z
    generalized = (resp_gen[:4] + resp_gen[5:7] + resp_gen[8:10] + resp_gen[11:13] + resp_gen[14:16]
                   + resp_gen[17:19]).encode()
    at = token.index(generalized)
    for index in (at + 11, at + 13, len(token) - 1, len(token) - 20):  # the time, the signature's last bytes
        assert not check_token(_flip(token, index), ROOT, _ca(tsa)).ok, index
    assert not check_token(token[:-1], ROOT, _ca(tsa)).ok
    assert not check_token(b"", ROOT, _ca(tsa)).ok


def test_a_tsa_outside_the_ca_file_is_refused_before_anything_is_stored(tsa, other_tsa, tmp_path):
    with pytest.raises(TimestampError, match=r"does not verify against the configured CA file"):
        request_token(tsa.url, ROOT, _ca(other_tsa), timeout=10)
    with _sealed_ledger(tmp_path / "l.sqlite", runs=1) as led:
        report = stamp_runs(led, _config(tsa, ca=_ca(other_tsa)))
        assert not report.ok and led.timestamps() == [] and report.failures[0].run_ids == ("run-0",)


def test_no_byte_flip_raises_or_changes_what_is_attested(tsa):
    """Every one-bit edit of a token either fails the check or leaves the attested time, serial and imprint as
    they were (CMS wrapper fields outside the signature, e.g. version numbers, are malleable by design)."""
    token = request_token(tsa.url, ROOT, _ca(tsa), timeout=10).token
    good = check_token(token, ROOT, _ca(tsa))
    survivors = 0
    for index in range(len(token)):
        check = check_token(_flip(token, index), ROOT, _ca(tsa))  # never raises
        if check.ok:
            survivors += 1
            assert (check.gen_time, check.serial_number) == (good.gen_time, good.serial_number)
    assert survivors < len(token) // 20


@pytest.mark.parametrize("mode, message", [
    ("garbage", "the answer is not a valid token for this run: not an RFC 3161 timestamp response"),
    ("500", "HTTP 500"),
])
def test_a_misbehaving_tsa_is_one_clear_line(tmp_path, mode, message):
    with LocalTSA(tmp_path / "bad", mode=mode) as bad, pytest.raises(TimestampError) as info:
        request_token(bad.url, ROOT, _ca(bad), timeout=10)
    text = str(info.value)
    assert text.startswith(f"TSA {bad.url}: ") and message in text and "\n" not in text
    if mode == "garbage":
        assert "(it sent text/html)" in text


def test_a_closed_port_and_a_silent_tsa_are_one_clear_line(tmp_path):
    url = closed_port_url()
    with pytest.raises(TimestampError, match=r"^TSA http://127\.0\.0\.1:\d+/tsa: cannot connect \(.*refused"):
        request_token(url, ROOT, "", timeout=5)
    with LocalTSA(tmp_path / "slow", mode="slow") as slow, \
            pytest.raises(TimestampError, match=r": no answer within 0\.5 s$"):
        request_token(slow.url, ROOT, _ca(slow), timeout=0.5)


# --- stamping the ledger, and ledger verify ---------------------------------------------------------------------

def test_stamp_runs_stores_checked_tokens_and_verify_rechecks_them(tsa, other_tsa, tmp_path):
    with _sealed_ledger(tmp_path / "l.sqlite") as led:
        report = stamp_runs(led, _config(tsa, other_tsa))
        assert report.ok and len(report.stamped) == 4 and report.seconds > 0
        assert led.pending_stamps([tsa.url, other_tsa.url]) == []
        stored = led.timestamps()
        assert [(t.run_id, t.tsa_url) for t in stored] == sorted((f"run-{r}", u) for r in range(2)
                                                                   for u in (tsa.url, other_tsa.url))
        roots = {r.run_id: r.merkle_root for r in led.runs()}
        for t in stored:
            server = tsa if t.tsa_url == tsa.url else other_tsa
            r = server.openssl_verify(t.token, roots[t.run_id], where=tmp_path)
            assert r.returncode == 0, r.stderr
        report = led.verify()
        assert report.ok and report.timestamps == 4, report.problems
        assert stamp_runs(led, _config(tsa, other_tsa)).stamped == []  # nothing left to stamp


def test_verify_fails_on_an_edited_swapped_or_untrusted_token(tsa, other_tsa, tmp_path):
    path = tmp_path / "l.sqlite"
    with _sealed_ledger(path, runs=3) as led:
        assert stamp_runs(led, _config(tsa)).ok
    con = sqlite3.connect(path, isolation_level=None)
    tokens = dict(con.execute("SELECT run_id, token FROM timestamps"))
    gen_time = con.execute("SELECT gen_time FROM timestamps WHERE run_id = 'run-0'").fetchone()[0]
    con.execute("UPDATE timestamps SET token = ? WHERE run_id = 'run-0'", (_flip(tokens["run-0"], len(tokens["run-0"]) - 1),))
    con.execute("UPDATE timestamps SET token = ? WHERE run_id = 'run-1'", (tokens["run-2"],))
    con.execute("UPDATE timestamps SET ca_pem = ? WHERE run_id = 'run-2'", (_ca(other_tsa),))
    with Ledger.open(path) as led:
        report = led.verify()
    assert not report.ok and report.timestamps == 3
    by_run = {p.split(":")[0]: p for p in report.problems}
    assert set(by_run) == {"run run-0", "run run-1", "run run-2"}, report.problems
    assert f"run run-0: timestamp from {tsa.url}: does not verify" in by_run["run run-0"]
    assert "message imprint is not this run's Merkle root" in by_run["run run-1"]
    assert "does not verify against the CA certificates kept with it" in by_run["run run-2"]
    # a consistent token whose stored gen_time was edited
    con.execute("UPDATE timestamps SET token = ?, ca_pem = ? WHERE run_id IN ('run-1', 'run-2')",
                (tokens["run-2"], _ca(tsa)))
    con.execute("UPDATE timestamps SET token = ?, gen_time = '2020-01-01T00:00:00Z' WHERE run_id = 'run-0'",
                (tokens["run-0"],))
    with Ledger.open(path) as led:
        problems = led.verify().problems
    assert problems == [f"run run-0: timestamp from {tsa.url}: gen_time column says 2020-01-01T00:00:00Z, "
                        f"the token says {gen_time}",
                        f"run run-1: timestamp from {tsa.url}: its message imprint is not this run's Merkle root "
                        "(a token of another run, or the records changed)"]


def test_a_down_tsa_loses_nothing_and_is_retried_later(tsa, tmp_path):
    down = closed_port_url()
    with _sealed_ledger(tmp_path / "l.sqlite") as led:
        report = stamp_runs(led, _config(down, tsa, ca=_ca(tsa)))
        assert not report.ok and [t.tsa_url for t in report.stamped] == [tsa.url, tsa.url]
        (failure,) = report.failures
        assert failure.tsa_url == down and failure.run_ids == ("run-0", "run-1") and "cannot connect" in failure.message
        assert [p.tsa_urls for p in led.pending_stamps([down, tsa.url])] == [(down,), (down,)]
        assert led.verify().ok
        roots = {r.run_id: r.merkle_root for r in led.runs()}
        for t in led.timestamps():
            assert tsa.openssl_verify(t.token, roots[t.run_id], where=tmp_path).returncode == 0
        # a run still being written has no root to stamp
        led.begin_run("run-open", {})
        led.append("run-open", [make_record(99)])
        assert [p.run_id for p in led.pending_stamps([tsa.url])] == []


# --- owner profile ----------------------------------------------------------------------------------------------

def test_timestamp_table_of_the_owner_profile(tmp_path, tsa):
    (tmp_path / "ca.pem").write_text(_ca(tsa))
    (tmp_path / "catalogmark.toml").write_text(
        f'[owner]\nname = "X"\n\n[timestamp]\ntsa = ["{tsa.url}", "https://tsa.example/"]\nca_file = "ca.pem"\n'
        'timeout = 2.5\n')
    cfg = load_timestamp(cwd=tmp_path)
    assert cfg.tsa == (tsa.url, "https://tsa.example/") and cfg.timeout == 2.5
    assert cfg.ca_file == str((tmp_path / "ca.pem").resolve()) and cfg.ca_pem == _ca(tsa)
    assert load_timestamp(cwd=tmp_path, tsa=["http://other/"]).tsa == ("http://other/",)
    from pipeline.config import load_owner

    assert load_owner(cwd=tmp_path).name == "X"  # the owner profile ignores the [timestamp] table
    (tmp_path / "none").mkdir()
    assert load_timestamp(cwd=tmp_path / "none") == TimestampConfig()


@pytest.mark.parametrize("body, message", [
    ('tsa = ["ftp://x"]\nca_file = "ca.pem"', r"expected an http\(s\) URL"),
    ('tsa = [1]\nca_file = "ca.pem"', "expected a list of URLs"),
    ('tsa = ["http://x/"]', "no ca_file"),
    ('tsa = ["http://x/"]\nca_file = "missing.pem"', "cannot read"),
    ('tsa = ["http://x/"]\nca_file = "catalogmark.toml"', "holds no PEM certificates"),
    ('tsa = ["http://x/"]\nca_file = "ca.pem"\ntimeout = 0', "timeout"),
    ('tsas = ["http://x/"]', "unknown key"),
])
def test_timestamp_table_errors_name_the_key(tmp_path, tsa, body, message):
    (tmp_path / "ca.pem").write_text(_ca(tsa))
    (tmp_path / "catalogmark.toml").write_text(f'[owner]\nname = "X"\n\n[timestamp]\n{body}\n')
    with pytest.raises(ConfigError, match=message):
        load_timestamp(cwd=tmp_path)


# --- end to end through the CLI ---------------------------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path) -> Path:
    from PIL import Image

    from tests.conftest import product_on_white

    r = cm("keygen", "--key-file", str(tmp_path / "owner.key"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for sku, seed in (("MUG-1", 1), ("LAMP-2", 2)):
        (tmp_path / "cat" / sku).mkdir(parents=True)
        Image.fromarray(product_on_white((600, 500), seed)).save(tmp_path / "cat" / sku / "a_main.jpg")
    return tmp_path


def _profile(workdir: Path, tsa_urls: list[str], ca: Path | None) -> None:
    text = '[owner]\nname = "Example Studio"\n'
    if tsa_urls:
        ca_line = f'ca_file = "{ca}"\n' if ca is not None else ""
        text += "\n[timestamp]\ntsa = [" + ", ".join(f'"{u}"' for u in tsa_urls) + "]\n" + ca_line + "timeout = 5\n"
    (workdir / "catalogmark.toml").write_text(text)


def _run(workdir: Path, out: str, *extra: str):
    r = cm("run", str(workdir / "cat"), "--preset", "ebay", "--out", str(workdir / out), "--ledger",
           str(workdir / "l.sqlite"), "--key-file", str(workdir / "owner.key"), "--json", "--quiet", *extra,
           cwd=workdir)
    return r, (json.loads(r.stdout) if r.stdout.strip() else {})


def test_e2e_run_is_stamped_and_ledger_verify_rechecks_with_openssl_agreeing(workdir, tsa, other_tsa):
    _profile(workdir, [tsa.url], tsa.ca_file)
    r, doc = _run(workdir, "o1")
    assert r.returncode == 0, r.stderr
    (stamp,) = doc["timestamps"]["stamped"]
    assert stamp["run_id"] == doc["run_id"] and stamp["tsa_url"] == tsa.url and doc["timestamps"]["ok"]
    r2, doc2 = _run(workdir, "o2", "--force")
    assert r2.returncode == 0, r2.stderr
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert v.returncode == 0 and "2 timestamp tokens" in v.stdout, v.stdout
    con = sqlite3.connect(workdir / "l.sqlite", isolation_level=None)
    rows = con.execute("SELECT t.run_id, t.token, r.merkle_root FROM timestamps t JOIN runs r USING (run_id)").fetchall()
    assert {row[0] for row in rows} == {doc["run_id"], doc2["run_id"]}
    for _, token, root in rows:
        assert tsa.openssl_verify(token, root, where=workdir).returncode == 0
    assert {row[2] for row in rows} == {doc["merkle_root"], doc2["merkle_root"]}
    # the record's inclusion proof ends at the timestamped root
    rid, seq = con.execute("SELECT record_id, seq FROM records WHERE run_id = ? LIMIT 1", (doc["run_id"],)).fetchone()
    p = cm("ledger", "proof", rid, "--seq", str(seq), "--ledger", str(workdir / "l.sqlite"), "--json", cwd=workdir)
    assert p.returncode == 0 and json.loads(p.stdout)["root"] == doc["merkle_root"]
    p = cm("ledger", "proof", rid, "--ledger", str(workdir / "l.sqlite"), "--json", cwd=workdir)  # the newest
    assert p.returncode == 0 and json.loads(p.stdout)["root"] == doc2["merkle_root"]
    (stamp_doc,) = json.loads(p.stdout)["timestamps"]
    assert stamp_doc["verifies"] and stamp_doc["tsa_url"] == tsa.url and "catalogmark test TSA" in stamp_doc["tsa_name"]
    p = cm("ledger", "proof", rid, "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert f"by {tsa.url} (verified)" in p.stdout
    # swapped: the second run's token stored for the first run
    (tok2,) = [t for run_id, t, _ in rows if run_id == doc2["run_id"]]
    con.execute("UPDATE timestamps SET token = ? WHERE run_id = ?", (tok2, doc["run_id"]))
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), "--json", cwd=workdir)
    assert v.returncode == 1
    assert json.loads(v.stdout)["problems"] == [
        f"run {doc['run_id']}: timestamp from {tsa.url}: its message imprint is not this run's Merkle root "
        "(a token of another run, or the records changed)"]
    # edited: one byte of the signature
    (tok1,) = [t for run_id, t, _ in rows if run_id == doc["run_id"]]
    con.execute("UPDATE timestamps SET token = ? WHERE run_id = ?", (_flip(tok1, len(tok1) - 3), doc["run_id"]))
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert v.returncode == 1 and f"run {doc['run_id']}: timestamp from {tsa.url}: does not verify" in v.stdout
    # untrusted: a CA file that does not hold the TSA's certificate
    con.execute("UPDATE timestamps SET token = ?, ca_pem = ? WHERE run_id = ?", (tok1, _ca(other_tsa), doc["run_id"]))
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert v.returncode == 1 and "does not verify against the CA certificates kept with it" in v.stdout
    # a reviewer's own trust anchor instead of the CA kept in the ledger
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), "--ca-file", str(tsa.ca_file), cwd=workdir)
    assert v.returncode == 0, v.stdout
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), "--ca-file", str(other_tsa.ca_file),
           "--json", cwd=workdir)
    assert v.returncode == 1 and len(json.loads(v.stdout)["problems"]) == 2
    assert all("does not verify against the CA file given" in p for p in json.loads(v.stdout)["problems"])
    con.execute("UPDATE timestamps SET ca_pem = ? WHERE run_id = ?", (_ca(tsa), doc["run_id"]))
    assert cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), cwd=workdir).returncode == 0


def test_e2e_offline_run_is_sealed_then_stamped_later(workdir, tsa):
    down = closed_port_url()
    _profile(workdir, [down], tsa.ca_file)
    r, doc = _run(workdir, "o1")
    assert r.returncode == 1 and doc["processed"] == 2 and doc["failed"] == 0 and doc["merkle_root"]
    warning = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warning) == 1 and warning[0].startswith(f"catalogmark: warning: TSA {down}: cannot connect")
    assert "stamp it later: catalogmark ledger timestamp" in warning[0] and "Traceback" not in r.stderr
    assert doc["timestamps"]["failures"][0]["run_ids"] == [doc["run_id"]]
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert v.returncode == 0 and "0 timestamp tokens" in v.stdout
    # still offline: `ledger timestamp` says so, exit 1, nothing lost
    t = cm("ledger", "timestamp", "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert t.returncode == 1 and "cannot connect" in t.stderr and "1 runs left without its token" in t.stderr
    # back online (another TSA named on the command line)
    t = cm("ledger", "timestamp", "--ledger", str(workdir / "l.sqlite"), "--tsa", tsa.url, "--ca-file",
           str(tsa.ca_file), "--json", cwd=workdir)
    assert t.returncode == 0, t.stderr
    (stamp,) = json.loads(t.stdout)["stamped"]
    assert stamp["run_id"] == doc["run_id"]
    con = sqlite3.connect(workdir / "l.sqlite")
    (token,) = [row[0] for row in con.execute("SELECT token FROM timestamps")]
    con.close()
    assert tsa.openssl_verify(token, doc["merkle_root"], where=workdir).returncode == 0
    v = cm("ledger", "verify", "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert v.returncode == 0 and "1 timestamp tokens" in v.stdout
    t = cm("ledger", "timestamp", "--ledger", str(workdir / "l.sqlite"), "--tsa", tsa.url, "--ca-file",
           str(tsa.ca_file), cwd=workdir)
    assert t.returncode == 0 and "0 tokens stored" in t.stdout


@pytest.mark.parametrize("mode", ["garbage", "500"])
def test_e2e_ledger_timestamp_against_a_broken_tsa(workdir, tmp_path, mode):
    _profile(workdir, [], None)
    r, doc = _run(workdir, "o1")
    assert r.returncode == 0 and doc["timestamps"] is None, r.stderr
    with LocalTSA(tmp_path / mode, mode=mode) as bad:
        t = cm("ledger", "timestamp", "--ledger", str(workdir / "l.sqlite"), "--tsa", bad.url, "--ca-file",
               str(bad.ca_file), cwd=workdir)
    assert t.returncode == 1 and "Traceback" not in t.stderr
    (line,) = [ln for ln in t.stderr.splitlines() if ln.strip()]
    assert line.startswith(f"catalogmark: error: TSA {bad.url}: ")
    assert ("not an RFC 3161 timestamp response" if mode == "garbage" else "HTTP 500") in line


def test_e2e_ledger_timestamp_without_a_tsa_is_a_usage_error(workdir):
    _profile(workdir, [], None)
    r, _ = _run(workdir, "o1")
    assert r.returncode == 0
    t = cm("ledger", "timestamp", "--ledger", str(workdir / "l.sqlite"), cwd=workdir)
    assert t.returncode == 2 and "no TSA configured" in t.stderr
