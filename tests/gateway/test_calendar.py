"""The working-day calendar (工作日) over real schedule edges, estimates for uncovered years, and its CLI."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from typer.testing import CliRunner

from gateway.calendar import ScheduleError, WorkingDayCalendar, parse_schedule
from gateway.calendar_cli import app

runner = CliRunner()


def write_schedule(path: Path, year: int, holidays: list[str], workdays: list[str] | None = None) -> Path:
    doc: dict[str, object] = {"year": year, "holidays": holidays}
    if workdays is not None:
        doc["workdays"] = workdays
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def cal() -> WorkingDayCalendar:
    return WorkingDayCalendar()


# -- real 2026 edges (packaged chinesecalendar data) -----------------------------------------------------------


def test_national_day_2026_five_working_days_from_september_30(cal: WorkingDayCalendar) -> None:
    # Oct 1–7 off (National Day + Mid-Autumn), Oct 8 and 9 worked, Saturday Oct 10 is a make-up day (调休),
    # Sunday Oct 11 off: Oct 8, 9, 10, 12, 13.
    result = cal.add_working_days(date(2026, 9, 30), 5)
    assert result.date == date(2026, 10, 13)
    assert result.estimated is False
    assert cal.working_days_between(date(2026, 9, 30), date(2026, 10, 13)).days == 5
    assert cal.add_working_days(date(2026, 9, 30), 1).date == date(2026, 10, 8)
    assert cal.is_working_day(date(2026, 10, 10))  # Saturday, worked
    assert not cal.is_working_day(date(2026, 10, 5))  # Monday, holiday


def test_spring_festival_2026_make_up_saturdays_count_and_holiday_weekdays_do_not(cal: WorkingDayCalendar) -> None:
    # 2026 Spring Festival: Feb 15–23 off; Saturdays Feb 14 and Feb 28 are worked.
    for saturday in (date(2026, 2, 14), date(2026, 2, 28)):
        assert saturday.weekday() == 5
        assert cal.is_working_day(saturday)
    for weekday in (date(2026, 2, 16), date(2026, 2, 20), date(2026, 2, 23)):
        assert weekday.weekday() < 5
        assert not cal.is_working_day(weekday)
    assert not cal.is_working_day(date(2026, 2, 7))  # an ordinary Saturday stays a rest day
    assert cal.add_working_days(date(2026, 2, 13), 1).date == date(2026, 2, 14)
    assert cal.add_working_days(date(2026, 2, 14), 1).date == date(2026, 2, 24)
    assert cal.working_days_between(date(2026, 2, 13), date(2026, 2, 24)).days == 2
    # Feb 24–28 is a six-day week: Tue..Sat.
    assert cal.add_working_days(date(2026, 2, 23), 5).date == date(2026, 2, 28)


def test_zero_and_invalid_arguments(cal: WorkingDayCalendar) -> None:
    holiday = date(2026, 10, 1)
    assert cal.add_working_days(holiday, 0).date == holiday
    assert cal.add_working_days(date(2027, 3, 1), 0).estimated is False  # nothing was counted
    assert cal.working_days_between(holiday, holiday).days == 0
    with pytest.raises(ValueError, match="0 or more"):
        cal.add_working_days(holiday, -1)
    with pytest.raises(ValueError, match="at most"):
        cal.add_working_days(holiday, 10**9)
    with pytest.raises(TypeError, match="Asia/Shanghai"):
        cal.add_working_days(datetime(2026, 10, 1, 9, 0), 1)  # type: ignore[arg-type]


def test_between_is_negative_when_b_precedes_a(cal: WorkingDayCalendar) -> None:
    assert cal.working_days_between(date(2026, 10, 13), date(2026, 9, 30)).days == -5


# -- uncovered years: estimated, then exact after loading the official schedule --------------------------------


def test_deadline_crossing_into_2027_is_estimated_until_the_schedule_is_loaded(tmp_path: Path) -> None:
    state = tmp_path / "state" / "calendar"
    cal = WorkingDayCalendar(state)
    assert not cal.covers(2027) and cal.covers(2026)
    # Dec 29, 30, 31, then Fri Jan 1 and Mon Jan 4 under the weekends-only estimate.
    estimated = cal.add_working_days(date(2026, 12, 28), 5)
    assert estimated.date == date(2027, 1, 4) and estimated.estimated is True
    assert cal.working_days_between(date(2026, 12, 28), date(2027, 1, 4)).estimated is True
    # A deadline that stays inside 2026 is exact.
    assert cal.add_working_days(date(2026, 12, 28), 3) == type(estimated)(date(2026, 12, 31), False)

    # Jan 1 is New Year's Day; Jan 4 is a made-up extra holiday for the test.
    source = write_schedule(tmp_path / "2027.json", 2027, ["2027-01-01", "2027-01-04"])
    schedule = cal.load(source)
    assert schedule.year == 2027 and cal.covers(2027) and cal.loaded_years() == (2027,)
    exact = cal.add_working_days(date(2026, 12, 28), 5)
    assert exact.date == date(2027, 1, 6) and exact.estimated is False
    assert cal.working_days_between(date(2026, 12, 28), date(2027, 1, 6)).estimated is False

    # Persisted: a restarted process knows 2027.
    assert (state / "2027.json").is_file()
    restored = WorkingDayCalendar.from_dir(state)
    assert restored.covers(2027)
    assert restored.add_working_days(date(2026, 12, 28), 5) == exact


def test_years_before_the_packaged_data_are_estimated_too(cal: WorkingDayCalendar) -> None:
    assert not cal.covers(2003)
    result = cal.add_working_days(date(2003, 5, 1), 1)
    assert result.date == date(2003, 5, 2) and result.estimated is True


def test_a_loaded_year_overrides_the_packaged_data(tmp_path: Path, cal: WorkingDayCalendar) -> None:
    # A (fictional) corrected 2026 schedule without the Oct 10 make-up Saturday.
    cal.load(write_schedule(tmp_path / "2026.json", 2026, [f"2026-10-0{d}" for d in range(1, 8)]))
    assert not cal.is_working_day(date(2026, 10, 10))
    assert cal.add_working_days(date(2026, 9, 30), 5).date == date(2026, 10, 14)


def test_one_warning_per_uncovered_year_per_instance(tmp_path: Path) -> None:
    cal = WorkingDayCalendar()
    with capture_logs() as logs:
        cal.add_working_days(date(2026, 12, 28), 30)
        cal.add_working_days(date(2027, 3, 1), 10)
        cal.working_days_between(date(2027, 1, 1), date(2028, 1, 10))
        cal.is_working_day(date(2028, 6, 1))
        cal.add_working_days(date(2026, 9, 30), 5)  # covered: no warning
    warnings = [e for e in logs if e["event"] == "calendar.estimated"]
    assert [(e["year"], e["log_level"]) for e in warnings] == [(2027, "warning"), (2028, "warning")]

    cal.load(write_schedule(tmp_path / "2029.json", 2029, ["2029-01-01"]))
    with capture_logs() as logs:
        cal.add_working_days(date(2027, 6, 1), 5)  # already warned
        cal.add_working_days(date(2029, 6, 1), 5)  # loaded
        WorkingDayCalendar().add_working_days(date(2027, 6, 1), 1)  # another instance has its own memo
    assert [e["year"] for e in logs if e["event"] == "calendar.estimated"] == [2027]


# -- schedule files ---------------------------------------------------------------------------------------------


def test_toml_schedule_with_date_literals_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "2027.toml"
    path.write_text(
        "# 国务院办公厅关于2027年部分节假日安排的通知 (example)\n"
        'year = 2027\nsource = "example notice"\n'
        'holidays = [2027-01-01, "2027-02-06"]  # 元旦, 春节\n'
        "workdays = [2027-02-20]  # Saturday, 调休\n",
        encoding="utf-8",
    )
    schedule = parse_schedule(path)
    assert schedule.holidays == {date(2027, 1, 1), date(2027, 2, 6)}
    assert schedule.workdays == {date(2027, 2, 20)}
    assert schedule.source == "example notice"


def test_invalid_schedule_names_line_and_field_of_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        "{\n"
        '  "year": 2027,\n'
        '  "holidays": [\n'
        '    "2027-01-01",\n'
        '    "2027-02-30",\n'
        '    "2028-01-01",\n'
        '    "2027-01-01"\n'
        "  ],\n"
        '  "workdays": ["2027-02-22", "2027-01-01"],\n'
        '  "holiday": []\n'
        "}\n",
        encoding="utf-8",
    )
    with pytest.raises(ScheduleError) as info:
        parse_schedule(path)
    problems = info.value.problems
    message = str(info.value)
    assert str(path) in message
    assert "line 10: unknown field 'holiday'" in message
    assert "line 5: holidays[1]: '2027-02-30' is not a date" in message
    assert "line 6: holidays[2]: 2028-01-01 is not in year 2027" in message
    assert "line 7: holidays[3]: 2027-01-01 is listed twice" in message
    assert "line 9: workdays[0]: 2027-02-22 is a Monday" in message
    assert "line 9: workdays[1]: 2027-01-01 is listed both as holiday and as workday" in message
    assert "line 9: workdays[1]: 2027-01-01 is a Friday" in message
    assert len(problems) == 7


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.json", '{"year": 2027,\n "holidays": ["2027-01-01",]}', "line 2 column 28: invalid JSON"),
        ("a.toml", "year = 2027\nholidays = [", "invalid TOML"),
        ("a.yaml", "year: 2027", "use a .json or .toml file"),
        ("a.json", '["2027-01-01"]', "must be an object"),
        ("a.json", '{"holidays": ["2027-01-01"]}', "field 'year' is missing"),
        ("a.json", '{"year": "2027", "holidays": ["2027-01-01"]}', "line 1: year: expected a year"),
        ("a.json", '{"year": 2027}', "field 'holidays' is missing"),
        ("a.json", '{"year": 2027, "holidays": []}', "the list is empty"),
        ("a.json", '{"year": 2027, "holidays": ["20270101"]}', "is not a date (expected YYYY-MM-DD)"),
    ],
)
def test_schedule_file_errors(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScheduleError, match=r".*" + expected.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule(path)


def test_from_dir_refuses_a_corrupt_stored_schedule_and_accepts_a_missing_dir(tmp_path: Path) -> None:
    assert WorkingDayCalendar.from_dir(tmp_path / "nope").loaded_years() == ()
    (tmp_path / "2027.json").write_text("{", encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"2027\.json"):
        WorkingDayCalendar.from_dir(tmp_path)
    write_schedule(tmp_path / "2027.json", 2028, ["2028-01-01"])
    with pytest.raises(ScheduleError, match="holds year 2028"):
        WorkingDayCalendar.from_dir(tmp_path)


# -- properties -------------------------------------------------------------------------------------------------

_DATES = st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31))
_SHARED = WorkingDayCalendar()


@settings(max_examples=300, deadline=None)
@given(start=_DATES, n=st.integers(min_value=0, max_value=60))
def test_between_inverts_add(start: date, n: int) -> None:
    end = _SHARED.add_working_days(start, n)
    assert _SHARED.working_days_between(start, end.date).days == n
    assert end.date == start or _SHARED.is_working_day(end.date)


@settings(max_examples=300, deadline=None)
@given(a=_DATES, b=_DATES)
def test_add_inverts_between_on_working_days(a: date, b: date) -> None:
    count = _SHARED.working_days_between(a, b)
    assert _SHARED.working_days_between(b, a).days == -count.days
    if b > a and _SHARED.is_working_day(b):
        assert _SHARED.add_working_days(a, count.days).date == b
    assert count.estimated is False


@settings(max_examples=100, deadline=None)
@given(start=_DATES, n=st.integers(min_value=1, max_value=40))
def test_one_more_working_day_is_the_next_working_day(start: date, n: int) -> None:
    end = _SHARED.add_working_days(start, n).date
    nxt = _SHARED.add_working_days(start, n + 1).date
    gap = [end + timedelta(days=i) for i in range(1, (nxt - end).days)]
    assert not any(_SHARED.is_working_day(d) for d in gap)


# -- CLI ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def state_env(tmp_path: Path) -> dict[str, str]:
    return {"SHENGUAN_STATE_DIR": str(tmp_path / "state")}


def test_cli_add_and_between(state_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["add", "2026-09-30", "5", "--json"], env=state_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"date": "2026-10-13", "estimated": False}

    result = runner.invoke(app, ["add", "2026-09-30", "5"], env=state_env)
    assert result.exit_code == 0 and "2026-10-13" in result.stdout and "estimated" not in result.stdout

    result = runner.invoke(app, ["between", "2026-09-30", "2026-10-13", "--json"], env=state_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "from": "2026-09-30",
        "to": "2026-10-13",
        "working_days": 5,
        "estimated": False,
    }


def test_cli_estimate_then_load_into_default_dir(tmp_path: Path, state_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["add", "2026-12-28", "5", "--json"], env=state_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"date": "2027-01-04", "estimated": True}
    assert "calendar.estimated" in result.stderr

    source = write_schedule(tmp_path / "2027.json", 2027, ["2027-01-01", "2027-01-04"])
    result = runner.invoke(app, ["load", str(source)], env=state_env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("loaded 2027: 2 holiday(s), 0 make-up working day(s)")
    assert (tmp_path / "state" / "calendar" / "2027.json").is_file()

    result = runner.invoke(app, ["add", "2026-12-28", "5", "--json"], env=state_env)
    assert json.loads(result.stdout) == {"date": "2027-01-06", "estimated": False}
    result = runner.invoke(app, ["between", "2026-12-28", "2027-01-06", "--json"], env=state_env)
    assert json.loads(result.stdout)["working_days"] == 5 and json.loads(result.stdout)["estimated"] is False


def test_cli_explicit_dir(tmp_path: Path, state_env: dict[str, str]) -> None:
    source = write_schedule(tmp_path / "2027.json", 2027, ["2027-01-01"])
    other = tmp_path / "other"
    result = runner.invoke(app, ["load", str(source), "--dir", str(other), "--json"], env=state_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stored"] == str(other / "2027.json")
    with_dir = runner.invoke(app, ["add", "2026-12-31", "1", "--json", "--dir", str(other)], env=state_env)
    without = runner.invoke(app, ["add", "2026-12-31", "1", "--json"], env=state_env)
    assert json.loads(with_dir.stdout) == {"date": "2027-01-04", "estimated": False}
    assert json.loads(without.stdout) == {"date": "2027-01-01", "estimated": True}


@pytest.mark.parametrize(
    "args",
    [
        ["add", "2026-02-30", "5"],
        ["add", "20260930", "5"],
        ["add", "tomorrow", "1", "--json"],
        ["between", "2026-09-30", "2026-13-01"],
        ["add", "2026-09-30", "100000"],
    ],
)
def test_cli_bad_input_exits_2_with_an_error_line(args: list[str], state_env: dict[str, str]) -> None:
    result = runner.invoke(app, args, env=state_env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_load_of_an_invalid_schedule_exits_2(tmp_path: Path, state_env: dict[str, str]) -> None:
    bad = tmp_path / "2027.json"
    bad.write_text('{"year": 2027, "holidays": ["2027-01-32"]}', encoding="utf-8")
    result = runner.invoke(app, ["load", str(bad)], env=state_env)
    assert result.exit_code == 2
    assert "error: cannot load the schedule" in result.stderr
    assert "holidays[0]: '2027-01-32' is not a date" in result.stderr
    assert not (tmp_path / "state" / "calendar" / "2027.json").exists()

    result = runner.invoke(app, ["load", str(tmp_path / "missing.json")], env=state_env)
    assert result.exit_code == 2 and "cannot read the file" in result.stderr
