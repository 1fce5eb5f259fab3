"""The zwfw mock: x-tif signatures, the cursor-paged 办件 feed, and its _mock control plane."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from mockkit import FakeClock

CHANGES = "/zwfw/api/v1/banjian/changes"


async def test_signed_request_reads_an_empty_feed(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    reply = await client.get(CHANGES, headers=zwfw_headers())
    assert reply.status_code == 200
    assert reply.json() == {
        "code": "200",
        "msg": "成功",
        "data": {"items": [], "next_cursor": "0", "has_more": False},
    }


async def test_signature_failures_hide_in_http_200(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]], clock: FakeClock
) -> None:
    cases = [
        ({}, "4010"),
        (zwfw_headers(paasid="stranger"), "4010"),
        (zwfw_headers(token="wrong-token"), "4010"),
        (zwfw_headers(timestamp=str(int(clock()) - 301)), "4011"),
        (zwfw_headers(timestamp=str(int(clock()) + 400)), "4011"),
        (zwfw_headers(timestamp="yesterday"), "4011"),
    ]
    for headers, code in cases:
        reply = await client.get(CHANGES, headers=headers)
        assert reply.status_code == 200
        body = reply.json()
        assert body["code"] == code, headers
        assert body["data"] is None
    assert (await client.get(CHANGES, headers=zwfw_headers(timestamp=str(int(clock()) - 299)))).json()["code"] == "200"


async def test_nonce_reuse_is_refused_until_the_window_passes(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]], clock: FakeClock
) -> None:
    assert (await client.get(CHANGES, headers=zwfw_headers(nonce="abc"))).json()["code"] == "200"
    again = await client.get(CHANGES, headers=zwfw_headers(nonce="abc"))
    assert again.json() == {"code": "4012", "msg": "nonce 重复", "data": None}
    clock.now += 601
    assert (await client.get(CHANGES, headers=zwfw_headers(nonce="abc"))).json()["code"] == "200"


async def test_cursor_paging_walks_the_whole_feed_once(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    generated = await client.post(
        "/zwfw/_mock/generate", json={"count": 250, "seed": 7, "duplicate_rate": 0.1, "revision_rate": 0.04}
    )
    assert generated.json() == {"generated": 285, "unique_facts": 250}
    seen: list[dict[str, str]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100"} | ({"cursor": cursor} if cursor is not None else {})
        data = (await client.get(CHANGES, params=params, headers=zwfw_headers())).json()["data"]
        seen.extend(data["items"])
        cursor = data["next_cursor"]
        if not data["has_more"]:
            break
    assert len(seen) == 285
    assert len({i["PROJID"] for i in seen}) == 250
    # Nothing new: next_cursor stays where it was.
    data = (await client.get(CHANGES, params={"cursor": cursor}, headers=zwfw_headers())).json()["data"]
    assert data == {"items": [], "next_cursor": cursor, "has_more": False}


async def test_default_and_invalid_limits(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    await client.post("/zwfw/_mock/generate", json={"count": 120, "seed": 1})
    data = (await client.get(CHANGES, headers=zwfw_headers())).json()["data"]
    assert len(data["items"]) == 100 and data["next_cursor"] == "100" and data["has_more"]
    for params in ({"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"cursor": "-1"}):
        body = (await client.get(CHANGES, params=params, headers=zwfw_headers())).json()
        assert body["code"] == "4001" and body["data"] is None


async def test_generate_twice_appends_new_facts(client: httpx.AsyncClient) -> None:
    await client.post("/zwfw/_mock/generate", json={"count": 10, "seed": 7})
    await client.post("/zwfw/_mock/generate", json={"count": 10, "seed": 7})
    report = (await client.get("/zwfw/_mock/records")).json()
    assert report["feed_size"] == 20


async def test_inject_serves_items_verbatim_even_malformed(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    weird = ['{"PROJID": "3207', {"PROJID": 320700}, {"SERVICENAME": "食品经营许可"}, None, [1, 2]]
    assert (await client.post("/zwfw/_mock/inject", json={"records": weird})).json() == {"injected": 5}
    data = (await client.get(CHANGES, headers=zwfw_headers())).json()["data"]
    assert data["items"] == weird


async def test_records_report_and_reset(client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]) -> None:
    await client.post("/zwfw/_mock/generate", json={"count": 3})
    await client.get(CHANGES, headers=zwfw_headers(nonce="n1"))
    await client.post("/zwfw/_mock/faults", json={"latency_ms": 1})
    report = (await client.get("/zwfw/_mock/records")).json()
    assert report | {"feed_size": 0} == {
        "platform": "zwfw",
        "accepted": 0,
        "duplicate_creations": 0,
        "rejected": 0,
        "records": [],
        "feed_size": 0,
        "linkage_feed_size": 0,
    }
    assert len((await client.get("/zwfw/_mock/traffic")).json()) == 1
    assert (await client.post("/zwfw/_mock/reset")).status_code == 200
    assert (await client.get("/zwfw/_mock/records")).json()["feed_size"] == 0
    assert (await client.get("/zwfw/_mock/traffic")).json() == []
    assert (await client.get("/zwfw/_mock/faults")).json()["latency_ms"] == 0
    # Nonces are forgotten too.
    assert (await client.get(CHANGES, headers=zwfw_headers(nonce="n1"))).json()["code"] == "200"


async def test_traffic_records_what_crossed_the_wire(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    await client.get(CHANGES, params={"limit": "5"}, headers=zwfw_headers())
    await client.get("/zwfw/_mock/records")
    traffic = (await client.get("/zwfw/_mock/traffic")).json()
    assert traffic == [{"method": "GET", "path": CHANGES, "query": "limit=5", "body": "", "fault": None}]
