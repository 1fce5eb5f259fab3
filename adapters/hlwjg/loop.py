"""互联网+监管's closed-loop messages: its feed events and its intake, both ways, in the platform's camelCase.

Besides approval records and claims, the platform exchanges every other message of an approval's loop. It
*reports* in its event feed what supervision did — ``INSPECTION_REPORTED`` (检查行为), ``RESULT_REPORTED``,
``BREACH_REPORTED``, ``REVOCATION_ADVISED`` (撤销意见), ``PREAPPROVAL_ANSWERED``, ``GUIDANCE_REQUESTED`` /
``GUIDANCE_ANSWERED``, ``SITE_INSPECTION_REPORTED`` — and it *takes* at ``POST api/v1/loop-messages`` what the
approval side sends: ``FEEDBACK_SENT``, ``PREAPPROVAL_REQUESTED``, ``GUIDANCE_REQUESTED`` / ``GUIDANCE_ANSWERED``,
``SITE_INSPECTION_REQUESTED``. One table (``KINDS``) names each kind; the fields follow the platform's
conventions through one dialect (``adapters.dialect``), with the names it has always used for the shared ones
(``approvalNo``, ``taskNo``, ``areaCode``, ``department``, ``checkTime``, ``checkResult``, ``superviseObjects``).

A result that ended in a 行政处罚 carries the decision as a ``penalty`` object: it becomes a second envelope,
``credit.penalty.published`` (the canonical penalty fact, routed to the credit platform for 双公示), caused by the
result and in the same loop. The result keeps only the decision number, so the penalty is one fact, not two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.dialect import Dialect, camel_case, decode, encode
from adapters.errors import DecodeError
from schemas import (
    CreditPenaltyPublished,
    Envelope,
    EventPayload,
    SupervisionResultReported,
    correlation_id_of,
    payload_model,
)

__all__ = ["DIALECT", "KINDS", "KIND_OF", "decode_event", "encode_message"]

DIALECT = Dialect(
    "hlwjg",
    camel_case,
    renames={
        "approval_case_no": "approvalNo",
        "related_case_no": "approvalNo",
        "department_name": "department",
        "region": "areaCode",
        "checked_at": "checkTime",
        "result": "checkResult",
        "objects": "superviseObjects",
    },
)

# Native kind → canonical event type, for the feed (what supervision reports) and the intake (what it is sent).
KINDS: dict[str, str] = {
    "INSPECTION_REPORTED": "supervision.inspection.reported",
    "RESULT_REPORTED": "supervision.result.reported",
    "BREACH_REPORTED": "commitment.breach.reported",
    "REVOCATION_ADVISED": "license.revocation.advised",
    "FEEDBACK_SENT": "approval.feedback.sent",
    "PREAPPROVAL_REQUESTED": "preapproval.confirmation.requested",
    "PREAPPROVAL_ANSWERED": "preapproval.confirmation.answered",
    "GUIDANCE_REQUESTED": "guidance.requested",
    "GUIDANCE_ANSWERED": "guidance.answered",
    "SITE_INSPECTION_REQUESTED": "site_inspection.requested",
    "SITE_INSPECTION_REPORTED": "site_inspection.reported",
}
KIND_OF: dict[str, str] = {v: k for k, v in KINDS.items()}
_PENALTY = "penalty"


def encode_message(envelope: Envelope) -> dict[str, Any]:
    """The body part of ``POST api/v1/loop-messages`` for one envelope: ``{"kind", "dataVersion", …fields}``."""
    kind = KIND_OF.get(envelope.type)
    if kind is None:
        raise TypeError(f"hlwjg loop messages do not include {envelope.type}")
    return {
        "kind": kind,
        **encode(envelope.payload(), DIALECT),
        "dataVersion": envelope.revision,
        "correlationId": envelope.correlation_id,
    }


def _revision(item: Mapping[str, Any]) -> int:
    version = item.get("dataVersion", 1)
    if version in (None, ""):
        return 1
    try:  # str() of an absurdly long integer raises ValueError: still just a bad dataVersion
        text = str(version).strip() if isinstance(version, int | str) and not isinstance(version, bool) else ""
        if text.isdigit() and len(text) < 10 and int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise DecodeError("dataVersion must be an integer ≥ 1")


def _wrap(payload: EventPayload, *, source: str, revision: int, causation_id: str | None = None) -> Envelope:
    return Envelope.wrap(
        payload,
        source=source,
        revision=revision,
        region=getattr(payload, "region", None),
        correlation_id=correlation_id_of(payload),
        causation_id=causation_id,
    )


def _penalty(item: Mapping[str, Any]) -> CreditPenaltyPublished | None:
    raw = item.get(_PENALTY)
    if raw in (None, "", {}):
        return None
    if not isinstance(raw, Mapping):
        raise DecodeError(f"penalty must be a JSON object, got {type(raw).__name__}")
    # The penalty is about the result's approval and region unless it says otherwise.
    inherited = {k: item[k] for k in ("approvalNo", "areaCode") if item.get(k) not in (None, "") and not raw.get(k)}
    return decode(CreditPenaltyPublished, {**raw, **inherited}, DIALECT, where=_PENALTY)  # type: ignore[no-any-return]


def decode_event(kind: str, item: Mapping[str, Any], *, source: str) -> list[Envelope]:
    """One loop event of kind ``kind`` (a key of ``KINDS``) → its envelope, and a result's penalty after it."""
    model = payload_model(KINDS[kind])
    revision = _revision(item)
    penalty = _penalty(item) if kind == "RESULT_REPORTED" else None
    fields = dict(item)
    if penalty is not None:
        named = fields.get("penaltyDecisionNo")
        if named in (None, ""):
            fields["penaltyDecisionNo"] = penalty.decision_no
        elif str(named).strip() != penalty.decision_no:
            raise DecodeError("penaltyDecisionNo (penalty_decision_no) differs from penalty.decisionNo")
    payload = decode(model, fields, DIALECT)
    envelope = _wrap(payload, source=source, revision=revision)
    if penalty is None:
        return [envelope]
    assert isinstance(payload, SupervisionResultReported)
    return [envelope, _wrap(penalty, source=source, revision=revision, causation_id=envelope.id)]
