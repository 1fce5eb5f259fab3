"""双公示 of 告知承诺: ``credit.commitment.published`` (告知承诺书) and ``credit.fulfilment.published`` (履约践诺).

Besides 行政许可 and 行政处罚 (``schemas.events.credit``), the credit platform keeps two records about
commitments: the 告知承诺书 an applicant signed to be granted a licence on trust, and later whether the promise
was kept (履约践诺: honoured, or breached — 违诺, which weighs on the party's credit). Both are due within 7
working days. Each is its own fact, keyed by the platform's record number; both name the approval (办件编号)
they came from, so they join its loop.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from schemas.envelope import EventPayload
from schemas.events.approval import CommitmentMode
from schemas.events.loop import CaseNo, RecordNo
from schemas.identifiers import USCC, RegionCode
from schemas.parties import Party

__all__ = ["CreditCommitmentPublished", "CreditFulfilmentPublished", "FulfilmentStatus"]

_BEIJING = timezone(timedelta(hours=8))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=_BEIJING)


class CreditCommitmentPublished(EventPayload):
    """A 告知承诺书 (signed commitment) record for 双公示."""

    event_type: ClassVar[str] = "credit.commitment.published"

    commitment_no: RecordNo = Field(description="承诺书编号")
    party: Party = Field(description="承诺人 (the applicant)")
    item_name: str = Field(min_length=1, max_length=256, description="承诺事项 (the approval item)")
    mode: CommitmentMode = Field(description="告知承诺 mode")
    content: str = Field(min_length=1, max_length=4000, description="承诺内容")
    signed_on: date = Field(description="承诺日期")
    period_days: int | None = Field(default=None, gt=0, le=3650, description="承诺期限 in working days")
    authority_name: str = Field(min_length=1, max_length=128, description="受理机关")
    authority_code: USCC = Field(description="受理机关统一社会信用代码")
    case_no: CaseNo | None = Field(default=None, description="办件编号 of the approval granted on it")
    region: RegionCode | None = None
    recorded_at: AwareDatetime | None = Field(default=None, description="when the source recorded this version")

    def business_key(self) -> str:
        return self.commitment_no

    def business_time(self) -> datetime:
        return self.recorded_at or _midnight(self.signed_on)


class FulfilmentStatus(StrEnum):
    """履约状态."""

    honoured = "honoured"  # 已履约
    breached = "breached"  # 未履约 (违诺)


class CreditFulfilmentPublished(EventPayload):
    """A 履约践诺 record: whether a commitment was kept, for 双公示."""

    event_type: ClassVar[str] = "credit.fulfilment.published"

    record_no: RecordNo = Field(description="履约践诺记录编号")
    commitment_no: str | None = Field(default=None, max_length=128, description="承诺书编号 verified")
    party: Party = Field(description="承诺人")
    status: FulfilmentStatus
    description: str | None = Field(default=None, max_length=4000, description="核查情况")
    verified_on: date = Field(description="核查日期")
    authority_name: str = Field(min_length=1, max_length=128, description="核查机关")
    authority_code: USCC = Field(description="核查机关统一社会信用代码")
    case_no: CaseNo | None = Field(default=None, description="办件编号 of the approval concerned")
    region: RegionCode | None = None
    recorded_at: AwareDatetime | None = Field(default=None, description="when the source recorded this version")

    def business_key(self) -> str:
        return self.record_no

    def business_time(self) -> datetime:
        return self.recorded_at or _midnight(self.verified_on)
