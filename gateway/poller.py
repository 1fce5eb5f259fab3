"""A source poller: read a source's change feed page by page and ingest each page atomically.

Decoding happens here, record by record, so one malformed record becomes a rejection with its reason
and the rest of the page still flows. The page's messages, its rejections and the cursor after it are
stored in one transaction; a crash before that commit re-reads the page, after it never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import structlog

from adapters import AdapterError, DecodeError, RawRecord, SourceAdapter
from gateway.config import SourceConfig
from gateway.store.base import IngestResult, Rejection, Router, Store
from schemas import Envelope

__all__ = ["SourcePoller", "decode_records", "raw_text"]

log = structlog.get_logger("shenguan.poller")


def raw_text(payload: object) -> str:
    """The native record as text, for the rejected store (kept verbatim, whatever it was)."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(payload)


def decode_records(
    source: str, adapter: SourceAdapter, records: list[RawRecord] | tuple[RawRecord, ...]
) -> tuple[list[Envelope], list[Rejection]]:
    """Decode every record; a record that fails becomes a ``Rejection`` and never stops the others."""
    envelopes: list[Envelope] = []
    rejections: list[Rejection] = []
    for record in records:
        try:
            envelopes.extend(adapter.decode(record))
        except DecodeError as exc:
            rejections.append(Rejection(source, exc.reason, raw_text(record.payload), record.position))
        except Exception as exc:  # an adapter bug must not lose the record or stop the feed
            reason = f"adapter {source!r} failed to decode: {type(exc).__name__}: {exc}"
            rejections.append(Rejection(source, reason, raw_text(record.payload), record.position))
    return envelopes, rejections


class SourcePoller:
    def __init__(
        self,
        name: str,
        adapter: SourceAdapter,
        config: SourceConfig,
        store: Store,
        router: Router,
        *,
        on_ingested: Callable[[IngestResult], None] = lambda _r: None,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.config = config
        self._store = store
        self._router = router
        self._on_ingested = on_ingested
        self._stop = asyncio.Event()
        self.caught_up = False  # the last poll found nothing more to read
        self.pages = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        cursor = await self._store.get_cursor(self.name)
        backoff = self.config.poll_interval_s
        while not self._stop.is_set():
            try:
                page = await self.adapter.poll(cursor, self.config.page_size)
            except AdapterError as exc:
                self.caught_up = False
                log.warning(
                    "poller.poll_failed", source=self.name, kind=exc.kind, reason=exc.reason, retry_in_s=backoff
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.config.error_backoff_max_s)
                continue
            backoff = self.config.poll_interval_s
            envelopes, rejections = decode_records(self.name, self.adapter, list(page.records))
            result = await self._store.ingest_page(self.name, envelopes, rejections, page.next_cursor, self._router)
            self.pages += 1
            if page.next_cursor is not None:
                cursor = page.next_cursor
            if page.records:
                log.info(
                    "poller.page",
                    source=self.name,
                    records=len(page.records),
                    accepted=result.accepted,
                    duplicates=result.duplicates,
                    stale=result.stale,
                    rejected=result.rejected,
                )
                self._on_ingested(result)
            for message_id in result.unrouted_ids:
                # Once per message, at ingest: it waits for a mapping import, which routes it then.
                log.warning("message.unrouted", source=self.name, message_id=message_id)
            for rej in rejections:
                log.warning("poller.rejected", source=self.name, position=rej.position, reason=rej.reason)
            self.caught_up = not page.has_more and not page.records
            if not page.has_more:
                await self._sleep(self.config.poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
