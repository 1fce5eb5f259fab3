"""Shared helpers for the mock-platform tests (a uniquely named module: tests here are not a package)."""

from __future__ import annotations

from typing import Any

START = 1_795_000_000.0  # 2026-11-18, Beijing time


class FakeClock:
    """A clock the tests move by hand, so token expiry and timestamp windows need no sleeping."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def approval(request_id: str, approval_no: str, version: int = 1, **record: Any) -> dict[str, Any]:
    """A minimal valid hlwjg approval-record request body."""
    body: dict[str, Any] = {
        "approvalNo": approval_no,
        "dataVersion": version,
        "itemCode": "11320700MB123456794000117001",
        "itemName": "食品经营许可",
        "areaCode": "320700",
        "decisionResult": "GRANTED",
        "decisionText": "准予许可",
        "decidedAt": "2026-11-20T16:40:02+08:00",
        "receivedAt": "2026-11-18T09:12:33+08:00",
        "counterpart": {
            "type": "LEGAL",
            "name": "连云港海州区鑫源餐饮有限公司",
            "credentialsType": "USCC",
            "credentialsValue": "91320700MA1X2Y3K05",
            "legalRepresentative": "王某某",
            "contactPhone": "13800138000",
        },
        "license": None,
        "commitment": {"mode": "POST_VERIFICATION", "periodDays": 20},
        "correlationId": f"corr-{approval_no}",
    }
    body.update(record)
    return {"requestId": request_id, "record": body}
