"""The closed loop's messages on the wire: both platforms' dialects, and the hlwjg feed decoder.

Every loop type round-trips through each platform that carries it (canonical → native → canonical gives the
same content hash), so no field is dropped or bent on the way; the decoders refuse what they cannot read with a
reason that names the native field and never echoes the value.
"""

from __future__ import annotations

from typing import Any

import pytest
from loopkit import CASE_NO, SAMPLES, sample

from adapters import DecodeError, RawRecord
from adapters.dialect import Dialect, camel_case, code_of, decode, encode
from adapters.hlwjg import HlwjgEventsAdapter
from adapters.hlwjg.loop import DIALECT as HLWJG
from adapters.hlwjg.loop import KIND_OF, KINDS, encode_message
from adapters.zwfw import linkage
from schemas import CreditPenaltyPublished, Envelope, correlation_id_of, payload_model

PENALTY: dict[str, Any] = {
    "decisionNo": "连市监罚〔2026〕88号",
    "party": {"kind": "legal", "name": "连云港某某餐饮有限公司", "idType": "uscc", "idNumber": "91320700MA1X2Y3K05"},
    "violationType": "违反食品安全法",
    "facts": "未按承诺整改",
    "legalBasis": "《食品安全法》第一百二十六条",
    "categories": ["FINE"],
    "content": "罚款人民币伍千元",
    "fineYuan": "5000",
    "decidedOn": "2026-11-27",
    "authorityName": "连云港市市场监督管理局",
    "authorityCode": "11320700MB12345679",
}


def wrapped(event_type: str, **changes: Any) -> Envelope:
    payload = sample(event_type, **changes)
    return Envelope.wrap(payload, source="test", correlation_id=correlation_id_of(payload))


def events() -> HlwjgEventsAdapter:
    return HlwjgEventsAdapter("hlwjg-events", base_url="http://hlwjg.test", client_id="c", client_secret="s")


@pytest.mark.parametrize("event_type", sorted(KIND_OF))
def test_every_loop_type_round_trips_through_hlwjg(event_type: str) -> None:
    env = wrapped(event_type)
    native = encode_message(env)
    assert native["kind"] == KIND_OF[event_type] and native["approvalNo"] == CASE_NO
    decoded = events().decode(RawRecord({"eventType": native.pop("kind"), "seq": 7, **native}))
    assert [e.type for e in decoded] == [event_type]
    assert decoded[0].content_hash == env.content_hash and decoded[0].correlation_id == CASE_NO


@pytest.mark.parametrize("event_type", sorted(linkage.MSGTYPE_OF))
def test_every_linkage_type_round_trips_through_zwfw(event_type: str) -> None:
    env = wrapped(event_type) if event_type in SAMPLES else None
    if env is None:  # the claim and the penalty: built from their own models
        env = {
            "supervision.task.claimed": lambda: Envelope.wrap(
                payload_model(event_type).model_validate(
                    {
                        "task_no": "JGRW32070000000001",
                        "approval_case_no": CASE_NO,
                        "claimed_at": "2026-11-21T09:30:00+08:00",
                        "mode": "default",
                        "auto": True,
                    }
                ),
                source="test",
            ),
            "credit.penalty.published": lambda: Envelope.wrap(
                decode(CreditPenaltyPublished, PENALTY, HLWJG), source="t"
            ),
        }[event_type]()
    item = linkage.encode_item(env)
    assert all(isinstance(v, str | list | dict) for v in item.values()), "zwfw writes every value as text"
    assert item["MSGTYPE"] == linkage.MSGTYPE_OF[event_type] and item["DATAVERSION"] == "1"
    back = linkage.to_envelope(item, source="zwfw-linkage")
    assert (back.type, back.content_hash) == (env.type, env.content_hash)


def test_zwfw_quirks_blank_values_string_flags_naive_times_and_reports() -> None:
    item = linkage.encode_item(wrapped("supervision.inspection.reported", findings=None))
    assert item["FINDINGS"] == "" and item["COMMITMENT_VERIFICATION"] == "1"
    assert item["CHECKED_AT"] == "2026-11-25 10:00:00"
    assert item["PROJID"] == CASE_NO and item["AREACODE"] == "320700" and item["RESULT"] == "RECTIFICATION_ORDERED"
    quirky = {**item, "DATAVERSION": "2", "FINDINGS": None, "COMMITMENT_VERIFICATION": "否"}
    payload, revision = linkage.decode_item(quirky)
    assert revision == 2 and payload.findings is None and payload.commitment_verification is False
    assert payload.checked_at.utcoffset().total_seconds() == 8 * 3600, "naive times are Beijing time"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MSGTYPE": "PAYMENT"}, "MSGTYPE 'PAYMENT'"),
        ({"MSGTYPE": None}, "MSGTYPE missing"),
        ({"CHECKED_AT": "yesterday"}, "CHECKED_AT (checked_at) is not a time"),
        ({"RESULT": "FINE"}, "RESULT (result) must be one of"),
        ({"SUPERVISION_MATTER_CODE": "12"}, "SUPERVISION_MATTER_CODE (supervision_matter_code)"),
        ({"INSPECTORS": "李某"}, "INSPECTORS (inspectors) must be a list"),
        ({"INSPECTORS": [{"NAME": ""}]}, "INSPECTORS (inspectors)"),
        ({"DATAVERSION": "0"}, "DATAVERSION"),
        ({"AREACODE": {"code": "320700"}}, "AREACODE (region) has wrong type dict"),
    ],
)
def test_zwfw_linkage_rejections_name_the_native_field(change: dict[str, Any], named: str) -> None:
    item = {**linkage.encode_item(wrapped("supervision.inspection.reported")), **change}
    with pytest.raises(DecodeError, match=named.replace("(", r"\(").replace(")", r"\)")):
        linkage.to_envelope(item, source="zwfw-linkage")


def test_a_penalised_result_is_two_facts_in_one_loop_the_penalty_caused_by_the_result() -> None:
    native = encode_message(wrapped("supervision.result.reported"))
    item = {"eventType": native.pop("kind"), **native, "penalty": PENALTY, "dataVersion": 2}
    result, penalty = events().decode(RawRecord(item))
    assert (result.type, penalty.type) == ("supervision.result.reported", "credit.penalty.published")
    assert result.revision == penalty.revision == 2
    assert penalty.business_key == "连市监罚〔2026〕88号" == result.data["penalty_decision_no"]
    assert penalty.correlation_id == result.correlation_id == CASE_NO and penalty.causation_id == result.id
    assert penalty.data["related_case_no"] == CASE_NO and penalty.data["region"] == "320700", "inherited"
    # Without penaltyDecisionNo the penalty names it; a contradiction is refused, not guessed.
    del item["penaltyDecisionNo"]
    assert events().decode(RawRecord(item))[0].data["penalty_decision_no"] == PENALTY["decisionNo"]
    with pytest.raises(DecodeError, match="differs"):
        events().decode(RawRecord({**item, "penaltyDecisionNo": "another"}))
    with pytest.raises(DecodeError, match=r"penalty\.party\.idNumber \(party\.id_number\)"):
        events().decode(RawRecord({**item, "penalty": {**PENALTY, "party": {**PENALTY["party"], "idNumber": "x"}}}))


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ({"eventType": "INSPECTION_RECORDED"}, "INSPECTION_RECORDED"),
        ({"eventType": "INSPECTION_REPORTED", "checkTime": "2026-13-01 10:00:00"}, r"checkTime \(checked_at\)"),
        ({"eventType": "REVOCATION_ADVISED", "approvalNo": ""}, r"approvalNo \(approval_case_no\)"),
        ({"eventType": "GUIDANCE_REQUESTED", "askedBy": "CITIZEN"}, r"askedBy \(asked_by\) must be one of"),
        ({"eventType": "RESULT_REPORTED", "dataVersion": "two"}, "dataVersion"),
        ({"eventType": "RESULT_REPORTED", "penalty": "fined"}, "penalty must be a JSON object"),
    ],
)
def test_the_feed_decoder_refuses_what_it_cannot_read_with_the_native_field(item: dict[str, Any], named: str) -> None:
    kind = item["eventType"]
    base = {}
    if kind in KINDS:
        base = encode_message(wrapped(KINDS[kind]))
        base.pop("kind")
    with pytest.raises(DecodeError, match=named) as caught:
        events().decode(RawRecord({**base, **item}))
    assert "2026-13-01" not in caught.value.reason, "values are never echoed"


def test_the_dialect_reads_sloppy_values_and_writes_codes() -> None:
    assert code_of("license.revocation.advised") == "LICENSE_REVOCATION_ADVISED"
    assert camel_case("approval_case_no") == "approvalCaseNo"
    lenient = Dialect("x", camel_case)
    inspection = encode(sample("supervision.inspection.reported"), lenient)
    inspection |= {"commitmentVerification": "true", "result": "no_problem", "findings": "  "}
    payload = decode(payload_model("supervision.inspection.reported"), inspection, lenient)
    assert payload.commitment_verification is True and payload.result.value == "no_problem" and payload.findings is None
