"""业务指导 (guidance): ``guidance.requested`` and ``guidance.answered``, asked by either side.

The approval bureau asks a department how a rule applies to an item, or a department asks the bureau how an
approval was meant; the answer is due within 5 working days. ``asked_by`` says which side asked, so routes and
reports can tell the two directions apart. A question about one case names its 办件编号 and joins that loop; a
general one is a loop of its own, shared with its answer (both keyed by the request number).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from schemas.events.loop import LoopEvent, RecordNo

__all__ = ["GuidanceAnswered", "GuidanceRequested", "GuidanceSide"]


class GuidanceSide(StrEnum):
    """Which side of 审管联动 a guidance request came from."""

    approval = "approval"  # 审批局
    supervision = "supervision"  # 监管部门


class GuidanceRequested(LoopEvent):
    """A request for 业务指导."""

    event_type: ClassVar[str] = "guidance.requested"

    request_no: RecordNo = Field(description="指导请求编号")
    asked_by: GuidanceSide
    subject: str = Field(min_length=1, max_length=256, description="主题")
    question: str = Field(min_length=1, max_length=4000, description="问题描述")
    item_code: str | None = Field(default=None, max_length=64, description="事项编码 the question is about")
    addressed_to_name: str | None = Field(default=None, max_length=128)
    addressed_to_code: str | None = Field(default=None, max_length=64)
    requested_at: AwareDatetime

    def business_key(self) -> str:
        return self.request_no

    def business_time(self) -> datetime:
        return self.requested_at


class GuidanceAnswered(LoopEvent):
    """The answer to a 业务指导 request (one per request)."""

    event_type: ClassVar[str] = "guidance.answered"

    request_no: RecordNo = Field(description="指导请求编号 answered")
    answer: str = Field(min_length=1, max_length=4000, description="指导意见")
    answered_at: AwareDatetime

    def business_key(self) -> str:
        return self.request_no

    def business_time(self) -> datetime:
        return self.answered_at
