"""The ledger: the append-only, hash-chained SQLite record of every export (the only module that writes SQL).

How an outside auditor recomputes everything (nothing here needs catalogmark, only SHA-256 and JSON):

* **Canonical JSON** is ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
  allow_nan=False)`` encoded as UTF-8 (Python's float formatting: shortest repr that round-trips).
* **Record hash.** Every record row stores ``seq`` (1, 2, 3, ... over the whole ledger, no gaps), ``run_id``,
  ``fmt`` (record format, currently 1), ``prev_hash``, ``record_hash`` and one column per field of
  :class:`pipeline.models.Record`. Let ``fields`` be an object holding every one of those columns except
  ``record_hash``, with the dict-valued columns (``capture``, ``visible_mark``, ``extra``) as JSON values (the
  database stores them as canonical JSON text; ``ledger export`` writes them as objects) and SQL NULL as
  ``null``. Then ``record_hash = hex(sha256(bytes.fromhex(prev_hash) || canonical_json(fields)))``.
* **Chain.** ``prev_hash`` of record ``seq`` is the ``record_hash`` of record ``seq - 1``; the first record's
  ``prev_hash`` is 64 zeros (:data:`GENESIS`). The newest ``(seq, record_hash)`` is also kept in the ``meta``
  table (``head_seq``, ``head_hash``) so that deleting the newest records is noticed too.
* **Merkle root of a run** over the run's record hashes ``h_1..h_n`` in ``seq`` order (32 raw bytes each):
  leaves ``L_i = sha256(0x00 || h_i)``; each level pairs neighbours left to right into
  ``sha256(0x01 || left || right)``; an odd node at the end of a level is promoted unchanged to the next
  level; the root is the single node left, as hex. The root of an empty run is ``sha256(b"")``.
  (The 0x00/0x01 prefixes are RFC 6962-style domain separation: a leaf can never pass for an inner node.
  The tree has the same shape as RFC 6962's Merkle Tree Hash, which splits n leaves at the largest power of
  two below n, so an RFC 6962 implementation fed the raw 32-byte record hashes gives the same root.)
  The code is :mod:`pipeline.merkle`.
* **Inclusion proof of one record** (``catalogmark ledger proof RECORD_ID --json``): ``leaf_index`` is the
  record's position (from 0) among its run's records in ``seq`` order, ``tree_size`` the run's record count,
  ``audit_path`` the hex sibling hashes from the leaf up (RFC 6962 §2.1.1 ``PATH(m, D[n])``). To check it with
  nothing but SHA-256 (RFC 9162 §2.1.3.2): ``fn = leaf_index``, ``sn = tree_size - 1``,
  ``r = sha256(0x00 || record_hash)``; for each ``p`` in the path: if ``sn == 0`` fail; if ``fn`` is odd or
  ``fn == sn``, ``r = sha256(0x01 || p || r)`` and then, if ``fn`` is even, halve ``fn`` and ``sn`` until
  ``fn`` is odd or 0; otherwise ``r = sha256(0x01 || r || p)``; then halve ``fn`` and ``sn`` once more. The
  proof holds if at the end ``sn == 0`` and ``hex(r)`` is the run's ``merkle_root``. The record hash itself
  is recomputed from the record's columns as above, so one record, its proof and the run root suffice.
* **Timestamp of a run** (``timestamps`` table, one row per run and TSA): ``token`` is the DER
  TimeStampResp the TSA sent for the message imprint ``sha256(merkle_root as 64 lowercase hex ASCII
  characters)``; ``ca_pem`` the CA certificates it was checked against. With OpenSSL alone: write the root's
  hex (no newline) to ``root.txt``, the token to ``token.tsr``, ``ca_pem`` to ``ca.pem``, then
  ``openssl ts -verify -data root.txt -in token.tsr -CAfile ca.pem`` (see :mod:`pipeline.timestamp`).

The parent process is the only writer. SQLite runs in WAL mode so other processes can read while a run
writes; ``synchronous=FULL`` because the Merkle root returned by :meth:`Ledger.finish_run` is printed and
published — with NORMAL a power cut after that could roll the commit back and leave a published root that
the ledger does not contain. Appends are batched, so FULL costs one WAL fsync per batch, not per image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import operator
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from pipeline.canonical import canonical_json
from pipeline.errors import LedgerError
from pipeline.merkle import InclusionProof, merkle_root, prove
from pipeline.models import Record
from pipeline.sweep.models import CASE_STATUSES, Case, CaseEvent, CaseStatus, Change, Sighting
from pipeline.timefmt import now_iso

GENESIS = "0" * 64
RECORD_FORMAT = 1
APPLICATION_ID = 0x434D4C47  # "CMLG": marks the SQLite file as a catalogmark ledger (PRAGMA application_id)
BUSY_TIMEOUT_SECONDS = 30.0
MAX_PROBLEMS = 1000  # verify() stops listing after this many (and says how many more there were)

# The Record fields, in schema order; a test checks this matches pipeline.models.Record exactly, because a new
# Record field needs a migration and a new record format here.
RECORD_FIELDS: tuple[str, ...] = (
    "record_id", "job_key", "source", "source_sha256", "sku", "role", "position", "preset", "preset_digest",
    "output", "output_sha256", "output_bytes", "pixel_sha256", "width", "height", "format", "phash", "pdq",
    "pdq_quality", "payload", "owner", "key_fingerprint", "signature", "capture", "visible_mark", "created_at",
    "extra",
)
INT_FIELDS = frozenset({"position", "output_bytes", "width", "height", "pdq_quality"})
JSON_FIELDS = frozenset({"capture", "visible_mark", "extra"})
NULLABLE_FIELDS = frozenset({"payload", "visible_mark"})
CHAIN_FIELDS: tuple[str, ...] = ("seq", "run_id", "fmt", "prev_hash")
# The columns covered by the record hash, per record format.
HASHED_COLUMNS: dict[int, tuple[str, ...]] = {1: CHAIN_FIELDS + RECORD_FIELDS}

_RECORD_COLUMNS_SQL = ",\n".join(
    f"    {name} {'INTEGER' if name in INT_FIELDS else 'TEXT'}{'' if name in NULLABLE_FIELDS else ' NOT NULL'}"
    for name in RECORD_FIELDS
)

# Ordered migrations: (schema version, statements). Each version is applied in one transaction, together with
# `PRAGMA user_version = version`. Never edit a released step; append a new one.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
    merkle_root TEXT,
    record_count INTEGER,
    info TEXT NOT NULL,
    counts TEXT,
    writer_host TEXT,
    writer_pid INTEGER
)""",
        f"""CREATE TABLE records (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    fmt INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL UNIQUE,
{_RECORD_COLUMNS_SQL}
)""",
        # seq is the rowid, so each index below ends in seq: "newest per key" is a backwards index scan.
        "CREATE INDEX records_job_key ON records (job_key)",
        "CREATE INDEX records_record_id ON records (record_id)",
        "CREATE INDEX records_payload ON records (payload)",
        "CREATE INDEX records_source_preset ON records (source, preset)",
        "CREATE INDEX records_pdq ON records (pdq)",
        "CREATE INDEX records_run ON records (run_id)",
        f"PRAGMA application_id = {APPLICATION_ID}",
    )),
    (2, (
        # Trace side table: crop-robust search keys and features per record (written by the runner via
        # put_trace/put_traces, read by trace). Derived data, recomputable from the output, so not hash-chained.
        """CREATE TABLE traces (
    record_id TEXT PRIMARY KEY,
    search_keys BLOB NOT NULL,
    features BLOB NOT NULL
)""",
    )),
    (3, (
        # Stat cache: (size, mtime_ns, inode, ctime_ns) -> SHA-256 of a source or output file, so a rerun or
        # --check of an unchanged catalog reads no file. A cache, not evidence: not hash-chained, rows replaced.
        """CREATE TABLE file_stats (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
) WITHOUT ROWID""",
        "CREATE INDEX records_output ON records (output)",
    )),
    (4, (
        # RFC 3161 timestamps of sealed runs' Merkle roots, one row per run and TSA (pipeline/timestamp.py).
        # Not hash-chained (added after the run is sealed, possibly much later): each token is evidence on its
        # own, checked by verify() against the run's root and the CA certificates kept beside it.
        """CREATE TABLE timestamps (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    tsa_url TEXT NOT NULL,
    token BLOB NOT NULL,
    gen_time TEXT NOT NULL,
    hash_algorithm TEXT NOT NULL,
    ca_pem TEXT NOT NULL,
    PRIMARY KEY (run_id, tsa_url)
) WITHOUT ROWID""",
    )),
    (5, (
        # The case book (catalogmark sweep / cases): found copies of our exports and what the owner did about
        # them. Not hash-chained (the owner's working notes, not evidence of priority), but the history is
        # append-only: triggers refuse any UPDATE or DELETE of a case event or a sighting.
        """CREATE TABLE sweeps (
    sweep_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    inputs TEXT NOT NULL,
    counts TEXT
)""",
        """CREATE TABLE cases (
    case_id INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    false_match_probability REAL,
    suspect_phash TEXT NOT NULL,
    marketplace TEXT,
    seller TEXT,
    listing_title TEXT,
    opened_at TEXT NOT NULL,
    opened_by TEXT REFERENCES sweeps(sweep_id)
)""",
        """CREATE TABLE case_events (
    event_id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(case_id),
    at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('found', 'reported', 'removed', 'countered', 'dismissed')),
    note TEXT NOT NULL,
    sweep_id TEXT REFERENCES sweeps(sweep_id),
    relisted INTEGER NOT NULL DEFAULT 0
)""",
        """CREATE TABLE sightings (
    sighting_id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(case_id),
    sweep_id TEXT NOT NULL REFERENCES sweeps(sweep_id),
    seen_at TEXT NOT NULL,
    suspect_sha256 TEXT NOT NULL,
    page_url TEXT,
    image_url TEXT
)""",
        "CREATE INDEX case_events_case ON case_events (case_id, event_id)",
        "CREATE INDEX sightings_case ON sightings (case_id, sighting_id)",
        "CREATE INDEX sightings_sha ON sightings (suspect_sha256)",
        "CREATE INDEX sightings_page ON sightings (page_url)",
        "CREATE INDEX sightings_image ON sightings (image_url)",
        "CREATE INDEX cases_record ON cases (record_id)",
        *(f"""CREATE TRIGGER {table}_{op.lower()}_refused BEFORE {op} ON {table}
BEGIN SELECT RAISE(ABORT, 'the case history is append-only: {table} rows are never changed or removed'); END"""
          for table in ("case_events", "sightings") for op in ("UPDATE", "DELETE")),
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Runs begun by Ledger objects of this process and not yet finished/closed: recover() leaves them alone.
_ACTIVE_RUNS: set[tuple[str, str]] = set()


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """``hex(sha256(bytes.fromhex(prev_hash) || canonical_json(fields)))``."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(fields).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FileStat:
    """What the stat cache keys a file's SHA-256 on: a change to any of these means "hash it again"."""

    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


@dataclass(frozen=True)
class StoredRecord:
    """A record as read back from the ledger: the Record the runner appended plus its chain position.

    Every stored column: ``seq``, ``run_id``, ``fmt``, ``prev_hash``, ``record_hash`` here, the rest on
    ``record``. A dict column that is not valid JSON (only after tampering; ``verify`` reports it) is kept as
    its raw text.
    """

    record: Record
    seq: int
    run_id: str
    prev_hash: str
    record_hash: str
    fmt: int = RECORD_FORMAT

    def as_dict(self, *, keep_fmt: bool = False) -> dict[str, Any]:
        """The stored columns as one dict (dict columns as objects; ``fmt`` only with ``keep_fmt``), in schema
        order: what ``ledger export`` writes per record and the trace report quotes."""
        doc: dict[str, Any] = {"seq": self.seq, "run_id": self.run_id}
        if keep_fmt:
            doc["fmt"] = self.fmt
        doc.update(prev_hash=self.prev_hash, record_hash=self.record_hash)
        doc.update((name, getattr(self.record, name)) for name in RECORD_FIELDS)
        return doc


def hashed_fields(stored: StoredRecord) -> dict[str, Any]:
    """The object whose canonical JSON a stored record's hash covers: ``record_hash(stored.prev_hash,
    hashed_fields(stored)) == stored.record_hash`` for an intact record (what a priority kit's record.json is)."""
    doc = stored.as_dict(keep_fmt=True)
    return {name: doc[name] for name in HASHED_COLUMNS.get(stored.fmt, HASHED_COLUMNS[RECORD_FORMAT])}


@dataclass(frozen=True)
class RunInfo:
    """One row of the ``runs`` table, with ``info`` and ``counts`` parsed (raw text if not JSON: tampering)."""

    run_id: str
    started_at: str
    finished_at: str | None
    status: str  # 'running', 'finished' or 'interrupted'
    merkle_root: str | None  # set when the run is sealed
    record_count: int | None
    info: Any  # dict as begun (pipeline version, key fingerprint, ...)
    counts: Any  # dict as finished, or None
    writer_host: str | None
    writer_pid: int | None

    def as_dict(self) -> dict[str, Any]:
        """Every column, in schema order (what ``ledger export`` writes per run)."""
        return {name: getattr(self, name) for name in _RUN_COLUMNS}


@dataclass(frozen=True)
class RunLeaves:
    """One record's place in its run's Merkle tree: the run's record hashes (seq order) and the stored root."""

    record_id: str
    seq: int
    run_id: str
    status: str  # 'running' (no root yet), 'finished', 'interrupted', or 'missing' (no runs row: tampering)
    merkle_root: str | None  # as stored when the run was sealed
    index: int  # the record's leaf index: its position among the run's records in seq order
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class TimestampToken:
    """An RFC 3161 timestamp of one run's Merkle root by one TSA, as the ``timestamps`` table keeps it."""

    run_id: str
    tsa_url: str
    token: bytes  # DER TimeStampResp as the TSA sent it (status + signed token): `openssl ts -verify -in` reads it
    gen_time: str  # the TSA's time in the token, ISO 8601 UTC
    hash_algorithm: str  # of the message imprint, e.g. "sha256"
    ca_pem: str  # the CA certificates (PEM) the token was checked against when it was stored


@dataclass(frozen=True)
class PendingStamp:
    """A sealed run and the TSAs (of those asked about) that have not timestamped its root yet."""

    run_id: str
    merkle_root: str
    tsa_urls: tuple[str, ...]


@dataclass
class VerifyReport:
    """Result of :meth:`Ledger.verify`; ``problems`` is empty exactly when ``ok``."""

    ok: bool
    records: int
    runs: int
    problems: list[str] = field(default_factory=list)
    timestamps: int = 0  # timestamp tokens checked


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def apply_migrations(conn: sqlite3.Connection, path: str, *, target: int | None = None) -> int:
    """Bring the schema up to ``target`` (default: newest); return the resulting version.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Each step runs in its own
    ``BEGIN IMMEDIATE`` transaction and re-reads the version inside it, so two processes opening the same
    new ledger at once do not both apply a step.
    """
    target = SCHEMA_VERSION if target is None else target
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger {path} has schema version {version}, but this catalogmark only knows up to "
            f"{SCHEMA_VERSION}; upgrade catalogmark to use it"
        )
    for step, statements in MIGRATIONS:
        if step <= version or step > target:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current < step:
                for statement in statements:
                    conn.execute(statement)
                if step == 1:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('created_at', ?)", (now_iso(),))
                conn.execute(f"PRAGMA user_version = {int(step)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = max(current, step)
    return version


class Ledger:
    """One open ledger file. Not thread-safe; one per process is plenty (the parent writes, anyone reads)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self._key = str(path.resolve())
        self._my_runs: set[str] = set()

    # --- opening and closing ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> Ledger:
        """Open (creating the parent folder and file if needed) and migrate; LedgerError naming the path."""
        path = Path(path)
        if path.is_dir():
            raise LedgerError(f"ledger {path} is a directory, not a ledger file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the folder for ledger {path}: {exc.strerror or exc}") from exc
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])  # fails on a non-SQLite file
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables):
                raise LedgerError(f"{path} is an SQLite database but not a catalogmark ledger")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"ledger {path}: cannot switch to WAL mode (journal_mode is {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            apply_migrations(conn, str(path))
        except LedgerError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise LedgerError(f"cannot open ledger {path}: {exc} (corrupt, or not a catalogmark ledger?)") from exc
        return cls(conn, path)

    def close(self) -> None:
        """Close the connection. A run begun here and not finished stays 'running' until recover() sees it."""
        for run_id in self._my_runs:
            _ACTIVE_RUNS.discard((self._key, run_id))
        self._my_runs.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"ledger {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self.path}: {what} failed: {exc}") from exc

    @contextlib.contextmanager
    def _snapshot(self, what: str) -> Iterator[sqlite3.Connection]:
        """A read transaction: every read inside sees one consistent state, even while another process writes."""
        db = self._db
        with self._guard(what):
            db.execute("BEGIN DEFERRED")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        db = self._db
        with self._guard(what):
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _columns_for(self, record: Record) -> dict[str, Any]:
        """The stored column values of one Record (validated; dict fields as canonical JSON text)."""
        rid = getattr(record, "record_id", "?")
        if not isinstance(record, Record):
            raise LedgerError(f"ledger {self.path}: can only append Record objects, got {type(record).__name__}")
        out: dict[str, Any] = {}
        for name in RECORD_FIELDS:
            value = getattr(record, name)
            if value is None and name in NULLABLE_FIELDS:
                out[name] = None
            elif name in INT_FIELDS:
                if isinstance(value, bool):
                    raise LedgerError(f"ledger {self.path}: record {rid}: field {name} must be an integer, got bool")
                try:
                    out[name] = operator.index(value)  # also accepts numpy integers
                except TypeError as exc:
                    raise LedgerError(f"ledger {self.path}: record {rid}: field {name} must be an integer, "
                                      f"got {type(value).__name__}") from exc
            elif name in JSON_FIELDS:
                if not isinstance(value, dict):
                    raise LedgerError(f"ledger {self.path}: record {rid}: field {name} must be a dict, "
                                      f"got {type(value).__name__}")
                try:
                    out[name] = canonical_json(value)
                except (TypeError, ValueError) as exc:
                    raise LedgerError(f"ledger {self.path}: record {rid}: field {name} is not plain JSON "
                                      f"data: {exc}") from exc
            elif isinstance(value, str):
                out[name] = value
            else:
                raise LedgerError(f"ledger {self.path}: record {rid}: field {name} must be a string, "
                                  f"got {type(value).__name__}")
            if isinstance(out[name], str):
                try:
                    out[name].encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise LedgerError(f"ledger {self.path}: record {rid}: field {name} is not valid Unicode "
                                      f"(an undecodable file name?): {out[name]!r}") from exc
        return out

    # --- writing ---------------------------------------------------------------------------------------------

    def begin_run(self, run_id: str, info: dict[str, Any]) -> None:
        """Start a run (status 'running'); ``info`` is kept as JSON (pipeline version, key fingerprint, ...)."""
        try:
            info_text = canonical_json(info)
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"ledger {self.path}: run {run_id}: info is not plain JSON data: {exc}") from exc
        started = str(info.get("started_at") or now_iso())
        with self._write(f"starting run {run_id}") as db:
            if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise LedgerError(f"ledger {self.path}: run {run_id} already exists")
            db.execute(
                "INSERT INTO runs (run_id, started_at, status, info, writer_host, writer_pid) "
                "VALUES (?, ?, 'running', ?, ?, ?)",
                (run_id, started, info_text, socket.gethostname(), os.getpid()),
            )
        self._my_runs.add(run_id)
        _ACTIVE_RUNS.add((self._key, run_id))

    def append(self, run_id: str, records: Sequence[Record]) -> list[tuple[int, str]]:
        """Append records to a running run in one transaction; return ``(seq, record_hash)`` for each."""
        rows = [self._columns_for(r) for r in records]
        if not rows:
            return []
        names = ("seq", "run_id", "fmt", "prev_hash", "record_hash", *RECORD_FIELDS)
        sql = f"INSERT INTO records ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        out: list[tuple[int, str]] = []
        with self._write(f"appending {len(rows)} records to run {run_id}") as db:
            run = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if run is None:
                raise LedgerError(f"ledger {self.path}: cannot append to run {run_id}: no such run (begin_run first)")
            if run[0] != "running":
                raise LedgerError(f"ledger {self.path}: cannot append to run {run_id}: it is {run[0]}")
            seq, prev = self._head(db)
            params = []
            for record, cols in zip(records, rows, strict=True):
                seq += 1
                fields = {"seq": seq, "run_id": run_id, "fmt": RECORD_FORMAT, "prev_hash": prev}
                # dict columns hash as the objects themselves: canonical_json(obj) is exactly the stored text
                fields.update((n, getattr(record, n) if n in JSON_FIELDS else cols[n]) for n in RECORD_FIELDS)
                digest = record_hash(prev, fields)
                params.append((seq, run_id, RECORD_FORMAT, prev, digest, *(cols[n] for n in RECORD_FIELDS)))
                out.append((seq, digest))
                prev = digest
            try:
                db.executemany(sql, params)
            except sqlite3.IntegrityError as exc:
                raise LedgerError(
                    f"ledger {self.path}: record seq {out[0][0]}.. already exists although the chain head says "
                    f"{out[0][0] - 1}: the ledger was modified outside catalogmark (run `catalogmark ledger "
                    f"verify`): {exc}"
                ) from exc
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           [("head_seq", str(seq)), ("head_hash", prev)])
        return out

    @staticmethod
    def _head(db: sqlite3.Connection) -> tuple[int, str]:
        """The chain head as the ledger itself remembers it (meta), so a deleted tail leaves a visible gap."""
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('head_seq', 'head_hash')").fetchall())
        if "head_seq" in meta and "head_hash" in meta:
            return int(meta["head_seq"]), str(meta["head_hash"])
        row = db.execute("SELECT seq, record_hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def _seal_run(self, db: sqlite3.Connection, run_id: str, status: str, counts: dict[str, Any] | None) -> str:
        hashes = [h for (h,) in db.execute("SELECT record_hash FROM records WHERE run_id = ? ORDER BY seq",
                                           (run_id,))]
        root = merkle_root(hashes)
        db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, merkle_root = ?, record_count = ?, counts = ? "
            "WHERE run_id = ?",
            (status, now_iso(), root, len(hashes), None if counts is None else canonical_json(counts), run_id),
        )
        return root

    def finish_run(self, run_id: str, counts: dict[str, Any]) -> str:
        """Seal a run: store its Merkle root and record count, mark it finished; return the root (hex)."""
        with self._write(f"finishing run {run_id}") as db:
            run = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if run is None:
                raise LedgerError(f"ledger {self.path}: cannot finish run {run_id}: no such run")
            if run[0] != "running":
                raise LedgerError(f"ledger {self.path}: cannot finish run {run_id}: it is already {run[0]}")
            try:
                root = self._seal_run(db, run_id, "finished", counts)
            except (TypeError, ValueError) as exc:
                raise LedgerError(f"ledger {self.path}: run {run_id}: counts are not plain JSON data: {exc}") from exc
        self._my_runs.discard(run_id)
        _ACTIVE_RUNS.discard((self._key, run_id))
        return root

    def interrupt_run(self, run_id: str, counts: dict[str, Any]) -> str:
        """Seal a run that was stopped on purpose (SIGTERM, Ctrl-C) as 'interrupted', with its Merkle root and
        counts, as recover() would after a crash; return the root (hex)."""
        with self._write(f"sealing interrupted run {run_id}") as db:
            run = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if run is None or run[0] != "running":
                raise LedgerError(f"ledger {self.path}: cannot seal run {run_id} as interrupted: "
                                  + ("no such run" if run is None else f"it is already {run[0]}"))
            root = self._seal_run(db, run_id, "interrupted", counts)
        self._my_runs.discard(run_id)
        _ACTIVE_RUNS.discard((self._key, run_id))
        return root

    def recover(self) -> list[str]:
        """Seal runs a crash left 'running' as 'interrupted' (with their Merkle roots); return their ids.

        A run is left alone while its writer may still be alive: begun by a Ledger of this process that is still
        open, or by a live process on this host. (A writer on another host cannot be writing: SQLite's WAL only
        works between processes of one host.)
        """
        host = socket.gethostname()
        recovered: list[str] = []
        with self._guard("looking for interrupted runs"):
            if self._db.execute("SELECT 1 FROM runs WHERE status = 'running' LIMIT 1").fetchone() is None:
                return recovered  # the common case: no write transaction at all
        with self._write("recovering interrupted runs") as db:
            rows = db.execute("SELECT run_id, writer_host, writer_pid FROM runs WHERE status = 'running' "
                              "ORDER BY started_at, rowid").fetchall()
            for run_id, writer_host, writer_pid in rows:
                if (self._key, run_id) in _ACTIVE_RUNS:
                    continue
                if (writer_host == host and writer_pid is not None and writer_pid != os.getpid()
                        and _pid_alive(int(writer_pid))):
                    continue
                self._seal_run(db, run_id, "interrupted", None)
                recovered.append(run_id)
        return recovered

    def put_trace(self, record_id: str, search_keys: bytes, features: bytes) -> None:
        """Store (replace) one record's trace data in the side table."""
        self.put_traces([(record_id, search_keys, features)])

    def put_traces(self, items: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Store (replace) trace data for many records in one transaction (one fsync for the batch)."""
        rows = [(rid, bytes(keys), bytes(feats)) for rid, keys, feats in items]
        if not rows:
            return
        with self._write(f"storing trace data for {len(rows)} records") as db:
            db.executemany("INSERT OR REPLACE INTO traces (record_id, search_keys, features) VALUES (?, ?, ?)",
                           rows)

    def put_file_stats(self, items: Iterable[tuple[str, FileStat, str]]) -> None:
        """Remember (path, stat, sha256) in the stat cache, replacing older rows for the same paths."""
        rows = [(path, st.size, st.mtime_ns, st.inode, st.ctime_ns, sha) for path, st, sha in items]
        if not rows:
            return
        with self._write(f"caching the hashes of {len(rows)} files") as db:
            db.executemany("INSERT OR REPLACE INTO file_stats (path, size, mtime_ns, inode, ctime_ns, sha256) "
                           "VALUES (?, ?, ?, ?, ?, ?)", rows)

    def add_timestamps(self, tokens: Sequence[TimestampToken]) -> None:
        """Store timestamp tokens (one per run and TSA) in one transaction; the runs must be sealed."""
        if not tokens:
            return
        with self._write(f"storing {len(tokens)} timestamp tokens") as db:
            for t in tokens:
                run = db.execute("SELECT status, merkle_root FROM runs WHERE run_id = ?", (t.run_id,)).fetchone()
                if run is None or run[1] is None:
                    state = "no such run" if run is None else f"it is {run[0]}, not sealed"
                    raise LedgerError(f"ledger {self.path}: cannot timestamp run {t.run_id}: {state}")
            try:
                db.executemany("INSERT INTO timestamps (run_id, tsa_url, token, gen_time, hash_algorithm, ca_pem) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               [(t.run_id, t.tsa_url, bytes(t.token), t.gen_time, t.hash_algorithm, t.ca_pem)
                                for t in tokens])
            except sqlite3.IntegrityError as exc:
                raise LedgerError(f"ledger {self.path}: a run already has a timestamp from that TSA: {exc}") from exc

    # --- reading ---------------------------------------------------------------------------------------------

    def file_stats(self, paths: Iterable[str]) -> dict[str, tuple[FileStat, str]]:
        """The stat cache's (stat, sha256) for those of ``paths`` it holds."""
        out: dict[str, tuple[FileStat, str]] = {}
        wanted = list(dict.fromkeys(paths))
        with self._guard("reading the stat cache"):
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                sql = ("SELECT path, size, mtime_ns, inode, ctime_ns, sha256 FROM file_stats WHERE path IN "
                       f"({', '.join('?' * len(chunk))})")
                for path, size, mtime, inode, ctime, sha in self._db.execute(sql, chunk):
                    out[str(path)] = (FileStat(int(size), int(mtime), int(inode), int(ctime)), str(sha))
        return out

    def latest_by_outputs(self, outputs: Iterable[str]) -> dict[str, StoredRecord]:
        """Newest record per output path, for the given paths (what is on disk there, as far as we know)."""
        wanted = list(dict.fromkeys(outputs))
        found: dict[str, StoredRecord] = {}
        with self._guard("looking up outputs"):
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                sql = ("SELECT * FROM records WHERE seq IN (SELECT max(seq) FROM records WHERE output IN "
                       f"({', '.join('?' * len(chunk))}) GROUP BY output)")
                cur = self._db.execute(sql, chunk)
                names = [d[0] for d in cur.description]
                for row in cur:
                    stored = _stored_record(names, row)
                    found[stored.record.output] = stored
        return found

    def _records(self, sql: str, params: Sequence[Any] = ()) -> Iterator[StoredRecord]:
        with self._guard("reading records"):
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            for row in cur:
                yield _stored_record(names, row)

    def _one(self, sql: str, params: Sequence[Any]) -> StoredRecord | None:
        with self._guard("reading a record"):
            cur = self._db.execute(sql, params)
            row = cur.fetchone()
            return None if row is None else _stored_record([d[0] for d in cur.description], row)

    def get(self, record_id: str) -> StoredRecord | None:
        """Newest record with that record_id, or None."""
        return self._one("SELECT * FROM records WHERE record_id = ? ORDER BY seq DESC LIMIT 1", (record_id,))

    def history(self, record_id: str) -> list[StoredRecord]:
        """Every record with that record_id (one per export of it: reruns repeat the id), in seq order."""
        return list(self._records("SELECT * FROM records WHERE record_id = ? ORDER BY seq", (record_id,)))

    def find_by_output_sha256(self, sha256: str) -> list[StoredRecord]:
        """Every record whose output had exactly these bytes (SHA-256 hex, any case), in seq order. A scan (no
        index): callers try the record named by a file's claim (:meth:`history`) first."""
        return list(self._records("SELECT * FROM records WHERE output_sha256 = ? ORDER BY seq",
                                  (sha256.strip().lower(),)))

    def earliest_of_source(self, source_sha256: str) -> StoredRecord | None:
        """The first record (lowest seq) of any export of the source photo with these bytes, or None: when we
        first recorded the photo, whichever preset it went to. A scan (no index on source_sha256)."""
        return self._one("SELECT * FROM records WHERE source_sha256 = ? ORDER BY seq LIMIT 1",
                         (source_sha256.strip().lower(),))

    def find_by_payload(self, payload_hex: str) -> list[StoredRecord]:
        """Every record carrying that invisible-watermark payload (hex, any case), in seq order."""
        return list(self._records("SELECT * FROM records WHERE payload = ? ORDER BY seq",
                                  (payload_hex.strip().lower(),)))

    def key_fingerprints(self) -> dict[str, int]:
        """How many records each owner key signed (fingerprint -> count)."""
        with self._guard("counting records per key"):
            return {str(k): int(n) for k, n in self._db.execute(
                "SELECT key_fingerprint, count(*) FROM records GROUP BY key_fingerprint ORDER BY count(*) DESC")}

    def get_trace(self, record_id: str) -> tuple[bytes, bytes] | None:
        """(search_keys, features) stored for a record, or None."""
        with self._guard("reading trace data"):
            row = self._db.execute("SELECT search_keys, features FROM traces WHERE record_id = ?",
                                   (record_id,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def iter_search_keys(self) -> Iterator[tuple[str, bytes]]:
        """Every (record_id, search_keys): only the small blobs a candidate search loads for all records."""
        with self._guard("reading trace search keys"):
            for rid, keys in self._db.execute("SELECT record_id, search_keys FROM traces ORDER BY record_id"):
                yield str(rid), bytes(keys)

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first, with info/counts parsed."""
        with self._guard("reading runs"):
            cur = self._db.execute("SELECT * FROM runs ORDER BY started_at, rowid")
            return [_run_info(cur.description, row) for row in cur.fetchall()]

    def timestamps(self, run_id: str | None = None) -> list[TimestampToken]:
        """Every stored timestamp token (of one run, if given), by run start then TSA URL."""
        sql = ("SELECT t.run_id, t.tsa_url, t.token, t.gen_time, t.hash_algorithm, t.ca_pem FROM timestamps t "
               "LEFT JOIN runs r ON r.run_id = t.run_id")
        params: tuple[str, ...] = ()
        if run_id is not None:
            sql += " WHERE t.run_id = ?"
            params = (run_id,)
        with self._guard("reading timestamps"):
            rows = self._db.execute(sql + " ORDER BY r.started_at, r.rowid, t.run_id, t.tsa_url", params).fetchall()
        return [TimestampToken(run_id=str(r[0]), tsa_url=str(r[1]), token=bytes(r[2]), gen_time=str(r[3]),
                               hash_algorithm=str(r[4]), ca_pem=str(r[5])) for r in rows]

    def pending_stamps(self, tsa_urls: Sequence[str], run_ids: Sequence[str] | None = None) -> list[PendingStamp]:
        """Sealed runs (finished or interrupted; of ``run_ids`` if given), oldest first, that lack a timestamp
        from at least one of ``tsa_urls``, each with the TSAs it lacks."""
        wanted = list(dict.fromkeys(tsa_urls))
        out: list[PendingStamp] = []
        with self._snapshot("looking for runs without a timestamp"):
            have: dict[str, set[str]] = {}
            for rid, url in self._db.execute("SELECT run_id, tsa_url FROM timestamps"):
                have.setdefault(str(rid), set()).add(str(url))
            rows = self._db.execute("SELECT run_id, merkle_root FROM runs WHERE status IN ('finished', 'interrupted') "
                                    "AND merkle_root IS NOT NULL ORDER BY started_at, rowid").fetchall()
        only = None if run_ids is None else set(run_ids)
        for rid, root in rows:
            if only is not None and rid not in only:
                continue
            missing = tuple(u for u in wanted if u not in have.get(str(rid), set()))
            if missing:
                out.append(PendingStamp(run_id=str(rid), merkle_root=str(root), tsa_urls=missing))
        return out

    def run_leaves(self, record_id: str, *, seq: int | None = None) -> RunLeaves | None:
        """The leaves of the run holding a record (the newest with that record_id, or the one at ``seq``), or
        None if there is no such record."""
        with self._snapshot("reading a record's run"):
            if seq is None:
                row = self._db.execute("SELECT seq, run_id FROM records WHERE record_id = ? ORDER BY seq DESC "
                                       "LIMIT 1", (record_id,)).fetchone()
            else:
                row = self._db.execute("SELECT seq, run_id FROM records WHERE record_id = ? AND seq = ?",
                                       (record_id, seq)).fetchone()
            if row is None:
                return None
            found_seq, run_id = int(row[0]), str(row[1])
            run = self._db.execute("SELECT status, merkle_root FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            leaves = self._db.execute("SELECT seq, record_hash FROM records WHERE run_id = ? ORDER BY seq",
                                      (run_id,)).fetchall()
        seqs = [int(s) for s, _ in leaves]
        return RunLeaves(record_id=record_id, seq=found_seq, run_id=run_id,
                         status="missing" if run is None else str(run[0]),
                         merkle_root=None if run is None or run[1] is None else str(run[1]),
                         index=seqs.index(found_seq), hashes=tuple(str(h) for _, h in leaves))

    def inclusion_proof(self, record_id: str, *, seq: int | None = None) -> InclusionProof:
        """The Merkle audit path from a record (the newest with that record_id, or the one at ``seq``) to its
        run's sealed root; LedgerError if there is no such record or its run is not sealed yet."""
        leaves = self.run_leaves(record_id, seq=seq)
        if leaves is None:
            at = "" if seq is None else f" at seq {seq}"
            raise LedgerError(f"ledger {self.path}: no record {record_id}{at}")
        if leaves.merkle_root is None:
            raise LedgerError(f"ledger {self.path}: record {record_id} (seq {leaves.seq}) is in run {leaves.run_id}, "
                              f"which is {leaves.status}, not sealed: it has no Merkle root yet")
        return prove(record_id, leaves.seq, leaves.run_id, leaves.hashes, leaves.index, leaves.merkle_root)

    # --- auditing --------------------------------------------------------------------------------------------

    def verify(self, *, trusted_ca_pem: str | None = None) -> VerifyReport:
        """Recompute every record hash, the chain, the chain head, and each sealed run's Merkle root and count,
        and re-check every timestamp token (against ``trusted_ca_pem`` if given, else the CA kept with it)."""
        problems: list[str] = []
        db = self._db
        count = 0
        per_run: dict[str, list[str]] = {}
        with self._snapshot("verifying"):
            runs = self.runs()
            known_runs = {r.run_id for r in runs}
            cur = db.execute("SELECT * FROM records ORDER BY seq")
            names = [d[0] for d in cur.description]
            last_seq, last_hash = 0, GENESIS
            for row in cur:
                count += 1
                col = dict(zip(names, row, strict=True))
                seq, rid, stored = col["seq"], col["record_id"], col["record_hash"]
                label = f"record {seq} ({rid})"
                problems.extend(self._check_record(col, label))
                if seq != last_seq + 1:
                    span = str(last_seq + 1) if seq == last_seq + 2 else f"{last_seq + 1}..{seq - 1}"
                    if seq > last_seq + 1:
                        problems.append(f"record {span}: missing (chain gap before record {seq})")
                    else:
                        problems.append(f"record {seq}: out of sequence after record {last_seq}")
                if col["prev_hash"] != last_hash:
                    target = "the genesis hash" if last_seq == 0 else f"record {last_seq}"
                    problems.append(f"record {seq}: prev_hash does not link to {target}")
                if col["run_id"] not in known_runs:
                    problems.append(f"{label}: run {col['run_id']} is not in the runs table")
                per_run.setdefault(str(col["run_id"]), []).append(str(stored))
                last_seq, last_hash = seq, str(stored)
            head_seq, head_hash = self._meta("head_seq"), self._meta("head_hash")
            if head_seq is None or head_hash is None:
                if count:
                    problems.append("chain head: the ledger has records but no recorded chain head")
            elif (int(head_seq), head_hash) != (last_seq, last_hash):
                problems.append(f"chain head: the ledger's newest record should be {head_seq} "
                                f"({head_hash[:16]}…), found {last_seq} ({last_hash[:16]}…)")
            for run in runs:
                rid_, status = run.run_id, run.status
                hashes = per_run.get(rid_, [])
                if status not in ("finished", "interrupted"):
                    continue  # still running (maybe right now, in another process): nothing sealed to check
                if run.record_count != len(hashes):
                    problems.append(f"run {rid_}: expected {run.record_count} records, found {len(hashes)}")
                if run.merkle_root != merkle_root(hashes):
                    problems.append(f"run {rid_}: merkle root mismatch (stored {run.merkle_root}, "
                                    f"recomputed {merkle_root(hashes)})")
            tokens = self.timestamps()
            problems.extend(self._check_timestamps(tokens, {r.run_id: r for r in runs}, per_run, trusted_ca_pem))
            integrity = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                problems.extend(f"sqlite integrity_check: {msg}" for msg in integrity)
        if len(problems) > MAX_PROBLEMS:
            extra = len(problems) - MAX_PROBLEMS
            problems = problems[:MAX_PROBLEMS] + [f"... and {extra} more problems"]
        return VerifyReport(ok=not problems, records=count, runs=len(runs), problems=problems,
                            timestamps=len(tokens))

    @staticmethod
    def _check_timestamps(tokens: Sequence[TimestampToken], runs: dict[str, RunInfo],
                          per_run: dict[str, list[str]], trusted_ca_pem: str | None = None) -> list[str]:
        """Each token re-checked (signature, TSA chain against the CA kept with it, imprint) against the root
        recomputed from the run's chained records."""
        if not tokens:
            return []
        from pipeline.timestamp import check_token  # only when there are tokens: it loads rfc3161-client

        problems: list[str] = []
        for t in tokens:
            label = f"run {t.run_id}: timestamp from {t.tsa_url}"
            run = runs.get(t.run_id)
            if run is None or run.status not in ("finished", "interrupted"):
                problems.append(f"{label}: the run is " + ("not in the runs table" if run is None else "not sealed"))
                continue
            root = merkle_root(per_run.get(t.run_id, []))
            check = (check_token(t.token, root, t.ca_pem) if trusted_ca_pem is None
                     else check_token(t.token, root, trusted_ca_pem, ca_name="the CA file given"))
            if not check.ok:
                problems.append(f"{label}: {check.problem}")
                continue
            if check.gen_time != t.gen_time:
                problems.append(f"{label}: gen_time column says {t.gen_time}, the token says {check.gen_time}")
            if check.hash_algorithm != t.hash_algorithm:
                problems.append(f"{label}: hash_algorithm column says {t.hash_algorithm}, the token says "
                                f"{check.hash_algorithm}")
        return problems

    @staticmethod
    def _check_record(col: dict[str, Any], label: str) -> list[str]:
        fmt = col.get("fmt")
        if fmt not in HASHED_COLUMNS:
            return [f"{label}: unknown record format {fmt!r}"]
        problems = []
        fields: dict[str, Any] = {}
        for name in HASHED_COLUMNS[fmt]:
            value = col.get(name)
            if name in JSON_FIELDS and value is not None:
                try:
                    parsed = json.loads(value)
                except (TypeError, ValueError):
                    return [f"{label}: column {name} is not valid JSON", f"{label}: stored hash does not match "
                            f"its contents"]
                if canonical_json(parsed) != value:
                    problems.append(f"{label}: column {name} is not canonical JSON (edited?)")
                value = parsed
            fields[name] = value
        try:
            ok = record_hash(str(col["prev_hash"]), fields) == col["record_hash"]
        except (TypeError, ValueError):  # prev_hash not hex, or a value JSON cannot hold
            ok = False
        if not ok:
            problems.append(f"{label}: stored hash does not match its contents")
        return problems

    def export_jsonl(self, fh: TextIO) -> int:
        """Write one JSON object per run (``"type": "run"``) then per record (``"type": "record"``, seq order,
        every stored column incl. ``fmt``, dict columns as objects); return the number of lines written."""
        n = 0
        with self._snapshot("exporting"):
            for run in self.runs():
                fh.write(json.dumps({"type": "run", **run.as_dict()}, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
            cur = self._db.execute("SELECT * FROM records ORDER BY seq")
            names = [d[0] for d in cur.description]
            for row in cur:
                doc = _record_dict(names, row, keep_fmt=True)
                fh.write(json.dumps({"type": "record", **doc}, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
        return n

    # --- the case book: sweeps, cases, their events and sightings ---------------------------------------------

    def begin_sweep(self, sweep_id: str, started_at: str, inputs: Sequence[str]) -> None:
        """Note a sweep's start (its cases, events and sightings name it)."""
        with self._write(f"beginning sweep {sweep_id}") as db:
            db.execute("INSERT INTO sweeps (sweep_id, started_at, inputs) VALUES (?, ?, ?)",
                       (sweep_id, started_at, canonical_json(list(inputs))))

    def finish_sweep(self, sweep_id: str, finished_at: str, counts: dict[str, int]) -> None:
        """Note a sweep's end and what it found (counts per change, fetch failures)."""
        with self._write(f"finishing sweep {sweep_id}") as db:
            db.execute("UPDATE sweeps SET finished_at = ?, counts = ? WHERE sweep_id = ?",
                       (finished_at, canonical_json(counts), sweep_id))

    def meet_copy(self, *, sweep_id: str, sighting: Sighting, record_id: str, verdict: str,
                  false_match_probability: float | None, suspect_phash: str, marketplace: str | None,
                  seller: str | None, listing_title: str | None) -> tuple[Case, Change]:
        """File one copy of our export ``record_id`` met by a sweep, in one transaction; return its case and
        what changed.

        The copy's case is the newest case of the same record seen on the same page; failing that, one with a
        sighting of the same bytes or image URL where no page tells them apart, or one marked removed (a relist
        under a new URL) unless its seller differs (``_find_case``). None: a new case opens with status "found" ("new"). One marked "removed":
        a "found" event flagged relisted is appended ("relisted"). Otherwise "still-up" (the status stays).
        A case opened (or relisted) earlier in the same sweep reports "new" (or "relisted") again, and so does
        one still "found" whose last event came from a sweep that never finished (its drafts may be missing). Either way
        the sighting is appended, and a case's unknown marketplace, seller or title is filled in.
        """
        with self._write(f"filing a copy of record {record_id}") as db:
            case_id = self._find_case(db, record_id, sighting, seller)
            if case_id is None:
                cur = db.execute(
                    "INSERT INTO cases (record_id, verdict, false_match_probability, suspect_phash, marketplace, "
                    "seller, listing_title, opened_at, opened_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record_id, verdict, false_match_probability, suspect_phash, marketplace, seller,
                     listing_title, sighting.seen_at, sweep_id))
                case_id = int(cur.lastrowid or 0)
                self._add_event(db, case_id, CaseEvent(sighting.seen_at, "found", "found by a sweep", sweep_id))
                change: Change = "new"
            else:
                before = self._load_case(db, case_id)
                assert before is not None
                db.execute("UPDATE cases SET marketplace = coalesce(marketplace, ?), seller = coalesce(seller, ?), "
                           "listing_title = coalesce(listing_title, ?) WHERE case_id = ?",
                           (marketplace, seller, listing_title, case_id))
                this_sweep = [e for e in before.events if e.sweep_id == sweep_id]  # met twice in one sweep
                if before.status == "removed":
                    removed = next(e.at for e in reversed(before.events) if e.status == "removed")
                    self._add_event(db, case_id, CaseEvent(
                        sighting.seen_at, "found", f"relisted: found again after it was marked removed on "
                        f"{removed[:10]}", sweep_id), relisted=True)
                    change = "relisted"
                elif any(e.relisted for e in this_sweep):
                    change = "relisted"
                elif before.opened_by == sweep_id:
                    change = "new"
                elif before.status == "found" and self._left_undone(db, before):
                    # found (or relisted) by a sweep that stopped before it wrote the case's drafts: act on it
                    # again, as the sweep that found it would have
                    change = "relisted" if before.events[-1].relisted else "new"
                else:
                    change = "still-up"
            db.execute("INSERT INTO sightings (case_id, sweep_id, seen_at, suspect_sha256, page_url, image_url) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (case_id, sighting.sweep_id, sighting.seen_at,
                                                     sighting.suspect_sha256, sighting.page_url, sighting.image_url))
            case = self._load_case(db, case_id)
        assert case is not None
        return case, change

    @staticmethod
    def _find_case(db: sqlite3.Connection, record_id: str, s: Sighting, seller: str | None) -> int | None:
        """The case this sighting belongs to (see meet_copy), or None for a new one.

        A case is one listing: a sighting on a known page joins the case of that page. Byte-identical copies
        (or the same image URL) join a case only where no page tells them apart — the sighting's page or the
        case's pages are unknown — or to relist a case marked removed (a relist often gets a new listing URL),
        unless both sellers are known and differ. So another seller's page with the same stolen bytes is a case
        of its own, with its own complaint.
        """
        if s.page_url is not None:
            row = db.execute(
                "SELECT c.case_id FROM cases c JOIN sightings g ON g.case_id = c.case_id WHERE c.record_id = ? "
                "AND g.page_url = ? ORDER BY c.case_id DESC LIMIT 1", (record_id, s.page_url)).fetchone()
            if row is not None:
                return int(row[0])
        rows = db.execute(
            "SELECT DISTINCT c.case_id, c.seller FROM cases c JOIN sightings g ON g.case_id = c.case_id "
            "WHERE c.record_id = ? AND (g.suspect_sha256 = ? OR g.image_url = ?) ORDER BY c.case_id DESC",
            (record_id, s.suspect_sha256, s.image_url)).fetchall()
        for case_id, case_seller in rows:
            pages = {p for (p,) in db.execute("SELECT page_url FROM sightings WHERE case_id = ? AND page_url "
                                               "IS NOT NULL", (case_id,))}
            if s.page_url is None or not pages:
                return int(case_id)
            status = db.execute("SELECT status FROM case_events WHERE case_id = ? ORDER BY event_id DESC LIMIT 1",
                                (case_id,)).fetchone()
            other_seller = seller is not None and case_seller is not None and \
                seller.casefold() != str(case_seller).casefold()
            if status is not None and status[0] == "removed" and not other_seller:
                return int(case_id)
        return None

    @staticmethod
    def _left_undone(db: sqlite3.Connection, case: Case) -> bool:
        """True when the case's last event came from a sweep that never finished (interrupted or crashed, so
        its drafts may be missing) and no finished sweep has met the case since."""
        last = case.events[-1].sweep_id if case.events else None
        if last is None:
            return False
        since = [g.sweep_id for g in case.sightings]
        since = since[since.index(last):] if last in since else since
        # only this case's sweeps are looked up, not every sweep the ledger ever finished
        asked = sorted({sw for sw in (last, *since) if sw is not None})
        marks = ", ".join("?" * len(asked))
        finished = {str(sw) for (sw,) in db.execute(
            f"SELECT sweep_id FROM sweeps WHERE finished_at IS NOT NULL AND sweep_id IN ({marks})", asked)}
        return not finished

    @staticmethod
    def _add_event(db: sqlite3.Connection, case_id: int, e: CaseEvent, *, relisted: bool = False) -> None:
        db.execute("INSERT INTO case_events (case_id, at, status, note, sweep_id, relisted) VALUES (?, ?, ?, ?, ?, ?)",
                   (case_id, e.at, e.status, e.note, e.sweep_id, int(relisted)))

    def mark_case(self, case_id: int, status: CaseStatus, note: str = "", *, at: str | None = None) -> Case:
        """Append a status change (with a dated note) to a case's history; LedgerError if there is no such case."""
        if status not in CASE_STATUSES:
            raise LedgerError(f"unknown case status {status!r} (known: {', '.join(CASE_STATUSES)})")
        with self._write(f"marking case {case_id} {status}") as db:
            if db.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
                raise LedgerError(f"ledger {self.path}: no case {case_id} (catalogmark cases list shows them)")
            self._add_event(db, case_id, CaseEvent(at or now_iso(), status, note))
            case = self._load_case(db, case_id)
        assert case is not None
        return case

    def get_case(self, case_id: int) -> Case | None:
        """One case with its whole history, or None."""
        with self._snapshot(f"reading case {case_id}") as db:
            return self._load_case(db, case_id)

    def cases(self, *, status: str | None = None, marketplace: str | None = None, seller: str | None = None,
              record_id: str | None = None, relisted: bool | None = None) -> list[Case]:
        """Every case (oldest first), optionally only those with that current status, marketplace, seller (case-
        insensitive), record or relist flag."""
        with self._snapshot("reading cases") as db:
            ids = [int(r[0]) for r in db.execute("SELECT case_id FROM cases ORDER BY case_id")]
            found = [c for c in (self._load_case(db, i) for i in ids) if c is not None]
        def keep(c: Case) -> bool:
            return ((status is None or c.status == status)
                    and (marketplace is None or (c.marketplace or "").casefold() == marketplace.casefold())
                    and (seller is None or (c.seller or "").casefold() == seller.casefold())
                    and (record_id is None or c.record_id == record_id)
                    and (relisted is None or c.relisted == relisted))
        return [c for c in found if keep(c)]

    @staticmethod
    def _load_case(db: sqlite3.Connection, case_id: int) -> Case | None:
        row = db.execute("SELECT case_id, record_id, verdict, false_match_probability, suspect_phash, marketplace, "
                         "seller, listing_title, opened_at, opened_by FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            return None
        events = tuple(CaseEvent(at=str(at), status=st, note=str(note), sweep_id=sw, relisted=bool(rl))
                       for at, st, note, sw, rl in db.execute(
            "SELECT at, status, note, sweep_id, relisted FROM case_events WHERE case_id = ? ORDER BY event_id",
            (case_id,)))
        sightings = tuple(Sighting(sweep_id=str(sw), seen_at=str(at), suspect_sha256=str(sha), page_url=page,
                                   image_url=img) for sw, at, sha, page, img in db.execute(
            "SELECT sweep_id, seen_at, suspect_sha256, page_url, image_url FROM sightings WHERE case_id = ? "
            "ORDER BY sighting_id", (case_id,)))
        last = sightings[-1] if sightings else None
        seen = [s.seen_at for s in sightings] or [str(row[8])]
        return Case(case_id=int(row[0]), record_id=str(row[1]), verdict=str(row[2]),
                    false_match_probability=None if row[3] is None else float(row[3]),
                    suspect_sha256=last.suspect_sha256 if last else "", suspect_phash=str(row[4]),
                    page_url=last.page_url if last else None, image_url=last.image_url if last else None,
                    marketplace=row[5], seller=row[6], listing_title=row[7], first_seen=min(seen),
                    last_seen=max(seen), status=events[-1].status if events else "found",
                    relisted=any(e.relisted for e in events), opened_by=row[9], events=events, sightings=sightings)

    def stats(self) -> dict[str, Any]:
        """A summary: counts, presets histogram, SKUs, first/last record time, file size, schema version."""
        db = self._db
        with self._snapshot("summarising"):
            records = int(db.execute("SELECT count(*) FROM records").fetchone()[0])
            statuses = dict(db.execute("SELECT status, count(*) FROM runs GROUP BY status ORDER BY status"))
            presets = dict(db.execute("SELECT preset, count(*) FROM records GROUP BY preset ORDER BY preset"))
            skus = int(db.execute("SELECT count(DISTINCT sku) FROM records").fetchone()[0])
            first, last = db.execute("SELECT min(created_at), max(created_at) FROM records").fetchone()
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            traces = int(db.execute("SELECT count(*) FROM traces").fetchone()[0])
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(str(self.path) + suffix)
        return {
            "path": str(self.path),
            "schema_version": version,
            "records": records,
            "runs": sum(statuses.values()),
            "runs_by_status": statuses,
            "presets": presets,
            "skus": skus,
            "first_record_at": first,
            "last_record_at": last,
            "chain_head": self._meta("head_hash") or GENESIS,
            "trace_entries": traces,
            "file_bytes": size,
        }


def _record_dict(names: Sequence[str], row: Sequence[Any], *, keep_fmt: bool = False) -> dict[str, Any]:
    doc = dict(zip(names, row, strict=True))
    if not keep_fmt:
        doc.pop("fmt", None)
    for name in JSON_FIELDS:
        doc[name] = _loads_or_raw(doc.get(name))
    return doc


def _stored_record(names: Sequence[str], row: Sequence[Any]) -> StoredRecord:
    doc = _record_dict(names, row, keep_fmt=True)
    return StoredRecord(record=Record(**{n: doc[n] for n in RECORD_FIELDS}), seq=int(doc["seq"]),
                        run_id=str(doc["run_id"]), prev_hash=str(doc["prev_hash"]),
                        record_hash=str(doc["record_hash"]), fmt=doc["fmt"])


def _loads_or_raw(text: Any) -> Any:
    """Parsed JSON, or the raw value if it is not JSON (only after tampering; verify() reports it)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


_RUN_COLUMNS: tuple[str, ...] = ("run_id", "started_at", "finished_at", "status", "merkle_root", "record_count",
                                 "info", "counts", "writer_host", "writer_pid")


def _run_info(description: Any, row: Sequence[Any]) -> RunInfo:
    doc = {d[0]: v for d, v in zip(description, row, strict=True)}
    for name in ("info", "counts"):
        doc[name] = _loads_or_raw(doc.get(name))
    return RunInfo(**{name: doc[name] for name in _RUN_COLUMNS})
