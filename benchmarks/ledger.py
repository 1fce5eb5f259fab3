"""Dedup decision latency with 1,000,000 facts in the ledger.

The dedup ledger is permanent (DESIGN §2.3), so the question an operator asks after a few years is whether
deciding "new, revision, duplicate or stale?" still costs the same with a million facts behind it. This
module answers it without a million HTTP calls:

1. ``fill_sqlite_ledger`` creates a store with the gateway's own schema (``SQLiteStore.open``) and bulk-inserts
   synthetic ledger rows in that schema — one ``executemany`` per chunk, one transaction, the fill itself
   with ``synchronous=OFF`` because it is test data, not the gateway's durability. The synthetic business
   keys have the shape of real 办件编号 (21 digits) but a prefix no generated approval uses.
2. Real approvals from the zwfw generator, decoded by the zwfw adapter's codec, are the sample: half of them
   are recorded in the ledger too (as after their first relay), half are not.
3. ``time_sqlite_decisions`` times ``SQLiteStore.ledger_decision`` — the very method ingest calls per
   envelope, a primary-key lookup plus ``decide`` — one decision at a time, inside a write transaction as in
   ingest, for three kinds of envelope: new facts, exact duplicates, and revisions (revision + 1, new
   content). p50 and p99 come out per kind and over all of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.zwfw.codec import to_envelope
from benchmarks.stats import percentile_ms
from gateway.dedup import Verdict
from gateway.store.sqlite import SQLiteStore
from mock_platforms.generator import generate_banjian
from schemas import Envelope

__all__ = ["fill_sqlite_ledger", "run_dedup_leg", "sample_envelopes", "time_sqlite_decisions"]

_TYPE = "approval.decided"
_FILLER_PREFIX = "99"  # no GB/T 2260 region code starts with 99, so no generated PROJID collides
_INSERT = (
    "INSERT INTO ledger (type, business_key, revision, content_hash, business_time, message_id, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def sample_envelopes(count: int, *, seed: int) -> list[Envelope]:
    """``count`` distinct real approvals: generated 办件 decoded by the zwfw codec."""
    return [to_envelope(item, source="zwfw") for item in generate_banjian(count, seed)]


def _filler_rows(facts: int, now: float) -> Iterator[tuple[Any, ...]]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(facts):
        key = f"{_FILLER_PREFIX}{i:019d}"
        yield (
            _TYPE,
            key,
            1,
            hashlib.sha256(key.encode()).hexdigest(),
            (start + timedelta(seconds=i)).isoformat(),
            str(uuid.UUID(int=i)),
            now,
        )


def _ledger_row(env: Envelope, now: float) -> tuple[Any, ...]:
    return (env.type, env.business_key, env.revision, env.content_hash, env.time.isoformat(), env.id, now)


def fill_sqlite_ledger(path: Path, facts: int, known: list[Envelope], *, chunk: int = 50_000) -> float:
    """Create a store at ``path`` and put ``facts`` ledger rows in it, ``known`` among them; returns seconds.

    ``known`` are spread through the fill (not appended at the end) so that their keys sit in B-tree pages
    written at different times, as they would after years of operation.
    """
    started = time.perf_counter()

    async def create() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    asyncio.run(create())
    now = time.time()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        filler = _filler_rows(facts - len(known), now)
        every = max(1, (facts - len(known)) // max(1, len(known)))
        pending = list(known)
        batch: list[tuple[Any, ...]] = []
        for i, row in enumerate(filler):
            batch.append(row)
            if pending and i % every == 0:
                batch.append(_ledger_row(pending.pop(), now))
            if len(batch) >= chunk:
                conn.executemany(_INSERT, batch)
                batch.clear()
        batch.extend(_ledger_row(env, now) for env in pending)
        conn.executemany(_INSERT, batch)
        conn.execute("COMMIT")
        count = conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    finally:
        conn.close()
    if count != facts:
        raise RuntimeError(f"the ledger holds {count} facts after the fill, expected {facts}")
    return time.perf_counter() - started


def time_sqlite_decisions(path: Path, cases: dict[str, list[Envelope]], *, page: int = 200) -> dict[str, Any]:
    """Time ``SQLiteStore.ledger_decision`` per envelope; per-kind and overall p50/p99 in ms.

    Decisions run ``page`` at a time inside ``BEGIN IMMEDIATE`` (as an ingest page does) on a connection set
    up as the store sets up its own; nothing is written, each page is rolled back. A decision that does not
    come out as its kind says (a duplicate judged new, say) is an error, not a data point.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    expected = {"new": Verdict.new, "duplicate": Verdict.duplicate, "revision": Verdict.revision}
    timings: dict[str, list[float]] = {}
    try:
        for kind, envelopes in cases.items():
            seconds: list[float] = []
            for first in range(0, len(envelopes), page):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for env in envelopes[first : first + page]:
                        started = time.perf_counter()
                        decision = SQLiteStore.ledger_decision(conn, env)
                        seconds.append(time.perf_counter() - started)
                        if decision.verdict != expected[kind]:
                            raise RuntimeError(f"{kind} envelope {env.id} was decided {decision.verdict.value}")
                finally:
                    conn.execute("ROLLBACK")
            timings[kind] = seconds
    finally:
        conn.close()
    every = [s for seconds in timings.values() for s in seconds]
    result: dict[str, Any] = {
        "decisions": len(every),
        "p50_ms": percentile_ms(every, 50),
        "p99_ms": percentile_ms(every, 99),
    }
    for kind, seconds in timings.items():
        result[kind] = {"p50_ms": percentile_ms(seconds, 50), "p99_ms": percentile_ms(seconds, 99)}
    return result


def revision_of(env: Envelope) -> Envelope:
    """The next revision of ``env``'s fact with changed content (a 重报), as the ledger sees it."""
    changed = hashlib.sha256(f"{env.content_hash}:rev".encode()).hexdigest()
    return env.model_copy(update={"revision": env.revision + 1, "content_hash": changed})


def run_dedup_leg(workdir: Path, *, facts: int, sample: int, seed: int) -> dict[str, Any]:
    """Fill an SQLite ledger with ``facts`` facts and time ``3 × sample`` decisions (new, duplicate, revision)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "ledger.db"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    envelopes = sample_envelopes(2 * sample, seed=seed)
    known, unknown = envelopes[:sample], envelopes[sample:]
    fill_s = fill_sqlite_ledger(path, facts, known)
    cases = {"new": unknown, "duplicate": known, "revision": [revision_of(env) for env in known]}
    result = time_sqlite_decisions(path, cases)
    return {"leg": "dedup", "store": "sqlite", "facts": facts, "fill_s": round(fill_s, 1), **result}
