"""Malformed feed items are kept as rejected, with a reason, and never stop the rest of the page."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx

from gateway.demo import relay_config
from gateway.runtime import Gateway
from mock_platforms.server import run_in_background

GOOD = {
    "PROJID": "320700261121000012345",
    "SERVICECODE": "11320700MB123456794000117001",
    "SERVICENAME": "食品经营许可",
    "AREACODE": "320700",
    "APPLY_TYPE": "2",
    "APPLYNAME": "连云港海州区某某餐饮有限公司",
    "APPLY_CARDTYPE": "001",
    "APPLY_CARDNUMBER": "91320700MA1X2Y3K05",
    "LEGALMAN": "王某某",
    "CONTACT_PHONE": "13800138000",
    "RECEIVETIME": "2026-11-18 09:12:33",
    "TRANSACT_TIME": "2026-11-20 16:40:02",
    "TRANSACT_RESULT": "办结",
    "TRANSACT_DESCRIBE": "准予许可",
    "RESULT_CODE": "JY33207000012345",
    "XK_WSH": "连审批食经〔2026〕1234号",
    "XK_XKWS": "食品经营许可决定书",
    "XK_XKZS": "食品经营许可证",
    "XK_YXQZ": "2026-11-20",
    "XK_YXQZI": "2031-11-19",
    "XK_XKJGDM": "11320700MB12345679",
    "PROMISE_TYPE": "事后核查",
    "PROMISE_PERIOD": "20",
    "MJ": "",
    "DATAVERSION": "1",
}


def variant(projid: str, **changes: object) -> dict:
    item = copy.deepcopy(GOOD) | {"PROJID": projid}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not ...}


async def test_bad_items_are_rejected_with_reasons_and_good_ones_flow(tmp_path: Path) -> None:
    bad = [
        '{"PROJID": "320700261121000000009", "SERVICECODE": ',  # broken JSON embedded as a string
        variant("320700261121000000010", PROJID=...),  # missing field
        variant("320700261121000000011", APPLY_CARDNUMBER="91320700MA1X2Y3K06"),  # bad check character
        variant("320700261121000000012", DATAVERSION=["1"]),  # wrong type
        variant("320700261121000000013", TRANSACT_TIME="20/11/2026"),  # bad date
    ]
    good = [variant(f"32070026112100000000{i}") for i in range(1, 4)]
    mocks = await run_in_background()
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url) as client:
            await client.post("/zwfw/_mock/inject", json={"records": [good[0], *bad[:3], good[1], *bad[3:], good[2]]})
            gateway = Gateway(relay_config(mocks.base_url, tmp_path / "g.db"))
            await gateway.start()
            try:
                assert await gateway.wait_idle(timeout_s=30)
                status = await gateway.store.status()
                rejected = await gateway.store.rejected()  # type: ignore[attr-defined]
            finally:
                await gateway.stop()
            held = (await client.get("/hlwjg/_mock/records")).json()
    finally:
        await mocks.stop()
    assert status["rejected"] == len(bad) and status["messages"] == len(good)
    assert held["accepted"] == len(good) and held["duplicate_creations"] == 0
    reasons = sorted(r["reason"] for r in rejected)
    assert any("malformed JSON" in r for r in reasons), reasons
    assert any("PROJID" in r for r in reasons), reasons
    assert any("APPLY_CARDNUMBER" in r and "check character" in r for r in reasons), reasons
    assert any("DATAVERSION" in r for r in reasons), reasons
    assert any("TRANSACT_TIME" in r for r in reasons), reasons
    # the raw input is kept verbatim for an operator
    raws = {r["raw"] for r in rejected}
    assert bad[0] in raws
    assert json.loads(next(r for r in raws if "000000011" in r))["APPLY_CARDNUMBER"] == "91320700MA1X2Y3K06"
