"""The 审管事项关联映射清单 (mapping list) parser: formats, encodings, every validation rule, lookup, digest."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook

from gateway.mapping import (
    Channel,
    MappingFileError,
    MappingList,
    MappingProblem,
    MappingRow,
    parse_mapping,
    render_problems,
)

DATA = Path(__file__).parent / "data"
VALID = DATA / "mapping_valid.csv"  # UTF-8 with BOM, Chinese headers, CRLF, a blank row and a 备注 column
INVALID = DATA / "mapping_invalid.csv"  # UTF-8 without BOM, English headers, one problem per row mostly

ENGLISH = {
    "审批事项编码": "approval_item_code",
    "审批事项名称": "approval_item_name",
    "业务办理项": "business_item",
    "监管事项编码": "supervision_item_code",
    "监管事项名称": "supervision_item_name",
    "监管部门名称": "department_name",
    "监管部门编码": "department_code",
    "行政区划代码": "region_code",
    "推送渠道": "channel",
    "认领时限（工作日）": "claim_deadline_days",
    "备注": "remark",
}
CHANNELS = {"平台": "platform", "专业系统": "specialty", "纸质": "paper"}


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def valid_records() -> list[list[str]]:
    with VALID.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def xlsx_like_excel(path: Path) -> Path:
    """The valid fixture as a department would save it from Excel: English headers, English channel names,
    numeric-looking codes stored as numbers, an instructions sheet first and the data on the second sheet."""
    records = valid_records()
    wb = Workbook()
    wb.active.title = "填表说明"
    wb.active.append(["每行一个审批事项与监管事项的对应关系"])
    ws = wb.create_sheet("映射清单")
    ws.append([ENGLISH[h] for h in records[0]])
    for record in records[1:]:
        ws.append(
            [
                int(cell) if cell.isdigit() and not cell.startswith("0") else CHANNELS.get(cell, cell or None)
                for cell in record
            ]
        )
    wb.save(path)
    return path


# --- formats and encodings -----------------------------------------------------------------------


def test_valid_utf8_bom_csv_with_chinese_headers() -> None:
    mapping = parse_mapping(VALID)
    assert mapping.ok, render_problems(mapping.problems)
    assert mapping.problems == ()
    assert mapping.source == str(VALID)
    assert len(mapping.rows) == 4  # the blank row is skipped
    first = mapping.rows[0]
    assert first == MappingRow(
        approval_item_code="000105001000",
        approval_item_name="食品经营许可",
        business_item="食品经营许可（新办）",
        supervision_item_code="32070000100001",
        supervision_item_name="食品经营许可后监管",
        department_name="连云港市市场监督管理局",
        department_code="11320700MB12345679",
        region_code="320700",
        channel=Channel.platform,
        claim_deadline_days=3,
    )
    assert [r.channel for r in mapping.rows] == [Channel.platform, Channel.specialty, Channel.platform, Channel.paper]
    assert mapping.rows[2].claim_deadline_days is None
    assert mapping.rows[3].business_item is None


def test_gbk_csv_as_saved_by_excel_on_chinese_windows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "清单.csv", valid_records(), encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    mapping = parse_mapping(path)
    assert mapping.ok, render_problems(mapping.problems)
    assert mapping.rows == parse_mapping(VALID).rows
    assert mapping.rows[0].department_name == "连云港市市场监督管理局"


def test_xlsx_with_english_headers_numeric_cells_and_an_instructions_sheet(tmp_path: Path) -> None:
    mapping = parse_mapping(xlsx_like_excel(tmp_path / "mapping.xlsx"))
    assert mapping.ok, render_problems(mapping.problems)
    assert mapping.rows == parse_mapping(VALID).rows


def test_digest_is_stable_across_formats_encodings_and_row_order(tmp_path: Path) -> None:
    records = valid_records()
    reordered = [records[0], *reversed(records[1:])]
    digests = {
        parse_mapping(VALID).digest,
        parse_mapping(write_csv(tmp_path / "gbk.csv", records, encoding="gbk")).digest,
        parse_mapping(write_csv(tmp_path / "plain.csv", records)).digest,
        parse_mapping(write_csv(tmp_path / "reordered.csv", reordered)).digest,
        parse_mapping(xlsx_like_excel(tmp_path / "mapping.xlsx")).digest,
    }
    assert len(digests) == 1
    assert len(digests.pop()) == 64


def test_digest_changes_with_content(tmp_path: Path) -> None:
    records = valid_records()
    records[1][9] = "4"  # 认领时限 3 → 4
    assert parse_mapping(write_csv(tmp_path / "changed.csv", records)).digest != parse_mapping(VALID).digest


def test_headers_ignore_case_blanks_and_fullwidth(tmp_path: Path) -> None:
    records = valid_records()
    records[0] = [" Approval_Item_Code ", "审批事项 名称", *records[0][2:9], "认领时限(工作日)", "备注"]
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records))
    assert mapping.ok, render_problems(mapping.problems)
    assert mapping.rows == parse_mapping(VALID).rows


def test_fullwidth_codes_and_channel_case_are_normalised(tmp_path: Path) -> None:
    records = valid_records()[:2]
    records[1][7] = "３２０７００"  # typed with a Chinese IME
    records[1][8] = " PLATFORM "
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records))
    assert mapping.ok, render_problems(mapping.problems)
    assert mapping.rows[0].region_code == "320700"
    assert mapping.rows[0].channel is Channel.platform


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        (3, "supervision_item_code", "must be 14 digits (监管事项目录编码), got '1234'"),
        (4, "approval_item_name", "must not be empty"),
        (5, "department_code", "check character"),
        (6, "region_code", "must be 6 digits, got '32070'"),
        (7, "channel", "must be one of platform, specialty, paper (平台, 专业系统, 纸质), got 'email'"),
        (8, "claim_deadline_days", "from 1 to 30, got '45'"),
        (10, "approval_item_code", "duplicates row 2"),
        (11, "supervision_item_code", "scientific notation"),
        (11, "supervision_item_name", "must not be empty"),
        (11, "department_name", "must not be empty"),
        (11, "claim_deadline_days", "got '2.5'"),
    ],
)
def test_each_rule_names_its_row_and_column(row: int, column: str, fragment: str) -> None:
    problems = [p for p in parse_mapping(INVALID).problems if (p.row, p.column) == (row, column)]
    assert len(problems) == 1, problems
    assert fragment in problems[0].message


def test_every_problem_is_collected_and_only_valid_rows_are_kept() -> None:
    mapping = parse_mapping(INVALID)
    assert not mapping.ok
    assert len(mapping.problems) == 11
    assert [p.row for p in mapping.problems] == sorted(p.row for p in mapping.problems)
    # Row 2 is valid; row 12 is valid too: a short 部门编码 is not a USCC, "Paper" is the paper channel.
    assert [r.approval_item_code for r in mapping.rows] == ["A001", "A010"]
    assert mapping.rows[1].department_code == "JSZJ-LYG-01"
    assert mapping.rows[1].channel is Channel.paper


def test_render_problems_one_line_each() -> None:
    problems = [
        MappingProblem(7, "监管事项编码", "must be 14 digits, got '1234'"),
        MappingProblem(9, "推送渠道", "must not be empty"),
    ]
    assert render_problems(problems) == (
        "row 7, column 监管事项编码: must be 14 digits, got '1234'\nrow 9, column 推送渠道: must not be empty"
    )
    assert render_problems([]) == ""


def test_column_is_named_as_written_in_the_file(tmp_path: Path) -> None:
    records = valid_records()[:2]
    records[0][3] = "监管事项编码 "
    records[1][3] = "1234"
    (problem,) = parse_mapping(write_csv(tmp_path / "m.csv", records)).problems
    assert str(problem) == "row 2, column 监管事项编码: must be 14 digits (监管事项目录编码), got '1234'"


def test_missing_required_header_is_one_problem_on_row_1_and_other_cells_are_still_checked(tmp_path: Path) -> None:
    records = [[cell for i, cell in enumerate(r) if i != 3] for r in valid_records()]  # drop 监管事项编码
    records[1][6] = "99"  # bad 行政区划代码 (now at index 6) on row 2
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records))
    assert mapping.rows == ()
    assert [(p.row, p.column) for p in mapping.problems] == [(1, "监管事项编码"), (2, "行政区划代码")]
    assert "required column is missing" in mapping.problems[0].message


def test_missing_header_is_named_in_the_language_of_the_file(tmp_path: Path) -> None:
    with INVALID.open(encoding="utf-8", newline="") as f:
        records = [r[:8] + r[9:] for r in csv.reader(f)]  # drop channel
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records[:2]))
    assert [(p.row, p.column) for p in mapping.problems] == [(1, "channel")]


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    records = [r[:2] + r[3:9] for r in valid_records()]  # no 业务办理项, 认领时限, 备注
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records))
    assert mapping.ok, render_problems(mapping.problems)
    assert all(r.business_item is None and r.claim_deadline_days is None for r in mapping.rows)


def test_duplicate_key_names_the_earlier_row_even_when_other_fields_differ(tmp_path: Path) -> None:
    records = valid_records()
    again = list(records[1])
    again[5] = "另一个部门"  # same key, conflicting department
    records.append(again)
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records))
    assert [(p.row, p.column) for p in mapping.problems] == [(7, "审批事项编码")]
    assert mapping.problems[0].message.startswith("duplicates row 2")
    assert len(mapping.rows) == 4  # the earlier row is kept, the later one is not


def test_business_item_is_part_of_the_key(tmp_path: Path) -> None:
    records = valid_records()
    other = list(records[1])
    other[2] = "食品经营许可（变更）"
    records.append(other)
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records))
    assert mapping.ok, render_problems(mapping.problems)
    assert len(mapping.rows) == 5


def test_repeated_header_column_is_reported(tmp_path: Path) -> None:
    records = valid_records()[:2]
    records[0].append("approval_item_code")
    records[1].append("ignored")
    mapping = parse_mapping(write_csv(tmp_path / "m.csv", records))
    assert [(p.row, p.column) for p in mapping.problems] == [(1, "approval_item_code")]
    assert mapping.rows[0].approval_item_code == "000105001000"


def test_problems_in_xlsx_use_excel_row_numbers(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(
        [
            "审批事项编码",
            "审批事项名称",
            "监管事项编码",
            "监管事项名称",
            "监管部门名称",
            "监管部门编码",
            "行政区划代码",
            "推送渠道",
        ]
    )
    ws.append([])
    ws.append([])
    ws.append(["A1", "许可", 1234, "监管", "局", "JG01", 320700, "平台"])
    wb.save(tmp_path / "m.xlsx")
    mapping = parse_mapping(tmp_path / "m.xlsx")
    assert [str(p) for p in mapping.problems] == [
        "row 4, column 监管事项编码: must be 14 digits (监管事项目录编码), got '1234'"
    ]


# --- lookup --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mapping() -> MappingList:
    return parse_mapping(VALID)


def test_county_rows_win_over_city_rows(mapping: MappingList) -> None:
    found = mapping.lookup("000105001000", "320703")  # 连云区 has its own mapping
    assert [r.department_name for r in found] == ["连云区市场监督管理局"]


def test_city_rows_cover_the_other_counties(mapping: MappingList) -> None:
    found = mapping.lookup("000105001000", "320706")  # 海州区: no county row
    assert [r.supervision_item_code for r in found] == ["32070000100001", "32070000100002"]
    assert mapping.lookup("000105001000", "320700") == found


def test_province_rows_cover_every_city_and_county(mapping: MappingList) -> None:
    for region in ("320000", "320100", "320706"):
        assert [r.department_code for r in mapping.lookup("000105002000", region)] == ["11320000MB1111111Y"]


def test_lookup_misses(mapping: MappingList) -> None:
    assert mapping.lookup("000105001000", "320100") == []  # another city, no province row
    assert mapping.lookup("000105001000", "110105") == []
    assert mapping.lookup("999", "320703") == []


def test_lookup_normalises_and_checks_its_arguments(mapping: MappingList) -> None:
    assert len(mapping.lookup(" 000105001000 ", "３２０７０３")) == 1
    with pytest.raises(ValueError, match="6 digits"):
        mapping.lookup("000105001000", "3207")


# --- unreadable files ----------------------------------------------------------------------------


def test_unknown_extension(tmp_path: Path) -> None:
    path = shutil.copy(VALID, tmp_path / "mapping.txt")
    with pytest.raises(MappingFileError, match=r"unknown mapping list format '\.txt'"):
        parse_mapping(path)


def test_old_xls_format_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "mapping.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(MappingFileError, match=r"save it as \.xlsx"):
        parse_mapping(tmp_path / "mapping.xls")


@pytest.mark.parametrize("name", ["missing.csv", "missing.xlsx"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(MappingFileError, match="cannot read the mapping list"):
        parse_mapping(tmp_path / name)


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\r\n , ,\r\n\r\n"])
def test_empty_csv(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "m.csv").write_bytes(content)
    with pytest.raises(MappingFileError, match="empty"):
        parse_mapping(tmp_path / "m.csv")


def test_empty_xlsx(tmp_path: Path) -> None:
    Workbook().save(tmp_path / "m.xlsx")
    with pytest.raises(MappingFileError, match="empty"):
        parse_mapping(tmp_path / "m.xlsx")


def test_corrupt_xlsx(tmp_path: Path) -> None:
    (tmp_path / "m.xlsx").write_bytes(b"this is not a zip file")
    with pytest.raises(MappingFileError, match=r"not a readable \.xlsx workbook"):
        parse_mapping(tmp_path / "m.xlsx")


def test_csv_in_neither_utf8_nor_gbk(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_bytes(b"\xff\xfe\xff\xfe")
    with pytest.raises(MappingFileError, match="neither UTF-8 nor GBK"):
        parse_mapping(tmp_path / "m.csv")
