"""Supervision-side events (互联网+监管): tasks generated from approvals, and what happens to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.envelope import EventPayload
from schemas.identifiers import RegionCode

__all__ = ["SuperviseObject", "SupervisionTaskCreated"]

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
