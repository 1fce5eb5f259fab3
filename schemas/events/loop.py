"""What every message of an approval's closed loop (审管联动闭环) shares, after the decision itself.

Once an approval is decided, messages go back and forth between the approval bureau (审批局) and the
supervising departments (监管部门) about it: claims, inspections, results, breach reports, revocation advice,
feedback, confirmations, guidance, site inspections. Each names the approval by its 办件编号 (which makes it part
of the approval's loop, see ``schemas.correlation``), usually the supervision task (监管任务) it concerns, the
region, and the department that sent it. ``LoopEvent`` holds those fields once, so the platform adapters can
map them once and every loop message reads alike.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.envelope import EventPayload
from schemas.identifiers import RegionCode

__all__ = ["CaseNo", "Inspector", "LoopEvent", "RecordNo"]

CaseNo = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    Field(description="办件编号 (case number) of the approval, e.g. PROJID", examples=["320700261121000012345"]),
]
"""An approval's 办件编号 (the loop's name; ``schemas.correlation`` derives the correlation id from it)."""

RecordNo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
"""A platform's own number for a record (检查编号, 结果编号, 意见书编号, 请求编号 …): the natural key of the fact."""


class Inspector(BaseModel):
    """An inspector (执法人员 / 踏勘人员): a name and, for law enforcement, the 执法证号 (enforcement certificate)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    certificate_no: str | None = Field(default=None, max_length=64, description="执法证号")


class LoopEvent(EventPayload):
    """Base of the loop's messages: which approval, which task, where, and which department sent it.

    ``approval_case_no`` is optional here because some messages stand alone (a routine inspection, a general
    guidance question); the types that only make sense about an approval redeclare it as required.
    """

    approval_case_no: CaseNo | None = Field(default=None, description="办件编号 of the approval this belongs to")
    task_no: str | None = Field(default=None, max_length=64, description="监管任务编号 (taskNo), if about a task")
    region: RegionCode | None = None
    department_name: str | None = Field(default=None, max_length=128, description="the sending department")
    department_code: str | None = Field(default=None, max_length=64, description="统一社会信用代码 or 部门编码")
