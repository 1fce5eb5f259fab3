"""The working-day calendar (工作日): statutory deadlines counted in Chinese working days.

Every deadline of the 审管联动 rules (claim in 2–3 working days, feedback in 5, 双公示 in 7, …) is counted in
working days under the State Council's yearly holiday schedule, including make-up working days (调休, a
Saturday or Sunday that is worked to bridge a holiday). Three rules shape this module:

* **The day of the triggering event does not count** (期间开始之日不计算在内, as in 行政许可法 and 民法典 on
  periods). ``add_working_days(start, n)`` returns the *n*-th working day strictly after ``start``, and
  ``working_days_between(a, b)`` counts working days in the half-open interval ``(a, b]``; the two are exact
  inverses: ``add_working_days(a, n).date == b`` implies ``working_days_between(a, b).days == n``.
* **A year nobody has published yet is still computed.** ``chinesecalendar`` carries the schedules of
  2004–2026 and raises for other years, but a deadline that starts in late December crosses into the next year
  before the State Council publishes its schedule (usually in November). Such days are counted with weekends
  only (Monday–Friday working) and every result that touched one is flagged ``estimated=True`` so callers can
  recompute it later. One warning per uncovered year per calendar instance is logged, not one per day.
* **The operator has the last word.** ``WorkingDayCalendar.load(path)`` reads the official schedule of a year
  from a small file (see :func:`parse_schedule`); a loaded year replaces the packaged data for that year and its
  results are no longer estimated. With a ``state_dir`` the schedule is also written there (``<year>.json``), so
  ``WorkingDayCalendar.from_dir(state_dir)`` restores it after a restart.

The calendar is an object rather than module state so that tests and each gateway process hold their own
instance; the only mutable state (loaded schedules and the warned-years memo) lives on the instance.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import structlog

__all__ = [
    "MAX_WORKING_DAYS",
    "Count",
    "ScheduleError",
    "WorkingDay",
    "WorkingDayCalendar",
    "YearSchedule",
    "parse_schedule",
    "schedule_from_mapping",
]

#: Upper bound for ``n`` in :meth:`WorkingDayCalendar.add_working_days`. Statutory periods are tens of working
#: days at most; refusing absurd values keeps a typo on the command line from spinning for minutes.
MAX_WORKING_DAYS = 10_000

_ONE_DAY = timedelta(days=1)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SCHEDULE_KEYS = frozenset({"year", "holidays", "workdays", "source"})
# Not strftime("%A"): messages must not depend on the process locale.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class WorkingDay:
    """A computed deadline: ``date``, and whether any day on the way was estimated (weekends-only)."""

    date: date
    estimated: bool


@dataclass(frozen=True, slots=True)
class Count:
    """A number of working days; ``estimated`` when any counted day lies in a year without schedule data."""

    days: int
    estimated: bool


#: Most (start, n) answers a calendar remembers: a few years of start dates times the periods in use.
_MEMO_LIMIT = 100_000


class ScheduleError(ValueError):
    """A schedule file (or stored schedule) is unreadable or invalid; ``problems`` lists every finding."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__("\n".join(f"{origin}: {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """The official holiday schedule (节假日安排) of one year.

    ``holidays`` are days off, including the weekend days inside a holiday block (listing them is harmless and is
    how the official notices read). ``workdays`` are make-up working days (调休上班): weekend days that are worked.
    Any other Monday–Friday is a working day, any other Saturday/Sunday is not.
    """

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str | None = None

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` (which must fall in ``year``) is a working day under this schedule."""
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)

    def to_json(self) -> dict[str, Any]:
        """The canonical file form, as written to the state directory and accepted by :func:`parse_schedule`."""
        doc: dict[str, Any] = {
            "year": self.year,
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "workdays": [d.isoformat() for d in sorted(self.workdays)],
        }
        if self.source is not None:
            doc["source"] = self.source
        return doc


# --------------------------------------------------------------------------------------------------------------
# schedule files


def parse_schedule(path: Path | str) -> YearSchedule:
    """Read and validate a schedule file; raise :class:`ScheduleError` naming the line and field of each problem.

    The format is JSON (``.json``) or TOML (``.toml``, which allows comments such as ``# 春节``) with these keys:

    ``year`` (int, required)
        The year the schedule is for; every date must fall in it.
    ``holidays`` (list of ``YYYY-MM-DD``, required, non-empty)
        Days off. An empty list is refused: it would silently turn an estimate into a "confirmed" weekends-only
        year, and every official schedule has holidays.
    ``workdays`` (list of ``YYYY-MM-DD``, optional)
        Make-up working days (调休); each must be a Saturday or Sunday and must not also be a holiday.
    ``source`` (string, optional)
        Where the schedule comes from, e.g. the notice number of 国务院办公厅 — kept for the audit trail.

    TOML date literals (``2027-01-01`` without quotes) are accepted as well as strings.
    """
    path = Path(path)
    origin = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleError(origin, [f"cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ScheduleError(origin, ["the file is not UTF-8 text"]) from None
    suffix = path.suffix.lower()
    raw: Any
    if suffix == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScheduleError(origin, [f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    elif suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScheduleError(origin, [f"invalid TOML: {exc}"]) from None
    else:
        raise ScheduleError(origin, [f"unknown file type {suffix or '(none)'!r}: use a .json or .toml file"])
    return schedule_from_mapping(raw, origin=origin, text=text)


def schedule_from_mapping(raw: Any, *, origin: str = "<schedule>", text: str | None = None) -> YearSchedule:
    """Validate an already-parsed schedule document. ``text`` (the source) lets problems name their line."""
    problems: list[str] = []
    locate = _Locator(text)

    if not isinstance(raw, Mapping):
        raise ScheduleError(origin, [f"the document must be an object/table with a 'year', got {type(raw).__name__}"])

    for key in sorted(set(raw) - _SCHEDULE_KEYS, key=str):
        problems.append(locate.key(key, f"unknown field {key!r} (expected one of: holidays, source, workdays, year)"))

    year = raw.get("year")
    if "year" not in raw:
        problems.append("field 'year' is missing")
        year = None
    elif isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
        problems.append(locate.key("year", f"year: expected a year such as 2027, got {year!r}"))
        year = None

    source = raw.get("source")
    if source is not None and not isinstance(source, str):
        problems.append(locate.key("source", f"source: expected a string, got {type(source).__name__}"))
        source = None

    holidays = _date_list(raw, "holidays", year, locate, problems, required=True)
    workdays = _date_list(raw, "workdays", year, locate, problems, required=False)

    for index, day in workdays.items():
        if day.weekday() < 5:
            problems.append(
                locate.value(
                    day,
                    f"workdays[{index}]: {day.isoformat()} is a {_WEEKDAYS[day.weekday()]}; "
                    "make-up working days (调休) are weekend days — a weekday is a working day already",
                    field="workdays",
                )
            )
    holiday_days = set(holidays.values())
    for index, day in workdays.items():
        if day in holiday_days:
            problems.append(
                locate.value(
                    day,
                    f"workdays[{index}]: {day.isoformat()} is listed both as holiday and as workday",
                    field="workdays",
                )
            )
    if "holidays" in raw and isinstance(raw["holidays"], list) and not raw["holidays"]:
        problems.append(locate.key("holidays", "holidays: the list is empty; an official schedule always has holidays"))

    if problems or year is None:
        raise ScheduleError(origin, problems or ["field 'year' is missing"])
    return YearSchedule(year, frozenset(holiday_days), frozenset(workdays.values()), source)


def _date_list(
    raw: Mapping[str, Any],
    field: str,
    year: int | None,
    locate: _Locator,
    problems: list[str],
    *,
    required: bool,
) -> dict[int, date]:
    """Validate one list of dates; return ``{index: date}`` of the valid, non-duplicate entries."""
    if field not in raw:
        if required:
            problems.append(f"field {field!r} is missing")
        return {}
    values = raw[field]
    if not isinstance(values, list):
        problems.append(locate.key(field, f"{field}: expected a list of YYYY-MM-DD dates, got {type(values).__name__}"))
        return {}
    out: dict[int, date] = {}
    seen: set[date] = set()
    for index, value in enumerate(values):
        where = f"{field}[{index}]"
        day = _as_date(value)
        if day is None:
            problems.append(locate.value(value, f"{where}: {value!r} is not a date (expected YYYY-MM-DD)", field=field))
            continue
        if year is not None and day.year != year:
            problems.append(locate.value(value, f"{where}: {day.isoformat()} is not in year {year}", field=field))
            continue
        if day in seen:
            problems.append(locate.value(value, f"{where}: {day.isoformat()} is listed twice", field=field, nth=2))
            continue
        seen.add(day)
        out[index] = day
    return out


def _as_date(value: Any) -> date | None:
    """A strict ``YYYY-MM-DD`` string or a TOML date literal; anything else (incl. datetimes) is refused."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


class _Locator:
    """Best-effort line numbers for validation messages.

    Parsers do not keep positions of values, so the source text is searched: the n-th occurrence of the value
    after the field's key. Good enough to point an operator at the right line; silent when nothing matches.
    """

    def __init__(self, text: str | None) -> None:
        self._text = text

    def key(self, key: str, message: str) -> str:
        return self._at([json.dumps(key, ensure_ascii=False), key], message)

    def value(self, value: Any, message: str, *, field: str | None = None, nth: int = 1) -> str:
        if isinstance(value, date):
            needles = [value.isoformat()]
        elif isinstance(value, str):
            needles = [json.dumps(value, ensure_ascii=False), value]
        else:
            needles = [json.dumps(value, ensure_ascii=False, default=str)]
        return self._at(needles, message, nth=nth, after=field)

    def _at(self, needles: Iterable[str], message: str, *, nth: int = 1, after: str | None = None) -> str:
        text = self._text
        if text is None:
            return message
        begin = 0
        if after is not None:
            for needle in (json.dumps(after), after):
                if (found := text.find(needle)) >= 0:
                    begin = found
                    break
        for needle in needles:
            pos = begin - 1
            for _ in range(nth):
                pos = text.find(needle, pos + 1)
                if pos < 0:
                    break
            if pos >= 0:
                return f"line {text.count(chr(10), 0, pos) + 1}: {message}"
        return message


# --------------------------------------------------------------------------------------------------------------
# the calendar


@functools.cache
def _packaged_covers(year: int) -> bool:
    """Whether the installed ``chinesecalendar`` has data for ``year`` (probed through its public API)."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@functools.lru_cache(maxsize=8192)
def _packaged_is_workday(day: date) -> bool:
    """``chinesecalendar``'s answer for one day, memoised: the packaged data never changes in a process, and the
    library re-validates the date against its whole table on every call (tens of µs; a deadline counts dozens
    of days and the tracker thousands of deadlines)."""
    return bool(chinese_calendar.is_workday(day))


class WorkingDayCalendar:
    """Working days under the packaged schedules plus any the operator loaded; see the module docstring.

    ``state_dir`` (e.g. ``<state dir>/calendar``) is where loaded schedules are persisted; without it, loaded
    schedules live only as long as the instance. The instance is safe to share between threads.
    """

    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._schedules: dict[int, YearSchedule] = {}
        self._warned_years: set[int] = set()
        self._lock = threading.Lock()
        # add_working_days answers by (start, n), forgotten when a schedule is installed: the deadline tracker
        # asks the same question for every message of one day (a day's approvals share their start), and the
        # day-by-day walk was a sixth of its time while it caught up a backlog.
        self._added: dict[tuple[date, int], WorkingDay] = {}

    # -- loading ---------------------------------------------------------------------------------------------

    @classmethod
    def from_dir(cls, state_dir: Path | str) -> WorkingDayCalendar:
        """A calendar persisting to ``state_dir`` and knowing every schedule stored there (none if it is absent).

        A corrupt stored file raises :class:`ScheduleError` rather than being skipped: skipping it would quietly
        turn confirmed deadlines back into estimates.
        """
        calendar = cls(state_dir)
        directory = Path(state_dir)
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                schedule = parse_schedule(path)
                if path.stem != str(schedule.year):
                    raise ScheduleError(str(path), [f"the file holds year {schedule.year}; expected {path.stem}"])
                calendar._install(schedule)
        return calendar

    def load(self, path: Path | str) -> YearSchedule:
        """Validate the schedule file at ``path``, persist it (if the calendar has a state dir) and use it."""
        schedule = parse_schedule(path)
        self.add_schedule(schedule)
        return schedule

    def add_schedule(self, schedule: YearSchedule) -> None:
        """Use ``schedule`` for its year, replacing packaged or earlier loaded data; persist it first if possible.

        Persisting before installing means a failure to write leaves the process and the disk in agreement.
        """
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            target = self.state_dir / f"{schedule.year}.json"
            payload = json.dumps(schedule.to_json(), ensure_ascii=False, indent=2) + "\n"
            fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=f".{schedule.year}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        self._install(schedule)

    def _install(self, schedule: YearSchedule) -> None:
        with self._lock:
            self._schedules[schedule.year] = schedule
            self._added = {}

    # -- queries ---------------------------------------------------------------------------------------------

    def covers(self, year: int) -> bool:
        """Whether results for ``year`` are exact (loaded or packaged schedule) rather than estimated."""
        with self._lock:
            if year in self._schedules:
                return True
        return _packaged_covers(year)

    def loaded_years(self) -> tuple[int, ...]:
        """The years the operator loaded, ascending."""
        with self._lock:
            return tuple(sorted(self._schedules))

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (estimated for an uncovered year; see :meth:`classify`)."""
        return self.classify(day)[0]

    def classify(self, day: date) -> tuple[bool, bool]:
        """``(is_working_day, estimated)`` for one day; logs the once-per-year warning for an uncovered year."""
        _check_date(day)
        with self._lock:
            schedule = self._schedules.get(day.year)
        if schedule is not None:
            return schedule.is_working_day(day), False
        if _packaged_covers(day.year):
            return _packaged_is_workday(day), False
        self._note_estimated(day.year)
        return day.weekday() < 5, True

    def add_working_days(self, start: date, n: int) -> WorkingDay:
        """The ``n``-th working day after ``start`` (``start`` itself never counts).

        ``n == 0`` returns ``start`` unchanged (and not estimated: no day was counted), whether or not it is a
        working day — a zero-length period ends where it starts. ``n`` must not be negative.
        """
        _check_date(start)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"n must be 0 or more working days, got {n}")
        if n > MAX_WORKING_DAYS:
            raise ValueError(f"n must be at most {MAX_WORKING_DAYS} working days, got {n}")
        known = self._added.get((start, n))
        if known is not None:
            return known
        added = self._added  # the memo this answer belongs to (a schedule installed meanwhile replaces it)
        day, remaining, estimated = start, n, False
        while remaining:
            try:
                day += _ONE_DAY
            except OverflowError:
                raise ValueError(f"{n} working days after {start.isoformat()} is beyond the last date") from None
            working, guessed = self.classify(day)
            estimated |= guessed
            if working:
                remaining -= 1
        result = WorkingDay(day, estimated)
        if len(added) < _MEMO_LIMIT:
            added[start, n] = result
        return result

    def working_days_between(self, a: date, b: date) -> Count:
        """Working days after ``a`` up to and including ``b``: the inverse of :meth:`add_working_days`.

        For ``b < a`` the count is negative (``-working_days_between(b, a)``), so "working days left until a
        deadline" reads naturally as overdue when negative. ``a == b`` gives 0.
        """
        _check_date(a)
        _check_date(b)
        if b < a:
            back = self.working_days_between(b, a)
            return Count(-back.days, back.estimated)
        days, estimated, day = 0, False, a
        while day < b:
            day += _ONE_DAY
            working, guessed = self.classify(day)
            estimated |= guessed
            days += working
        return Count(days, estimated)

    def _note_estimated(self, year: int) -> None:
        """Log ``calendar.estimated`` once per uncovered year for this instance."""
        with self._lock:
            if year in self._warned_years:
                return
            self._warned_years.add(year)
        # Looked up at call time (rare) so that logging configured later, or captured in tests, applies.
        structlog.get_logger("shenguan.calendar").warning(
            "calendar.estimated",
            year=year,
            detail="no holiday schedule for this year: counting Monday-Friday as working days; "
            "load the official schedule with `shenguan calendar load` to make results exact",
        )


def _check_date(value: object) -> None:
    """Refuse datetimes: the caller must first take the local (Asia/Shanghai) date, not have us drop the time."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"expected a datetime.date (local date in Asia/Shanghai), got {type(value).__name__}")
