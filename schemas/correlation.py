"""The closed loop's correlation id: one derivation from the 办件编号, shared by every adapter.

Every message about one approval — the decision, the supervision task's claim, inspections, results, breach
reports, revocation advice, the approval bureau's feedback, pre-approval confirmations, guidance, site
inspections, the 双公示 records it leads to — carries the same ``correlation_id``, so ``shenguan trace`` and the
deadline tracker can find the whole loop. Each platform names the approval in its own words (``PROJID`` on the
政务服务一体化平台, ``approvalNo`` on 互联网+监管, ``SPSXSLBM`` in the 工程建设 前置库), and each adapter decodes that
into a payload field. If every adapter built the id its own way, one platform's stray blank or 全角 digit would
split a loop in two; so the derivation lives here, once.

The id *is* the normalised 办件编号 (blanks trimmed, 全角 letters and digits made ASCII, upper case), not a hash
of it: operators search by the number they see on the case file, the console links loops by it, and stores
written before this module existed already hold exactly this value for ASCII numbers.

A message that belongs to no approval (a penalty found on a routine inspection, a general guidance question)
is a loop of its own: its id is its business key, so a request and its answer (keyed alike) still share one.
"""

from __future__ import annotations

from typing import Any

from schemas.envelope import EventPayload
from schemas.identifiers import normalise_code

__all__ = ["CASE_NO_FIELDS", "approval_case_no", "correlation_id_of", "loop_id"]

# Payload fields that name the approval a message belongs to, in the order they are looked at:
# ``case_no`` on the approval itself (and on 行政许可 / 告知承诺书 records derived from it), ``approval_case_no``
# on everything that happens to an approval afterwards, ``related_case_no`` on a penalty about one.
CASE_NO_FIELDS: tuple[str, ...] = ("case_no", "approval_case_no", "related_case_no")


def loop_id(case_no: str) -> str:
    """The correlation id of the closed loop of the approval numbered ``case_no`` (its 办件编号).

    ``ValueError`` for a blank number: a loop without a name would gather every unnamed message.
    """
    value = normalise_code(case_no)
    if not value:
        raise ValueError("办件编号 is blank: it cannot name a closed loop")
    return value


def approval_case_no(payload: EventPayload) -> str | None:
    """The 办件编号 of the approval ``payload`` belongs to, if it names one."""
    for name in CASE_NO_FIELDS:
        value: Any = getattr(payload, name, None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def correlation_id_of(payload: EventPayload) -> str:
    """The correlation id of ``payload``: its approval's loop, else a loop of its own (its business key)."""
    case_no = approval_case_no(payload)
    return loop_id(case_no) if case_no is not None else payload.business_key()
