"""The hlwjg event-feed source (task claims) and the claim codec: respx edge cases, the mock, the conformance kit."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

from adapters.base import RawRecord, SourceAdapter
from adapters.conformance import ErrorCase, SourceConformance, reply
from adapters.errors import DecodeError, PermanentError, RetryableError
from adapters.hlwjg import HlwjgAdapter, HlwjgEventsAdapter
from adapters.hlwjg.claims import decode_claim, encode_claim
from adapters.registry import load
from mock_platforms import create_app
from schemas import ClaimMode, Envelope, SupervisionTaskClaimed

CST = timezone(timedelta(hours=8))
BASE = "http://hlwjg.test/hlwjg"
EVENTS_URL = f"{BASE}/api/v1/events"
TOKEN_URL = f"{BASE}/oauth2/token"

CLAIM: dict[str, Any] = {
    "seq": 7,
    "eventType": "TASK_CLAIMED",
    "taskNo": "JGRW32070000000003",
    "approvalNo": "320700261121000012345",
    "supervisionMatterCode": "32070000100001",
    "claimMode": "MANUAL",
    "claimedAt": "2026-11-20T10:15:00+08:00",
    "department": "连云港市市场监督管理局",
}


def events_adapter(transport: httpx.AsyncBaseTransport | None = None) -> HlwjgEventsAdapter:
    return HlwjgEventsAdapter(
        "hlwjg-events", base_url=BASE, client_id="shenguan", client_secret="hlwjg-mock-secret", transport=transport
    )


def page(events: list[Any], next_: int, has_more: bool = False) -> httpx.Response:
    return httpx.Response(200, json={"code": "0", "data": {"events": events, "next": next_, "hasMore": has_more}})


def token() -> httpx.Response:
    return httpx.Response(200, json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})


def test_registered_as_a_source_through_the_entry_point() -> None:
    cls = load("hlwjg-events")
    assert cls is HlwjgEventsAdapter
    adapter = cls.from_config("claims", {"base_url": BASE, "client_id": "a", "client_secret": "b"})
    assert isinstance(adapter, SourceAdapter)
    with pytest.raises(ValueError, match="client_secret"):
        cls.from_config("claims", {"base_url": BASE, "client_id": "a"})


def test_a_claim_event_becomes_a_claim_in_the_approvals_loop() -> None:
    [env] = events_adapter().decode(RawRecord(CLAIM, position="7"))
    payload = env.payload()
    assert isinstance(payload, SupervisionTaskClaimed)
    assert (env.type, env.business_key, env.correlation_id) == (
        "supervision.task.claimed",
        "JGRW32070000000003",
        "320700261121000012345",
    ), "the loop is the approval's 办件编号, as the zwfw source names it"
    assert payload.mode is ClaimMode.manual and payload.auto is False
    assert payload.claimed_at == datetime(2026, 11, 20, 10, 15, tzinfo=CST)
    assert payload.department_name == "连云港市市场监督管理局"
    again = events_adapter().decode(RawRecord({**CLAIM, "seq": 99}, position="99"))
    assert again[0].id == env.id, "the feed repeating a claim under a new seq is the same fact"


def test_task_created_is_skipped_and_unknown_kinds_are_rejected_with_a_reason() -> None:
    adapter = events_adapter()
    assert adapter.decode(RawRecord({"seq": 1, "eventType": "TASK_CREATED", "taskNo": "T1"})) == []
    for item, reason in [
        ({"eventType": "INSPECTION_RECORDED"}, "INSPECTION_RECORDED"),
        ("garbage", "missing"),
        ({**CLAIM, "claimMode": "LATER"}, "claimMode"),
        ({**CLAIM, "claimedAt": "yesterday"}, "claimedAt"),
        ({**CLAIM, "taskNo": ""}, "taskNo"),
        ({**CLAIM, "supervisionMatterCode": "12"}, "supervisionMatterCode"),
        ({**CLAIM, "auto": "yes"}, "auto"),
    ]:
        with pytest.raises(DecodeError, match=reason):
            adapter.decode(RawRecord(item))


def test_naive_claim_times_are_beijing_time() -> None:
    payload = decode_claim({**CLAIM, "claimedAt": "2026-11-20 10:15:00"})
    assert payload.claimed_at.utcoffset() == timedelta(hours=8) and payload.claimed_at.hour == 10


def test_encode_claim_is_the_inverse_of_decode_claim() -> None:
    payload = SupervisionTaskClaimed(
        task_no="JGRW32070000000003",
        approval_case_no="320700261121000012345",
        supervision_matter_code="32070000100001",
        department_name="连云港市市场监督管理局",
        department_code="11320700MB12345679",
        region="320700",
        claimed_at=datetime(2026, 11, 24, tzinfo=CST),
        mode=ClaimMode.default,
        auto=True,
        claim_deadline=date(2026, 11, 23),
    )
    env = Envelope.wrap(payload, source="shenguan", correlation_id="320700261121000012345")
    native = encode_claim(env)
    assert native["claimMode"] == "DEFAULT" and native["claimedAt"] == "2026-11-24T00:00:00+08:00"
    assert decode_claim(native) == payload


@respx.mock
async def test_poll_pages_through_the_feed_with_a_bearer_token() -> None:
    respx.post(TOKEN_URL).mock(return_value=token())
    route = respx.get(EVENTS_URL).mock(side_effect=[page([CLAIM], 7, has_more=True), page([], 7)])
    adapter = events_adapter()
    try:
        first = await adapter.poll(None, 50)
        assert first.next_cursor == "7" and first.has_more and first.records[0].payload == CLAIM
        second = await adapter.poll("7", 50)
        assert second.next_cursor == "7" and not second.records and not second.has_more
    finally:
        await adapter.aclose()
    assert route.calls[0].request.headers["Authorization"] == "Bearer tok"
    assert "since" not in route.calls[0].request.url.params
    assert route.calls[1].request.url.params["since"] == "7"


@respx.mock
async def test_an_expired_token_is_refreshed_once_and_the_read_repeated() -> None:
    respx.post(TOKEN_URL).mock(side_effect=[token(), token()])
    respx.get(EVENTS_URL).mock(side_effect=[httpx.Response(401, json={"code": "TOKEN_EXPIRED"}), page([CLAIM], 1)])
    adapter = events_adapter()
    try:
        assert len((await adapter.poll(None, 10)).records) == 1
    finally:
        await adapter.aclose()


async def test_against_the_mock_claims_come_out_as_claims_in_feed_order() -> None:
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    sender = HlwjgAdapter(
        "hlwjg",
        base_url="http://mock/hlwjg",
        client_id="shenguan",
        client_secret="hlwjg-mock-secret",
        transport=transport,
    )
    source = HlwjgEventsAdapter(
        "hlwjg-events",
        base_url="http://mock/hlwjg",
        client_id="shenguan",
        client_secret="hlwjg-mock-secret",
        transport=transport,
    )
    from factories import envelope

    try:
        receipts = [await sender.deliver(envelope(f"32070026112100000000{i}"), f"key-{i}") for i in range(3)]
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            await client.post("/hlwjg/_mock/generate", json={"count": 2, "seed": 3})
        cursor, claims = None, []
        while True:
            got = await source.poll(cursor, 2)
            for record in got.records:
                claims.extend(source.decode(record))
            cursor = got.next_cursor
            if not got.has_more:
                break
    finally:
        await sender.aclose()
        await source.aclose()
    assert cursor == "5", "3 TASK_CREATED + 2 TASK_CLAIMED"
    assert [c.business_key for c in claims] == [r.remote_id for r in receipts[:2]]
    assert [c.correlation_id for c in claims] == ["320700261121000000000", "320700261121000000001"]


FEED_CLAIM = {k: v for k, v in CLAIM.items() if k != "seq"}  # seq is the feed position, not part of the fact
CLAIM_WITH_PHONE = {**FEED_CLAIM, "department": "市场监管局 联系电话 13912345678 身份证 320706199003071237"}
_REQUEST_ONLY = ("dataVersion", "correlationId")


def as_feed_event(env: Envelope) -> dict[str, Any]:
    """The feed's shape of a claim: the claim object without empty fields and request-only fields."""
    claim = {k: v for k, v in encode_claim(env).items() if v not in (None, False) and k not in _REQUEST_ONLY}
    return {"eventType": "TASK_CLAIMED", **claim}


class TestHlwjgEventsConformance(SourceConformance):
    adapter_factory = staticmethod(lambda transport: events_adapter(transport))
    native_samples = (FEED_CLAIM, {**CLAIM_WITH_PHONE, "taskNo": "JGRW32070000000004", "claimMode": "DEFAULT"})
    encode_native = staticmethod(as_feed_event)
    target_request = staticmethod(lambda request: request.url.path.endswith("/api/v1/events"))
    upstream_factory = staticmethod(lambda: httpx.MockTransport(lambda _request: token()))
    error_cases = (
        ErrorCase("HTTP 503", reply(503, content=b"busy"), RetryableError),
        ErrorCase(
            "HTTP 500",
            reply(500, json={"code": "INTERNAL_ERROR"}),
            RetryableError,
            why="a read applied nothing; reading again is safe",
        ),
        ErrorCase("HTTP 429", reply(429, headers={"Retry-After": "2"}), RetryableError),
        ErrorCase("401 even after a fresh token", reply(401, json={"code": "TOKEN_INVALID"}), RetryableError),
        ErrorCase(
            "400 invalid cursor",
            reply(400, json={"code": "INVALID_PARAMETER", "message": "since"}),
            PermanentError,
            why="the request itself is wrong: an operator must look",
        ),
        ErrorCase("unreadable body", reply(200, content=b'{"code": "0", "da'), RetryableError),
        ErrorCase("no data.next", reply(200, json={"code": "0", "data": {"events": []}}), RetryableError),
    )


async def test_the_destination_delivers_a_default_claim_once_and_refuses_one_for_an_unknown_task() -> None:
    from factories import envelope

    app = create_app()
    sender = HlwjgAdapter(
        "hlwjg",
        base_url="http://mock/hlwjg",
        client_id="shenguan",
        client_secret="hlwjg-mock-secret",
        transport=httpx.ASGITransport(app=app),
    )
    try:
        task_no = (await sender.deliver(envelope(), "approval-key")).remote_id
        assert task_no is not None
        claim = SupervisionTaskClaimed(
            task_no=task_no, claimed_at=datetime(2026, 11, 24, tzinfo=CST), mode=ClaimMode.default, auto=True
        )
        env = Envelope.wrap(claim, source="shenguan", correlation_id="320700261121000012345")
        first = await sender.deliver(env, "claim-key")
        again = await sender.deliver(env, "claim-key")
        assert (first.remote_id, first.replayed, again.replayed) == (task_no, False, True)
        found = await sender.query_status(env, "claim-key")
        assert found is not None and found.remote_id == task_no
        stranger = Envelope.wrap(claim.model_copy(update={"task_no": "JGRW99999999999999"}), source="shenguan")
        with pytest.raises(PermanentError, match="TASK_NOT_FOUND"):
            await sender.deliver(stranger, "claim-key-2")
    finally:
        await sender.aclose()
    report = app.platforms["hlwjg"].records_report()
    assert len(report["claims"]) == 1 and report["duplicate_creations"] == 0
    assert report["claims"][0]["claim"]["claimMode"] == "DEFAULT" and report["claims"][0]["claim"]["auto"] is True
