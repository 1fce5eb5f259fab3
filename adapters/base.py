"""The ``Adapter`` protocol: the one point of cut-off between the gateway and a platform.

The gateway never reaches past these methods. What crosses is small on purpose:

- into a source adapter: a cursor and a page size; out: native records (``RawRecord``) and the next
  cursor. ``decode`` turns one native record into canonical envelopes or raises ``DecodeError``.
- into a destination adapter: a canonical ``Envelope`` and a deterministic idempotency key; out: a
  ``DeliveryReceipt`` or one of the taxonomy's errors (``adapters.errors``). The adapter knows nothing
  of stores, queues or retry policy: it makes one attempt and says how it went.

Adapters are built by ``from_config(name, options)`` with the options of their config section, and
advertise what they can do in ``capabilities`` so the relay can choose safely (e.g. whether a timed-out
send may be resent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from schemas import Envelope

__all__ = [
    "Adapter",
    "Capabilities",
    "DeliveryReceipt",
    "DestinationAdapter",
    "Direction",
    "PollPage",
    "RawRecord",
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
    """

    direction: Direction
    event_types: tuple[str, ...] = ()
    idempotent_receiver: bool = False
    status_query: bool = False


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
