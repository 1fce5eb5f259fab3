"""``approval.feedback.sent``: the approval bureau's answer (处理反馈) to what supervision reported.

A supervision result that asks for a licence change, a breach report and above all a revocation advice
(撤销意见) must be handled by the approval bureau, which feeds back within 5 working days what it did. The
feedback names the message it answers by type and business key, so a trace of the loop reads as a
conversation and the deadline it closes is unambiguous.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from schemas.events.loop import CaseNo, LoopEvent, RecordNo

__all__ = ["FEEDBACK_ANSWERS", "ApprovalFeedbackSent", "FeedbackOutcome"]

FEEDBACK_ANSWERS = ("supervision.result.reported", "commitment.breach.reported", "license.revocation.advised")


class FeedbackOutcome(StrEnum):
    """处理结果 of the approval bureau."""

    license_revoked = "license_revoked"  # 已撤销许可
    license_changed = "license_changed"  # 已变更许可
    license_suspended = "license_suspended"  # 已暂扣 / 中止许可
    upheld = "upheld"  # 维持许可 (不予撤销), with the reason in description
    noted = "noted"  # 已知悉, nothing to change


class ApprovalFeedbackSent(LoopEvent):
    """The approval bureau handled a supervision message about one of its approvals and reports what it did."""

    event_type: ClassVar[str] = "approval.feedback.sent"

    feedback_no: RecordNo = Field(description="反馈编号")
    approval_case_no: CaseNo = Field(description="办件编号 of the approval concerned")
    in_reply_to_type: Literal[
        "supervision.result.reported", "commitment.breach.reported", "license.revocation.advised"
    ] = Field(description="event type of the message answered")
    in_reply_to: RecordNo = Field(description="business key of the message answered (e.g. the 撤销意见书编号)")
    outcome: FeedbackOutcome
    description: str | None = Field(default=None, max_length=4000, description="处理情况说明")
    document_no: str | None = Field(default=None, max_length=128, description="撤销 / 变更决定书文号, if issued")
    sent_at: AwareDatetime

    def business_key(self) -> str:
        return self.feedback_no

    def business_time(self) -> datetime:
        return self.sent_at
