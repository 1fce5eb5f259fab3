"""The 前置库 table source against the specialty mock's exchange database (a real SQLite file).

Adapter-level: poll only pending rows, mark 3 / 2 (or -1) with the reason, never overwrite a mark, keep marks
that could not be written and write them before reading on, read late-committed rows, refuse foreign
cursors and missing columns, and keep the event loop free while the database makes it wait. The crash
between the gateway's commit and the marking is in tests/gateway/test_poller_acknowledge.py.
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters import PermanentError, RecordOutcome, RetryableError
from adapters.errors import DecodeError
from adapters.mapped import parse_mapping
from adapters.specialty import PACKAGED_MAPPING, SpecialtyAdapter
from mock_platforms.control import GenerateRequest
from mock_platforms.faults import FaultUpdate
from mock_platforms.generator import generate_banjian
from mock_platforms.specialty import TABLE, SpecialtyPlatform, row_from_banjian

FAST_LOCK = {"connect_args": {"timeout": 0.2}}  # a locked database fails fast instead of after 5 s


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[SpecialtyPlatform]:
    platform = SpecialtyPlatform(tmp_path / "exchange.db", time.time, 100)
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture
async def adapter(exchange: SpecialtyPlatform) -> AsyncIterator[SpecialtyAdapter]:
    a = SpecialtyAdapter.from_config("gcjs", {"url": exchange.url, "engine_options": FAST_LOCK})
    try:
        yield a
    finally:
        await a.aclose()


def rows(exchange: SpecialtyPlatform) -> dict[int, dict[str, Any]]:
    return {r["LSH"]: r for r in exchange.records_report()["records"]}


def outcomes(adapter: SpecialtyAdapter, page: Any) -> list[RecordOutcome]:
    """What the poller would report: stored unless decode rejects it."""
    result = []
    for record in page.records:
        try:
            adapter.decode(record)
        except DecodeError as exc:
            result.append(RecordOutcome(record, exc.reason))
        else:
            result.append(RecordOutcome(record))
    return result


def good_rows(count: int, seed: int = 5) -> list[dict[str, Any]]:
    return [row_from_banjian(item) for item in generate_banjian(count, seed)]


async def test_polls_pending_rows_in_order_and_pages(exchange: SpecialtyPlatform, adapter: SpecialtyAdapter) -> None:
    exchange.inject(good_rows(5))
    exchange.inject([dict(good_rows(1, 9)[0], SJSCZT=3), dict(good_rows(1, 10)[0], SJSCZT=2)])  # already taken
    exchange.inject(good_rows(2, 11))
    first = await adapter.poll(None, 4)
    assert [r.payload["LSH"] for r in first.records] == [1, 2, 3, 4] and first.has_more
    assert [r.position for r in first.records] == [f"{TABLE}#{i}" for i in (1, 2, 3, 4)]
    assert first.next_cursor == '{"taken":[1,2,3,4]}'
    await adapter.acknowledge(first, outcomes(adapter, first))
    second = await adapter.poll(first.next_cursor, 4)
    assert [r.payload["LSH"] for r in second.records] == [5, 8, 9] and not second.has_more
    await adapter.acknowledge(second, outcomes(adapter, second))
    empty = await adapter.poll(second.next_cursor, 4)
    assert empty.records == [] and empty.next_cursor == second.next_cursor and not empty.has_more
    report = exchange.records_report()
    assert (report["accepted"], report["rejected"], report["pending"]) == (8, 1, 0)  # the 2 injected as failed


async def test_marks_3_for_stored_and_2_with_the_reason_for_rejected(
    exchange: SpecialtyPlatform, adapter: SpecialtyAdapter
) -> None:
    good = good_rows(2)
    exchange.inject([good[0], dict(good[1], BLSJ="2026-13-45", SPSXSLBM="X1"), dict(good[1], SJYXBS=0)])
    page = await adapter.poll(None, 10)
    await adapter.acknowledge(page, outcomes(adapter, page))
    held = rows(exchange)
    assert (held[1]["SJSCZT"], held[1]["SJWXYY"]) == (3, None)
    assert (held[2]["SJSCZT"], held[2]["SJWXYY"]) == (
        2,
        "BLSJ (decided_at) is not a time (%Y%m%d%H%M%S or %Y-%m-%d %H:%M:%S)",
    )
    assert (held[3]["SJSCZT"], held[3]["SJWXYY"]) == (2, "SJYXBS is '0', a record is taken only with SJYXBS = 1")


async def test_rejected_mark_and_reason_length_come_from_the_mapping(
    exchange: SpecialtyPlatform, tmp_path: Path
) -> None:
    data = tomllib.loads(PACKAGED_MAPPING.read_text(encoding="utf-8"))
    data["source"].update(rejected=-1, reason_max_length=20)
    spec = parse_mapping(data)
    adapter = SpecialtyAdapter("gcjs", spec, url=exchange.url)
    try:
        exchange.inject([dict(good_rows(1)[0], BLZT="99")])
        page = await adapter.poll(None, 10)
        await adapter.acknowledge(page, outcomes(adapter, page))
    finally:
        await adapter.aclose()
    row = rows(exchange)[1]
    assert row["SJSCZT"] == -1 and row["SJWXYY"] == "BLZT (result) '99' is"[:20]
    assert exchange.records_report()["rejected"] == 1


async def test_a_mark_never_overwrites_one_already_written(
    exchange: SpecialtyPlatform, adapter: SpecialtyAdapter
) -> None:
    exchange.inject(good_rows(1))
    page = await adapter.poll(None, 10)
    with sqlite3.connect(exchange.path) as other_reader:  # someone else took it meanwhile
        other_reader.execute(f"UPDATE {TABLE} SET SJSCZT = 2, SJWXYY = 'other reader' WHERE LSH = 1")
    await adapter.acknowledge(page, outcomes(adapter, page))
    assert (rows(exchange)[1]["SJSCZT"], rows(exchange)[1]["SJWXYY"]) == (2, "other reader")


async def test_marks_that_cannot_be_written_are_kept_and_written_before_the_next_read(
    exchange: SpecialtyPlatform, adapter: SpecialtyAdapter
) -> None:
    exchange.inject(good_rows(3))
    page = await adapter.poll(None, 2)
    told = [RecordOutcome(page.records[0]), RecordOutcome(page.records[1], "store refused: duplicate upload")]
    exchange.faults.update(FaultUpdate(down=True))  # the exchange database becomes unreachable
    await adapter.acknowledge(page, told)  # must not raise: the page is stored whatever happens here
    with pytest.raises(RetryableError, match=r"exchange database unavailable: OperationalError: database is locked"):
        await adapter.poll(page.next_cursor, 2)
    exchange.faults.update(FaultUpdate(down=False))
    assert rows(exchange)[1]["SJSCZT"] == 0  # nothing was written while it was down
    after = await adapter.poll(page.next_cursor, 2)
    held = rows(exchange)
    # the outcomes the gateway reported, not a re-decode (which would have accepted row 2)
    assert (held[1]["SJSCZT"], held[2]["SJSCZT"], held[2]["SJWXYY"]) == (3, 2, "store refused: duplicate upload")
    assert [r.payload["LSH"] for r in after.records] == [3]


async def test_a_row_committed_late_with_a_lower_order_value_is_still_read(
    exchange: SpecialtyPlatform, adapter: SpecialtyAdapter
) -> None:
    first, late, last = good_rows(3)
    exchange.inject([dict(first, LSH=10), dict(last, LSH=30)])
    page = await adapter.poll(None, 10)
    await adapter.acknowledge(page, outcomes(adapter, page))
    exchange.inject([dict(late, LSH=20)])  # its transaction committed after 30 had been read
    again = await adapter.poll(page.next_cursor, 10)
    assert [r.payload["LSH"] for r in again.records] == [20]


async def test_the_database_being_down_is_retryable_and_does_not_block_the_loop(
    exchange: SpecialtyPlatform, adapter: SpecialtyAdapter
) -> None:
    exchange.inject(good_rows(1))
    exchange.faults.update(FaultUpdate(down=True))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(RetryableError):
            await adapter.poll(None, 10)  # waits out the 0.2 s lock timeout on the DB thread
    finally:
        task.cancel()
    assert ticks >= 5, "the event loop was blocked while the database made the poll wait"
    exchange.faults.update(FaultUpdate(down=False))
    assert len((await adapter.poll(None, 10)).records) == 1


async def test_generated_rows_written_while_down_appear_once_it_is_up(
    exchange: SpecialtyPlatform, adapter: SpecialtyAdapter
) -> None:
    exchange.faults.update(FaultUpdate(down=True))
    exchange.generate(GenerateRequest(count=3, seed=1))
    assert exchange.records_report()["pending"] == 3  # the mock itself still sees its table
    exchange.faults.reset()
    assert len((await adapter.poll(None, 10)).records) == 3


async def test_missing_table_and_columns_are_permanent_and_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    adapter = SpecialtyAdapter.from_config("gcjs", {"url": f"sqlite:///{empty}"})
    try:
        with pytest.raises(PermanentError, match=rf"exchange table {TABLE} does not exist in sqlite:///"):
            await adapter.poll(None, 10)
    finally:
        await adapter.aclose()
    partial = tmp_path / "partial.db"
    with sqlite3.connect(partial) as conn:
        conn.execute(f"CREATE TABLE {TABLE.lower()} (lsh INTEGER PRIMARY KEY, sjsczt INTEGER, SJWXYY TEXT, BLSJ TEXT)")
    adapter = SpecialtyAdapter.from_config("gcjs", {"url": f"sqlite:///{partial}"})
    try:
        with pytest.raises(PermanentError) as caught:
            await adapter.poll(None, 10)
    finally:
        await adapter.aclose()
    # names are matched case-insensitively (Oracle reflects them lower-case): LSH, SJSCZT, BLSJ are found
    assert caught.value.reason.startswith(f"exchange table {TABLE} has no column(s) BLYJ, BLZT, CNLX, CNQX,")
    assert " LSH" not in caught.value.reason and "SJSCZT" not in caught.value.reason


async def test_case_insensitive_columns_read_under_the_mappings_names(tmp_path: Path) -> None:
    db = tmp_path / "lower.db"
    row = good_rows(1)[0]
    columns = ["lsh INTEGER PRIMARY KEY", *(f"{name.lower()} TEXT" for name in row if name != "LSH")]
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TABLE {TABLE} ({', '.join(columns)}, extra_col TEXT)")
        names = [n.lower() for n in row]
        conn.execute(
            f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
    adapter = SpecialtyAdapter.from_config("gcjs", {"url": f"sqlite:///{db}"})
    try:
        page = await adapter.poll(None, 10)
        (envelope,) = adapter.decode(page.records[0])
        await adapter.acknowledge(page, [RecordOutcome(page.records[0])])
    finally:
        await adapter.aclose()
    assert envelope.business_key == row["SPSXSLBM"]
    assert "extra_col" in page.records[0].payload and "SPSXSLBM" in page.records[0].payload
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT sjsczt FROM {TABLE}").fetchone() == ("3",)


@pytest.mark.parametrize("cursor", ["42", '{"next": 1}', '{"taken": [true]}', "{"])
async def test_a_cursor_this_source_did_not_write_is_refused(adapter: SpecialtyAdapter, cursor: str) -> None:
    with pytest.raises(PermanentError, match=r"stored cursor was not written by an exchange-table source"):
        await adapter.poll(cursor, 10)


async def test_text_order_keys(tmp_path: Path) -> None:
    data = copy.deepcopy(tomllib.loads(PACKAGED_MAPPING.read_text(encoding="utf-8")))
    data["source"]["order_column"] = "DFSJZJ"
    db = tmp_path / "text.db"
    row = good_rows(1)[0]
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (DFSJZJ TEXT PRIMARY KEY, {', '.join(f'{n} TEXT' for n in row)})")
        conn.execute(f"INSERT INTO {TABLE} VALUES ({', '.join('?' * (len(row) + 1))})", ["a-1", *row.values()])
    adapter = SpecialtyAdapter("gcjs", parse_mapping(data), url=f"sqlite:///{db}")
    try:
        page = await adapter.poll(None, 10)
        assert page.next_cursor == '{"taken":["a-1"]}'
        # a crash before acknowledge: the next poll marks it from the cursor and hands out nothing
        assert (await adapter.poll(page.next_cursor, 10)).records == []
    finally:
        await adapter.aclose()
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT SJSCZT FROM {TABLE}").fetchone() == ("3",)
