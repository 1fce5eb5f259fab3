"""POST /ingest/{source}: who may push, how much, what is stored, and what the pusher is told.

Every refusal is checked twice: the status and error the pusher gets, and the store — nothing accepted
(and, for refusals before the body is read, nothing stored at all).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from adapters.tif import signed_headers
from gateway.config import Config
from gateway.demo import relay_config
from gateway.http import create_app
from gateway.runtime import Gateway
from mock_platforms.generator import generate_banjian
from mock_platforms.server import run_in_background

SECRET = "push-secret-zp-7f3a"
OTHER_SECRET = "push-secret-zp2-91bd"
API_KEY = "kp-key-3b9c0d1e2f"
OTHER_KEY = "kp2-key-77aa10"
LIMIT = 8192


def sha(key: str) -> str:
    return "sha256$" + hashlib.sha256(key.encode()).hexdigest()


def push_config(base_url: str, db: Path) -> Config:
    raw = relay_config(base_url, db).model_dump(mode="python")
    zwfw = {k: raw["sources"]["zwfw"][k] for k in ("adapter", "base_url", "paasid", "token")}
    zwfw["token"] = "zwfw-mock-token"
    raw["sources"] = {
        "zwfw": zwfw | {"poll_interval_s": 60},  # polled (poll mode): not a push target
        "zp": zwfw | {"mode": "push", "ingest": {"auth": "tif", "paasid": "zp-pusher", "secret": SECRET}},
        "zp2": zwfw | {"mode": "push", "ingest": {"auth": "tif", "paasid": "zp2-pusher", "secret": OTHER_SECRET}},
        "kp": zwfw | {"mode": "both", "poll_interval_s": 60, "ingest": {"auth": "api_key", "api_keys": [sha(API_KEY)]}},
        "kp2": zwfw | {"mode": "push", "ingest": {"auth": "api_key", "api_keys": [OTHER_KEY]}},
    }
    raw["destinations"]["hlwjg"]["client_secret"] = "hlwjg-mock-secret"
    raw["gateway"]["ingest_max_bytes"] = LIMIT
    raw["alerts"]["scan_interval_s"] = 0.1
    return Config.model_validate(raw)


@pytest.fixture
async def mocks() -> AsyncIterator[str]:
    server = await run_in_background()
    try:
        yield server.base_url
    finally:
        await server.stop()


@pytest.fixture
async def gateway(mocks: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(push_config(mocks, tmp_path / "g.db"))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        yield c


def items(n: int, first: int = 1) -> list[dict[str, str]]:
    return generate_banjian(n, seed=3, first_sequence=first)


def tif(secret: str = SECRET, paasid: str = "zp-pusher", *, at: float | None = None, nonce: str | None = None) -> dict:
    kwargs: dict[str, Any] = {"paasid": paasid, "token": secret}
    if at is not None:
        kwargs["clock"] = lambda: at
    if nonce is not None:
        kwargs["nonce_factory"] = lambda: nonce
    return signed_headers(**kwargs)


async def counts(gateway: Gateway) -> tuple[int, int]:
    status = await gateway.store.status()
    return int(status["messages"]), int(status["rejected"])  # type: ignore[call-overload]


# -- accepted pushes -------------------------------------------------------------------------------------


async def test_a_signed_push_is_stored_before_200_and_a_resend_is_a_duplicate(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    record = items(1)[0]
    first = await client.post("/ingest/zp", json=record, headers=tif())
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["accepted"] == 1 and body["received"] == 1 and body["rejected"] == 0
    [msg] = body["messages"]
    assert msg["verdict"] == "new" and msg["type"] == "approval.decided" and msg["index"] == 0
    assert await counts(gateway) == (1, 0), "stored by the time the 200 arrived"

    again = await client.post("/ingest/zp", json=record, headers=tif())
    assert again.status_code == 200, "a resend is not an error"
    [dup] = again.json()["messages"]
    assert dup["verdict"] == "duplicate" and dup["original_message_id"] == msg["message_id"]
    assert await counts(gateway) == (1, 0)


async def test_a_batch_with_a_bad_record_stores_all_and_names_the_field(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    good = items(2)
    bad = dict(good[1], PROJID="320700261121000099999")
    del bad["TRANSACT_TIME"]
    response = await client.post("/ingest/zp", json=[good[0], bad, good[1]], headers=tif())
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 2 and body["rejected"] == 1
    [rej] = body["rejections"]
    assert rej["index"] == 1 and "TRANSACT_TIME" in rej["reason"]
    assert [m["index"] for m in body["messages"]] == [0, 2]
    assert await counts(gateway) == (2, 1)
    [stored] = await gateway.store.rejected()
    assert stored["source"] == "zp" and "TRANSACT_TIME" in stored["reason"]
    assert stored["position"] == rej["position"] and json.loads(stored["raw"])["PROJID"] == "320700261121000099999"


async def test_an_invalid_value_is_named_without_being_echoed(client: httpx.AsyncClient) -> None:
    record = dict(items(1)[0], APPLY_CARDTYPE="111", APPLY_TYPE="1", APPLY_CARDNUMBER="320705199001011235")
    response = await client.post("/ingest/zp", json=record, headers=tif())
    assert response.status_code == 422
    reason = response.json()["rejections"][0]["reason"]
    assert "APPLY_CARDNUMBER" in reason and "320705199001011235" not in response.text


@pytest.mark.parametrize("how", ["x-api-key", "bearer"])
async def test_api_keys_in_either_header(client: httpx.AsyncClient, gateway: Gateway, how: str) -> None:
    headers = {"x-api-key": API_KEY} if how == "x-api-key" else {"authorization": f"Bearer {API_KEY}"}
    response = await client.post("/ingest/kp", json=items(1)[0], headers=headers)
    assert response.status_code == 200, response.text
    assert await counts(gateway) == (1, 0)


# -- refusals: nothing accepted --------------------------------------------------------------------------


def _refusals() -> list[Any]:
    now = time.time()
    return [
        pytest.param("zp", {}, 401, "unauthorized", id="no-credentials"),
        pytest.param("zp", tif(secret="wrong"), 401, "unauthorized", id="bad-signature"),
        pytest.param("zp", tif(paasid="stranger"), 401, "unauthorized", id="unknown-paasid"),
        pytest.param("zp", tif(at=now - 301), 401, "stale_timestamp", id="stale-timestamp"),
        pytest.param("zp", tif(at=now + 3600), 401, "stale_timestamp", id="future-timestamp"),
        pytest.param("zp", tif(OTHER_SECRET, "zp2-pusher"), 403, "forbidden", id="another-sources-signature"),
        pytest.param("kp", {"x-api-key": "guess"}, 401, "unauthorized", id="wrong-api-key"),
        pytest.param("kp", {}, 401, "unauthorized", id="no-api-key"),
        pytest.param("kp", {"x-api-key": OTHER_KEY}, 403, "forbidden", id="another-sources-key"),
        pytest.param("kp", tif(), 401, "unauthorized", id="signature-where-a-key-is-wanted"),
        pytest.param("nope", tif(), 404, "unknown_source", id="unknown-source"),
        pytest.param("zwfw", tif(), 404, "unknown_source", id="poll-only-source"),
    ]


async def test_refused_callers_get_the_right_4xx_and_store_nothing(client: httpx.AsyncClient, gateway: Gateway) -> None:
    # One gateway for all cases (starting one per case is most of the run time); each case is named on failure.
    for case in _refusals():
        source, headers, status, error = case.values
        response = await client.post(f"/ingest/{source}", json=items(1)[0], headers=headers)
        assert response.status_code == status, (case.id, response.text)
        body = response.json()
        assert body["error"] == error and body["detail"], case.id
        assert await counts(gateway) == (0, 0), case.id
        assert SECRET not in response.text and OTHER_SECRET not in response.text


async def test_a_replayed_nonce_is_refused(client: httpx.AsyncClient, gateway: Gateway) -> None:
    headers = tif()
    assert (await client.post("/ingest/zp", json=items(1)[0], headers=headers)).status_code == 200
    replay = await client.post("/ingest/zp", json=items(1, first=2)[0], headers=headers)
    assert replay.status_code == 401 and replay.json()["error"] == "replayed_nonce"
    assert await counts(gateway) == (1, 0), "the replayed request's record was not stored"


async def test_a_refused_request_does_not_spend_its_nonce(client: httpx.AsyncClient) -> None:
    headers = tif(nonce="n-0001")
    bad = dict(headers, **{"x-tif-signature": "0" * 64})
    assert (await client.post("/ingest/zp", json=items(1)[0], headers=bad)).status_code == 401
    assert (await client.post("/ingest/zp", json=items(1)[0], headers=headers)).status_code == 200


async def test_replay_protection_survives_a_restart(mocks: str, tmp_path: Path) -> None:
    cfg = push_config(mocks, tmp_path / "g.db")
    headers = tif()
    for expected in (200, 401):
        gw = Gateway(cfg)
        await gw.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gw)), base_url="http://g") as c:
                response = await c.post("/ingest/zp", json=items(1)[0], headers=headers)
            assert response.status_code == expected, response.text
        finally:
            await gw.stop()


async def test_a_declared_oversize_body_is_refused_unread(client: httpx.AsyncClient, gateway: Gateway) -> None:
    big = [dict(items(1)[0], TRANSACT_DESCRIBE="准予许可" * 1000)]
    response = await client.post("/ingest/zp", json=big, headers=tif())
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert await counts(gateway) == (0, 0)


async def test_an_undeclared_oversize_stream_is_cut_off(client: httpx.AsyncClient, gateway: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"["
        for _ in range(100):
            yield json.dumps(items(1)[0]).encode() + b","

    response = await client.post("/ingest/zp", content=chunks(), headers=tif() | {"content-type": "application/json"})
    assert response.status_code == 413
    assert await counts(gateway) == (0, 0)


async def test_the_body_is_not_read_past_the_limit(gateway: Gateway) -> None:
    """At the ASGI level: count how much of an endless body the app pulls before answering 413."""
    app = create_app(gateway)
    pulled = 0
    chunk = b"x" * 1024

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > 10_000:
            raise AssertionError("read the whole body")
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.encode(), v.encode()) for k, v in tif().items()] + [(b"content-type", b"application/json")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/ingest/zp",
        "raw_path": b"/ingest/zp",
        "query_string": b"",
        "headers": headers,
        "server": ("gateway", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled <= LIMIT // len(chunk) + 1


async def test_unauthenticated_bodies_are_not_read_at_all(gateway: Gateway) -> None:
    app = create_app(gateway)
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/ingest/zp",
        "raw_path": b"/ingest/zp",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "server": ("gateway", 80),
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 401 and pulled == 0


# -- unreadable bodies: refused, and kept as rejected ------------------------------------------------------


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""


UNREADABLE = [
    pytest.param(b'{"PROJID": ', "application/json", 400, "malformed", "malformed JSON", id="broken-json"),
    pytest.param(b'"just a string"', "application/json", 400, "malformed", "JSON object", id="not-an-object"),
    pytest.param(b"[]", "application/json", 400, "malformed", "no records", id="empty-array"),
    pytest.param(b"\xff\xfe{}", "application/json", 400, "malformed", "utf-8", id="not-utf8"),
    pytest.param(BILLION_LAUGHS, "application/xml", 400, "malformed", "DTDs and entities", id="xml-entities"),
    pytest.param(b"<a><b></a>", "text/xml", 400, "malformed", "malformed XML", id="broken-xml"),
    pytest.param(b"PROJID=1", "text/plain", 415, "unsupported_media_type", "text/plain", id="wrong-type"),
]


async def test_unreadable_bodies_are_refused_and_kept(client: httpx.AsyncClient, gateway: Gateway) -> None:
    for n, case in enumerate(UNREADABLE, start=1):
        body, content_type, status, error, says = case.values
        response = await client.post("/ingest/zp", content=body, headers=tif() | {"content-type": content_type})
        assert response.status_code == status, (case.id, response.text)
        answer = response.json()
        assert answer["error"] == error and says in answer["detail"] and answer["push_id"], case.id
        assert await counts(gateway) == (0, n), f"{case.id}: kept as rejected, never dropped"
        stored = (await gateway.store.rejected(limit=1))[0]
        assert stored["position"] == f"push:{answer['push_id']}" and says in stored["reason"], case.id


async def test_well_formed_xml_reaches_the_adapter_which_rejects_it(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    response = await client.post(
        "/ingest/zp", content=b"<banjian><PROJID>1</PROJID></banjian>", headers=tif() | {"content-type": "text/xml"}
    )
    assert response.status_code == 422 and response.json()["rejected"] == 1
    assert await counts(gateway) == (0, 1)


# -- end to end, logs, OpenAPI ----------------------------------------------------------------------------


async def test_pushed_approvals_reach_the_hlwjg_mock_once(client: httpx.AsyncClient, mocks: str) -> None:
    batch = items(3)
    assert (await client.post("/ingest/zp", json=batch, headers=tif())).status_code == 200
    assert (await client.post("/ingest/kp", json=batch[0], headers={"x-api-key": API_KEY})).status_code == 200
    async with httpx.AsyncClient(base_url=mocks) as mock:
        async with asyncio.timeout(20):
            while (held := (await mock.get("/hlwjg/_mock/records")).json())["accepted"] < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        held = (await mock.get("/hlwjg/_mock/records")).json()
    assert held["accepted"] == 3 and held["duplicate_creations"] == 0


async def test_secrets_and_keys_are_never_logged(client: httpx.AsyncClient) -> None:
    with capture_logs() as logs:
        await client.post("/ingest/zp", json=items(1)[0], headers=tif())
        await client.post("/ingest/zp", json=items(1)[0], headers=tif(secret="wrong-" + SECRET))
        await client.post("/ingest/kp", json=items(1)[0], headers={"x-api-key": API_KEY + "x"})
    text = json.dumps(logs, default=str)
    assert "ingest.refused" in text and "ingest.push" in text
    assert SECRET not in text and API_KEY not in text


async def test_openapi_declares_the_route_with_models_and_statuses(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/ingest/{source}"]["post"]
    assert {"200", "400", "401", "403", "404", "413", "415", "422"} <= set(op["responses"])
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/IngestResponse")
    assert op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/IngestError")
    assert {"application/json", "application/xml"} <= set(op["requestBody"]["content"])
    assert {p["name"] for p in op["parameters"]} >= {"source", "x-tif-signature", "x-api-key"}
