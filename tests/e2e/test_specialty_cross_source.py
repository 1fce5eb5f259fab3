"""One approval arriving from the 政务服务一体化平台 and from the 工程建设 前置库 is one fact, relayed once.

In process, over real HTTP: the zwfw mock and the specialty mock carry the same approvals (same seed: same
办件编号 and content, including duplicates and 重报), the gateway polls both and relays to the hlwjg mock,
which is faulty on purpose. The receiver must hold each fact once at its latest revision, and every row of
the exchange table must end up marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.config import Config
from gateway.demo import DEMO_FAULTS, relay_config
from gateway.runtime import Gateway
from mock_platforms import create_app
from mock_platforms.server import run_in_background

# Exchange rows the reader must mark failed (2, reason in SJWXYY) rather than skip; shared with test_all_platforms.
BAD_ROWS: list[dict[str, Any]] = [
    {"SPSXSLBM": "320700261121000099001", "BLZT": "11", "SJSCZT": 0},  # most fields missing
    {"SPSXSLBM": "320700261121000099002", "SJYXBS": 0},  # flagged invalid by the system
    {"SPSXSLBM": "320700261121000099003", "BLSJ": "2026-02-30 25:00:00", "BLZT": "11"},
]


def config(base_url: str, db: Path, specialty_url: str, *, zwfw: bool = True) -> Config:
    data = relay_config(base_url, db).model_dump(mode="json", exclude_none=True)
    data["sources"]["gcjs"] = {"adapter": "specialty", "url": specialty_url, "poll_interval_s": 0.2, "page_size": 40}
    if not zwfw:
        del data["sources"]["zwfw"]
    return Config.model_validate(data)


async def relay(tmp_path: Path, setup: Any, *, zwfw: bool = True) -> dict[str, Any]:
    mocks = await run_in_background(app=create_app(specialty_db=tmp_path / "exchange.db"))
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url, timeout=30) as client:
            generated = await setup(client)
            await client.post("/hlwjg/_mock/faults", json={**DEMO_FAULTS, "seed": 3})
            specialty_url = (await client.get("/specialty/")).json()["url"]
            gateway = Gateway(config(mocks.base_url, tmp_path / "gateway.db", specialty_url, zwfw=zwfw))
            await gateway.start()
            try:
                assert await gateway.wait_idle(timeout_s=120), "gateway did not settle"
                status = await gateway.store.status()
            finally:
                await gateway.stop()
            return {
                "generated": generated,
                "status": status,
                "hlwjg": (await client.get("/hlwjg/_mock/records")).json(),
                "specialty": (await client.get("/specialty/_mock/records")).json(),
                "zwfw_feed": (await client.get("/zwfw/_mock/records")).json()["feed_size"],
            }
    finally:
        await mocks.stop()


def latest_revisions(rows: list[dict[str, Any]]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for row in rows:
        latest[row["SPSXSLBM"]] = max(latest.get(row["SPSXSLBM"], 0), int(row["SJBBH"]))
    return latest


async def test_overlapping_approvals_from_zwfw_and_the_exchange_table_are_relayed_once(tmp_path: Path) -> None:
    async def setup(client: httpx.AsyncClient) -> dict[str, Any]:
        body = {"count": 120, "seed": 11, "duplicate_rate": 0.1, "revision_rate": 0.1}
        zwfw = (await client.post("/zwfw/_mock/generate", json=body)).json()
        specialty = (await client.post("/specialty/_mock/generate", json=body)).json()
        assert zwfw == specialty  # same approvals on both platforms
        return specialty

    result = await relay(tmp_path, setup)
    unique = result["generated"]["unique_facts"]
    hlwjg, specialty, status = result["hlwjg"], result["specialty"], result["status"]
    assert hlwjg["accepted"] == unique and hlwjg["duplicate_creations"] == 0
    held = {r["approvalNo"]: r["dataVersion"] for r in hlwjg["records"]}
    assert held == latest_revisions(specialty["records"])  # every fact at its latest 重报
    rows = len(specialty["records"])
    assert rows == result["generated"]["generated"] and specialty["pending"] == 0
    assert specialty["accepted"] == rows and specialty["rejected"] == 0  # every 前置库 row marked 3
    # each of the 2 × rows items was stored once: as a relayed version or as a suppressed repeat
    assert status["messages"] + status["duplicates_suppressed"] == 2 * rows
    assert status["rejected"] == 0


async def test_the_exchange_table_alone_with_bad_rows_marks_every_row(tmp_path: Path) -> None:
    async def setup(client: httpx.AsyncClient) -> dict[str, Any]:
        generated = (await client.post("/specialty/_mock/generate", json={"count": 30, "seed": 5})).json()
        await client.post("/specialty/_mock/inject", json={"records": BAD_ROWS})
        return generated

    result = await relay(tmp_path, setup, zwfw=False)
    specialty = result["specialty"]
    assert (specialty["accepted"], specialty["rejected"], specialty["pending"]) == (30, 3, 0)
    reasons = [r["SJWXYY"] for r in specialty["records"] if r["SJSCZT"] == 2]
    assert len(reasons) == 3 and all(reasons)
    assert any(r.startswith("SJYXBS is '0'") for r in reasons), reasons
    assert result["hlwjg"]["accepted"] == 30 and result["hlwjg"]["duplicate_creations"] == 0
    assert result["status"]["rejected"] == 3


async def test_a_poorer_copy_from_the_exchange_table_is_one_fact_too(tmp_path: Path) -> None:
    """The 前置库 may lack a field the platform carries (here the phone), so the two copies hash differently.
    Same revision and same decision time: whichever arrives second is suppressed as stale — one fact at the
    receiver, carrying the first arrival's content (documented in docs/architecture.md)."""

    async def setup(client: httpx.AsyncClient) -> dict[str, Any]:
        generated = (await client.post("/zwfw/_mock/generate", json={"count": 1, "seed": 2})).json()
        await client.post("/specialty/_mock/generate", json={"count": 1, "seed": 2})
        (row,) = (await client.get("/specialty/_mock/records")).json()["records"]
        assert row["LXDH"]
        await client.post("/specialty/_mock/reset")
        poorer = {k: v for k, v in row.items() if k not in ("LSH", "LXDH")}
        await client.post("/specialty/_mock/inject", json={"records": [poorer]})
        return generated

    result = await relay(tmp_path, setup)
    assert result["hlwjg"]["accepted"] == 1 and result["hlwjg"]["duplicate_creations"] == 0
    assert result["specialty"]["accepted"] == 1 and result["specialty"]["pending"] == 0
    assert result["status"]["messages"] == 1 and result["status"]["duplicates_suppressed"] == 1
