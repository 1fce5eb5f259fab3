"""The mapping engine's transforms and codec: each rule kind, DB-native values, and reasons that name fields."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.errors import DecodeError
from adapters.mapped import MappedCodec, parse_mapping
from adapters.specialty import packaged_mapping
from adapters.zwfw.codec import to_envelope
from mock_platforms.generator import generate_banjian
from mock_platforms.specialty import row_from_banjian

USCC = "91320700MA1X2Y3K05"
RESIDENT_ID = "320706199003071237"
MOBILE = "13912345678"

# The smallest useful mapping of a JSON record; tests add or replace rules.
BASE: dict[str, Any] = {
    "mapping": {"name": "t", "event_type": "approval.decided"},
    "source": {"kind": "json", "records": "items", "next_cursor": "next"},
    "fields": {
        "case_no": "no",
        "item.code": "item",
        "item.name": {"const": "食品经营许可"},
        "region": "area",
        "applicant.kind": {"const": "legal"},
        "applicant.name": "name",
        "applicant.id_type": {"const": "uscc"},
        "applicant.id_number": "uscc",
        "decided_at": {"from": "at", "type": "datetime", "required": True},
        "result": {"const": "granted"},
    },
}
RECORD: dict[str, Any] = {
    "no": "B1",
    "item": "ITEM1",
    "area": "320700",
    "name": "某某公司",
    "uscc": USCC,
    "at": "2026-11-20 16:40:02",
}


def codec(**fields: Any) -> MappedCodec:
    data = copy.deepcopy(BASE)
    extra = fields.pop("_sections", {})
    data["fields"].update(fields)
    data.update(extra)
    return MappedCodec(parse_mapping(data))


def decode(c: MappedCodec, **changes: Any) -> dict[str, Any]:
    record = {k: v for k, v in {**RECORD, **changes}.items() if v is not ...}
    return c.decode(record, source="t").data


def reason(c: MappedCodec, **changes: Any) -> str:
    with pytest.raises(DecodeError) as caught:
        decode(c, **changes)
    return caught.value.reason


# -- the cross-source promise: a 前置库 row and a zwfw 办件 of one approval are one fact -------------------------
@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_specialty_rows_decode_to_the_same_fact_as_the_zwfw_item(seed: int) -> None:
    specialty = MappedCodec(packaged_mapping())
    items = generate_banjian(150, seed, duplicate_rate=0.1, revision_rate=0.1, secret_rate=0.1)
    for item in items:
        from_zwfw = to_envelope(item, source="zwfw")
        from_table = specialty.decode(row_from_banjian(item), source="gcjs")
        assert from_table.business_key == from_zwfw.business_key
        assert from_table.content_hash == from_zwfw.content_hash, item["PROJID"]
        assert from_table.data == from_zwfw.data
        assert (from_table.revision, from_table.classification, from_table.region, from_table.correlation_id) == (
            from_zwfw.revision,
            from_zwfw.classification,
            from_zwfw.region,
            from_zwfw.correlation_id,
        )
        assert from_table.id != from_zwfw.id  # the message id carries the source; the ledger key does not


def test_the_packaged_mapping_reads_db_native_values() -> None:
    """Real exchange databases hand back DATE/TIMESTAMP and NUMBER columns as objects, not text."""
    specialty = MappedCodec(packaged_mapping())
    item = generate_banjian(1, 3)[0]
    row = row_from_banjian(item)
    native = dict(
        row,
        BLSJ=datetime.strptime(row["BLSJ"], "%Y%m%d%H%M%S"),
        SJBBH=Decimal(row["SJBBH"]),
        SJYXBS=Decimal(1),
        XZQHDM=int(row["XZQHDM"]),
    )
    if row["YXQQ"]:
        native["YXQQ"] = date.fromisoformat(f"{row['YXQQ'][:4]}-{row['YXQQ'][4:6]}-{row['YXQQ'][6:]}")
    assert specialty.decode(native, source="g").content_hash == specialty.decode(row, source="g").content_hash


# -- rules ---------------------------------------------------------------------------------------------------
def test_value_map_otherwise_and_misses() -> None:
    c = codec(**{"result": {"from": "r", "map": {"1": "granted", "2": "rejected"}}})
    assert decode(c, r="2")["result"] == "rejected"
    assert decode(c, r=1)["result"] == "granted"  # numbers sent as numbers
    assert reason(c, r="9") == "r (result) '9' is not one of the codes (1, 2)"
    with_otherwise = codec(
        **{
            "applicant.id_type": {"from": "t", "map": {"A": "uscc"}, "otherwise": "other"},
            "applicant.kind": {"const": "other"},
            "applicant.id_number": {"const": "X1"},
        }
    )
    assert decode(with_otherwise, t="Z")["applicant"]["id_type"] == "other"


def test_code_table_miss_names_the_table_and_masks_the_value() -> None:
    c = codec(
        **{"result": {"from": "r", "code_table": "res"}},
        _sections={"code_tables": {"res": {"values": {str(i): "granted" for i in range(12)}}}},
    )
    text = reason(c, r=MOBILE)
    codes = "(0, 1, 2, 3, 4, 5, 6, 7, …)"
    assert text == f"r (result) '139****5678' is not one of the codes of code table res {codes}"
    assert MOBILE not in text


def test_date_formats_tried_in_order_and_zones() -> None:
    c = codec(decided_at={"from": "at", "type": "datetime", "date_format": ["%Y%m%d%H%M%S", "%Y/%m/%d %H:%M"]})
    assert decode(c, at="20261120164002")["decided_at"] == "2026-11-20T16:40:02+08:00"
    assert decode(c, at="2026/11/20 16:40")["decided_at"] == "2026-11-20T16:40:00+08:00"
    assert reason(c, at="2026-11-20") == "at (decided_at) is not a time (%Y%m%d%H%M%S or %Y/%m/%d %H:%M)"
    iso = codec()  # no date_format: ISO-like, naive = the mapping's zone, zoned converted to it
    assert decode(iso, at="2026-11-20T08:40:02Z")["decided_at"] == "2026-11-20T16:40:02+08:00"
    assert decode(iso, at=datetime(2026, 11, 20, 8, 40, 2, tzinfo=UTC))["decided_at"] == "2026-11-20T16:40:02+08:00"
    assert reason(iso, at=date(2026, 11, 20)) == "at (decided_at) is a date without a time of day"
    assert reason(iso, at="昨天") == "at (decided_at) is not a time (yyyy-MM-dd HH:mm:ss)"
    urumqi = codec(_sections={"mapping": {"name": "t", "event_type": "approval.decided", "timezone": "Asia/Urumqi"}})
    assert decode(urumqi, at="2026-11-20 14:40:02")["decided_at"] == "2026-11-20T14:40:02+06:00"


def test_constants_concat_zfill_null_if_and_defaults() -> None:
    c = codec(
        **{
            "item.code": {"concat": ["dept", "item"], "sep": "-"},
            "applicant.id_type": {"from": "t", "zfill": 3, "map": {"001": "uscc"}, "otherwise": "other"},
            "certificate.valid_to": {"from": "to", "type": "date", "date_format": "%Y%m%d", "null_if": ["长期"]},
            "certificate.long_term": {"from": "to", "map": {"长期": True}, "otherwise": False},
            "result_description": {"from": "d", "default": "准予许可"},
        }
    )
    data = decode(c, dept="D1", t=1, to="长期")
    assert data["item"]["code"] == "D1-ITEM1"
    assert data["applicant"]["id_type"] == "uscc"
    assert data["certificate"]["long_term"] is True and data["certificate"]["valid_to"] is None
    assert data["result_description"] == "准予许可"
    data = decode(c, dept=None, t="001", to="20311119", d="不予许可")
    assert data["item"]["code"] == "ITEM1"  # absent parts are skipped
    assert data["certificate"]["valid_to"] == "2031-11-19" and data["certificate"]["long_term"] is False
    assert data["result_description"] == "不予许可"
    assert decode(c, t="1", to="")["certificate"] is None  # blank is absent: no certificate at all
    assert reason(c, to="长期") == "t (applicant.id_type): Field required"


def test_required_and_model_required_fields_name_the_native_field() -> None:
    c = codec()
    assert reason(c, at="") == "missing field at (decided_at)"
    assert reason(c, no=None) == "no (case_no): Field required"
    assert reason(c, name=["x"]) == "name has wrong type list, expected text"
    assert reason(c, name=True) == "name has wrong type bool, expected text"
    assert reason(c, name=1.5) == "name has wrong type float, expected text"
    assert reason(c, no=10**5000) == "no is not a plausible value (number too long)"
    assert reason(c, name="\ud800") == "name is not valid Unicode text (lone surrogate)"
    assert reason(c, no=Decimal("1.5")) == "no is not a plausible value (a fractional number)"


def test_model_rules_are_reported_with_native_fields_and_no_personal_data() -> None:
    c = codec(received_at={"from": "recv", "type": "datetime"})
    assert reason(c, recv="2026-11-21 09:00:00") == "at, recv: received_at is after decided_at"
    bad_id = codec(**{"applicant.kind": {"const": "natural"}, "applicant.id_type": {"const": "resident_id"}})
    text = reason(bad_id, uscc=RESIDENT_ID[:-1] + "0")
    assert text.startswith("uscc (applicant.id_number): ")
    assert RESIDENT_ID[:-1] not in text


def test_nested_json_paths() -> None:
    c = codec(**{"applicant.legal_representative": "rep.name", "applicant.phone": "rep.contact.mobile"})
    data = decode(c, rep={"name": "王某某", "contact": {"mobile": MOBILE}})
    assert data["applicant"]["legal_representative"] == "王某某" and data["applicant"]["phone"] == MOBILE
    assert decode(c, rep=None)["applicant"]["phone"] is None
    assert reason(c, rep="王某某") == "rep is not an object (reading rep.name)"


def test_objects_exist_only_with_their_required_member() -> None:
    c = codec(
        **{
            "commitment.mode": {"from": "mode", "map": {"Y": "post_verification"}},
            "commitment.period_days": {"from": "days", "type": "int"},
        },
        _sections={"objects": {"commitment": {"requires": "mode"}}},
    )
    assert decode(c, mode="Y", days="20")["commitment"] == {"mode": "post_verification", "period_days": 20}
    assert decode(c, days=20)["commitment"] is None  # a period without a mode is no commitment
    assert reason(c, mode="Y", days="二十") == "days (commitment.period_days) must be a whole number, got '二十'"


def test_bool_fields_take_json_booleans_and_text() -> None:
    c = codec(**{"certificate.long_term": {"from": "lt", "type": "bool"}, "certificate.number": "cert"})
    assert decode(c, lt=True, cert="C")["certificate"]["long_term"] is True
    assert decode(c, lt="否", cert="C")["certificate"]["long_term"] is False
    assert reason(c, lt="maybe") == "lt (certificate.long_term) must be true or false, got 'maybe'"


def test_require_section_rejects_records_the_source_flags_invalid() -> None:
    c = codec(_sections={"require": {"valid": [1]}})
    assert decode(c, valid=1)["case_no"] == "B1"
    assert decode(c, valid=Decimal(1))["case_no"] == "B1"
    assert reason(c, valid="0") == "valid is '0', a record is taken only with valid = 1"
    assert reason(c, valid=None) == "valid is absent, a record is taken only with valid = 1"


def test_envelope_rules() -> None:
    c = codec(
        _sections={
            "envelope": {
                "revision": {"from": "v", "type": "int", "default": 1},
                "classification": {"from": "mj", "map": {"秘密": "secret", "内部": "internal"}, "default": "public"},
                "correlation_id": "corr",
                "region": "env_region",
            }
        }
    )
    env = c.decode({**RECORD, "v": "3", "mj": "秘密", "corr": "LOOP-1", "env_region": "320706"}, source="t")
    assert (env.revision, env.classification, env.correlation_id, env.region) == (3, "secret", "LOOP-1", "320706")
    env = c.decode(RECORD, source="t")
    assert (env.revision, env.classification, env.correlation_id, env.region) == (1, "public", "B1", "320700")
    assert reason(c, v="0") == "v (revision) must be a whole number ≥ 1"
    assert reason(c, mj="绝密级").startswith("mj (classification) '绝密级' is not one of the codes")
    plain = codec(_sections={"envelope": {"classification": "mj"}})
    assert reason(plain, mj="top") == "mj (classification) 'top' is not public, internal or secret"
    assert plain.decode({**RECORD, "mj": "internal", "unmapped": [1]}, source="t").classification == "internal"


def test_payload_shapes() -> None:
    c = codec()
    as_text = json.dumps({**RECORD, "no": "B2"}, ensure_ascii=False)
    assert c.decode(as_text, source="t").business_key == "B2"
    for bad, expected in [
        ("{", "malformed JSON"),
        ("[1]", "expected an object for one record, got list"),
        (b"\xff", "record is not UTF-8 text"),
        (7, "expected an object for one record, got int"),
    ]:
        with pytest.raises(DecodeError, match=expected):
            c.decode(bad, source="t")


def test_decode_is_deterministic_across_record_key_order() -> None:
    c = MappedCodec(packaged_mapping())
    row = row_from_banjian(generate_banjian(1, 11)[0])
    keys = list(row)
    random.Random(3).shuffle(keys)
    assert c.decode({k: row[k] for k in keys}, source="g") == c.decode(row, source="g")
