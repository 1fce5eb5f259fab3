"""``shenguan report``: the figures an assessment asks for, read from the store.

``shenguan report timeliness --from 2026-10-01 --to 2026-12-31 [--by department|item|region] [--json]
[--csv FILE]`` counts the statutory deadlines that fell due in the period (see ``gateway.timeliness`` for the
counting rules). The deadlines are the ones ``shenguan serve`` tracks; ``--as-of`` sets the day against which
open deadlines count as overdue (default: today in Beijing), which makes a report reproducible.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli_support import ConfigOpt, DbOpt, JsonOpt, fail, load_or_exit, run_on_store
from gateway.deadlines import local_date
from gateway.timeliness import BY, render_csv, render_text, timeliness

__all__ = ["app"]

app = typer.Typer(
    help="Reports from the store: timeliness (考核).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _day(value: str, option: str) -> date:
    """A strict ``YYYY-MM-DD`` (``date.fromisoformat`` alone also takes ``20261001`` and week dates)."""
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise fail(f"{option} {value!r} is not a valid date; write it as YYYY-MM-DD, e.g. 2026-10-01")


@app.command("timeliness")
def timeliness_report(
    from_: Annotated[str, typer.Option("--from", help="first due day counted, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last due day counted, YYYY-MM-DD")],
    by: Annotated[str | None, typer.Option("--by", help="group by department, item or region")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="also write the figures to FILE as CSV")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="open deadlines due before this day are overdue [default: today]")
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Pushes on time / late, claims on time / default-claimed (默认认领), results and feedback within limit."""
    start, end = _day(from_, "--from"), _day(to, "--to")
    if end < start:
        raise fail(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    if by is not None and by not in BY:
        raise fail(f"--by must be one of {', '.join(BY)}, got {by!r}")
    today = _day(as_of, "--as-of") if as_of is not None else local_date(time.time())
    cfg = load_or_exit(config, db)
    rows = run_on_store(cfg, lambda store: store.deadlines(due_from=start.isoformat(), due_to=end.isoformat()))
    report = timeliness(rows, start=start, end=end, as_of=today, by=by)
    if csv_file is not None:
        try:
            csv_file.write_text(render_csv(report), encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {csv_file}: {exc.strerror or exc}") from None
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False) if json_ else render_text(report))
