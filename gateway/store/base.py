"""The store interface: everything the gateway keeps, behind one protocol.

SQLite serves one process (a city); PostgreSQL will serve several instances. Both implement this
protocol and pass the same test suite. Each method is one transaction — that is the unit of
durability the gateway reasons about:

- ``ingest_page``: messages, dedup ledger, outbox deliveries, rejected input *and* the source cursor,
  atomically. A page is either entirely stored with its cursor or not at all, so a crash re-reads it,
  and the ledger turns the re-read into suppressed duplicates.
- ``lease_due``: due deliveries become ``in_flight`` under this instance's lease.
- ``complete``: many attempts' outcomes in one commit (group commit), each guarded by its lease.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from schemas import Envelope

__all__ = [
    "OPEN_STATES",
    "TERMINAL_STATES",
    "DeliveryState",
    "IngestResult",
    "LeasedDelivery",
    "MessageQuery",
    "MessageVerdict",
    "NotFoundError",
    "OperatorStore",
    "Outcome",
    "PageCounts",
    "Rejection",
    "Route",
    "Router",
    "SourceNotOwnedError",
    "StateConflictError",
    "Store",
    "StoreUnavailableError",
    "idempotency_key",
]


class DeliveryState(StrEnum):
    """States of one (message, destination) delivery (DESIGN §2.3)."""

    pending = "pending"
    in_flight = "in_flight"
    retry_wait = "retry_wait"
    delivered = "delivered"
    dead = "dead"  # permanent error: kept for an operator
    uncertain = "uncertain"  # sent, outcome unknown, cannot be checked: an operator decides
    paper_pending = "paper_pending"
    paper_delivered = "paper_delivered"


TERMINAL_STATES = frozenset({DeliveryState.delivered, DeliveryState.dead, DeliveryState.paper_delivered})
OPEN_STATES = frozenset({DeliveryState.pending, DeliveryState.in_flight, DeliveryState.retry_wait})


@dataclass(frozen=True, slots=True)
class Route:
    """Where one message goes: a destination name and the channel (``platform`` or ``paper``)."""

    destination: str
    channel: str = "platform"


Router = Callable[[Envelope], Sequence[Route]]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Native input that could not become a canonical message, kept with its reason."""

    source: str
    reason: str
    raw: str
    position: str | None = None


@dataclass(frozen=True, slots=True)
class MessageVerdict:
    """What the dedup ledger decided for one incoming message: ``new``, ``revision``, ``duplicate`` or ``stale``.

    ``original_message_id`` names the stored message a suppressed one repeats (or is older than).
    """

    message_id: str
    type: str
    verdict: str
    original_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class PageCounts:
    """What one stored page (or push) came to, without the message ids: what the metrics and the relay's
    wake-up need, and all an intake process tells its gateway about a page (``gateway.intake_process``)."""

    verdicts: dict[tuple[str, str], int] = field(default_factory=dict)  # (type, verdict) → messages
    accepted: int = 0
    rejected: int = 0
    unrouted: int = 0


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # new facts and revisions stored for relay
    revisions: int = 0
    duplicates: int = 0
    stale: int = 0
    rejected: int = 0
    unrouted: int = 0
    unrouted_ids: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    verdicts: list[MessageVerdict] = field(default_factory=list)  # one per envelope, in input order

    def record_suppressed(self, env: Envelope, verdict: str, original_message_id: str | None) -> None:
        """Count a message the ledger suppressed (``duplicate`` or ``stale``)."""
        self.verdicts.append(MessageVerdict(env.id, env.type, verdict, original_message_id))
        if verdict == "duplicate":
            self.duplicates += 1
        else:
            self.stale += 1

    def record_accepted(self, env: Envelope, verdict: str, *, routed: bool) -> None:
        """Count a message stored for relay (``new`` or ``revision``); an unrouted one is held and listed."""
        self.verdicts.append(MessageVerdict(env.id, env.type, verdict))
        self.accepted += 1
        self.revisions += verdict == "revision"
        if not routed:
            self.unrouted += 1
            self.unrouted_ids.append(env.id)
        self.message_ids.append(env.id)

    def counts(self) -> PageCounts:
        verdicts: dict[tuple[str, str], int] = {}
        for v in self.verdicts:
            verdicts[v.type, v.verdict] = verdicts.get((v.type, v.verdict), 0) + 1
        return PageCounts(verdicts, self.accepted, self.rejected, self.unrouted)


@dataclass(frozen=True, slots=True)
class LeasedDelivery:
    """A delivery this instance holds the lease of, with what is needed to attempt it."""

    id: int
    message_id: str
    destination: str
    idempotency_key: str
    attempts: int  # including the one about to be made
    verify_first: bool  # ask the receiver's status before sending (the last outcome was unknown)
    envelope_json: str
    type: str | None = None  # the message's event type (metrics label; saves parsing the envelope)
    # When the delivery was created, the start of its relay latency; to 15 significant digits (10 µs today):
    # SQLite hands leased rows over as one JSON array (SQLiteStore._lease), which renders REALs so.
    accepted_at: float | None = None

    def envelope(self) -> Envelope:
        return Envelope.from_stored(self.envelope_json)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt, to be recorded under the lease it was made with."""

    delivery_id: int
    state: DeliveryState
    error: str | None = None
    error_kind: str | None = None
    remote_id: str | None = None
    next_attempt_at: float | None = None
    verify_first: bool = False
    started_at: float | None = None


class StoreUnavailableError(RuntimeError):
    """The store cannot be reached right now (a database server restarting or failing over, a pool timeout).

    Nothing of the operation was committed. Pollers and the relay wait and try again rather than stop:
    a page is read again from the same cursor, a lease round is simply repeated.
    """


class SourceNotOwnedError(RuntimeError):
    """A page was read by an instance that no longer owns its source; it was not stored (its new owner reads it)."""


class Store(Protocol):
    """What the gateway needs from persistence. All methods are coroutines; each is one transaction."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get_cursor(self, source: str) -> str | None: ...

    async def claim_source(self, source: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the single ownership of ``source`` for ``ttl_s``; True when ``owner`` holds it.

        Only the owner polls a source, so two instances never read one page twice.
        """
        ...

    async def release_source(self, source: str, owner: str) -> None:
        """Give up ``source`` (graceful stop) so another instance can take it at once."""
        ...

    async def ingest_page(
        self,
        source: str,
        envelopes: Sequence[Envelope],
        rejections: Sequence[Rejection],
        cursor: str | None,
        router: Router,
        *,
        owner: str | None = None,
    ) -> IngestResult:
        """Dedup, store and route ``envelopes``, store ``rejections`` and advance the cursor, atomically.

        With ``owner``, only while ``owner`` holds the source (else nothing is stored and an error raised).
        """
        ...

    async def recover(self, *, owner: str, verify: Sequence[str], uncertain: Sequence[str]) -> int:
        """Release leases that can no longer be honoured (all of them when this store has one owner).

        Destinations in ``uncertain`` (not idempotent, no status query) go to ``uncertain``; the rest
        return to ``pending``, with a status query first for those in ``verify``. Returns the count.
        """
        ...

    async def take_over_expired(self, *, owner: str, verify: Sequence[str], uncertain: Sequence[str]) -> int:
        """Release other instances' expired leases under the ``recover`` rules (multi-instance stores)."""
        ...

    async def chain_audit(self) -> int:
        """Chain audit entries written but not yet hash-linked (multi-instance stores); returns the count."""
        ...

    async def lease_due(self, *, owner: str, destination: str, limit: int, lease_s: float) -> list[LeasedDelivery]: ...

    async def complete(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        """Record outcomes of attempts made under ``owner``'s lease; returns how many were applied."""
        ...

    async def status(self) -> dict[str, object]:
        """Counts by state, in the shape of ``shenguan status --json`` (DESIGN §4)."""
        ...

    async def reroute_unrouted(self, router: Router, *, batch: int = 500) -> int:
        """Route messages held as unrouted with ``router``; returns how many now have routes."""
        ...

    async def active_mapping_version(self) -> int | None: ...

    async def active_mapping(self) -> list[dict[str, Any]]: ...

    async def open_deliveries(self) -> int:
        """Deliveries still expected to move on their own (pending, in_flight, retry_wait)."""
        ...


class NotFoundError(LookupError):
    """The message or delivery an operator named does not exist."""


class StateConflictError(ValueError):
    """An operator action that the current state does not allow; the message says why and what to do instead."""


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters for finding messages (all optional, combined with AND) and the page wanted, newest first.

    ``state`` matches messages with at least one delivery in that state (optionally to ``destination``);
    ``received_from``/``received_to`` bound the time the gateway stored the message (epoch seconds).
    """

    message_id: str | None = None
    business_key: str | None = None
    correlation_id: str | None = None
    type: str | None = None
    source: str | None = None
    state: str | None = None
    destination: str | None = None
    received_from: float | None = None
    received_to: float | None = None
    limit: int = 50
    offset: int = 0


class OperatorStore(Store, Protocol):
    """What the admin API and web console need beyond ``Store``: finding things, and the operator's actions.

    Each method is one transaction. Every action takes ``actor`` (who did it, and through what) and appends
    it to the audit chain in that same transaction, so the chain never shows a state change nobody owns.
    Actions raise ``NotFoundError`` for an unknown id and ``StateConflictError`` when the state forbids them.
    """

    async def find_messages(self, query: MessageQuery) -> tuple[list[dict[str, Any]], int]:
        """A page of message summaries (each with its deliveries' id, destination and state) and the total."""
        ...

    async def message(self, message_id: str) -> dict[str, Any] | None:
        """One message with its envelope and deliveries."""
        ...

    async def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        """One delivery with every attempt made (number, times, outcome, error), oldest first."""
        ...

    async def deliveries(
        self, *, state: str | None = None, destination: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of deliveries (oldest first) with their message's fact, and the total."""
        ...

    async def destination_overview(self) -> dict[str, dict[str, Any]]:
        """Per destination: counts by state and the oldest delivery still waiting (pending or retry_wait)."""
        ...

    async def trace(self, correlation_id: str) -> list[dict[str, Any]]:
        """Every message of one closed loop (one ``correlation_id``) in business-time order, with deliveries."""
        ...

    async def retry_dead(self, delivery_id: int, *, actor: str) -> None:
        """``dead`` → ``pending`` now, with a fresh retry budget (earlier attempts stay on record)."""
        ...

    async def resolve_uncertain(self, delivery_id: int, resolution: str, *, actor: str) -> None:
        """An operator's verdict on an ``uncertain`` delivery: ``delivered`` (the receiver has it) or ``resend``."""
        ...

    async def replay(self, message_id: str, destination: str, *, actor: str) -> int:
        """Deliver a stored message to ``destination`` again (or for the first time); returns the delivery id."""
        ...


def idempotency_key(destination: str, envelope: Envelope) -> str:
    """The deterministic key of delivering one version of one fact to one destination.

    Derived from the fact (type, business key) and its revision rather than the message id, so a
    fact that reaches the gateway twice by different paths still carries one key to the receiver.
    """
    text = "\x1f".join((destination, envelope.type, envelope.business_key, str(envelope.revision)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]
