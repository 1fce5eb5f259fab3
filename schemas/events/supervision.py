"""Supervision-side events (互联网+监管): tasks generated from approvals, and what happens to them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.envelope import EventPayload
from schemas.identifiers import RegionCode

__all__ = ["ClaimMode", "SuperviseObject", "SupervisionTaskClaimed", "SupervisionTaskCreated"]

SUPERVISION_MATTER_CODE = r"^\d{14}$"


class SuperviseObject(BaseModel):
    """One object of supervision (监管对象), after the ``taskInfo.superviseObjects`` convention."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    type: str = Field(min_length=1, description="对象类型, e.g. legal / natural")
    name: str = Field(min_length=1)
    code: str | None = None
    credentials_type: str | None = None
    credentials_value: str | None = None


class SupervisionTaskCreated(EventPayload):
    """A supervision task (监管任务) was generated from an approval and awaits its claim (认领)."""

    event_type: ClassVar[str] = "supervision.task.created"

    task_no: str = Field(min_length=1, description="任务编号 (taskNo)")
    approval_case_no: str | None = Field(default=None, description="办件编号 of the approval it came from")
    supervision_matter_code: str = Field(pattern=SUPERVISION_MATTER_CODE, description="监管事项目录编码 (14 digits)")
    supervision_matter_name: str | None = None
    department_name: str | None = Field(default=None, description="监管部门")
    department_code: str | None = None
    region: RegionCode | None = None
    created_at: AwareDatetime
    claim_deadline: date | None = Field(default=None, description="认领期限 (working-day deadline)")
    objects: tuple[SuperviseObject, ...] = ()

    def business_key(self) -> str:
        return self.task_no

    def business_time(self) -> datetime:
        return self.created_at


class ClaimMode(StrEnum):
    """How a supervision task was claimed (认领): by a person (手动认领), or by default (默认认领).

    A task nobody claims within the claim deadline (2 or 3 working days, per city) is deemed claimed by the
    department the mapping list names: that is a ``default`` claim, whoever records it.
    """

    manual = "manual"
    default = "default"


class SupervisionTaskClaimed(EventPayload):
    """A supervision task was claimed (认领) by its supervising department, manually or by default.

    ``auto`` separates *who recorded* a default claim: ``False`` when the platform itself reported it (its
    feed says the task was default-claimed), ``True`` when shenguan recorded it because no claim had been
    reported when the claim deadline passed. An auto claim is always a default claim. One task is claimed
    once: the business key is the task number, so the platform's own report of the same claim is the same fact.
    """

    event_type: ClassVar[str] = "supervision.task.claimed"

    task_no: str = Field(min_length=1, description="任务编号 (taskNo)")
    approval_case_no: str | None = Field(default=None, description="办件编号 of the approval the task came from")
    supervision_matter_code: str | None = Field(
        default=None, pattern=SUPERVISION_MATTER_CODE, description="监管事项目录编码 (14 digits)"
    )
    department_name: str | None = Field(default=None, description="认领部门 (the supervising department)")
    department_code: str | None = None
    region: RegionCode | None = None
    claimed_at: AwareDatetime = Field(description="认领时间; for a default claim, when the claim deadline ran out")
    mode: ClaimMode
    auto: bool = Field(default=False, description="recorded by shenguan when the claim deadline passed unclaimed")
    claim_deadline: date | None = Field(default=None, description="认领期限: the last working day to claim")

    @model_validator(mode="after")
    def _auto_is_default(self) -> Self:
        if self.auto and self.mode is not ClaimMode.default:
            raise ValueError("an auto claim (recorded by shenguan) is a default claim (默认认领): mode must be default")
        return self

    def business_key(self) -> str:
        return self.task_no

    def business_time(self) -> datetime:
        return self.claimed_at
