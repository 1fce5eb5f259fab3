"""CreditAdapter: against its mock (contract: partial success, replays, tokens), with respx (edge cases of the
platform's replies), the conformance kit, and the pure codec (dates, 长期, 元 → 万元, round trip)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import BatchDestinationAdapter, DeliveryReceipt
from adapters.conformance import DestinationConformance, ErrorCase, Receiver, reply
from adapters.credit import CreditAdapter
from adapters.credit.adapter import batch_id
from adapters.credit.codec import (
    LONG_TERM,
    NotPublishable,
    Publisher,
    decode_entry,
    encode_entry,
    license_from_approval,
    wan_yuan,
    yuan,
)
from adapters.errors import OutcomeUnknownError, PermanentError, RetryableError
from factories import approval, envelope
from mock_platforms import create_app
from mock_platforms.identifiers import uscc_check_char
from schemas import (
    Classification,
    CreditLicensePublished,
    CreditPenaltyPublished,
    Envelope,
    PenaltyCategory,
)

CST = timezone(timedelta(hours=8))
ISSUER = "11320700MB12345679"
COMPANY = "91320700MA1X2Y3K05"
BAD_CATEGORY = "94320700MA1X2Y3K0" + uscc_check_char("94320700MA1X2Y3K0")  # checksum right, category undefined
RESIDENT_ID = "320706199003071237"
MOBILE = "13912345678"
BASE = "http://credit.test/credit"
PUBLISHER = Publisher(authority_name="连云港市行政审批局", authority_code=ISSUER)
OPTIONS = {
    "base_url": BASE,
    "app_key": "shenguan",
    "app_secret": "credit-mock-secret",
    "authority_name": "连云港市行政审批局",
    "authority_code": ISSUER,
}
CERT = {
    "number": "JY33207000012345",
    "name": "食品经营许可证",
    "document_no": "连审批食经〔2026〕1234号",
    "document_name": "食品经营许可决定书",
    "valid_from": "2026-11-20",
    "valid_to": "2031-11-19",
    "issuer_code": ISSUER,
}
PERSON = {"kind": "natural", "name": "张三", "id_type": "resident_id", "id_number": RESIDENT_ID, "phone": MOBILE}


def granted(case_no: str, **changes: Any) -> Envelope:
    """A granted approval that the credit platform accepts (it carries its 决定文书号)."""
    cert = CERT | {"document_no": f"连审批食经〔2026〕{case_no[-4:]}号"} | changes.pop("cert", {})
    return envelope(case_no, certificate=cert, **changes)


def penalty(decision_no: str = "连市监罚〔2026〕88号", **changes: Any) -> CreditPenaltyPublished:
    data: dict[str, Any] = {
        "decision_no": decision_no,
        "party": {
            "kind": "legal",
            "name": "连云港海州区某某餐饮有限公司",
            "id_type": "uscc",
            "id_number": COMPANY,
            "legal_representative": "王某某",
        },
        "violation_type": "经营超过保质期的食品",
        "facts": "检查发现超过保质期的食品 12 件",
        "legal_basis": "《中华人民共和国食品安全法》第一百二十四条",
        "categories": ["warning", "fine"],
        "content": "警告，并处罚款人民币伍仟元",
        "fine_yuan": "5000",
        "decided_on": "2026-11-20",
        "valid_until": "2027-11-19",
        "authority_name": "连云港市市场监督管理局",
        "authority_code": ISSUER,
    }
    data.update(changes)
    return CreditPenaltyPublished.model_validate(data)


def penalty_envelope(decision_no: str = "连市监罚〔2026〕88号", **changes: Any) -> Envelope:
    return Envelope.wrap(penalty(decision_no, **changes), source="zfba", region="320700")


def mocked_adapter(app: Any, **options: Any) -> CreditAdapter:
    adapter = CreditAdapter.from_config("credit", OPTIONS | {"base_url": "http://mock/credit"} | options)
    adapter._client._transport = httpx.ASGITransport(app=app)  # the adapter's own client, on the in-process mock
    return adapter


@pytest.fixture
def app() -> Any:
    return create_app()


@pytest.fixture
async def adapter(app: Any) -> AsyncIterator[CreditAdapter]:
    a = mocked_adapter(app)
    yield a
    await a.aclose()


# -- against the mock (contract) ---------------------------------------------------------------------------
def test_it_is_a_batch_destination() -> None:
    assert isinstance(CreditAdapter.from_config("credit", OPTIONS), BatchDestinationAdapter)
    caps = CreditAdapter.capabilities
    assert caps.max_batch_size == 500 and caps.idempotent_receiver and caps.status_query
    assert set(caps.event_types) == {"approval.decided", "credit.license.published", "credit.penalty.published"}


async def test_partial_success_receipts_and_the_platforms_reasons(adapter: CreditAdapter, app: Any) -> None:
    items = [
        (granted("320700261121000000001"), "k1"),
        (
            granted("320700261121000000002", applicant=approval().applicant.model_dump() | {"id_number": BAD_CATEGORY}),
            "k2",
        ),
        (penalty_envelope(), "k3"),
        (envelope("320700261121000000004", result="rejected"), "k4"),  # not granted: nothing to publish
        (granted("320700261121000000005", applicant=PERSON), "k5"),
    ]
    results = await adapter.deliver_batch(items)
    assert [type(r).__name__ for r in results] == [
        "DeliveryReceipt",
        "PermanentError",
        "DeliveryReceipt",
        "PermanentError",
        "DeliveryReceipt",
    ]
    assert "XK_XDR_SHXYM" in results[1].reason and "机构类别码" in results[1].reason, "the platform's own reason"
    assert "not granted" in results[3].reason
    held = app.platforms["credit"].records_report()
    assert held["accepted"] == 3 and held["rejected"] == 1 and held["duplicate_creations"] == 0
    uploads = [t for t in app.platforms["credit"].traffic.entries() if t["path"].endswith("/batches")]
    assert len(uploads) == 1, "one request for the whole batch"
    sent = json.loads(uploads[0]["body"])
    assert [r["recordId"] for r in sent["records"]] == ["k1", "k2", "k3", "k5"], "the refused one is never sent"
    assert sent["batchId"] == batch_id(["k1", "k2", "k3", "k5"])
    person = sent["records"][3]["data"]
    assert person["XK_XDR_LB"] == "自然人" and "XK_XDR_SHXYM" not in person
    assert RESIDENT_ID not in uploads[0]["body"] and MOBILE not in uploads[0]["body"], "no personal data is sent"


async def test_resending_a_batch_or_its_records_in_another_batch_creates_nothing(
    adapter: CreditAdapter, app: Any
) -> None:
    a, b, c = (
        (granted("320700261121000000011"), "k1"),
        (penalty_envelope(), "kp"),
        (granted("320700261121000000099"), "k9"),
    )
    first = await adapter.deliver_batch([a, b])
    again = await adapter.deliver_batch([a, b])
    regrouped = await adapter.deliver_batch([c, b, a])
    assert all(isinstance(r, DeliveryReceipt) for r in [*first, *again, *regrouped])
    assert [r.replayed for r in first] == [False, False] and [r.replayed for r in again] == [True, True]
    assert [r.replayed for r in regrouped] == [False, True, True]
    held = app.platforms["credit"].records_report()
    assert held["accepted"] == 3 and held["duplicate_creations"] == 0


async def test_a_revision_updates_the_record(adapter: CreditAdapter, app: Any) -> None:
    await adapter.deliver(granted("320700261121000000001"), "k-r1")
    receipt = await adapter.deliver(
        granted("320700261121000000001", revision=2, result_description="准予许可（更正）"), "k-r2"
    )
    held = app.platforms["credit"].records_report()
    assert not receipt.replayed and held["accepted"] == 1 and held["duplicate_creations"] == 0
    assert held["records"][0]["version"] == 2 and held["records"][0]["data"]["XK_NR"].endswith("（更正）")


async def test_an_expired_token_is_renewed_and_the_same_batch_resent(app: Any) -> None:
    now = [1_795_000_000.0]
    app = create_app(clock=lambda: now[0])
    app.platforms["credit"].faults.settings.token_ttl_s = 60
    adapter = mocked_adapter(app)
    try:
        await adapter.deliver(granted("320700261121000000001"), "k1")
        now[0] += 61  # the mock's clock: the cached token (still fresh by the adapter's clock) has expired
        receipt = await adapter.deliver(granted("320700261121000000002"), "k2")
    finally:
        await adapter.aclose()
    assert isinstance(receipt, DeliveryReceipt)
    paths = [(t["path"].rsplit("/", 2)[-1]) for t in app.platforms["credit"].traffic.entries()]
    assert paths == ["token", "batches", "batches", "token", "batches"]


async def test_wrong_app_secret_is_retryable_and_nothing_is_sent(app: Any) -> None:
    adapter = mocked_adapter(app, app_secret="wrong")
    try:
        with pytest.raises(RetryableError, match="app_key/app_secret"):
            await adapter.deliver_batch([(granted("320700261121000000001"), "k1")])
    finally:
        await adapter.aclose()
    assert app.platforms["credit"].records_report()["accepted"] == 0


async def test_status_query_settles_a_lost_reply_without_resending(adapter: CreditAdapter, app: Any) -> None:
    good, bad = (
        (granted("320700261121000000001"), "k1"),
        (
            granted("320700261121000000002", applicant=approval().applicant.model_dump() | {"id_number": BAD_CATEGORY}),
            "k2",
        ),
    )
    unsent = (penalty_envelope(), "k3")
    assert await adapter.query_status_batch([unsent]) == [None]  # (also fetches the token before the fault)
    app.platforms["credit"].faults.settings.drop_response_rate = 1.0
    with pytest.raises(OutcomeUnknownError):
        await adapter.deliver_batch([good, bad])
    app.platforms["credit"].faults.settings.drop_response_rate = 0.0
    answers = await adapter.query_status_batch([good, bad, unsent])
    assert isinstance(answers[0], DeliveryReceipt) and answers[0].replayed
    assert isinstance(answers[1], PermanentError) and "机构类别码" in answers[1].reason
    assert answers[2] is None
    assert await adapter.query_status(*bad) is None, "a rejected record is not held"
    assert app.platforms["credit"].records_report()["replays"] == 0


async def test_secret_and_foreign_types_are_refused_before_sending(adapter: CreditAdapter, app: Any) -> None:
    secret = envelope("320700261121000000001", classification=Classification.secret, certificate=CERT)
    results = await adapter.deliver_batch([(secret, "k1")])
    assert isinstance(results[0], PermanentError) and "secret" in results[0].reason
    assert app.platforms["credit"].traffic.entries() == [], "nothing left the adapter"


# -- respx: the platform's edge cases ------------------------------------------------------------------------
@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE}/api/v1/auth/token", name="token").mock(
            return_value=httpx.Response(200, json={"code": "0", "data": {"token": "t1", "expiresIn": 3600}})
        )
        yield router


@pytest.fixture
async def plain() -> AsyncIterator[CreditAdapter]:
    a = CreditAdapter.from_config("credit", OPTIONS)
    yield a
    await a.aclose()


ITEMS = [(granted("320700261121000000001"), "k1"), (granted("320700261121000000002"), "k2"), (penalty_envelope(), "k3")]


def verdicts(*results: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"code": "0", "batchId": "x", "results": list(results)})


async def test_verdicts_are_matched_by_record_id_not_position(api: respx.MockRouter, plain: CreditAdapter) -> None:
    api.post(f"{BASE}/api/v1/batches").mock(
        return_value=verdicts(
            {"index": 2, "recordId": "k3", "key": "CF|x", "status": "accepted", "replayed": True},
            {"index": 0, "recordId": "k1", "key": "XK|y", "status": "rejected", "reason": f"XK_FRDB 必填 {MOBILE}"},
            {"index": 1, "recordId": "k2", "status": "pending"},
        )
    )
    r1, r2, r3 = await plain.deliver_batch(ITEMS)
    assert isinstance(r1, PermanentError) and r1.code == "REJECTED" and "XK_FRDB" in r1.reason
    assert MOBILE not in r1.reason, "platform text is masked before it is stored or logged"
    assert isinstance(r2, OutcomeUnknownError), "an unknown verdict is not a success"
    assert isinstance(r3, DeliveryReceipt) and r3.replayed and r3.remote_id == "CF|x"


async def test_a_verdict_missing_from_the_reply_is_outcome_unknown(api: respx.MockRouter, plain: CreditAdapter) -> None:
    api.post(f"{BASE}/api/v1/batches").mock(return_value=verdicts({"index": 0, "recordId": "k1", "status": "accepted"}))
    results = await plain.deliver_batch(ITEMS)
    assert isinstance(results[0], DeliveryReceipt)
    assert all(isinstance(r, OutcomeUnknownError) for r in results[1:])


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(200, content=b'{"code": "0", "results": [{"recordId'), OutcomeUnknownError),
        (httpx.Response(200, json={"results": []}), OutcomeUnknownError),
        (httpx.Response(200, json={"code": "E1001", "message": "数据来源单位未注册"}), PermanentError),
        (httpx.Response(500, json={"code": "SYSTEM_ERROR"}), OutcomeUnknownError),
        (httpx.Response(503, content=b"Service Unavailable"), RetryableError),
        (httpx.Response(429, headers={"Retry-After": "7"}), RetryableError),
        (httpx.Response(413, json={"code": "BATCH_TOO_LARGE", "message": "每批最多 100 条"}), RetryableError),
        (httpx.Response(400, json={"code": "INVALID_REQUEST", "message": "records 须为非空数组"}), PermanentError),
        (httpx.Response(409, json={"code": "BATCH_CONFLICT"}), PermanentError),
    ],
)
async def test_whole_batch_replies_are_classified(
    api: respx.MockRouter, plain: CreditAdapter, response: httpx.Response, expected: type[Exception]
) -> None:
    api.post(f"{BASE}/api/v1/batches").mock(return_value=response)
    with pytest.raises(expected) as caught:
        await plain.deliver_batch(ITEMS)
    if response.status_code == 429:
        assert caught.value.retry_after_s == 7  # type: ignore[attr-defined]
    if response.status_code == 413:
        assert "batch_size" in str(caught.value)


async def test_dropped_connection_and_refused_connection(api: respx.MockRouter, plain: CreditAdapter) -> None:
    route = api.post(f"{BASE}/api/v1/batches")
    route.mock(side_effect=httpx.ReadError("connection reset"))
    with pytest.raises(OutcomeUnknownError):
        await plain.deliver_batch(ITEMS)
    route.mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RetryableError):
        await plain.deliver_batch(ITEMS)


async def test_401_fetches_one_new_token_and_repeats_the_same_upload(
    api: respx.MockRouter, plain: CreditAdapter
) -> None:
    api.routes["token"].mock(
        side_effect=[
            httpx.Response(200, json={"code": "0", "data": {"token": "t1", "expiresIn": 3600}}),
            httpx.Response(200, json={"code": "0", "data": {"token": "t2", "expiresIn": "3600"}}),
        ]
    )
    route = api.post(f"{BASE}/api/v1/batches").mock(
        side_effect=[
            httpx.Response(401, json={"code": "TOKEN_EXPIRED"}),
            verdicts(*({"recordId": k, "status": "accepted"} for _, k in ITEMS)),
        ]
    )
    results = await plain.deliver_batch(ITEMS)
    assert all(isinstance(r, DeliveryReceipt) for r in results)
    sent = [(c.request.headers["x-credit-token"], c.request.content) for c in route.calls]
    assert [t for t, _ in sent] == ["t1", "t2"] and sent[0][1] == sent[1][1], "the identical upload, new token"


async def test_status_query_failures_are_retryable(api: respx.MockRouter, plain: CreditAdapter) -> None:
    route = api.post(f"{BASE}/api/v1/records/query")
    for response in (httpx.Response(500), httpx.Response(200, content=b"{"), httpx.Response(200, json={"code": "0"})):
        route.mock(return_value=response)
        with pytest.raises(RetryableError, match="status query"):
            await plain.query_status_batch(ITEMS)
    route.mock(return_value=httpx.Response(200, json={"code": "0", "results": [{"recordId": "k1", "status": "?"}]}))
    with pytest.raises(RetryableError):
        await plain.query_status_batch(ITEMS[:1])


def test_bad_options_name_the_option() -> None:
    with pytest.raises(ValueError, match="authority_code"):
        CreditAdapter.from_config("c", OPTIONS | {"authority_code": "91320700MA1X2Y3K06"})
    with pytest.raises(ValueError, match="license_category"):
        CreditAdapter.from_config("c", OPTIONS | {"license_category": "special"})
    with pytest.raises(ValueError, match="authorities"):
        CreditAdapter.from_config("c", OPTIONS | {"authorities": {"nope": "x"}})
    with pytest.raises(ValueError, match="app_secret"):
        CreditAdapter.from_config("c", {k: v for k, v in OPTIONS.items() if k != "app_secret"})
    other = "11320706mb0000000" + uscc_check_char("11320706MB0000000")  # lower case, as typed into a TOML file
    configured = CreditAdapter.from_config(
        "c", OPTIONS | {"license_category": "登记", "authorities": {other: " 海州区行政审批局 "}}
    )
    assert configured.publisher.license_category.value == "registration"
    assert configured.publisher.authorities == {other.upper(): "海州区行政审批局"}


# -- conformance kit -------------------------------------------------------------------------------------------
def credit_receiver() -> Receiver:
    app = create_app()
    return Receiver(transport=httpx.ASGITransport(app=app), inspect=lambda: app.platforms["credit"].records_report())


def credit_adapter(transport: httpx.AsyncBaseTransport) -> CreditAdapter:
    adapter = CreditAdapter.from_config("credit", OPTIONS | {"base_url": "http://mock/credit"})
    adapter._client._transport = transport
    return adapter


def is_upload(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/api/v1/batches")


class TestCreditConformance(DestinationConformance):
    adapter_factory = staticmethod(credit_adapter)
    receiver_factory = staticmethod(credit_receiver)
    samples = (
        granted("320700261121000000001"),  # a company, with a mobile number the record must not carry
        granted("320700261121000000002", applicant=PERSON, revision=2),  # a natural person with a 身份证号
        penalty_envelope(),
    )
    target_request = staticmethod(is_upload)
    error_cases = (
        ErrorCase(
            "a record rejected in a 200",
            reply(
                200,
                json={
                    "code": "0",
                    "results": [
                        {
                            "index": 0,
                            "recordId": "?",
                            "status": "rejected",
                            "reason": f"证件号码 {RESIDENT_ID} 校验失败",
                        }
                    ],
                },
            ),
            OutcomeUnknownError,
            why="the reply names another recordId: no verdict for ours",
        ),
        ErrorCase("200 business error", reply(200, json={"code": "E1", "message": "x"}), PermanentError),
        ErrorCase("200 unreadable", reply(200, content=b'{"code": "0", "res'), OutcomeUnknownError),
        ErrorCase("400", reply(400, json={"code": "INVALID_REQUEST", "message": "x"}), PermanentError),
        ErrorCase("401 even after a fresh token", reply(401, json={"code": "TOKEN_INVALID"}), RetryableError),
        ErrorCase("413", reply(413, json={"code": "BATCH_TOO_LARGE"}), RetryableError),
        ErrorCase("429", reply(429, headers={"Retry-After": "2"}), RetryableError),
        ErrorCase("503", reply(503, content=b"busy"), RetryableError),
        ErrorCase(
            "500",
            reply(500, json={"code": "SYSTEM_ERROR"}),
            OutcomeUnknownError,
            why="some records may have been applied",
        ),
    )


# -- codec ----------------------------------------------------------------------------------------------------
def test_a_granted_approval_becomes_a_license_record_without_re_entry() -> None:
    env = granted("320700261121000000001", decided_at=datetime(2026, 11, 20, 16, 40, 2, tzinfo=UTC))
    data = encode_entry(env, PUBLISHER)["data"]
    assert data["XK_JDRQ"] == "2026/11/21", "the decision date is the Beijing calendar day (00:40 next day)"
    assert (data["XK_YXQZ"], data["XK_YXQZI"]) == ("2026/11/20", "2031/11/19")
    assert data["XK_WSH"] == "连审批食经〔2026〕0001号" and data["XK_XKBH"] == "JY33207000012345"
    assert data["XK_XDR_SHXYM"] == COMPANY and data["XK_XDR_LB"] == "法人及非法人组织" and data["XK_FRDB"] == "王某某"
    assert data["XK_XKJG"] == "连云港市行政审批局" and data["XK_LYDWDM"] == ISSUER and data["XK_ZT"] == "1"
    assert data["BZ"] == "告知承诺审批（事后核查，承诺期限 20 个工作日）"
    assert encode_entry(env, PUBLISHER)["version"] == env.revision


def test_validity_long_term_and_missing_end_are_2099_12_31() -> None:
    long_term = granted("320700261121000000001", cert={"valid_to": None, "long_term": True})
    no_end = granted("320700261121000000002", cert={"valid_to": None, "valid_from": None})
    assert encode_entry(long_term, PUBLISHER)["data"]["XK_YXQZI"] == LONG_TERM
    data = encode_entry(no_end, PUBLISHER)["data"]
    assert (data["XK_YXQZ"], data["XK_YXQZI"]) == ("2026/11/20", LONG_TERM), "from the decision date, 长期"


def test_party_categories() -> None:
    def category(code: str, **extra: Any) -> str:
        applicant = approval().applicant.model_dump() | {"id_number": code, **extra}
        return encode_entry(granted("320700261121000000001", applicant=applicant), PUBLISHER)["data"]["XK_XDR_LB"]

    assert category("92320700MA1X2Y3K0" + uscc_check_char("92320700MA1X2Y3K0")) == "个体工商户"
    assert category("0" * 17 + "X", business_registration_no="320700600123456") == "个体工商户"
    assert category("N2320700MA1X2Y3K0" + uscc_check_char("N2320700MA1X2Y3K0")) == "法人及非法人组织"
    person = encode_entry(granted("320700261121000000001", applicant=PERSON), PUBLISHER)["data"]
    assert person["XK_XDR_LB"] == "自然人" and "XK_FRDB" not in person
    assert RESIDENT_ID not in json.dumps(person, ensure_ascii=False)


def test_only_granted_approvals_with_a_document_number_are_published() -> None:
    for result in ("rejected", "voided", "forwarded"):
        with pytest.raises(NotPublishable, match="not granted"):
            license_from_approval(approval(result=result), PUBLISHER)
    with pytest.raises(NotPublishable, match="决定文书号"):
        license_from_approval(approval(), PUBLISHER)  # the factory's certificate has no document number


def test_authorities_name_the_issuer_by_its_code() -> None:
    other = "11320706MB0000000" + uscc_check_char("11320706MB0000000")
    publisher = Publisher(
        authority_name="连云港市行政审批局", authority_code=ISSUER, authorities={other: "海州区行政审批局"}
    )
    data = encode_entry(granted("320700261121000000001", cert={"issuer_code": other}), publisher)["data"]
    assert (data["XK_XKJG"], data["XK_XKJGDM"]) == ("海州区行政审批局", other)
    assert data["XK_LYDWDM"] == ISSUER, "the data source is the deployment's authority"


def test_penalty_record_fine_in_wan_yuan() -> None:
    data = encode_entry(penalty_envelope(), PUBLISHER)["data"]
    assert data["CF_NR_FK"] == "0.5" and data["CF_CFLB"] == "警告;罚款"
    assert (data["CF_JDRQ"], data["CF_YXQ"]) == ("2026/11/20", "2027/11/19") and "CF_GSJZQ" not in data
    forever = encode_entry(penalty_envelope(valid_until=None, publish_until="2027-05-20"), PUBLISHER)["data"]
    assert forever["CF_YXQ"] == LONG_TERM and forever["CF_GSJZQ"] == "2027/05/20"
    warning = encode_entry(penalty_envelope(categories=["warning"], fine_yuan=None), PUBLISHER)["data"]
    assert "CF_NR_FK" not in warning


@pytest.mark.parametrize(
    ("yuan_text", "wan"),
    [
        ("5000", "0.5"),
        ("123.45", "0.012345"),
        ("0.01", "0.000001"),
        ("100000000", "10000"),
        ("1234567.89", "123.456789"),
        ("10000", "1"),
        ("30000.10", "3.00001"),
    ],
)
def test_wan_yuan_is_exact(yuan_text: str, wan: str) -> None:
    amount = penalty(fine_yuan=yuan_text).fine_yuan
    assert amount is not None and wan_yuan(amount) == wan and yuan(wan) == amount


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999999.99"), places=2))
def test_wan_yuan_round_trips_any_amount_in_fen(amount: Decimal) -> None:
    assert yuan(wan_yuan(amount)) == amount
    assert "E" not in wan_yuan(amount) and "e" not in wan_yuan(amount)


def test_round_trip_of_the_credit_types() -> None:
    lic = CreditLicensePublished.model_validate(
        {
            "document_no": "连审批登〔2026〕7号",
            "document_name": "准予登记决定书",
            "party": penalty().party.model_dump(),
            "category": "registration",
            "certificate_name": "登记证",
            "certificate_no": "DJ1",
            "content": "登记",
            "decided_on": date(2026, 11, 20),
            "valid_from": "2026-11-20",
            "long_term": True,
            "authority_name": "连云港市行政审批局",
            "authority_code": ISSUER,
            "status": "invalid",
            "remark": "已注销",
        }
    )
    pen = penalty(
        categories=[PenaltyCategory.fine, PenaltyCategory.license_revocation],
        fine_yuan="12345.67",
        publish_until="2027-05-20",
        source_unit_name="某数据中心",
        source_unit_code=COMPANY,
    )
    for payload in (lic, pen):
        env = Envelope.wrap(payload, source="x")
        assert decode_entry(encode_entry(env, PUBLISHER)) == payload
