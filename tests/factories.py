"""Canonical test data: valid approvals and their envelopes, built without any adapter."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from schemas import ApprovalDecided, Classification, Envelope

CST = timezone(timedelta(hours=8))
VALID_USCC = "91320700MA1X2Y3K05"


def approval(case_no: str = "320700261121000012345", **changes: Any) -> ApprovalDecided:
    data: dict[str, Any] = {
        "case_no": case_no,
        "item": {"code": "11320700MB123456794000117001", "name": "食品经营许可"},
        "region": "320700",
        "applicant": {
            "kind": "legal",
            "name": "连云港海州区某某餐饮有限公司",
            "id_type": "uscc",
            "id_number": VALID_USCC,
            "legal_representative": "王某某",
            "phone": "13800138000",
        },
        "received_at": datetime(2026, 11, 18, 9, 12, 33, tzinfo=CST),
        "decided_at": datetime(2026, 11, 20, 16, 40, 2, tzinfo=CST),
        "result": "granted",
        "result_description": "准予许可",
        "certificate": {"number": "JY33207000012345", "valid_from": "2026-11-20", "valid_to": "2031-11-19"},
        "commitment": {"mode": "post_verification", "period_days": 20},
    }
    data.update(changes)
    return ApprovalDecided.model_validate(data)


def envelope(
    case_no: str = "320700261121000012345",
    *,
    revision: int = 1,
    source: str = "zwfw",
    classification: Classification = Classification.public,
    **changes: Any,
) -> Envelope:
    return Envelope.wrap(
        approval(case_no, **changes), source=source, revision=revision, classification=classification, region="320700"
    )
