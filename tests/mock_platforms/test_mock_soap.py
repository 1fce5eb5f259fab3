"""The SOAP exchange mock (前置机): WSDLs, login, service(xml) result codes, non-idempotent records, query(sn), _mock.

These tests speak raw SOAP 1.1 over httpx — no zeep — so the mock is checked on the wire, independently of the
adapter it exists to test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from mockkit import FakeClock

from mock_platforms.app import MockPlatformsApp
from mock_platforms.server import run_in_background

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
AUTH_NS = "urn:shenguan:mock:soap:auth"
EXCHANGE_NS = "urn:shenguan:mock:soap:exchange"
SERVICE_ID = "SGLD_APPROVAL_DECIDED"
NODE = "QZJ-320700"


def soap_request(namespace: str, operation: str, **arguments: str) -> bytes:
    envelope = ET.Element(f"{{{SOAP_ENV}}}Envelope")
    call = ET.SubElement(ET.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{namespace}}}{operation}")
    for name, value in arguments.items():
        ET.SubElement(call, f"{{{namespace}}}{name}").text = value
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=True)


def message(sn: str = "SN-1", case_no: str = "320700261121000012345", version: int = 1, **changes: Any) -> str:
    """An ``ExchangeMessage`` with one approval record; ``changes`` replace header or record fields
    (``None`` removes one)."""
    header = {
        "Sn": sn,
        "ServiceId": SERVICE_ID,
        "Sender": "shenguan",
        "Receiver": NODE,
        "MessageType": "approval.decided",
        "SendTime": "2026-11-20T16:45:00+08:00",
    }
    record: dict[str, Any] = {
        "CaseNo": case_no,
        "DataVersion": str(version),
        "ItemCode": "11320700MB123456794000117001",
        "ItemName": "食品经营许可",
        "AreaCode": "320700",
        "Result": "GRANTED",
        "ResultText": "准予许可",
        "ReceivedAt": "2026-11-18T09:12:33+08:00",
        "DecidedAt": "2026-11-20T16:40:02+08:00",
        "Applicant": {
            "Kind": "LEGAL",
            "Name": "连云港海州区某某餐饮有限公司",
            "IdType": "USCC",
            "IdNumber": "91320700MA1X2Y3K05",
        },
    }
    for key, value in changes.items():
        target = header if key in header else record
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    root = ET.Element("ExchangeMessage")
    head = ET.SubElement(root, "Header")
    for key, value in header.items():
        ET.SubElement(head, key).text = value
    body = ET.SubElement(ET.SubElement(root, "Body"), "ApprovalRecord")
    for key, value in record.items():
        child = ET.SubElement(body, key)
        if isinstance(value, dict):
            for sub, text in value.items():
                ET.SubElement(child, sub).text = text
        else:
            child.text = value
    return ET.tostring(root, encoding="unicode")


def reply_of(response: httpx.Response, operation: str, namespace: str = EXCHANGE_NS) -> str:
    """The result string of a SOAP response."""
    node = ET.fromstring(response.content).find(f".//{{{namespace}}}{operation}Result")
    assert node is not None, response.text
    return node.text or ""


def result(document: str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(document)}


def fault(response: httpx.Response) -> tuple[str, str]:
    node = ET.fromstring(response.content).find(f".//{{{SOAP_ENV}}}Fault")
    assert node is not None, response.text
    return node.findtext("faultcode") or "", node.findtext("faultstring") or ""


class Soap:
    """A raw SOAP client of the mock: login, service and query, with the headers the 前置机 reads."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.token = ""

    async def login(self, user: str = "shenguan", password: str = "soap-mock-password") -> httpx.Response:
        response = await self.client.post(
            "/soap/auth",
            content=soap_request(AUTH_NS, "login", user=user, password=password),
            headers={"content-type": "text/xml; charset=utf-8", "SOAPAction": '"login"'},
        )
        if response.status_code == 200:
            self.token = reply_of(response, "login", AUTH_NS)
        return response

    def headers(self, operation: str, token: str | None, service_id: str | None) -> dict[str, str]:
        headers = {"content-type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'}
        if token is not None:
            headers["X-Token"] = token
        if service_id is not None:
            headers["X-Service-Id"] = service_id
        return headers

    async def service_raw(self, xml: str, *, token: str | None = "", service_id: str | None = SERVICE_ID) -> Any:
        return await self.client.post(
            "/soap/exchange",
            content=soap_request(EXCHANGE_NS, "service", xml=xml),
            headers=self.headers("service", self.token if token == "" else token, service_id),
        )

    async def service(self, xml: str, **kwargs: Any) -> dict[str, str]:
        response = await self.service_raw(xml, **kwargs)
        assert response.status_code == 200, response.text
        return result(reply_of(response, "service"))

    async def query(self, sn: str, *, token: str | None = "") -> dict[str, str]:
        response = await self.client.post(
            "/soap/exchange",
            content=soap_request(EXCHANGE_NS, "query", sn=sn),
            headers=self.headers("query", self.token if token == "" else token, SERVICE_ID),
        )
        assert response.status_code == 200, response.text
        return result(reply_of(response, "query"))


@pytest.fixture
async def soap(client: httpx.AsyncClient) -> Soap:
    s = Soap(client)
    assert (await s.login()).status_code == 200
    return s


async def report(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/soap/_mock/records")).json()


# -- WSDL and login -------------------------------------------------------------------------------------------
async def test_wsdls_describe_the_operations(client: httpx.AsyncClient) -> None:
    wsdl_ns = "{http://schemas.xmlsoap.org/wsdl/}"
    for path, operations in (("/soap/auth", {"login"}), ("/soap/exchange", {"service", "query"})):
        response = await client.get(f"{path}?wsdl")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
        document = ET.fromstring(response.content)
        names = {op.get("name") for op in document.iter(f"{wsdl_ns}operation")}
        assert names == operations
        address = document.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert address is not None and address.get("location") == f"http://mocks{path}"


async def test_login_issues_tokens_and_refuses_wrong_credentials(client: httpx.AsyncClient) -> None:
    soap = Soap(client)
    assert (await soap.login()).status_code == 200 and len(soap.token) == 32
    first = soap.token
    await soap.login()
    assert soap.token != first
    bad = await Soap(client).login(password="nope")
    assert bad.status_code == 500 and fault(bad) == ("soap11env:Client.AuthenticationFailed", "用户名或密码错误")


async def test_envelope_outside_the_schema_is_a_client_fault(soap: Soap) -> None:
    envelope = ET.fromstring(soap_request(EXCHANGE_NS, "service", xml=message()))
    call = envelope.find(f".//{{{EXCHANGE_NS}}}service")
    assert call is not None
    ET.SubElement(call, f"{{{EXCHANGE_NS}}}unexpected").text = "1"
    response = await soap.client.post(
        "/soap/exchange", content=ET.tostring(envelope), headers=soap.headers("service", soap.token, SERVICE_ID)
    )
    assert response.status_code == 500 and fault(response)[0] == "soap11env:Client.SchemaValidationError"


# -- tokens and service ids -----------------------------------------------------------------------------------
async def test_token_and_service_id_are_checked(soap: Soap, client: httpx.AsyncClient, clock: FakeClock) -> None:
    assert (await soap.service(message(), token=None))["Code"] == "1001"
    assert (await soap.service(message(), token="forged"))["Code"] == "1001"
    assert (await soap.service(message(), service_id="NOPE"))["Code"] == "1003"
    assert (await soap.service(message(), service_id=None))["Code"] == "1003"
    await client.post("/soap/_mock/faults", json={"token_ttl_s": 60})
    await soap.login()
    assert (await soap.service(message("SN-1")))["Code"] == "0"
    clock.now += 60
    expired = await soap.service(message("SN-2", case_no="320700261121000000002"))
    assert expired["Code"] == "1002" and expired["Message"] == "令牌已过期，请重新登录"
    assert (await soap.query("SN-1"))["Code"] == "1002", "the query needs a valid token too"
    held = await report(client)
    assert (held["accepted"], held["rejected"]) == (1, 0), "refused tokens are not rejected records"


# -- service: accepted, revised, duplicated -------------------------------------------------------------------
async def test_accepted_reply_names_sn_and_receipt(soap: Soap, client: httpx.AsyncClient) -> None:
    reply = await soap.service(message("SN-1"))
    assert reply["Code"] == "0" and reply["Message"] == "接收成功" and reply["Sn"] == "SN-1"
    assert reply["ReceiptNo"].startswith("HZ320700")
    held = await report(client)
    assert (held["platform"], held["accepted"], held["duplicate_creations"], held["rejected"]) == ("soap", 1, 0, 0)
    [record] = held["records"]
    assert record["receiptNo"] == reply["ReceiptNo"] and record["sns"] == ["SN-1"] and not record["duplicate"]
    assert record["record"]["Applicant"]["Name"] == "连云港海州区某某餐饮有限公司"
    assert record["header"]["Sender"] == "shenguan"


async def test_not_idempotent_a_resend_with_the_same_sn_is_a_duplicate(soap: Soap, client: httpx.AsyncClient) -> None:
    first = await soap.service(message("SN-1"))
    again = await soap.service(message("SN-1"))
    assert again["Code"] == "0" and again["ReceiptNo"] != first["ReceiptNo"]
    other_sn = await soap.service(message("SN-9"))
    assert other_sn["Code"] == "0"
    held = await report(client)
    assert (held["accepted"], held["duplicate_creations"]) == (1, 2)
    assert [r["duplicate"] for r in held["records"]] == [False, True, True]
    assert (await soap.query("SN-1"))["ReceiptNo"] == first["ReceiptNo"], "the query answers the first record"


async def test_a_higher_data_version_revises_the_record(soap: Soap, client: httpx.AsyncClient) -> None:
    first = await soap.service(message("SN-1"))
    revised = await soap.service(message("SN-2", version=2, ResultText="准予许可（更正）"))
    assert revised["ReceiptNo"] == first["ReceiptNo"]
    stale = await soap.service(message("SN-3", version=1))
    held = await report(client)
    assert (held["accepted"], held["duplicate_creations"]) == (1, 1), "an older version is a naive duplicate"
    assert stale["ReceiptNo"] != first["ReceiptNo"]
    assert held["records"][0]["dataVersion"] == 2 and held["records"][0]["record"]["ResultText"] == "准予许可（更正）"


@pytest.mark.parametrize(
    ("xml", "code", "words"),
    [
        ("", "2001", "报文为空"),
        ("<ExchangeMessage><Header>", "2001", "不是合法的 XML"),
        ("<Other/>", "2001", "ExchangeMessage"),
        (
            '<!DOCTYPE m [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><ExchangeMessage>&b;</ExchangeMessage>',
            "2001",
            "DTD",
        ),
        ('<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><ExchangeMessage>&x;</ExchangeMessage>', "2001", "DTD"),
        ("<ExchangeMessage/>", "2002", "Header"),
        (message(sn=None), "2002", "Sn"),
        (message(sn="S" * 65), "2002", "Sn"),
        (message(Receiver="QZJ-999999"), "2002", "Receiver"),
        (message(ServiceId="OTHER"), "2002", "ServiceId"),
        (message(SendTime=None), "2002", "SendTime"),
        (message(AreaCode="3207"), "2003", "AreaCode"),
        (message(DataVersion="0"), "2003", "DataVersion"),
        (message(CaseNo=None), "2003", "CaseNo"),
        (message(DecidedAt="2026-11-20 16:40:02"), "2003", "DecidedAt"),
        (message(Applicant={"Kind": "LEGAL", "Name": "某公司"}), "2003", "Applicant/IdNumber"),
        (message(ReceivedAt="2026-11-21T09:00:00+08:00"), "3001", "ReceivedAt"),
    ],
    ids=[
        "empty",
        "not-xml",
        "wrong-root",
        "entity-bomb",
        "xxe",
        "no-header",
        "no-sn",
        "long-sn",
        "wrong-receiver",
        "service-id-mismatch",
        "no-send-time",
        "area-code",
        "data-version",
        "no-case-no",
        "naive-time",
        "no-id-number",
        "received-after-decided",
    ],
)
async def test_refusals_name_their_reason_and_count_as_rejected(
    soap: Soap, client: httpx.AsyncClient, xml: str, code: str, words: str
) -> None:
    reply = await soap.service(xml)
    assert reply["Code"] == code and words in reply["Message"]
    assert "root:" not in reply["Message"] and "aaaa" not in reply["Message"]
    held = await report(client)
    assert (held["accepted"], held["rejected"]) == (0, 1)


# -- query ----------------------------------------------------------------------------------------------------
async def test_query_reports_received_rejected_and_not_found(soap: Soap) -> None:
    accepted = await soap.service(message("SN-OK"))
    await soap.service(message("SN-BAD", AreaCode="x"))
    found = await soap.query("SN-OK")
    assert (found["Code"], found["Status"], found["ReceiptNo"], found["Sn"]) == (
        "0",
        "RECEIVED",
        accepted["ReceiptNo"],
        "SN-OK",
    )
    rejected = await soap.query("SN-BAD")
    assert (rejected["Status"], rejected["ErrorCode"]) == ("REJECTED", "2003")
    assert (await soap.query("SN-NEVER"))["Status"] == "NOT_FOUND"
    assert (await soap.query(""))["Code"] == "2002"


async def test_a_rejected_sn_later_accepted_is_received(soap: Soap) -> None:
    await soap.service(message("SN-1", AreaCode="x"))
    await soap.service(message("SN-1"))
    assert (await soap.query("SN-1"))["Status"] == "RECEIVED"


# -- _mock control plane and faults ---------------------------------------------------------------------------
async def test_down_is_503_on_the_native_api_only(soap: Soap, client: httpx.AsyncClient) -> None:
    await client.post("/soap/_mock/faults", json={"down": True})
    assert (await client.get("/soap/exchange?wsdl")).status_code == 503
    assert (await soap.service_raw(message())).status_code == 503
    assert (await client.get("/soap/_mock/records")).status_code == 200
    await client.post("/soap/_mock/faults", json={"down": False})
    assert (await soap.service(message()))["Code"] == "0"


async def test_error_rate_answers_a_server_fault_without_applying(soap: Soap, client: httpx.AsyncClient) -> None:
    await client.post("/soap/_mock/faults", json={"error_rate": 1.0})
    response = await soap.service_raw(message())
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/xml")
    assert fault(response) == ("soap11env:Server", "系统繁忙，请稍后重试")
    assert (await report(client))["accepted"] == 0


async def test_malformed_rate_commits_then_breaks_the_reply_xml(soap: Soap, client: httpx.AsyncClient) -> None:
    await client.post("/soap/_mock/faults", json={"malformed_rate": 1.0, "seed": 5})
    response = await soap.service_raw(message())
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    with pytest.raises(ET.ParseError):
        ET.fromstring(response.content)
    assert (await report(client))["accepted"] == 1


async def test_drop_response_commits_then_resets_the_connection() -> None:
    server = await run_in_background()
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            soap = Soap(client)
            await soap.login()
            await client.post("/soap/_mock/faults", json={"drop_response_rate": 1.0})
            with pytest.raises(httpx.RemoteProtocolError):
                await soap.service_raw(message("SN-1"))
            await client.post("/soap/_mock/faults", json={"drop_response_rate": 0.0})
            assert (await soap.query("SN-1"))["Status"] == "RECEIVED", "committed before the drop"
            assert (await report(client))["accepted"] == 1
    finally:
        await server.stop()


async def test_traffic_records_soap_bodies_and_faults(soap: Soap, client: httpx.AsyncClient) -> None:
    await soap.service(message("SN-T"))
    await client.post("/soap/_mock/faults", json={"down": True})
    await soap.service_raw(message("SN-U"))
    entries = (await client.get("/soap/_mock/traffic")).json()
    assert [e["path"] for e in entries] == ["/soap/auth", "/soap/exchange", "/soap/exchange"]
    assert "SN-T" in entries[1]["body"] and [e["fault"] for e in entries] == [None, None, "down"]


async def test_reset_forgets_records_but_not_tokens(soap: Soap, client: httpx.AsyncClient) -> None:
    await soap.service(message("SN-1"))
    await soap.service(message("SN-1"))
    await client.post("/soap/_mock/faults", json={"error_rate": 0.5})
    assert (await client.post("/soap/_mock/reset")).json() == {"platform": "soap", "reset": True}
    held = await report(client)
    assert (held["accepted"], held["duplicate_creations"], held["records"]) == (0, 0, [])
    assert (await client.get("/soap/_mock/faults")).json()["error_rate"] == 0.0
    assert (await soap.query("SN-1"))["Status"] == "NOT_FOUND"
    assert (await soap.service(message("SN-1")))["Code"] == "0", "the token survived the reset"


async def test_records_limit_keeps_counts(soap: Soap, client: httpx.AsyncClient) -> None:
    for i in range(3):
        await soap.service(message(f"SN-{i}", case_no=f"32070026112100000000{i}"))
    limited = (await client.get("/soap/_mock/records", params={"limit": 1})).json()
    assert limited["accepted"] == 3 and len(limited["records"]) == 1


@pytest.mark.parametrize("endpoint", ["generate", "inject"])
async def test_a_destination_has_no_feed(client: httpx.AsyncClient, endpoint: str) -> None:
    body = {"count": 1} if endpoint == "generate" else {"records": []}
    response = await client.post(f"/soap/_mock/{endpoint}", json=body)
    assert response.status_code == 400 and "destination" in response.json()["detail"]


def test_each_app_has_its_own_exchange(app: MockPlatformsApp) -> None:
    from mock_platforms import create_app

    assert create_app().platforms["soap"] is not app.platforms["soap"]


async def test_without_spyne_the_soap_endpoints_say_why_and_the_rest_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """spyne 2.14 does not import on Python 3.12+; the other mocks must not go down with it."""
    import sys

    from mock_platforms import create_app

    monkeypatch.setitem(sys.modules, "mock_platforms.soap_service", None)  # makes the import raise ImportError
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mocks") as client:
        missing = await client.get("/soap/exchange?wsdl")
        assert missing.status_code == 501 and "spyne" in missing.text
        assert (await client.get("/soap/_mock/records")).json()["accepted"] == 0
        assert (await client.get("/hlwjg/_mock/records")).status_code == 200
