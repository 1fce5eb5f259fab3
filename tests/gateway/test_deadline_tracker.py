"""The deadline tracker on a real store (SQLite and PostgreSQL): deadlines follow what the store records, time is
moved by hand, default claims are one fact however often recorded, at-risk deliveries go to paper, and an
estimated deadline becomes exact when the official schedule is loaded."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import structlog

from factories import envelope
from gateway.calendar import WorkingDayCalendar, YearSchedule
from gateway.config import DeadlineSettings, RouteConfig
from gateway.deadline_tracker import DeadlineTracker
from gateway.routing import ConfigRouter
from gateway.store import DeliveryState, Outcome
from gateway.store.deadlines import Closing, DeadlineKind
from schemas import ClaimMode, Envelope, SupervisionTaskClaimed

CST = timezone(timedelta(hours=8))
CASE = "320700261121000012345"
ROUTER = ConfigRouter(
    [
        RouteConfig(type="approval.decided", destinations=["hlwjg"]),
        RouteConfig(type="supervision.task.claimed", destinations=["hlwjg"], sources=["shenguan"]),
    ]
)


@pytest.fixture(autouse=True)
def _logging_to_this_tests_output() -> None:
    """CLI tests configure structlog onto CliRunner's stream, closed after them; log here instead."""
    structlog.reset_defaults()


def moment(day: date, hour: int = 10, minute: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CST).timestamp()


def approval(day: date, case_no: str = CASE, **changes: Any) -> Envelope:
    on = datetime(day.year, day.month, day.day, 9, tzinfo=CST)
    return envelope(case_no, decided_at=on, received_at=on - timedelta(days=1), **changes)


def tracker(store: Any, clock: Any, tmp_path: Path, **kwargs: Any) -> DeadlineTracker:
    settings = kwargs.pop("settings", DeadlineSettings())
    return DeadlineTracker(store, settings, router=ROUTER, calendar_dir=tmp_path / "calendar", clock=clock, **kwargs)


async def deliver(store: Any, remote_id: str | None = "JGRW32070000000001", state=DeliveryState.delivered) -> int:
    [leased] = await store.lease_due(owner="t", destination="hlwjg", limit=1, lease_s=60)
    await store.complete("t", [Outcome(leased.id, state, remote_id=remote_id, error=None if remote_id else "boom")])
    return leased.id


def claim(task_no: str, when: datetime, mode: ClaimMode = ClaimMode.manual) -> Envelope:
    payload = SupervisionTaskClaimed(task_no=task_no, approval_case_no=CASE, claimed_at=when, mode=mode)
    return Envelope.wrap(payload, source="hlwjg-events", correlation_id=CASE)


async def chained(store: Any) -> list[Any]:
    """The audit chain, after chaining what a multi-instance store has queued."""
    await store.chain_audit()
    return await store.audit_entries(after_seq=0, limit=10_000)


async def by_kind(store: Any) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in await store.deadlines(correlation_id=CASE)}


async def test_a_pushed_approval_opens_its_claim_and_a_timely_claim_closes_it(store, clock, tmp_path) -> None:
    thursday = date(2026, 11, 19)
    clock.now = moment(thursday)
    await store.ingest_page("zwfw", [approval(thursday)], [], "1", ROUTER)
    t = tracker(store, clock, tmp_path)
    await t.tick()
    open_now = await by_kind(store)
    assert set(open_now) == {"push", "commitment", "revocation_advice"}
    assert (open_now["push"]["subject"], open_now["push"]["due_on"]) == ("hlwjg", "2026-11-20")

    clock.now = moment(thursday, 15)
    await deliver(store)
    summary = await t.tick()
    deadlines = await by_kind(store)
    assert (deadlines["push"]["state"], deadlines["push"]["outcome"]) == ("closed", "on_time")
    assert summary.opened == 1 and summary.closed == 1
    task = deadlines["claim"]
    assert (task["subject"], task["started_on"], task["due_on"], task["basis"]) == (
        "JGRW32070000000001",
        "2026-11-19",
        "2026-11-23",
        "default",
    ), "Thursday + 2 working days: Friday, then Monday"

    clock.now = moment(date(2026, 11, 23), 16)
    await store.ingest_page(
        "hlwjg-events", [claim(task["subject"], datetime(2026, 11, 23, 15, tzinfo=CST))], [], "7", ROUTER
    )
    await t.tick()
    closed = (await by_kind(store))["claim"]
    assert (closed["state"], closed["outcome"], closed["closed_on"]) == ("closed", "on_time", "2026-11-23")
    entries = await chained(store)
    assert [e.kind for e in entries].count("deadline.closed") == 2


async def test_a_late_claim_is_late_and_a_platform_default_claim_is_default(store, clock, tmp_path) -> None:
    day = date(2026, 11, 19)
    clock.now = moment(day)
    await store.ingest_page("zwfw", [approval(day), approval(day, "C2")], [], "1", ROUTER)
    for _ in range(2):
        await deliver(store, remote_id=f"T{_}")
    t = tracker(store, clock, tmp_path, ready=lambda: False)
    await t.tick()
    late = claim("T0", datetime(2026, 11, 24, 9, tzinfo=CST))
    platform_default = claim("T1", datetime(2026, 11, 24, 0, 5, tzinfo=CST), ClaimMode.default)
    await store.ingest_page("hlwjg-events", [late, platform_default], [], "9", ROUTER)
    await t.tick()
    outcomes = {d["subject"]: d["outcome"] for d in await store.deadlines() if d["kind"] == "claim"}
    assert outcomes == {"T0": "late", "T1": "default"}


async def test_an_unclaimed_task_is_default_claimed_once_on_the_right_day(store, clock, tmp_path) -> None:
    friday = date(2026, 11, 20)
    clock.now = moment(friday)
    await store.ingest_page("zwfw", [approval(friday)], [], "1", ROUTER)
    await deliver(store)  # task generated Friday: due Tuesday (Monday, Tuesday)
    t = tracker(store, clock, tmp_path)
    await t.tick()
    assert (await by_kind(store))["claim"]["due_on"] == "2026-11-24"
    for day, hour in [(date(2026, 11, 21), 12), (date(2026, 11, 23), 12), (date(2026, 11, 24), 23)]:
        clock.now = moment(day, hour, 59)
        assert (await t.tick()).default_claims == 0, day
    clock.now = moment(date(2026, 11, 25), 0, 1)
    summary = await t.tick()
    assert summary.default_claims == 1 and summary.closed >= 1
    task = (await by_kind(store))["claim"]
    assert (task["state"], task["outcome"], task["closed_on"]) == ("closed", "default", "2026-11-25")

    status = await store.status()
    assert status["messages"] == 2 and status["deliveries"]["pending"] == 1, "the default claim is routed to hlwjg"
    [recorded] = [d for d in await store.deadlines() if d["kind"] == "claim"]
    assert recorded["closed_by"], "closed by the default claim's message"
    found = await store.closing_messages(["supervision.task.claimed"], business_key=task["subject"])
    claimed = Envelope.model_validate_json(found[0]).payload()
    assert isinstance(claimed, SupervisionTaskClaimed)
    assert (claimed.auto, claimed.mode, claimed.claimed_at) == (
        True,
        ClaimMode.default,
        datetime(2026, 11, 25, tzinfo=CST),
    )

    # A restart (a new tracker) and later ticks record nothing again.
    again = tracker(store, clock, tmp_path)
    clock.now += 86400 * 3
    assert (await again.tick()).default_claims == 0
    assert (await store.status())["messages"] == 2


async def test_default_claims_wait_until_the_sources_caught_up(store, clock, tmp_path) -> None:
    day = date(2026, 11, 19)
    clock.now = moment(day)
    await store.ingest_page("zwfw", [approval(day)], [], "1", ROUTER)
    await deliver(store)
    caught_up = False
    t = tracker(store, clock, tmp_path, ready=lambda: caught_up)
    clock.now = moment(date(2026, 11, 26))
    summary = await t.tick()
    assert (summary.default_claims, summary.default_claims_deferred, summary.overdue) == (0, 1, 1)
    # The feed, once read, holds a claim made in time: it closes the deadline on time, no default claim.
    await store.ingest_page(
        "hlwjg-events", [claim("JGRW32070000000001", datetime(2026, 11, 20, 9, tzinfo=CST))], [], "3", ROUTER
    )
    caught_up = True
    assert (await t.tick()).default_claims == 0
    assert (await by_kind(store))["claim"]["outcome"] == "on_time"


async def test_a_claim_read_before_its_deadline_opened_still_closes_it(store, clock, tmp_path) -> None:
    day = date(2026, 11, 19)
    clock.now = moment(day)
    await store.ingest_page("zwfw", [approval(day)], [], "1", ROUTER)
    t = tracker(store, clock, tmp_path)
    await t.tick()
    await store.ingest_page(
        "hlwjg-events", [claim("JGRW32070000000001", datetime(2026, 11, 19, 11, tzinfo=CST))], [], "2", ROUTER
    )
    await t.tick()
    clock.now = moment(day, 12)
    await deliver(store)  # the delivery's outcome is recorded after the claim was read
    await t.tick()
    assert (await by_kind(store))["claim"]["outcome"] == "on_time"


async def test_a_failing_push_at_risk_goes_to_paper_where_allowed(store, clock, tmp_path) -> None:
    wednesday = date(2026, 11, 18)
    clock.now = moment(wednesday)
    await store.ingest_page("zwfw", [approval(wednesday)], [], "1", ROUTER)
    delivery_id = await deliver(store, remote_id=None, state=DeliveryState.retry_wait)
    allowed: set[str] = set()
    t = tracker(store, clock, tmp_path, paper_allowed=lambda d: d in allowed)
    assert (await t.tick()).at_risk == 0, "due Thursday: a working day is left on Wednesday"
    clock.now = moment(date(2026, 11, 19), 9)
    summary = await t.tick()
    assert (summary.at_risk, summary.escalated) == (1, 0), "at risk, but this destination has no paper fallback"
    assert await t.risk() == {("push",): 1.0}, "the /metrics gauge shenguan_deadlines_at_risk{kind}"
    allowed.add("hlwjg")
    summary = await t.tick()
    assert summary.escalated == 1
    status = await store.status()
    assert status["deliveries"]["paper_pending"] == 1 and status["deliveries"]["retry_wait"] == 0
    [paper] = await store.paper_deliveries()
    assert paper["id"] == delivery_id and "deadline due 2026-11-19 at risk" in paper["last_error"]
    assert (await by_kind(store))["push"]["escalated_at"] is not None
    entries = await chained(store)
    assert any(e.kind == "delivery.paper_pending" and e.subject == str(delivery_id) for e in entries)
    assert (await t.tick()).escalated == 0, "once"


async def test_windows_elapse_without_being_failures(store, clock, tmp_path) -> None:
    day = date(2026, 11, 19)
    clock.now = moment(day)
    await store.ingest_page(
        "zwfw", [approval(day, commitment={"mode": "post_verification", "period_days": 2})], [], "1", ROUTER
    )
    t = tracker(store, clock, tmp_path)
    await t.tick()
    clock.now = moment(date(2026, 11, 24))
    summary = await t.tick()
    windows = await by_kind(store)
    assert windows["commitment"]["outcome"] == "elapsed" and windows["revocation_advice"]["state"] == "open"
    assert summary.elapsed == 1 and summary.overdue == 1, "only the push, never delivered, is overdue"


async def test_loading_the_2027_schedule_makes_an_estimated_deadline_exact(store, clock, tmp_path) -> None:
    last_day = date(2026, 12, 31)
    clock.now = moment(last_day)
    await store.ingest_page("zwfw", [approval(last_day)], [], "1", ROUTER)
    await deliver(store)
    t = tracker(store, clock, tmp_path)
    await t.tick()
    task = (await by_kind(store))["claim"]
    assert (task["due_on"], task["estimated"]) == ("2027-01-04", True)
    assert (await by_kind(store))["push"]["outcome"] == "on_time"
    # `shenguan calendar load` writes the official schedule into the calendar directory.
    WorkingDayCalendar(tmp_path / "calendar").add_schedule(
        YearSchedule(2027, frozenset(date(2027, 1, d) for d in (1, 2, 3)), frozenset(), "国办发明电〔2026〕X号")
    )
    summary = await t.tick()
    task = (await by_kind(store))["claim"]
    assert (task["due_on"], task["estimated"]) == ("2027-01-05", False)
    push = (await by_kind(store))["push"]
    assert (push["due_on"], push["estimated"]) == ("2027-01-01", True), "a closed deadline keeps its date"
    assert summary.redated == 3, "the claim and the two 告知承诺 windows reaching into 2027"
    assert (await t.tick()).redated == 0


async def test_a_stale_position_applies_nothing(store, clock, tmp_path) -> None:
    clock.now = moment(date(2026, 11, 19))
    await store.ingest_page("zwfw", [approval(date(2026, 11, 19))], [], "1", ROUTER)
    await tracker(store, clock, tmp_path).tick()
    position = await store.deadline_position()
    assert position > 0
    closing = Closing(DeadlineKind.push, "x", clock.now, date(2026, 11, 19), delivery_id=1)
    assert await store.record_deadlines([], [closing], after_seq=0, to_seq=position) is None
    assert (await by_kind(store))["push"]["state"] == "open"


@pytest.mark.parametrize("region,due", [("320700", "2026-11-24"), ("320100", "2026-11-23")])
async def test_per_region_claim_periods(store, clock, tmp_path, region: str, due: str) -> None:
    day = date(2026, 11, 19)
    clock.now = moment(day)
    await store.ingest_page("zwfw", [approval(day, region=region)], [], "1", ROUTER)
    await deliver(store)
    settings = DeadlineSettings.model_validate({"regions": {"320700": {"claim_days": 3}}})
    await tracker(store, clock, tmp_path, settings=settings).tick()
    assert (await by_kind(store))["claim"]["due_on"] == due


async def test_calendar_load_on_the_command_line_is_picked_up_by_the_next_tick(store, clock, tmp_path) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app

    last_day = date(2026, 12, 31)
    clock.now = moment(last_day)
    await store.ingest_page("zwfw", [approval(last_day)], [], "1", ROUTER)
    await deliver(store)
    t = tracker(store, clock, tmp_path)
    await t.tick()
    schedule = tmp_path / "2027.toml"
    schedule.write_text(
        'year = 2027\nsource = "国务院办公厅关于2027年部分节假日安排的通知"\n'
        "holidays = [2027-01-01, 2027-01-02, 2027-01-03]\nworkdays = []\n",
        encoding="utf-8",
    )
    loaded = CliRunner().invoke(app, ["calendar", "load", str(schedule), "--dir", str(tmp_path / "calendar")])
    assert loaded.exit_code == 0, loaded.output
    structlog.reset_defaults()  # `calendar load` configured logging onto the runner's stream
    assert (await t.tick()).redated == 3
    task = (await by_kind(store))["claim"]
    assert (task["due_on"], task["estimated"]) == ("2027-01-05", False)
