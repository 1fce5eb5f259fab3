"""The ``Adapter`` protocol: the one point of cut-off between the gateway and a platform.

The gateway never reaches past these methods. What crosses is small on purpose:

- into a source adapter: a cursor and a page size; out: native records (``RawRecord``) and the next
  cursor. ``decode`` turns one native record into canonical envelopes or raises ``DecodeError``.
  A source that must be told what became of its records (a 前置库 whose rows are marked as read)
  also implements ``acknowledge``, which the poller calls once the page is durably stored.
- into a destination adapter: a canonical ``Envelope`` and a deterministic idempotency key; out: a
  ``DeliveryReceipt`` or one of the taxonomy's errors (``adapters.errors``). The adapter knows nothing
  of stores, queues or retry policy: it makes one attempt and says how it went.
- into a batch destination adapter (``BatchDestinationAdapter``): many (envelope, key) pairs at once; out:
  one result per pair, in order — partial success is a normal answer, not an error.

Adapters are built by ``from_config(name, options)`` with the options of their config section, and
advertise what they can do in ``capabilities`` so the relay can choose safely (e.g. whether a timed-out
send may be resent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from adapters.errors import AdapterError
from schemas import Envelope

__all__ = [
    "AcknowledgingSource",
    "Adapter",
    "BatchDestinationAdapter",
    "BatchResult",
    "Capabilities",
    "DeliveryReceipt",
    "DestinationAdapter",
    "Direction",
    "PollPage",
    "RawRecord",
    "RecordOutcome",
    "SourceAdapter",
]


class Direction(StrEnum):
    source = "source"
    destination = "destination"
    both = "both"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter can do; the relay's safety decisions rest on these flags.

    ``idempotent_receiver``: the receiver honours the idempotency key, so a resend after an unknown
    outcome cannot create a second record. ``status_query``: ``query_status`` can tell whether the
    receiver already holds a delivery. With neither, an unknown outcome becomes ``uncertain`` and waits
    for an operator instead of being resent blindly.

    ``max_batch_size``: more than 1 means the receiver takes many records per request and the adapter is a
    ``BatchDestinationAdapter``; the relay then delivers in batches of up to this many (the destination's
    ``batch_size`` setting may choose fewer).
    """

    direction: Direction
    event_types: tuple[str, ...] = ()
    idempotent_receiver: bool = False
    status_query: bool = False
    max_batch_size: int = 1


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One native record as the source gave it, before any interpretation.

    ``payload`` is whatever the platform sent for one item: a parsed JSON object, a JSON string, raw
    bytes of XML. ``position`` says where it sat in the feed, for the rejected-input store.
    """

    payload: Any
    position: str | None = None


@dataclass(frozen=True, slots=True)
class PollPage:
    """A page of a source's change feed. ``next_cursor`` is stored with the page's messages, atomically."""

    records: Sequence[RawRecord]
    next_cursor: str | None
    has_more: bool = False


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What the gateway durably did with one record of a page: stored, or rejected with ``reason``.

    "Stored" covers every verdict of the dedup ledger (new, revision, duplicate, stale): the gateway holds
    the fact either way, so the source may consider the record read.
    """

    record: RawRecord
    rejected: str | None = None  # the rejection reason (names the field, never echoes personal data)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Proof that the receiver holds the message; ``remote_id`` is its own id for it (e.g. ``taskNo``)."""

    remote_id: str | None = None
    replayed: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """What every adapter is: a named, configured connection to one platform."""

    name: str
    version: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Build from the options of the adapter's config section; raise ``ValueError`` on bad options."""
        ...

    async def aclose(self) -> None:
        """Release connections. Called once at shutdown."""
        ...


@runtime_checkable
class SourceAdapter(Adapter, Protocol):
    """An adapter the gateway polls for native records."""

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        """Fetch the records after ``cursor`` (``None``: from the start).

        Raise ``RetryableError`` when the page could not be read; the cursor is then not advanced.
        """
        ...

    def decode(self, record: RawRecord) -> list[Envelope]:
        """Native record → canonical envelopes. Pure; raise ``DecodeError`` with a reason naming the field."""
        ...


@runtime_checkable
class AcknowledgingSource(SourceAdapter, Protocol):
    """A source that is told, after each stored page, what became of every record in it.

    Exchange databases (前置库) work this way: the reader marks each row it has taken (accepted, or failed
    with a reason) so the writing system knows. The gateway calls ``acknowledge`` only after the page,
    its rejections and ``page.next_cursor`` were committed together, so a mark never runs ahead of the
    store. A crash between that commit and the marking is the adapter's to repair: the next ``poll`` gets
    the committed cursor and must mark what the cursor says was taken, without handing it out again.
    """

    async def acknowledge(self, page: PollPage, outcomes: Sequence[RecordOutcome]) -> None:
        """Report the fate of each record of ``page`` (one outcome per record, in page order).

        Must not raise for a failure to write the marks: keep them and retry before the next read. Any
        exception is logged by the poller and otherwise ignored — the page is stored whatever happens here.
        """
        ...


@runtime_checkable
class DestinationAdapter(Adapter, Protocol):
    """An adapter the relay delivers canonical messages to."""

    def encode(self, envelope: Envelope) -> Any:
        """Canonical envelope → the native body this platform receives. Pure."""
        ...

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        """Make one delivery attempt.

        ``idempotency_key`` is the same on every attempt of one delivery; an idempotent receiver must be
        given it (e.g. as ``requestId``). Raise ``RetryableError``, ``PermanentError`` or
        ``OutcomeUnknownError`` — never a bare transport exception.
        """
        ...

    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        """Ask the receiver whether it holds this delivery: a receipt if it does, ``None`` if it does not.

        Only called when ``capabilities.status_query`` is true. Raise ``RetryableError`` when the question
        itself could not be answered.
        """
        ...


BatchResult = DeliveryReceipt | AdapterError
"""What became of one record of a batch: a receipt, or the taxonomy error that record alone earned."""


@runtime_checkable
class BatchDestinationAdapter(DestinationAdapter, Protocol):
    """A destination whose receiver takes many records per request and judges each one on its own.

    The relay uses it when ``capabilities.max_batch_size > 1``; ``deliver`` (a batch of one) remains for
    everything else that speaks to a single delivery (the conformance kit, paper reconciliation).
    """

    async def deliver_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult]:
        """Send ``items`` (envelope, idempotency key) in one attempt; one result per item, in order.

        A record the receiver refused for its content is a ``PermanentError`` *result* (its reason is the
        receiver's), never a raised one: the rest of the batch stands. Raise only when the batch as a whole
        failed — ``RetryableError`` (nothing applied), ``OutcomeUnknownError`` (some or all may have been
        applied: a dropped connection, an unreadable reply) or ``PermanentError`` (the request as such was
        refused). Each record's key must reach the receiver, so a record resent in another batch is still
        recognised.
        """
        ...

    async def query_status_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult | None]:
        """What the receiver made of each item, one answer per item: a receipt (it holds the record), a
        ``PermanentError`` (it judged and refused it, with its reason) or ``None`` (it never saw it).

        Only called when ``capabilities.status_query`` is true: it settles a batch whose reply was lost
        without sending anything again. Raise ``RetryableError`` when the question could not be answered.
        """
        ...
