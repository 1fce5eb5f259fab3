"""Store fixtures: every store test runs against SQLite and PostgreSQL alike.

``store`` is parametrized by backend and built on a ``FakeClock`` the test can move (leases expire by the
store's clock, not by sleeping). ``store_factory`` opens more stores on the *same* database — several
gateway instances — which only PostgreSQL supports.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SQLiteStore


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if backend == "sqlite":
        return str(tmp_path / "s.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store_factory(backend: str, store_url: str, clock: FakeClock) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Open a store on the test's database (``exclusive=False`` for extra SQLite readers); closed after."""
    opened: list[Any] = []

    async def make(**kwargs: Any) -> Any:
        if backend == "sqlite":
            exclusive = kwargs.pop("exclusive", not opened)
            store: Any = SQLiteStore(store_url, synchronous="NORMAL", clock=kwargs.pop("clock", clock), **kwargs)
            await store.open(exclusive=exclusive)
        else:
            store = PostgresStore(store_url, clock=kwargs.pop("clock", clock), pool_max=4, **kwargs)
            await store.open()
        opened.append(store)
        return store

    yield make
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(store_factory: Callable[..., Awaitable[Any]]) -> Any:
    return await store_factory()
