"""The two example mapping files (examples/mappings/) read their fixtures into the canonical envelopes, field by
field: a 市场监管 licence JSON feed (through respx) and an 投资项目 前置库 table (a real SQLite file)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from adapters import DecodeError, RecordOutcome
from adapters.mapped import MappedAdapter
from schemas import Envelope

ROOT = Path(__file__).resolve().parents[2]
FEED_MAPPING = ROOT / "examples" / "mappings" / "scjg_licence_feed.toml"
TABLE_MAPPING = ROOT / "examples" / "mappings" / "tzxm_spsx_table.yaml"
DATA = Path(__file__).parent / "data" / "mapped"
BASE_URL = "https://scjg.example.gov.cn"
FEED_URL = f"{BASE_URL}/open/v2/licences/changes"


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def decode_one(adapter: MappedAdapter, record: Any) -> Envelope:
    (envelope,) = adapter.decode(record)
    return envelope


# -- the JSON feed ----------------------------------------------------------------------------------------------
@pytest.fixture
async def feed() -> AsyncIterator[MappedAdapter]:
    adapter = MappedAdapter.from_config(
        "scjg", {"mapping": str(FEED_MAPPING), "base_url": BASE_URL, "headers": {"X-App-Key": "k-123"}}
    )
    try:
        yield adapter
    finally:
        await adapter.aclose()


@respx.mock
async def test_licence_feed_pages_and_decodes_field_by_field(feed: MappedAdapter) -> None:
    route = respx.get(FEED_URL).mock(
        side_effect=lambda request: httpx.Response(
            200, json=fixture("scjg_page2.json" if request.url.params.get("since") else "scjg_page1.json")
        )
    )
    page = await feed.poll(None, 3)
    first_request = route.calls[0].request
    assert dict(first_request.url.params) == {"licenceType": "SPJY", "pageSize": "3"}
    assert first_request.headers["X-App-Key"] == "k-123"
    assert (len(page.records), page.next_cursor, page.has_more) == (3, "c-1003", True)

    company, individual, person = (decode_one(feed, r) for r in page.records)
    assert company.data == {
        "case_no": "320706261118000012345",
        "item": {"code": "11320700MBX9RQ1708000117001", "name": "食品经营许可"},
        "region": "320706",
        "applicant": {
            "kind": "legal",
            "name": "连云港海州区某某餐饮有限公司",
            "id_type": "uscc",
            "business_registration_no": None,
            "id_number": "91320706MA793PCF1L",
            "legal_representative": "王某某",
            "phone": "13800138000",
        },
        "received_at": "2026-11-18T09:12:33+08:00",
        "decided_at": "2026-11-20T16:40:00+08:00",
        "result": "granted",
        "result_description": "准予许可",
        "certificate": {
            "number": "JY13207060012345",
            "name": None,
            "document_no": "连审批食经〔2026〕1234号",
            "document_name": None,
            "valid_from": "2026-11-20",
            "valid_to": "2031-11-19",
            "long_term": False,
            "issuer_code": "11320700MBX9RQ1708",
        },
        "commitment": {"mode": "post_verification", "period_days": 20},
    }
    assert (company.type, company.source, company.business_key, company.revision) == (
        "approval.decided",
        "scjg",
        "320706261118000012345",
        1,
    )
    assert (company.classification, company.region, company.correlation_id) == (
        "public",
        "320706",
        company.business_key,
    )

    applicant = individual.data["applicant"]
    assert (applicant["id_number"], applicant["business_registration_no"]) == ("00000000000000000X", "320706600123456")
    assert applicant["phone"] is None  # the nested object has no mobile
    assert individual.data["received_at"] == "2026-11-19T09:00:00+08:00"  # Z converted to Beijing time
    assert individual.data["certificate"]["long_term"] is True and individual.data["certificate"]["valid_to"] is None
    assert individual.data["certificate"]["document_no"] is None  # "" is absent
    assert individual.data["commitment"] is None  # promise N
    assert (individual.revision, individual.classification) == (2, "internal")

    assert person.data["applicant"]["kind"] == "natural" and person.data["applicant"]["id_type"] == "resident_id"
    assert person.data["applicant"]["legal_representative"] is None  # legalRep: null
    assert (person.data["result"], person.data["result_description"]) == ("rejected", "不予许可：经营场所不符合要求")
    assert person.data["received_at"] is None
    assert person.data["certificate"] == {
        "number": None,
        "name": None,
        "document_no": "连审批食经〔2026〕1240号",
        "document_name": None,
        "valid_from": None,
        "valid_to": None,
        "long_term": False,
        "issuer_code": "11320700MBX9RQ1708",
    }

    second = await feed.poll(page.next_cursor, 3)
    assert route.calls[1].request.url.params["since"] == "c-1003"
    assert (second.next_cursor, second.has_more) == ("c-1004", False)
    with pytest.raises(DecodeError, match=r"^issueTime \(decided_at\) is not a time \(%Y/%m/%d %H:%M\)$"):
        feed.decode(second.records[0])
    await feed.acknowledge(second, [RecordOutcome(second.records[0], "x")])  # a feed has nothing to mark


# -- the 前置库 table -------------------------------------------------------------------------------------------
@pytest.fixture
def tzxm_db(tmp_path: Path) -> Path:
    rows = fixture("tzxm_rows.json")
    columns = sorted({name for row in rows for name in row} | {"CLSM"})
    db = tmp_path / "tzxm.db"
    with sqlite3.connect(db) as conn:
        defs = ", ".join(f"{c} INTEGER PRIMARY KEY" if c == "ID" else f"{c} TEXT" for c in columns)
        conn.execute(f"CREATE TABLE TZXM_SPSX_BJXX ({defs})")
        for row in rows:
            conn.execute(
                f"INSERT INTO TZXM_SPSX_BJXX ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
    return db


async def test_investment_table_reads_pending_rows_and_marks_them(tzxm_db: Path) -> None:
    adapter = MappedAdapter.from_config("tzxm", {"mapping": str(TABLE_MAPPING), "url": f"sqlite:///{tzxm_db}"})
    try:
        page = await adapter.poll(None, 10)
        assert [r.payload["ID"] for r in page.records] == [1, 2, 3]  # ID 4 was already taken (CLZT '1')
        approved = decode_one(adapter, page.records[0])
        refused = decode_one(adapter, page.records[1])
        with pytest.raises(DecodeError) as caught:
            adapter.decode(page.records[2])
        await adapter.acknowledge(
            page,
            [
                RecordOutcome(page.records[0]),
                RecordOutcome(page.records[1]),
                RecordOutcome(page.records[2], caught.value.reason),
            ],
        )
    finally:
        await adapter.aclose()
    assert approved.data == {
        "case_no": "2025-320700-44-02-100001-0003",
        "item": {"code": "11320000MBT386YX2X4000311001", "name": "企业投资项目核准"},
        "region": "320700",
        "applicant": {
            "kind": "legal",
            "name": "连云港某某新能源有限公司",
            "id_type": "uscc",
            "business_registration_no": None,
            "id_number": "91320700MAGHB8Q5XC",
            "legal_representative": "李某",
            "phone": None,
        },
        "received_at": "2026-10-08T09:00:00+08:00",
        "decided_at": "2026-10-30T15:20:00+08:00",
        "result": "granted",
        "result_description": "同意核准",
        "certificate": {
            "number": None,
            "name": None,
            "document_no": "苏发改能源发〔2026〕88号",
            "document_name": "关于某某风电项目核准的批复",
            "valid_from": "2026-10-30",
            "valid_to": "2028-10-29",
            "long_term": False,
            "issuer_code": "11320000MBT386YX2X",
        },
        "commitment": None,
    }
    assert (approved.revision, approved.classification, approved.source) == (1, "public", "tzxm")
    assert refused.data["result"] == "rejected" and refused.revision == 2
    assert refused.data["certificate"] == {
        "number": None,
        "name": None,
        "document_no": None,
        "document_name": None,
        "valid_from": None,
        "valid_to": None,
        "long_term": False,
        "issuer_code": "11320000MBT386YX2X",
    }
    assert caught.value.reason.startswith("XMDWDM (applicant.id_number): ")
    with sqlite3.connect(tzxm_db) as conn:
        marks = conn.execute("SELECT ID, CLZT, CLSM FROM TZXM_SPSX_BJXX ORDER BY ID").fetchall()
    assert marks == [(1, "1", None), (2, "1", None), (3, "-1", caught.value.reason[:255]), (4, "1", None)]
