"""The dedup decision (DESIGN §2.3): is this message a new fact, a revision, a duplicate, or stale?

A pure function over the ledger entry of the fact (type, business key) and the incoming message, so it
can be property-tested in isolation; the stores call it inside the same transaction that writes the
ledger and the outbox, which is what makes the decision true for concurrent writers too.

"No repeated reporting" (不得要求重复报送) is the rule this enforces: the same business fact arriving
twice — a retry, a second source, a nightly re-sync — is relayed once; a genuine correction (重报) is
relayed as a revision of the same record, never as a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = ["Decision", "LedgerEntry", "Verdict", "decide"]


class Verdict(StrEnum):
    new = "new"  # first time the fact is seen: relay it
    revision = "revision"  # changed content of a known fact, newer: relay as a revision
    duplicate = "duplicate"  # same content as what was relayed: suppress, link to the original
    stale = "stale"  # older than what was relayed: suppress as out-of-order


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the ledger remembers of a fact: the last relayed version."""

    revision: int
    content_hash: str
    business_time: datetime | None
    message_id: str


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    revision: int  # the revision to relay under (may be bumped, see ``decide``)
    original_message_id: str | None = None  # for suppressions: the message this one repeats

    @property
    def relay(self) -> bool:
        return self.verdict in (Verdict.new, Verdict.revision)


def decide(entry: LedgerEntry | None, *, revision: int, content_hash: str, business_time: datetime | None) -> Decision:
    """Decide what to do with an incoming version of a fact.

    - No entry: new.
    - Same content hash as the last relayed version: duplicate, whatever its revision number says (a
      re-report that changed nothing is not news).
    - Higher revision: revision.
    - Same revision, different content, later business time: a correction the source forgot to
      number; relayed as revision ``entry.revision + 1`` so receivers see it as newer.
    - Anything else (lower revision, or same revision and not later): stale.
    """
    if entry is None:
        return Decision(Verdict.new, revision)
    if content_hash == entry.content_hash:
        return Decision(Verdict.duplicate, entry.revision, entry.message_id)
    if revision > entry.revision:
        return Decision(Verdict.revision, revision)
    if (
        revision == entry.revision
        and business_time is not None
        and entry.business_time is not None
        and business_time > entry.business_time
    ):
        return Decision(Verdict.revision, entry.revision + 1)
    return Decision(Verdict.stale, entry.revision, entry.message_id)
