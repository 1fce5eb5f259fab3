"""Closed-loop deadlines end to end: approvals reach 互联网+监管, which claims only some of the tasks; the others
become default-claimed (默认认领) on exactly the right working day — the clock is moved across a weekend, never
slept — the default claims reach the platform once (even across a restart), and the timeliness report counts them.

Two mock servers: the 政务服务一体化平台 on real time (its request signatures carry real timestamps) and
互联网+监管 on the test's clock (its claim times, token expiry and the gateway's days move together).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from test_malformed_feed import variant
from typer.testing import CliRunner

from gateway.cli import app
from gateway.config import Config
from gateway.runtime import Gateway
from mock_platforms import create_app
from mock_platforms.server import run_in_background

CST = timezone(timedelta(hours=8))
MAPPING = (
    "审批事项编码,审批事项名称,业务办理项,监管事项编码,监管事项名称,监管部门名称,监管部门编码,"
    "行政区划代码,推送渠道,认领时限(工作日)\n"
    "11320700MB123456794000117001,食品经营许可,,32070000100001,食品经营许可后监管,"
    "连云港市市场监督管理局,11320700MB12345679,320700,平台,\n"
)


class MovableClock:
    """Real time flowing from a chosen start, plus whatever the test adds: retries and leases keep working
    (time passes), and a jump to Tuesday morning is one assignment."""

    def __init__(self, start: datetime) -> None:
        self._origin = start.timestamp() - time.monotonic()

    def __call__(self) -> float:
        return self._origin + time.monotonic()

    def set(self, moment: datetime) -> None:
        self._origin = moment.timestamp() - time.monotonic()


def beijing(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)


def config(zwfw_url: str, hlwjg_url: str, db: Path, calendar: Path) -> Config:
    hlwjg = {"base_url": f"{hlwjg_url}/hlwjg", "client_id": "shenguan", "client_secret": "hlwjg-mock-secret"}
    return Config.model_validate(
        {
            "gateway": {"db": str(db), "sqlite_synchronous": "NORMAL", "shutdown_grace_s": 5},
            "sources": {
                "zwfw": {
                    "adapter": "zwfw",
                    "base_url": f"{zwfw_url}/zwfw",
                    "paasid": "shenguan",
                    "token": "zwfw-mock-token",
                    "poll_interval_s": 0.1,
                },
                "hlwjg-events": {"adapter": "hlwjg-events", "poll_interval_s": 0.1, **hlwjg},
            },
            "destinations": {
                "hlwjg": {"adapter": "hlwjg", "backoff_initial_s": 0.05, "backoff_max_s": 0.5, **hlwjg},
            },
            "routes": [
                {"type": "approval.decided", "destinations": ["hlwjg"]},
                # Default claims recorded by the gateway go to the platform; its own claims must not go back.
                {"type": "supervision.task.claimed", "destinations": ["hlwjg"], "sources": ["shenguan"]},
            ],
            "deadlines": {
                "claim_days": 2,
                "regions": {"320700": {"claim_days": 3}},  # 连云港 gives 3 working days, others the default 2
                "check_s": 3600,  # the test ticks by hand after moving the clock
                "calendar_dir": str(calendar),
            },
        }
    )


async def until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(20):
            while not await predicate():  # noqa: ASYNC110 - polling the effect of other tasks
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture(autouse=True)
def _logging_to_this_tests_output() -> None:
    structlog.reset_defaults()  # earlier CLI tests leave structlog bound to CliRunner's closed stream


async def test_unclaimed_tasks_are_default_claimed_on_the_right_working_day(tmp_path: Path) -> None:
    clock = MovableClock(beijing(19, 10))  # Thursday 19 November 2026
    zwfw_mock = await run_in_background()
    hlwjg_app = create_app(clock=clock)
    hlwjg_mock = await run_in_background(app=hlwjg_app)
    hlwjg_platform = hlwjg_app.platforms["hlwjg"]
    cfg = config(zwfw_mock.base_url, hlwjg_mock.base_url, tmp_path / "g.db", tmp_path / "calendar")
    runner = CliRunner()
    mapping = tmp_path / "mapping.csv"
    mapping.write_text(MAPPING, encoding="utf-8")
    imported = await asyncio.to_thread(
        runner.invoke, app, ["mapping", "import", str(mapping), "--db", str(cfg.gateway.db)]
    )
    assert imported.exit_code == 0, imported.output
    approvals = {  # two in 连云港 (3 days to claim), two in 南京 (2 days)
        "320700261119000000001": "320700",
        "320700261119000000002": "320700",
        "320100261119000000003": "320100",
        "320100261119000000004": "320100",
    }
    records = [
        variant(case_no, AREACODE=region, TRANSACT_TIME="2026-11-19 09:00:00", RECEIVETIME="2026-11-18 09:00:00")
        for case_no, region in approvals.items()
    ]
    try:
        async with (
            httpx.AsyncClient(base_url=zwfw_mock.base_url) as zwfw,
            httpx.AsyncClient(base_url=hlwjg_mock.base_url) as hlwjg,
        ):
            await zwfw.post("/zwfw/_mock/inject", json={"records": records})
            gateway = Gateway(cfg, clock=clock)
            await gateway.start()
            try:
                tracker = gateway.deadlines
                assert tracker is not None

                async def tasks_created() -> bool:
                    return (await hlwjg.get("/hlwjg/_mock/records")).json()["accepted"] == 4

                await until(tasks_created, "the four approvals to reach hlwjg")
                await until(gateway.idle, "the deliveries to be recorded")
                await tracker.tick()
                claims = {d["correlation_id"]: d for d in await gateway.store.deadlines() if d["kind"] == "claim"}
                assert {k: v["due_on"] for k, v in claims.items()} == {
                    "320700261119000000001": "2026-11-24",  # Thu + 3: Fri, Mon, Tue
                    "320700261119000000002": "2026-11-24",
                    "320100261119000000003": "2026-11-23",  # Thu + 2: Fri, Mon
                    "320100261119000000004": "2026-11-23",
                }
                task_of = {k: v["subject"] for k, v in claims.items()}

                # On Friday the department claims one task in each city, by hand, on the platform.
                clock.set(beijing(20, 14))
                claimed_by_hand = [task_of["320700261119000000001"], task_of["320100261119000000003"]]
                feed = [
                    {"eventType": "TASK_CLAIMED", "taskNo": task, "approvalNo": case, "claimMode": "MANUAL",
                     "claimedAt": beijing(20, 14).isoformat(), "department": "连云港市市场监督管理局"}
                    for case, task in task_of.items() if task in claimed_by_hand
                ]  # fmt: skip
                await hlwjg.post("/hlwjg/_mock/inject", json={"records": feed})

                async def claims_read() -> bool:
                    status = await gateway.store.status()
                    return status["messages"] == 6

                await until(claims_read, "the platform's two claims to be read from its feed")
                await tracker.tick()

                # Saturday, Sunday, Monday night: nothing is due yet in either city.
                for moment in (beijing(21, 12), beijing(22, 12), beijing(23, 23, 59)):
                    clock.set(moment)
                    assert (await tracker.tick()).default_claims == 0, moment

                # Just after midnight on Tuesday: 南京's unclaimed task is default-claimed; 连云港's is due today.
                clock.set(beijing(24, 0, 1))
                assert (await tracker.tick()).default_claims == 1
                clock.set(beijing(24, 23, 59))
                assert (await tracker.tick()).default_claims == 0
                clock.set(beijing(25, 0, 1))
                assert (await tracker.tick()).default_claims == 1

                outcome = {
                    d["correlation_id"]: d["outcome"] for d in await gateway.store.deadlines() if d["kind"] == "claim"
                }
                assert outcome == {
                    "320700261119000000001": "on_time",
                    "320700261119000000002": "default",
                    "320100261119000000003": "on_time",
                    "320100261119000000004": "default",
                }

                def received() -> dict[str, Any]:
                    return hlwjg_platform.records_report()

                async def default_claims_delivered() -> bool:
                    return len(received()["claims"]) == 2 and await gateway.idle()

                await until(default_claims_delivered, "the default claims to reach hlwjg")
            finally:
                await gateway.stop()

            # A restart: the new process ticks on the same days again and records nothing twice.
            again = Gateway(cfg, clock=clock)
            await again.start()
            try:
                assert again.deadlines is not None
                assert (await again.deadlines.tick()).default_claims == 0
                await asyncio.sleep(0.5)  # let the pollers and the relay do whatever they would do
                await until(again.idle, "the restarted gateway to settle")
                status = await again.store.status()
            finally:
                await again.stop()

        report = received()
        assert report["duplicate_creations"] == 0
        got = {c["taskNo"]: c for c in report["claims"]}
        assert set(got) == {task_of["320700261119000000002"], task_of["320100261119000000004"]}
        assert all(len(c["requestIds"]) == 1 for c in got.values()), "each default claim reached hlwjg once"
        nanjing = got[task_of["320100261119000000004"]]["claim"]
        assert (nanjing["claimMode"], nanjing["auto"], nanjing["claimedAt"], nanjing["claimDeadline"]) == (
            "DEFAULT",
            True,
            "2026-11-24T00:00:00+08:00",
            "2026-11-23",
        )
        lianyungang = got[task_of["320700261119000000002"]]["claim"]
        assert lianyungang["claimedAt"] == "2026-11-25T00:00:00+08:00"
        assert lianyungang["department"] == "连云港市市场监督管理局", "the mapping names the department"
        assert status["unrouted"] == 2, "the platform's own claims have no route back to it (held, not lost)"
        assert status["deliveries"]["delivered"] == 6 and status["duplicates_suppressed"] == 0

        # The assessment counts them.
        args = ["report", "timeliness", "--from", "2026-11-01", "--to", "2026-11-30", "--as-of", "2026-11-25"]
        result = await asyncio.to_thread(
            runner.invoke, app, [*args, "--db", str(cfg.gateway.db), "--json", "--by", "region"]
        )
        assert result.exit_code == 0, result.output
        figures = json.loads(result.stdout)
        claim = figures["total"]["claim"]
        assert (claim["total"], claim["on_time"], claim["default"], claim["late"]) == (4, 2, 2, 0)
        assert (claim["on_time_rate"], claim["default_rate"]) == (0.5, 0.5)
        assert figures["total"]["push"]["on_time"] == 4
        regions = {g["key"]: g["claim"] for g in figures["groups"]}
        assert {k: (v["on_time"], v["default"]) for k, v in regions.items()} == {"320100": (1, 1), "320700": (1, 1)}
    finally:
        await hlwjg_mock.stop()
        await zwfw_mock.stop()
