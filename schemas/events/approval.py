"""``approval.decided``: an approval (办件) was decided (办结) at the approval bureau.

A correction (重报) is not a separate type: it is the same type with a higher envelope ``revision``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.envelope import EventPayload
from schemas.identifiers import USCC, RegionCode
from schemas.parties import Party

__all__ = [
    "LONG_TERM_SENTINEL",
    "ApprovalDecided",
    "ApprovalItem",
    "Certificate",
    "Commitment",
    "CommitmentMode",
    "DecisionResult",
]

# Platforms write 长期 (no expiry) as this date; the canonical model says ``long_term=True`` instead.
LONG_TERM_SENTINEL = date(2099, 12, 31)


class DecisionResult(StrEnum):
    """办结结果: 办结 (granted), 退件/不予许可 (rejected), 作废办结 (voided), 转报办结 (forwarded)."""

    granted = "granted"
    rejected = "rejected"
    voided = "voided"
    forwarded = "forwarded"


class CommitmentMode(StrEnum):
    """告知承诺 mode: 材料延期 (materials later), 材料核验 (materials verified), 事后核查 (checked after)."""

    deferred_materials = "deferred_materials"
    material_verification = "material_verification"
    post_verification = "post_verification"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ApprovalItem(_Part):
    """The approval item (审批事项) the case was filed under."""

    code: str = Field(min_length=1, description="事项编码 (SERVICECODE)")
    name: str = Field(min_length=1, description="事项名称 (SERVICENAME)")


class Certificate(_Part):
    """The license (许可证) and decision document (决定书) an approval produced."""

    number: str | None = Field(default=None, description="证照编号 (RESULT_CODE)")
    name: str | None = Field(default=None, description="许可证书名称 (XK_XKZS)")
    document_no: str | None = Field(default=None, description="决定文书号 (XK_WSH)")
    document_name: str | None = Field(default=None, description="决定文书名称 (XK_XKWS)")
    valid_from: date | None = Field(default=None, description="有效期自 (XK_YXQZ)")
    valid_to: date | None = Field(default=None, description="有效期至 (XK_YXQZI); null when long_term")
    long_term: bool = Field(default=False, description="长期有效")
    issuer_code: USCC | None = Field(default=None, description="许可机关统一社会信用代码 (XK_XKJGDM)")

    @model_validator(mode="after")
    def _validity(self) -> Self:
        if self.long_term and self.valid_to is not None:
            raise ValueError("valid_to must be empty when long_term (长期) is set")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self


class Commitment(_Part):
    """告知承诺 (notification and commitment) attached to the approval."""

    mode: CommitmentMode
    period_days: int | None = Field(
        default=None, gt=0, le=3650, description="承诺期限 in working days; the region default applies when null"
    )


class ApprovalDecided(EventPayload):
    """An approval case was decided; its record must reach supervision and credit platforms."""

    event_type: ClassVar[str] = "approval.decided"

    case_no: str = Field(min_length=1, max_length=64, description="办件编号 (PROJID)")
    item: ApprovalItem
    region: RegionCode
    applicant: Party
    received_at: AwareDatetime | None = Field(default=None, description="受理时间 (RECEIVETIME)")
    decided_at: AwareDatetime = Field(description="办结时间 (TRANSACT_TIME)")
    result: DecisionResult
    result_description: str | None = Field(default=None, description="办理结果描述 (TRANSACT_DESCRIBE)")
    certificate: Certificate | None = None
    commitment: Commitment | None = None

    @model_validator(mode="after")
    def _times(self) -> Self:
        if self.received_at and self.received_at > self.decided_at:
            raise ValueError("received_at is after decided_at")
        return self

    def business_key(self) -> str:
        return self.case_no

    def business_time(self) -> datetime:
        return self.decided_at
