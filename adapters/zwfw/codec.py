"""Pure mapping of a 政务服务一体化平台 办件 (办件回传 convention) to the canonical ``approval.decided``.

Why a separate, pure module: the mapping is where the platform's quirks are absorbed (numbers as strings,
``""`` and ``null`` for absent values, naive Beijing times, 长期 written as 2099-12-31, a 密级 that decides
whether a message may go online at all), and it must be testable without a network or an event loop.

Every rejection is a ``DecodeError`` whose reason names the *native* field the platform operator sees
(``APPLY_CARDNUMBER``), plus the canonical path where a model rule failed. Values are never echoed in full:
a 身份证号 in a reason string would be stored and logged unmasked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from adapters.errors import DecodeError
from adapters.masking import mask_text
from adapters.native import blank_to_none, platform_date, platform_datetime
from schemas import (
    ApprovalDecided,
    Classification,
    CommitmentMode,
    DecisionResult,
    Envelope,
    IdType,
    PartyKind,
    correlation_id_of,
    describe_validation_error,
)
from schemas.events.approval import LONG_TERM_SENTINEL

__all__ = ["NATIVE_FIELD_OF", "decode_item", "load_item", "to_envelope"]

_APPLY_TYPES: dict[str, PartyKind] = {"1": PartyKind.natural, "2": PartyKind.legal, "3": PartyKind.other}
_CARD_TYPES: dict[str, IdType] = {"111": IdType.resident_id, "414": IdType.passport, "001": IdType.uscc}
_PROMISE_TYPES: dict[str, CommitmentMode] = {
    "材料延期": CommitmentMode.deferred_materials,
    "材料核验": CommitmentMode.material_verification,
    "事后核查": CommitmentMode.post_verification,
}
_RESULTS: dict[str, DecisionResult] = {
    "办结": DecisionResult.granted,
    "退件": DecisionResult.rejected,
    "作废办结": DecisionResult.voided,
    "转报办结": DecisionResult.forwarded,
}
_SECRECY: dict[str, Classification] = {
    "内部": Classification.internal,
    "秘密": Classification.secret,
    "机密": Classification.secret,
    "绝密": Classification.secret,
}
_LONG_TERM_TEXT = frozenset({"长期", "长期有效"})

# Canonical location (dotted) → native field(s): a model rule's complaint in the platform's words.
NATIVE_FIELD_OF: dict[str, str] = {
    "": "RECEIVETIME, TRANSACT_TIME",
    "case_no": "PROJID",
    "item": "SERVICECODE, SERVICENAME",
    "item.code": "SERVICECODE",
    "item.name": "SERVICENAME",
    "region": "AREACODE",
    "applicant": "APPLY_TYPE, APPLY_CARDTYPE",
    "applicant.kind": "APPLY_TYPE",
    "applicant.name": "APPLYNAME",
    "applicant.id_type": "APPLY_CARDTYPE",
    "applicant.id_number": "APPLY_CARDNUMBER",
    "applicant.business_registration_no": "APPLY_REGNO",
    "applicant.legal_representative": "LEGALMAN",
    "applicant.phone": "CONTACT_PHONE",
    "received_at": "RECEIVETIME",
    "decided_at": "TRANSACT_TIME",
    "result": "TRANSACT_RESULT",
    "result_description": "TRANSACT_DESCRIBE",
    "certificate": "XK_YXQZ, XK_YXQZI",
    "certificate.number": "RESULT_CODE",
    "certificate.name": "XK_XKZS",
    "certificate.document_no": "XK_WSH",
    "certificate.document_name": "XK_XKWS",
    "certificate.valid_from": "XK_YXQZ",
    "certificate.valid_to": "XK_YXQZI",
    "certificate.long_term": "XK_YXQZI",
    "certificate.issuer_code": "XK_XKJGDM",
    "commitment": "PROMISE_TYPE, PROMISE_PERIOD",
    "commitment.mode": "PROMISE_TYPE",
    "commitment.period_days": "PROMISE_PERIOD",
}


def _show(value: str, limit: int = 16) -> str:
    """A short, masked rendering of a bad enum-like value for a reason string."""
    shown = value if len(value) <= limit else value[:limit] + "…"
    return repr(mask_text(shown))


def _text(item: Mapping[str, Any], field: str) -> str | None:
    """The field as stripped text, ``None`` when absent or blank.

    Platforms send numbers as numbers or strings, so integers are accepted and rendered in decimal.
    Anything structured (list, object), a boolean or a float is a wrong type: guessing what a platform
    meant by ``1.0`` or ``true`` in a code field would hide a real fault.
    """
    value = blank_to_none(item.get(field))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DecodeError(f"{field} has wrong type {type(value).__name__}, expected a string")
    try:
        text = str(value).strip()
    except ValueError:  # an integer too long to render (int max str digits)
        raise DecodeError(f"{field} is not a plausible value (number too long)") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DecodeError(f"{field} is not valid Unicode text (lone surrogate)") from None
    return text


def _required(item: Mapping[str, Any], field: str) -> str:
    text = _text(item, field)
    if text is None:
        raise DecodeError(f"missing field {field}")
    return text


def _whole_number(item: Mapping[str, Any], field: str) -> int | None:
    text = _text(item, field)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise DecodeError(f"{field} must be a whole number, got {_show(text)}") from None


def load_item(payload: Any) -> Mapping[str, Any]:
    """The native item as a mapping: a parsed object as is, a JSON string (some platforms embed it) parsed."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"malformed JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise DecodeError(f"expected a JSON object for one 办件, got {type(payload).__name__}")
    return payload


def _result(item: Mapping[str, Any], describe: str | None) -> DecisionResult:
    text = _required(item, "TRANSACT_RESULT")
    result = _RESULTS.get(text)
    if result is None:
        raise DecodeError(
            f"TRANSACT_RESULT {_show(text)} is not 办结, 退件, 作废办结 or 转报办结"
        )
    # 办结 with a 不予许可 decision is a refusal that was completed, not a grant.
    if result is DecisionResult.granted and describe and describe.startswith("不予"):
        return DecisionResult.rejected
    return result


def _classification(item: Mapping[str, Any]) -> Classification:
    text = _text(item, "MJ")
    if text is None:
        return Classification.public
    level = _SECRECY.get(text)
    if level is None:
        raise DecodeError(f"MJ {_show(text)} is not empty, 内部, 秘密, 机密 or 绝密")
    return level


def _revision(item: Mapping[str, Any]) -> int:
    revision = _whole_number(item, "DATAVERSION")
    if revision is None:
        return 1
    if revision < 1:
        raise DecodeError("DATAVERSION must be an integer ≥ 1")
    return revision


def _date_field(item: Mapping[str, Any], field: str) -> Any:
    text = _text(item, field)
    if text is None:
        return None
    try:
        return platform_date(text)
    except ValueError as exc:
        raise DecodeError(f"{field} {exc}") from None


def _time_field(item: Mapping[str, Any], field: str, *, required: bool) -> Any:
    text = _required(item, field) if required else _text(item, field)
    if text is None:
        return None
    try:
        return platform_datetime(text)
    except ValueError as exc:
        raise DecodeError(f"{field} {exc}") from None


def _certificate(item: Mapping[str, Any]) -> dict[str, Any] | None:
    valid_to_text = _text(item, "XK_YXQZI")
    long_term = valid_to_text in _LONG_TERM_TEXT
    valid_to = None if long_term else _date_field(item, "XK_YXQZI")
    if valid_to == LONG_TERM_SENTINEL:
        long_term, valid_to = True, None
    cert = {
        "number": _text(item, "RESULT_CODE"),
        "name": _text(item, "XK_XKZS"),
        "document_no": _text(item, "XK_WSH"),
        "document_name": _text(item, "XK_XKWS"),
        "valid_from": _date_field(item, "XK_YXQZ"),
        "valid_to": valid_to,
        "long_term": long_term,
        "issuer_code": _text(item, "XK_XKJGDM"),
    }
    if not long_term and all(v is None for k, v in cert.items() if k != "long_term"):
        return None
    return cert


def _commitment(item: Mapping[str, Any]) -> dict[str, Any] | None:
    text = _text(item, "PROMISE_TYPE")
    period = _whole_number(item, "PROMISE_PERIOD")
    if text is None:
        return None  # a period without a mode is not a commitment; nothing to supervise
    mode = _PROMISE_TYPES.get(text)
    if mode is None:
        raise DecodeError(
            f"PROMISE_TYPE {_show(text)} is not empty, 材料延期, 材料核验 or 事后核查"
        )
    return {"mode": mode, "period_days": period}


def _describe(exc: ValidationError) -> str:
    """Like ``describe_validation_error`` but each location is led by its native field name."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        msg = str(err["msg"]).removeprefix("Value error, ")
        native = NATIVE_FIELD_OF.get(loc) or NATIVE_FIELD_OF.get(loc.split(".", 1)[0], "?")
        parts.append(f"{native} ({loc}): {msg}" if loc else f"{native}: {msg}")
    return "; ".join(parts)


def decode_item(item: Mapping[str, Any]) -> tuple[ApprovalDecided, int, Classification]:
    """One native 办件 → (payload, revision from DATAVERSION, classification from MJ)."""
    describe = _text(item, "TRANSACT_DESCRIBE")
    card_type = _required(item, "APPLY_CARDTYPE")
    if card_type.isdecimal():
        card_type = card_type.zfill(3)  # "001" sent as the number 1
    apply_type = _required(item, "APPLY_TYPE")
    kind = _APPLY_TYPES.get(apply_type)
    if kind is None:
        raise DecodeError(f"APPLY_TYPE {_show(apply_type)} is not 1, 2 or 3")
    data: dict[str, Any] = {
        "case_no": _required(item, "PROJID"),
        "item": {"code": _required(item, "SERVICECODE"), "name": _required(item, "SERVICENAME")},
        "region": _required(item, "AREACODE"),
        "applicant": {
            "kind": kind,
            "name": _required(item, "APPLYNAME"),
            "id_type": _CARD_TYPES.get(card_type, IdType.other),
            "business_registration_no": _text(item, "APPLY_REGNO"),
            "id_number": _required(item, "APPLY_CARDNUMBER"),
            "legal_representative": _text(item, "LEGALMAN"),
            "phone": _text(item, "CONTACT_PHONE"),
        },
        "received_at": _time_field(item, "RECEIVETIME", required=False),
        "decided_at": _time_field(item, "TRANSACT_TIME", required=True),
        "result": _result(item, describe),
        "result_description": describe,
        "certificate": _certificate(item),
        "commitment": _commitment(item),
    }
    revision = _revision(item)
    classification = _classification(item)
    try:
        payload = ApprovalDecided.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(_describe(exc)) from None
    return payload, revision, classification


def to_envelope(raw: Any, *, source: str) -> Envelope:
    """A native item (object or JSON string) → its canonical envelope; ``DecodeError`` on any bad input."""
    item = load_item(raw)
    payload, revision, classification = decode_item(item)
    try:
        return Envelope.wrap(
            payload,
            source=source,
            revision=revision,
            classification=classification,
            region=payload.region,
            correlation_id=correlation_id_of(payload),
        )
    except ValidationError as exc:
        raise DecodeError(describe_validation_error(exc, prefix="envelope")) from None
