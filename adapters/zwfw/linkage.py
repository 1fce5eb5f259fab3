"""The 政务服务一体化平台's 审管联动 messages (linkage), both ways, in its own conventions.

Besides the 办件 feed, the platform exchanges every other message of an approval's closed loop with the
supervision side. It *takes* at its linkage inbox (``POST api/v1/linkage/inbox``) what supervision reports — task
claims, inspections (检查行为), results, 告知承诺 breaches, revocation advice (撤销意见), 批前确认 answers, guidance,
site inspection reports, penalty decisions — and it *reports* in its linkage feed (``GET api/v1/linkage/changes``)
what the approval bureau sends back: feedback (处理反馈), 批前确认 and site inspection requests, guidance.

Every message is one flat object in the platform's usual style: ``MSGTYPE`` says what it is, the fields are
UPPER_SNAKE strings, times are naive Beijing ``yyyy-MM-dd HH:mm:ss``, absent values ``""``, and ``DATAVERSION``
numbers a re-report (重报) exactly as on 办件. The shared fields keep the platform's names: ``PROJID`` for the
办件编号 (which is what puts a message in its approval's loop), ``AREACODE``, ``DEPT_NAME``/``DEPT_CODE``. One
table (``MSGTYPES``) names each type; the fields follow one dialect (``adapters.dialect``), so ``decode_item`` is
the exact inverse of ``encode_item`` for every type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from adapters.dialect import Dialect, decode, encode, upper_snake
from adapters.errors import DecodeError
from adapters.masking import mask_text
from adapters.zwfw.codec import load_item
from schemas import Envelope, correlation_id_of, describe_validation_error, payload_model

__all__ = ["APPROVAL_SIDE", "DIALECT", "MSGTYPES", "MSGTYPE_OF", "decode_item", "encode_item", "to_envelope"]

DIALECT = Dialect(
    "zwfw",
    upper_snake,
    renames={
        "approval_case_no": "PROJID",
        "case_no": "PROJID",
        "related_case_no": "PROJID",
        "region": "AREACODE",
        "department_name": "DEPT_NAME",
        "department_code": "DEPT_CODE",
    },
    naive_times=True,
    strings_only=True,
)

# MSGTYPE → canonical event type.
MSGTYPES: dict[str, str] = {
    "TASK_CLAIM": "supervision.task.claimed",
    "INSPECTION": "supervision.inspection.reported",
    "SUPERVISION_RESULT": "supervision.result.reported",
    "COMMITMENT_BREACH": "commitment.breach.reported",
    "REVOCATION_ADVICE": "license.revocation.advised",
    "FEEDBACK": "approval.feedback.sent",
    "PREAPPROVAL_REQUEST": "preapproval.confirmation.requested",
    "PREAPPROVAL_ANSWER": "preapproval.confirmation.answered",
    "GUIDANCE_REQUEST": "guidance.requested",
    "GUIDANCE_ANSWER": "guidance.answered",
    "SITE_INSPECTION_REQUEST": "site_inspection.requested",
    "SITE_INSPECTION_REPORT": "site_inspection.reported",
    "PENALTY": "credit.penalty.published",
}
MSGTYPE_OF: dict[str, str] = {v: k for k, v in MSGTYPES.items()}
# What the approval bureau itself sends (its linkage feed); the rest it takes in.
APPROVAL_SIDE = ("FEEDBACK", "PREAPPROVAL_REQUEST", "GUIDANCE_REQUEST", "GUIDANCE_ANSWER", "SITE_INSPECTION_REQUEST")


def encode_item(envelope: Envelope) -> dict[str, Any]:
    """The native linkage item of an envelope: ``MSGTYPE``, its fields, ``DATAVERSION``."""
    msgtype = MSGTYPE_OF.get(envelope.type)
    if msgtype is None:
        raise TypeError(f"zwfw linkage does not carry {envelope.type}")
    return {"MSGTYPE": msgtype, **encode(envelope.payload(), DIALECT), "DATAVERSION": str(envelope.revision)}


def _revision(item: Mapping[str, Any]) -> int:
    raw = item.get("DATAVERSION")
    if raw in (None, ""):
        return 1
    try:  # str() of an absurdly long integer raises ValueError: still just a bad DATAVERSION
        text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
        if text.isdigit() and len(text) < 10 and int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise DecodeError("DATAVERSION must be an integer ≥ 1")


def decode_item(raw: Any) -> tuple[Any, int]:
    """A native linkage item (object or JSON string) → (canonical payload, revision); ``DecodeError`` otherwise."""
    item = load_item(raw)
    msgtype = item.get("MSGTYPE")
    if not isinstance(msgtype, str) or msgtype.strip() not in MSGTYPES:
        shown = repr(mask_text(msgtype[:32])) if isinstance(msgtype, str) else "missing"
        raise DecodeError(f"MSGTYPE {shown} is not one of {', '.join(MSGTYPES)}")
    revision = _revision(item)
    return decode(payload_model(MSGTYPES[msgtype.strip()]), item, DIALECT), revision


def to_envelope(raw: Any, *, source: str) -> Envelope:
    """A native linkage item → its envelope, in the loop of the approval it names (``PROJID``)."""
    payload, revision = decode_item(raw)
    try:
        return Envelope.wrap(
            payload,
            source=source,
            revision=revision,
            region=getattr(payload, "region", None),
            correlation_id=correlation_id_of(payload),
        )
    except ValidationError as exc:
        raise DecodeError(describe_validation_error(exc, prefix="envelope")) from None
