"""Pure mapping between the canonical ``approval.decided`` and the 互联网+监管 approval record (camelCase).

``encode`` is what the relay sends; ``decode_record`` is its exact inverse. The inverse exists so that a
round trip canonical → native → canonical can be checked (the conformance kit needs it), which is the
cheapest proof that no field is dropped or bent on the way out.

One known gap of the record contract: it has no field for a 个体工商户's 工商注册号, so a party identified
by the 17-zeros-X placeholder loses its registration number on the way to hlwjg (and cannot be decoded
back). The contract, not this module, has to change for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

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

__all__ = ["decode_record", "encode"]

_RESULT = {
    DecisionResult.granted: "GRANTED",
    DecisionResult.rejected: "REJECTED",
    DecisionResult.voided: "VOIDED",
    DecisionResult.forwarded: "FORWARDED",
}
_KIND = {PartyKind.legal: "LEGAL", PartyKind.natural: "NATURAL", PartyKind.other: "OTHER"}
_CREDENTIALS = {
    IdType.uscc: "USCC",
    IdType.resident_id: "ID_CARD",
    IdType.passport: "PASSPORT",
    IdType.other: "OTHER",
}
_MODE = {
    CommitmentMode.deferred_materials: "DEFERRED_MATERIALS",
    CommitmentMode.material_verification: "MATERIAL_VERIFICATION",
    CommitmentMode.post_verification: "POST_VERIFICATION",
}


def _invert(mapping: Mapping[Any, str]) -> dict[str, Any]:
    return {v: k for k, v in mapping.items()}


_RESULT_OF, _KIND_OF, _CREDENTIALS_OF, _MODE_OF = map(_invert, (_RESULT, _KIND, _CREDENTIALS, _MODE))


def _time(value: datetime | None) -> str | None:
    """ISO-8601 in Beijing time (``+08:00``): what the platform's operators read."""
    return value.astimezone(SHANGHAI).isoformat() if value is not None else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _license(cert: Certificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "certificateNo": cert.number,
        "certificateName": cert.name,
        "documentNo": cert.document_no,
        "documentName": cert.document_name,
        "validFrom": _day(cert.valid_from),
        "validTo": _day(cert.valid_to),
        "longTerm": cert.long_term,
        "issuerCode": cert.issuer_code,
    }


def _commitment(commitment: Commitment | None) -> dict[str, Any] | None:
    if commitment is None:
        return None
    return {"mode": _MODE[commitment.mode], "periodDays": commitment.period_days}


def encode(envelope: Envelope) -> dict[str, Any]:
    """The ``record`` of an approval-records request for an ``approval.decided`` envelope."""
    payload = envelope.payload()
    if not isinstance(payload, ApprovalDecided):
        raise TypeError(f"hlwjg records encode approval.decided, not {envelope.type}")
    applicant = payload.applicant
    return {
        "approvalNo": payload.case_no,
        "dataVersion": envelope.revision,
        "itemCode": payload.item.code,
        "itemName": payload.item.name,
        "areaCode": payload.region,
        "decisionResult": _RESULT[payload.result],
        "decisionText": payload.result_description,
        "decidedAt": _time(payload.decided_at),
        "receivedAt": _time(payload.received_at),
        "counterpart": {
            "type": _KIND[applicant.kind],
            "name": applicant.name,
            "credentialsType": _CREDENTIALS[applicant.id_type],
            "credentialsValue": applicant.id_number,
            "legalRepresentative": applicant.legal_representative,
            "contactPhone": applicant.phone,
        },
        "license": _license(payload.certificate),
        "commitment": _commitment(payload.commitment),
        "correlationId": envelope.correlation_id,
    }


def _lookup(table: Mapping[str, Any], value: Any, field: str) -> Any:
    if not isinstance(value, str) or value not in table:
        raise DecodeError(f"{field} must be one of {', '.join(sorted(table))}")
    return table[value]


def _object(record: Mapping[str, Any], field: str, *, optional: bool) -> Mapping[str, Any] | None:
    value = record.get(field)
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise DecodeError(f"{field} must be an object")
    return value


def decode_record(record: Any) -> ApprovalDecided:
    """The inverse of ``encode``: an hlwjg approval record → the canonical payload; ``DecodeError`` if bad."""
    if not isinstance(record, Mapping):
        raise DecodeError(f"expected a JSON object for an approval record, got {type(record).__name__}")
    counterpart = _object(record, "counterpart", optional=False) or {}
    license_ = _object(record, "license", optional=True)
    commitment = _object(record, "commitment", optional=True)
    data: dict[str, Any] = {
        "case_no": record.get("approvalNo"),
        "item": {"code": record.get("itemCode"), "name": record.get("itemName")},
        "region": record.get("areaCode"),
        "applicant": {
            "kind": _lookup(_KIND_OF, counterpart.get("type"), "counterpart.type"),
            "name": counterpart.get("name"),
            "id_type": _lookup(
                _CREDENTIALS_OF, counterpart.get("credentialsType"), "counterpart.credentialsType"
            ),
            "id_number": counterpart.get("credentialsValue"),
            "legal_representative": counterpart.get("legalRepresentative"),
            "phone": counterpart.get("contactPhone"),
        },
        "received_at": record.get("receivedAt"),
        "decided_at": record.get("decidedAt"),
        "result": _lookup(_RESULT_OF, record.get("decisionResult"), "decisionResult"),
        "result_description": record.get("decisionText"),
        "certificate": None if license_ is None else {
            "number": license_.get("certificateNo"),
            "name": license_.get("certificateName"),
            "document_no": license_.get("documentNo"),
            "document_name": license_.get("documentName"),
            "valid_from": license_.get("validFrom"),
            "valid_to": license_.get("validTo"),
            "long_term": license_.get("longTerm", False),
            "issuer_code": license_.get("issuerCode"),
        },
        "commitment": None if commitment is None else {
            "mode": _lookup(_MODE_OF, commitment.get("mode"), "commitment.mode"),
            "period_days": commitment.get("periodDays"),
        },
    }
    try:
        return ApprovalDecided.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error(exc)) from None
