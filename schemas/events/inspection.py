"""``supervision.inspection.reported``: a 检查行为 (inspection act) the supervising department recorded.

Inspections are what a supervision task leads to: a visit or a document check of the licensee, by named
inspectors, with a 检查结果. An inspection of a 告知承诺 approval is also the 核查 that decides whether the
commitment was honoured; a breach it finds is reported separately (``commitment.breach.reported``), and the
conclusion of the whole task later (``supervision.result.reported``, due within 5 working days).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from schemas.events.loop import Inspector, LoopEvent, RecordNo
from schemas.events.supervision import SUPERVISION_MATTER_CODE, SuperviseObject

__all__ = ["InspectionResult", "SupervisionInspectionReported"]


class InspectionResult(StrEnum):
    """检查结果 of one inspection."""

    no_problem = "no_problem"  # 未发现问题
    rectification_ordered = "rectification_ordered"  # 发现问题，责令整改
    case_filed = "case_filed"  # 发现问题，立案查处
    transferred = "transferred"  # 发现问题，移送有关部门
    object_not_found = "object_not_found"  # 未发现检查对象 (closed, moved, unreachable)


class SupervisionInspectionReported(LoopEvent):
    """A 检查行为 was carried out on a supervision task (or on its own, for a routine inspection)."""

    event_type: ClassVar[str] = "supervision.inspection.reported"

    inspection_no: RecordNo = Field(description="检查行为编号 (inspectionNo)")
    supervision_matter_code: str = Field(pattern=SUPERVISION_MATTER_CODE, description="监管事项目录编码 (14 digits)")
    supervision_matter_name: str | None = Field(default=None, max_length=256)
    checked_at: AwareDatetime = Field(description="检查时间 (checkTime)")
    result: InspectionResult = Field(description="检查结果 (checkResult)")
    findings: str | None = Field(default=None, max_length=4000, description="检查情况")
    commitment_verification: bool = Field(
        default=False, description="this inspection was the 告知承诺 核查 (verification of the commitment)"
    )
    inspectors: tuple[Inspector, ...] = Field(min_length=1, description="执法人员 who inspected")
    objects: tuple[SuperviseObject, ...] = Field(default=(), description="监管对象 inspected")

    def business_key(self) -> str:
        return self.inspection_no

    def business_time(self) -> datetime:
        return self.checked_at
