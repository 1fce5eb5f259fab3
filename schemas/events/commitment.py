"""告知承诺 not honoured: ``commitment.breach.reported``, and the ``license.revocation.advised`` (撤销意见) it leads to.

An approval granted on a 告知承诺 (the applicant promised to meet the conditions, or to hand in materials later)
is checked after the fact. When the check finds the promise untrue or unkept, the supervising department reports
the breach and, within 15 working days after the commitment period, advises the approval bureau to revoke the
licence (撤销意见). The approval bureau decides and answers with ``approval.feedback.sent`` within 5 working days.
Both messages only make sense about an approval, so both require its 办件编号.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import AwareDatetime, Field

from schemas.events.approval import CommitmentMode
from schemas.events.loop import CaseNo, LoopEvent, RecordNo

__all__ = ["CommitmentBreachReported", "LicenseRevocationAdvised"]


class CommitmentBreachReported(LoopEvent):
    """The 告知承诺 of an approval was found untrue or not kept (承诺不实 / 未履行承诺)."""

    event_type: ClassVar[str] = "commitment.breach.reported"

    report_no: RecordNo = Field(description="违诺情况报告编号 (reportNo)")
    approval_case_no: CaseNo = Field(description="办件编号 of the approval whose commitment was breached")
    inspection_no: str | None = Field(default=None, max_length=128, description="检查行为编号 that found it")
    commitment_mode: CommitmentMode | None = Field(default=None, description="告知承诺 mode of the approval")
    breach: str = Field(min_length=1, max_length=4000, description="违诺情形: what was promised and not true or kept")
    found_at: AwareDatetime = Field(description="when the breach was established")

    def business_key(self) -> str:
        return self.report_no

    def business_time(self) -> datetime:
        return self.found_at


class LicenseRevocationAdvised(LoopEvent):
    """The supervising department advises the approval bureau to revoke a licence (撤销意见)."""

    event_type: ClassVar[str] = "license.revocation.advised"

    advice_no: RecordNo = Field(description="撤销意见书编号 (adviceNo)")
    approval_case_no: CaseNo = Field(description="办件编号 of the approval whose licence should be revoked")
    certificate_no: str | None = Field(default=None, max_length=128, description="证照编号 of the licence")
    breach_report_no: str | None = Field(default=None, max_length=128, description="the breach report it rests on")
    reason: str = Field(min_length=1, max_length=4000, description="撤销理由")
    legal_basis: str | None = Field(default=None, max_length=2000, description="法律依据, e.g. 行政许可法第六十九条")
    advised_at: AwareDatetime

    def business_key(self) -> str:
        return self.advice_no

    def business_time(self) -> datetime:
        return self.advised_at
