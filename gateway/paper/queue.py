"""The paper queue (纸质送达): turn stored paper deliveries into printable items, render them, and record
what operators report back.

State rules live in the store (one transaction each); this module joins the store's rows with the
configuration (who receives, where, who issues) and streams them to the renderer a page at a time, so
a day's queue of any size is rendered without loading it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config import Config
from gateway.paper.render import PaperItem, render_batch
from schemas import Envelope

if TYPE_CHECKING:
    from gateway.store import Backend

__all__ = ["item_from_row", "render_queue"]

PAGE = 200


def item_from_row(row: dict[str, Any], config: Config) -> PaperItem:
    """A stored paper delivery (with its envelope) as the renderer's ``PaperItem``."""
    dest = config.destinations.get(row["destination"])
    return PaperItem(
        delivery_id=int(row["id"]),
        message_id=str(row["message_id"]),
        envelope=Envelope.from_stored(row["envelope"]),
        destination=(dest.paper_recipient if dest and dest.paper_recipient else row["destination"]),
        issuer=config.paper.issuer,
        created_at=datetime.fromtimestamp(float(row["created_at"]), tz=UTC),
        address=dest.paper_address if dest else None,
    )


async def render_queue(
    store: Backend,
    config: Config,
    out: Path,
    *,
    ids: Sequence[int] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    actor: str | None = None,
) -> list[int]:
    """Render unprinted ``paper_pending`` items (all, or ``ids``) into ``out`` and mark them printed.

    Returns the rendered delivery ids. Marking happens after the file is safely written: a crash in
    between leaves items unmarked, so they are rendered again rather than silently never printed.
    ``actor`` (who rendered them) goes into the audit chain with the ``printed`` events.
    """
    loop = asyncio.get_running_loop()
    rendered: list[int] = []

    def rows() -> Iterator[PaperItem]:
        after = 0
        while True:
            future = asyncio.run_coroutine_threadsafe(
                store.paper_deliveries(state="paper_pending", ids=ids, after_id=after, limit=PAGE), loop
            )
            page = future.result()
            for row in page:
                if row["printed_at"] is None:
                    rendered.append(int(row["id"]))
                    yield item_from_row(row, config)
            if len(page) < PAGE:
                return
            after = int(page[-1]["id"])

    await asyncio.to_thread(render_batch, rows(), out, progress=progress)
    if rendered:
        await store.mark_printed(rendered, actor=actor)
    return rendered
