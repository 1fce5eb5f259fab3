"""Audit chain options: SM3 or SHA-256, one algorithm per chain, batched appends, metadata-only or full mode.

The tamper tests change one byte — of one column through SQL, and of the database file itself — and
expect ``shenguan audit verify`` to name exactly the entry that was touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import envelope
from gateway import audit
from gateway.audit import AuditAlgorithmError, entry_hash, hex_digest
from gateway.cli import app
from gateway.store import DeliveryState, Outcome, Rejection, Route
from gateway.store.sqlite import SQLiteStore

runner = CliRunner()
ALGORITHMS = ["sha256", "sm3"]

# GB/T 32905-2016 Appendix A test vectors.
SM3_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


def fill(db: Path, algorithm: str | None, *, mode: str = "metadata") -> None:
    async def run() -> None:
        store = SQLiteStore(db, synchronous="NORMAL", audit_algorithm=algorithm, audit_mode=mode)
        await store.open()
        route = lambda _e: [Route("hlwjg")]  # noqa: E731
        await store.ingest_page(
            "zwfw", [envelope("A"), envelope("A"), envelope("B")], [Rejection("zwfw", "bad", "{")], "1", route
        )
        leased = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
        await store.complete("me", [Outcome(r.id, DeliveryState.delivered) for r in leased])
        await store.close()

    asyncio.run(run())


def verify(db: Path) -> tuple[int, dict]:
    result = runner.invoke(app, ["audit", "verify", "--db", str(db), "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(("data", "expected"), SM3_VECTORS)
def test_sm3_matches_the_standard_vectors_in_both_implementations(data: bytes, expected: str) -> None:
    assert hex_digest(data, "sm3") == expected
    assert audit._sm3_gmssl(data) == expected, "gmssl (the fallback where OpenSSL lacks SM3)"
    if "sm3" in hashlib.algorithms_available:
        assert audit._sm3_openssl(data) == expected


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(AuditAlgorithmError, match="sha256, sm3"):
        hex_digest(b"x", "md5")
    with pytest.raises(AuditAlgorithmError):
        SQLiteStore(":memory:", audit_algorithm="md5")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_chain_is_hashed_with_the_configured_algorithm(tmp_path: Path, algorithm: str) -> None:
    db = tmp_path / "a.db"
    fill(db, algorithm)
    code, report = verify(db)
    assert code == 0 and report["ok"] and report["checked"] == 6 and report["algorithm"] == algorithm
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'audit_algorithm'").fetchone()[0] == algorithm
        seq, at, kind, subject, detail, prev, digest = conn.execute("SELECT * FROM audit WHERE seq = 2").fetchone()
    assert digest == entry_hash(prev, seq, at, kind, subject, detail, algorithm=algorithm)
    other = "sm3" if algorithm == "sha256" else "sha256"
    assert digest != entry_hash(prev, seq, at, kind, subject, detail, algorithm=other)


def _flip(text: str, at: int | None = None) -> str:
    """Change exactly one character (one byte: ASCII in, ASCII out)."""
    i = len(text) // 2 if at is None else at
    ch = text[i]
    repl = "0" if ch != "0" else "1"
    return text[:i] + repl + text[i + 1 :]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    ("column", "broken"),
    [("detail", "hash"), ("kind", "hash"), ("subject", "hash"), ("hash", "hash"), ("prev_hash", "link")],
)
def test_one_flipped_byte_in_any_column_is_named(tmp_path: Path, algorithm: str, column: str, broken: str) -> None:
    db = tmp_path / "a.db"
    fill(db, algorithm)
    with sqlite3.connect(db) as conn:
        value = conn.execute(f"SELECT {column} FROM audit WHERE seq = 3").fetchone()[0]
        conn.execute(f"UPDATE audit SET {column} = ? WHERE seq = 3", (_flip(str(value)),))
    code, report = verify(db)
    assert code == 1, report
    assert report["first_broken"] == 3 and report["broken"] == broken
    assert report["checked"] == 2 and report["algorithm"] == algorithm
    if column not in ("kind", "subject"):
        assert report["kind"] == "message.accepted"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_changed_timestamp_is_named(tmp_path: Path, algorithm: str) -> None:
    db = tmp_path / "a.db"
    fill(db, algorithm)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET at = at + 1 WHERE seq = 5")
    code, report = verify(db)
    assert code == 1 and report["first_broken"] == 5 and report["kind"] == "delivery.delivered"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_byte_flipped_in_the_database_file_is_named(tmp_path: Path, algorithm: str) -> None:
    """Tampering below SQL: one byte of entry 4's stored hash, edited in the file on disk."""
    db = tmp_path / "a.db"
    fill(db, algorithm)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        target = conn.execute("SELECT hash FROM audit WHERE seq = 4").fetchone()[0].encode()
    raw = bytearray(db.read_bytes())
    # entry 4's hash is stored twice: as its own hash and as entry 5's prev_hash; edit the first copy only
    offset = raw.find(target)
    assert offset >= 0
    raw[offset + 10] = ord("0") if raw[offset + 10] != ord("0") else ord("1")
    db.write_bytes(bytes(raw))
    code, report = verify(db)
    assert code == 1 and report["first_broken"] in (4, 5), report
    with sqlite3.connect(db) as conn:
        changed = conn.execute("SELECT seq FROM audit WHERE hash != ? AND seq = 4", (target.decode(),)).fetchone()
    # whichever copy the file held first, the entry named is the one whose stored bytes were changed
    assert report["first_broken"] == (4 if changed else 5)


def test_a_configured_algorithm_that_contradicts_the_chain_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, "sha256")

    async def reopen(algorithm: str | None) -> str:
        store = SQLiteStore(db, audit_algorithm=algorithm)
        await store.open()
        try:
            return store.audit_algorithm
        finally:
            await store.close()

    with pytest.raises(AuditAlgorithmError, match=r"hashed with sha256.*asks for sm3"):
        asyncio.run(reopen("sm3"))
    assert asyncio.run(reopen(None)) == "sha256", "operator commands read the chain's own algorithm"
    assert asyncio.run(reopen("sha256")) == "sha256", "the lock was released after the refusal"


def test_an_entry_in_the_other_algorithm_is_named_as_a_mix(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, "sha256")
    with sqlite3.connect(db) as conn:
        tip, prev = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq = tip + 1
        digest = entry_hash(prev, seq, 1.0, "message.accepted", "X", "{}", algorithm="sm3")
        conn.execute("INSERT INTO audit VALUES (?, 1.0, 'message.accepted', 'X', '{}', ?, ?)", (seq, prev, digest))
    code, report = verify(db)
    assert code == 1 and report["first_broken"] == seq and report["broken"] == "algorithm"
    assert "hashed with sm3" in report["reason"]


def test_a_relabelled_chain_fails_at_its_first_entry(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, "sha256")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = 'sm3' WHERE key = 'audit_algorithm'")
    code, report = verify(db)
    assert code == 1 and report["first_broken"] == 1 and report["broken"] == "algorithm"


def test_a_transaction_reads_the_chain_tip_once(tmp_path: Path) -> None:
    async def run() -> list[str]:
        store = SQLiteStore(tmp_path / "b.db", synchronous="NORMAL")
        await store.open()
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
        envs = [envelope(f"3207002611210000{i:05d}") for i in range(50)]
        await store.ingest_page("zwfw", envs, [], "1", lambda _e: [Route("hlwjg")])
        store._conn.set_trace_callback(None)  # type: ignore[union-attr]
        await store.close()
        return statements

    statements = asyncio.run(run())
    tip_reads = [s for s in statements if "FROM audit ORDER BY seq DESC" in s]
    assert len(tip_reads) == 1, "one tip read for 50 entries"
    with sqlite3.connect(tmp_path / "b.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 50
    assert verify(tmp_path / "b.db")[0] == 0


def test_a_rolled_back_transaction_leaves_no_entries(tmp_path: Path) -> None:
    async def run() -> None:
        store = SQLiteStore(tmp_path / "c.db", synchronous="NORMAL")
        await store.open()

        def boom(_env: object) -> list[Route]:
            raise RuntimeError("router failed")

        with pytest.raises(RuntimeError):
            await store.ingest_page("zwfw", [envelope("A")], [Rejection("zwfw", "bad", "{")], "1", boom)
        await store.ingest_page("zwfw", [envelope("B")], [], "1", lambda _e: [Route("hlwjg")])
        await store.close()

    asyncio.run(run())
    with sqlite3.connect(tmp_path / "c.db") as conn:
        assert conn.execute("SELECT seq, kind FROM audit").fetchall() == [(1, "message.accepted")]
    assert verify(tmp_path / "c.db")[0] == 0


@pytest.mark.parametrize(("mode", "personal"), [("metadata", False), ("full", True)])
def test_metadata_mode_keeps_personal_data_out(tmp_path: Path, mode: str, personal: bool) -> None:
    db = tmp_path / "a.db"
    fill(db, "sm3", mode=mode)
    details = " ".join(row[0] for row in sqlite3.connect(db).execute("SELECT detail FROM audit"))
    assert ("13800138000" in details) is personal
    assert ("王某某" in details) is personal
    assert verify(db)[0] == 0


def test_text_report_names_entry_and_what_broke(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, "sm3")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET prev_hash = ? WHERE seq = 2", ("f" * 64,))
    text = runner.invoke(app, ["audit", "verify", "--db", str(db)]).output
    assert "BROKEN at entry 2 (link)" in text and "sm3" in text
