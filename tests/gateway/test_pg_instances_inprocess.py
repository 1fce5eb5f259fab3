"""Pollers and relays of several instances on one PostgreSQL store, in one process: source ownership and
surviving the database dropping every connection.

Each "instance" has its own ``PostgresStore`` (its own pool), as separate processes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import psycopg
import pytest

from adapters import Capabilities, Direction, PollPage, RawRecord
from factories import envelope
from fakes import DROPPED, FakeDestination, Receiver
from gateway.config import DestinationConfig, SourceConfig
from gateway.poller import SourcePoller
from gateway.relay import Destination, Relay
from gateway.store import Route
from schemas import Envelope

CONFIG = SourceConfig(adapter="test", poll_interval_s=0.02, page_size=5, error_backoff_max_s=0.2)


@pytest.fixture
def backend() -> str:
    return "postgresql"


def route_all(_env: Envelope) -> list[Route]:
    return [Route("fake")]


class PagedSource:
    """A feed of pages of five facts each; counts how often each page (cursor) was read with records in it."""

    version: ClassVar[str] = "0"
    capabilities: ClassVar[Capabilities] = Capabilities(direction=Direction.source)

    def __init__(self, pages: int) -> None:
        self.name = "feed"
        self.pages = pages
        self.reads: dict[int, int] = {}

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:  # pragma: no cover - built by tests
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        index = int(cursor or 0)
        if index >= self.pages:
            return PollPage([], cursor)
        self.reads[index] = self.reads.get(index, 0) + 1
        await asyncio.sleep(0.01)  # a real feed takes time: give the other poller its chance to race
        records = [RawRecord(f"P{index:03}R{r}", position=f"{index}+{r}") for r in range(5)]
        return PollPage(records, str(index + 1), has_more=index + 1 < self.pages)

    def decode(self, record: RawRecord) -> list[Envelope]:
        return [envelope(str(record.payload))]


class SlowDestination(FakeDestination):
    """A receiver that takes a few milliseconds per request, so the outage lands mid-run."""

    async def deliver(self, envelope: Envelope, idempotency_key: str):  # type: ignore[override]
        await asyncio.sleep(0.01)
        return await super().deliver(envelope, idempotency_key)


async def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_two_pollers_of_one_source_never_read_a_page_twice(store_factory) -> None:
    a, b = await store_factory(clock=time.time), await store_factory(clock=time.time)
    source = PagedSource(pages=12)
    pollers = [
        SourcePoller("feed", source, CONFIG, a, route_all, owner="a", lease_s=1.0),
        SourcePoller("feed", source, CONFIG, b, route_all, owner="b", lease_s=1.0),
    ]
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    try:

        async def half_read() -> bool:
            return len(source.reads) >= 6

        await wait_until(half_read, 20, "half the feed")
        owner = next(p for p in pollers if p._owned)
        standby = next(p for p in pollers if p is not owner)
        owner.stop()  # graceful: releases the source, the standby takes it at its next claim
        await tasks[pollers.index(owner)]

        async def all_stored() -> bool:
            return (await a.status())["messages"] == 60

        await wait_until(all_stored, 20, "the standby to read the rest")
        assert standby._owned
    finally:
        for p in pollers:
            p.stop()
        await asyncio.gather(*tasks)
    assert set(source.reads) == set(range(12)) and all(n == 1 for n in source.reads.values()), source.reads
    status = await b.status()
    assert status["messages"] == 60 and status["duplicates_suppressed"] == 0
    assert await b.get_cursor("feed") == "12"


async def test_relays_ride_out_the_database_dropping_every_connection(store_factory, store_url) -> None:
    a, b = await store_factory(clock=time.time), await store_factory(clock=time.time)
    await a.ingest_page("src", [envelope(f"K{i:03}") for i in range(120)], [], "1", route_all)
    receiver = Receiver()
    calls = 0

    def script(_env, _n):
        nonlocal calls
        calls += 1
        return DROPPED if calls % 7 == 0 else None  # some replies lost: resent with the same key

    config = DestinationConfig(
        adapter="fake", concurrency=4, max_attempts=50, backoff_initial_s=0.01, backoff_max_s=0.05, lease_s=5
    )
    relays = [
        Relay(s, {"fake": Destination("fake", SlowDestination(receiver, script=script), config)},
              owner=name, idle_s=0.02)
        for name, s in (("a", a), ("b", b))
    ]  # fmt: skip
    for relay in relays:
        await relay.recover()
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:

        async def some_delivered() -> bool:
            return (await a.status())["deliveries"]["delivered"] >= 30

        await wait_until(some_delivered, 30, "the first deliveries")
        async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            killed = (await cur.fetchone() or (0,))[0]
        assert killed >= 2, "both instances' pooled connections were cut"

        async def settled() -> bool:
            with contextlib.suppress(Exception):  # this check's own connection may be one that was cut
                return await a.open_deliveries() == 0
            return False

        await wait_until(settled, 60, "every delivery to settle after the outage")
    finally:
        for relay in relays:
            relay.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len(receiver.records) == 120 and receiver.duplicate_creations == 0
    assert (await b.status())["deliveries"]["delivered"] == 120
