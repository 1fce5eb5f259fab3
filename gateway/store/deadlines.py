"""The deadline records the store keeps, and how both backends turn them into rows and back.

Pure on purpose (no SQL dialect, no rules): ``gateway.deadlines`` decides *which* deadlines open and close,
the backends persist them, and this module is the one description of a deadline row they share — so SQLite
and PostgreSQL cannot drift apart on what a column means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.store.base import IngestResult, Rejection, Router
    from schemas import Envelope

__all__ = [
    "DEADLINE_COLUMNS",
    "FEED_KINDS",
    "OPENING_COLUMNS",
    "Closing",
    "DeadlineKind",
    "DeadlineOutcome",
    "DeadlineStore",
    "Opening",
    "closing_filter",
    "closing_outcome",
    "deadline_dict",
    "detail_of",
    "opening_values",
]

#: Audit kinds the deadline tracker follows: a message stored (or routed later), a delivery completed.
FEED_KINDS = ("message.accepted", "message.routed", "delivery.delivered", "paper.confirmed")


class DeadlineKind(StrEnum):
    """The statutory deadlines of DESIGN §1 (and the windows of 告知承诺)."""

    push = "push"  # 办结 record pushed to the supervision side
    claim = "claim"  # 认领
    commitment = "commitment"  # 告知承诺 period (window)
    revocation_advice = "revocation_advice"  # 撤销意见 window after the commitment period
    preapproval = "preapproval"  # 批前确认 answered
    result = "result"  # supervision result pushed back
    feedback = "feedback"  # 审批局 feedback after a result or revocation advice
    guidance = "guidance"  # 业务指导 answered
    credit = "credit"  # 双公示 record published


class DeadlineOutcome(StrEnum):
    on_time = "on_time"
    late = "late"
    default = "default"  # 默认认领: nobody claimed the task in time
    elapsed = "elapsed"  # a window ran out (nothing was due)


@dataclass(frozen=True, slots=True)
class Opening:
    """A deadline to record (idempotent on ``correlation_id``, ``kind``, ``subject``)."""

    correlation_id: str
    kind: DeadlineKind
    subject: str
    started_on: date
    working_days: int
    due_on: date
    estimated: bool
    basis: str
    opened_by: str
    region: str | None = None
    item_code: str | None = None
    item_name: str | None = None
    department_name: str | None = None
    department_code: str | None = None
    delivery_id: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Closing:
    """What closes open deadlines: the one tracking ``delivery_id``, the one of ``kind`` with ``subject``, or those
    of ``kind`` in the loop. ``outcome`` ``None`` means on time or late by ``closed_on`` against the due date."""

    kind: DeadlineKind
    closed_by: str
    closed_at: float
    closed_on: date
    correlation_id: str | None = None
    subject: str | None = None
    delivery_id: int | None = None
    outcome: DeadlineOutcome | None = None
    department_name: str | None = None
    department_code: str | None = None


#: Columns of ``deadlines`` in the order ``deadline_dict`` reads them.
DEADLINE_COLUMNS = (
    "id",
    "correlation_id",
    "kind",
    "subject",
    "state",
    "outcome",
    "started_on",
    "working_days",
    "due_on",
    "estimated",
    "basis",
    "region",
    "item_code",
    "item_name",
    "department_name",
    "department_code",
    "delivery_id",
    "opened_by",
    "opened_at",
    "closed_by",
    "closed_at",
    "closed_on",
    "escalated_at",
    "detail",
)

#: Columns written when a deadline opens, in the order of ``opening_values``.
OPENING_COLUMNS = (
    "correlation_id",
    "kind",
    "subject",
    "state",
    "started_on",
    "working_days",
    "due_on",
    "estimated",
    "basis",
    "region",
    "item_code",
    "item_name",
    "department_name",
    "department_code",
    "delivery_id",
    "opened_by",
    "opened_at",
    "detail",
)


def opening_values(o: Opening, now: float) -> tuple[Any, ...]:
    """The row of a new, open deadline (dates as ISO text: they compare as dates in both backends)."""
    return (
        o.correlation_id,
        o.kind.value,
        o.subject,
        "open",
        o.started_on.isoformat(),
        o.working_days,
        o.due_on.isoformat(),
        bool(o.estimated),
        o.basis,
        o.region,
        o.item_code,
        o.item_name,
        o.department_name,
        o.department_code,
        o.delivery_id,
        o.opened_by,
        now,
        json.dumps(dict(o.detail), ensure_ascii=False, sort_keys=True),
    )


def deadline_dict(columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A row as a dict: ``estimated`` as a bool, ``detail`` parsed."""
    out = dict(zip(columns, row, strict=True))
    if "estimated" in out:
        out["estimated"] = bool(out["estimated"])
    if isinstance(out.get("detail"), str):
        out["detail"] = json.loads(out["detail"])
    return out


def closing_outcome(c: Closing, due_on: str) -> str:
    """The outcome a closing gives a deadline due on ``due_on`` (ISO): forced, or on time / late by the day."""
    if c.outcome is not None:
        return c.outcome.value
    return (DeadlineOutcome.on_time if c.closed_on.isoformat() <= due_on else DeadlineOutcome.late).value


def closing_filter(c: Closing) -> tuple[str, tuple[Any, ...]]:
    """Which open deadlines a closing closes, as a column test and its values (``?`` placeholders)."""
    if c.delivery_id is not None:
        return "kind = ? AND delivery_id = ?", (c.kind.value, c.delivery_id)
    if c.subject is not None:
        return "kind = ? AND subject = ?", (c.kind.value, c.subject)
    if c.correlation_id is not None:
        return "kind = ? AND correlation_id = ?", (c.kind.value, c.correlation_id)
    raise ValueError("a closing names a delivery, a subject or a loop")


def detail_of(value: Any) -> Mapping[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


class DeadlineStore(Protocol):
    """What the deadline tracker needs from a store (both backends implement it); each call is one transaction."""

    async def deadline_position(self) -> int: ...

    async def deadline_feed(
        self, *, after_seq: int, types: Sequence[str], limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def record_deadlines(
        self,
        opens: Sequence[Opening],
        closes: Sequence[Closing],
        *,
        after_seq: int | None = None,
        to_seq: int | None = None,
    ) -> tuple[int, int] | None: ...

    async def open_deadlines(self, *, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]: ...

    async def redate_deadlines(self, changes: Sequence[tuple[int, str, bool]]) -> int: ...

    async def escalate_to_paper(self, deadline_id: int, delivery_id: int, reason: str) -> bool: ...

    async def closing_messages(
        self, types: Sequence[str], *, business_key: str | None = None, correlation_id: str | None = None
    ) -> list[str]: ...

    async def deadlines(
        self, *, due_from: str | None = None, due_to: str | None = None, correlation_id: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def ingest_page(
        self,
        source: str,
        envelopes: Sequence[Envelope],
        rejections: Sequence[Rejection],
        cursor: str | None,
        router: Router,
    ) -> IngestResult: ...

    async def chain_audit(self) -> int: ...
