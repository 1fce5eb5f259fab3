"""The admin API's response and request bodies: one pydantic model per shape, so the published OpenAPI is exact.

Store rows are plain dicts with epoch-second times; ``from_row`` turns them into these models with aware
datetimes in Beijing time (the operators' clock) and personal data masked (see ``mask``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.masking import mask_text
from gateway.store.base import DeliveryState

__all__ = [
    "CST",
    "MAX_ID",
    "Attempt",
    "CalendarStatus",
    "CalendarYear",
    "DeliveryDetail",
    "DeliveryPage",
    "DeliverySummary",
    "DestinationOverview",
    "Health",
    "MappingStatus",
    "MappingVersion",
    "MessageDetail",
    "MessagePage",
    "MessageSummary",
    "Overview",
    "PaperConfirm",
    "PaperEvent",
    "PaperItem",
    "PaperRender",
    "PaperRendered",
    "PaperReturn",
    "Problem",
    "ReplayRequest",
    "ResolveRequest",
    "Trace",
    "WhoAmI",
    "allowed_actions",
    "mask",
    "when",
]

CST = timezone(timedelta(hours=8))
#: Largest id the API accepts: exact in JSON numbers everywhere (2^53 − 1), far beyond any store's ids.
MAX_ID = 2**53 - 1


def when(epoch: float | None) -> datetime | None:
    """Store time (epoch seconds) → aware datetime in Beijing time."""
    return None if epoch is None else datetime.fromtimestamp(float(epoch), tz=UTC).astimezone(CST)


def mask(value: Any) -> Any:
    """Personal data (身份证号, 手机号) masked in anything shown: payloads, error texts, notes."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


class Problem(BaseModel):
    """An error: what went wrong and, where there is one, what to do instead."""

    detail: str


class WhoAmI(BaseModel):
    name: str
    role: Literal["viewer", "operator"]


class Attempt(BaseModel):
    attempt: int = Field(description="1, 2, … over the delivery's whole life (a retry does not renumber)")
    started_at: datetime | None
    finished_at: datetime
    outcome: str = Field(description="the state the attempt led to")
    error_kind: str | None
    error: str | None


class PaperEvent(BaseModel):
    kind: str = Field(description="printed, confirmed, recalled, returned, electronic_success")
    at: datetime
    detail: dict[str, Any]


class DeliverySummary(BaseModel):
    model_config = ConfigDict(use_enum_values=True)

    id: int
    message_id: str
    destination: str
    channel: str
    state: DeliveryState
    attempts: int = Field(description="attempts made over the delivery's whole life")
    budget_used: int = Field(description="attempts counted against the current retry budget")
    next_attempt_at: datetime | None
    verify_first: bool = Field(description="the next attempt asks the receiver's status before sending")
    last_error: str | None
    last_error_kind: str | None
    remote_id: str | None
    idempotency_key: str
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    printed_at: datetime | None
    type: str
    business_key: str
    revision: int
    correlation_id: str
    actions: list[str] = Field(description="operator actions the current state allows")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DeliverySummary:
        return cls.model_validate(_delivery_fields(row))


class DeliveryDetail(DeliverySummary):
    attempt_log: list[Attempt]
    paper_events: list[PaperEvent]

    @classmethod
    def build(cls, row: dict[str, Any], paper_events: list[dict[str, Any]]) -> DeliveryDetail:
        attempts = [
            a | {"started_at": when(a["started_at"]), "finished_at": when(a["finished_at"]), "error": mask(a["error"])}
            for a in row["attempt_log"]
        ]
        events = [{"kind": e["kind"], "at": when(e["at"]), "detail": mask(e["detail"])} for e in paper_events]
        return cls.model_validate(_delivery_fields(row) | {"attempt_log": attempts, "paper_events": events})


def _delivery_fields(row: dict[str, Any]) -> dict[str, Any]:
    times = ("next_attempt_at", "created_at", "updated_at", "delivered_at", "printed_at")
    out = {k: v for k, v in row.items() if k != "attempt_log"}
    out |= {k: when(row.get(k)) for k in times}
    out["last_error"] = mask(row.get("last_error"))
    out["actions"] = allowed_actions(row)
    return out


def allowed_actions(row: dict[str, Any]) -> list[str]:
    """The operator actions a delivery's state allows (the console shows exactly these buttons)."""
    state = row["state"]
    if state == "dead":
        return ["retry", "replay"]
    if state == "uncertain":
        return ["resolve_delivered", "resolve_resend"]
    if state == "delivered":
        return ["replay"]
    if state == "paper_pending":
        recall = row.get("channel") != "paper" and row.get("printed_at") is None
        return ["paper_confirm", "paper_return", *(["paper_recall"] if recall else [])]
    return []


class DeliveryPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[DeliverySummary]


class MessageSummary(BaseModel):
    id: str
    type: str
    source: str
    business_key: str
    revision: int
    content_hash: str
    classification: str
    region: str | None
    correlation_id: str
    business_time: datetime
    received_at: datetime
    routed: bool
    deliveries: list[DeliverySummary]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MessageSummary:
        return cls.model_validate(_message_fields(row))


class MessageDetail(MessageSummary):
    envelope: dict[str, Any] = Field(description="the canonical envelope as stored, personal data masked")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MessageDetail:
        return cls.model_validate(_message_fields(row) | {"envelope": mask(row["envelope"])})


def _message_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "envelope"} | {
        "received_at": when(row["received_at"]),
        "business_time": datetime.fromisoformat(row["business_time"]),
        "deliveries": [_delivery_fields(d) for d in row["deliveries"]],
    }


class MessagePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[MessageSummary]


class Trace(BaseModel):
    """One closed loop (闭环): every message sharing a correlation id, in business-time order."""

    correlation_id: str
    messages: list[MessageSummary]


class DestinationOverview(BaseModel):
    name: str
    configured: bool = Field(description="false for a destination that only old deliveries still name")
    adapter: str | None
    breaker: str | None = Field(description="closed, open or half_open; null when the relay is not running")
    idempotent_receiver: bool | None
    status_query: bool | None
    counts: dict[str, int]
    oldest_pending: DeliverySummary | None = Field(description="the oldest delivery still waiting to go out")


class Overview(BaseModel):
    ready: bool
    messages: int
    rejected: int
    duplicates_suppressed: int
    unrouted: int
    deliveries: dict[str, int]
    destinations: list[DestinationOverview]


class Health(BaseModel):
    live: bool
    ready: bool
    instance: str
    error: str | None = None


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Literal["delivered", "resend"] = Field(
        description="delivered: the receiver holds it (checked by a person); resend: send it again"
    )


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str = Field(min_length=1, description="a configured destination")
    force: bool = Field(
        default=False,
        description="replay a delivered message to a receiver that does not honour idempotency keys "
        "(it may then hold two records)",
    )


class PaperItem(BaseModel):
    model_config = ConfigDict(use_enum_values=True)

    id: int
    message_id: str
    state: DeliveryState
    destination: str
    type: str
    business_key: str
    revision: int
    classification: str
    printed: bool
    fallback: bool = Field(description="fell back from an electronic channel (can be recalled before printing)")
    flagged: bool = Field(description="the platform turned out to hold it: check before serving on paper")
    reason: str | None
    created_at: datetime
    delivered_at: datetime | None


class PaperRender(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=10_000, description="delivery ids; omit for every unprinted item"
    )


class PaperRendered(BaseModel):
    file: str | None = Field(
        description="file name inside the paper directory (GET /paper/files/{file}); null when nothing was unprinted"
    )
    rendered: list[int]


class PaperConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receiver: str = Field(min_length=1, max_length=200, description="who signed (收件人)")
    signed_at: datetime = Field(description="signing date and time; a naive value is Beijing time")
    method: str = Field(min_length=1, max_length=100, description="送达方式, e.g. 直接送达, 邮寄送达")
    note: str | None = Field(default=None, max_length=2000, description="备注")


class PaperReturn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why it could not be served")


class MappingVersion(BaseModel):
    version: int
    imported_at: datetime
    source: str
    digest: str
    row_count: int
    active: bool


class MappingStatus(BaseModel):
    active_version: int | None
    versions: list[MappingVersion]


class CalendarYear(BaseModel):
    year: int
    basis: Literal["loaded", "packaged", "estimated"] = Field(
        description="loaded: the operator's official schedule; packaged: chinesecalendar; estimated: weekends only"
    )


class CalendarStatus(BaseModel):
    directory: str
    loaded_years: list[int]
    years: list[CalendarYear] = Field(description="last year, this year and the next two")
