"""zwfw 办件 → canonical ``approval.decided``: field mapping, platform quirks and every rejection path."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import RawRecord
from adapters.errors import DecodeError
from adapters.zwfw import ZwfwAdapter
from adapters.zwfw.codec import to_envelope
from schemas import ApprovalDecided, Classification, CommitmentMode, DecisionResult, IdType, PartyKind
from schemas.identifiers import uscc_check_char

SAMPLE: dict[str, Any] = {
    "PROJID": "320700261121000012345", "SERVICECODE": "11320700MB123456794000117001",
    "SERVICENAME": "食品经营许可", "AREACODE": "320700", "APPLY_TYPE": "2",
    "APPLYNAME": "连云港海州区某某餐饮有限公司", "APPLY_CARDTYPE": "001",
    "APPLY_CARDNUMBER": "91320700MA1X2Y3K05", "LEGALMAN": "王某某", "CONTACT_PHONE": "13800138000",
    "RECEIVETIME": "2026-11-18 09:12:33", "TRANSACT_TIME": "2026-11-20 16:40:02", "TRANSACT_RESULT": "办结",
    "TRANSACT_DESCRIBE": "准予许可", "RESULT_CODE": "JY33207000012345", "XK_WSH": "连审批食经〔2026〕1234号",
    "XK_XKWS": "食品经营许可决定书", "XK_XKZS": "食品经营许可证", "XK_YXQZ": "2026-11-20",
    "XK_YXQZI": "2031-11-19", "XK_XKJGDM": "11320700MB12345679", "PROMISE_TYPE": "事后核查",
    "PROMISE_PERIOD": "20", "MJ": "", "DATAVERSION": "1",
}
CERT_FIELDS = ("RESULT_CODE", "XK_WSH", "XK_XKWS", "XK_XKZS", "XK_YXQZ", "XK_YXQZI", "XK_XKJGDM")
BEIJING = timedelta(hours=8)
# A checksum-valid 身份证号 (area 110105, born 1949-12-31).
RESIDENT_ID = "11010519491231002" + "X"


def item(**changes: Any) -> dict[str, Any]:
    out = dict(SAMPLE)
    out.update(changes)
    return out


def decode(native: Any) -> ApprovalDecided:
    envelope = to_envelope(native, source="zwfw")
    payload = envelope.payload()
    assert isinstance(payload, ApprovalDecided)
    return payload


def reject(native: Any) -> str:
    with pytest.raises(DecodeError) as info:
        to_envelope(native, source="zwfw")
    return info.value.reason


def test_sample_maps_every_field() -> None:
    envelope = to_envelope(SAMPLE, source="zwfw")
    p = envelope.payload()
    assert isinstance(p, ApprovalDecided)
    assert p.case_no == "320700261121000012345"
    assert (p.item.code, p.item.name) == ("11320700MB123456794000117001", "食品经营许可")
    assert p.region == "320700"
    a = p.applicant
    assert (a.kind, a.name, a.id_type, a.id_number) == (
        PartyKind.legal, "连云港海州区某某餐饮有限公司", IdType.uscc, "91320700MA1X2Y3K05"
    )
    assert (a.legal_representative, a.phone, a.business_registration_no) == ("王某某", "13800138000", None)
    assert p.received_at == datetime(2026, 11, 18, 1, 12, 33, tzinfo=UTC)
    assert p.decided_at.utcoffset() == BEIJING and p.decided_at.isoformat() == "2026-11-20T16:40:02+08:00"
    assert p.received_at is not None and p.received_at.utcoffset() == BEIJING
    assert p.result is DecisionResult.granted and p.result_description == "准予许可"
    c = p.certificate
    assert c is not None
    assert (c.number, c.name, c.document_no, c.document_name) == (
        "JY33207000012345", "食品经营许可证", "连审批食经〔2026〕1234号", "食品经营许可决定书"
    )
    assert (c.valid_from, c.valid_to, c.long_term) == (date(2026, 11, 20), date(2031, 11, 19), False)
    assert c.issuer_code == "11320700MB12345679"
    assert p.commitment is not None
    assert (p.commitment.mode, p.commitment.period_days) == (CommitmentMode.post_verification, 20)
    assert envelope.revision == 1 and envelope.classification is Classification.public
    assert envelope.region == "320700" and envelope.correlation_id == "320700261121000012345"
    assert envelope.source == "zwfw" and envelope.time == p.decided_at
    assert envelope.data["decided_at"] == "2026-11-20T16:40:02+08:00"


def test_same_item_twice_gives_same_envelope_id() -> None:
    assert to_envelope(SAMPLE, source="zwfw").id == to_envelope(dict(SAMPLE), source="zwfw").id


def test_adapter_decode_returns_one_envelope() -> None:
    adapter = ZwfwAdapter("zwfw", base_url="http://zwfw.test/zwfw", paasid="p", token="t")
    [envelope] = adapter.decode(RawRecord(SAMPLE, position="start+0"))
    assert envelope.business_key == SAMPLE["PROJID"]


@pytest.mark.parametrize("sentinel", ["2099-12-31", "长期", "2099/12/31"])
def test_long_term_validity(sentinel: str) -> None:
    c = decode(item(XK_YXQZI=sentinel)).certificate
    assert c is not None and c.long_term is True and c.valid_to is None


@pytest.mark.parametrize(
    ("promise", "mode"),
    [("材料延期", CommitmentMode.deferred_materials), ("材料核验", CommitmentMode.material_verification),
     ("事后核查", CommitmentMode.post_verification)],
)
def test_commitment_modes(promise: str, mode: CommitmentMode) -> None:
    commitment = decode(item(PROMISE_TYPE=promise, PROMISE_PERIOD="")).commitment
    assert commitment is not None and commitment.mode is mode and commitment.period_days is None


def test_no_commitment_when_promise_type_empty() -> None:
    assert decode(item(PROMISE_TYPE="", PROMISE_PERIOD="20")).commitment is None


@pytest.mark.parametrize("version", ["3", 3])
def test_revision_from_dataversion(version: Any) -> None:
    assert to_envelope(item(DATAVERSION=version), source="zwfw").revision == 3


@pytest.mark.parametrize(
    ("mj", "level"),
    [("", Classification.public), (None, Classification.public), ("内部", Classification.internal),
     ("秘密", Classification.secret), ("机密", Classification.secret), ("绝密", Classification.secret)],
)
def test_classification_from_mj(mj: Any, level: Classification) -> None:
    assert to_envelope(item(MJ=mj), source="zwfw").classification is level


@pytest.mark.parametrize(
    ("result", "describe", "expected"),
    [("办结", "准予许可", DecisionResult.granted), ("办结", "不予许可", DecisionResult.rejected),
     ("退件", "材料不全", DecisionResult.rejected), ("作废办结", "", DecisionResult.voided),
     ("转报办结", None, DecisionResult.forwarded)],
)
def test_decision_results(result: str, describe: Any, expected: DecisionResult) -> None:
    assert decode(item(TRANSACT_RESULT=result, TRANSACT_DESCRIBE=describe)).result is expected


@pytest.mark.parametrize(
    ("code", "kind"), [("1", PartyKind.natural), ("2", PartyKind.legal), ("3", PartyKind.other)]
)
def test_apply_types(code: str, kind: PartyKind) -> None:
    card = {"1": ("111", RESIDENT_ID), "2": ("001", SAMPLE["APPLY_CARDNUMBER"]), "3": ("999", "ABC-1")}[code]
    p = decode(item(APPLY_TYPE=code, APPLY_CARDTYPE=card[0], APPLY_CARDNUMBER=card[1]))
    assert p.applicant.kind is kind


@pytest.mark.parametrize(
    ("card", "number", "id_type"),
    [("111", RESIDENT_ID, IdType.resident_id), ("414", "E12345678", IdType.passport),
     ("999", "HK-123", IdType.other)],
)
def test_card_types(card: str, number: str, id_type: IdType) -> None:
    p = decode(item(APPLY_TYPE="1", APPLY_CARDTYPE=card, APPLY_CARDNUMBER=number))
    assert p.applicant.id_type is id_type and p.applicant.id_number == number


@pytest.mark.parametrize("blank", ["", None, "   "])
def test_empty_optional_fields(blank: Any) -> None:
    optional = ("LEGALMAN", "CONTACT_PHONE", "RECEIVETIME", "TRANSACT_DESCRIBE", *CERT_FIELDS,
                "PROMISE_TYPE", "PROMISE_PERIOD", "MJ", "DATAVERSION", "APPLY_REGNO")
    native = item(**dict.fromkeys(optional, blank))
    envelope = to_envelope(native, source="zwfw")
    p = envelope.payload()
    assert isinstance(p, ApprovalDecided)
    assert p.applicant.legal_representative is None and p.applicant.phone is None
    assert p.received_at is None and p.result_description is None
    assert p.certificate is None and p.commitment is None
    assert envelope.revision == 1 and envelope.classification is Classification.public


def test_optional_fields_may_be_absent() -> None:
    required = ("PROJID", "SERVICECODE", "SERVICENAME", "AREACODE", "APPLY_TYPE", "APPLYNAME",
                "APPLY_CARDTYPE", "APPLY_CARDNUMBER", "TRANSACT_TIME", "TRANSACT_RESULT")
    p = decode({k: SAMPLE[k] for k in required})
    assert p.certificate is None and p.commitment is None


def test_partial_certificate_is_kept() -> None:
    native = item(**{**dict.fromkeys(CERT_FIELDS, ""), "XK_WSH": "连审批〔2026〕1号"})
    c = decode(native).certificate
    assert c is not None and c.document_no == "连审批〔2026〕1号" and c.number is None


def test_numbers_as_ints() -> None:
    native = item(PROJID=320700261121000012345, AREACODE=320700, APPLY_TYPE=2, APPLY_CARDTYPE=1,
                  CONTACT_PHONE=13800138000, PROMISE_PERIOD=20, DATAVERSION=2)
    envelope = to_envelope(native, source="zwfw")
    p = envelope.payload()
    assert isinstance(p, ApprovalDecided)
    assert p.case_no == "320700261121000012345" and p.region == "320700"
    assert p.applicant.id_type is IdType.uscc  # 1 → "001"
    assert p.applicant.phone == "13800138000"
    assert p.commitment is not None and p.commitment.period_days == 20
    assert envelope.revision == 2


def test_json_string_item() -> None:
    assert decode(json.dumps(SAMPLE, ensure_ascii=False)) == decode(SAMPLE)


def test_broken_json() -> None:
    assert reject('{"PROJID": "3207').startswith("malformed JSON: ")


@pytest.mark.parametrize("payload", [b"{}", 42, None, ["PROJID"], "[1, 2]"])
def test_not_an_object(payload: Any) -> None:
    assert "expected a JSON object" in reject(payload)


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_missing_projid(blank: Any) -> None:
    assert reject(item(PROJID=blank)) == "missing field PROJID"
    native = item()
    del native["PROJID"]
    assert reject(native) == "missing field PROJID"


def test_bad_uscc_check_char_names_native_field() -> None:
    reason = reject(item(APPLY_CARDNUMBER="91320700MA1X2Y3K0X"))
    assert reason == (
        "APPLY_CARDNUMBER (applicant.id_number): 统一社会信用代码 check character is 'X', expected '5'"
    )


def test_bad_issuer_code_names_native_field() -> None:
    reason = reject(item(XK_XKJGDM="11320700MB12345670"))
    assert reason.startswith("XK_XKJGDM (certificate.issuer_code): 统一社会信用代码 check character")


def test_village_collective_n2_code_accepted() -> None:
    first17 = "N2320700MA1X2Y3K0"
    code = first17 + uscc_check_char(first17)
    assert decode(item(APPLY_CARDNUMBER=code, APPLY_TYPE="3")).applicant.id_number == code


def test_placeholder_uscc_with_registration_no_accepted() -> None:
    p = decode(item(APPLY_CARDNUMBER="00000000000000000X", APPLY_REGNO="320706600123456"))
    assert p.applicant.business_registration_no == "320706600123456"


def test_placeholder_uscc_without_registration_no_rejected() -> None:
    reason = reject(item(APPLY_CARDNUMBER="00000000000000000X"))
    assert reason.startswith("APPLY_CARDNUMBER (applicant.id_number): ")
    assert "工商注册号" in reason


def test_bad_resident_id_check_digit_rejected_without_echo() -> None:
    bad = RESIDENT_ID[:-1] + "1"
    reason = reject(item(APPLY_TYPE="1", APPLY_CARDTYPE="111", APPLY_CARDNUMBER=bad))
    assert reason.startswith("APPLY_CARDNUMBER (applicant.id_number): 身份证号 check digit")
    assert bad not in reason


def test_rejection_log_names_position_not_values() -> None:
    adapter = ZwfwAdapter("zwfw", base_url="http://zwfw.test/zwfw", paasid="p", token="t")
    bad = RESIDENT_ID[:-1] + "1"
    native = item(APPLY_TYPE="1", APPLY_CARDTYPE="111", APPLY_CARDNUMBER=bad, APPLYNAME="张三")
    with structlog.testing.capture_logs() as logs, pytest.raises(DecodeError):
        adapter.decode(RawRecord(native, position="c1+4"))
    [entry] = logs
    assert entry["event"] == "zwfw.decode_rejected" and entry["position"] == "c1+4"
    assert bad not in repr(logs) and "张三" not in repr(logs)


def test_natural_person_with_uscc_rejected() -> None:
    reason = reject(item(APPLY_TYPE="1"))
    assert reason.startswith("APPLY_TYPE, APPLY_CARDTYPE (applicant): a natural person")


def test_received_after_decided_rejected() -> None:
    assert reject(item(RECEIVETIME="2026-11-21 08:00:00")).startswith("RECEIVETIME, TRANSACT_TIME: ")


def test_bad_region_and_promise_period() -> None:
    assert reject(item(AREACODE="3207")).startswith("AREACODE (region): ")
    assert reject(item(PROMISE_PERIOD="0")).startswith("PROMISE_PERIOD (commitment.period_days): ")
    assert reject(item(PROMISE_PERIOD="二十")).startswith("PROMISE_PERIOD must be a whole number")


def test_validity_before_start_rejected() -> None:
    assert reject(item(XK_YXQZI="2020-01-01")).startswith("XK_YXQZ, XK_YXQZI (certificate): valid_to")


@pytest.mark.parametrize(
    ("field", "value", "start"),
    [("TRANSACT_TIME", "20/11/2026", "TRANSACT_TIME is not a time"),
     ("RECEIVETIME", "yesterday", "RECEIVETIME is not a time"),
     ("XK_YXQZ", "2026-13-01", "XK_YXQZ is not a date"),
     ("TRANSACT_RESULT", "受理", "TRANSACT_RESULT '受理' is not"),
     ("MJ", "公开", "MJ '公开' is not"),
     ("APPLY_TYPE", "9", "APPLY_TYPE '9' is not"),
     ("PROMISE_TYPE", "承诺", "PROMISE_TYPE '承诺' is not"),
     ("DATAVERSION", "0", "DATAVERSION must be an integer ≥ 1"),
     ("DATAVERSION", "v2", "DATAVERSION must be a whole number")],
)
def test_bad_values(field: str, value: str, start: str) -> None:
    assert reject(item(**{field: value})).startswith(start)


def test_zoned_time_is_converted_to_beijing() -> None:
    p = decode(item(TRANSACT_TIME="2026-11-20T08:40:02Z"))
    assert p.decided_at.isoformat() == "2026-11-20T16:40:02+08:00"


@pytest.mark.parametrize(
    ("field", "value"),
    [("PROJID", ["320700"]), ("APPLYNAME", {"a": 1}), ("DATAVERSION", 1.5), ("MJ", True),
     ("TRANSACT_TIME", 20261120), ("AREACODE", 3.2e5), ("APPLY_CARDNUMBER", "\ud800abc")],
)
def test_wrong_types(field: str, value: Any) -> None:
    reason = reject(item(**{field: value}))
    assert reason.startswith(field)


NATIVE_KEYS = (*SAMPLE, "APPLY_REGNO")
_values = st.one_of(
    st.text(max_size=30), st.none(), st.integers(), st.booleans(), st.floats(),
    st.lists(st.integers(), max_size=2), st.sampled_from(list(SAMPLE.values())),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(NATIVE_KEYS), _values))
def test_arbitrary_native_dicts_only_raise_decode_error(native: dict[str, Any]) -> None:
    try:
        to_envelope(native, source="zwfw")
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NATIVE_KEYS), _values)
def test_one_bad_field_on_a_good_item_only_raises_decode_error(field: str, value: Any) -> None:
    try:
        to_envelope(item(**{field: value}), source="zwfw")
    except DecodeError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_strings_only_raise_decode_error(text: str) -> None:
    try:
        to_envelope(text, source="zwfw")
    except DecodeError:
        pass
