"""The closed loop's adapter sides pass the conformance kit too: zwfw's linkage inbox and hlwjg's loop intake as
destinations, zwfw's linkage feed and hlwjg's loop events as sources — wired to the in-process mocks."""

from __future__ import annotations

from typing import Any

import httpx
from loopkit import CASE_NO, sample

from adapters.conformance import DestinationConformance, ErrorCase, Receiver, SourceConformance, reply
from adapters.errors import OutcomeUnknownError, PermanentError, RetryableError
from adapters.hlwjg import HlwjgAdapter, HlwjgEventsAdapter
from adapters.hlwjg.loop import decode_event, encode_message
from adapters.zwfw import ZwfwAdapter, ZwfwLinkageAdapter
from adapters.zwfw.linkage import decode_item, encode_item
from mock_platforms import create_app
from schemas import CreditPenaltyPublished, Envelope, correlation_id_of

RESIDENT_ID = "320706199003071237"
MOBILE = "13912345678"


def loop(event_type: str, revision: int = 1, **changes: Any) -> Envelope:
    payload = sample(event_type, **changes)
    return Envelope.wrap(payload, source="test", revision=revision, correlation_id=correlation_id_of(payload))


# A penalty of a natural person with a mobile number: the personal data the log checks look for.
PENALTY = CreditPenaltyPublished.model_validate(
    {
        "decision_no": "连市监罚〔2026〕89号",
        "party": {"kind": "natural", "name": "张三", "id_type": "resident_id", "id_number": RESIDENT_ID}
        | {"phone": MOBILE},
        "violation_type": "无证经营",
        "facts": "未取得许可从事食品经营",
        "legal_basis": "《食品安全法》第一百二十二条",
        "categories": ["warning"],
        "content": "警告",
        "decided_on": "2026-11-27",
        "authority_name": "连云港市市场监督管理局",
        "authority_code": "11320700MB12345679",
        "related_case_no": CASE_NO,
    }
)


def zwfw_code(code: str, msg: str = "错误") -> Any:
    return reply(200, json={"code": code, "msg": msg, "data": None})


def receiver(platform: str) -> Receiver:
    app = create_app()
    return Receiver(transport=httpx.ASGITransport(app=app), inspect=lambda: app.platforms[platform].records_report())


def zwfw(transport: httpx.AsyncBaseTransport) -> ZwfwAdapter:
    return ZwfwAdapter(
        "zwfw", base_url="http://mock/zwfw", paasid="shenguan", token="zwfw-mock-token", transport=transport
    )


def hlwjg(transport: httpx.AsyncBaseTransport) -> HlwjgAdapter:
    return HlwjgAdapter(
        "hlwjg", base_url="http://mock/hlwjg", client_id="shenguan", client_secret="hlwjg-mock-secret",
        transport=transport,
    )  # fmt: skip


class TestZwfwInboxConformance(DestinationConformance):
    adapter_factory = staticmethod(zwfw)
    receiver_factory = staticmethod(lambda: receiver("zwfw"))
    samples = (
        Envelope.wrap(PENALTY, source="hlwjg-events", correlation_id=CASE_NO),
        loop("supervision.result.reported", revision=2),
        loop("license.revocation.advised"),
    )
    decode_native = staticmethod(lambda native: decode_item(native)[0])
    target_request = staticmethod(lambda r: r.method == "POST" and r.url.path.endswith("/api/v1/linkage/inbox"))
    error_cases = (
        ErrorCase("code 4001 echoing the 身份证号", zwfw_code("4001", f"参数错误：{RESIDENT_ID}"), PermanentError),
        ErrorCase("unknown code", zwfw_code("4999"), PermanentError),
        ErrorCase("code 500 in HTTP 200", zwfw_code("500", "系统繁忙"), OutcomeUnknownError,
                  why="a write the platform failed on may have been applied; the requestId makes asking safe"),
        ErrorCase("code 4011 timestamp expired", zwfw_code("4011"), RetryableError),
        ErrorCase("code 4010 credentials refused", zwfw_code("4010"), RetryableError,
                  why="nothing was applied; refused credentials are an operator's fix, not a reason to die"),
        ErrorCase("200 without receiptNo", reply(200, json={"code": "200", "data": {}}), OutcomeUnknownError),
        ErrorCase("unreadable body", reply(200, content=b'{"code": "20'), OutcomeUnknownError),
        ErrorCase("HTTP 503", reply(503), RetryableError),
        ErrorCase("HTTP 502", reply(502), OutcomeUnknownError),
    )  # fmt: skip


class TestHlwjgLoopConformance(DestinationConformance):
    adapter_factory = staticmethod(hlwjg)
    receiver_factory = staticmethod(lambda: receiver("hlwjg"))
    samples = (
        loop("approval.feedback.sent", description=f"经办人电话 {MOBILE}"),
        loop("preapproval.confirmation.requested", revision=2, applicant_name="张三"),
        loop("guidance.answered", approval_case_no=None, task_no=None),
    )
    decode_native = staticmethod(lambda native: decode_event(native["kind"], native, source="t")[0])
    target_request = staticmethod(lambda r: r.method == "POST" and r.url.path.endswith("/api/v1/loop-messages"))
    error_cases = (
        ErrorCase("400 INVALID_MESSAGE", reply(400, json={"code": "INVALID_MESSAGE", "field": "message.kind"}),
                  PermanentError),
        ErrorCase("200 with business error code", reply(200, json={"code": "E1", "message": "x"}), PermanentError),
        ErrorCase("200 without messageId", reply(200, json={"code": "0", "data": {}}), OutcomeUnknownError),
        ErrorCase("500", reply(500, json={"code": "INTERNAL_ERROR"}), OutcomeUnknownError),
        ErrorCase("503", reply(503), RetryableError),
    )  # fmt: skip


FEEDBACK_ITEM = encode_item(loop("approval.feedback.sent", description=f"联系人电话 {MOBILE}"))
GUIDANCE_ITEM = encode_item(loop("guidance.requested", asked_by="approval", approval_case_no=None, task_no=None))


class TestZwfwLinkageConformance(SourceConformance):
    adapter_factory = staticmethod(
        lambda transport: ZwfwLinkageAdapter(
            "zwfw-linkage", base_url="http://mock/zwfw", paasid="shenguan", token="zwfw-mock-token", transport=transport
        )
    )
    native_samples = (FEEDBACK_ITEM, GUIDANCE_ITEM)
    encode_native = staticmethod(encode_item)
    error_cases = (
        ErrorCase("code 500 in HTTP 200", zwfw_code("500"), RetryableError),
        ErrorCase("code 4010 credentials refused", zwfw_code("4010"), PermanentError),
        ErrorCase("HTTP 502", reply(502), RetryableError),
    )


def token() -> httpx.Response:
    return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})


def as_feed_event(env: Envelope) -> dict[str, Any]:
    native = encode_message(env)
    return {"eventType": native.pop("kind"), **{k: v for k, v in native.items() if k != "correlationId"}}


class TestHlwjgLoopEventsConformance(SourceConformance):
    adapter_factory = staticmethod(
        lambda transport: HlwjgEventsAdapter(
            "hlwjg-events", base_url="http://mock/hlwjg", client_id="c", client_secret="s", transport=transport
        )
    )
    native_samples = (
        as_feed_event(loop("supervision.inspection.reported", findings=f"负责人 {MOBILE} 不在场")),
        as_feed_event(loop("site_inspection.reported")),
    )
    encode_native = staticmethod(as_feed_event)
    target_request = staticmethod(lambda request: request.url.path.endswith("/api/v1/events"))
    upstream_factory = staticmethod(lambda: httpx.MockTransport(lambda _request: token()))
    error_cases = (ErrorCase("HTTP 500", reply(500, json={"code": "INTERNAL_ERROR"}), RetryableError),)
