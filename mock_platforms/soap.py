"""Fake legacy SOAP exchange (``soap``): the 前置机 (front-end exchange server) pattern of DESIGN §3.

Many older provincial systems are reached through a 前置机 that speaks SOAP in a particular way: a
``login`` on an auth service returns a token, and one generic ``service(xml)`` operation takes the token and
a service id in HTTP headers and a single string parameter holding a whole XML document::

    <ExchangeMessage>
      <Header><Sn/><ServiceId/><Sender/><Receiver/><MessageType/><MessageId/><SendTime/></Header>
      <Body><ApprovalRecord>…</ApprovalRecord></Body>
    </ExchangeMessage>

The reply is again an XML string with its own result code, whatever the HTTP status says::

    <Result><Code>0</Code><Message>接收成功</Message><Sn>…</Sn><ReceiptNo>…</ReceiptNo></Result>

The trap this fake reproduces faithfully: the receiver is **not idempotent**. Every ``service`` call that
passes validation creates a record, so a resend with the same ``Sn`` — the classic reaction to a timeout —
creates a second record for a fact already held, counted in ``duplicate_creations``. What it offers instead
is ``query(sn)``: whether a message with that ``Sn`` was received, rejected or never seen. A correct sender
asks before it resends. A higher ``DataVersion`` of a held case (重报) updates its record instead.

Result codes (the ``Code`` of a reply):

====  ==========================================  ==============================================
code  meaning                                     produced when
====  ==========================================  ==============================================
0     接收成功 / query answered                    accepted, or a status query answered
1001  令牌无效 token missing or unknown            ``X-Token`` header absent or not issued here
1002  令牌已过期 token expired                     older than ``token_ttl_s`` (``_mock/faults``)
1003  服务标识无效 unknown service id              ``X-Service-Id`` header not subscribed here
2001  报文格式错误 not a well-formed message       empty, not XML, DTD/entities, wrong root
2002  报文头错误 header field missing or wrong     ``Sn``, ``Sender``, ``Receiver``… (names the field)
2003  报文体校验失败 body field invalid            a record field (names it, e.g. ``AreaCode``)
3001  业务校验不通过 business rule refused          ``ReceivedAt`` later than ``DecidedAt``
9001  系统繁忙 busy, nothing processed             (reserved; injected faults use a SOAP fault)
9999  系统内部错误 internal error                  (reserved)
====  ==========================================  ==============================================

State lives here and is guarded by a lock: spyne is a WSGI application, so its calls run on the worker
threads of ``a2wsgi`` while the ``_mock`` control plane runs on the event loop. The SOAP wiring is in
``mock_platforms.soap_service``, imported only by ``asgi_app``: spyne 2.14 (its latest release) imports on
Python 3.11 but not on 3.12+ (its vendored ``six`` lacks ``find_spec``; 3.13 also removed ``cgi``), and a
SOAP stack that cannot load must not take the other mocks down with it.
"""

from __future__ import annotations

import re
import secrets
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from fastapi import HTTPException
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_platforms.control import GenerateRequest
from mock_platforms.faults import FaultState
from mock_platforms.traffic import TrafficLog

__all__ = [
    "DEFAULT_NODE",
    "DEFAULT_SERVICES",
    "DEFAULT_USERS",
    "ResultCode",
    "SoapPlatform",
    "asgi_app",
]

DEFAULT_USERS: Mapping[str, str] = {"shenguan": "soap-mock-password"}
DEFAULT_SERVICES: frozenset[str] = frozenset({"SGLD_APPROVAL_DECIDED"})
DEFAULT_NODE = "QZJ-320700"  # this 前置机's node code: what a message's <Receiver> must say
MAX_SN_LENGTH = 64
_AREA_CODE = re.compile(r"[0-9]{6}")
_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

# What ``error_rate`` answers: a SOAP 1.1 server fault in an HTTP 500, before the request is looked at.
SERVER_FAULT: bytes = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    f'<soap11env:Envelope xmlns:soap11env="{_SOAP_ENV}"><soap11env:Body><soap11env:Fault>'
    "<faultcode>soap11env:Server</faultcode><faultstring>系统繁忙，请稍后重试</faultstring>"
    "</soap11env:Fault></soap11env:Body></soap11env:Envelope>"
).encode()


class ResultCode(StrEnum):
    """The ``Code`` of a reply; see the table in the module docstring."""

    ok = "0"
    token_invalid = "1001"
    token_expired = "1002"
    unknown_service = "1003"
    malformed = "2001"
    bad_header = "2002"
    bad_body = "2003"
    business = "3001"
    busy = "9001"
    internal = "9999"


class Status(StrEnum):
    """What ``query(sn)`` reports about a serial number."""

    received = "RECEIVED"
    rejected = "REJECTED"
    not_found = "NOT_FOUND"


class Refusal(Exception):
    """A message refused for its content: the result code and the platform's message (naming the field)."""

    def __init__(self, code: ResultCode, message: str, sn: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sn = sn


@dataclass(slots=True)
class HeldRecord:
    """One record created by a ``service`` call; ``duplicate`` marks a second creation of a held case."""

    receipt_no: str
    case_no: str
    data_version: int
    header: dict[str, str]
    record: dict[str, Any]
    sns: list[str] = field(default_factory=list)
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "receiptNo": self.receipt_no,
            "caseNo": self.case_no,
            "dataVersion": self.data_version,
            "sns": list(self.sns),
            "duplicate": self.duplicate,
            "header": dict(self.header),
            "record": self.record,
        }


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the exchange did with one ``Sn``, kept to answer ``query(sn)``."""

    status: Status
    code: ResultCode
    message: str
    receipt_no: str | None = None


def result_xml(code: ResultCode, message: str, sn: str | None, **fields: str | None) -> str:
    """A reply document ``<Result><Code/><Message/><Sn/>…</Result>`` (built, never concatenated)."""
    root = ET.Element("Result")
    for tag, value in (("Code", code.value), ("Message", message), ("Sn", sn or ""), *fields.items()):
        if value is not None:
            ET.SubElement(root, tag).text = value
    return ET.tostring(root, encoding="unicode")


def _text(parent: ET.Element, path: str) -> str:
    element = parent.find(path)
    return (element.text or "").strip() if element is not None else ""


def _as_dict(element: ET.Element) -> dict[str, Any]:
    """Child elements as a dict: leaves become their text (``None`` when empty), the rest nested dicts."""
    out: dict[str, Any] = {}
    for child in element:
        out[child.tag] = _as_dict(child) if len(child) else (child.text.strip() if child.text else None) or None
    return out


def _instant(value: str, field_name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Refusal(ResultCode.bad_body, f"{field_name} 不是合法的时间: {value[:40]}") from None
    if moment.tzinfo is None:
        raise Refusal(ResultCode.bad_body, f"{field_name} 必须带时区 (如 +08:00)")
    return moment


def parse_message(xml: str | None, *, service_id: str, node: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Validate one ``ExchangeMessage``; return its header fields and its record, or raise ``Refusal``.

    The document is parsed with defusedxml: a 前置机 takes XML from many senders, and a DTD or entity
    declaration in a message is refused (2001), never expanded.
    """
    if not xml or not xml.strip():
        raise Refusal(ResultCode.malformed, "报文为空")
    try:
        root = SafeET.fromstring(xml)
    except DefusedXmlException:
        raise Refusal(ResultCode.malformed, "报文含 DTD 或实体声明，拒绝处理") from None
    except ET.ParseError as exc:
        raise Refusal(ResultCode.malformed, f"报文不是合法的 XML: {exc}") from None
    if root.tag != "ExchangeMessage":
        raise Refusal(ResultCode.malformed, f"根元素必须为 ExchangeMessage，实为 {root.tag[:40]}")
    header_element = root.find("Header")
    if header_element is None:
        raise Refusal(ResultCode.bad_header, "缺少报文头 Header")
    header = {child.tag: (child.text or "").strip() for child in header_element}
    sn = header.get("Sn", "")
    if not sn:
        raise Refusal(ResultCode.bad_header, "报文头缺少 Sn")
    if len(sn) > MAX_SN_LENGTH:
        raise Refusal(ResultCode.bad_header, f"Sn 长度不能超过 {MAX_SN_LENGTH}")
    for name in ("ServiceId", "Sender", "Receiver", "SendTime"):
        if not header.get(name):
            raise Refusal(ResultCode.bad_header, f"报文头缺少 {name}", sn)
    if header["ServiceId"] != service_id:
        raise Refusal(ResultCode.bad_header, "报文头 ServiceId 与 HTTP 头 X-Service-Id 不一致", sn)
    if header["Receiver"] != node:
        raise Refusal(ResultCode.bad_header, f"报文头 Receiver 应为本节点 {node}", sn)
    record_element = root.find("Body/ApprovalRecord")
    if record_element is None:
        raise Refusal(ResultCode.bad_body, "报文体缺少 Body/ApprovalRecord", sn)
    return header, _check_record(record_element, sn)


def _check_record(element: ET.Element, sn: str) -> dict[str, Any]:
    """The receiver's own checks of an approval record (2003 naming the field, 3001 for business rules)."""

    def refuse(message: str, code: ResultCode = ResultCode.bad_body) -> Refusal:
        return Refusal(code, message, sn)

    for path in ("CaseNo", "ItemCode", "ItemName", "Result", "Applicant/Name", "Applicant/IdNumber"):
        if not _text(element, path):
            raise refuse(f"{path} 不能为空")
    version = _text(element, "DataVersion")
    if not version.isdigit() or int(version) < 1:
        raise refuse("DataVersion 必须为不小于 1 的整数")
    if not _AREA_CODE.fullmatch(_text(element, "AreaCode")):
        raise refuse("AreaCode 必须为 6 位行政区划代码")
    decided = _instant(_text(element, "DecidedAt"), "DecidedAt")
    received_text = _text(element, "ReceivedAt")
    if received_text and _instant(received_text, "ReceivedAt") > decided:
        raise refuse("受理时间 ReceivedAt 晚于办结时间 DecidedAt", ResultCode.business)
    return _as_dict(element)


class SoapPlatform:
    """State of one SOAP exchange mock: tokens, records, what each ``Sn`` did, and the counters."""

    name = "soap"

    def __init__(
        self,
        users: Mapping[str, str],
        clock: Callable[[], float],
        traffic_limit: int,
        *,
        services: frozenset[str] = DEFAULT_SERVICES,
        node: str = DEFAULT_NODE,
    ) -> None:
        self.users = dict(users)
        self.services = services
        self.node = node
        self.clock = clock
        self.faults = FaultState(
            server_error_status=500,
            server_error_body=SERVER_FAULT,
            server_error_content_type=b"text/xml; charset=utf-8",
        )
        self.traffic = TrafficLog(traffic_limit)
        self.tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self.reset()

    # -- control plane -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget records, outcomes and counters. Issued tokens survive (credentials, not data)."""
        with self._lock:
            self.held: list[HeldRecord] = []
            self.by_case: dict[str, HeldRecord] = {}
            self.outcomes: dict[str, _Outcome] = {}
            self.sequence = 0
            self.rejected = 0
            self.duplicate_creations = 0

    def records_report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "platform": self.name,
                "accepted": len(self.by_case),
                "duplicate_creations": self.duplicate_creations,
                "rejected": self.rejected,
                "records": [h.as_dict() for h in self.held],
            }

    def generate(self, request: GenerateRequest) -> dict[str, int]:
        raise HTTPException(400, "soap is a destination: it has no feed to generate into")

    def inject(self, records: list[Any]) -> dict[str, int]:
        raise HTTPException(400, "soap is a destination: it has no feed to inject into")

    # -- native API (called from spyne's worker threads) ----------------------------------------------------
    def login(self, user: str, password: str) -> str | None:
        """A fresh token valid for ``token_ttl_s``, or ``None`` for wrong credentials."""
        expected = self.users.get(user)
        if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
            return None
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens[token] = self.clock() + self.faults.settings.token_ttl_s
        return token

    def _authorise(self, token: str | None, service_id: str | None) -> None:
        with self._lock:
            expires_at = self.tokens.get(token or "")
        if expires_at is None:
            raise Refusal(ResultCode.token_invalid, "令牌无效，请重新登录")
        if self.clock() >= expires_at:
            raise Refusal(ResultCode.token_expired, "令牌已过期，请重新登录")
        if service_id not in self.services:
            raise Refusal(ResultCode.unknown_service, "服务标识无效或未订阅")

    def service(self, token: str | None, service_id: str | None, xml: str | None) -> str:
        """Apply one ``service(xml)`` call: create (or revise) a record, or refuse it; the reply document."""
        try:
            self._authorise(token, service_id)
        except Refusal as refusal:
            return result_xml(refusal.code, refusal.message, None)
        try:
            header, record = parse_message(xml, service_id=service_id or "", node=self.node)
        except Refusal as refusal:
            with self._lock:
                self.rejected += 1
                if refusal.sn and self.outcomes.get(refusal.sn, None) is None:
                    self.outcomes[refusal.sn] = _Outcome(Status.rejected, refusal.code, refusal.message)
            return result_xml(refusal.code, refusal.message, refusal.sn)
        sn = header["Sn"]
        with self._lock:
            held = self._apply(header, record)
            held.sns.append(sn)
            earlier = self.outcomes.get(sn)
            if earlier is None or earlier.status is not Status.received:
                self.outcomes[sn] = _Outcome(Status.received, ResultCode.ok, "接收成功", held.receipt_no)
        return result_xml(ResultCode.ok, "接收成功", sn, ReceiptNo=held.receipt_no)

    def query(self, token: str | None, service_id: str | None, sn: str | None) -> str:
        """Answer ``query(sn)``: ``Status`` RECEIVED (with the ReceiptNo), REJECTED (with the code) or NOT_FOUND."""
        try:
            self._authorise(token, service_id)
        except Refusal as refusal:
            return result_xml(refusal.code, refusal.message, sn)
        if not sn:
            return result_xml(ResultCode.bad_header, "Sn 不能为空", sn)
        with self._lock:
            outcome = self.outcomes.get(sn)
        if outcome is None:
            return result_xml(ResultCode.ok, "未找到该流水号", sn, Status=Status.not_found.value)
        if outcome.status is Status.received:
            return result_xml(ResultCode.ok, "已接收", sn, Status=outcome.status.value, ReceiptNo=outcome.receipt_no)
        return result_xml(
            ResultCode.ok,
            "已拒收",
            sn,
            Status=outcome.status.value,
            ErrorCode=outcome.code.value,
            ErrorMessage=outcome.message,
        )

    # -- helpers (lock held) --------------------------------------------------------------------------------
    def _apply(self, header: dict[str, str], record: dict[str, Any]) -> HeldRecord:
        """Create a record, or revise a held case when ``DataVersion`` is higher; count naive duplicates."""
        case_no, version = record["CaseNo"], int(record["DataVersion"])
        held = self.by_case.get(case_no)
        if held is not None and version > held.data_version:
            held.data_version, held.record, held.header = version, record, header
            return held
        if held is not None:
            self.duplicate_creations += 1
        self.sequence += 1
        created = HeldRecord(
            receipt_no=f"HZ{self.node.rsplit('-', 1)[-1]}{self.sequence:010d}",
            case_no=case_no,
            data_version=version,
            header=header,
            record=record,
            duplicate=held is not None,
        )
        self.held.append(created)
        self.by_case.setdefault(case_no, created)
        return created


def asgi_app(platform: SoapPlatform) -> ASGIApp:
    """The spyne SOAP endpoints for ``platform`` — or, where spyne cannot be imported, an app that answers
    every native request with 501 and the reason, while ``/soap/_mock`` and the other mocks keep working."""
    try:
        from mock_platforms.soap_service import asgi_app as spyne_app
    except ImportError as exc:
        return _Unavailable(f"the soap mock needs spyne, which cannot be imported here: {exc}")
    return spyne_app(platform)


class _Unavailable:
    """ASGI app answering 501 with why the SOAP endpoints are missing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await PlainTextResponse(self.reason, status_code=501)(scope, receive, send)
