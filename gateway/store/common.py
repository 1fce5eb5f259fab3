"""Pieces every store backend shares: how a message looks in the audit chain, and the migration record.

Kept apart from the backends so SQLite and PostgreSQL describe a fact, a route and a schema change the
same way; anything here is pure (no SQL dialect, no connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from schemas import Envelope

__all__ = ["Migration", "StoreVersionError", "by_actor", "fact", "parse_time", "route_names"]

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


class StoreVersionError(RuntimeError):
    """The database was written by a newer shenguan (a schema version this code does not know)."""

    def __init__(self, where: str, found: int, known: int) -> None:
        super().__init__(
            f"{where} has schema version {found}, this shenguan knows up to {known}: upgrade shenguan "
            "before pointing it at this database (an older version would misread or damage it)"
        )
        self.found = found
        self.known = known
