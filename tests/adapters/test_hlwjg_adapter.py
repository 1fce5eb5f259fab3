"""HlwjgAdapter against a faked 互联网+监管 (respx): tokens, delivery outcomes, status query, codec round trip."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import structlog

from adapters.base import DestinationAdapter
from adapters.errors import DecodeError, OutcomeUnknownError, PermanentError, RetryableError
from adapters.hlwjg import HlwjgAdapter
from adapters.hlwjg.auth import TokenCache
from adapters.hlwjg.codec import decode_record, encode
from adapters.zwfw.codec import to_envelope
from schemas import (
    ApprovalDecided,
    Certificate,
    Classification,
    Commitment,
    CommitmentMode,
    DecisionResult,
    Envelope,
    IdType,
    Party,
    PartyKind,
    SupervisionTaskCreated,
)

BASE = "http://hlwjg.test/hlwjg"
TOKEN_URL = f"{BASE}/oauth2/token"
RECORDS_URL = f"{BASE}/api/v1/approval-records"
KEY = "dlv:zwfw:hlwjg:320700261121000012345:1"

SAMPLE_NATIVE: dict[str, Any] = {
    "PROJID": "320700261121000012345", "SERVICECODE": "11320700MB123456794000117001",
    "SERVICENAME": "食品经营许可", "AREACODE": "320700", "APPLY_TYPE": "2",
    "APPLYNAME": "连云港海州区某某餐饮有限公司", "APPLY_CARDTYPE": "001",
    "APPLY_CARDNUMBER": "91320700MA1X2Y3K05", "LEGALMAN": "王某某", "CONTACT_PHONE": "13800138000",
    "RECEIVETIME": "2026-11-18 09:12:33", "TRANSACT_TIME": "2026-11-20 16:40:02", "TRANSACT_RESULT": "办结",
    "TRANSACT_DESCRIBE": "准予许可", "RESULT_CODE": "JY33207000012345", "XK_WSH": "连审批食经〔2026〕1234号",
    "XK_XKWS": "食品经营许可决定书", "XK_XKZS": "食品经营许可证", "XK_YXQZ": "2026-11-20",
    "XK_YXQZI": "2031-11-19", "XK_XKJGDM": "11320700MB12345679", "PROMISE_TYPE": "事后核查",
    "PROMISE_PERIOD": "20", "MJ": "", "DATAVERSION": "2",
}
ENVELOPE = to_envelope(SAMPLE_NATIVE, source="zwfw")


def token_reply(value: str = "tok-1", expires_in: Any = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": value, "token_type": "Bearer", "expires_in": expires_in})


def accepted(task_no: str = "T202611200001", replayed: bool = False) -> httpx.Response:
    return httpx.Response(200, json={"code": "0", "message": "ok", "data": {"taskNo": task_no, "replayed": replayed}})


@pytest.fixture
async def adapter() -> AsyncIterator[HlwjgAdapter]:
    a = HlwjgAdapter("hlwjg", base_url=BASE, client_id="gw-320700", client_secret="pa55")
    yield a
    await a.aclose()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL, name="token").mock(return_value=token_reply())
        yield router


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


# --- construction ---------------------------------------------------------------------------------


def test_is_a_destination_adapter() -> None:
    a = HlwjgAdapter.from_config("hlwjg", {"base_url": BASE, "client_id": "id", "client_secret": "s", "timeout_s": 3})
    assert isinstance(a, DestinationAdapter) and a.name == "hlwjg"
    caps = HlwjgAdapter.capabilities
    assert caps.idempotent_receiver and caps.status_query
    assert caps.event_types[:2] == ("approval.decided", "supervision.task.claimed")
    assert {"approval.feedback.sent", "preapproval.confirmation.requested", "site_inspection.requested"} <= set(
        caps.event_types
    ), "and the approval side's messages of the closed loop"


@pytest.mark.parametrize("missing", ["base_url", "client_id", "client_secret"])
def test_from_config_names_missing_option(missing: str) -> None:
    options = {"base_url": BASE, "client_id": "id", "client_secret": "s"}
    del options[missing]
    with pytest.raises(ValueError, match=missing):
        HlwjgAdapter.from_config("hlwjg", options)


# --- tokens ---------------------------------------------------------------------------------------


async def test_token_fetched_once_and_cached(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    records = api.post(RECORDS_URL).mock(return_value=accepted())
    await adapter.deliver(ENVELOPE, KEY)
    await adapter.deliver(ENVELOPE, KEY + "-b")
    assert api["token"].call_count == 1
    form = parse_qs(api["token"].calls.last.request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "client_id": ["gw-320700"], "client_secret": ["pa55"]}
    assert all(call.request.headers["authorization"] == "Bearer tok-1" for call in records.calls)


async def test_concurrent_deliveries_share_one_token_fetch(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api.post(RECORDS_URL).mock(return_value=accepted())
    await asyncio.gather(*(adapter.deliver(ENVELOPE, f"{KEY}-{i}") for i in range(5)))
    assert api["token"].call_count == 1


async def test_token_refreshed_before_expiry() -> None:
    now = [1000.0]
    with respx.mock() as router:
        route = router.post(TOKEN_URL).mock(side_effect=[token_reply("a", 60), token_reply("b", "60")])
        async with httpx.AsyncClient(base_url=BASE + "/") as client:
            cache = TokenCache(client, token_url="oauth2/token", client_id="i", client_secret="s", clock=lambda: now[0])
            assert await cache.get() == "a"
            now[0] += 47  # margin is min(30, 60/5) = 12 s
            assert await cache.get() == "a"
            now[0] += 2
            assert await cache.get() == "b"
            assert route.call_count == 2


async def test_401_refreshes_and_resends_same_request_id(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api["token"].mock(side_effect=[token_reply("tok-1"), token_reply("tok-2")])
    records = api.post(RECORDS_URL).mock(side_effect=[httpx.Response(401, json={"error": "invalid_token"}),
                                                      accepted("T9")])
    receipt = await adapter.deliver(ENVELOPE, KEY)
    assert receipt.remote_id == "T9"
    assert [c.request.headers["authorization"] for c in records.calls] == ["Bearer tok-1", "Bearer tok-2"]
    assert [b["requestId"] for b in bodies(records)] == [KEY, KEY]
    assert bodies(records)[0] == bodies(records)[1]


async def test_401_after_refresh_is_retryable(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api["token"].mock(side_effect=[token_reply("tok-1"), token_reply("tok-2")])
    records = api.post(RECORDS_URL).mock(return_value=httpx.Response(401))
    with pytest.raises(RetryableError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert type(info.value) is RetryableError and records.call_count == 2


async def test_token_endpoint_invalid_client_is_retryable(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api["token"].mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
    records = api.post(RECORDS_URL).mock(return_value=accepted())
    with pytest.raises(RetryableError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert info.value.code == "invalid_client" and "client_secret" in info.value.reason
    assert "pa55" not in info.value.reason
    assert records.call_count == 0


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(503), httpx.Response(500), httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
     httpx.Response(200, text="nope"), httpx.Response(200, json={"token_type": "Bearer"})],
    ids=["503", "500", "connect", "read-timeout", "non-json", "no-token"],
)
async def test_token_endpoint_failures_are_retryable(
    adapter: HlwjgAdapter, api: respx.MockRouter, reply: Any
) -> None:
    api["token"].mock(side_effect=[reply])
    with pytest.raises(RetryableError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert type(info.value) is RetryableError


# --- delivery outcomes ----------------------------------------------------------------------------


async def test_accepted_gives_receipt(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    records = api.post(RECORDS_URL).mock(return_value=accepted("T1", replayed=True))
    receipt = await adapter.deliver(ENVELOPE, KEY)
    assert (receipt.remote_id, receipt.replayed, dict(receipt.detail)) == ("T1", True, {"taskNo": "T1"})
    [body] = bodies(records)
    assert body == {"requestId": KEY, "record": encode(ENVELOPE)}


async def test_business_error_in_200_is_permanent(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api.post(RECORDS_URL).mock(return_value=httpx.Response(200, json={"code": "E1021", "message": "事项未认领"}))
    with pytest.raises(PermanentError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert info.value.code == "E1021" and "事项未认领" in info.value.reason


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(200, text="<html>ok</html>"), httpx.Response(200, json={"code": "0", "data": {}}),
     httpx.Response(200, json={"code": "0"}), httpx.Response(200, json={"data": {"taskNo": "T"}})],
    ids=["garbage", "no-taskNo", "no-data", "no-code"],
)
async def test_unreadable_200_is_outcome_unknown(
    adapter: HlwjgAdapter, api: respx.MockRouter, reply: httpx.Response
) -> None:
    api.post(RECORDS_URL).mock(return_value=reply)
    with pytest.raises(OutcomeUnknownError):
        await adapter.deliver(ENVELOPE, KEY)


@pytest.mark.parametrize("status", [400, 422])
async def test_invalid_record_is_permanent_naming_field(
    adapter: HlwjgAdapter, api: respx.MockRouter, status: int
) -> None:
    body = {
        "code": "INVALID_RECORD", "message": "credentialsValue check failed", "field": "counterpart.credentialsValue"
    }
    api.post(RECORDS_URL).mock(return_value=httpx.Response(status, json=body))
    with pytest.raises(PermanentError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert info.value.code == "INVALID_RECORD"
    assert "counterpart.credentialsValue" in info.value.reason


@pytest.mark.parametrize("status", [429, 503])
async def test_busy_is_retryable_with_retry_after(adapter: HlwjgAdapter, api: respx.MockRouter, status: int) -> None:
    api.post(RECORDS_URL).mock(return_value=httpx.Response(status, headers={"Retry-After": "7"}))
    with pytest.raises(RetryableError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert info.value.retry_after_s == 7.0 and info.value.code == str(status)


async def test_retry_after_absent_or_odd(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api.post(RECORDS_URL).mock(side_effect=[httpx.Response(429), httpx.Response(503, headers={"Retry-After": "soon"})])
    for _ in range(2):
        with pytest.raises(RetryableError) as info:
            await adapter.deliver(ENVELOPE, KEY)
        assert info.value.retry_after_s is None


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_other_5xx_is_outcome_unknown(adapter: HlwjgAdapter, api: respx.MockRouter, status: int) -> None:
    api.post(RECORDS_URL).mock(return_value=httpx.Response(status))
    with pytest.raises(OutcomeUnknownError):
        await adapter.deliver(ENVELOPE, KEY)


@pytest.mark.parametrize("status", [403, 404, 409])
async def test_other_4xx_is_permanent(adapter: HlwjgAdapter, api: respx.MockRouter, status: int) -> None:
    api.post(RECORDS_URL).mock(return_value=httpx.Response(status, json={"message": "no"}))
    with pytest.raises(PermanentError):
        await adapter.deliver(ENVELOPE, KEY)


@pytest.mark.parametrize(
    ("exc", "error"),
    [(httpx.ConnectError("refused"), RetryableError), (httpx.ConnectTimeout("slow"), RetryableError),
     (httpx.ReadTimeout("slow"), OutcomeUnknownError), (httpx.RemoteProtocolError("dropped"), OutcomeUnknownError),
     (ConnectionAbortedError("aborted by an in-process app"), OutcomeUnknownError)],
    ids=["connect", "connect-timeout", "read-timeout", "dropped", "raw-oserror"],
)
async def test_transport_errors(adapter: HlwjgAdapter, api: respx.MockRouter, exc: Exception, error: type) -> None:
    api.post(RECORDS_URL).mock(side_effect=exc)
    with pytest.raises(error) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert type(info.value) is error


async def test_logs_carry_identifiers_not_payload(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api.post(RECORDS_URL).mock(side_effect=[accepted("T1"), httpx.Response(500)])
    with structlog.testing.capture_logs() as logs:
        await adapter.deliver(ENVELOPE, KEY)
        with pytest.raises(OutcomeUnknownError):
            await adapter.deliver(ENVELOPE, KEY)
    events = [e["event"] for e in logs]
    assert "hlwjg.delivered" in events and "hlwjg.deliver_failed" in events
    text = repr(logs)
    assert KEY in text and "T1" in text
    for value in ("91320700MA1X2Y3K05", "13800138000", "王某某", "连云港海州区某某餐饮有限公司"):
        assert value not in text


async def test_other_event_types_are_refused(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    task = SupervisionTaskCreated(
        task_no="RW1", supervision_matter_code="32070000000001", created_at=datetime(2026, 11, 20, tzinfo=UTC)
    )
    with pytest.raises(PermanentError, match=r"hlwjg does not accept supervision\.task\.created"):
        await adapter.deliver(Envelope.wrap(task, source="hlwjg"), KEY)
    assert api["token"].call_count == 0


async def test_secret_messages_are_refused(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    secret = to_envelope({**SAMPLE_NATIVE, "MJ": "机密"}, source="zwfw")
    assert secret.classification is Classification.secret
    with pytest.raises(PermanentError, match="secret"):
        await adapter.deliver(secret, KEY)
    assert api["token"].call_count == 0


# --- status query ---------------------------------------------------------------------------------


async def test_query_status_found(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    route = api.get(f"{RECORDS_URL}/by-request/dlv%3Azwfw%3Ahlwjg%3A320700261121000012345%3A1").mock(
        return_value=httpx.Response(200, json={"code": "0", "data": {"taskNo": "T5", "requestId": KEY}})
    )
    receipt = await adapter.query_status(ENVELOPE, KEY)
    assert receipt is not None and receipt.remote_id == "T5" and receipt.replayed is True
    assert route.calls.last.request.headers["authorization"] == "Bearer tok-1"


async def test_query_status_not_found(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api.get(url__startswith=f"{RECORDS_URL}/by-request/").mock(return_value=httpx.Response(404))
    assert await adapter.query_status(ENVELOPE, KEY) is None


async def test_query_status_refreshes_on_401(adapter: HlwjgAdapter, api: respx.MockRouter) -> None:
    api["token"].mock(side_effect=[token_reply("tok-1"), token_reply("tok-2")])
    api.get(url__startswith=f"{RECORDS_URL}/by-request/").mock(side_effect=[httpx.Response(401), httpx.Response(404)])
    assert await adapter.query_status(ENVELOPE, KEY) is None


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(500), httpx.Response(200, text="?"), httpx.Response(200, json={"code": "E1"}),
     httpx.ReadTimeout("slow"), httpx.ConnectError("refused")],
    ids=["500", "garbage", "error-code", "read-timeout", "connect"],
)
async def test_query_status_failures_are_retryable(adapter: HlwjgAdapter, api: respx.MockRouter, reply: Any) -> None:
    api.get(url__startswith=f"{RECORDS_URL}/by-request/").mock(side_effect=[reply])
    with pytest.raises(RetryableError) as info:
        await adapter.query_status(ENVELOPE, KEY)
    assert type(info.value) is RetryableError


# --- codec ----------------------------------------------------------------------------------------


def test_encode_sample() -> None:
    record = encode(ENVELOPE)
    assert record == {
        "approvalNo": "320700261121000012345", "dataVersion": 2,
        "itemCode": "11320700MB123456794000117001", "itemName": "食品经营许可", "areaCode": "320700",
        "decisionResult": "GRANTED", "decisionText": "准予许可",
        "decidedAt": "2026-11-20T16:40:02+08:00", "receivedAt": "2026-11-18T09:12:33+08:00",
        "counterpart": {
            "type": "LEGAL", "name": "连云港海州区某某餐饮有限公司", "credentialsType": "USCC",
            "credentialsValue": "91320700MA1X2Y3K05", "legalRepresentative": "王某某", "contactPhone": "13800138000",
        },
        "license": {
            "certificateNo": "JY33207000012345", "certificateName": "食品经营许可证",
            "documentNo": "连审批食经〔2026〕1234号", "documentName": "食品经营许可决定书",
            "validFrom": "2026-11-20", "validTo": "2031-11-19", "longTerm": False,
            "issuerCode": "11320700MB12345679",
        },
        "commitment": {"mode": "POST_VERIFICATION", "periodDays": 20},
        "correlationId": "320700261121000012345",
    }


def _variants() -> list[ApprovalDecided]:
    sample = ENVELOPE.payload()
    assert isinstance(sample, ApprovalDecided)
    person = Party(kind=PartyKind.natural, name="张三", id_type=IdType.resident_id, id_number="11010519491231002X")
    return [
        sample,
        sample.model_copy(update={
            "applicant": person, "received_at": None, "result": DecisionResult.rejected,
            "result_description": None, "certificate": None, "commitment": None,
        }),
        sample.model_copy(update={
            "result": DecisionResult.voided,
            "certificate": Certificate(valid_from=date(2026, 1, 1), long_term=True),
            "commitment": Commitment(mode=CommitmentMode.deferred_materials),
        }),
        sample.model_copy(update={
            "result": DecisionResult.forwarded,
            "applicant": Party(kind=PartyKind.other, name="某村", id_type=IdType.passport, id_number="E1"),
            "commitment": Commitment(mode=CommitmentMode.material_verification, period_days=5),
        }),
    ]


@pytest.mark.parametrize("payload", _variants(), ids=["sample", "person-rejected", "long-term", "forwarded"])
def test_round_trip_native_canonical_native(payload: ApprovalDecided) -> None:
    envelope = Envelope.wrap(ApprovalDecided.model_validate(payload.model_dump()), source="zwfw", revision=3)
    record = json.loads(json.dumps(encode(envelope), ensure_ascii=False))  # as it travels
    back = decode_record(record)
    assert back.model_dump(mode="json") == envelope.data
    assert record["dataVersion"] == 3 and record["correlationId"] == payload.case_no


def test_decode_record_rejects_bad_input() -> None:
    record = encode(ENVELOPE)
    with pytest.raises(DecodeError, match="decisionResult"):
        decode_record({**record, "decisionResult": "MAYBE"})
    with pytest.raises(DecodeError, match=r"applicant\.id_number"):
        decode_record({**record, "counterpart": {**record["counterpart"], "credentialsValue": "91320700MA1X2Y3K0X"}})
    with pytest.raises(DecodeError, match="counterpart must be an object"):
        decode_record({**record, "counterpart": None})
    with pytest.raises(DecodeError):
        decode_record([record])
