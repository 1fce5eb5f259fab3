"""智慧踏勘 (site inspection): ``site_inspection.requested`` and ``site_inspection.reported``.

For items that need the premises seen before a decision, the approval bureau asks for a site inspection —
on site, or remotely by video (the "smart" 踏勘 most cities now run) — often jointly with the supervising
department that will later supervise the licence. The report states whether the site meets the conditions.
Both messages are keyed by the request number and name the case (办件编号).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.events.approval import ApprovalItem
from schemas.events.loop import CaseNo, Inspector, LoopEvent, RecordNo

__all__ = ["SiteInspectionConclusion", "SiteInspectionMode", "SiteInspectionReported", "SiteInspectionRequested"]


class SiteInspectionMode(StrEnum):
    """踏勘方式."""

    on_site = "on_site"  # 现场踏勘
    remote = "remote"  # 远程视频踏勘


class SiteInspectionRequested(LoopEvent):
    """The approval bureau asks for a site inspection of a case's premises."""

    event_type: ClassVar[str] = "site_inspection.requested"

    request_no: RecordNo = Field(description="踏勘申请编号")
    approval_case_no: CaseNo
    item: ApprovalItem
    site_address: str = Field(min_length=1, max_length=512, description="踏勘地点")
    mode: SiteInspectionMode = SiteInspectionMode.remote
    planned_on: date | None = Field(default=None, description="拟踏勘日期")
    addressed_to_name: str | None = Field(default=None, max_length=128, description="department asked to join")
    addressed_to_code: str | None = Field(default=None, max_length=64)
    requested_at: AwareDatetime

    def business_key(self) -> str:
        return self.request_no

    def business_time(self) -> datetime:
        return self.requested_at


class SiteInspectionConclusion(StrEnum):
    """踏勘结论."""

    passed = "passed"  # 符合条件
    failed = "failed"  # 不符合条件
    rectify = "rectify"  # 整改后复勘


class SiteInspectionReported(LoopEvent):
    """The report (踏勘报告) of a site inspection."""

    event_type: ClassVar[str] = "site_inspection.reported"

    request_no: RecordNo = Field(description="踏勘申请编号 reported on")
    approval_case_no: CaseNo
    conclusion: SiteInspectionConclusion
    findings: str | None = Field(default=None, max_length=4000, description="踏勘情况; required unless passed")
    inspected_at: AwareDatetime
    inspectors: tuple[Inspector, ...] = Field(min_length=1, description="踏勘人员")

    @model_validator(mode="after")
    def _findings(self) -> Self:
        if self.conclusion is not SiteInspectionConclusion.passed and not self.findings:
            raise ValueError(f"a {self.conclusion.value} report needs findings saying what is wrong")
        return self

    def business_key(self) -> str:
        return self.request_no

    def business_time(self) -> datetime:
        return self.inspected_at
