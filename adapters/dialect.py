"""How a platform writes the canonical payload models: a *dialect*, and one codec that reads and writes any model in it.

The closed loop has a dozen message types (inspections, results, breach reports, advice, feedback, confirmations,
guidance, site inspections, 双公示 records) and each platform writes every one of them in its own conventions:
互联网+监管 in camelCase JSON with ISO times and booleans, the 政务服务一体化平台 in UPPER_SNAKE strings with
naive Beijing times and ``""`` for absent values. Writing a mapper per type and platform would be two dozen
hand-written field lists that drift from the models. Instead a ``Dialect`` states the conventions once (how a
field name is spelt, how times, flags and codes are written, the few names a platform spells its own way) and
``encode``/``decode`` walk the pydantic model, so a field added to a model is carried by every platform at once
and ``decode(encode(x)) == x`` holds for every type (the tests check it for each sample).

Enumerations and literal values travel as upper-case codes (``rectification_ordered`` → ``RECTIFICATION_ORDERED``,
``license.revocation.advised`` → ``LICENSE_REVOCATION_ADVISED``), the way both platforms write their codes.

Reading is lenient where platforms are sloppy and strict where guessing would hide a fault: blanks and ``null``
are absent, numbers may come as strings, a flag may be ``true``/``"1"``/``"是"``; a structured value where text
belongs, an unknown code or a bad time is a ``DecodeError`` naming the native field and the canonical path —
never echoing the value, which may be personal data.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, ValidationError

from adapters.errors import DecodeError
from adapters.native import SHANGHAI, blank_to_none, platform_date, platform_datetime

__all__ = ["Dialect", "camel_case", "code_of", "decode", "encode", "upper_snake"]

_TRUE = frozenset({"1", "true", "y", "yes", "是"})
_FALSE = frozenset({"0", "false", "n", "no", "否"})


def camel_case(name: str) -> str:
    """``approval_case_no`` → ``approvalCaseNo``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def upper_snake(name: str) -> str:
    """``approval_case_no`` → ``APPROVAL_CASE_NO``."""
    return name.upper()


@dataclass(frozen=True, slots=True)
class Dialect:
    """One platform's way of writing canonical fields.

    ``names`` spells a canonical field name natively; ``renames`` overrides it for the names the platform
    spells its own way (``approval_case_no`` → ``approvalNo``). ``naive_times`` writes times as Beijing
    ``yyyy-MM-dd HH:mm:ss`` without a zone (else ISO-8601 with ``+08:00``); ``strings_only`` writes numbers and
    flags as text and absent values as ``""`` (else JSON numbers, booleans and ``null``).
    """

    platform: str
    names: Callable[[str], str]
    renames: Mapping[str, str] = field(default_factory=dict)
    naive_times: bool = False
    strings_only: bool = False

    def name(self, canonical: str) -> str:
        return self.renames.get(canonical) or self.names(canonical)


def code_of(value: str) -> str:
    """The native code of an enumeration or literal value."""
    return value.upper().replace(".", "_")


# -- what each field holds, worked out once per model -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Kind:
    """The shape of a field's value: a scalar tag, the enum/literal codes, a nested model, or a list of one kind."""

    tag: str  # text | int | bool | date | datetime | decimal | code | model | list
    codes: Mapping[str, str] | None = None  # native code → canonical value (tag "code")
    model: type[BaseModel] | None = None  # tag "model"
    item: _Kind | None = None  # tag "list"


def _kind(annotation: Any) -> _Kind:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kind(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unions of several types are not supported: {annotation!r}")
        return _kind(inner[0])
    if origin in (tuple, list):
        return _Kind("list", item=_kind(get_args(annotation)[0]))
    if origin is Literal:
        return _Kind("code", codes={code_of(str(v)): str(v) for v in get_args(annotation)})
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return _Kind("code", codes={code_of(str(m.value)): str(m.value) for m in annotation})
        if issubclass(annotation, BaseModel):
            return _Kind("model", model=annotation)
        if issubclass(annotation, bool):
            return _Kind("bool")
        if issubclass(annotation, int):
            return _Kind("int")
        if issubclass(annotation, Decimal):
            return _Kind("decimal")
        if annotation is AwareDatetime or issubclass(annotation, datetime):
            return _Kind("datetime")
        if issubclass(annotation, date):
            return _Kind("date")
        if issubclass(annotation, str):
            return _Kind("text")
    raise TypeError(f"no native form for {annotation!r}")


@cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, _Kind], ...]:
    return tuple((name, _kind(info.annotation)) for name, info in model.model_fields.items())


# -- writing --------------------------------------------------------------------------------------------------


def encode(payload: BaseModel, dialect: Dialect) -> dict[str, Any]:
    """The native object of ``payload``: every field, absent ones as ``null`` (or ``""``)."""
    return {dialect.name(name): _write(getattr(payload, name), kind, dialect) for name, kind in _fields(type(payload))}


def _write(value: Any, kind: _Kind, dialect: Dialect) -> Any:
    if value is None:
        return "" if dialect.strings_only else None
    if kind.tag == "model":
        return encode(value, dialect)
    if kind.tag == "list":
        assert kind.item is not None
        return [_write(v, kind.item, dialect) for v in value]
    if kind.tag == "code":
        return code_of(str(value.value if isinstance(value, Enum) else value))
    if kind.tag == "datetime":
        local = value.astimezone(SHANGHAI)
        return local.strftime("%Y-%m-%d %H:%M:%S") if dialect.naive_times else local.isoformat()
    if kind.tag == "date":
        return value.isoformat()
    if kind.tag == "bool":
        return ("1" if value else "0") if dialect.strings_only else bool(value)
    if kind.tag in ("int", "decimal"):
        return str(value) if dialect.strings_only or kind.tag == "decimal" else value
    return value


# -- reading --------------------------------------------------------------------------------------------------


def decode(model: type[BaseModel], item: Any, dialect: Dialect, *, where: str = "") -> Any:
    """``item`` (a native object) → a validated ``model``; ``DecodeError`` naming the native field otherwise."""
    data = _read_object(model, item, dialect, where)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(_describe(exc, model, dialect, where)) from None


def _read_object(model: type[BaseModel], item: Any, dialect: Dialect, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise DecodeError(f"{where or 'record'} must be a JSON object, got {type(item).__name__}")
    data: dict[str, Any] = {}
    for name, kind in _fields(model):
        native = dialect.name(name)
        path = f"{where}.{native}" if where else native
        value = _read(item.get(native), kind, dialect, path, name)
        if value is not None:
            data[name] = value
    return data


def _read(raw: Any, kind: _Kind, dialect: Dialect, path: str, canonical: str) -> Any:
    value = blank_to_none(raw)
    if value is None:
        return None
    if kind.tag == "model":
        assert kind.model is not None
        return _read_object(kind.model, value, dialect, path)
    if kind.tag == "list":
        assert kind.item is not None
        if not isinstance(value, list):
            raise DecodeError(f"{path} ({canonical}) must be a list, got {type(value).__name__}")
        items = (_read(v, kind.item, dialect, f"{path}[{i}]", canonical) for i, v in enumerate(value))
        return [v for v in items if v is not None]
    if kind.tag == "bool":
        if isinstance(value, bool):
            return value
        text = _scalar(value, path, canonical).lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise DecodeError(f"{path} ({canonical}) must be true or false")
    text = _scalar(value, path, canonical)
    try:
        if kind.tag == "code":
            assert kind.codes is not None
            if text.upper() not in kind.codes:
                raise DecodeError(f"{path} ({canonical}) must be one of {', '.join(sorted(kind.codes))}")
            return kind.codes[text.upper()]
        if kind.tag == "datetime":
            return platform_datetime(text)
        if kind.tag == "date":
            return platform_date(text)
        if kind.tag == "int":
            return int(text)
        if kind.tag == "decimal":
            return Decimal(text)
    except (ValueError, InvalidOperation) as exc:
        reason = str(exc) if isinstance(exc, ValueError) and str(exc).startswith("is not") else f"is not a {kind.tag}"
        raise DecodeError(f"{path} ({canonical}) {reason}") from None
    return text


def _scalar(value: Any, path: str, canonical: str) -> str:
    """A text or number as stripped text; anything structured is the wrong type (guessing would hide a fault)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise DecodeError(f"{path} ({canonical}) has wrong type {type(value).__name__}, expected text")
    try:
        text = str(value).strip()
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise DecodeError(f"{path} ({canonical}) is not plausible text") from None
    return text


def _describe(exc: ValidationError, model: type[BaseModel], dialect: Dialect, where: str) -> str:
    """Each model complaint led by its native path, then the canonical one: ``checkTime (checked_at): …``."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [p for p in err["loc"] if p != "__root__"]
        canonical = ".".join(str(p) for p in loc)
        native = "".join(f"[{p}]" if isinstance(p, int) else f".{dialect.name(str(p))}" for p in loc).lstrip(".")
        native = f"{where}.{native}" if where and native else (native or where)
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{native} ({canonical}): {msg}" if native else f"{model.__name__}: {msg}")
    return "; ".join(parts)
