"""The same 前置库 adapter against a PostgreSQL exchange database: only the SQLAlchemy URL differs.

PostgreSQL folds unquoted names to lower case and hands back TIMESTAMP, DATE and NUMERIC columns as
``datetime``, ``date`` and ``Decimal``: the packaged mapping reads them all, marks rows, and repairs a crash
between the gateway's commit and the marking from the cursor, as it does on SQLite. Skipped locally without a
server; a failure under CI=true (tests/pgtest.py).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import unquote

import psycopg
import pytest

from adapters import RecordOutcome
from adapters.mapped import parse_mapping
from adapters.specialty import PACKAGED_MAPPING, SpecialtyAdapter
from adapters.zwfw.codec import to_envelope
from mock_platforms.generator import generate_banjian
from mock_platforms.specialty import row_from_banjian

TEXT_COLUMNS = [
    name
    for name in row_from_banjian(generate_banjian(1, 1)[0])
    if name not in ("SLSJ", "BLSJ", "YXQQ", "YXQZ", "SJBBH", "SJYXBS", "SJSCZT", "SJWXYY")
]


@pytest.fixture
def exchange(pg_url: str) -> Iterator[tuple[str, str]]:
    """(psycopg URL with the test's search_path, schema name) with an empty exchange table in that schema."""
    schema = unquote(pg_url).split("search_path=", 1)[1]
    columns = ", ".join(f"{name} VARCHAR(200)" for name in TEXT_COLUMNS)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE spgl_xmspsxblxxb (lsh BIGSERIAL PRIMARY KEY, {columns}, slsj TIMESTAMP, "
            "blsj TIMESTAMP, yxqq DATE, yxqz VARCHAR(8), sjbbh NUMERIC(3) NOT NULL DEFAULT 1, "
            "sjyxbs NUMERIC(1) NOT NULL DEFAULT 1, sjsczt SMALLINT NOT NULL DEFAULT 0, sjwxyy VARCHAR(500))"
        )
    yield pg_url, schema


def insert(url: str, items: list[dict[str, str]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for item in items:
            row = row_from_banjian(item)
            row["SLSJ"] = datetime.strptime(row["SLSJ"], "%Y%m%d%H%M%S") if row["SLSJ"] else None
            row["BLSJ"] = datetime.strptime(row["BLSJ"], "%Y%m%d%H%M%S")
            row["YXQQ"] = datetime.strptime(row["YXQQ"], "%Y%m%d").date() if row["YXQQ"] else None
            names = ", ".join(row)
            conn.execute(
                f"INSERT INTO spgl_xmspsxblxxb ({names}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values())
            )


def marks(url: str) -> list[tuple[int, int, str | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT lsh, sjsczt, sjwxyy FROM spgl_xmspsxblxxb ORDER BY lsh").fetchall()


async def test_postgres_exchange_table_reads_native_types_marks_and_repairs_a_crash(
    exchange: tuple[str, str],
) -> None:
    url, schema = exchange
    items = generate_banjian(6, 17)
    items[4] = dict(items[4], TRANSACT_RESULT="作废办结")
    insert(url, items)
    with psycopg.connect(url, autocommit=True) as conn:  # one row the gateway will reject
        conn.execute("UPDATE spgl_xmspsxblxxb SET blzt = '99' WHERE lsh = 6")
    spec_data = tomllib.loads(PACKAGED_MAPPING.read_text(encoding="utf-8"))
    spec_data["source"]["schema"] = schema  # the exchange table lives in its own schema
    base = url.split("?", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    adapter = SpecialtyAdapter("gcjs", parse_mapping(spec_data), url=base)
    try:
        page = await adapter.poll(None, 4)
        assert [r.payload["LSH"] for r in page.records] == [1, 2, 3, 4]
        assert isinstance(page.records[0].payload["BLSJ"], datetime)
        for record, item in zip(page.records, items, strict=False):
            (envelope,) = adapter.decode(record)
            assert envelope.content_hash == to_envelope(item, source="zwfw").content_hash
        await adapter.acknowledge(page, [RecordOutcome(r) for r in page.records])
        second = await adapter.poll(page.next_cursor, 4)
        assert [r.payload["LSH"] for r in second.records] == [5, 6]
    finally:
        await adapter.aclose()  # crash: page 2 is "stored" (its cursor is second.next_cursor), not marked
    restarted = SpecialtyAdapter("gcjs", parse_mapping(spec_data), url=base)
    try:
        assert (await restarted.poll(second.next_cursor, 4)).records == []
    finally:
        await restarted.aclose()
    got = marks(url)
    assert [m[:2] for m in got] == [(1, 3), (2, 3), (3, 3), (4, 3), (5, 3), (6, 2)]
    assert got[5][2].startswith("BLZT (result) '99' is not one of the codes of code table decision")
