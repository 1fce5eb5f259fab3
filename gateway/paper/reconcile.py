"""Late electronic successes: a paper item whose platform turns out to hold the fact after all.

A delivery falls back to paper when its retry budget is spent — but some of those attempts may have
been applied by the receiver with the reply lost. Where the destination can answer a status query,
the gateway keeps asking for unflagged fallback items; when the receiver does hold one, the item is
*flagged for the operator* (once), not closed and not printed silently a second time: it may already
be on its way on paper, and only the operator knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from adapters import AdapterError, DestinationAdapter
from schemas import Envelope

if TYPE_CHECKING:
    from gateway.store import Backend

__all__ = ["reconcile_paper"]

log = structlog.get_logger("shenguan.paper")


async def reconcile_paper(store: Backend, destinations: Mapping[str, DestinationAdapter]) -> int:
    """One pass over unflagged fallback items; returns how many were newly flagged."""
    flagged = 0
    after = 0
    while page := await store.paper_deliveries(state="paper_pending", after_id=after):
        after = int(page[-1]["id"])
        for row in page:
            adapter = destinations.get(row["destination"])
            if row["channel"] == "paper" or row["flagged"] or adapter is None:
                continue  # paper by route or classification never went electronic
            if not adapter.capabilities.status_query:
                continue
            envelope = Envelope.from_stored(row["envelope"])
            try:
                receipt = await adapter.query_status(envelope, row["idempotency_key"])
            except AdapterError as exc:
                log.info("paper.status_query_failed", delivery=row["id"], reason=exc.reason)
                continue
            if receipt is None:
                continue
            detail = {"remote_id": receipt.remote_id, "printed": row["printed_at"] is not None}
            if await store.flag_paper(int(row["id"]), detail):
                flagged += 1
                log.warning(
                    "paper.electronic_success_found", delivery=row["id"], destination=row["destination"], **detail
                )
    return flagged
