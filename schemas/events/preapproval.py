"""批前确认 (pre-approval confirmation): ``preapproval.confirmation.requested`` and ``.answered``.

Before deciding certain items, the approval bureau asks the competent department (主管部门) to confirm
something only it can (a planning condition, a qualification on its register); the answer is due within 2
working days. Both messages are keyed by the request number, so the answer is one fact per request whatever
path it takes, and both name the case (办件编号), which exists from acceptance (受理) on.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.events.approval import ApprovalItem
from schemas.events.loop import CaseNo, LoopEvent, RecordNo

__all__ = ["ConfirmationDecision", "PreapprovalConfirmationAnswered", "PreapprovalConfirmationRequested"]


class PreapprovalConfirmationRequested(LoopEvent):
    """The approval bureau asks a competent department to confirm something before it decides a case."""

    event_type: ClassVar[str] = "preapproval.confirmation.requested"

    request_no: RecordNo = Field(description="批前确认请求编号")
    approval_case_no: CaseNo = Field(description="办件编号 of the case awaiting the confirmation")
    item: ApprovalItem
    applicant_name: str | None = Field(default=None, max_length=256, description="申请人 (name only)")
    content: str = Field(min_length=1, max_length=4000, description="需确认事项")
    requested_at: AwareDatetime
    addressed_to_name: str | None = Field(default=None, max_length=128, description="主管部门 asked")
    addressed_to_code: str | None = Field(default=None, max_length=64)
    answer_due: date | None = Field(default=None, description="答复期限, if the request states one")

    def business_key(self) -> str:
        return self.request_no

    def business_time(self) -> datetime:
        return self.requested_at


class ConfirmationDecision(StrEnum):
    """确认意见."""

    agreed = "agreed"  # 同意
    disagreed = "disagreed"  # 不同意
    supplement = "supplement"  # 需补正材料


class PreapprovalConfirmationAnswered(LoopEvent):
    """The competent department's answer to a 批前确认 request."""

    event_type: ClassVar[str] = "preapproval.confirmation.answered"

    request_no: RecordNo = Field(description="批前确认请求编号 answered")
    approval_case_no: CaseNo
    decision: ConfirmationDecision
    opinion: str | None = Field(default=None, max_length=4000, description="确认意见; required unless agreed")
    answered_at: AwareDatetime

    @model_validator(mode="after")
    def _reasons(self) -> Self:
        if self.decision is not ConfirmationDecision.agreed and not self.opinion:
            raise ValueError(f"a {self.decision.value} answer needs an opinion saying why")
        return self

    def business_key(self) -> str:
        return self.request_no

    def business_time(self) -> datetime:
        return self.answered_at
