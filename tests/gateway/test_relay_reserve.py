"""Leasing ahead (the relay's reserve): fewer lease transactions, never more in flight than allowed.

The reserve is a performance measure (docs/benchmarks.md), so these tests pin what it must not change:
every delivery made once, the concurrency limit, the per-slot leasing of receivers that cannot take a
resend, and that a graceful stop leaves nothing of the reserve in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters import Capabilities, Direction
from factories import envelope
from fakes import FakeDestination, Receiver
from gateway.config import DestinationConfig
from gateway.relay import Destination, Relay
from gateway.store import Route
from gateway.store.base import LeasedDelivery
from gateway.store.sqlite import SQLiteStore

CONFIG = {"adapter": "fake", "concurrency": 4, "max_attempts": 3, "breaker_failures": 1000}


class CountingStore(SQLiteStore):
    """An SQLite store that records every lease: how many rows were asked for and how many came back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leases: list[tuple[int, int]] = []

    async def lease_due(self, *, owner: str, destination: str, limit: int, lease_s: float) -> list[LeasedDelivery]:
        rows = await super().lease_due(owner=owner, destination=destination, limit=limit, lease_s=lease_s)
        self.leases.append((limit, len(rows)))
        return rows


class SlowDestination(FakeDestination):
    """Each delivery takes a little while, and the destination counts how many overlap."""

    def __init__(self, receiver: Receiver, **kwargs: Any) -> None:
        super().__init__(receiver, **kwargs)
        self.inflight = 0
        self.max_inflight = 0
        self.twenty_made = asyncio.Event()

    async def deliver(self, envelope, idempotency_key):  # type: ignore[no-untyped-def]
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(0.002)
            return await super().deliver(envelope, idempotency_key)
        finally:
            if self.calls >= 20:
                self.twenty_made.set()
            self.inflight -= 1


@pytest.fixture
async def store(tmp_path):
    s = CountingStore(tmp_path / "r.db", synchronous="NORMAL")
    await s.open()
    yield s
    await s.close()


async def relay_all(store: CountingStore, adapter: FakeDestination, count: int) -> dict[str, int]:
    await store.ingest_page("src", [envelope(f"K{i}") for i in range(count)], [], "1", lambda _e: [Route("fake")])
    relay = Relay(store, {"fake": Destination("fake", adapter, DestinationConfig.model_validate(CONFIG))}, owner="t")
    await relay.recover()
    task = asyncio.create_task(relay.run())
    for _ in range(1000):
        await asyncio.sleep(0.01)
        if await store.open_deliveries() == 0:
            break
    relay.stop()
    await task
    return (await store.status())["deliveries"]


async def test_an_idempotent_receiver_is_leased_ahead_in_few_transactions(store: CountingStore) -> None:
    receiver = Receiver(honours_keys=True)
    adapter = SlowDestination(receiver)
    states = await relay_all(store, adapter, 60)
    assert states["delivered"] == 60 and states["in_flight"] == 0
    assert receiver.duplicate_creations == 0 and adapter.calls == 60, "each delivery made once"
    assert adapter.max_inflight <= 4, "the reserve is leased, not sent: concurrency still holds"
    leases_with_rows = [got for _limit, got in store.leases if got]
    assert len(leases_with_rows) <= 60 // 2, f"one lease per two deliveries at most, got {store.leases}"
    assert max(leases_with_rows) > 4, "a lease takes the free slots and a reserve"


async def test_a_receiver_that_cannot_take_a_resend_is_leased_per_free_slot(store: CountingStore) -> None:
    receiver = Receiver(honours_keys=False)
    caps = Capabilities(direction=Direction.destination, idempotent_receiver=False, status_query=False)
    adapter = SlowDestination(receiver, capabilities=caps)
    states = await relay_all(store, adapter, 30)
    assert states["delivered"] == 30 and receiver.duplicate_creations == 0
    assert all(limit <= 4 for limit, _got in store.leases), (
        "never more leased than slots: a crash would make it uncertain"
    )


async def test_a_graceful_stop_sends_the_reserve_instead_of_leaving_it_in_flight(store: CountingStore) -> None:
    receiver = Receiver(honours_keys=True)
    adapter = SlowDestination(receiver)
    await store.ingest_page("src", [envelope(f"K{i}") for i in range(200)], [], "1", lambda _e: [Route("fake")])
    relay = Relay(store, {"fake": Destination("fake", adapter, DestinationConfig.model_validate(CONFIG))}, owner="t")
    await relay.recover()
    task = asyncio.create_task(relay.run())
    await adapter.twenty_made.wait()
    relay.stop()
    await task
    states = (await store.status())["deliveries"]
    assert states["in_flight"] == 0, "nothing leased is left behind by a graceful stop"
    assert states["delivered"] == adapter.calls == sum(receiver.records.values())
    assert states["pending"] == 200 - states["delivered"]


class CompletionLog(CountingStore):
    """Records each group of outcomes written: how many, and how long after its first outcome was decided."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups: list[int] = []

    async def complete(self, owner, outcomes):  # type: ignore[no-untyped-def]
        self.groups.append(len(outcomes))
        return await super().complete(owner, outcomes)


@pytest.mark.parametrize("idempotent", [True, False])
async def test_outcomes_wait_for_company_only_when_a_crash_would_resend_them_harmlessly(
    tmp_path, idempotent: bool
) -> None:
    store = CompletionLog(tmp_path / "g.db", synchronous="NORMAL")
    await store.open()
    try:
        receiver = Receiver(honours_keys=idempotent)
        caps = Capabilities(direction=Direction.destination, idempotent_receiver=idempotent, status_query=False)
        adapter = SlowDestination(receiver, capabilities=caps)
        await store.ingest_page("src", [envelope(f"K{i}") for i in range(40)], [], "1", lambda _e: [Route("fake")])
        dest = Destination("fake", adapter, DestinationConfig.model_validate(CONFIG))
        relay = Relay(store, {"fake": dest}, owner="t", commit_linger_s=10.0)  # a linger no test would sit out
        await relay.recover()
        task = asyncio.create_task(relay.run())
        for _ in range(500):
            await asyncio.sleep(0.01)
            if sum(store.groups) >= 40 or (idempotent and adapter.calls >= 40):
                break
        written_while_running = sum(store.groups)
        relay.stop()
        await task
    finally:
        await store.close()
    assert receiver.duplicate_creations == 0
    if idempotent:
        assert written_while_running == 0, "idempotent receivers' outcomes linger for company"
        assert sum(store.groups) == 40 and len(store.groups) <= 2, "... and a stop writes them at once, together"
    else:
        assert written_while_running == 40, "an outcome a crash would leave to an operator is written at once"
