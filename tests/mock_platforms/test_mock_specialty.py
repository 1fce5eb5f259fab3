"""The 前置库 mock (``/specialty``): its exchange table, the _mock contract, overlap with zwfw, and "down"."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mock_platforms.app import MockPlatformsApp, create_app
from mock_platforms.generator import generate_banjian
from mock_platforms.specialty import COLUMN_NAMES, TABLE, row_from_banjian


def exchange_url(app: MockPlatformsApp) -> Path:
    return app.platforms["specialty"].path  # type: ignore[attr-defined]


async def test_native_endpoint_says_where_the_exchange_database_is(
    client: httpx.AsyncClient, app: MockPlatformsApp
) -> None:
    info = (await client.get("/specialty/")).json()
    assert info["url"] == f"sqlite:///{exchange_url(app)}" and info["tables"] == [TABLE]
    assert info["columns"][0] == "LSH" and {"SJSCZT", "SJWXYY", "SJYXBS", "XZQHDM", "XMDM"} <= set(info["columns"])
    assert (await client.get("/")).json()["platforms"]["specialty"] == "/specialty"


async def test_generate_writes_the_zwfw_approvals_as_exchange_rows(
    client: httpx.AsyncClient, zwfw_headers: Callable[..., dict[str, str]]
) -> None:
    body = {"count": 20, "seed": 4, "duplicate_rate": 0.1, "revision_rate": 0.1, "secret_rate": 0.1}
    zwfw = (await client.post("/zwfw/_mock/generate", json=body)).json()
    specialty = (await client.post("/specialty/_mock/generate", json=body)).json()
    assert specialty == zwfw == {"generated": 24, "unique_facts": 20}
    feed = (await client.get("/zwfw/api/v1/banjian/changes", params={"limit": 100}, headers=zwfw_headers())).json()
    rows = (await client.get("/specialty/_mock/records")).json()["records"]
    assert [(r["SPSXSLBM"], r["SJBBH"]) for r in rows] == [
        (i["PROJID"], int(i["DATAVERSION"])) for i in feed["data"]["items"]
    ]
    assert [r["LSH"] for r in rows] == list(range(1, 25))
    assert all(r["SJSCZT"] == 0 and r["SJYXBS"] == 1 and r["SJWXYY"] is None for r in rows)
    # a second call continues the 办件编号 sequence, as zwfw's does
    more = (await client.post("/specialty/_mock/generate", json={"count": 2, "seed": 4})).json()
    assert more == {"generated": 2, "unique_facts": 2}
    projids = [r["SPSXSLBM"] for r in (await client.get("/specialty/_mock/records")).json()["records"]]
    assert len(set(projids)) == 22


def test_rows_follow_the_exchange_tables_conventions() -> None:
    items = generate_banjian(200, 8)
    for item in items:
        row = row_from_banjian(item)
        assert set(row) == set(COLUMN_NAMES) - {"LSH"}
        assert len(row["BLSJ"]) == 14 and row["BLSJ"].isdigit()  # yyyyMMddHHmmss
        assert row["BLZT"] in {"11", "12", "13", "14", "15"}
        assert row["SQRZJLX"] in {"01", "02", "03", "99"}
        assert row["YXQZ"] is None or row["YXQZ"] == "长期" or (len(row["YXQZ"]) == 8 and row["YXQZ"].isdigit())
        assert all(value != "" for value in row.values())  # absent is NULL in a database
    refused = next(i for i in items if i["TRANSACT_DESCRIBE"] == "不予许可")
    assert row_from_banjian(refused)["BLZT"] == "12"
    long_term = next(i for i in items if i["XK_YXQZI"] == "2099-12-31")
    assert row_from_banjian(long_term)["YXQZ"] == "20991231"


async def test_records_counts_marks(client: httpx.AsyncClient, app: MockPlatformsApp) -> None:
    await client.post("/specialty/_mock/generate", json={"count": 6, "seed": 1})
    with sqlite3.connect(exchange_url(app)) as reader:  # what a reader of the exchange database does
        reader.execute(f"UPDATE {TABLE} SET SJSCZT = 3 WHERE LSH <= 3")
        reader.execute(f"UPDATE {TABLE} SET SJSCZT = 2, SJWXYY = 'BLSJ (decided_at) is not a time' WHERE LSH = 4")
        reader.execute(f"UPDATE {TABLE} SET SJSCZT = -1, SJWXYY = 'refused' WHERE LSH = 5")
    report = (await client.get("/specialty/_mock/records")).json()
    assert (report["platform"], report["accepted"], report["rejected"], report["pending"]) == ("specialty", 3, 2, 1)
    assert report["duplicate_creations"] == 0 and report["by_status"] == {"3": 3, "2": 1, "-1": 1, "0": 1}
    assert len((await client.get("/specialty/_mock/records", params={"limit": 2})).json()["records"]) == 2


async def test_inject_writes_exactly_these_rows_odd_ones_included(client: httpx.AsyncClient) -> None:
    odd = [
        {"SPSXSLBM": "320700261121000000001", "BLSJ": "not a time", "CNQX": 20},
        {"SPSXSLBM": "320700261121000000002", "SQRMC": ["a", "list"], "SJYXBS": 0},
        {"LSH": 100, "SPSXSLBM": "320700261121000000003", "SJSCZT": 3},
    ]
    assert (await client.post("/specialty/_mock/inject", json={"records": odd})).json() == {"injected": 3}
    rows = (await client.get("/specialty/_mock/records")).json()["records"]
    assert [r["LSH"] for r in rows] == [1, 2, 100]
    assert rows[0]["BLSJ"] == "not a time" and rows[0]["SJSCZT"] == 0 and rows[0]["SJYXBS"] == 1
    assert rows[1]["SQRMC"] == '["a", "list"]' and rows[1]["SJYXBS"] == 0
    assert rows[2]["SJSCZT"] == 3
    unknown = await client.post("/specialty/_mock/inject", json={"records": [{"NOPE": 1}]})
    assert unknown.status_code == 422 and "no column(s) NOPE" in unknown.text
    not_a_row = await client.post("/specialty/_mock/inject", json={"records": ["x"]})
    assert not_a_row.status_code == 422
    assert len((await client.get("/specialty/_mock/records")).json()["records"]) == 3  # refused batches add nothing


async def test_reset_empties_the_table_and_restarts_the_sequence(client: httpx.AsyncClient) -> None:
    await client.post("/specialty/_mock/generate", json={"count": 3, "seed": 1})
    first = (await client.get("/specialty/_mock/records")).json()["records"][0]["SPSXSLBM"]
    assert (await client.post("/specialty/_mock/reset")).json() == {"platform": "specialty", "reset": True}
    assert (await client.get("/specialty/_mock/records")).json()["records"] == []
    await client.post("/specialty/_mock/generate", json={"count": 1, "seed": 1})
    assert (await client.get("/specialty/_mock/records")).json()["records"][0]["SPSXSLBM"] == first


async def test_down_locks_the_database_and_the_control_plane_still_works(
    client: httpx.AsyncClient, app: MockPlatformsApp
) -> None:
    await client.post("/specialty/_mock/generate", json={"count": 2, "seed": 1})
    await client.post("/specialty/_mock/faults", json={"down": True})
    with sqlite3.connect(exchange_url(app), timeout=0.05) as reader:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            reader.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()
    assert (await client.get("/specialty/")).status_code == 503  # the native endpoint is down too
    await client.post("/specialty/_mock/generate", json={"count": 1, "seed": 2})  # the system keeps writing
    assert (await client.get("/specialty/_mock/records")).json()["pending"] == 3
    await client.post("/specialty/_mock/faults", json={"down": False})
    with sqlite3.connect(exchange_url(app), timeout=1) as reader:
        assert reader.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone() == (3,)
    await client.post("/specialty/_mock/faults", json={"down": True})
    await client.post("/specialty/_mock/reset")  # reset also brings it back up
    with sqlite3.connect(exchange_url(app), timeout=1) as reader:
        assert reader.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone() == (0,)


def test_a_given_database_file_is_emptied_and_used(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "exchange.db"
    first = create_app(specialty_db=db)
    first.platforms["specialty"].inject([{"SPSXSLBM": "x"}])
    second = create_app(specialty_db=db)  # a restarted mock starts empty
    assert second.platforms["specialty"].records_report()["records"] == []
    assert second.platforms["specialty"].records_report()["url"] == f"sqlite:///{db.resolve()}"
