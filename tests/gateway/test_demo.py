"""``shenguan demo``: the closed loop across all five platform families, faults on, checked platform by platform."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from gateway import demo
from gateway.cli import app
from gateway.demo import demo_config, render_summary

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``shenguan demo`` configures logging (level error) for the process; later tests must not inherit it."""
    yield
    structlog.reset_defaults()


def test_the_whole_loop_reaches_every_platform_exactly_once() -> None:
    result = runner.invoke(app, ["demo", "--count", "60", "--json"])
    summary = json.loads(result.stdout)
    assert result.exit_code == 0, render_summary(summary)
    assert summary["ok"] and summary["settled"]
    platforms = summary["platforms"]
    assert set(platforms) == {"hlwjg", "zwfw", "credit", "soap", "specialty", "paper"}
    for name, row in platforms.items():
        assert row["held"] == row["expected"] > 0 and row["duplicate_creations"] == 0, name
        assert row["stale"] in (None, 0), name
    assert platforms["soap"]["expected"] == 60 == summary["generated"]["approvals"]
    assert platforms["zwfw"]["expected"] > 3 * 60, "claims, inspections, results … flowed back for every task"
    assert platforms["hlwjg"]["expected"] > 60, "approvals, and the requests and feedback of the approval side"
    gateway = summary["gateway"]
    assert gateway["duplicates_suppressed"] > 0 and gateway["rejected"] == 0 and gateway["unrouted"] == 0
    assert gateway["deliveries"]["dead"] == gateway["deliveries"]["uncertain"] == 0
    assert gateway["deliveries"]["paper_pending"] == platforms["paper"]["expected"], "the paper route's channel"


def test_the_check_fails_when_a_platform_holds_too_few_or_too_many_or_an_old_version() -> None:
    expected = {"zwfw": {("license.revocation.advised", "CX1"): 2, ("supervision.result.reported", "JG1"): 1}}
    base = {
        "hlwjg": {"accepted": 0, "duplicate_creations": 0, "rejected": 0, "records": [], "claims": []},
        "credit": {"accepted": 0, "duplicate_creations": 0, "rejected": 0},
        "soap": {"accepted": 0, "duplicate_creations": 0, "rejected": 0, "records": []},
        "specialty": {"accepted": 2, "duplicate_creations": 0, "rejected": 0},
    }

    def zwfw(records: list[tuple[str, int, bool]], duplicates: int = 0) -> dict[str, Any]:
        held = [{"key": k, "dataVersion": v, "duplicate": d} for k, v, d in records]
        return {"accepted": len({k for k, _, _ in records}), "duplicate_creations": duplicates, "rejected": 0} | {
            "records": held
        }

    def rows(report: dict[str, Any]) -> dict[str, Any]:
        return demo._platform_rows(expected, base | {"zwfw": report}, {}, {"specialty_rows": 2})

    assert rows(zwfw([("CX1", 2, False), ("JG1", 1, False)]))["zwfw"]["ok"]
    assert not rows(zwfw([("CX1", 2, False)]))["zwfw"]["ok"], "one lost"
    stale = rows(zwfw([("CX1", 1, False), ("JG1", 1, False)]))["zwfw"]
    assert (stale["ok"], stale["stale"]) == (False, 1), "the re-report never arrived"
    doubled = rows(zwfw([("CX1", 2, False), ("CX1", 2, True), ("JG1", 1, False)], duplicates=1))["zwfw"]
    assert not doubled["ok"] and doubled["held"] == doubled["expected"], "counts alone would not catch it"
    base["specialty"]["accepted"] = 1
    assert not rows(zwfw([("CX1", 2, False), ("JG1", 1, False)]))["specialty"]["ok"], "a 前置库 row left unread"
    assert demo._stale({("a", "X"): 1}, Counter({("X", 1): 1})) == 0


def test_the_command_exits_non_zero_when_the_demo_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    row = {"role": "r", "expected": 2, "held": 1, "duplicate_creations": 0, "rejected": 0, "stale": None, "ok": False}
    status = {"messages": 1, "rejected": 0, "duplicates_suppressed": 0, "unrouted": 0}
    status["deliveries"] = {s: 0 for s in ("pending", "in_flight", "retry_wait", "delivered", "dead", "uncertain")}
    status["deliveries"] |= {"paper_pending": 0, "paper_delivered": 0}
    summary = {
        "ok": False,
        "settled": True,
        "elapsed_s": 1.0,
        "generated": {
            "approvals": 1,
            "zwfw_feed_items": 1,
            "specialty_rows": 0,
            "requests": {"guidance": 0},
            "supervision_events": 0,
        },
        "faults": demo.DEMO_FAULTS,
        "platforms": {"credit": row},
        "gateway": status,
    }

    async def failing(**_kwargs: Any) -> dict[str, Any]:
        return summary

    monkeypatch.setattr(demo, "run_demo", failing)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 1 and "MISMATCH" in result.stdout and "FAILED" in result.stdout


def test_the_demo_config_is_the_five_family_loop(tmp_path: Any) -> None:
    config = demo_config("http://127.0.0.1:8700", tmp_path / "g.db")
    assert {s.adapter for s in config.sources.values()} == {"zwfw", "specialty", "zwfw-linkage", "hlwjg-events"}
    assert set(config.destinations) == {"hlwjg", "zwfw", "credit", "soap"}
    assert config.sources["gcjs"].adapter_options()["url"] == f"sqlite:///{tmp_path / 'mock-specialty.db'}"
    assert any(r.channel == "paper" for r in config.routes)
