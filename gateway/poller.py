"""A source poller: read a source's change feed page by page and ingest each page atomically.

Decoding happens here, record by record, so one malformed record becomes a rejection with its reason
and the rest of the page still flows. The page's messages, its rejections and the cursor after it are
stored in one transaction; a crash before that commit re-reads the page, after it never does. A source
that marks what it handed out (``AcknowledgingSource``, e.g. a 前置库) is told each record's fate only
after that commit.

While a page is being stored, the next one is already being read (one page ahead), so a backlog moves at
the pace of the slower of the two rather than of their sum. A page read ahead is only a read: it is stored
by the same transaction rules as any other, and dropped (read again from the committed cursor) when the
page before it could not be stored. Acknowledging sources are not read ahead: their next page may depend on
the marks written for this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import structlog

from adapters import AdapterError, DecodeError, PollPage, RawRecord, RecordOutcome, SourceAdapter
from gateway.config import SourceConfig
from gateway.store.base import IngestResult, Rejection, Router, SourceNotOwnedError, Store, StoreUnavailableError
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
    source: str,
    adapter: SourceAdapter,
    records: list[RawRecord] | tuple[RawRecord, ...],
    *,
    outcomes: list[RecordOutcome] | None = None,
) -> tuple[list[Envelope], list[Rejection]]:
    """Decode every record; a record that fails becomes a ``Rejection`` and never stops the others.

    ``outcomes``, when given, receives one ``RecordOutcome`` per record, in order (for ``acknowledge``).
    """
    envelopes: list[Envelope] = []
    rejections: list[Rejection] = []
    for record in records:
        reason: str | None = None
        try:
            envelopes.extend(adapter.decode(record))
        except DecodeError as exc:
            reason = exc.reason
        except Exception as exc:  # an adapter bug must not lose the record or stop the feed
            reason = f"adapter {source!r} failed to decode: {type(exc).__name__}: {exc}"
        if reason is not None:
            rejections.append(Rejection(source, reason, raw_text(record.payload), record.position))
        if outcomes is not None:
            outcomes.append(RecordOutcome(record, reason))
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
        owner: str | None = None,
        lease_s: float = 15.0,
    ) -> None:
        """``owner`` (the instance id) makes the poller claim the source before reading it, renewing the
        claim every round (``lease_s``); without it the poller reads unconditionally (one process)."""
        self._owner = owner
        self._lease_s = lease_s
        self._owned = False
        self._renew_at = 0.0  # monotonic time after which an owned source's claim is renewed
        # The next page, read while the current one is stored: (the cursor it was read from, the read).
        self._ahead: tuple[str, asyncio.Task[PollPage]] | None = None
        # An acknowledging source is told each page's fate, and so is never read ahead (module docstring).
        self._acknowledge_page = getattr(adapter, "acknowledge", None)
        self.name = name
        self.adapter = adapter
        self.config = config
        self._store = store
        self._router = router
        self._on_ingested = on_ingested
        self._stop = asyncio.Event()
        self.caught_up = False  # the last poll found nothing more to read
        self.caught_up_once = False  # ... at least once since start (default claims wait for it)
        self.pages = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Poll while this instance owns the source; stand by while another one does.

        Several instances may run a poller for one source; only the owner of the source's lease reads
        it, so no page is read twice. A standby claims it as soon as the owner's lease lapses (it died,
        or stopped and released it) and reads on from the cursor the last owner committed.
        """
        try:
            await self._run()
        finally:
            self._drop_ahead()
            if self._owned and self._owner is not None:
                with contextlib.suppress(Exception):  # best effort: the lease expires anyway
                    await self._store.release_source(self.name, self._owner)

    async def _own(self) -> bool:
        """Claim or renew the source; a store error counts as not owning it (and is retried).

        An owner renews its claim once a third of the lease has passed, not at every page: a claim is a
        transaction of its own, and each stored page proves the ownership again anyway (``ingest_page``
        checks the owner under a row lock), so renewing more often would only slow a backlog down.
        """
        if self._owner is None:
            self._owned = True
            return True
        if self._owned and time.monotonic() < self._renew_at:
            return True
        try:
            owned = await self._store.claim_source(self.name, self._owner, self._lease_s)
        except Exception as exc:
            log.warning("poller.claim_failed", source=self.name, error=f"{type(exc).__name__}: {exc}")
            owned = False
        if owned != self._owned:
            log.info("poller.owner" if owned else "poller.standby", source=self.name, instance=self._owner)
        self._owned = owned
        if owned:
            self._renew_at = time.monotonic() + self._lease_s / 3
        return owned

    def _read_ahead(self, page: PollPage) -> None:
        """Start reading the page after ``page``, to run while ``page`` is stored."""
        acknowledging = self._acknowledge_page is not None
        if not acknowledging and page.has_more and page.next_cursor is not None and not self._stop.is_set():
            read = asyncio.create_task(self.adapter.poll(page.next_cursor, self.config.page_size))
            self._ahead = (page.next_cursor, read)

    async def _read(self, cursor: str | None) -> PollPage:
        """The page after ``cursor``: the one read ahead when it was read from there, else a fresh read."""
        if self._ahead is not None and self._ahead[0] == cursor:
            read, self._ahead = self._ahead[1], None
            return await read
        self._drop_ahead()
        return await self.adapter.poll(cursor, self.config.page_size)

    def _drop_ahead(self) -> None:
        """Forget the page read ahead (the page before it was not stored, the source changed hands, or it was
        read from another cursor)."""
        if self._ahead is not None:
            _discard(self._ahead[1])
            self._ahead = None

    async def _store_down(self, exc: StoreUnavailableError) -> None:
        """The store is unreachable: wait (doubling, up to ``error_backoff_max_s``) and let the loop retry."""
        self.caught_up = False
        log.warning("poller.store_unavailable", source=self.name, error=str(exc), retry_in_s=self._store_backoff)
        await self._sleep(self._store_backoff)
        self._store_backoff = min(self._store_backoff * 2, self.config.error_backoff_max_s)

    async def _run(self) -> None:
        self._store_backoff = self.config.poll_interval_s
        cursor: str | None = None
        backoff = self.config.poll_interval_s
        standby_s = min(self.config.poll_interval_s, self._lease_s / 3)
        # After a stop, a page already read ahead is still stored, so a successor never reads it again.
        while not self._stop.is_set() or self._ahead is not None:
            was_owner = self._owned
            if not await self._own():
                self._drop_ahead()
                self.caught_up = True  # a standby has nothing to read
                self.caught_up_once = True
                await self._sleep(standby_s)
                continue
            if not was_owner:
                # Read after the claim: every page the previous owner committed is behind this cursor.
                try:
                    cursor = await self._store.get_cursor(self.name)
                except StoreUnavailableError as exc:
                    self._owned = False  # read the cursor again before polling
                    await self._store_down(exc)
                    continue
            try:
                page = await self._read(cursor)
            except AdapterError as exc:
                self.caught_up = False
                log.warning(
                    "poller.poll_failed", source=self.name, kind=exc.kind, reason=exc.reason, retry_in_s=backoff
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.config.error_backoff_max_s)
                continue
            backoff = self.config.poll_interval_s
            self._read_ahead(page)
            outcomes: list[RecordOutcome] = []
            envelopes, rejections = decode_records(self.name, self.adapter, list(page.records), outcomes=outcomes)
            try:
                result = await self._store.ingest_page(
                    self.name, envelopes, rejections, page.next_cursor, self._router, owner=self._owner
                )
            except SourceNotOwnedError as exc:
                # This instance was paused past its lease and another took the source over: the page is
                # not stored here; the new owner reads it from the committed cursor.
                log.warning("poller.page_discarded", source=self.name, reason=str(exc))
                self._owned = False
                self._drop_ahead()
                continue
            except StoreUnavailableError as exc:
                # Nothing of the page was stored: it is read again from the same cursor once the store is back.
                self._drop_ahead()
                await self._store_down(exc)
                continue
            self._store_backoff = self.config.poll_interval_s
            if page.records:
                await self._acknowledge(page, outcomes)
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
            self.caught_up_once |= self.caught_up
            if not page.has_more:
                await self._sleep(self.config.poll_interval_s)

    async def _acknowledge(self, page: PollPage, outcomes: list[RecordOutcome]) -> None:
        """Tell an acknowledging source what became of the stored page; its failure never stops the feed.

        The page is committed by now, so nothing here can lose a record: a source that could not write its
        marks repairs them at its next poll (``AcknowledgingSource``).
        """
        if self._acknowledge_page is None:
            return
        try:
            await self._acknowledge_page(page, outcomes)
        except Exception as exc:
            log.warning("poller.acknowledge_failed", source=self.name, error=f"{type(exc).__name__}: {exc}")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def _discard(read: asyncio.Task[PollPage]) -> None:
    """Cancel a read nobody will use; its outcome, failure included, is collected so none is reported."""
    read.cancel()
    read.add_done_callback(lambda t: t.cancelled() or t.exception())
