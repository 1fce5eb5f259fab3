"""The closed loop's event types (DESIGN §2.2): keys, business times, model rules, and one correlation id per loop."""

from __future__ import annotations

from datetime import datetime

import pytest
from loopkit import CASE_NO, SAMPLES, sample
from pydantic import ValidationError

from schemas import Envelope, correlation_id_of, event_types, loop_id
from schemas.correlation import approval_case_no

KEYS = {
    "supervision.inspection.reported": "JC3207002026000001",
    "supervision.result.reported": "JG3207002026000001",
    "commitment.breach.reported": "WN3207002026000001",
    "license.revocation.advised": "CX3207002026000001",
    "approval.feedback.sent": "FK3207002026000001",
    "preapproval.confirmation.requested": "PQ3207002026000001",
    "preapproval.confirmation.answered": "PQ3207002026000001",
    "guidance.requested": "ZD3207002026000001",
    "guidance.answered": "ZD3207002026000001",
    "site_inspection.requested": "TK3207002026000001",
    "site_inspection.reported": "TK3207002026000001",
    "credit.commitment.published": "CN3207002026000001",
    "credit.fulfilment.published": "LY3207002026000001",
}


def test_every_type_of_design_2_2_is_registered() -> None:
    design = {
        "approval.decided",
        "supervision.task.created",
        "supervision.task.claimed",
        "credit.license.published",
        "credit.penalty.published",
        *KEYS,
    }
    assert design <= set(event_types())


@pytest.mark.parametrize("event_type", sorted(KEYS))
def test_each_type_has_its_natural_key_an_aware_business_time_and_the_approvals_loop(event_type: str) -> None:
    payload = sample(event_type)
    assert payload.business_key() == KEYS[event_type]
    moment = payload.business_time()
    assert isinstance(moment, datetime) and moment.utcoffset() is not None
    env = Envelope.wrap(payload, source="test", correlation_id=correlation_id_of(payload))
    assert env.correlation_id == CASE_NO, "every message of the loop carries the approval's 办件编号"
    assert env.payload() == payload
    # A naive time is refused wherever a time is given (platforms' naive times are the adapters' to localise).
    for name, value in SAMPLES[event_type].items():
        if isinstance(value, datetime):
            with pytest.raises(ValidationError):
                sample(event_type, **{name: value.replace(tzinfo=None)})


def test_the_loop_id_is_the_normalised_case_number_and_a_loop_needs_a_name() -> None:
    assert loop_id(" ３２０７００261121000012345 ") == CASE_NO, "全角 digits and blanks do not split a loop"
    assert loop_id("320700ab") == "320700AB"
    with pytest.raises(ValueError, match="blank"):
        loop_id("  ")


def test_a_message_without_an_approval_is_a_loop_of_its_own_shared_with_its_answer() -> None:
    question = sample("guidance.requested", approval_case_no=None, task_no=None)
    answer = sample("guidance.answered", approval_case_no=None, task_no=None)
    assert approval_case_no(question) is None
    assert correlation_id_of(question) == correlation_id_of(answer) == "ZD3207002026000001"


def test_derived_credit_records_and_penalties_join_the_loop_of_their_approval() -> None:
    assert correlation_id_of(sample("credit.commitment.published")) == CASE_NO
    from schemas import CreditPenaltyPublished

    penalty = CreditPenaltyPublished.model_validate(
        {
            "decision_no": "连市监罚〔2026〕88号",
            "party": SAMPLES["credit.commitment.published"]["party"],
            "violation_type": "违反食品安全法",
            "facts": "未按承诺整改",
            "legal_basis": "《食品安全法》第一百二十六条",
            "categories": ["fine"],
            "content": "罚款5000元",
            "fine_yuan": "5000",
            "decided_on": "2026-11-27",
            "authority_name": "连云港市市场监督管理局",
            "authority_code": "11320700MB12345679",
            "related_case_no": CASE_NO,
        }
    )
    assert correlation_id_of(penalty) == CASE_NO


@pytest.mark.parametrize(
    ("event_type", "changes", "message"),
    [
        ("supervision.result.reported", {"penalty_decision_no": None}, "needs penalty_decision_no"),
        ("supervision.result.reported", {"conclusion": "compliant"}, "not penalised"),
        ("supervision.result.reported", {"license_action_reason": None}, "needs license_action_reason"),
        ("supervision.result.reported", {"approval_case_no": None}, "needs the approval"),
        ("supervision.inspection.reported", {"supervision_matter_code": "1234"}, "supervision_matter_code"),
        ("supervision.inspection.reported", {"inspectors": []}, "inspectors"),
        ("supervision.inspection.reported", {"region": "000000"}, "region"),
        ("commitment.breach.reported", {"approval_case_no": None}, "approval_case_no"),
        ("license.revocation.advised", {"approval_case_no": "  "}, "approval_case_no"),
        ("approval.feedback.sent", {"in_reply_to_type": "guidance.requested"}, "in_reply_to_type"),
        ("preapproval.confirmation.answered", {"decision": "disagreed"}, "needs an opinion"),
        ("site_inspection.reported", {"conclusion": "failed"}, "needs findings"),
        ("credit.commitment.published", {"authority_code": "11320700MB12345678"}, "check character"),
        ("credit.fulfilment.published", {"status": "unknown"}, "status"),
        ("guidance.requested", {"asked_by": "citizen"}, "asked_by"),
    ],
)
def test_model_rules_refuse_what_cannot_be_true(event_type: str, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        sample(event_type, **changes)


def test_a_penalised_result_without_a_licence_change_needs_no_reason() -> None:
    result = sample("supervision.result.reported", license_action="none", license_action_reason=None)
    assert result.penalty_decision_no == "连市监罚〔2026〕88号"
