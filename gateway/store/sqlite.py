"""SQLite store (WAL): one gateway per database file.

All SQL runs on one dedicated thread that owns the connection; each public coroutine hands one
function to that thread and that function is one transaction. This keeps the event loop free, makes
every store operation atomic, and lets the relay group many outcomes into one commit. Every statement
step on that thread hands the interpreter lock to and from the event loop's thread, so the relay's hot
transactions are a few statements whatever their row count (``_lease``).

One gateway per file is enforced with an exclusive lock on ``<db>.lock``, taken by ``shenguan serve``:
the recovery step at start-up releases *every* in-flight lease, which is only right when no other
process holds any. The gateway's intake process (pollers, deadline tracker) opens the file too, without
the lock (``open(exclusive=False)``, as the CLI's commands do): it never leases.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.audit import GENESIS, AuditAlgorithmError, AuditEntry, canonical, entry_hash, hex_digest
from gateway.dedup import Decision, LedgerEntry, decide
from gateway.store.base import (
    DeliveryState,
    IngestResult,
    LeasedDelivery,
    MessageQuery,
    NotFoundError,
    Outcome,
    Rejection,
    Route,
    Router,
    idempotency_key,
)
from gateway.store.common import (
    DELIVERY_COLUMNS,
    MESSAGE_COLUMNS,
    Migration,
    PaperStateError,
    StoreVersionError,
    message_filters,
    operator_target,
    replay_conflict,
)
from gateway.store.common import by_actor as _by
from gateway.store.common import fact as _fact
from gateway.store.common import parse_time as _parse_time
from gateway.store.common import route_names as _route_names
from gateway.store.deadlines import (
    DEADLINE_COLUMNS,
    FEED_KINDS,
    OPENING_COLUMNS,
    Closing,
    Opening,
    closing_filter,
    closing_outcome,
    deadline_dict,
    opening_values,
)
from schemas import Classification, Envelope

__all__ = ["SCHEMA", "PaperStateError", "SQLiteStore", "StoreLockedError"]

T = TypeVar("T")

# The current schema, for a new database. A change to an existing table also needs a numbered migration
# below (new tables and indexes need none: every open runs SCHEMA, which creates what is missing).
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    classification TEXT NOT NULL,
    region TEXT,
    correlation_id TEXT NOT NULL,
    business_time TEXT NOT NULL,
    received_at REAL NOT NULL,
    routed INTEGER NOT NULL,
    envelope TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_fact ON messages (type, business_key);
CREATE INDEX IF NOT EXISTS messages_correlation ON messages (correlation_id);
CREATE INDEX IF NOT EXISTS messages_unrouted ON messages (routed) WHERE routed = 0;
CREATE INDEX IF NOT EXISTS messages_business_key ON messages (business_key);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);
CREATE TABLE IF NOT EXISTS ledger (
    type TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    business_time TEXT NOT NULL,
    message_id TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (type, business_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    verdict TEXT NOT NULL,
    original_message_id TEXT,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS suppressions_fact ON suppressions (type, business_key);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id),
    destination TEXT NOT NULL,
    channel TEXT NOT NULL,
    fact_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires_at REAL,
    verify_first INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_kind TEXT,
    remote_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivered_at REAL,
    printed_at REAL,
    attempt_offset INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (destination, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_fact ON deliveries (destination, fact_key, revision);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries (message_id);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    error_kind TEXT,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    position TEXT,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mapping_versions (
    version INTEGER PRIMARY KEY,
    imported_at REAL NOT NULL,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS mapping_rows (
    version INTEGER NOT NULL REFERENCES mapping_versions (version),
    row_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mapping_rows_version ON mapping_rows (version);
CREATE TABLE IF NOT EXISTS paper_events (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS paper_events_delivery ON paper_events (delivery_id);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT PRIMARY KEY,
    cursor TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (scope, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ingest_nonces_expiry ON ingest_nonces (expires_at);
CREATE TABLE IF NOT EXISTS alerts_fired (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    fired_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deadlines (
    id INTEGER PRIMARY KEY,
    correlation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,
    started_on TEXT NOT NULL,
    working_days INTEGER NOT NULL,
    due_on TEXT NOT NULL,
    estimated INTEGER NOT NULL,
    basis TEXT NOT NULL,
    region TEXT,
    item_code TEXT,
    item_name TEXT,
    department_name TEXT,
    department_code TEXT,
    delivery_id INTEGER REFERENCES deliveries (id),
    opened_by TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_by TEXT,
    closed_at REAL,
    closed_on TEXT,
    escalated_at REAL,
    detail TEXT NOT NULL DEFAULT '{}',
    UNIQUE (correlation_id, kind, subject)
);
CREATE INDEX IF NOT EXISTS deadlines_open ON deadlines (due_on) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (due_on);
CREATE INDEX IF NOT EXISTS deadlines_subject ON deadlines (kind, subject);
CREATE INDEX IF NOT EXISTS deadlines_delivery ON deadlines (delivery_id) WHERE delivery_id IS NOT NULL;
"""

_OPEN = ("pending", "in_flight", "retry_wait")


def _add_column(table: str, column: str, declaration: str) -> Callable[[sqlite3.Connection], None]:
    """A migration step adding a column unless it is there (stores from before versioning may have it)."""

    def apply(conn: sqlite3.Connection) -> None:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    return apply


# Numbered changes to existing tables, oldest first; version 1 is the first released schema. Never edit a
# released one: add the next (and change SCHEMA to match, which ``test_store_sqlite`` checks).
MIGRATIONS: list[Migration[Callable[[sqlite3.Connection], None]]] = [
    Migration(2, "deliveries.printed_at: paper items rendered for printing", _add_column("deliveries", "printed_at", "REAL")),
    # Attempts made before an operator gave the delivery a fresh budget: attempt rows are numbered
    # attempt_offset + attempts, so a retry never overwrites the record of earlier attempts.
    Migration(
        3,
        "deliveries.attempt_offset: attempt numbers kept across operator retries",
        _add_column("deliveries", "attempt_offset", "INTEGER NOT NULL DEFAULT 0"),
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1].version


def _migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the database to ``SCHEMA_VERSION``: numbered migrations first (one transaction), then SCHEMA.

    A new database gets SCHEMA as is. A store written by a newer shenguan is refused rather than misread.
    Stores from before ``meta.schema_version`` was kept count as version 1.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'").fetchone()
        has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if has_meta else None
        version = int(row[0]) if row else (1 if exists else SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise StoreVersionError(where, version, SCHEMA_VERSION)
        if exists:
            for m in MIGRATIONS:
                if m.version > version:
                    m.apply(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    conn.executescript(SCHEMA)  # new tables and indexes; runs outside a transaction (executescript commits)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )


class StoreLockedError(RuntimeError):
    """Another process has this SQLite database open for serving."""


class SQLiteStore:
    """The default store: one file, WAL journal, ``synchronous=FULL`` unless told otherwise."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        clock: Callable[[], float] = time.time,
        audit_algorithm: str | None = None,
        audit_mode: str = "metadata",
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._clock = clock
        if audit_algorithm is not None:
            hex_digest(b"", audit_algorithm)  # unknown algorithm: refuse before opening anything
        self._wanted_algorithm = audit_algorithm
        self.audit_algorithm = audit_algorithm or "sha256"  # the chain's own, read at open
        self._audit_full = audit_mode == "full"
        self._audit_batch: list[tuple[float, str, str, str]] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    # -- audit chain (全程留痕) -------------------------------------------------------------------------

    def _audit(self, conn: sqlite3.Connection, kind: str, subject: object, **detail: Any) -> None:
        """Queue one entry for the chain; ``_tx`` appends the transaction's entries just before it commits.

        Batching matters: the chain tip is read once per transaction instead of once per entry, and the
        rows go in with one ``executemany`` — an ingest page of 500 records is 500+ entries.
        """
        entry = (self._clock(), kind, str(subject), canonical({k: v for k, v in detail.items() if v is not None}))
        if self._audit_batch is None:  # outside _tx (not expected): append at once, same transaction as the caller
            self._append_audit(conn, [entry])
        else:
            self._audit_batch.append(entry)

    def _append_audit(self, conn: sqlite3.Connection, entries: Sequence[tuple[float, str, str, str]]) -> None:
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (row[0], row[1]) if row else (0, GENESIS)
        if seq == 0 and entries:
            # The first entry fixes the chain's algorithm; recorded beside it so verify uses the same one.
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('audit_algorithm', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (self.audit_algorithm,),
            )
        rows = []
        for at, kind, subject, text in entries:
            seq += 1
            digest = entry_hash(prev, seq, at, kind, subject, text, algorithm=self.audit_algorithm)
            rows.append((seq, at, kind, subject, text, prev, digest))
            prev = digest
        _insert_rows(conn, "INSERT INTO audit (seq, at, kind, subject, detail, prev_hash, hash)", rows)

    def _audit_payload(self, env: Envelope) -> dict[str, Any]:
        """In ``full`` audit mode, the message's canonical payload; nothing in ``metadata`` mode (the default)."""
        return {"payload": env.data} if self._audit_full else {}

    def _chain_algorithm(self, conn: sqlite3.Connection) -> None:
        """Read the chain's algorithm; refuse a configured one that differs from a chain already started."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'audit_algorithm'").fetchone()
        started = conn.execute("SELECT 1 FROM audit LIMIT 1").fetchone() is not None
        chain = row[0] if row else ("sha256" if started else None)  # chains from before the choice are SHA-256
        if chain is None:
            return  # no chain yet: the first entry will use the configured algorithm
        if self._wanted_algorithm is not None and chain != self._wanted_algorithm and started:
            raise AuditAlgorithmError(
                f"the audit chain in {self.path} is hashed with {chain}, the configuration asks for "
                f"{self._wanted_algorithm}: a chain cannot mix algorithms (set [audit] algorithm = \"{chain}\", "
                "or start a new store)"
            )
        self.audit_algorithm = chain if started else (self._wanted_algorithm or chain)

    async def audit_entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """A page of the chain in order (``verify`` streams it page by page)."""

        def read(conn: sqlite3.Connection) -> list[AuditEntry]:
            cur = conn.execute(
                "SELECT seq, at, kind, subject, detail, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            return [AuditEntry(*row) for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    # -- plumbing ---------------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _tx(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        self._audit_batch = []
        try:
            result = fn(conn, *args)
            if self._audit_batch:
                self._append_audit(conn, self._audit_batch)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._audit_batch = None
        conn.execute("COMMIT")
        return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    async def open(self, *, exclusive: bool = True) -> None:
        """Open (creating the schema if needed). ``exclusive`` takes the one-process lock."""
        if self._executor is not None:
            return
        if exclusive:
            self._take_lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shenguan-sqlite")
        try:
            await self._run(self._open_sync)
        except BaseException:  # e.g. an audit algorithm that contradicts the chain: release lock and thread
            await self.close()
            raise

    def _take_lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(
                f"{self.path} is in use by another shenguan process; one process serves an SQLite store "
                "(use PostgreSQL for several instances)"
            ) from None
        self._lock_fd = fd

    def _open_sync(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        try:
            _migrate(conn, str(self.path))
        except BaseException:
            conn.close()
            raise
        # Alerts start from the chain's tip when first enabled: history from before is not news.
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) SELECT 'alerts_scanned', CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM audit"
        )
        try:
            self._chain_algorithm(conn)
        except AuditAlgorithmError:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)
        self._executor = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- sources ----------------------------------------------------------------------------------

    async def get_cursor(self, source: str) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT cursor FROM cursors WHERE source = ?", (source,)).fetchone()
            return row[0] if row else None

        return await self._run(lambda: read(self._connection()))

    async def claim_source(self, source: str, owner: str, ttl_s: float) -> bool:
        """Always True: the one process that holds the file lock owns every source (see ``PostgresStore``)."""
        return True

    async def release_source(self, source: str, owner: str) -> None:
        """Nothing to release: ownership is the file lock, released at close."""

    async def take_over_expired(self, *, owner: str, verify: Sequence[str], uncertain: Sequence[str]) -> int:
        """0: every lease in an SQLite store is this process's own, live until ``recover`` at the next start."""
        return 0

    async def chain_audit(self) -> int:
        """0: entries are chained in the transaction that writes them (one writer needs no queue)."""
        return 0

    async def ingest_page(
        self,
        source: str,
        envelopes: Sequence[Envelope],
        rejections: Sequence[Rejection],
        cursor: str | None,
        router: Router,
        *,
        owner: str | None = None,
    ) -> IngestResult:
        """``owner`` is the source's owner for multi-instance stores; one process owns every source here."""
        return await self._run(self._tx, self._ingest, source, envelopes, rejections, cursor, router)

    @staticmethod
    def ledger_decision(conn: sqlite3.Connection, env: Envelope) -> Decision:
        """The dedup decision for one envelope: its fact's ledger entry (one primary-key lookup) and ``decide``.

        What ``_ingest`` does per envelope, inside its transaction; a method of its own so that the benchmark
        of the decision at 1,000,000 facts (``benchmarks/ledger.py``) times exactly this code.
        """
        row = conn.execute(
            "SELECT revision, content_hash, business_time, message_id FROM ledger WHERE type = ? AND business_key = ?",
            (env.type, env.business_key),
        ).fetchone()
        entry = LedgerEntry(row[0], row[1], _parse_time(row[2]), row[3]) if row else None
        return decide(entry, revision=env.revision, content_hash=env.content_hash, business_time=env.time)

    def _ingest(
        self,
        conn: sqlite3.Connection,
        source: str,
        envelopes: Sequence[Envelope],
        rejections: Sequence[Rejection],
        cursor: str | None,
        router: Router,
    ) -> IngestResult:
        now = self._clock()
        result = IngestResult()
        for env in envelopes:
            decision = self.ledger_decision(conn, env)
            if not decision.relay:
                conn.execute(
                    "INSERT INTO suppressions (message_id, type, business_key, revision, content_hash, source, "
                    "verdict, original_message_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        env.id,
                        env.type,
                        env.business_key,
                        env.revision,
                        env.content_hash,
                        env.source,
                        decision.verdict.value,
                        decision.original_message_id,
                        now,
                    ),
                )
                self._audit(
                    conn,
                    "message.suppressed",
                    env.id,
                    **_fact(env),
                    verdict=decision.verdict.value,
                    original=decision.original_message_id,
                )
                result.record_suppressed(env, decision.verdict.value, decision.original_message_id)
                continue
            if decision.revision != env.revision:
                env = env.model_copy(update={"revision": decision.revision})
            routes = list(router(env))
            conn.execute(
                "INSERT INTO messages (id, type, source, business_key, revision, content_hash, classification, region, "
                "correlation_id, business_time, received_at, routed, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    env.id,
                    env.type,
                    env.source,
                    env.business_key,
                    env.revision,
                    env.content_hash,
                    env.classification.value,
                    env.region,
                    env.correlation_id,
                    env.time.isoformat(),
                    now,
                    1 if routes else 0,
                    env.model_dump_json(),
                ),
            )
            conn.execute(
                "INSERT INTO ledger (type, business_key, revision, content_hash, business_time, message_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (type, business_key) DO UPDATE SET revision = excluded.revision, "
                "content_hash = excluded.content_hash, business_time = excluded.business_time, "
                "message_id = excluded.message_id, updated_at = excluded.updated_at",
                (env.type, env.business_key, env.revision, env.content_hash, env.time.isoformat(), env.id, now),
            )
            self._insert_deliveries(conn, env, routes, now)
            self._audit(
                conn,
                "message.accepted",
                env.id,
                **_fact(env),
                verdict=decision.verdict.value,
                routes=_route_names(routes),
                **self._audit_payload(env),
            )
            result.record_accepted(env, decision.verdict.value, routed=bool(routes))
        for rej in rejections:
            cur = conn.execute(
                "INSERT INTO rejected (source, position, reason, raw, received_at) VALUES (?, ?, ?, ?, ?)",
                (rej.source, rej.position, rej.reason, rej.raw, now),
            )
            self._audit(conn, "message.rejected", f"rejected:{cur.lastrowid}", source=rej.source, reason=rej.reason)
        result.rejected = len(rejections)
        if cursor is not None:
            conn.execute(
                "INSERT INTO cursors (source, cursor, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                (source, cursor, now),
            )
        return result

    @staticmethod
    def _insert_deliveries(conn: sqlite3.Connection, env: Envelope, routes: Sequence[Any], now: float) -> None:
        fact_key = f"{env.type}|{env.business_key}"
        for route in routes:
            paper = route.channel == "paper" or env.classification == Classification.secret
            state = DeliveryState.paper_pending if paper else DeliveryState.pending
            conn.execute(
                "INSERT INTO deliveries (message_id, destination, channel, fact_key, revision, idempotency_key, state, "
                "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    env.id,
                    route.destination,
                    "paper" if paper else route.channel,
                    fact_key,
                    env.revision,
                    idempotency_key(route.destination, env),
                    state.value,
                    now,
                    now,
                    now,
                ),
            )

    # -- relay ------------------------------------------------------------------------------------

    async def recover(self, *, owner: str, verify: Sequence[str], uncertain: Sequence[str]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = self._clock()
            marks = ",".join("?" * len(uncertain)) or "NULL"
            vmarks = ",".join("?" * len(verify)) or "NULL"
            cur = conn.execute(
                f"UPDATE deliveries SET state = CASE WHEN destination IN ({marks}) THEN 'uncertain' ELSE 'pending' END, "
                f"verify_first = CASE WHEN destination IN ({vmarks}) THEN 1 ELSE verify_first END, "
                "lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = ?, updated_at = ?, "
                "last_error = 'lease released at recovery: the previous process stopped mid-attempt', "
                "last_error_kind = 'outcome_unknown' WHERE state = 'in_flight'",
                (*uncertain, *verify, now, now),
            )
            if cur.rowcount:
                self._audit(conn, "deliveries.recovered", owner, count=cur.rowcount)
            return cur.rowcount

        return await self._run(self._tx, run)

    async def lease_due(self, *, owner: str, destination: str, limit: int, lease_s: float) -> list[LeasedDelivery]:
        return await self._run(self._tx, self._lease, owner, destination, limit, lease_s)

    def _lease(
        self, conn: sqlite3.Connection, owner: str, destination: str, limit: int, lease_s: float
    ) -> list[LeasedDelivery]:
        """Three statements whatever the number of rows: the due ids, the lease, the rows with their envelopes.

        Why so few: this runs on the store's thread while the relay's requests keep the event loop's thread
        busy, and every statement step hands the interpreter lock back and forth between them — each handoff
        can wait out a whole switch interval (5 ms). A statement per row made a lease of 30 take 20–40 ms
        and left the relay's workers idle meanwhile (docs/benchmarks.md), so the rows travel as one JSON
        array per statement instead.
        """
        now = self._clock()
        # A later revision waits while an earlier one of the same fact is still open for this
        # destination: receivers must see revisions in order, or a revision would look like a
        # second record.
        due = conn.execute(
            "SELECT json_group_array(id) FROM ("
            "  SELECT d.id FROM deliveries d WHERE d.destination = ? AND d.state IN ('pending', 'retry_wait') "
            "  AND d.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.destination = d.destination "
            "  AND o.fact_key = d.fact_key AND o.revision < d.revision AND o.state IN ('pending', 'in_flight', 'retry_wait')) "
            "  ORDER BY d.next_attempt_at, d.id LIMIT ?)",
            (destination, now, limit),
        ).fetchone()[0]
        if due == "[]":
            return []
        conn.execute(
            "UPDATE deliveries SET state = 'in_flight', lease_owner = ?, lease_expires_at = ?, "
            "attempts = attempts + 1, updated_at = ? WHERE id IN (SELECT value FROM json_each(?))",
            (owner, now + lease_s, now, due),
        )
        leased = conn.execute(
            "SELECT json_group_array(json_array(d.id, d.message_id, d.destination, d.idempotency_key, d.attempts, "
            "d.verify_first, d.created_at, m.envelope, m.type)) FROM deliveries d JOIN messages m ON m.id = d.message_id "
            "WHERE d.id IN (SELECT value FROM json_each(?))",
            (due,),
        ).fetchone()[0]
        return sorted(
            (
                LeasedDelivery(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[7], r[8], accepted_at=r[6])
                for r in json.loads(leased)
            ),
            key=lambda row: row.id,
        )

    async def complete(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        return await self._run(self._tx, self._complete, owner, outcomes)

    def _complete(self, conn: sqlite3.Connection, owner: str, outcomes: Sequence[Outcome]) -> int:
        """Record outcomes whose lease this owner still holds: a handful of statements for any number (see ``_lease``)."""
        now = self._clock()
        by_id: dict[int, Outcome] = {}
        for o in outcomes:
            by_id.setdefault(o.delivery_id, o)  # one outcome per lease; a second would find it no longer in flight
        held = conn.execute(
            "SELECT json_group_object(id, json_array(attempts + attempt_offset, destination, message_id)) "
            "FROM deliveries WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ? AND state = 'in_flight'",
            (json.dumps(list(by_id)), owner),
        ).fetchone()[0]
        # Leases lost meanwhile (expired and taken over) are left out: their holder records the outcome.
        still = json.loads(held)
        applied = [(o, *still[str(o.delivery_id)]) for o in by_id.values() if str(o.delivery_id) in still]
        updates, attempts = [], []
        for o, attempt, destination, message_id in applied:
            delivered_at = now if o.state in (DeliveryState.delivered, DeliveryState.paper_delivered) else None
            state = o.state.value
            updates.append(
                (o.delivery_id, state, o.next_attempt_at, int(o.verify_first), o.error, o.error_kind, o.remote_id, delivered_at)
            )
            attempts.append((o.delivery_id, attempt, o.started_at, now, state, o.error_kind, o.error))
            self._audit(
                conn,
                f"delivery.{state}",
                o.delivery_id,
                attempt=attempt,
                error_kind=o.error_kind,
                destination=destination,
                message=message_id,
            )
        for chunk in _chunks(updates):
            conn.execute(
                "UPDATE deliveries SET state = v.column2, lease_owner = NULL, lease_expires_at = NULL, "
                "next_attempt_at = COALESCE(v.column3, deliveries.next_attempt_at), verify_first = v.column4, "
                "last_error = v.column5, last_error_kind = v.column6, remote_id = COALESCE(v.column7, deliveries.remote_id), "
                "delivered_at = COALESCE(v.column8, deliveries.delivered_at), updated_at = ? "
                f"FROM (VALUES {_placeholders(len(chunk), 8)}) AS v WHERE deliveries.id = v.column1",
                (now, *(value for row in chunk for value in row)),
            )
        _insert_rows(
            conn,
            "INSERT OR REPLACE INTO attempts (delivery_id, attempt, started_at, finished_at, outcome, error_kind, error)",
            attempts,
        )
        return len(applied)

    # -- paper queue -------------------------------------------------------------------------------

    async def paper_deliveries(
        self, *, state: str | None = None, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Paper deliveries (pending or delivered) in id order, a page at a time, with their envelopes."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = (
                "SELECT d.id, d.message_id, d.destination, d.channel, d.state, d.printed_at, d.created_at, "
                "d.delivered_at, d.last_error, d.idempotency_key, m.envelope, "
                "EXISTS (SELECT 1 FROM paper_events e WHERE e.delivery_id = d.id AND e.kind = 'electronic_success') "
                "AS flagged FROM deliveries d JOIN messages m ON m.id = d.message_id "
                "WHERE d.state IN ('paper_pending', 'paper_delivered') AND d.id > ?"
            )
            args: list[Any] = [after_id]
            if state is not None:
                sql += " AND d.state = ?"
                args.append(state)
            if ids is not None:
                sql += f" AND d.id IN ({','.join('?' * len(ids)) or 'NULL'})"
                args.extend(ids)
            cur = conn.execute(sql + " ORDER BY d.id LIMIT ?", (*args, limit))
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    async def paper_events(self, delivery_id: int) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute(
                "SELECT kind, at, detail FROM paper_events WHERE delivery_id = ? ORDER BY id", (delivery_id,)
            )
            return [{"kind": k, "at": at, "detail": json.loads(d)} for k, at, d in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    async def mark_printed(self, ids: Sequence[int], *, actor: str | None = None) -> int:
        """Record that these paper items were rendered for printing: electronic delivery is over for them."""

        def run(conn: sqlite3.Connection) -> int:
            now = self._clock()
            count = 0
            for delivery_id in ids:
                cur = conn.execute(
                    "UPDATE deliveries SET printed_at = ?, updated_at = ? "
                    "WHERE id = ? AND state = 'paper_pending' AND printed_at IS NULL",
                    (now, now, delivery_id),
                )
                if cur.rowcount:
                    count += 1
                    self._paper_event(conn, delivery_id, "printed", _by(actor), now)
            return count

        return await self._run(self._tx, run)

    async def confirm_paper(self, delivery_id: int, receipt: dict[str, Any], signed_at: float) -> None:
        """Record the signed 送达回证: the delivery becomes ``paper_delivered`` as of ``signed_at``."""

        def run(conn: sqlite3.Connection) -> None:
            self._paper_state(conn, delivery_id, "paper_pending", "confirm")
            now = self._clock()
            conn.execute(
                "UPDATE deliveries SET state = 'paper_delivered', delivered_at = ?, updated_at = ?, "
                "printed_at = COALESCE(printed_at, ?) WHERE id = ?",
                (signed_at, now, now, delivery_id),
            )
            self._paper_event(conn, delivery_id, "confirmed", receipt, now)

        await self._run(self._tx, run)

    async def recall_paper(self, delivery_id: int, *, actor: str | None = None) -> None:
        """Return an unprinted fallback item to electronic delivery with a fresh retry budget."""

        def run(conn: sqlite3.Connection) -> None:
            row = self._paper_state(conn, delivery_id, "paper_pending", "recall")
            if row["printed_at"] is not None:
                raise PaperStateError(f"delivery {delivery_id} was already printed: recall is only possible before")
            if row["channel"] == "paper":
                raise PaperStateError(
                    f"delivery {delivery_id} is paper by route or classification (涉密), not a fallback: "
                    "it cannot go electronic"
                )
            now = self._clock()
            conn.execute(
                "UPDATE deliveries SET state = 'pending', attempt_offset = attempt_offset + attempts, attempts = 0, "
                "next_attempt_at = ?, updated_at = ? WHERE id = ?",
                (now, now, delivery_id),
            )
            self._paper_event(conn, delivery_id, "recalled", _by(actor), now)

        await self._run(self._tx, run)

    async def return_paper(self, delivery_id: int, reason: str, *, actor: str | None = None) -> None:
        """Record that the item could not be served; it stays open (and may be printed again)."""

        def run(conn: sqlite3.Connection) -> None:
            self._paper_state(conn, delivery_id, "paper_pending", "return")
            now = self._clock()
            conn.execute(
                "UPDATE deliveries SET printed_at = NULL, last_error = ?, updated_at = ? WHERE id = ?",
                (f"paper returned: {reason}", now, delivery_id),
            )
            self._paper_event(conn, delivery_id, "returned", {"reason": reason, **_by(actor)}, now)

        await self._run(self._tx, run)

    async def flag_paper(self, delivery_id: int, detail: dict[str, Any]) -> bool:
        """Flag a paper item whose electronic channel turned out to hold the fact after all.

        It is not closed automatically: it may already be on its way on paper, and only an operator can
        tell. Returns False when it was already flagged (the alert fires once).
        """

        def run(conn: sqlite3.Connection) -> bool:
            self._paper_state(conn, delivery_id, "paper_pending", "flag")
            seen = conn.execute(
                "SELECT 1 FROM paper_events WHERE delivery_id = ? AND kind = 'electronic_success'", (delivery_id,)
            ).fetchone()
            if seen:
                return False
            self._paper_event(conn, delivery_id, "electronic_success", detail, self._clock())
            return True

        return await self._run(self._tx, run)

    @staticmethod
    def _paper_state(conn: sqlite3.Connection, delivery_id: int, wanted: str, action: str) -> dict[str, Any]:
        cur = conn.execute("SELECT state, channel, printed_at FROM deliveries WHERE id = ?", (delivery_id,))
        row = cur.fetchone()
        if row is None:
            raise PaperStateError(f"there is no delivery {delivery_id}")
        if row[0] != wanted:
            raise PaperStateError(f"cannot {action} delivery {delivery_id}: it is {row[0]}, not {wanted}")
        return {"state": row[0], "channel": row[1], "printed_at": row[2]}

    def _paper_event(
        self, conn: sqlite3.Connection, delivery_id: int, kind: str, detail: dict[str, Any], at: float
    ) -> None:
        conn.execute(
            "INSERT INTO paper_events (delivery_id, kind, at, detail) VALUES (?, ?, ?, ?)",
            (delivery_id, kind, at, json.dumps(detail, ensure_ascii=False, sort_keys=True)),
        )
        # Who and when, in the chain; the receipt's free text (note, scan path) stays in paper_events.
        who = {k: detail.get(k) for k in ("recorded_by", "signed_at", "method", "reason", "remote_id")}
        self._audit(conn, f"paper.{kind}", delivery_id, **who)

    # -- mapping list (审管事项关联映射清单) ---------------------------------------------------------------

    async def import_mapping(self, rows: Sequence[dict[str, Any]], *, source: str, digest: str) -> int | None:
        """Store ``rows`` as a new mapping version and make it active, atomically.

        Returns the new version, or ``None`` when the active version already has this digest (re-importing
        the same sheet changes nothing). The previous versions are kept for ``restore_mapping``.
        """

        def run(conn: sqlite3.Connection) -> int | None:
            active = conn.execute("SELECT digest FROM mapping_versions WHERE active = 1").fetchone()
            if active and active[0] == digest:
                return None
            conn.execute("UPDATE mapping_versions SET active = 0 WHERE active = 1")
            cur = conn.execute(
                "INSERT INTO mapping_versions (imported_at, source, digest, row_count, active) VALUES (?, ?, ?, ?, 1)",
                (self._clock(), source, digest, len(rows)),
            )
            version = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO mapping_rows (version, row_json) VALUES (?, ?)",
                [(version, json.dumps(row, ensure_ascii=False, sort_keys=True)) for row in rows],
            )
            self._audit(conn, "mapping.imported", version, source=source, digest=digest, rows=len(rows))
            return version

        return await self._run(self._tx, run)

    async def restore_mapping(self, version: int) -> None:
        """Make an earlier version active again; ``KeyError`` when there is no such version."""

        def run(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM mapping_versions WHERE version = ?", (version,)).fetchone() is None:
                raise KeyError(version)
            conn.execute("UPDATE mapping_versions SET active = (version = ?)", (version,))
            self._audit(conn, "mapping.restored", version)

        await self._run(self._tx, run)

    async def mapping_versions(self) -> list[dict[str, Any]]:
        """Every imported version, newest first, with which one is active."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute(
                "SELECT version, imported_at, source, digest, row_count, active FROM mapping_versions ORDER BY version DESC"
            )
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row, strict=True)) | {"active": bool(row[5])} for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    async def active_mapping_version(self) -> int | None:
        def read(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT version FROM mapping_versions WHERE active = 1").fetchone()
            return int(row[0]) if row else None

        return await self._run(lambda: read(self._connection()))

    async def reroute_unrouted(self, router: Router, *, batch: int = 500) -> int:
        """Route held messages in batches of ``batch`` (one transaction each), oldest first."""
        total = 0
        after = ""
        while True:
            routed, scanned, after = await self._run(self._tx, self._reroute_batch, router, batch, after)
            total += routed
            if scanned < batch:
                return total

    def _reroute_batch(self, conn: sqlite3.Connection, router: Router, batch: int, after: str) -> tuple[int, int, str]:
        now = self._clock()
        rows = conn.execute(
            "SELECT id, envelope FROM messages WHERE routed = 0 AND id > ? ORDER BY id LIMIT ?", (after, batch)
        ).fetchall()
        routed = 0
        for message_id, body in rows:
            env = Envelope.from_stored(body)
            routes = list(router(env))
            if routes:
                self._insert_deliveries(conn, env, routes, now)
                conn.execute("UPDATE messages SET routed = 1 WHERE id = ?", (message_id,))
                self._audit(conn, "message.routed", message_id, routes=_route_names(routes))
                routed += 1
        return routed, len(rows), rows[-1][0] if rows else after

    async def active_mapping(self) -> list[dict[str, Any]]:
        """The rows of the active mapping version (empty when none was imported)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute(
                "SELECT r.row_json FROM mapping_rows r JOIN mapping_versions v ON v.version = r.version WHERE v.active = 1"
            )
            return [json.loads(row[0]) for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    # -- operator actions and look-ups (admin API, web console) ----------------------------------------

    async def find_messages(self, query: MessageQuery) -> tuple[list[dict[str, Any]], int]:
        def read(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
            where, args = message_filters(query, "?")
            total = conn.execute(f"SELECT COUNT(*) FROM messages m{where}", args).fetchone()[0]
            cur = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m{where} ORDER BY m.received_at DESC, m.id DESC LIMIT ? OFFSET ?",
                (*args, query.limit, query.offset),
            )
            rows = _message_rows(cur)
            _attach_deliveries(conn, rows)
            return rows, int(total)

        return await self._run(lambda: read(self._connection()))

    async def message(self, message_id: str) -> dict[str, Any] | None:
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            cur = conn.execute(f"SELECT {MESSAGE_COLUMNS}, m.envelope FROM messages m WHERE m.id = ?", (message_id,))
            rows = _message_rows(cur)
            if not rows:
                return None
            _attach_deliveries(conn, rows)
            rows[0]["envelope"] = json.loads(rows[0]["envelope"])
            return rows[0]

        return await self._run(lambda: read(self._connection()))

    async def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            cur = conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.id = ?",
                (delivery_id,),
            )
            rows = _dicts(cur)
            if not rows:
                return None
            row = rows[0]
            cur = conn.execute(
                "SELECT attempt, started_at, finished_at, outcome, error_kind, error FROM attempts "
                "WHERE delivery_id = ? ORDER BY attempt",
                (delivery_id,),
            )
            row["attempt_log"] = _dicts(cur)
            return row

        return await self._run(lambda: read(self._connection()))

    async def deliveries(
        self, *, state: str | None = None, destination: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        def read(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
            clauses, args = [], []
            if state is not None:
                clauses.append("d.state = ?")
                args.append(state)
            if destination is not None:
                clauses.append("d.destination = ?")
                args.append(destination)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            total = conn.execute(f"SELECT COUNT(*) FROM deliveries d{where}", args).fetchone()[0]
            cur = conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id{where} "
                "ORDER BY d.updated_at, d.id LIMIT ? OFFSET ?",
                (*args, limit, offset),
            )
            return _dicts(cur), int(total)

        return await self._run(lambda: read(self._connection()))

    async def destination_overview(self) -> dict[str, dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            overview: dict[str, dict[str, Any]] = {}
            for dest, state, count in conn.execute(
                "SELECT destination, state, COUNT(*) FROM deliveries GROUP BY destination, state"
            ):
                entry = overview.setdefault(
                    dest, {"counts": {s.value: 0 for s in DeliveryState}, "oldest_pending": None}
                )
                entry["counts"][state] = count
            for dest, entry in overview.items():
                # The oldest item still waiting to go out: what an operator looks at to see a stuck queue.
                cur = conn.execute(
                    f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id "
                    "WHERE d.destination = ? AND d.state IN ('pending', 'retry_wait', 'in_flight') "
                    "ORDER BY d.created_at, d.id LIMIT 1",
                    (dest,),
                )
                rows = _dicts(cur)
                entry["oldest_pending"] = rows[0] if rows else None
            return overview

        return await self._run(lambda: read(self._connection()))

    async def trace(self, correlation_id: str) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.correlation_id = ? "
                "ORDER BY m.business_time, m.received_at, m.id",
                (correlation_id,),
            )
            rows = _message_rows(cur)
            _attach_deliveries(conn, rows)
            return rows

        return await self._run(lambda: read(self._connection()))

    async def retry_dead(self, delivery_id: int, *, actor: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            operator_target(
                delivery_id, _state(conn, delivery_id), ("dead",), "retry", "only a dead delivery is retried"
            )
            self._reopen(conn, delivery_id)
            self._audit(conn, "delivery.retried", delivery_id, actor=actor, previous="dead")

        await self._run(self._tx, run)

    async def resolve_uncertain(self, delivery_id: int, resolution: str, *, actor: str) -> None:
        if resolution not in ("delivered", "resend"):
            raise ValueError(f"resolution must be 'delivered' or 'resend', not {resolution!r}")

        def run(conn: sqlite3.Connection) -> None:
            operator_target(
                delivery_id,
                _state(conn, delivery_id),
                ("uncertain",),
                "resolve",
                "only an uncertain delivery is resolved",
            )
            now = self._clock()
            if resolution == "delivered":
                conn.execute(
                    "UPDATE deliveries SET state = 'delivered', delivered_at = ?, verify_first = 0, updated_at = ? "
                    "WHERE id = ?",
                    (now, now, delivery_id),
                )
            else:
                self._reopen(conn, delivery_id)
                conn.execute("UPDATE deliveries SET verify_first = 0 WHERE id = ?", (delivery_id,))
            self._audit(conn, "delivery.resolved", delivery_id, actor=actor, resolution=resolution)

        await self._run(self._tx, run)

    async def replay(self, message_id: str, destination: str, *, actor: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT envelope FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"there is no message {message_id}")
            env = Envelope.from_stored(row[0])
            newest = conn.execute(
                "SELECT revision, message_id FROM ledger WHERE type = ? AND business_key = ?",
                (env.type, env.business_key),
            ).fetchone()
            # The same key as every earlier delivery of this version of the fact to this receiver: an idempotent
            # receiver answers a replay of something it holds as a replay, not with a second record.
            key = idempotency_key(destination, env)
            existing = conn.execute("SELECT id, state FROM deliveries WHERE idempotency_key = ?", (key,)).fetchone()
            replay_conflict(message_id, env.revision, newest, existing)
            if existing is None:
                self._insert_deliveries(conn, env, [Route(destination)], self._clock())
                delivery_id = int(
                    conn.execute("SELECT id FROM deliveries WHERE idempotency_key = ?", (key,)).fetchone()[0]
                )
            else:
                delivery_id = int(existing[0])
                self._reopen(conn, delivery_id)
            self._audit(
                conn,
                "delivery.replayed",
                delivery_id,
                actor=actor,
                message=message_id,
                destination=destination,
                reopened=existing is not None,
            )
            return delivery_id

        return await self._run(self._tx, run)

    def _reopen(self, conn: sqlite3.Connection, delivery_id: int) -> None:
        """Back to ``pending`` now with a fresh retry budget; earlier attempts keep their numbers (attempt_offset).

        ``verify_first`` is kept: when the last attempt's outcome was unknown, the next one still asks first.
        """
        now = self._clock()
        conn.execute(
            "UPDATE deliveries SET state = 'pending', attempt_offset = attempt_offset + attempts, attempts = 0, "
            "next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL, delivered_at = NULL, "
            "updated_at = ? WHERE id = ?",
            (now, now, delivery_id),
        )

    # -- deadlines (closed-loop timeliness; rules in gateway/deadlines.py) ---------------------------------

    async def deadline_position(self) -> int:
        """The audit sequence number up to which the deadline tracker has followed the chain."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM meta WHERE key = 'deadlines_scanned'").fetchone()
            return int(row[0]) if row else 0

        return await self._run(lambda: read(self._connection()))

    async def deadline_feed(
        self, *, after_seq: int, types: Sequence[str], limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        """State changes after ``after_seq`` that can open or close a deadline, and the last seq examined.

        Read from the audit chain — every state change in commit order — so the tracker's position is one
        number: messages stored or routed (with their deliveries) and deliveries completed, for ``types``.
        """

        def read(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
            rows = conn.execute(
                "SELECT seq, kind, subject FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
            items: list[dict[str, Any]] = []
            wanted = set(types)
            for seq, kind, subject in rows:
                if kind not in FEED_KINDS:
                    continue
                if kind.startswith("message."):
                    found = conn.execute("SELECT type, envelope FROM messages WHERE id = ?", (subject,)).fetchone()
                    if found is None or found[0] not in wanted:
                        continue
                    deliveries = conn.execute(
                        "SELECT id, destination, channel FROM deliveries WHERE message_id = ? ORDER BY id", (subject,)
                    ).fetchall()
                    items.append({"seq": seq, "kind": kind, "envelope": found[1], "deliveries": deliveries})
                else:
                    found = conn.execute(
                        "SELECT m.type, m.envelope, d.id, d.destination, d.channel, d.remote_id, d.delivered_at "
                        "FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.id = ?",
                        (int(subject),),
                    ).fetchone()
                    if found is None or found[0] not in wanted:
                        continue
                    delivery = dict(
                        zip(("id", "destination", "channel", "remote_id", "delivered_at"), found[2:], strict=True)
                    )
                    items.append({"seq": seq, "kind": kind, "envelope": found[1], "delivery": delivery})
            return items, (rows[-1][0] if rows else after_seq)

        return await self._run(lambda: read(self._connection()))

    @staticmethod
    def _open_deadlines(
        conn: sqlite3.Connection, opens: Sequence[Opening], now: float
    ) -> list[tuple[Opening, int]]:
        """Insert the openings whose (loop, kind, subject) has no deadline yet; the new ones with their ids.

        A few statements per hundred openings rather than one each (see ``_lease``): the tracker opens two or
        three deadlines per message it follows.
        """
        fresh: dict[tuple[str, str, str], Opening] = {}
        for o in opens:
            fresh.setdefault((o.correlation_id, o.kind.value, o.subject), o)
        for key in _deadline_ids(conn, list(fresh)):
            del fresh[key]
        if not fresh:
            return []
        _insert_rows(conn, f"INSERT INTO deadlines ({', '.join(OPENING_COLUMNS)})", [opening_values(o, now) for o in fresh.values()])
        ids = _deadline_ids(conn, list(fresh))
        return [(o, ids[key]) for key, o in fresh.items()]

    async def record_deadlines(
        self,
        opens: Sequence[Opening],
        closes: Sequence[Closing],
        *,
        after_seq: int | None = None,
        to_seq: int | None = None,
    ) -> tuple[int, int] | None:
        """Open and close deadlines in one transaction; returns (opened, closed).

        With ``after_seq``/``to_seq`` it also moves the tracker's position in the chain — only if it still is
        ``after_seq`` (else ``None``, nothing written): two trackers cannot both apply the same changes.
        Opening is idempotent (one deadline per loop, kind and subject); closing touches open deadlines only.
        """

        def run(conn: sqlite3.Connection) -> tuple[int, int] | None:
            if after_seq is not None:
                row = conn.execute("SELECT value FROM meta WHERE key = 'deadlines_scanned'").fetchone()
                if (int(row[0]) if row else 0) != after_seq:
                    return None
            now = self._clock()
            closed = 0
            new = self._open_deadlines(conn, opens, now)
            for o, deadline_id in new:
                self._audit(
                    conn,
                    "deadline.opened",
                    deadline_id,
                    deadline=o.kind.value,
                    loop=o.correlation_id,
                    of=o.subject or None,
                    due_on=o.due_on.isoformat(),
                    estimated=o.estimated or None,
                )
            opened = len(new)
            for c in closes:
                where, args = closing_filter(c)
                for deadline_id, due_on in conn.execute(
                    f"SELECT id, due_on FROM deadlines WHERE state = 'open' AND {where}", args
                ).fetchall():
                    outcome = closing_outcome(c, due_on)
                    conn.execute(
                        "UPDATE deadlines SET state = 'closed', outcome = ?, closed_by = ?, closed_at = ?, closed_on = ?, "
                        "department_name = COALESCE(department_name, ?), department_code = COALESCE(department_code, ?) "
                        "WHERE id = ?",
                        (
                            outcome,
                            c.closed_by,
                            c.closed_at,
                            c.closed_on.isoformat(),
                            c.department_name,
                            c.department_code,
                            deadline_id,
                        ),
                    )
                    closed += 1
                    self._audit(
                        conn, "deadline.closed", deadline_id, deadline=c.kind.value, outcome=outcome, by=c.closed_by
                    )
            if to_seq is not None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('deadlines_scanned', ?) ON CONFLICT (key) DO UPDATE "
                    "SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                    (str(to_seq),),
                )
            return opened, closed

        return await self._run(self._tx, run)

    async def open_deadlines(self, *, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Open deadlines in id order, a page at a time, with the state of the delivery each one tracks."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cols = ", ".join(f"dl.{c}" for c in DEADLINE_COLUMNS)
            cur = conn.execute(
                f"SELECT {cols}, d.state AS delivery_state, d.destination, d.last_error FROM deadlines dl "
                "LEFT JOIN deliveries d ON d.id = dl.delivery_id WHERE dl.state = 'open' AND dl.id > ? "
                "ORDER BY dl.id LIMIT ?",
                (after_id, limit),
            )
            names = [c[0] for c in cur.description]
            return [deadline_dict(names, row) for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    async def redate_deadlines(self, changes: Sequence[tuple[int, str, bool]]) -> int:
        """New due dates ``(id, due_on, estimated)`` for open deadlines (the calendar changed); returns how many."""

        def run(conn: sqlite3.Connection) -> int:
            count = 0
            for deadline_id, due_on, estimated in changes:
                cur = conn.execute(
                    "UPDATE deadlines SET due_on = ?, estimated = ? WHERE id = ? AND state = 'open' "
                    "AND (due_on <> ? OR estimated <> ?)",
                    (due_on, int(estimated), deadline_id, due_on, int(estimated)),
                )
                if cur.rowcount:
                    count += 1
                    self._audit(conn, "deadline.redated", deadline_id, due_on=due_on, estimated=estimated)
            return count

        return await self._run(self._tx, run)

    async def escalate_to_paper(self, deadline_id: int, delivery_id: int, reason: str) -> bool:
        """Move a failing delivery (``retry_wait``) whose deadline is at risk to the paper queue; False if it moved on."""

        def run(conn: sqlite3.Connection) -> bool:
            now = self._clock()
            row = conn.execute(
                "UPDATE deliveries SET state = 'paper_pending', last_error = ?, updated_at = ? "
                "WHERE id = ? AND state = 'retry_wait' RETURNING destination, message_id",
                (reason, now, delivery_id),
            ).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE deadlines SET escalated_at = ? WHERE id = ?", (now, deadline_id))
            self._audit(
                conn,
                "delivery.paper_pending",
                delivery_id,
                destination=row[0],
                message=row[1],
                error_kind="deadline",
                deadline=deadline_id,
            )
            return True

        return await self._run(self._tx, run)

    async def closing_messages(
        self, types: Sequence[str], *, business_key: str | None = None, correlation_id: str | None = None
    ) -> list[str]:
        """Envelopes (JSON) of stored messages of ``types`` with that business key or in that loop, oldest fact first."""

        def read(conn: sqlite3.Connection) -> list[str]:
            marks = ",".join("?" * len(types)) or "NULL"
            column, value = (
                ("business_key", business_key) if business_key is not None else ("correlation_id", correlation_id)
            )
            cur = conn.execute(
                f"SELECT envelope FROM messages WHERE type IN ({marks}) AND {column} = ? ORDER BY business_time, id",
                (*types, value),
            )
            return [row[0] for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    async def deadlines(
        self, *, due_from: str | None = None, due_to: str | None = None, correlation_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Deadlines due between two days (ISO, inclusive) or of one loop, in due order (for reports and traces)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            clauses, args = [], []
            if due_from is not None:
                clauses.append("due_on >= ?")
                args.append(due_from)
            if due_to is not None:
                clauses.append("due_on <= ?")
                args.append(due_to)
            if correlation_id is not None:
                clauses.append("correlation_id = ?")
                args.append(correlation_id)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            cur = conn.execute(f"SELECT {', '.join(DEADLINE_COLUMNS)} FROM deadlines {where} ORDER BY due_on, id", args)
            return [deadline_dict(DEADLINE_COLUMNS, row) for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))

    # -- reporting --------------------------------------------------------------------------------

    async def status(self) -> dict[str, object]:
        def read(conn: sqlite3.Connection) -> dict[str, object]:
            one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
            deliveries = {state.value: 0 for state in DeliveryState}
            for state, count in conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state"):
                deliveries[state] = count
            return {
                "messages": one("SELECT COUNT(*) FROM messages"),
                "rejected": one("SELECT COUNT(*) FROM rejected"),
                "duplicates_suppressed": one("SELECT COUNT(*) FROM suppressions"),
                "unrouted": one("SELECT COUNT(*) FROM messages WHERE routed = 0"),
                "deliveries": deliveries,
            }

        return await self._run(lambda: read(self._connection()))

    async def open_deliveries(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'in_flight', 'retry_wait')"
            ).fetchone()
            return int(row[0])

        return await self._run(lambda: read(self._connection()))

    # -- push ingest, alerts, metrics ---------------------------------------------------------------

    async def use_nonce(self, scope: str, nonce: str, expires_at: float) -> bool:
        """Spend a signed request's nonce: True the first time, False on a replay. Kept until ``expires_at``.

        In the store rather than in memory so a replay is refused after a restart too (and, on a shared
        database, by every instance); the table holds one signature window's worth of nonces at most.
        """

        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM ingest_nonces WHERE expires_at < ?", (self._clock(),))
            cur = conn.execute(
                "INSERT INTO ingest_nonces (scope, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (scope, nonce, expires_at),
            )
            return cur.rowcount == 1

        return await self._run(self._tx, run)

    async def alerts_scanned(self) -> int:
        """The audit sequence number up to which the chain has been read for alerts."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM meta WHERE key = 'alerts_scanned'").fetchone()
            return int(row[0]) if row else 0

        return await self._run(lambda: read(self._connection()))

    async def alert_candidates(
        self, *, after_seq: int, span: int, kinds: Sequence[str], detail_marks: Mapping[str, str]
    ) -> tuple[list[AuditEntry], int]:
        """Entries among the ``span`` sequence numbers after ``after_seq`` that may call for an alert: of a kind in
        ``kinds``, or of a kind in ``detail_marks`` whose detail contains that mark; and the last sequence number
        the span reached (the chain's tip if nearer).

        The filter runs in SQLite: nearly every entry is routine, and handing each one to Python — a statement
        step per row on the store's thread — cost more than the alerts are worth (see ``_lease``).
        """

        def read(conn: sqlite3.Connection) -> tuple[list[AuditEntry], int]:
            tip = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0]
            reached = min(int(tip), after_seq + span)
            marked = " OR ".join("(kind = ? AND instr(detail, ?) > 0)" for _ in detail_marks) or "0"
            cur = conn.execute(
                "SELECT seq, at, kind, subject, detail, prev_hash, hash FROM audit WHERE seq > ? AND seq <= ? "
                f"AND (kind IN ({','.join('?' * len(kinds)) or 'NULL'}) OR {marked}) ORDER BY seq",
                (after_seq, reached, *kinds, *(v for pair in detail_marks.items() for v in pair)),
            )
            return [AuditEntry(*row) for row in cur.fetchall()], reached

        return await self._run(lambda: read(self._connection()))

    async def claim_alerts(self, entries: Sequence[tuple[int, str, str]], scanned_to: int) -> list[int]:
        """Claim alerts (audit ``seq``, kind, subject) for firing; returns the seqs not claimed before.

        Claimed once and for all — before firing — so a restart, or a second instance reading the same
        chain, never fires one twice. The scan position moves forward only.
        """

        def run(conn: sqlite3.Connection) -> list[int]:
            now = self._clock()
            fresh = [
                seq
                for seq, kind, subject in entries
                if conn.execute(
                    "INSERT INTO alerts_fired (seq, kind, subject, fired_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (seq, kind, subject, now),
                ).rowcount
                == 1
            ]
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('alerts_scanned', ?) ON CONFLICT (key) DO UPDATE "
                "SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (str(scanned_to),),
            )
            return fresh

        return await self._run(self._tx, run)

    async def delivery_metrics(self) -> dict[str, Any]:
        """For ``/metrics``, read at scrape time: deliveries by (destination, state), and per destination
        the creation time of the oldest delivery still moving on its own (pending, in_flight, retry_wait)."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            counts = {
                (dest, state): n
                for dest, state, n in conn.execute(
                    "SELECT destination, state, COUNT(*) FROM deliveries GROUP BY destination, state"
                )
            }
            oldest = dict(
                conn.execute(
                    "SELECT destination, MIN(created_at) FROM deliveries "
                    "WHERE state IN ('pending', 'in_flight', 'retry_wait') GROUP BY destination"
                ).fetchall()
            )
            return {"by_state": counts, "oldest_open": oldest}

        return await self._run(lambda: read(self._connection()))

    async def rejected(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent rejected inputs with their reasons (newest first)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute(
                "SELECT id, source, position, reason, raw, received_at FROM rejected ORDER BY id DESC LIMIT ?", (limit,)
            )
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

        return await self._run(lambda: read(self._connection()))


# -- operator look-ups: how rows become dicts -------------------------------------------------------------


#: Rows per multi-row statement: 100 rows of up to 18 values stay far under SQLite's host-parameter limit (32,766
#: since 3.32; the store needs 3.35 for RETURNING anyway).
_ROWS_PER_STATEMENT = 100


def _placeholders(rows: int, width: int) -> str:
    """``(?, ?), (?, ?)`` … : ``rows`` rows of ``width`` parameters for a multi-row ``VALUES``."""
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * rows)


def _deadline_ids(conn: sqlite3.Connection, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    """The ids of the deadlines with these (loop, kind, subject) keys that exist, a few statements in all."""
    ids: dict[tuple[str, str, str], int] = {}
    for chunk in _chunks(keys):
        rows = conn.execute(
            "SELECT json_group_array(json_array(d.correlation_id, d.kind, d.subject, d.id)) FROM "
            f"(VALUES {_placeholders(len(chunk), 3)}) AS k JOIN deadlines d "
            "ON d.correlation_id = k.column1 AND d.kind = k.column2 AND d.subject = k.column3",
            [v for key in chunk for v in key],
        ).fetchone()[0]
        ids.update({(c, k, sub): int(i) for c, k, sub, i in json.loads(rows)})
    return ids


def _chunks(rows: Sequence[tuple[Any, ...]]) -> list[Sequence[tuple[Any, ...]]]:
    return [rows[i : i + _ROWS_PER_STATEMENT] for i in range(0, len(rows), _ROWS_PER_STATEMENT)]


def _insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``head VALUES (…), (…)``: one statement per hundred rows, values bound as they are (floats stay exact).

    ``executemany`` would step once per row, and every step gives the interpreter lock away (see ``_lease``).
    """
    for chunk in _chunks(rows):
        conn.execute(f"{head} VALUES {_placeholders(len(chunk), len(chunk[0]))}", [v for row in chunk for v in row])


def _dicts(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [c[0] for c in cur.description]
    rows = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        if "verify_first" in row:
            row["verify_first"] = bool(row["verify_first"])
    return rows


def _message_rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    rows = _dicts(cur)
    for row in rows:
        row["routed"] = bool(row["routed"])
    return rows


def _attach_deliveries(conn: sqlite3.Connection, messages: list[dict[str, Any]]) -> None:
    """Give each message row its deliveries (id order), in one query for the whole page."""
    by_id: dict[str, list[dict[str, Any]]] = {m["id"]: [] for m in messages}
    for m in messages:
        m["deliveries"] = by_id[m["id"]]
    if not by_id:
        return
    marks = ",".join("?" * len(by_id))
    cur = conn.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id "
        f"WHERE d.message_id IN ({marks}) ORDER BY d.id",
        tuple(by_id),
    )
    for row in _dicts(cur):
        by_id[row["message_id"]].append(row)


def _state(conn: sqlite3.Connection, delivery_id: int) -> str | None:
    row = conn.execute("SELECT state FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    return str(row[0]) if row else None
