"""The hlwjg mock takes claims recorded elsewhere (默认认领 by the gateway): replays, duplicates, bad claims."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

RECORDS = "/hlwjg/api/v1/approval-records"
CLAIMS = "/hlwjg/api/v1/task-claims"
Auth = Callable[[], Awaitable[dict[str, str]]]


def claim(request_id: str, task_no: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "taskNo": task_no,
        "approvalNo": "A1",
        "claimMode": "DEFAULT",
        "claimedAt": "2026-11-24T00:00:00+08:00",
        "auto": True,
        "dataVersion": 1,
    }
    body.update(changes)
    return {"requestId": request_id, "claim": body}


async def held_task(client: httpx.AsyncClient, auth: dict[str, str], make_approval: Callable[..., Any]) -> str:
    reply = await client.post(RECORDS, json=make_approval("r-1", "A1"), headers=auth)
    return str(reply.json()["data"]["taskNo"])


async def test_a_claim_marks_its_task_replays_are_harmless_duplicates_counted(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: Callable[..., Any]
) -> None:
    auth = await hlwjg_auth()
    task_no = await held_task(client, auth, make_approval)
    first = await client.post(CLAIMS, json=claim("c-1", task_no), headers=auth)
    assert first.json() == {"code": "0", "message": "ok", "data": {"taskNo": task_no, "replayed": False}}
    replay = await client.post(CLAIMS, json=claim("c-1", task_no), headers=auth)
    assert replay.json()["data"] == {"taskNo": task_no, "replayed": True}
    status = await client.get(f"{RECORDS}/by-request/c-1", headers=auth)
    assert status.json()["data"]["taskNo"] == task_no, "a claim can be looked up by its requestId"
    report = (await client.get("/hlwjg/_mock/records")).json()
    assert report["duplicate_creations"] == 0 and len(report["claims"]) == 1
    assert report["claims"][0]["requestIds"] == ["c-1"] and report["claims"][0]["claim"]["auto"] is True

    await client.post(CLAIMS, json=claim("c-2", task_no), headers=auth)
    report = (await client.get("/hlwjg/_mock/records")).json()
    assert report["duplicate_creations"] == 1, "a second claim of a claimed task under a new requestId"
    revised = await client.post(CLAIMS, json=claim("c-3", task_no, dataVersion=2, claimMode="MANUAL"), headers=auth)
    assert revised.status_code == 200
    report = (await client.get("/hlwjg/_mock/records")).json()
    assert report["duplicate_creations"] == 1, "a higher dataVersion updates the claim"
    assert report["events"] == 1, "received claims are not echoed into the feed (only TASK_CREATED is there)"


async def test_a_claimed_task_is_not_claimed_again_by_generate(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: Callable[..., Any]
) -> None:
    auth = await hlwjg_auth()
    task_no = await held_task(client, auth, make_approval)
    await client.post(CLAIMS, json=claim("c-1", task_no), headers=auth)
    await client.post("/hlwjg/_mock/generate", json={"count": 1, "seed": 1})
    events = (await client.get("/hlwjg/api/v1/events", headers=auth)).json()["data"]["events"]
    claimed = [e["taskNo"] for e in events if e["eventType"] == "TASK_CLAIMED"]
    assert len(claimed) == 1 and task_no not in claimed, "generate claims unclaimed tasks only"


async def test_bad_claims_are_refused_naming_the_field(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: Callable[..., Any]
) -> None:
    auth = await hlwjg_auth()
    task_no = await held_task(client, auth, make_approval)
    cases = [
        ({"claim": {}}, "requestId"),
        (claim("b-1", task_no, claimMode="SOMETIMES"), "claim.claimMode"),
        (claim("b-2", task_no, claimedAt="2026-11-24 00:00:00"), "claim.claimedAt"),
        (claim("b-3", task_no, dataVersion="1"), "claim.dataVersion"),
        (claim("b-4", ""), "claim.taskNo"),
    ]
    for body, field in cases:
        reply = await client.post(CLAIMS, json=body, headers=auth)
        assert (reply.status_code, reply.json()["field"]) == (400, field), body
    unknown = await client.post(CLAIMS, json=claim("b-5", "JGRW32070099999999"), headers=auth)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "TASK_NOT_FOUND")
    broken = await client.post(CLAIMS, content=b"{not json", headers=auth)
    assert broken.status_code == 400
    assert (await client.post(CLAIMS, json=claim("b-6", task_no))).status_code == 401
    report = (await client.get("/hlwjg/_mock/records")).json()
    assert report["rejected"] == len(cases) + 2 and report["claims"] == []
