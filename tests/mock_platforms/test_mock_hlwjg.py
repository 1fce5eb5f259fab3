"""The hlwjg mock: OAuth2 tokens, idempotent requestIds, revisions, naive duplicates, status query, events."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from mockkit import FakeClock

RECORDS = "/hlwjg/api/v1/approval-records"
Auth = Callable[[], Awaitable[dict[str, str]]]
MakeApproval = Callable[..., dict[str, Any]]


async def report(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/hlwjg/_mock/records")).json()


async def test_token_grant_and_wrong_credentials(client: httpx.AsyncClient) -> None:
    good = await client.post(
        "/hlwjg/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "shenguan",
            "client_secret": "hlwjg-mock-secret",
        },
    )
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]
    basic = base64.b64encode(b"shenguan:hlwjg-mock-secret").decode()
    via_basic = await client.post(
        "/hlwjg/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200
    bad = await client.post(
        "/hlwjg/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "shenguan", "client_secret": "nope"},
    )
    assert (bad.status_code, bad.json()) == (401, {"error": "invalid_client"})
    wrong_grant = await client.post("/hlwjg/oauth2/token", data={"grant_type": "password"})
    assert wrong_grant.status_code == 400


async def test_missing_unknown_and_expired_tokens(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval, clock: FakeClock
) -> None:
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic abc"}):
        reply = await client.post(RECORDS, json=make_approval("r1", "A1"), headers=headers)
        assert reply.status_code == 401 and reply.json()["code"] == "TOKEN_INVALID"
    await client.post("/hlwjg/_mock/faults", json={"token_ttl_s": 60})
    auth = await hlwjg_auth()
    assert (await client.post(RECORDS, json=make_approval("r1", "A1"), headers=auth)).status_code == 200
    clock.now += 60
    expired = await client.post(RECORDS, json=make_approval("r2", "A2"), headers=auth)
    assert (expired.status_code, expired.json()["code"]) == (401, "TOKEN_EXPIRED")
    assert (await report(client))["accepted"] == 1


async def test_create_replay_revision_and_naive_duplicate(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval
) -> None:
    auth = await hlwjg_auth()
    first = await client.post(RECORDS, json=make_approval("req-1", "320700261121000012345"), headers=auth)
    assert first.status_code == 200
    task_no = first.json()["data"]["taskNo"]
    assert first.json() == {"code": "0", "message": "ok", "data": {"taskNo": task_no, "replayed": False}}
    assert task_no.startswith("JGRW320700") and len(task_no) == 4 + 6 + 8

    replay = await client.post(RECORDS, json=make_approval("req-1", "320700261121000012345"), headers=auth)
    assert replay.json() == {"code": "0", "message": "ok", "data": {"taskNo": task_no, "replayed": True}}

    revision = make_approval("req-2", "320700261121000012345", version=2, decisionText="准予许可（更正）")
    revised = await client.post(RECORDS, json=revision, headers=auth)
    assert revised.json()["data"] == {"taskNo": task_no, "replayed": False}
    state = await report(client)
    assert (state["accepted"], state["duplicate_creations"], len(state["records"])) == (1, 0, 1)
    held = state["records"][0]
    assert held["dataVersion"] == 2 and held["requestIds"] == ["req-1", "req-2"]
    assert held["record"]["decisionText"] == "准予许可（更正）"

    # A new requestId carrying a version already held: the naive platform makes a second task.
    stale = await client.post(RECORDS, json=make_approval("req-3", "320700261121000012345", version=2), headers=auth)
    assert stale.status_code == 200 and stale.json()["data"]["taskNo"] != task_no
    state = await report(client)
    assert (state["accepted"], state["duplicate_creations"], len(state["records"])) == (1, 1, 2)
    assert [r["duplicate"] for r in state["records"]] == [False, True]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"record": {}}, "requestId"),
        ({"requestId": "", "record": {}}, "requestId"),
        ({"requestId": "x", "record": "nope"}, "record"),
        ({"requestId": "x", "record": {"approvalNo": ""}}, "record.approvalNo"),
        ([1, 2], "body"),
    ],
)
async def test_structurally_invalid_requests_are_rejected(
    client: httpx.AsyncClient, hlwjg_auth: Auth, body: Any, field: str
) -> None:
    reply = await client.post(RECORDS, json=body, headers=await hlwjg_auth())
    assert reply.status_code == 400
    assert reply.json()["code"] == "INVALID_RECORD" and reply.json()["field"] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dataVersion": "1"}, "record.dataVersion"),
        ({"dataVersion": 0}, "record.dataVersion"),
        ({"dataVersion": True}, "record.dataVersion"),
        ({"areaCode": "32070"}, "record.areaCode"),
        ({"areaCode": "３２０７００"}, "record.areaCode"),
        ({"counterpart": {"name": " "}}, "record.counterpart.name"),
        ({"counterpart": None}, "record.counterpart"),
    ],
)
async def test_invalid_records_are_rejected_and_counted(
    client: httpx.AsyncClient,
    hlwjg_auth: Auth,
    make_approval: MakeApproval,
    change: dict[str, Any],
    field: str,
) -> None:
    reply = await client.post(RECORDS, json=make_approval("r", "A1", **change), headers=await hlwjg_auth())
    assert reply.status_code == 400
    assert reply.json() == {"code": "INVALID_RECORD", "message": reply.json()["message"], "field": field}
    state = await report(client)
    assert (state["accepted"], state["rejected"]) == (0, 1)
    # The refused requestId is not remembered: the corrected resend is accepted.
    fixed = await client.post(RECORDS, json=make_approval("r", "A1"), headers=await hlwjg_auth())
    assert fixed.json()["data"]["replayed"] is False


async def test_broken_json_is_rejected(client: httpx.AsyncClient, hlwjg_auth: Auth) -> None:
    headers = await hlwjg_auth() | {"content-type": "application/json"}
    reply = await client.post(RECORDS, content=b'{"requestId": ', headers=headers)
    assert reply.status_code == 400 and reply.json()["field"] == "body"
    assert (await report(client))["rejected"] == 1


async def test_status_query_by_request_id(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval
) -> None:
    auth = await hlwjg_auth()
    task_no = (await client.post(RECORDS, json=make_approval("q-1", "A9"), headers=auth)).json()["data"]["taskNo"]
    await client.post(RECORDS, json=make_approval("q-2", "A9", version=3), headers=auth)
    found = await client.get(f"{RECORDS}/by-request/q-1", headers=auth)
    assert found.json() == {"code": "0", "data": {"taskNo": task_no, "approvalNo": "A9", "dataVersion": 1}}
    assert (await client.get(f"{RECORDS}/by-request/q-2", headers=auth)).json()["data"]["dataVersion"] == 3
    missing = await client.get(f"{RECORDS}/by-request/never-sent", headers=auth)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert (await client.get(f"{RECORDS}/by-request/q-1")).status_code == 401


async def test_event_feed_generate_and_inject(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval
) -> None:
    auth = await hlwjg_auth()
    for n in range(3):
        await client.post(RECORDS, json=make_approval(f"e-{n}", f"A{n}"), headers=auth)
    page = (await client.get("/hlwjg/api/v1/events", params={"limit": 2}, headers=auth)).json()
    assert page["code"] == "0" and page["data"]["next"] == 2 and page["data"]["hasMore"] is True
    created = page["data"]["events"]
    assert [e["seq"] for e in created] == [1, 2]
    assert created[0]["eventType"] == "TASK_CREATED" and created[0]["approvalNo"] == "A0"
    assert len(created[0]["supervisionMatterCode"]) == 14 and created[0]["occurredAt"].endswith("+08:00")

    generated = await client.post("/hlwjg/_mock/generate", json={"count": 5, "seed": 2})
    assert generated.json() == {"generated": 5, "unique_facts": 5}
    await client.post("/hlwjg/_mock/inject", json={"records": [{"eventType": "BROKEN"}, "garbage"]})
    rest = (await client.get("/hlwjg/api/v1/events", params={"since": 2}, headers=auth)).json()["data"]
    events = rest["events"]
    assert rest["next"] == 10 and rest["hasMore"] is False
    claims = [e for e in events if isinstance(e, dict) and e.get("eventType") == "TASK_CLAIMED"]
    assert len(claims) == 5
    held_tasks = {r["taskNo"] for r in (await report(client))["records"]}
    assert {c["taskNo"] for c in claims[:3]} == held_tasks  # real tasks are claimed first
    assert all(c["claimMode"] in ("MANUAL", "DEFAULT") and c["department"] for c in claims)
    assert events[-2:] == [{"eventType": "BROKEN"}, "garbage"]
    empty = (await client.get("/hlwjg/api/v1/events", params={"since": 10}, headers=auth)).json()["data"]
    assert empty == {"events": [], "next": 10, "hasMore": False}
    bad = await client.get("/hlwjg/api/v1/events", params={"limit": 0}, headers=auth)
    assert bad.status_code == 400


async def test_reset_clears_records_but_keeps_tokens(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval
) -> None:
    auth = await hlwjg_auth()
    await client.post(RECORDS, json=make_approval("z-1", "A1"), headers=auth)
    await client.post("/hlwjg/_mock/reset")
    state = await report(client)
    assert (state["accepted"], state["duplicate_creations"], state["rejected"], state["records"]) == (
        0,
        0,
        0,
        [],
    )
    again = await client.post(RECORDS, json=make_approval("z-1", "A1"), headers=auth)
    assert again.json()["data"]["replayed"] is False
