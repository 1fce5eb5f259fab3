"""One ``FieldRule`` applied to one native record: the value a canonical field gets, or a ``DecodeError``.

Why this is its own module: this is where every quirk of a native format is absorbed — numbers sent as
strings or as numbers, ``""`` and ``null`` for absent, codes to translate, dates in a system's own pattern,
naive times meant in Beijing time, DB drivers handing back ``Decimal`` and ``datetime`` objects — and it must
be testable without a database, a network or an event loop.

Every rejection names the native field an operator of the source system sees and the canonical path it
was meant for (``BLSJ (decided_at) is not a time (%Y%m%d%H%M%S)``). Values are never echoed in full: a
身份证号 in a reason would be stored, logged and written back into a 前置库 unmasked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Final

from adapters.errors import DecodeError
from adapters.mapped.spec import FieldRule, MappingSpec, Scalar
from adapters.masking import mask_text
from adapters.native import platform_date, platform_datetime

__all__ = ["ABSENT", "FieldReader", "native_text", "show_value"]


class _Absent:
    """The canonical value is not set (so the model's default applies): distinct from a mapped ``None``."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
_TRUE = frozenset({"true", "1", "y", "yes", "是"})
_FALSE = frozenset({"false", "0", "n", "no", "否"})
_MAX_LISTED_CODES = 8


def show_value(value: object, limit: int = 16) -> str:
    """A short, masked rendering of a bad value for a reason string (codes, not personal data, are expected)."""
    text = value if isinstance(value, str) else str(value)
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(mask_text(shown))


def native_text(value: Any, field: str) -> str | date | None:
    """A native value as stripped text (dates and times from a DB driver kept as objects); ``None`` if blank.

    Platforms send numbers as numbers or strings and DB drivers return ``Decimal`` for NUMBER columns, so
    integers and integral decimals are accepted and written in decimal. A list, an object, a boolean or a
    float is a wrong type: guessing what ``1.5`` or ``true`` means in a code field would hide a real fault.
    """
    if value is None:
        return None
    if isinstance(value, date):  # datetime is a date too
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise DecodeError(f"{field} has wrong type {type(value).__name__}, expected text")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise DecodeError(f"{field} is not a plausible value (a fractional number)")
        value = int(value)
    try:
        text = str(value).strip()
    except ValueError:  # an integer too long to render (int max str digits)
        raise DecodeError(f"{field} is not a plausible value (number too long)") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DecodeError(f"{field} is not valid Unicode text (lone surrogate)") from None
    return text or None


class FieldReader:
    """Applies the rules of one mapping; holds its time zone and code tables. Pure and thread-safe."""

    def __init__(self, spec: MappingSpec, zone: tzinfo) -> None:
        self._spec = spec
        self._zone = zone

    def value(self, record: Mapping[str, Any], rule: FieldRule, canonical: str) -> Any:
        """The canonical value ``rule`` makes of ``record`` for ``canonical``, or ``ABSENT``."""
        where = f"{rule.describe_source()} ({canonical})"
        raw = self._raw(record, rule)
        if rule.null_if and raw is not None and _as_key(raw) in rule.null_if:
            raw = None
        if raw is None:
            if rule.default is not None:
                return self._convert(rule.default, rule, where)
            if rule.required:
                raise DecodeError(f"missing field {where}")
            return ABSENT
        if rule.zfill is not None and isinstance(raw, str) and raw.isdecimal():
            raw = raw.zfill(rule.zfill)
        translated = self._translate(raw, rule, where)
        return self._convert(translated, rule, where)

    # -- 1. the raw value ---------------------------------------------------------------------------------
    def _raw(self, record: Mapping[str, Any], rule: FieldRule) -> str | date | Scalar | None:
        if rule.const is not None:
            return rule.const
        if rule.from_ is not None:
            value = _lookup(record, rule.from_)
            if isinstance(value, bool) and (rule.type == "bool" or rule.map is not None or rule.code_table):
                return "true" if value else "false"  # a JSON boolean where a boolean is meant
            return native_text(value, rule.from_)
        parts: list[str] = []
        for name in rule.concat or ():
            text = native_text(_lookup(record, name), name)
            if text is not None:
                parts.append(text.isoformat() if isinstance(text, date) else text)
        return rule.sep.join(parts) if parts else None

    # -- 4. value maps and code tables --------------------------------------------------------------------
    def _translate(self, raw: str | date | Scalar, rule: FieldRule, where: str) -> Any:
        if rule.map is None and rule.code_table is None:
            return raw
        codes = rule.map if rule.map is not None else self._spec.code_table(rule.code_table or "")
        key = _as_key(raw)
        if key in codes:
            return codes[key]
        if rule.otherwise is not None:
            return rule.otherwise
        listed = ", ".join(list(codes)[:_MAX_LISTED_CODES]) + (", …" if len(codes) > _MAX_LISTED_CODES else "")
        table = f" of code table {rule.code_table}" if rule.code_table else ""
        raise DecodeError(f"{where} {show_value(key)} is not one of the codes{table} ({listed})")

    # -- 5. types -----------------------------------------------------------------------------------------
    def _convert(self, value: Any, rule: FieldRule, where: str) -> Any:
        kind = rule.type
        if kind is None:
            return value.isoformat() if isinstance(value, date) else value
        if kind == "str":
            return value.isoformat() if isinstance(value, date) else str(value)
        if kind == "int":
            return _to_int(value, where)
        if kind == "bool":
            return _to_bool(value, where)
        if kind == "date":
            return self._to_date(value, rule, where)
        return self._to_datetime(value, rule, where)

    def _to_date(self, value: Any, rule: FieldRule, where: str) -> date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = str(value)
        if rule.date_format:
            for fmt in rule.date_format:
                try:
                    return datetime.strptime(text, fmt).date()
                except ValueError:
                    continue
            raise DecodeError(f"{where} is not a date ({' or '.join(rule.date_format)})")
        try:
            return platform_date(text)
        except ValueError as exc:
            raise DecodeError(f"{where} {exc}") from None

    def _to_datetime(self, value: Any, rule: FieldRule, where: str) -> datetime:
        if isinstance(value, datetime):
            return self._zoned(value)
        if isinstance(value, date):
            raise DecodeError(f"{where} is a date without a time of day")
        text = str(value)
        if rule.date_format:
            for fmt in rule.date_format:
                try:
                    return self._zoned(datetime.strptime(text, fmt))
                except ValueError:
                    continue
            raise DecodeError(f"{where} is not a time ({' or '.join(rule.date_format)})")
        try:
            zoned = platform_datetime(text)  # checks the shape; naive means Beijing time there
        except ValueError as exc:
            raise DecodeError(f"{where} {exc}") from None
        naive = datetime.fromisoformat(text.strip().replace("/", "-"))
        return self._zoned(naive) if naive.tzinfo is None else zoned.astimezone(self._zone)

    def _zoned(self, moment: datetime) -> datetime:
        """Naive times are in the mapping's zone; zoned ones are converted, so one instant hashes one way."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=self._zone)
        return moment.astimezone(self._zone)


def _as_key(value: object) -> str:
    """How a value is looked up in ``null_if``, a value map or a code table: as text."""
    return value.isoformat() if isinstance(value, date) else str(value)


def _lookup(record: Mapping[str, Any], name: str) -> Any:
    """``name`` in the record: the key itself, else a dotted path into nested objects."""
    if name in record:
        return record[name]
    if "." not in name:
        return None
    current: Any = record
    walked: list[str] = []
    for part in name.split("."):
        if current is None or (isinstance(current, str) and not current.strip()):
            return None  # an absent object ("" or null) has absent members
        if not isinstance(current, Mapping):
            raise DecodeError(f"{'.'.join(walked)} is not an object (reading {name})")
        current = current.get(part)
        walked.append(part)
    return current


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise DecodeError(f"{where} must be a whole number")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise DecodeError(f"{where} must be a whole number, got {show_value(value)}") from None


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DecodeError(f"{where} must be true or false, got {show_value(value)}")
