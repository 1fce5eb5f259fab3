"""PostgreSQL store: several gateway instances on one database (a province, or a city with a standby).

Same protocol and semantics as the SQLite store — each public coroutine is one transaction — but nothing
here may assume a single process, so the places where SQLite relies on being alone are done differently:

- **Dedup** is decided under row locks on the ledger's primary key. ``ingest_page`` upserts a row for
  every fact of the page (in sorted order, so two pages never lock in opposite orders) and decides against
  what it then holds; a concurrent ingest of the same fact waits on that row and, once the first commits,
  sees its verdict — a second message for one fact cannot be committed.
- **Leases** are taken with ``FOR UPDATE SKIP LOCKED``: instances lease disjoint deliveries without
  waiting on each other. A lease has an expiry; ``take_over_expired`` (run by every relay) releases the
  expired leases of an instance that died, under the same rules as recovery after a crash (a taken-over
  attempt had an unknown outcome). ``recover`` at start-up releases only this owner's and expired leases —
  never those of a live instance.
- **Source cursors** have one owner at a time (``claim_source``, a lease row with an expiry); ingest checks
  the ownership in its own transaction, so an owner that was paused past its lease cannot commit a page
  that its successor has already read.
- **The audit chain** cannot be appended by concurrent transactions without serialising all of them on
  the chain's tip. Transactions append their entries, unhashed, to ``audit_queue`` (cheap, no contention);
  ``chain_audit`` — whoever holds a transaction-level advisory lock — moves them into ``audit`` in queue
  order, numbering and hashing them with ``gateway.audit.entry_hash``. Entries are durable at commit and
  verifiable once chained (every second by a running gateway, and before ``shenguan audit verify``).

Advisory locks are keyed by ``(hashtext(current_schema()), n)``, so stores in different schemas of one
database (tests, tenants) never contend. Statements that run per page or per outcome batch are sent
as one set-based statement over ``unnest`` arrays (``_insert_rows``; rare ones as a pipelined
``executemany``), and psycopg prepares them after their second use; connections come from one pool per
store, never one per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gateway.audit import GENESIS, AuditAlgorithmError, AuditEntry, canonical, entry_hash, hex_digest
from gateway.dedup import LedgerEntry, decide
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
    SourceNotOwnedError,
    StoreUnavailableError,
    idempotency_key,
)
from gateway.store.common import (
    DELIVERY_COLUMNS,
    MESSAGE_COLUMNS,
    Migration,
    PaperStateError,
    StoreVersionError,
    by_actor,
    fact,
    message_filters,
    operator_target,
    parse_time,
    replay_conflict,
    route_names,
)
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

__all__ = [
    "MIGRATIONS",
    "PostgresStore",
    "SourceNotOwnedError",
    "StoreMissingError",
    "StoreUnavailableError",
]

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]
log = structlog.get_logger("shenguan.store")

# Advisory lock numbers inside a schema's namespace.
_LOCK_MIGRATE = 1
_LOCK_CHAIN = 2
_LOCK_MAPPING = 3

SCHEMA_V1 = """
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
    received_at DOUBLE PRECISION NOT NULL,
    routed BOOLEAN NOT NULL,
    envelope TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_fact ON messages (type, business_key);
CREATE INDEX IF NOT EXISTS messages_correlation ON messages (correlation_id);
CREATE INDEX IF NOT EXISTS messages_unrouted ON messages (id) WHERE NOT routed;
CREATE TABLE IF NOT EXISTS ledger (
    type TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    business_time TEXT NOT NULL,
    message_id TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (type, business_key)
);
CREATE TABLE IF NOT EXISTS suppressions (
    id BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    verdict TEXT NOT NULL,
    original_message_id TEXT,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS suppressions_fact ON suppressions (type, business_key);
CREATE TABLE IF NOT EXISTS deliveries (
    id BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id),
    destination TEXT NOT NULL,
    channel TEXT NOT NULL,
    fact_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    verify_first BOOLEAN NOT NULL DEFAULT FALSE,
    last_error TEXT,
    last_error_kind TEXT,
    remote_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION,
    printed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (destination, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_fact ON deliveries (destination, fact_key, revision);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries (message_id);
CREATE INDEX IF NOT EXISTS deliveries_leases ON deliveries (lease_expires_at) WHERE state = 'in_flight';
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    error_kind TEXT,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE TABLE IF NOT EXISTS rejected (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    position TEXT,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS mapping_versions (
    version SERIAL PRIMARY KEY,
    imported_at DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    active BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX IF NOT EXISTS mapping_one_active ON mapping_versions ((TRUE)) WHERE active;
CREATE TABLE IF NOT EXISTS mapping_rows (
    version INTEGER NOT NULL REFERENCES mapping_versions (version),
    row_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mapping_rows_version ON mapping_rows (version);
CREATE TABLE IF NOT EXISTS paper_events (
    id BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id),
    kind TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS paper_events_delivery ON paper_events (delivery_id);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_queue (
    id BIGSERIAL PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT PRIMARY KEY,
    cursor TEXT,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS source_leases (
    source TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    claimed_at DOUBLE PRECISION NOT NULL
);
"""

# Numbered schema changes, oldest first. Never edit a released one: add the next.
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS ingest_nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX IF NOT EXISTS ingest_nonces_expiry ON ingest_nonces (expires_at);
CREATE TABLE IF NOT EXISTS alerts_fired (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    fired_at DOUBLE PRECISION NOT NULL
);
-- Alerts start from the chain's tip when first enabled: history from before is not news.
INSERT INTO meta (key, value) SELECT 'alerts_scanned', COALESCE(MAX(seq), 0)::TEXT FROM audit
    ON CONFLICT (key) DO NOTHING;
"""

SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS deadlines (
    id BIGSERIAL PRIMARY KEY,
    correlation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,
    started_on TEXT NOT NULL,
    working_days INTEGER NOT NULL,
    due_on TEXT NOT NULL,
    estimated BOOLEAN NOT NULL,
    basis TEXT NOT NULL,
    region TEXT,
    item_code TEXT,
    item_name TEXT,
    department_name TEXT,
    department_code TEXT,
    delivery_id BIGINT REFERENCES deliveries (id),
    opened_by TEXT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    closed_by TEXT,
    closed_at DOUBLE PRECISION,
    closed_on TEXT,
    escalated_at DOUBLE PRECISION,
    detail TEXT NOT NULL DEFAULT '{}',
    UNIQUE (correlation_id, kind, subject)
);
CREATE INDEX IF NOT EXISTS deadlines_open ON deadlines (due_on) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (due_on);
CREATE INDEX IF NOT EXISTS deadlines_subject ON deadlines (kind, subject);
CREATE INDEX IF NOT EXISTS deadlines_delivery ON deadlines (delivery_id) WHERE delivery_id IS NOT NULL;
INSERT INTO meta (key, value) VALUES ('deadlines_scanned', '0') ON CONFLICT (key) DO NOTHING;
"""

SCHEMA_V4 = """
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS attempt_offset INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS messages_business_key ON messages (business_key);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);
"""

MIGRATIONS: list[Migration[str]] = [
    Migration(1, "messages, dedup ledger, outbox, paper, mapping, audit chain and queue, source leases", SCHEMA_V1),
    Migration(2, "spent nonces of signed pushes, alerts fired", SCHEMA_V2),
    Migration(3, "closed-loop deadlines (时限)", SCHEMA_V3),
    Migration(4, "operator actions: attempt numbers kept across retries; finding messages by key and time", SCHEMA_V4),
]

_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class StoreMissingError(RuntimeError):
    """The database holds no shenguan store, and the caller asked not to create one."""


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@dataclass
class _Tx:
    """One transaction: its connection, its clock reading and the audit entries it will queue at commit."""

    conn: Conn
    now: float
    audit_rows: list[tuple[float, str, str, str]] = field(default_factory=list)

    def audit(self, kind: str, subject: object, **detail: Any) -> None:
        text = canonical({k: v for k, v in detail.items() if v is not None})
        self.audit_rows.append((self.now, kind, str(subject), text))


async def _configure_session(conn: Conn) -> None:
    """Plan every execution of a prepared statement with its parameters and the table as it is now.

    Why: PostgreSQL may settle on a generic plan for a prepared statement after five executions, chosen
    with the statistics of that moment, and keep it until the table is next analyzed. A new gateway's
    tables are empty at first and autoanalyze wakes once a minute, so the lease planned while the outbox held
    a handful of rows kept its nested loops as a backlog of 20,000 arrived: one lease took 26-46 s
    (docs/benchmarks.md). Statements stay prepared (parsed once); only the plan is made afresh, a fraction
    of a millisecond. A PostgreSQL-compatible server without the setting keeps its own default.
    """
    try:
        await conn.execute("SET plan_cache_mode = force_custom_plan")
    except psycopg.Error as exc:
        log.warning("postgres.plan_cache_mode_unsupported", error=str(exc))


class PostgresStore:
    """The store for several instances: one PostgreSQL database (or one schema in it) shared by all."""

    def __init__(
        self,
        url: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        clock: Callable[[], float] = time.time,
        connect_timeout_s: float = 10.0,
        audit_algorithm: str | None = None,
        audit_mode: str = "metadata",
    ) -> None:
        if audit_algorithm is not None:
            hex_digest(b"", audit_algorithm)  # unknown algorithm: refuse before connecting
        self._wanted_algorithm = audit_algorithm
        self.audit_algorithm = audit_algorithm or "sha256"  # the chain's own, read at open
        self._audit_full = audit_mode == "full"
        self.url = url
        self._pool_min = pool_min
        self._pool_max = max(pool_min, pool_max)
        self._clock = clock
        self._connect_timeout_s = connect_timeout_s
        self._pool: AsyncConnectionPool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    # -- plumbing ---------------------------------------------------------------------------------

    async def open(self, *, exclusive: bool = True, create: bool = True) -> None:
        """Connect, create or migrate the schema, open the pool.

        ``exclusive`` is accepted for parity with SQLite and means nothing here: any number of instances
        may serve one PostgreSQL store. Without ``create`` a database with no store in it is an error
        (an operator command pointed at the wrong database must not create an empty store there).
        """
        if self._pool is not None:
            return
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout_s))
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"cannot connect to PostgreSQL at {redact(self.url)}: {exc}") from None
        try:
            await migrate(conn, create=create, where=redact(self.url))
            self.audit_algorithm = await self._chain_algorithm(conn)
        finally:
            await conn.close()
        pool: AsyncConnectionPool = AsyncConnectionPool(
            self.url,
            min_size=self._pool_min,
            max_size=self._pool_max,
            kwargs={"autocommit": True, "prepare_threshold": 2},
            configure=_configure_session,
            open=False,
            name="shenguan",
        )
        await pool.open(wait=True, timeout=self._connect_timeout_s)
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def _tx(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(tx, *args)`` as one transaction, queueing its audit entries before the commit.

        A deadlock or serialization failure rolls everything back, so the whole function is simply run
        again (a few times, with jitter): every transaction here is a pure function of its arguments
        and the database.
        """
        pool = self._require_pool()
        for attempt in range(6):
            try:
                async with pool.connection() as conn, conn.transaction():
                    tx = _Tx(conn, self._clock())
                    result = await fn(tx, *args)
                    if tx.audit_rows:
                        await _insert_rows(conn, _AUDIT_QUEUE, tx.audit_rows)
                    return result
            except _RETRYABLE:
                if attempt == 5:
                    raise
                await asyncio.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
            except psycopg.OperationalError as exc:  # connection lost, server restarting, pool timeout
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(f"PostgreSQL at {redact(self.url)}: {type(exc).__name__}: {exc}".strip())

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection for reads; losing the server is ``StoreUnavailableError``, as in ``_tx``."""
        try:
            async with self._require_pool().connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _fetch_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()

    # -- audit chain (全程留痕) -------------------------------------------------------------------------

    async def chain_audit(self, *, batch: int = 5000) -> int:
        """Number and hash queued audit entries, in queue order; returns how many were chained.

        One chainer at a time (a transaction-level advisory lock); when another instance is chaining,
        this returns 0 at once — that instance chains these entries too.
        """
        total = 0
        while True:
            chained = await self._tx(self._chain_batch, batch)
            if chained is None:
                return total
            total += chained
            if chained < batch:
                return total

    async def _chain_batch(self, tx: _Tx, batch: int) -> int | None:
        conn = tx.conn
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), %s)", (_LOCK_CHAIN,))
        if not (await cur.fetchone() or (False,))[0]:
            return None
        cur = await conn.execute("SELECT value FROM meta WHERE key = 'audit_algorithm'")
        recorded = await cur.fetchone()
        algorithm = str(recorded[0]) if recorded else self.audit_algorithm
        cur = await conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        tip = await cur.fetchone()
        seq, prev = (int(tip[0]), str(tip[1])) if tip else (0, GENESIS)
        cur = await conn.execute(
            "DELETE FROM audit_queue WHERE id IN (SELECT id FROM audit_queue ORDER BY id LIMIT %s) "
            "RETURNING id, at, kind, subject, detail",
            (batch,),
        )
        queued = sorted(await cur.fetchall())
        rows = []
        for _id, at, kind, subject, detail in queued:
            seq += 1
            digest = entry_hash(prev, seq, at, kind, subject, detail, algorithm=algorithm)
            rows.append((seq, at, kind, subject, detail, prev, digest))
            prev = digest
        if rows and not recorded:
            # The first chained entry fixes the chain's algorithm for every instance, recorded beside it.
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('audit_algorithm', %s) ON CONFLICT (key) DO NOTHING",
                (algorithm,),
            )
        if rows:
            await _insert_rows(conn, _AUDIT, rows)
        return len(rows)

    async def _chain_algorithm(self, conn: Conn) -> str:
        """The chain's algorithm; a configured one that differs from a chain already started is refused.

        While nothing has been recorded yet the configured algorithm is written down at once, so instances
        opened together agree before the first entry is chained.
        """
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)", (_LOCK_CHAIN,))
            cur = await conn.execute(
                "SELECT (SELECT value FROM meta WHERE key = 'audit_algorithm'), "
                "EXISTS (SELECT 1 FROM audit) OR EXISTS (SELECT 1 FROM audit_queue)"
            )
            recorded, started = await cur.fetchone() or (None, False)
            chain = recorded or ("sha256" if started else None)  # chains from before the choice are SHA-256
            if chain is not None and started:
                if self._wanted_algorithm is not None and chain != self._wanted_algorithm:
                    raise AuditAlgorithmError(
                        f"the audit chain in {redact(self.url)} is hashed with {chain}, the configuration asks for "
                        f"{self._wanted_algorithm}: a chain cannot mix algorithms (set [audit] algorithm = "
                        f'"{chain}", or start a new store)'
                    )
                return chain
            chosen = self._wanted_algorithm or chain or "sha256"
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('audit_algorithm', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (chosen,),
            )
            return chosen

    async def audit_entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """A page of the chained entries in order (``verify`` streams it page by page)."""
        rows = await self._fetch(
            "SELECT seq, at, kind, subject, detail, prev_hash, hash FROM audit WHERE seq > %s ORDER BY seq LIMIT %s",
            (after_seq, limit),
        )
        return [AuditEntry(*row) for row in rows]

    async def audit_backlog(self) -> int:
        """Entries committed but not chained yet."""
        return int((await self._fetch("SELECT COUNT(*) FROM audit_queue"))[0][0])

    # -- sources ----------------------------------------------------------------------------------

    async def get_cursor(self, source: str) -> str | None:
        rows = await self._fetch("SELECT cursor FROM cursors WHERE source = %s", (source,))
        return rows[0][0] if rows else None

    async def claim_source(self, source: str, owner: str, ttl_s: float) -> bool:
        """Own ``source`` for ``ttl_s`` seconds (or renew): True when ``owner`` holds it now.

        A live owner's lease is never taken; an expired one is, by whoever asks first.
        """
        return await self._tx(self._claim_source, source, owner, ttl_s)

    async def _claim_source(self, tx: _Tx, source: str, owner: str, ttl_s: float) -> bool:
        conn, now = tx.conn, tx.now
        # A standby asks every poll interval, and the owner holds the row (FOR SHARE) through each page it
        # stores: a locking read first would wait out that page and then queue the owner's next one behind
        # it (28 ms per ask with three instances; docs/benchmarks.md). A live owner seen without the lock
        # is the answer already; the lock is for taking or renewing the lease.
        cur = await conn.execute("SELECT owner, expires_at FROM source_leases WHERE source = %s", (source,))
        row = await cur.fetchone()
        if row is not None and row[0] != owner and row[1] >= now:
            return False
        cur = await conn.execute("SELECT owner, expires_at FROM source_leases WHERE source = %s FOR UPDATE", (source,))
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute(
                "INSERT INTO source_leases (source, owner, expires_at, claimed_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (source) DO NOTHING RETURNING owner",
                (source, owner, now + ttl_s, now),
            )
            if await cur.fetchone() is None:
                return False  # claimed by another instance a moment ago
            tx.audit("source.claimed", source, owner=owner)
            return True
        holder, expires_at = row
        if holder != owner and expires_at >= now:
            return False
        if holder == owner:
            await conn.execute("UPDATE source_leases SET expires_at = %s WHERE source = %s", (now + ttl_s, source))
        else:
            await conn.execute(
                "UPDATE source_leases SET owner = %s, expires_at = %s, claimed_at = %s WHERE source = %s",
                (owner, now + ttl_s, now, source),
            )
            tx.audit("source.claimed", source, owner=owner, previous=holder)
        return True

    async def release_source(self, source: str, owner: str) -> None:
        """Give up ``source`` at once (graceful stop), so a standby takes it without waiting for expiry."""

        async def run(tx: _Tx) -> None:
            cur = await tx.conn.execute(
                "UPDATE source_leases SET expires_at = %s WHERE source = %s AND owner = %s RETURNING 1",
                (tx.now - 1e-3, source, owner),
            )
            if await cur.fetchone() is not None:
                tx.audit("source.released", source, owner=owner)

        await self._tx(run)

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
        """Dedup, store and route a page, store its rejections and advance the cursor, atomically.

        With ``owner``, the page is stored only while ``owner`` holds the source's lease (checked under a
        row lock in this transaction); otherwise ``SourceNotOwnedError`` and nothing is written.
        """
        return await self._tx(self._ingest, source, envelopes, rejections, cursor, router, owner)

    async def _ingest(
        self,
        tx: _Tx,
        source: str,
        envelopes: Sequence[Envelope],
        rejections: Sequence[Rejection],
        cursor: str | None,
        router: Router,
        owner: str | None,
    ) -> IngestResult:
        conn, now = tx.conn, tx.now
        if owner is not None:
            cur = await conn.execute("SELECT owner FROM source_leases WHERE source = %s FOR SHARE", (source,))
            row = await cur.fetchone()
            if row is None or row[0] != owner:
                holder = row[0] if row else "nobody"
                raise SourceNotOwnedError(f"source {source!r} is owned by {holder}, not {owner}: page not stored")
        result = IngestResult()
        entries = await self._lock_facts(conn, envelopes, now)
        suppressions: list[tuple[Any, ...]] = []
        messages: list[tuple[Any, ...]] = []
        ledger: dict[tuple[str, str], tuple[Any, ...]] = {}
        deliveries: list[tuple[Any, ...]] = []
        for env in envelopes:
            key = (env.type, env.business_key)
            decision = decide(
                entries[key], revision=env.revision, content_hash=env.content_hash, business_time=env.time
            )
            if not decision.relay:
                suppressions.append(
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
                    )
                )
                tx.audit(
                    "message.suppressed",
                    env.id,
                    **fact(env),
                    verdict=decision.verdict.value,
                    original=decision.original_message_id,
                )
                result.record_suppressed(env, decision.verdict.value, decision.original_message_id)
                continue
            if decision.revision != env.revision:
                env = env.model_copy(update={"revision": decision.revision})
            routes = list(router(env))
            messages.append(
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
                    bool(routes),
                    env.model_dump_json(),
                )
            )
            entries[key] = LedgerEntry(env.revision, env.content_hash, env.time, env.id)
            ledger[key] = (
                env.revision,
                env.content_hash,
                env.time.isoformat(),
                env.id,
                now,
                env.type,
                env.business_key,
            )
            deliveries.extend(_delivery_rows(env, routes, now))
            tx.audit(
                "message.accepted",
                env.id,
                **fact(env),
                verdict=decision.verdict.value,
                routes=route_names(routes),
                **({"payload": env.data} if self._audit_full else {}),
            )
            result.record_accepted(env, decision.verdict.value, routed=bool(routes))
        if messages:
            await _insert_rows(conn, _MESSAGES, messages)
            await conn.execute(
                "UPDATE ledger l SET revision = u.revision, content_hash = u.content_hash, "
                "business_time = u.business_time, message_id = u.message_id, updated_at = u.updated_at "
                "FROM unnest(%s::int[], %b::text[], %b::text[], %b::text[], %s::float8[], %b::text[], %b::text[]) "
                "AS u (revision, content_hash, business_time, message_id, updated_at, type, business_key) "
                "WHERE l.type = u.type AND l.business_key = u.business_key",
                _arrays(list(ledger.values()), 7),
            )
        if deliveries:
            await _insert_rows(conn, _DELIVERIES, deliveries)
        async with conn.cursor() as cur:
            if suppressions:
                await cur.executemany(
                    "INSERT INTO suppressions (message_id, type, business_key, revision, content_hash, source, "
                    "verdict, original_message_id, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    suppressions,
                )
            if rejections:
                await cur.executemany(
                    "INSERT INTO rejected (source, position, reason, raw, received_at) VALUES (%s, %s, %s, %s, %s) "
                    "RETURNING id",
                    [(r.source, r.position, r.reason, r.raw, now) for r in rejections],
                    returning=True,
                )
                for rej in rejections:
                    row = await cur.fetchone()
                    assert row is not None
                    tx.audit("message.rejected", f"rejected:{row[0]}", source=rej.source, reason=rej.reason)
                    cur.nextset()
        result.rejected = len(rejections)
        if cursor is not None:
            await conn.execute(
                "INSERT INTO cursors (source, cursor, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                (source, cursor, now),
            )
        return result

    @staticmethod
    async def _lock_facts(conn: Conn, envelopes: Sequence[Envelope], now: float) -> dict[tuple[str, str], Any]:
        """Lock the ledger row of every fact of the page, creating placeholders for unknown facts.

        One upsert in (type, business_key) order: an existing row is locked by the no-op update, a new
        fact gets a placeholder row (revision 0) that this transaction fills in or rolls back. A concurrent
        ingest of the same fact blocks on that row until this transaction ends, then sees its outcome.
        Returns the ledger entry of each fact (``None`` for facts not relayed before).
        """
        facts = sorted({(e.type, e.business_key) for e in envelopes})
        if not facts:
            return {}
        cur = await conn.execute(
            "INSERT INTO ledger (type, business_key, revision, content_hash, business_time, message_id, updated_at) "
            "SELECT t, k, 0, '', '', '', %s FROM unnest(%s::text[], %s::text[]) AS f (t, k) ORDER BY t, k "
            "ON CONFLICT (type, business_key) DO UPDATE SET updated_at = ledger.updated_at "
            "RETURNING type, business_key, revision, content_hash, business_time, message_id",
            (now, [t for t, _ in facts], [k for _, k in facts]),
        )
        entries: dict[tuple[str, str], Any] = {}
        for t, k, revision, content_hash, business_time, message_id in await cur.fetchall():
            placeholder = revision == 0
            entries[(t, k)] = (
                None if placeholder else LedgerEntry(revision, content_hash, parse_time(business_time), message_id)
            )
        return entries

    # -- relay ------------------------------------------------------------------------------------

    async def recover(self, *, owner: str, verify: Sequence[str], uncertain: Sequence[str]) -> int:
        """At start-up: release ``owner``'s own leases (a restart with the same id) and expired ones.

        Leases of other live instances are left alone — their attempts are still running.
        """
        return await self._tx(self._release, owner, list(verify), list(uncertain), "deliveries.recovered")

    async def take_over_expired(self, *, owner: str, verify: Sequence[str], uncertain: Sequence[str]) -> int:
        """Release leases whose expiry has passed (their instance died or hung), under the recovery rules."""
        return await self._tx(self._release, None, list(verify), list(uncertain), "deliveries.taken_over", owner)

    async def _release(
        self,
        tx: _Tx,
        own: str | None,
        verify: list[str],
        uncertain: list[str],
        kind: str,
        taker: str | None = None,
    ) -> int:
        cur = await tx.conn.execute(
            "WITH lost AS (SELECT id, lease_owner FROM deliveries WHERE state = 'in_flight' "
            "  AND (lease_expires_at < %(now)s OR lease_owner = %(own)s) FOR UPDATE) "
            "UPDATE deliveries d SET state = CASE WHEN d.destination = ANY(%(uncertain)s) THEN 'uncertain' ELSE 'pending' END, "
            "verify_first = CASE WHEN d.destination = ANY(%(verify)s) THEN TRUE ELSE d.verify_first END, "
            "lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = %(now)s, updated_at = %(now)s, "
            "last_error = %(why)s, last_error_kind = 'outcome_unknown' "
            "FROM lost WHERE d.id = lost.id RETURNING lost.lease_owner",
            {
                "now": tx.now,
                "own": own,
                "uncertain": uncertain,
                "verify": verify,
                "why": "lease released at recovery: the previous process stopped mid-attempt"
                if own is not None
                else "lease expired and taken over: its instance stopped or hung mid-attempt",
            },
        )
        owners = sorted({row[0] for row in await cur.fetchall()})
        count = cur.rowcount
        if count:
            tx.audit(kind, taker or own, count=count, previous_owners=owners)
        return count

    async def lease_due(self, *, owner: str, destination: str, limit: int, lease_s: float) -> list[LeasedDelivery]:
        return await self._tx(self._lease, owner, destination, limit, lease_s)

    async def _lease(self, tx: _Tx, owner: str, destination: str, limit: int, lease_s: float) -> list[LeasedDelivery]:
        # SKIP LOCKED: rows another instance is leasing right now are simply not ours this round. A later
        # revision waits while an earlier one of the same fact is open for this destination, whichever
        # instance holds it: receivers must see revisions in order.
        #
        # One scan per state, each in the order of the deliveries_due index (destination, state,
        # next_attempt_at) so that it stops after ``limit`` rows; the earliest of both are taken. A single
        # ``state IN (…) ORDER BY next_attempt_at`` cannot use the index order, so it read and sorted every
        # due row on each lease: 23 ms at 4,000 pending, linear in the backlog (docs/benchmarks.md). Rows
        # locked by a scan but not taken are released at the commit.
        due_in = (
            "SELECT d.id, d.next_attempt_at FROM deliveries d WHERE d.destination = %(dest)s AND d.state = '{state}' "
            "AND d.next_attempt_at <= %(now)s AND NOT EXISTS (SELECT 1 FROM deliveries o "
            "  WHERE o.destination = d.destination AND o.fact_key = d.fact_key AND o.revision < d.revision "
            "  AND o.state IN ('pending', 'in_flight', 'retry_wait')) "
            "ORDER BY d.next_attempt_at LIMIT %(limit)s FOR UPDATE OF d SKIP LOCKED"
        )
        cur = await tx.conn.execute(
            f"WITH pending AS ({due_in.format(state='pending')}), retrying AS ({due_in.format(state='retry_wait')}), "
            "due AS (SELECT id FROM (SELECT * FROM pending UNION ALL SELECT * FROM retrying) c "
            "  ORDER BY next_attempt_at, id LIMIT %(limit)s), "
            "leased AS (UPDATE deliveries SET state = 'in_flight', lease_owner = %(owner)s, "
            "  lease_expires_at = %(expires)s, attempts = deliveries.attempts + 1, updated_at = %(now)s "
            "  FROM due WHERE deliveries.id = due.id "
            "  RETURNING deliveries.id, deliveries.message_id, deliveries.destination, deliveries.idempotency_key, "
            "  deliveries.attempts, deliveries.verify_first, deliveries.created_at) "
            "SELECT l.id, l.message_id, l.destination, l.idempotency_key, l.attempts, l.verify_first, m.envelope, "
            "m.type, l.created_at FROM leased l JOIN messages m ON m.id = l.message_id ORDER BY l.id",
            {"dest": destination, "now": tx.now, "limit": limit, "owner": owner, "expires": tx.now + lease_s},
        )
        return [LeasedDelivery(*row) for row in await cur.fetchall()]  # (…, envelope, type, accepted_at)

    async def complete(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        """Record many outcomes in one transaction (group commit): one UPDATE, one attempts insert."""
        if not outcomes:
            return 0
        return await self._tx(self._complete, owner, outcomes)

    async def _complete(self, tx: _Tx, owner: str, outcomes: Sequence[Outcome]) -> int:
        first: dict[int, Outcome] = {}
        for o in outcomes:
            first.setdefault(o.delivery_id, o)  # a second outcome for one lease could not apply anyway
        batch = list(first.values())
        done = (DeliveryState.delivered, DeliveryState.paper_delivered)
        cur = await tx.conn.execute(
            "UPDATE deliveries d SET state = o.state, lease_owner = NULL, lease_expires_at = NULL, "
            "next_attempt_at = COALESCE(o.next_at, d.next_attempt_at), verify_first = o.verify, last_error = o.error, "
            "last_error_kind = o.kind, remote_id = COALESCE(o.remote_id, d.remote_id), "
            "delivered_at = COALESCE(o.delivered_at, d.delivered_at), updated_at = %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::bool[], %s::text[], %s::text[], %s::text[], "
            "  %s::float8[], %s::float8[]) WITH ORDINALITY AS o (id, state, next_at, verify, error, kind, remote_id, "
            "  delivered_at, started_at, ord) "
            "WHERE d.id = o.id AND d.lease_owner = %s AND d.state = 'in_flight' "
            "RETURNING o.ord, d.id, d.attempts + d.attempt_offset, o.state, o.kind, o.error, o.started_at, "
            "d.destination, d.message_id",
            (
                tx.now,
                [o.delivery_id for o in batch],
                [o.state.value for o in batch],
                [o.next_attempt_at for o in batch],
                [o.verify_first for o in batch],
                [o.error for o in batch],
                [o.error_kind for o in batch],
                [o.remote_id for o in batch],
                [tx.now if o.state in done else None for o in batch],
                [o.started_at for o in batch],
                owner,
            ),
        )
        # Rows not returned lost their lease (expired and taken over): that holder records the outcome.
        applied = sorted(await cur.fetchall())
        if not applied:
            return 0
        for _ord, delivery_id, attempt, state, kind, _error, _started, destination, message_id in applied:
            tx.audit(
                f"delivery.{state}",
                delivery_id,
                attempt=attempt,
                error_kind=kind,
                destination=destination,
                message=message_id,
            )
        await tx.conn.execute(
            "INSERT INTO attempts (delivery_id, attempt, started_at, finished_at, outcome, error_kind, error) "
            "SELECT * FROM unnest(%s::bigint[], %s::int[], %s::float8[], %s::float8[], %s::text[], %s::text[], "
            "  %s::text[]) "
            "ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = excluded.started_at, "
            "finished_at = excluded.finished_at, outcome = excluded.outcome, error_kind = excluded.error_kind, "
            "error = excluded.error",
            (
                [r[1] for r in applied],
                [r[2] for r in applied],
                [r[6] for r in applied],
                [tx.now] * len(applied),
                [r[3] for r in applied],
                [r[4] for r in applied],
                [r[5] for r in applied],
            ),
        )
        return len(applied)

    # -- paper queue -------------------------------------------------------------------------------

    async def paper_deliveries(
        self, *, state: str | None = None, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Paper deliveries (pending or delivered) in id order, a page at a time, with their envelopes."""
        sql = (
            "SELECT d.id, d.message_id, d.destination, d.channel, d.state, d.printed_at, d.created_at, "
            "d.delivered_at, d.last_error, d.idempotency_key, m.envelope, "
            "EXISTS (SELECT 1 FROM paper_events e WHERE e.delivery_id = d.id AND e.kind = 'electronic_success') "
            "AS flagged FROM deliveries d JOIN messages m ON m.id = d.message_id "
            "WHERE d.state IN ('paper_pending', 'paper_delivered') AND d.id > %s"
        )
        args: list[Any] = [after_id]
        if state is not None:
            sql += " AND d.state = %s"
            args.append(state)
        if ids is not None:
            sql += " AND d.id = ANY(%s)"
            args.append(list(ids))
        return await self._fetch_dicts(sql + " ORDER BY d.id LIMIT %s", (*args, limit))

    async def paper_events(self, delivery_id: int) -> list[dict[str, Any]]:
        rows = await self._fetch(
            "SELECT kind, at, detail FROM paper_events WHERE delivery_id = %s ORDER BY id", (delivery_id,)
        )
        return [{"kind": k, "at": at, "detail": json.loads(d)} for k, at, d in rows]

    async def mark_printed(self, ids: Sequence[int], *, actor: str | None = None) -> int:
        """Record that these paper items were rendered for printing: electronic delivery is over for them."""

        async def run(tx: _Tx) -> int:
            cur = await tx.conn.execute(
                "UPDATE deliveries SET printed_at = %s, updated_at = %s "
                "WHERE id = ANY(%s) AND state = 'paper_pending' AND printed_at IS NULL RETURNING id",
                (tx.now, tx.now, list(ids)),
            )
            printed = sorted(row[0] for row in await cur.fetchall())
            for delivery_id in printed:
                await self._paper_event(tx, delivery_id, "printed", by_actor(actor))
            return len(printed)

        return await self._tx(run)

    async def confirm_paper(self, delivery_id: int, receipt: dict[str, Any], signed_at: float) -> None:
        """Record the signed 送达回证: the delivery becomes ``paper_delivered`` as of ``signed_at``."""

        async def run(tx: _Tx) -> None:
            await _paper_state(tx.conn, delivery_id, "paper_pending", "confirm")
            await tx.conn.execute(
                "UPDATE deliveries SET state = 'paper_delivered', delivered_at = %s, updated_at = %s, "
                "printed_at = COALESCE(printed_at, %s) WHERE id = %s",
                (signed_at, tx.now, tx.now, delivery_id),
            )
            await self._paper_event(tx, delivery_id, "confirmed", receipt)

        await self._tx(run)

    async def recall_paper(self, delivery_id: int, *, actor: str | None = None) -> None:
        """Return an unprinted fallback item to electronic delivery with a fresh retry budget."""

        async def run(tx: _Tx) -> None:
            row = await _paper_state(tx.conn, delivery_id, "paper_pending", "recall")
            if row["printed_at"] is not None:
                raise PaperStateError(f"delivery {delivery_id} was already printed: recall is only possible before")
            if row["channel"] == "paper":
                raise PaperStateError(
                    f"delivery {delivery_id} is paper by route or classification (涉密), not a fallback: "
                    "it cannot go electronic"
                )
            await tx.conn.execute(
                "UPDATE deliveries SET state = 'pending', attempt_offset = attempt_offset + attempts, attempts = 0, "
                "next_attempt_at = %s, updated_at = %s WHERE id = %s",
                (tx.now, tx.now, delivery_id),
            )
            await self._paper_event(tx, delivery_id, "recalled", by_actor(actor))

        await self._tx(run)

    async def return_paper(self, delivery_id: int, reason: str, *, actor: str | None = None) -> None:
        """Record that the item could not be served; it stays open (and may be printed again)."""

        async def run(tx: _Tx) -> None:
            await _paper_state(tx.conn, delivery_id, "paper_pending", "return")
            await tx.conn.execute(
                "UPDATE deliveries SET printed_at = NULL, last_error = %s, updated_at = %s WHERE id = %s",
                (f"paper returned: {reason}", tx.now, delivery_id),
            )
            await self._paper_event(tx, delivery_id, "returned", {"reason": reason, **by_actor(actor)})

        await self._tx(run)

    async def flag_paper(self, delivery_id: int, detail: dict[str, Any]) -> bool:
        """Flag (once) a paper item whose electronic channel turned out to hold the fact after all."""

        async def run(tx: _Tx) -> bool:
            await _paper_state(tx.conn, delivery_id, "paper_pending", "flag")
            cur = await tx.conn.execute(
                "SELECT 1 FROM paper_events WHERE delivery_id = %s AND kind = 'electronic_success'", (delivery_id,)
            )
            if await cur.fetchone() is not None:
                return False
            await self._paper_event(tx, delivery_id, "electronic_success", detail)
            return True

        return await self._tx(run)

    @staticmethod
    async def _paper_event(tx: _Tx, delivery_id: int, kind: str, detail: dict[str, Any]) -> None:
        await tx.conn.execute(
            "INSERT INTO paper_events (delivery_id, kind, at, detail) VALUES (%s, %s, %s, %s)",
            (delivery_id, kind, tx.now, json.dumps(detail, ensure_ascii=False, sort_keys=True)),
        )
        # Who and when, in the chain; the receipt's free text (note, scan path) stays in paper_events.
        who = {k: detail.get(k) for k in ("recorded_by", "signed_at", "method", "reason", "remote_id")}
        tx.audit(f"paper.{kind}", delivery_id, **who)

    # -- mapping list (审管事项关联映射清单) ---------------------------------------------------------------

    async def import_mapping(self, rows: Sequence[dict[str, Any]], *, source: str, digest: str) -> int | None:
        """Store ``rows`` as a new active mapping version, atomically; ``None`` if the active one has ``digest``."""

        async def run(tx: _Tx) -> int | None:
            conn = tx.conn
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)", (_LOCK_MAPPING,))
            cur = await conn.execute("SELECT digest FROM mapping_versions WHERE active")
            active = await cur.fetchone()
            if active and active[0] == digest:
                return None
            await conn.execute("UPDATE mapping_versions SET active = FALSE WHERE active")
            cur = await conn.execute(
                "INSERT INTO mapping_versions (imported_at, source, digest, row_count, active) "
                "VALUES (%s, %s, %s, %s, TRUE) RETURNING version",
                (tx.now, source, digest, len(rows)),
            )
            version = int((await cur.fetchone() or (0,))[0])
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO mapping_rows (version, row_json) VALUES (%s, %s)",
                    [(version, json.dumps(row, ensure_ascii=False, sort_keys=True)) for row in rows],
                )
            tx.audit("mapping.imported", version, source=source, digest=digest, rows=len(rows))
            return version

        return await self._tx(run)

    async def restore_mapping(self, version: int) -> None:
        """Make an earlier version active again; ``KeyError`` when there is no such version."""

        async def run(tx: _Tx) -> None:
            conn = tx.conn
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)", (_LOCK_MAPPING,))
            cur = await conn.execute("SELECT 1 FROM mapping_versions WHERE version = %s", (version,))
            if await cur.fetchone() is None:
                raise KeyError(version)
            await conn.execute("UPDATE mapping_versions SET active = FALSE WHERE active AND version <> %s", (version,))
            await conn.execute("UPDATE mapping_versions SET active = TRUE WHERE version = %s", (version,))
            tx.audit("mapping.restored", version)

        await self._tx(run)

    async def mapping_versions(self) -> list[dict[str, Any]]:
        """Every imported version, newest first, with which one is active."""
        return await self._fetch_dicts(
            "SELECT version, imported_at, source, digest, row_count, active FROM mapping_versions ORDER BY version DESC"
        )

    async def active_mapping_version(self) -> int | None:
        rows = await self._fetch("SELECT version FROM mapping_versions WHERE active")
        return int(rows[0][0]) if rows else None

    async def active_mapping(self) -> list[dict[str, Any]]:
        """The rows of the active mapping version (empty when none was imported)."""
        rows = await self._fetch(
            "SELECT r.row_json FROM mapping_rows r JOIN mapping_versions v ON v.version = r.version WHERE v.active"
        )
        return [json.loads(row[0]) for row in rows]

    async def reroute_unrouted(self, router: Router, *, batch: int = 500) -> int:
        """Route held messages in batches of ``batch`` (one transaction each), oldest id first.

        Rows are locked with ``SKIP LOCKED``: two instances rerouting after one import split the work
        instead of routing a message twice (its deliveries' idempotency keys would refuse it anyway).
        """
        total = 0
        after = ""
        while True:
            routed, scanned, after = await self._tx(self._reroute_batch, router, batch, after)
            total += routed
            if scanned < batch:
                return total

    async def _reroute_batch(self, tx: _Tx, router: Router, batch: int, after: str) -> tuple[int, int, str]:
        cur = await tx.conn.execute(
            "SELECT id, envelope FROM messages WHERE NOT routed AND id > %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (after, batch),
        )
        rows = await cur.fetchall()
        routed_ids: list[str] = []
        deliveries: list[tuple[Any, ...]] = []
        for message_id, body in rows:
            env = Envelope.from_stored(body)
            routes = list(router(env))
            if routes:
                deliveries.extend(_delivery_rows(env, routes, tx.now))
                routed_ids.append(message_id)
                tx.audit("message.routed", message_id, routes=route_names(routes))
        if routed_ids:
            await _insert_rows(tx.conn, _DELIVERIES, deliveries)
            await tx.conn.execute("UPDATE messages SET routed = TRUE WHERE id = ANY(%s)", (routed_ids,))
        return len(routed_ids), len(rows), rows[-1][0] if rows else after

    # -- operator actions and look-ups (admin API, web console; see SQLiteStore and OperatorStore) ----------

    async def find_messages(self, query: MessageQuery) -> tuple[list[dict[str, Any]], int]:
        where, args = message_filters(query, "%s")
        async with self._require_pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT COUNT(*) AS n FROM messages m{where}", args)
            total = int((await cur.fetchone() or {"n": 0})["n"])
            await cur.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m{where} ORDER BY m.received_at DESC, m.id DESC "
                "LIMIT %s OFFSET %s",
                (*args, query.limit, query.offset),
            )
            rows = await cur.fetchall()
            await _attach_deliveries(cur, rows)
        return rows, total

    async def message(self, message_id: str) -> dict[str, Any] | None:
        async with self._require_pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {MESSAGE_COLUMNS}, m.envelope FROM messages m WHERE m.id = %s", (message_id,))
            rows = await cur.fetchall()
            if not rows:
                return None
            await _attach_deliveries(cur, rows)
        rows[0]["envelope"] = json.loads(rows[0]["envelope"])
        return rows[0]

    async def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        async with self._require_pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.id = %s",
                (delivery_id,),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            await cur.execute(
                "SELECT attempt, started_at, finished_at, outcome, error_kind, error FROM attempts "
                "WHERE delivery_id = %s ORDER BY attempt",
                (delivery_id,),
            )
            row["attempt_log"] = await cur.fetchall()
        return row

    async def deliveries(
        self, *, state: str | None = None, destination: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        clauses, args = [], []
        if state is not None:
            clauses.append("d.state = %s")
            args.append(state)
        if destination is not None:
            clauses.append("d.destination = %s")
            args.append(destination)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self._require_pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT COUNT(*) AS n FROM deliveries d{where}", args)
            total = int((await cur.fetchone() or {"n": 0})["n"])
            await cur.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id{where} "
                "ORDER BY d.updated_at, d.id LIMIT %s OFFSET %s",
                (*args, limit, offset),
            )
            return await cur.fetchall(), total

    async def destination_overview(self) -> dict[str, dict[str, Any]]:
        overview: dict[str, dict[str, Any]] = {}
        for dest, state, count in await self._fetch(
            "SELECT destination, state, COUNT(*) FROM deliveries GROUP BY destination, state"
        ):
            entry = overview.setdefault(dest, {"counts": {s.value: 0 for s in DeliveryState}, "oldest_pending": None})
            entry["counts"][state] = int(count)
        # The oldest item still waiting to go out per destination: what an operator looks at for a stuck queue.
        for row in await self._fetch_dicts(
            f"SELECT DISTINCT ON (d.destination) {DELIVERY_COLUMNS} FROM deliveries d "
            "JOIN messages m ON m.id = d.message_id WHERE d.state IN ('pending', 'retry_wait', 'in_flight') "
            "ORDER BY d.destination, d.created_at, d.id"
        ):
            overview[row["destination"]]["oldest_pending"] = row
        return overview

    async def trace(self, correlation_id: str) -> list[dict[str, Any]]:
        async with self._require_pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.correlation_id = %s "
                "ORDER BY m.business_time, m.received_at, m.id",
                (correlation_id,),
            )
            rows = await cur.fetchall()
            await _attach_deliveries(cur, rows)
        return rows

    async def retry_dead(self, delivery_id: int, *, actor: str) -> None:
        async def run(tx: _Tx) -> None:
            state = await _locked_state(tx.conn, delivery_id)
            operator_target(delivery_id, state, ("dead",), "retry", "only a dead delivery is retried")
            await _reopen(tx, delivery_id)
            tx.audit("delivery.retried", delivery_id, actor=actor, previous="dead")

        await self._tx(run)

    async def resolve_uncertain(self, delivery_id: int, resolution: str, *, actor: str) -> None:
        if resolution not in ("delivered", "resend"):
            raise ValueError(f"resolution must be 'delivered' or 'resend', not {resolution!r}")

        async def run(tx: _Tx) -> None:
            state = await _locked_state(tx.conn, delivery_id)
            hint = "only an uncertain delivery is resolved"
            operator_target(delivery_id, state, ("uncertain",), "resolve", hint)
            if resolution == "delivered":
                await tx.conn.execute(
                    "UPDATE deliveries SET state = 'delivered', delivered_at = %s, verify_first = FALSE, "
                    "updated_at = %s WHERE id = %s",
                    (tx.now, tx.now, delivery_id),
                )
            else:
                await _reopen(tx, delivery_id)
                await tx.conn.execute("UPDATE deliveries SET verify_first = FALSE WHERE id = %s", (delivery_id,))
            tx.audit("delivery.resolved", delivery_id, actor=actor, resolution=resolution)

        await self._tx(run)

    async def replay(self, message_id: str, destination: str, *, actor: str) -> int:
        async def run(tx: _Tx) -> int:
            cur = await tx.conn.execute("SELECT envelope FROM messages WHERE id = %s", (message_id,))
            row = await cur.fetchone()
            if row is None:
                raise NotFoundError(f"there is no message {message_id}")
            env = Envelope.from_stored(row[0])
            cur = await tx.conn.execute(
                "SELECT revision, message_id FROM ledger WHERE type = %s AND business_key = %s",
                (env.type, env.business_key),
            )
            newest = await cur.fetchone()
            # The same key as every earlier delivery of this version of the fact to this receiver (see SQLiteStore).
            key = idempotency_key(destination, env)
            cur = await tx.conn.execute(
                "SELECT id, state FROM deliveries WHERE idempotency_key = %s FOR UPDATE", (key,)
            )
            existing = await cur.fetchone()
            replay_conflict(message_id, env.revision, newest, existing)
            if existing is None:
                await _insert_rows(tx.conn, _DELIVERIES, _delivery_rows(env, [Route(destination)], tx.now))
                cur = await tx.conn.execute("SELECT id FROM deliveries WHERE idempotency_key = %s", (key,))
                delivery_id = int((await cur.fetchone() or (0,))[0])
            else:
                delivery_id = int(existing[0])
                await _reopen(tx, delivery_id)
            tx.audit(
                "delivery.replayed",
                delivery_id,
                actor=actor,
                message=message_id,
                destination=destination,
                reopened=existing is not None,
            )
            return delivery_id

        return await self._tx(run)

    # -- reporting --------------------------------------------------------------------------------

    async def status(self) -> dict[str, object]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM rejected), "
                "(SELECT COUNT(*) FROM suppressions), (SELECT COUNT(*) FROM messages WHERE NOT routed)"
            )
            messages, rejected, suppressed, unrouted = await cur.fetchone() or (0, 0, 0, 0)
            cur = await conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            deliveries = {state.value: 0 for state in DeliveryState}
            for state, count in await cur.fetchall():
                deliveries[state] = int(count)
        return {
            "messages": int(messages),
            "rejected": int(rejected),
            "duplicates_suppressed": int(suppressed),
            "unrouted": int(unrouted),
            "deliveries": deliveries,
        }

    async def open_deliveries(self) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'in_flight', 'retry_wait')"
        )
        return int(rows[0][0])

    # -- push ingest, alerts, metrics (see SQLiteStore for the why) ---------------------------------

    async def use_nonce(self, scope: str, nonce: str, expires_at: float) -> bool:
        """Spend a signed request's nonce: True the first time, False on a replay (on any instance)."""

        async def run(tx: _Tx) -> bool:
            await tx.conn.execute("DELETE FROM ingest_nonces WHERE expires_at < %s", (tx.now,))
            cur = await tx.conn.execute(
                "INSERT INTO ingest_nonces (scope, nonce, expires_at) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                (scope, nonce, expires_at),
            )
            return await cur.fetchone() is not None

        return await self._tx(run)

    async def alerts_scanned(self) -> int:
        rows = await self._fetch("SELECT value FROM meta WHERE key = 'alerts_scanned'")
        return int(rows[0][0]) if rows else 0

    async def alert_candidates(
        self, *, after_seq: int, span: int, kinds: Sequence[str], detail_marks: Mapping[str, str]
    ) -> tuple[list[AuditEntry], int]:
        """Entries that may call for an alert among the next ``span`` (see ``SQLiteStore.alert_candidates``)."""
        tip = int((await self._fetch("SELECT COALESCE(MAX(seq), 0) FROM audit"))[0][0])
        reached = min(tip, after_seq + span)
        rows = await self._fetch(
            "SELECT seq, at, kind, subject, detail, prev_hash, hash FROM audit WHERE seq > %s AND seq <= %s "
            "AND (kind = ANY(%s) OR EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[]) AS m (k, mark) "
            "WHERE m.k = audit.kind AND strpos(audit.detail, m.mark) > 0)) ORDER BY seq",
            (after_seq, reached, list(kinds), list(detail_marks), list(detail_marks.values())),
        )
        return [AuditEntry(*row) for row in rows], reached

    async def claim_alerts(self, entries: Sequence[tuple[int, str, str]], scanned_to: int) -> list[int]:
        """Claim alerts by audit seq before firing them: of several instances, one claims each."""

        async def run(tx: _Tx) -> list[int]:
            fresh: list[int] = []
            if entries:
                cur = await tx.conn.execute(
                    "INSERT INTO alerts_fired (seq, kind, subject, fired_at) "
                    "SELECT s, k, sub, %s FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u (s, k, sub) "
                    "ON CONFLICT DO NOTHING RETURNING seq",
                    (tx.now, [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries]),
                )
                fresh = sorted(int(r[0]) for r in await cur.fetchall())
            await tx.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('alerts_scanned', %s) ON CONFLICT (key) DO UPDATE "
                "SET value = GREATEST(meta.value::BIGINT, excluded.value::BIGINT)::TEXT",
                (str(scanned_to),),
            )
            return fresh

        return await self._tx(run)

    async def delivery_metrics(self) -> dict[str, Any]:
        """Deliveries by (destination, state) and the oldest open delivery per destination (for /metrics)."""
        async with self._require_pool().connection() as conn:
            cur = await conn.execute("SELECT destination, state, COUNT(*) FROM deliveries GROUP BY destination, state")
            counts = {(d, s): int(n) for d, s, n in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT destination, MIN(created_at) FROM deliveries "
                "WHERE state IN ('pending', 'in_flight', 'retry_wait') GROUP BY destination"
            )
            oldest = {d: float(t) for d, t in await cur.fetchall()}
        return {"by_state": counts, "oldest_open": oldest}

    async def rejected(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent rejected inputs with their reasons (newest first)."""
        return await self._fetch_dicts(
            "SELECT id, source, position, reason, raw, received_at FROM rejected ORDER BY id DESC LIMIT %s", (limit,)
        )

    # -- deadlines (closed-loop timeliness; rules in gateway/deadlines.py, same contract as SQLite) --------

    async def deadline_position(self) -> int:
        """The audit sequence number up to which the deadline tracker has followed the chain."""
        rows = await self._fetch("SELECT value FROM meta WHERE key = 'deadlines_scanned'")
        return int(rows[0][0]) if rows else 0

    async def deadline_feed(
        self, *, after_seq: int, types: Sequence[str], limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        """State changes after ``after_seq`` that can open or close a deadline, and the last seq examined."""
        async with self._require_pool().connection() as conn:
            cur = await conn.execute(
                "SELECT seq, kind, subject FROM audit WHERE seq > %s ORDER BY seq LIMIT %s", (after_seq, limit)
            )
            rows = await cur.fetchall()
            relevant = [(int(seq), kind, subject) for seq, kind, subject in rows if kind in FEED_KINDS]
            message_ids = [s for _, k, s in relevant if k.startswith("message.")]
            delivery_ids = [int(s) for _, k, s in relevant if not k.startswith("message.")]
            cur = await conn.execute(
                "SELECT id, type, envelope FROM messages WHERE id = ANY(%s) AND type = ANY(%s)",
                (message_ids, list(types)),
            )
            messages = {mid: body for mid, _type, body in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT message_id, id, destination, channel FROM deliveries WHERE message_id = ANY(%s) ORDER BY id",
                (list(messages),),
            )
            routed: dict[str, list[tuple[int, str, str]]] = {}
            for mid, did, dest, channel in await cur.fetchall():
                routed.setdefault(mid, []).append((int(did), dest, channel))
            cur = await conn.execute(
                "SELECT d.id, m.envelope, d.destination, d.channel, d.remote_id, d.delivered_at FROM deliveries d "
                "JOIN messages m ON m.id = d.message_id WHERE d.id = ANY(%s) AND m.type = ANY(%s)",
                (delivery_ids, list(types)),
            )
            completed = {int(row[0]): row for row in await cur.fetchall()}
        items: list[dict[str, Any]] = []
        for seq, kind, subject in relevant:
            if kind.startswith("message."):
                if subject in messages:
                    items.append(
                        {"seq": seq, "kind": kind, "envelope": messages[subject], "deliveries": routed.get(subject, [])}
                    )
            elif int(subject) in completed:
                did, body, dest, channel, remote_id, delivered_at = completed[int(subject)]
                delivery = {
                    "id": int(did),
                    "destination": dest,
                    "channel": channel,
                    "remote_id": remote_id,
                    "delivered_at": delivered_at,
                }
                items.append({"seq": seq, "kind": kind, "envelope": body, "delivery": delivery})
        return items, (int(rows[-1][0]) if rows else after_seq)

    async def record_deadlines(
        self,
        opens: Sequence[Opening],
        closes: Sequence[Closing],
        *,
        after_seq: int | None = None,
        to_seq: int | None = None,
    ) -> tuple[int, int] | None:
        """Open and close deadlines in one transaction, moving the tracker's position only if it still is
        ``after_seq`` (else ``None``): instances following the same chain apply each change once."""

        async def run(tx: _Tx) -> tuple[int, int] | None:
            conn = tx.conn
            if after_seq is not None:
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('deadlines_scanned', '0') ON CONFLICT (key) DO NOTHING"
                )
                cur = await conn.execute("SELECT value FROM meta WHERE key = 'deadlines_scanned' FOR UPDATE")
                row = await cur.fetchone()
                if int(row[0] if row else 0) != after_seq:
                    return None
            opened = closed = 0
            marks = ", ".join(["%s"] * len(OPENING_COLUMNS))
            for o in opens:
                cur = await conn.execute(
                    f"INSERT INTO deadlines ({', '.join(OPENING_COLUMNS)}) VALUES ({marks}) "
                    "ON CONFLICT (correlation_id, kind, subject) DO NOTHING RETURNING id",
                    opening_values(o, tx.now),
                )
                inserted = await cur.fetchone()
                if inserted is not None:
                    opened += 1
                    tx.audit(
                        "deadline.opened", inserted[0], deadline=o.kind.value, loop=o.correlation_id,
                        of=o.subject or None, due_on=o.due_on.isoformat(), estimated=o.estimated or None,
                    )
            for c in closes:
                where, args = closing_filter(c)
                cur = await conn.execute(
                    f"SELECT id, due_on FROM deadlines WHERE state = 'open' AND {where.replace('?', '%s')} "
                    "ORDER BY id FOR UPDATE",
                    args,
                )
                for deadline_id, due_on in await cur.fetchall():
                    outcome = closing_outcome(c, due_on)
                    await conn.execute(
                        "UPDATE deadlines SET state = 'closed', outcome = %s, closed_by = %s, closed_at = %s, "
                        "closed_on = %s, department_name = COALESCE(department_name, %s), "
                        "department_code = COALESCE(department_code, %s) WHERE id = %s",
                        (outcome, c.closed_by, c.closed_at, c.closed_on.isoformat(), c.department_name,
                         c.department_code, deadline_id),
                    )
                    closed += 1
                    tx.audit("deadline.closed", deadline_id, deadline=c.kind.value, outcome=outcome, by=c.closed_by)
            if to_seq is not None:
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('deadlines_scanned', %s) ON CONFLICT (key) DO UPDATE "
                    "SET value = GREATEST(meta.value::BIGINT, excluded.value::BIGINT)::TEXT",
                    (str(to_seq),),
                )
            return opened, closed

        return await self._tx(run)

    async def open_deadlines(self, *, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Open deadlines in id order, a page at a time, with the state of the delivery each one tracks."""
        cols = ", ".join(f"dl.{c}" for c in DEADLINE_COLUMNS)
        rows = await self._fetch_dicts(
            f"SELECT {cols}, d.state AS delivery_state, d.destination, d.last_error FROM deadlines dl "
            "LEFT JOIN deliveries d ON d.id = dl.delivery_id WHERE dl.state = 'open' AND dl.id > %s "
            "ORDER BY dl.id LIMIT %s",
            (after_id, limit),
        )
        return [deadline_dict(list(r), list(r.values())) for r in rows]

    async def redate_deadlines(self, changes: Sequence[tuple[int, str, bool]]) -> int:
        """New due dates ``(id, due_on, estimated)`` for open deadlines (the calendar changed); returns how many."""

        async def run(tx: _Tx) -> int:
            count = 0
            for deadline_id, due_on, estimated in changes:
                cur = await tx.conn.execute(
                    "UPDATE deadlines SET due_on = %s, estimated = %s WHERE id = %s AND state = 'open' "
                    "AND (due_on <> %s OR estimated <> %s) RETURNING id",
                    (due_on, estimated, deadline_id, due_on, estimated),
                )
                if await cur.fetchone() is not None:
                    count += 1
                    tx.audit("deadline.redated", deadline_id, due_on=due_on, estimated=estimated)
            return count

        return await self._tx(run)

    async def escalate_to_paper(self, deadline_id: int, delivery_id: int, reason: str) -> bool:
        """Move a failing delivery (``retry_wait``) whose deadline is at risk to the paper queue; False if it moved on."""

        async def run(tx: _Tx) -> bool:
            cur = await tx.conn.execute(
                "UPDATE deliveries SET state = 'paper_pending', last_error = %s, updated_at = %s "
                "WHERE id = %s AND state = 'retry_wait' RETURNING destination, message_id",
                (reason, tx.now, delivery_id),
            )
            row = await cur.fetchone()
            if row is None:
                return False
            await tx.conn.execute("UPDATE deadlines SET escalated_at = %s WHERE id = %s", (tx.now, deadline_id))
            tx.audit(
                "delivery.paper_pending", delivery_id, destination=row[0], message=row[1],
                error_kind="deadline", deadline=deadline_id,
            )
            return True

        return await self._tx(run)

    async def closing_messages(
        self, types: Sequence[str], *, business_key: str | None = None, correlation_id: str | None = None
    ) -> list[str]:
        """Envelopes (JSON) of stored messages of ``types`` with that business key or in that loop, oldest fact first."""
        column, value = ("business_key", business_key) if business_key is not None else ("correlation_id", correlation_id)
        rows = await self._fetch(
            f"SELECT envelope FROM messages WHERE type = ANY(%s) AND {column} = %s ORDER BY business_time, id",
            (list(types), value),
        )
        return [row[0] for row in rows]

    async def deadlines(
        self, *, due_from: str | None = None, due_to: str | None = None, correlation_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Deadlines due between two days (ISO, inclusive) or of one loop, in due order (for reports and traces)."""
        clauses, args = [], []
        if due_from is not None:
            clauses.append("due_on >= %s")
            args.append(due_from)
        if due_to is not None:
            clauses.append("due_on <= %s")
            args.append(due_to)
        if correlation_id is not None:
            clauses.append("correlation_id = %s")
            args.append(correlation_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch(f"SELECT {', '.join(DEADLINE_COLUMNS)} FROM deadlines {where} ORDER BY due_on, id", args)
        return [deadline_dict(DEADLINE_COLUMNS, row) for row in rows]


# -- helpers ------------------------------------------------------------------------------------------


def _delivery_rows(env: Envelope, routes: Sequence[Any], now: float) -> list[tuple[Any, ...]]:
    """The outbox rows of one message: secret messages and paper routes go to the paper channel."""
    fact_key = f"{env.type}|{env.business_key}"
    rows = []
    for route in routes:
        paper = route.channel == "paper" or env.classification == Classification.secret
        state = DeliveryState.paper_pending if paper else DeliveryState.pending
        rows.append(
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
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class _RowsInsert:
    """An ``INSERT`` of many rows as one statement over one array per column (see ``_insert_rows``)."""

    sql: str
    width: int


def _rows_insert(table: str, columns: Sequence[tuple[str, str]], *, on_conflict: str = "") -> _RowsInsert:
    names = ", ".join(name for name, _ in columns)
    # Text arrays travel in binary: the text format escapes every element, and for envelopes of a few KiB
    # that escaping cost the intake more than the statements it saved. Numbers stay in text, where a
    # column mixing ints and floats still parses.
    arrays = ", ".join(f"%{'b' if kind == 'text' else 's'}::{kind}[]" for _, kind in columns)
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM unnest({arrays}) WITH ORDINALITY AS r ({names}, ord) "
        f"ORDER BY ord {on_conflict}"
    )
    return _RowsInsert(sql.strip(), len(columns))


def _arrays(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as columns: the parameters of an ``unnest`` over one array per column."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def _insert_rows(conn: Conn, insert: _RowsInsert, rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` in their order with one statement.

    Why not ``executemany``: it sends one statement per row, and the server binds and runs each and the
    client encodes and reads back each, inside the transaction of a page or an outcome batch. Over arrays
    the server runs one statement: PostgreSQL's CPU per relayed message fell by about a quarter, and the
    intake's by a fifth (docs/benchmarks.md). ``ORDER BY ord`` keeps the rows in the given order, which
    the audit queue's ids (the chain's order) rely on.
    """
    await conn.execute(insert.sql, _arrays(rows, insert.width))


_MESSAGES = _rows_insert(
    "messages",
    [
        ("id", "text"),
        ("type", "text"),
        ("source", "text"),
        ("business_key", "text"),
        ("revision", "int"),
        ("content_hash", "text"),
        ("classification", "text"),
        ("region", "text"),
        ("correlation_id", "text"),
        ("business_time", "text"),
        ("received_at", "float8"),
        ("routed", "bool"),
        ("envelope", "text"),
    ],
)
_DELIVERIES = _rows_insert(
    "deliveries",
    [
        ("message_id", "text"),
        ("destination", "text"),
        ("channel", "text"),
        ("fact_key", "text"),
        ("revision", "int"),
        ("idempotency_key", "text"),
        ("state", "text"),
        ("next_attempt_at", "float8"),
        ("created_at", "float8"),
        ("updated_at", "float8"),
    ],
    on_conflict="ON CONFLICT (idempotency_key) DO NOTHING",
)
_AUDIT_QUEUE = _rows_insert(
    "audit_queue", [("at", "float8"), ("kind", "text"), ("subject", "text"), ("detail", "text")]
)
_AUDIT = _rows_insert(
    "audit",
    [
        ("seq", "bigint"),
        ("at", "float8"),
        ("kind", "text"),
        ("subject", "text"),
        ("detail", "text"),
        ("prev_hash", "text"),
        ("hash", "text"),
    ],
)


async def _paper_state(conn: Conn, delivery_id: int, wanted: str, action: str) -> dict[str, Any]:
    cur = await conn.execute(
        "SELECT state, channel, printed_at FROM deliveries WHERE id = %s FOR UPDATE", (delivery_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise PaperStateError(f"there is no delivery {delivery_id}")
    if row[0] != wanted:
        raise PaperStateError(f"cannot {action} delivery {delivery_id}: it is {row[0]}, not {wanted}")
    return {"state": row[0], "channel": row[1], "printed_at": row[2]}


async def schema_version(conn: Conn) -> int | None:
    """The store's schema version in ``conn``'s schema, or ``None`` when there is no store there."""
    cur = await conn.execute("SELECT to_regclass('meta') IS NOT NULL")
    if not (await cur.fetchone() or (False,))[0]:
        return None
    cur = await conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(
    conn: Conn, *, create: bool = True, where: str = "the database", migrations: Sequence[Migration[str]] = MIGRATIONS
) -> int:
    """Bring the store in ``conn``'s schema to the newest version; returns the version it is at.

    Runs in one transaction under an advisory lock, so instances starting together migrate once and the
    others wait and find it done. A store newer than this code is refused (``StoreVersionError``).
    """
    latest = migrations[-1].version
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)", (_LOCK_MIGRATE,))
        version = await schema_version(conn)
        if version is None:
            if not create:
                raise StoreMissingError(f"no shenguan store in {where} (wrong --db or --config?)")
            await conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = 0
        if version > latest:
            raise StoreVersionError(where, version, latest)
        for m in migrations:
            if m.version > version:
                await conn.execute(m.apply)
        if version < latest:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(latest),),
            )
    return latest


# -- operator look-ups and actions ------------------------------------------------------------------------


async def _attach_deliveries(cur: psycopg.AsyncCursor[Any], messages: list[dict[str, Any]]) -> None:
    """Give each message row (a dict) its deliveries in id order, in one query for the whole page."""
    by_id: dict[str, list[dict[str, Any]]] = {m["id"]: [] for m in messages}
    for m in messages:
        m["deliveries"] = by_id[m["id"]]
    if not by_id:
        return
    await cur.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id "
        "WHERE d.message_id = ANY(%s) ORDER BY d.id",
        (list(by_id),),
    )
    for row in await cur.fetchall():
        by_id[row["message_id"]].append(row)


async def _locked_state(conn: Conn, delivery_id: int) -> str | None:
    """The delivery's state, its row locked until the transaction ends (None when there is no such delivery)."""
    cur = await conn.execute("SELECT state FROM deliveries WHERE id = %s FOR UPDATE", (delivery_id,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def _reopen(tx: _Tx, delivery_id: int) -> None:
    """Back to ``pending`` now with a fresh retry budget; earlier attempts keep their numbers (attempt_offset)."""
    await tx.conn.execute(
        "UPDATE deliveries SET state = 'pending', attempt_offset = attempt_offset + attempts, attempts = 0, "
        "next_attempt_at = %s, lease_owner = NULL, lease_expires_at = NULL, delivered_at = NULL, updated_at = %s "
        "WHERE id = %s",
        (tx.now, tx.now, delivery_id),
    )
