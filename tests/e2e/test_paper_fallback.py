"""Paper delivery end to end: a destination down beyond its retry budget falls back to paper, the operator
renders and confirms it, and nothing is sent twice when the destination returns; a secret (涉密)
approval goes only to paper and none of its content crosses the wire."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from pypdf import PdfReader
from test_malformed_feed import variant
from typer.testing import CliRunner

from gateway.cli import app
from gateway.demo import relay_config
from gateway.runtime import Gateway
from mock_platforms.server import run_in_background

PUBLIC = variant("320700261121000000301", APPLYNAME="连云港海州区公开餐饮有限公司")
SECRET = variant(
    "320700261121000000302", APPLYNAME="连云港涉密单位某某研究所", APPLY_CARDNUMBER="91320706MA2Y3K4L53", MJ="秘密"
)


async def cli(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    # JSON reports are read from stdout alone: log lines (this process's gateway too) go to stderr.
    return result.exit_code, result.stdout if "--json" in args else result.output


async def test_down_beyond_budget_goes_to_paper_and_is_never_sent_twice(tmp_path: Path) -> None:
    mocks = await run_in_background()
    cfg = relay_config(mocks.base_url, tmp_path / "g.db")
    hlwjg = cfg.destinations["hlwjg"]
    hlwjg.max_attempts, hlwjg.paper_fallback, hlwjg.paper_recipient = 3, True, "连云港市市场监督管理局"
    cfg.paper.dir = str(tmp_path / "paper")
    operator_config = tmp_path / "operator.toml"  # what the operator's CLI reads: store, paper dir, recipients
    operator_config.write_text(
        f'[gateway]\ndb = "{cfg.gateway.db}"\n[paper]\ndir = "{cfg.paper.dir}"\nissuer = "连云港市海州区行政审批局"\n'
        '[destinations.hlwjg]\nadapter = "hlwjg"\npaper_recipient = "连云港市市场监督管理局"\n',
        encoding="utf-8",
    )
    db = ["--config", str(operator_config)]
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url) as client:
            await client.post("/hlwjg/_mock/faults", json={"down": True})
            await client.post("/zwfw/_mock/inject", json={"records": [PUBLIC, SECRET]})
            gateway = Gateway(cfg)
            await gateway.start()
            try:
                async with asyncio.timeout(20):
                    while (await gateway.store.status())["deliveries"]["paper_pending"] < 2:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)

                code, out = await cli("paper", "list", "--json", *db)
                items = {i["business_key"]: i for i in json.loads(out)}
                assert code == 0 and set(items) == {PUBLIC["PROJID"], SECRET["PROJID"]}
                public_id, secret_id = items[PUBLIC["PROJID"]]["id"], items[SECRET["PROJID"]]["id"]
                assert items[PUBLIC["PROJID"]]["fallback"] and not items[SECRET["PROJID"]]["fallback"]
                assert "retry budget of 3 attempts spent" in items[PUBLIC["PROJID"]]["reason"]

                code, out = await cli("paper", "recall", str(secret_id), *db)
                assert code == 2 and "cannot go electronic" in out

                code, out = await cli("paper", "render", "--all", "--out", "../escape.pdf", *db)
                assert code == 2 and not (tmp_path / "escape.pdf").exists()
                code, out = await cli("paper", "render", "--all", "--out", "day.pdf", "--json", *db)
                assert code == 0, out
                report = json.loads(out.strip().splitlines()[-1])
                assert sorted(report["rendered"]) == sorted([public_id, secret_id])
                text = "\n".join(p.extract_text() for p in PdfReader(Path(cfg.paper.dir) / "day.pdf").pages)
                assert "连云港海州区公开餐饮有限公司" in text and "送达回证" in text
                assert f"送达编号：{public_id}" in text and f"送达编号：{secret_id}" in text

                code, out = await cli("paper", "recall", str(public_id), *db)
                assert code == 2 and "already printed" in out, "once printed, electronic delivery is over"
                code, out = await cli(
                    "paper",
                    "confirm",
                    str(public_id),
                    "--receiver",
                    "张三",
                    "--signed-at",
                    "2026-11-23",
                    "--method",
                    "直接送达",
                    "--operator",
                    "tester",
                    *db,
                )
                assert code == 0, out
                events = await gateway.store.paper_events(public_id)
                assert [e["kind"] for e in events] == ["printed", "confirmed"]
                assert events[1]["detail"]["recorded_by"] == "tester" and events[1]["detail"]["receiver"] == "张三"

                # The destination comes back: nothing is sent for what went to paper.
                before = len((await client.get("/hlwjg/_mock/traffic")).json())
                await client.post("/hlwjg/_mock/faults", json={"down": False})
                await asyncio.sleep(1.0)
                status = await gateway.store.status()
            finally:
                await gateway.stop()
            held = (await client.get("/hlwjg/_mock/records")).json()
            traffic = (await client.get("/hlwjg/_mock/traffic")).json()
            zwfw_traffic = (await client.get("/zwfw/_mock/traffic")).json()
    finally:
        await mocks.stop()
    assert status["deliveries"]["paper_delivered"] == 1 and status["deliveries"]["paper_pending"] == 1
    assert held["accepted"] == 0 and held["duplicate_creations"] == 0
    assert before == 3 and all(t["fault"] == "down" for t in traffic), "the retry budget, spent while it was down"
    assert len(traffic) == before, "after it came back, nothing was sent for what went to paper"
    wire = json.dumps(traffic + zwfw_traffic, ensure_ascii=False)
    assert SECRET["PROJID"] not in wire and SECRET["APPLYNAME"] not in wire, "no secret content on the wire"


async def test_secret_approval_goes_only_to_paper_while_the_platform_is_up(tmp_path: Path) -> None:
    mocks = await run_in_background()
    cfg = relay_config(mocks.base_url, tmp_path / "g.db")
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url) as client:
            await client.post("/zwfw/_mock/inject", json={"records": [PUBLIC, SECRET]})
            gateway = Gateway(cfg)
            await gateway.start()
            try:
                assert await gateway.wait_idle(timeout_s=20)
                status = await gateway.store.status()
            finally:
                await gateway.stop()
            held = (await client.get("/hlwjg/_mock/records")).json()
            wire = json.dumps((await client.get("/hlwjg/_mock/traffic")).json(), ensure_ascii=False)
    finally:
        await mocks.stop()
    assert status["deliveries"]["delivered"] == 1 and status["deliveries"]["paper_pending"] == 1
    assert [r["approvalNo"] for r in held["records"]] == [PUBLIC["PROJID"]]
    assert PUBLIC["PROJID"] in wire, "the capture sees what was relayed electronically"
    assert SECRET["PROJID"] not in wire and SECRET["APPLYNAME"] not in wire and SECRET["APPLY_CARDNUMBER"] not in wire


async def test_a_late_electronic_success_flags_the_paper_item_once(tmp_path: Path) -> None:
    from gateway.paper.reconcile import reconcile_paper

    mocks = await run_in_background()
    cfg = relay_config(mocks.base_url, tmp_path / "g.db")
    hlwjg = cfg.destinations["hlwjg"]
    hlwjg.max_attempts, hlwjg.paper_fallback = 2, True
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url) as client:
            first = variant("320700261121000000303")
            await client.post("/zwfw/_mock/inject", json={"records": [first]})
            gateway = Gateway(cfg)
            await gateway.start()
            try:
                assert await gateway.wait_idle(timeout_s=20)  # delivered normally; the adapter holds a token
                # Now every reply is lost after the platform applied the request: the gateway cannot know.
                await client.post("/hlwjg/_mock/faults", json={"drop_response_rate": 1.0})
                await client.post("/zwfw/_mock/inject", json={"records": [PUBLIC]})
                async with asyncio.timeout(20):
                    while (await gateway.store.status())["deliveries"]["paper_pending"] < 1:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                assert (await client.get("/hlwjg/_mock/records")).json()["accepted"] == 2, "it did arrive"
                await client.post("/hlwjg/_mock/faults", json={"drop_response_rate": 0.0})
                assert await reconcile_paper(gateway.store, gateway.destinations) == 1
                assert await reconcile_paper(gateway.store, gateway.destinations) == 0, "flagged once"
                [item] = await gateway.store.paper_deliveries(state="paper_pending")
                events = await gateway.store.paper_events(int(item["id"]))
            finally:
                await gateway.stop()
            held = (await client.get("/hlwjg/_mock/records")).json()
    finally:
        await mocks.stop()
    assert item["flagged"] and [e["kind"] for e in events] == ["electronic_success"]
    assert events[0]["detail"]["remote_id"] and not events[0]["detail"]["printed"]
    assert held["duplicate_creations"] == 0
