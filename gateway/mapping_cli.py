"""``shenguan mapping``: import, list and restore the 审管事项关联映射清单.

An import either applies the whole sheet as a new version or changes nothing: a sheet with any problem
is refused with every problem listed by row and column, so a department fixes it in one pass and a bad
row never half-applies. Every import is kept; ``restore`` makes an earlier version active again.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli_support import ConfigOpt, DbOpt, JsonOpt, fail, load_or_exit, run_on_store
from gateway.mapping import MappingFileError, MappingList, parse_mapping, render_problems

__all__ = ["app"]

app = typer.Typer(help="审管事项关联映射清单 (approval ↔ supervision item mapping list).", no_args_is_help=True)


def _row_dict(row: Any) -> dict[str, Any]:
    data = dataclasses.asdict(row)
    data["channel"] = str(row.channel)
    return data


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="the mapping list, .csv (UTF-8 or GBK) or .xlsx")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate only, change nothing")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Validate the sheet; if every row is valid, store it as a new active version."""
    try:
        parsed: MappingList = parse_mapping(file)
    except MappingFileError as exc:
        raise fail(str(exc)) from None
    report: dict[str, Any] = {
        "file": str(file),
        "ok": parsed.ok,
        "rows": len(parsed.rows),
        "digest": parsed.digest,
        "dry_run": dry_run,
        "problems": [dataclasses.asdict(p) for p in parsed.problems],
        "version": None,
        "unchanged": False,
    }
    if parsed.ok and not dry_run:
        rows = [_row_dict(r) for r in parsed.rows]
        version = run_on_store(
            load_or_exit(config, db),
            lambda s: s.import_mapping(rows, source=str(file), digest=parsed.digest),
            create=True,
        )
        report["version"] = version
        report["unchanged"] = version is None
    if json_:
        typer.echo(json.dumps(report, ensure_ascii=False))
    elif not parsed.ok:
        typer.echo(f"{file}: {len(parsed.problems)} problem(s); nothing was imported")
        typer.echo(render_problems(parsed.problems))
    elif dry_run:
        typer.echo(f"{file}: {len(parsed.rows)} rows, all valid (dry run: nothing was imported)")
    elif report["unchanged"]:
        typer.echo(f"{file}: same content as the active version; nothing changed")
    else:
        typer.echo(f"{file}: imported {len(parsed.rows)} rows as version {report['version']} (now active)")
    raise typer.Exit(0 if parsed.ok else 1)


@app.command("list")
def list_(config: ConfigOpt = None, db: DbOpt = None, json_: JsonOpt = False) -> None:
    """Imported versions, newest first."""
    versions = run_on_store(load_or_exit(config, db), lambda s: s.mapping_versions(), create=True)
    if json_:
        typer.echo(json.dumps(versions, ensure_ascii=False))
        return
    for v in versions:
        mark = "*" if v["active"] else " "
        typer.echo(f"{mark} v{v['version']:<4} {v['row_count']:>6} rows  {v['digest'][:12]}  {v['source']}")


@app.command("restore")
def restore(
    version: Annotated[int, typer.Argument(help="version to make active again")],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Make an earlier version active again."""
    try:
        run_on_store(load_or_exit(config, db), lambda s: s.restore_mapping(version), create=True)
    except KeyError:
        raise fail(f"there is no mapping version {version} (see `shenguan mapping list`)") from None
    typer.echo(f"mapping version {version} is active")
