"""Valid payloads of every closed-loop event type (DESIGN §2.2), built without any adapter.

One sample per type, all in the loop of the approval ``CASE_NO``: schema, codec, trace and demo tests share
them, so a field added to a model is exercised everywhere at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from schemas import EventPayload, payload_model

CST = timezone(timedelta(hours=8))
CASE_NO = "320700261121000012345"
TASK_NO = "JGRW32070000000001"
AUTHORITY = "11320700MB12345679"
PARTY = {"kind": "legal", "name": "连云港海州区某某餐饮有限公司", "id_type": "uscc", "id_number": "91320700MA1X2Y3K05"}
LOOP = {"approval_case_no": CASE_NO, "task_no": TASK_NO, "region": "320700"}
SUPERVISION = {"department_name": "连云港市市场监督管理局", "department_code": "11320700MB1234567A"}
BUREAU = {"department_name": "连云港市行政审批局", "department_code": AUTHORITY}
INSPECTORS = [{"name": "李某", "certificate_no": "32070012345"}, {"name": "张某", "certificate_no": "32070012346"}]


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=CST)


SAMPLES: dict[str, dict[str, Any]] = {
    "supervision.inspection.reported": {
        **LOOP,
        **SUPERVISION,
        "inspection_no": "JC3207002026000001",
        "supervision_matter_code": "32070000100001",
        "supervision_matter_name": "食品经营许可事后核查",
        "checked_at": at(25),
        "result": "rectification_ordered",
        "findings": "后厨布局与承诺不符",
        "commitment_verification": True,
        "inspectors": INSPECTORS,
        "objects": [{"type": "legal", "name": PARTY["name"], "code": PARTY["id_number"]}],
    },
    "supervision.result.reported": {
        **LOOP,
        **SUPERVISION,
        "result_no": "JG3207002026000001",
        "inspection_no": "JC3207002026000001",
        "reported_at": at(27),
        "conclusion": "penalised",
        "license_action": "suspend",
        "license_action_reason": "未按承诺整改",
        "description": "责令停业整顿十日",
        "penalty_decision_no": "连市监罚〔2026〕88号",
    },
    "commitment.breach.reported": {
        **LOOP,
        **SUPERVISION,
        "report_no": "WN3207002026000001",
        "inspection_no": "JC3207002026000001",
        "commitment_mode": "post_verification",
        "breach": "承诺已具备的冷藏设施不存在",
        "found_at": at(25, 15),
    },
    "license.revocation.advised": {
        **LOOP,
        **SUPERVISION,
        "advice_no": "CX3207002026000001",
        "certificate_no": "JY33207000012345",
        "breach_report_no": "WN3207002026000001",
        "reason": "申请人承诺内容与实际不符，且逾期未整改",
        "legal_basis": "《行政许可法》第六十九条",
        "advised_at": at(26),
    },
    "approval.feedback.sent": {
        **LOOP,
        **BUREAU,
        "feedback_no": "FK3207002026000001",
        "in_reply_to_type": "license.revocation.advised",
        "in_reply_to": "CX3207002026000001",
        "outcome": "license_revoked",
        "description": "已依法撤销该许可",
        "document_no": "连审批撤〔2026〕12号",
        "sent_at": at(30),
    },
    "preapproval.confirmation.requested": {
        "approval_case_no": CASE_NO,
        "region": "320700",
        **BUREAU,
        "request_no": "PQ3207002026000001",
        "item": {"code": "11320700MB123456794000117001", "name": "食品经营许可"},
        "applicant_name": PARTY["name"],
        "content": "请确认该经营场所不在规划限制区域内",
        "requested_at": at(18),
        "addressed_to_name": "连云港市自然资源和规划局",
        "answer_due": "2026-11-20",
    },
    "preapproval.confirmation.answered": {
        "approval_case_no": CASE_NO,
        "region": "320700",
        "department_name": "连云港市自然资源和规划局",
        "request_no": "PQ3207002026000001",
        "decision": "agreed",
        "answered_at": at(19),
    },
    "guidance.requested": {
        **LOOP,
        **SUPERVISION,
        "request_no": "ZD3207002026000001",
        "asked_by": "supervision",
        "subject": "告知承诺核查范围",
        "question": "材料延期类承诺是否须现场核查？",
        "item_code": "11320700MB123456794000117001",
        "addressed_to_name": "连云港市行政审批局",
        "requested_at": at(23),
    },
    "guidance.answered": {
        **LOOP,
        **BUREAU,
        "request_no": "ZD3207002026000001",
        "answer": "材料延期类以书面核查为主，必要时现场核查。",
        "answered_at": at(24),
    },
    "site_inspection.requested": {
        "approval_case_no": CASE_NO,
        "region": "320700",
        **BUREAU,
        "request_no": "TK3207002026000001",
        "item": {"code": "11320700MB123456794000117001", "name": "食品经营许可"},
        "site_address": "连云港市海州区朝阳东路1号",
        "mode": "remote",
        "planned_on": "2026-11-19",
        "addressed_to_name": "连云港市市场监督管理局",
        "requested_at": at(18, 11),
    },
    "site_inspection.reported": {
        "approval_case_no": CASE_NO,
        "region": "320700",
        **SUPERVISION,
        "request_no": "TK3207002026000001",
        "conclusion": "passed",
        "inspected_at": at(19, 14),
        "inspectors": INSPECTORS,
    },
    "credit.commitment.published": {
        "commitment_no": "CN3207002026000001",
        "party": PARTY,
        "item_name": "食品经营许可",
        "mode": "post_verification",
        "content": "本单位承诺已具备食品经营许可条件",
        "signed_on": "2026-11-18",
        "period_days": 20,
        "authority_name": "连云港市行政审批局",
        "authority_code": AUTHORITY,
        "case_no": CASE_NO,
        "region": "320700",
    },
    "credit.fulfilment.published": {
        "record_no": "LY3207002026000001",
        "commitment_no": "CN3207002026000001",
        "party": PARTY,
        "status": "breached",
        "description": "核查发现承诺不实",
        "verified_on": "2026-11-25",
        "authority_name": "连云港市市场监督管理局",
        "authority_code": AUTHORITY,
        "case_no": CASE_NO,
        "region": "320700",
    },
}


def sample(event_type: str, **changes: Any) -> EventPayload:
    """The valid sample payload of ``event_type`` with ``changes`` applied (``None`` removes a field)."""
    data = {**SAMPLES[event_type], **changes}
    return payload_model(event_type).model_validate({k: v for k, v in data.items() if v is not None})
