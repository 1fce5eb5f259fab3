"""Pure mapping between the canonical ``approval.decided`` and the SOAP exchange's XML documents.

What crosses the wire is one string parameter holding an ``ExchangeMessage``::

    <ExchangeMessage>
      <Header>
        <Sn>SG…</Sn>                       serial number (流水号), derived from the idempotency key
        <ServiceId>…</ServiceId>           the exchange's service id (also in the X-Service-Id header)
        <Sender>…</Sender>                 our node code
        <Receiver>…</Receiver>             the 前置机's node code
        <MessageType>approval.decided</MessageType>
        <MessageId>…</MessageId>           the canonical envelope id
        <SendTime>2026-11-20T16:40:02+08:00</SendTime>
      </Header>
      <Body><ApprovalRecord>…</ApprovalRecord></Body>
    </ExchangeMessage>

The ``ApprovalRecord`` (办件结果) carries, in this order: ``CaseNo`` (办件编号), ``DataVersion`` (the
envelope revision: 1, then 2, 3 … for a 重报), ``ItemCode``/``ItemName`` (事项), ``AreaCode`` (行政区划),
``Result`` (``GRANTED``/``REJECTED``/``VOIDED``/``FORWARDED``), ``ResultText``, ``ReceivedAt``,
``DecidedAt`` (ISO-8601 in Beijing time), ``Applicant`` (``Kind`` LEGAL/NATURAL/OTHER, ``Name``,
``IdType`` USCC/ID_CARD/PASSPORT/OTHER, ``IdNumber``, ``BusinessRegistrationNo``, ``LegalRepresentative``,
``Phone``), ``License`` (``CertificateNo``, ``CertificateName``, ``DocumentNo``, ``DocumentName``,
``ValidFrom``, ``ValidTo``, ``LongTerm`` true/false, ``IssuerCode``), ``Commitment`` (``Mode``
DEFERRED_MATERIALS/MATERIAL_VERIFICATION/POST_VERIFICATION, ``PeriodDays``) and ``CorrelationId``.
An absent optional value is an absent element; on the way back an empty element also reads as absent,
as legacy systems write both.

Documents are built with lxml's element API, never by pasting values into text: a 名称 with ``<`` or
``&`` is escaped by the builder, and a value XML 1.0 cannot carry at all (a control character) fails
loudly in ``encode`` instead of producing a document the receiver cannot parse. ``decode_body`` — the
inverse used for round-trip checks — parses with defusedxml like every other document we read.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from lxml import etree
from pydantic import ValidationError

from adapters.errors import DecodeError
from adapters.native import SHANGHAI
from schemas import (
    ApprovalDecided,
    Certificate,
    Commitment,
    CommitmentMode,
    DecisionResult,
    Envelope,
    IdType,
    PartyKind,
    describe_validation_error,
)

__all__ = ["ACCEPTED_TYPE", "body_element", "decode_body", "encode", "exchange_message", "serial_number"]

ACCEPTED_TYPE = "approval.decided"
SN_PREFIX = "SG"

_RESULT = {
    DecisionResult.granted: "GRANTED",
    DecisionResult.rejected: "REJECTED",
    DecisionResult.voided: "VOIDED",
    DecisionResult.forwarded: "FORWARDED",
}
_KIND = {PartyKind.legal: "LEGAL", PartyKind.natural: "NATURAL", PartyKind.other: "OTHER"}
_ID_TYPE = {IdType.uscc: "USCC", IdType.resident_id: "ID_CARD", IdType.passport: "PASSPORT", IdType.other: "OTHER"}
_MODE = {
    CommitmentMode.deferred_materials: "DEFERRED_MATERIALS",
    CommitmentMode.material_verification: "MATERIAL_VERIFICATION",
    CommitmentMode.post_verification: "POST_VERIFICATION",
}


def _invert(mapping: Mapping[Any, str]) -> dict[str, Any]:
    return {v: k for k, v in mapping.items()}


_RESULT_OF, _KIND_OF, _ID_TYPE_OF, _MODE_OF = map(_invert, (_RESULT, _KIND, _ID_TYPE, _MODE))


def serial_number(idempotency_key: str) -> str:
    """The ``Sn`` of a delivery: ``SG`` + 30 upper-case hex digits of SHA-256 of the idempotency key.

    Deterministic, so every attempt of one delivery — and the status query after a lost reply — names the
    same message; 32 characters of ``[0-9A-Z]``, which fits the narrow 流水号 columns of legacy exchanges.
    """
    return SN_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:30].upper()


def _time(value: datetime) -> str:
    return value.astimezone(SHANGHAI).isoformat()


def _add(parent: etree._Element, tag: str, value: str | int | bool | date | None) -> None:
    """Append ``<tag>value</tag>``; ``None`` appends nothing."""
    if value is None:
        return
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = _time(value)
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    etree.SubElement(parent, tag).text = text


def _license(parent: etree._Element, cert: Certificate | None) -> None:
    if cert is None:
        return
    element = etree.SubElement(parent, "License")
    _add(element, "CertificateNo", cert.number)
    _add(element, "CertificateName", cert.name)
    _add(element, "DocumentNo", cert.document_no)
    _add(element, "DocumentName", cert.document_name)
    _add(element, "ValidFrom", cert.valid_from)
    _add(element, "ValidTo", cert.valid_to)
    _add(element, "LongTerm", cert.long_term)
    _add(element, "IssuerCode", cert.issuer_code)


def _commitment(parent: etree._Element, commitment: Commitment | None) -> None:
    if commitment is None:
        return
    element = etree.SubElement(parent, "Commitment")
    _add(element, "Mode", _MODE[commitment.mode])
    _add(element, "PeriodDays", commitment.period_days)


def body_element(envelope: Envelope) -> etree._Element:
    """The ``<Body>`` of an ``approval.decided`` envelope; ``ValueError`` if a value cannot be XML 1.0."""
    payload = envelope.payload()
    if not isinstance(payload, ApprovalDecided):
        raise TypeError(f"the SOAP exchange codec encodes approval.decided, not {envelope.type}")
    body = etree.Element("Body")
    record = etree.SubElement(body, "ApprovalRecord")
    _add(record, "CaseNo", payload.case_no)
    _add(record, "DataVersion", envelope.revision)
    _add(record, "ItemCode", payload.item.code)
    _add(record, "ItemName", payload.item.name)
    _add(record, "AreaCode", payload.region)
    _add(record, "Result", _RESULT[payload.result])
    _add(record, "ResultText", payload.result_description)
    _add(record, "ReceivedAt", payload.received_at)
    _add(record, "DecidedAt", payload.decided_at)
    applicant = payload.applicant
    party = etree.SubElement(record, "Applicant")
    _add(party, "Kind", _KIND[applicant.kind])
    _add(party, "Name", applicant.name)
    _add(party, "IdType", _ID_TYPE[applicant.id_type])
    _add(party, "IdNumber", applicant.id_number)
    _add(party, "BusinessRegistrationNo", applicant.business_registration_no)
    _add(party, "LegalRepresentative", applicant.legal_representative)
    _add(party, "Phone", applicant.phone)
    _license(record, payload.certificate)
    _commitment(record, payload.commitment)
    _add(record, "CorrelationId", envelope.correlation_id)
    return body


def encode(envelope: Envelope) -> str:
    """The ``<Body>…</Body>`` document of an envelope as a string (what ``SoapAdapter.encode`` shows)."""
    return etree.tostring(body_element(envelope), encoding="unicode")


def exchange_message(
    envelope: Envelope,
    *,
    sn: str,
    service_id: str,
    sender: str,
    receiver: str,
    send_time: datetime,
) -> str:
    """The full ``ExchangeMessage`` string handed to ``service(xml)``."""
    root = etree.Element("ExchangeMessage")
    header = etree.SubElement(root, "Header")
    _add(header, "Sn", sn)
    _add(header, "ServiceId", service_id)
    _add(header, "Sender", sender)
    _add(header, "Receiver", receiver)
    _add(header, "MessageType", envelope.type)
    _add(header, "MessageId", envelope.id)
    _add(header, "SendTime", send_time)
    root.append(body_element(envelope))
    return etree.tostring(root, encoding="unicode")


# -- decoding (the inverse, for round-trip checks and for reading what a receiver stored) ---------------------
def _text(parent: ET.Element | None, tag: str) -> str | None:
    if parent is None:
        return None
    element = parent.find(tag)
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


def _lookup(table: Mapping[str, Any], value: str | None, field: str) -> Any:
    if value not in table:
        raise DecodeError(f"{field} must be one of {', '.join(sorted(table))}")
    return table[value]


def _bool(value: str | None, field: str) -> bool:
    if value in (None, "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise DecodeError(f"{field} must be true or false")


def decode_body(xml: str) -> ApprovalDecided:
    """The inverse of ``encode``: a ``<Body>`` (or a whole ``ExchangeMessage``) → the canonical payload."""
    if not isinstance(xml, str):
        raise DecodeError(f"expected an XML string, got {type(xml).__name__}")
    try:
        root = SafeET.fromstring(xml)
    except DefusedXmlException:
        raise DecodeError("document contains a DTD or entity declaration; refused without expanding it") from None
    except ET.ParseError as exc:
        raise DecodeError(f"not well-formed XML: {exc}") from None
    if root.tag == "ExchangeMessage":
        found = root.find("Body")
        if found is None:
            raise DecodeError("ExchangeMessage has no Body")
        root = found
    record = root.find("ApprovalRecord") if root.tag == "Body" else None
    if record is None:
        raise DecodeError("expected <Body><ApprovalRecord>…</ApprovalRecord></Body>")
    applicant = record.find("Applicant")
    license_ = record.find("License")
    commitment = record.find("Commitment")
    data: dict[str, Any] = {
        "case_no": _text(record, "CaseNo"),
        "item": {"code": _text(record, "ItemCode"), "name": _text(record, "ItemName")},
        "region": _text(record, "AreaCode"),
        "applicant": {
            "kind": _lookup(_KIND_OF, _text(applicant, "Kind"), "Applicant/Kind"),
            "name": _text(applicant, "Name"),
            "id_type": _lookup(_ID_TYPE_OF, _text(applicant, "IdType"), "Applicant/IdType"),
            "business_registration_no": _text(applicant, "BusinessRegistrationNo"),
            "id_number": _text(applicant, "IdNumber"),
            "legal_representative": _text(applicant, "LegalRepresentative"),
            "phone": _text(applicant, "Phone"),
        },
        "received_at": _text(record, "ReceivedAt"),
        "decided_at": _text(record, "DecidedAt"),
        "result": _lookup(_RESULT_OF, _text(record, "Result"), "Result"),
        "result_description": _text(record, "ResultText"),
        "certificate": None
        if license_ is None
        else {
            "number": _text(license_, "CertificateNo"),
            "name": _text(license_, "CertificateName"),
            "document_no": _text(license_, "DocumentNo"),
            "document_name": _text(license_, "DocumentName"),
            "valid_from": _text(license_, "ValidFrom"),
            "valid_to": _text(license_, "ValidTo"),
            "long_term": _bool(_text(license_, "LongTerm"), "License/LongTerm"),
            "issuer_code": _text(license_, "IssuerCode"),
        },
        "commitment": None
        if commitment is None
        else {
            "mode": _lookup(_MODE_OF, _text(commitment, "Mode"), "Commitment/Mode"),
            "period_days": _text(commitment, "PeriodDays"),
        },
    }
    try:
        return ApprovalDecided.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error(exc)) from None
