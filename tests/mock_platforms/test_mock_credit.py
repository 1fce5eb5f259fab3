"""The credit mock: per-record verdicts, recordId idempotency across batches, updates vs. duplicate creations,
status query, app-key tokens and the shared fault machinery applied to its batch upload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from mockkit import FakeClock

from mock_platforms.credit_fields import USCC_CATEGORIES, check_uscc
from mock_platforms.identifiers import uscc_check_char

BATCHES = "/credit/api/v1/batches"
QUERY = "/credit/api/v1/records/query"
Auth = Callable[[], Awaitable[dict[str, str]]]

ISSUER = "11320700MB12345679"


def with_check(first17: str) -> str:
    return first17 + uscc_check_char(first17)


COMPANY = with_check("91320700MA1X2Y3K0")
BAD_CATEGORY = with_check("94320700MA1X2Y3K0")  # check character right, 工商 has no category 4


def license_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "XK_XDR_MC": "连云港海州区某某餐饮有限公司",
        "XK_XDR_LB": "法人及非法人组织",
        "XK_XDR_SHXYM": COMPANY,
        "XK_FRDB": "王某某",
        "XK_XKWS": "食品经营许可决定书",
        "XK_WSH": "连审批食经〔2026〕1234号",
        "XK_XKLB": "普通",
        "XK_XKZS": "食品经营许可证",
        "XK_XKBH": "JY33207000012345",
        "XK_NR": "食品经营许可：准予许可",
        "XK_JDRQ": "2026/11/20",
        "XK_YXQZ": "2026/11/20",
        "XK_YXQZI": "2031/11/19",
        "XK_XKJG": "连云港市行政审批局",
        "XK_XKJGDM": ISSUER,
        "XK_ZT": "1",
        "XK_LYDW": "连云港市行政审批局",
        "XK_LYDWDM": ISSUER,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def penalty_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "CF_XDR_MC": "连云港海州区某某餐饮有限公司",
        "CF_XDR_LB": "法人及非法人组织",
        "CF_XDR_SHXYM": COMPANY,
        "CF_FRDB": "王某某",
        "CF_WSH": "连市监罚〔2026〕88号",
        "CF_WFXW": "经营超过保质期的食品",
        "CF_SY": "2026年10月检查发现超过保质期的食品 12 件",
        "CF_YJ": "《中华人民共和国食品安全法》第一百二十四条",
        "CF_CFLB": "警告;罚款",
        "CF_NR": "警告，并处罚款人民币伍仟元",
        "CF_NR_FK": "0.5",
        "CF_JDRQ": "2026/11/20",
        "CF_YXQ": "2027/11/19",
        "CF_CFJG": "连云港市市场监督管理局",
        "CF_CFJGDM": ISSUER,
        "CF_SJLY": "连云港市市场监督管理局",
        "CF_SJLYDM": ISSUER,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def entry(record_id: str, data: dict[str, Any], *, kind: str = "XK", version: int = 1) -> dict[str, Any]:
    return {"recordId": record_id, "kind": kind, "version": version, "data": data}


@pytest.fixture
def credit_auth(client: httpx.AsyncClient) -> Auth:
    async def get() -> dict[str, str]:
        reply = await client.post(
            "/credit/api/v1/auth/token", json={"appKey": "shenguan", "appSecret": "credit-mock-secret"}
        )
        assert reply.status_code == 200, reply.text
        return {"X-Credit-Token": reply.json()["data"]["token"]}

    return get


async def upload(client: httpx.AsyncClient, auth: dict[str, str], batch_id: str, *entries: Any) -> httpx.Response:
    return await client.post(BATCHES, json={"batchId": batch_id, "records": list(entries)}, headers=auth)


async def report(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/credit/_mock/records")).json()


def test_category_table_accepts_what_the_generator_issues_and_refuses_undefined_pairs() -> None:
    for code in (COMPANY, with_check("92320700MA1X2Y3K0"), with_check("N2320700MA1X2Y3K0"), ISSUER):
        check_uscc("F", code)
    with pytest.raises(ValueError, match="机构类别码"):
        check_uscc("F", BAD_CATEGORY)
    with pytest.raises(ValueError, match="登记管理部门码"):
        check_uscc("F", with_check("B1320700MA1X2Y3K0"))
    with pytest.raises(ValueError, match="校验码"):
        check_uscc("F", COMPANY[:17] + ("0" if COMPANY[17] != "0" else "1"))
    assert all(set(categories) <= set("123459") for categories in USCC_CATEGORIES.values())


async def test_token_required_refused_and_expiring(
    client: httpx.AsyncClient, credit_auth: Auth, clock: FakeClock
) -> None:
    for headers in ({}, {"X-Credit-Token": "forged"}):
        reply = await upload(client, headers, "b0", entry("r0", license_data()))
        assert reply.status_code == 401 and reply.json()["code"] == "TOKEN_INVALID"
    bad = await client.post("/credit/api/v1/auth/token", json={"appKey": "shenguan", "appSecret": "nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "AUTH_FAILED"
    await client.post("/credit/_mock/faults", json={"token_ttl_s": 30})
    auth = await credit_auth()
    assert (await upload(client, auth, "b1", entry("r1", license_data()))).status_code == 200
    clock.now += 30
    expired = await upload(client, auth, "b2", entry("r2", penalty_data(), kind="CF"))
    assert expired.status_code == 401 and expired.json()["code"] == "TOKEN_EXPIRED"
    assert (await report(client))["accepted"] == 1, "a refused upload applies nothing"


async def test_partial_success_one_verdict_per_record_with_reasons(
    client: httpx.AsyncClient, credit_auth: Auth
) -> None:
    bad = {
        "r-category": license_data(XK_WSH="W2", XK_XDR_SHXYM=BAD_CATEGORY),
        "r-check": license_data(XK_WSH="W3", XK_XDR_SHXYM=COMPANY[:17] + ("0" if COMPANY[17] != "0" else "1")),
        "r-date": license_data(XK_WSH="W4", XK_JDRQ="2026-11-20"),
        "r-missing": license_data(XK_WSH="W5", XK_NR=""),
        "r-unknown-field": license_data(XK_WSH="W6", XK_EXTRA="x"),
        "r-not-string": license_data(XK_WSH="W7", XK_ZT=1),
        "r-validity": license_data(XK_WSH="W8", XK_YXQZI="2020/01/01"),
        "r-legal-rep": license_data(XK_WSH="W9", XK_FRDB=...),
        "r-natural-with-code": license_data(XK_WSH="W10", XK_XDR_LB="自然人"),
    }
    auth = await credit_auth()
    entries = [entry("r-good", license_data()), *(entry(rid, data) for rid, data in bad.items())]
    entries.append(entry("r-cf-good", penalty_data(), kind="CF"))
    entries.append(entry("r-cf-wan", penalty_data(CF_WSH="P2", CF_NR_FK="5000元"), kind="CF"))
    entries.append(entry("r-cf-nofine", penalty_data(CF_WSH="P3", CF_NR_FK=...), kind="CF"))
    entries.append(entry("r-cf-category", penalty_data(CF_WSH="P4", CF_CFLB="警告;罚钱"), kind="CF"))
    entries.append(entry("r-kind", license_data(XK_WSH="W11"), kind="XX"))
    reply = await upload(client, auth, "batch-1", *entries)
    assert reply.status_code == 200
    body = reply.json()
    verdicts = {r["recordId"]: r for r in body["results"]}
    assert [r["index"] for r in body["results"]] == list(range(len(entries)))
    assert verdicts["r-good"]["status"] == "accepted" and verdicts["r-cf-good"]["status"] == "accepted"
    assert body["accepted"] == 2 and body["rejected"] == len(entries) - 2
    expected_field = {
        "r-category": "XK_XDR_SHXYM: 统一社会信用代码机构类别码",
        "r-check": "XK_XDR_SHXYM: 统一社会信用代码校验码",
        "r-date": "XK_JDRQ: 日期格式",
        "r-missing": "XK_NR: 必填",
        "r-unknown-field": "XK_EXTRA",
        "r-not-string": "XK_ZT: 须为字符串",
        "r-validity": "XK_YXQZI",
        "r-legal-rep": "XK_FRDB",
        "r-natural-with-code": "XK_XDR_SHXYM: 自然人",
        "r-cf-wan": "CF_NR_FK: 罚款金额须为以万元为单位的数字",
        "r-cf-nofine": "CF_NR_FK: 处罚类别含罚款",
        "r-cf-category": "CF_CFLB",
        "r-kind": "kind",
    }
    for rid, text in expected_field.items():
        assert verdicts[rid]["status"] == "rejected" and text in verdicts[rid]["reason"], verdicts[rid]
    held = await report(client)
    assert held["accepted"] == 2 and held["rejected"] == len(entries) - 2 and held["duplicate_creations"] == 0
    assert {r["recordId"] for r in held["rejections"]} == set(expected_field)


async def test_a_record_id_is_judged_once_whatever_batch_brings_it_again(
    client: httpx.AsyncClient, credit_auth: Auth
) -> None:
    auth = await credit_auth()
    good, bad = entry("r1", license_data()), entry("r2", license_data(XK_WSH="W2", XK_XDR_SHXYM=BAD_CATEGORY))
    first = (await upload(client, auth, "b1", good, bad)).json()
    same_batch = (await upload(client, auth, "b1", good, bad)).json()
    other_batch = (await upload(client, auth, "b9", bad, entry("r3", penalty_data(), kind="CF"), good)).json()
    assert [r["replayed"] for r in first["results"]] == [False, False]
    assert [(r["status"], r["replayed"]) for r in same_batch["results"]] == [("accepted", True), ("rejected", True)]
    assert [r["recordId"] for r in other_batch["results"]] == ["r2", "r3", "r1"]
    assert [r["replayed"] for r in other_batch["results"]] == [True, False, True]
    assert other_batch["results"][0]["reason"] == first["results"][1]["reason"], "a replay answers the first verdict"
    held = await report(client)
    assert held["accepted"] == 2 and held["duplicate_creations"] == 0 and held["replays"] == 4
    assert {r["key"]: r["submissions"] for r in held["records"]}[first["results"][0]["key"]] == 3
    conflict = await upload(client, auth, "b1", good)
    assert conflict.status_code == 409 and conflict.json()["code"] == "BATCH_CONFLICT"


async def test_higher_version_updates_and_a_new_record_id_at_the_same_version_is_a_duplicate(
    client: httpx.AsyncClient, credit_auth: Auth
) -> None:
    auth = await credit_auth()
    await upload(client, auth, "b1", entry("r1", license_data()))
    update = await upload(client, auth, "b2", entry("r2", license_data(XK_NR="更正后的许可内容"), version=2))
    assert update.json()["results"][0]["status"] == "accepted"
    held = await report(client)
    assert held["accepted"] == 1 and held["duplicate_creations"] == 0
    assert held["records"][0]["version"] == 2 and held["records"][0]["data"]["XK_NR"] == "更正后的许可内容"
    naive = await upload(client, auth, "b3", entry("r3", license_data(), version=2))
    assert naive.json()["results"][0]["status"] == "accepted", "the platform cannot tell: it creates a second record"
    stale = await upload(client, auth, "b4", entry("r4", license_data(), version=1))
    assert stale.status_code == 200
    held = await report(client)
    assert held["accepted"] == 1 and held["duplicate_creations"] == 2
    # 行政处罚 are keyed by 决定书文号 alone: the same decision number for another party is the same record
    await upload(client, auth, "b5", entry("p1", penalty_data(), kind="CF"))
    await upload(client, auth, "b6", entry("p2", penalty_data(CF_XDR_MC="另一家公司"), kind="CF"))
    assert (await report(client))["duplicate_creations"] == 3


async def test_status_query_tells_accepted_rejected_and_never_seen_apart(
    client: httpx.AsyncClient, credit_auth: Auth
) -> None:
    auth = await credit_auth()
    await upload(client, auth, "b1", entry("r1", license_data()), entry("r2", license_data(XK_WSH="W2", XK_ZT="9")))
    reply = await client.post(QUERY, json={"recordIds": ["r1", "r2", "r3"]}, headers=auth)
    states = {r["recordId"]: (r["status"], r["reason"]) for r in reply.json()["results"]}
    assert states["r1"] == ("accepted", None) and states["r3"] == ("unknown", None)
    assert states["r2"][0] == "rejected" and "XK_ZT" in states["r2"][1]
    batch = (await client.get("/credit/api/v1/batches/b1", headers=auth)).json()
    assert [r["status"] for r in batch["results"]] == ["accepted", "rejected"]
    assert (await client.get("/credit/api/v1/batches/nope", headers=auth)).status_code == 404
    assert (await client.post(QUERY, json={"recordIds": []}, headers=auth)).status_code == 400
    assert (await report(client))["replays"] == 0, "asking is not submitting"


async def test_unreadable_uploads_are_refused_whole(client: httpx.AsyncClient, credit_auth: Auth) -> None:
    auth = await credit_auth()
    cases = [
        ({"records": [entry("r1", license_data())]}, 400),  # no batchId
        ({"batchId": "b", "records": []}, 400),
        ({"batchId": "b", "records": [{"kind": "XK"}]}, 400),  # no recordId
        ({"batchId": "b", "records": [entry("r1", license_data()), entry("r1", license_data())]}, 400),
        ({"batchId": "b", "records": [entry(f"r{i}", license_data(XK_WSH=f"W{i}")) for i in range(501)]}, 413),
    ]
    for body, status in cases:
        assert (await client.post(BATCHES, json=body, headers=auth)).status_code == status, body
    broken = await client.post(BATCHES, content=b'{"batchId": ', headers=auth)
    assert broken.status_code == 400
    held = await report(client)
    assert held["accepted"] == 0 and held["rejected"] == 0 and held["batches"] == 0


async def test_faults_error_applies_nothing_drop_applies_then_fails_malformed_truncates(
    client: httpx.AsyncClient, credit_auth: Auth
) -> None:
    auth = await credit_auth()
    await client.post("/credit/_mock/faults", json={"error_rate": 1.0})
    error = await upload(client, auth, "b1", entry("r1", license_data()))
    assert error.status_code == 500 and error.json()["code"] == "SYSTEM_ERROR"
    assert (await report(client))["accepted"] == 0
    await client.post("/credit/_mock/faults", json={"error_rate": 0.0, "drop_response_rate": 1.0})
    with pytest.raises((httpx.HTTPError, ConnectionError)):
        await upload(client, auth, "b1", entry("r1", license_data()))
    assert (await report(client))["accepted"] == 1, "dropped after the records were applied"
    await client.post("/credit/_mock/faults", json={"drop_response_rate": 0.0, "malformed_rate": 1.0})
    garbled = await upload(client, auth, "b2", entry("r2", penalty_data(), kind="CF"))
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()
    held = await report(client)
    assert held["accepted"] == 2, "a malformed reply is sent after applying"
    traffic = (await client.get("/credit/_mock/traffic")).json()
    assert [t["fault"] for t in traffic if t["path"] == BATCHES] == ["error", "drop", "malformed"]


async def test_control_plane_is_honest_about_having_no_feed_and_resets(
    client: httpx.AsyncClient, credit_auth: Auth
) -> None:
    assert (await client.post("/credit/_mock/generate", json={"count": 3})).status_code == 400
    assert (await client.post("/credit/_mock/inject", json={"records": [{}]})).status_code == 400
    auth = await credit_auth()
    await upload(client, auth, "b1", entry("r1", license_data()))
    await client.post("/credit/_mock/faults", json={"down": True})
    assert (await upload(client, auth, "b2", entry("r2", penalty_data(), kind="CF"))).status_code == 503
    assert (await report(client))["accepted"] == 1, "_mock/ is never faulted"
    await client.post("/credit/_mock/reset")
    held = await report(client)
    assert (held["accepted"], held["rejected"], held["batches"], held["records"]) == (0, 0, 0, [])
    again = await upload(client, auth, "b1", entry("r1", license_data()))
    assert again.status_code == 200 and not again.json()["results"][0]["replayed"], "faults and verdicts are reset"
