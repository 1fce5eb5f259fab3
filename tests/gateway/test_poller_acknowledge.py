"""The poller tells an acknowledging source what became of each record, only after the page is committed;
and a 前置库 whose gateway crashed between that commit and the marking is neither re-read nor left unmarked."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from adapters import Capabilities, Direction, PollPage, RawRecord, RecordOutcome
from adapters.specialty import SpecialtyAdapter
from gateway.config import SourceConfig
from gateway.poller import SourcePoller
from gateway.store.base import Route
from gateway.store.sqlite import SQLiteStore
from mock_platforms.generator import generate_banjian
from mock_platforms.specialty import SpecialtyPlatform, row_from_banjian
from pollers import run_until_caught_up
from schemas import Envelope

CONFIG = SourceConfig(adapter="test", poll_interval_s=0.01, page_size=4)


def route_all(_env: Envelope) -> list[Route]:
    return [Route("hlwjg")]


class ScriptedSource:
    """Two pages of zwfw-like items (one malformed); records every acknowledgement and what the store held then."""

    version: ClassVar[str] = "0"
    capabilities: ClassVar[Capabilities] = Capabilities(direction=Direction.source)

    def __init__(self, store: SQLiteStore, *, fail_ack: bool = False) -> None:
        self.name = "src"
        self.store = store
        self.fail_ack = fail_ack
        one, two, three = generate_banjian(3, 1)
        self.pages = [[one, {"PROJID": "bad"}, two], [three]]
        self.acks: list[tuple[str | None, list[tuple[str | None, str | None]], str | None]] = []

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:  # pragma: no cover - not built by config
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        index = int(cursor or 0)
        if index >= len(self.pages):
            return PollPage([], cursor)
        records = [RawRecord(item, position=f"{index}+{i}") for i, item in enumerate(self.pages[index])]
        return PollPage(records, str(index + 1), has_more=index + 1 < len(self.pages))

    def decode(self, record: RawRecord) -> list[Envelope]:
        from adapters.zwfw.codec import to_envelope

        return [to_envelope(record.payload, source=self.name)]

    async def acknowledge(self, page: PollPage, outcomes: Sequence[RecordOutcome]) -> None:
        stored_cursor = await self.store.get_cursor(self.name)
        self.acks.append((page.next_cursor, [(o.record.position, o.rejected) for o in outcomes], stored_cursor))
        if self.fail_ack:
            raise RuntimeError("exchange database gone")


async def test_acknowledge_gets_each_records_fate_after_the_commit(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", synchronous="NORMAL")
    await store.open()
    try:
        source = ScriptedSource(store)
        await run_until_caught_up(SourcePoller("src", source, CONFIG, store, route_all))
    finally:
        await store.close()
    first, second = source.acks
    assert first[0] == first[2] == "1"  # the page's cursor was already stored when it was acknowledged
    assert second[0] == second[2] == "2"
    assert [pos for pos, _ in first[1]] == ["0+0", "0+1", "0+2"]
    assert first[1][0][1] is None and first[1][2][1] is None
    assert first[1][1][0] == "0+1" and (first[1][1][1] or "").startswith("missing field")  # the stored reason
    assert second[1] == [("1+0", None)]
    assert len(source.acks) == 2  # empty pages are not acknowledged


async def test_a_failing_acknowledge_does_not_stop_the_feed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", synchronous="NORMAL")
    await store.open()
    try:
        source = ScriptedSource(store, fail_ack=True)
        await run_until_caught_up(SourcePoller("src", source, CONFIG, store, route_all))
        status = await store.status()
    finally:
        await store.close()
    assert len(source.acks) == 2
    assert status["messages"] == 3 and status["rejected"] == 1


class Handouts:
    """Wraps the specialty adapter: counts how often each row is handed to the gateway, and can 'crash'
    the process after a page is committed and before its rows are marked."""

    def __init__(self, adapter: SpecialtyAdapter, seen: dict[int, int], *, crash_on_ack: int | None = None) -> None:
        self.inner = adapter
        self.name = adapter.name
        self.capabilities = adapter.capabilities
        self.seen = seen
        self.crash_on_ack = crash_on_ack
        self.acks = 0
        self.crashed = asyncio.Event()

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        page = await self.inner.poll(cursor, limit)
        for record in page.records:
            self.seen[record.payload["LSH"]] = self.seen.get(record.payload["LSH"], 0) + 1
        return page

    def decode(self, record: RawRecord) -> list[Envelope]:
        return self.inner.decode(record)

    async def acknowledge(self, page: PollPage, outcomes: Sequence[RecordOutcome]) -> None:
        self.acks += 1
        if self.acks == self.crash_on_ack:
            self.crashed.set()
            await asyncio.Event().wait()  # the process dies here: the page is committed, its rows unmarked
        await self.inner.acknowledge(page, outcomes)


async def test_a_crash_between_commit_and_marking_neither_rereads_nor_leaves_rows_unmarked(tmp_path: Path) -> None:
    exchange = SpecialtyPlatform(tmp_path / "exchange.db", time.time, 100)
    items = generate_banjian(10, 21)
    rows = [row_from_banjian(item) for item in items]
    rows[5] = dict(rows[5], BLZT="99")  # one row the gateway rejects: it must end up marked 2 with the reason
    rows[6] = dict(rows[6], SJYXBS=0)  # and one the system flags invalid
    exchange.inject(rows)
    seen: dict[int, int] = {}
    db = tmp_path / "gateway.db"

    # First life: pages of 4; dies right after the second page (rows 5-8) is committed.
    store = SQLiteStore(db, synchronous="NORMAL")
    await store.open()
    adapter = SpecialtyAdapter.from_config("gcjs", {"url": exchange.url})
    first = Handouts(adapter, seen, crash_on_ack=2)
    poller = SourcePoller("gcjs", first, CONFIG, store, route_all)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(first.crashed.wait(), 20)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await adapter.aclose()
    await store.close()
    between = {r["LSH"]: r["SJSCZT"] for r in exchange.records_report()["records"]}
    assert [between[i] for i in range(1, 11)] == [3, 3, 3, 3, 0, 0, 0, 0, 0, 0]  # page 2 stored, not marked
    assert await_cursor(db) == '{"taken":[5,6,7,8]}'

    # Second life: a fresh process on the same gateway database.
    store = SQLiteStore(db, synchronous="NORMAL")
    await store.open()
    adapter = SpecialtyAdapter.from_config("gcjs", {"url": exchange.url})
    try:
        second = Handouts(adapter, seen)
        await run_until_caught_up(SourcePoller("gcjs", second, CONFIG, store, route_all))
        status = await store.status()
        rejected = await store.rejected()
    finally:
        await adapter.aclose()
        await store.close()
    assert seen == dict.fromkeys(range(1, 11), 1), "a row was handed to the gateway twice"
    assert status["messages"] == 8 and status["rejected"] == 2 and status["duplicates_suppressed"] == 0
    report = exchange.records_report()
    assert (report["accepted"], report["rejected"], report["pending"]) == (8, 2, 0)
    marks = {r["LSH"]: (r["SJSCZT"], r["SJWXYY"]) for r in report["records"]}
    reasons = {r["position"]: r["reason"] for r in rejected}
    assert marks[6] == (2, reasons["SPGL_XMSPSXBLXXB#6"])  # the store's reason, re-derived after the crash
    assert marks[7] == (2, reasons["SPGL_XMSPSXBLXXB#7"])
    assert marks[6][1].startswith("BLZT (result) '99' is not one of the codes of code table decision")
    exchange.close()


def await_cursor(db: Path) -> str | None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT cursor FROM cursors WHERE source = 'gcjs'").fetchone()
    return row[0] if row else None
