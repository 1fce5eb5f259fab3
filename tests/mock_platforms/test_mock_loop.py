"""The mocks' closed loop: hlwjg acting on the tasks it holds, zwfw's linkage inbox, feed and requests."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from mockkit import approval

from mock_platforms.hlwjg_loop import LoopTask, loop_events

INBOX = "/zwfw/api/v1/linkage/inbox"
LINKAGE = "/zwfw/api/v1/linkage/changes"


async def hold_tasks(client: httpx.AsyncClient, auth: dict[str, str], count: int) -> None:
    for i in range(count):
        body = approval(f"r{i}", f"3207002611210000{i:05d}")
        if i % 2:
            body["record"]["commitment"] = None
        assert (await client.post("/hlwjg/api/v1/approval-records", json=body, headers=auth)).status_code == 200


async def feed(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    reply = await client.get("/hlwjg/api/v1/events", params={"limit": 1000}, headers=auth)
    return [e for e in reply.json()["data"]["events"] if e["eventType"] != "TASK_CREATED"]


async def test_hlwjg_loop_acts_once_per_task(client: httpx.AsyncClient, hlwjg_auth: Callable[[], Any]) -> None:
    auth = await hlwjg_auth()
    await hold_tasks(client, auth, 30)
    first = (await client.post("/hlwjg/_mock/generate", json={"kind": "loop", "count": 20, "seed": 5})).json()
    events = await feed(client, auth)
    kinds = Counter(e["eventType"] for e in events)
    assert kinds["TASK_CLAIMED"] == kinds["INSPECTION_REPORTED"] == kinds["RESULT_REPORTED"] == 20
    assert kinds["BREACH_REPORTED"] == kinds["REVOCATION_ADVISED"], "every breach leads to advice"
    assert first == {"generated": len(events), "unique_facts": len(events)}
    approvals = {e["approvalNo"] for e in events}
    assert len(approvals) == 20 and all(e["approvalNo"].startswith("320700") for e in events)
    for result in (e for e in events if e.get("penalty")):
        assert result["conclusion"] == "PENALISED" and result["penalty"]["decisionNo"] == result["penaltyDecisionNo"]
    # The next call takes the tasks not acted on yet; duplicates and re-reports come after their originals.
    more = (
        await client.post(
            "/hlwjg/_mock/generate",
            json={"kind": "loop", "count": 50, "seed": 5, "duplicate_rate": 0.2, "revision_rate": 0.5},
        )
    ).json()
    later = (await feed(client, auth))[len(events) :]
    assert {e["approvalNo"] for e in later} == {f"3207002611210000{i:05d}" for i in range(30)} - approvals
    assert more["generated"] == len(later) > more["unique_facts"]
    revised = [e for e in later if e.get("dataVersion") == 2]
    assert revised and all(e["eventType"] == "RESULT_REPORTED" for e in revised)
    for copy in revised:
        original = next(i for i, e in enumerate(later) if e.get("resultNo") == copy["resultNo"])
        assert original < later.index(copy)


def test_the_loop_is_a_pure_function_of_its_seed() -> None:
    record = approval("r", "x")["record"]
    tasks = [LoopTask(f"JGRW{i:014d}", f"32070026112100000{i:04d}", record, "32070000100001", False) for i in range(8)]

    def run(seed: int) -> list[dict[str, Any]]:
        numbers = itertools.count(1)
        return loop_events(tasks, random.Random(seed), "2026-11-25T10:00:00+08:00", lambda: next(numbers))[0]

    assert run(1) == run(1) and run(1) != run(2)


async def test_hlwjg_generate_refuses_an_unknown_kind(client: httpx.AsyncClient) -> None:
    reply = await client.post("/hlwjg/_mock/generate", json={"kind": "penalties"})
    assert reply.status_code == 400 and "loop" in reply.text


async def test_zwfw_requests_are_about_the_feeds_cases_once_each(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    await client.post("/zwfw/_mock/generate", json={"count": 12, "seed": 3, "duplicate_rate": 0.5})
    for kind in ("preapproval", "site_inspection", "guidance"):
        reply = await client.post("/zwfw/_mock/generate", json={"kind": kind, "count": 5, "seed": 1})
        assert reply.json() == {"generated": 5, "unique_facts": 5}
    again = await client.post("/zwfw/_mock/generate", json={"kind": "preapproval", "count": 100})
    assert again.json()["unique_facts"] == 7, "each case is asked once: the other 7 of 12"
    assert (await client.post("/zwfw/_mock/generate", json={"kind": "audit"})).status_code == 400
    items = (await client.get(LINKAGE, params={"limit": 500}, headers=zwfw_headers())).json()["data"]["items"]
    assert Counter(i["MSGTYPE"] for i in items) == {
        "PREAPPROVAL_REQUEST": 12,
        "SITE_INSPECTION_REQUEST": 5,
        "GUIDANCE_REQUEST": 5,
    }
    assert all(isinstance(v, str | dict) for i in items for v in i.values()), "the platform writes text"


async def test_zwfw_inbox_is_strict_about_its_format_and_counts_refusals(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    item = {"MSGTYPE": "INSPECTION", "INSPECTION_NO": "JC1", "PROJID": "320700261121000012345", "DATAVERSION": "1"}
    cases = [
        ({"requestId": "a", "item": {**item, "DATAVERSION": 1}}, "DATAVERSION"),
        ({"requestId": "b", "item": {**item, "PROJID": ""}}, "PROJID"),
        ({"requestId": "c", "item": {**item, "MSGTYPE": "FEEDBACK"}}, "MSGTYPE"),
        ({"requestId": "d", "item": {**item, "COMMITMENT_VERIFICATION": True}}, "COMMITMENT_VERIFICATION"),
        ({"item": item}, "requestId"),
    ]
    for body, named in cases:
        reply = (await client.post(INBOX, json=body, headers=zwfw_headers())).json()
        assert reply["code"] == "4001" and named in reply["msg"], reply
    unsigned = await client.post(INBOX, json={"requestId": "e", "item": item})
    assert unsigned.json()["code"] == "4010"
    ok = (await client.post(INBOX, json={"requestId": "f", "item": item}, headers=zwfw_headers())).json()
    assert ok["code"] == "200" and ok["data"]["receiptNo"]
    status = (await client.get(f"{INBOX}/f", headers=zwfw_headers())).json()
    assert status["data"]["receiptNo"] == ok["data"]["receiptNo"]
    assert (await client.get(f"{INBOX}/zzz", headers=zwfw_headers())).json()["code"] == "4004"
    report = (await client.get("/zwfw/_mock/records")).json()
    assert (report["accepted"], report["rejected"], report["duplicate_creations"]) == (1, 5, 0)
    assert (await client.post("/zwfw/_mock/reset")).status_code == 200
    assert (await client.get("/zwfw/_mock/records")).json()["accepted"] == 0
