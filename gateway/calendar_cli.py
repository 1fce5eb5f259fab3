"""``shenguan calendar``: working-day (工作日) arithmetic and loading official holiday schedules.

Commands:

* ``add DATE N`` — the N-th working day after DATE (DATE itself does not count).
* ``between A B`` — working days after A up to and including B.
* ``load FILE`` — validate an official yearly schedule (JSON or TOML, see :func:`gateway.calendar.parse_schedule`)
  and store it so that later runs (and the gateway) use it.

Schedules live in ``--dir``, by default ``$SHENGUAN_STATE_DIR/calendar`` or else ``./.shenguan/calendar``.
``add`` and ``between`` read the same directory, so a schedule loaded once is used from then on; a missing
directory simply means "packaged data only". A running ``shenguan serve`` reading the same directory (its
``[deadlines] calendar_dir``) notices a loaded schedule at its next deadline check and recomputes every open
deadline, so estimated due dates become exact; so does the next start.

Mistakes (a bad date, an invalid schedule) exit with code 2 and an ``error: ...`` line on stderr, never a
traceback.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.calendar import MAX_WORKING_DAYS, ScheduleError, WorkingDayCalendar
from gateway.logging import configure_logging

__all__ = ["app", "default_calendar_dir"]

app = typer.Typer(
    help="Working days (工作日): deadline arithmetic under the official holiday schedule, and loading schedules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="directory of loaded schedules [default: $SHENGUAN_STATE_DIR/calendar or ./.shenguan/calendar]",
        file_okay=False,
    ),
]


def default_calendar_dir() -> Path:
    """Where loaded schedules are kept when ``--dir`` is not given."""
    state = os.environ.get("SHENGUAN_STATE_DIR")
    return (Path(state) if state else Path(".shenguan")) / "calendar"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _parse_date(value: str, name: str) -> date:
    """Strict ``YYYY-MM-DD`` (``date.fromisoformat`` alone would also accept ``20260930`` or week dates)."""
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(f"{name} {value!r} is not a valid date; write it as YYYY-MM-DD, e.g. 2026-09-30")


def _calendar(directory: Path | None) -> WorkingDayCalendar:
    # Logs (the calendar.estimated warning) must go to stderr: stdout may be JSON for a script.
    configure_logging("console", "warning")
    try:
        return WorkingDayCalendar.from_dir(directory or default_calendar_dir())
    except ScheduleError as exc:
        raise _fail(f"a stored schedule is invalid, fix or remove it:\n{exc}") from None


def _note(estimated: bool) -> str:
    return " (estimated: a year without a loaded holiday schedule, weekends only)" if estimated else ""


def _emit(doc: dict[str, Any], line: str, json_: bool) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False) if json_ else line)


@app.command()
def add(
    start: Annotated[str, typer.Argument(metavar="DATE", help="start date YYYY-MM-DD (does not count)")],
    n: Annotated[int, typer.Argument(metavar="N", help="number of working days")],
    json_: JsonOpt = False,
    directory: DirOpt = None,
) -> None:
    """The N-th working day after DATE (期间开始之日不计算在内: DATE itself never counts; N=0 gives DATE)."""
    day = _parse_date(start, "DATE")
    if not 0 <= n <= MAX_WORKING_DAYS:
        raise _fail(f"N must be between 0 and {MAX_WORKING_DAYS}, got {n}")
    try:
        result = _calendar(directory).add_working_days(day, n)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _emit(
        {"date": result.date.isoformat(), "estimated": result.estimated},
        f"{n} working day(s) after {day.isoformat()}: {result.date.isoformat()} "
        f"({result.date.strftime('%A')}){_note(result.estimated)}",
        json_,
    )


@app.command()
def between(
    a: Annotated[str, typer.Argument(metavar="A", help="from date YYYY-MM-DD (does not count)")],
    b: Annotated[str, typer.Argument(metavar="B", help="to date YYYY-MM-DD (counts)")],
    json_: JsonOpt = False,
    directory: DirOpt = None,
) -> None:
    """Working days after A up to and including B (negative when B is before A)."""
    first, last = _parse_date(a, "A"), _parse_date(b, "B")
    count = _calendar(directory).working_days_between(first, last)
    _emit(
        {"from": first.isoformat(), "to": last.isoformat(), "working_days": count.days, "estimated": count.estimated},
        (
            f"{count.days} working day(s) after {first.isoformat()} up to {last.isoformat()}"
            if count.days >= 0
            else f"{last.isoformat()} is {-count.days} working day(s) before {first.isoformat()} (B before A)"
        )
        + _note(count.estimated),
        json_,
    )


@app.command()
def load(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="schedule file (.json or .toml)")],
    directory: DirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Validate FILE (the official 节假日安排 of one year) and store it; later runs use it instead of estimates."""
    # Stored schedules are not read here: loading a good file must work even when a stored one is broken.
    configure_logging("console", "warning")
    calendar = WorkingDayCalendar(directory or default_calendar_dir())
    try:
        schedule = calendar.load(file)
    except ScheduleError as exc:
        raise _fail(f"cannot load the schedule:\n{exc}") from None
    except OSError as exc:
        raise _fail(f"cannot store the schedule in {calendar.state_dir}: {exc.strerror or exc}") from None
    stored = calendar.state_dir / f"{schedule.year}.json" if calendar.state_dir else None
    _emit(
        {
            "year": schedule.year,
            "holidays": len(schedule.holidays),
            "workdays": len(schedule.workdays),
            "source": schedule.source,
            "stored": str(stored),
        },
        f"loaded {schedule.year}: {len(schedule.holidays)} holiday(s), {len(schedule.workdays)} make-up working "
        f"day(s) (调休){f' from {schedule.source}' if schedule.source else ''}; stored in {stored}",
        json_,
    )
