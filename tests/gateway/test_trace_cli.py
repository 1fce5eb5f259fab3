"""``shenguan trace``: one approval's closed loop in order, found by correlation id, 办件编号 or any message's key,
on both store backends (the same query as the console's trace page)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from loopkit import CASE_NO, CST, TASK_NO, sample
from typer.testing import CliRunner

from factories import envelope
from gateway.cli import app
from gateway.store import DeliveryState, Outcome, Route
from gateway.trace_cli import find_loop, render_trace
from schemas import ClaimMode, Envelope, SupervisionTaskClaimed, correlation_id_of

ROUTES = {
    "approval.decided": ["hlwjg", "credit"],
    "supervision.task.claimed": ["zwfw"],
    "supervision.inspection.reported": ["zwfw"],
    "license.revocation.advised": ["zwfw"],
    "approval.feedback.sent": ["hlwjg"],
}


def router(env: Envelope) -> list[Route]:
    return [Route(d) for d in ROUTES.get(env.type, [])]


def loop_message(event_type: str, source: str = "hlwjg-events") -> Envelope:
    payload = sample(event_type)
    return Envelope.wrap(payload, source=source, correlation_id=correlation_id_of(payload))


async def fill(store: Any) -> None:
    """One loop (approval, claim, inspection, advice, feedback) and another approval, with a few attempts."""
    claim = SupervisionTaskClaimed(
        task_no=TASK_NO,
        approval_case_no=CASE_NO,
        claimed_at=datetime(2026, 11, 23, 9, 0, tzinfo=CST),
        mode=ClaimMode.manual,
    )
    await store.ingest_page("zwfw", [envelope(CASE_NO), envelope("320700261121000099999")], [], "1", router)
    later = [
        loop_message("approval.feedback.sent", "zwfw-linkage"),  # out of time order on purpose
        Envelope.wrap(claim, source="hlwjg-events", correlation_id=correlation_id_of(claim)),
        loop_message("supervision.inspection.reported"),
        loop_message("license.revocation.advised"),
    ]
    await store.ingest_page("hlwjg-events", later, [], "2", router)
    [to_hlwjg] = await store.lease_due(owner="t", destination="hlwjg", limit=1, lease_s=30)
    await store.complete("t", [Outcome(to_hlwjg.id, DeliveryState.delivered, remote_id="JGRW32070000000001")])
    for _ in range(2):
        [to_credit] = await store.lease_due(owner="t", destination="credit", limit=1, lease_s=30)
        failed = Outcome(to_credit.id, DeliveryState.retry_wait, error="busy, call 13800138000", next_attempt_at=0)
        await store.complete("t", [failed])


async def test_the_loop_in_business_time_order_with_deliveries(store: Any) -> None:
    await fill(store)
    loop = await find_loop(store, CASE_NO)
    assert loop["correlation_id"] == CASE_NO
    assert [m["type"] for m in loop["messages"]] == [
        "approval.decided",
        "supervision.task.claimed",
        "supervision.inspection.reported",
        "license.revocation.advised",
        "approval.feedback.sent",
    ]
    approval = loop["messages"][0]
    assert (approval["source"], approval["revision"], approval["time"]) == ("zwfw", 1, "2026-11-20 16:40:02")
    deliveries = {d["destination"]: d for d in approval["deliveries"]}
    assert deliveries["hlwjg"]["state"] == "delivered" and deliveries["hlwjg"]["remote_id"] == "JGRW32070000000001"
    assert (deliveries["credit"]["state"], deliveries["credit"]["attempts"]) == ("retry_wait", 2)
    assert "13800138000" not in json.dumps(loop, ensure_ascii=False), "personal data is masked"
    text = render_trace(loop)
    assert text.splitlines()[0] == f"closed loop {CASE_NO}: 5 messages"
    assert "→ credit" in text and "attempts 2" in text and "license.revocation.advised" in text


async def test_a_loop_is_found_by_its_case_number_as_typed_or_by_any_messages_key(store: Any) -> None:
    await fill(store)
    for wanted in (f" {CASE_NO.replace('3', '３')} ", "CX3207002026000001", TASK_NO):
        loop = await find_loop(store, wanted)
        assert loop["correlation_id"] == CASE_NO and len(loop["messages"]) == 5, wanted
    other = await find_loop(store, "320700261121000099999")
    assert [m["type"] for m in other["messages"]] == ["approval.decided"]
    assert (await find_loop(store, "320700000000000000000"))["messages"] == []


def test_the_command_prints_the_loop_and_names_an_unknown_one(tmp_path: Any) -> None:
    import asyncio

    from gateway.store.sqlite import SQLiteStore

    db = tmp_path / "s.db"

    async def prepare() -> None:
        store = SQLiteStore(db)
        await store.open()
        try:
            await fill(store)
        finally:
            await store.close()

    asyncio.run(prepare())
    runner = CliRunner()
    result = runner.invoke(app, ["trace", CASE_NO, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    loop = json.loads(result.stdout)
    assert loop["correlation_id"] == CASE_NO and len(loop["messages"]) == 5
    text = runner.invoke(app, ["trace", "CX3207002026000001", "--db", str(db)])
    assert text.exit_code == 0 and text.stdout.startswith(f"closed loop {CASE_NO}: 5 messages")
    missing = runner.invoke(app, ["trace", "nothing-here", "--db", str(db)])
    assert missing.exit_code == 1 and "no message belongs to the loop 'NOTHING-HERE'" in missing.output
    assert runner.invoke(app, ["trace", "x", "--db", str(tmp_path / "absent.db")]).exit_code == 2
