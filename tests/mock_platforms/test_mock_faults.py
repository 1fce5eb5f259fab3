"""Fault injection: each fault does what the contract says, never touches _mock, and drops really drop."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from mockkit import approval

from mock_platforms.app import create_app
from mock_platforms.faults import ResponseDropped
from mock_platforms.server import run_in_background

RECORDS = "/hlwjg/api/v1/approval-records"
CHANGES = "/zwfw/api/v1/banjian/changes"
Auth = Callable[[], Awaitable[dict[str, str]]]
MakeApproval = Callable[..., dict[str, Any]]


async def accepted(client: httpx.AsyncClient) -> int:
    return (await client.get("/hlwjg/_mock/records")).json()["accepted"]


async def test_settings_merge_reseed_and_reset(client: httpx.AsyncClient) -> None:
    first = (await client.post("/hlwjg/_mock/faults", json={"error_rate": 0.2, "seed": 5})).json()
    assert first == {
        "error_rate": 0.2,
        "latency_ms": 0.0,
        "down": False,
        "drop_response_rate": 0.0,
        "token_ttl_s": 3600,
        "malformed_rate": 0.0,
        "seed": 5,
    }
    merged = (await client.post("/hlwjg/_mock/faults", json={"latency_ms": 50})).json()
    assert merged["error_rate"] == 0.2 and merged["latency_ms"] == 50
    assert (await client.post("/hlwjg/_mock/faults", json={"error_rate": 2})).status_code == 422
    assert (await client.post("/hlwjg/_mock/faults", json={"eror_rate": 0.1})).status_code == 422
    # zwfw's faults are independent of hlwjg's.
    assert (await client.get("/zwfw/_mock/faults")).json()["error_rate"] == 0.0
    await client.post("/hlwjg/_mock/reset")
    assert (await client.get("/hlwjg/_mock/faults")).json()["error_rate"] == 0.0


async def test_down_answers_503_but_mock_endpoints_still_work(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval
) -> None:
    auth = await hlwjg_auth()
    await client.post("/hlwjg/_mock/faults", json={"down": True})
    await client.post("/zwfw/_mock/faults", json={"down": True})
    for method, path in (("POST", RECORDS), ("POST", "/hlwjg/oauth2/token"), ("GET", CHANGES)):
        reply = await client.request(method, path, json=make_approval("d-1", "A1"), headers=auth)
        assert (reply.status_code, reply.text) == (503, "Service Unavailable")
    assert (await client.get("/hlwjg/_mock/records")).status_code == 200
    assert await accepted(client) == 0
    traffic = (await client.get("/hlwjg/_mock/traffic")).json()
    assert [t["fault"] for t in traffic] == [None, "down", "down"]
    assert json.loads(traffic[1]["body"])["requestId"] == "d-1"


async def test_error_rate_gives_each_platforms_server_error_without_state_change(
    client: httpx.AsyncClient,
    hlwjg_auth: Auth,
    make_approval: MakeApproval,
    zwfw_headers: Callable[..., dict[str, str]],
) -> None:
    auth = await hlwjg_auth()
    await client.post("/hlwjg/_mock/faults", json={"error_rate": 1.0})
    await client.post("/zwfw/_mock/faults", json={"error_rate": 1.0})
    reply = await client.post(RECORDS, json=make_approval("err-1", "A1"), headers=auth)
    assert reply.status_code == 500 and reply.json()["code"] == "INTERNAL_ERROR"
    zwfw_reply = await client.get(CHANGES, headers=zwfw_headers(nonce="same"))
    assert zwfw_reply.status_code == 200
    assert zwfw_reply.json() == {"code": "500", "msg": "系统繁忙，请稍后再试", "data": None}
    assert await accepted(client) == 0
    await client.post("/hlwjg/_mock/faults", json={"error_rate": 0.0})
    await client.post("/zwfw/_mock/faults", json={"error_rate": 0.0})
    assert (await client.post(RECORDS, json=make_approval("err-1", "A1"), headers=auth)).json()["data"][
        "replayed"
    ] is False
    # The errored request never reached the handler, so its nonce was not consumed.
    assert (await client.get(CHANGES, headers=zwfw_headers(nonce="same"))).json()["code"] == "200"


async def test_error_draws_are_seeded_and_repeatable(client: httpx.AsyncClient, hlwjg_auth: Auth) -> None:
    async def outcomes() -> list[int]:
        await client.post("/hlwjg/_mock/faults", json={"error_rate": 0.5, "seed": 42})
        statuses = []
        for _ in range(20):
            reply = await client.get("/hlwjg/api/v1/events")
            statuses.append(reply.status_code)
        return statuses

    first, second = await outcomes(), await outcomes()
    assert first == second and {500, 401} == set(first)


async def test_malformed_commits_then_sends_broken_json(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval
) -> None:
    auth = await hlwjg_auth()
    await client.post("/hlwjg/_mock/faults", json={"malformed_rate": 1.0})
    reply = await client.post(RECORDS, json=make_approval("m-1", "A1"), headers=auth)
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        json.loads(reply.content)
    assert await accepted(client) == 1
    assert (await client.get("/hlwjg/_mock/traffic")).json()[-1]["fault"] == "malformed"


async def test_latency_delays_native_calls_only(client: httpx.AsyncClient) -> None:
    await client.post("/zwfw/_mock/faults", json={"latency_ms": 150})
    started = time.perf_counter()
    await client.get("/zwfw/_mock/records")
    assert time.perf_counter() - started < 0.1
    started = time.perf_counter()
    await client.get(CHANGES)
    assert time.perf_counter() - started >= 0.15


async def test_drop_in_process_commits_and_never_delivers_a_full_reply(
    client: httpx.AsyncClient, hlwjg_auth: Auth, make_approval: MakeApproval
) -> None:
    auth = await hlwjg_auth()
    await client.post("/hlwjg/_mock/faults", json={"drop_response_rate": 1.0})
    with pytest.raises(ResponseDropped):
        await client.post(RECORDS, json=make_approval("drop-1", "A1"), headers=auth)
    assert await accepted(client) == 1


async def test_drop_over_real_tcp_aborts_the_connection_after_commit() -> None:
    """The case that breeds duplicates: committed, but the client only sees a broken connection."""
    app = create_app()
    server = await run_in_background(app=app)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
            token = await http.post(
                "/hlwjg/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "shenguan",
                    "client_secret": "hlwjg-mock-secret",
                },
            )
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            await http.post("/hlwjg/_mock/faults", json={"drop_response_rate": 1.0})
            with pytest.raises(httpx.TransportError):
                await http.post(RECORDS, json=approval("tcp-1", "A1"), headers=auth)
            await http.post("/hlwjg/_mock/faults", json={"drop_response_rate": 0.0})
            state = (await http.get("/hlwjg/_mock/records")).json()
            assert state["accepted"] == 1 and state["records"][0]["requestIds"] == ["tcp-1"]
            # A relay that reconciles by status query learns the truth; a blind resend is a harmless replay.
            status = await http.get(f"{RECORDS}/by-request/tcp-1", headers=auth)
            assert status.status_code == 200
            resend = await http.post(RECORDS, json=approval("tcp-1", "A1"), headers=auth)
            assert resend.json()["data"]["replayed"] is True
            assert (await http.get("/hlwjg/_mock/records")).json()["duplicate_creations"] == 0
    finally:
        await server.stop()
