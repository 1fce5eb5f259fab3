"""The poller reads the next page while it stores the current one, without ever storing a page twice, losing
one, or reading ahead of an acknowledging source; and an owner renews its claim on the source only as the
lease requires, not at every page."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from adapters import Capabilities, Direction, PollPage, RawRecord, RecordOutcome
from factories import envelope
from gateway.config import SourceConfig
from gateway.poller import SourcePoller
from gateway.store import Route
from gateway.store.base import StoreUnavailableError
from pollers import run_until_caught_up
from schemas import Envelope

CONFIG = SourceConfig(adapter="test", poll_interval_s=0.01, page_size=3, error_backoff_max_s=0.05)
PAGES = 6


def route_all(_env: Envelope) -> list[Route]:
    return [Route("fake")]


class Feed:
    """``PAGES`` pages of three facts; records each read's cursor and signals when a read of a cursor begins."""

    version: ClassVar[str] = "0"
    capabilities: ClassVar[Capabilities] = Capabilities(direction=Direction.source)

    def __init__(self) -> None:
        self.name = "feed"
        self.reads: list[str | None] = []
        self.started: dict[str | None, asyncio.Event] = {}

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:  # pragma: no cover - built by tests
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    def read_started(self, cursor: str | None) -> asyncio.Event:
        return self.started.setdefault(cursor, asyncio.Event())

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        self.reads.append(cursor)
        self.read_started(cursor).set()
        await asyncio.sleep(0)  # a real read yields to the loop at least once
        index = int(cursor or 0)
        if index >= PAGES:
            return PollPage([], cursor)
        records = [RawRecord(f"{index:02}{r}", position=f"{index}+{r}") for r in range(3)]
        return PollPage(records, str(index + 1), has_more=index + 1 < PAGES)

    def decode(self, record: RawRecord) -> list[Envelope]:
        return [envelope(f"3207002611210000{record.payload}")]


class AcknowledgedFeed(Feed):
    """The same feed, told of each stored page (a 前置库 works so): it must never be read ahead."""

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        self.cursor_at_read: list[tuple[str | None, str | None]] = []

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        self.cursor_at_read.append((cursor, await self.store.get_cursor(self.name)))
        return await super().poll(cursor, limit)

    async def acknowledge(self, page: PollPage, outcomes: Sequence[RecordOutcome]) -> None:
        return None


class StoreSpy:
    """The real store, with a hook before each page is stored and a count of source claims."""

    def __init__(self, store: Any, before_page: Any = None) -> None:
        self._store = store
        self._before_page = before_page
        self.claims = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def claim_source(self, source: str, owner: str, ttl_s: float) -> bool:
        self.claims += 1
        return bool(await self._store.claim_source(source, owner, ttl_s))

    async def ingest_page(self, source: str, envelopes: Sequence[Envelope], *args: Any, **kwargs: Any) -> Any:
        cursor = args[1]
        if self._before_page is not None:
            await self._before_page(cursor)
        return await self._store.ingest_page(source, envelopes, *args, **kwargs)


async def test_the_next_page_is_read_while_the_current_one_is_stored(store: Any) -> None:
    feed = Feed()
    overlapped: list[str] = []

    async def before_page(cursor: str) -> None:
        # Storing the page that ends at ``cursor``: the read from ``cursor`` must have begun already. Without
        # read-ahead it begins only after this store returns, so the wait would time out.
        if int(cursor) < PAGES:
            await asyncio.wait_for(feed.read_started(cursor).wait(), 5)
            overlapped.append(cursor)

    spy = StoreSpy(store, before_page)
    await run_until_caught_up(SourcePoller("feed", feed, CONFIG, spy, route_all, owner="a"))  # type: ignore[arg-type]
    assert overlapped == [str(i) for i in range(1, PAGES)]
    assert (await store.status())["messages"] == 3 * PAGES
    assert await store.get_cursor("feed") == str(PAGES)
    assert [c for c in feed.reads if c != str(PAGES)] == [None, *map(str, range(1, PAGES))]  # each page read once


async def test_a_stop_stores_the_page_already_read_ahead(store: Any) -> None:
    feed = Feed()
    poller: SourcePoller

    async def before_page(cursor: str) -> None:
        if cursor == "2":  # page 1 is being stored and page 2 is being read: stop now
            await asyncio.wait_for(feed.read_started("2").wait(), 5)
            poller.stop()

    poller = SourcePoller("feed", feed, CONFIG, StoreSpy(store, before_page), route_all, owner="a")  # type: ignore[arg-type]
    await asyncio.wait_for(poller.run(), 10)
    # Page 2 was read before the stop took effect: it is stored, so whoever polls next starts after it.
    assert await store.get_cursor("feed") == "3"
    assert feed.reads == [None, "1", "2"]
    assert (await store.status())["messages"] == 9


async def test_a_page_that_could_not_be_stored_drops_what_was_read_after_it(store: Any) -> None:
    feed = Feed()
    failures = {"3": 1}

    async def before_page(cursor: str) -> None:
        if failures.get(cursor):
            failures[cursor] -= 1
            await asyncio.wait_for(feed.read_started(cursor).wait(), 5)  # the next page is being read now
            raise StoreUnavailableError("database restarting")

    spy = StoreSpy(store, before_page)
    await run_until_caught_up(SourcePoller("feed", feed, CONFIG, spy, route_all, owner="a"))  # type: ignore[arg-type]
    status = await store.status()
    assert status["messages"] == 3 * PAGES and status["duplicates_suppressed"] == 0
    # Page 2 is read again after its failed store; page 3, read ahead meanwhile, was dropped and read again.
    assert feed.reads.count("2") == 2 and feed.reads.count("3") == 2
    assert await store.get_cursor("feed") == str(PAGES)


async def test_an_acknowledging_source_is_never_read_ahead(store: Any) -> None:
    feed = AcknowledgedFeed(store)
    await run_until_caught_up(SourcePoller("feed", feed, CONFIG, store, route_all, owner="a"))
    assert (await store.status())["messages"] == 3 * PAGES
    # Every read starts from the cursor already committed: nothing is read before its predecessor is stored.
    assert all(cursor == stored for cursor, stored in feed.cursor_at_read), feed.cursor_at_read


async def test_an_owner_claims_a_source_once_per_third_of_its_lease(store: Any) -> None:
    spy = StoreSpy(store)
    await run_until_caught_up(SourcePoller("feed", Feed(), CONFIG, spy, route_all, owner="a", lease_s=60))  # type: ignore[arg-type]
    assert spy.claims == 1  # the whole feed read well within 20 s of the claim


async def test_an_owner_renews_before_every_read_when_the_lease_is_shorter_than_a_page(store: Any) -> None:
    spy = StoreSpy(store)
    feed = Feed()
    await run_until_caught_up(SourcePoller("feed", feed, CONFIG, spy, route_all, owner="a", lease_s=1e-6))  # type: ignore[arg-type]
    assert spy.claims >= PAGES
