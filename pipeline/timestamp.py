"""RFC 3161 trusted timestamps: ask Time Stamping Authorities to sign a run's Merkle root, and check tokens.

What a TSA is sent is a hash only: the request's message imprint is ``sha256(root)`` where ``root`` is the
run's Merkle root as its 64 lowercase hex characters (ASCII, no newline), the form every command prints. So
a reviewer checks a token with nothing but OpenSSL::

    printf '%s' "$MERKLE_ROOT" > root.txt
    openssl ts -verify -data root.txt -in token.tsr -CAfile tsa-ca.pem

(``token.tsr`` is the ``token`` column of the ledger's ``timestamps`` table, the DER TimeStampResp exactly as
the TSA sent it; ``tsa-ca.pem`` its ``ca_pem`` column.) Requests carry a random nonce and ask for the TSA's
certificate, so a token holds the certificate that signed it and verifies offline, years later.

Encoding and checking use ``rfc3161-client`` (no ASN.1 here); HTTP is the standard library's ``urllib``
(an ``application/timestamp-query`` POST, RFC 3161 §3.4). Every failure is one line naming the TSA.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)
from rfc3161_client.tsp import TimeStampResponse

from pipeline import __version__
from pipeline.config import TimestampConfig
from pipeline.errors import TimestampError
from pipeline.ledger import TimestampToken

if TYPE_CHECKING:
    from pipeline.ledger import Ledger

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY_BYTES = 1 << 20  # a token with a certificate chain is a few KB; anything this big is not one
HASH_NAMES = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
              "2.16.840.1.101.3.4.2.3": "sha512"}


def imprint_data(merkle_root: str) -> bytes:
    """The bytes whose SHA-256 a TSA signs for a run: its root as 64 lowercase hex ASCII characters."""
    return merkle_root.strip().lower().encode("ascii")


@dataclass(frozen=True)
class TokenCheck:
    """The result of checking one token: ``ok`` with the TSA's time and name, or the first ``problem``."""

    ok: bool
    problem: str = ""
    gen_time: str = ""  # ISO 8601 UTC, e.g. 2026-12-02T05:12:36Z
    hash_algorithm: str = ""
    tsa_name: str = ""  # subject of the certificate that signed the token
    serial_number: int = 0


def _iso(dt: datetime.datetime) -> str:
    if dt.tzinfo is not None:
        dt = dt.astimezone(datetime.UTC).replace(tzinfo=None)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text + "Z"


def check_token(token: bytes, merkle_root: str, ca_pem: str, *, nonce: int | None = None,
                ca_name: str = "the CA certificates kept with it") -> TokenCheck:
    """Check a DER TimeStampResp: granted, signed by a certificate that chains to ``ca_pem`` and carries the
    critical timeStamping key usage, valid at its own time, and with the imprint of ``merkle_root``.

    Never raises: a token is untrusted bytes (from a TSA, or from a ledger someone may have edited), and any
    failure to read it is a failed check with the reason.
    """
    try:
        return _check_token(token, merkle_root, ca_pem, nonce, ca_name)
    except Exception as exc:  # noqa: BLE001 (the parsers raise assorted types on malformed input)
        return TokenCheck(False, f"unreadable token ({type(exc).__name__}: {_short(exc)})")


def _check_token(token: bytes, merkle_root: str, ca_pem: str, nonce: int | None, ca_name: str) -> TokenCheck:
    try:
        resp = decode_timestamp_response(bytes(token))
    except ValueError as exc:
        if "InvalidSetOrdering" in str(exc):  # BER-ordered certificate set: valid CMS, refused by rfc3161-client
            return TokenCheck(False, "the token's certificates are not in DER order, which rfc3161-client cannot "
                                     "read (ask the TSA for a token without its chain)")
        return TokenCheck(False, f"not an RFC 3161 timestamp response ({_short(exc)})")
    if resp.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        return TokenCheck(False, f"the TSA did not grant it (status {resp.status}{_status_text(resp)})")
    try:
        info = resp.tst_info
        algo = HASH_NAMES.get(info.message_imprint.hash_algorithm.dotted_string, "")
        gen_time = _iso(info.gen_time)
        serial = int(info.serial_number)
    except ValueError as exc:
        return TokenCheck(False, f"unreadable token contents ({_short(exc)})")
    if not algo:
        return TokenCheck(False, f"unsupported imprint hash {info.message_imprint.hash_algorithm.dotted_string}")
    try:
        expected = hashlib.new(algo, imprint_data(merkle_root)).digest()
    except (UnicodeEncodeError, AttributeError):
        return TokenCheck(False, f"the run's Merkle root {merkle_root!r} is not hex")
    base = TokenCheck(False, gen_time=gen_time, hash_algorithm=algo, serial_number=serial)
    if info.message_imprint.message != expected:
        return replace(base, problem="its message imprint is not this run's Merkle root (a token of another run, "
                                   "or the records changed)")
    try:
        certs = x509.load_pem_x509_certificates(ca_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return replace(base, problem=f"{ca_name} are not PEM certificates")
    signer = _signer_certificate(resp, certs)
    tsa_name = signer.subject.rfc4514_string() if signer is not None else ""
    builder = VerifierBuilder(roots=list(certs), nonce=nonce,
                              tsa_certificate=signer if not resp.signed_data.certificates else None)
    try:
        builder.build().verify(resp, expected)
    except VerificationError as exc:
        return replace(base, tsa_name=tsa_name, problem=f"does not verify against {ca_name} ({_short(exc)})")
    except ValueError as exc:
        return replace(base, tsa_name=tsa_name, problem=f"does not verify ({_short(exc)})")
    return replace(base, ok=True, tsa_name=tsa_name)


@dataclass(frozen=True)
class StampStatus:
    """One stored token of a run checked against the run's root: which TSA, its time, whether it verifies."""

    token: TimestampToken
    check: TokenCheck

    @property
    def verifies(self) -> bool:
        return self.check.ok

    @property
    def gen_time(self) -> str:
        return self.check.gen_time or self.token.gen_time

    @property
    def authority(self) -> str:
        """The TSA as a reader names it: its certificate's subject, else its URL."""
        return self.check.tsa_name or self.token.tsa_url

    def as_json(self) -> dict[str, object]:
        return {"tsa_url": self.token.tsa_url, "tsa_name": self.check.tsa_name, "gen_time": self.gen_time,
                "hash_algorithm": self.token.hash_algorithm, "verifies": self.verifies,
                "problem": self.check.problem or None}


def check_stamps(tokens: Sequence[TimestampToken], merkle_root: str) -> list[StampStatus]:
    """Each stored token re-checked (signature, chain against the CA kept with it, imprint) against ``merkle_root``."""
    return [StampStatus(t, check_token(t.token, merkle_root, t.ca_pem)) for t in tokens]


def earliest_verified(stamps: Sequence[StampStatus]) -> StampStatus | None:
    """The verified token with the earliest time (what a run's priority rests on), or None."""
    good = [s for s in stamps if s.verifies]
    return min(good, key=lambda s: s.gen_time) if good else None


def _signer_certificate(resp: TimeStampResponse, extra: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The certificate named by the token's SignerInfo: from the token, else from ``extra``."""
    try:
        infos = list(resp.signed_data.signer_infos)
        if len(infos) != 1:
            return None
        si = infos[0]
        pool = [x509.load_der_x509_certificate(c) for c in resp.signed_data.certificates] + list(extra)
    except ValueError:
        return None
    for cert in pool:
        if cert.issuer == si.issuer and cert.serial_number == si.serial_number:
            return cert
    return None


def _status_text(resp: TimeStampResponse) -> str:
    try:
        texts = [t for t in resp.status_string if t]
    except ValueError:
        texts = []
    return f": {'; '.join(texts)}" if texts else ""


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def request_token(url: str, merkle_root: str, ca_pem: str, *, timeout: float, run_id: str = "") -> TimestampToken:
    """Ask one TSA to timestamp a Merkle root and check its answer; TimestampError (one line) if it cannot."""
    req = (TimestampRequestBuilder().data(imprint_data(merkle_root)).hash_algorithm(HashAlgorithm.SHA256)
           .nonce(nonce=True).cert_request(cert_request=True).build())
    body = _post(url, req.as_bytes(), timeout)
    check = check_token(body.data, merkle_root, ca_pem, nonce=req.nonce, ca_name="the configured CA file")
    if not check.ok:
        hint = "" if body.content_type in ("", REPLY_TYPE) else f" (it sent {body.content_type})"
        raise TimestampError(f"TSA {url}: the answer is not a valid token for this run: {check.problem}{hint}")
    return TimestampToken(run_id=run_id, tsa_url=url, token=body.data, gen_time=check.gen_time,
                          hash_algorithm=check.hash_algorithm, ca_pem=ca_pem)


@dataclass(frozen=True)
class _Reply:
    data: bytes
    content_type: str


def _post(url: str, payload: bytes, timeout: float) -> _Reply:
    request = urllib.request.Request(url, data=payload, method="POST", headers={
        "Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE, "User-Agent": f"catalogmark/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # http(s) only: config checks the URLs
            data = resp.read(MAX_REPLY_BYTES + 1)
            ctype = str(resp.headers.get("Content-Type", "")).split(";")[0].strip().lower()
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"TSA {url}: HTTP {exc.code} {exc.reason}".rstrip()) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise TimestampError(f"TSA {url}: no answer within {timeout:g} s") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise TimestampError(f"TSA {url}: cannot connect ({text})") from None
    except TimeoutError:
        raise TimestampError(f"TSA {url}: no answer within {timeout:g} s") from None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        raise TimestampError(f"TSA {url}: the connection failed ({_short(exc)})") from None
    if len(data) > MAX_REPLY_BYTES:
        raise TimestampError(f"TSA {url}: the answer is larger than {MAX_REPLY_BYTES} bytes, not a token")
    return _Reply(data, ctype)


@dataclass(frozen=True)
class StampFailure:
    """One TSA that gave no token: the message, and the runs it did not stamp (retry: `ledger timestamp`)."""

    tsa_url: str
    message: str
    run_ids: tuple[str, ...]


@dataclass
class StampReport:
    """What :func:`stamp_runs` did: the tokens stored, the TSAs that failed, and how long it took."""

    stamped: list[TimestampToken] = field(default_factory=list)
    failures: list[StampFailure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok, "seconds": round(self.seconds, 3),
            "stamped": [{"run_id": t.run_id, "tsa_url": t.tsa_url, "gen_time": t.gen_time,
                         "hash_algorithm": t.hash_algorithm} for t in self.stamped],
            "failures": [{"tsa_url": f.tsa_url, "message": f.message, "run_ids": list(f.run_ids)}
                         for f in self.failures],
        }


def stamp_runs(ledger: Ledger, config: TimestampConfig, *, run_ids: Sequence[str] | None = None) -> StampReport:
    """Timestamp every sealed run (of ``run_ids``, if given) that lacks a token from a configured TSA.

    Each TSA is asked once per run; a TSA that fails is not asked again in this call (it is down, or not a
    TSA), and its failure names the runs left without its token. Tokens are checked before they are stored,
    and stored per run as they come, so a failure later loses nothing.
    """
    report = StampReport()
    start = time.perf_counter()
    if not config.tsa:
        return report
    pending = ledger.pending_stamps(config.tsa, run_ids)
    for url in config.tsa:
        todo = [p for p in pending if url in p.tsa_urls]
        for i, p in enumerate(todo):
            try:
                token = request_token(url, p.merkle_root, config.ca_pem, timeout=config.timeout, run_id=p.run_id)
            except TimestampError as exc:
                report.failures.append(StampFailure(url, str(exc), tuple(q.run_id for q in todo[i:])))
                break
            ledger.add_timestamps([token])
            report.stamped.append(token)
    report.seconds = time.perf_counter() - start
    return report
