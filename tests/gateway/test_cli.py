"""The command line: status, adapters list, and how mistakes are reported (the demo: test_demo.py)."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from factories import envelope
from gateway.cli import app
from gateway.store import Route
from gateway.store.sqlite import SQLiteStore

runner = CliRunner()


def test_status_json_has_the_documented_shape(tmp_path) -> None:
    db = tmp_path / "s.db"

    async def fill() -> None:
        store = SQLiteStore(db)
        await store.open()
        await store.ingest_page("zwfw", [envelope("A"), envelope("A")], [], "1", lambda _e: [Route("hlwjg")])
        await store.close()

    asyncio.run(fill())
    result = runner.invoke(app, ["status", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["messages"] == 1 and counts["duplicates_suppressed"] == 1
    assert set(counts) == {"messages", "rejected", "duplicates_suppressed", "unrouted", "deliveries"}
    assert set(counts["deliveries"]) == {
        "pending",
        "in_flight",
        "retry_wait",
        "delivered",
        "dead",
        "uncertain",
        "paper_pending",
        "paper_delivered",
    }


def test_status_of_a_missing_store_says_so(tmp_path) -> None:
    result = runner.invoke(app, ["status", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no store at" in result.output


def test_bad_config_is_one_clear_line(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[[routes]]\ntype = 'approval.decided'\ndestinations = ['x']\n")
    result = runner.invoke(app, ["serve", "--config", str(path)])
    assert result.exit_code == 2 and "error: invalid configuration" in result.output
    assert "Traceback" not in result.output


def test_adapters_list_shows_the_built_ins() -> None:
    result = runner.invoke(app, ["adapters", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["zwfw"]["direction"] == "both" and rows["hlwjg"]["direction"] == "destination"
    linkage = rows["zwfw-linkage"]
    assert linkage["direction"] == "source" and "approval.feedback.sent" in linkage["event_types"]
    assert "approval.decided" in rows["hlwjg"]["event_types"] and rows["hlwjg"]["origin"].startswith("shenguan")
