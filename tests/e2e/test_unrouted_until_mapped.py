"""An approval whose item has no mapping is held as unrouted — not lost — and relayed once a mapping
import covers it; a malformed mapping file changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from test_malformed_feed import variant
from typer.testing import CliRunner

from gateway.cli import app
from gateway.demo import relay_config
from gateway.runtime import Gateway
from mock_platforms.server import run_in_background

HEADER = (
    "审批事项编码,审批事项名称,业务办理项,监管事项编码,监管事项名称,监管部门名称,监管部门编码,"
    "行政区划代码,推送渠道,认领时限(工作日)\n"
)
FOOD = (
    "11320700MB123456794000117001,食品经营许可,,32070000100001,食品经营许可后监管,"
    "连云港市市场监督管理局,11320700MB12345679,320700,平台,3\n"
)


async def wait_until(predicate) -> None:
    async with asyncio.timeout(20):
        while not await predicate():  # noqa: ASYNC110 - polling another process's effect
            await asyncio.sleep(0.05)


async def test_held_until_a_mapping_import_covers_it(tmp_path: Path) -> None:
    mocks = await run_in_background()
    cfg = relay_config(mocks.base_url, tmp_path / "g.db")
    cfg.routes[0].require_mapping = True
    cfg.gateway.mapping_poll_s = 0.1
    runner = CliRunner()
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url) as client:
            food = [variant(f"32070026112100000010{i}") for i in range(2)]
            other = variant("320700261121000000200", SERVICECODE="11320700MB123456794000999001", SERVICENAME="其他许可")
            await client.post("/zwfw/_mock/inject", json={"records": [*food, other]})
            gateway = Gateway(cfg)
            await gateway.start()
            try:

                async def all_held() -> bool:
                    return (await gateway.store.status())["unrouted"] == 3

                await wait_until(all_held)
                assert (await client.get("/hlwjg/_mock/records")).json()["accepted"] == 0

                bad = tmp_path / "bad.csv"
                bad.write_text(HEADER + FOOD.replace("32070000100001", "1234"), encoding="utf-8")
                result = await asyncio.to_thread(
                    runner.invoke, app, ["mapping", "import", str(bad), "--db", str(cfg.gateway.db)]
                )
                assert result.exit_code == 1
                await asyncio.sleep(0.3)
                assert (await gateway.store.status())["unrouted"] == 3, "a malformed mapping file changes nothing"

                good = tmp_path / "good.csv"
                good.write_text(HEADER + FOOD, encoding="utf-8")
                result = await asyncio.to_thread(
                    runner.invoke, app, ["mapping", "import", str(good), "--db", str(cfg.gateway.db)]
                )
                assert result.exit_code == 0, result.output

                async def food_relayed() -> bool:
                    held = (await client.get("/hlwjg/_mock/records")).json()
                    return held["accepted"] == 2

                await wait_until(food_relayed)
                status = await gateway.store.status()
                assert status["unrouted"] == 1, "the unmapped item is still held"
                assert (await client.get("/hlwjg/_mock/records")).json()["duplicate_creations"] == 0
            finally:
                await gateway.stop()
    finally:
        await mocks.stop()
