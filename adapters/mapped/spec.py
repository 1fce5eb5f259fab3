"""The mapping file: what a declarative source reads, and how each native field becomes a canonical one.

A new specialty system (专业系统) is added by writing one of these files — TOML or YAML, same structure —
not by writing Python. The file is validated completely before anything runs: a typo in a key, a code
table that does not exist, a canonical path the event's model does not have, or a date format on a field
that is not a date stops the load with every problem listed, each led by the key that holds it
(``fields."applicant.name".date_format: ...``). Nothing is half-loaded: ``load_mapping`` returns a whole,
checked ``MappingSpec`` or raises ``MappingError``.

Sections (see ``examples/mappings/`` and docs/writing-an-adapter.md):

- ``[mapping]``: ``name``, ``event_type`` (a canonical type, e.g. ``approval.decided``), ``timezone`` of naive
  platform times (default Asia/Shanghai).
- ``[source]``: ``kind = "table"`` (a 前置库 table read through SQLAlchemy, rows marked as they are taken) or
  ``kind = "json"`` (an HTTP JSON feed paged by a cursor).
- ``[fields]``: canonical dotted path → native field name, or a table of transforms (``FieldRule``).
- ``[envelope]``: ``revision``, ``classification``, ``correlation_id`` (and ``region``) rules.
- ``[code_tables.NAME]``: inline ``values`` or a ``csv`` file beside the mapping file.
- ``[objects]``: when an optional canonical object exists at all (``requires`` one of its members).
- ``[require]``: native field → the values a record must carry to be a fact at all.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas import Classification, EventPayload, event_types

__all__ = [
    "CodeTable",
    "EnvelopeRules",
    "FieldRule",
    "JsonSource",
    "MappingError",
    "MappingSpec",
    "ObjectRule",
    "StatusCheck",
    "TableSource",
    "load_mapping",
    "parse_mapping",
]

Scalar = str | int | bool
FieldType = Literal["str", "int", "bool", "date", "datetime"]


class MappingError(ValueError):
    """A mapping file that cannot be used; ``problems`` lists each one, led by the key that holds it."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        self.origin = origin
        self.problems = problems
        listed = "\n  ".join(problems)
        super().__init__(f"mapping {origin}: {len(problems)} problem(s):\n  {listed}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(_Strict):
    """How one canonical value is made from a record. Applied in this order:

    1. the raw value: ``from`` (a native field; dots reach into nested JSON objects), ``concat`` (several
       fields joined by ``sep``, absent ones skipped) or ``const`` (a fixed value);
    2. blank (``""``, whitespace, ``null``) and any value in ``null_if`` mean absent; absent takes
       ``default`` if given, else fails when ``required``, else leaves the canonical value unset;
    3. ``zfill`` pads numeric codes sent as numbers (``1`` → ``001``);
    4. ``map`` (inline) or ``code_table`` (named) translate the value; one not listed takes ``otherwise``
       if given, else the record is rejected naming the field;
    5. ``type`` converts: ``int``, ``bool``, ``str``, ``date`` / ``datetime`` (with ``date_format``,
       strptime patterns tried in order; without, ISO-like ``yyyy-MM-dd[ HH:mm:ss]``). Naive times are in the
       mapping's ``timezone``.
    """

    from_: str | None = Field(default=None, alias="from", min_length=1)
    concat: list[str] | None = Field(default=None, min_length=1)
    sep: str = ""
    const: Scalar | None = None
    null_if: list[str] = []
    default: Scalar | None = None
    required: bool = False
    zfill: int | None = Field(default=None, ge=1, le=64)
    map: dict[str, Scalar] | None = None
    code_table: str | None = Field(default=None, min_length=1)
    otherwise: Scalar | None = None
    type: FieldType | None = None
    date_format: list[str] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("date_format", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("map", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        return _text_keys(value)

    @field_validator("null_if", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("date_format")
    @classmethod
    def _formats_parse(cls, value: list[str] | None) -> list[str] | None:
        for fmt in value or ():
            if "%" not in fmt:
                raise ValueError(f"{fmt!r} is not a strptime pattern (e.g. %Y%m%d%H%M%S)")
            try:
                datetime.strptime(datetime(2026, 11, 20, 16, 40, 2).strftime(fmt), fmt)
            except ValueError as exc:
                raise ValueError(f"{fmt!r} cannot read back what it writes: {exc}") from None
        return value

    @model_validator(mode="after")
    def _coherent(self) -> FieldRule:
        given = [k for k, v in (("from", self.from_), ("concat", self.concat), ("const", self.const)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of from, concat, const (got {', '.join(given) or 'none'})")
        if self.map is not None and self.code_table is not None:
            raise ValueError("give map or code_table, not both")
        if self.otherwise is not None and self.map is None and self.code_table is None:
            raise ValueError("otherwise only applies with map or code_table")
        if self.date_format and self.type not in ("date", "datetime"):
            raise ValueError("date_format needs type = 'date' or 'datetime'")
        if self.sep and self.concat is None:
            raise ValueError("sep only applies with concat")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """The native fields this rule reads (empty for a constant)."""
        if self.from_ is not None:
            return (self.from_,)
        return tuple(self.concat or ())

    def describe_source(self) -> str:
        """How the rule's input is named in a rejection reason: the native field(s) the operator sees."""
        return ", ".join(self.sources) if self.sources else "(constant)"


def _text_keys(value: Any) -> Any:
    """Codes are text: YAML reads ``11: granted`` with an integer key, TOML never does; accept both."""
    if isinstance(value, Mapping):
        return {str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v for k, v in value.items()}
    return value


def _rule(value: Any) -> Any:
    """``"FIELD"`` is shorthand for ``{from = "FIELD"}``."""
    return {"from": value} if isinstance(value, str) else value


class CodeTable(_Strict):
    """A named code table (代码表): inline ``values``, or a ``csv`` file (path relative to the mapping file).

    The CSV's ``key_column`` / ``value_column`` default to its first two columns; ``encoding`` defaults to
    UTF-8 (a BOM is accepted; GBK exports name ``encoding = "gbk"``).
    """

    values: dict[str, Scalar] | None = None
    csv: str | None = None
    key_column: str | None = None
    value_column: str | None = None
    encoding: str = "utf-8-sig"

    @field_validator("values", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        return _text_keys(value)

    @model_validator(mode="after")
    def _one_source(self) -> CodeTable:
        if (self.values is None) == (self.csv is None):
            raise ValueError("give exactly one of values, csv")
        if self.csv is None and (self.key_column or self.value_column):
            raise ValueError("key_column and value_column only apply with csv")
        return self


class ObjectRule(_Strict):
    """An optional canonical object (e.g. ``commitment``) exists only when its member ``requires`` has a value.

    Without a rule, an object whose mapped members are all absent is left out (``null``).
    """

    requires: str = Field(min_length=1)


class EnvelopeRules(_Strict):
    """Envelope attributes taken from the record. Defaults: revision 1, ``public``, the payload's region,
    and the business key as correlation id."""

    revision: FieldRule | None = None
    classification: FieldRule | None = None
    region: FieldRule | None = None
    correlation_id: FieldRule | None = None

    @field_validator("revision", "classification", "region", "correlation_id", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _rule(value)


class TableSource(_Strict):
    """A 前置库 (exchange database) table.

    Pending rows are those whose ``status_column`` equals ``pending``; they are read in ``order_column``
    order (which must be unique: it also names the row when it is marked). Once the gateway has stored a
    row it is marked ``accepted``, or ``rejected`` with the reason in ``reason_column`` (cut to
    ``reason_max_length`` characters). The database URL is not part of the mapping: it is the gateway
    config's ``url`` option, so one mapping serves every city's exchange database.
    """

    kind: Literal["table"]
    table: str = Field(min_length=1)
    db_schema: str | None = Field(default=None, alias="schema", min_length=1)
    order_column: str = Field(min_length=1)
    status_column: str = Field(min_length=1)
    reason_column: str | None = Field(default=None, min_length=1)
    pending: int | str = 0
    accepted: int | str = 3
    rejected: int | str = 2
    reason_max_length: int = Field(default=200, ge=8, le=4000)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _distinct(self) -> TableSource:
        if len({self.pending, self.accepted, self.rejected}) != 3:
            raise ValueError("pending, accepted and rejected must be three different status values")
        if self.status_column == self.order_column:
            raise ValueError("status_column and order_column must be different columns")
        return self


class StatusCheck(_Strict):
    """A business status inside an HTTP 200 body: the value at ``path`` must be one of ``ok``.

    Values in ``retryable`` mean "try again later"; any other is a permanent refusal (an operator must act).
    """

    path: str = Field(min_length=1)
    ok: list[Scalar] = Field(min_length=1)
    retryable: list[Scalar] = []
    message: str | None = Field(default=None, min_length=1, description="path of the platform's message")


class JsonSource(_Strict):
    """An HTTP JSON feed paged by a cursor: ``GET {base_url}/{path}?{cursor_param}=…&{limit_param}=…``.

    ``records`` is the dotted path of the list of records in the reply. The next cursor is read from
    ``next_cursor`` (a path in the reply) or, for feeds that page by a record field (a sequence number or a
    change time), from ``cursor_field`` of the last record that has it. ``has_more`` (a path) says whether
    another page waits; without it a full page means there may be more.
    """

    kind: Literal["json"]
    path: str = ""
    records: str = Field(min_length=1)
    next_cursor: str | None = Field(default=None, min_length=1)
    cursor_field: str | None = Field(default=None, min_length=1)
    has_more: str | None = Field(default=None, min_length=1)
    cursor_param: str = Field(default="cursor", min_length=1)
    limit_param: str | None = Field(default="limit", min_length=1)
    params: dict[str, Scalar] = {}
    status: StatusCheck | None = None

    @model_validator(mode="after")
    def _one_cursor(self) -> JsonSource:
        if (self.next_cursor is None) == (self.cursor_field is None):
            raise ValueError("give exactly one of next_cursor, cursor_field")
        return self


class MappingHeader(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    event_type: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"

    @field_validator("event_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = event_types()
        if value not in known:
            raise ValueError(f"unknown event type {value!r} (known: {', '.join(sorted(known))})")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value


class MappingSpec(_Strict):
    """A whole, checked mapping file. Build it with ``load_mapping`` / ``parse_mapping``."""

    mapping: MappingHeader
    source: Annotated[TableSource | JsonSource, Field(discriminator="kind")]
    fields: dict[str, FieldRule] = Field(min_length=1)
    envelope: EnvelopeRules = EnvelopeRules()
    code_tables: dict[str, CodeTable] = {}
    objects: dict[str, ObjectRule] = {}
    require: dict[str, list[Scalar]] = {}
    _origin: str = PrivateAttr(default="<memory>")
    _tables: dict[str, dict[str, Scalar]] = PrivateAttr(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: _rule(v) for k, v in value.items()}
        return value

    @property
    def origin(self) -> str:
        """Where the mapping was read from (a file path), for messages."""
        return self._origin

    @property
    def payload_model(self) -> type[EventPayload]:
        return event_types()[self.mapping.event_type]

    def rules(self) -> Iterator[tuple[str, FieldRule]]:
        """Every rule with the key that holds it (``fields."…"`` and ``envelope.…``), for checks and errors."""
        for path, rule in self.fields.items():
            yield f'fields."{path}"', rule
        for name in ("revision", "classification", "region", "correlation_id"):
            rule = getattr(self.envelope, name)
            if rule is not None:
                yield f"envelope.{name}", rule

    def native_fields(self) -> set[str]:
        """Every native field (top-level name) the mapping reads: what a table must have as columns."""
        names = {source.split(".", 1)[0] for _key, rule in self.rules() for source in rule.sources}
        return names | set(self.require)

    def code_table(self, name: str) -> dict[str, Scalar]:
        """The codes of a table, CSV ones read at load time."""
        return self._tables[name]


# -- loading ----------------------------------------------------------------------------------------------------
def load_mapping(path: str | Path) -> MappingSpec:
    """Read and check a mapping file (``.toml``, ``.yaml`` or ``.yml``); ``MappingError`` lists every problem."""
    file = Path(path)
    origin = str(file)
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise MappingError(origin, [f"file: unknown mapping format {suffix or '(none)'!r}; use .toml, .yaml or .yml"])
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(origin, [f"file: cannot read: {exc}"]) from None
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(origin, [f"file: not valid TOML: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise MappingError(origin, [f"file: not valid YAML: {exc}"]) from None
    return parse_mapping(data, origin=origin, base_dir=file.parent)


def parse_mapping(data: Any, *, origin: str = "<memory>", base_dir: Path | None = None) -> MappingSpec:
    """Check an already parsed mapping document; CSV code tables are read relative to ``base_dir``."""
    if not isinstance(data, Mapping):
        raise MappingError(origin, [f"file: the document must be a table of sections, got {type(data).__name__}"])
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise MappingError(origin, _problems(exc)) from None
    problems: list[str] = []
    tables = _resolve_code_tables(spec, base_dir, problems)
    problems += _cross_check(spec, tables)
    if problems:
        raise MappingError(origin, problems)
    spec._origin = origin
    spec._tables = tables
    return spec


def _key(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the key path a reader finds in the file: ``fields."item.code".type``."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i == 1 and loc[0] == "source" and part in ("table", "json"):
            continue  # the discriminated union's tag is not a key in the file
        text = str(part)
        if text == "from_":
            text = "from"
        elif text == "db_schema":
            text = "schema"
        quoted = i == 1 and loc[0] == "fields"  # canonical paths are always written quoted: fields."item.code"
        parts.append(f'"{text}"' if (quoted or "." in text or " " in text or not text) else text)
    return ".".join(parts) or "file"


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (a typo?)"
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            problems.append(f"{_key((*err['loc'], 'kind'))}: kind must be 'table' or 'json'")
            continue
        problems.append(f"{_key(err['loc'])}: {msg}")
    return problems


def _resolve_code_tables(spec: MappingSpec, base_dir: Path | None, problems: list[str]) -> dict[str, dict[str, Scalar]]:
    tables: dict[str, dict[str, Scalar]] = {}
    for name, table in spec.code_tables.items():
        if table.values is not None:
            tables[name] = dict(table.values)
            continue
        assert table.csv is not None
        path = Path(table.csv)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        try:
            tables[name] = _read_csv(path, table)
        except (OSError, UnicodeDecodeError, LookupError, ValueError, csv.Error) as exc:
            problems.append(f"code_tables.{name}.csv: {exc}")
    return tables


def _read_csv(path: Path, table: CodeTable) -> dict[str, Scalar]:
    with path.open(encoding=table.encoding, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or len(rows[0]) < 2:
        raise ValueError(f"{path.name} needs a header row with at least two columns")
    header = [h.strip() for h in rows[0]]
    key_name = table.key_column or header[0]
    value_name = table.value_column or header[1]
    for wanted in (key_name, value_name):
        if wanted not in header:
            raise ValueError(f"{path.name} has no column {wanted!r} (columns: {', '.join(header)})")
    k, v = header.index(key_name), header.index(value_name)
    values: dict[str, Scalar] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(k, v):
            raise ValueError(f"{path.name} line {number}: fewer columns than the header")
        key = row[k].strip()
        if key in values:
            raise ValueError(f"{path.name} line {number}: code {key!r} appears twice")
        values[key] = row[v].strip()
    if not values:
        raise ValueError(f"{path.name} has no codes")
    return values


def _cross_check(spec: MappingSpec, tables: Mapping[str, Any]) -> list[str]:
    """What one section cannot know alone: code tables exist, paths exist in the model, types fit them."""
    problems: list[str] = []
    model = spec.payload_model
    for key, rule in spec.rules():
        if rule.code_table is not None and rule.code_table not in spec.code_tables:
            known = ", ".join(sorted(spec.code_tables)) or "none defined"
            problems.append(f"{key}.code_table: no code table {rule.code_table!r} (known: {known})")
    for path, rule in spec.fields.items():
        target = _resolve_path(model, path)
        if isinstance(target, str):
            problems.append(f'fields."{path}": {target}')
            continue
        if _is_model(target):
            problems.append(f'fields."{path}": is an object; map its members ("{path}.<member>")')
            continue
        if rule.type in ("date", "datetime") and not _takes_time(target):
            problems.append(f'fields."{path}".type: {rule.type} does not fit a field that is not a date or time')
    for path, obj in spec.objects.items():
        target = _resolve_path(model, path)
        if isinstance(target, str) or not _is_model(target):
            problems.append(f"objects.{path}: {target if isinstance(target, str) else 'is not an object'}")
            continue
        member = f"{path}.{obj.requires}"
        if member not in spec.fields:
            problems.append(f'objects.{path}.requires: {obj.requires!r} is not mapped (add fields."{member}")')
    classification = spec.envelope.classification
    if classification is not None:
        problems += _classification_values(classification, tables)
    return problems


def _classification_values(rule: FieldRule, tables: Mapping[str, Mapping[str, Scalar]]) -> list[str]:
    allowed = {c.value for c in Classification}
    values: list[Scalar] = []
    if rule.map is not None:
        values += list(rule.map.values())
    if rule.code_table is not None and rule.code_table in tables:
        values += list(tables[rule.code_table].values())
    values += [v for v in (rule.default, rule.otherwise, rule.const) if v is not None]
    bad = sorted({str(v) for v in values if v not in allowed})
    if bad:
        return [f"envelope.classification: values must be {', '.join(sorted(allowed))} (got {', '.join(bad)})"]
    return []


def _unwrap(annotation: Any) -> list[Any]:
    """The member types of ``X | None`` / ``Union[...]`` / ``Annotated[...]``; ``[annotation]`` otherwise."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg) if t is not NoneType]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return any(isinstance(t, type) and issubclass(t, BaseModel) for t in _unwrap(annotation))


def _takes_time(annotation: Any) -> bool:
    """Whether the canonical field takes a date or a time (``date``, ``AwareDatetime``, optional or not)."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    for sample in (date(2026, 11, 20), datetime(2026, 11, 20, 16, 40, 2, tzinfo=UTC)):
        try:
            adapter.validate_python(sample, strict=True)
        except ValidationError:
            continue
        return True
    return False


def _resolve_path(model: type[BaseModel], path: str) -> Any:
    """The annotation at a dotted canonical path, or a reason string naming what does not exist."""
    current: Any = model
    walked: list[str] = []
    for part in path.split("."):
        models = [t for t in _unwrap(current) if isinstance(t, type) and issubclass(t, BaseModel)]
        if not models:
            return f"{'.'.join(walked)} is not an object, it has no member {part!r}"
        fields = models[0].model_fields
        if part not in fields:
            where = ".".join(walked) or models[0].__name__
            return f"no field {part!r} in {where} (has: {', '.join(fields)})"
        current = fields[part].annotation
        walked.append(part)
    return current
