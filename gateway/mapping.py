"""The 审管事项关联映射清单 (approval-item ↔ supervision-item mapping list): parsing and validation.

Which 监管事项 (supervision item) and which 监管部门 (supervising department) an approval result belongs
to is not in the approval record: departments maintain it by hand, as a spreadsheet, and hand it to the
operator as CSV or XLSX. A mistake in that sheet silently routes a 办结 record to nobody, so this module
reads the sheet strictly and reports *every* problem at once, each with the row and column a user sees
in Excel, so the department can fix the sheet in one pass instead of one round trip per error.

Columns (header matching ignores case, blanks and 全角/半角 differences, so ``认领时限（工作日）`` and
``Approval_Item_Code`` both match; unknown columns such as 备注 are ignored):

=====================  ==================  ===================================================
English header         Chinese header      rule
=====================  ==================  ===================================================
approval_item_code     审批事项编码        required, non-empty
approval_item_name     审批事项名称        required, non-empty
business_item          业务办理项          optional column and value (empty = the whole item)
supervision_item_code  监管事项编码        required, exactly 14 digits (监管事项目录编码)
supervision_item_name  监管事项名称        required, non-empty
department_name        监管部门名称        required, non-empty
department_code        监管部门编码        required, non-empty; checked as a 统一社会信用代码
                                           only when it has 18 characters (many departments
                                           still use internal or 组织机构代码 codes)
region_code            行政区划代码        required, 6 digits (GB/T 2260)
channel                推送渠道            required, platform / specialty / paper
                                           (also 平台 / 专业系统 / 纸质)
claim_deadline_days    认领时限(工作日)    optional, whole number 1..30 (working days, 工作日);
                                           empty = the city's default deadline
=====================  ==================  ===================================================

Decisions taken where the brief was silent:

- Rows with a problem are left out of :attr:`MappingList.rows`; a caller activating a mapping list should
  refuse it unless :attr:`MappingList.ok`, because a partial list routes the missing items to nobody.
- When a required column is missing, the cells of the other columns are still checked (every problem is
  reported), but no row is produced.
- Codes are normalised the way :func:`schemas.identifiers.normalise_code` normalises them (blanks trimmed,
  全角 digits and letters made 半角, upper case), both when parsing and in :meth:`MappingList.lookup`, so
  a sheet typed on a Chinese IME still matches the records the platforms send.
- In an XLSX workbook the first sheet whose first non-blank row carries a known header is read; this skips
  the 填表说明 (instructions) sheet many templates put first. The header is the first non-blank row.
- The digest ignores row order: re-sorting a sheet is not a new mapping.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from enum import StrEnum
from os import PathLike
from pathlib import Path

from schemas.identifiers import check_region_code, check_uscc, normalise_code

__all__ = [
    "Channel",
    "MappingFileError",
    "MappingList",
    "MappingProblem",
    "MappingRow",
    "parse_mapping",
    "render_problems",
]

MIN_CLAIM_DAYS = 1
MAX_CLAIM_DAYS = 30


class MappingFileError(Exception):
    """The file itself cannot be read as a mapping list (missing, unknown format, corrupt, empty).

    Content problems are never raised: they are collected as :class:`MappingProblem`.
    """


class Channel(StrEnum):
    """推送渠道: how the supervising department receives the approval result."""

    platform = "platform"  # 平台: the 互联网+监管 / 审管 platform
    specialty = "specialty"  # 专业系统: a department's own specialty system
    paper = "paper"  # 纸质: printed notice and 送达回证 (online first, paper as fallback)


_CHANNEL_ALIASES: dict[str, Channel] = {
    "platform": Channel.platform,
    "平台": Channel.platform,
    "specialty": Channel.specialty,
    "专业系统": Channel.specialty,
    "paper": Channel.paper,
    "纸质": Channel.paper,
}


@dataclass(frozen=True)
class MappingRow:
    """One line of the mapping list: an approval item (in a region) → a supervision item and department."""

    approval_item_code: str
    approval_item_name: str
    business_item: str | None
    supervision_item_code: str
    supervision_item_name: str
    department_name: str
    department_code: str
    region_code: str
    channel: Channel
    claim_deadline_days: int | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The natural key: one approval item (业务办理项) in one region maps once to a supervision item."""
        return (self.approval_item_code, self.business_item or "", self.region_code, self.supervision_item_code)


@dataclass(frozen=True)
class MappingProblem:
    """A content problem, located the way a user sees the sheet: header is row 1, ``column`` as written."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class MappingList:
    """The parsed list: valid rows, every problem found, where it came from and a content digest."""

    rows: tuple[MappingRow, ...]
    problems: tuple[MappingProblem, ...]
    source: str
    digest: str
    _by_item: dict[str, tuple[MappingRow, ...]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        index: dict[str, list[MappingRow]] = {}
        for row in self.rows:
            index.setdefault(row.approval_item_code, []).append(row)
        object.__setattr__(self, "_by_item", {code: tuple(rows) for code, rows in index.items()})

    @property
    def ok(self) -> bool:
        """Whether the whole sheet is valid; only then should it replace the active mapping."""
        return not self.problems

    def lookup(self, approval_item_code: str, region_code: str) -> list[MappingRow]:
        """The rows for an approval item decided in ``region_code``, most specific region level only.

        A department often maps once for a whole city (or province) and lets it cover the counties, but
        may override it for one county; so county rows, when present, replace the city rows, which in
        turn replace the province rows. An invalid ``region_code`` raises ``ValueError``.
        """
        region = check_region_code(normalise_code(region_code))
        candidates = self._by_item.get(normalise_code(approval_item_code), ())
        for level in dict.fromkeys((region, region[:4] + "00", region[:2] + "0000")):
            found = [row for row in candidates if row.region_code == level]
            if found:
                return found
        return []


def render_problems(problems: Iterable[MappingProblem]) -> str:
    """One line per problem, e.g. ``row 7, column 监管事项编码: must be 14 digits, got '1234'``."""
    return "\n".join(str(p) for p in problems)


# ---------------------------------------------------------------------------------------------------
# Columns


@dataclass(frozen=True)
class _Column:
    name: str  # MappingRow field
    chinese: str
    required: bool


_COLUMNS: tuple[_Column, ...] = (
    _Column("approval_item_code", "审批事项编码", True),
    _Column("approval_item_name", "审批事项名称", True),
    _Column("business_item", "业务办理项", False),
    _Column("supervision_item_code", "监管事项编码", True),
    _Column("supervision_item_name", "监管事项名称", True),
    _Column("department_name", "监管部门名称", True),
    _Column("department_code", "监管部门编码", True),
    _Column("region_code", "行政区划代码", True),
    _Column("channel", "推送渠道", True),
    _Column("claim_deadline_days", "认领时限(工作日)", False),
)
_KEY_FIELDS = ("approval_item_code", "business_item", "region_code", "supervision_item_code")


def _header_key(text: str) -> str:
    """Header text reduced to what matters: NFKC (全角 → 半角), no blanks, case-folded."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


_HEADER_ALIASES: dict[str, tuple[_Column, bool]] = {}  # header key → (column, is the Chinese header)
for _col in _COLUMNS:
    _HEADER_ALIASES[_header_key(_col.name)] = (_col, False)
    _HEADER_ALIASES[_header_key(_col.chinese)] = (_col, True)

_SUPERVISION_CODE_RE = re.compile(r"^\d{14}$")
_INTEGER_RE = re.compile(r"^[+]?\d+$")
# What Excel writes to CSV for a long number in a cell not formatted as text: the digits are gone.
_SCIENTIFIC_RE = re.compile(r"^\d+(\.\d+)?E\+\d+$", re.IGNORECASE)
_SCIENTIFIC_HINT = " (Excel turned the number into scientific notation; format the column as text and re-enter it)"


# ---------------------------------------------------------------------------------------------------
# Reading


def parse_mapping(path: Path | str | PathLike[str]) -> MappingList:
    """Read and validate a mapping list (``.csv`` or ``.xlsx``); content problems are collected, not raised.

    Raises :class:`MappingFileError` only when the file cannot be read at all.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _read_csv(path)
    elif suffix == ".xlsx":
        records = _read_xlsx(path)
    elif suffix == ".xls":
        raise MappingFileError(f"{path}: the old Excel 97-2003 format (.xls) is not supported; save it as .xlsx")
    else:
        raise MappingFileError(f"{path}: unknown mapping list format {path.suffix!r}; expected .csv or .xlsx")
    rows, problems = _validate(records)
    if rows is None:
        raise MappingFileError(f"{path}: the file is empty (no header row)")
    return MappingList(rows=rows, problems=problems, source=str(path), digest=_digest(rows))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MappingFileError(f"{path}: cannot read the mapping list: {exc.strerror or exc}") from exc


def _read_csv(path: Path) -> list[tuple[int, list[str]]]:
    """CSV records numbered as spreadsheet rows (a quoted multi-line cell is still one row).

    UTF-8 (with or without the BOM Excel adds) is tried first, then GB18030, the superset of the GBK that
    Excel on Chinese Windows writes; a GBK file is almost never valid UTF-8, so the order is safe.
    """
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise MappingFileError(f"{path}: the CSV is neither UTF-8 nor GBK/GB18030 text") from exc
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(",\t;", key=first_line.count) if first_line else ","
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        return [(number, row) for number, row in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise MappingFileError(f"{path}: malformed CSV: {exc}") from exc


def _read_xlsx(path: Path) -> list[tuple[int, list[str]]]:
    """The rows of the first sheet that has a known header (values, not formulas), numbered as in Excel."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        path.open("rb").close()  # a missing or unreadable file gets the same message as a CSV one
    except OSError as exc:
        raise MappingFileError(f"{path}: cannot read the mapping list: {exc.strerror or exc}") from exc
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise MappingFileError(f"{path}: not a readable .xlsx workbook: {exc}") from exc
    try:
        sheets: list[list[tuple[int, list[str]]]] = []
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()  # some generators write a wrong <dimension>; read what is there
            rows = [
                (number, [_cell_text(value) for value in values])
                for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1)
            ]
            sheets.append(rows)
    finally:
        workbook.close()
    for rows in sheets:
        header = next((cells for _, cells in rows if any(c.strip() for c in cells)), None)
        if header and any(_header_key(c) in _HEADER_ALIASES for c in header):
            return rows
    return sheets[0] if sheets else []


def _cell_text(value: object) -> str:
    """An XLSX cell as the text a user sees: ``320700`` not ``320700.0``, empty for a blank cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------------
# Validation


def _validate(
    records: Sequence[tuple[int, list[str]]],
) -> tuple[tuple[MappingRow, ...] | None, tuple[MappingProblem, ...]]:
    """Rows and problems of the numbered records; ``None`` rows when there is no header at all."""
    nonblank: Iterator[tuple[int, list[str]]] = ((n, r) for n, r in records if any(c.strip() for c in r))
    header = next(nonblank, None)
    if header is None:
        return None, ()
    header_row, header_cells = header
    problems: list[MappingProblem] = []

    positions: dict[str, tuple[int, str]] = {}  # field → (cell index, header as written)
    chinese = english = 0
    for index, text in enumerate(header_cells):
        match = _HEADER_ALIASES.get(_header_key(text))
        if match is None:
            continue
        column, is_chinese = match
        written = text.strip()
        if column.name in positions:
            problems.append(
                MappingProblem(header_row, written, f"repeats the column {positions[column.name][1]!r}; it is ignored")
            )
            continue
        positions[column.name] = (index, written)
        chinese += is_chinese
        english += not is_chinese
    for column in _COLUMNS:
        if column.required and column.name not in positions:
            shown = column.name if english > chinese else column.chinese
            problems.append(
                MappingProblem(
                    header_row,
                    shown,
                    f"required column is missing (header {column.chinese!r} or {column.name!r})",
                )
            )
    complete = all(c.name in positions for c in _COLUMNS if c.required)

    rows: list[MappingRow] = []
    first_seen: dict[tuple[str, ...], int] = {}
    for number, cells in nonblank:
        values, row_problems = _validate_row(number, cells, positions)
        problems.extend(row_problems)
        key = _row_key(values, positions, row_problems)
        if key is not None:
            if key in first_seen:
                column = positions["approval_item_code"][1]
                problems.append(MappingProblem(number, column, f"duplicates row {first_seen[key]} {_SAME_KEY}"))
                continue
            first_seen[key] = number
        if complete and not row_problems:
            rows.append(MappingRow(**values))  # type: ignore[arg-type]
    return tuple(rows), tuple(problems)


_SAME_KEY = "(same 审批事项编码, 业务办理项, 行政区划代码 and 监管事项编码)"


def _row_key(
    values: dict[str, object], positions: dict[str, tuple[int, str]], row_problems: list[MappingProblem]
) -> tuple[str, ...] | None:
    """The duplicate-detection key, or ``None`` when a key column is missing or one of its cells is invalid.

    Comparing keys made of invalid cells would only repeat the cell problem as a duplicate.
    """
    bad_columns = {p.column for p in row_problems}
    for name in _KEY_FIELDS:
        if name not in positions:
            if name != "business_item":
                return None
        elif positions[name][1] in bad_columns:
            return None
    return tuple(str(values.get(name) or "") for name in _KEY_FIELDS)


def _validate_row(
    number: int, cells: list[str], positions: dict[str, tuple[int, str]]
) -> tuple[dict[str, object], list[MappingProblem]]:
    """The typed values of one record and its problems, in column order of :data:`_COLUMNS`."""
    values: dict[str, object] = {}
    problems: list[MappingProblem] = []
    for column in _COLUMNS:
        if column.name not in positions:
            values[column.name] = None
            continue
        index, written = positions[column.name]
        raw = cells[index].strip() if index < len(cells) else ""
        try:
            values[column.name] = _CHECKS[column.name](raw)
        except ValueError as exc:
            problems.append(MappingProblem(number, written, str(exc)))
    return values, problems


def _required_text(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty")
    return raw


def _required_code(raw: str) -> str:
    return normalise_code(_required_text(raw))


def _optional_text(raw: str) -> str | None:
    return raw or None


def _supervision_code(raw: str) -> str:
    value = _required_code(raw)
    if not _SUPERVISION_CODE_RE.match(value):
        hint = _SCIENTIFIC_HINT if _SCIENTIFIC_RE.match(value) else ""
        raise ValueError(f"must be 14 digits (监管事项目录编码), got {raw!r}{hint}")
    return value


def _department_code(raw: str) -> str:
    value = _required_code(raw)
    if len(value) == 18:
        check_uscc(value)
    return value


def _region_code(raw: str) -> str:
    value = _required_code(raw)
    if _SCIENTIFIC_RE.match(value):
        raise ValueError(f"must be 6 digits, got {raw!r}{_SCIENTIFIC_HINT}")
    return check_region_code(value)


def _channel(raw: str) -> Channel:
    channel = _CHANNEL_ALIASES.get(_header_key(_required_text(raw)))
    if channel is None:
        raise ValueError(f"must be one of platform, specialty, paper (平台, 专业系统, 纸质), got {raw!r}")
    return channel


def _claim_deadline(raw: str) -> int | None:
    if not raw:
        return None
    value = unicodedata.normalize("NFKC", raw)
    if not _INTEGER_RE.match(value) or not MIN_CLAIM_DAYS <= int(value) <= MAX_CLAIM_DAYS:
        raise ValueError(
            f"must be a whole number of working days (工作日) from {MIN_CLAIM_DAYS} to {MAX_CLAIM_DAYS}, got {raw!r}"
        )
    return int(value)


_CHECKS = {
    "approval_item_code": _required_code,
    "approval_item_name": _required_text,
    "business_item": _optional_text,
    "supervision_item_code": _supervision_code,
    "supervision_item_name": _required_text,
    "department_name": _required_text,
    "department_code": _department_code,
    "region_code": _region_code,
    "channel": _channel,
    "claim_deadline_days": _claim_deadline,
}


def _digest(rows: Sequence[MappingRow]) -> str:
    """sha256 over the normalised rows, one canonical JSON line each, sorted so row order does not count."""
    names = [f.name for f in fields(MappingRow)]
    lines = sorted(
        json.dumps([getattr(row, name) for name in names], ensure_ascii=False, separators=(",", ":")) for row in rows
    )
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
