"""The timeliness report (考核): counting rules, grouping, rates, and ``shenguan report timeliness`` on a store."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.store.deadlines import Closing, DeadlineKind, DeadlineOutcome, Opening
from gateway.store.sqlite import SQLiteStore
from gateway.timeliness import render_csv, render_text, timeliness

AS_OF = date(2026, 11, 25)
NOV = {"start": date(2026, 11, 1), "end": date(2026, 11, 30), "as_of": AS_OF}


def opening(loop: str, kind: DeadlineKind, due: date, *, region: str, dept: str | None, subject: str = "") -> Opening:
    return Opening(
        correlation_id=loop,
        kind=kind,
        subject=subject or kind.value,
        started_on=date(2026, 11, 2),
        working_days=2,
        due_on=due,
        estimated=False,
        basis="default",
        opened_by=f"m-{loop}",
        region=region,
        item_code="11320700MB123456794000117001",
        item_name="食品经营许可",
        department_name=dept,
        department_code=None if dept is None else f"code-{dept}",
    )


def closing(loop: str, kind: DeadlineKind, on: date, outcome: DeadlineOutcome | None = None) -> Closing:
    return Closing(kind, f"c-{loop}", 0.0, on, correlation_id=loop, outcome=outcome)


PUSH, CLAIM = DeadlineKind.push, DeadlineKind.claim
DUE = date(2026, 11, 20)
OPENS = [
    opening("A", PUSH, DUE, region="320700", dept="市场监管局"),
    opening("B", PUSH, DUE, region="320100", dept="卫健委"),
    opening("C", PUSH, DUE, region="320100", dept="卫健委"),  # never delivered: overdue
    opening("A", CLAIM, DUE, region="320700", dept="市场监管局"),
    opening("B", CLAIM, DUE, region="320100", dept="卫健委"),
    opening("E", CLAIM, DUE, region="320100", dept=None),
    opening("D", CLAIM, date(2026, 11, 27), region="320700", dept="市场监管局"),  # not yet due: pending
    opening("F", CLAIM, date(2026, 12, 2), region="320700", dept="市场监管局"),  # due in December: not counted
]
CLOSES = [
    closing("A", PUSH, date(2026, 11, 19)),
    closing("B", PUSH, date(2026, 11, 23)),
    closing("A", CLAIM, date(2026, 11, 20)),
    closing("B", CLAIM, date(2026, 11, 21), DeadlineOutcome.default),
    closing("E", CLAIM, date(2026, 11, 24)),
]


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, synchronous="NORMAL")
    await store.open()
    try:
        assert await store.record_deadlines(OPENS, CLOSES) == (8, 5)
    finally:
        await store.close()
    return path


async def rows(db: Path) -> list[dict[str, Any]]:
    store = SQLiteStore(db)
    await store.open(exclusive=False)
    try:
        return await store.deadlines()
    finally:
        await store.close()


async def test_counts_and_rates_over_the_decided_deadlines(db: Path) -> None:
    report = timeliness(await rows(db), **NOV).as_dict()
    push, claim = report["total"]["push"], report["total"]["claim"]
    assert {k: push[k] for k in ("total", "on_time", "late", "overdue", "pending")} == {
        "total": 3, "on_time": 1, "late": 1, "overdue": 1, "pending": 0,
    }  # fmt: skip
    assert push["on_time_rate"] == round(1 / 3, 4), "an undelivered push past its day counts against the rate"
    assert {k: claim[k] for k in ("total", "on_time", "late", "default", "pending")} == {
        "total": 4, "on_time": 1, "late": 1, "default": 1, "pending": 1,
    }  # fmt: skip
    assert (claim["on_time_rate"], claim["default_rate"]) == (round(1 / 3, 4), round(1 / 3, 4))
    assert report["measures"]["result"] == {"label": "results (监管结果)", "tracked": True}
    assert report["total"]["result"]["on_time_rate"] is None, "nothing decided: no rate, not 0 %"
    earlier = timeliness(await rows(db), known_types={"approval.decided", "supervision.task.claimed"}, **NOV)
    assert earlier.as_dict()["measures"]["result"]["tracked"] is False, "a measure without its event types"


async def test_grouped_by_department_region_and_item(db: Path) -> None:
    by_dept = timeliness(await rows(db), by="department", **NOV).as_dict()["groups"]
    labels = [g["label"] for g in by_dept]
    assert labels == ["卫健委 (code-卫健委)", "市场监管局 (code-市场监管局)", "(unknown department)"]
    unknown = by_dept[-1]
    assert unknown["claim"]["late"] == 1, "a claim whose department nobody mapped is still counted"
    by_region = {g["key"]: g for g in timeliness(await rows(db), by="region", **NOV).as_dict()["groups"]}
    assert by_region["320100"]["push"]["overdue"] == 1 and by_region["320700"]["claim"]["pending"] == 1
    by_item = timeliness(await rows(db), by="item", **NOV).as_dict()["groups"]
    assert [g["label"] for g in by_item] == ["11320700MB123456794000117001 食品经营许可"]
    with pytest.raises(ValueError, match="--by"):
        timeliness([], by="city", **NOV)


async def test_text_and_csv_renderings(db: Path) -> None:
    report = timeliness(await rows(db), by="region", **NOV)
    text = render_text(report)
    assert "claims (认领)" in text and "results (监管结果)" in text and "33.3%" in text
    earlier = timeliness(await rows(db), by="region", known_types={"approval.decided"}, **NOV)
    assert "results (监管结果): not tracked yet" in render_text(earlier)
    table = list(csv.DictReader(io.StringIO(render_csv(report))))
    total_claims = next(r for r in table if r["group"] == "*" and r["measure"] == "claim")
    assert (total_claims["default_claimed"], total_claims["on_time_rate"]) == ("1", str(round(1 / 3, 4)))
    assert {r["group"] for r in table} == {"320100", "320700", "*"}


def test_the_cli_reports_from_the_store(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["report", "timeliness", "--from", "2026-11-01", "--to", "2026-11-30", "--as-of", "2026-11-25"]
    result = runner.invoke(app, [*args, "--db", str(db), "--json", "--by", "region", "--csv", str(tmp_path / "q.csv")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total"]["claim"]["default"] == 1 and report["by"] == "region"
    assert (tmp_path / "q.csv").read_text(encoding="utf-8").startswith("group,label,measure")
    text = runner.invoke(app, [*args, "--db", str(db)])
    assert text.exit_code == 0 and "pushes (推送)" in text.output
    base = ["report", "timeliness", "--db", str(db)]
    for bad, message in [
        (["--from", "2026-13-01", "--to", "2026-11-30"], "not a valid date"),
        (["--from", "2026-11-01", "--to", "2026-10-01"], "before --from"),
        (["--from", "2026-11-01", "--to", "2026-11-30", "--by", "city"], "--by must be one of"),
    ]:
        failed = runner.invoke(app, [*base, *bad])
        assert failed.exit_code == 2 and message in failed.output, failed.output
    missing = runner.invoke(app, [*args, "--db", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and "no store" in missing.output


def test_a_period_with_nothing_due_reports_zeros_without_rates(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    asyncio.run(_create(path))
    result = CliRunner().invoke(
        app, ["report", "timeliness", "--from", "2026-01-01", "--to", "2026-03-31", "--db", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    push = json.loads(result.stdout)["total"]["push"]
    assert (push["total"], push["on_time_rate"]) == (0, None)


async def _create(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.close()
