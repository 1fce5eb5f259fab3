"""Identifier types of the canonical model: 统一社会信用代码, 身份证号 and 行政区划代码.

The checks are deliberately *checksum* checks, not registry checks. Real records carry codes that the
stricter validators reject (python-stdnum's ``cn.uscc`` refuses valid A/N/Y-prefixed codes, ``cn.ric``
refuses retired area codes), and a relay that refuses a real approval because of a registry table it
does not own would lose it. So we borrow stdnum's check-digit arithmetic and nothing else.

Each check raises ``ValueError`` with a message that says what is wrong; pydantic prefixes the field
path, so a rejection reads like ``applicant.id_number: Value error, 统一社会信用代码 ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo
from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc

__all__ = [
    "INDIVIDUAL_BUSINESS_PLACEHOLDER",
    "STORED_RECORD",
    "USCC",
    "RegionCode",
    "ResidentID",
    "check_region_code",
    "check_resident_id",
    "check_uscc",
    "is_stored_record",
    "is_uscc_placeholder",
    "mask_id_number",
    "mask_phone",
    "normalise_code",
    "uscc_check_char",
]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_RE = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")
# A 个体工商户 registered before the USCC reform may carry 17 zeros + "X" together with its
# 工商注册号 (business registration number); the checksum of that placeholder is '0', not 'X'.
INDIVIDUAL_BUSINESS_PLACEHOLDER = "0" * 17 + "X"
# Registration-authority codes (first char) in GB 32100-2015 and its amendments: 1-9 plus
# A (中央军委改革和编制办公室), N (农业农村部门, e.g. N2… village collectives), Y (其他).
_USCC_AUTHORITY = set("123456789ANY")
_RID_RE = re.compile(r"^\d{17}[\dX]$")
_REGION_RE = re.compile(r"^\d{6}$")


def normalise_code(value: str) -> str:
    """The forms platforms really send, made canonical: surrounding blanks, lower case, 全角 characters."""
    return value.strip().translate(_FULLWIDTH).upper()


def _strip_upper(value: object) -> object:
    return normalise_code(value) if isinstance(value, str) else value


_FULLWIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)}  # ０-９
    | {chr(c): chr(c - 0xFEE0) for c in range(0xFF21, 0xFF3B)}  # Ａ-Ｚ
    | {chr(c): chr(c - 0xFEE0) for c in range(0xFF41, 0xFF5B)}  # ａ-ｚ
)


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters (weights 3^(i-1) mod 31)."""
    return _uscc.calc_check_digit(first17)


def is_uscc_placeholder(value: str) -> bool:
    """Whether ``value`` is the 17-zeros-plus-X placeholder of an unreformed 个体工商户."""
    return value == INDIVIDUAL_BUSINESS_PLACEHOLDER


def check_uscc(value: str) -> str:
    """Validate a 统一社会信用代码 by charset, authority code and check character.

    The placeholder ``00000000000000000X`` passes here; whether it is acceptable depends on the
    party also carrying a 工商注册号, which the party model checks.
    """
    if is_uscc_placeholder(value):
        return value
    if len(value) != 18:
        raise ValueError(f"统一社会信用代码 must be 18 characters, got {len(value)}")
    if not _USCC_RE.match(value):
        bad = sorted({c for c in value if c not in USCC_ALPHABET})
        raise ValueError(f"统一社会信用代码 contains characters outside GB 32100 charset: {''.join(bad)!r}")
    if value[0] not in _USCC_AUTHORITY:
        raise ValueError(f"统一社会信用代码 registration-authority code {value[0]!r} is not 1-9, A, N or Y")
    expected = uscc_check_char(value[:17])
    if value[17] != expected:
        raise ValueError(f"统一社会信用代码 check character is {value[17]!r}, expected {expected!r}")
    return value


def check_resident_id(value: str) -> str:
    """Validate an 18-digit 身份证号 (GB 11643) by format, birth date and mod-11 check digit.

    The area code is not looked up: numbers issued under a since-retired county code stay valid.
    """
    if not _RID_RE.match(value):
        raise ValueError("身份证号 must be 17 digits followed by a digit or X")
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ValueError(f"身份证号 birth date {value[6:14]} is not a real date") from None
    expected = _ric.calc_check_digit(value)
    if value[17] != expected:
        raise ValueError(f"身份证号 check digit is {value[17]!r}, expected {expected!r}")
    return value


def check_region_code(value: str) -> str:
    """Validate a GB/T 2260 行政区划代码: six digits, a non-zero province part."""
    if not _REGION_RE.match(value):
        raise ValueError(f"行政区划代码 must be 6 digits, got {value!r}")
    if value[:2] == "00":
        raise ValueError(f"行政区划代码 {value!r} has no province part")
    return value


#: Validation context key: the value is read back from shenguan's own store (see ``Envelope.from_stored``).
STORED_RECORD = "shenguan.stored_record"


def is_stored_record(info: ValidationInfo) -> bool:
    """Whether this validation reads back a record from shenguan's own store (``Envelope.from_stored``)."""
    return isinstance(info.context, dict) and bool(info.context.get(STORED_RECORD))


def _unless_stored(check: Callable[[str], str]) -> Callable[[str, ValidationInfo], str]:
    """``check``, skipped for a record read back from the store: it passed ``check`` when it was accepted,
    and re-running stdnum's checksums on every load was a tenth of the relay's work per delivery."""

    def validate(value: str, info: ValidationInfo) -> str:
        return value if is_stored_record(info) else check(value)

    validate.__name__ = check.__name__
    return validate


USCC = Annotated[
    str,
    BeforeValidator(_strip_upper),
    AfterValidator(_unless_stored(check_uscc)),
    Field(
        description="统一社会信用代码 (unified social credit code, GB 32100-2015)",
        examples=["91320700MA1X2Y3K05"],
    ),
]
ResidentID = Annotated[
    str,
    BeforeValidator(_strip_upper),
    AfterValidator(_unless_stored(check_resident_id)),
    Field(
        description="居民身份证号码 (resident identity number, GB 11643)",
    ),
]
RegionCode = Annotated[
    str,
    BeforeValidator(_strip_upper),
    AfterValidator(check_region_code),
    Field(
        description="行政区划代码 (administrative division code, GB/T 2260)",
        examples=["320700"],
    ),
]


def mask_id_number(value: str) -> str:
    """Mask a 身份证号 for display: keep area code and the last character (``320706********123X``)."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 7) + value[-1]


def mask_phone(value: str) -> str:
    """Mask a phone number for display: ``138****8000``."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
