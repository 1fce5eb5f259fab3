"""End to end under faults: 政务服务一体化平台 (zwfw) → shenguan → 公共信用信息平台 (credit), in batches.

The credit mock fails whole uploads (HTTP 500 before applying anything), drops the connection after applying
an upload, and lets tokens expire every few seconds; some approvals carry a 统一社会信用代码 whose check
character is right (so the gateway accepts it) but whose category the platform refuses. What must hold:

- every valid granted approval reaches credit exactly once: the platform holds one record per fact and
  created none twice, revisions (重报) updated their record;
- the invalid ones are dead with the platform's reason, and the platform judged each of them exactly once —
  a lost reply is settled by a status query, never by submitting again;
- refusals and returned cases (not granted) are not routed to credit at all.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.config import Config
from gateway.runtime import Gateway
from mock_platforms.generator import issuer_code
from mock_platforms.identifiers import uscc_check_char
from mock_platforms.server import run_in_background

FAULTS = {"error_rate": 0.25, "drop_response_rate": 0.25, "token_ttl_s": 2, "seed": 5}
INVALID_CODES = [p + uscc_check_char(p) for p in ("94320700MA1X2Y3K0", "95320706MA2B3C4D0", "15320707MB0012345")]


def config(base_url: str, db: Path) -> Config:
    return Config.model_validate(
        {
            "gateway": {"db": str(db), "sqlite_synchronous": "NORMAL", "shutdown_grace_s": 5},
            "sources": {
                "zwfw": {
                    "adapter": "zwfw",
                    "base_url": f"{base_url}/zwfw",
                    "paasid": "shenguan",
                    "token": "zwfw-mock-token",
                    "poll_interval_s": 0.2,
                    "page_size": 50,
                }
            },
            "destinations": {
                "credit": {
                    "adapter": "credit",
                    "base_url": f"{base_url}/credit",
                    "app_key": "shenguan",
                    "app_secret": "credit-mock-secret",
                    "authority_name": "连云港市行政审批局",
                    "authority_code": issuer_code("320700"),
                    "batch_size": 6,
                    "batch_max_age_s": 0.2,
                    "concurrency": 2,
                    "max_attempts": 40,
                    "backoff_initial_s": 0.05,
                    "backoff_max_s": 0.5,
                    "backoff_jitter_s": 0.05,
                    "breaker_failures": 100,
                    "breaker_cooldown_s": 0.2,
                    "timeout_s": 10,
                }
            },
            "routes": [{"type": "approval.decided", "destinations": ["credit"], "where": {"result": ["granted"]}}],
        }
    )


def granted(item: dict[str, Any]) -> bool:
    return item["TRANSACT_RESULT"] == "办结" and not item["TRANSACT_DESCRIBE"].startswith("不予")


def invalid_variants(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Granted company approvals whose code passes GB 32100's check character but not its category table."""
    items = []
    for i, code in enumerate(INVALID_CODES):
        item = copy.deepcopy(template)
        item.update(
            PROJID=f"320700261121{900000 + i:09d}",
            APPLY_TYPE="2",
            APPLY_CARDTYPE="001",
            APPLY_CARDNUMBER=code,
            LEGALMAN="李某",
            XK_WSH=f"连审批无效〔2026〕{i + 1}号",
            MJ="",
            DATAVERSION="1",
        )
        items.append(item)
    return items


async def test_partial_credit_batches_under_faults_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    mocks = await run_in_background()
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url, timeout=30) as client:
            await client.post(
                "/zwfw/_mock/generate", json={"count": 60, "seed": 11, "duplicate_rate": 0.1, "revision_rate": 0.1}
            )
            await client.post("/credit/_mock/faults", json=FAULTS)
            gateway = Gateway(config(mocks.base_url, tmp_path / "g.db"))
            generated = await zwfw_feed(client)
            template = next(i for i in generated if granted(i) and i["APPLY_TYPE"] == "2")
            invalid = invalid_variants(template)
            await client.post("/zwfw/_mock/inject", json={"records": invalid})
            await gateway.start()
            try:
                assert await gateway.wait_idle(timeout_s=120), "the gateway did not settle"
                status = await gateway.store.status()
            finally:
                await gateway.stop()
            credit = (await client.get("/credit/_mock/records")).json()
            traffic = (await client.get("/credit/_mock/traffic")).json()
    finally:
        await mocks.stop()

    valid_granted = {i["PROJID"] for i in generated if granted(i)}
    not_granted = {i["PROJID"] for i in generated} - valid_granted
    latest: dict[str, int] = {}
    for item in generated:
        if granted(item):
            latest[item["PROJID"]] = max(latest.get(item["PROJID"], 0), int(item["DATAVERSION"]))

    faults = [t["fault"] for t in traffic if t["path"].endswith("/api/v1/batches")]
    assert faults.count("error") >= 1 and faults.count("drop") >= 1, f"the faults were not exercised: {faults}"

    assert credit["duplicate_creations"] == 0
    assert credit["accepted"] == len(valid_granted), "every valid granted approval is held once"
    by_case = {}
    for record in credit["records"]:
        assert record["submissions"] == len(record["recordIds"]), "each version judged once, never replayed"
        by_case[record["data"]["XK_WSH"]] = record["version"]
    wsh = {i["PROJID"]: i["XK_WSH"] for i in generated if granted(i)}
    assert {case: by_case[wsh[case]] for case in latest} == latest, "revisions (重报) updated their record"

    assert credit["rejected"] == len(INVALID_CODES)
    for rejection in credit["rejections"]:
        assert rejection["submissions"] == 1, "an invalid record was judged exactly once"
        assert "XK_XDR_SHXYM" in rejection["reason"] and "机构类别码" in rejection["reason"]

    deliveries = status["deliveries"]
    assert deliveries["dead"] == len(INVALID_CODES) and deliveries["uncertain"] == 0
    assert deliveries["pending"] == deliveries["retry_wait"] == deliveries["in_flight"] == 0
    with sqlite3.connect(tmp_path / "g.db") as db:
        dead = db.execute(
            "SELECT m.business_key, d.last_error FROM deliveries d JOIN messages m ON m.id = d.message_id "
            "WHERE d.state = 'dead'"
        ).fetchall()
        held_back = {row[0] for row in db.execute("SELECT business_key FROM messages WHERE routed = 0")}
        routed = {
            row[0]
            for row in db.execute("SELECT m.business_key FROM deliveries d JOIN messages m ON m.id = d.message_id")
        }
    assert held_back == not_granted and not routed & not_granted, "refusals and returned cases never go to credit"
    assert status["unrouted"] >= len(not_granted)
    assert {key for key, _ in dead} == {i["PROJID"] for i in invalid}
    assert all("credit rejected the record: XK_XDR_SHXYM" in error for _, error in dead), dead


async def zwfw_feed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The generated feed, as the platform serves it (signed native API, independent of the gateway)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        ts, nonce = str(int(time.time())), secrets.token_hex(8)
        signature = hashlib.sha256(f"{ts}zwfw-mock-token{nonce}{ts}".encode()).hexdigest()
        headers = {
            "x-tif-paasid": "shenguan",
            "x-tif-timestamp": ts,
            "x-tif-nonce": nonce,
            "x-tif-signature": signature,
        }
        params: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/zwfw/api/v1/banjian/changes", params=params, headers=headers)).json()
        assert body["code"] == "200", body
        items.extend(body["data"]["items"])
        if not body["data"]["has_more"]:
            return items
        cursor = body["data"]["next_cursor"]
