"""``supervision.result.reported``: the supervising department's conclusion (监管结果) on a task.

A result goes back to the approval bureau within 5 working days (DESIGN §1) because it may change the licence:
``license_action`` says whether the licence stands, must change, is suspended or is to be revoked, and the
approval bureau answers with ``approval.feedback.sent``. A result that ended in a 行政处罚 names the penalty
decision by its number; the decision itself is the ``credit.penalty.published`` fact (keyed by that number),
which platforms report together with the result and which is published to the credit platform (双公示).
Carrying the whole penalty here as well would make it one fact under two keys.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.events.loop import LoopEvent, RecordNo

__all__ = ["LicenseAction", "ResultConclusion", "SupervisionResultReported"]


class ResultConclusion(StrEnum):
    """监管结果: what supervision of the task concluded."""

    compliant = "compliant"  # 合格 / 未发现违法违规
    rectified = "rectified"  # 责令整改，整改到位
    penalised = "penalised"  # 予以行政处罚
    transferred = "transferred"  # 移送有关部门处理
    closed = "closed"  # 无法核查 (the business closed or cannot be found)


class LicenseAction(StrEnum):
    """What the result asks of the licence (对许可的处理意见)."""

    none = "none"  # 维持许可
    change = "change"  # 变更许可
    suspend = "suspend"  # 暂扣许可证件 / 责令停产停业
    revoke = "revoke"  # 撤销或吊销许可


class SupervisionResultReported(LoopEvent):
    """The conclusion of supervising one approval's task, sent back to the approval bureau."""

    event_type: ClassVar[str] = "supervision.result.reported"

    result_no: RecordNo = Field(description="监管结果编号 (resultNo)")
    inspection_no: str | None = Field(default=None, max_length=128, description="检查行为编号 it concludes")
    reported_at: AwareDatetime = Field(description="结果反馈时间")
    conclusion: ResultConclusion
    license_action: LicenseAction = Field(default=LicenseAction.none, description="对许可的处理意见")
    license_action_reason: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=4000, description="处理结果说明")
    penalty_decision_no: str | None = Field(
        default=None, max_length=128, description="行政处罚决定书文号: the credit.penalty.published fact"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        penalised = self.conclusion is ResultConclusion.penalised
        if penalised and not self.penalty_decision_no:
            raise ValueError("a penalised result needs penalty_decision_no (行政处罚决定书文号)")
        if not penalised and self.penalty_decision_no:
            raise ValueError("penalty_decision_no is set but the conclusion is not penalised")
        if self.license_action is not LicenseAction.none:
            if not self.approval_case_no:
                raise ValueError(f"license_action {self.license_action.value} needs the approval's approval_case_no")
            if not self.license_action_reason:
                raise ValueError(f"license_action {self.license_action.value} needs license_action_reason")
        return self

    def business_key(self) -> str:
        return self.result_no

    def business_time(self) -> datetime:
        return self.reported_at
