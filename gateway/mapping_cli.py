"""``shenguan mapping``: import, list and restore the 审管事项关联映射清单.

An import either applies the whole sheet as a new version or changes nothing: a sheet with any problem
is refused with every problem listed by row and column, so a department fixes it in one pass and a bad
row never half-applies. Every import is kept; ``restore`` makes an earlier version active again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.config import ConfigError, load_config
from gateway.mapping import MappingFileError, MappingList, parse_mapping, render_problems
from gateway.store import open_store
from gateway.store.sqlite import SQLiteStore

__all__ = ["app"]

app = typer.Typer(help="审管事项关联映射清单 (approval ↔ supervision item mapping list).", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")]
DbOpt = Annotated[str | None, typer.Option("--db", help="store path or URL (overrides gateway.db)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _store(config: Path | None, db: str | None) -> SQLiteStore:
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    store = open_store(db or cfg.gateway.db)
    if not isinstance(store, SQLiteStore):  # pragma: no cover - only SQLite exists today
        raise typer.Exit(2)
    return store


async def _with_store(store: SQLiteStore, fn: Any) -> Any:
    # Not exclusive: an import may run while `shenguan serve` holds the database.
    await store.open(exclusive=False)
    try:
        return await fn(store)
    finally:
        await store.close()


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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
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
        store = _store(config, db)
        rows = [_row_dict(r) for r in parsed.rows]
        version = asyncio.run(
            _with_store(store, lambda s: s.import_mapping(rows, source=str(file), digest=parsed.digest))
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
    versions = asyncio.run(_with_store(_store(config, db), lambda s: s.mapping_versions()))
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
        asyncio.run(_with_store(_store(config, db), lambda s: s.restore_mapping(version)))
    except KeyError:
        typer.echo(f"error: there is no mapping version {version} (see `shenguan mapping list`)", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"mapping version {version} is active")
