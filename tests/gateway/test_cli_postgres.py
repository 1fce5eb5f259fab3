"""Operator commands against a PostgreSQL store: ``--db postgresql://…`` works like a file path.

``status``, ``audit verify``, ``mapping`` and ``paper`` open the shared store with a small pool of their
own; they must refuse a database that holds no store and say so when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from factories import envelope
from gateway.cli import app
from gateway.store import DeliveryState, Outcome, Rejection, Route
from gateway.store.postgres import PostgresStore
from schemas import Classification

runner = CliRunner()
DATA = Path(__file__).parent / "data"


def fill(url: str) -> None:
    async def run() -> None:
        store = PostgresStore(url)
        await store.open()
        route = lambda _e: [Route("hlwjg")]  # noqa: E731
        page = [envelope("A"), envelope("A"), envelope("B"), envelope("S", classification=Classification.secret)]
        await store.ingest_page("zwfw", page, [Rejection("zwfw", "bad", "{")], "1", route)
        leased = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
        await store.complete("me", [Outcome(r.id, DeliveryState.delivered) for r in leased])
        await store.close()  # nothing chained yet: audit verify links the queued entries itself

    asyncio.run(run())


def invoke(*args: str) -> tuple[int, object]:
    result = runner.invoke(app, list(args))
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.output


def test_status_and_audit_verify_on_a_postgresql_store(pg_url: str) -> None:
    fill(pg_url)
    code, status = invoke("status", "--db", pg_url, "--json")
    assert code == 0, status
    assert isinstance(status, dict)
    assert status["messages"] == 3 and status["duplicates_suppressed"] == 1 and status["rejected"] == 1
    assert status["deliveries"]["delivered"] == 2 and status["deliveries"]["paper_pending"] == 1

    code, report = invoke("audit", "verify", "--db", pg_url, "--json")
    assert code == 0 and isinstance(report, dict) and report["ok"] and report["checked"] == 7, report

    # Tampering with a chained entry is found and named, as on SQLite.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE audit SET detail = replace(detail, '\"hlwjg\"', '\"zwfw\"') WHERE seq = 6")
    code, report = invoke("audit", "verify", "--db", pg_url, "--json")
    assert code == 1 and isinstance(report, dict) and report["first_broken"] == 6 and report["broken"] == "hash"


def test_mapping_and_paper_commands_on_a_postgresql_store(pg_url: str) -> None:
    code, report = invoke("mapping", "import", str(DATA / "mapping_valid.csv"), "--json", "--db", pg_url)
    assert code == 0 and isinstance(report, dict) and report["version"] == 1, report
    code, versions = invoke("mapping", "list", "--json", "--db", pg_url)
    assert code == 0 and isinstance(versions, list) and [v["active"] for v in versions] == [True]

    fill(pg_url)
    code, items = invoke("paper", "list", "--json", "--db", pg_url)
    assert code == 0 and isinstance(items, list) and len(items) == 1 and items[0]["classification"] == "secret"
    delivery = str(items[0]["id"])
    code, out = invoke("paper", "recall", delivery, "--db", pg_url)
    assert code == 2 and "not a fallback" in str(out)


def test_a_database_without_a_store_or_an_unreachable_server_is_one_clear_line(pg_url: str) -> None:
    code, out = invoke("status", "--db", pg_url)
    assert code == 2 and "no shenguan store in" in str(out)
    code, out = invoke("status", "--db", "postgresql://u:pw@127.0.0.1:1/x")
    assert code == 2 and "cannot connect to PostgreSQL" in str(out) and "pw" not in str(out)
