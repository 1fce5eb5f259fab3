"""What only the SQLite store does: one process per database file, and its own migrations (the contract
shared with PostgreSQL is in ``test_store.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from factories import envelope
from gateway.store import DeliveryState, Outcome, Route
from gateway.store.base import idempotency_key
from gateway.store.common import StoreVersionError
from gateway.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, StoreLockedError


async def test_one_process_per_database_file(tmp_path) -> None:
    first = SQLiteStore(tmp_path / "x.db")
    await first.open()
    try:
        with pytest.raises(StoreLockedError, match="in use by another shenguan process"):
            await SQLiteStore(tmp_path / "x.db").open()
        reader = SQLiteStore(tmp_path / "x.db")
        await reader.open(exclusive=False)  # status readers do not need the lock
        await reader.close()
    finally:
        await first.close()


V1_SCHEMA = (Path(__file__).parent / "data" / "sqlite_schema_v1.sql").read_text(encoding="utf-8")


def _shape(db: Path) -> dict[str, object]:
    """Tables with their columns (name, type, not-null, default) and the index names: what a schema is."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        shape: dict[str, object] = {
            t: sorted((c[1], c[2], c[3], c[4]) for c in conn.execute(f"PRAGMA table_info({t})")) for t in tables
        }
        shape["indexes"] = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))
    return shape


def _first_release_store(db: Path) -> str:
    """A database as the first release left it: its schema, version 1, one message with a pending delivery."""
    env = envelope("A")
    with sqlite3.connect(db) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, 1, ?, 'public', '320700', ?, ?, 0, 1, ?)",
            (env.id, env.type, env.source, env.business_key, env.content_hash, env.correlation_id,
             env.time.isoformat(), env.model_dump_json()),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO ledger VALUES (?, ?, 1, ?, ?, ?, 0)",
            (env.type, env.business_key, env.content_hash, env.time.isoformat(), env.id),
        )
        conn.execute(
            "INSERT INTO deliveries (message_id, destination, channel, fact_key, revision, idempotency_key, state, "
            "next_attempt_at, created_at, updated_at) VALUES (?, 'hlwjg', 'platform', ?, 1, ?, 'pending', 0, 0, 0)",
            (env.id, f"{env.type}|{env.business_key}", idempotency_key("hlwjg", env)),
        )
    return env.id


async def test_a_store_from_the_first_release_is_migrated_to_the_current_schema(tmp_path) -> None:
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    message_id = _first_release_store(old)
    for db in (old, fresh, old):  # the second open of the old store finds nothing left to do
        store = SQLiteStore(db, synchronous="NORMAL")
        await store.open()
        await store.close()
    assert _shape(old) == _shape(fresh), "migrations + SCHEMA give exactly what a new store gets"
    with sqlite3.connect(old) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert SCHEMA_VERSION == MIGRATIONS[-1].version > 1

    # What the first release stored still works: dedup against its ledger, and its delivery goes out.
    store = SQLiteStore(old, synchronous="NORMAL")
    await store.open()
    try:
        again = await store.ingest_page("zwfw", [envelope("A")], [], "1", lambda _e: [Route("hlwjg")])
        assert again.duplicates == 1 and again.verdicts[0].original_message_id == message_id
        [row] = await store.lease_due(owner="me", destination="hlwjg", limit=5, lease_s=60)
        assert row.message_id == message_id
        await store.complete("me", [Outcome(row.id, DeliveryState.paper_pending, error="budget spent")])
        await store.recall_paper(row.id)  # uses the migrated columns (printed_at, attempt_offset)
        assert (await store.status())["deliveries"]["pending"] == 1
    finally:
        await store.close()


async def test_a_store_written_by_a_newer_shenguan_is_refused(tmp_path) -> None:
    db = tmp_path / "new.db"
    store = SQLiteStore(db)
    await store.open()
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreVersionError, match="upgrade shenguan"):
        await SQLiteStore(db).open()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    store = SQLiteStore(db)
    await store.open()  # the refused open released its lock
    await store.close()
