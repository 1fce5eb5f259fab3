"""Pure mapping between the canonical ``supervision.task.claimed`` and 互联网+监管's claim objects (camelCase).

The platform speaks of claims in two places, with one field set: its event feed reports the claims made on
it (``eventType = TASK_CLAIMED``), and ``POST api/v1/task-claims`` takes a claim made elsewhere (a default
claim, 默认认领, that the gateway recorded when a deadline ran out). ``decode_claim`` reads either shape;
``encode_claim`` writes the second and is its exact inverse, so a round trip proves no field is dropped.

Values are never echoed in reasons: a reason is stored with the rejected record and logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from adapters.errors import DecodeError
from adapters.native import SHANGHAI, blank_to_none, platform_date, platform_datetime
from schemas import ClaimMode, Envelope, SupervisionTaskClaimed, correlation_id_of, describe_validation_error

__all__ = ["CLAIM_EVENT", "CREATED_EVENT", "decode_claim", "encode_claim", "to_envelope"]

CLAIM_EVENT = "TASK_CLAIMED"
CREATED_EVENT = "TASK_CREATED"

_MODE = {ClaimMode.manual: "MANUAL", ClaimMode.default: "DEFAULT"}
_MODE_OF = {v: k for k, v in _MODE.items()}

# Canonical field → native field, so a model rule's complaint names what the platform's operator sees.
_NATIVE = {
    "task_no": "taskNo",
    "approval_case_no": "approvalNo",
    "supervision_matter_code": "supervisionMatterCode",
    "department_name": "department",
    "department_code": "departmentCode",
    "region": "areaCode",
    "claimed_at": "claimedAt",
    "mode": "claimMode",
    "auto": "auto",
    "claim_deadline": "claimDeadline",
}


def encode_claim(envelope: Envelope) -> dict[str, Any]:
    """The ``claim`` object of a task-claims request for a ``supervision.task.claimed`` envelope."""
    payload = envelope.payload()
    if not isinstance(payload, SupervisionTaskClaimed):
        raise TypeError(f"hlwjg task claims encode supervision.task.claimed, not {envelope.type}")
    return {
        "taskNo": payload.task_no,
        "approvalNo": payload.approval_case_no,
        "supervisionMatterCode": payload.supervision_matter_code,
        "department": payload.department_name,
        "departmentCode": payload.department_code,
        "areaCode": payload.region,
        "claimMode": _MODE[payload.mode],
        "claimedAt": payload.claimed_at.astimezone(SHANGHAI).isoformat(),
        "auto": payload.auto,
        "claimDeadline": payload.claim_deadline.isoformat() if payload.claim_deadline else None,
        "dataVersion": envelope.revision,
        "correlationId": envelope.correlation_id,
    }


def _text(item: Mapping[str, Any], field: str) -> str | None:
    value = blank_to_none(item.get(field))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DecodeError(f"{field} has wrong type {type(value).__name__}, expected a string")
    try:
        return str(value).strip()
    except ValueError:  # an integer too long to render (int max str digits)
        raise DecodeError(f"{field} is not a plausible value (number too long)") from None


def decode_claim(item: Any) -> SupervisionTaskClaimed:
    """A claim object (feed event or request ``claim``) → the canonical payload; ``DecodeError`` naming the field."""
    if not isinstance(item, Mapping):
        raise DecodeError(f"expected a JSON object for a task claim, got {type(item).__name__}")
    mode_text = _text(item, "claimMode")
    if mode_text not in _MODE_OF:
        raise DecodeError("claimMode must be one of DEFAULT, MANUAL")
    claimed_text = _text(item, "claimedAt")
    if claimed_text is None:
        raise DecodeError("claimedAt is missing")
    try:
        claimed_at = platform_datetime(claimed_text)
    except ValueError as exc:
        raise DecodeError(f"claimedAt {exc}") from None
    deadline_text = _text(item, "claimDeadline")
    try:
        deadline = platform_date(deadline_text) if deadline_text is not None else None
    except ValueError as exc:
        raise DecodeError(f"claimDeadline {exc}") from None
    auto = item.get("auto", False)
    if auto is None:
        auto = False
    if not isinstance(auto, bool):
        raise DecodeError("auto must be true or false")
    data = {
        "task_no": _text(item, "taskNo"),
        "approval_case_no": _text(item, "approvalNo"),
        "supervision_matter_code": _text(item, "supervisionMatterCode"),
        "department_name": _text(item, "department"),
        "department_code": _text(item, "departmentCode"),
        "region": _text(item, "areaCode"),
        "claimed_at": claimed_at,
        "mode": _MODE_OF[mode_text],
        "auto": auto,
        "claim_deadline": deadline,
    }
    try:
        return SupervisionTaskClaimed.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(_in_native_terms(describe_validation_error(exc))) from None


def _in_native_terms(reason: str) -> str:
    for canonical, native in _NATIVE.items():
        if reason.startswith(canonical):
            return f"{native} ({canonical}){reason[len(canonical) :]}"
    return reason


def to_envelope(item: Any, *, source: str, revision: int = 1) -> Envelope:
    """A claim in the platform's words → its envelope, in the approval's closed loop (``correlation_id``).

    The loop is named by the approval's 办件编号 (``approvalNo``), through the derivation every adapter shares
    (``schemas.correlation``), so the claim lands in the same loop as the approval that created the task.
    """
    payload = decode_claim(item)
    return Envelope.wrap(
        payload,
        source=source,
        revision=revision,
        region=payload.region,
        correlation_id=correlation_id_of(payload),
    )
