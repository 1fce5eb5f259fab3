"""The bundled adapters pass the conformance kit, wired to the in-process mocks (``mock_platforms``).

This file is also the worked example for adapter authors: a kit subclass, a receiver factory around the
mocks' ASGI app, samples carrying a 身份证号 and a mobile number, and the declared error classification
(docs/architecture.md, "Error classification of the bundled adapters").
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.conformance import (
    DestinationConformance,
    ErrorCase,
    Receiver,
    SourceConformance,
    reply,
)
from adapters.errors import OutcomeUnknownError, PermanentError, RetryableError
from adapters.hlwjg import HlwjgAdapter
from adapters.hlwjg.codec import decode_record
from adapters.zwfw import ZwfwAdapter
from factories import envelope
from mock_platforms import create_app

RESIDENT_ID = "320706199003071237"
MOBILE = "13912345678"

NATURAL_PERSON = {
    "kind": "natural",
    "name": "张三",
    "id_type": "resident_id",
    "id_number": RESIDENT_ID,
    "phone": MOBILE,
}


def hlwjg_receiver() -> Receiver:
    """A fresh hlwjg mock; ``inspect`` reads its ``/_mock/records`` report in process."""
    app = create_app()
    return Receiver(
        transport=httpx.ASGITransport(app=app),
        inspect=lambda: app.platforms["hlwjg"].records_report(),
    )


def hlwjg_adapter(transport: httpx.AsyncBaseTransport) -> HlwjgAdapter:
    return HlwjgAdapter(
        "hlwjg", base_url="http://mock/hlwjg", client_id="shenguan", client_secret="hlwjg-mock-secret",
        transport=transport,
    )


def is_record_post(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/api/v1/approval-records")


class TestHlwjgConformance(DestinationConformance):
    adapter_factory = staticmethod(hlwjg_adapter)
    receiver_factory = staticmethod(hlwjg_receiver)
    samples = (
        envelope(),  # a legal person with a mobile number
        envelope("320700261121000099999", revision=2, applicant=NATURAL_PERSON, commitment=None,
                 certificate={"number": "JY1", "valid_from": "2026-11-20", "long_term": True}),
    )
    decode_native = staticmethod(decode_record)
    target_request = staticmethod(is_record_post)
    error_cases = (
        ErrorCase("200 with business error code", reply(200, json={"code": "E1001", "message": "事项编码不存在"}),
                  PermanentError, why="a business error hidden in a 200"),
        ErrorCase("200 with unreadable body", reply(200, content=b'{"code": "0", "da'), OutcomeUnknownError),
        ErrorCase("200 without a code", reply(200, json={"data": {}}), OutcomeUnknownError),
        ErrorCase("400 INVALID_RECORD echoing the 身份证号",
                  reply(400, json={"code": "INVALID_RECORD", "field": "record.counterpart.credentialsValue",
                                   "message": f"证件号码 {RESIDENT_ID} 校验失败"}),
                  PermanentError),
        ErrorCase("422", reply(422, json={"code": "UNPROCESSABLE", "message": "x"}), PermanentError),
        ErrorCase("401 even after a fresh token", reply(401, json={"code": "TOKEN_INVALID"}), RetryableError),
        ErrorCase("429 with Retry-After", reply(429, headers={"Retry-After": "3"}), RetryableError),
        ErrorCase("503", reply(503, content=b"Service Unavailable"), RetryableError),
        ErrorCase("500", reply(500, json={"code": "INTERNAL_ERROR"}), OutcomeUnknownError,
                  why="it may have applied the record before failing"),
    )


ZWFW_SAMPLE: dict[str, Any] = {
    "PROJID": "320700261121000012345", "SERVICECODE": "11320700MB123456794000117001",
    "SERVICENAME": "食品经营许可", "AREACODE": "320700", "APPLY_TYPE": "2",
    "APPLYNAME": "连云港海州区某某餐饮有限公司", "APPLY_CARDTYPE": "001",
    "APPLY_CARDNUMBER": "91320700MA1X2Y3K05", "LEGALMAN": "王某某", "CONTACT_PHONE": MOBILE,
    "RECEIVETIME": "2026-11-18 09:12:33", "TRANSACT_TIME": "2026-11-20 16:40:02", "TRANSACT_RESULT": "办结",
    "TRANSACT_DESCRIBE": "准予许可", "RESULT_CODE": "JY33207000012345", "XK_WSH": "连审批食经〔2026〕1234号",
    "XK_XKWS": "食品经营许可决定书", "XK_XKZS": "食品经营许可证", "XK_YXQZ": "2026-11-20",
    "XK_YXQZI": "2031-11-19", "XK_XKJGDM": "11320700MB12345679", "PROMISE_TYPE": "事后核查",
    "PROMISE_PERIOD": "20", "MJ": "", "DATAVERSION": "2",
}
ZWFW_NATURAL: dict[str, Any] = {
    "PROJID": "320700261121000054321", "SERVICECODE": "11320700MB123456794000117002",
    "SERVICENAME": "小餐饮经营许可", "AREACODE": "320706", "APPLY_TYPE": "1", "APPLYNAME": "张三",
    "APPLY_CARDTYPE": "111", "APPLY_CARDNUMBER": RESIDENT_ID, "CONTACT_PHONE": MOBILE,
    "TRANSACT_TIME": "2026-11-20 10:00:00", "TRANSACT_RESULT": "办结", "XK_YXQZI": "长期",
}


def zwfw_adapter(transport: httpx.AsyncBaseTransport) -> ZwfwAdapter:
    return ZwfwAdapter("zwfw", base_url="http://mock/zwfw", paasid="shenguan", token="zwfw-mock-token",
                       transport=transport)


def zwfw_code(code: str, msg: str = "错误") -> Any:
    """zwfw answers everything with HTTP 200; the outcome is the body's ``code``."""
    return reply(200, json={"code": code, "msg": msg, "data": None})


class TestZwfwConformance(SourceConformance):
    adapter_factory = staticmethod(zwfw_adapter)
    native_samples = (ZWFW_SAMPLE, ZWFW_NATURAL)
    registration_no_field = "APPLY_REGNO"
    error_cases = (
        ErrorCase("code 500 in HTTP 200", zwfw_code("500", "系统繁忙"), RetryableError),
        ErrorCase("code 4011 timestamp expired", zwfw_code("4011"), RetryableError),
        ErrorCase("code 4012 nonce replayed", zwfw_code("4012"), RetryableError),
        ErrorCase("code 4010 credentials refused", zwfw_code("4010", "签名校验失败"), PermanentError),
        ErrorCase("unknown code", zwfw_code("4999", f"手机号 {MOBILE} 格式错误"), PermanentError),
        ErrorCase("HTTP 502", reply(502, content=b"Bad Gateway"), RetryableError),
        ErrorCase("HTTP 429", reply(429), RetryableError),
        ErrorCase("unreadable body", reply(200, content=b'{"code": "20'), RetryableError),
        ErrorCase("items without next_cursor",
                  reply(200, json={"code": "200", "data": {"items": [ZWFW_SAMPLE], "next_cursor": None}}),
                  RetryableError),
    )
