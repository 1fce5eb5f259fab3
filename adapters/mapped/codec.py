"""A native record → its canonical envelope, as a mapping file says. Pure: no I/O, no clock.

The record goes through the mapping's ``[require]`` checks, then every ``[fields]`` rule fills one dotted
canonical path; optional objects appear only when they have content (or their ``[objects]`` member); the
event type's own payload model then validates the whole, and ``Envelope.wrap`` derives id, key and hash.

Because the payload model is the canonical one, a mapped source and a hand-written adapter that read the
same fact produce the same payload — and so the same business key and content hash, which is what lets the
dedup ledger recognise an approval that arrives from both the 政务服务一体化平台 and a 前置库 as one fact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from adapters.errors import DecodeError
from adapters.mapped.spec import MappingSpec
from adapters.mapped.transforms import ABSENT, FieldReader, native_text, show_value
from schemas import Classification, Envelope, correlation_id_of

__all__ = ["MappedCodec"]


class MappedCodec:
    """Decodes records of one mapping. Build once per adapter; ``decode`` is pure and thread-safe."""

    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self._reader = FieldReader(spec, ZoneInfo(spec.mapping.timezone))
        self._required_values = {field: {str(v) for v in values} for field, values in spec.require.items()}

    def decode(self, payload: Any, *, source: str) -> Envelope:
        """One native record (an object, or a JSON string holding one) → its envelope; ``DecodeError`` else."""
        record = _load(payload)
        self._check_required(record)
        data = self._payload_data(record)
        try:
            payload_obj = self.spec.payload_model.model_validate(data)
        except ValidationError as exc:
            raise DecodeError(self._describe(exc)) from None
        revision, classification, region, correlation_id = self._envelope_values(record)
        try:
            return Envelope.wrap(
                payload_obj,
                source=source,
                revision=revision,
                classification=classification,
                region=region if region is not None else getattr(payload_obj, "region", None),
                # The mapping's own rule if it has one, else the shared derivation from the 办件编号 every adapter uses.
                correlation_id=correlation_id if correlation_id is not None else correlation_id_of(payload_obj),
            )
        except ValidationError as exc:
            raise DecodeError(self._describe(exc, envelope=True)) from None

    # -- steps ----------------------------------------------------------------------------------------------
    def _check_required(self, record: Mapping[str, Any]) -> None:
        for field, allowed in self._required_values.items():
            text = native_text(record.get(field), field)
            shown = text.isoformat() if isinstance(text, date) else text
            if shown not in allowed:
                got = "absent" if shown is None else show_value(shown)
                raise DecodeError(
                    f"{field} is {got}, a record is taken only with {field} = {' or '.join(sorted(allowed))}"
                )

    def _payload_data(self, record: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for path, rule in self.spec.fields.items():
            value = self._reader.value(record, rule, path)
            if value is not ABSENT:
                _put(data, path.split("."), value)
        for path, rule in self.spec.objects.items():
            parts = path.split(".")
            obj = _get(data, parts)
            if isinstance(obj, dict) and rule.requires not in obj:
                _drop(data, parts)  # e.g. a commitment period without a mode is no commitment
        return data

    def _envelope_values(self, record: Mapping[str, Any]) -> tuple[int, Classification, str | None, str | None]:
        rules = self.spec.envelope
        revision: Any = 1
        classification: Any = Classification.public
        region: Any = None
        correlation_id: Any = None
        if rules.revision is not None:
            value = self._reader.value(record, rules.revision, "revision")
            revision = 1 if value is ABSENT else value
            if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
                raise DecodeError(f"{rules.revision.describe_source()} (revision) must be a whole number ≥ 1")
        if rules.classification is not None:
            value = self._reader.value(record, rules.classification, "classification")
            try:
                classification = Classification.public if value is ABSENT else Classification(value)
            except ValueError:
                raise DecodeError(
                    f"{rules.classification.describe_source()} (classification) {show_value(value)} is not "
                    "public, internal or secret"
                ) from None
        if rules.region is not None:
            value = self._reader.value(record, rules.region, "region")
            region = None if value is ABSENT else str(value)
        if rules.correlation_id is not None:
            value = self._reader.value(record, rules.correlation_id, "correlation_id")
            correlation_id = None if value is ABSENT else str(value)
        return revision, classification, region, correlation_id

    # -- reasons --------------------------------------------------------------------------------------------
    def _describe(self, exc: ValidationError, *, envelope: bool = False) -> str:
        """Each model complaint led by the native field(s) it concerns, then the canonical location."""
        parts = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
            msg = str(err["msg"]).removeprefix("Value error, ")
            native = self._native_of(loc, msg, envelope=envelope)
            where = f"envelope.{loc}" if envelope and loc else loc
            parts.append(f"{native} ({where}): {msg}" if where else f"{native}: {msg}")
        return "; ".join(parts)

    def _native_of(self, loc: str, msg: str, *, envelope: bool) -> str:
        if envelope:
            rule = getattr(self.spec.envelope, loc.split(".", 1)[0], None) if loc else None
            if rule is not None:
                return rule.describe_source()
            loc = loc.removeprefix("data.")
        fields = self.spec.fields
        if loc in fields:
            return fields[loc].describe_source()
        if loc:
            under = [rule for path, rule in fields.items() if path.startswith(loc + ".")]
        else:  # a rule of the whole payload: name the fields its message mentions
            words = set(re.findall(r"[A-Za-z_][A-Za-z_.]*", msg))
            under = [rule for path, rule in fields.items() if path in words]
        names = dict.fromkeys(source for rule in under for source in rule.sources)
        return ", ".join(names) or "record"


def _load(payload: Any) -> Mapping[str, Any]:
    """The native record as a mapping: a parsed object as is, a JSON string (some feeds embed it) parsed."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("record is not UTF-8 text") from None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"malformed JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise DecodeError(f"expected an object for one record, got {type(payload).__name__}")
    return payload


def _put(data: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value


def _get(data: dict[str, Any], parts: list[str]) -> Any:
    current: Any = data
    for part in parts:
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _drop(data: dict[str, Any], parts: list[str]) -> None:
    parent = _get(data, parts[:-1]) if len(parts) > 1 else data
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)
