"""双公示 (public disclosure of licences and penalties) for the 公共信用信息平台 (public credit platform).

Two event types, decided as follows:

- ``credit.license.published`` — a 行政许可 (administrative licence) record as such. Systems that keep licence
  records of their own (a department's licensing system, a 前置库 exchange table) emit it. Approvals from the
  政务服务一体化平台 do *not* need it: the credit adapter turns a granted ``approval.decided`` into the same
  行政许可 record itself, so nobody re-enters data (一数一源). Route either the approval or this event of one
  licence to the credit platform, not both: they are different facts in the dedup ledger.
- ``credit.penalty.published`` — a 行政处罚 (administrative penalty) decision. It *is* the canonical penalty
  fact, keyed by its decision number (处罚决定书文号); there is no separate ``supervision.penalty.decided``.
  A penalty decision has to be published (双公示, within 7 working days) and its publication record carries
  every field the decision has, so two types would be one fact under two keys — the thing the dedup ledger
  exists to prevent. Another consumer of penalties routes this same type.

Money is canonical in 元 (yuan), as a ``Decimal`` with two places (分): never a float, and normalised so that
``1000`` and ``1000.00`` hash alike. Converting to the 万元 a platform wants is the adapter's business.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from schemas.envelope import EventPayload
from schemas.identifiers import USCC, RegionCode
from schemas.parties import Party

__all__ = [
    "CreditLicensePublished",
    "CreditPenaltyPublished",
    "LicenseCategory",
    "LicenseStatus",
    "PenaltyCategory",
    "Yuan",
]

# Beijing time; China has kept +08:00 without daylight saving since 1991.
_BEIJING = timezone(timedelta(hours=8))
_CENT = Decimal("0.01")


def _to_cents(value: Decimal) -> Decimal:
    """One spelling per amount (``1000`` → ``1000.00``), so equal amounts give equal content hashes."""
    return value.quantize(_CENT)


Yuan = Annotated[
    Decimal,
    Field(ge=0, max_digits=15, decimal_places=2, description="amount in 元 (yuan), at most two places (分)"),
    AfterValidator(_to_cents),
]


class LicenseCategory(StrEnum):
    """许可类别 (XK_XKLB) after 行政许可法 Art. 12: 普通, 特许, 认可, 核准, 登记, 其他."""

    general = "general"  # 普通
    franchise = "franchise"  # 特许
    recognition = "recognition"  # 认可
    verification = "verification"  # 核准
    registration = "registration"  # 登记
    other = "other"  # 其他


class LicenseStatus(StrEnum):
    """当前状态 (XK_ZT) of a licence: 有效 (in force) or 无效 (revoked, cancelled, expired early)."""

    valid = "valid"
    invalid = "invalid"


class PenaltyCategory(StrEnum):
    """处罚类别 (CF_CFLB) after 行政处罚法 (2021) Art. 9."""

    warning = "warning"  # 警告
    circulated_criticism = "circulated_criticism"  # 通报批评
    fine = "fine"  # 罚款
    confiscation_of_illegal_gains = "confiscation_of_illegal_gains"  # 没收违法所得
    confiscation_of_illegal_property = "confiscation_of_illegal_property"  # 没收非法财物
    license_suspension = "license_suspension"  # 暂扣许可证件
    qualification_downgrade = "qualification_downgrade"  # 降低资质等级
    license_revocation = "license_revocation"  # 吊销许可证件
    business_restriction = "business_restriction"  # 限制开展生产经营活动
    production_suspension = "production_suspension"  # 责令停产停业
    closure = "closure"  # 责令关闭
    employment_restriction = "employment_restriction"  # 限制从业
    detention = "detention"  # 行政拘留
    other = "other"  # 其他


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=_BEIJING)


class CreditLicensePublished(EventPayload):
    """A 行政许可 record for 双公示, in canonical terms (the credit adapter writes the XK_* field set)."""

    event_type: ClassVar[str] = "credit.license.published"

    document_no: str = Field(min_length=1, max_length=128, description="行政许可决定文书号 (XK_WSH)")
    document_name: str | None = Field(default=None, description="行政许可决定文书名称 (XK_XKWS)")
    party: Party = Field(description="行政相对人 (XK_XDR_*)")
    category: LicenseCategory = Field(default=LicenseCategory.general, description="许可类别 (XK_XKLB)")
    certificate_name: str | None = Field(default=None, description="许可证书名称 (XK_XKZS)")
    certificate_no: str | None = Field(default=None, description="许可编号 (XK_XKBH)")
    content: str = Field(min_length=1, description="许可内容 (XK_NR)")
    decided_on: date = Field(description="许可决定日期 (XK_JDRQ)")
    valid_from: date = Field(description="有效期自 (XK_YXQZ)")
    valid_to: date | None = Field(default=None, description="有效期至 (XK_YXQZI); null when long_term")
    long_term: bool = Field(default=False, description="长期有效 (written 2099/12/31 by the platform)")
    authority_name: str = Field(min_length=1, description="许可机关 (XK_XKJG)")
    authority_code: USCC = Field(description="许可机关统一社会信用代码 (XK_XKJGDM)")
    status: LicenseStatus = Field(default=LicenseStatus.valid, description="当前状态 (XK_ZT)")
    source_unit_name: str | None = Field(default=None, description="数据来源单位 (XK_LYDW); the authority if null")
    source_unit_code: USCC | None = Field(default=None, description="数据来源单位统一社会信用代码 (XK_LYDWDM)")
    remark: str | None = Field(default=None, description="备注 (BZ)")
    region: RegionCode | None = None
    case_no: str | None = Field(default=None, description="办件编号 of the approval it came from, if any")
    recorded_at: AwareDatetime | None = Field(default=None, description="when the source recorded this version")

    @model_validator(mode="after")
    def _validity(self) -> Self:
        if self.long_term and self.valid_to is not None:
            raise ValueError("valid_to must be empty when long_term (长期) is set")
        if not self.long_term and self.valid_to is None:
            raise ValueError("valid_to is required unless long_term (长期) is set")
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self

    def business_key(self) -> str:
        return self.document_no

    def business_time(self) -> datetime:
        return self.recorded_at or _midnight(self.decided_on)


class CreditPenaltyPublished(EventPayload):
    """A 行政处罚 decision, the canonical penalty fact (the credit adapter writes the CF_* field set)."""

    event_type: ClassVar[str] = "credit.penalty.published"

    decision_no: str = Field(min_length=1, max_length=128, description="行政处罚决定书文号 (CF_WSH)")
    party: Party = Field(description="行政相对人 (CF_XDR_*)")
    violation_type: str = Field(min_length=1, description="违法行为类型 (CF_WFXW)")
    facts: str = Field(min_length=1, description="违法事实 (CF_SY)")
    legal_basis: str = Field(min_length=1, description="处罚依据 (CF_YJ)")
    categories: tuple[PenaltyCategory, ...] = Field(min_length=1, description="处罚类别 (CF_CFLB), one or more")
    content: str = Field(min_length=1, description="处罚内容 (CF_NR)")
    fine_yuan: Yuan | None = Field(default=None, description="罚款金额 in 元 (the platform's CF_NR_FK is 万元)")
    decided_on: date = Field(description="处罚决定日期 (CF_JDRQ)")
    valid_until: date | None = Field(
        default=None, description="处罚有效期 (CF_YXQ); null means 长期 (written 2099/12/31 by the platform)"
    )
    publish_until: date | None = Field(default=None, description="公示截止期 (CF_GSJZQ)")
    authority_name: str = Field(min_length=1, description="处罚机关 (CF_CFJG)")
    authority_code: USCC = Field(description="处罚机关统一社会信用代码 (CF_CFJGDM)")
    source_unit_name: str | None = Field(default=None, description="数据来源单位 (CF_SJLY); the authority if null")
    source_unit_code: USCC | None = Field(default=None, description="数据来源单位统一社会信用代码 (CF_SJLYDM)")
    remark: str | None = Field(default=None, description="备注 (BZ)")
    region: RegionCode | None = None
    related_case_no: str | None = Field(default=None, description="办件编号 of the approval this penalty concerns")
    recorded_at: AwareDatetime | None = Field(default=None, description="when the source recorded this version")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories lists a 处罚类别 twice")
        fined = PenaltyCategory.fine in self.categories
        if fined and (self.fine_yuan is None or self.fine_yuan <= 0):
            raise ValueError("a 罚款 (fine) penalty needs fine_yuan greater than 0")
        if not fined and self.fine_yuan is not None:
            raise ValueError("fine_yuan is set but categories has no 罚款 (fine)")
        for name in ("valid_until", "publish_until"):
            value = getattr(self, name)
            if value is not None and value < self.decided_on:
                raise ValueError(f"{name} {value} is before decided_on {self.decided_on}")
        return self

    def business_key(self) -> str:
        return self.decision_no

    def business_time(self) -> datetime:
        return self.recorded_at or _midnight(self.decided_on)
