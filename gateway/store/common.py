"""Pieces every store backend shares: how a message looks in the audit chain, and the migration record.

Kept apart from the backends so SQLite and PostgreSQL describe a fact, a route and a schema change the
same way; anything here is pure (no SQL dialect, no connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from gateway.store.base import MessageQuery, NotFoundError, StateConflictError
from schemas import Envelope

__all__ = [
    "DELIVERY_COLUMNS",
    "MESSAGE_COLUMNS",
    "Migration",
    "PaperStateError",
    "StoreVersionError",
    "by_actor",
    "fact",
    "message_filters",
    "operator_target",
    "parse_time",
    "replay_conflict",
    "route_names",
]

A = TypeVar("A")


def fact(env: Envelope) -> dict[str, Any]:
    """The audit chain's view of a message: which version of which fact, from where (no payload)."""
    return {"type": env.type, "business_key": env.business_key, "revision": env.revision, "source": env.source}


def route_names(routes: Sequence[Any]) -> list[str]:
    return [f"{r.destination}:{r.channel}" for r in routes]


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def by_actor(actor: str | None) -> dict[str, Any]:
    """Paper event detail naming who recorded it (the audit chain copies ``recorded_by``)."""
    return {"recorded_by": actor} if actor else {}


@dataclass(frozen=True, slots=True)
class Migration(Generic[A]):
    """One numbered schema change of one backend.

    ``apply`` is backend-specific (SQL text or a function of a connection); the runner of each backend
    applies, in one transaction, every migration above the database's ``meta.schema_version`` in order and
    then records the new version, so a database is always at exactly one known version.
    """

    version: int
    summary: str
    apply: A


class PaperStateError(ValueError):
    """A paper operation that the delivery's state does not allow; the message says why."""


class StoreVersionError(RuntimeError):
    """The database was written by a newer shenguan (a schema version this code does not know)."""

    def __init__(self, where: str, found: int, known: int) -> None:
        super().__init__(
            f"{where} has schema version {found}, this shenguan knows up to {known}: upgrade shenguan "
            "before pointing it at this database (an older version would misread or damage it)"
        )
        self.found = found
        self.known = known


# -- operator look-ups and actions (admin API, console): what both backends show and refuse alike ----------

MESSAGE_COLUMNS = (
    "m.id, m.type, m.source, m.business_key, m.revision, m.content_hash, m.classification, m.region, "
    "m.correlation_id, m.business_time, m.received_at, m.routed"
)
# ``attempts`` counts the delivery's whole life; ``budget_used`` only the current retry budget (an operator's
# retry moves the spent attempts into ``attempt_offset``, so attempt rows keep their numbers).
DELIVERY_COLUMNS = (
    "d.id, d.message_id, d.destination, d.channel, d.state, d.attempts + d.attempt_offset AS attempts, "
    "d.attempts AS budget_used, d.next_attempt_at, d.verify_first, d.last_error, d.last_error_kind, d.remote_id, "
    "d.idempotency_key, d.created_at, d.updated_at, d.delivered_at, d.printed_at, "
    "m.type, m.business_key, m.revision, m.correlation_id"
)
_REPLAY_REFUSED = {
    "pending": "delivery {id} is already on its way ({state})",
    "in_flight": "delivery {id} is already on its way ({state})",
    "retry_wait": "delivery {id} is already on its way ({state}); retries continue on their own",
    "uncertain": "delivery {id} is uncertain: resolve it (delivered or resend) instead of replaying it",
    "paper_pending": "delivery {id} went to paper: recall it (if not yet printed) instead of replaying it",
    "paper_delivered": "delivery {id} was served on paper (paper_delivered): it is complete",
}


def message_filters(query: MessageQuery, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading space, or empty) and arguments for ``find_messages``.

    ``mark`` is the driver's placeholder (``?`` for sqlite3, ``%s`` for psycopg).
    """
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("m.id", query.message_id),
        ("m.business_key", query.business_key),
        ("m.correlation_id", query.correlation_id),
        ("m.type", query.type),
        ("m.source", query.source),
    ):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            args.append(value)
    if query.received_from is not None:
        clauses.append(f"m.received_at >= {mark}")
        args.append(query.received_from)
    if query.received_to is not None:
        clauses.append(f"m.received_at < {mark}")
        args.append(query.received_to)
    if query.state is not None or query.destination is not None:
        sub = ["d.message_id = m.id"]
        if query.state is not None:
            sub.append(f"d.state = {mark}")
            args.append(query.state)
        if query.destination is not None:
            sub.append(f"d.destination = {mark}")
            args.append(query.destination)
        clauses.append(f"EXISTS (SELECT 1 FROM deliveries d WHERE {' AND '.join(sub)})")
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), args


def operator_target(delivery_id: int, state: str | None, allowed: tuple[str, ...], action: str, hint: str) -> None:
    """Raise ``NotFoundError``/``StateConflictError`` saying why ``action`` cannot be done in ``state``."""
    if state is None:
        raise NotFoundError(f"there is no delivery {delivery_id}")
    if state not in allowed:
        raise StateConflictError(f"cannot {action} delivery {delivery_id}: it is {state} ({hint})")


def replay_conflict(
    message_id: str, revision: int, newest: tuple[int, str] | None, existing: tuple[int, str] | None
) -> None:
    """Refuse a replay that would roll a receiver back, or that another action owns.

    ``newest`` is the ledger's (revision, message id) of the fact; ``existing`` the (id, state) of the
    delivery already holding this replay's idempotency key, if any. Only a delivered or dead one is reopened.
    """
    if newest is not None and newest[0] > revision:
        raise StateConflictError(
            f"message {message_id} is revision {revision} of a fact whose revision {newest[0]} is newer: "
            f"replay message {newest[1]} instead (an older revision would roll the receiver's record back)"
        )
    if existing is not None and existing[1] not in ("delivered", "dead"):
        template = _REPLAY_REFUSED.get(existing[1], "delivery {id} is {state}")
        raise StateConflictError(template.format(id=existing[0], state=existing[1]))
