"""The audit chain: every state change leaves an entry; tampering is found and named."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from typer.testing import CliRunner

from factories import envelope
from gateway.audit import GENESIS, AuditEntry, entry_hash, verify_entries
from gateway.cli import app
from gateway.store import DeliveryState, Outcome, Rejection, Route
from gateway.store.sqlite import SQLiteStore

runner = CliRunner()


def fill(db) -> None:
    async def run() -> None:
        store = SQLiteStore(db, synchronous="NORMAL")
        await store.open()
        route = lambda _e: [Route("hlwjg")]  # noqa: E731
        await store.ingest_page(
            "zwfw", [envelope("A"), envelope("A"), envelope("B")], [Rejection("zwfw", "bad", "{")], "1", route
        )
        leased = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
        await store.complete("me", [Outcome(r.id, DeliveryState.delivered) for r in leased])
        await store.close()

    asyncio.run(run())


def verify(db) -> tuple[int, dict]:
    result = runner.invoke(app, ["audit", "verify", "--db", str(db), "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_state_changes_and_suppressions_are_in_the_chain(tmp_path) -> None:
    db = tmp_path / "a.db"
    fill(db)
    code, report = verify(db)
    assert code == 0 and report["ok"] and report["checked"] == 6
    kinds = [row[0] for row in sqlite3.connect(db).execute("SELECT kind FROM audit ORDER BY seq")]
    assert kinds == [
        "message.accepted",
        "message.suppressed",  # the auditor's proof that A was not reported twice
        "message.accepted",
        "message.rejected",
        "delivery.delivered",
        "delivery.delivered",
    ]
    details = " ".join(row[0] for row in sqlite3.connect(db).execute("SELECT detail FROM audit"))
    assert "91320700MA1X2Y3K05" not in details and "13800138000" not in details, "metadata only"


def test_flipping_one_byte_is_found_and_named(tmp_path) -> None:
    db = tmp_path / "a.db"
    fill(db)
    with sqlite3.connect(db) as conn:
        detail = conn.execute("SELECT detail FROM audit WHERE seq = 3").fetchone()[0]
        conn.execute("UPDATE audit SET detail = ? WHERE seq = 3", (detail.replace('"B"', '"C"', 1),))
    code, report = verify(db)
    assert code == 1 and report["first_broken"] == 3 and "entry 3 (message.accepted" in report["reason"]
    text = runner.invoke(app, ["audit", "verify", "--db", str(db)]).output
    assert "BROKEN at entry 3" in text


def test_a_removed_entry_is_named(tmp_path) -> None:
    db = tmp_path / "a.db"
    fill(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 2")
    code, report = verify(db)
    assert code == 1 and report["first_broken"] == 3 and "entry 2 is missing" in report["reason"]


def test_verify_walks_links_not_just_hashes() -> None:
    first = AuditEntry(1, 1.0, "k", "s", "{}", GENESIS, entry_hash(GENESIS, 1, 1.0, "k", "s", "{}"))
    forged = AuditEntry(2, 2.0, "k", "s", "{}", "f" * 64, entry_hash("f" * 64, 2, 2.0, "k", "s", "{}"))
    result = verify_entries([first, forged])
    assert not result.ok and result.first_broken == 2 and "does not link" in (result.reason or "")
