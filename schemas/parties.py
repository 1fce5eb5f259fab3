"""Parties (行政相对人) and the things every event shares about them."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.identifiers import (
    check_resident_id,
    check_uscc,
    is_stored_record,
    is_uscc_placeholder,
    normalise_code,
)

__all__ = ["IdType", "Party", "PartyKind"]


class PartyKind(StrEnum):
    """行政相对人类别: natural person (自然人), legal person (法人及非法人组织), other."""

    natural = "natural"
    legal = "legal"
    other = "other"


class IdType(StrEnum):
    """证件类型 of a party's identifier."""

    uscc = "uscc"  # 统一社会信用代码
    resident_id = "resident_id"  # 居民身份证
    passport = "passport"  # 护照
    other = "other"


class Party(BaseModel):
    """A party to an approval or a supervision action.

    Field order matters: ``id_number`` is validated after ``id_type`` and
    ``business_registration_no`` are known, so its error is reported at ``…id_number``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    kind: PartyKind
    name: str = Field(min_length=1)
    id_type: IdType
    business_registration_no: str | None = Field(
        default=None, description="工商注册号, required with the 17-zeros-X placeholder code"
    )
    id_number: str = Field(min_length=1)
    legal_representative: str | None = None
    phone: str | None = None

    @field_validator("id_number")
    @classmethod
    def _check_id_number(cls, value: str, info: ValidationInfo) -> str:
        id_type = info.data.get("id_type")
        if id_type in (IdType.uscc, IdType.resident_id):
            value = normalise_code(value)
        if is_stored_record(info):
            return value  # checked when it was accepted (Envelope.from_stored)
        if id_type == IdType.uscc:
            check_uscc(value)
            if is_uscc_placeholder(value) and not info.data.get("business_registration_no"):
                raise ValueError(
                    "统一社会信用代码 00000000000000000X is only valid for a 个体工商户 "
                    "that also carries its 工商注册号 (business_registration_no)"
                )
        elif id_type == IdType.resident_id:
            check_resident_id(value)
        return value

    @model_validator(mode="after")
    def _kind_fits_id(self) -> Self:
        if self.kind == PartyKind.natural and self.id_type == IdType.uscc:
            raise ValueError("a natural person cannot be identified by a 统一社会信用代码")
        return self
